"""Fixtures of the relation expert's tests (helpers live in uprm_expert_relation.testing:
test modules cannot import each other under --import-mode=importlib)."""

import json
import sys
from pathlib import Path

import pytest

try:
    import uprm_expert_relation  # noqa: F401  (installed: test the installed copy)
except ImportError:  # running from the source tree without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


@pytest.fixture(scope="session")
def detector_pt(tmp_path_factory) -> Path:
    """A plausible random yolo11n detector saved as an ultralytics checkpoint."""
    from uprm_expert_relation.testing import plausible_random_detector, save_detector_checkpoint

    path = tmp_path_factory.mktemp("detector") / "yolo11n-random.pt"
    return save_detector_checkpoint(plausible_random_detector("yolo11n.yaml", imgsz=64, seed=0), path)


@pytest.fixture
def write_json(tmp_path):
    """write_json(obj, name="sg.json") -> path of a JSON file written in tmp_path."""

    def write(obj, name: str = "scene_graph.json") -> Path:
        path = tmp_path / name
        path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
        return path

    return write
