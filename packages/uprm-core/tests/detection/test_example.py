"""examples/detect_video.py runs against the trained tiny checkpoint."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "detect_video.py"


def test_the_detect_example_runs(detector, threat_data, tmp_path, monkeypatch, capsys):
    video = threat_data / "videos" / "street.mp4"
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), str(video), "--checkpoint", str(detector), "--sidecar-dir",
                                      str(threat_data), "--out", str(tmp_path / "out")])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "1 threat segment(s)" in out and "0.0 -    16.0 s" in out and "a person grabbing a bag" in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"street.json", "street.png", "street", "results.json"}
