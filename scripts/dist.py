"""Build the releasable distributions: an sdist and a wheel of each package, checked.

    python scripts/dist.py --out dist packages/uprm-core packages/uprm-expert-pose ...

(``make dist`` runs it on every distribution of the repository.) For each package:

1. the versions agree (``scripts/version.py check``);
2. ``python -m build --no-isolation``: the sdist, then the wheel built *from the sdist*,
   so an sdist that is not self-contained fails here; no network (the build backend,
   hatchling, comes from this environment);
3. ``twine check --strict`` on every file (metadata and the README as PyPI renders it);
4. each wheel carries its license, its README as the long description, its entry points
   and the ``py.typed`` marker of its import package.

Exits non-zero, naming the file and what is missing, when any step fails.
"""

from __future__ import annotations

import argparse
import email.parser
import re
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import version as versions  # scripts/version.py, beside this file


def normalized(name: str) -> str:
    """The file-name form of a distribution name: ``uprm-core`` → ``uprm_core``."""
    return re.sub(r"[-_.]+", "_", name).lower()


def project_name(package: Path) -> str:
    match = re.search(r'^name\s*=\s*"([^"]+)"', (package / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    if match is None:
        raise SystemExit(f"{package}/pyproject.toml: no project name")
    return match.group(1)


def build(package: Path, out: Path) -> tuple[Path, Path]:
    """The sdist and the wheel of ``package`` in ``out`` (older builds of it removed first)."""
    stem = normalized(project_name(package))
    for old in out.glob(f"{stem}-*"):
        old.unlink()
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(package)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"building {package} failed:\n{result.stdout}\n{result.stderr}")
    sdists, wheels = sorted(out.glob(f"{stem}-*.tar.gz")), sorted(out.glob(f"{stem}-*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise SystemExit(f"building {package} gave {sdists + wheels}, not one sdist and one wheel")
    return sdists[0], wheels[0]


def wheel_problems(wheel: Path) -> list[str]:
    """What a wheel lacks of: license, README long description, entry points, ``py.typed``."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(f"{info}/METADATA").decode())
        entry_points = zf.read(f"{info}/entry_points.txt").decode() if f"{info}/entry_points.txt" in names else ""
    problems = []
    if f"{info}/licenses/LICENSE" not in names:
        problems.append("no LICENSE in .dist-info/licenses/")
    if meta.get("License-Expression") != "Apache-2.0":
        problems.append(f"License-Expression is {meta.get('License-Expression')!r}")
    if meta.get("Description-Content-Type") != "text/markdown" or len(meta.get_payload() or "") < 200:
        problems.append("no README as the Markdown long description")
    if "[uprm]" not in entry_points and "[console_scripts]" not in entry_points:
        problems.append("no entry points ([uprm] plugin or the uprm script)")
    packages = {n.split("/")[0] for n in names if "/" in n and ".dist-info" not in n.split("/")[0]}
    if not packages or any(f"{p}/py.typed" not in names for p in packages):
        problems.append(f"no py.typed in {sorted(packages)}")
    return [f"{wheel.name}: {p}" for p in problems]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("dist"))
    parser.add_argument("packages", nargs="+", type=Path)
    args = parser.parse_args(argv)

    version = versions.read_version()
    mismatches = versions.problems(version)
    if mismatches:
        print("\n".join(mismatches), file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    built = [build(package, args.out) for package in args.packages]
    files = [str(f) for pair in built for f in pair]
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True, text=True)
    if check.returncode != 0:
        print(check.stdout + check.stderr, file=sys.stderr)
        return 1
    problems = [p for _, wheel in built for p in wheel_problems(wheel)]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    for sdist, wheel in built:
        print(f"{sdist.name:40s} {sdist.stat().st_size // 1024:6d} KiB   {wheel.name:48s} {wheel.stat().st_size // 1024:6d} KiB")
    print(f"uprm {version}: {len(built)} distributions in {args.out}/ (twine check passed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
