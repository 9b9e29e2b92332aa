"""The ablation grid file (``uprm ablate --config grid.yaml``), checked key by key.

.. code-block:: yaml

    train: world/instructions/synthetic_train.json     # one file or a list (required)
    test: world/instructions/synthetic_test.json       # (required)
    val: world/instructions/synthetic_val.json         # optional: validation loss
    cache: cache                                       # optional feature cache
    out: runs/ablation                                 # or --out
    experts: [coarse, pose, relation, background]      # optional; default: every installed
    expert_options: {pose: {max_people: 4}}            # optional; every variant's experts
    stage1:                                            # optional: pre-tuning (stage 1)
      data: [stage1/rsicb_train.json, stage1/humanml3d_train.json]
      max_steps: 60                                    # training settings of stage 1 only
    training: {tiny: true, max_steps: 300, lr: 1.0e-3, batch_size: 8, num_frames: 4}
    evaluation: {dataset: ucf, sbert: true}            # uprm.evaluate options
    seeds: [0, 1]
    variants: [full, wo_pose, wo_relation, wo_background, wo_upe, wo_ptr, wo_pretune, residual]
    threads: 1                                         # torch threads (optional)
    bootstrap: 1000                                    # resamples of the intervals (0: none)
    bootstrap_seed: 0
    permutations: 1000                                 # of each paired p-value (default: bootstrap)

Keys may be written with ``-`` or ``_``. Relative paths are taken from the current
directory, as ``uprm train`` takes them. ``training`` holds ``uprm train`` settings
(:class:`uprm.training.TrainConfig` fields) except those the ablation sets per run
(:data:`CONTROLLED`); ``evaluation`` holds :func:`uprm.evaluate` options
(:data:`EVAL_KEYS`). The grid is a :class:`uprm.settings.Settings`: every error is an
:class:`AblationError` naming the file, the line of the key and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from uprm.ablation.errors import AblationError
from uprm.settings import PathStr, Settings

__all__ = ["CONTROLLED", "EVAL_KEYS", "VARIANTS", "AblationConfig", "Stage1", "load_config"]

#: the grid's variants, in the order of the table
VARIANTS = ("full", "wo_pose", "wo_relation", "wo_background", "wo_upe", "wo_ptr", "wo_pretune", "residual")

#: training settings the ablation sets for each run, and where they come from instead
CONTROLLED = {
    "data": "`train` (stage 2) and `stage1.data`", "out": "`out`", "val": "`val`", "cache": "`cache`",
    "experts": "`experts` and the variants", "router": "the variants (wo_ptr: basic)",
    "init": "the variants (stage 1)", "stage": "the ablation", "seed": "`seeds`",
    "resume": "the ablation (unfinished runs resume)", "progress": "the ablation",
}


def _key(key: Any) -> str:
    return str(key).strip().replace("-", "_")


def _listed(value: Any) -> Any:
    """A comma-separated string (or one path) is a list; a tuple a list."""
    if isinstance(value, (str, os.PathLike)):
        return [v.strip() for v in os.fspath(value).split(",") if v.strip()]
    return list(value) if isinstance(value, tuple) else value


def _existing(files: list[str]) -> list[str]:
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise ValueError(f"{missing[0]}: no such file")
    return files


def _seed_list(value: Any) -> Any:
    if isinstance(value, str):  # the --seeds flag: "0,1"
        try:
            return [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"expected an integer or a list of integers (e.g. 0,1), got {value!r}") from None
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


def _distinct(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"a value is repeated ({values})")
    return values


#: files that must exist: a list, or one string
Files = Annotated[list[PathStr], BeforeValidator(_listed), Field(min_length=1), AfterValidator(_existing)]
Variant = Literal[VARIANTS]  # type: ignore[valid-type]


class Evaluation(Settings):
    """The ``uprm.evaluate`` options a grid may set (``evaluation:``)."""

    error = AblationError

    split: str | None = None
    batch_size: int | None = None
    num_frames: int | None = None
    max_new_tokens: int | None = None
    device: str | None = None
    ground_truth: Annotated[PathStr, AfterValidator(lambda f: _existing([f])[0])] | None = None
    dataset: str | None = None
    thresholds: list[float] | str | None = None
    rate: float | None = None
    extra_videos: str | None = None
    sbert: bool | None = None
    bootstrap: int | None = None  # each run's own report.json intervals (the ablation passes 0 unless set)
    bootstrap_seed: int | None = None


#: ``uprm.evaluate`` options a grid may set
EVAL_KEYS = tuple(Evaluation.model_fields)


class Stage1(Settings):
    """Stage-1 (pre-tuning) data and the training settings that differ for it."""

    error = AblationError

    data: list[str]
    settings: dict[str, Any] = {}


def _given(kind: type[Settings], value: Any) -> dict[str, Any]:
    """The settings ``value`` (a mapping) gives, checked as ``kind``."""
    data = {_key(k): v for k, v in value.items()} if isinstance(value, Mapping) else value
    checked = kind.load(data)
    return {name: getattr(checked, name) for name in checked.model_fields_set}


def _training(value: Any, grid: dict[str, Any], allowed: tuple[str, ...] = ()) -> dict[str, Any]:
    """``uprm train`` settings, none of them one the ablation sets."""
    from uprm.training.config import TrainConfig

    settings = _given(TrainConfig, value)
    for key in settings:
        if key in CONTROLLED and key not in allowed:
            raise ValueError(f"{key}: set by the ablation for each run, from {CONTROLLED[key]}")
    return settings


def _check_run(settings: dict[str, Any], data: list[str], grid: dict[str, Any]) -> None:
    """The settings of a run checked as ``uprm train`` checks them (a model given...)."""
    from uprm.training.config import TrainConfig

    if "out" in grid:  # else the missing key is the error
        TrainConfig.load({**settings, "data": data, "out": grid["out"]}).validate()


class AblationConfig(Settings):
    """A checked ablation grid (see the module docstring for each key)."""

    error = AblationError

    train: Files
    test: Files
    out: PathStr | None = None
    val: Annotated[list[PathStr], BeforeValidator(_listed), AfterValidator(_existing)] = []
    cache: PathStr | None = None
    experts: Annotated[list[str], BeforeValidator(_listed), Field(min_length=1)] | None = None
    expert_options: dict[str, dict[str, Any]] = {}
    training: dict[str, Any] = {}
    stage1: Stage1 | None = None
    evaluation: dict[str, Any] = {}
    seeds: Annotated[list[int], BeforeValidator(_seed_list), Field(min_length=1), AfterValidator(_distinct)] = [0]
    variants: Annotated[list[Variant], BeforeValidator(lambda v: list(VARIANTS) if v == "all" else _listed(v)),
                        Field(min_length=1), AfterValidator(_distinct)] = list(VARIANTS)
    threads: Annotated[int | None, Field(ge=1)] = None
    bootstrap: Annotated[int, Field(ge=0)] = 1000
    bootstrap_seed: int = 0
    permutations: Annotated[int | None, Field(ge=1)] = None

    @field_validator("out")
    @classmethod
    def _out_given(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("missing: give `out:` in the grid or --out DIR")
        return value

    @field_validator("variants")
    @classmethod
    def _table_order(cls, value: list[str]) -> list[str]:
        return [n for n in VARIANTS if n in value]

    @field_validator("training", mode="before")
    @classmethod
    def _training_settings(cls, value: Any, info: ValidationInfo) -> dict[str, Any]:
        settings = _training(value, info.data)
        if "train" in info.data:
            _check_run(settings, info.data["train"], info.data)
        return settings

    @field_validator("stage1", mode="before")
    @classmethod
    def _stage1(cls, value: Any, info: ValidationInfo) -> Stage1 | None:
        if value is None or isinstance(value, Stage1):
            return value
        settings = _training(value, info.data, allowed=("data",))
        if "data" not in settings:
            raise ValueError("data: missing: the stage-1 (pre-tuning) instruction files")
        data = _existing(settings.pop("data"))
        _check_run({**info.data.get("training", {}), **settings}, data, info.data)
        return Stage1(data=data, settings=settings)

    @field_validator("evaluation", mode="before")
    @classmethod
    def _evaluation(cls, value: Any) -> dict[str, Any]:
        from uprm.evaluation import EvalOptions
        from uprm.evaluation.errors import EvaluationError

        options = _given(Evaluation, value)
        try:
            EvalOptions(**options)
        except EvaluationError as exc:
            raise ValueError(str(exc)) from None
        return options

    @classmethod
    def load(cls, data: Any, source: str | os.PathLike | None = None,
             lines: Mapping[str, int] | None = None) -> AblationConfig:
        """As :meth:`Settings.load`, keys written with ``-`` or ``_``."""
        if isinstance(data, Mapping):
            data = {_key(k): v for k, v in data.items()}
            lines = {_key(k): n for k, n in (lines or {}).items()}
        return super().load(data, source, lines)


def load_config(config: str | os.PathLike | Mapping[str, Any] | AblationConfig,
                **overrides: Any) -> AblationConfig:
    """A checked :class:`AblationConfig` from a YAML/JSON file, a mapping or a config,
    with ``overrides`` (``out``, ``variants``, ``seeds``, ... ; ``None`` values are
    ignored) on top — as the command-line flags override the file."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(config, AblationConfig):
        return config.replace(**given)
    if isinstance(config, Mapping):
        return AblationConfig.load({**config, **given}, "config")
    return AblationConfig.from_file(config, **given)
