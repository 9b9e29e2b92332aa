"""The sizes of the demo: the world, the windows, the model and the training run.

:data:`DEFAULT` is what ``uprm demo`` (``make demo``) runs; :data:`QUICK` is a
few-seconds smoke version of the same pipeline (``uprm demo --quick``, the unit test).
Every configuration tried while sizing the default, with its time and its table, is in
``benchmarks/demo_sizing.md`` (``benchmarks/demo.py`` measures seeds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["DEFAULT", "QUICK", "DemoSettings"]


@dataclass(frozen=True)
class DemoSettings:
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

    videos: int = 60
    size: int = 64
    fps: float = 8.0
    min_duration: float = 16.0
    max_duration: float = 24.0
    normal_fraction: float = 0.4
    splits: tuple[float, float, float] = (0.75, 0.0, 0.25)
    window: float = 4.0
    stride: float = 2.0
    min_overlap: float = 1.0
    num_frames: int = 4
    steps: int = 2500
    lr: float = 1e-3
    batch_size: int = 8
    warmup_ratio: float = 0.03
    expert_options: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {
        "pose": {"pose_dim": 64, "joint_dim": 32, "num_heads": 4},
        "relation": {"node_dim": 64, "num_heads": 4},
        "background": {"adapter_hidden": 128},
    })
    balance: bool = True
    sbert: bool = True
    threads: int | None = 1

    def replace(self, **changes: Any) -> DemoSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def options_for(self, experts: list[str]) -> list[str]:
        """``NAME.KEY=VALUE`` options (``uprm train --expert-option``) of the installed experts."""
        return [f"{name}.{key}={json.dumps(value)}" for name, opts in sorted(self.expert_options.items())
                if name in experts for key, value in sorted(opts.items())]


#: what ``uprm demo`` runs
DEFAULT = DemoSettings()

#: a few-seconds smoke version of the same pipeline (``uprm demo --quick``)
QUICK = DemoSettings(videos=6, size=32, min_duration=6.0, max_duration=6.0, splits=(0.5, 0.0, 0.5), window=6.0,
                     stride=6.0, num_frames=2, steps=2, sbert=False)
