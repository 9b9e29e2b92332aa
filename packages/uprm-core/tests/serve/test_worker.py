"""The worker's pieces alone: progress counted from the identify answers, job errors
told without server paths or tracebacks, safe video ids; and the ``uprm serve`` command's
checks before it binds anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from uprm.cli import cli
from uprm.errors import VideoError
from uprm.serve.config import ServeConfig
from uprm.serve.store import Job
from uprm.serve.worker import ProgressTap, Worker, safe_video_id


class FakeModel:
    """Answers as many clips as the batch holds."""

    def __init__(self):
        self.calls = []

    def answer(self, batch, questions=("identify",), max_new_tokens=None):
        self.calls.append(tuple(questions))
        return [object()] * batch


def test_progress_counts_the_windows_asked_identify_only():
    model, reports = FakeModel(), []
    with ProgressTap(model, total=10, report=reports.append, every=0.0):
        model.answer(4, ("identify",), max_new_tokens=4)
        model.answer(2, ("locate", "attribute"))  # the threat windows' follow-up: not new windows
        model.answer(4, ("identify",))
        model.answer(2, ("identify",))
    assert reports == [4, 8, 10]
    assert "answer" not in vars(model)  # the method is the class's again
    assert model.calls == [("identify",), ("locate", "attribute"), ("identify",), ("identify",)]


def test_progress_reports_are_throttled_but_the_last_window_always_reported():
    model, reports = FakeModel(), []
    with ProgressTap(model, total=6, report=reports.append, every=3600.0):
        for _ in range(6):
            model.answer(1)
    assert reports == [1, 6]


def test_safe_video_ids():
    assert safe_video_id("shop cam 1.mp4") == "shop_cam_1"
    assert safe_video_id("../../etc/passwd") == "passwd"
    assert safe_video_id("cam/../x.mkv") == "x"
    assert safe_video_id("...mp4") == "video"
    assert safe_video_id("ñandú cam.mp4") == "ñandú_cam"


def _job(tmp_path, video, name="clip.mp4"):
    return Job(seq=1, id="a" * 32, state="running", source="upload", name=name, video=str(video),
               media_type="video/mp4", size=1, duration=1.0, created=0.0, started=0.0, finished=None, progress=0.0,
               windows_done=0, windows_total=None, attempts=1, error_code=None, error=None, result=None)


def test_job_errors_name_the_video_not_the_server_paths(tmp_path):
    config = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "data")
    worker = Worker(config, store=None, parent=None)
    upload = config.uploads_dir / ("a" * 32)
    job = _job(tmp_path, upload)
    code, message = worker._describe(job, VideoError(upload, "no such file"))
    assert code == "video_error" and message == "VideoError: clip.mp4: no such file"
    code, message = worker._describe(job, RuntimeError(f"internal {config.data_dir}/x"))
    assert code == "internal_error" and "incident" in message and str(tmp_path) not in message


def test_the_command_refuses_to_listen_beyond_loopback_without_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("UPRM_TOKEN", raising=False)
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path), "--host", "0.0.0.0", "--data-dir",
                                      str(tmp_path / "d")])
    assert result.exit_code == 1 and "needs a bearer token" in result.output
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path), "--host", "0.0.0.0", "--data-dir",
                                      str(tmp_path / "d")], env={"UPRM_TOKEN": "short"})
    assert result.exit_code == 1 and "16 characters" in result.output
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path / "d")])
    assert result.exit_code == 2  # no such checkpoint folder


def test_the_command_says_which_extra_is_missing(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "uprm.serve.server", None)  # as if fastapi/uvicorn were absent
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(cli, ["serve", "--checkpoint", str(tmp_path)])
    assert result.exit_code == 1 and 'pip install "uprm-core[serve]"' in result.output


def test_help_does_not_need_the_extra():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--media-root" in result.output and "UPRM_TOKEN" in result.output


def test_one_server_per_data_folder_and_a_busy_port_is_named(tmp_path):
    import socket

    from uprm.serve.config import ServeConfigError
    from uprm.serve.server import bind, data_lock, url_of

    with data_lock(tmp_path), pytest.raises(ServeConfigError, match="another uprm serve"), data_lock(tmp_path):
        pass
    with data_lock(tmp_path):  # released: free again
        pass
    sock = bind("127.0.0.1", 0)
    try:
        assert url_of(sock).startswith("http://127.0.0.1:")
        with pytest.raises(ServeConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
    if socket.has_ipv6:
        try:
            six = bind("::1", 0)
        except ServeConfigError:
            return  # no IPv6 loopback on this machine
        assert url_of(six).startswith("http://[::1]:")
        six.close()
