"""Shared fixtures of the pose expert's tests: small ultralytics checkpoints written once
per session (random weights from the packaged YAMLs; nothing is downloaded)."""

import sys
from pathlib import Path

import pytest

try:
    import uprm_expert_pose  # noqa: F401  (installed: test the installed copy)
except ImportError:  # running from the source tree without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


@pytest.fixture(scope="session")
def pose_pt(tmp_path_factory) -> Path:
    """yolo11n-pose with random weights (BatchNorm calibrated, so its output depends on
    the image) saved as an ultralytics .pt checkpoint."""
    from uprm_expert_pose.testing import random_pose_checkpoint

    return random_pose_checkpoint(tmp_path_factory.mktemp("weights") / "yolo11n-pose-random.pt", calibration_size=64)


@pytest.fixture(scope="session")
def detect_pt(tmp_path_factory) -> Path:
    """A randomly initialised yolo11n *detection* model (not a pose model)."""
    from uprm_expert_pose.testing import random_pose_checkpoint

    return random_pose_checkpoint(
        tmp_path_factory.mktemp("weights") / "yolo11n-detect-random.pt", "yolo11n.yaml", calibration_size=64
    )
