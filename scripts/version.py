"""The one version of UPRM's four distributions, kept in the file ``VERSION``.

Every distribution carries its version statically in its own ``pyproject.toml`` (so an
sdist stays self-contained and pip reads the version without building anything); this
script writes ``VERSION`` into every place that repeats it and checks that they agree:

- ``version`` of ``packages/*/pyproject.toml`` (uprm-core and the three expert plugins);
- each plugin's ``uprm-core`` range: at least the core it is released with, below the
  next minor release while the major version is 0 (the next major after that);
- each plugin's ``__version__`` literal in its ``__init__.py``;
- and, read only, the example third-party plugin's ``uprm-core`` range must admit it.

    python scripts/version.py            # check (the same as `check`); exit 1 on a mismatch
    python scripts/version.py show       # print the version
    python scripts/version.py set 0.2.0  # write VERSION and every place above, then check

Standard library only: it runs before any environment exists.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION_FILE = ROOT / "VERSION"
CORE = ROOT / "packages" / "uprm-core"
EXAMPLE = ROOT / "examples" / "custom_expert" / "pyproject.toml"

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)\d+)?$")
_PROJECT_VERSION = re.compile(r'^(version\s*=\s*")([^"]*)(")', re.MULTILINE)
_CORE_RANGE = re.compile(r'("uprm-core)([^"]*)(")')
_DUNDER_VERSION = re.compile(r'^(__version__\s*=\s*")([^"]*)(")', re.MULTILINE)


@dataclass(frozen=True)
class Place:
    """One place that repeats the version: a file, a pattern with three groups, what it must say."""

    path: Path
    pattern: re.Pattern[str]
    what: str

    def read(self) -> str | None:
        match = self.pattern.search(self.path.read_text(encoding="utf-8"))
        return match.group(2) if match else None

    def write(self, value: str) -> None:
        text = self.path.read_text(encoding="utf-8")
        new, count = self.pattern.subn(lambda m: m.group(1) + value + m.group(3), text, count=1)
        if count != 1:
            raise SystemExit(f"{self.path.relative_to(ROOT)}: no {self.what} to set")
        self.path.write_text(new, encoding="utf-8")


def parse(version: str) -> tuple[int, int, int]:
    """``"0.1.0"`` → ``(0, 1, 0)``; a release candidate keeps its numbers; anything else is refused."""
    match = _VERSION.match(version.strip())
    if not match:
        raise SystemExit(f"not a release version X.Y.Z[aN|bN|rcN]: {version!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def core_range(version: str) -> str:
    """The ``uprm-core`` range a plugin released with ``version`` declares: ``>=0.1.0,<0.2``."""
    major, minor, _ = parse(version)
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={version},<{upper}"


def plugins() -> list[Path]:
    """The expert plugin distributions of this repository (every packages/* but the core)."""
    return sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file() and p != CORE)


def places(version: str) -> list[tuple[Place, str]]:
    """Every place that repeats the version, with the text it must hold for ``version``."""
    found = [(Place(CORE / "pyproject.toml", _PROJECT_VERSION, "version"), version)]
    for plugin in plugins():
        found.append((Place(plugin / "pyproject.toml", _PROJECT_VERSION, "version"), version))
        found.append((Place(plugin / "pyproject.toml", _CORE_RANGE, "uprm-core range"), core_range(version)))
        for init in sorted((plugin / "src").glob("*/__init__.py")):
            found.append((Place(init, _DUNDER_VERSION, "__version__"), version))
    return found


def read_version() -> str:
    version = VERSION_FILE.read_text(encoding="utf-8").strip()
    parse(version)
    return version


def problems(version: str) -> list[str]:
    """What disagrees with ``version``, one line each (empty when all agree)."""
    out = []
    for place, expected in places(version):
        actual = place.read()
        if actual != expected:
            out.append(f"{place.path.relative_to(ROOT)}: {place.what} is {actual!r}, VERSION says {expected!r}")
    example = Place(EXAMPLE, _CORE_RANGE, "uprm-core range")
    if EXAMPLE.is_file() and not _admits(example.read() or "", version):
        out.append(f"{EXAMPLE.relative_to(ROOT)}: uprm-core{example.read()} does not admit {version}")
    return out


def _admits(spec: str, version: str) -> bool:
    """Whether a ``>=A,<B`` range admits ``version`` (plain numeric comparison, no packaging needed)."""
    key = parse(version)
    for part in filter(None, (s.strip() for s in spec.split(","))):
        match = re.match(r"(>=|<=|==|<|>)\s*(.+)", part)
        if match is None:
            return False
        op, bound = match.groups()
        numbers = tuple(int(n) for n in bound.split(".")) + (0,) * (3 - bound.count(".") - 1)
        ok = {">=": key >= numbers, "<=": key <= numbers, "==": key == numbers, "<": key < numbers, ">": key > numbers}
        if not ok[op]:
            return False
    return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "show":
        print(read_version())
        return 0
    if command == "set" and len(argv) == 2:
        version = argv[1].strip()
        parse(version)
        VERSION_FILE.write_text(version + "\n", encoding="utf-8")
        for place, expected in places(version):
            place.write(expected)
        print(f"set {version} in VERSION and {len(places(version))} places; add a CHANGELOG.md entry")
    elif command != "check":
        print(__doc__, file=sys.stderr)
        return 2
    version = read_version()
    found = problems(version)
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(f"uprm {version}: {len(places(version))} places agree")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
