"""What the detection service costs: request rates of its reads, and the latency of a
job on a 1-minute video against ``uprm detect`` on the same file.

1. ``uprm serve`` is started as a real process on loopback with the tiny model (untrained,
   the experts that need nothing but the video: coarse, plus background when installed).
2. Job latency, 1-minute video (320x240, 10 fps, 14 windows of 8 s every 4 s): upload ->
   done as a client sees it (polling every 20 ms), split into the upload (POST answered:
   streamed, synced, probed, queued), the wait before the worker starts, the run
   (detection, timeline, evidence, result file) and the rest; against
   - ``uprm detect FILE --checkpoint C`` as a command (a fresh process: start, imports,
     model loading, detection, files), and
   - the same work in a process whose model is already loaded (``detect_video`` + the
     files the worker writes): the service overhead is the job latency minus this.
3. Reads: ``GET /v1/jobs/ID`` (status) and ``GET /v1/jobs/ID/result`` (a file) per
   second from 16 concurrent keep-alive clients, with the worker idle and while a job
   runs, and for scale a bare FastAPI endpoint returning a constant (same uvicorn, same
   client) measured in the same run. The client runs on the same cores, so these are
   lower bounds; the ratio to the bare endpoint is the steadier figure.

    python benchmarks/serve.py             # ~2-3 min on 2 CPU cores
    python benchmarks/serve.py --reads 1000 --repeats 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("UPRM_OFFLINE", "1")

import httpx
from detect import frames  # the same synthetic footage as benchmarks/detect.py


def make_checkpoint(root: Path) -> Path:
    import uprm

    experts = ["coarse"] + (["background"] if "background" in uprm.available_experts() else [])
    model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=8, experts=experts))
    return model.save_pretrained(root / "checkpoint")


BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/x")
def x():
    return {"state": "done"}
"""


class Bare:
    """A FastAPI app with one constant endpoint on uvicorn: the scale for the read rates."""

    def __init__(self, root: Path) -> None:
        import socket

        (root / "bare_app.py").write_text(BARE_APP)
        with socket.socket() as s:  # a free port (uvicorn prints none at warning level)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(root),
                                      "--port", str(port), "--log-level", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(f"{self.url}/x")
                return
            except httpx.HTTPError:
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Server:
    """``python -m uprm serve`` on a free loopback port."""

    def __init__(self, checkpoint: Path, data: Path) -> None:
        self.out = data.parent / "serve.out"
        self.err = data.parent / "serve.err"
        cmd = [sys.executable, "-m", "uprm", "serve", "--checkpoint", str(checkpoint), "--data-dir", str(data),
               "--port", "0", "--log-level", "warning"]
        self.began = time.perf_counter()
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        self.url = self._url()
        self.ready_after = self._ready()

    def _url(self) -> str:
        while "uprm serve: " not in (self.out.read_text() if self.out.exists() else ""):
            if self.proc.poll() is not None:
                raise RuntimeError(self.err.read_text()[-2000:])
            time.sleep(0.05)
        return self.out.read_text().split("uprm serve: ")[1].split()[0]

    def _ready(self) -> float:
        while not httpx.get(f"{self.url}/healthz").json()["ready"]:
            if self.proc.poll() is not None:
                raise RuntimeError(self.err.read_text()[-2000:])
            time.sleep(0.05)
        return time.perf_counter() - self.began

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def iso_seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def one_job(client: httpx.Client, video: Path) -> dict[str, float]:
    begin = time.perf_counter()
    with video.open("rb") as fh:
        r = client.post("/v1/jobs", files={"video": (video.name, fh, "video/mp4")})
    posted = time.perf_counter()
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] not in ("done", "failed"):
        time.sleep(0.02)
    end = time.perf_counter()
    assert job["state"] == "done", job
    created, started, finished = (iso_seconds(job[k]) for k in ("created", "started", "finished"))
    total = end - begin
    return {"total": total, "upload": posted - begin, "wait": started - created, "run": finished - started,
            "rest": total - (posted - begin) - (started - created) - (finished - started)}


def detect_command(video: Path, checkpoint: Path, out: Path) -> float:
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "uprm", "detect", str(video), "--checkpoint", str(checkpoint), "--out",
                    str(out), "--quiet", "--overwrite"], check=True, capture_output=True)
    return time.perf_counter() - begin


class InProcess:
    """``detect_video`` + timeline + evidence + JSON with a loaded model: the worker's work
    without the service around it."""

    def __init__(self, checkpoint: Path, out: Path) -> None:
        from uprm import load_model

        self.model, self.out = load_model(str(checkpoint), device="cpu").model, out

    def run(self, video: Path) -> float:
        from uprm.detection import detect_video, render_evidence, write_video_outputs

        model, out, sheets = self.model, self.out, {}
        begin = time.perf_counter()

        def draw(n, segment, evidence):
            render_evidence(out / "v" / f"{n}.png", segment, evidence, dict(model.block.experts), "v", n)
            sheets[n] = f"v/{n}.png"

        detection = detect_video(video, model, on_segment=draw)
        write_video_outputs(out, detection, {}, sheets)
        return time.perf_counter() - begin


async def reads_per_second(url: str, path: str, total: int, concurrency: int = 16) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        queue = iter(range(total))

        async def worker():
            for _ in queue:
                r = await client.get(path)
                assert r.status_code == 200, r.text

        await client.get(path)
        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - begin)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reads", type=int, default=2000, help="requests per read measurement")
    p.add_argument("--repeats", type=int, default=3, help="jobs measured (the median is kept)")
    p.add_argument("--size", default="320x240")
    p.add_argument("--fps", type=int, default=10)
    args = p.parse_args()
    width, height = map(int, args.size.split("x"))
    from uprm.data import write_mp4

    with tempfile.TemporaryDirectory(prefix="uprm-bench-serve-") as tmp:
        root = Path(tmp)
        video = write_mp4(root / "minute.mp4", frames(60.0, args.fps, width, height), fps=args.fps)
        checkpoint = make_checkpoint(root)
        command = statistics.median(detect_command(video, checkpoint, root / "cli") for _ in range(2))
        local = InProcess(checkpoint, root / "warm")
        local.run(video)  # warm-up
        bare = Bare(root)
        try:
            bare_rate = asyncio.run(reads_per_second(bare.url, "/x", args.reads))
        finally:
            bare.stop()
        server = Server(checkpoint, root / "data")
        try:
            figures = measure_service(server, video, args, local)
        finally:
            server.stop()
        figures["bare"] = bare_rate
        report(figures, command, server.ready_after, video, args)


def measure_service(server: Server, video: Path, args: argparse.Namespace, local: InProcess) -> dict:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        one_job(client, video)  # warm-up: the worker's first job
        jobs, warm = [], []
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            jobs.append(one_job(client, video))
            warm.append(local.run(video))
        done = client.get("/v1/jobs?state=done&limit=1").json()["jobs"][0]["id"]
        idle = {name: asyncio.run(reads_per_second(server.url, path, args.reads))
                for name, path in (("status", f"/v1/jobs/{done}"), ("result", f"/v1/jobs/{done}/result"))}
        with video.open("rb") as fh:
            busy_job = client.post("/v1/jobs", files={"video": ("m.mp4", fh, "video/mp4")}).json()["id"]
        while client.get(f"/v1/jobs/{busy_job}").json()["state"] != "running":
            time.sleep(0.02)
        busy = asyncio.run(reads_per_second(server.url, f"/v1/jobs/{done}", args.reads // 2))
        busy_state = client.get(f"/v1/jobs/{busy_job}").json()["state"]
    median = {k: statistics.median(j[k] for j in jobs) for k in jobs[0]}
    return {"job": median, "in_process": statistics.median(warm), "reads": idle, "status_while_running": busy,
            "busy_job_state_after": busy_state}


def report(figures: dict, command: float, ready_after: float, video: Path, args) -> None:
    job, warm = figures["job"], figures["in_process"]
    around = job["upload"] + job["wait"] + job["rest"]
    rows = [
        ("server start to ready (API + worker + model)", f"{ready_after:.2f} s"),
        ("job latency, 1-min video, upload -> done (median)", f"{job['total']:.2f} s"),
        ("  upload answered (stream, sync, probe, queue)", f"{job['upload'] * 1000:.0f} ms"),
        ("  wait before the worker starts", f"{job['wait'] * 1000:.0f} ms"),
        ("  run (detect + timeline + evidence + JSON)", f"{job['run']:.2f} s"),
        ("  the rest (status polling, clocks)", f"{job['rest'] * 1000:.0f} ms"),
        ("service overhead (upload + wait + rest)", f"{around * 1000:.0f} ms ({100 * around / job['total']:.1f} %)"),
        ("same work in-process, model loaded", f"{warm:.2f} s (job latency {job['total'] / warm:.2f}x)"),
        ("uprm detect FILE as a command (cold)", f"{command:.2f} s ({command / job['total']:.1f}x the job)"),
        ("bare FastAPI constant endpoint (scale)", f"{figures['bare']:.0f} req/s"),
        ("status reads, worker idle", f"{figures['reads']['status']:.0f} req/s "
                                      f"({figures['reads']['status'] / figures['bare']:.2f}x bare)"),
        ("result reads (the JSON file), worker idle", f"{figures['reads']['result']:.0f} req/s "
                                                      f"({figures['reads']['result'] / figures['bare']:.2f}x bare)"),
        ("status reads while a job runs", f"{figures['status_while_running']:.0f} req/s "
                                          f"({figures['status_while_running'] / figures['bare']:.2f}x bare)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"uprm serve, {video.stat().st_size / 1024:.0f} KiB 1-minute video {args.size} {args.fps} fps, "
          f"{args.repeats} jobs, {args.reads} reads x 16 clients; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(json.dumps({"job": job, "in_process": warm, "overhead": around, "command": command, "ready_after": ready_after,
                      "reads": figures["reads"], "status_while_running": figures["status_while_running"],
                      "bare": figures["bare"]}))


if __name__ == "__main__":
    main()
