"""load_clip and friends on H.264 files the tests write with PyAV."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import uprm
from uprm.data import VideoReader, iter_windows, load_clip, load_image, probe_video, sample_times
from uprm.data import video as video_mod


def test_uniform_sampling_returns_the_frames_on_screen_at_the_centres(tmp_path, write_video, frame_number):
    path = write_video(tmp_path / "Abuse001_x264.mp4", num_frames=40, fps=10.0)
    clip = load_clip(path)
    assert isinstance(clip, uprm.VideoClip)
    assert clip.frames.shape == (8, 3, 48, 64) and clip.frames.dtype == torch.uint8
    assert clip.video_id == "Abuse001_x264"
    assert clip.duration == pytest.approx(4.0)
    # 8 parts of 0.5 s, centres 0.25, 0.75, ... → frames 2, 7, 12, ...
    expected = [2, 7, 12, 17, 22, 27, 32, 37]
    assert [frame_number(f) for f in clip.frames] == expected
    assert clip.meta["frame_indices"] == expected
    assert clip.timestamps.tolist() == pytest.approx([i / 10 for i in expected])
    assert clip.meta["path"] == str(path)
    assert clip.meta["window"] == [0.0, pytest.approx(4.0)]
    assert clip.meta["fps"] == pytest.approx(10.0)
    assert clip.meta["source_size"] == [64, 48]


def test_window_sampling_stays_inside_the_window(tmp_path, write_video, frame_number):
    path = write_video(tmp_path / "v.mp4", num_frames=100, fps=10.0, gop=25)
    clip = load_clip(path, num_frames=4, start=3.0, end=5.0)
    assert [frame_number(f) for f in clip.frames] == [32, 37, 42, 47]
    assert clip.meta["window"] == [3.0, 5.0]
    assert all(3.0 <= t < 5.0 for t in clip.timestamps.tolist())
    assert clip.duration == pytest.approx(10.0)  # the whole file, not the window
    # end past the file is cut to its length
    tail = load_clip(path, num_frames=2, start=9.0, end=60.0)
    assert tail.meta["window"] == [9.0, pytest.approx(10.0)]
    assert [frame_number(f) for f in tail.frames] == [92, 97]


def test_a_window_narrower_than_the_frames_repeats_the_frame_inside_it(tmp_path, write_video, frame_number):
    path = write_video(tmp_path / "v.mp4", num_frames=20, fps=2.0)
    # [3.2, 3.9) holds no frame start: the frame on screen (6 at 3.0 s) is before the
    # window, and the next one (7 at 3.5 s) is inside, so it is taken where needed
    clip = load_clip(path, num_frames=4, start=3.2, end=3.9)
    numbers = [frame_number(f) for f in clip.frames]
    assert numbers == [7, 7, 7, 7]
    assert clip.timestamps.tolist() == [3.5] * 4


def test_fps_sampling_and_max_frames(tmp_path, write_video, frame_number):
    path = write_video(tmp_path / "v.mp4", num_frames=60, fps=10.0, gop=30)
    clip = load_clip(path, fps=1.0)
    assert clip.num_frames == 6
    assert [frame_number(f) for f in clip.frames] == [5, 15, 25, 35, 45, 55]
    thinned = load_clip(path, fps=2.0, max_frames=3)
    assert thinned.num_frames == 3
    # 12 targets 0.25, 0.75, ..., 5.75 s thinned to the 1st, 7th and 12th
    assert thinned.timestamps.tolist() == pytest.approx([0.2, 3.2, 5.7])


def test_sampling_is_deterministic(tmp_path, write_video):
    path = write_video(tmp_path / "v.mp4", num_frames=30, fps=10.0)
    a, b = load_clip(path, 5, 0.5, 2.5), load_clip(path, 5, 0.5, 2.5)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.timestamps, b.timestamps)


def test_seek_cost_does_not_grow_with_the_file(long_video, frame_number, monkeypatch):
    """8 frames from a 10-minute file decode at most 8 GOPs, not the whole file."""
    decoded = []
    original = VideoReader._decode

    def counting(self):
        for frame in original(self):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(VideoReader, "_decode", counting)
    clip = load_clip(long_video)
    assert clip.duration == pytest.approx(600.0)
    expected = [round((i + 0.5) * 75 * 2) for i in range(8)]  # centres of 75-s parts, 2 fps
    assert [frame_number(f) for f in clip.frames] == expected
    assert clip.meta["frame_indices"] == expected
    assert len(decoded) <= 8 * (10 + 1)  # GOP of 10 frames, + the look-ahead frame
    # a late window costs the same as an early one
    decoded.clear()
    load_clip(long_video, start=580.0, end=590.0)
    assert len(decoded) <= 8 * (10 + 1)


def test_reader_windows_cover_an_hour_long_style_file(long_video, frame_number):
    with VideoReader(long_video) as reader:
        clips = list(reader.windows(window_s=120.0, stride_s=120.0, num_frames=2))
    assert [c.meta["window"] for c in clips] == [[float(s), float(s + 120)] for s in range(0, 600, 120)]
    for clip in clips:
        s, e = clip.meta["window"]
        assert all(s <= t < e for t in clip.timestamps.tolist())
        assert [frame_number(f) for f in clip.frames] == clip.meta["frame_indices"]


def test_variable_frame_rate_uses_the_true_pts(tmp_path, write_video, frame_number):
    pts_ms = [0, 100, 150, 400, 1000, 1033, 1066, 2000, 2500, 2600]
    path = write_video(tmp_path / "vfr.mp4", num_frames=10, pts_ms=pts_ms)
    info = probe_video(path)
    assert info.variable_frame_rate and info.num_frames == 10
    clip = load_clip(path, num_frames=5)
    assert clip.meta["variable_frame_rate"] is True
    numbers = [frame_number(f) for f in clip.frames]
    # each timestamp is exactly the pts of the frame that was returned
    assert clip.timestamps.tolist() == pytest.approx([pts_ms[n] / 1000 for n in numbers])
    assert clip.meta["frame_indices"] == numbers
    # targets are 0.27, 0.81, 1.35, 1.89, 2.43 s → the frames on screen then
    assert numbers == [2, 3, 6, 6, 7]


def test_b_frames_are_handled(tmp_path, write_video, frame_number):
    path = write_video(tmp_path / "bf.mp4", num_frames=100, fps=10.0, gop=25, bframes=3)
    clip = load_clip(path, num_frames=8, start=3.3, end=7.1)
    numbers = [frame_number(f) for f in clip.frames]
    assert numbers == clip.meta["frame_indices"]
    assert clip.timestamps.tolist() == pytest.approx([n / 10 for n in numbers])
    assert numbers == [35, 40, 44, 49, 54, 59, 63, 68]


@pytest.mark.parametrize("container", ["mkv", "avi", "ts"])
def test_other_containers(tmp_path, write_video, frame_number, container):
    """MKV (keyframe cues only), AVI (first pts 1) and MPEG-TS (no index, 90 kHz clock)."""
    path = write_video(tmp_path / f"v.{container}", num_frames=100, fps=10.0, gop=25)
    clip = load_clip(path, num_frames=8)
    assert clip.duration == pytest.approx(10.0)
    numbers = [frame_number(f) for f in clip.frames]
    assert numbers == [6, 18, 31, 43, 56, 68, 81, 93]
    assert clip.meta["frame_indices"] == numbers
    assert clip.timestamps.tolist() == pytest.approx([n / 10 for n in numbers])
    window = load_clip(path, num_frames=4, start=3.3, end=7.1)
    assert [frame_number(f) for f in window.frames] == [37, 47, 56, 66]


@pytest.mark.parametrize(
    ("rotation", "shape", "white"),
    [
        # the display matrix turns the picture counter-clockwise by `rotation` degrees;
        # the frame's left half is white, so it ends up at the bottom, right or top
        (90, (64, 48), "bottom"),
        (180, (48, 64), "right"),
        (-90, (64, 48), "top"),
    ],
)
def test_rotation_is_applied(tmp_path, write_video, rotation, shape, white):
    def left_half_white(i: int) -> np.ndarray:
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, :32] = 255
        return img

    path = write_video(tmp_path / "phone.mp4", num_frames=5, rotation=rotation, image=left_half_white)
    clip = load_clip(path, num_frames=2)
    assert clip.frames.shape == (2, 3, *shape)
    assert clip.meta["rotation"] == rotation % 360
    assert clip.meta["source_size"] == [shape[1], shape[0]]
    frame = clip.frames[0].float().mean(0)
    h, w = shape
    halves = {
        "bottom": (frame[h // 2 + 4 :], frame[: h // 2 - 4]),
        "top": (frame[: h // 2 - 4], frame[h // 2 + 4 :]),
        "right": (frame[:, w // 2 + 4 :], frame[:, : w // 2 - 4]),
    }
    bright, dark = halves[white]
    assert bright.mean() > 200 and dark.mean() < 50


def test_one_frame_file_is_a_still_image(tmp_path, write_video, frame_number):
    path = write_video(tmp_path / "still.mp4", num_frames=1, fps=5.0)
    clip = load_clip(path, num_frames=4)
    assert clip.frames.shape[0] == 4
    assert [frame_number(f) for f in clip.frames] == [0, 0, 0, 0]
    assert clip.timestamps.tolist() == [0.0] * 4
    assert clip.duration == pytest.approx(0.2)


def test_max_side_downscales_and_max_pixels_guards(tmp_path, write_video, frame_number):
    path = write_video(tmp_path / "big.mp4", num_frames=10, size=(256, 192))
    small = load_clip(path, num_frames=2, max_side=64)
    assert small.frames.shape == (2, 3, 48, 64)
    assert small.meta["source_size"] == [256, 192]
    assert [frame_number(f) for f in small.frames] == [2, 7]
    with pytest.raises(uprm.VideoError, match=r"big\.mp4: frame size 256x192 .* exceeds max_pixels=10000"):
        load_clip(path, max_pixels=10_000)


def test_load_image_reads_a_png(tmp_path):
    from PIL import Image

    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:, :, 2] = 200
    Image.fromarray(pixels).save(tmp_path / "scene.png")
    clip = load_image(tmp_path / "scene.png")
    assert clip.frames.shape == (1, 3, 20, 30)
    assert clip.video_id == "scene"
    assert int(clip.frames[0, 2].float().mean()) in range(195, 206)


# -- bad files -----------------------------------------------------------------------


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(uprm.VideoError, match=r"nope\.mp4: no such file"):
        load_clip(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(uprm.VideoError, match=r"empty.mp4: empty file \(0 bytes\)"):
        load_clip(tmp_path / "empty.mp4")


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 20)
    with pytest.raises(uprm.VideoError, match=r"notes\.mp4: not a video file") as info:
        load_clip(path)
    assert info.value.path == str(path)


def test_truncated_files(tmp_path, write_video):
    # moov at the end: cutting the file loses the index
    full = write_video(tmp_path / "a.mp4", num_frames=60, fps=10.0).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(full[: len(full) // 2])
    with pytest.raises(uprm.VideoError, match=r"cut.mp4: truncated or damaged MP4/MOV"):
        load_clip(tmp_path / "cut.mp4")
    # moov first (faststart): the index survives, the frames it points to do not
    full = write_video(tmp_path / "b.mp4", num_frames=60, fps=10.0, faststart=True).read_bytes()
    (tmp_path / "cut_fs.mp4").write_bytes(full[: len(full) // 2])
    with pytest.raises(uprm.VideoError, match=r"cut_fs.mp4: truncated: .* frames from [\d.]+ s of 6.00 s are missing"):
        load_clip(tmp_path / "cut_fs.mp4")


def test_truncated_files_without_a_full_index(tmp_path, write_video):
    # Matroska states its duration up front; the frames it promises stop half-way
    full = write_video(tmp_path / "a.mkv", num_frames=100, fps=10.0, gop=25).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(full[: len(full) // 2])
    with pytest.raises(
        uprm.VideoError, match=r"cut.mkv: truncated or damaged: frames stop at [\d.]+ s but the file claims 10.000 s"
    ):
        load_clip(tmp_path / "cut.mkv")
    # AVI keeps its index at the end
    full = write_video(tmp_path / "a.avi", num_frames=100, fps=10.0, gop=25).read_bytes()
    (tmp_path / "cut.avi").write_bytes(full[: len(full) // 2])
    with pytest.raises(uprm.VideoError, match=r"cut.avi: truncated or damaged AVI"):
        load_clip(tmp_path / "cut.avi")


def test_audio_only(tmp_path):
    import av

    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(uprm.VideoError, match=r"speech\.m4a: no video stream; the file has only audio"):
        load_clip(path)


def test_bad_windows(tmp_path, write_video):
    path = write_video(tmp_path / "v.mp4", num_frames=20, fps=10.0)
    with pytest.raises(uprm.VideoError, match=r"v.mp4: the window starts at 5.0 s but the video lasts 2.000 s"):
        load_clip(path, start=5.0)
    with pytest.raises(uprm.VideoError, match=r"the window \[1.0, 1.0\) is empty"):
        load_clip(path, start=1.0, end=1.0)
    with pytest.raises(uprm.VideoError, match="before the start of the file"):
        load_clip(path, start=-1.0)


# -- sampling helpers ----------------------------------------------------------------


def test_sample_times_and_iter_windows():
    assert sample_times(0.0, 8.0, 4) == [1.0, 3.0, 5.0, 7.0]
    assert sample_times(10.0, 12.0, 1) == [11.0]
    assert sample_times(0.0, 0.4, fps=1.0) == [0.5]  # at least one target
    with pytest.raises(ValueError, match="empty"):
        sample_times(3.0, 3.0, 8)
    assert list(iter_windows(25.0, 10.0)) == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    assert list(iter_windows(20.0, 10.0, 5.0)) == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0)]
    assert list(iter_windows(4.0, 10.0)) == [(0.0, 4.0)]
    hour = list(iter_windows(3600.0, 30.0, 15.0))
    assert len(hour) == 239 and hour[-1] == (3570.0, 3600.0)
    covered = np.zeros(3600, bool)
    for s, e in hour:
        covered[int(s) : int(e)] = True
    assert covered.all()


def test_module_is_lazy():
    import subprocess
    import sys

    code = "import sys, uprm.data; print('av' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert video_mod.DEFAULT_MAX_PIXELS == 4096 * 4096


def test_every_public_name_of_uprm_data_resolves():
    import uprm.data

    for name in uprm.data.__all__:
        assert getattr(uprm.data, name) is not None, name
    assert uprm.data.load_clip is load_clip
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        uprm.data.no_such_thing
