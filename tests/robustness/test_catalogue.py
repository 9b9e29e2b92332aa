"""A catalogue of bad inputs (issue 16): one table of named cases over every entry point
— the Python API, the ``uprm`` commands, the REST API and a stream. Each case builds a
small bad input in ``tmp_path``, hands it to one entry point and asserts either a clear
error (its type, and that its message names the file, field or line) or the documented
safe fallback. docs/robustness.md is the same table for readers; the last test keeps
the two in step.

Run: ``python -m pytest tests/robustness/test_catalogue.py -q`` (``UPRM_CATALOGUE_SHOW=1 ... -s``
prints every message).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import uprm
from uprm.errors import (
    AnnotationError,
    CheckpointError,
    ConfigError,
    MissingExpertError,
    RecordError,
    UnknownExpertError,
    UPRMError,
    VideoError,
    WatchError,
)
from uprm_expert_pose.errors import KeypointFileError, PoseWeightsError
from uprm_expert_relation.scene_graph import SceneGraphError, SceneGraphNotFoundError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "robustness.md"
FILE = "<file>"  # in an expectation: the input file's name must appear in the message


# ----------------------------------------------------------------------------- inputs


@dataclass
class Env:
    """What a case gets: a fresh folder, and the session's checkpoint and REST client on demand."""

    tmp: Path
    request: Any
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoint(self) -> Path:
        return self.request.getfixturevalue("tiny_checkpoint")

    @property
    def client(self) -> Any:
        return self.request.getfixturevalue("rest_client")

    def path(self, name: str) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def text(self, name: str, content: str | bytes) -> Path:
        p = self.path(name)
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        return p

    def json(self, name: str, data: Any) -> Path:
        return self.text(name, json.dumps(data))

    def video(self, name: str = "clip.mp4", n: int = 16, fps: float = 8.0, size: tuple[int, int] = (64, 48),
              noise: bool = False) -> Path:
        from uprm.data import write_mp4

        w, h = size
        rng = np.random.default_rng(0)
        frames = (rng.integers(0, 255, (h, w, 3), dtype=np.uint8) if noise else
                  np.full((h, w, 3), (25 * i) % 256, np.uint8) for i in range(n))
        return write_mp4(self.path(name), frames, fps=fps)

    def copy_checkpoint(self) -> Path:
        return Path(shutil.copytree(self.checkpoint, self.tmp / "ckpt"))

    def records(self, name: str = "records.json", video: str = "clip.mp4", **fields: Any) -> Path:
        rec = {"id": "clip/identify", "video": video, "task": "identify",
               "conversations": [{"from": "human", "value": "<video>\nIs there a threat?"},
                                 {"from": "gpt", "value": "No, there is no threat."}], **fields}
        return self.json(name, [rec])


def vfr_video(env: Env) -> Path:
    """Frames at 0, 40, 80 ms, then every 200 ms: variable frame rate (ms time base)."""
    import av

    path = env.path("vfr.mp4")
    pts = [0, 40, 80, 280, 480, 680, 880, 1080, 1280, 1480]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.options = {"preset": "ultrafast", "bf": "0"}
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    env.notes["pts"] = [t / 1000 for t in pts]
    return path


def audio_only(env: Env) -> Path:
    import av

    path = env.path("tone.mp4")
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


_HUGE: dict[str, bytes] = {}


def huge_video(env: Env) -> Path:
    """Two 8K (7680×4320) frames (encoded once per session: about a second each time)."""
    from uprm.data import write_mp4

    if "8k" not in _HUGE:
        frame = np.zeros((4320, 7680, 3), np.uint8)
        frame[:, 3840:] = 200
        _HUGE["8k"] = write_mp4(env.path("8k-first.mp4"), [frame, frame], fps=1, crf=40).read_bytes()
    return env.text("8k.mp4", _HUGE["8k"])


def truncated(env: Env, name: str = "cut.mp4") -> Path:
    data = env.video("whole.mp4", noise=True).read_bytes()
    return env.text(name, data[: len(data) // 2])


def corrupt_middle(env: Env) -> Path:
    """The middle fifth of the frame data overwritten with noise (the index intact)."""
    data = bytearray(env.video("whole.mp4", n=40, noise=True).read_bytes())
    n = len(data)
    data[int(n * 0.4): int(n * 0.6)] = np.random.default_rng(1).integers(0, 256, int(n * 0.6) - int(n * 0.4),
                                                                         dtype=np.uint8).tobytes()
    return env.text("corrupt.mp4", bytes(data))


def unreadable(env: Env) -> Path:
    """A video nobody may read (mode 000). As root, in a world-searchable folder, and the
    case drops to an unprivileged effective uid while it runs."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="uprm-unreadable-"))
    folder.chmod(0o755)
    env.notes["cleanup"] = folder
    path = folder / "locked.mp4"
    path.write_bytes(env.video().read_bytes())
    path.chmod(0)
    return path


def as_unprivileged(func: Callable[[], Any]) -> Any:
    if os.geteuid() != 0:
        return func()
    os.seteuid(65534)  # nobody; the saved uid stays 0, so it can be switched back
    try:
        return func()
    finally:
        os.seteuid(0)


def ucf(env: Env, line: str, name: str = "Temporal_Anomaly_Annotation.txt") -> Path:
    good = "Arson011_x264.mp4  Arson  150  300  -1  -1\n"
    return env.text(name, good + line + "\n")


def cuva_sheet(env: Env, moment: str) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Sheet1"
    ws.append(["video_id", "X1", "X2 - reason", "X2 - result", "X3 - moment", "X3 - description",
               "X4 - key sentences"])
    ws.append(["00001", "[7-1,5]", "[a man takes a bag]", "[the bag is gone]", "[0002,0010]", "[d]", "[k]"])
    ws.append(["00002", "[7-1,5]", "[a man takes a bag]", "[the bag is gone]", moment, "[d]", "[k]"])
    path = env.path("cuva.xlsx")
    book.save(path)
    return path


def keypoints_clip(env: Env, keypoints: Any, name: str = "keypoints.json") -> Any:
    from uprm.testing import synthetic_clip

    path = env.text(name, keypoints) if isinstance(keypoints, (str, bytes)) else env.json(name, keypoints)
    clip = synthetic_clip(4, size=32)
    clip.meta.update(keypoints=str(path), frame_indices=[0, 1, 2, 3], fps=2.0)
    return clip


def scene_graph_clip(env: Env, graph: Any, name: str = "scene_graph.json") -> Any:
    from uprm.testing import synthetic_clip

    path = env.text(name, graph) if isinstance(graph, (str, bytes)) else env.json(name, graph)
    clip = synthetic_clip(4, size=32)
    clip.meta.update(scene_graph=str(path), frame_indices=[0, 1, 2, 3], fps=2.0)
    return clip


_PERSON = [v for x, y in [(16, 6)] * 17 for v in (x, y, 1)]


def extract_with(expert: str) -> Callable[[Env, Any], Any]:
    def run(env: Env, clip: Any) -> Any:
        import uprm
        from uprm.testing import tiny_context

        return uprm.build_experts([expert], tiny_context())[expert].extract(clip)

    return run


def build_expert_with(expert: str, option: str) -> Callable[[Env, Path], Any]:
    """Build one expert with ``option=<the input file>`` (the weights are read when built or on first use)."""

    def run(env: Env, path: Path) -> Any:
        from uprm.testing import synthetic_clip, tiny_context

        built = uprm.build_experts([expert], tiny_context(), {expert: {option: str(path)}})[expert]
        return built.extract(synthetic_clip(4, size=32))

    return run


def _code_pickle(env: Env, name: str) -> Path:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1), "x": _Payload()}, buffer)
    return env.text(name, buffer.getvalue())


# ----------------------------------------------------------------------------- entry points


def load_clip(**kw: Any) -> Callable[[Env, Path], Any]:
    def run(env: Env, path: Path) -> Any:
        from uprm.data import load_clip as load

        return load(path, 8, **kw)

    return run


def cli(*args: Any) -> Callable[[Env, Any], Any]:
    """``uprm ARGS`` in process (click's runner); ``{input}`` / ``{ckpt}`` / ``{tmp}`` are filled in."""

    def run(env: Env, given: Any) -> Any:
        from click.testing import CliRunner

        from uprm.cli import cli as uprm

        values = {"input": given, "tmp": env.tmp}
        if any("{ckpt}" in str(a) for a in args):
            values["ckpt"] = env.checkpoint
        argv = [str(a).format(**values) for a in args]
        return CliRunner().invoke(uprm, argv, catch_exceptions=True)

    return run


def upload(content_type: str, name: str = "clip.mp4") -> Callable[[Env, bytes], Any]:
    def run(env: Env, data: bytes) -> Any:
        return env.client.post("/v1/jobs", files={"video": (name, data, content_type)})

    return run


def post_json(env: Env, body: Any) -> Any:
    return env.client.post("/v1/jobs", json=body)


def watch(**settings: Any) -> Callable[[Env, Any], Any]:
    def run(env: Env, source: Any) -> Any:
        options = dict(window=2.0, stride=1.0, open_timeout=0.5, read_timeout=0.5, reconnect_min=0.05,
                       reconnect_max=0.1, max_reconnects=0)
        options.update(settings)
        return uprm.watch([str(source)], env.checkpoint, max_seconds=20, **options)

    return run


# ----------------------------------------------------------------------------- expectations


class Expect:
    def check(self, env: Env, given: Any, run: Callable[[], Any]) -> None:  # pragma: no cover
        raise NotImplementedError


def _show(message: str) -> None:
    """``UPRM_CATALOGUE_SHOW=1 pytest -s``: print each message (to review them, or the docs' table)."""
    if os.environ.get("UPRM_CATALOGUE_SHOW"):
        print(f"\n    -> {message}")


def _names(names: tuple[str, ...], given: Any) -> list[str]:
    out = []
    for n in names:
        if n == FILE:
            out.append(Path(given).name)
        else:
            out.append(n)
    return out


class Raises(Expect):
    """An error of ``kind`` whose message contains every name (FILE: the input's file name)."""

    def __init__(self, kind: type[BaseException], *names: str) -> None:
        self.kind, self.names = kind, names

    def check(self, env: Env, given: Any, run: Callable[[], Any]) -> None:
        try:
            run()
        except self.kind as exc:
            message = str(exc)
            _show(f"{type(exc).__name__}: {message}")
            for name in _names(self.names, given):
                assert name in message, f"{name!r} not named in: {message}"
            return
        except BaseException as exc:
            raise AssertionError(f"expected {self.kind.__name__}, got {type(exc).__name__}:\n"
                                 f"{''.join(traceback.format_exception(exc))}") from exc
        raise AssertionError(f"expected {self.kind.__name__}, nothing was raised")


class CliFails(Expect):
    """A non-zero exit with a one-line message naming every name, never a traceback (an
    ``UPRMError`` that reaches click is turned into that line by ``uprm``'s handler)."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def check(self, env: Env, given: Any, run: Callable[[], Any]) -> None:
        result = run()
        exc = result.exception
        assert result.exit_code not in (0, None), result.output
        if exc is not None and not isinstance(exc, SystemExit):
            assert isinstance(exc, UPRMError), "".join(traceback.format_exception(exc))
        output = result.output + (str(exc) if isinstance(exc, UPRMError) else "")
        _show(f"exit {result.exit_code}: {output.strip()}")
        assert "Traceback" not in output, output
        for name in _names(self.names, given):
            lines = [ln for ln in output.splitlines() if name in ln]
            assert lines, f"{name!r} not named in: {output}"


class Problem(Expect):
    """An RFC 9457 problem answer: status, stable code, and a detail naming every name."""

    def __init__(self, status: int, code: str, *names: str) -> None:
        self.status, self.code, self.names = status, code, names

    def check(self, env: Env, given: Any, run: Callable[[], Any]) -> None:
        response = run()
        assert response.status_code == self.status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        _show(f"{response.status_code} {body['code']}: {body['detail']}")
        assert body["code"] == self.code, body
        assert "Traceback" not in response.text
        for name in self.names:
            assert name in body["detail"], f"{name!r} not named in: {body['detail']}"


class Fallback(Expect):
    """The documented safe behaviour: ``check(env, given, result)`` holds."""

    def __init__(self, check: Callable[[Env, Any, Any], None]) -> None:
        self._check = check

    def check(self, env: Env, given: Any, run: Callable[[], Any]) -> None:
        self._check(env, given, run())


# ----------------------------------------------------------------------------- fallbacks


def _still_image(env: Env, path: Path, clip: Any) -> None:
    assert tuple(clip.frames.shape) == (8, 3, 48, 64)
    assert (clip.frames == clip.frames[0]).all() and clip.timestamps.tolist() == [0.0] * 8


def _true_pts(env: Env, path: Path, clip: Any) -> None:
    assert clip.meta["variable_frame_rate"] is True
    pts = env.notes["pts"]
    assert all(round(t, 3) in pts for t in clip.timestamps.tolist())
    assert clip.timestamps.tolist() == sorted(clip.timestamps.tolist())
    # the frame on screen at each sampled centre: the last pts at or before it
    duration = clip.duration
    for i, t in enumerate(clip.timestamps.tolist()):
        centre = (i + 0.5) * duration / 8
        assert t == max(p for p in pts if p <= centre + 1e-9)


def _eight_k_downscaled(env: Env, path: Path, _: Any) -> None:
    from uprm.data import load_clip

    tracemalloc.start()
    try:
        clip = load_clip(path, 2, max_side=512)  # with max_side the limit is 8192x8192
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tuple(clip.frames.shape) == (2, 3, 288, 512) and clip.meta["source_size"] == [7680, 4320]
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB of Python/numpy memory"  # one 8K RGB frame is 95 MiB


def _segment_clamped(env: Env, path: Path, anns: Any) -> None:
    (_, ann) = anns
    assert ann.duration == 20.0 and ann.segments == [(10.0, 20.0)]


def _fast_parse(env: Env, text: str, segments: Any) -> None:
    assert env.notes["seconds"] < 2.0, env.notes["seconds"]
    assert [(s.start, s.end) for s in segments] == [(1.0, 2.0)]


def _timed_parse(env: Env, text: str) -> Any:
    import uprm

    start = time.perf_counter()
    out = uprm.parse_segments(text, 60.0)
    env.notes["seconds"] = time.perf_counter() - start
    return out


def _accepted_by_content(env: Env, data: bytes, response: Any) -> None:
    assert response.status_code == 202, response.text
    assert response.json()["video"]["media_type"] == "video/mp4"


def _camera_failed(env: Env, source: Any, report: Any) -> None:
    (cam,) = report.cameras.values()
    assert cam["state"] == "failed" and cam["sessions"] == 0, cam
    assert cam["source"] == str(source) and cam["last_error"], cam  # the report says which source and why
    assert report.stopped_by == "end of streams"


def _missing_sidecar(env: Env, key: str) -> Any:
    from uprm.testing import synthetic_clip

    clip = synthetic_clip(4, size=32)
    clip.meta.update({key: str(env.tmp / "gone.json"), "frame_indices": [0, 1, 2, 3], "fps": 2.0})
    return clip


def _plotted_two_steps(env: Env, run: Path, result: Any) -> None:
    assert result.exit_code == 0, result.output
    assert (env.tmp / "plots" / "loss.png").stat().st_size > 0


def _watched_until_the_damage(env: Env, source: Any, report: Any) -> None:
    (cam,) = report.cameras.values()
    assert cam["frames_decoded"] > 0 and cam["windows"] >= 1, cam  # the frames before the damage were watched
    assert cam["state"] == "failed" and "Invalid data" in cam["last_error"], cam
    assert report.stopped_by == "end of streams"


def _detected_8k(env: Env, path: Path, result: Any) -> None:
    assert result.exit_code == 0, result.output
    out = json.loads((env.tmp / "out" / "8k.json").read_text())
    assert out["settings"]["max_side"] == 256, out["settings"]


def _one_window(env: Env, path: Path, result: Any) -> None:
    assert len(result.windows) == 1 and result.duration == 0.125, (result.windows, result.duration)


def _ended_without_windows(env: Env, path: Path, report: Any) -> None:
    (cam,) = report.cameras.values()
    assert cam["state"] == "ended" and cam["frames_decoded"] == 1 and cam["windows"] == 0, cam


def _window_cut_at_end(env: Env, path: Path, clip: Any) -> None:
    assert clip.meta["window"] == [1.5, 2.0] and clip.frames.shape[0] == 8
    assert all(1.5 <= t < 2.0 for t in clip.timestamps.tolist())


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    name: str
    entry: str
    make_input: Callable[[Env], Any]
    run: Callable[[Env, Any], Any]
    expect: Expect


def _api(func: Callable[..., Any], *args: Any, **kw: Any) -> Callable[[Env, Any], Any]:
    return lambda env, given: func(given, *args, **kw)


def _lazy(module: str, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kw: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kw)

    return call


read_ucf_crime = _lazy("uprm.data", "read_ucf_crime")
read_cuva = _lazy("uprm.data", "read_cuva")
read_uca = _lazy("uprm.data", "read_uca")
load_records = _lazy("uprm.data", "load_records")
load_config_file = _lazy("uprm.training.config", "load_config_file")
read_humanml3d = _lazy("uprm.data", "read_humanml3d")
read_refcoco = _lazy("uprm.data", "read_refcoco")
read_activitynet = _lazy("uprm.data", "read_activitynet")
read_predictions = _lazy("uprm.data", "read_activitynet_predictions")


def _from_pretrained(env: Env, path: Path) -> Any:
    from uprm.modeling import UPRMModel

    return UPRMModel.from_pretrained(path)


def _damage_weights(damage: Callable[[Env, bytes], bytes]) -> Callable[[Env], Path]:
    def make(env: Env) -> Path:
        ckpt = env.copy_checkpoint()
        weights = ckpt / "model.safetensors"
        weights.write_bytes(damage(env, weights.read_bytes()))
        return ckpt

    return make


def _other_expert_set(env: Env, good: bytes) -> bytes:
    from uprm.testing import isolated_plugins

    with isolated_plugins(plugins={"toy": _ToyPlugin}, load_entry_points=False):
        other = uprm.build_model(uprm.UPRMConfig.tiny(experts=["coarse", "colour"], num_frames=2))
        path = other.save_pretrained(env.tmp / "other")
    return (path / "model.safetensors").read_bytes()


class _ToyPlugin:
    """The built-in coarse expert plus uprm.testing's small ColourExpert."""

    @staticmethod
    @uprm.hookimpl
    def uprm_register_experts():
        from uprm.testing import ColourExpert

        return [ColourExpert]


def _pickle_weights(env: Env, good: bytes) -> bytes:
    """The same tensors, written by ``torch.save``."""
    import io

    import torch
    from safetensors.torch import load

    buffer = io.BytesIO()
    torch.save(load(good), buffer)
    return buffer.getvalue()


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _pickle_with_code(env: Env, good: bytes) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"block.router.ffn.0.weight": torch.zeros(2), "x": _Payload()}, buffer)
    return buffer.getvalue()


def _from_pretrained_pickle(env: Env, path: Path) -> Any:
    from uprm.modeling import UPRMModel

    return UPRMModel.from_pretrained(path, allow_pickle=True)


def _same_weights(env: Env, path: Path, model: Any) -> None:
    import torch
    from safetensors.torch import load_file

    saved = load_file(str(env.checkpoint / "model.safetensors"))
    state = model.trainable_state_dict()
    assert set(saved) == set(state)
    assert all(torch.equal(saved[k], state[k].detach().cpu()) for k in saved)


def _edit_config(**changes: Any) -> Callable[[Env], Path]:
    def make(env: Env) -> Path:
        ckpt = env.copy_checkpoint()
        config = json.loads((ckpt / "config.json").read_text())
        config.update(changes)
        (ckpt / "config.json").write_text(json.dumps(config))
        return ckpt

    return make


def _locked_config(env: Env) -> Path:
    """A copy of the checkpoint, in a world-searchable folder, whose config.json nobody may read."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="uprm-unreadable-"))
    folder.chmod(0o755)
    env.notes["cleanup"] = folder
    ckpt = Path(shutil.copytree(env.checkpoint, folder / "ckpt"))
    ckpt.chmod(0o755)
    (ckpt / "config.json").chmod(0)
    return ckpt


def _build(config_kw: dict[str, Any]) -> Callable[[Env, Any], Any]:
    def run(env: Env, given: Any) -> Any:
        import uprm

        return uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, **config_kw))

    return run


def _config(**kw: Any) -> Callable[[Env, Any], Any]:
    def run(env: Env, given: Any) -> Any:
        from uprm.modeling import UPRMConfig

        return UPRMConfig(**kw)

    return run


def _clip_from_record(env: Env, path: Path) -> Any:
    from uprm.data import clip_from_record, load_records

    (record,) = load_records(path)
    return clip_from_record(record)


def _videos_folder(env: Env) -> Path:
    env.video("videos/Other001_x264.mp4")
    return env.tmp / "videos"


def _build_instructions_missing(env: Env, videos: Path) -> Any:
    from uprm.data import VideoAnnotation, build_instructions

    ann = VideoAnnotation(video_id="Arson011_x264", category="Arson", segments=[(1.0, 2.0)])
    return build_instructions([ann], videos=videos, missing="error")


def _refs_with_code(env: Env) -> Path:
    import pickle

    return env.text("refs(unc).p", pickle.dumps([{"ref_id": 1, "payload": _Payload()}]))


def _latin1_sheet(env: Env) -> Path:
    """A rater's sheet saved by a spreadsheet in Latin-1 (an accent in a comment), beside its key."""
    env.json("key.json", {"items": {}})
    return env.text("alice.csv", "item,score,comment\nab12,4,tr\xe8s bien\n".encode("latin-1"))


def _ucf_with_bad_video(env: Env) -> Path:
    env.text("videos/Arson/Arson011_x264.mp4", "not a video\n" * 20)
    return ucf(env, "Arson012_x264.mp4  Arson  150  300  -1  -1")


def _records_of_text_video(env: Env) -> Path:
    env.text("cam.mp4", "not a video\n" * 20)
    return env.records(video="cam.mp4", video_id="cam", category="Normal", segments=[], duration=2.0)


def _ucf_segments_past_end(env: Env, path: Path) -> Any:
    return read_ucf_crime(path, fps=30.0)


def _detect(env: Env, path: Path) -> Any:
    import uprm

    return uprm.detect(path, env.checkpoint, window=2.0, stride=2.0)


def _detect_video(env: Env, path: Path) -> Any:
    from uprm.detection import detect_video

    return detect_video(path, env.checkpoint, window=2.0, stride=2.0)


def _grid(env: Env) -> Path:
    env.video()
    train, test = env.records("train.json"), env.records("test.json")
    return env.text("grid.yaml", f"train: [{train}]\ntest: [{test}]\nseeds: three\n")


def _train_yaml(text: str) -> Callable[[Env], Path]:
    def make(env: Env) -> Path:
        env.video()
        env.records()
        return env.text("run.yaml", text)

    return make


CASES = [
    # -- video files through uprm.data.load_clip ------------------------------------------
    Case("video-zero-byte", "python: uprm.data.load_clip", lambda e: e.text("empty.mp4", b""), load_clip(),
         Raises(VideoError, FILE, "empty file (0 bytes)")),
    Case("video-truncated", "python: uprm.data.load_clip", truncated, load_clip(),
         Raises(VideoError, FILE, "truncated")),
    Case("video-text-named-mp4", "python: uprm.data.load_clip",
         lambda e: e.text("notes.mp4", "just some text, not a video\n" * 20), load_clip(),
         Raises(VideoError, FILE, "not a video file")),
    Case("video-audio-only", "python: uprm.data.load_clip", audio_only, load_clip(),
         Raises(VideoError, FILE, "only audio")),
    Case("video-one-frame", "python: uprm.data.load_clip", lambda e: e.video("still.mp4", n=1), load_clip(),
         Fallback(_still_image)),
    Case("video-variable-frame-rate", "python: uprm.data.load_clip", vfr_video, load_clip(),
         Fallback(_true_pts)),
    Case("video-8k-frames-refused", "python: uprm.data.load_clip", huge_video, load_clip(),
         Raises(VideoError, FILE, "7680x4320", "max_pixels")),
    Case("video-8k-frames-downscaled", "python: uprm.data.load_clip(max_side=512)", huge_video, lambda env, p: None,
         Fallback(_eight_k_downscaled)),
    Case("video-corrupt-mid-stream", "python: uprm.data.load_clip", corrupt_middle, load_clip(),
         Raises(VideoError, FILE, "damaged")),
    Case("video-unreadable-permissions", "python: uprm.data.load_clip", unreadable,
         lambda env, p: as_unprivileged(lambda: load_clip()(env, p)),
         Raises(VideoError, FILE, "permission denied")),
    Case("video-directory", "python: uprm.data.load_clip", lambda e: e.path("clips.mp4/x").parent, load_clip(),
         Raises(VideoError, FILE, "is a directory")),
    Case("video-missing", "python: uprm.data.load_clip", lambda e: e.path("gone.mp4"), load_clip(),
         Raises(VideoError, FILE, "no such file")),
    Case("detect-one-frame", "python: uprm.detection.detect_video", lambda e: e.video("still.mp4", n=1),
         _detect_video, Fallback(_one_window)),
    Case("detect-directory", "python: uprm.detect", lambda e: e.path("cams/x").parent, _detect,
         Raises(VideoError, "cams", "is a directory")),
    Case("video-window-past-end", "python: uprm.data.load_clip", lambda e: e.video(), load_clip(start=60.0),
         Raises(VideoError, FILE, "60.0 s")),
    # -- annotation files ------------------------------------------------------------------
    Case("ucf-wrong-column-count", "python: uprm.data.read_ucf_crime",
         lambda e: ucf(e, "Arson012_x264.mp4 Arson 150 300 -1"), _api(read_ucf_crime),
         Raises(AnnotationError, FILE + "", ":2", "expected 6 columns")),
    Case("ucf-non-numeric-frame", "python: uprm.data.read_ucf_crime",
         lambda e: ucf(e, "Arson012_x264.mp4 Arson 150 three -1 -1"), _api(read_ucf_crime),
         Raises(AnnotationError, ":2", "column 4", "'three'")),
    Case("ucf-end-before-start", "python: uprm.data.read_ucf_crime",
         lambda e: ucf(e, "Arson012_x264.mp4 Arson 300 150 -1 -1"), _api(read_ucf_crime),
         Raises(AnnotationError, ":2", "ends (150) before it starts (300)")),
    Case("ucf-segment-starts-past-video-end", "python: uprm.data.read_ucf_crime",
         lambda e: ucf(e, "Arson012_x264.mp4 600 Arson 900 1200 -1 -1"), _ucf_segments_past_end,
         Raises(AnnotationError, FILE, ":2", "starts at or after the video's end (20.00 s)")),
    Case("ucf-segment-ends-past-video-end", "python: uprm.data.read_ucf_crime",
         lambda e: e.text("ann.txt", "Arson011_x264.mp4 600 Arson 300 700 -1 -1\n"
                                     "Arson012_x264.mp4 600 Arson 300 650 -1 -1\n"),
         _ucf_segments_past_end, Fallback(_segment_clamped)),
    Case("ucf-video-in-folder-not-a-video", "python: uprm.data.read_ucf_crime(videos=...)", _ucf_with_bad_video,
         lambda env, path: read_ucf_crime(path, videos=env.tmp / "videos"),
         Raises(VideoError, "Arson011_x264.mp4", "not a video file")),
    Case("annotation-not-utf8", "python: uprm.data.read_ucf_crime",
         lambda e: e.text("ann.txt", "Caf\xe9_x264.mp4 Arson 1 2 -1 -1\n".encode("latin-1")), _api(read_ucf_crime),
         Raises(AnnotationError, FILE, "not a UTF-8 text file")),
    Case("cuva-moment-seconds-60", "python: uprm.data.read_cuva", lambda e: cuva_sheet(e, "[0060,0114]"),
         _api(read_cuva), Raises(AnnotationError, FILE, "row 3", "X3 - moment", "0060")),
    Case("cuva-row-timestamp-seconds-75", "python: uprm.data.read_cuva",
         lambda e: e.text("cuva.jsonl", json.dumps({"ID": 1, "visual_input": "00001.mp4", "task": "Timestamp",
                                                     "instruction": "When?", "output": "[0075,0110]"}) + "\n"),
         _api(read_cuva), Raises(AnnotationError, FILE, ":1")),
    Case("uca-event-end-before-start", "python: uprm.data.read_uca",
         lambda e: e.json("UCFCrime_Train.json", {"Arson011_x264": {"timestamps": [[5.0, 2.0]],
                                                                      "sentences": ["a fire"]}}),
         _api(read_uca), Raises(AnnotationError, FILE, "Arson011_x264", "event 1 ends")),
    Case("activitynet-segment-end-before-start", "python: uprm.data.read_activitynet",
         lambda e: e.json("gt.json", {"database": {"v1": {"duration": 10, "subset": "test", "annotations": [
             {"segment": [6, 2], "label": "Fighting"}]}}}),
         _api(read_activitynet), Raises(AnnotationError, FILE, "database.v1.annotations[0]", "ends (2) before it starts (6)")),
    Case("predictions-score-not-a-number", "python: uprm.data.read_activitynet_predictions",
         lambda e: e.json("preds.json", {"results": {"v1": [{"segment": [1, 2], "score": "high"}]}}),
         _api(read_predictions), Raises(AnnotationError, FILE, "results.v1", "'score'")),
    Case("humanml3d-text-not-utf8", "python: uprm.data.read_humanml3d",
         lambda e: e.text("HumanML3D/texts/000001.txt", "a person waves#a/DET#0.0#0.0\ncaf\xe9#x#0#0\n"
                          .encode("latin-1")).parent.parent, _api(read_humanml3d),
         Raises(AnnotationError, "000001.txt", ":2", "not a UTF-8 text file")),
    Case("refcoco-pickle-with-code", "python: uprm.data.read_refcoco", _refs_with_code, _api(read_refcoco),
         Raises(AnnotationError, FILE, "refusing to unpickle the global")),
    Case("predictions-nan-score", "python: uprm.data.read_activitynet_predictions",
         lambda e: e.text("preds.json", '{"results": {"v1": [{"segment": [1, 2], "score": NaN}]}}'),
         _api(read_predictions), Raises(AnnotationError, FILE, "results.v1[0]", "'score' must be a number, got nan")),
    # -- instruction records -----------------------------------------------------------------
    Case("records-not-utf8", "python: uprm.data.load_records",
         lambda e: e.text("records.json", '[{"video": "caf\xe9.mp4"}]'.encode("latin-1")), _api(load_records),
         Raises(RecordError, FILE, "UTF-8")),
    Case("records-missing-media-field", "python: uprm.data.load_records",
         lambda e: e.json("records.json", [{"id": "r1", "task": "identify", "conversations": []}]),
         _api(load_records), Raises(RecordError, FILE, "'video' or 'image'")),
    Case("records-window-end-before-start", "python: uprm.data.load_records",
         lambda e: e.records(window=[8.0, 2.0]), _api(load_records), Raises(RecordError, FILE, "'window'")),
    Case("records-window-negative-start", "python: uprm.data.load_records",
         lambda e: e.records(window=[-3.0, 1.0]), _api(load_records),
         Raises(RecordError, FILE, "record 0 ('clip/identify')", "'window'")),
    Case("record-window-end-past-video-end", "python: uprm.data.clip_from_record",
         lambda e: e.video() and e.records(window=[1.5, 50.0]), _clip_from_record, Fallback(_window_cut_at_end)),
    Case("record-image-text-named-png", "python: uprm.data.clip_from_record",
         lambda e: e.text("photo.png", "not an image\n") and e.json("records.json", [
             {"id": "p/identify", "image": "photo.png", "task": "identify", "conversations": []}]),
         _clip_from_record, Raises(VideoError, "photo.png", "not a video or image FFmpeg can decode")),
    Case("record-video-missing", "python: uprm.data.clip_from_record", lambda e: e.records(video="gone.mp4"),
         _clip_from_record, Raises(VideoError, "gone.mp4", "no such file")),
    Case("record-window-past-video-end", "python: uprm.data.clip_from_record",
         lambda e: e.video() and e.records(window=[30.0, 38.0]), _clip_from_record,
         Raises(VideoError, "clip.mp4", "30.0 s", "lasts 2.000 s")),
    Case("instructions-video-not-found", "python: uprm.data.build_instructions", _videos_folder, _build_instructions_missing,
         Raises(AnnotationError, "Arson011_x264", "no video file")),
    # -- sidecar files through the experts -------------------------------------------------
    Case("keypoints-nan", "python: pose expert extract",
         lambda e: keypoints_clip(e, '[{"image_id": 0, "category_id": 1, "score": 0.9, "keypoints": ['
                                  + ", ".join(["NaN"] + [str(v) for v in _PERSON[1:]]) + "]}]"),
         extract_with("pose"), Raises(KeypointFileError, "keypoints.json", "[0].keypoints[0]", "is nan")),
    Case("keypoints-not-utf8", "python: pose expert extract",
         lambda e: keypoints_clip(e, b'[{"image_id": 0, "note": "caf\xe9"}]'), extract_with("pose"),
         Raises(KeypointFileError, "keypoints.json", "UTF-8")),
    Case("triplet-missing-predicate", "python: relation expert extract",
         lambda e: scene_graph_clip(e, {"video_id": "v", "width": 32, "height": 32, "frames": [
             {"frame_index": 0, "objects": [], "triplets": [
                 {"subject": {"label": "person", "box": [1, 1, 9, 9]},
                  "object": {"label": "bag", "box": [10, 10, 20, 20]}}]}]}),
         extract_with("relation"), Raises(SceneGraphError, "scene_graph.json", "frames[0].triplets[0].predicate",
                                          "missing")),
    Case("scene-graph-truncated-json", "python: relation expert extract",
         lambda e: scene_graph_clip(e, '{"video_id": "v", "frames": [{"frame_index": 0,'), extract_with("relation"),
         Raises(SceneGraphError, "scene_graph.json", "line 1")),
    Case("keypoints-missing-file", "python: pose expert extract", lambda e: _missing_sidecar(e, "keypoints"),
         extract_with("pose"), Raises(KeypointFileError, "gone.json")),
    Case("scene-graph-missing-file", "python: relation expert extract",
         lambda e: _missing_sidecar(e, "scene_graph"), extract_with("relation"),
         Raises(SceneGraphNotFoundError, "gone.json", "no such scene-graph file")),
    Case("pose-weights-text-file", "python: pose expert build", lambda e: e.text("yolo-pose.pt", "not weights\n"),
         build_expert_with("pose", "weights"), Raises(PoseWeightsError, FILE, "not a PyTorch checkpoint")),
    Case("sam-checkpoint-with-code", "python: background expert build", lambda e: _code_pickle(e, "sam_vit_b.pth"),
         build_expert_with("background", "checkpoint"), Raises(CheckpointError, FILE)),
    Case("sam-checkpoint-truncated", "python: background expert build",
         lambda e: e.text("sam_vit_b.pth", _code_pickle(e, "whole.pth").read_bytes()[:300]),
         build_expert_with("background", "checkpoint"), Raises(CheckpointError, FILE)),
    # -- configuration -----------------------------------------------------------------------
    Case("config-wrong-type", "python: uprm.UPRMConfig", lambda e: None, _config(num_frames="8"),
         Raises(ConfigError, "num_frames", "'8'")),
    Case("config-unknown-expert", "python: uprm.build_model", lambda e: None, _build({"experts": ["posse"]}),
         Raises(UnknownExpertError, "posse")),
    Case("yaml-config-wrong-types", "python: uprm.training.load_config_file",
         lambda e: e.text("run.yaml", "max_steps: ten\nbatch_size: 8\n"), _api(load_config_file),
         Raises(ConfigError, FILE, "line 1", "max_steps", "'ten'")),
    Case("yaml-config-unknown-key", "python: uprm.training.load_config_file",
         lambda e: e.text("run.yaml", "max_stpes: 10\n"), _api(load_config_file),
         Raises(ConfigError, FILE, "max_stpes")),
    Case("yaml-config-not-utf8", "python: uprm.training.load_config_file",
         lambda e: e.text("run.yaml", "out: caf\xe9\n".encode("latin-1")), _api(load_config_file),
         Raises(ConfigError, FILE, "UTF-8")),
    Case("yaml-config-bad-syntax", "python: uprm.training.load_config_file",
         lambda e: e.text("run.yaml", "max_steps: [1, 2\nlr: 3\n"), _api(load_config_file),
         Raises(ConfigError, FILE, "line")),
    # -- checkpoints -------------------------------------------------------------------------
    Case("checkpoint-uninstalled-plugin", "python: UPRMModel.from_pretrained",
         _edit_config(experts=["motion", "coarse"], expert_names=["motion", "coarse"],
                      distributions={"motion": "uprm-expert-motion"}),
         _from_pretrained, Raises(MissingExpertError, "motion", "pip install uprm-expert-motion")),
    Case("checkpoint-other-expert-set", "python: UPRMModel.from_pretrained", _damage_weights(_other_expert_set),
         _from_pretrained, Raises(CheckpointError, "model.safetensors", "expert columns")),
    Case("checkpoint-truncated-safetensors", "python: UPRMModel.from_pretrained",
         _damage_weights(lambda e, good: good[: len(good) // 2]), _from_pretrained,
         Raises(CheckpointError, "model.safetensors", "cannot read the weights")),
    Case("checkpoint-pickle-as-safetensors", "python: UPRMModel.from_pretrained", _damage_weights(_pickle_weights),
         _from_pretrained, Raises(CheckpointError, "model.safetensors", "pickle")),
    Case("checkpoint-pickle-opted-in", "python: UPRMModel.from_pretrained", _damage_weights(_pickle_weights),
         _from_pretrained_pickle, Fallback(_same_weights)),
    Case("checkpoint-pickle-with-code-opted-in", "python: UPRMModel.from_pretrained",
         _damage_weights(_pickle_with_code), _from_pretrained_pickle,
         Raises(CheckpointError, "model.safetensors", "refused even with allow_pickle=True")),
    Case("checkpoint-config-wrong-type", "python: UPRMModel.from_pretrained", _edit_config(num_frames="eight"),
         _from_pretrained, Raises(CheckpointError, "config.json", "num_frames")),
    Case("checkpoint-is-a-file", "python: UPRMModel.from_pretrained", lambda e: e.text("model.safetensors", b"x"),
         _from_pretrained, Raises(CheckpointError, FILE, "is a file; give the checkpoint folder")),
    Case("checkpoint-config-unreadable", "python: UPRMModel.from_pretrained", _locked_config,
         lambda env, path: as_unprivileged(lambda: _from_pretrained(env, path)),
         Raises(CheckpointError, "config.json", "cannot be read (Permission denied)")),
    # -- model answers -----------------------------------------------------------------------
    Case("answer-of-a-megabyte", "python: uprm.parse_segments",
         lambda e: "The threat occurs between 1 and 2 seconds. " + "and then " * 115_000, _timed_parse,
         Fallback(_fast_parse)),
    Case("detect-text-named-mp4", "python: uprm.detect", lambda e: e.text("cam.mp4", "not a video\n" * 50),
         _detect, Raises(VideoError, FILE, "not a video file")),
    # -- the uprm commands -------------------------------------------------------------------
    Case("cli-extract-records-not-json", "cli: uprm extract", lambda e: e.text("records.json", "[{"),
         cli("extract", "--data", "{input}", "--out", "{tmp}/cache", "--quiet"), CliFails(FILE)),
    Case("cli-extract-record-video-missing", "cli: uprm extract", lambda e: e.records(video="gone.mp4"),
         cli("extract", "--data", "{input}", "--experts", "coarse", "--out", "{tmp}/cache", "--quiet"),
         CliFails("gone.mp4")),
    Case("cli-extract-unknown-expert", "cli: uprm extract", lambda e: e.video() and e.records(),
         cli("extract", "--data", "{input}", "--experts", "coarse,posse", "--out", "{tmp}/cache", "--quiet"),
         CliFails("posse")),
    Case("cli-train-yaml-not-utf8", "cli: uprm train", lambda e: e.text("run.yaml", "out: caf\xe9\n".encode("latin-1")),
         cli("train", "--config", "{input}"), CliFails(FILE, "UTF-8")),
    Case("cli-train-yaml-wrong-types", "cli: uprm train", lambda e: e.text("run.yaml", "batch_size: [8]\n"),
         cli("train", "--config", "{input}"), CliFails(FILE, "batch_size")),
    Case("cli-train-yaml-nan-learning-rate", "cli: uprm train", _train_yaml("lr: .nan\ntiny: true\nmax_steps: 1\n"),
         cli("train", "--config", "{input}", "--data", "{tmp}/records.json", "--out", "{tmp}/run", "--quiet"),
         CliFails(FILE, "line 1", "lr: Input should be a finite number")),
    Case("cli-train-config-uninstalled-plugin", "cli: uprm train",
         _train_yaml("experts: [motion]\ntiny: true\nmax_steps: 1\nnum_frames: 2\n"),
         cli("train", "--config", "{input}", "--data", "{tmp}/records.json", "--out", "{tmp}/run", "--quiet"),
         CliFails("motion")),
    Case("cli-eval-predictions-wrong-layout", "cli: uprm eval",
         lambda e: e.json("preds.json", {"v1": [[1, 2, 0.5]]}),
         cli("eval", "--predictions", "{input}", "--ground-truth", "{input}"), CliFails(FILE)),
    Case("cli-eval-video-not-a-video", "cli: uprm eval", _records_of_text_video,
         cli("eval", "--checkpoint", "{ckpt}", "--data", "{input}", "--out", "{tmp}/eval"), CliFails("cam.mp4")),
    Case("cli-eval-ratings-sheet-not-utf8", "cli: uprm eval ratings", _latin1_sheet,
         cli("eval", "ratings", "{input}"), CliFails("alice.csv", "row 2", "UTF-8")),
    Case("cli-eval-sheets-answers-not-utf8", "cli: uprm eval sheets",
         lambda e: e.text("answers.jsonl", '{"record": "caf\xe9"}\n'.encode("latin-1")),
         cli("eval", "sheets", "--answers", "{input}", "--out", "{tmp}/sheets"), CliFails(FILE, "UTF-8")),
    Case("cli-eval-missing-checkpoint", "cli: uprm eval", lambda e: e.records(),
         cli("eval", "--checkpoint", "{tmp}/nowhere", "--data", "{input}", "--out", "{tmp}/eval"),
         CliFails("nowhere")),
    Case("cli-detect-text-named-mp4", "cli: uprm detect", lambda e: e.text("cam.mp4", "not a video\n" * 50),
         cli("detect", "{input}", "--checkpoint", "{ckpt}", "--out", "{tmp}/out", "--quiet"), CliFails(FILE)),
    Case("cli-detect-8k-refused", "cli: uprm detect", huge_video,
         cli("detect", "{input}", "--checkpoint", "{ckpt}", "--out", "{tmp}/out", "--window", "2", "--quiet"),
         CliFails(FILE, "7680x4320", "--max-side")),
    Case("cli-detect-8k-downscaled", "cli: uprm detect --max-side", huge_video,
         cli("detect", "{input}", "--checkpoint", "{ckpt}", "--out", "{tmp}/out", "--window", "2", "--max-side", "256",
             "--no-evidence", "--quiet"), Fallback(_detected_8k)),
    Case("cli-data-ucf-crime-bad-line", "cli: uprm data ucf-crime",
         lambda e: ucf(e, "Arson012_x264.mp4 Arson 150 x -1 -1"),
         cli("data", "ucf-crime", "{input}", "--out", "{tmp}/out.json"), CliFails(FILE, ":2")),
    Case("cli-data-cuva-seconds-60", "cli: uprm data cuva", lambda e: cuva_sheet(e, "[0060,0114]"),
         cli("data", "cuva", "{input}", "--out", "{tmp}/out.json"), CliFails(FILE, "row 3")),
    Case("cli-ablate-grid-wrong-type", "cli: uprm ablate", _grid, cli("ablate", "--config", "{input}"),
         CliFails(FILE, "seeds")),
    Case("cli-plot-run-without-log", "cli: uprm plot", lambda e: e.path("runs/a/x").parent,
         cli("plot", "{input}", "--out", "{tmp}/plots"), CliFails("runs/a")),
    Case("cli-plot-log-torn-last-line", "cli: uprm plot",
         lambda e: e.text("runs/b/log.jsonl", "".join(json.dumps({"step": i, "loss": 2.0 / i, "ce_loss": 2.0 / i})
                                                     + "\n" for i in (1, 2)) + '{"step": 3, "lo').parent,
         cli("plot", "{input}", "--out", "{tmp}/plots"), Fallback(_plotted_two_steps)),
    Case("cli-plot-log-not-utf8", "cli: uprm plot",
         lambda e: e.text("runs/c/log.jsonl", b'{"step": 1, "loss": "\xe9"}\n').parent,
         cli("plot", "{input}", "--out", "{tmp}/plots"), CliFails("runs/c", "no training records")),
    Case("cli-demo-out-is-a-file", "cli: uprm demo", lambda e: e.text("demo", "a file"),
         cli("demo", "--quick", "--out", "{input}"), CliFails(FILE)),
    Case("cli-watch-not-a-video", "cli: uprm watch", lambda e: e.text("cam.mp4", "not a video\n" * 50),
         cli("watch", "{input}", "--checkpoint", "{ckpt}", "--max-reconnects", "0", "--open-timeout", "0.5"),
         CliFails(FILE)),
    Case("cli-serve-public-without-token", "cli: uprm serve", lambda e: None,
         cli("serve", "--checkpoint", "{ckpt}", "--host", "0.0.0.0", "--data-dir", "{tmp}/serve"),
         CliFails("--token")),
    Case("cli-serve-checkpoint-not-a-checkpoint", "cli: uprm serve", lambda e: e.path("empty/x").parent,
         cli("serve", "--checkpoint", "{input}", "--data-dir", "{tmp}/serve", "--port", "0"),
         CliFails("empty", "no config.json")),
    Case("cli-watch-webhook-not-http", "cli: uprm watch", lambda e: e.video(),
         cli("watch", "{input}", "--checkpoint", "{ckpt}", "--webhook", "alerts.local/in"),
         CliFails("webhook", "alerts.local/in")),
    # -- the REST API ------------------------------------------------------------------------
    Case("rest-upload-lying-content-type", "rest: POST /v1/jobs",
         lambda e: b"just some text, not a video at all\n" * 20, upload("video/mp4", "cam1.mp4"),
         Problem(415, "not_a_video", "cam1.mp4")),
    Case("rest-upload-video-declared-as-text", "rest: POST /v1/jobs (upload)", lambda e: e.video().read_bytes(),
         upload("text/plain", "notes.txt"), Fallback(_accepted_by_content)),
    Case("rest-upload-zero-byte", "rest: POST /v1/jobs (upload)", lambda e: b"", upload("video/mp4", "empty.mp4"),
         Problem(400, "empty_file", "empty.mp4")),
    Case("rest-upload-truncated", "rest: POST /v1/jobs (upload)", lambda e: truncated(e).read_bytes(),
         upload("video/mp4", "cut.mp4"), Problem(400, "damaged_video", "cut.mp4")),
    Case("rest-upload-audio-only", "rest: POST /v1/jobs (upload)", lambda e: audio_only(e).read_bytes(),
         upload("video/mp4", "tone.mp4"), Problem(415, "no_video_stream", "tone.mp4")),
    Case("rest-upload-wrong-field", "rest: POST /v1/jobs (upload)", lambda e: e.video().read_bytes(),
         lambda env, data: env.client.post("/v1/jobs", files={"file": ("clip.mp4", data, "video/mp4")}),
         Problem(400, "missing_video", "'video'")),
    Case("rest-path-is-a-directory", "rest: POST /v1/jobs (path)",
         lambda e: (e.client.media_root / "cams").mkdir(exist_ok=True) or {"path": "cams"}, post_json,
         Problem(400, "not_a_file", "cams")),
    Case("rest-path-text-named-mp4", "rest: POST /v1/jobs (path)",
         lambda e: (e.client.media_root / "notes.mp4").write_text("not a video\n" * 20) and {"path": "notes.mp4"},
         post_json, Problem(415, "not_a_video", "notes.mp4")),
    Case("rest-path-wrong-type", "rest: POST /v1/jobs (path)", lambda e: {"path": 5}, post_json,
         Problem(422, "invalid_request", "path")),
    # -- a stream ----------------------------------------------------------------------------
    Case("stream-unsupported-scheme", "stream: uprm.watch", lambda e: "gopher://camera.local/live", watch(),
         Raises(WatchError, "gopher", "camera.local")),
    Case("stream-text-file-as-source", "stream: uprm.watch", lambda e: e.text("cam.mp4", "not a video\n" * 50),
         watch(), Fallback(_camera_failed)),
    Case("stream-one-frame-file", "stream: uprm.watch", lambda e: e.video("still.mp4", n=1), watch(),
         Fallback(_ended_without_windows)),
    Case("stream-directory-as-source", "stream: uprm.watch", lambda e: e.path("cams/x").parent, watch(),
         Raises(WatchError, "cams")),
    Case("stream-truncated-file", "stream: uprm.watch", truncated, watch(), Fallback(_camera_failed)),
    Case("stream-corrupt-mid-file", "stream: uprm.watch", corrupt_middle, watch(), Fallback(_watched_until_the_damage)),
    Case("stream-threshold-out-of-range", "stream: uprm.watch", lambda e: "udp://127.0.0.1:9",
         watch(threshold=1.5), Raises(WatchError, "threshold")),
    Case("stream-webhook-not-http", "stream: uprm.watch", lambda e: e.video(), watch(webhook="ftp://alerts.local/in"),
         Raises(WatchError, "webhook", "ftp://alerts.local/in")),
    Case("stream-alerts-under-a-file", "stream: uprm.watch", lambda e: e.video(),
         lambda env, v: watch(alerts=str(env.text("out", "a file") / "alerts.jsonl"))(env, v),
         Raises(WatchError, "alerts", "out/alerts.jsonl", "File exists")),
    Case("stream-clips-is-a-file", "stream: uprm.watch", lambda e: e.video(),
         lambda env, v: watch(clips=str(env.text("clips", "a file")))(env, v), Raises(WatchError, "clips", "File exists")),
    Case("stream-url-that-never-answers", "stream: uprm.watch", lambda e: "udp://127.0.0.1:9", watch(),
         Fallback(_camera_failed)),
]


#: no case may take longer (a bad input must never hang an entry point: e.g. `uprm serve`
#: starting to serve instead of refusing its settings)
CASE_SECONDS = 120


def _hung(signum: int, frame: Any) -> None:
    raise TimeoutError(f"the case ran for more than {CASE_SECONDS} s: a bad input must not hang")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import signal

    env = Env(tmp_path, request)
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(CASE_SECONDS)
    try:
        given = case.make_input(env)
        case.expect.check(env, given, lambda: case.run(env, given))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        folder = env.notes.get("cleanup")
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def test_the_catalogue_is_large_named_and_covers_every_entry_point() -> None:
    names = [c.name for c in CASES]
    assert len(names) >= 45 and len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names)
    kinds = {c.entry.split(":")[0] for c in CASES}
    assert kinds == {"python", "cli", "rest", "stream"}


def test_every_case_is_in_the_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M))
    missing = [c.name for c in CASES if c.name not in rows]
    assert not missing, f"docs/robustness.md lacks {missing}"
    stale = sorted(rows - {c.name for c in CASES})
    assert not stale, f"docs/robustness.md lists cases that do not exist: {stale}"
