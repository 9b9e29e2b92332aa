"""Test-session set-up shared by every package's tests: no network, no writes outside
the repository, no plugin switches inherited from the shell."""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
_CACHE = _ROOT / ".cache" / "test"

# Before anything imports transformers, huggingface_hub, ultralytics or matplotlib.
os.environ["UPRM_OFFLINE"] = "1"  # UPRM and every library under it: local files only
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["YOLO_OFFLINE"] = "1"
os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
os.environ["UPRM_CACHE"] = str(_CACHE / "uprm")
os.environ["YOLO_CONFIG_DIR"] = str(_CACHE / "ultralytics")
os.environ["MPLCONFIGDIR"] = str(_CACHE / "matplotlib")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _var in ("UPRM_LOAD_PLUGINS", "UPRM_DISABLE_PLUGINS"):
    os.environ.pop(_var, None)
