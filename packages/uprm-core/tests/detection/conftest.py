"""Fixtures of the detection tests: small videos whose threat is a bright stretch, with
keypoint and scene-graph sidecars (a person grabbing a bag during the threat), and a
tiny checkpoint trained (for real, a few dozen steps) to answer the DeepSVU questions
about them: "yes", "between 0 and 8 seconds", "a person grabbing a bag" on windows that
sample a bright frame, "no" on the others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

FPS = 2
SIZE = 64
CAUSE = "a person grabbing a bag"
ANSWERS = {
    "identify": ("Yes, there exists a threat.", "No, there is no threat."),
    "locate": "The threat occurs between 0 and 8 seconds.",
    "attribute": f"The threat is attributed to {CAUSE}.",
}

# a standing person (COCO-17 joints, pixels of a 64x64 frame)
_PERSON = [(32, 12), (31, 11), (33, 11), (30, 12), (34, 12), (28, 18), (36, 18), (26, 25), (38, 25), (25, 31),
           (39, 31), (29, 33), (35, 33), (29, 43), (35, 43), (29, 53), (35, 53)]


def _frames(duration: float, threat: tuple[float, float]):
    """Dark frames, bright ones inside ``threat`` (generated lazily: long files stay cheap)."""
    dark = np.full((SIZE, SIZE, 3), 20, np.uint8)
    bright = np.full((SIZE, SIZE, 3), 230, np.uint8)
    for i in range(round(duration * FPS)):
        yield bright if threat[0] <= i / FPS < threat[1] else dark


def write_threat_video(root: Path, video_id: str, duration: float, threat: tuple[float, float]) -> Path:
    """``root/videos/<id>.mp4`` plus ``root/keypoints/<id>.json`` (COCO results list: the
    person on the threat frames) and ``root/scene_graphs/<id>.json`` (every frame; the
    person grabbing a bag on the threat frames). Returns the video's path."""
    from uprm.data import write_mp4

    video = write_mp4(root / "videos" / f"{video_id}.mp4", _frames(duration, threat), fps=FPS)
    n = round(duration * FPS)
    threat_frames = [i for i in range(n) if threat[0] <= i / FPS < threat[1]]
    keypoints = [{"image_id": i, "category_id": 1, "score": 0.9,
                  "keypoints": [v for x, y in _PERSON for v in (x, y, 1)], "bbox": [24, 10, 16, 44]}
                 for i in threat_frames]
    person = {"label": "person", "box": [24, 10, 40, 54], "score": 0.9}
    bag = {"label": "bag", "box": [40, 30, 50, 40], "score": 0.8}
    frames = [{"frame_index": i, "timestamp": i / FPS, "objects": [],
               "triplets": [{"subject": person, "predicate": "grabbing", "object": bag, "score": 0.9}]
               if i in threat_frames else []} for i in range(n)]
    for folder, data in (("keypoints", keypoints),
                         ("scene_graphs", {"video_id": video_id, "width": SIZE, "height": SIZE, "frames": frames})):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{video_id}.json").write_text(json.dumps(data))
    return video


def _training_items(model, root: Path, video: Path, threat: tuple[float, float]):
    from uprm.data import load_clip
    from uprm.detection import plan_windows, sidecar_meta

    plan = plan_windows(40.0, 8.0, 4.0, model.config.num_frames)
    items = []
    for w in range(len(plan)):
        start, end = plan.span(w)
        clip = load_clip(video, model.config.num_frames, start, end)
        clip.meta.update(sidecar_meta(root, video.stem))
        feats = model.extract(clip)
        if any(threat[0] <= t < threat[1] for t in plan.times(w)):
            items += [(feats, "identify", ANSWERS["identify"][0]), (feats, "locate", ANSWERS["locate"]),
                      (feats, "attribute", ANSWERS["attribute"])]
        else:
            items.append((feats, "identify", ANSWERS["identify"][1]))
    return items


def train_detector(root: Path, out: Path, steps: int = 150) -> Path:
    """A tiny model with every installed expert, trained on the windows of a 40-s threat
    video until it answers them right; saved to ``out``."""
    import uprm
    from uprm.testing import overfit

    torch.manual_seed(0)
    threat = (16.0, 28.0)
    video = write_threat_video(root, "train", 40.0, threat)
    small = {"pose": {"joint_dim": 16, "pose_dim": 32, "num_heads": 2}, "relation": {"node_dim": 32, "num_layers": 1}}
    model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=12, expert_options=small))
    items = _training_items(model, root, video, threat)
    return overfit(model, items, lr=6e-3, max_steps=steps).save_pretrained(out)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread in these tests (restored after each module): on a shared 2-core
    machine a second thread mostly spins while other work holds the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def detector(tmp_path_factory) -> Path:
    """The trained tiny checkpoint (see the module doc)."""
    root = tmp_path_factory.mktemp("detector")
    return train_detector(root / "data", root / "checkpoint")


@pytest.fixture(scope="session")
def threat_data(tmp_path_factory) -> Path:
    """A folder with two 40-s videos (threats at 16-28 s and 4-12 s) and a normal one,
    with their sidecars (``videos/``, ``keypoints/``, ``scene_graphs/``)."""
    root = tmp_path_factory.mktemp("threats")
    write_threat_video(root, "shop", 40.0, (16.0, 28.0))
    write_threat_video(root, "street", 40.0, (4.0, 12.0))
    write_threat_video(root, "quiet", 40.0, (99.0, 99.0))
    return root


@pytest.fixture(scope="session")
def make_video():
    """:func:`write_threat_video` (tests run in importlib mode: helpers come as fixtures)."""
    return write_threat_video
