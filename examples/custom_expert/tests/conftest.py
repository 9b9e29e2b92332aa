import sys
from pathlib import Path

try:
    import uprm_expert_motion  # noqa: F401  (installed: test the installed copy)
except ImportError:  # running from the source tree without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
