"""Network conventions: online as each ecosystem does, offline on request.

UPRM itself downloads nothing. The libraries under it follow their own conventions, and
UPRM lets them: a Hugging Face hub id (``LanguageBind/Video-LLaVA-7B-hf``) is resolved by
transformers, an ultralytics model name (``yolo11n-pose.pt``) by ultralytics, when the
machine is online. Local paths work everywhere.

Offline mode makes every path local-only and fails at once, with an error naming what is
missing, instead of waiting on the network:

* ``UPRM_OFFLINE=1`` — everything offline. :func:`configure_offline` then sets the
  libraries' own switches (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``, ``YOLO_OFFLINE``)
  with ``os.environ.setdefault``: a variable the user set is never overridden.
* ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1`` — Hugging Face only;
  ``YOLO_OFFLINE=1`` — ultralytics only.

Tests, CI and ``make demo`` run with ``UPRM_OFFLINE=1``.

Pickle safety does not depend on the mode: ``ULTRALYTICS_SAFE_LOAD=1`` is set by default
(ultralytics then loads ``.pt`` files with ``weights_only=True``), and UPRM's own loaders
always load weights-only or safetensors.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

__all__ = ["OFFLINE_ENV", "cache_dir", "configure_offline", "is_offline", "prepare_ultralytics"]

OFFLINE_ENV = "UPRM_OFFLINE"
_TRUE = {"1", "true", "yes", "on"}
_LIBRARY_SWITCHES = {
    "huggingface": ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"),
    "ultralytics": ("YOLO_OFFLINE",),
}


def _on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def is_offline(library: str | None = None) -> bool:
    """Whether ``library`` (``"huggingface"`` or ``"ultralytics"``; ``None`` = any) must
    stay off the network: ``UPRM_OFFLINE`` or the library's own switch is set."""
    if _on(OFFLINE_ENV):
        return True
    if library is None:
        return any(_on(v) for names in _LIBRARY_SWITCHES.values() for v in names)
    try:
        return any(_on(v) for v in _LIBRARY_SWITCHES[library])
    except KeyError:
        raise ValueError(f"unknown library {library!r}; one of {sorted(_LIBRARY_SWITCHES)}") from None


def cache_dir() -> Path:
    """UPRM's own cache and config directory (``$UPRM_CACHE``, else ``~/.cache/uprm``)."""
    return Path(os.environ.get("UPRM_CACHE") or Path.home() / ".cache" / "uprm").expanduser()


def configure_offline() -> None:
    """Apply ``UPRM_OFFLINE`` to the libraries' own switches (``setdefault``: the user's
    values win), and keep ultralytics' loading weights-only. Online, nothing else changes."""
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
    if _on(OFFLINE_ENV):
        for names in _LIBRARY_SWITCHES.values():
            for name in names:
                os.environ.setdefault(name, "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics"))


class _NoSettingsBanner(logging.Filter):
    """Drops ultralytics' settings banner: on a first run it logs "Creating new Ultralytics
    Settings v… file ✅" with three lines on ``yolo settings`` (and after an upgrade
    "Ultralytics settings updated…"), which says nothing to a user of UPRM, who never
    runs ``yolo``. Every other ultralytics message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not message.startswith(("Creating new Ultralytics Settings", "Ultralytics settings updated"))


def prepare_ultralytics() -> Path | None:
    """Call before importing ultralytics. Applies :func:`configure_offline` and silences
    ultralytics' settings banner; offline, it also puts the fonts ultralytics would
    download for plotting and for every ``train``/``val`` (``Arial.ttf``,
    ``Arial.Unicode.ttf``: matplotlib's DejaVuSans) in ultralytics' config directory, and
    returns that directory (``None`` online)."""
    configure_offline()
    logger = logging.getLogger("ultralytics")  # the logger ultralytics configures on import
    if not any(isinstance(f, _NoSettingsBanner) for f in logger.filters):
        logger.addFilter(_NoSettingsBanner())
    if not is_offline("ultralytics"):
        return None
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics"))
    target = Path(os.environ["YOLO_CONFIG_DIR"]).expanduser() / "Ultralytics"
    target.mkdir(parents=True, exist_ok=True)
    missing = [n for n in ("Arial.ttf", "Arial.Unicode.ttf") if not (target / n).exists()]
    if missing:
        try:
            import matplotlib

            font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        except ImportError:  # pragma: no cover - matplotlib comes with ultralytics
            font = None
        if font is not None and font.exists():
            for name in missing:
                tmp = target / f".{name}.tmp"
                shutil.copyfile(font, tmp)
                os.replace(tmp, target / name)
    return target
