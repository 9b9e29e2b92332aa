"""Stage-1 pre-tuning instructions (paper §3.3 and §4.1, Fig. 4) from the published
layouts of RefCOCO (object relations), HumanML3D (human pose) and RSI-CB (visual
background).

Each source becomes conversation records (docs/formats.md) with a physical-world
instruction, e.g. *"Analyze the designated area <region> and the actions depicted in
the video."* (the paper's example), where ``<region>`` is a box written as
``[x1, y1, x2, y2]`` in coordinates normalised to ``[0, 1]`` with two decimals:

============  ===========  =====================================================
task          source       record
============  ===========  =====================================================
``relation``  RefCOCO      image + region → the referring expression
``pose``      HumanML3D    video (a rendering of the motion) → its caption
``background`` RSI-CB      image → the scene class
============  ===========  =====================================================

RefCOCO ships ``refs(unc).p``, a pickle. It is read with :func:`restricted_pickle_load`,
which builds only plain containers and primitives and refuses every other global — a
pickle from the internet can never run code here. A JSON conversion of the same list
(``json.dump(refs)``) is read too.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uprm.data.annotations import AnnotationError, _loads, _read_text
from uprm.data.instructions import InstructionSet, assign_split, make_record, write_instructions

__all__ = [
    "IMAGE_EXTENSIONS",
    "PRETUNE_TEMPLATES",
    "MotionText",
    "RefExpression",
    "SceneImage",
    "build_humanml3d",
    "build_refcoco",
    "build_rsicb",
    "format_region",
    "read_humanml3d",
    "read_refcoco",
    "read_rsicb",
    "restricted_pickle_load",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")

#: physical-world instructions per task (one is picked per sample by a hash of its id)
PRETUNE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "relation": (
        "Analyze the designated area {region} and the objects related to it in the image.",
        "Describe the object in the designated area {region} and how it relates to the objects around it.",
        "What is in the designated area {region}? Refer to it by its relation to the other objects.",
    ),
    "pose": (
        "Analyze the human pose and the actions depicted in the video.",
        "Describe how the person in the video moves their body.",
        "Analyze the designated area {region} and the actions depicted in the video.",
    ),
    "background": (
        "Analyze the visual background of the image and name the scene.",
        "What kind of place is shown in the image?",
        "Describe the scene in the background of the image.",
    ),
}


def _pick(task: str, key: str, seed: int) -> str:
    templates = PRETUNE_TEMPLATES[task]
    h = int.from_bytes(hashlib.sha256(f"{seed}\x02{key}".encode()).digest()[:4], "big")
    return templates[h % len(templates)]


def format_region(box: Sequence[float], width: float, height: float) -> str:
    """A pixel box ``[x1, y1, x2, y2]`` as normalised text ``[0.12, 0.30, 0.56, 0.98]``."""
    x1, y1, x2, y2 = box
    vals = [x1 / width, y1 / height, x2 / width, y2 / height]
    return "[" + ", ".join(f"{min(1.0, max(0.0, v)):.2f}" for v in vals) + "]"


def _sentence(text: str) -> str:
    text = " ".join(str(text).split()).strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _relpath(path: Path, base: Path | None) -> str:
    if base is None:
        return path.as_posix()
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def _out_base(out: str | os.PathLike | None) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    return out.parent if out.suffix.lower() == ".json" else out


# -- the restricted unpickler ------------------------------------------------------------


def _encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocols 0-2 use it to store ``bytes``; text codecs only."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"refusing the codec {encoding!r}")
    return text.encode(encoding)


_SAFE_GLOBALS = {
    ("_codecs", "encode"): _encode,
    ("builtins", "bytes"): bytes,
    ("__builtin__", "bytes"): bytes,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "slice"): slice,
    ("builtins", "range"): range,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "complex"): complex,
    ("__builtin__", "bytearray"): bytearray,
    ("__builtin__", "slice"): slice,
    ("__builtin__", "xrange"): range,
    ("collections", "OrderedDict"): dict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="utf-8", errors="surrogateescape")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        value = _SAFE_GLOBALS.get((module, name))
        if value is None:
            raise AnnotationError(
                self._path,
                f"refusing to unpickle the global {module}.{name}: only plain containers and primitives "
                "are allowed (convert the file to JSON if it really needs more)",
            )
        return value

    def persistent_load(self, pid: Any) -> Any:
        raise AnnotationError(self._path, "refusing a pickle with persistent ids")


def restricted_pickle_load(path: str | os.PathLike) -> Any:
    """Load a pickle that may contain only dicts, lists, tuples, strings, numbers,
    booleans, ``None``, bytes and sets (Python 2 pickles included: their byte strings
    are decoded as UTF-8). Any other global — a class, a function such as
    ``os.system`` — raises :class:`~uprm.data.AnnotationError` before it is called."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(path, "no such file") from None
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except AnnotationError:
        raise
    except Exception as exc:
        raise AnnotationError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None


# -- RefCOCO -----------------------------------------------------------------------------


@dataclass
class RefExpression:
    """One referring expression of RefCOCO: the region ``box`` ``[x1, y1, x2, y2]`` in
    pixels of image ``file_name`` (``width`` × ``height``) and what people called it."""

    ref_id: int
    sent_id: int
    image_id: int
    file_name: str
    width: int
    height: int
    box: tuple[float, float, float, float]
    sentence: str
    category: str | None
    split: str


def _coco_image_name(ref_file_name: str) -> str:
    """``COCO_train2014_000000581857_16.jpg`` (refs' name, with the ann id) → the
    image's own ``COCO_train2014_000000581857.jpg``."""
    return re.sub(r"_\d+(\.\w+)$", r"\1", ref_file_name)


def read_refcoco(refs: str | os.PathLike, instances: str | os.PathLike | None = None) -> list[RefExpression]:
    """Read RefCOCO / RefCOCO+ / RefCOCOg: ``refs(unc).p`` (restricted unpickling) or its
    JSON conversion, and the ``instances.json`` (COCO layout) with the boxes and image
    sizes. ``instances`` may be left out when each ref carries ``bbox`` ``[x, y, w, h]``,
    ``width`` and ``height`` itself (a flattened conversion).

    Split names ``testA``/``testB`` become ``test``.
    """
    refs_path = Path(refs)
    data = _read_json_file(refs_path) if refs_path.suffix.lower() == ".json" else restricted_pickle_load(refs_path)
    if not isinstance(data, list):
        raise AnnotationError(refs_path, f"expected a list of refs, got {type(data).__name__}")
    anns: dict[int, dict] = {}
    images: dict[int, dict] = {}
    cats: dict[int, str] = {}
    if instances is not None:
        inst_path = Path(instances)
        inst = _read_json_file(inst_path)
        if not isinstance(inst, dict) or "annotations" not in inst or "images" not in inst:
            raise AnnotationError(inst_path, "expected COCO instances JSON with 'images' and 'annotations'")
        anns = {int(a["id"]): a for a in inst["annotations"]}
        images = {int(i["id"]): i for i in inst["images"]}
        cats = {int(c["id"]): str(c["name"]) for c in inst.get("categories", [])}
    out = []
    for i, ref in enumerate(data):
        where = f"refs[{i}]"
        if not isinstance(ref, dict):
            raise AnnotationError(refs_path, "a ref must be a dict", where=where)
        try:
            ann_id, image_id, ref_id = int(ref["ann_id"]), int(ref["image_id"]), int(ref["ref_id"])
            sentences = ref["sentences"]
            split = str(ref["split"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(refs_path, f"missing or bad field {exc}", where=where) from None
        if "bbox" in ref:
            bbox, width, height = ref["bbox"], ref.get("width"), ref.get("height")
            file_name = ref.get("image") or _coco_image_name(str(ref.get("file_name", "")))
        else:
            ann = anns.get(ann_id)
            img = images.get(image_id)
            if ann is None or img is None:
                raise AnnotationError(
                    refs_path,
                    f"annotation {ann_id} / image {image_id} not in the instances file (or none given)",
                    where=where,
                )
            bbox, width, height, file_name = ann["bbox"], img["width"], img["height"], img["file_name"]
        if width is None or height is None:
            raise AnnotationError(refs_path, "the image size is unknown (give the instances file)", where=where)
        x, y, w, h = (float(v) for v in bbox)
        category = cats.get(int(ref["category_id"])) if "category_id" in ref else None
        for j, sent in enumerate(sentences):
            text = sent.get("sent") or sent.get("raw") if isinstance(sent, dict) else sent
            if not isinstance(text, str) or not text.strip():
                raise AnnotationError(refs_path, "an empty referring expression", where=f"{where}.sentences[{j}]")
            sent_id = int(sent.get("sent_id", j)) if isinstance(sent, dict) else j
            out.append(
                RefExpression(
                    ref_id=ref_id,
                    sent_id=sent_id,
                    image_id=image_id,
                    file_name=str(file_name),
                    width=int(width),
                    height=int(height),
                    box=(x, y, x + w, y + h),
                    sentence=text.strip(),
                    category=category,
                    split="test" if split.startswith("test") else split,
                )
            )
    return out


def build_refcoco(
    refs: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    instances: str | os.PathLike | None = None,
    name: str = "refcoco",
    seed: int = 0,
    limit: int | None = None,
    one_sentence_per_ref: bool = False,
    missing: str = "skip",
) -> InstructionSet:
    """Object-relation instructions from RefCOCO: ``<image>`` + "Analyze the designated
    area [x1, y1, x2, y2] ..." → the referring expression (task ``relation``).

    Args:
        refs, instances: see :func:`read_refcoco`.
        images: the COCO image folder (``train2014``).
        out: a ``.json`` file or a folder (``{name}_{split}.json``), as
            :func:`~uprm.data.build_instructions`.
        limit: keep at most this many samples (chosen by hash: a balanced subset, as the
            paper selects subsets).
        one_sentence_per_ref: one expression per region instead of all of them.
        missing: ``"skip"`` images not on disk, ``"error"``, or ``"keep"`` them.
    """
    exprs = read_refcoco(refs, instances)
    if one_sentence_per_ref:
        seen: set[int] = set()
        exprs = [e for e in exprs if not (e.ref_id in seen or seen.add(e.ref_id))]
    exprs = _limit(exprs, limit, seed, key=lambda e: f"{e.ref_id}/{e.sent_id}")
    images = Path(images)
    base = _out_base(out)
    records = InstructionSet()
    for e in exprs:
        path = images / e.file_name
        if missing != "keep" and not path.is_file():
            if missing == "error":
                raise AnnotationError(path, f"image of ref {e.ref_id} not found")
            records.skipped.append((f"{e.ref_id}/{e.sent_id}", "no image file"))
            continue
        sid = f"refcoco/{e.ref_id}/{e.sent_id}"
        region = format_region(e.box, e.width, e.height)
        question = _pick("relation", sid, seed).format(region=region)
        records.append(
            make_record(
                sid,
                "relation",
                question,
                _sentence(e.sentence),
                image=_relpath(path, base),
                split=e.split,
                region=[round(v, 2) for v in e.box],
                image_size=[e.width, e.height],
                category=e.category,
                source="refcoco",
            )
        )
    if out is not None:
        records.files = write_instructions(records, out, name=name)
    return records


# -- HumanML3D ---------------------------------------------------------------------------


@dataclass
class MotionText:
    """One HumanML3D caption: motion ``motion_id`` (``000021``, or ``M000021`` for the
    mirrored copy), the text, and the part of the motion it covers (``start``/``end`` in
    seconds, ``None`` = all of it)."""

    motion_id: str
    caption: str
    start: float | None
    end: float | None
    split: str | None


def read_humanml3d(root: str | os.PathLike) -> list[MotionText]:
    """Read HumanML3D's ``texts/<id>.txt`` (lines ``caption#tokens#start#end``) and the
    split files ``train.txt`` / ``val.txt`` / ``test.txt`` (one id per line) under
    ``root``. ``start``/``end`` of ``0.0``/``0.0`` (or NaN) mean the whole motion."""
    root = Path(root)
    texts = root / "texts"
    if not texts.is_dir():
        raise AnnotationError(texts, "no 'texts' folder: expected HumanML3D's layout (texts/<id>.txt)")
    splits: dict[str, str] = {}
    for split in ("train", "val", "test"):
        f = root / f"{split}.txt"
        if f.is_file():
            for mid in _read_text(f).split():
                splits.setdefault(mid, split)
    out = []
    for f in sorted(texts.glob("*.txt")):
        for lineno, raw in enumerate(_read_text(f).splitlines(), start=1):
            if raw.strip():
                out.append(_motion_line(f, lineno, raw.strip(), splits.get(f.stem)))
    return out


def _motion_line(f: Path, lineno: int, line: str, split: str | None) -> MotionText:
    """One ``caption#tokens#start#end`` line of a HumanML3D text file."""
    parts = line.rsplit("#", 3)
    if len(parts) != 4:
        raise AnnotationError(f, "expected 'caption#tokens#start#end'", line=lineno)
    caption, _tokens, s, e = parts
    try:
        start, end = float(s), float(e)
    except ValueError:
        raise AnnotationError(f, f"start and end must be numbers, got {s!r} {e!r}", line=lineno) from None
    whole = math.isnan(start) or math.isnan(end) or (start == 0.0 and end == 0.0)
    if not whole and end <= start:
        raise AnnotationError(f, f"the caption ends ({end}) before it starts ({start})", line=lineno)
    if not caption.strip():
        raise AnnotationError(f, "an empty caption", line=lineno)
    return MotionText(f.stem, caption.strip(), None if whole else start, None if whole else end, split)


def build_humanml3d(
    root: str | os.PathLike,
    videos: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    name: str = "humanml3d",
    seed: int = 0,
    limit: int | None = None,
    mirrored: bool = True,
    missing: str = "skip",
) -> InstructionSet:
    """Human-pose instructions from HumanML3D: ``<video>`` + "Analyze the human pose and
    the actions depicted in the video." → the caption (task ``pose``).

    HumanML3D holds motions, not videos: ``videos`` is the folder of their renderings,
    ``<motion_id>.mp4`` (any of :data:`~uprm.data.annotations.VIDEO_EXTENSIONS`). A
    caption of part of a motion gets that part as its ``window``.

    Args:
        mirrored: include the mirrored motions (``M…`` ids).
        limit, missing: as :func:`build_refcoco`.
    """
    from uprm.data.annotations import find_videos

    items = [t for t in read_humanml3d(root) if mirrored or not t.motion_id.startswith("M")]
    items = _limit(items, limit, seed, key=lambda t: f"{t.motion_id}/{t.caption}")
    files = find_videos(videos)
    base = _out_base(out)
    records = InstructionSet()
    counter: dict[str, int] = {}
    for t in items:
        k = counter[t.motion_id] = counter.get(t.motion_id, -1) + 1
        sid = f"humanml3d/{t.motion_id}/{k}"
        path = files.get(t.motion_id)
        if path is None:
            if missing == "error":
                raise AnnotationError(Path(videos), f"no rendering of motion {t.motion_id!r}")
            if missing == "skip":
                records.skipped.append((sid, "no video file"))
                continue
            path = Path(videos) / f"{t.motion_id}.mp4"
        question = _pick("pose", sid, seed).format(region="[0.00, 0.00, 1.00, 1.00]")
        records.append(
            make_record(
                sid,
                "pose",
                question,
                _sentence(t.caption),
                video=_relpath(path, base),
                video_id=t.motion_id,
                split=t.split or assign_split(t.motion_id.lstrip("M"), seed),
                window=[t.start, t.end] if t.start is not None else None,
                source="humanml3d",
            )
        )
    if out is not None:
        records.files = write_instructions(records, out, name=name)
    return records


# -- RSI-CB ------------------------------------------------------------------------------


@dataclass
class SceneImage:
    """One RSI-CB image: its path, its class (the folder it is in) and the class's
    super-category (the folder above, when the layout has one)."""

    path: Path
    label: str
    group: str | None


def _label(folder: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", folder).split()).lower()


def read_rsicb(root: str | os.PathLike) -> list[SceneImage]:
    """Read RSI-CB's class folders: ``root/<class>/*.tif`` (RSI-CB128) or
    ``root/<super-category>/<class>/*.tif`` (RSI-CB256). A class is a folder that holds
    images; folder names like ``city_building`` become ``city building``."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, "the RSI-CB folder does not exist")
    out = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        rel = path.relative_to(root).parts
        if len(rel) < 2:
            raise AnnotationError(path, "an image outside any class folder (expected root/<class>/<image>)")
        group = _label(rel[-3]) if len(rel) >= 3 else None
        out.append(SceneImage(path, _label(rel[-2]), group))
    if not out:
        raise AnnotationError(root, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders")
    return out


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def build_rsicb(
    root: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    name: str = "rsicb",
    seed: int = 0,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    max_per_class: int | None = None,
) -> InstructionSet:
    """Visual-background instructions from RSI-CB: ``<image>`` + "Analyze the visual
    background of the image and name the scene." → "The scene is a city building, a kind
    of construction land." (task ``background``).

    Args:
        splits: train/val/test fractions of the hash split (RSI-CB has none).
        max_per_class: keep at most this many images per class (chosen by hash), to
            balance the classes as the paper does.
    """
    images = read_rsicb(root)
    root = Path(root)
    if max_per_class is not None:
        by_class: dict[str, list[SceneImage]] = {}
        for im in images:
            by_class.setdefault(im.label, []).append(im)
        images = [
            im
            for label in sorted(by_class)
            for im in _limit(by_class[label], max_per_class, seed, key=lambda im: im.path.relative_to(root).as_posix())
        ]
    base = _out_base(out)
    records = InstructionSet()
    for im in images:
        rel = im.path.relative_to(root).as_posix()
        sid = f"rsicb/{rel}"
        answer = f"The scene is {_article(im.label)} {im.label}"
        answer += f", a kind of {im.group}." if im.group and im.group != im.label else "."
        records.append(
            make_record(
                sid,
                "background",
                _pick("background", sid, seed),
                answer,
                image=_relpath(im.path, base),
                split=assign_split(rel, seed, splits),
                category=im.label,
                source="rsicb",
            )
        )
    if out is not None:
        records.files = write_instructions(records, out, name=name)
    return records


# -- helpers -----------------------------------------------------------------------------


def _limit(items: list, limit: int | None, seed: int, key: Any) -> list:
    """At most ``limit`` items, chosen by a hash of their key (deterministic), in their
    original order."""
    if limit is None or len(items) <= limit:
        return list(items)
    ranked = sorted(range(len(items)), key=lambda i: hashlib.sha256(f"{seed}\x03{key(items[i])}".encode()).digest())
    keep = set(ranked[:limit])
    return [it for i, it in enumerate(items) if i in keep]


def _read_json_file(path: Path) -> Any:
    """JSON whose errors (missing, not UTF-8, bad JSON) are AnnotationErrors naming the file and line."""
    return _loads(path, _read_text(path))
