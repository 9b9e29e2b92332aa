"""The synthetic surveillance world: procedurally rendered CCTV clips with known threats,
their causes, and the true physical-world signals (poses and object relations).

``uprm data synthetic --videos 60 --seed 0 --out world/`` (or :func:`generate_world`)
renders clips of a street, a shop, a parking lot or a plaza (128×128, 8 fps, 8–20 s by
default) in which stick-figure people — the 17 COCO joints, articulated — walk, stand,
talk, wave, jog, pick up bags and open doors, and cars drive past or park. A threat
video adds one of six threats with a known segment and a cause sentence:

=================  ==========================================  ==================================
category           the threat                                  its normal twin (the confounder)
=================  ==========================================  ==================================
``Fighting``       a conversation turns into punches and kicks  a conversation with gestures, waves
``Assault``        a person is pushed and falls to the ground   a handshake; one ties a shoe
``Stealing``       a bag is snatched; the thief runs away       a bag handed over / one's own bag
                                                                picked up and carried off
``Arson``          someone crouches at a bin or car, it burns   someone crouches there; no fire
``RoadAccidents``  a car hits a crossing pedestrian             the pedestrian waits; the car passes
``Vandalism``      a parked car is kicked and hit, dented       its owner opens the door, gets in
=================  ==========================================  ==================================

Normal videos contain the twins, and threat videos often contain one too, so a threat
differs from normal activity mainly in **pose dynamics** (a jab extends an arm to full
length at head height in a fraction of a second; a fall rotates the body to the ground)
and **object relations** (``grabbing`` a bag and ``carrying`` it away at a run vs taking
it when offered; ``hitting`` a person with a car vs passing ``near``), not in colours:
threat actors, their cars and bags are drawn from the same palettes as everyone else,
orange cones and orange clothes are everywhere, and every scene kind hosts threats and
normal videos alike. The threats remain visible in the pixels.

What is written (docs/formats.md, "The synthetic surveillance world")::

    OUT/videos/<id>.mp4              H.264 (PyAV), frame i at t = i / fps
    OUT/keypoints/<id>.json          true poses, COCO dataset layout, every frame
    OUT/scene_graphs/<id>.json       true objects and relations, every frame
    OUT/annotations/ucf_crime.txt    UCF-Crime temporal layout (frame indices at the world's fps)
    OUT/annotations/activitynet.json ActivityNet ground truth (seconds), with splits and causes
    OUT/annotations/causes.json      {<id>: [cause sentence, ...]}
    OUT/instructions/synthetic_{train,val,test}.json   identify / locate / attribute
    OUT/world.json                   the configuration and every video's summary
    OUT/meta/<id>.json               one video's summary (written last: marks it finished)

A world is a pure function of its configuration and seed: the same JSON bytes and the
same decoded frames on every run; video ``i`` depends only on ``(seed, i)`` and its
category. Writing is atomic and resumable (a finished video is not rendered again).

``site_category="FenceClimbing"`` (``--site-category FenceClimbing``) adds a site's own
threat that no default world has: parking lots and plazas gain a fence, a share
``site_fraction`` of the threat videos show a person climbing over it (and as large a
share of the normal videos its look-alikes: walking along the fence, leaning on it), and
``OUT/taxonomy.yaml`` holds UCF-Crime's categories and the site's for ``--taxonomy``.
Without it, nothing of this is in the world (its bytes are what they were).

``design="keyed"`` (``--design keyed``) renders the keyed world instead
(:mod:`uprm.synthetic.keyed`): four threats, each rendered in a pair with its twin that
differs in exactly one expert's input, splits by pair, and ``OUT/design.json`` naming the
channel of each category. Everything else is written as above, so ``uprm data``, ``train``,
``eval`` and ``ablate`` read a keyed world as they read any other.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from uprm.data.mp4 import write_mp4
from uprm.synthetic import keyed
from uprm.synthetic.config import WorldConfig
from uprm.synthetic.events import NORMAL, SITE_TAXONOMY
from uprm.synthetic.video import SyntheticVideo, make_video
from uprm.utils import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from uprm.taxonomy import Taxonomy

__all__ = ["WORLD_FORMAT", "WorldConfig", "generate_world", "site_taxonomy"]

WORLD_FORMAT = 1  # bump when what a world contains changes


def _assign_splits(videos: Sequence[tuple[str, str]], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Stratified, deterministic splits: within each category (in a seeded hash order)
    each video goes to the split furthest below its share."""
    names = ("train", "val", "test")
    total = float(sum(fractions))
    shares = [f / total for f in fractions]
    by_cat: dict[str, list[str]] = {}
    for vid, cat in videos:
        by_cat.setdefault(cat, []).append(vid)
    out: dict[str, str] = {}
    counts = [0, 0, 0]
    for cat in sorted(by_cat):
        ids = sorted(by_cat[cat], key=lambda v: hashlib.sha256(f"{seed}\x02{v}".encode()).hexdigest())
        for vid in ids:
            n = sum(counts) + 1
            deficit = [shares[j] * n - counts[j] if shares[j] > 0 else -math.inf for j in range(3)]
            j = int(np.argmax(deficit))
            counts[j] += 1
            out[vid] = names[j]
    return out


def _categories(num_videos: int, config: WorldConfig, seed: int) -> list[str]:
    """Each video's category, in a seeded order: the threats in turn, then (a site world) the
    site category's share of the threats, then the normal videos."""
    n_normal = round(num_videos * config.normal_fraction)
    n_threat = num_videos - n_normal
    site = [config.site_category] * round(n_threat * config.site_fraction) if config.site_category else []
    cats = [config.categories[i % len(config.categories)] for i in range(n_threat - len(site))] + site
    cats += [NORMAL] * n_normal
    rng = np.random.default_rng([int(seed), 0xCA7])
    return [cats[i] for i in rng.permutation(num_videos)]


def _video_ids(categories: Sequence[str]) -> list[str]:
    seen: Counter = Counter()
    ids = []
    for cat in categories:
        seen[cat] += 1
        ids.append(f"Normal_Videos_{seen[cat]:03d}_syn" if cat == NORMAL else f"{cat}{seen[cat]:03d}_syn")
    return ids


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False) + "\n"


_FOLDERS = ("videos", "keypoints", "scene_graphs", "annotations", "instructions", "meta")


@dataclass(frozen=True)
class _Job:
    """One video to render: its id, ground-truth category, how to script it, and what its
    summary adds (the keyed design's pair and role)."""

    video_id: str
    category: str
    make: Callable[[], SyntheticVideo]
    extra: dict[str, Any] = field(default_factory=dict)


def _plan(num_videos: int, seed: int, config: WorldConfig) -> tuple[list[_Job], dict[str, str], dict[str, Any] | None]:
    """The videos, their splits, and (keyed design) the contents of ``design.json``."""
    if config.design == "keyed":
        slots = keyed.keyed_plan(num_videos, config)
        splits = keyed.keyed_splits(slots, config.splits, seed)
        jobs = [_Job(s.video_id, s.label, s.maker(seed, config), s.summary()) for s in slots]
        return jobs, splits, keyed.design_summary(slots, splits, config, seed)
    categories = _categories(num_videos, config, seed)
    ids = _video_ids(categories)
    splits = _assign_splits(list(zip(ids, categories)), config.splits, seed)
    jobs = [_Job(ids[i], categories[i], functools.partial(make_video, i, seed, categories[i], ids[i], config))
            for i in range(num_videos)]
    return jobs, splits, None


def generate_world(
    out_dir: str | os.PathLike,
    num_videos: int,
    seed: int = 0,
    *,
    config: WorldConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
    **config_overrides: Any,
) -> dict[str, Any]:
    """Render a synthetic surveillance world into ``out_dir``.

    Args:
        out_dir: the world's folder (created).
        num_videos: how many videos.
        seed: the world's seed; the same seed gives the same world.
        config: a :class:`WorldConfig`; ``config_overrides`` (``size=``, ``fps=``,
            ``min_duration=``, ``design="keyed"``, ...) replace its fields. The keyed design
            (:mod:`uprm.synthetic.keyed`) also writes ``design.json``; its ``num_videos`` is a
            multiple of twice the number of categories (a threat and its twin per category).
        progress: show a tqdm bar.
        overwrite: render every video again even if a finished copy is there.

    Returns:
        the summary also written to ``world.json``: the configuration, every video's
        category, scene, duration, segments, causes and split, the counts, and the
        instruction files.
    """
    if num_videos < 1:
        raise ValueError(f"num_videos must be at least 1, got {num_videos}")
    config = config or WorldConfig()
    if config_overrides:
        config = WorldConfig(**{**config.to_dict(), **config_overrides})
    out = Path(out_dir)
    dirs = {name: out / name for name in _FOLDERS}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    jobs, splits, design = _plan(num_videos, seed, config)
    stamp: dict[str, Any] = {"format": WORLD_FORMAT, "seed": seed, "config": config.to_dict()}
    if design is not None:
        stamp["keyed_format"] = keyed.KEYED_FORMAT
    fingerprint = hashlib.sha256(_dump(stamp).encode()).hexdigest()[:16]
    iterator: Iterable[int] = range(num_videos)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="synthetic world", unit="video")
    summaries = []
    for i in iterator:
        job = jobs[i]
        summary = _finished(dirs, job.video_id, job.category, fingerprint) if not overwrite else None
        if summary is None:
            summary = _render(dirs, job, config, fingerprint)
        summaries.append(dict(summary, split=splits[job.video_id]))
    annotations = _write_annotations(dirs, summaries)
    taxonomy = _write_taxonomy(out, config)
    records = _write_instructions(dirs, annotations, seed, taxonomy)
    world = _world_summary(out, seed, config, summaries, records)
    if taxonomy is not None:
        world["taxonomy"] = "taxonomy.yaml"
    if design is None:
        (out / "design.json").unlink(missing_ok=True)  # no stale design beside a default world
    else:
        atomic_write_json(out / "design.json", design)
        world["design"] = "design.json"
    atomic_write_json(out / "world.json", world)
    return world


def _video_paths(dirs: dict[str, Path], video_id: str) -> list[Path]:
    return [dirs["videos"] / f"{video_id}.mp4", dirs["keypoints"] / f"{video_id}.json",
            dirs["scene_graphs"] / f"{video_id}.json"]


def _finished(dirs: dict[str, Path], video_id: str, category: str, fingerprint: str) -> dict[str, Any] | None:
    """The summary of a video already rendered with this world's configuration, else ``None``."""
    meta_path = dirs["meta"] / f"{video_id}.json"
    if not meta_path.exists() or not all(p.exists() for p in _video_paths(dirs, video_id)):
        return None
    try:
        previous = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if previous and previous.get("fingerprint") == fingerprint and previous.get("category") == category:
        return previous
    return None


def _render(dirs: dict[str, Path], job: _Job, config: WorldConfig, fingerprint: str) -> dict[str, Any]:
    """Render one video and its sidecars, each atomically; its meta file, written last,
    marks it finished."""
    video = job.make()
    mp4, keypoints, scene_graph = _video_paths(dirs, job.video_id)
    write_mp4(mp4, (video.scene.render(video.time(j)) for j in range(video.num_frames)), config.fps, config.crf)
    atomic_write_text(keypoints, _dump(video.keypoints_json()))
    atomic_write_text(scene_graph, _dump(video.scene_graph_json()))
    summary = dict(video.summary(), **job.extra, fingerprint=fingerprint)
    atomic_write_json(dirs["meta"] / f"{job.video_id}.json", summary)
    return summary


def _write_annotations(dirs: dict[str, Path], summaries: Sequence[dict[str, Any]]) -> list:
    """UCF-Crime and ActivityNet annotations and causes.json; returns the annotations."""
    from uprm.data.annotations import VideoAnnotation, write_activitynet

    anns = [
        VideoAnnotation(video_id=s["video_id"], category=s["category"],
                        segments=[tuple(seg) for seg in s["segments"]], causes=list(s["causes"]),
                        duration=s["duration"], video=str(dirs["videos"] / f"{s['video_id']}.mp4"), split=s["split"],
                        extra={"scene": s["scene"], "fps": s["fps"]})
        for s in summaries
    ]
    lines = []
    for s in summaries:
        frames = [v for seg in s["segments"][:2] for v in (round(seg[0] * s["fps"]), round(seg[1] * s["fps"]))]
        frames += [-1] * (4 - len(frames))
        lines.append(f"{s['video_id']}.mp4  {s['category']}  " + "  ".join(str(v) for v in frames))
    atomic_write_text(dirs["annotations"] / "ucf_crime.txt", "\n".join(lines) + "\n")
    write_activitynet(anns, dirs["annotations"] / "activitynet.json", version="UPRM synthetic world")
    atomic_write_json(dirs["annotations"] / "causes.json", {s["video_id"]: s["causes"] for s in summaries if s["causes"]})
    return anns


def _write_instructions(dirs: dict[str, Path], annotations: list, seed: int, taxonomy: Taxonomy | None = None):
    from uprm.data.instructions import build_instructions

    return build_instructions(
        annotations, dirs["instructions"], name="synthetic", videos=dirs["videos"], keypoints=dirs["keypoints"],
        scene_graphs=dirs["scene_graphs"], seed=seed, missing="error", taxonomy=taxonomy,
    )


def site_taxonomy(site_category: str) -> Taxonomy:
    """The taxonomy of a site world: UCF-Crime's 13 categories (the default of
    :func:`uprm.taxonomy.load_taxonomy`), the site category (:data:`~uprm.synthetic.events.SITE_TAXONOMY`)
    and Normal, last."""
    from uprm.taxonomy import Category, Taxonomy, load_taxonomy

    default = load_taxonomy()
    threats = [c for c in default if c.is_threat]
    normal = [c for c in default if not c.is_threat]
    site = Category(name=site_category, **SITE_TAXONOMY[site_category])
    return Taxonomy([*threats, site, *normal], name=f"{default.name}+{site_category}")


def _write_taxonomy(out: Path, config: WorldConfig) -> Taxonomy | None:
    """A site world's ``taxonomy.yaml`` (for ``--taxonomy`` of the other commands), in the layout
    :func:`uprm.taxonomy.load_taxonomy` reads; returns the taxonomy. A world without a site
    category has none (a stale one is removed) and gets ``None``."""
    path = out / "taxonomy.yaml"
    if config.site_category is None:
        path.unlink(missing_ok=True)
        return None
    import yaml

    taxonomy = site_taxonomy(config.site_category)
    data = taxonomy.to_dict()
    data["categories"] = [{k: v for k, v in c.items() if v or k in ("name", "description", "severity")}
                          for c in data["categories"]]
    header = (f"# The taxonomy of this synthetic world's site (uprm data synthetic --site-category "
              f"{config.site_category}):\n# UCF-Crime's 13 categories, the site's own and Normal. "
              "Pass it with --taxonomy (docs/formats.md).\n")
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110))
    return taxonomy


def _world_summary(out: Path, seed: int, config: WorldConfig, summaries: Sequence[dict[str, Any]],
                   records) -> dict[str, Any]:
    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(s[key] for s in summaries).items()))

    return {
        "format": WORLD_FORMAT,
        "seed": seed,
        "num_videos": len(summaries),
        "config": config.to_dict(),
        "counts": {
            "category": count("category"),
            "scene": count("scene"),
            "split": count("split"),
            "instructions": {k: dict(sorted(v.items())) for k, v in records.counts().items()},
        },
        "instructions": {split: p.relative_to(out).as_posix() for split, p in sorted(records.files.items())},
        "videos": [{k: v for k, v in s.items() if k != "fingerprint"} for s in summaries],
    }
