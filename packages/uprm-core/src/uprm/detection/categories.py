"""A threat's category and severity from its cause, by the site taxonomy's cause phrasings.

The model answers *whether* there is a threat, *when* and *why* (the cause); it names no
category. A taxonomy (:mod:`uprm.taxonomy`) gives each category a few cause phrasings,
the words the attribute answers of its training data use (``build_instructions(...,
taxonomy=)`` writes them where the labels give no cause). So a category is **known** when
the cause contains a cause phrasing of exactly one category: compared as words, ignoring
case and punctuation (``"A person climbing over the fence at night."`` contains ``"a
person climbing over the fence"``). A phrasing found inside a longer phrasing that also
matched counts as that longer one. No phrasing, or phrasings of two categories, leave the
category unknown (``None``): detection then writes no category and no severity rather
than guess.

Plain Python over :mod:`uprm.taxonomy` (no torch): ``uprm detect`` labels its segments
with it and ``uprm watch`` its alerts.
"""

from __future__ import annotations

import functools
import re

from uprm.taxonomy import Category, Taxonomy

__all__ = ["category_of_cause", "severity_fields"]


def _words(text: str) -> str:
    """Lower-case words separated by one space, with a space at each end (so that
    ``" a b " in " x a b y "`` is a match of whole words)."""
    return " " + " ".join(re.findall(r"[^\W_]+", text.casefold())) + " "


@functools.lru_cache(maxsize=8)
def _phrasings(taxonomy: Taxonomy) -> tuple[tuple[str, Category], ...]:
    """``(words of a cause phrasing, its category)`` of every threat category, longest first."""
    found = [(_words(cause), cat) for cat in taxonomy if cat.is_threat for cause in cat.causes]
    return tuple(sorted((p for p in found if p[0].strip()), key=lambda p: -len(p[0])))


def category_of_cause(cause: str, taxonomy: Taxonomy) -> Category | None:
    """The category whose cause phrasing ``cause`` contains (module doc), else ``None``."""
    if not cause or not cause.strip():
        return None
    text = _words(cause)
    matched: list[tuple[str, Category]] = []
    for phrase, category in _phrasings(taxonomy):  # longest first: a shorter one inside a match is that match
        if phrase in text and not any(phrase in longer for longer, _ in matched):
            matched.append((phrase, category))
    names = {category.name for _, category in matched}
    return matched[0][1] if len(names) == 1 else None


def severity_fields(cause: str, taxonomy: Taxonomy) -> dict[str, str]:
    """``{"category", "severity"}`` of the category ``cause`` names, or ``{}`` when no
    category is known (what a detected segment records)."""
    category = category_of_cause(cause, taxonomy)
    return {} if category is None else {"category": category.name, "severity": category.severity}
