"""Label and predicate vocabularies of the object-relation expert.

Object labels and relation predicates arrive as free strings — from a detector's class
names, from RelTR (Visual Genome's 150 objects and 50 predicates), from UPRM's synthetic
world (``person``, ``bag``, ``door``, ``fire``; ``holding``, ``hitting``, ``on_fire``) or
from a user's own scene-graph files. The adapter embeds them, so each string becomes an
integer id:

* the string is **normalised**: lower case, ``_``/``-`` and runs of white space become one
  space, surrounding space is stripped (``"Left_Of"`` → ``"left of"``, ``"on_fire"`` →
  ``"on fire"``);
* a **known** string gets its fixed id ``1 … N`` (the lists below, in order);
* an **unknown** string goes to one of ``buckets`` hashed ids ``N+1 … N+buckets``
  chosen by CRC-32 of the normalised string — stable across processes and machines
  (Python's ``hash`` is salted), so cached features stay valid; unknown strings that
  collide share an embedding, which is the price of never failing on a new word;
* id ``0`` is padding (no object / no relation).

The lists only ever grow at their end (an id, once given, never changes); changing them
changes the features, so :attr:`RelationExpert.feature_version` goes up with them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

__all__ = [
    "COCO_LABELS",
    "DERIVED_PREDICATES",
    "EXTRA_LABELS",
    "EXTRA_PREDICATES",
    "VG150_LABELS",
    "VG150_PREDICATES",
    "Vocabulary",
    "default_labels",
    "default_predicates",
    "normalise",
]

#: The 80 COCO classes (what an ultralytics detector trained on COCO names its classes).
COCO_LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

#: The 150 object classes of Visual Genome's VG150 split (what RelTR predicts).
VG150_LABELS = (
    "airplane", "animal", "arm", "bag", "banana", "basket", "beach", "bear", "bed", "bench",
    "bike", "bird", "board", "boat", "book", "boot", "bottle", "bowl", "box", "boy", "branch",
    "building", "bus", "cabinet", "cap", "car", "cat", "chair", "child", "clock", "coat",
    "counter", "cow", "cup", "curtain", "desk", "dog", "door", "drawer", "ear", "elephant",
    "engine", "eye", "face", "fence", "finger", "flag", "flower", "food", "fork", "fruit",
    "giraffe", "girl", "glass", "glove", "guy", "hair", "hand", "handle", "hat", "head",
    "helmet", "hill", "horse", "house", "jacket", "jean", "kid", "kite", "lady", "lamp",
    "laptop", "leaf", "leg", "letter", "light", "logo", "man", "men", "motorcycle", "mountain",
    "mouth", "neck", "nose", "number", "orange", "pant", "paper", "paw", "people", "person",
    "phone", "pillow", "pizza", "plane", "plant", "plate", "player", "pole", "post", "pot",
    "racket", "railing", "rock", "roof", "room", "screen", "seat", "sheep", "shelf", "shirt",
    "shoe", "short", "sidewalk", "sign", "sink", "skateboard", "ski", "skier", "sneaker",
    "snow", "sock", "stand", "street", "surfboard", "table", "tail", "tie", "tile", "tire",
    "toilet", "towel", "tower", "track", "train", "tree", "truck", "trunk", "umbrella", "vase",
    "vegetable", "vehicle", "wave", "wheel", "window", "windshield", "wing", "wire", "woman",
    "zebra",
)  # fmt: skip

#: Things that matter in surveillance video and are in neither list above.
EXTRA_LABELS = (
    "fire", "smoke", "flame", "explosion", "gun", "pistol", "rifle", "weapon", "stick", "bat",
    "wallet", "purse", "money", "atm", "gate", "wall", "road", "van", "police car", "ambulance",
    "crowd", "debris", "shop", "store", "cashier", "robber", "thief", "victim", "pedestrian",
    "driver", "bicycle rider", "motorcyclist", "bin", "trash can", "cone", "traffic cone",
)  # fmt: skip

#: Predicates the expert derives from boxes itself (``uprm_expert_relation.geometry``).
DERIVED_PREDICATES = (
    "near", "overlapping", "inside", "above", "below", "left of", "right of", "approaching",
    "moving away",
)  # fmt: skip

#: The 50 predicates of VG150 (what RelTR predicts).
VG150_PREDICATES = (
    "above", "across", "against", "along", "and", "at", "attached to", "behind", "belonging to",
    "between", "carrying", "covered in", "covering", "eating", "flying in", "for", "from",
    "growing on", "hanging from", "has", "holding", "in", "in front of", "laying on",
    "looking at", "lying on", "made of", "mounted on", "near", "of", "on", "on back of", "over",
    "painted on", "parked on", "part of", "playing", "riding", "says", "sitting on",
    "standing on", "to", "under", "using", "walking in", "walking on", "watching", "wearing",
    "wears", "with",
)  # fmt: skip

#: Interactions of people and objects in security video (the synthetic world's among them).
EXTRA_PREDICATES = (
    "hitting", "pushing", "kicking", "punching", "fighting", "grabbing", "stealing", "taking",
    "dropping", "picking up", "throwing", "chasing", "following", "attacking", "threatening",
    "pointing at", "touching", "talking to", "opening", "closing", "entering", "exiting",
    "breaking", "damaging", "vandalising", "falling on", "running toward", "running from",
    "walking toward", "walking away from", "on fire", "burning", "next to", "beside",
    "contains", "driving", "crashing into",
)  # fmt: skip

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalise(text: str) -> str:
    """``"  Left_Of "`` → ``"left of"``: lower case, ``_``/``-``/white space runs → one space."""
    return _SEPARATORS.sub(" ", str(text).lower()).strip()


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(normalise(name), None)
    return tuple(seen)


def default_labels() -> tuple[str, ...]:
    """Known object labels, in id order (COCO, then VG150, then the extras; no repeats)."""
    return _unique((*COCO_LABELS, *VG150_LABELS, *EXTRA_LABELS))


def default_predicates() -> tuple[str, ...]:
    """Known predicates, in id order (derived, then VG150, then the extras; no repeats)."""
    return _unique((*DERIVED_PREDICATES, *VG150_PREDICATES, *EXTRA_PREDICATES))


class Vocabulary:
    """Strings → ids: ``0`` padding, ``1 … N`` known, ``N+1 … N+buckets`` hashed unknowns.

    >>> v = Vocabulary(["near", "holding"], buckets=4)
    >>> v.id("Holding"), v.id("near"), v.size
    (2, 1, 7)
    """

    def __init__(self, known: Sequence[str], buckets: int = 32) -> None:
        if buckets < 1:
            raise ValueError(f"a vocabulary needs at least one hash bucket for unknown strings, got {buckets}")
        self.known = _unique(known)
        self.buckets = int(buckets)
        self._ids = {name: i + 1 for i, name in enumerate(self.known)}
        self._seen: dict[str, int] = {}

    @property
    def size(self) -> int:
        """Rows an embedding table over these ids needs (padding + known + buckets)."""
        return 1 + len(self.known) + self.buckets

    def id(self, text: str) -> int:
        """The id of ``text`` (never fails: unknown strings get a hashed bucket)."""
        cached = self._seen.get(text)
        if cached is not None:
            return cached
        key = normalise(text)
        index = self._ids.get(key)
        if index is None:
            index = 1 + len(self.known) + zlib.crc32(key.encode("utf-8")) % self.buckets
        if len(self._seen) < 65536:  # raw strings seen so far (bounded)
            self._seen[text] = index
        return index

    def is_known(self, text: str) -> bool:
        return normalise(text) in self._ids

    def name(self, index: int) -> str:
        """The string behind an id (``"<pad>"``, the known name, or ``"<bucket n>"``)."""
        if index == 0:
            return "<pad>"
        if 1 <= index <= len(self.known):
            return self.known[index - 1]
        if index < self.size:
            return f"<bucket {index - 1 - len(self.known)}>"
        raise IndexError(f"id {index} is outside this vocabulary of size {self.size}")
