"""A site's threat taxonomy: its categories, each with a description, a severity and a
few cause phrasings, read from a YAML file (``--taxonomy FILE``; docs/formats.md).

Every site differs in the threats it cares about. A taxonomy names them once, for the
label imports (a label not in it is an error), the instruction builders, the
per-category tables and the alerts (a category's severity)::

    name: warehouse                 # optional
    categories:
      - name: Trespassing
        description: Someone climbs over the fence into the yard.
        severity: high              # none (Normal only) < low < medium < high < critical
        causes:
          - a person climbing over the fence
        aliases: [Intrusion]        # optional: other names the labelling tools use
      - name: Normal
        description: Nothing threatening happens.
        severity: none

The file may also be the list of categories alone. Fields: ``name``, ``description``,
``severity`` (required), ``causes`` (required, non-empty, for every category but
``Normal``), ``aliases`` (optional). ``Normal`` is added (severity ``none``, last) when
the file leaves it out. A label matches a category when it equals its name or an alias
**ignoring case, spaces, hyphens and underscores** (``road accidents`` is
``RoadAccidents``), so two categories whose names match each other that way are a
repetition.

:func:`load_taxonomy` with no file gives the default: UCF-Crime's 13 categories and
Normal (``uprm/taxonomies/ucf_crime.yaml``). A file that names an unknown field,
repeats a category, misses a required field or gives a bad severity raises
:class:`TaxonomyError` naming the file and the line.

This module imports pydantic, PyYAML (when a file is read) and the error classes only.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from uprm.errors import AnnotationError, ConfigError

__all__ = [
    "DEFAULT_TAXONOMY",
    "NORMAL",
    "SEVERITIES",
    "Category",
    "Taxonomy",
    "TaxonomyError",
    "UnknownCategoryError",
    "load_taxonomy",
    "parse_taxonomy",
]

#: the category of time without a threat (``uprm.data.NORMAL``)
NORMAL = "Normal"

#: the severity scale, from the least to the most severe; ``none`` is Normal's only
SEVERITIES: tuple[str, ...] = ("none", "low", "medium", "high", "critical")

#: the packaged default taxonomy (UCF-Crime's 13 categories and Normal), a path inside uprm
DEFAULT_TAXONOMY = "uprm/taxonomies/ucf_crime.yaml"

Severity = Literal["none", "low", "medium", "high", "critical"]

_TOP_KEYS = ("name", "categories")


class TaxonomyError(AnnotationError, ConfigError):
    """A taxonomy file (or mapping) that cannot be used: an unknown field, a repeated
    category, a missing field, a bad severity... The message names the file, the line and
    the field (``site.yaml:12: categories[2].severity: ...``). Both an
    :class:`~uprm.errors.AnnotationError` (it defines the labels) and a
    :class:`~uprm.errors.ConfigError` (it is a ``--taxonomy`` setting)."""


class UnknownCategoryError(AnnotationError):
    """A label that is not a category of the taxonomy. The message names the label, where
    it was found (the file, task, track or field) and the categories there are.

    Attributes:
        label: the label as written.
        known: the taxonomy's category names.
        taxonomy: where the taxonomy came from (its file, or ``None``).
    """

    def __init__(self, label: str, known: Iterable[str], taxonomy: str | None = None, *,
                 path: str | os.PathLike | None = None, line: int | None = None, where: str | None = None):
        self.label = label
        self.known = tuple(known)
        self.taxonomy = taxonomy
        self.path = str(path) if path is not None else None
        self.line = line
        self.where = where
        source = f" ({taxonomy})" if taxonomy else ""
        self.problem = (f"label {label!r} is not a category of the taxonomy{source}; its categories are "
                        f"{', '.join(self.known)} (matched ignoring case, spaces, '-' and '_'); add the label "
                        "to the taxonomy, as a category or an alias, or fix it in the labels")
        place = self.path or ""
        place += f":{line}" if line is not None and place else ""
        if where:
            place = f"{place}: {where}" if place else where
        ValueError.__init__(self, f"{place}: {self.problem}" if place else self.problem)


def _key(name: str) -> str:
    """How names are compared: case-folded, without spaces, hyphens and underscores."""
    return re.sub(r"[\s_\-]+", "", name).casefold()


def _text(value: str, what: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


class Category(BaseModel):
    """One category of a taxonomy (immutable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    severity: Severity
    causes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @field_validator("name", "description")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        return _text(value, "the text")

    @field_validator("causes", "aliases")
    @classmethod
    def _phrases(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_text(v, "each entry") for v in values)

    @property
    def is_threat(self) -> bool:
        """Whether the category is a threat (every category but Normal)."""
        return _key(self.name) != _key(NORMAL)

    def rule_problem(self) -> tuple[str, str] | None:
        """``(field, problem)`` when the category breaks a rule across fields (Normal's
        severity is ``none`` and only Normal's; a threat has causes), else ``None``."""
        if not self.is_threat and self.severity != "none":
            return "severity", f"Normal's severity must be 'none', got {self.severity!r}"
        if self.is_threat and self.severity == "none":
            return "severity", f"'none' is Normal's severity; a threat is one of {', '.join(SEVERITIES[1:])}"
        if self.is_threat and not self.causes:
            return "causes", "a threat needs at least one cause phrasing"
        return None


_NORMAL_CATEGORY = Category(name=NORMAL, description="Nothing threatening happens.", severity="none")


class Taxonomy:
    """A site's categories, in order, Normal included (last when the source left it out).

    >>> tax = load_taxonomy()
    >>> tax.names[:3], tax.names[-1], len(tax.threats)
    (('Abuse', 'Arrest', 'Arson'), 'Normal', 13)
    >>> tax.check("road accidents"), tax.severity("Arson"), "fighting" in tax
    ('RoadAccidents', 'critical', True)
    """

    def __init__(self, categories: Iterable[Category], *, name: str | None = None, source: str | None = None):
        self.name = name
        self.source = source
        cats = list(categories)
        if not any(not c.is_threat for c in cats):
            cats.append(_NORMAL_CATEGORY)
        self._categories: tuple[Category, ...] = tuple(cats)
        self._index: dict[str, Category] = {}
        for i, cat in enumerate(cats):
            problem = cat.rule_problem()
            if problem is not None:
                raise TaxonomyError(source or "<taxonomy>", problem[1], where=f"categories[{i}].{problem[0]}")
            for label in (cat.name, *cat.aliases):
                other = self._index.get(_key(label))
                if other is not None:
                    raise TaxonomyError(source or "<taxonomy>", _repeat_problem(label, other), where=f"categories[{i}]")
                self._index[_key(label)] = cat

    # -- reading -------------------------------------------------------------------------
    @property
    def categories(self) -> tuple[Category, ...]:
        return self._categories

    @property
    def names(self) -> tuple[str, ...]:
        """Every category's name, in order, Normal included."""
        return tuple(c.name for c in self._categories)

    @property
    def threats(self) -> tuple[str, ...]:
        """The threat categories' names, in order (Normal left out)."""
        return tuple(c.name for c in self._categories if c.is_threat)

    def get(self, label: str) -> Category | None:
        """The category ``label`` names (its name or an alias, compared ignoring case,
        spaces, hyphens and underscores), else ``None``."""
        return self._index.get(_key(label)) if isinstance(label, str) else None

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and self.get(label) is not None

    def __iter__(self) -> Iterator[Category]:
        return iter(self._categories)

    def __len__(self) -> int:
        return len(self._categories)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taxonomy) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self._categories))

    def __repr__(self) -> str:
        return f"Taxonomy({self.name or self.source or 'unnamed'!r}: {', '.join(self.names)})"

    def check(self, label: str, where: str | None = None, *, path: str | os.PathLike | None = None,
              line: int | None = None) -> str:
        """The canonical name of the category ``label`` names; raises
        :class:`UnknownCategoryError` naming the label, ``path``:``line`` and ``where``
        (e.g. ``"task 7, result 'a1'"``) when it names none."""
        category = self.get(label)
        if category is None:
            raise UnknownCategoryError(str(label), self.names, self.source, path=path, line=line, where=where)
        return category.name

    def category(self, label: str) -> Category:
        """The category ``label`` names; :class:`UnknownCategoryError` if none."""
        return self._index[_key(self.check(label))]

    def severity(self, label: str) -> str:
        """The category's severity, one of :data:`SEVERITIES`."""
        return self.category(label).severity

    def causes(self, label: str) -> tuple[str, ...]:
        """The category's cause phrasings (empty for Normal unless the file gives some)."""
        return self.category(label).causes

    def is_threat(self, label: str) -> bool:
        """Whether ``label`` names a threat category (not Normal)."""
        return self.category(label).is_threat

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "categories": [{name, description, severity, causes, aliases}]}``,
        JSON-safe; :meth:`from_dict` reads it back."""
        return {"name": self.name, "categories": [c.model_dump(mode="json") for c in self._categories]}

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> Taxonomy:
        """A taxonomy from a mapping (``{"name", "categories"}``) or a list of categories,
        checked as a file is (without line numbers)."""
        return _build(data, source or "<taxonomy>", _NoLines())


def _repeat_problem(label: str, other: Category) -> str:
    same = "" if label == other.name else f" (it matches {other.name!r} ignoring case, spaces, '-' and '_')"
    return f"category {label!r} is given twice{same}"


# --------------------------------------------------------------------------- reading files
class _NoLines:
    """Line lookups of a source without lines (a mapping built by a program)."""

    def top(self, key: str) -> int | None:
        return None

    def item(self, index: int, field: str | None = None) -> int | None:
        return None


class _NodeLines(_NoLines):
    """The line (from 1) of each top-level key, each category and each of its fields,
    taken from the YAML nodes' start marks."""

    def __init__(self, root: Any, path: str) -> None:
        import yaml

        self._top: dict[str, int] = {}
        items: Any = root
        if isinstance(root, yaml.MappingNode):
            self._top = _keys_lines(root, path, "")
            items = next((v for k, v in root.value if k.value == "categories"), None)
        self._items: list[tuple[int, dict[str, int]]] = []
        if isinstance(items, yaml.SequenceNode):
            for i, node in enumerate(items.value):
                fields = _keys_lines(node, path, f"categories[{i}].") if isinstance(node, yaml.MappingNode) else {}
                self._items.append((node.start_mark.line + 1, fields))

    def top(self, key: str) -> int | None:
        return self._top.get(key)

    def item(self, index: int, field: str | None = None) -> int | None:
        if index >= len(self._items):
            return None
        start, fields = self._items[index]
        return fields.get(field, start) if field is not None else start


def _keys_lines(node: Any, path: str, prefix: str) -> dict[str, int]:
    """``{key: line}`` of a mapping node; a key given twice is an error (YAML would keep
    the last one silently)."""
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key in lines:
            raise TaxonomyError(path, f"{key!r} is given twice (first on line {lines[key]})", line=line,
                                where=f"{prefix}{key}")
        lines[key] = line
    return lines


def _read_yaml(text: str, path: str) -> tuple[Any, _NodeLines]:
    try:
        import yaml
    except ImportError:  # a dependency of uprm-core; only a broken install lacks it
        raise TaxonomyError(path, "reading a taxonomy needs PyYAML: pip install pyyaml") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise TaxonomyError(path, f"not valid YAML ({getattr(exc, 'problem', None) or exc})", line=line) from None
    return data, _NodeLines(root, path)


def _build(data: Any, path: str, lines: _NoLines) -> Taxonomy:
    """Check the layout, validate each category with pydantic, then the whole (repeats)."""
    name: Any = None
    items = data
    if isinstance(data, Mapping):
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            key = str(unknown[0])
            raise TaxonomyError(path, f"unknown field (a taxonomy has {', '.join(_TOP_KEYS)})", line=lines.top(key),
                                where=key)
        if "categories" not in data:
            raise TaxonomyError(path, "missing field 'categories' (the list of categories)", line=1)
        name, items = data.get("name"), data["categories"]
        if name is not None and not isinstance(name, str):
            raise TaxonomyError(path, f"must be a string, got {name!r}", line=lines.top("name"), where="name")
    if not isinstance(items, list) or not items:
        got = "nothing" if items is None else type(items).__name__
        raise TaxonomyError(path, f"expected a non-empty list of categories (or a mapping with 'categories'), got {got}",
                            line=lines.top("categories") or 1)
    categories = [_category(item, i, path, lines) for i, item in enumerate(items)]
    _check_repeats(categories, path, lines)
    try:
        return Taxonomy(categories, name=name, source=path)
    except TaxonomyError as exc:  # a rule across fields: name the line of the field
        index, _, field = (exc.where or "").removeprefix("categories[").partition("].")
        raise TaxonomyError(path, exc.problem, line=lines.item(int(index), field or None) if index.isdigit() else None,
                            where=exc.where) from None


def _category(item: Any, index: int, path: str, lines: _NoLines) -> Category:
    where = f"categories[{index}]"
    if not isinstance(item, Mapping):
        raise TaxonomyError(path, f"a category is a mapping with name, description, severity and causes, got {item!r}",
                            line=lines.item(index), where=where)
    try:
        return Category(**{str(k): v for k, v in item.items()})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = str(err["loc"][0]) if err.get("loc") else None
        _raise_field_error(err, field, index, path, lines, item)


def _raise_field_error(err: Mapping[str, Any], field: str | None, index: int, path: str, lines: _NoLines,
                       item: Mapping[str, Any]) -> NoReturn:
    where = f"categories[{index}]" + (f".{field}" if field else "")
    kind = err.get("type")
    label = f" {item.get('name')!r}" if isinstance(item.get("name"), str) else ""
    if kind == "extra_forbidden":
        problem = f"unknown field in category{label} (fields: {', '.join(Category.model_fields)})"
    elif kind == "missing":
        problem = f"category{label} misses the required field {field!r}"
        field = None  # the category's own line
    else:
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problem = f"{msg} (got {err['input']!r})" if "input" in err and kind != "value_error" else msg
    raise TaxonomyError(path, problem, line=lines.item(index, field), where=where)


def _check_repeats(categories: list[Category], path: str, lines: _NoLines) -> None:
    seen: dict[str, tuple[Category, int]] = {}
    for i, cat in enumerate(categories):
        for label in (cat.name, *cat.aliases):
            if _key(label) in seen:
                other, j = seen[_key(label)]
                first = lines.item(j)
                also = f" (first in categories[{j}]" + (f", line {first})" if first else ")")
                raise TaxonomyError(path, _repeat_problem(label, other) + also, line=lines.item(i),
                                    where=f"categories[{i}]")
            seen[_key(label)] = (cat, i)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TaxonomyError(path, "no such file") from None
    except IsADirectoryError:
        raise TaxonomyError(path, "is a folder, not a taxonomy file") from None
    except UnicodeDecodeError as exc:
        line = bytes(exc.object[:exc.start]).count(b"\n") + 1
        raise TaxonomyError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", line=line) from None
    except OSError as exc:
        raise TaxonomyError(path, f"cannot read it ({exc.strerror or exc})") from None


def parse_taxonomy(text: str, source: str = "<taxonomy>") -> Taxonomy:
    """A taxonomy from YAML text; errors name ``source`` and the line."""
    data, lines = _read_yaml(text, source)
    return _build(data, source, lines)


@functools.lru_cache(maxsize=1)
def _default() -> Taxonomy:
    text = resources.files("uprm").joinpath("taxonomies/ucf_crime.yaml").read_text(encoding="utf-8")
    return parse_taxonomy(text, DEFAULT_TAXONOMY)


def load_taxonomy(path: str | os.PathLike | Taxonomy | None = None) -> Taxonomy:
    """The taxonomy in the YAML file ``path`` (module doc), or the default (UCF-Crime's 13
    categories and Normal) when ``path`` is ``None``; a :class:`Taxonomy` is returned as is.

    Raises:
        TaxonomyError: the file is missing or not YAML, names an unknown field, repeats a
            category, misses a required field or has a bad severity; the message names the
            file and the line.
    """
    if isinstance(path, Taxonomy):
        return path
    if path is None:
        return _default()
    file = Path(path)
    return parse_taxonomy(_read_text(file), str(file))
