"""Beyond one process: what a second replica or worker gives on this machine, and what a
killed one costs (issue 24, part 4). One run measures, on the same files:

1. ``uprm detect`` over a synthetic world (``uprm data synthetic``): videos and windows
   per second with 1 and 2 model replicas,
   - **local**: ``uprm detect --threads 2`` (one process) and ``torchrun --nproc_per_node 2
     -m uprm detect --threads 1`` (two processes, the files split between them);
   - **Ray**: ``uprm detect --ray ADDRESS --replicas 1 --threads 2`` and ``--replicas 2
     --threads 1`` on a local Ray cluster this script starts (2 CPUs) before timing,
     as a cluster would be up before a job.
   Each command's whole wall time (process start, imports, model loading, detection, the
   files written), as a user pays it, and the rate while the models work (from each
   video's ``stats.seconds``), as a long job would see it.
2. ``uprm serve`` throughput, jobs per minute, with ``--workers 1`` (2 threads) and
   ``--workers 2`` (1 thread each), on SQLite and on PostgreSQL (a throw-away server,
   :class:`uprm.testing.postgres.PostgresServer`): every video of the world queued at once
   as a path job (``--media-root``), timed from the first request to the last job done,
   after the server's workers are all ready.
3. A worker's death: with ``--workers 2``, the longest video's job is run once unharmed,
   then again with its worker SIGKILLed as soon as it claims the job; the seconds from the
   kill until the job runs again (``attempts`` 2, on the live sibling) and the job's extra
   latency against the unharmed run. On Ray, the seconds a job over the world loses when a
   replica is SIGKILLed at the middle chunk (in this process, ``detect_files(ray=True,
   replicas=2)``, replicas started afresh for both the unharmed and the harmed run).

The model is random (untrained): detection costs the same whatever it answers, so the
throughput figures hold for a trained checkpoint of the same dims (every window answered
"no": only the identify question is asked, as for most windows of real footage).
``--quick`` is a seconds-sized version of the whole path (tiny model, 3 short videos) for
``tests/test_scale_benchmark.py``; its figures mean nothing.

    python benchmarks/scale.py                 # ~10-15 min on 2 CPU cores -> benchmarks/scale.md, scale.json
    python benchmarks/scale.py --quick --work /tmp/scale --report /tmp/scale/scale.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("UPRM_OFFLINE", "1")

import httpx

HERE = Path(__file__).resolve().parent
#: the model of the full run: benchmarks/detect.py's scaled dims (a 256-d 4-layer vision
#: tower at 112 px, a 512-d 4-layer Llama), 4 frames per window
SCALED = {"vision_overrides": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                               "num_attention_heads": 4, "image_size": 112, "patch_size": 16},
          "text_overrides": {"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 4,
                             "num_attention_heads": 8, "num_key_value_heads": 8}}


@dataclass(frozen=True)
class Sizing:
    """The world, the model and the windows of one run."""

    videos: int
    duration: str  # uprm data synthetic --duration MIN,MAX
    size: int
    fps: float
    frames: int  # per window
    window: float
    stride: float
    dims: str  # "tiny" or "scaled"


FULL = Sizing(videos=8, duration="12,40", size=128, fps=8.0, frames=4, window=4.0, stride=2.0, dims="scaled")
QUICK = Sizing(videos=3, duration="6,12", size=64, fps=4.0, frames=2, window=4.0, stride=4.0, dims="tiny")


class Progress:
    """Prints what runs and how long it took (stderr), unless quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.began = quiet, time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.began:7.1f} s] {message}", file=sys.stderr, flush=True)


def uprm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "uprm", *args]


def run(cmd: Sequence[str], log: Path) -> tuple[float, str]:
    """Run a command to its end; its wall seconds and stdout (a failure names the command
    and shows the end of its log)."""
    began = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    return wall, proc.stdout.decode()


# -- the world and the model -------------------------------------------------------------------------


def make_world(work: Path, sizing: Sizing) -> Path:
    """``uprm data synthetic`` into WORK/world (kept when an earlier run made it); its videos folder."""
    world = work / "world"
    run(uprm_cmd("data", "synthetic", "--videos", str(sizing.videos), "--duration", sizing.duration, "--size",
                 str(sizing.size), "--fps", str(sizing.fps), "--out", str(world), "--quiet"), work / "world.log")
    return world / "videos"


def make_checkpoint(work: Path, sizing: Sizing) -> tuple[Path, dict[str, Any]]:
    """A random UPRM of the sizing's dims with the experts that need only the video
    (coarse, plus background when installed), saved; and what it is (for the report)."""
    import torch

    import uprm

    experts = ["coarse"] + (["background"] if "background" in uprm.available_experts() else [])
    extra = SCALED if sizing.dims == "scaled" else {}
    torch.manual_seed(0)
    config = uprm.UPRMConfig.tiny(num_frames=sizing.frames, max_new_tokens=8, experts=experts, **extra)
    model = uprm.build_model(config)
    path = model.save_pretrained(work / "checkpoint")
    params = sum(p.numel() for p in model.parameters())
    vision, text = config.tiny_backbone["vision"], config.tiny_backbone["text"]
    return Path(path), {"experts": experts, "parameters": params, "frames": sizing.frames,
                        "vision": f"{vision['hidden_size']}-d × {vision['num_hidden_layers']} layers at "
                                  f"{vision['image_size']} px",
                        "language": f"{text['hidden_size']}-d × {text['num_hidden_layers']} layers (Llama)"}


def videos_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.mp4"))


def windows_written(out: Path) -> int:
    """Windows answered over the run's videos (each OUT/<video>.json's ``windows``)."""
    return sum(len(json.loads(p.read_text())["windows"]) for p in out.glob("*.json") if p.name != "results.json")


# -- 1. uprm detect -----------------------------------------------------------------------------------


def detect_args(videos: Path, checkpoint: Path, out: Path, sizing: Sizing) -> list[str]:
    return ["detect", str(videos), "--checkpoint", str(checkpoint), "--out", str(out), "--window", str(sizing.window),
            "--stride", str(sizing.stride), "--batch-size", "4", "--quiet", "--format", "json"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def detect_commands(videos: Path, checkpoint: Path, out: Path, sizing: Sizing,
                    address: str) -> dict[str, list[str]]:
    """The four ``uprm detect`` commands, each into its own folder under ``out``."""
    def args(name: str) -> list[str]:
        return detect_args(videos, checkpoint, out / name, sizing)

    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2",
                "--master_port", str(free_port()), "-m", "uprm"]
    return {"local x1": uprm_cmd(*args("local1"), "--threads", "2"),
            "local x2": torchrun + args("local2") + ["--threads", "1"],
            "ray x1": uprm_cmd(*args("ray1"), "--threads", "2", "--ray", address, "--replicas", "1"),
            "ray x2": uprm_cmd(*args("ray2"), "--threads", "1", "--ray", address, "--replicas", "2")}


def replicas_of(cmd: list[str]) -> int:
    """How many models a command of :func:`detect_commands` runs at once."""
    if "--replicas" in cmd:
        return int(cmd[cmd.index("--replicas") + 1])
    return int(cmd[cmd.index("--nproc_per_node") + 1]) if "--nproc_per_node" in cmd else 1


def model_seconds(out: Path) -> float:
    """The seconds the models spent on the run's videos (each OUT/<video>.json's
    ``stats.seconds``: decoding, perception and answering; on Ray the replicas' time)."""
    return sum(json.loads(p.read_text())["stats"]["seconds"] for p in out.glob("*.json") if p.name != "results.json")


def measure_detect(videos: Path, checkpoint: Path, work: Path, sizing: Sizing, address: str,
                   say: Progress) -> dict[str, dict[str, float]]:
    """Each command of :func:`detect_commands` once, on the same files: the whole wall
    time (videos and windows per second as a user sees them), and the rate while the
    models work — windows / (the models' seconds / the models running at once), which
    leaves out the process starts, the model loads, the files and an idle tail."""
    n = len(videos_of(videos))
    rows = {}
    for name, cmd in detect_commands(videos, checkpoint, work / "detect", sizing, address).items():
        say(f"detect {name}: {n} videos")
        out = Path(cmd[cmd.index("--out") + 1])
        wall, _ = run(cmd, work / f"detect-{name.replace(' ', '')}.log")
        written = [p for p in out.glob("*.json") if p.name != "results.json"]
        if len(written) != n:
            raise RuntimeError(f"{' '.join(cmd)} wrote {len(written)} of {n} videos into {out}")
        windows, busy, models = windows_written(out), model_seconds(out), replicas_of(cmd)
        rows[name] = {"seconds": wall, "videos": n, "windows": windows, "videos_per_s": n / wall,
                      "windows_per_s": windows / wall, "model_seconds": busy, "models": models,
                      "working_windows_per_s": windows * models / busy}
        say(f"  {wall:.1f} s, {n / wall:.3f} videos/s, {windows / wall:.2f} windows/s "
            f"({rows[name]['working_windows_per_s']:.2f} while the models work)")
    return rows


def start_ray(say: Progress) -> tuple[Any, str, str]:
    """A local Ray of 2 CPUs in this process (ended by :func:`stop_ray`); its GCS address."""
    import ray

    temp = tempfile.mkdtemp(prefix="uprm-ray-", dir="/tmp")  # Ray's socket paths must stay short
    say("starting a local Ray cluster (2 CPUs)")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, configure_logging=False, log_to_driver=False)
    return ray, ray.get_runtime_context().gcs_address, temp


def stop_ray(ray: Any, temp: str) -> None:
    import shutil

    from uprm.detection.ray_runner import release

    release()
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def ray_kill(videos: Path, checkpoint: Path, work: Path, sizing: Sizing, say: Progress) -> dict[str, float]:
    """A job over the world on 2 replicas in this process, unharmed and with the replica
    given the middle chunk SIGKILLed as it gets it; each with replicas started afresh."""
    from uprm.detection import detect_files
    from uprm.detection.ray_runner import release

    def job(name: str, kill_at: int | None) -> tuple[float, list[Any], Any]:
        events: list[Any] = []

        def on_event(event: Any) -> None:
            events.append(event)
            dispatched = sum(e.kind == "dispatched" for e in events)
            if kill_at is not None and event.kind == "dispatched" and dispatched == kill_at:
                os.kill(event.pid, signal.SIGKILL)

        release()
        began = time.perf_counter()
        report = detect_files([videos], checkpoint, work / "detect" / name, window=sizing.window,
                              stride=sizing.stride, batch_size=4, threads=1, progress=False, ray=True, replicas=2,
                              chunk_windows=4, on_event=on_event)
        wall = time.perf_counter() - began
        if report.failed:
            raise RuntimeError(f"the Ray job {name} failed videos: {report.failed}")
        return wall, events, report

    say("Ray: a job on 2 replicas, unharmed")
    plain, events, _ = job("ray-plain", None)
    chunks = sum(e.kind == "dispatched" for e in events)
    say(f"  {plain:.1f} s, {chunks} chunks; again with a replica killed at chunk {chunks // 2 + 1}")
    killed, events, report = job("ray-killed", chunks // 2 + 1)
    release()
    deaths = sum(e.kind == "replica_died" for e in events)
    if deaths < 1:
        raise RuntimeError("the Ray job's replica was not killed (no replica_died event)")
    say(f"  {killed:.1f} s, {deaths} replica death(s): {killed - plain:+.1f} s")
    return {"unharmed_s": plain, "killed_s": killed, "lost_s": killed - plain, "chunks": chunks, "deaths": deaths,
            "retried_chunks": report.ray["retried_chunks"] if report.ray else 0}


# -- 2. and 3. uprm serve -----------------------------------------------------------------------------


class Server:
    """``uprm serve`` on a free loopback port, the world's videos as its media root."""

    def __init__(self, checkpoint: Path, data: Path, media: Path, sizing: Sizing, workers: int,
                 store: str | None) -> None:
        self.data, self.store = data, store
        data.parent.mkdir(parents=True, exist_ok=True)
        self.log = data.parent / f"{data.name}.log"
        cmd = uprm_cmd("serve", "--checkpoint", str(checkpoint), "--data-dir", str(data), "--media-root", str(media),
                       "--port", "0", "--log-level", "warning", "--workers", str(workers), "--threads",
                       str(2 // workers), "--window", str(sizing.window), "--stride", str(sizing.stride),
                       "--batch-size", "4", "--max-queue", "100", *(["--store", store] if store else []))
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url = self._url()
        self.api = httpx.Client(base_url=self.url, timeout=120)
        self.workers = workers

    def _check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uprm serve exited:\n{self.log.read_text()[-3000:]}")

    def _url(self) -> str:
        while "uprm serve: " not in self.log.read_text():
            self._check()
            time.sleep(0.05)
        return self.log.read_text().split("uprm serve: ")[1].split()[0]

    def wait_ready(self) -> None:
        """Until every worker has loaded the model."""
        while True:
            self._check()
            health = self.api.get("/healthz").json()
            workers = health.get("workers") or [health.get("worker")]
            if health.get("ready") and len(workers) == self.workers and all(w == "ready" for w in workers):
                return
            time.sleep(0.1)

    def submit(self, name: str) -> str:
        response = self.api.post("/v1/jobs", json={"path": name})
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs {name}: {response.status_code} {response.text}")
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/jobs/{job_id}").json())

    def wait(self, job_id: str, until: Callable[[dict[str, Any]], bool], poll: float = 0.02) -> dict[str, Any]:
        while not until(job := self.job(job_id)):
            self._check()
            if job["state"] == "failed":
                raise RuntimeError(f"job {job_id} failed: {job['error']}")
            time.sleep(poll)
        return job

    def worker_pid(self, job_id: str) -> int:
        """The pid of the worker running a job (the store's ``worker``, ``host:pid``)."""
        from uprm.serve.store import open_store

        store = open_store(self.store, self.data / "jobs.sqlite3")
        try:
            worker = store.get(job_id).worker
        finally:
            store.close()
        return int(worker.split(":")[1])

    def stop(self) -> None:
        self.api.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def throughput(server: Server, names: Sequence[str], warm: str) -> dict[str, float]:
    """A warm-up job per worker (the first job of a worker imports what drawing and
    decoding need), then every video queued at once: first request to last job done."""
    for job_id in [server.submit(warm) for _ in range(server.workers)]:
        server.wait(job_id, lambda j: j["state"] == "done", poll=0.1)
    began = time.perf_counter()
    ids = [server.submit(name) for name in names]
    for job_id in ids:
        server.wait(job_id, lambda j: j["state"] == "done", poll=0.1)
    wall = time.perf_counter() - began
    return {"jobs": len(ids), "seconds": wall, "jobs_per_min": 60 * len(ids) / wall}


def worker_death(server: Server, name: str) -> dict[str, float]:
    """The job of ``name`` unharmed, then with its worker SIGKILLed as it claims it (module doc)."""
    began = time.perf_counter()
    server.wait(server.submit(name), lambda j: j["state"] == "done")
    unharmed = time.perf_counter() - began
    server.wait_ready()
    began = time.perf_counter()
    job_id = server.submit(name)
    server.wait(job_id, lambda j: j["state"] == "running")
    victim = server.worker_pid(job_id)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.perf_counter()
    server.wait(job_id, lambda j: j["attempts"] >= 2 and j["state"] in ("running", "done"))
    again = time.perf_counter()
    job = server.wait(job_id, lambda j: j["state"] == "done")
    done = time.perf_counter()
    if job["attempts"] != 2:
        raise RuntimeError(f"the killed job ran {job['attempts']} times")
    return {"unharmed_s": unharmed, "killed_s": done - began, "rerun_after_s": again - killed_at,
            "extra_s": done - began - unharmed, "attempts": job["attempts"]}


def measure_serve(checkpoint: Path, videos: Path, work: Path, sizing: Sizing, say: Progress,
                  stores: dict[str, str | None]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Throughput with 1 and 2 workers per store, and a worker's death with 2 workers."""
    names = [p.name for p in videos_of(videos)]
    longest = max(videos_of(videos), key=lambda p: p.stat().st_size).name
    shortest = min(videos_of(videos), key=lambda p: p.stat().st_size).name
    rows, deaths = {}, {}
    for store_name, url in stores.items():
        for workers in (1, 2):
            key = f"{store_name} x{workers}"
            say(f"serve {key}: starting")
            server = Server(checkpoint, work / "serve" / key.replace(" ", "-"), videos, sizing, workers,
                            url(workers) if callable(url) else url)
            try:
                server.wait_ready()
                say(f"serve {key}: {len(names)} jobs")
                rows[key] = throughput(server, names, shortest)
                say(f"  {rows[key]['seconds']:.1f} s, {rows[key]['jobs_per_min']:.1f} jobs/min")
                if workers == 2:
                    say(f"serve {key}: a worker killed mid-job ({longest})")
                    deaths[store_name] = worker_death(server, longest)
                    say(f"  running again {deaths[store_name]['rerun_after_s']:.2f} s after the kill, "
                        f"{deaths[store_name]['extra_s']:+.1f} s latency")
            finally:
                server.stop()
    return rows, deaths


# -- the paper's dims on GPUs: arithmetic (docs/deployment.md) --------------------------------------

#: FLOPs (2 per multiply-add) of one window at the paper's dims, identify question only:
#: Vicuna-7B over 8 frames x 257 tokens + 64 text tokens (benchmarks/model_overhead.py,
#: docs/design.md section 10), the LanguageBind ViT-L/14 video tower over 8 frames at 224 px
#: (the same count), the adapters and the router (model_overhead.py)
PAPER_WINDOW_TFLOPS = {"language model": 30.4, "video tower": 1.30, "adapters + router": 0.18}
#: SAM's image encoder per frame (benchmarks/background.py's count_gflops)
SAM_TFLOPS = {"ViT-H 1024 px": 5.96, "ViT-B 1024 px": 0.97, "ViT-B 448 px": 0.15}
#: dense bf16 peak TFLOP/s of each GPU (vendor data sheets)
GPU_PEAK = {"L4": 121.0, "A100": 312.0, "H100 SXM": 989.0}
UTILISATION = 0.40  # the share of the peak a batched prefill reaches (as benchmarks/README.md's training figures)
FRAMES_PER_SECOND = 1.0  # 8 frames over an 8-s window


def camera_tflops(stride: float, sam: str) -> float:
    """TFLOP/s one camera costs: a window every ``stride`` seconds, and SAM once per
    sampled frame (overlapping windows share their frames' perception)."""
    return sum(PAPER_WINDOW_TFLOPS.values()) / stride + FRAMES_PER_SECOND * SAM_TFLOPS[sam]


def cameras_per_gpu(gpu: str, stride: float, sam: str) -> int:
    return int(UTILISATION * GPU_PEAK[gpu] // camera_tflops(stride, sam))


def archive_gpu_hours(hours: float, gpu: str, stride: float, sam: str) -> float:
    """GPU-hours for ``hours`` of recorded video: the same cost per second of video as a camera."""
    return hours * 3600 * camera_tflops(stride, sam) / (UTILISATION * GPU_PEAK[gpu]) / 3600


def print_arithmetic() -> None:
    window = sum(PAPER_WINDOW_TFLOPS.values())
    print(f"one window (identify): {window:.1f} TFLOPs; SAM per frame: "
          + ", ".join(f"{k} {v} TFLOPs" for k, v in SAM_TFLOPS.items()))
    print(f"GPU at {UTILISATION:.0%} of the bf16 peak; {FRAMES_PER_SECOND:g} sampled frame/s per camera")
    for sam in SAM_TFLOPS:
        for stride in (2.0, 4.0, 8.0):
            per = camera_tflops(stride, sam)
            gpus = ", ".join(f"{g} {cameras_per_gpu(g, stride, sam)}" for g in GPU_PEAK)
            archive = ", ".join(f"{g} {archive_gpu_hours(10_000, g, stride, sam):,.0f}" for g in GPU_PEAK)
            print(f"{sam:>14}, stride {stride:g} s: {per:5.2f} TFLOP/s per camera; cameras per GPU: {gpus}; "
                  f"10,000 h archive, GPU-hours: {archive}")


# -- the report ---------------------------------------------------------------------------------------


def ratio(rows: dict[str, dict[str, float]], two: str, one: str, field: str) -> float:
    return rows[two][field] / rows[one][field]


def machine() -> dict[str, Any]:
    import torch

    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "gpu": torch.cuda.is_available(), "load_average_at_end": [round(x, 2) for x in load],
            "python": platform.python_version(), "torch": torch.__version__}


def markdown(result: dict[str, Any]) -> str:
    """benchmarks/scale.md from the figures of one run."""
    d, s, k, m, z = result["detect"], result["serve"], result["serve_worker_death"], result["model"], result["sizing"]
    lines = [
        "# Beyond one process: replicas, workers and a killed one (`scale.py`)",
        "",
        f"Measured {result['when']} by `python benchmarks/scale.py{' --quick' if result['quick'] else ''}` in one "
        f"run. Machine: {result['machine']['cpus']} CPU cores ({result['machine']['processor']}), "
        f"{'a GPU' if result['machine']['gpu'] else 'no GPU'}, shared with other work (load average at the end "
        f"{result['machine']['load_average_at_end'][0]}); torch {result['machine']['torch']}.",
        "",
        f"- **World**: `uprm data synthetic --videos {z['videos']} --duration {z['duration']} --size {z['size']} "
        f"--fps {z['fps']:g}` ({d['local x1']['videos']} videos, {d['local x1']['windows']} windows of "
        f"{z['window']:g} s every {z['stride']:g} s).",
        f"- **Model**: random (untrained), {m['parameters'] / 1e6:.1f} M parameters: vision tower {m['vision']}, "
        f"language model {m['language']}, experts {', '.join(m['experts'])}, {m['frames']} frames per window; "
        "every window is answered \"no\", so only the identify question runs (as for most windows of real "
        "footage). Throughput does not depend on the weights.",
        "- **Threads**: 1 replica or worker uses both cores (`--threads 2`), 2 use one each (`--threads 1`): the "
        "same 2 cores either way.",
        "",
        "## `uprm detect`: 1 and 2 replicas on the same files",
        "",
        "Whole command, wall (process start, imports, model loading, detection, files written):",
        "",
        "| run | command | seconds | videos/s | windows/s | models' seconds | windows/s while the models work |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    commands = {"local x1": "`uprm detect … --threads 2`",
                "local x2": "`torchrun --nproc_per_node 2 -m uprm detect … --threads 1`",
                "ray x1": "`uprm detect … --ray ADDR --replicas 1 --threads 2`",
                "ray x2": "`uprm detect … --ray ADDR --replicas 2 --threads 1`"}
    for name, row in d.items():
        lines.append(f"| {name} | {commands[name]} | {row['seconds']:.1f} | {row['videos_per_s']:.3f} | "
                     f"{row['windows_per_s']:.2f} | {row['model_seconds']:.1f} s | {row['working_windows_per_s']:.2f} |")
    lines += ["", "*Models' seconds*: the sum over the videos of the time the models spent on each "
              "(`stats.seconds` of its JSON: decoding, perception, answering; on Ray the replicas' time). "
              "*While the models work*: windows / (models' seconds / models running at once) — the rate of a "
              "long job, without the process starts, model loads, files written and an idle tail.", "",
              "| 2 vs 1 | videos/s | windows/s | windows/s while the models work |", "| --- | --- | --- | --- |"]
    for kind in ("local", "ray"):
        lines.append(f"| {kind} | {ratio(d, f'{kind} x2', f'{kind} x1', 'videos_per_s'):.2f}× | "
                     f"{ratio(d, f'{kind} x2', f'{kind} x1', 'windows_per_s'):.2f}× | "
                     f"{ratio(d, f'{kind} x2', f'{kind} x1', 'working_windows_per_s'):.2f}× |")
    lines += ["", "## `uprm serve`: jobs per minute with 1 and 2 workers", "",
              "Every video of the world queued at once as a path job; first request → last job done (after every "
              "worker was ready and had run a warm-up job).", "",
              "| store | 1 worker | 2 workers | 2 vs 1 |", "| --- | --- | --- | --- |"]
    for store in ("sqlite", "postgresql"):
        lines.append(f"| {store} | {s[f'{store} x1']['jobs_per_min']:.1f} | {s[f'{store} x2']['jobs_per_min']:.1f} | "
                     f"{ratio(s, f'{store} x2', f'{store} x1', 'jobs_per_min'):.2f}× |")
    lines += ["", "## A killed worker or replica", "",
              "| what | unharmed | killed | running again after the kill | seconds lost |",
              "| --- | --- | --- | --- | --- |"]
    for store in ("sqlite", "postgresql"):
        row = k[store]
        lines.append(f"| `uprm serve --workers 2` ({store}), the longest video's job, its worker SIGKILLed as it "
                     f"claims it | {row['unharmed_s']:.1f} s | {row['killed_s']:.1f} s (attempts "
                     f"{row['attempts']}) | {row['rerun_after_s']:.2f} s | {row['extra_s']:.1f} s |")
    r = result["ray_replica_death"]
    lines.append(f"| `detect_files(ray=True, replicas=2)` over the world ({r['chunks']} chunks), the replica "
                 f"given the middle chunk SIGKILLed | {r['unharmed_s']:.1f} s | {r['killed_s']:.1f} s "
                 f"({r['deaths']} death, {r['retried_chunks']} chunk retried) | — | {r['lost_s']:.1f} s |")
    lines += ["", "## What the ratios mean", "", *result["notes"], ""]
    return "\n".join(lines)


NOTES = [
    "- **2 cores, so 2 replicas cannot be 2× faster.** One replica with `--threads 2` and two with one "
    "thread each have the same two cores. On an idle machine the ratio is near 1× (what a second replica "
    "wins is the time one process leaves a core idle: decoding, Python between the layers, files, overlapping "
    "another's start), less its second model load: on the whole command it can be below 1×. On a GPU host, one "
    "replica per GPU, nothing is shared and the ratio approaches N, bounded by the files (local: torchrun splits "
    "files) or a chunk (Ray).",
    "- **On a loaded machine, ratios far above 2× are the threads, not the replicas.** When another process "
    "takes a core, the two OpenMP threads of one matrix product wait for each other at every barrier, so one "
    "process with 2 threads can run several times slower than two processes with 1 thread, which never wait for "
    "each other: a run of this script on 2026-12-07 19:15 UTC, with the machine loaded by other work (load "
    "average 5.2), gave serve 8.8× (SQLite) and local 9.4× while working, where this machine idle gives about "
    "1×. Read a large ratio as \"`--threads` above the cores a process really has is costly\", which is why "
    "`--replicas` / `--workers` split the threads.",
    "- **Local ×2 splits files, Ray ×2 splits chunks**: torchrun gives each process every other file; Ray hands "
    "chunks of windows to whichever replica is free. The Ray rows pay the job's replica starts (model loads) and "
    "Ray's task overheads in their wall time, not the cluster's start.",
    "- **Serve**: a job includes the evidence sheets and the timeline (drawn by the worker).",
    "- **A killed serve worker**: the live sibling notices between its jobs (the dead worker's process is "
    "gone: within a second), puts the job back at its place and runs it from the start; the seconds lost are "
    "the killed attempt's work plus that notice. Across hosts (`uprm serve-worker`) the notice is the lease "
    "(30 s). A killed Ray replica costs its chunk's work and, while more work waits, a replacement's model load.",
    "- One run on a shared machine: timings vary by ±50 % between runs; ratios measured within one run are "
    "steadier. The GPU sizing: docs/deployment.md.",
]


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def print_table(result: dict[str, Any]) -> None:
    d, s, k, r = result["detect"], result["serve"], result["serve_worker_death"], result["ray_replica_death"]
    print(f"{'figure':<44} {'x1':>10} {'x2':>10} {'2 vs 1':>8}")
    for kind in ("local", "ray"):
        for field in ("videos_per_s", "windows_per_s", "working_windows_per_s"):
            print(f"{f'detect {kind} {field}':<44} {d[f'{kind} x1'][field]:>10.3f} {d[f'{kind} x2'][field]:>10.3f} "
                  f"{ratio(d, f'{kind} x2', f'{kind} x1', field):>7.2f}×")
    for store in ("sqlite", "postgresql"):
        print(f"{f'serve {store} jobs/min':<44} {s[f'{store} x1']['jobs_per_min']:>10.1f} "
              f"{s[f'{store} x2']['jobs_per_min']:>10.1f} {ratio(s, f'{store} x2', f'{store} x1', 'jobs_per_min'):>7.2f}×")
    for store in ("sqlite", "postgresql"):
        print(f"{f'serve {store} killed worker: rerun after (s)':<44} {k[store]['rerun_after_s']:>10.2f}   "
              f"lost {k[store]['extra_s']:.1f} s")
    print(f"{'ray killed replica: seconds lost':<44} {r['lost_s']:>10.1f}")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny model, 3 short videos: the whole path in ~1-2 min "
                                                        "(for the test; its figures mean nothing)")
    p.add_argument("--work", type=Path, help="working folder (world, checkpoint, outputs, logs) [default: a "
                                             "temporary folder, removed]")
    p.add_argument("--report", type=Path, default=HERE / "scale.md",
                   help="the Markdown report; the JSON beside it (.json) [default: benchmarks/scale.md]")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--arithmetic", action="store_true", help="print the paper-dims GPU arithmetic of "
                                                             "docs/deployment.md and stop (nothing is run)")
    return p.parse_args(argv)


def measure(work: Path, sizing: Sizing, say: Progress) -> dict[str, Any]:
    """Every figure of the report (module doc), in one run."""
    from uprm.testing.postgres import PostgresServer

    say("world and model")
    videos = make_world(work, sizing)
    checkpoint, model = make_checkpoint(work, sizing)
    ray, address, temp = start_ray(say)
    try:
        detect = measure_detect(videos, checkpoint, work, sizing, address, say)
        ray_death = ray_kill(videos, checkpoint, work, sizing, say)
    finally:
        stop_ray(ray, temp)
    say("starting a throw-away PostgreSQL")
    with PostgresServer() as pg:
        stores = {"sqlite": None, "postgresql": lambda w: pg.create_database(f"scale_w{w}")}
        serve, deaths = measure_serve(checkpoint, videos, work, sizing, say, stores)  # type: ignore[arg-type]
    return {"sizing": sizing.__dict__, "model": model, "detect": detect, "ray_replica_death": ray_death,
            "serve": serve, "serve_worker_death": deaths}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.arithmetic:
        print_arithmetic()
        return {}
    say = Progress(args.quiet)
    sizing = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="uprm-scale-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = measure(work, sizing, say)
    result.update(quick=args.quick, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=machine(),
                  notes=NOTES)
    atomic_write(args.report, markdown(result))
    atomic_write(args.report.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    if not args.quiet:
        print_table(result)
        print(f"-> {args.report}, {args.report.with_suffix('.json')}")
    return result


if __name__ == "__main__":
    main()
