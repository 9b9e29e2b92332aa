"""``scripts/system-packages.sh``, what ``make test`` and ``.ci/run`` run first: chromium,
chromium-driver and ffmpeg installed with apt-get when absent and allowed (root, or
``sudo -n``), else a stop at once with the one install command; and the Makefile's
``test`` target running it before the environment is built, with the stamp that rebuilds
``.venv`` when a ``pyproject.toml`` changes.

The script runs with a PATH holding only fakes: ``apt-get`` and ``sudo`` that record
their arguments (apt-get "installs" by creating the tools), ``id`` answering ``-u`` with
the uid under test, and the real ``env``. The Makefile is read with ``make -n`` in a
copy of the tree, so nothing is installed or built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "system-packages.sh"
ALL = "chromium chromium-driver ffmpeg rtsp-server-perl postgresql"
TOOL = {"chromium": "chromium", "chromium-driver": "chromedriver", "ffmpeg": "ffmpeg",
        "rtsp-server-perl": "rtsp-server-perl", "postgresql": "initdb"}


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def fake_bin(tmp: Path, *, uid: int | None = 1000, sudo: str | None = None, apt: str | None = "ok",
             present: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A folder for PATH and the log the fakes append to. ``sudo``: None (absent), "ok"
    (``sudo -n true`` succeeds) or "denied"; ``apt``: None (absent), "ok" or "fails";
    ``present``: tools already installed; ``uid``: what ``id -u`` prints (None: the real id)."""
    bin_dir, log = tmp / "bin", tmp / "calls.log"
    bin_dir.mkdir()
    log.write_text("")
    (bin_dir / "env").symlink_to(shutil.which("env"))
    for tool in present:
        _write(bin_dir / tool, "#!/bin/sh\n")
    if uid is None:
        (bin_dir / "id").symlink_to(shutil.which("id"))
    else:
        _write(bin_dir / "id", f'#!/bin/sh\n[ "$1" = -u ] && echo {uid}\n')
    if sudo is not None:
        _write(bin_dir / "sudo", f'#!/bin/sh\necho "sudo $*" >> {log}\n'
                                 f'if [ "$1" = -n ]; then exit {0 if sudo == "ok" else 1}; fi\nexec "$@"\n')
    if apt is not None:
        creates = "".join(f'    *" {pkg} "*) printf "#!/bin/sh\\n" > {bin_dir}/{tool}; /bin/chmod +x {bin_dir}/{tool};;\n'
                          for pkg, tool in TOOL.items())
        loop = f'for p in "$@"; do case " $p " in\n{creates}esac; done\n'
        _write(bin_dir / "apt-get", f'#!/bin/sh\necho "apt-get $* [DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}}]" >> {log}\n'
                                    f'[ "$1" = install ] || exit 0\n'
                                    + ("exit 100\n" if apt == "fails" else loop))
    return bin_dir, log


def run(bin_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """The script with only the fakes on PATH and an empty folder for Debian's PostgreSQL
    programs (the machine's own /usr/lib/postgresql must not count)."""
    pg_lib = bin_dir.parent / "pg_lib"
    pg_lib.mkdir(exist_ok=True)
    return subprocess.run(["/bin/sh", str(SCRIPT)], env={"PATH": str(bin_dir), "UPRM_PG_LIB": str(pg_lib), **env},
                          capture_output=True, text=True, timeout=60)


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines()


def test_nothing_to_do_when_the_tools_are_there(tmp_path):
    bin_dir, log = fake_bin(tmp_path, uid=0, present=tuple(TOOL.values()))
    result = run(bin_dir)
    assert result.returncode == 0 and result.stdout == result.stderr == ""
    assert calls(log) == []


def test_as_root_apt_get_installs_what_is_missing(tmp_path):
    bin_dir, log = fake_bin(tmp_path, uid=0, sudo="ok")
    result = run(bin_dir)
    assert result.returncode == 0, result.stderr
    assert calls(log) == ["apt-get update -qq [DEBIAN_FRONTEND=]",
                          f"apt-get install -y -qq --no-install-recommends {ALL} [DEBIAN_FRONTEND=noninteractive]"]
    assert f"installing system packages: {ALL}" in result.stdout
    assert all((bin_dir / t).is_file() for t in TOOL.values())


def test_a_user_with_passwordless_sudo_installs_through_sudo_only_what_is_missing(tmp_path):
    bin_dir, log = fake_bin(tmp_path, uid=1000, sudo="ok", present=("chromium", "chromedriver", "rtsp-server-perl", "initdb"))
    result = run(bin_dir)
    assert result.returncode == 0, result.stderr
    assert calls(log) == ["sudo -n true", "sudo apt-get update -qq", "apt-get update -qq [DEBIAN_FRONTEND=]",
                          "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                          "ffmpeg",
                          "apt-get install -y -qq --no-install-recommends ffmpeg [DEBIAN_FRONTEND=noninteractive]"]


@pytest.mark.parametrize("sudo", [None, "denied"])
def test_a_user_without_sudo_stops_at_once_with_the_install_line(tmp_path, sudo):
    bin_dir, log = fake_bin(tmp_path, uid=1000, sudo=sudo)
    result = run(bin_dir)
    assert result.returncode == 1
    assert f"  sudo apt-get install -y {ALL}\n" in result.stderr
    assert "never skip" in result.stderr
    assert calls(log) == ([] if sudo is None else ["sudo -n true"])  # apt-get never ran


def test_a_real_non_root_user_stops_with_the_install_line(tmp_path):
    """The real ``id`` (no fake): as nobody through setpriv when the tests run as root,
    else as the user running them."""
    folder = Path(tempfile.mkdtemp(prefix="uprm-sys-"))
    try:
        folder.chmod(0o755)
        script = folder / "system-packages.sh"
        shutil.copy(SCRIPT, script)
        script.chmod(0o755)
        bin_dir, log = fake_bin(folder, uid=None, sudo="denied", present=("chromium", "chromedriver", "rtsp-server-perl", "initdb"))
        log.chmod(0o666)
        prefix = ([shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]
                  if os.geteuid() == 0 else [])
        if os.geteuid() == 0 and prefix[0] is None:
            pytest.fail("running as root needs setpriv (util-linux) to try a non-root user")
        result = subprocess.run([*prefix, "/bin/sh", str(script)], env={"PATH": str(bin_dir), "UPRM_PG_LIB": str(folder)},
                                capture_output=True,
                                text=True, timeout=60, cwd=folder)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "  sudo apt-get install -y ffmpeg\n" in result.stderr
        assert calls(log) == ["sudo -n true"]
    finally:
        shutil.rmtree(folder)


def test_postgresql_off_path_in_debians_folder_counts_as_installed(tmp_path):
    """Debian installs initdb as /usr/lib/postgresql/<version>/bin/initdb, not on PATH."""
    bin_dir, log = fake_bin(tmp_path, uid=0, present=("chromium", "chromedriver", "ffmpeg", "rtsp-server-perl"))
    missing = run(bin_dir)
    assert calls(log)[-1].endswith("--no-install-recommends postgresql [DEBIAN_FRONTEND=noninteractive]")
    log.write_text("")
    (bin_dir / "initdb").unlink()
    server = tmp_path / "pg_lib" / "15" / "bin"
    server.mkdir(parents=True)
    _write(server / "initdb", "#!/bin/sh\n")
    found = run(bin_dir)
    assert missing.returncode == found.returncode == 0 and calls(log) == []


def test_there_is_no_opt_out_the_missing_packages_are_installed(tmp_path):
    """The old UPRM_SKIP_SYSTEM_TESTS=1 no longer skips anything: the packages are installed."""
    bin_dir, log = fake_bin(tmp_path, uid=0)
    result = run(bin_dir, UPRM_SKIP_SYSTEM_TESTS="1")
    assert result.returncode == 0, result.stderr
    assert calls(log)[-1].startswith(f"apt-get install -y -qq --no-install-recommends {ALL}")


def test_a_failing_apt_get_fails_the_script(tmp_path):
    bin_dir, log = fake_bin(tmp_path, uid=0, apt="fails")
    result = run(bin_dir)
    assert result.returncode == 100
    assert len(calls(log)) == 2


def test_without_apt_get_it_says_to_use_the_systems_package_manager(tmp_path):
    bin_dir, log = fake_bin(tmp_path, uid=0, apt=None)
    result = run(bin_dir)
    assert result.returncode == 1 and "no apt-get" in result.stderr
    assert calls(log) == []


def test_the_script_is_executable_and_ci_runs_it():
    assert os.access(SCRIPT, os.X_OK)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/system-packages.sh" in ci and "apt-get" not in ci


# --------------------------------------------------------------------------- the Makefile
@pytest.fixture
def tree(tmp_path):
    """A copy of what the Makefile reads: itself, the pyproject files, a built .venv's
    python and stamp (older than nothing yet)."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for pyproject in [ROOT / "pyproject.toml", *ROOT.glob("packages/*/pyproject.toml")]:
        target = tmp_path / pyproject.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pyproject, target)
    return tmp_path


def make_n(tree: Path, target: str) -> list[str]:
    result = subprocess.run(["make", "-n", "-C", str(tree), target], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if not line.startswith("make")]


def _built(tree: Path, stamp_time: float) -> None:
    (tree / ".venv" / "bin").mkdir(parents=True)
    _write(tree / ".venv" / "bin" / "python", "#!/bin/sh\n")
    (tree / ".venv" / ".uprm-installed").touch()
    for path in [tree / "pyproject.toml", *tree.glob("packages/*/pyproject.toml")]:
        os.utime(path, (stamp_time - 100, stamp_time - 100))
    os.utime(tree / ".venv" / ".uprm-installed", (stamp_time, stamp_time))


def test_make_test_checks_the_system_packages_before_building_the_environment(tree):
    lines = make_n(tree, "test")  # no .venv: everything is built
    script = lines.index("scripts/system-packages.sh")
    build = next(i for i, line in enumerate(lines) if " -m venv " in line)
    tests = next(i for i, line in enumerate(lines) if " -m pytest" in line)
    assert script < build < tests
    assert all("system-packages" not in line for line in make_n(tree, "demo"))  # the demo needs none of them


def test_the_stamp_rebuilds_the_environment_when_a_pyproject_changes(tree):
    _built(tree, stamp_time=1_000_000)
    assert not any("pip install" in line for line in make_n(tree, "test"))  # built and up to date
    core = tree / "packages" / "uprm-core" / "pyproject.toml"
    os.utime(core, (1_000_100, 1_000_100))  # e.g. the core's dependencies changed
    lines = make_n(tree, "test")
    assert any('-e "packages/uprm-core[all]"' in line for line in lines)
    assert lines[-2:] == ["touch .venv/.uprm-installed", ".venv/bin/python -m pytest -n 2 --dist loadfile"]
