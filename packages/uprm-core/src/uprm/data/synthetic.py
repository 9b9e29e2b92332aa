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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import click
import numpy as np

from uprm.data.synthetic_body import COCO_KEYPOINTS, COCO_SKELETON, fight_move, strike_move
from uprm.data.synthetic_scene import LAYOUTS, Car, Person, Scene
from uprm.utils import atomic_path, atomic_write_json, atomic_write_text

__all__ = [
    "NORMAL",
    "THREAT_CATEGORIES",
    "SyntheticVideo",
    "ThreatEvent",
    "WorldConfig",
    "generate_world",
    "make_video",
    "synthetic_command",
    "write_mp4",
]

NORMAL = "Normal"
#: the six threats, in UCF-Crime's category names
THREAT_CATEGORIES = ("Fighting", "Assault", "Stealing", "Arson", "RoadAccidents", "Vandalism")
#: scene kinds each kind of event can happen in (a threat and its twin share them)
EVENT_SCENES: dict[str, tuple[str, ...]] = {
    "Fighting": ("street", "shop", "parking_lot", "plaza"),
    "Assault": ("street", "shop", "parking_lot", "plaza"),
    "Stealing": ("street", "shop", "parking_lot", "plaza"),
    "Arson": ("street", "shop", "parking_lot", "plaza"),
    "RoadAccidents": ("street", "parking_lot"),
    "Vandalism": ("street", "parking_lot"),
}
WORLD_FORMAT = 1  # bump when what a world contains changes


@dataclass(frozen=True)
class WorldConfig:
    """How a world is rendered.

    Attributes:
        size: frame side in pixels (square frames).
        fps: frames per second of the videos (and of the annotation frame indices).
        min_duration, max_duration: video length range in seconds.
        normal_fraction: share of normal videos.
        categories: the threat categories to use (subset of :data:`THREAT_CATEGORIES`).
        splits: train / val / test fractions (stratified by category).
        crf: H.264 quality (lower = larger, sharper files).
        supersample: draw at this factor, then downsample (anti-aliasing).
    """

    size: int = 128
    fps: float = 8.0
    min_duration: float = 8.0
    max_duration: float = 20.0
    normal_fraction: float = 0.4
    categories: tuple[str, ...] = THREAT_CATEGORIES
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    crf: int = 18
    supersample: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 32:
            raise ValueError(f"size must be an int >= 32, got {self.size!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps!r}")
        if not 6.0 <= self.min_duration <= self.max_duration:
            raise ValueError(
                f"durations must satisfy 6 <= min_duration <= max_duration, got {self.min_duration}, {self.max_duration}"
            )
        if not 0.0 <= self.normal_fraction <= 1.0:
            raise ValueError(f"normal_fraction must be in [0, 1], got {self.normal_fraction}")
        unknown = [c for c in self.categories if c not in THREAT_CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"unknown categories {unknown}; choose from {list(THREAT_CATEGORIES)}")
        if len(self.splits) != 3 or any(f < 0 for f in self.splits) or sum(self.splits) <= 0:
            raise ValueError(f"splits must be three non-negative fractions, got {self.splits}")
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "splits", tuple(float(f) for f in self.splits))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["splits"] = list(self.splits)
        return d


@dataclass
class ThreatEvent:
    """One threat: its category, segment ``[start, end)`` in seconds and cause sentence."""

    category: str
    start: float
    end: float
    cause: str


# --------------------------------------------------------------------------- building a video
class _Builder:
    """Scripts a scene's people, cars and events (one per video)."""

    def __init__(self, scene: Scene, rng: np.random.Generator, duration: float) -> None:
        self.scene = scene
        self.rng = rng
        self.duration = duration
        self.W, self.H = scene.width, scene.height
        self.k = scene.width / 128.0
        self.events: list[ThreatEvent] = []
        self.activities: list[str] = []
        self.taken: list[float] = []  # ground ys where something happens

    # helpers
    def u(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def band_y(self, band: int | None = None, front: bool = False, gap: float = 0.07) -> float:
        """A ground y where people walk; ``front`` keeps to the near half of a band
        (events happen close enough to see); a y at least ``gap`` (fraction of the
        height) from the ys already taken is preferred."""
        bands = self.scene.layout.bands
        y = 0.0
        for _ in range(20):
            if band is None:
                widths = np.array([hi - lo for lo, hi in bands])
                lo, hi = bands[int(self.rng.choice(len(bands), p=widths / widths.sum()))]
            else:
                lo, hi = bands[band]
            if front:
                lo = lo + 0.4 * (hi - lo)
            y = self.u(lo, hi) * self.H
            if all(abs(y - t) >= gap * self.H for t in self.taken):
                break
        self.taken.append(y)
        return y

    def h_at(self, y: float, person: Person | None = None) -> float:
        return (person.height if person else 0.34 * self.H) * self.scene.scale(y)

    def walk_speed(self) -> float:
        return self.u(11.0, 16.0) * self.k

    def run_speed(self) -> float:
        return self.u(30.0, 40.0) * self.k

    def off(self, side: int) -> float:
        """An x just off-screen on ``side`` (-1 left, +1 right)."""
        return -0.14 * self.W if side < 0 else 1.14 * self.W

    def core_start(self, core_len: float, lo: float = 0.8) -> float:
        hi = max(lo, self.duration - core_len - 0.4)
        return self.u(lo, hi)

    def side(self) -> int:
        return 1 if self.chance(0.5) else -1

    def person(self) -> Person:
        return self.scene.add_person(self.rng)

    def walk_in(self, p: Person, x: float, y: float, t_arrive: float, side: int, speed: float | None = None,
                motion: str = "walk") -> Person:
        """Script ``p`` to enter from ``side`` and reach ``(x, y)`` at ``t_arrive``."""
        speed = speed or (self.walk_speed() if motion == "walk" else self.run_speed())
        x0 = self.off(side)
        t0 = t_arrive - abs(x - x0) / speed
        return p.start(t0, x0, y, -side).go(x, y, speed, motion, phase=self.u(0, 6.3))

    def leave(self, p: Person, side: int, motion: str = "walk", speed: float | None = None) -> Person:
        speed = speed or (self.walk_speed() if motion == "walk" else self.run_speed())
        return p.go(self.off(side), p.pos[1], speed, motion, phase=self.u(0, 6.3))

    def hold_until_end(self, p: Person, motion: str = "stand", **extra: Any) -> Person:
        if p.now < self.duration + 1:
            p.do(motion, self.duration + 1 - p.now, **extra)
        return p

    def threat(self, category: str, start: float, end: float, cause: str) -> None:
        start, end = max(0.0, start), min(self.duration, end)
        if end - start >= 0.5:
            self.events.append(ThreatEvent(category, round(start, 3), round(end, 3), cause))

    def place(self) -> str:
        return self.scene.layout.place

    def parked_car(self, x: float | None = None) -> Car:
        lay = self.scene.layout
        assert lay.park_y is not None
        for car in self.scene.cars:  # reuse a parked car if there is one
            if car.parked and (x is None or abs(car.x(0) - x) < 1):
                return car
        x = self.u(0.3, 0.7) * self.W if x is None else x
        return self.scene.add_car(self.rng, lay.park_y * self.H, self.side(), [-1e4, 1e4], [x, x], parked=True)

    # ------------------------------------------------------------------ ambient life
    def ambient(self, traffic: bool) -> None:
        sc, lay = self.scene, self.scene.layout
        for _ in range(int(self.rng.integers(1, 4))):
            p = self.person()
            y = self.band_y()
            side = self.side()
            jog = self.chance(0.2)
            speed = self.run_speed() * 0.8 if jog else self.walk_speed()
            t0 = self.u(-6.0, self.duration - 2.0)
            p.start(t0, self.off(side), y, -side).go(self.off(-side), y, speed, "run" if jog else "walk",
                                                      phase=self.u(0, 6.3))
            self.activities.append("jogging" if jog else "walking")
        if self.chance(0.4):
            p = self.person()
            x, y = self.u(0.08, 0.92) * self.W, self.band_y()
            motion = "talk" if self.chance(0.6) else "stand"
            extra = {"arm": "l" if self.chance(0.5) else "r", "phase": self.u(0, 6.3)}
            p.start(-1.0, x, y, self.side())
            if self.chance(0.3):  # waves at someone in between
                t = self.u(1.0, max(1.5, self.duration - 3))
                p.do(motion, t + 1.0, **extra).do("wave", self.u(1.0, 2.0))
            self.hold_until_end(p, motion, **extra)
            self.activities.append("standing")
        if sc.door is not None and self.chance(0.35):
            self.door_visit()
        if lay.park_y is not None:
            n = int(self.rng.integers(2, 4)) if lay.name == "parking_lot" else int(self.chance(0.5))
            xs = sorted(self.rng.uniform(0.1, 0.9, n) * self.W)
            for x in xs:
                if all(abs(x - c.x(0)) > 0.4 * self.W for c in sc.cars if c.parked):
                    self.parked_car(x)
        if traffic and lay.drive_y is not None:
            for _ in range(int(self.rng.integers(0, 3 if lay.name == "street" else 2))):
                self.passing_car(self.u(-2.0, self.duration - 1.0))

    def passing_car(self, t_mid: float, speed: float | None = None, y: float | None = None,
                    facing: int | None = None) -> Car:
        lay = self.scene.layout
        y = (lay.drive_y + (self.u(-0.03, 0.0))) * self.H if y is None else y
        f = self.side() if facing is None else facing
        v = speed or self.u(35.0, 55.0) * self.k
        span = 0.8 * self.W + 40 * self.k
        xm = self.W / 2
        car = self.scene.add_car(self.rng, y, f, [t_mid - span / v, t_mid + span / v],
                                 [xm - f * span, xm + f * span])
        self.activities.append("car passing")
        return car

    def door_visit(self) -> None:
        door = self.scene.door
        assert door is not None
        p = self.person()
        x = (door.box[0] + door.box[2]) / 2
        y = door.box[3] + 0.03 * self.H
        if self.chance(0.5):  # enters
            t = self.u(2.0, self.duration - 1.0)
            self.walk_in(p, x, y, t, self.side())
            p.do("open", 0.7, facing=1).do("stand", 0.5)
            door.open_intervals.append((t + 0.3, t + 2.2))
            self.scene.relate(t, t + 0.7, p.key, "opening", door.key)
            self.activities.append("entering a door")
        else:  # comes out
            t = self.u(0.0, self.duration - 3.0)
            door.open_intervals.append((t - 0.5, t + 1.2))
            p.start(t, x, y, self.side()).do("stand", 0.4)
            self.leave(p, self.side())
            self.activities.append("leaving a door")

    # ------------------------------------------------------------------ events
    def fighting(self, threat: bool) -> None:
        sc = self.scene
        a, b = self.person(), self.person()
        y = self.band_y(front=True)
        h = self.h_at(y, a)
        xc = self.u(0.35, 0.65) * self.W
        gap = 0.5 * h
        xa, xb = xc - gap / 2, xc + gap / 2
        talk = self.u(1.0, 2.0)
        bouts = 2 if (self.duration >= 12 and self.chance(0.3)) else 1
        lens = [self.u(2.2, 4.0) for _ in range(bouts)]
        pause = self.u(1.2, 2.0)
        core = talk + sum(lens) + pause * (bouts - 1)
        t = self.core_start(core, lo=1.0)
        self.walk_in(a, xa, y, t, -1)
        b.start(min(-0.5, t - 3.0), xb, y, -1).do("stand", t - min(-0.5, t - 3.0), facing=-1, phase=1.0)
        a.do("talk", talk, facing=1, arm="r")
        b.do("talk", talk, facing=-1, arm="r", phase=2.0)
        sc.relate(t, t + talk, a.key, "talking_to", b.key)
        t += talk
        mutual = self.chance(0.7)
        for i, length in enumerate(lens):
            if threat:
                a.do("fight", length, facing=1)
                b.do("fight" if mutual else "guard", length, facing=-1, offset=3)
                sc.relate(t, t + length, a.key, _fight_predicate(t, 0), b.key)
                if mutual:
                    sc.relate(t, t + length, b.key, _fight_predicate(t, 3), a.key)
                self.threat("Fighting", t, t + length,
                            f"a person in {_a(a.shirt)} shirt punching and kicking a person in {_a(b.shirt)} shirt "
                            f"in the {self.place()}")
            else:
                a.do("wave", min(1.2, length), facing=1).do("talk", max(0.2, length - 1.2), facing=1, arm="l")
                b.do("talk", length, facing=-1, arm="l", phase=0.5)
                sc.relate(t, t + length, a.key, "talking_to", b.key)
            t += length
            if i < bouts - 1:
                a.do("talk", pause, facing=1, arm="r")
                b.do("stand", pause, facing=-1)
                sc.relate(t, t + pause, a.key, "talking_to", b.key)
                t += pause
        if threat:
            self.leave(a, -1, "run" if self.chance(0.6) else "walk")
            b.do("stand", self.u(0.5, 2.0), facing=-1)
            self.leave(b, 1)
        else:
            a.do("wave", 0.8, facing=1)
            self.leave(a, -1)
            self.hold_until_end(b, "talk", arm="r")
        self.activities.append("fight" if threat else "conversation")

    def assault(self, threat: bool) -> None:
        sc = self.scene
        a, b = self.person(), self.person()
        y = self.band_y(front=True)
        h = self.h_at(y, b)
        side = self.side()  # the side a comes from
        xc = self.u(0.35, 0.65) * self.W
        xa, xb = xc + side * 0.24 * h, xc - side * 0.24 * h
        argue = self.u(0.8, 1.6)
        push, fall, lie, getup = 0.55, 0.6, self.u(1.5, 3.5), 1.3
        core = argue + push + fall + lie + getup if threat else argue + 4.0
        t = self.core_start(core, lo=1.0)
        self.walk_in(a, xa, y, t, side)
        t_b = min(-0.5, t - 3.0)
        b.start(t_b, xb, y, side).do("talk", t - t_b, facing=side, arm="l")
        if threat:
            a.do("talk", argue, facing=-side, arm="r")
            b.do("talk", argue, facing=side, arm="r", phase=1.5)
            sc.relate(t, t + argue, a.key, "talking_to", b.key)
            t += argue
            a.do("push", push, facing=-side)
            sc.relate(t, t + push, a.key, "pushing", b.key)
            b.do("stand", push * 0.6, facing=side)
            b.do("fall", fall, to=(xb - side * 0.3 * h, y), facing=side, direction=1.0)
            t_down = t + push * 0.6 + fall
            b.do("lie", lie, facing=side, direction=1.0).do("getup", getup, facing=side, direction=1.0)
            end = t_down + lie + getup
            self.threat("Assault", t, end,
                        f"a person in {_a(a.shirt)} shirt pushing a person in {_a(b.shirt)} shirt to the ground "
                        f"in the {self.place()}")
            a.do("stand", self.u(0.4, 1.0), facing=-side)
            self.leave(a, side, "run" if self.chance(0.7) else "walk")
            b.do("stand", 0.8, facing=side)
            self.leave(b, -side)
            self.activities.append("push")
        else:
            a.do("reach", 0.9, facing=-side)
            b.do("reach", 0.9, facing=side)
            sc.relate(t, t + 0.9, a.key, "talking_to", b.key)
            t += 0.9
            a.do("talk", argue + 0.5, facing=-side, arm="r")
            b.do("talk", argue + 0.5, facing=side, arm="l")
            sc.relate(t, t + argue + 0.5, a.key, "talking_to", b.key)
            t += argue + 0.5
            crouch = self.u(1.2, 2.0)
            b.do("crouch", crouch, facing=side)  # ties a shoe
            a.do("stand", crouch, facing=-side)
            b.do("stand", 0.5, facing=side)
            a.do("stand", 0.5, facing=-side)
            self.leave(a, -side)
            self.leave(b, -side)
            self.activities.append("handshake")

    def stealing(self, threat: bool) -> None:
        sc = self.scene
        owner = self.person()
        bag = sc.add_bag(self.rng)
        y = self.band_y(front=True)
        h = self.h_at(y, owner)
        xo = self.u(0.35, 0.65) * self.W
        side = self.side()  # the side the other person comes from
        fo = side  # the owner faces the newcomer
        if threat:
            reach, pull = 0.5, 0.6
            run_speed = self.run_speed()
            xt = xo + side * 0.34 * h
            exit_len = abs(self.off(side) - xt) / run_speed
            core = reach + pull + exit_len
            t = self.core_start(core, lo=1.5)
            t_o = min(-0.5, t - 4.0)
            held = self.chance(0.5)
            owner.start(t_o, xo, y, fo).do("talk" if self.chance(0.6) else "stand", t - t_o, facing=fo, arm="l")
            if held:
                bag.states.append((t_o, t + reach, "held", owner.key))
            else:
                bag.states.append((-1e4, t + reach, "ground", (xo + fo * 0.2 * h, y)))
            thief = self.person()
            self.walk_in(thief, xt, y, t, side)
            thief.do("reach", reach, facing=-side)
            t_grab = t + reach
            thief.do("pull", pull, facing=-side)
            sc.relate(t_grab, t_grab + pull, thief.key, "grabbing", bag.key)
            bag.states.append((t_grab, 1e4, "held", thief.key))
            owner.do("reach" if held else "stand", reach + pull, facing=fo)
            thief.go(self.off(side), y, run_speed, "run")
            t_exit = thief.t_end
            owner.do("alarm", self.u(1.0, 1.8), facing=fo)
            t_chase = owner.now
            self.leave(owner, side, "run")
            sc.relate(t_chase, 1e4, owner.key, "chasing", thief.key)
            self.threat("Stealing", t, t_exit,
                        f"a person in {_a(thief.shirt)} shirt snatching {_a(bag.colour)} bag from a person in "
                        f"{_a(owner.shirt)} shirt and running away in the {self.place()}")
            self.activities.append("bag snatch")
        elif self.chance(0.5):  # the bag is handed over
            t = self.core_start(5.0, lo=1.5)
            t_o = min(-0.5, t - 4.0)
            owner.start(t_o, xo, y, fo).do("stand", t - t_o, facing=fo)
            bag.states.append((t_o, t + 2.0, "held", owner.key))
            friend = self.person()
            xf = xo + side * 0.36 * h
            self.walk_in(friend, xf, y, t, side)
            talk = self.u(0.8, 1.4)
            owner.do("talk", talk, facing=fo, arm="l")
            friend.do("talk", talk, facing=-side, arm="l")
            sc.relate(t, t + talk, owner.key, "talking_to", friend.key)
            for p in (owner, friend):
                p.do("offer" if p is owner else "reach", 2.0 - talk + 0.3, facing=fo if p is owner else -side)
            bag.states[-1] = (t_o, t + 2.0, "held", owner.key)
            bag.states.append((t + 2.0, 1e4, "held", friend.key))
            owner.do("wave", 1.2, facing=fo)
            self.leave(friend, side)
            self.hold_until_end(owner)
            self.activities.append("bag handed over")
        else:  # one's own bag: put down, then picked up and carried away
            t = self.core_start(6.0, lo=1.0)
            self.walk_in(owner, xo, y, t, side)
            bag.states.append((owner.t_start, t + 0.5, "held", owner.key))
            owner.do("crouch", 0.8, facing=fo)
            bag.states.append((t + 0.5, t + 0.8 + 2.5 + 0.5, "ground", (xo + fo * 0.25 * h, y)))
            owner.do("talk", 2.5, facing=fo, arm="l")
            owner.do("crouch", 0.8, facing=fo)
            bag.states.append((t + 0.8 + 2.5 + 0.5, 1e4, "held", owner.key))
            self.leave(owner, -side)
            self.activities.append("own bag picked up")

    def arson(self, threat: bool) -> None:
        sc, lay = self.scene, self.scene.layout
        use_car = lay.park_y is not None and self.chance(0.5)
        if use_car:
            target = self.parked_car()
            tb = target.box(0.0)
            tkey, tname = target.key, f"{target.colour} car"
        else:
            assert sc.bin is not None
            tb = sc.bin.box
            tkey, tname = sc.bin.key, "trash bin"
        p = self.person()
        side = self.side()
        y = tb[3] + 0.02 * self.H
        self.taken.append(y)
        h = self.h_at(y, p)
        x = (tb[0] + tb[2]) / 2 + side * ((tb[2] - tb[0]) / 2 + 0.12 * h)
        crouch = self.u(1.2, 2.2)
        core = crouch + 3.0
        t = self.core_start(core, lo=1.0)
        self.walk_in(p, x, y, t, side)
        p.do("crouch", crouch, facing=-side)
        sc.relate(t, t + crouch, p.key, "touching", tkey)
        t_ig = t + crouch
        if threat:
            width = (tb[2] - tb[0]) * (0.9 if use_car else 1.6)
            fire = sc.add_fire(tkey, t_ig, t_ig + 2.0, t_ig + 2.0 + self.u(4.0, 9.0), width)
            sc.relate(t_ig + 0.3, fire.t_out, tkey, "on_fire", fire.key)
            p.do("stand", 0.3, facing=-side)
            self.leave(p, side, "run")
            if self.chance(0.5):  # a witness
                w = self.person()
                wy = self.band_y()
                wx = self.u(0.1, 0.9) * self.W
                w.start(-1.0, wx, wy, self.side()).do("stand", t_ig + 1.5 + 1.0, phase=0.3)
                w.do("alarm", self.u(1.5, 2.5))
                self.leave(w, 1 if wx > self.W / 2 else -1, "run")
            self.threat("Arson", t_ig, fire.t_out,
                        f"a person in {_a(p.shirt)} shirt setting fire to {_a(tname)} in the {self.place()} "
                        "and running away")
            self.activities.append("fire")
        else:
            p.do("stand", 0.5, facing=-side)
            self.leave(p, side)
            self.activities.append("crouching by a " + tname)

    def road_accident(self, threat: bool) -> None:
        sc, lay = self.scene, self.scene.layout
        assert lay.drive_y is not None
        p = self.person()
        f = self.side()
        v = self.u(38.0, 52.0) * self.k
        y_car = lay.drive_y * self.H
        near_lo, near_hi = lay.bands[-1]
        y_start = self.u(near_lo, near_hi) * self.H
        y_far = lay.bands[0][0] * self.H if lay.name == "street" else (lay.drive_y - 0.14) * self.H
        x_i = self.u(0.35, 0.65) * self.W
        h = self.h_at(y_car, p)
        self.taken.append(y_car)
        v_p = self.u(10.0, 14.0) * self.k
        if threat:
            lie = self.u(2.0, 4.0)
            core = 0.3 + 0.5 + lie
            t_i = self.core_start(core, lo=1.5)
            y_i = y_car + 0.006 * self.H
            facing = self.side()
            p.start(t_i - (y_start - y_i) / v_p, x_i, y_start, facing).do(
                "walk", (y_start - y_i) / v_p, to=(x_i, y_i), facing=facing)
            throw = v * 0.5 + 0.3 * h
            direction = -1.0 if facing == f else 1.0
            p.do("fall", 0.5, to=(x_i + f * throw, y_i), facing=facing, direction=direction)
            p.do("lie", lie, facing=facing, direction=direction)
            end = t_i + 0.5 + lie
            if end + 1.3 < self.duration:
                p.do("getup", 1.3, facing=facing, direction=direction)
                end += 1.3
            self.hold_until_end(p)
            L = 0.36 * self.W * sc.scale(y_car)
            c_i = x_i - f * L / 2
            x_enter = self.off(-f) - f * L / 2
            t_enter = t_i - abs(c_i - x_enter) / v
            car = sc.add_car(self.rng, y_car, f, [t_enter, t_i, t_i + 0.5, t_i + 1.0, 1e4],
                             [x_enter, c_i, c_i + f * v * 0.35, c_i + f * v * 0.5, c_i + f * v * 0.5])
            sc.relate(t_i - 0.2, t_i + 0.4, car.key, "hitting", p.key)
            if self.chance(0.5):  # someone runs to help
                w = self.person()
                side = self.side()
                self.walk_in(w, x_i + f * throw - side * 0.3 * h, y_i + 0.01 * self.H, t_i + 2.0, side, motion="run")
                w.do("crouch", self.duration + 1 - w.now, facing=-side)
            self.threat("RoadAccidents", t_i - 0.3, end,
                        f"{_a(car.colour)} car hitting a person in {_a(p.shirt)} shirt crossing the road "
                        f"in the {self.place()}")
            self.activities.append("car accident")
        else:
            wait = self.u(1.5, 3.0)
            y_curb = (lay.road[1] + 0.02) * self.H if lay.road else y_car + 0.05 * self.H
            t_w = self.core_start(wait + 4.0, lo=1.0)
            self.walk_in(p, x_i, y_curb, t_w, self.side())
            p.do("stand", wait, facing=-f)
            self.passing_car(t_w + wait * 0.5, speed=v, y=y_car, facing=f)
            p.do("walk", (y_curb - y_far) / v_p, to=(x_i, y_far))
            self.leave(p, self.side())
            self.activities.append("waiting to cross")

    def vandalism(self, threat: bool) -> None:
        sc = self.scene
        car = self.parked_car()
        cb = car.box(0.0)
        L = cb[2] - cb[0]
        p = self.person()
        side = self.side()
        y = cb[3] + 0.03 * self.H
        self.taken.append(y)
        x = (cb[0] + cb[2]) / 2 + side * 0.15 * L
        if threat:
            bouts = 2 if (self.duration >= 12 and self.chance(0.3)) else 1
            lens = [self.u(2.5, 4.2) for _ in range(bouts)]
            pause = self.u(1.2, 2.0)
            core = sum(lens) + pause * (bouts - 1)
            t = self.core_start(core, lo=1.0)
            self.walk_in(p, x, y, t, side)
            for i, length in enumerate(lens):
                p.do("strike", length, facing=-side)
                sc.relate(t, t + length, p.key, _strike_predicate(t), car.key)
                n = int(length / 0.7)
                car.damage_times.extend(t + (k + 0.5) * 0.7 for k in range(n))
                self.threat("Vandalism", t, t + length,
                            f"a person in {_a(p.shirt)} shirt kicking and hitting a parked {car.colour} car "
                            f"in the {self.place()}")
                t += length
                if i < bouts - 1:
                    p.do("stand", pause, facing=side)
                    t += pause
            self.leave(p, side, "run")
            self.activities.append("vandalism")
        elif self.chance(0.6):  # the owner opens the door and gets in
            t = self.core_start(3.0, lo=1.0)
            self.walk_in(p, x, y, t, side)
            p.do("open", 0.8, facing=-side).do("stand", 0.5, facing=-side)
            car.door_open.append((t + 0.4, t + 2.6))
            sc.relate(t, t + 0.8, p.key, "opening", car.key)
            self.activities.append("getting into a car")
        else:  # checks a tyre
            t = self.core_start(4.0, lo=1.0)
            self.walk_in(p, x, y, t, side)
            crouch = self.u(1.2, 2.2)
            p.do("crouch", crouch, facing=-side)
            sc.relate(t, t + crouch, p.key, "touching", car.key)
            p.do("stand", 0.5, facing=-side)
            self.leave(p, side)
            self.activities.append("checking a car")

    BUILDERS: dict[str, str] = {
        "Fighting": "fighting",
        "Assault": "assault",
        "Stealing": "stealing",
        "Arson": "arson",
        "RoadAccidents": "road_accident",
        "Vandalism": "vandalism",
    }

    def event(self, kind: str, threat: bool) -> None:
        getattr(self, self.BUILDERS[kind])(threat)


def _a(word: str) -> str:
    """``"a red"``, ``"an orange"``."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _fight_predicate(t0: float, offset: int) -> Callable[[float], str | None]:
    def predicate(t: float) -> str | None:
        move, e = fight_move(t - t0, offset)
        if e < 0.35 or move == "guard":
            return None
        return "kicking" if move == "kick" else "hitting"

    return predicate


def _strike_predicate(t0: float) -> Callable[[float], str | None]:
    def predicate(t: float) -> str | None:
        move, e = strike_move(t - t0)
        if e < 0.35:
            return None
        return "kicking" if move == "kick" else "hitting"

    return predicate


# --------------------------------------------------------------------------- one video
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
                            "keypoints": list(COCO_KEYPOINTS), "skeleton": [list(e) for e in COCO_SKELETON]}],
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
    if category != NORMAL and category not in THREAT_CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose from {[NORMAL, *THREAT_CATEGORIES]}")
    rng = np.random.default_rng([int(seed), int(index), 0x5EED])
    kinds = list(config.categories)
    kind = str(rng.choice(kinds)) if category == NORMAL else category
    scene_kind = str(rng.choice(EVENT_SCENES[kind]))
    n = round(rng.uniform(config.min_duration, config.max_duration) * config.fps)
    duration = n / config.fps
    scene = Scene(LAYOUTS[scene_kind], config.size, config.size, rng, config.supersample,
                  brightness=float(rng.uniform(0.85, 1.1)))
    b = _Builder(scene, rng, duration)
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


# --------------------------------------------------------------------------- writing
def write_mp4(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float, crf: int = 18,
              gop: int | None = None) -> Path:
    """Encode RGB frames ``uint8 [N, H, W, 3]`` to H.264 in an mp4 (PyAV), atomically.

    Frame ``i`` gets pts ``i`` in a ``1/fps`` time base. One encoder thread and no
    B-frames keep the bytes reproducible; a keyframe every ``gop`` frames (default
    2 s) keeps seeking cheap.
    """
    import av

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.codec_context.time_base = 1 / rate
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        stream.options = {"crf": str(int(crf)), "preset": "veryfast", "bf": "0",
                          "g": str(int(gop or max(1, round(2 * fps)))), "threads": "1"}
        first = True
        for i, arr in enumerate(frames):
            if first:
                stream.height, stream.width = int(arr.shape[0]), int(arr.shape[1])
                first = False
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            frame.pts = i
            frame.time_base = stream.codec_context.time_base
            container.mux(stream.encode(frame))
        if first:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode(None))
    return path


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
    n_normal = round(num_videos * config.normal_fraction)
    n_threat = num_videos - n_normal
    cats = [config.categories[i % len(config.categories)] for i in range(n_threat)] + [NORMAL] * n_normal
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
            ``min_duration=``, ...) replace its fields.
        progress: show a tqdm bar.
        overwrite: render every video again even if a finished copy is there.

    Returns:
        the summary also written to ``world.json``: the configuration, every video's
        category, scene, duration, segments, causes and split, the counts, and the
        instruction files.
    """
    from uprm.data.annotations import write_activitynet
    from uprm.data.instructions import build_instructions

    if num_videos < 1:
        raise ValueError(f"num_videos must be at least 1, got {num_videos}")
    base = config or WorldConfig()
    if config_overrides:
        base = WorldConfig(**{**base.to_dict(), **config_overrides})
    config = base
    out = Path(out_dir)
    dirs = {name: out / name for name in ("videos", "keypoints", "scene_graphs", "annotations", "instructions", "meta")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    categories = _categories(num_videos, config, seed)
    ids = _video_ids(categories)
    splits = _assign_splits(list(zip(ids, categories)), config.splits, seed)
    fingerprint = hashlib.sha256(
        _dump({"format": WORLD_FORMAT, "seed": seed, "config": config.to_dict()}).encode()
    ).hexdigest()[:16]

    iterator: Iterable[int] = range(num_videos)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="synthetic world", unit="video")
    summaries = []
    for i in iterator:
        vid, cat = ids[i], categories[i]
        meta_path = dirs["meta"] / f"{vid}.json"
        paths = [dirs["videos"] / f"{vid}.mp4", dirs["keypoints"] / f"{vid}.json", dirs["scene_graphs"] / f"{vid}.json"]
        summary = None
        if not overwrite and meta_path.exists() and all(p.exists() for p in paths):
            try:
                previous = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = None
            if previous and previous.get("fingerprint") == fingerprint and previous.get("category") == cat:
                summary = previous
        if summary is None:
            video = make_video(i, seed, cat, vid, config)
            write_mp4(paths[0], (video.scene.render(video.time(j)) for j in range(video.num_frames)), config.fps,
                      config.crf)
            atomic_write_text(paths[1], _dump(video.keypoints_json()))
            atomic_write_text(paths[2], _dump(video.scene_graph_json()))
            summary = dict(video.summary(), fingerprint=fingerprint)
            atomic_write_json(meta_path, summary)
        summary = dict(summary, split=splits[vid])
        summaries.append(summary)

    from uprm.data.annotations import VideoAnnotation

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
    records = build_instructions(
        anns, dirs["instructions"], name="synthetic", videos=dirs["videos"], keypoints=dirs["keypoints"],
        scene_graphs=dirs["scene_graphs"], seed=seed, missing="error",
    )
    world = {
        "format": WORLD_FORMAT,
        "seed": seed,
        "num_videos": num_videos,
        "config": config.to_dict(),
        "counts": {
            "category": dict(sorted(Counter(s["category"] for s in summaries).items())),
            "scene": dict(sorted(Counter(s["scene"] for s in summaries).items())),
            "split": dict(sorted(Counter(s["split"] for s in summaries).items())),
            "instructions": {k: dict(sorted(v.items())) for k, v in records.counts().items()},
        },
        "instructions": {split: p.relative_to(out).as_posix() for split, p in sorted(records.files.items())},
        "videos": [{k: v for k, v in s.items() if k != "fingerprint"} for s in summaries],
    }
    atomic_write_json(out / "world.json", world)
    return world


# --------------------------------------------------------------------------- CLI
def _floats(text: str, what: str, n: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{what} must be {n} comma-separated numbers, got {text!r}") from None
    if len(values) != n:
        raise click.BadParameter(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return values


@click.command("synthetic")
@click.option("--videos", "num_videos", type=click.IntRange(min=1), default=60, show_default=True,
              help="How many videos to render.")
@click.option("--seed", type=int, default=0, show_default=True, help="The world's seed (same seed, same world).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder (videos/, keypoints/, scene_graphs/, annotations/, instructions/, world.json).")
@click.option("--size", type=click.IntRange(min=32), default=128, show_default=True, help="Frame side in pixels.")
@click.option("--fps", type=click.FloatRange(min=1.0), default=8.0, show_default=True, help="Frames per second.")
@click.option("--duration", "durations", default="8,20", show_default=True,
              help="MIN,MAX video length in seconds (MIN >= 6).")
@click.option("--normal-fraction", type=click.FloatRange(0.0, 1.0), default=0.4, show_default=True,
              help="Share of normal videos (no threat).")
@click.option("--categories", default=",".join(THREAT_CATEGORIES), show_default=True,
              help="Threat categories to include (comma list).")
@click.option("--splits", default="0.7,0.15,0.15", show_default=True,
              help="TRAIN,VAL,TEST fractions (stratified by category).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="H.264 quality (lower = better).")
@click.option("--overwrite", is_flag=True, help="Render every video again (default: keep finished ones).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synthetic_command(num_videos: int, seed: int, out_dir: str, size: int, fps: float, durations: str,
                      normal_fraction: float, categories: str, splits: str, crf: int, overwrite: bool,
                      quiet: bool) -> None:
    """Render the synthetic surveillance world: CCTV-like clips of stick-figure people,
    cars, bags, doors and fires, with threats (Fighting, Assault, Stealing, Arson,
    RoadAccidents, Vandalism) at known times and with cause sentences, and normal
    look-alikes of each (a conversation, a handshake, a bag handed over, ...).

    Writes H.264 videos, the true COCO keypoints and scene graphs of every frame,
    UCF-Crime and ActivityNet annotations, causes.json, and the identify / locate /
    attribute instruction JSON for train, val and test. Deterministic for a seed;
    re-running resumes (finished videos are kept).
    """
    lo, hi = _floats(durations, "--duration", 2)
    try:
        config = WorldConfig(
            size=size, fps=fps, min_duration=lo, max_duration=hi, normal_fraction=normal_fraction,
            categories=tuple(c.strip() for c in categories.split(",") if c.strip()),
            splits=_floats(splits, "--splits", 3), crf=crf,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    world = generate_world(out_dir, num_videos, seed, config=config, progress=not quiet, overwrite=overwrite)
    counts = world["counts"]
    click.echo(f"Wrote {num_videos} videos to {out_dir}")
    click.echo("  categories: " + ", ".join(f"{k} {v}" for k, v in counts["category"].items()))
    click.echo("  scenes:     " + ", ".join(f"{k} {v}" for k, v in counts["scene"].items()))
    click.echo("  splits:     " + ", ".join(f"{k} {v}" for k, v in counts["split"].items()))
    click.echo("  instructions: " + ", ".join(f"{k} {v}" for k, v in counts["instructions"]["split/task"].items()))
    for split, path in world["instructions"].items():
        click.echo(f"  {split}: {Path(out_dir) / path}")
