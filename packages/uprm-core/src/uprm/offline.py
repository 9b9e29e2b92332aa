"""Keep UPRM and the libraries under it off the network.

No weights or data are ever downloaded: every backbone is loaded from a local path.
:func:`configure_offline` sets the switches the libraries read (without overriding
what the user set): ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` (a hub id would otherwise
retry for ~23 s), ``YOLO_OFFLINE`` and a project-owned ``YOLO_CONFIG_DIR`` (ultralytics
looks up DNS and writes settings at import), ``ULTRALYTICS_SAFE_LOAD`` (``weights_only``
loading of ``.pt`` files), and ``MPLCONFIGDIR``. :func:`prepare_ultralytics` also puts a
font where ultralytics would otherwise download ``Arial.ttf``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["cache_dir", "configure_offline", "prepare_ultralytics"]


def cache_dir() -> Path:
    """UPRM's own cache and config directory (``$UPRM_CACHE``, else ``~/.cache/uprm``)."""
    return Path(os.environ.get("UPRM_CACHE") or Path.home() / ".cache" / "uprm").expanduser()


def configure_offline() -> None:
    """Set the offline switches (``os.environ.setdefault``: the user's values win)."""
    base = cache_dir()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(base / "ultralytics"))
    os.environ.setdefault("MPLCONFIGDIR", str(base / "matplotlib"))


def prepare_ultralytics() -> Path:
    """Offline switches plus the fonts ultralytics downloads for plotting and for every
    ``train``/``val``: matplotlib's DejaVuSans is copied to ``Arial.ttf`` and
    ``Arial.Unicode.ttf`` in ultralytics' config directory. Call it before importing
    ultralytics. Returns that directory."""
    configure_offline()
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
