"""Articulated stick figures for the synthetic surveillance world: a 2-D body model
whose forward kinematics give the 17 COCO joints, and the motions people perform.

A pose is a vector of :data:`NUM_PARAMS` angles (radians):

============  ===================================================================
``LEAN``      torso lean from vertical, positive = forward (the facing direction)
``LS, RS``    upper arm angle from straight down, positive = forward/up
``LE, RE``    elbow: forearm rotation relative to the upper arm, positive = forward
``LH, RH``    thigh angle from straight down, positive = forward
``LK, RK``    knee bend (shin folds backwards), ``>= 0``
``ROT``       whole-body rotation about the pelvis (a fall), positive = backwards
``TILT``      head tilt relative to the torso, positive = forward (a nod)
============  ===================================================================

Motions (:data:`MOTIONS`) are functions ``(tau, u, extra) -> pose`` of the time
``tau`` since the motion began and the fraction ``u`` of it done. Threat motions differ
from normal ones in their *dynamics* — a jab extends an arm to full length at head
height in a fraction of a second; a conversation moves the hands slowly in front of
the chest — which is what the pose expert sees in the true keypoints. A climb also raises the whole
body off the ground (:data:`LIFTS`, :func:`climb_lift`): over a fence and down the other side.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "LIFTS",
    "MOTIONS",
    "NUM_PARAMS",
    "blend",
    "climb_lift",
    "fight_move",
    "forward_kinematics",
    "strike_move",
]

LEAN, LS, LE, RS, RE, LH, LK, RH, RK, ROT, TILT = range(11)
NUM_PARAMS = 11

# body proportions, as fractions of the standing height
_TORSO, _NECK, _HEAD_R = 0.30, 0.05, 0.07
_UPPER_ARM, _FOREARM = 0.16, 0.15
_THIGH, _SHIN = 0.24, 0.24
_SHOULDER_HALF, _HIP_HALF = 0.085, 0.055

Motion = Callable[[float, float, Mapping[str, Any]], np.ndarray]


def _dir(angle: float, facing: int) -> np.ndarray:
    """Unit vector ``angle`` radians from straight down, towards ``facing`` (image y down)."""
    return np.array([facing * math.sin(angle), math.cos(angle)])


def _up(angle: float, facing: int) -> np.ndarray:
    return np.array([facing * math.sin(angle), -math.cos(angle)])


def forward_kinematics(pose: np.ndarray, height: float, facing: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Joint positions of ``pose`` relative to the point where the body meets the ground.

    Returns ``(joints [17, 2], head_centre [2], head_radius)`` in pixels, image
    coordinates (y down), with the pelvis at x = 0 and the lowest point of the body
    (a foot, or the body itself when lying) at y = 0.
    """
    lean, ls, le, rs, re_, lh, lk, rh, rk, rot, tilt = (float(v) for v in pose)
    f = 1 if facing >= 0 else -1
    h = float(height)
    joints = np.zeros((17, 2))
    torso_up = _up(lean, f)
    neck = torso_up * _TORSO * h
    perp = np.array([-torso_up[1], torso_up[0]]) * f  # across the torso
    # a 3/4 view: the far (left) side is offset backwards on screen
    l_sh, r_sh = neck - perp * _SHOULDER_HALF * h, neck + perp * _SHOULDER_HALF * h
    l_hip, r_hip = -perp * _HIP_HALF * h, perp * _HIP_HALF * h
    head_axis = _up(lean + tilt, f)
    r = _HEAD_R * h
    head = neck + head_axis * (_NECK * h + r)
    side = np.array([-head_axis[1], head_axis[0]]) * f  # forward in the head's frame
    joints[0] = head + side * 0.8 * r + head_axis * 0.05 * r  # nose
    joints[1] = head + side * 0.35 * r + head_axis * 0.3 * r  # left eye
    joints[2] = head + side * 0.6 * r + head_axis * 0.3 * r  # right eye
    joints[3] = head - side * 0.45 * r + head_axis * 0.05 * r  # left ear
    joints[4] = head - side * 0.1 * r + head_axis * 0.05 * r  # right ear
    joints[5], joints[6] = l_sh, r_sh
    joints[7] = l_sh + _dir(ls, f) * _UPPER_ARM * h
    joints[8] = r_sh + _dir(rs, f) * _UPPER_ARM * h
    joints[9] = joints[7] + _dir(ls + le, f) * _FOREARM * h
    joints[10] = joints[8] + _dir(rs + re_, f) * _FOREARM * h
    joints[11], joints[12] = l_hip, r_hip
    joints[13] = l_hip + _dir(lh, f) * _THIGH * h
    joints[14] = r_hip + _dir(rh, f) * _THIGH * h
    joints[15] = joints[13] + _dir(lh - lk, f) * _SHIN * h
    joints[16] = joints[14] + _dir(rh - rk, f) * _SHIN * h
    if rot:
        phi = -f * rot  # backwards = the head moves against the facing direction
        c, s = math.cos(phi), math.sin(phi)
        rmat = np.array([[c, -s], [s, c]])
        joints = joints @ rmat.T
        head = rmat @ head
    lowest = max(float(joints[:, 1].max()), float(head[1] + r))
    joints[:, 1] -= lowest
    head = head - np.array([0.0, lowest])
    return joints, head, r


def blend(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """``(1 - w)·a + w·b`` (angles are small enough that a linear blend is smooth)."""
    return (1.0 - w) * a + w * b


def _smooth(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def _pulse(frac: float) -> float:
    """0 → 1 → 0 over one cycle, fast out and back (a strike)."""
    return math.sin(math.pi * min(max(frac, 0.0), 1.0)) ** 0.7


def _base() -> np.ndarray:
    p = np.zeros(NUM_PARAMS)
    p[LS], p[RS], p[LE], p[RE] = 0.08, -0.08, 0.15, 0.15
    p[LH], p[RH] = 0.04, -0.04
    return p


def _stand(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    p = _base()
    ph = float(ex.get("phase", 0.0))
    p[LEAN] = 0.03 * math.sin(1.1 * tau + ph)
    p[LS] += 0.04 * math.sin(0.9 * tau + ph)
    p[RS] -= 0.04 * math.sin(0.8 * tau + ph)
    return p


def _gait(tau: float, ex: Mapping[str, Any], cadence: float, amp: float, knee: float, elbow: float, lean: float):
    p = _base()
    phi = 2 * math.pi * cadence * tau + float(ex.get("phase", 0.0))
    s, c = math.sin(phi), math.cos(phi)
    p[LH], p[RH] = amp * s, -amp * s
    p[LK], p[RK] = knee * max(0.0, c) + 0.08, knee * max(0.0, -c) + 0.08
    p[LS], p[RS] = -0.7 * amp * s, 0.7 * amp * s
    p[LE], p[RE] = elbow, elbow
    p[LEAN] = lean + 0.03 * abs(s)
    return p


def _walk(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    return _gait(tau, ex, float(ex.get("cadence", 1.7)), 0.42, 0.55, 0.3, 0.04)


def _run(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    return _gait(tau, ex, float(ex.get("cadence", 2.6)), 0.75, 1.35, 1.4, 0.3)


def _talk(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """A conversation: one hand moves slowly in front of the chest, the head nods."""
    p = _stand(tau, u, ex)
    ph = float(ex.get("phase", 0.0))
    s_arm, e_arm = (RS, RE) if ex.get("arm", "r") == "r" else (LS, LE)
    p[s_arm] = 0.45 + 0.3 * math.sin(2 * math.pi * 0.6 * tau + ph)
    p[e_arm] = 1.1 + 0.4 * math.sin(2 * math.pi * 0.9 * tau + 1.3 * ph)
    p[TILT] = 0.08 * math.sin(2 * math.pi * 0.5 * tau + ph)
    return p


def _wave(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """A greeting: one arm raised, waving."""
    p = _stand(tau, u, ex)
    p[RS] = 2.6 + 0.3 * math.sin(2 * math.pi * 1.5 * tau)
    p[RE] = 0.5 + 0.4 * math.sin(2 * math.pi * 1.5 * tau + 1.0)
    return p


FIGHT_PERIOD = 0.55
FIGHT_MOVES = ("jab_l", "jab_r", "kick", "jab_r", "guard", "jab_l", "kick", "jab_l")


def fight_move(tau: float, pattern_offset: int = 0) -> tuple[str, float]:
    """The move of a fighter ``tau`` seconds into a fight and how far it is extended
    (0–1). Shared by the pose (the motion) and the scene graph (hitting/kicking)."""
    k = int(tau // FIGHT_PERIOD)
    move = FIGHT_MOVES[(k + pattern_offset) % len(FIGHT_MOVES)]
    return move, _pulse((tau % FIGHT_PERIOD) / FIGHT_PERIOD)


def _fight(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Boxing stance; fast jabs to head height and kicks, alternating."""
    p = np.zeros(NUM_PARAMS)
    p[LS], p[RS], p[LE], p[RE] = 0.95, 0.9, 1.7, 1.75
    p[LH], p[RH], p[LK], p[RK] = 0.32, -0.3, 0.25, 0.3
    p[LEAN] = 0.12
    move, e = fight_move(tau, int(ex.get("offset", 0)))
    if move == "jab_l":
        p[LS], p[LE] = 0.95 + 0.65 * e, 1.7 * (1 - e)
    elif move == "jab_r":
        p[RS], p[RE] = 0.9 + 0.7 * e, 1.75 * (1 - e)
    elif move == "kick":
        p[RH], p[RK] = -0.3 + 1.75 * e, 0.3 * (1 - e)
        p[LEAN] -= 0.2 * e
    p[LEAN] += 0.15 * e if move.startswith("jab") else 0.0
    return p


def _guard(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Cowering under blows: forearms over the head, recoiling."""
    p = np.zeros(NUM_PARAMS)
    jolt = _pulse((tau % FIGHT_PERIOD) / FIGHT_PERIOD)
    p[LS], p[LE], p[RS], p[RE] = 2.3, 1.3, 2.1, 1.4
    p[LH], p[RH], p[LK], p[RK] = 0.2, -0.25, 0.35, 0.3
    p[LEAN] = -0.15 - 0.15 * jolt
    p[TILT] = 0.3
    return p


DANCE_HZ = 0.9


def _dance(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Dancing (the keyed world's look-alike of a fight: as much movement, other dynamics):
    straight arms swing up overhead in turn to a slow beat, the hips sway, the feet step."""
    p = _base()
    beat = 2 * math.pi * DANCE_HZ * tau + float(ex.get("phase", 0.0))
    s, c = math.sin(beat), math.cos(beat)
    p[LS], p[RS] = 2.0 + 0.6 * s, 2.0 - 0.6 * s
    p[LE], p[RE] = 0.25 + 0.2 * c, 0.25 - 0.2 * c
    p[LEAN] = 0.08 * s
    p[LH], p[RH] = 0.04 + 0.15 * max(0.0, s), -0.04 - 0.15 * max(0.0, -s)
    p[LK], p[RK] = 0.3 * max(0.0, s), 0.3 * max(0.0, -s)
    p[TILT] = 0.1 * c
    return p


def _push(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Both arms thrust forward at chest height, lunging."""
    e = _smooth(u * 1.6)
    p = _base()
    p[LS] = p[RS] = 0.5 + 1.05 * e
    p[LE] = p[RE] = 0.9 * (1 - e) + 0.05
    p[LEAN] = 0.38 * e
    p[LH], p[RH], p[RK] = 0.45 * e, -0.3 * e, 0.2 * e
    return p


def _fall(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Falling backwards to the ground, arms flailing."""
    p = _base()
    e = min(1.0, u) ** 2
    p[ROT] = (math.pi / 2) * e * float(ex.get("direction", 1.0))
    p[LS], p[RS] = 2.2 * u, 2.6 * u
    p[LE], p[RE] = 0.6, 0.4
    p[LH], p[LK] = 0.5 * u, 0.4 * u
    return p


def _lie(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    p = _base()
    p[ROT] = (math.pi / 2) * float(ex.get("direction", 1.0))
    p[LS], p[RS] = 0.6 + 0.15 * math.sin(1.7 * tau), 2.6
    p[LE], p[RE] = 0.5, 0.3
    p[LH], p[RH], p[LK], p[RK] = 0.35, -0.1, 0.6 + 0.2 * math.sin(1.3 * tau), 0.2
    return p


def _crouch(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Squatting, one hand reaching to the ground (picking up, tending, lighting)."""
    p = np.zeros(NUM_PARAMS)
    p[LH], p[LK], p[RH], p[RK] = 1.7, 2.5, 1.4, 2.3
    p[LEAN] = 0.75
    p[RS], p[RE] = 1.1 + 0.1 * math.sin(2 * math.pi * 0.8 * tau), 0.2
    p[LS], p[LE] = 0.5, 0.4
    return p


def _getup(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """From lying, through a crouch, to standing."""
    if u < 0.5:
        w = _smooth(u / 0.5)
        return blend(_lie(tau, 1.0, ex), _crouch(tau, 0.0, ex), w)
    return blend(_crouch(tau, 1.0, ex), _base(), _smooth((u - 0.5) / 0.5))


def _reach(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    p = _base()
    e = _smooth(u * 2)
    p[RS], p[RE], p[LEAN] = 0.2 + 1.15 * e, 0.1, 0.18 * e
    return p


def _offer(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Handing something over: the forearm held out at waist height."""
    p = _base()
    e = _smooth(u * 2)
    p[RS], p[RE], p[LEAN] = 0.15 + 0.75 * e, 0.3 + 0.4 * e, 0.05
    return p


def _pull(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Yanking something away: arms forward, leaning back hard, jerking."""
    p = np.zeros(NUM_PARAMS)
    p[LS] = p[RS] = 1.25
    p[LE] = p[RE] = 0.3
    p[LEAN] = -0.32 + 0.12 * math.sin(2 * math.pi * 3.0 * tau)
    p[LH], p[RH], p[LK] = 0.4, -0.4, 0.3
    return p


def _alarm(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Both arms raised, waving wildly (a victim or a witness calling for help)."""
    p = _base()
    s = math.sin(2 * math.pi * 2.2 * tau)
    p[LS], p[RS] = 2.7 + 0.35 * s, 2.7 - 0.35 * s
    p[LE] = p[RE] = 0.3
    p[LEAN] = -0.1
    return p


STRIKE_PERIOD = 0.7
STRIKE_MOVES = ("hit", "hit", "kick", "hit", "kick", "kick", "hit")


def strike_move(tau: float) -> tuple[str, float]:
    """A vandal's move ``tau`` seconds in: ``"hit"`` (an overhead blow) or ``"kick"``,
    and how far it is extended (0–1)."""
    k = int(tau // STRIKE_PERIOD)
    return STRIKE_MOVES[k % len(STRIKE_MOVES)], _pulse((tau % STRIKE_PERIOD) / STRIKE_PERIOD)


def _strike(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Hammering an object with overhead blows and kicks."""
    p = np.zeros(NUM_PARAMS)
    p[LH], p[RH], p[LK], p[RK] = 0.3, -0.3, 0.2, 0.25
    p[LS], p[LE] = 0.6, 1.2
    move, e = strike_move(tau)
    if move == "hit":
        p[RS], p[RE] = 2.9 - 2.0 * e, 0.2
        p[LEAN] = 0.1 + 0.3 * e
    else:
        p[RH], p[RK] = -0.3 + 1.6 * e, 0.25 * (1 - e)
        p[RS], p[RE] = 0.7, 1.0
        p[LEAN] = -0.15 * e
    return p


def _open(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Opening a door: a hand on the handle, drawing it back slowly."""
    p = _base()
    p[RS] = 1.2 - 0.4 * _smooth(u)
    p[RE] = 0.5
    p[LEAN] = 0.08
    return p


def _pose(**angles: float) -> np.ndarray:
    """A pose from named angles (``ls=2.4, rh=1.5, ...``); the rest as :func:`_base`."""
    p = _base()
    for name, value in angles.items():
        p[_PARAMS[name]] = value
    return p


_PARAMS = {"lean": LEAN, "ls": LS, "le": LE, "rs": RS, "re": RE, "lh": LH, "lk": LK, "rh": RH, "rk": RK,
           "rot": ROT, "tilt": TILT}

#: a climb over a fence, keyframe by keyframe (fraction of the climb done, pose): hands up on the
#: top rail and a foot on it, astride the top, dropping with the arms up, landing in a crouch
_CLIMB_KEYS = (
    (0.0, _pose(ls=0.9, rs=1.0, le=0.6, re=0.6)),
    (0.25, _pose(lean=0.3, ls=2.5, rs=2.3, le=0.3, re=0.4, rh=1.6, rk=2.0, lh=-0.1)),
    (0.45, _pose(lean=0.15, ls=0.7, rs=0.6, le=0.5, re=0.5, lh=1.3, lk=0.7, rh=-0.9, rk=0.5)),
    (0.6, _pose(lean=0.05, ls=1.0, rs=0.9, le=0.3, re=0.3, lh=0.5, lk=0.3, rh=-0.3, rk=0.3)),
    (0.75, _pose(lean=-0.05, ls=2.0, rs=1.8, le=0.2, re=0.2, lh=0.2, lk=0.2, rh=0.1, rk=0.2)),
    (0.88, _pose(lean=0.55, ls=0.9, rs=0.9, le=0.3, re=0.3, lh=1.3, lk=2.0, rh=1.1, rk=1.8)),
    (1.0, _pose(lean=0.3, ls=0.5, rs=0.5, lh=0.6, lk=0.9, rh=0.5, rk=0.8)),
)


def _climb(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Climbing over a fence (with :func:`climb_lift` raising the body): hands and a foot up
    on the top rail, astride it, a drop with the arms up, a landing crouch."""
    for (u0, a), (u1, b) in itertools.pairwise(_CLIMB_KEYS):
        if u <= u1:
            return blend(a, b, _smooth((u - u0) / (u1 - u0)))
    return _CLIMB_KEYS[-1][1].copy()


#: when a climb's body is off the ground (fractions of the climb): going up, on top, coming down
CLIMB_UP, CLIMB_TOP, CLIMB_DOWN = 0.35, 0.6, 0.8


def climb_lift(u: float) -> float:
    """How high a climber's lowest point is, as a fraction of the fence's height, ``u`` of the
    way through the climb: up to the top by :data:`CLIMB_UP`, astride it until
    :data:`CLIMB_TOP`, falling (faster and faster) to the ground by :data:`CLIMB_DOWN`."""
    if u < CLIMB_UP:
        return _smooth(u / CLIMB_UP)
    if u < CLIMB_TOP:
        return 1.0
    if u < CLIMB_DOWN:
        return 1.0 - ((u - CLIMB_TOP) / (CLIMB_DOWN - CLIMB_TOP)) ** 2
    return 0.0


def _lean(tau: float, u: float, ex: Mapping[str, Any]) -> np.ndarray:
    """Leaning on a fence's top rail: forearms forward on it at chest height, the torso bent
    over it, one foot crossed, a slow sway (the climb's look-alike: arms up on the rail, no rise)."""
    p = _base()
    ph = float(ex.get("phase", 0.0))
    p[LS], p[RS] = 1.35 + 0.05 * math.sin(0.7 * tau + ph), 1.3
    p[LE], p[RE] = 1.2, 1.25
    p[LEAN] = 0.35 + 0.04 * math.sin(0.9 * tau + ph)
    p[LH], p[RH], p[RK] = 0.12, -0.2, 0.25
    p[TILT] = 0.1 * math.sin(0.5 * tau + ph)
    return p


MOTIONS: dict[str, Motion] = {
    "stand": _stand,
    "walk": _walk,
    "run": _run,
    "talk": _talk,
    "wave": _wave,
    "fight": _fight,
    "guard": _guard,
    "dance": _dance,
    "push": _push,
    "fall": _fall,
    "lie": _lie,
    "crouch": _crouch,
    "getup": _getup,
    "reach": _reach,
    "offer": _offer,
    "pull": _pull,
    "alarm": _alarm,
    "strike": _strike,
    "open": _open,
    "climb": _climb,
    "lean": _lean,
}

#: motions that raise the body off the ground: ``(u, extra) -> pixels`` above the ground the
#: body's lowest point is (a climb rises by its ``extra["rise"]``, the fence's height)
LIFTS: dict[str, Callable[[float, Mapping[str, Any]], float]] = {
    "climb": lambda u, ex: climb_lift(u) * float(ex.get("rise", 0.0)),
}
