"""``uprm detect``: find, locate and explain threats in videos of any length."""

from __future__ import annotations

import json

import click

from uprm.cli._options import detect_options


@click.command("detect")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False),
              help="A trained UPRM checkpoint directory (`uprm train --out DIR`).")
@click.option("--out", "out_dir", default="detections", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: <video_id>.json, <video_id>.png, <video_id>/<n>.png, results.json.")
@detect_options()
@click.option("--overwrite", is_flag=True, help="Redo videos already finished with these settings.")
@click.option("--format", "fmt", type=click.Choice(["text", "table", "json"]), default="text", show_default=True,
              help="What to print: a line per video, a table of the segments, or the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="Run as a Ray job: alone, start or join a Ray on this machine; with an ADDRESS, that cluster "
                   "(auto, HOST:PORT, ray://HOST:10001). The checkpoint, videos and sidecar folder must be at the "
                   "same paths on every node. Needs uprm-core[ray].")
@click.option("--replicas", type=click.IntRange(min=1), default=None,
              help="With --ray: model replicas [default: one per GPU of the cluster, else 1 with the CPUs shared "
                   "out as --threads].")
@click.option("--chunk-windows", type=click.IntRange(min=1), default=None,
              help="With --ray: windows per unit of work (rounded up to whole batches) [default: 16].")
def cli(videos: tuple[str, ...], checkpoint: str, out_dir: str, detect: dict, overwrite: bool, fmt: str,
        quiet: bool, ray_address: str | None, replicas: int | None, chunk_windows: int | None) -> None:
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
    On Ray (`--ray [ADDRESS]`), chunks of windows go to whichever model replica is
    free (one per GPU, or --replicas N on CPUs), a replica that dies has its chunk
    run by another, and this process writes the same files as a local run.
    """
    from uprm.detection import detect_files
    from uprm.errors import UPRMError
    from uprm.options import DetectOptions

    if ray_address is None and (replicas is not None or chunk_windows is not None):
        raise click.UsageError("--replicas and --chunk-windows are options of a Ray job: add --ray [ADDRESS]")
    ray = None if ray_address is None else (True if ray_address == "" else ray_address)
    try:
        report = detect_files(list(videos), checkpoint, out_dir, options=DetectOptions(**detect),
                              overwrite=overwrite, progress=not quiet, ray=ray, replicas=replicas,
                              chunk_windows=chunk_windows)
    except (UPRMError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    _print(report, out_dir, fmt)
    if report.ray is not None and fmt != "json":
        stats = report.ray
        click.echo(f"ray: {stats['replicas']}; {stats['chunks']} chunks, {stats['deaths']} replica death(s), "
                   f"{stats.get('restarts', 0)} restart(s), {stats['retried_chunks']} chunk(s) retried")
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
