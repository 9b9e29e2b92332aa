"""``answers.jsonl``: one layout, one writer, one reader.

Every file of that name — ``uprm eval --out DIR`` and the demo's ``eval/<model>/`` — is
made by :func:`answer_line` and written by :func:`write_answers`, and every reader
(``uprm eval sheets``, ``score_predictions(answers=...)``, ``uprm eval --predictions
--answers``) goes through :func:`read_answers`, so a file one part of UPRM writes is a
file every other part reads (docs/formats.md).

One JSON object a line, one line per answered record:

=================== ==========================================================================
``id``              the record's id (required)
``task``            ``identify``, ``locate`` or ``attribute`` (required)
``question``        the question asked (required)
``answer``          the system's answer, as it said it (required)
``reference``       the reference answer (the record's ``gpt`` turn); ``""`` when none
``video_id``        the video
``clip``            the clip answered: ``<video_id>@<start>-<end>`` (3 decimals) or ``<video_id>@full``
``category``        the threat class, when known
``video``           the video file (the rating sheets decode their thumbnails from it)
``window``          ``[start, end]`` seconds of the video the clip covers, or ``null`` (whole video)
``cause``           attribute lines: the cause in ``answer``, without "The threat is attributed to"
``reference_cause`` attribute lines: the reference cause(s), joined with ``"; "``
=================== ==========================================================================

``cause`` and ``reference_cause`` are what SB, ROUGE-L and BLEU-4 compare. A file written
by another system may leave out every optional field: the reader fills them in (``None``;
``""`` for ``reference``; the causes from ``answer`` and ``reference``), so every reader
sees the same keys.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from uprm.evaluation.errors import EvaluationError
from uprm.prompts import strip_cause

__all__ = ["ANSWERS_FILE", "FIELDS", "REQUIRED", "answer_line", "attribute_texts", "clip_name", "read_answers",
           "write_answers"]

ANSWERS_FILE = "answers.jsonl"
#: every line's fields, in the order they are written
FIELDS = ("id", "video_id", "clip", "task", "category", "video", "window", "question", "answer", "reference")
#: the fields a line cannot do without
REQUIRED = ("id", "task", "question", "answer")
#: the attribute lines' extra fields
ATTRIBUTE_FIELDS = ("cause", "reference_cause")
_TEXT_FIELDS = ("task", "question", "answer", "reference", "cause", "reference_cause")
_NAME_FIELDS = ("video_id", "clip", "category", "video")


def clip_name(video_id: str, window: Sequence[float] | None) -> str:
    """A clip's name in the ``clip`` field: ``<video_id>@<start>-<end>`` (3 decimals) or
    ``<video_id>@full`` — the ids ``uprm eval`` gives its clips."""
    return f"{video_id}@full" if window is None else f"{video_id}@{float(window[0]):.3f}-{float(window[1]):.3f}"


def answer_line(*, id: str, task: str, question: str, answer: str, reference: str = "", video_id: str | None = None,
                clip: str | None = None, category: str | None = None, video: str | os.PathLike | None = None,
                window: Sequence[float] | None = None, cause: str | None = None,
                reference_cause: str | None = None) -> dict[str, Any]:
    """One line of ``answers.jsonl`` (see the module doc). An attribute line's ``cause``
    and ``reference_cause`` default to the causes in ``answer`` and ``reference``."""
    line = {"id": id, "video_id": video_id, "clip": clip, "task": task, "category": category,
            "video": None if video is None else str(video), "window": None if window is None else list(window),
            "question": question, "answer": answer, "reference": reference}
    if task == "attribute":
        line["cause"], line["reference_cause"] = cause, reference_cause
    return _normalise(line, "answer_line")


def _window(value: Any, where: str) -> list[float] | None:
    if value is None:
        return None
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok or value[0] > value[1]:
        raise EvaluationError(f"{where}: 'window' must be [start, end] in seconds (start <= end) or null, got {value!r}")
    return [float(value[0]), float(value[1])]


def _check_fields(item: Mapping[str, Any], where: str) -> None:
    missing = [k for k in REQUIRED if item.get(k) is None]
    if missing:
        raise EvaluationError(f"{where}: an answers line needs {missing} (the answers.jsonl layout: "
                              f"{', '.join(FIELDS)}; docs/formats.md)")
    if not isinstance(item["id"], (str, int)) or isinstance(item["id"], bool):
        raise EvaluationError(f"{where}: 'id' must be a string, got {item['id']!r}")
    for key in (*_TEXT_FIELDS, *_NAME_FIELDS):
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise EvaluationError(f"{where}: {key!r} must be a string, got {value!r}")


def _normalise(item: Any, where: str) -> dict[str, Any]:
    """``item`` checked and completed to the layout: every field present, in order."""
    if not isinstance(item, Mapping):
        raise EvaluationError(f"{where}: an answers line is a JSON object, got {type(item).__name__}")
    _check_fields(item, where)
    line: dict[str, Any] = {k: item.get(k) for k in FIELDS}
    line["id"] = str(line["id"])
    line["reference"] = line["reference"] or ""
    line["window"] = _window(line["window"], where)
    if line["task"] == "attribute":
        cause, ref = item.get("cause"), item.get("reference_cause")
        line["cause"] = strip_cause(line["answer"]) if cause is None else cause
        line["reference_cause"] = strip_cause(line["reference"]) if ref is None else ref
    line.update({k: v for k, v in item.items() if k not in line})  # a system's own extra fields ride along
    return line


def write_answers(path: str | os.PathLike, lines: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``lines`` as ``path`` (atomically), each checked and completed as
    :func:`read_answers` reads it, so no writer makes a file the readers refuse."""
    from uprm.utils import atomic_write_text

    path = Path(path)
    checked = [_normalise(x, f"{path}: line {n}") for n, x in enumerate(lines, start=1)]
    atomic_write_text(path, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in checked))
    return path


def read_answers(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The lines of an ``answers.jsonl``, each completed to the layout (module doc).

    Raises:
        EvaluationError: naming the file (and line): unreadable, not UTF-8, a line that
            is not a JSON object, lacks ``id``/``task``/``question``/``answer`` or has a
            field of the wrong type. Blank lines are skipped.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EvaluationError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read the answers file ({exc})") from None
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
        out.append(_normalise(item, f"{path}:{number}"))
    return out


def attribute_texts(lines: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(cause, reference_cause)`` of each attribute line: what SB, ROUGE-L and BLEU-4 compare."""
    return [(str(x["cause"]), str(x["reference_cause"])) for x in lines if x.get("task") == "attribute"]
