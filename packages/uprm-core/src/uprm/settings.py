"""Validated settings: one pydantic v2 base for every run file and options object.

Every settings type of the library (``TrainConfig``, the ablation grid, ``DetectOptions``,
``ServeConfig``, ``WatchSettings``, ``DemoSettings``, ``UPRMConfig``) derives from
:class:`Settings`, so validation is declared once per field (types, ranges, choices) and
every bad value becomes **one** error type, :class:`uprm.errors.ConfigError` (or the
subclass a settings type names in ``error``), whose message names the file (when the
values came from one), the line of the key in a YAML file, and the field::

    run.yaml, line 4: lr: Input should be a valid number, unable to parse string as a number (got 'fast')

Settings are strict by default: ``num_frames="8"`` is an error, not an ``8`` (a run file
that says a string where a number belongs is a mistake worth naming); an ``int`` is
accepted for a ``float``. Unknown keys are errors (``extra="forbid"``), naming the keys
that are known.

This module imports pydantic and the error classes only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from uprm.errors import ConfigError

__all__ = [
    "PathStr",
    "Settings",
    "describe_validation_error",
    "read_settings_file",
]

S = TypeVar("S", bound="Settings")

#: where the values being validated came from: (source, lines of its keys)
_SOURCE: ContextVar[tuple[str | os.PathLike | None, Mapping[str, int] | None]] = ContextVar(
    "uprm_settings_source", default=(None, None))


@contextmanager
def _from_source(source: str | os.PathLike | None, lines: Mapping[str, int] | None) -> Iterator[None]:
    token = _SOURCE.set((source, lines))
    try:
        yield
    finally:
        _SOURCE.reset(token)


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


#: a path given as ``str`` or :class:`os.PathLike`, stored as ``str``
PathStr = Annotated[str, BeforeValidator(_fspath)]


def _loc(loc: tuple[Any, ...]) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def describe_validation_error(exc: ValidationError, source: str | os.PathLike | None = None,
                              lines: Mapping[str, int] | None = None, known: list[str] | None = None) -> str:
    """One message for every problem of ``exc``: ``SOURCE, line N: field: problem (got VALUE)``.

    ``lines`` maps a top-level key to its line in the file; ``known`` lists the valid keys,
    named when a key is unknown."""
    out = []
    unknown = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        field = _loc(loc)
        where = str(source) if source is not None else ""
        if lines and loc and str(loc[0]) in lines:
            where = f"{where}, line {lines[str(loc[0])]}" if where else f"line {lines[str(loc[0])]}"
        prefix = f"{where}: " if where else ""
        if err.get("type") == "extra_forbidden":
            unknown.append(field)
            out.append(f"{prefix}{field}: unknown setting")
            continue
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):  # our own validators' messages say what they got
            msg = msg[len("Value error, "):]
        elif "input" in err and err.get("type") != "missing" and not isinstance(err["input"], (dict, BaseModel)):
            msg = f"{msg} (got {err['input']!r})"
        out.append(f"{prefix}{field}: {msg}" if field else f"{prefix}{msg}")
    text = "; ".join(out)
    if unknown and known:
        text += f" (known settings: {', '.join(sorted(known))})"
    return text


class Settings(BaseModel):
    """Base of every settings type (module doc).

    Subclasses declare fields with types and constraints (``Field(gt=0)``, ``Literal``),
    and ``@field_validator`` / ``@model_validator`` for the rest. ``error`` is the
    :class:`ConfigError` subclass raised for a bad value. Construction (``Cls(**values)``),
    :meth:`load` (a mapping from a file or a program), :meth:`from_file` and
    :meth:`replace` all raise it; none of them raises pydantic's ``ValidationError``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True,
                              arbitrary_types_allowed=False, protected_namespaces=())

    #: the error raised for a bad value (a subclass of :class:`ConfigError`)
    error: ClassVar[type[ConfigError]] = ConfigError

    def __init__(self, /, **data: Any) -> None:
        source, lines = _SOURCE.get()
        _SOURCE.set((None, None))  # nested settings name their field under the outer one
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise self.error(describe_validation_error(exc, source, lines, list(type(self).model_fields))) from None
        finally:
            _SOURCE.set((source, lines))

    @classmethod
    def load(cls: type[S], data: Any, source: str | os.PathLike | None = None,
             lines: Mapping[str, int] | None = None) -> S:
        """Settings from a mapping (from a file named ``source``, whose keys are on
        ``lines``); every problem is one :attr:`error` naming the source and field."""
        if not isinstance(data, Mapping):
            where = f"{source}: " if source is not None else ""
            raise cls.error(f"{where}expected a mapping of settings, got {type(data).__name__}")
        with _from_source(source, lines):
            return cls(**{str(k): v for k, v in data.items()})

    @classmethod
    def from_file(cls: type[S], path: str | os.PathLike, **overrides: Any) -> S:
        """Settings from a YAML or JSON file (``overrides`` win over the file's values)."""
        data, lines = read_settings_file(path, cls.error)
        data.update(overrides)
        return cls.load(data, path, {k: n for k, n in lines.items() if k not in overrides})

    def replace(self: S, **changes: Any) -> S:
        """A copy with ``changes``, validated like a new object."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(changes)
        return type(self)(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-safe values (tuples become lists)."""
        return json.loads(self.model_dump_json())


def read_settings_file(path: str | os.PathLike, error: type[ConfigError] = ConfigError) -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML (or ``.json``) mapping and the line (from 1) of each top-level key.

    Raises ``error`` naming the file: missing, unreadable, not UTF-8, not YAML/JSON,
    not a mapping, a key repeated (YAML would keep the last one silently)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a settings file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise error(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise error(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        return data, {}
    return _read_yaml(path, text, error)


_LOADER: Any = None


def _yaml_loader() -> Any:
    """PyYAML's ``SafeLoader`` that also reads ``1e-4`` (no dot) as a number: YAML 1.1
    wants ``1.0e-4``, and a learning rate written as most people write it would
    otherwise arrive as the string ``"1e-4"``."""
    global _LOADER
    if _LOADER is None:
        import re

        import yaml

        class Loader(yaml.SafeLoader):
            pass

        Loader.add_implicit_resolver(
            "tag:yaml.org,2002:float",
            re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
            list("-+0123456789"))
        _LOADER = Loader
    return _LOADER


def _read_yaml(path: Path, text: str, error: type[ConfigError]) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        import yaml
    except ImportError:
        raise error(f'{path}: reading a YAML settings file needs pyyaml: pip install "uprm-core[train]"') from None
    safe = _yaml_loader()  # a yaml.SafeLoader: plain data only
    try:
        node = yaml.compose(text, Loader=safe)
        reader = safe(text)
        try:
            data = reader.get_single_data()
        finally:
            reader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise error(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        key = str(key_node.value)
        if key in lines:
            raise error(f"{path}, line {key_node.start_mark.line + 1}: {key!r} is given twice "
                        f"(first on line {lines[key]})")
        lines[key] = key_node.start_mark.line + 1
    return {str(k): v for k, v in data.items()}, lines
