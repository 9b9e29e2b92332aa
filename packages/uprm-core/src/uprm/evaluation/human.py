"""Human evaluation (the paper's human score: 3 raters, 1-5): blind rating sheets and
the scores read back from them.

:func:`export_sheets` takes the ``answers.jsonl`` of one or more systems and writes, for
each rater, ``raterN.csv`` (one row per item to score) and ``raterN.html`` (a
self-contained page: each clip's frames as embedded JPEG thumbnails decoded from the
video, the question and the answer; no network resource), both in an order shuffled
per rater. An item is one system's answer to one record; its id is a hash that does not
reveal the system. ``key.json`` maps item ids back to systems and records: keep it from
the raters.

:func:`read_ratings` reads the filled sheets, checks them (every score given an
integer 1-5, each item once: problems are named by file, row — as a spreadsheet numbers
them, the header being row 1 — column and item) and reports the mean score per system
and per rater and the agreement between raters: Krippendorff's α, ordinal, over the
values 1-5, from the ``krippendorff`` package (``krippendorff.alpha(reliability_data=
raters × items, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])``). A blank
score, like an item a rater left out, is a missing rating — α is built for missing
data — and the result says how many ratings were missing.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import math
import os
import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from uprm.evaluation.errors import EvaluationError

__all__ = ["GUIDELINES", "SHEET_COLUMNS", "SheetItem", "export_sheets", "load_sheet_items", "read_ratings"]

SHEET_COLUMNS = ["item", "clip", "question", "answer", "score", "comment"]
SCALE = (1, 2, 3, 4, 5)
KEY_FILE = "key.json"
GUIDELINES = (
    "Rate how rational the answer is as an explanation of the threat in the clip, from 1 to 5: "
    "5 = the cause is correct, specific and fully supported by what the clip shows; "
    "4 = correct with minor omissions or vagueness; 3 = partly correct, or too generic to be useful; "
    "2 = mostly wrong or unsupported by the clip; 1 = wrong, irrelevant or not an explanation. "
    "Judge each answer on its own; answers come from several systems in a random order."
)


@dataclass(frozen=True)
class SheetItem:
    """One system's answer to one record, to be rated."""

    item: str
    system: str
    record: str
    video_id: str
    clip: str
    video: str
    window: tuple[float, float] | None
    question: str
    answer: str
    reference: str


def _system_names(paths: Sequence[Path], systems: Sequence[str] | None) -> list[str]:
    if systems:
        if len(systems) != len(paths):
            raise EvaluationError(f"{len(systems)} system name(s) for {len(paths)} answers file(s): "
                                  "give one --system per --answers, in the same order")
        names = list(systems)
    else:
        names = [p.resolve().parent.name for p in paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EvaluationError(f"system name(s) {dup} given to several answers files (named after their folders); "
                              "name each with --system")
    return names


def _item_id(seed: int, system: str, record: str) -> str:
    return hashlib.sha256(f"{seed}\x00{system}\x00{record}".encode()).hexdigest()[:12]


def load_sheet_items(answers: Sequence[str | os.PathLike], systems: Sequence[str] | None = None,
                     task: str = "attribute", seed: int = 0) -> list[SheetItem]:
    """The items to rate: every ``task`` line of each system's ``answers.jsonl`` (read by
    :func:`uprm.evaluation.answers.read_answers`: ``uprm eval``'s and the demo's alike)."""
    from uprm.evaluation.answers import read_answers

    paths = [Path(a) for a in answers]
    if not paths:
        raise EvaluationError("no answers file given (--answers)")
    items = []
    for path, system in zip(paths, _system_names(paths, systems)):
        lines = [x for x in read_answers(path) if x["task"] == task]
        if not lines:
            raise EvaluationError(f"{path}: no {task!r} answer to rate")
        for x in lines:
            window = tuple(x["window"]) if x["window"] else None
            items.append(SheetItem(_item_id(seed, system, x["id"]), system, x["id"], x["video_id"] or "",
                                   x["clip"] or x["video_id"] or "", x["video"] or "", window, x["question"],
                                   x["answer"], x.get("reference_cause") or x["reference"]))
    if len({i.item for i in items}) != len(items):
        raise EvaluationError("two answers lines share a system and a record id; each record must appear once")
    return items


# --------------------------------------------------------------------------- thumbnails
def _thumbnails(item: SheetItem, frames: int, size: int) -> list[str]:
    """The clip's frames as ``data:image/jpeg;base64,...`` URIs (``[]`` if unreadable)."""
    from PIL import Image

    from uprm.data.video import load_clip
    from uprm.errors import VideoError

    start, end = item.window if item.window is not None else (None, None)
    try:
        clip = load_clip(item.video, frames, start, end)
    except (VideoError, OSError, ValueError) as exc:
        warnings.warn(f"{item.video}: no frames for the rating sheet ({exc})", stacklevel=2)
        return []
    out = []
    for frame in clip.frames:
        image = Image.fromarray(frame.permute(1, 2, 0).cpu().numpy())
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        out.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return out


_STYLE = """body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
section{border-top:1px solid #ccc;padding:1em 0}.frames img{margin:2px;border:1px solid #999}
.answer{background:#f4f4f4;padding:.5em}.meta{color:#666;font-size:90%}"""


def _html_page(rater: str, ordered: Sequence[SheetItem], thumbs: Mapping[str, list[str]],
               show_reference: bool) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Rating sheet {e(rater)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>Rating sheet {e(rater)}</h1><p>{e(GUIDELINES)}</p>"
             f"<p>Write each score (1-5) in the <code>score</code> column of <code>{e(rater)}.csv</code>, "
             "in the row with the same item id (the rows are in the same order as this page).</p>"]
    for n, it in enumerate(ordered, start=1):
        images = "".join(f"<img src='{uri}' alt='frame {k + 1}'>" for k, uri in enumerate(thumbs.get(it.clip, [])))
        ref = f"<p><b>Reference cause:</b> {e(it.reference)}</p>" if show_reference else ""
        parts.append(f"<section id='{e(it.item)}'><h2>{n}. item {e(it.item)}</h2>"
                     f"<p class='meta'>clip {e(it.clip)} · CSV row {n + 1}</p>"
                     f"<div class='frames'>{images or '<i>frames unavailable</i>'}</div>"
                     f"<p><b>Question:</b> {e(it.question)}</p><p class='answer'><b>Answer:</b> {e(it.answer)}</p>"
                     f"{ref}</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _csv_text(ordered: Sequence[SheetItem]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SHEET_COLUMNS)
    for it in ordered:
        writer.writerow([it.item, it.clip, it.question, it.answer, "", ""])
    return buffer.getvalue()


def export_sheets(answers: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                  systems: Sequence[str] | None = None, raters: int = 3, task: str = "attribute", seed: int = 0,
                  frames: int = 4, thumb_size: int = 160, show_reference: bool = False) -> dict[str, Any]:
    """Write ``rater1.csv`` / ``rater1.html`` … ``raterN`` and ``key.json`` into ``out``
    (atomically). Returns ``{"sheets": [csv paths], "pages": [html paths], "key": path,
    "items": n}``."""
    from uprm.utils import atomic_write_json, atomic_write_text

    if raters < 1:
        raise EvaluationError(f"raters: at least one rater is needed, got {raters}")
    items = load_sheet_items(answers, systems, task, seed)
    thumbs: dict[str, list[str]] = {}
    for it in items:
        if it.clip not in thumbs:
            thumbs[it.clip] = _thumbnails(it, frames, thumb_size) if it.video else []
    out = Path(out)
    result: dict[str, Any] = {"sheets": [], "pages": [], "key": out / KEY_FILE, "items": len(items)}
    names = [f"rater{r}" for r in range(1, raters + 1)]
    for name in names:
        ordered = sorted(items, key=lambda i: i.item)
        random.Random(f"{seed}:{name}").shuffle(ordered)
        atomic_write_text(out / f"{name}.csv", _csv_text(ordered))
        atomic_write_text(out / f"{name}.html", _html_page(name, ordered, thumbs, show_reference))
        result["sheets"].append(out / f"{name}.csv")
        result["pages"].append(out / f"{name}.html")
    key = {"seed": seed, "task": task, "raters": names, "systems": sorted({i.system for i in items}),
           "items": {i.item: {k: v for k, v in asdict(i).items() if k != "item"} for i in items}}
    atomic_write_json(out / KEY_FILE, key)
    return result


# --------------------------------------------------------------------------- ratings
def _score(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and int(value) in SCALE else None


def _column_letter(index: int) -> str:
    """A 0-based column index as a spreadsheet names it (0 → A, 26 → AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _check_row(row: Mapping[str, str | None], where: str, column: str, known: Mapping[str, Any],
               seen: set[str]) -> tuple[str, int | None] | str | None:
    """``(item, score)`` — ``score`` ``None`` for a blank cell, a missing rating — or a
    problem naming the row and column, or ``None`` for a row with nothing in it."""
    item, raw = (row.get("item") or "").strip(), (row.get("score") or "").strip()
    if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
        return None  # an empty row a spreadsheet left at the end
    if not item:
        return f"{where}: no item id"
    if item not in known:
        return f"{where}: unknown item {item!r} (not in the key)"
    if item in seen:
        return f"{where}: item {item!r} appears twice"
    if not raw:
        return item, None
    score = _score(raw)
    if score is None:
        return f"{where}, column {column} 'score' (item {item}): score must be an integer from 1 to 5, got {raw!r}"
    return item, score


def _read_sheet(path: Path, known: Mapping[str, Any], problems: list[str]) -> dict[str, int | None]:
    """A sheet's ratings by item: the score, or ``None`` for a blank score cell (a
    missing rating). Problems (by file, row and column) go to ``problems``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        problems.append(f"{path}: cannot read ({exc})")
        return {}
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        problems.append(f"{path}: row {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                        "save the sheet as CSV UTF-8")
        return {}
    reader = csv.DictReader(io.StringIO(text))
    if not {"item", "score"} <= set(reader.fieldnames or []):
        problems.append(f"{path}: a rating sheet needs the columns 'item' and 'score', got {reader.fieldnames}")
        return {}
    column = _column_letter(list(reader.fieldnames or []).index("score"))
    scores: dict[str, int | None] = {}
    for n, row in enumerate(reader, start=2):
        checked = _check_row(row, f"{path}: row {n}", column, known, set(scores))
        if isinstance(checked, str):
            problems.append(checked)
        elif checked is not None:
            scores[checked[0]] = checked[1]
    return scores


def _load_key(sheets: Sequence[Path], key: str | os.PathLike | None) -> dict[str, Any]:
    path = Path(key) if key is not None else sheets[0].parent / KEY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvaluationError(f"{path}: no key file (written by `uprm eval sheets`); pass --key") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"{path}: not a readable key file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), dict):
        raise EvaluationError(f"{path}: not a key file of `uprm eval sheets` (no 'items' object)")
    return data


def _alpha(matrix: list[list[float]]) -> float | None:
    import krippendorff
    import numpy as np

    data = np.asarray(matrix, dtype=float)
    if data.shape[0] < 2 or np.count_nonzero(~np.isnan(data).all(axis=0)) == 0:
        return None
    try:
        value = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=list(SCALE))
    except ValueError:
        return None
    return None if math.isnan(value) else float(value)


def _mean(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


def _summaries(scores: Mapping[str, Mapping[str, int]], items: Mapping[str, Any]) -> dict[str, Any]:
    """Per system: the mean, the number of ratings and of missing ones, the mean per
    rater and α (``scores`` holds given ratings only)."""
    raters = list(scores)
    systems = sorted({v["system"] for v in items.values()})
    out: dict[str, Any] = {}
    for system in systems:
        ids = sorted(i for i, v in items.items() if v["system"] == system)
        per_rater = {r: _mean([scores[r][i] for i in ids if i in scores[r]]) for r in raters}
        every = [scores[r][i] for r in raters for i in ids if i in scores[r]]
        matrix = [[scores[r].get(i, math.nan) for i in ids] for r in raters]
        out[system] = {"mean": _mean(every), "ratings": len(every), "missing": len(raters) * len(ids) - len(every),
                       "per_rater": per_rater, "alpha": _alpha(matrix)}
    return out


def read_ratings(sheets: Sequence[str | os.PathLike], key: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read filled rating sheets (one CSV per rater, named after the rater) and their
    key (``key.json`` beside the first sheet unless given).

    A blank score cell, like an item left out of a sheet, is a **missing rating**: it is
    left out of the means, and Krippendorff's α — made for missing data — is computed
    over the ratings given (an item needs two ratings to count). Returns ``systems``
    (``{name: {"mean", "ratings", "missing", "per_rater", "alpha"}}``), ``raters``
    (``{rater: {"mean", "ratings", "missing", "blank"}}``), ``alpha`` (ordinal α over every
    item; ``None`` when undefined: fewer than two raters, or one value only), ``items``,
    ``ratings`` (given), ``missing`` (rater × item pairs without a score) and
    ``missing_blank`` / ``missing_absent`` (of those: blank cells / items not in the
    sheet). A cell filled badly — a score that is not an integer from 1 to 5, an unknown
    or repeated item — is an :class:`EvaluationError` listing every problem by file, row
    (as a spreadsheet numbers them, the header being row 1) and column."""
    paths = [Path(s) for s in sheets]
    if not paths:
        raise EvaluationError("no rating sheet given")
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        raise EvaluationError(f"two sheets have the same rater name (file stem): {names}")
    items = _load_key(paths, key)["items"]
    problems: list[str] = []
    read = {p.stem: _read_sheet(p, items, problems) for p in paths}
    if problems:
        shown = problems[:30] + ([f"... and {len(problems) - 30} more"] if len(problems) > 30 else [])
        raise EvaluationError(f"{len(problems)} problem(s) in the rating sheets:\n  " + "\n  ".join(shown))
    scores = {r: {i: v for i, v in s.items() if v is not None} for r, s in read.items()}
    blank = {r: sum(v is None for v in s.values()) for r, s in read.items()}
    ids = sorted(items)
    matrix = [[scores[r].get(i, math.nan) for i in ids] for r in scores]
    given = sum(len(s) for s in scores.values())
    missing = len(scores) * len(ids) - given
    return {
        "systems": _summaries(scores, items),
        "raters": {r: {"mean": _mean(list(s.values())), "ratings": len(s), "missing": len(ids) - len(s),
                       "blank": blank[r]} for r, s in scores.items()},
        "alpha": _alpha(matrix),
        "level_of_measurement": "ordinal",
        "items": len(ids),
        "ratings": given,
        "missing": missing,
        "missing_blank": sum(blank.values()),
        "missing_absent": missing - sum(blank.values()),
    }
