"""The watcher: reader threads per camera, one inference loop, events, alerts, clips.

::

    camera 1 ─ reader thread ─ ring buffer ─┐
    camera 2 ─ reader thread ─ ring buffer ─┼─ inference loop: due windows of all cameras,
    ...                                     │  batched through the experts and the LLM
                                            ▼
                          events per camera (threshold / cool-down hysteresis)
                                            ▼
                 alerts.jsonl (append + fsync) · webhook thread · clip writers

The inference loop runs in the thread that calls :meth:`Watcher.run` (the main thread
for ``uprm watch``), so a signal handler only has to set the stop event.

With ``replicas`` N > 1 there are N model replicas, each with its own inference loop in
its own thread over its share of the cameras (camera i of this host goes to replica
i mod N; docs/design.md §9d says why cameras, not windows, are spread); the calling
thread then only watches for the stop, the deadline and the end, and shows the status.
With ``shard`` K/N only the K-th of N shares of the camera list is watched
(:mod:`~uprm.watch.shards`).
"""

from __future__ import annotations

import copy
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uprm.utils import Throttle
from uprm.watch.alerts import AlertLog, WebhookSender, alert_record
from uprm.watch.clips import ClipRecorder
from uprm.watch.events import Event, EventTracker, WindowScore
from uprm.watch.frames import Frame
from uprm.watch.infer import answer_windows, threat_span
from uprm.watch.reader import Camera, CameraReader
from uprm.watch.schedule import GridView, WindowClock
from uprm.watch.settings import WatchError, WatchSettings
from uprm.watch.shards import host_name, select_shard
from uprm.watch.sources import Source, parse_sources

__all__ = ["WatchReport", "Watcher", "watch"]

log = logging.getLogger("uprm.watch")

AlertCallback = Callable[[dict[str, Any]], None]
StopHook = threading.Event | Callable[[], bool] | None


@dataclass
class _Cam:
    """A camera with what the inference loop keeps for it."""

    camera: Camera
    reader: CameraReader
    grid: GridView
    tracker: EventTracker
    last: WindowScore | None = None
    recorder: ClipRecorder | None = None
    #: the "windows skipped" warning, at most every 10 s (the first at once)
    skip_warning: Throttle = field(default_factory=lambda: Throttle(10.0))
    lane: int = 0  # the model replica that runs its windows


@dataclass
class _Lane:
    """A model replica and the cameras whose windows it runs (its inference loop)."""

    index: int
    model: Any
    perception: Any
    cams: list[_Cam]
    wake: threading.Event
    timings: dict[str, float]
    error: BaseException | None = None


@dataclass
class _Due:
    cam: _Cam
    m: int
    frames: list[Frame]


@dataclass
class WatchReport:
    """What a watch did.

    Attributes:
        stopped_by: ``"stop"`` (signal or hook), ``"max_seconds"``, ``"end of streams"``.
        seconds: wall-clock seconds watched; ``cpu_seconds``: CPU time of the process
            over them (all threads).
        cameras: per camera: source, state, stream seconds, frames, windows, skipped
            (inference too slow), outage (sampling time in a stream outage), incomplete
            (a sampling point without a frame near it), drops, reconnects, events,
            decoding CPU, ...
        events: the close record of every event.
        alerts: records written (opens and closes).
        latency: seconds from the arrival of the newest frame of an event's opening
            window to its open record being written (``count``, ``median``, ``max``).
        window_lag: the same for every window, to its answer.
        webhook: the sender's counters (``None`` without a webhook).
        clips: the clip files written.
        settings: the settings, plus the stride in effect and the model's frames per window.
        timings: seconds per stage (``extract:<expert>``, ``answer``).
    """

    stopped_by: str
    seconds: float
    cpu_seconds: float
    cameras: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    alerts: int
    latency: dict[str, Any]
    window_lag: dict[str, Any]
    webhook: dict[str, int] | None
    clips: list[str]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def video_seconds(self) -> float:
        """Seconds of video watched, summed over the cameras."""
        return sum(c["stream_seconds"] for c in self.cameras.values())

    @property
    def cpu_per_video_second(self) -> float | None:
        """CPU seconds per camera per second of video."""
        return self.cpu_seconds / self.video_seconds if self.video_seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["video_seconds"] = round(self.video_seconds, 3)
        per = self.cpu_per_video_second
        out["cpu_per_video_second"] = None if per is None else round(per, 4)
        return out


def _summary(values: Iterable[float]) -> dict[str, Any]:
    values = [v for v in values if v is not None]
    if not values:
        return {"count": 0, "median": None, "max": None}
    return {"count": len(values), "median": round(statistics.median(values), 4), "max": round(max(values), 4)}


def _load(model_or_checkpoint: Any, settings: WatchSettings) -> Any:
    from uprm.modeling.loading import load_model

    return load_model(model_or_checkpoint, device=settings.device, threads=settings.threads,
                      expert_options=settings.expert_options or None).model


def _shard_sources(sources: list[Source], settings: WatchSettings) -> list[Source]:
    """This host's share of ``sources`` (``settings.shard``; :mod:`~uprm.watch.shards`);
    a :class:`WatchError` when the share is empty."""
    k, n = settings.shard_parts
    if n == 1:
        return sources
    mine = select_shard(sources, k, n)
    if not mine:
        raise WatchError(f"shard {k}/{n} has no camera: the list has {len(sources)} (shard K takes cameras "
                         f"K, K+N, K+2N, ... of the list; give at least N cameras or fewer shards)")
    log.info("shard %d/%d: %d of %d cameras (%s)", k, n, len(mine), len(sources), ", ".join(s.name for s in mine))
    return mine


def _replica_devices(device: str, n: int) -> list[str]:
    """Where each of ``n`` replicas runs: one GPU each, from the first replica's (round
    robin when there are fewer GPUs than replicas); on the CPU all on the CPU."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return [device] * n
    count = torch.cuda.device_count()
    first = int(device.partition(":")[2] or torch.cuda.current_device())
    if n > count:
        log.warning("%d replicas on %d GPU(s): some GPUs hold more than one", n, count)
    return [f"cuda:{(first + i) % count}" for i in range(n)]


def _replicas(model_or_checkpoint: Any, settings: WatchSettings, cameras: int) -> list[Any]:
    """``settings.replicas`` models (at most one per camera): the first loaded as one
    watcher loads it, the others loaded again from the checkpoint (or copies of a given
    model), each on its own device (:func:`_replica_devices`). On the CPU the torch
    threads (``threads``, else torch's default) are split between the replicas: they run
    in threads of this process."""
    n = min(settings.replicas, cameras)
    if n < settings.replicas:
        log.warning("%d replicas asked for %d camera(s): %d replicas (a camera runs on one replica)",
                    settings.replicas, cameras, n)
    if n == 1:
        return [_load(model_or_checkpoint, settings)]
    import torch

    total = settings.threads or torch.get_num_threads()
    first = _load(model_or_checkpoint, settings.model_copy(update={"threads": max(1, total // n)}))
    devices = _replica_devices(str(first.device), n)
    models = [first.to(devices[0])]
    for device in devices[1:]:
        if isinstance(model_or_checkpoint, (str, Path)):
            models.append(_load(model_or_checkpoint, settings.model_copy(update={"device": device, "threads": None})))
        else:
            models.append(copy.deepcopy(first).to(device).eval())
    log.info("%d model replicas on %s (%d torch threads each on the CPU)", n, ", ".join(devices), max(1, total // n))
    return models


def _check_outputs(settings: WatchSettings) -> None:
    """The alerts file and the clips folder can be written (their folders are made);
    else a :class:`WatchError` naming the setting and the path."""
    targets = [("alerts", settings.alerts, False), ("clips", settings.clips, True)]
    for name, value, is_folder in targets:
        if not value:
            continue
        path = Path(value)
        if not is_folder and path.is_dir():
            raise WatchError(f"{name} {path}: is a folder; give a file to append the alert records to")
        try:
            (path if is_folder else path.parent).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            what = "a folder for the event clips" if is_folder else "the folder of the alerts file"
            raise WatchError(f"{name} {path}: cannot make {what} ({exc.strerror or exc}: {exc.filename})") from None


class Watcher:
    """Watches cameras with a UPRM model (see the module doc and docs/watch.md).

    Args:
        sources: ``[NAME=]SOURCE`` strings or :class:`~uprm.watch.sources.Source` objects.
        model_or_checkpoint: a :class:`~uprm.UPRMModel` or a checkpoint directory.
        settings: :class:`~uprm.watch.settings.WatchSettings`.
        on_alert: called with each record (open or close) after it is written (one call at a
            time; from a replica's thread when ``settings.replicas`` > 1).
        on_frame: called by the reader threads with ``(camera, frame)`` for each buffered frame.
        on_status: called every ``status_every`` seconds with :meth:`status`.
    """

    def __init__(self, sources: Sequence[str | Source], model_or_checkpoint: Any, settings: WatchSettings, *,
                 on_alert: AlertCallback | None = None, on_frame: Callable[[str, Frame], None] | None = None,
                 on_status: Callable[[dict[str, Any]], None] | None = None, status_every: float = 1.0) -> None:
        from uprm.detection import Perception

        self.settings = settings
        self.taxonomy = settings.site_taxonomy()  # the alerts' categories and severities
        self.host, self.shard = host_name(settings.host_name), settings.shard
        self.sources = _shard_sources(parse_sources(sources), settings)
        _check_outputs(settings)  # before the model loads: a bad path fails at once
        models = _replicas(model_or_checkpoint, settings, len(self.sources))
        self.model = models[0]
        self.num_frames = int(self.model.config.num_frames)
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.lanes = [_Lane(i, m, None, [], self.wake if len(models) == 1 else threading.Event(), {})
                      for i, m in enumerate(models)]
        for lane in self.lanes:
            lane.perception = Perception(lane.model.block.experts, share=True, timings=lane.timings)
        self.cams = [self._camera(source, on_frame, self.lanes[i % len(self.lanes)])
                     for i, source in enumerate(self.sources)]
        self.tolerance = settings.gap_tolerance or max(settings.window / self.num_frames, 1.0)
        self.timings = self.lanes[0].timings
        self.perception = self.lanes[0].perception
        self._emit_lock = threading.RLock()  # the replicas' loops write alerts concurrently
        self.on_alert, self.on_status, self.status_every = on_alert, on_status, float(status_every)
        try:
            self.alert_log = AlertLog(settings.alerts) if settings.alerts else None
        except OSError as exc:
            raise WatchError(f"alerts {settings.alerts}: cannot be opened for appending ({exc.strerror or exc})") \
                from None
        self.webhook = None
        if settings.webhook:
            self.webhook = WebhookSender(settings.webhook, settings.webhook_queue, settings.webhook_retries,
                                         settings.webhook_backoff, settings.webhook_timeout)
        self.recent: deque[dict[str, Any]] = deque(maxlen=20)
        self.closed: list[dict[str, Any]] = []
        self.latencies: list[float] = []
        self.recorders: list[tuple[Camera, ClipRecorder]] = []  # the clips being recorded or encoded
        #: the clips finished (their recorders let go: a recorder kept ~8 KB per event for good)
        self.clips_written: list[str] = []
        self.clips_failed = 0
        self.clip_error: str | None = None
        self.alerts_written = 0
        self._started = time.monotonic()
        self._status_throttle = Throttle(self.status_every)

    def _camera(self, source: Source, on_frame: Callable[[str, Frame], None] | None, lane: _Lane) -> _Cam:
        s = self.settings
        clock = WindowClock(s.window, s.stride, self.num_frames)
        camera = Camera(source, s, clock, lane.wake)
        grid = GridView(source.name, clock.interval, self.num_frames, {"source": source.describe()})
        cam = _Cam(camera, CameraReader(camera, self.stop_event, on_frame), grid,
                   EventTracker(source.name, s.threshold, s.cooldown), lane=lane.index)
        lane.cams.append(cam)
        return cam

    # ------------------------------------------------------------------ running
    def stop(self) -> None:
        """Ask the watcher to stop (thread- and signal-safe): open events close, alerts
        are flushed, then :meth:`run` returns."""
        self.stop_event.set()
        self._wake_all()

    def _wake_all(self) -> None:
        self.wake.set()
        for lane in self.lanes:
            lane.wake.set()

    def run(self, stop: StopHook = None, max_seconds: float | None = None) -> WatchReport:
        """Watch until ``stop`` (an event, or a callable returning true), ``max_seconds``
        or the end of every source (files), then close open events and return the report."""
        self._started = time.monotonic()
        cpu0 = time.process_time()
        for c in self.cams:
            c.reader.start()
        reason = "error"
        try:
            reason = self._loop(_stop_check(stop), max_seconds)
        finally:
            self._shutdown(reason)
        return self.report(reason, time.monotonic() - self._started, time.process_time() - cpu0)

    def _loop(self, should_stop: Callable[[], bool], max_seconds: float | None) -> str:
        deadline = None if max_seconds is None else self._started + float(max_seconds)

        def stop_reason() -> str | None:
            if self.stop_event.is_set() or should_stop():
                return "stop"
            if deadline is not None and time.monotonic() >= deadline:
                return "max_seconds"
            return None

        if len(self.lanes) == 1:
            return self._run_lane(self.lanes[0], stop_reason, housekeeping=True)
        return self._supervise(stop_reason)

    def _run_lane(self, lane: _Lane, stop_reason: Callable[[], str | None], housekeeping: bool) -> str:
        """The inference loop of one replica over its cameras, until a stop reason or the
        end of all its cameras (``"end of streams"``)."""
        while True:
            reason = stop_reason()
            if reason is not None:
                return reason
            lane.wake.clear()
            ended = all(c.camera.ended for c in lane.cams)
            due, taken = self._gather(lane)
            if due:
                self._run_batch(lane, due)
            elif not taken:
                self._close_ended(lane.cams)
                if ended:
                    return "end of streams"
                lane.wake.wait(0.1)
            if housekeeping:
                self._housekeeping()

    def _supervise(self, stop_reason: Callable[[], str | None]) -> str:
        """Several replicas: each lane's loop in its own thread; this thread stops them
        (stop, deadline), notices their end, re-raises a lane's error and shows the status."""
        threads = [threading.Thread(target=self._lane_thread, args=(lane,), name=f"uprm-watch-replica-{lane.index}",
                                    daemon=True) for lane in self.lanes]
        for thread in threads:
            thread.start()
        try:
            while True:
                reason = stop_reason()
                failed = next((lane for lane in self.lanes if lane.error is not None), None)
                if reason is not None or failed is not None or not any(t.is_alive() for t in threads):
                    break
                self._housekeeping()
                self.wake.wait(0.1)
                self.wake.clear()
        finally:
            self.stop_event.set()
            self._wake_all()
            for thread in threads:
                thread.join()
        if failed is not None and failed.error is not None:
            raise failed.error
        return reason or "end of streams"

    def _lane_thread(self, lane: _Lane) -> None:
        try:
            self._run_lane(lane, lambda: "stop" if self.stop_event.is_set() else None, housekeeping=False)
        except BaseException as exc:  # re-raised by the supervising thread
            lane.error = exc
            self.wake.set()

    def _gather(self, lane: _Lane) -> tuple[list[_Due], int]:
        """The next batch: a window of each camera with one due, longest waiting first, at
        most ``batch_size`` (the others stay due: taken fresh on the next pass, so a
        window is never run after a newer one of its camera was due). Returns the
        windows to run and how many were taken (incomplete ones are not run)."""
        waiting = [(lag, i) for i, c in enumerate(lane.cams) if (lag := c.camera.waiting()) is not None]
        due, count = [], 0
        for _, i in sorted(waiting, reverse=True)[:self.settings.batch_size]:
            c = lane.cams[i]
            taken = c.camera.take_window()
            if taken is None:
                continue
            count += 1
            m, skipped = taken
            if skipped:
                self._skipped(c, skipped)
            frames = c.camera.ring.pick(c.camera.clock.times(m), self.tolerance)
            if frames is None:
                c.camera.stats.incomplete += 1
                continue
            k0 = m - self.num_frames
            c.grid.release_before(k0)
            for k, frame in zip(range(k0, m), frames):
                c.grid.add(k, frame)
            due.append(_Due(c, m, frames))
        return due, count

    def _skipped(self, c: _Cam, n: int) -> None:
        c.camera.stats.skipped += n
        if c.skip_warning.ready():
            log.warning("camera %s: inference is slower than real time: %d window(s) skipped so far",
                        c.camera.name, c.camera.stats.skipped)

    def _run_batch(self, lane: _Lane, due: list[_Due]) -> None:
        from uprm.detection import PerceptionError

        features = []
        for d in due:
            try:
                features.append(lane.perception.batch(d.cam.grid, [d.m - self.num_frames])[0])
            except PerceptionError as exc:
                raise WatchError(f"camera {d.cam.camera.name}: {exc} (live video has no sidecar files: experts "
                                 "that read poses or scene graphs need a model, e.g. --expert-option "
                                 "pose.weights=/path/yolo11n-pose.pt)") from exc
        start = time.perf_counter()
        answers = answer_windows(lane.model, features, self.settings.threshold)
        lane.timings["answer"] = lane.timings.get("answer", 0.0) + time.perf_counter() - start
        now = time.time()
        for d, answer in zip(due, answers):
            self._handle(d, answer, now)

    def _handle(self, d: _Due, answer: Any, now: float) -> None:
        camera = d.cam.camera
        span = camera.clock.span(d.m)
        hot = answer.p_yes >= self.settings.threshold
        t0, t1 = threat_span(answer.locate, span) if hot else span
        score = WindowScore(span[0], span[1], float(answer.p_yes), answer.cause if hot else "",
                            {k: float(v) for k, v in (answer.expert_weights or {}).items()}, t0, t1,
                            camera.ring.wall_at(t0), camera.ring.wall_at(t1), max(f.wall for f in d.frames),
                            float(answer.score) if hot else 0.0)
        camera.stats.windows += 1
        camera.stats.lags.append(now - score.newest_wall)
        d.cam.last = score
        for kind, event in d.cam.tracker.update(score):
            self._emit(d.cam, kind, event)

    # ------------------------------------------------------------------ alerts
    def _emit(self, c: _Cam, kind: str, event: Event) -> None:
        with self._emit_lock:
            self._emit_locked(c, kind, event)

    def _emit_locked(self, c: _Cam, kind: str, event: Event) -> None:
        clip = self._clip(c, kind, event) if self.settings.clips else None
        written = time.time()
        opened = event.opened_by.newest_wall if event.opened_by is not None else None
        latency = written - opened if kind == "open" and opened is not None else None
        record = alert_record(kind, event, source=c.camera.source.describe(), written_at=written, clip=clip,
                              latency=latency, taxonomy=self.taxonomy, host=self.host, shard=self.shard)
        if self.alert_log is not None:
            self.alert_log.write(record)
        self.alerts_written += 1
        if kind == "open":
            c.camera.stats.events += 1
            if opened is not None:
                self.latencies.append(time.time() - opened)
        else:
            self.closed.append(record)
        self.recent.append(record)
        log.info("%s %s: %s-%s s, score %.3f, %s", kind, record["id"], record["start"], record["end"],
                 record["score"], record["cause"] or "no cause given")
        if self.webhook is not None:
            self.webhook.submit(record)
        if self.on_alert is not None:
            try:
                self.on_alert(record)
            except Exception:
                log.exception("the on_alert callback failed on %s", record["id"])

    def _clip(self, c: _Cam, kind: str, event: Event) -> str:
        path = Path(self.settings.clips) / f"{event.id}.mp4"
        if kind == "open":
            first = c.camera.ring.since(event.start - self.settings.pre_roll)
            s = self.settings
            holdback = s.window + c.camera.clock.stride + s.cooldown + 1.0
            recorder = ClipRecorder(path, s.fps, first, s.clip_max_seconds, holdback)
            c.camera.listen(recorder)
            c.recorder = recorder
            self.recorders.append((c.camera, recorder))
        elif c.recorder is not None:
            c.recorder.close_at(event.end + self.settings.post_roll)
            c.recorder = None
        return str(path)

    def _close_ended(self, cams: list[_Cam]) -> None:
        for c in cams:
            if c.camera.ended and c.tracker.current is not None:
                reason = "stream lost" if c.camera.state == "failed" else "end of stream"
                for kind, event in c.tracker.finish(reason, self._stream_time(c)):
                    self._emit(c, kind, event)

    def _stream_time(self, c: _Cam) -> float | None:
        latest = c.camera.ring.latest()
        return None if latest is None else latest.time

    def _housekeeping(self) -> None:
        for camera, recorder in [(cam, r) for cam, r in self.recorders if r.done]:
            camera.unlisten(recorder)
        self._retire_clips()
        if self.on_status is not None and self._status_throttle.ready():
            try:
                self.on_status(self.status())
            except Exception:
                log.exception("the on_status callback failed")

    def _retire_clips(self) -> None:
        """Let go of the recorders whose file is finished (written or failed), keeping
        only the path or the failure."""
        with self._emit_lock:  # the replicas' loops add recorders
            finished = [(cam, r) for cam, r in self.recorders if r.finished]
            if not finished:
                return
            gone = {id(r) for _, r in finished}
            self.recorders = [(cam, r) for cam, r in self.recorders if id(r) not in gone]
        for camera, recorder in finished:
            camera.unlisten(recorder)
            if recorder.written is not None:
                self.clips_written.append(str(recorder.written))
            elif recorder.error is not None:
                self.clips_failed += 1
                self.clip_error = recorder.error

    # ------------------------------------------------------------------ stopping
    def _shutdown(self, reason: str) -> None:
        self.stop_event.set()
        self._wake_all()
        why = "end of stream" if reason == "end of streams" else "shutdown"
        for c in self.cams:
            try:
                for kind, event in c.tracker.finish(why, self._stream_time(c)):
                    self._emit(c, kind, event)
            except Exception:
                log.exception("camera %s: closing its open event failed", c.camera.name)
        for _, recorder in self.recorders:
            recorder.stop()
        for camera, recorder in self.recorders:
            recorder.join(60.0)
            camera.unlisten(recorder)
        if self.alert_log is not None:
            self.alert_log.close()
        if self.webhook is not None:
            self.webhook.close(self.settings.webhook_drain)
        for c in self.cams:
            if c.reader.is_alive():
                c.reader.join(self.settings.read_timeout + 2.0)

    # ------------------------------------------------------------------ reporting
    def status(self) -> dict[str, Any]:
        """A snapshot for the live view and ``--status-file``: per camera state, stream time,
        frames per second, windows, skipped, reconnects, drops, frame-size changes, frames
        in the ring buffer, the last error, last P(yes) and the open event; recent alerts,
        records written, the webhook's counts and queue, the clips (recording, written,
        failed, last error) and the process's threads."""
        recorders = [r for _, r in self.recorders]
        clips = {"recording": sum(not r.done for r in recorders),
                 "written": len(self.clips_written) + sum(r.written is not None for r in recorders),
                 "failed": self.clips_failed + sum(r.error is not None and r.written is None for r in recorders),
                 "last_error": next((r.error for r in reversed(recorders) if r.error is not None), self.clip_error)}
        webhook = None if self.webhook is None else {**self.webhook.stats, "pending": self.webhook.pending()}
        return {"elapsed": round(time.monotonic() - self._started, 1), "host": self.host, "shard": self.shard,
                "cameras": [_camera_status(c) for c in self.cams], "alerts": list(self.recent),
                "alerts_written": self.alerts_written, "webhook": webhook,
                "clips": clips if self.settings.clips else None, "threads": threading.active_count()}

    def report(self, stopped_by: str, seconds: float, cpu_seconds: float) -> WatchReport:
        cameras = {c.camera.name: _camera_report(c) for c in self.cams}
        settings = {**self.settings.to_dict(), "stride_in_effect": self.cams[0].camera.clock.stride,
                    "num_frames": self.num_frames, "host": self.host}
        timings: dict[str, float] = {}
        for lane in self.lanes:
            for k, v in lane.timings.items():
                timings[k] = timings.get(k, 0.0) + v
        clips = self.clips_written + [str(r.written) for _, r in self.recorders if r.written is not None]
        lags = [lag for c in self.cams for lag in c.camera.stats.lags]
        return WatchReport(stopped_by, round(seconds, 3), round(cpu_seconds, 3), cameras, list(self.closed),
                           self.alerts_written, _summary(self.latencies), _summary(lags),
                           None if self.webhook is None else dict(self.webhook.stats), clips, settings,
                           {k: round(v, 4) for k, v in timings.items()})


def _stop_check(stop: StopHook) -> Callable[[], bool]:
    if stop is None:
        return lambda: False
    if isinstance(stop, threading.Event):
        return stop.is_set
    if callable(stop):
        return lambda: bool(stop())
    raise TypeError(f"stop must be a threading.Event or a callable, got {type(stop).__name__}")


def _stream_seconds(camera: Camera) -> float:
    latest = camera.ring.latest()
    return 0.0 if latest is None else latest.time + camera.frame_step


def _camera_status(c: _Cam) -> dict[str, Any]:
    camera, latest = c.camera, c.camera.ring.latest()
    recent = camera.ring.since(latest.time - 5.0) if latest is not None else []
    seconds = recent[-1].time - recent[0].time if recent else 0.0
    fps = (len(recent) - 1) / seconds if seconds > 0 else 0.0
    event = c.tracker.current
    return {"camera": camera.name, "state": camera.state, "transport": camera.transport, "replica": c.lane,
            "stream_time": None if latest is None else latest.time,
            "fps": round(fps, 1), "windows": camera.stats.windows, "skipped": camera.stats.skipped,
            "incomplete": camera.stats.incomplete + camera.stats.outage, "reconnects": camera.stats.reconnects,
            "events": camera.stats.events, "p_yes": None if c.last is None else round(c.last.p_yes, 3),
            "drops": camera.stats.drops, "size_changes": camera.stats.size_changes, "ring_frames": len(camera.ring),
            "last_error": camera.stats.last_error,
            "event": None if event is None else {"id": event.id, "start": event.start, "score": event.score,
                                                 "cause": event.cause}}


def _camera_report(c: _Cam) -> dict[str, Any]:
    camera = c.camera
    stats = camera.stats.to_dict()
    return {"source": camera.source.describe(), "kind": camera.source.kind, "state": camera.state,
            "transport": camera.transport, "replica": c.lane,
            "stream_seconds": round(_stream_seconds(camera), 3), "ring_peak_frames": camera.ring.peak,
            "ring_max_frames": camera.ring.max_frames, "window_lag": _summary(camera.stats.lags), **stats}


def watch(sources: Sequence[str | Source] | str, model_or_checkpoint: Any, *, stop: StopHook = None,
          max_seconds: float | None = None, on_alert: AlertCallback | None = None,
          on_frame: Callable[[str, Frame], None] | None = None,
          on_status: Callable[[dict[str, Any]], None] | None = None, status_every: float = 1.0,
          settings: WatchSettings | None = None, **options: Any) -> WatchReport:
    """Watch live cameras (stream URLs, files, devices) with a UPRM model and raise alerts.

    ``options`` are :class:`~uprm.watch.settings.WatchSettings` fields (``window``,
    ``stride``, ``threshold``, ``cooldown``, ``alerts``, ``webhook``, ``clips``, ...).
    Runs until ``stop`` (a :class:`threading.Event` or a callable returning true),
    ``max_seconds`` or the end of every source; returns a :class:`WatchReport`.

    >>> report = uprm.watch(["lobby=rtsp://10.0.0.5/stream1"], "runs/uprm", alerts="alerts.jsonl",
    ...                     max_seconds=3600)                               # doctest: +SKIP
    """
    if isinstance(sources, (str, Source)):
        sources = [sources]
    if settings is None:
        settings = WatchSettings.from_options(**options)
    elif options:
        settings = WatchSettings.from_options(**{**settings.to_dict(), **options})
    watcher = Watcher(sources, model_or_checkpoint, settings, on_alert=on_alert, on_frame=on_frame,
                      on_status=on_status, status_every=status_every)
    return watcher.run(stop=stop, max_seconds=max_seconds)
