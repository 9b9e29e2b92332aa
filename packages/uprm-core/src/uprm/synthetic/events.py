"""Scripted events of the synthetic world: each threat and its look-alike normal twin.

:class:`EventScript` places people, cars, bags and fires in a :class:`~uprm.synthetic.scene.Scene`
and records the threats (:class:`ThreatEvent`) with their segments and causes. Besides the
six UCF-Crime threats (:data:`THREAT_CATEGORIES`) it scripts the site categories
(:data:`SITE_CATEGORIES`: a climb over a fence), which only a world with a site category shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from uprm.synthetic.body import fight_move, strike_move
from uprm.synthetic.scene import Car, Person, Scene

__all__ = ["EVENT_SCENES", "KEYED_CATEGORIES", "NORMAL", "SITE_CATEGORIES", "SITE_TAXONOMY", "THREAT_CATEGORIES",
           "EventScript", "ThreatEvent"]

NORMAL = "Normal"
#: the six threats, in UCF-Crime's category names
THREAT_CATEGORIES = ("Fighting", "Assault", "Stealing", "Arson", "RoadAccidents", "Vandalism")
#: the threats of the keyed world (``design="keyed"``, :mod:`uprm.synthetic.keyed`), one per channel:
#: pose, relation, background, coarse
KEYED_CATEGORIES = ("Fighting", "Stealing", "Arson", "RoadAccidents")
#: site categories (``WorldConfig.site_category``, ``--site-category``): threats no default world
#: contains and UCF-Crime does not name, for showing that a model adapts to a site's own threats
SITE_CATEGORIES = ("FenceClimbing",)
#: each site category as a site taxonomy's entry (:mod:`uprm.taxonomy`; a site world's ``taxonomy.yaml``)
SITE_TAXONOMY: dict[str, dict[str, Any]] = {
    "FenceClimbing": {
        "description": "Someone climbs over the fence into the yard it closes off.",
        "severity": "high",
        "causes": ["a person climbing over the fence", "a person climbing the fence into the yard and running off",
                   "a person dropping down from the fence on the yard side"],
        "aliases": ["Trespassing"],
    },
}
#: scene kinds each kind of event can happen in (a threat and its twin share them)
EVENT_SCENES: dict[str, tuple[str, ...]] = {
    "Fighting": ("street", "shop", "parking_lot", "plaza"),
    "Assault": ("street", "shop", "parking_lot", "plaza"),
    "Stealing": ("street", "shop", "parking_lot", "plaza"),
    "Arson": ("street", "shop", "parking_lot", "plaza"),
    "RoadAccidents": ("street", "parking_lot"),
    "Vandalism": ("street", "parking_lot"),
    "FenceClimbing": ("parking_lot", "plaza"),  # where a site world has a fence (scene.FENCE_LINES)
}


@dataclass
class ThreatEvent:
    """One threat: its category, segment ``[start, end)`` in seconds and cause sentence."""

    category: str
    start: float
    end: float
    cause: str



class EventScript:
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

    def pair_in_front(self) -> tuple[Person, Person, float, float, float]:
        """Two people who will meet, the ground y near the front of a band where they do, the
        first one's height there and an x in the middle of the frame."""
        a, b = self.person(), self.person()
        y = self.band_y(front=True)
        return a, b, y, self.h_at(y, a), self.u(0.35, 0.65) * self.W

    def meet(self, a: Person, b: Person, xa: float, xb: float, y: float, t: float, talk: float) -> float:
        """``a`` walks in from the left to ``xa`` by ``t``; ``b`` has stood at ``xb`` since before;
        they talk for ``talk`` seconds, face to face. Returns when the talk ends."""
        self.walk_in(a, xa, y, t, -1)
        t_b = min(-0.5, t - 3.0)
        b.start(t_b, xb, y, -1).do("stand", t - t_b, facing=-1, phase=1.0)
        a.do("talk", talk, facing=1, arm="r")
        b.do("talk", talk, facing=-1, arm="r", phase=2.0)
        self.scene.relate(t, t + talk, a.key, "talking_to", b.key)
        return t + talk

    def beside(self, box: tuple[float, float, float, float]) -> tuple[Person, int, float, float]:
        """Someone who will come from a random side to the object with ``box``: the person,
        the side, and the ground ``(y, x)`` just in front of the object's base, beside it."""
        p = self.person()
        side = self.side()
        y = box[3] + 0.02 * self.H
        self.taken.append(y)
        h = self.h_at(y, p)
        return p, side, y, (box[0] + box[2]) / 2 + side * ((box[2] - box[0]) / 2 + 0.12 * h)

    def crouch_at(self, p: Person, x: float, y: float, side: int, t: float, crouch: float, key: str) -> float:
        """``p`` walks in from ``side`` to ``(x, y)`` by ``t`` and crouches there for ``crouch``
        seconds, touching the object ``key``. Returns when the crouch ends."""
        self.walk_in(p, x, y, t, side)
        p.do("crouch", crouch, facing=-side)
        self.scene.relate(t, t + crouch, p.key, "touching", key)
        return t + crouch

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
        a, b, y, h, xc = self.pair_in_front()
        talk = self.u(1.0, 2.0)
        bouts = 2 if (self.duration >= 12 and self.chance(0.3)) else 1
        lens = [self.u(2.2, 4.0) for _ in range(bouts)]
        pause = self.u(1.2, 2.0)
        core = talk + sum(lens) + pause * (bouts - 1)
        t = self.meet(a, b, xc - 0.25 * h, xc + 0.25 * h, y, self.core_start(core, lo=1.0), talk)
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
        p, side, y, x = self.beside(tb)
        crouch = self.u(1.2, 2.2)
        t_ig = self.crouch_at(p, x, y, side, self.core_start(crouch + 3.0, lo=1.0), crouch, tkey)
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

    def fence_climbing(self, threat: bool) -> None:
        """Someone walks along the fence and stops at it. The threat: they climb over it into
        the yard (their body rises over the top rail), drop down the other side and run or walk
        off along it. The twins: they look through it and walk on, or lean on it a while."""
        sc, fence = self.scene, self.scene.fence
        assert fence is not None, "a fence event needs the scene's fence (Scene.add_fence)"
        p = self.person()
        side = self.side()  # the side they come from
        y_front = fence.box[3] + 0.02 * self.H
        self.taken.append(y_front)
        x = self.u(0.3, 0.7) * self.W
        if threat:
            look, climb = self.u(0.4, 1.2), self.u(1.8, 2.4)
            t = self.core_start(look + climb + 1.0, lo=1.0)
            self.walk_in(p, x, y_front, t, side)
            p.do("stand", look, facing=-side)
            t_climb = t + look
            p.do("climb", climb, to=(x, fence.box[3] - 0.03 * self.H), facing=-side,
                 rise=1.25 * (fence.box[3] - fence.box[1]))  # the feet clear the top rail
            sc.relate(t_climb, t_climb + climb, p.key, "climbing_over", fence.key)
            p.do("crouch", 0.4, facing=-side)
            self.threat("FenceClimbing", t_climb, p.now,
                        f"a person in {_a(p.shirt)} shirt climbing over the fence in the {self.place()}")
            self.leave(p, self.side(), "run" if self.chance(0.6) else "walk")
            self.activities.append("climbing over a fence")
        elif self.chance(0.5):  # walks along the fence, stops to look through it, walks on
            look = self.u(1.0, 2.5)
            self.walk_in(p, x, y_front, self.core_start(look + 2.0, lo=1.0), side)
            p.do("stand", look, facing=-side)
            self.leave(p, -side)
            self.activities.append("walking along a fence")
        else:  # leans on its top rail a while, then walks on
            lean = self.u(2.0, 4.0)
            t = self.core_start(lean + 1.0, lo=1.0)
            self.walk_in(p, x, y_front, t, side)
            p.do("lean", lean, facing=-side, phase=self.u(0, 6.3))
            sc.relate(t, t + lean, p.key, "leaning_on", fence.key)
            self.leave(p, -side)
            self.activities.append("leaning on a fence")

    BUILDERS: dict[str, str] = {
        "Fighting": "fighting",
        "Assault": "assault",
        "Stealing": "stealing",
        "Arson": "arson",
        "RoadAccidents": "road_accident",
        "Vandalism": "vandalism",
        "FenceClimbing": "fence_climbing",
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

