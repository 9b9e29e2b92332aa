"""The objects, scenes and scripted actors of the synthetic surveillance world, and
how one frame of it is drawn (Pillow, supersampled) and described (true COCO
keypoints, true scene graph).

Everything here is a pure function of a script: a :class:`Scene` holds the static
background and the objects, each :class:`Person` a list of :class:`Act` (a motion
between two ground positions), each :class:`Car` a piecewise-linear track. Frame ``i``
of a video is the scene at ``t = i / fps``; drawing, keypoints and relations all read
the same state, so the pixels, the poses and the scene graph agree.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uprm.synthetic.body import LIFTS, MOTIONS, blend, forward_kinematics

__all__ = [
    "FENCE_HEIGHT",
    "FENCE_LINES",
    "LAYOUTS",
    "PALETTES",
    "Act",
    "Bag",
    "Car",
    "Fire",
    "Person",
    "Relation",
    "Scene",
    "SceneLayout",
    "StaticObject",
]

RGB = tuple[int, int, int]

#: named colours; threat actors draw from the same palettes as everyone else
PALETTES: dict[str, dict[str, RGB]] = {
    "shirt": {
        "red": (196, 42, 42), "blue": (42, 72, 196), "green": (44, 146, 64), "yellow": (214, 196, 44),
        "white": (226, 226, 222), "black": (34, 34, 38), "grey": (128, 128, 132), "orange": (232, 122, 34),
        "purple": (128, 52, 158), "brown": (118, 78, 42),
    },
    "pants": {"navy": (30, 36, 80), "black": (26, 26, 28), "grey": (96, 96, 100), "brown": (90, 64, 40),
              "khaki": (170, 150, 100)},
    "skin": {"a": (238, 200, 170), "b": (200, 150, 110), "c": (140, 96, 64), "d": (96, 64, 44)},
    "car": {
        "red": (180, 30, 36), "blue": (36, 64, 170), "white": (220, 220, 216), "black": (30, 30, 34),
        "silver": (160, 164, 170), "yellow": (212, 180, 40), "orange": (224, 112, 30), "green": (40, 110, 60),
    },
    "bag": {"black": (30, 30, 30), "brown": (120, 74, 40), "red": (180, 36, 40), "blue": (40, 60, 160),
            "yellow": (210, 180, 40), "orange": (220, 110, 30)},
}  # fmt: skip


@dataclass(frozen=True)
class SceneLayout:
    """Where things can be, in fractions of the frame height ``H``.

    Attributes:
        name: scene kind; place: how a cause sentence names it.
        horizon: the y where the back wall meets the ground.
        bands: ground-y ranges where pedestrians walk and stand.
        road: ``(y0, y1)`` of the carriageway, if any.
        drive_y: ground y of moving cars (``None``: no traffic).
        park_y: ground y of parked cars (``None``: no parked cars).
    """

    name: str
    place: str
    horizon: float
    bands: tuple[tuple[float, float], ...]
    road: tuple[float, float] | None = None
    drive_y: float | None = None
    park_y: float | None = None


LAYOUTS: dict[str, SceneLayout] = {
    "street": SceneLayout("street", "street", 0.36, ((0.40, 0.47), (0.76, 0.95)), (0.50, 0.72), 0.68, 0.555),
    "parking_lot": SceneLayout("parking_lot", "parking lot", 0.32, ((0.64, 0.76), (0.90, 0.97)), None, 0.85, 0.60),
    "shop": SceneLayout("shop", "shop", 0.46, ((0.56, 0.95),)),
    "plaza": SceneLayout("plaza", "plaza", 0.40, ((0.50, 0.95),)),
}


#: where a site world's fence stands (``WorldConfig.site_category``), per scene kind: its ground
#: y as a fraction of the frame height, between the back wall and where people walk (the yard
#: behind it, the public side in front); street and shop have none
FENCE_LINES: dict[str, float] = {"parking_lot": 0.44, "plaza": 0.54}
#: a fence's height as a fraction of a person's standing height at its depth (chest height)
FENCE_HEIGHT = 0.6


@dataclass
class Act:
    """A motion from ``p0`` to ``p1`` (ground positions, pixels) over ``[t0, t1)``."""

    t0: float
    t1: float
    motion: str
    p0: tuple[float, float]
    p1: tuple[float, float]
    facing: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PersonState:
    x: float
    y: float
    facing: int
    motion: str
    tau: float
    joints: np.ndarray  # [17, 2] pixels
    head: np.ndarray
    head_r: float
    height: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        pad = max(1.0, 0.04 * self.height)
        x0 = min(float(self.joints[:, 0].min()), self.head[0] - self.head_r) - pad
        x1 = max(float(self.joints[:, 0].max()), self.head[0] + self.head_r) + pad
        y0 = min(float(self.joints[:, 1].min()), self.head[1] - self.head_r) - pad
        y1 = float(self.joints[:, 1].max()) + pad
        return x0, y0, x1, y1


BLEND_S = 0.25  # seconds over which one motion blends into the next


class Person:
    """A scripted stick figure. Build its script with :meth:`start`, :meth:`do` and
    :meth:`go`; it is visible from its first act's start to its last act's end."""

    label = "person"

    def __init__(self, key: str, height: float, shirt: str, pants: str, skin: str) -> None:
        self.key = key
        self.height = height  # at depth scale 1
        self.shirt, self.pants, self.skin = shirt, pants, skin
        self.acts: list[Act] = []
        self._cursor: tuple[float, float, float, int] | None = None
        self._starts: list[float] = []

    # ------------------------------------------------------------------ scripting
    def start(self, t: float, x: float, y: float, facing: int = 1) -> Person:
        self._cursor = (t, x, y, 1 if facing >= 0 else -1)
        return self

    @property
    def now(self) -> float:
        assert self._cursor is not None
        return self._cursor[0]

    @property
    def pos(self) -> tuple[float, float]:
        assert self._cursor is not None
        return self._cursor[1], self._cursor[2]

    def do(
        self,
        motion: str,
        duration: float,
        to: tuple[float, float] | None = None,
        facing: int | None = None,
        **extra: Any,
    ) -> Person:
        """Perform ``motion`` for ``duration`` seconds, moving to ``to`` (or staying)."""
        if self._cursor is None:
            raise RuntimeError(f"person {self.key}: call start() first")
        if motion not in MOTIONS:
            raise ValueError(f"unknown motion {motion!r}")
        t, x, y, f = self._cursor
        x1, y1 = to if to is not None else (x, y)
        if facing is not None:
            f = 1 if facing >= 0 else -1
        elif abs(x1 - x) > 0.5:
            f = 1 if x1 > x else -1
        duration = max(float(duration), 1e-3)
        self.acts.append(Act(t, t + duration, motion, (x, y), (x1, y1), f, dict(extra)))
        self._starts.append(t)
        self._cursor = (t + duration, x1, y1, f)
        return self

    def go(self, x: float, y: float, speed: float, motion: str = "walk", **extra: Any) -> Person:
        """Walk (or run) to ``(x, y)`` at ``speed`` pixels per second."""
        x0, y0 = self.pos
        dist = math.hypot(x - x0, y - y0)
        return self.do(motion, max(dist / max(speed, 1e-6), 0.05), to=(x, y), **extra)

    def face(self, facing: int) -> Person:
        if self._cursor is not None:
            t, x, y, _ = self._cursor
            self._cursor = (t, x, y, 1 if facing >= 0 else -1)
        return self

    # ------------------------------------------------------------------ state
    @property
    def t_start(self) -> float:
        return self.acts[0].t0 if self.acts else math.inf

    @property
    def t_end(self) -> float:
        return self.acts[-1].t1 if self.acts else -math.inf

    def act_at(self, t: float) -> tuple[int, Act] | None:
        if not self.acts or t < self.t_start or t >= self.t_end:
            return None
        i = bisect.bisect_right(self._starts, t) - 1
        return i, self.acts[i]

    def _pose_of(self, act: Act, tau: float) -> np.ndarray:
        span = act.t1 - act.t0
        return MOTIONS[act.motion](tau, min(max(tau / span, 0.0), 1.0), act.extra)

    def state(self, t: float, scale: Callable[[float], float]) -> PersonState | None:
        found = self.act_at(t)
        if found is None:
            return None
        i, act = found
        tau = t - act.t0
        u = min(max(tau / (act.t1 - act.t0), 0.0), 1.0)
        x = act.p0[0] + (act.p1[0] - act.p0[0]) * u
        y = act.p0[1] + (act.p1[1] - act.p0[1]) * u
        pose = self._pose_of(act, tau)
        if i > 0 and tau < BLEND_S and abs(self.acts[i - 1].t1 - act.t0) < 1e-6:
            prev = self.acts[i - 1]
            w = tau / BLEND_S
            pose = blend(self._pose_of(prev, prev.t1 - prev.t0), pose, w * w * (3 - 2 * w))
        h = self.height * scale(y)
        joints, head, r = forward_kinematics(pose, h, act.facing)
        ground = np.array([x, y - LIFTS[act.motion](u, act.extra) if act.motion in LIFTS else y])
        joints = joints + ground
        head = head + ground
        return PersonState(x, y, act.facing, act.motion, tau, joints, head, r, h)


@dataclass
class Car:
    """A car on a piecewise-linear track ``x(t)`` at ground ``y``."""

    key: str
    colour: str
    y: float
    length: float
    facing: int
    times: list[float]
    xs: list[float]
    t_start: float = -math.inf
    t_end: float = math.inf
    damage_times: list[float] = field(default_factory=list)
    door_open: list[tuple[float, float]] = field(default_factory=list)
    parked: bool = False
    label: str = "car"

    def x(self, t: float) -> float:
        return float(np.interp(t, self.times, self.xs))

    def visible(self, t: float) -> bool:
        return self.t_start <= t < self.t_end

    def moving(self, t: float, dt: float = 0.1) -> bool:
        return abs(self.x(t + dt) - self.x(t - dt)) > 0.05 * self.length

    def box(self, t: float) -> tuple[float, float, float, float]:
        x, L = self.x(t), self.length
        return x - L / 2, self.y - 0.42 * L, x + L / 2, self.y

    def damage(self, t: float) -> int:
        return sum(1 for d in self.damage_times if d <= t)

    def is_open(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.door_open)


@dataclass
class Bag:
    """A bag, lying on the ground or held by a person, over time intervals."""

    key: str
    colour: str
    size: float
    #: ``(t0, t1, "ground", (x, y))`` or ``(t0, t1, "held", person_key)``
    states: list[tuple[float, float, str, Any]] = field(default_factory=list)
    label: str = "bag"

    def where(self, t: float) -> tuple[str, Any] | None:
        for t0, t1, mode, ref in self.states:
            if t0 <= t < t1:
                return mode, ref
        return None


@dataclass
class StaticObject:
    """A bin, a cone or a door: fixed, with a box ``[x0, y0, x1, y1]``."""

    key: str
    label: str
    box: tuple[float, float, float, float]
    colour: RGB = (90, 90, 90)
    open_intervals: list[tuple[float, float]] = field(default_factory=list)

    def is_open(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.open_intervals)


@dataclass
class Fire:
    """A fire on a target object: ignites at ``t0``, full at ``t_full``, dies by ``t_out``."""

    key: str
    target: str
    t0: float
    t_full: float
    t_out: float
    width: float
    label: str = "fire"

    def intensity(self, t: float) -> float:
        if t < self.t0 or t >= self.t_out:
            return 0.0
        grow = min(1.0, (t - self.t0) / max(self.t_full - self.t0, 1e-3))
        fade = min(1.0, (self.t_out - t) / 1.5)
        return max(0.0, min(grow, fade))


@dataclass
class Relation:
    """A true relation over ``[t0, t1)``: ``predicate`` is a string, or a function of
    ``t`` giving the predicate (or ``None`` when there is none at that instant)."""

    t0: float
    t1: float
    subject: str
    predicate: str | Callable[[float], str | None]
    object: str

    def at(self, t: float) -> str | None:
        if not self.t0 <= t < self.t1:
            return None
        return self.predicate(t) if callable(self.predicate) else self.predicate


def _noise(t: float, k: int) -> float:
    """Deterministic flicker in [0, 1]."""
    return 0.5 + 0.25 * math.sin(11.3 * t + 1.7 * k) + 0.25 * math.sin(6.1 * t + 4.2 * k + 0.5)


class Scene:
    """A background and everything in it; draws and describes frames.

    Args:
        layout: the scene kind.
        width, height: frame size in pixels.
        rng: colours and clutter of the background.
        supersample: draw at this factor and downsample (anti-aliasing).
    """

    def __init__(
        self,
        layout: SceneLayout,
        width: int,
        height: int,
        rng: np.random.Generator,
        supersample: int = 2,
        brightness: float = 1.0,
    ) -> None:
        self.layout = layout
        self.width, self.height = int(width), int(height)
        self.ss = int(supersample)
        self.brightness = float(brightness)
        self.persons: list[Person] = []
        self.cars: list[Car] = []
        self.bags: list[Bag] = []
        self.statics: list[StaticObject] = []
        self.fires: list[Fire] = []
        self.relations: list[Relation] = []
        self._keys: set[str] = set()
        self._rng = rng
        self.door: StaticObject | None = None
        self.bin: StaticObject | None = None
        self.fence: StaticObject | None = None
        self._background = self._draw_background(rng)

    # ------------------------------------------------------------------ geometry
    def Y(self, frac: float) -> float:
        return frac * self.height

    def scale(self, y: float) -> float:
        """Depth scale of something standing at ground ``y`` (1 at the bottom edge)."""
        hz = self.layout.horizon * self.height
        return 0.5 + 0.5 * max(0.0, (y - hz)) / max(self.height - hz, 1.0)

    def new_key(self, prefix: str) -> str:
        i = 0
        while f"{prefix}{i}" in self._keys:
            i += 1
        key = f"{prefix}{i}"
        self._keys.add(key)
        return key

    # ------------------------------------------------------------------ objects
    def add_person(self, rng: np.random.Generator) -> Person:
        person = Person(
            self.new_key("person"),
            height=0.34 * self.height * float(rng.uniform(0.9, 1.1)),
            shirt=str(rng.choice(list(PALETTES["shirt"]))),
            pants=str(rng.choice(list(PALETTES["pants"]))),
            skin=str(rng.choice(list(PALETTES["skin"]))),
        )
        self.persons.append(person)
        return person

    def add_car(
        self, rng: np.random.Generator, y: float, facing: int, times: list[float], xs: list[float], **kw: Any
    ) -> Car:
        car = Car(
            self.new_key("car"),
            str(rng.choice(list(PALETTES["car"]))),
            y,
            0.36 * self.width * self.scale(y),
            1 if facing >= 0 else -1,
            list(times),
            list(xs),
            **kw,
        )
        self.cars.append(car)
        return car

    def add_bag(self, rng: np.random.Generator) -> Bag:
        bag = Bag(self.new_key("bag"), str(rng.choice(list(PALETTES["bag"]))), 0.055 * self.height)
        self.bags.append(bag)
        return bag

    def add_static(self, label: str, box: tuple[float, float, float, float], colour: RGB) -> StaticObject:
        obj = StaticObject(self.new_key(label), label, tuple(float(v) for v in box), colour)  # type: ignore[arg-type]
        self.statics.append(obj)
        return obj

    def add_fence(self, y: float | None = None) -> StaticObject:
        """A chain-link fence across the whole frame standing at ground ``y`` (pixels; default
        the scene kind's :data:`FENCE_LINES`), :data:`FENCE_HEIGHT` of a person's height tall.
        Draws no random number, so the rest of the scene is what it would be without it."""
        if y is None:
            if self.layout.name not in FENCE_LINES:
                raise ValueError(f"a {self.layout.name} has no fence; fences stand in {sorted(FENCE_LINES)}")
            y = FENCE_LINES[self.layout.name] * self.height
        h = FENCE_HEIGHT * 0.34 * self.height * self.scale(y)
        self.fence = self.add_static("fence", (0.0, y - h, float(self.width), y), (150, 156, 160))
        return self.fence

    def add_fire(self, target: str, t0: float, t_full: float, t_out: float, width: float) -> Fire:
        fire = Fire(self.new_key("fire"), target, t0, t_full, t_out, width)
        self.fires.append(fire)
        return fire

    def relate(
        self, t0: float, t1: float, subject: str, predicate: str | Callable[[float], str | None], obj: str
    ) -> None:
        self.relations.append(Relation(t0, t1, subject, predicate, obj))

    # ------------------------------------------------------------------ background
    def _jitter(self, rgb: RGB, rng: np.random.Generator, amount: int = 18) -> RGB:
        return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)  # type: ignore[return-value]

    def _draw_background(self, rng: np.random.Generator) -> np.ndarray:
        from PIL import Image, ImageDraw

        W, H = self.width * self.ss, self.height * self.ss
        img = Image.new("RGB", (W, H))
        d = ImageDraw.Draw(img)
        hz = int(self.layout.horizon * H)
        d.rectangle([0, 0, W, hz], fill=self._jitter((150, 140, 128), rng, 30))  # the back wall
        kind = self.layout.name
        if kind in ("street", "plaza", "parking_lot"):
            self._draw_facades(d, rng, W, H, hz)
        getattr(self, f"_draw_{kind}")(d, rng, W, H, hz)
        bg = np.asarray(img, dtype=np.uint8).copy()
        self._setup_statics(rng)
        return bg

    def _draw_facades(self, d, rng: np.random.Generator, W: int, H: int, hz: int) -> None:
        s = self.ss
        d.rectangle([0, 0, W, int(0.08 * H)], fill=self._jitter((150, 180, 210), rng, 20))  # sky
        x = 0
        while x < W:  # building facades with windows
            bw = int(rng.integers(int(0.22 * W), int(0.4 * W)))
            top = int(rng.uniform(0.02, 0.1) * H)
            face = self._jitter((160, 130, 110), rng, 45)
            d.rectangle([x, top, x + bw, hz], fill=face)
            win = self._jitter((70, 80, 95), rng, 15)
            for wy in range(top + 3 * s, hz - 8 * s, 9 * s):
                for wx in range(x + 3 * s, x + bw - 5 * s, 8 * s):
                    d.rectangle([wx, wy, wx + 4 * s, wy + 5 * s], fill=win)
            x += bw

    def _draw_street(self, d, rng: np.random.Generator, W: int, H: int, hz: int) -> None:
        s = self.ss
        d.rectangle([0, hz, W, H], fill=self._jitter((170, 168, 160), rng, 12))
        r0, r1 = (int(v * H) for v in self.layout.road)  # type: ignore[union-attr]
        d.rectangle([0, r0, W, r1], fill=self._jitter((72, 72, 76), rng, 8))
        d.line([0, r0, W, r0], fill=(200, 200, 196), width=s)
        d.line([0, r1, W, r1], fill=(200, 200, 196), width=s)
        ym = (r0 + r1) // 2
        for x in range(0, W, 16 * s):
            d.line([x, ym, x + 8 * s, ym], fill=(230, 230, 226), width=s)
        for y in range(r1 + 6 * s, H, 10 * s):  # paving joints
            d.line([0, y, W, y], fill=self._jitter((150, 148, 142), rng, 6), width=1)

    def _draw_parking_lot(self, d, rng: np.random.Generator, W: int, H: int, hz: int) -> None:
        s = self.ss
        d.rectangle([0, hz, W, H], fill=self._jitter((92, 92, 96), rng, 10))
        py = int(self.layout.park_y * H)  # type: ignore[operator]
        for x in range(int(rng.integers(0, 10 * s)), W, int(0.22 * W)):
            d.line([x, py - int(0.12 * H), x - 6 * s, py + 2 * s], fill=(225, 225, 220), width=s)
        dy = int(self.layout.drive_y * H)  # type: ignore[operator]
        for x in range(0, W, 18 * s):
            d.line([x, dy + 3 * s, x + 9 * s, dy + 3 * s], fill=(210, 200, 80), width=s)

    def _draw_shop(self, d, rng: np.random.Generator, W: int, H: int, hz: int) -> None:
        s = self.ss
        for row in range(3):  # shelves with goods
            y0 = int((0.10 + 0.11 * row) * H)
            d.rectangle([0, y0 + 8 * s, W, y0 + 9 * s], fill=(90, 70, 50))
            x = int(rng.integers(0, 4 * s))
            while x < W:
                gw = int(rng.integers(3 * s, 7 * s))
                colour = tuple(int(c) for c in rng.integers(40, 240, 3))
                d.rectangle([x, y0 + int(rng.integers(0, 3 * s)), x + gw, y0 + 8 * s], fill=colour)
                x += gw + s
        floor = self._jitter((196, 190, 176), rng, 20)
        d.rectangle([0, hz, W, H], fill=floor)
        tile = 12 * s
        dark = tuple(max(0, c - 18) for c in floor)
        for i, y in enumerate(range(hz, H, tile)):
            for j, x in enumerate(range(0, W, tile)):
                if (i + j) % 2:
                    d.rectangle([x, y, x + tile - 1, y + tile - 1], fill=dark)
        cx = int(rng.uniform(0.05, 0.6) * W)  # the counter
        d.rectangle([cx, hz - 10 * s, cx + int(0.3 * W), hz + 4 * s], fill=self._jitter((120, 90, 60), rng, 20))

    def _draw_plaza(self, d, rng: np.random.Generator, W: int, H: int, hz: int) -> None:
        s = self.ss
        ground = self._jitter((176, 164, 146), rng, 18)
        d.rectangle([0, hz, W, H], fill=ground)
        for y in range(hz, H, 10 * s):
            d.line([0, y, W, y], fill=tuple(max(0, c - 22) for c in ground), width=1)
        for _ in range(int(rng.integers(1, 3))):  # trees
            tx = int(rng.uniform(0.05, 0.95) * W)
            d.rectangle([tx - s, hz - 12 * s, tx + s, hz + 2 * s], fill=(90, 60, 30))
            d.ellipse([tx - 8 * s, hz - 26 * s, tx + 8 * s, hz - 10 * s], fill=self._jitter((50, 120, 50), rng, 20))
        bx = int(rng.uniform(0.1, 0.8) * W)  # a bench
        d.rectangle([bx, hz + 2 * s, bx + 18 * s, hz + 4 * s], fill=(110, 80, 50))

    def _setup_statics(self, rng: np.random.Generator) -> None:
        H, W = self.height, self.width
        hz = self.layout.horizon * H
        dw, dh = 0.09 * W, 0.16 * H
        dx = float(rng.uniform(0.12, 0.88)) * W
        self.door = self.add_static(
            "door", (dx - dw / 2, hz - dh, dx + dw / 2, hz), self._jitter((110, 70, 40), rng, 30)
        )
        band = self.layout.bands[0]
        by = float(rng.uniform(*band)) * H if self.layout.name != "street" else self.Y(0.47)
        bx = float(rng.uniform(0.08, 0.92)) * W
        sc = self.scale(by)
        self.bin = self.add_static(
            "bin",
            (bx - 0.035 * W * sc, by - 0.1 * H * sc, bx + 0.035 * W * sc, by),
            self._jitter((60, 90, 70), rng, 25),
        )
        if self.layout.name in ("street", "parking_lot"):
            for _ in range(int(rng.integers(0, 3))):
                cy = float(rng.uniform(*self.layout.bands[-1])) * H
                cx = float(rng.uniform(0.05, 0.95)) * W
                sc = self.scale(cy)
                self.add_static(
                    "cone", (cx - 0.025 * W * sc, cy - 0.07 * H * sc, cx + 0.025 * W * sc, cy), (236, 118, 30)
                )

    # ------------------------------------------------------------------ per-frame state
    def person_states(self, t: float) -> dict[str, PersonState]:
        out = {}
        for p in self.persons:
            st = p.state(t, self.scale)
            if st is not None:
                out[p.key] = st
        return out

    def _bag_box(self, bag: Bag, t: float, persons: dict[str, PersonState]) -> tuple[float, float, float, float] | None:
        where = bag.where(t)
        if where is None:
            return None
        mode, ref = where
        if mode == "ground":
            x, y = ref
            sz = bag.size * self.scale(y)
            return x - sz / 2, y - sz, x + sz / 2, y
        st = persons.get(ref)
        if st is None:
            return None
        wx, wy = st.joints[10]  # right wrist
        sz = bag.size * self.scale(st.y)
        return wx - sz / 2, wy, wx + sz / 2, wy + sz

    def _fire_box(self, fire: Fire, t: float, boxes: dict[str, tuple]) -> tuple[float, float, float, float] | None:
        k = fire.intensity(t)
        tb = boxes.get(fire.target)
        if k <= 0.02 or tb is None:
            return None
        cx = (tb[0] + tb[2]) / 2
        w = fire.width * (0.5 + 0.5 * k)
        h = fire.width * 1.6 * k * (0.8 + 0.3 * _noise(t, 0))
        base = tb[1] + 0.35 * (tb[3] - tb[1])
        return cx - w / 2, base - h, cx + w / 2, base

    def boxes(self, t: float, persons: dict[str, PersonState] | None = None) -> dict[str, tuple]:
        """Every visible object's box ``[x0, y0, x1, y1]`` at time ``t``, by key."""
        persons = self.person_states(t) if persons is None else persons
        out: dict[str, tuple] = {}
        for obj in self.statics:
            out[obj.key] = obj.box
        for car in self.cars:
            if car.visible(t):
                out[car.key] = car.box(t)
        for key, st in persons.items():
            out[key] = st.box
        for bag in self.bags:
            b = self._bag_box(bag, t, persons)
            if b is not None:
                out[bag.key] = b
        for fire in self.fires:
            b = self._fire_box(fire, t, out)
            if b is not None:
                out[fire.key] = b
        return out

    def labels(self) -> dict[str, str]:
        out = {o.key: o.label for o in self.statics}
        out.update({c.key: c.label for c in self.cars})
        out.update({p.key: p.label for p in self.persons})
        out.update({b.key: b.label for b in self.bags})
        out.update({f.key: f.label for f in self.fires})
        return out

    # ------------------------------------------------------------------ drawing
    def render(self, t: float) -> np.ndarray:
        """The frame at time ``t``: ``uint8 [H, W, 3]`` RGB, drawn back to front
        (:meth:`_draw_items`) and downsampled."""
        from PIL import Image, ImageDraw

        persons = self.person_states(t)
        boxes = self.boxes(t, persons)
        img = Image.fromarray(self._background)
        d = ImageDraw.Draw(img)
        for _, _, draw in sorted(self._draw_items(d, t, persons, boxes), key=lambda it: (it[0], it[1])):
            draw()
        if self.ss > 1:
            img = img.reduce(self.ss)
        arr = np.asarray(img, dtype=np.uint8)
        if self.brightness != 1.0:
            arr = np.clip(arr.astype(np.float32) * self.brightness, 0, 255).astype(np.uint8)
        return arr

    def _draw_items(self, d, t: float, persons: dict[str, PersonState],
                    boxes: dict[str, tuple]) -> list[tuple[float, int, Callable[[], None]]]:
        """What the frame at ``t`` draws: ``(depth, kind, draw)``, the depth the ground y it
        stands on (doors on the back wall first), the kind the order at one depth. A subclass
        changes how people are drawn (:meth:`_draw_person`) and what lights up (:meth:`_effect_items`)."""
        items: list[tuple[float, int, Callable[[], None]]] = []
        for obj in self.statics:
            depth = -1.0 if obj.label == "door" else obj.box[3]
            items.append((depth, 0, lambda o=obj: self._draw_static(d, o, t)))
        for car in self.cars:
            if car.visible(t):
                items.append((car.y, 1, lambda c=car: self._draw_car(d, c, t)))
        for key, st in persons.items():
            items.append((st.y + 0.01, 2, lambda k=key, p=st: self._draw_person(d, self._person(k), p)))
        for bag in self.bags:
            b = boxes.get(bag.key)
            if b is not None:
                where = bag.where(t)
                depth = persons[where[1]].y + 0.02 if where and where[0] == "held" else b[3]
                items.append((depth, 3, lambda bg=bag, bb=b: self._draw_bag(d, bg, bb)))
        return items + self._effect_items(d, t, boxes)

    def _effect_items(self, d, t: float, boxes: dict[str, tuple]) -> list[tuple[float, int, Callable[[], None]]]:
        """The fires, each in front of what burns."""
        items: list[tuple[float, int, Callable[[], None]]] = []
        for fire in self.fires:
            b = boxes.get(fire.key)
            tb = boxes.get(fire.target)
            if b is not None and tb is not None:
                items.append((tb[3] + 0.03, 4, lambda f=fire, fb=b: self._draw_fire(d, f, fb, t)))
        return items

    def _person(self, key: str) -> Person:
        for p in self.persons:
            if p.key == key:
                return p
        raise KeyError(key)

    def _draw_static(self, d, obj: StaticObject, t: float) -> None:
        s = self.ss
        x0, y0, x1, y1 = (v * s for v in obj.box)
        if obj.label == "door":
            d.rectangle([x0, y0, x1, y1], fill=obj.colour)
            if obj.is_open(t):
                d.rectangle([x0 + s, y0 + s, x1 - s, y1], fill=(24, 22, 20))
                d.rectangle([x1 - s, y0, x1 + (x1 - x0) * 0.25, y1], fill=obj.colour)
            else:
                d.ellipse([x1 - 3 * s, (y0 + y1) / 2, x1 - 2 * s, (y0 + y1) / 2 + s], fill=(220, 200, 80))
        elif obj.label == "bin":
            d.rectangle([x0, y0 + (y1 - y0) * 0.15, x1, y1], fill=obj.colour)
            d.rectangle([x0 - s, y0, x1 + s, y0 + (y1 - y0) * 0.15], fill=tuple(max(0, c - 30) for c in obj.colour))
            burnt = [f for f in self.fires if f.target == obj.key and t >= f.t0 + 1.0]
            if burnt:
                d.rectangle([x0, y0 + (y1 - y0) * 0.2, x1, y0 + (y1 - y0) * 0.6], fill=(30, 26, 24))
        elif obj.label == "fence":
            self._draw_fence(d, obj)
        elif obj.label == "cone":
            d.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=obj.colour)
            ym = y0 + (y1 - y0) * 0.55
            d.line([x0 + (x1 - x0) * 0.25, ym, x1 - (x1 - x0) * 0.25, ym], fill=(240, 240, 240), width=s)

    def _draw_fence(self, d, obj: StaticObject) -> None:
        """Posts, a top and a bottom rail, and a see-through diamond mesh of thin wires."""
        s = self.ss
        x0, y0, x1, y1 = (v * s for v in obj.box)
        h = y1 - y0
        wire, post = obj.colour, tuple(max(0, c - 70) for c in obj.colour)
        step = max(3 * s, h / 3)
        x = x0 - h
        while x < x1:  # the mesh: wires both ways at 45 degrees
            d.line([x, y1, x + h, y0], fill=wire, width=1)
            d.line([x, y0, x + h, y1], fill=wire, width=1)
            x += step
        for px in np.arange(x0 + 0.05 * (x1 - x0), x1, 0.15 * (x1 - x0)):
            d.line([px, y0 - s, px, y1], fill=post, width=max(1, s))
        d.line([x0, y0, x1, y0], fill=post, width=max(1, s))
        d.line([x0, y1 - s, x1, y1 - s], fill=post, width=1)

    def _draw_car(self, d, car: Car, t: float) -> None:
        s = self.ss
        x0, y0, x1, y1 = (v * s for v in car.box(t))
        L = x1 - x0
        hgt = y1 - y0
        body = PALETTES["car"][car.colour]
        d.rectangle([x0, y0 + 0.42 * hgt, x1, y1 - 0.16 * hgt], fill=body)
        # cabin leans back from the front
        front = x1 if car.facing > 0 else x0
        back = x0 if car.facing > 0 else x1
        sgn = car.facing
        cab = [
            (back + sgn * 0.12 * L, y0 + 0.42 * hgt),
            (back + sgn * 0.22 * L, y0 + 0.05 * hgt),
            (front - sgn * 0.38 * L, y0 + 0.05 * hgt),
            (front - sgn * 0.22 * L, y0 + 0.42 * hgt),
        ]
        d.polygon(cab, fill=body)
        win = [
            (back + sgn * 0.16 * L, y0 + 0.40 * hgt),
            (back + sgn * 0.24 * L, y0 + 0.12 * hgt),
            (front - sgn * 0.40 * L, y0 + 0.12 * hgt),
            (front - sgn * 0.27 * L, y0 + 0.40 * hgt),
        ]
        d.polygon(win, fill=(150, 175, 195))
        r = 0.11 * L
        for wx in (x0 + 0.2 * L, x1 - 0.2 * L):
            d.ellipse([wx - r, y1 - 2 * r, wx + r, y1], fill=(20, 20, 22))
        dmg = car.damage(t)
        if dmg:
            for k in range(min(dmg, 8)):  # cracks and dents, one per blow
                cx = x0 + (0.3 + 0.45 * ((k * 0.37) % 1.0)) * L
                cy = y0 + (0.15 + 0.55 * ((k * 0.61) % 1.0)) * hgt
                pts = [(cx, cy)]
                for j in range(3):
                    pts.append(
                        (
                            pts[-1][0] + 0.07 * math.sin(3.1 * k + 2.3 * j) * L,
                            pts[-1][1] + 0.12 * math.cos(1.7 * k + 1.1 * j) * hgt,
                        )
                    )
                d.line(pts, fill=(25, 25, 25), width=max(1, s))
        if car.is_open(t):
            hx = x0 + 0.5 * L
            d.polygon(
                [
                    (hx, y0 + 0.2 * hgt),
                    (hx + sgn * 0.28 * L, y0 + 0.1 * hgt),
                    (hx + sgn * 0.28 * L, y1 - 0.1 * hgt),
                    (hx, y1 - 0.16 * hgt),
                ],
                fill=tuple(min(255, c + 30) for c in body),
            )

    def _draw_person(self, d, person: Person, st: PersonState) -> None:
        s = self.ss
        J = st.joints * s
        w = max(2, round(0.075 * st.height * s))
        shirt = PALETTES["shirt"][person.shirt]
        pants = PALETTES["pants"][person.pants]
        skin = PALETTES["skin"][person.skin]

        def seg(a: int, b: int, colour: RGB, width: int = w) -> None:
            d.line([tuple(J[a]), tuple(J[b])], fill=colour, width=width)

        far_first = [(5, 7, 9, 11, 13, 15), (6, 8, 10, 12, 14, 16)]  # left side is the far side
        for sh, el, wr, hip, kn, an in far_first[:1]:
            seg(hip, kn, pants)
            seg(kn, an, pants)
            seg(sh, el, shirt)
            seg(el, wr, skin, max(1, w - 1))
        mid_sh = (J[5] + J[6]) / 2
        mid_hip = (J[11] + J[12]) / 2
        d.line([tuple(mid_hip), tuple(mid_sh)], fill=shirt, width=round(w * 1.9))
        d.line([tuple(J[5]), tuple(J[6])], fill=shirt, width=w)
        d.line([tuple(J[11]), tuple(J[12])], fill=pants, width=w)
        for sh, el, wr, hip, kn, an in far_first[1:]:
            seg(hip, kn, pants)
            seg(kn, an, pants)
            seg(sh, el, shirt)
            seg(el, wr, skin, max(1, w - 1))
        hx, hy, r = st.head[0] * s, st.head[1] * s, st.head_r * s
        d.ellipse([hx - r, hy - r, hx + r, hy + r], fill=skin)

    def _draw_bag(self, d, bag: Bag, box: tuple) -> None:
        s = self.ss
        x0, y0, x1, y1 = (v * s for v in box)
        colour = PALETTES["bag"][bag.colour]
        hh = (y1 - y0) * 0.3
        d.rectangle([x0, y0 + hh, x1, y1], fill=colour)
        d.arc([x0 + (x1 - x0) * 0.2, y0, x1 - (x1 - x0) * 0.2, y0 + 2 * hh], 180, 360, fill=colour, width=max(1, s))

    def _draw_fire(self, d, fire: Fire, box: tuple, t: float) -> None:
        s = self.ss
        x0, y0, x1, y1 = (v * s for v in box)
        w, h = x1 - x0, y1 - y0
        n = 5
        for layer, colour in enumerate(((200, 40, 20), (238, 120, 30), (250, 210, 70))):
            shrink = layer
            for k in range(n):
                cx = x0 + w * (k + 0.5) / n
                fh = h * (0.55 + 0.45 * _noise(t, k + 7 * layer)) * (1 - 0.28 * shrink)
                hw = w / n * (0.9 - 0.2 * shrink)
                d.polygon([(cx - hw, y1), (cx + 0.15 * hw * math.sin(9 * t + k), y1 - fh), (cx + hw, y1)], fill=colour)
            if layer == 0:
                d.ellipse([x0 + 0.2 * w, y0 - 0.45 * h, x1 - 0.2 * w, y0 + 0.05 * h], fill=(70, 68, 66))

    # ------------------------------------------------------------------ relations
    def triplets(
        self, t: float, persons: dict[str, PersonState], boxes: dict[str, tuple]
    ) -> list[tuple[str, str, str]]:
        """The true relations at time ``t``: ``(subject, predicate, object)`` keys.

        Scripted relations (hitting, pushing, grabbing, on_fire, talking_to, ...) first;
        then holding/carrying for bags in hand; then ``near`` for any other pair with a
        person whose boxes are within a quarter of the person's height."""
        out: list[tuple[str, str, str]] = []
        seen: set[frozenset] = set()
        for rel in self.relations:
            pred = rel.at(t)
            if pred is None or rel.subject not in boxes or rel.object not in boxes:
                continue
            out.append((rel.subject, pred, rel.object))
            seen.add(frozenset((rel.subject, rel.object)))
        for bag in self.bags:
            where = bag.where(t)
            if where and where[0] == "held" and where[1] in persons and where[1] in boxes and bag.key in boxes:
                pair = frozenset((where[1], bag.key))
                if pair not in seen:
                    moving = persons[where[1]].motion in ("walk", "run")
                    out.append((where[1], "carrying" if moving else "holding", bag.key))
                    seen.add(pair)
        keys = list(boxes)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                if a not in persons and b not in persons:
                    continue
                if frozenset((a, b)) in seen:
                    continue
                p = a if a in persons else b
                other = b if p == a else a
                if _box_gap(boxes[a], boxes[b]) < 0.25 * persons[p].height and _depth_close(
                    persons[p].y, boxes[other][3], self.height
                ):
                    out.append((p, "near", other))
        return out


def _box_gap(a: tuple, b: tuple) -> float:
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return math.hypot(dx, dy)


def _depth_close(y_a: float, y_b: float, height: float) -> bool:
    return abs(y_a - y_b) < 0.12 * height
