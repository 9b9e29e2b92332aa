"""The example scripts of examples/ run against the tiny model: building UCF-Crime and
CUVA instructions from annotation files (the synthetic world written in those
formats), caching features and training (examples/train_from_annotations.py)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

import uprm

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN_EXAMPLE = EXAMPLES / "train_from_annotations.py"

# synthetic categories -> CUVA class codes (uprm.data.CUVA_CATEGORIES)
CUVA_CODES = {"Fighting": "1", "Assault": "1", "Vandalism": "4", "RoadAccidents": "5", "Stealing": "7", "Arson": "9"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from uprm.synthetic import generate_world

    root = tmp_path_factory.mktemp("world")
    generate_world(root, 6, seed=3, progress=False, size=32, min_duration=6.0, max_duration=6.0)
    return root


def _run(argv: list[str], monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", [str(TRAIN_EXAMPLE), *argv])
    runpy.run_path(str(TRAIN_EXAMPLE), run_name="__main__")
    return capsys.readouterr().out


def _entries(cache: Path) -> dict[str, int]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*.safetensors")}


def _experts() -> list[str]:
    return ["coarse"] + [n for n in ("pose",) if n in uprm.available_experts()]


@pytest.mark.slow
def test_train_from_ucf_crime_annotations(world, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ucf"
    experts = _experts()
    text = _run(["--ucf-crime", str(world / "annotations" / "ucf_crime.txt"), "--videos", str(world / "videos"),
                 "--fps", "8", "--causes", str(world / "annotations" / "causes.json"), "--keypoints",
                 str(world / "keypoints"), "--experts", ",".join(experts), "--num-frames", "2", "--steps", "2",
                 "--out", str(out)], monkeypatch, capsys)
    records = [r for f in (out / "instructions").glob("ucf_crime_*.json") for r in json.loads(f.read_text())]
    assert {r["video_id"] for r in records} == {p.stem for p in (world / "videos").glob("*.mp4")}
    assert {r["task"] for r in records} == {"identify", "locate", "attribute"}  # causes came from causes.json
    assert {r["split"] for r in records} != {"test"}  # UCF-Crime's own split (all test) is not used
    assert "features of" in text and "trained:" in text
    run = out / "run"
    model = uprm.UPRMModel.from_pretrained(run)
    assert list(model.expert_names) == [*sorted(e for e in experts if e != "coarse"), "coarse"]
    assert len((run / "log.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_train_from_cuva_annotations_reads_the_cache_it_filled(world, tmp_path, monkeypatch, capsys):
    openpyxl = pytest.importorskip("openpyxl")
    summary = json.loads((world / "world.json").read_text())
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["video_id", "X1", "X2 - reason", "X2 - result", "X3 - moment", "X3 - description"])
    threats = [v for v in summary["videos"] if v["segments"]]
    for v in threats:  # CUVA holds threats only, moments as [MMSS,MMSS]
        moments = "".join(f"[{int(s) // 60:02d}{int(s) % 60:02d},{int(e) // 60:02d}{int(e) % 60:02d}]"
                          for s, e in v["segments"])
        sheet.append([f"{v['video_id']}.mp4", f"[{CUVA_CODES[v['category']]},3]",
                      "".join(f"[{c}]" for c in v["causes"]), "[someone gets hurt]", moments, "[a threat]"])
    book.save(tmp_path / "cuva.xlsx")
    out = tmp_path / "cuva"
    text = _run(["--cuva", str(tmp_path / "cuva.xlsx"), "--videos", str(world / "videos"), "--num-frames", "2",
                 "--steps", "2", "--out", str(out)], monkeypatch, capsys)
    records = [r for f in (out / "instructions").glob("cuva_*.json") for r in json.loads(f.read_text())]
    assert {r["video_id"] for r in records} == {v["video_id"] for v in threats}
    assert any(r["task"] == "attribute" and r["conversations"][1]["value"].startswith("The threat is attributed to")
               for r in records)
    assert "trained:" in text
    entries = _entries(out / "cache")
    started = (out / "run" / "train_config.json").stat().st_mtime_ns
    assert entries and all(t < started for t in entries.values())  # filled before training, not after (stale)
