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

Keys may be written with ``-`` or ``_``. Relative paths are taken from the current
directory, as ``uprm train`` takes them. ``training`` holds ``uprm train`` settings
(:class:`uprm.training.TrainConfig` fields) except those the ablation sets per run
(:data:`CONTROLLED`); ``evaluation`` holds :func:`uprm.evaluate` options
(:data:`EVAL_KEYS`). Every error names the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from uprm.ablation.errors import AblationError

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

#: ``uprm.evaluate`` options a grid may set: name -> (kind, description)
EVAL_KEYS: dict[str, str] = {
    "split": "str", "batch_size": "int", "num_frames": "int", "max_new_tokens": "int", "device": "str",
    "ground_truth": "file", "dataset": "str", "thresholds": "thresholds", "rate": "number",
    "extra_videos": "str", "sbert": "bool",
}


@dataclass
class Stage1:
    """Stage-1 (pre-tuning) data and the training settings that differ for it."""

    data: list[str]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class AblationConfig:
    """A checked ablation grid (see the module docstring for each key)."""

    train: list[str]
    test: list[str]
    out: str
    val: list[str] = field(default_factory=list)
    cache: str | None = None
    experts: list[str] | None = None
    expert_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    stage1: Stage1 | None = None
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    threads: int | None = None
    source: str = "config"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------ value parsers
def _fail(where: str, what: str, value: Any) -> AblationError:
    return AblationError(f"{where} must be {what}, got {value!r} ({type(value).__name__})")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise _fail(where, "a string", value)
    return str(value)


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        value = [v.strip() for v in str(value).split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, (str, os.PathLike)) for v in value):
        raise _fail(where, "a string or a non-empty list of strings", value)
    return [str(v) for v in value]


def _files(value: Any, where: str) -> list[str]:
    files = _strings(value, where)
    for f in files:
        if not Path(f).is_file():
            raise AblationError(f"{where}: {f}: no such file")
    return files


def _positive_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _fail(where, "an integer of at least 1 (or null)", value)
    return value


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise _fail(where, "an integer or a list of integers", value) from None
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(values, (list, tuple)) or not values
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)):
        raise _fail(where, "an integer or a non-empty list of integers", value)
    if len(set(values)) != len(values):
        raise AblationError(f"{where}: seeds repeat ({list(values)})")
    return list(values)


def _variants(value: Any, where: str) -> list[str]:
    names = list(VARIANTS) if value == "all" else _strings(value, where)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise AblationError(f"{where}: unknown variant(s) {unknown}; known: {', '.join(VARIANTS)} (or 'all')")
    if len(set(names)) != len(names):
        raise AblationError(f"{where}: variants repeat ({names})")
    return [n for n in VARIANTS if n in names]  # the table's order


def _expert_options(value: Any, where: str) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, Mapping)
                                                 for k, v in value.items()):
        raise _fail(where, "a mapping {expert: {option: value}}", value)
    return {k: dict(v) for k, v in value.items()}


def _training_settings(value: Any, where: str, allowed_data: bool = False) -> dict[str, Any]:
    from uprm.training.config import ConfigError, check_values

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, "a mapping of `uprm train` settings", value)
    try:
        settings = check_values(value, where)
    except ConfigError as exc:
        raise AblationError(str(exc)) from None
    for key in settings:
        if key in CONTROLLED and not (allowed_data and key == "data"):
            raise AblationError(f"{where}.{key}: set by the ablation for each run, from {CONTROLLED[key]}")
    return settings


def _stage1(value: Any, where: str) -> Stage1 | None:
    if value is None:
        return None
    settings = _training_settings(value, where, allowed_data=True)
    if "data" not in settings:
        raise AblationError(f"{where}.data: missing: the stage-1 (pre-tuning) instruction files")
    data = _files(settings.pop("data"), f"{where}.data")
    return Stage1(data, settings)


def _eval_value(kind: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    checks: dict[str, Callable[[Any], bool]] = {
        "str": lambda v: isinstance(v, str), "file": lambda v: isinstance(v, (str, os.PathLike)),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "thresholds": lambda v: isinstance(v, str) or (isinstance(v, (list, tuple)) and all(
            isinstance(t, (int, float)) and not isinstance(t, bool) for t in v)),
    }
    names = {"str": "a string", "file": "a file path", "int": "an integer", "number": "a number",
             "bool": "true or false", "thresholds": "a list of numbers (or '0.1,0.3,0.5')"}
    if not checks[kind](value):
        raise _fail(where, names[kind], value)
    if kind == "file" and not Path(value).is_file():
        raise AblationError(f"{where}: {value}: no such file")
    return str(value) if kind == "file" else value


def _evaluation(value: Any, where: str) -> dict[str, Any]:
    from uprm.evaluation import EvalOptions
    from uprm.evaluation.errors import EvaluationError

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, "a mapping of `uprm.evaluate` options", value)
    out = {}
    for raw, v in value.items():
        key = str(raw).strip().replace("-", "_")
        if key not in EVAL_KEYS:
            raise AblationError(f"{where}: unknown key {raw!r}; known: {', '.join(EVAL_KEYS)}")
        out[key] = _eval_value(EVAL_KEYS[key], v, f"{where}.{key}")
    try:
        EvalOptions(**out)
    except (EvaluationError, TypeError, ValueError) as exc:
        raise AblationError(f"{where}: {exc}") from None
    return out


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "train": _files, "test": _files, "val": _files, "cache": _string, "out": _string,
    "experts": _strings, "expert_options": _expert_options, "stage1": _stage1, "training": _training_settings,
    "evaluation": _evaluation, "seeds": _seeds, "variants": _variants, "threads": _positive_int,
}
_REQUIRED = ("train", "test", "out")


# ------------------------------------------------------------------------ the whole file
def _read_file(path: Path) -> Any:
    import json

    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AblationError(f"{path}: no such config file") from None
    except OSError as exc:
        raise AblationError(f"{path}: cannot read the config file ({exc})") from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise AblationError(f"{path}: not valid YAML/JSON ({exc})") from None


def _parse(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for raw, value in data.items():
        key = str(raw).strip().replace("-", "_")
        if key not in _PARSERS:
            raise AblationError(f"{source}: unknown key {raw!r}; known keys: {', '.join(_PARSERS)}")
        parsed = _PARSERS[key](value, f"{source}: {key}")
        if parsed is not None:
            values[key] = parsed
    return values


def _check_training(config: AblationConfig) -> None:
    """The shared training settings checked as ``uprm train`` checks them."""
    from uprm.training import TrainConfig
    from uprm.training.config import ConfigError

    for name, extra in (("training", {}), ("stage1", config.stage1.settings if config.stage1 else None)):
        if extra is None:
            continue
        try:
            TrainConfig.from_mapping({**config.training, **extra, "data": config.train, "out": config.out}).validate()
        except ConfigError as exc:
            raise AblationError(f"{config.source}: {name}: {exc}") from None


def load_config(config: str | os.PathLike | Mapping[str, Any] | AblationConfig,
                **overrides: Any) -> AblationConfig:
    """A checked :class:`AblationConfig` from a YAML/JSON file, a mapping or a config,
    with ``overrides`` (``out``, ``variants``, ``seeds``, ... ; ``None`` values are
    ignored) on top — as the command-line flags override the file."""
    if isinstance(config, AblationConfig):
        data, source = {k: v for k, v in asdict(config).items() if k != "source"}, config.source
        if config.stage1 is not None:
            data["stage1"] = {"data": config.stage1.data, **config.stage1.settings}
    elif isinstance(config, Mapping):
        data, source = dict(config), "config"
    else:
        path = Path(config)
        data, source = _read_file(path), str(path)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise AblationError(f"{source}: an ablation grid is a mapping of keys, got {type(data).__name__}")
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    values = _parse(data, source)
    missing = [k for k in _REQUIRED if k not in values]
    if missing:
        hint = " (or --out DIR)" if missing[0] == "out" else ""
        raise AblationError(f"{source}: missing key {missing[0]!r}{hint}")
    result = AblationConfig(**values, source=source)
    _check_training(result)
    return result
