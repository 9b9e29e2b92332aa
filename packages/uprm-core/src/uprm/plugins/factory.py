"""The one expert factory: names become expert objects here and nowhere else.

:func:`build_experts` is used by ``build_model``, ``uprm extract`` and everything after
them (training, detection). The UPE block receives the built experts and never looks a
name up. Randomly initialised parts (perception built without weights, adapters) draw
from one seed stream per expert name — ``(seed, name)`` — so an expert is the same
whatever else is built beside it and in whatever order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from uprm.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from uprm.experts.base import Expert, ExpertContext
    from uprm.plugins.manager import ExpertInfo

__all__ = ["build_experts", "expert_seed", "parse_expert_options", "resolve_expert_names"]


def expert_seed(seed: int, name: str) -> int:
    """The seed of expert ``name``'s random initialisation under a model seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{name}".encode()).digest()[:4], "big")


def _check_names(names: Sequence[str], options: Mapping[str, Any]) -> None:
    if not names:
        raise ConfigError("no experts to build")
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ConfigError(f"expert names must be strings, got {bad}")
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise ConfigError(f"expert(s) listed twice: {dupes}")
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ConfigError(f"options given for expert(s) {unknown} that are not being built ({list(names)})")
    for name, opts in options.items():
        if not isinstance(opts, Mapping):
            raise ConfigError(f"options of expert {name!r} must be a mapping of keyword arguments, got {opts!r}")


def build_experts(
    names: Sequence[str],
    ctx: ExpertContext,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    *,
    device: str | torch.device | None = None,
) -> dict[str, Expert]:
    """Build installed experts by name: ``get_expert_class(name)(ctx, **options[name])``.

    Args:
        names: expert names (see ``uprm experts``); order is kept in the result.
        ctx: the expert context (dims of the model they belong to; ``resources`` may hand
            them shared frozen modules, e.g. the backbone's video tower).
        options: per-expert constructor options, ``{"pose": {"weights": "..."}}``.
        seed: the model seed; expert ``name`` is initialised under
            :func:`expert_seed` ``(seed, name)`` with the global RNG left untouched.
        device: move each expert there (default: where it was built).

    Raises:
        UnknownExpertError: a name no installed plugin provides (naming what to install).
        ConfigError: duplicate names, options for an expert not built, bad options.
    """
    from uprm.plugins.manager import get_plugin_host

    options = dict(options or {})
    _check_names(names, options)
    infos = {name: get_plugin_host().expert_info(name) for name in names}
    out: dict[str, Expert] = {}
    for name in names:
        expert = _build_one(infos[name], ctx, dict(options.get(name, {})), seed)
        out[name] = expert if device is None else expert.to(device)
    return out


def _build_one(info: ExpertInfo, ctx: ExpertContext, options: dict[str, Any], seed: int) -> Expert:
    """``info.cls(ctx, **options)`` under the expert's own seed, its origin recorded on it;
    an exception from its ``__init__`` names the expert and its distribution."""
    import torch

    from uprm.experts.faults import describe_origin, expert_call, set_origin

    name = info.name
    origin = describe_origin(name, info.plugin, info.distribution, info.version)
    with torch.random.fork_rng(devices=[]), expert_call(None, "__init__", name=name, origin=origin):
        torch.manual_seed(expert_seed(seed, name))
        try:
            expert = info.cls(ctx, **options)
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
            raise ConfigError(f"{origin}: {exc}") from exc
    set_origin(expert, info.plugin, info.distribution, info.version)
    return expert


def resolve_expert_names(experts: Iterable[str] | None) -> list[str]:
    """The experts a model is built from: ``experts`` (``None`` = every installed one)
    with a coarse expert added when none is named, sorted."""
    from uprm.plugins.manager import expert_infos, get_expert_class

    names = list(experts) if experts is not None else list(expert_infos())
    if not any(get_expert_class(n).granularity == "coarse" for n in names):
        names.append("coarse")
    return sorted(dict.fromkeys(names))


def parse_expert_options(items: Iterable[str], names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``["pose.max_people=4", "coarse.vision_path=/models/lb"]`` → ``{"pose": {"max_people": 4}, ...}``.

    Values are read as JSON when they parse (numbers, booleans, null, lists, objects),
    else kept as strings."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        m = re.fullmatch(r"\s*([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)", item, flags=re.S)
        if m is None:
            raise ConfigError(f"expert option {item!r} is not NAME.KEY=VALUE (e.g. pose.max_people=4)")
        name, key, raw = m.group(1), m.group(2), m.group(3).strip()
        if names is not None and name not in names:
            raise ConfigError(f"expert option {item!r} is for {name!r}, which is not among the experts {list(names)}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(name, {})[key] = value
    return out
