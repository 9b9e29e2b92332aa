"""Naming a faulty expert: where it comes from, and its errors wrapped so they say so.

An expert is third-party code. When it raises in ``extract`` or ``forward`` (or returns
tokens the block cannot use), the user needs to know *which* plugin and *which*
distribution to blame or update, not only the plugin's own traceback. The expert factory
(:func:`uprm.plugins.build_experts`) records each expert's origin on the instance
(:func:`set_origin`); :func:`expert_origin` formats it — ``expert 'pose' (distribution
uprm-expert-pose 0.1.0, plugin 'pose')`` — and falls back to the distribution that
installed the expert's module for experts built by hand. :func:`expert_call` turns any
exception raised inside an expert call into an :class:`~uprm.errors.ExpertError` with
that text, the original chained.

Pure Python (no plugin host, no torch), beside the expert contract it wraps: the block,
the feature layer, the plugin factory and detection use it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata as md
from collections.abc import Iterator
from typing import Any

from uprm.errors import ExpertError, UPRMError

__all__ = ["ORIGIN_ATTR", "add_note", "describe_origin", "expert_call", "expert_origin", "set_origin"]

#: the instance attribute the factory fills: ``{"plugin", "distribution", "version"}``
ORIGIN_ATTR = "_uprm_origin"


def describe_origin(name: str, plugin: str | None = None, distribution: str | None = None,
                    version: str | None = None) -> str:
    """``expert 'NAME' (distribution DIST VERSION, plugin 'PLUGIN')``."""
    dist = f"distribution {distribution}{' ' + version if version else ''}" if distribution else \
        "no installed distribution"
    plug = f", plugin {plugin!r}" if plugin else ""
    return f"expert {name!r} ({dist}{plug})"


def set_origin(expert: Any, plugin: str | None, distribution: str | None, version: str | None) -> None:
    """Record where ``expert`` comes from (done by the expert factory)."""
    object.__setattr__(expert, ORIGIN_ATTR, {"plugin": plugin, "distribution": distribution, "version": version})


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` where Python has it (3.11+; shown under the traceback)."""
    method = getattr(exc, "add_note", None)
    if method is not None:
        method(note)


@functools.lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    try:
        return dict(md.packages_distributions())
    except Exception:  # pragma: no cover - a broken installation must not hide the real error
        return {}


def _distribution_of(cls: type) -> tuple[str | None, str | None]:
    top = (getattr(cls, "__module__", "") or "").split(".")[0]
    names = _module_distributions().get(top) or []
    if not names:
        return None, None
    try:
        return names[0], md.version(names[0])
    except md.PackageNotFoundError:  # pragma: no cover
        return names[0], None


def expert_origin(expert: Any, name: str | None = None) -> str:
    """``expert 'pose' (distribution uprm-expert-pose 0.1.0, plugin 'pose')`` for a
    built expert: as the factory recorded it, else from the distribution that installed
    the expert class's module (``no installed distribution`` and the class for one
    defined in a script or a test)."""
    name = name or str(getattr(expert, "name", type(expert).__name__))
    origin = getattr(expert, ORIGIN_ATTR, None)
    if isinstance(origin, dict):
        return describe_origin(name, origin.get("plugin"), origin.get("distribution"), origin.get("version"))
    dist, version = _distribution_of(type(expert))
    if dist is not None:
        return describe_origin(name, None, dist, version)
    cls = type(expert)
    return f"expert {name!r} (class {cls.__module__}.{cls.__qualname__}, no installed distribution)"


@contextlib.contextmanager
def expert_call(expert: Any, stage: str, where: str | None = None, name: str | None = None,
                origin: str | None = None) -> Iterator[None]:
    """Run an expert's code; an exception from it becomes an :class:`ExpertError`
    naming the expert, its distribution, the stage (``__init__``/``extract``/``forward``)
    and ``where`` (a clip), with the original chained. An :class:`ExpertError` passes as
    it is; another :class:`~uprm.errors.UPRMError` (a plugin's own typed error, e.g. a bad
    sidecar file, which names its file) keeps its type and gets a note naming the expert.
    ``origin`` (:func:`describe_origin`) stands in for an expert not built yet."""
    try:
        yield
    except ExpertError:
        raise
    except UPRMError as exc:  # the plugin's own typed error (a bad sidecar file...): kept, with a note
        add_note(exc, f"raised by {origin or expert_origin(expert, name)} in {stage}")
        raise
    except Exception as exc:
        origin = origin or expert_origin(expert, name)
        place = f" on {where}" if where else ""
        raise ExpertError(f"{origin} failed in {stage}{place}: {type(exc).__name__}: {exc}",
                          expert=name or getattr(expert, "name", None), origin=origin, stage=stage) from exc
