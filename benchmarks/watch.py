"""What `uprm watch` costs and how fast it alerts, for 1 and 4 live cameras.

Each camera is a real ffmpeg process streaming a synthetic threat video on loopback
(MPEG-TS over UDP, x264, in real time); without ffmpeg the videos are read as files in
real time (``--realtime``). The model is a tiny UPRM (background + coarse experts, two
frames per window) trained here in a few seconds to say "yes" on bright frames (the
threat) and "no" on dark ones — the recipe of the watch tests — or ``--checkpoint``.

Measured per run:

* **latency**: from the arrival (decoding) of the first frame of a threat to its event's
  open alert being written (fsynced to the JSONL file); and the part of it after the
  window was complete (the newest frame of the opening window → alert, ``latency_s``).
  Each stream has four threats (4 s each, 12.5 s apart) whose starts fall at four
  different phases of the 2-s window grid, so the figures cover the wait for the next
  window as well as the processing;
* **CPU time per camera per second of video**: the watcher process's CPU time (all
  threads: decoding, perception, the model, alerts) over the seconds of video watched
  by all cameras; and the decoding threads' share;
* windows run / skipped, and the frame → answer lag of every window.

    python benchmarks/watch.py                      # 1 and 4 cameras, 60-s streams (~3 min)
    python benchmarks/watch.py --cameras 1,2,4,8 --size 320x240
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("UPRM_OFFLINE", "1")

import numpy as np
import torch

import uprm
from uprm.data import write_mp4
from uprm.testing import overfit
from uprm.watch import Watcher, WatchSettings

ANSWERS = {"identify": ("Yes, there exists a threat.", "No, there is no threat."),
           "locate": "The threat occurs between 0 and 4 seconds.",
           "attribute": "The threat is attributed to a person grabbing a bag."}


def train(out: Path) -> Path:
    """The watch tests' tiny detector (bright frames = threat), trained in seconds."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = uprm.build_model(uprm.UPRMConfig.tiny(experts=["background", "coarse"], num_frames=2, max_new_tokens=12,
                                                  expert_options={"background": {"adapter_hidden": 64}}))

    def clip(levels):
        frames = torch.stack([torch.full((3, 64, 64), lv, dtype=torch.int32) for lv in levels])
        frames = (frames + torch.randint(-8, 9, frames.shape, generator=gen)).clamp(0, 255).to(torch.uint8)
        return uprm.VideoClip(frames, torch.tensor([1.0, 3.0]))

    items = [(model.extract(clip(lv)), "identify", ANSWERS["identify"][1])
             for lv in [(20, 20), (40, 30), (10, 50), (60, 60)]]
    for lv in [(230, 230), (20, 220), (240, 30)]:
        f = model.extract(clip(lv))
        items += [(f, "identify", ANSWERS["identify"][0]), (f, "locate", ANSWERS["locate"]),
                  (f, "attribute", ANSWERS["attribute"])]
    return overfit(model, items, lr=3e-3, max_steps=200).save_pretrained(out)


def video(path: Path, seconds: float, threats: list[tuple[float, float]], fps: int, width: int, height: int) -> Path:
    """Dark frames with a moving grey square; bright during the ``threats``."""

    def frames():
        for i in range(round(seconds * fps)):
            level = 230 if any(a <= i / fps < b for a, b in threats) else 20
            img = np.full((height, width, 3), level, np.uint8)
            s = height // 4
            x = (i * 3) % (width - s)
            img[height // 3: height // 3 + s, x: x + s] = 128
            yield img

    return write_mp4(path, frames(), fps=fps, gop=fps)


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(n: int, clip: Path, checkpoint: Path, args, ffmpeg: str | None) -> dict:
    ports = [udp_port() for _ in range(n)]
    sources = [f"cam{i + 1}=udp://127.0.0.1:{p}" for i, p in enumerate(ports)] if ffmpeg else \
        [f"cam{i + 1}={clip}" for i in range(n)]
    onsets: dict[str, list[float]] = {f"cam{i + 1}": [] for i in range(n)}   # arrival of each threat's first frame
    bright: dict[str, bool] = dict.fromkeys(onsets, False)
    alerts: dict[str, list[tuple[float, dict]]] = {c: [] for c in onsets}

    def on_frame(camera, frame):
        now_bright = frame.pixels.mean() > 128
        if now_bright and not bright[camera]:
            onsets[camera].append(frame.wall)
        bright[camera] = now_bright

    def on_alert(record):
        if record["type"] == "open":
            alerts[record["camera"]].append((time.time(), record))

    work = Path(tempfile.mkdtemp(prefix=f"watch{n}-", dir=args.work))
    settings = WatchSettings(window=4, stride=2, cooldown=2, alerts=str(work / "alerts.jsonl"), threads=1,
                             realtime=True, batch_size=8, read_timeout=3, open_timeout=20)
    watcher = Watcher(sources, str(checkpoint), settings, on_alert=on_alert, on_frame=on_frame)
    result = {}
    thread = threading.Thread(target=lambda: result.update(report=watcher.run(max_seconds=args.seconds + 8)))
    thread.start()
    time.sleep(1.0)
    procs = []
    if ffmpeg:
        for p in ports:
            procs.append(subprocess.Popen(
                [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(clip), "-c:v", "libx264",
                 "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(args.fps), "-f", "mpegts",
                 f"udp://127.0.0.1:{p}?pkt_size=1316"]))
    for proc in procs:
        proc.wait()
    time.sleep(2.0)
    watcher.stop()
    thread.join()
    report = result["report"]
    latencies = [at - onset for c in onsets for onset, (at, _) in zip(onsets[c], alerts[c])]
    after_window = [r["latency_s"] for c in alerts for _, r in alerts[c]]
    video_s = report.video_seconds
    decode = sum(c["decode_cpu"] for c in report.cameras.values())
    lags = [lag for c in watcher.cams for lag in c.camera.stats.lags]
    return {
        "cameras": n, "video_s": video_s, "threats": sum(len(v) for v in onsets.values()),
        "alerted": sum(len(v) for v in alerts.values()),
        "onset_to_alert_median": statistics.median(latencies) if latencies else None,
        "onset_to_alert_max": max(latencies) if latencies else None,
        "window_to_alert_median": statistics.median(after_window) if after_window else None,
        "cpu_per_cam_s": report.cpu_seconds / video_s, "decode_cpu_per_cam_s": decode / video_s,
        "windows": sum(c["windows"] for c in report.cameras.values()),
        "skipped": sum(c["skipped"] for c in report.cameras.values()),
        "lag_median": statistics.median(lags) if lags else None, "lag_max": max(lags) if lags else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="1,4", help="camera counts to run (comma list)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each stream")
    parser.add_argument("--size", default="160x120", help="stream frame size WxH")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained checkpoint (default: train one)")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--no-ffmpeg", action="store_true", help="read the video as files in real time instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work or tempfile.mkdtemp(prefix="uprm-watch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    args.work = str(work)
    ffmpeg = None if args.no_ffmpeg else shutil.which("ffmpeg")
    start = time.perf_counter()
    checkpoint = args.checkpoint or train(work / "checkpoint")
    print(f"checkpoint {checkpoint} ({time.perf_counter() - start:.1f} s)")
    width, height = (int(v) for v in args.size.split("x"))
    threats = [(t, t + 4.0) for t in (8.0, 20.5, 33.0, 45.5) if t + 4.0 < args.seconds]
    clip = video(work / "threat.mp4", args.seconds, threats, args.fps, width, height)
    source = "ffmpeg UDP MPEG-TS streams" if ffmpeg else "files read in real time"
    print(f"{source}, {width}x{height} at {args.fps} fps, {args.seconds:.0f} s each, threats at "
          f"{', '.join(f'{a:g}' for a, _ in threats)} s; "
          f"windows of 4 s every 2 s (2 frames), 1 torch thread; load average {os.getloadavg()[0]:.1f}")
    header = ("cameras", "video s", "threats alerted", "onset->alert median / max s", "window->alert median s",
              "CPU s per camera-s", "decode CPU s per camera-s", "windows", "skipped", "frame->answer lag median / max s")
    print(" | ".join(header))
    for n in (int(v) for v in args.cameras.split(",")):
        r = run(n, clip, checkpoint, args, ffmpeg)
        print(" | ".join([str(r["cameras"]), f"{r['video_s']:.1f}", f"{r['alerted']}/{r['threats']}",
                          f"{_f(r['onset_to_alert_median'])} / {_f(r['onset_to_alert_max'])}",
                          _f(r["window_to_alert_median"]), f"{r['cpu_per_cam_s']:.3f}",
                          f"{r['decode_cpu_per_cam_s']:.3f}", str(r["windows"]), str(r["skipped"]),
                          f"{_f(r['lag_median'])} / {_f(r['lag_max'])}"]), flush=True)


def _f(value) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
