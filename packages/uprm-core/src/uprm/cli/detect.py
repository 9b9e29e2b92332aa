"""``uprm detect``: find, locate and explain threats in videos of any length."""

from __future__ import annotations

import json

import click


@click.command("detect")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False),
              help="A trained UPRM checkpoint directory (`uprm train --out DIR`).")
@click.option("--out", "out_dir", default="detections", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: <video_id>.json, <video_id>.png, <video_id>/<n>.png, results.json.")
@click.option("--window", type=click.FloatRange(min=0, min_open=True), default=8.0, show_default=True,
              help="Window length in seconds (each window samples the model's number of frames uniformly).")
@click.option("--stride", type=click.FloatRange(min=0, min_open=True), default=4.0, show_default=True,
              help="Seconds between window starts (< window: overlapping windows share their frames).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Windows per batch through perception, the UPE block and the LLM.")
@click.option("--merge-gap", type=click.FloatRange(min=0), default=None,
              help="Merge threat segments at most this many seconds apart [default: window / frames].")
@click.option("--sidecar-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="ROOT with ROOT/keypoints/<video_id>.json and ROOT/scene_graphs/<video_id>.json, for experts "
                   "that read poses or scene graphs from files (the synthetic world's layout; docs/formats.md).")
@click.option("--expert-option", "expert_option", multiple=True, metavar="NAME.KEY=VALUE",
              help="Override a perception option of the checkpoint's experts, e.g. "
                   "pose.weights=/models/yolo11n-pose.pt (VALUE read as JSON when it parses). Repeatable.")
@click.option("--max-side", type=click.IntRange(min=16), default=None,
              help="Downscale decoded frames so the longer side is at most this many pixels.")
@click.option("--device", default="auto", show_default=True,
              help="torch device (auto: each torchrun process's own GPU, else cuda if available, else cpu).")
@click.option("--overwrite", is_flag=True, help="Redo videos already finished with these settings.")
@click.option("--no-evidence", is_flag=True, help="Do not draw the per-segment evidence sheets.")
@click.option("--format", "fmt", type=click.Choice(["text", "table", "json"]), default="text", show_default=True,
              help="What to print: a line per video, a table of the segments, or the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def cli(videos: tuple[str, ...], checkpoint: str, out_dir: str, window: float, stride: float, batch_size: int,
        merge_gap: float | None, sidecar_dir: str | None, expert_option: tuple[str, ...], max_side: int | None,
        device: str, overwrite: bool, no_evidence: bool, fmt: str, quiet: bool) -> None:
    """Detect threats in VIDEO files (or folders of them) of any length.

    Windows of --window seconds every --stride seconds slide over each video; each
    frame is decoded once and shared by every expert and every window that samples it;
    windows go in batches through the experts, the router and the language model; the
    windows answered "yes" give segments (absolute seconds) that merge when they
    overlap or touch. Per video: OUT/<video_id>.json (segments with start, end, score,
    cause, expert_weights), a timeline OUT/<video_id>.png and an evidence sheet per
    segment OUT/<video_id>/<n>.png (key frames with the skeletons, objects and
    relations the experts saw, and the router's weights); OUT/results.json holds every
    video's segments in the ActivityNet results layout (`uprm eval --predictions`).

    The checkpoint's experts run as configured: experts that read poses or scene graphs
    from files need --sidecar-dir (or a model of their own via --expert-option).
    Finished videos are skipped on a rerun (--overwrite redoes them); a bad file is
    reported and the others go on; the exit status is 1 if any failed. Several
    processes: `torchrun --nproc_per_node N -m uprm detect ...` splits the files.
    """
    from uprm.detection import detect_files
    from uprm.errors import UPRMError
    from uprm.plugins.factory import parse_expert_options

    try:
        options = parse_expert_options(expert_option)
        report = detect_files(list(videos), checkpoint, out_dir, window=window, stride=stride, batch_size=batch_size,
                              merge_gap=merge_gap, sidecar_dir=sidecar_dir, max_side=max_side,
                              expert_options=options or None, device=device, overwrite=overwrite,
                              progress=not quiet, evidence=not no_evidence)
    except (UPRMError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    _print(report, out_dir, fmt)
    _print_failures(report)
    if report.failed:
        click.echo(f"[process {report.process}] {len(report.failed)} video(s) failed", err=True)
        raise SystemExit(1)


def _print_failures(report) -> None:
    """A ``failed:`` line per bad video; under ``uprm --debug`` each with its traceback."""
    import traceback

    from uprm.cli._errors import debug_enabled

    debug = debug_enabled()
    for n, (video, error) in enumerate(report.failed):
        if debug and n < len(report.errors):
            exc = report.errors[n]
            click.echo("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip(), err=True)
        click.echo(f"failed: {video}: {error}", err=True)


def _print(report, out_dir: str, fmt: str) -> None:
    from uprm.detection import format_table, read_video_json

    if report.results is None:  # not process 0: its videos are printed by process 0
        click.echo(f"[process {report.process}] {len(report.done)} detected, {len(report.skipped)} already done, "
                   f"{len(report.failed)} failed")
        return
    records = [r for r in (read_video_json(out_dir, vid) for vid in report.videos) if r is not None]
    if fmt == "json":
        click.echo(json.dumps({**report.as_dict(), "videos": [_brief(r) for r in records]}, indent=2))
        return
    if fmt == "table":
        click.echo(format_table(records))
    else:
        for rec in records:
            stats = rec.get("stats", {})
            click.echo(f"{rec['video_id']}: {len(rec['segments'])} segment(s) in {rec['duration']:.1f} s, "
                       f"{stats.get('windows', '?')} windows at {stats.get('windows_per_s', '?')} windows/s")
    click.echo(f"[process {report.process}] {len(report.done)} detected, {len(report.skipped)} already done, "
               f"{len(report.failed)} failed in {report.seconds:.1f} s -> {report.results}")


def _brief(record: dict) -> dict:
    return {k: record.get(k) for k in ("video", "video_id", "duration", "segments")}
