"""One video of the synthetic world: its script, its frames, its true poses and relations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from uprm.coco import COCO_KEYPOINTS, skeleton_1based
from uprm.synthetic.config import WorldConfig
from uprm.synthetic.events import EVENT_SCENES, NORMAL, THREAT_CATEGORIES, EventScript, ThreatEvent
from uprm.synthetic.scene import FENCE_LINES, LAYOUTS, Scene

__all__ = ["SyntheticVideo", "make_video"]


@dataclass
class SyntheticVideo:
    """One scripted video of the world. Render it with :meth:`frames`; describe it with
    :meth:`keypoints_json`, :meth:`scene_graph_json` and :meth:`annotation`."""

    video_id: str
    index: int
    category: str
    scene: Scene
    duration: float
    fps: float
    events: list[ThreatEvent]
    activities: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return round(self.duration * self.fps)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.scene.width, self.scene.height

    def time(self, i: int) -> float:
        return i / self.fps

    @property
    def segments(self) -> list[tuple[float, float]]:
        """The threat segments, sorted, overlapping ones merged."""
        merged: list[list[float]] = []
        for e in sorted(self.events, key=lambda e: (e.start, e.end)):
            if merged and e.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e.end)
            else:
                merged.append([e.start, e.end])
        return [(round(s, 3), round(e, 3)) for s, e in merged]

    @property
    def causes(self) -> list[str]:
        return list(dict.fromkeys(e.cause for e in self.events))

    def frames(self) -> np.ndarray:
        """Every frame, ``uint8 [N, H, W, 3]`` RGB."""
        return np.stack([self.scene.render(self.time(i)) for i in range(self.num_frames)])

    def keypoints_json(self) -> dict[str, Any]:
        """True poses of every frame in the COCO dataset layout (docs/formats.md).
        A joint outside the frame has ``(0, 0, 0)``; visible joints ``c = 1``."""
        W, H = self.size
        images, annotations = [], []
        ann_id = 0
        for i in range(self.num_frames):
            t = self.time(i)
            images.append({"id": i, "frame_index": i, "timestamp": round(t, 4), "width": W, "height": H})
            for key, st in self.scene.person_states(t).items():
                kps: list[float] = []
                inside = 0
                for x, y in st.joints:
                    if 0 <= x < W and 0 <= y < H:
                        kps += [round(float(x), 2), round(float(y), 2), 1]
                        inside += 1
                    else:
                        kps += [0, 0, 0]
                if inside == 0:
                    continue
                x0, y0, x1, y1 = _clip_box(st.box, W, H)
                annotations.append({
                    "id": ann_id, "image_id": i, "category_id": 1, "track_id": int(key[len("person"):]),
                    "score": 1.0, "keypoints": kps, "num_keypoints": inside,
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "area": round((x1 - x0) * (y1 - y0), 2), "iscrowd": 0,
                })  # fmt: skip
                ann_id += 1
        return {
            "info": {"description": "UPRM synthetic surveillance world: true poses", "video_id": self.video_id,
                     "fps": self.fps},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": list(COCO_KEYPOINTS), "skeleton": skeleton_1based()}],
        }

    def scene_graph_json(self) -> dict[str, Any]:
        """True objects and relations of every frame (RelTR-style, docs/formats.md)."""
        W, H = self.size
        labels = self.scene.labels()
        frames = []
        for i in range(self.num_frames):
            t = self.time(i)
            persons = self.scene.person_states(t)
            boxes = {k: _clip_box(b, W, H) for k, b in self.scene.boxes(t, persons).items()}
            boxes = {k: b for k, b in boxes.items() if b[2] - b[0] >= 1 and b[3] - b[1] >= 1}
            triplets = self.scene.triplets(t, persons, boxes)
            in_triplet = {k for s, _, o in triplets for k in (s, o)}

            def obj(key: str, boxes: dict = boxes) -> dict[str, Any]:
                return {"label": labels[key], "box": [round(v, 2) for v in boxes[key]]}

            frames.append({
                "frame_index": i,
                "timestamp": round(t, 4),
                "objects": [dict(obj(k), score=1.0) for k in boxes if k not in in_triplet],
                "triplets": [{"subject": obj(s), "predicate": p, "object": obj(o), "score": 1.0}
                             for s, p, o in triplets],
            })  # fmt: skip
        return {"video_id": self.video_id, "width": W, "height": H, "frames": frames}

    def annotation(self, video: str | None = None, split: str | None = None):
        """This video as a :class:`uprm.data.VideoAnnotation`."""
        from uprm.data.annotations import VideoAnnotation

        return VideoAnnotation(
            video_id=self.video_id,
            category=self.category,
            segments=self.segments,
            causes=self.causes,
            duration=self.duration,
            video=video,
            split=split,
            extra={"scene": self.scene.layout.name, "fps": self.fps, "activities": sorted(set(self.activities))},
        )

    def summary(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "index": self.index,
            "category": self.category,
            "scene": self.scene.layout.name,
            "duration": self.duration,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "size": list(self.size),
            "segments": [list(s) for s in self.segments],
            "causes": self.causes,
            "events": [asdict(e) for e in self.events],
            "activities": sorted(set(self.activities)),
        }


def _clip_box(box: Sequence[float], W: int, H: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return max(0.0, x0), max(0.0, y0), min(float(W), x1), min(float(H), y1)


def make_video(index: int, seed: int, category: str, video_id: str | None = None,
               config: WorldConfig | None = None) -> SyntheticVideo:
    """Script video ``index`` of the world with ``seed``: a ``category`` threat (or a
    ``"Normal"`` video) in a random scene. Pure: same arguments, same video."""
    config = config or WorldConfig()
    known = [NORMAL, *THREAT_CATEGORIES, *([config.site_category] if config.site_category else [])]
    if category not in known:
        raise ValueError(f"unknown category {category!r}; choose from {known}")
    rng = np.random.default_rng([int(seed), int(index), 0x5EED])
    kinds = list(config.threat_kinds)
    kind = _normal_kind(rng, config) if category == NORMAL else category
    scene_kind = str(rng.choice(EVENT_SCENES[kind]))
    n = round(rng.uniform(config.min_duration, config.max_duration) * config.fps)
    duration = n / config.fps
    scene = Scene(LAYOUTS[scene_kind], config.size, config.size, rng, config.supersample,
                  brightness=float(rng.uniform(0.85, 1.1)))
    if config.site_category and scene_kind in FENCE_LINES:  # the site's fence, in every scene that has one
        scene.add_fence()
    b = EventScript(scene, rng, duration)
    b.event(kind, threat=category != NORMAL)
    if rng.random() < 0.3:  # a confounder: another kind's normal twin
        others = [k for k in kinds if k != kind and scene_kind in EVENT_SCENES[k] and k != "RoadAccidents"]
        if others:
            b.event(str(rng.choice(others)), threat=False)
    b.ambient(traffic=kind != "RoadAccidents")
    if category != NORMAL and not b.events:
        raise RuntimeError(f"video {index}: the {category} event did not fit in {duration:.1f} s")
    return SyntheticVideo(video_id or f"{category}{index:03d}_syn", index, category, scene, duration,
                          config.fps, b.events, b.activities)



def _normal_kind(rng: np.random.Generator, config: WorldConfig) -> str:
    """Whose look-alike a normal video shows: one of the categories at random; in a site world
    the site category's with the probability ``site_fraction`` (as often as it is among the threats)."""
    if not config.site_category:
        return str(rng.choice(list(config.categories)))
    share = (1.0 - config.site_fraction) / len(config.categories)
    return str(rng.choice(list(config.threat_kinds), p=[share] * len(config.categories) + [config.site_fraction]))
