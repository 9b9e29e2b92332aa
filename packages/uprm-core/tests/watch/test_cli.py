"""``uprm watch`` from the command line: SIGINT and SIGTERM to a real process close the
open event and flush the alerts before a clean exit; the output formats, --stop-file,
--report and bad sources (in-process with click's runner)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

from uprm.cli import cli
from uprm.watch import read_alerts


def _start(tmp_path, video, checkpoint, name):
    alerts, report = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json"
    cmd = [sys.executable, "-m", "uprm", "watch", f"gate={video}", "--realtime", "--checkpoint", str(checkpoint),
           "--alerts", str(alerts), "--format", "json", "--report", str(report), "--window", "4", "--stride", "2",
           "--threads", "1"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), alerts, report


def test_sigint_and_sigterm_close_the_open_event_and_flush(tmp_path, make_video, watch_checkpoint, until):
    """Two real ``uprm watch`` processes (run side by side to save time): one gets SIGINT,
    the other SIGTERM, once their event is open."""
    video = make_video(tmp_path / "gate.mp4", 120.0, (2.0, 120.0))
    runs = {sig: _start(tmp_path, video, watch_checkpoint, sig.name) for sig in (signal.SIGINT, signal.SIGTERM)}
    outputs = {}
    try:
        for sig, (proc, alerts, _) in runs.items():
            assert until(lambda alerts=alerts: alerts.exists() and read_alerts(alerts), 120), f"{sig.name}: no alert"
            proc.send_signal(sig)
        for sig, (proc, _, _) in runs.items():
            outputs[sig] = proc.communicate(timeout=60)
    finally:
        for proc, _, _ in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for sig, (proc, alerts, report) in runs.items():
        out, err = outputs[sig]
        assert proc.returncode == 0, err
        records = read_alerts(alerts)
        assert [r["type"] for r in records] == ["open", "close"] and records[1]["reason"] == "shutdown"
        assert records[0]["id"] == records[1]["id"] and records[0]["camera"] == "gate"
        lines = [json.loads(line) for line in out.splitlines()]
        assert [x["type"] for x in lines] == ["open", "close", "report"] and lines[:2] == records
        assert lines[2]["stopped_by"] == "stop" and json.loads(report.read_text())["stopped_by"] == "stop"
        assert sig.name in err and "closing open events" in err




def test_text_format_on_a_file(tmp_path, make_video, watch_checkpoint, in_process):
    video = make_video(tmp_path / "shop.mp4", 20.0, (8.0, 12.0))
    result = in_process.invoke(cli, ["watch", str(video), "--checkpoint", str(watch_checkpoint), "--window", "4",
                                     "--stride", "2", "--cooldown", "2", "--clips", str(tmp_path / "clips")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OPEN   cam1-") and "0:00:06-0:00:10" in lines[0] and "a person grabbing a bag" in lines[0]
    assert lines[1].startswith("CLOSE  cam1-") and "0:00:06-0:00:14" in lines[1] and lines[1].endswith("(cooldown)")
    assert "cam1: ended, 20.0 s of video, 9 windows, 0 skipped" in result.stdout
    assert "stopped by end of streams" in result.stdout
    assert len(list((tmp_path / "clips").glob("cam1-*.mp4"))) == 1


def test_table_format_and_stop_file(tmp_path, make_video, watch_checkpoint, in_process):
    video = make_video(tmp_path / "v.mp4", 120.0, (99.0, 99.0))
    stop = tmp_path / "stop"
    timer = threading.Timer(4.0, stop.touch)
    timer.start()
    result = in_process.invoke(cli, ["watch", f"hall={video}", "--checkpoint", str(watch_checkpoint), "--realtime",
                                     "--window", "4", "--stride", "2", "--format", "table", "--stop-file", str(stop)])
    timer.cancel()
    assert result.exit_code == 0, result.output
    assert "camera  state" in result.stdout and "hall" in result.stdout and "no alerts yet" in result.stdout
    assert "stopped by stop" in result.output


def test_status_file_is_written_while_watching_and_at_exit(tmp_path, make_video, watch_checkpoint, in_process):
    """--status-file: the live status as JSON every 2 s (atomically), for another process;
    a last time at exit."""
    video = make_video(tmp_path / "v.mp4", 12.0, (4.0, 8.0))
    status = tmp_path / "status.json"
    seen: list[dict] = []

    def poll():
        while not done.is_set():
            if status.exists():
                seen.append(json.loads(status.read_text()))  # never half a file
            done.wait(0.5)

    done = threading.Event()
    poller = threading.Thread(target=poll)
    poller.start()
    try:
        result = in_process.invoke(cli, ["watch", f"hall={video}", "--checkpoint", str(watch_checkpoint), "--realtime",
                                         "--window", "4", "--stride", "2", "--cooldown", "2", "--status-file",
                                         str(status), "--clips", str(tmp_path / "clips"), "--alerts",
                                         str(tmp_path / "a.jsonl")])
    finally:
        done.set()
        poller.join()
    assert result.exit_code == 0, result.output
    live = [s for s in seen if s["cameras"][0]["state"] == "live"]
    assert len(live) >= 3 and live[-1]["cameras"][0]["ring_frames"] > 0 and live[-1]["threads"] >= 2
    last = json.loads(status.read_text())
    cam = last["cameras"][0]
    assert (cam["camera"], cam["state"], cam["drops"], cam["size_changes"]) == ("hall", "ended", 0, 0)
    assert last["alerts_written"] == len(read_alerts(tmp_path / "a.jsonl")) == 2 and last["webhook"] is None
    assert last["clips"]["written"] == 1 and last["clips"]["failed"] == 0 and last["written_at"] > 0


def test_bad_sources_and_options(tmp_path, watch_checkpoint, in_process):
    result = in_process.invoke(cli, ["watch", str(tmp_path / "missing.mp4"), "--checkpoint", str(watch_checkpoint)])
    assert result.exit_code == 1 and "neither a stream URL, a device nor an existing video file" in result.output
    result = in_process.invoke(cli, ["watch", "udp://127.0.0.1:9", "--checkpoint", str(watch_checkpoint),
                                     "--av-option", "nokey"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_help_lists_the_command(in_process):
    result = in_process.invoke(cli, ["watch", "--help"])
    assert result.exit_code == 0 and "--webhook" in result.output and "--cooldown" in result.output
