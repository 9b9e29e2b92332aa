"""UPRM's standard expert tests, run on the relation expert with each source and grid."""

import json

import pytest
import torch

from uprm.testing import ExpertTests, synthetic_clip
from uprm_expert_relation import RelationExpert
from uprm_expert_relation.testing import scene_graph_document


def scene_graph_for(seed: int, num_frames: int, size: int = 64) -> dict:
    """Object counts vary by seed and frame: frame 0 has no objects, frame 1 objects but
    no relation, the others 1-3 people and things with relations, moving with the frame."""
    g = torch.Generator().manual_seed(seed)
    labels = ["person", "bag", "car", "door", "fire", "zorblax"]  # the last one is unknown
    predicates = ["near", "holding", "hitting", "pushing", "carrying", "inside", "on_fire", "glorping"]
    frames = []
    for f in range(num_frames):
        frame = {"frame_index": f, "timestamp": f / 2.0}
        if f == 0:
            frames.append(frame)
            continue
        n = 1 + (seed + f) % 3
        objects = []
        for i in range(n + 1):
            x = int(torch.randint(0, size // 2, (1,), generator=g)) + f
            y = int(torch.randint(0, size // 2, (1,), generator=g))
            w, h = int(torch.randint(6, size // 2, (1,), generator=g)), int(torch.randint(6, size // 2, (1,), generator=g))
            label = "person" if i == 0 else labels[int(torch.randint(1, len(labels), (1,), generator=g))]
            objects.append((label, [x, y, min(size, x + w), min(size, y + h)]))
        if f == 1:
            frame["objects"] = objects
        else:
            frame["triplets"] = [
                (*objects[0], predicates[(seed + f + i) % len(predicates)], *objects[i], 0.5 + 0.1 * i)
                for i in range(1, len(objects))
            ]
        frames.append(frame)
    return scene_graph_document(frames, size, size, video_id=f"synthetic-{seed}")


class JsonClips:
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path):
        self.tmp = tmp_path

    def make_clip(self, ctx, seed, num_frames):
        clip = synthetic_clip(num_frames=num_frames, size=64, seed=seed)
        path = self.tmp / f"sg-{seed}-{num_frames}.json"
        path.write_text(json.dumps(scene_graph_for(seed, num_frames)), encoding="utf-8")
        clip.meta.update(scene_graph=str(path), frame_indices=list(range(num_frames)), source_size=[64, 64])
        return clip


class TestRelationExpert(JsonClips, ExpertTests):
    expert_class = RelationExpert
    expert_options = {"node_dim": 16, "ffn_dim": 32, "max_objects": 6}


class TestRelationExpertAttentionGrid(JsonClips, ExpertTests):
    expert_class = RelationExpert
    expert_options = {"node_dim": 16, "ffn_dim": 32, "max_objects": 6, "grid": "attention", "num_heads": 4}


class TestRelationExpertDetector(ExpertTests):
    """The detector path: a yolo11n checkpoint (random, made plausible) loaded in safe mode."""

    expert_class = RelationExpert

    @pytest.fixture(autouse=True)
    def _weights(self, detector_pt):
        self.weights = detector_pt

    def make_expert(self, ctx):
        return RelationExpert(ctx, weights=self.weights, imgsz=64, max_objects=6, node_dim=16, ffn_dim=32)

    def make_clip(self, ctx, seed, num_frames):
        return synthetic_clip(num_frames=num_frames, size=(48, 64), seed=seed)
