"""Shared decoding: each grid frame is decoded once across overlapping windows and
shared by every expert; the buffer holds at most one batch of windows' frames; the
shared frames and features are exactly what per-window decoding and extraction give."""

from __future__ import annotations

import pytest
import torch

import uprm
from uprm.data import VideoReader, load_clip
from uprm.detection import FrameBuffer, Perception, detect_video, plan_windows, sidecar_meta


@pytest.fixture(scope="module")
def model(detector):
    return uprm.UPRMModel.from_pretrained(detector).eval()


@pytest.fixture(scope="module")
def video(tmp_path_factory, make_video):
    root = tmp_path_factory.mktemp("frames")
    return make_video(root, "clip", 120.0, (50.0, 62.0)), root


def test_each_frame_is_decoded_once_and_the_buffer_stays_bounded(video, monkeypatch):
    path, _ = video
    converted = []
    original = VideoReader._to_array
    monkeypatch.setattr(VideoReader, "_to_array", lambda self, frame: converted.append(frame.pts) or
                        original(self, frame))
    plan = plan_windows(120.0, 8.0, 2.0, 8)  # 4 windows share each frame
    with VideoReader(path) as reader:
        buffer = FrameBuffer(reader, plan, "clip")
        held = []
        for batch in plan.batches(3):
            buffer.fill(batch)
            held.append(len(buffer))
            following = batch[-1] + 1
            buffer.release_before(plan.starts[following] if following < len(plan) else 10**9)
    assert buffer.decoded == len(plan.all_indices()) == 120  # 57 windows x 8 frames, 120 distinct frames
    assert set(buffer.decode_counts.values()) == {1}
    assert len(converted) == len(set(converted)) == 120  # each decoded frame converted once
    assert max(held) == buffer.peak == plan.max_frames_held(3) == 2 * 2 + 8  # one batch, not the video
    assert len(buffer) == 0


def test_window_clips_equal_per_window_decoding(video):
    path, _ = video
    plan = plan_windows(120.0, 8.0, 4.0, 2)
    with VideoReader(path) as reader:
        buffer = FrameBuffer(reader, plan, "clip")
        buffer.fill(range(len(plan)))
        for w in (0, 7, len(plan) - 1):
            start, end = plan.span(w)
            mine, ref = buffer.window_clip(w), load_clip(path, 2, start, end)
            assert torch.equal(mine.frames, ref.frames)
            assert mine.timestamps.tolist() == ref.timestamps.tolist()
            assert mine.meta["frame_indices"] == ref.meta["frame_indices"]
            assert mine.meta["window"] == [start, end] and mine.duration == ref.duration


def test_shared_perception_equals_per_window_extraction(model, video):
    """Frame-wise experts (coarse, pose from keypoint files, background) computed once
    per frame give each window exactly the features of its own clip; the relation
    expert runs per window."""
    path, root = video
    plan = plan_windows(120.0, 8.0, 4.0, model.config.num_frames)
    timings = {}
    perception = Perception(model.block.experts, share=True, timings=timings)
    assert perception.frame_wise == {"coarse", "pose", "background"}
    with VideoReader(path) as reader:
        buffer = FrameBuffer(reader, plan, "clip", sidecar_meta(root, "clip"))
        batch = range(11, 15)  # windows over the threat: people, objects
        buffer.fill(batch)
        shared = perception.batch(buffer, batch)
    for w, feats in zip(batch, shared):
        start, end = plan.span(w)
        clip = load_clip(path, model.config.num_frames, start, end)
        clip.meta.update(sidecar_meta(root, "clip"))
        ref = model.extract(clip)
        for name in ref:
            for key, value in ref[name].items():
                torch.testing.assert_close(feats[name][key], value, msg=f"{name}.{key} of window {w}")
    assert shared[1]["pose"]["person_mask"].any()
    assert {"extract:coarse", "extract:pose", "extract:background", "extract:relation"} <= set(timings)


def test_detect_reports_one_decode_per_frame_and_a_bounded_buffer(model, video):
    path, root = video
    det = detect_video(path, model, 8.0, 4.0, batch_size=4, sidecar_dir=root)
    assert det.stats["frames_decoded"] == det.stats["frames_needed"] == 30  # 120 s at one frame per 4 s
    assert det.stats["peak_frames_held"] <= det.stats["max_frames_held"] == 3 + 2
    unshared = detect_video(path, model, 8.0, 4.0, batch_size=4, sidecar_dir=root, share_perception=False)
    assert [(s.start, s.end, s.cause) for s in unshared.segments] == [(s.start, s.end, s.cause) for s in det.segments]
    assert [round(w.p_yes, 4) for w in unshared.windows] == [round(w.p_yes, 4) for w in det.windows]
