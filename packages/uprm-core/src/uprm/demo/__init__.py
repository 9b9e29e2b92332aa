"""``uprm demo`` (``make demo``): the whole path on a fresh machine, offline, in minutes.

:func:`run_demo` renders a small synthetic surveillance world, cuts its training videos
into the instruction builder's windows, caches every expert's features once, trains a
tiny coarse-only Video-LLaVA (the paper's "w/o UPE") and a tiny UPRM (every installed
expert, trade-off router) on the training split, runs ``uprm detect`` with each on the
held-out test videos, and scores them — with an untrained UPRM and an always-yes
detector as the floor — with the paper's metrics (FNR, F2, mAP@tIoU, SB, ROUGE-L,
BLEU-4), each of FNR, F2 and the mAP average with its 95 % interval (a bootstrap over the
test videos), and compares UPRM with every other row paired by test video
(:mod:`uprm.demo.compare`: "beats" only where the difference's interval excludes zero),
printing the table and the verdicts and writing ``OUT/results.json``:

>>> from uprm.demo import run_demo
>>> document = run_demo("demo", seed=0)                                   # doctest: +SKIP
>>> [(r["model"], r["f2"], r["map"]["average"]) for r in document["rows"]]  # doctest: +SKIP

What is written::

    OUT/results.json                  {"rows": [{"model", "fnr", "f2", "map", "rouge_l", "bleu4",
                                       "sbert", "ci": {"fnr", "f2", "map"}: [low, high], ...}],
                                       "comparisons": [{"a": "uprm", "b", "videos",
                                       "metrics": {"fnr" | "f2" | "map": {"a", "b", "delta", "ci", "p",
                                       "p_holm"}}, "verdicts": {...}}], "bootstrap",
                                       "seconds", "stages", "settings", "machine", ...}
    OUT/world/                        the synthetic world (videos, sidecars, annotations)
    OUT/data/demo_{train,test}.json   the windowed instructions
    OUT/cache/                        the feature cache (both models read it)
    OUT/runs/{coarse,uprm}/           the trained models (UPRMModel.from_pretrained)
    OUT/detections/<model>/           uprm detect's output: <video>.json, <video>.png (timeline), results.json
    OUT/eval/<model>/                 predictions.json, answers.jsonl, report.json / .md / .csv,
                                       videos.json (the per-video units the comparisons read)

The sizes are :data:`DEFAULT` (:data:`QUICK` for the smoke test); how they were chosen
is in ``benchmarks/demo_sizing.md``.
"""

from __future__ import annotations

from uprm.demo.compare import compare_models, verdict
from uprm.demo.detect import always_yes
from uprm.demo.pipeline import Reporter, run_demo
from uprm.demo.scoring import ROW_KEYS, explanations
from uprm.demo.settings import DEFAULT, QUICK, DemoSettings
from uprm.demo.table import format_table

__all__ = ["DEFAULT", "QUICK", "ROW_KEYS", "DemoSettings", "Reporter", "always_yes", "compare_models", "explanations",
           "format_table", "run_demo", "verdict"]
