"""The plugin host: discovers expert plugins through the ``uprm`` entry-point group.

Discovery is lazy and happens once per process (or after :func:`reset_plugins`):

1. the built-in plugins of ``uprm-core`` (the coarse expert) are registered through
   the same hook as any other plugin;
2. every entry point of the ``uprm`` group is loaded **in its own try**: a plugin that
   fails to import, registers a misspelt hook, or returns something that is not an
   expert class is recorded as broken (with its distribution and error), a
   :class:`UPRMPluginWarning` is issued, and the others still load;
3. ``UPRM_LOAD_PLUGINS`` (comma list of entry-point names; set but empty = none)
   restricts which external plugins load, ``UPRM_DISABLE_PLUGINS`` blocks plugins by
   name (the built-in ``coarse`` included).

Then ``uprm_register_experts`` is called on each plugin separately, so every expert is
known with the distribution that brought it; two distributions registering the same
expert name is a :class:`~uprm.errors.DuplicateExpertError` naming both.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
import os
import re
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from uprm.errors import DuplicateExpertError, PluginError, UnknownExpertError
from uprm.plugins import hookspecs

if TYPE_CHECKING:
    from uprm.experts.base import Expert

__all__ = [
    "ENTRY_POINT_GROUP",
    "ExpertInfo",
    "PluginHost",
    "PluginInfo",
    "UPRMPluginWarning",
    "available_experts",
    "expert_infos",
    "get_expert_class",
    "get_plugin_host",
    "reset_plugins",
]

ENTRY_POINT_GROUP = "uprm"
LOAD_ENV = "UPRM_LOAD_PLUGINS"
DISABLE_ENV = "UPRM_DISABLE_PLUGINS"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

#: built-in plugins of uprm-core: plugin name -> module
BUILTIN_PLUGINS = {"coarse": "uprm.plugins.builtin"}


class UPRMPluginWarning(UserWarning):
    """A plugin was skipped because it is broken."""


@dataclass
class PluginInfo:
    """One plugin as the host saw it."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    builtin: bool = False
    error: str | None = None
    experts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def origin(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "an unregistered distribution"
        return f"{dist} (plugin {self.name!r})"


@dataclass(frozen=True)
class ExpertInfo:
    """One available expert and where it comes from."""

    name: str
    granularity: str
    cls: type
    plugin: str
    distribution: str | None
    version: str | None


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _short_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


class PluginHost:
    """A typed wrapper around a :class:`pluggy.PluginManager` for the ``uprm`` hooks."""

    def __init__(self, group: str = ENTRY_POINT_GROUP, load_entry_points: bool = True) -> None:
        self.group = group
        self.load_entry_points = load_entry_points
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._loaded = False
        self._experts: dict[str, ExpertInfo] | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        """Discover and register plugins (once)."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            disabled = _env_names(DISABLE_ENV) or set()
            for name in disabled:
                self.pm.set_blocked(name)
            from uprm._version import __version__ as core_version

            for name, module in BUILTIN_PLUGINS.items():
                if name in disabled:
                    continue
                self._load_one(
                    name, functools.partial(importlib.import_module, module), "uprm-core", core_version, module, True
                )
            if self.load_entry_points:
                allowed = _env_names(LOAD_ENV)
                for ep, dist_name, dist_version in self._entry_points():
                    if ep.name in disabled or (allowed is not None and ep.name not in allowed):
                        continue
                    self._load_one(ep.name, ep.load, dist_name, dist_version, ep.value, False)

    def _entry_points(self) -> list[tuple[md.EntryPoint, str | None, str | None]]:
        seen: set[tuple[str, str]] = set()
        found = []
        for ep in md.entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            key = (ep.name, ep.value)
            if key in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(key)
            found.append((ep, dist_name, dist_version))
        return sorted(found, key=lambda item: item[0].name)

    def _load_one(self, name: str, loader: Callable[[], Any], dist_name: str | None, dist_version: str | None,
                  module: str, builtin: bool) -> None:
        info = PluginInfo(name, dist_name, dist_version, module, builtin=builtin)
        if name in self.plugins:
            other = self.plugins[name]
            info.error = f"plugin name {name!r} is already used by {other.origin()}"
            self._broken(info, key=f"{name}@{dist_name}")
            return
        try:
            plugin = loader()
            self.pm.register(plugin, name=name)
        except Exception as exc:
            info.error = _short_error(exc)
            self._broken(info)
            return
        unknown = [
            hook_name
            for hook_name, caller in vars(self.pm.hook).items()
            if not hook_name.startswith("_")
            and not caller.has_spec()
            and any(impl.plugin_name == name and not impl.optionalhook for impl in caller.get_hookimpls())
        ]
        if unknown:
            self.pm.unregister(name=name)
            info.error = f"unknown hook(s) {', '.join(sorted(unknown))} (not in uprm's hook specs; a typo?)"
            self._broken(info)
            return
        self.plugins[name] = info

    def _broken(self, info: PluginInfo, key: str | None = None) -> None:
        self.plugins[key or info.name] = info
        warnings.warn(
            f"uprm: skipped plugin {info.name!r} from {info.distribution or '?'}: {info.error}",
            UPRMPluginWarning,
            stacklevel=4,
        )

    # ------------------------------------------------------------------ registering by hand
    def register(
        self, plugin: Any, name: str, distribution: str | None = None, version: str | None = None
    ) -> None:
        """Register a plugin object by hand (tests, notebooks). Errors propagate."""
        self.load()
        with self._lock:
            if name in self.plugins:
                raise PluginError(f"plugin name {name!r} is already used by {self.plugins[name].origin()}")
            self.pm.register(plugin, name=name)
            self.plugins[name] = PluginInfo(name, distribution, version, getattr(plugin, "__name__", repr(plugin)))
            self._experts = None

    def unregister(self, name: str) -> None:
        with self._lock:
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            self.plugins.pop(name, None)
            self._experts = None

    # ------------------------------------------------------------------ experts
    def experts(self) -> dict[str, ExpertInfo]:
        """All available experts by name (sorted). Raises
        :class:`~uprm.errors.DuplicateExpertError` when two plugins share a name."""
        self.load()
        with self._lock:
            if self._experts is None:
                self._experts = self._collect_experts()
            return dict(self._experts)

    def _collect_experts(self) -> dict[str, ExpertInfo]:
        from uprm.experts.base import GRANULARITIES, Expert

        found: dict[str, ExpertInfo] = {}
        caller = self.pm.hook.uprm_register_experts
        for impl in caller.get_hookimpls():
            info = self.plugins.get(impl.plugin_name)
            if info is None or not info.ok:
                continue
            try:
                result = impl.function()
                classes = list(result) if isinstance(result, Iterable) else [result]
                checked: list[type[Expert]] = []
                for cls in classes:
                    if not (isinstance(cls, type) and issubclass(cls, Expert)):
                        raise PluginError(f"returned {cls!r}, which is not a subclass of uprm.Expert")
                    if not isinstance(cls.name, str) or not _NAME_RE.match(cls.name):
                        raise PluginError(
                            f"expert class {cls.__qualname__} has name {cls.name!r}; "
                            "names are lowercase identifiers such as 'pose'"
                        )
                    if cls.granularity not in GRANULARITIES:
                        raise PluginError(
                            f"expert {cls.name!r} has granularity {cls.granularity!r}, not one of {GRANULARITIES}"
                        )
                    checked.append(cls)
            except Exception as exc:
                info.error = f"uprm_register_experts failed: {_short_error(exc)}"
                self.pm.unregister(name=impl.plugin_name)
                self._broken(info)
                continue
            info.experts = []
            for cls in checked:
                previous = found.get(cls.name)
                if previous is not None:
                    if previous.cls is cls:
                        continue
                    raise DuplicateExpertError(
                        f"expert {cls.name!r} is registered twice: by "
                        f"{self.plugins[previous.plugin].origin()} and by {info.origin()}; "
                        f"uninstall one, or switch one off with {DISABLE_ENV}={info.name}"
                    )
                found[cls.name] = ExpertInfo(
                    cls.name, cls.granularity, cls, info.name, info.distribution, info.version
                )
                info.experts.append(cls.name)
        return dict(sorted(found.items()))

    def broken(self) -> list[PluginInfo]:
        self.load()
        return [p for p in self.plugins.values() if not p.ok]

    def expert_info(self, name: str) -> ExpertInfo:
        """Expert ``name`` with its plugin and distribution. An unknown name is an
        :class:`~uprm.errors.UnknownExpertError` listing what is there; when a broken
        plugin probably meant to provide it (same name, or the distribution known to
        carry it), the error names that plugin, its distribution and why it failed."""
        infos = self.experts()
        if name in infos:
            return infos[name]
        hint = KNOWN_DISTRIBUTIONS.get(name)
        suspects = [p for p in self.broken() if p.name == name or (hint is not None and p.distribution == hint)]
        if suspects:
            why = "; ".join(f"plugin {p.name!r} from {p.distribution or '?'} {p.version or ''}".rstrip()
                            + f" failed to load: {p.error}" for p in suspects)
            raise UnknownExpertError(f"expert {name!r} is not available: {why} (see `uprm experts`)")
        install = f"; install it with `pip install {hint}`" if hint else ""
        broken = self.broken()
        also = ("; broken plugins: " + ", ".join(f"{p.name!r} from {p.distribution or '?'}" for p in broken)
                if broken else "")
        raise UnknownExpertError(
            f"no expert named {name!r} is installed (available: {', '.join(infos) or 'none'}){install}{also}"
        )


_HOST: PluginHost | None = None
_HOST_LOCK = threading.Lock()


def get_plugin_host() -> PluginHost:
    """The process-wide plugin host (created on first use; nothing loads before)."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = PluginHost()
        return _HOST


def reset_plugins() -> None:
    """Forget everything discovered; the next call re-reads the entry points and the
    ``UPRM_*`` environment variables."""
    global _HOST
    with _HOST_LOCK:
        _HOST = None


def expert_infos() -> dict[str, ExpertInfo]:
    return get_plugin_host().experts()


def available_experts() -> dict[str, type[Expert]]:
    """``{name: expert class}`` of every installed, enabled expert, sorted by name."""
    return {name: info.cls for name, info in expert_infos().items()}


def get_expert_class(name: str) -> type[Expert]:
    """The class of expert ``name``; an unknown name is an error listing what is there
    and, for the known plugins, which distribution to install."""
    return get_plugin_host().expert_info(name).cls


#: where the experts of the paper live, for error messages
KNOWN_DISTRIBUTIONS = {
    "coarse": "uprm-core",
    "pose": "uprm-expert-pose",
    "relation": "uprm-expert-relation",
    "background": "uprm-expert-background",
}
