"""The sizes of the demo: the world, the windows, the model and the training run.

:data:`DEFAULT` is what ``uprm demo`` (``make demo``) runs; :data:`QUICK` is a
few-seconds smoke version of the same pipeline (``uprm demo --quick``, the unit test).
Every configuration tried while sizing the default, with its time and its table, is in
``benchmarks/demo_sizing.md`` (``benchmarks/demo.py`` measures seeds). A
:class:`uprm.settings.Settings`: a bad size is a :class:`~uprm.errors.ConfigError`
naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from uprm.settings import Settings

__all__ = ["DEFAULT", "QUICK", "DemoSettings"]


class DemoSettings(Settings):
    """Everything that sizes one demo run.

    Attributes:
        videos: videos in the synthetic world.
        size, fps: frame side (pixels) and frame rate of the world's videos.
        min_duration, max_duration: video length range, seconds.
        normal_fraction: share of normal videos (each threat also has a look-alike twin).
        splits: the world's train / val / test fractions (the demo trains on train and
            detects on test; val is not used).
        window, stride: seconds; training clips are the instruction builder's windows and
            ``uprm detect`` slides the same windows over the test videos.
        min_overlap: a training window is a threat when the threat covers more than this
            many seconds of it.
        num_frames: frames sampled per window.
        steps, lr, batch_size, warmup_ratio: the training run of both trained models.
        expert_options: options of the fine experts' adapters (their widths).
        balance: repeat the training file's threat windows (all their tasks) until the
            identify answers are about half "Yes": most windows show no threat, and a
            tiny model trained on that prior learns to say "No" to everything.
        sbert: compute the Sentence-BERT similarity (loads all-MiniLM-L6-v2 once).
        threads: torch threads (``None``: torch's default). One: the tiny model's matrices are
            too small for two threads to pay, and on a busy machine a second thread made
            feature extraction 40× and training 5× slower in CPU time (spinning).
    """

    videos: int = Field(60, ge=1)
    size: int = Field(64, ge=1)
    fps: float = Field(8.0, gt=0)
    min_duration: float = Field(16.0, gt=0)
    max_duration: float = Field(24.0, gt=0)
    normal_fraction: float = Field(0.4, ge=0, le=1)
    # a JSON or YAML list is read as the tuple
    splits: tuple[float, float, float] = Field((0.75, 0.0, 0.25), strict=False)
    window: float = Field(4.0, gt=0)
    stride: float = Field(2.0, gt=0)
    min_overlap: float = Field(1.0, ge=0)
    num_frames: int = Field(4, ge=1)
    steps: int = Field(2500, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(8, ge=1)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    expert_options: dict[str, dict[str, Any]] = {
        "pose": {"pose_dim": 64, "joint_dim": 32, "num_heads": 4},
        "relation": {"node_dim": 64, "num_heads": 4},
        "background": {"adapter_hidden": 128},
    }
    balance: bool = True
    sbert: bool = True
    threads: int | None = Field(1, ge=1)

    def options_for(self, experts: list[str]) -> list[str]:
        """``NAME.KEY=VALUE`` options (``uprm train --expert-option``) of the installed experts."""
        return [f"{name}.{key}={json.dumps(value)}" for name, opts in sorted(self.expert_options.items())
                if name in experts for key, value in sorted(opts.items())]


#: what ``uprm demo`` runs
DEFAULT = DemoSettings()

#: a few-seconds smoke version of the same pipeline (``uprm demo --quick``)
QUICK = DemoSettings(videos=6, size=32, min_duration=6.0, max_duration=6.0, splits=(0.5, 0.0, 0.5), window=6.0,
                     stride=6.0, num_frames=2, steps=2, sbert=False)
