"""The keyed world: a synthetic world designed so that the answer is known per category.

``uprm data synthetic --design keyed`` (``generate_world(..., design="keyed")``) renders
threats and their look-alike normal twins **in pairs**: a pair is scripted twice from one
random stream, once as the threat and once as the twin, and the two differ in exactly one
of the four inputs of UPRM's experts. ``OUT/design.json`` names that channel per category
(:func:`design_summary`):

=================  ==========  ================================================  ===================================
category           channel     the threat                                        its twin (the same script otherwise)
=================  ==========  ================================================  ===================================
``Fighting``       pose        two people punch and kick                         the same two people dance
``Stealing``       relation    a passer-by picks up a bag that belongs to the    the bag is the passer-by's own
                               person standing next to it and walks off
``Arson``          background  a trash bin bursts into flames and smoke          a lit sign of the same colours on it
``RoadAccidents``  coarse      a car drives into the back of a stopped car       it brakes; both drive off later
=================  ==========  ================================================  ===================================

The channels (:data:`CHANNELS`) are the experts' inputs in this world: ``pose`` the keypoint
sidecar ``keypoints/<id>.json`` (the pose expert), ``relation`` the scene-graph sidecar
``scene_graphs/<id>.json`` (the relation expert), ``background`` and ``coarse`` the pixels of
``videos/<id>.mp4`` (SAM's encoder and the video tower): ``background`` a change of the scene's
appearance where nothing moves differently, ``coarse`` gross motion.

Why the pixels do not give the pose- and relation-keyed threats away: people are drawn as
silhouettes of a fixed shape (:class:`KeyedScene`: a head, a torso and legs in their
clothes' colours, placed where the person stands), so a frame is a function of where people
are, never of their limbs; a held bag hangs at a fixed place beside its holder. The limbs
exist only in the keypoint sidecar and ownership only in the scene graph, so a fight and a
dance render to the same frames, and so do taking someone's bag and taking one's own (the
test suite checks it frame by frame). The scene graphs describe people by a pose-independent
box and list people, bags, bins, doors and cones (vehicles, fires and signs are pixels only),
so the fight's graph is the dance's, and the car crash's graph is its twin's.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from uprm.synthetic.config import WorldConfig
from uprm.synthetic.events import KEYED_CATEGORIES, NORMAL, EventScript, _a
from uprm.synthetic.scene import LAYOUTS, Bag, Fire, Person, PersonState, Relation, Scene
from uprm.synthetic.video import SyntheticVideo

__all__ = [
    "CHANNELS",
    "KEYED_CATEGORIES",
    "KEYED_DESIGN",
    "KEYED_FORMAT",
    "KeyedScene",
    "KeyedScript",
    "KeyedSlot",
    "design_summary",
    "keyed_plan",
    "keyed_splits",
    "make_keyed_video",
]

KEYED_FORMAT = 1  # bump when what a keyed world contains changes

#: the experts' inputs in the keyed world: which expert reads each channel, from which file
CHANNELS: dict[str, dict[str, str]] = {
    "pose": {"expert": "pose", "input": "keypoints/<id>.json",
             "carries": "the 17 COCO joints of every person in every frame: limb dynamics"},
    "relation": {"expert": "relation", "input": "scene_graphs/<id>.json",
                 "carries": "people (a pose-independent box), bags, bins, doors and cones in every frame, with "
                            "who talks to, touches, picks up, holds, carries and owns what; vehicles, fires and "
                            "signs are not in it"},
    "background": {"expert": "background", "input": "videos/<id>.mp4",
                   "carries": "the pixels of the scene itself: its appearance where nothing moves differently"},
    "coarse": {"expert": "coarse", "input": "videos/<id>.mp4",
               "carries": "the pixels as the video tower sees them: gross motion of cars and silhouettes"},
}

#: per category: the channel it is keyed to, its twin, what differs, and which inputs are the same
KEYED_DESIGN: dict[str, dict[str, Any]] = {
    "Fighting": {
        "channel": "pose",
        "twin": "the same two people, after the same talk, dance together for as long",
        "what differs": "limb dynamics in the keypoints: fast jabs to head height and kicks against arms swung "
                        "overhead to a slow beat",
        "inputs": {"videos": "same", "keypoints": "differ", "scene_graphs": "same"},
    },
    "Stealing": {
        "channel": "relation",
        "twin": "the passer-by picks up their own bag, left next to the same person, in the same way",
        "what differs": "who owns the bag in the scene graphs (bag belonging_to the person standing there, "
                        "not to the one who carries it off)",
        "inputs": {"videos": "same", "keypoints": "same", "scene_graphs": "differ"},
    },
    "Arson": {
        "channel": "background",
        "twin": "a sign of the same colours lights up on the same bin for as long, after the same visit",
        "what differs": "the scene's appearance at the bin: flickering flames under a plume of smoke against "
                        "a steady lit panel on a dark board",
        "inputs": {"videos": "differ", "keypoints": "same", "scene_graphs": "same"},
    },
    "RoadAccidents": {
        "channel": "coarse",
        "twin": "the car brakes and stops behind the stopped car; after a wait both drive off",
        "what differs": "gross motion of the cars: an impact that shoves the stopped car forward and leaves both "
                        "wrecked on the road, against a stop and driving off",
        "inputs": {"videos": "differ", "keypoints": "same", "scene_graphs": "same"},
    },
}

#: scene kinds each keyed category happens in (a threat and its twin share one)
KEYED_SCENES: dict[str, tuple[str, ...]] = {
    "Fighting": ("street", "shop", "parking_lot", "plaza"),
    "Stealing": ("street", "shop", "parking_lot", "plaza"),
    "Arson": ("street", "shop", "parking_lot", "plaza"),
    "RoadAccidents": ("street", "parking_lot"),
}

SIGN_COLOURS = ((200, 40, 20), (238, 120, 30), (250, 210, 70))  # the fire's own three colours
BOARD = (70, 68, 66)  # the colour of the fire's smoke


@dataclass
class Glow(Fire):
    """Something that lights up on a fixed object: ``kind`` ``"fire"`` (flames and smoke) or
    ``"sign"`` (a lit panel of the fire's colours). Pixels only: in no scene graph."""

    kind: str = "fire"


class KeyedScene(Scene):
    """A :class:`Scene` whose pixels depend on where people are, never on their limbs.

    People are drawn as fixed-shape silhouettes and described in scene graphs by a
    pose-independent box (:meth:`envelope`); a held bag hangs at a fixed place beside its
    holder; vehicles and glows (fire, signs) are drawn but not in the scene graphs;
    ownership relations (:meth:`own`) are added to the scene graph without hiding the
    holding/carrying relation of the same pair."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.glows: list[Glow] = []
        self.ownership: list[Relation] = []
        self._states: dict[float, dict[str, PersonState]] = {}

    def person_states(self, t: float) -> dict[str, PersonState]:
        """As :meth:`Scene.person_states`, remembered per ``t``: a frame's pixels, keypoints and
        scene graph read the same states (a third of the work; scripts are final once rendering starts)."""
        if t not in self._states:
            self._states[t] = super().person_states(t)
        return dict(self._states[t])

    @staticmethod
    def envelope(st: PersonState) -> tuple[float, float, float, float]:
        """A person's box from where they stand and their height alone (not their joints)."""
        h = st.height
        return st.x - 0.2 * h, st.y - h, st.x + 0.2 * h, st.y

    def add_glow(self, kind: str, target: str, t0: float, t_full: float, t_out: float, width: float) -> Glow:
        glow = Glow(self.new_key("glow"), target, t0, t_full, t_out, width, kind=kind)
        self.glows.append(glow)
        return glow

    def own(self, t0: float, t1: float, thing: str, owner: str) -> None:
        """``thing belonging_to owner`` over ``[t0, t1)`` (while both are in the frame)."""
        self.ownership.append(Relation(t0, t1, thing, "belonging_to", owner))

    # ------------------------------------------------------------------ description
    def _bag_box(self, bag: Bag, t: float, persons: dict[str, PersonState]) -> tuple[float, float, float, float] | None:
        where = bag.where(t)
        if where is None or where[0] == "ground":
            return super()._bag_box(bag, t, persons)
        st = persons.get(where[1])
        if st is None:
            return None
        sz = bag.size * self.scale(st.y)
        x, y = st.x + st.facing * 0.24 * st.height, st.y - 0.5 * st.height
        return x - sz / 2, y, x + sz / 2, y + sz

    def boxes(self, t: float, persons: dict[str, PersonState] | None = None) -> dict[str, tuple]:
        """Fixed objects, people (their :meth:`envelope`) and bags: what the scene graphs list."""
        persons = self.person_states(t) if persons is None else persons
        out: dict[str, tuple] = {obj.key: obj.box for obj in self.statics}
        out.update({key: self.envelope(st) for key, st in persons.items()})
        for bag in self.bags:
            b = self._bag_box(bag, t, persons)
            if b is not None:
                out[bag.key] = b
        return out

    def labels(self) -> dict[str, str]:
        out = {o.key: o.label for o in self.statics}
        out.update({p.key: p.label for p in self.persons})
        out.update({b.key: b.label for b in self.bags})
        return out

    def triplets(self, t: float, persons: dict[str, PersonState], boxes: dict[str, tuple]) -> list[tuple[str, str, str]]:
        out = super().triplets(t, persons, boxes)
        for rel in self.ownership:
            if rel.at(t) is not None and rel.subject in boxes and rel.object in boxes:
                out.append((rel.subject, "belonging_to", rel.object))
        return out

    # ------------------------------------------------------------------ drawing
    def _effect_items(self, d: Any, t: float, boxes: dict[str, tuple]) -> list[tuple[float, int, Callable[[], None]]]:
        """The glows (fires and signs), each in front of the object it is on."""
        items: list[tuple[float, int, Callable[[], None]]] = []
        for glow in self.glows:
            tb = boxes.get(glow.target)
            b = self._glow_box(glow, t, tb) if tb is not None else None
            if b is not None:
                items.append((tb[3] + 0.03, 4, lambda g=glow, gb=b: self._draw_glow(d, g, gb, t)))  # type: ignore[index,misc]
        return items

    def _draw_person(self, d: Any, person: Person, st: PersonState) -> None:
        """Legs, torso and head of a fixed shape: where the person is, in their colours (not
        their limbs: a frame of this scene is a function of positions, not poses)."""
        from uprm.synthetic.scene import PALETTES

        s = self.ss
        h, x, y = st.height * s, st.x * s, st.y * s
        d.rectangle([x - 0.1 * h, y - 0.48 * h, x + 0.1 * h, y], fill=PALETTES["pants"][person.pants])
        d.rectangle([x - 0.13 * h, y - 0.84 * h, x + 0.13 * h, y - 0.46 * h], fill=PALETTES["shirt"][person.shirt])
        d.ellipse([x - 0.08 * h, y - h, x + 0.08 * h, y - 0.84 * h], fill=PALETTES["skin"][person.skin])

    def _glow_box(self, glow: Glow, t: float, target: tuple) -> tuple[float, float, float, float] | None:
        if glow.kind == "fire":
            return self._fire_box(glow, t, {glow.target: target})
        if glow.intensity(t) <= 0.02:
            return None
        cx, w = (target[0] + target[2]) / 2, glow.width
        base = target[1] + 0.35 * (target[3] - target[1])
        return cx - w / 2, base - 1.4 * w, cx + w / 2, base

    def _draw_glow(self, d: Any, glow: Glow, box: tuple, t: float) -> None:
        if glow.kind == "fire":
            self._draw_fire(d, glow, box, t)
            return
        k = glow.intensity(t)
        s = self.ss
        x0, y0, x1, y1 = (v * s for v in box)
        w, h = x1 - x0, y1 - y0

        def lit(rgb: tuple[int, int, int]) -> tuple[int, ...]:
            return tuple(round(b + (c - b) * k) for b, c in zip(BOARD, rgb))

        d.rectangle([x0, y0, x1, y1], fill=BOARD)  # the board
        d.rectangle([x0 + 0.08 * w, y0 + 0.3 * h, x1 - 0.08 * w, y1 - 0.05 * h], fill=lit(SIGN_COLOURS[0]))
        d.rectangle([x0 + 0.16 * w, y0 + 0.42 * h, x1 - 0.16 * w, y1 - 0.15 * h], fill=lit(SIGN_COLOURS[1]))
        for j in range(3):  # the lettering
            ly = y0 + (0.5 + 0.1 * j) * h
            d.rectangle([x0 + 0.24 * w, ly, x1 - (0.24 + 0.12 * j) * w, ly + 0.05 * h], fill=lit(SIGN_COLOURS[2]))


class KeyedScript(EventScript):
    """Scripts the keyed events. Every random number is drawn before the threat/twin branch,
    and a branch draws none, so a pair's threat and twin share everything else."""

    scene: KeyedScene

    BUILDERS: dict[str, str] = {
        "Fighting": "keyed_fighting",
        "Stealing": "keyed_stealing",
        "Arson": "keyed_arson",
        "RoadAccidents": "keyed_crash",
    }

    def keyed_fighting(self, threat: bool) -> None:
        """A talk, then a fight (the threat) or a dance (the twin) of the same length, then both leave."""
        a, b, y, h, xc = self.pair_in_front()
        talk, bout, mutual = self.u(1.0, 2.0), self.u(2.5, 4.5), self.chance(0.7)
        t = self.meet(a, b, xc - 0.25 * h, xc + 0.25 * h, y, self.core_start(talk + bout + 0.6, lo=1.0), talk)
        if threat:
            a.do("fight", bout, facing=1)
            b.do("fight" if mutual else "guard", bout, facing=-1, offset=3)
            self.threat("Fighting", t, t + bout,
                        f"a person in {_a(a.shirt)} shirt punching and kicking a person in {_a(b.shirt)} shirt "
                        f"in the {self.place()}")
        else:
            a.do("dance", bout, facing=1)
            b.do("dance", bout, facing=-1, phase=1.6 if mutual else 3.1)
        a.do("stand", 0.6, facing=1)
        b.do("stand", 0.6, facing=-1)
        self.leave(a, -1)
        self.leave(b, 1)
        self.activities.append("fight" if threat else "dancing")

    def keyed_stealing(self, threat: bool) -> None:
        """A bag lies next to a person standing there; a passer-by picks it up and walks off.
        The threat: the bag belongs to the person standing there; the twin: to the passer-by."""
        sc = self.scene
        stander, taker = self.person(), self.person()
        bag = sc.add_bag(self.rng)
        y = self.band_y(front=True)
        h = self.h_at(y, stander)
        xs = self.u(0.3, 0.7) * self.W
        side = self.side()  # where the passer-by comes from and goes back to
        x_bag = xs + side * 0.3 * h
        idle = "talk" if self.chance(0.5) else "stand"
        phase = self.u(0.0, 6.3)
        t = self.core_start(5.0, lo=1.5)
        stander.start(-1.0, xs, y, side)
        self.hold_until_end(stander, idle, arm="l", phase=phase)
        bag.states.append((-1e4, t + 0.5, "ground", (x_bag, y)))
        self.walk_in(taker, x_bag + side * 0.15 * h, y, t, side)
        taker.do("crouch", 0.8, facing=-side)
        sc.relate(t, t + 0.8, taker.key, "picking_up", bag.key)
        bag.states.append((t + 0.5, 1e4, "held", taker.key))
        taker.do("stand", 0.3, facing=-side)
        self.leave(taker, side)
        sc.own(-1e4, 1e4, bag.key, (stander if threat else taker).key)
        if threat:
            self.threat("Stealing", t, taker.t_end,
                        f"a person in {_a(taker.shirt)} shirt taking {_a(bag.colour)} bag that belongs to a person "
                        f"in {_a(stander.shirt)} shirt and walking away in the {self.place()}")
        self.activities.append("picking up a bag")

    def keyed_arson(self, threat: bool) -> None:
        """Someone crouches at the bin and walks off; the bin then burns (the threat) or a
        sign of the same colours lights up on it (the twin), for as long."""
        sc = self.scene
        assert sc.bin is not None
        tb = sc.bin.box
        p, side, y, x = self.beside(tb)
        crouch, burn = self.u(1.2, 2.2), self.u(4.0, 8.0)
        t_ig = self.crouch_at(p, x, y, side, self.core_start(crouch + 3.0, lo=1.0), crouch, sc.bin.key)
        p.do("stand", 0.3, facing=-side)
        self.leave(p, side)
        glow = sc.add_glow("fire" if threat else "sign", sc.bin.key, t_ig, t_ig + 2.0, t_ig + 2.0 + burn,
                           (tb[2] - tb[0]) * 2.4)
        if threat:
            self.threat("Arson", t_ig, glow.t_out, f"a trash bin set on fire in the {self.place()}, flames and "
                                                   "smoke rising from it")
        self.activities.append("crouching by a trash bin")

    def keyed_crash(self, threat: bool) -> None:
        """A car stands in the lane; another comes up behind it at speed and either drives
        into it (the threat: both stay, wrecked) or brakes behind it (the twin: after a wait
        both drive off)."""
        sc, lay = self.scene, self.scene.layout
        assert lay.drive_y is not None
        f = self.side()
        v = self.u(38.0, 52.0) * self.k
        y = lay.drive_y * self.H
        self.taken.append(y)
        length = 0.36 * self.W * sc.scale(y)
        x_b = self.W / 2 + f * self.u(-0.05, 0.2) * self.W
        t_i = self.core_start(4.0, lo=2.0)
        wait = self.u(1.5, 2.5)
        c_i = x_b - f * length  # the moving car's centre at the impact
        x_in = self.off(-f) - f * length / 2
        t_in = t_i - abs(c_i - x_in) / v
        stopped = sc.add_car(self.rng, y, f, [-1e4, 1e4], [x_b, x_b])
        moving = sc.add_car(self.rng, y, f, [t_in, t_i], [x_in, c_i])
        if threat:
            recoil, shove = c_i - f * 0.06 * length, x_b + f * 0.35 * length
            moving.times, moving.xs = [t_in, t_i, t_i + 0.2, 1e4], [x_in, c_i, recoil, recoil]
            stopped.times, stopped.xs = [-1e4, t_i, t_i + 0.35, 1e4], [x_b, x_b, shove, shove]
            self.threat("RoadAccidents", t_i - 0.3, self.duration,
                        f"{_a(moving.colour)} car crashing into the back of {_a(stopped.colour)} car stopped "
                        f"in the {self.place()}")
        else:
            moving.times, moving.xs, stopped.times, stopped.xs = _braking_tracks(
                t_in, x_in, t_i, c_i, x_b, f, v, length, wait, self.W)
        # no activity: `activities` says what people do (stage-1 pose captions), the same in both


def _braking_tracks(t_in: float, x_in: float, t_i: float, c_i: float, x_b: float, f: int, v: float,
                    length: float, wait: float, width: float) -> tuple[list[float], list[float], list[float], list]:
    """The twin's car tracks: the moving car brakes evenly from 0.9 s before the impact
    time to a stop a gap behind the stopped car; after ``wait`` both drive off."""
    t_brake, x_brake = t_i - 0.9, c_i - f * v * 0.9
    stop = c_i - f * 0.3 * length
    t_stop = t_brake + 2 * abs(stop - x_brake) / v
    t_mid, x_mid = t_brake + 0.4 * (t_stop - t_brake), x_brake + 0.64 * (stop - x_brake)  # x = 1 - (1 - s)^2
    t_go, away = t_stop + wait, width + 2 * length
    moving_t = [t_in, t_brake, t_mid, t_stop, t_go + 0.3, t_go + 1.3, t_go + 1.3 + away / v]
    moving_x = [x_in, x_brake, x_mid, stop, stop, stop + f * 0.5 * v, stop + f * (0.5 * v + away)]
    stopped_t = [-1e4, t_go, t_go + 1.0, t_go + 1.0 + away / v]
    stopped_x = [x_b, x_b, x_b + f * 0.5 * v, x_b + f * (0.5 * v + away)]
    return moving_t, moving_x, stopped_t, stopped_x


def make_keyed_video(pair: int, seed: int, category: str, threat: bool, video_id: str | None = None,
                     config: WorldConfig | None = None, index: int | None = None) -> SyntheticVideo:
    """Script the threat (``threat=True``) or the twin of pair ``pair`` of the keyed world with
    ``seed``: both come from one random stream, so they differ only in ``category``'s channel
    (:data:`KEYED_DESIGN`). Pure: same arguments, same video. ``index`` (default ``2·pair`` for
    the threat, ``2·pair + 1`` for the twin) is the video's place in its world."""
    config = config or WorldConfig(design="keyed")
    if category not in KEYED_CATEGORIES:
        raise ValueError(f"unknown keyed category {category!r}; choose from {list(KEYED_CATEGORIES)}")
    rng = np.random.default_rng([int(seed), int(pair), 0x4B3E])
    scene_kind = str(rng.choice(KEYED_SCENES[category]))
    duration = round(rng.uniform(config.min_duration, config.max_duration) * config.fps) / config.fps
    scene = KeyedScene(LAYOUTS[scene_kind], config.size, config.size, rng, config.supersample,
                       brightness=float(rng.uniform(0.85, 1.1)))
    script = KeyedScript(scene, rng, duration)
    script.event(category, threat=threat)
    if rng.random() < 0.3:  # a confounder: another category's twin (never the car's: it needs the lane)
        others = [k for k in config.categories
                  if k not in (category, "RoadAccidents") and scene_kind in KEYED_SCENES[k]]
        if others:
            script.event(str(rng.choice(others)), threat=False)
    script.ambient(traffic=category != "RoadAccidents")
    if threat and not script.events:
        raise RuntimeError(f"keyed pair {pair}: the {category} threat did not fit in {duration:.1f} s")
    index = 2 * int(pair) + (0 if threat else 1) if index is None else index
    label = category if threat else NORMAL
    return SyntheticVideo(video_id or f"{label}{index:03d}_syn", index, label, scene, duration, config.fps,
                          script.events, script.activities)


# ---------------------------------------------------------------------------- a keyed world's plan
@dataclass(frozen=True)
class KeyedSlot:
    """One video of a keyed world: its place, its pair, the pair's category, threat or twin."""

    index: int
    pair: int
    category: str
    threat: bool
    video_id: str

    @property
    def label(self) -> str:
        """The ground-truth category: the pair's for the threat, ``"Normal"`` for the twin."""
        return self.category if self.threat else NORMAL

    @property
    def role(self) -> str:
        return "threat" if self.threat else "twin"

    def summary(self) -> dict[str, Any]:
        """What the world's summary of this video adds (``"keyed"``)."""
        return {"keyed": {"category": self.category, "channel": KEYED_DESIGN[self.category]["channel"],
                          "role": self.role, "pair": self.pair}}

    def maker(self, seed: int, config: WorldConfig) -> Callable[[], SyntheticVideo]:
        return functools.partial(make_keyed_video, self.pair, seed, self.category, self.threat, self.video_id,
                                 config, self.index)


def keyed_plan(num_videos: int, config: WorldConfig) -> list[KeyedSlot]:
    """The videos of a keyed world: pair ``p`` is category ``categories[p mod C]``, its threat
    is video ``2p`` and its twin ``2p + 1``. ``num_videos`` must be a multiple of ``2·C`` so
    every category has as many pairs."""
    per_round = 2 * len(config.categories)
    if num_videos < 1 or num_videos % per_round:
        raise ValueError(f"the keyed design renders a threat and its twin for each of {len(config.categories)} "
                         f"categories: the number of videos must be a positive multiple of {per_round}, "
                         f"got {num_videos}")
    threats: Counter = Counter()
    slots = []
    for pair in range(num_videos // 2):
        category = config.categories[pair % len(config.categories)]
        threats[category] += 1
        slots.append(KeyedSlot(2 * pair, pair, category, True, f"{category}{threats[category]:03d}_syn"))
        slots.append(KeyedSlot(2 * pair + 1, pair, category, False, f"Normal_Videos_{pair + 1:03d}_syn"))
    return slots


def _split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """``n`` items over train/val/test by largest remainder; a tie goes to test, then val."""
    total = float(sum(fractions))
    exact = [n * f / total for f in fractions]
    counts = [math.floor(e + 1e-9) for e in exact]
    order = sorted(range(3), key=lambda j: (-round(exact[j] - counts[j], 9), -j))
    for j in order[: n - sum(counts)]:
        counts[j] += 1
    return counts


def keyed_splits(slots: Sequence[KeyedSlot], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Splits by pair (a threat and its twin always together), the same counts for every
    category: within a category, pairs in a seeded hash order fill train, val, test."""
    by_category: dict[str, list[int]] = {}
    for s in slots:
        if s.threat:
            by_category.setdefault(s.category, []).append(s.pair)
    split_of: dict[int, str] = {}
    for pairs in by_category.values():
        ordered = sorted(pairs, key=lambda p: hashlib.sha256(f"{seed}\x02keyed-pair-{p}".encode()).hexdigest())
        counts = _split_counts(len(ordered), fractions)
        names = [name for name, k in zip(("train", "val", "test"), counts) for _ in range(k)]
        split_of.update(zip(ordered, names))
    return {s.video_id: split_of[s.pair] for s in slots}


def design_summary(slots: Sequence[KeyedSlot], splits: dict[str, str], config: WorldConfig,
                   seed: int) -> dict[str, Any]:
    """``design.json``: the channel each category is keyed to, its twin and what differs,
    the channels, every pair with its split, and the videos per split, category and role."""
    counts = {split: {c: {"threat": 0, "twin": 0} for c in config.categories} for split in ("train", "val", "test")}
    for s in slots:
        counts[splits[s.video_id]][s.category][s.role] += 1
    pairs = [{"pair": s.pair, "category": s.category, "channel": KEYED_DESIGN[s.category]["channel"],
              "threat": s.video_id, "twin": t.video_id, "split": splits[s.video_id]}
             for s, t in zip(slots[::2], slots[1::2])]
    return {
        "design": "keyed",
        "format": KEYED_FORMAT,
        "seed": seed,
        "categories": {c: KEYED_DESIGN[c] for c in config.categories},
        "channels": CHANNELS,
        "counts": counts,
        "pairs": pairs,
    }
