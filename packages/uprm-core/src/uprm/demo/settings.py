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
from typing import Annotated, Any

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
            detects on test; val is not used). Half and half: 45 test videos, so the
            intervals are narrow enough to say something (15 made one seed look like a
            failure; benchmarks/demo_sizing.md).
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
        parallel: train the coarse-only model in a second process while UPRM trains in
            this one, when the machine has at least two CPUs (each on ``threads`` torch
            threads; the trainer seeds itself, so the models are the same either way).
        bootstrap: resamples of the test videos for the 95 % intervals and the paired
            comparisons (0: none); ``bootstrap_seed`` seeds them.
    """

    videos: Annotated[int, Field(ge=1)] = 90
    size: Annotated[int, Field(ge=1)] = 64
    fps: Annotated[float, Field(gt=0)] = 8.0
    min_duration: Annotated[float, Field(gt=0)] = 16.0
    max_duration: Annotated[float, Field(gt=0)] = 24.0
    normal_fraction: Annotated[float, Field(ge=0, le=1)] = 0.4
    # a JSON or YAML list is read as the tuple
    splits: Annotated[tuple[float, float, float], Field(strict=False)] = (0.5, 0.0, 0.5)
    window: Annotated[float, Field(gt=0)] = 4.0
    stride: Annotated[float, Field(gt=0)] = 2.0
    min_overlap: Annotated[float, Field(ge=0)] = 1.0
    num_frames: Annotated[int, Field(ge=1)] = 4
    steps: Annotated[int, Field(ge=1)] = 2500
    lr: Annotated[float, Field(gt=0)] = 1e-3
    batch_size: Annotated[int, Field(ge=1)] = 8
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.03
    expert_options: dict[str, dict[str, Any]] = {
        "pose": {"pose_dim": 64, "joint_dim": 32, "num_heads": 4},
        "relation": {"node_dim": 64, "num_heads": 4},
        "background": {"adapter_hidden": 128},
    }
    balance: bool = True
    sbert: bool = True
    threads: Annotated[int | None, Field(ge=1)] = 1
    parallel: bool = True
    bootstrap: Annotated[int, Field(ge=0)] = 1000
    bootstrap_seed: int = 0

    def options_for(self, experts: list[str]) -> list[str]:
        """``NAME.KEY=VALUE`` options (``uprm train --expert-option``) of the installed experts."""
        return [f"{name}.{key}={json.dumps(value)}" for name, opts in sorted(self.expert_options.items())
                if name in experts for key, value in sorted(opts.items())]


#: what ``uprm demo`` runs
DEFAULT = DemoSettings()

#: a few-seconds smoke version of the same pipeline (``uprm demo --quick``)
QUICK = DemoSettings(videos=6, size=32, min_duration=6.0, max_duration=6.0, splits=(0.5, 0.0, 0.5), window=6.0,
                     stride=6.0, num_frames=2, steps=2, sbert=False, bootstrap=200)
