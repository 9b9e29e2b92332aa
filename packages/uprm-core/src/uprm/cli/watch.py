"""``uprm watch``: watch live cameras with a trained checkpoint and raise alerts."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from uprm.cli._options import detect_options


def _shard(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--shard K/N`` checked before anything loads: ``--shard 3/2: K must be between 1 and N``."""
    from uprm.watch.shards import parse_shard

    try:
        k, n = parse_shard(value)
    except ValueError as exc:
        raise click.UsageError(f"--shard {value}: {exc}", ctx) from None
    return f"{k}/{n}"


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        out[key] = value
    return out


@click.command("watch")
@click.argument("sources", nargs=-1, required=True)
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False),
              help="A trained UPRM checkpoint directory (`uprm train --out DIR`).")
@click.option("--alerts", type=click.Path(dir_okay=False), default=None,
              help="Append each event's open and close records to this JSONL file (flushed and fsynced).")
@click.option("--webhook", default=None, metavar="URL", help="POST each record (JSON) to URL; retried with back-off.")
@click.option("--clips", type=click.Path(file_okay=False), default=None,
              help="Save an MP4 of each event, with pre- and post-roll, in this folder.")
@click.option("--pre-roll", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds of video before an event's start in its clip.")
@click.option("--post-roll", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds of video after an event's end in its clip.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="An event opens when a window's P(Yes) is at or above this.")
@click.option("--cooldown", type=click.FloatRange(min=0), default=8.0, show_default=True,
              help="An event closes after P(Yes) stayed below the threshold for this many seconds.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Frames per second kept per camera (ring buffer and clips).")
@click.option("--realtime", is_flag=True,
              help="Read file sources at their own frame rate (default: as fast as inference takes their windows).")
@click.option("--format", "fmt", type=click.Choice(["text", "table", "json"]), default="text", show_default=True,
              help="text: a line per alert; table: a live view of the cameras; json: a JSON line per alert.")
@click.option("--max-runtime", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds (open events are closed and written).")
@click.option("--stop-file", type=click.Path(dir_okay=False), default=None,
              help="Stop when this file appears (as on SIGINT/SIGTERM).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write the final report (per camera frames, windows, skipped, reconnects; latency; CPU) as JSON.")
@click.option("--status-file", type=click.Path(dir_okay=False), default=None,
              help="Write the live status (per camera state, reconnects, drops, ring buffer, last error; the webhook's "
                   "counts and queue; the clips; threads) as JSON to this file every 2 s, atomically, for a "
                   "supervisor or another process; a last time at exit.")
@click.option("--open-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds to wait for a live source to open.")
@click.option("--read-timeout", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Seconds without data before a live source counts as dropped.")
@click.option("--reconnect-max", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Longest back-off between reconnects (doubling from 0.5 s).")
@click.option("--max-reconnects", type=click.IntRange(min=0), default=None,
              help="Give a camera up after this many failed reconnects in a row [default: never].")
@click.option("--av-option", "av_option", multiple=True, metavar="KEY=VALUE",
              help="An FFmpeg option for every source, e.g. rtsp_transport=udp (used as given; without it an "
                   "RTSP camera is opened over TCP, then UDP when the server refuses TCP). Repeatable.")
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True,
              help="Model replicas on this host, each running the windows of its share of the cameras (camera i "
                   "goes to replica i mod N): one per GPU, or on CPUs the torch threads split between them.")
@click.option("--shard", default="1/1", show_default=True, metavar="K/N", callback=_shard,
              help="Watch only the K-th of N shares of the camera list, so N hosts (e.g. a Kubernetes StatefulSet's "
                   "pods) watch one list together: camera i of the list (1-based) is in share (i-1) mod N + 1. Give "
                   "every host the same list in the same order.")
@click.option("--host-name", default=None, envvar="UPRM_HOST_NAME", show_envvar=True,
              help="This host's name in every alert record (with its shard) [default: the machine's host name].")
@detect_options(files=False, stride=2.0, batch_size=8, max_side=512)
@click.option("--quiet", "-q", is_flag=True, help="Log only warnings and errors.")
def cli(sources: tuple[str, ...], checkpoint: str, fmt: str, max_runtime: float | None, stop_file: str | None,
        report_path: str | None, status_file: str | None, av_option: tuple[str, ...], detect: dict[str, Any],
        quiet: bool, **options: Any) -> None:
    """Watch live cameras and raise an alert for each threat, located in time and explained.

    SOURCE is an RTSP, HTTP(S) or UDP URL, a video file or a capture device
    (/dev/video0, avfoundation:0, dshow:video=NAME), optionally named NAME=SOURCE
    (default cam1, cam2, ...). Each camera is read by its own thread into a bounded
    ring buffer; every --stride seconds its last --window seconds go through the
    experts and the model, the windows of all cameras batched together. An event opens
    when P(Yes) reaches --threshold and closes once it has stayed below for --cooldown
    seconds; each event is written when it opens and when it closes (--alerts JSONL,
    --webhook POST, --clips MP4 with pre/post-roll). A dropped stream reconnects with
    back-off; when inference is slower than real time windows are skipped and counted;
    SIGINT or SIGTERM closes the open events and flushes the alerts before exit.

    An RTSP camera is opened over TCP, then over UDP when the server refuses TCP
    (--av-option rtsp_transport=udp|tcp forces one); the transport that worked is
    reused on reconnects and shown in the status. --replicas N runs N models on this
    host, the cameras shared between them; --shard K/N spreads one camera list over N
    hosts. Every alert record names its host and shard.

    \b
    uprm watch rtsp://cam1/stream rtsp://cam2/stream --checkpoint runs/uprm \\
        --alerts alerts.jsonl --webhook https://hooks.example/uprm --clips clips
    uprm watch $(cat cameras.txt) --checkpoint runs/uprm --replicas 2 \\
        --shard 2/4 --alerts alerts.jsonl          # the 2nd of 4 hosts
    """
    from uprm.errors import UPRMError
    from uprm.watch.settings import WatchSettings
    from uprm.watch.watcher import Watcher

    _logging(quiet or fmt == "table")
    try:
        settings = WatchSettings.from_options(**options, **detect, av_options=_pairs(av_option, "--av-option"))
        printer = _Printer(fmt, status_file)
        watcher = Watcher(list(sources), checkpoint, settings, on_alert=printer.alert,
                          on_status=printer.status if fmt == "table" or status_file else None,
                          status_every=min(printer.table_every, STATUS_FILE_EVERY if status_file else 5.0))
    except (UPRMError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    _handle_signals(watcher)
    stop = (lambda: Path(stop_file).exists()) if stop_file else None
    try:
        report = watcher.run(stop=stop, max_seconds=max_runtime)
    except UPRMError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        printer.write_status(watcher.status())
    if report_path:
        from uprm.utils import atomic_write_json

        atomic_write_json(report_path, report.to_dict())
    printer.report(report)
    if any(c["state"] == "failed" for c in report.cameras.values()):
        raise SystemExit(1)


def _logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("uprm.watch")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _handle_signals(watcher: Any) -> None:
    """The first SIGINT/SIGTERM stops the watcher cleanly; a second SIGINT interrupts."""

    def stop(signum: int, frame: Any) -> None:
        logging.getLogger("uprm.watch").warning("%s: closing open events and flushing alerts",
                                                signal.Signals(signum).name)
        watcher.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


#: seconds between two writes of ``--status-file``
STATUS_FILE_EVERY = 2.0


class _Printer:
    """What ``--format`` prints on stdout, and the ``--status-file``."""

    def __init__(self, fmt: str, status_file: str | None = None) -> None:
        from uprm.utils import Throttle

        self.fmt = fmt
        self.tty = sys.stdout.isatty()
        self.status_file = status_file
        self.table_every = 1.0 if self.tty else 5.0
        self._table = Throttle(self.table_every)

    def alert(self, record: dict[str, Any]) -> None:
        if self.fmt == "json":
            click.echo(json.dumps(record))
        elif self.fmt == "text":
            from uprm.watch.table import format_clock

            extra = f"  ({record['reason']})" if record["type"] == "close" else ""
            click.echo(f"{record['type'].upper():<5}  {record['id']}  {format_clock(record['start'])}-"
                       f"{format_clock(record['end'])}  score {record['score']:.2f}  {record['cause']}{extra}")

    def status(self, status: dict[str, Any]) -> None:
        self.write_status(status)
        if self.fmt != "table" or not self._table.ready():
            return
        from uprm.watch.table import render_status

        text = render_status(status)
        click.echo(("\x1b[H\x1b[2J" + text) if self.tty else text + "\n")

    def write_status(self, status: dict[str, Any]) -> None:
        """The status as JSON in ``--status-file`` (atomically: a reader never sees half a
        file); a failed write is logged, and the watcher goes on."""
        if not self.status_file:
            return
        from uprm.utils import atomic_write_json

        try:
            atomic_write_json(self.status_file, {**status, "written_at": time.time()})
        except OSError as exc:
            logging.getLogger("uprm.watch").warning("status file %s: cannot write it (%s)", self.status_file,
                                                    exc.strerror or exc)

    def report(self, report: Any) -> None:
        if self.fmt == "json":
            click.echo(json.dumps({"type": "report", **report.to_dict()}))
            return
        for name, cam in report.cameras.items():
            over = f" (RTSP over {cam['transport'].upper()})" if cam.get("transport") else ""
            click.echo(f"{name}: {cam['state']}{over}, {cam['stream_seconds']:.1f} s of video, {cam['windows']} windows, "
                       f"{cam['skipped']} skipped, {cam['incomplete']} incomplete, {cam['reconnects']} reconnects, "
                       f"{cam['events']} events", err=self.fmt == "table")
        per = report.cpu_per_video_second
        click.echo(f"stopped by {report.stopped_by} after {report.seconds:.1f} s; {report.alerts} alert records; "
                   f"latency median {report.latency['median']} s; CPU "
                   f"{'-' if per is None else f'{per:.3f}'} s per camera-second", err=self.fmt == "table")
