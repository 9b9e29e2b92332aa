"""Security (issue 16, item 4).

- An AST scan of every ``.py`` under ``packages/*/src`` and ``examples/`` (and the
  scripts in ``benchmarks/``, ``scripts/``, ``docs/scripts/``) for code that
  can run what a file or a user supplies: ``pickle``/``dill``/``joblib``/``marshal``
  loads, a ``pickle.Unpickler`` subclass, ``shelve``, ``torch.load`` without
  ``weights_only=True``, the ``eval``/``exec`` builtins, ``subprocess`` with
  ``shell=True`` (and the helpers that always use a shell), ``os.system``/``os.popen``,
  ``yaml.load`` without a safe loader (``yaml.safe_load`` is the way). Imports are
  followed (``import pickle as p``, ``from yaml import load``), so an alias cannot hide a
  call, and comments and strings cannot fool it. Whatever must stay is in
  :data:`ALLOWED` with its reason; a planted snippet of each pattern proves the scanner
  catches it.
- ultralytics stays in safe-load mode: the shared loader refuses a checkpoint that would
  run code even with ``ULTRALYTICS_SAFE_LOAD=0``, and offline ultralytics is off the
  network (no events, no settings banner on a first run).
- ``uprm serve`` with ``UPRM_OFFLINE=1``, API process and worker, opens no network socket
  (``tests/socket_guard.py`` as ``sitecustomize``, loopback allowed: it is a local
  server). The other main commands run under the same guard in
  ``tests/robustness/test_console.py`` (one run of each command checks both its console
  and its sockets); ``tests/test_offline.py`` covers extract, a training step and detect
  in one interpreter.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "tests" / "socket_guard.py"

#: (file relative to the repository, pattern) → why it stays
ALLOWED: dict[tuple[str, str], str] = {
    ("packages/uprm-core/src/uprm/data/pretune.py", "pickle.Unpickler"):
        "RefCOCO ships its refs as a pickle; _RestrictedUnpickler.find_class builds only plain containers and "
        "primitives and refuses every other global (and persistent ids) before it is called",
}


# -- the scanner ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    pattern: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.pattern}: {self.detail}"


_ALWAYS = {  # qualified call → pattern
    **{f"{m}.{f}": "pickle.load" for m in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
       for f in ("load", "loads")},
    "joblib.load": "pickle.load", "marshal.load": "marshal.loads", "marshal.loads": "marshal.loads",
    "shelve.open": "shelve", "os.system": "os.system", "os.popen": "os.system",
    "subprocess.getoutput": "shell=True", "subprocess.getstatusoutput": "shell=True",
    "builtins.eval": "eval", "builtins.exec": "eval", "yaml.unsafe_load": "yaml.load", "yaml.full_load": "yaml.load",
    "yaml.unsafe_load_all": "yaml.load", "yaml.full_load_all": "yaml.load",
    "numpy.load": None,  # checked below: allow_pickle=True only
}
_SUBPROCESS = {"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
               "subprocess.Popen", "asyncio.create_subprocess_shell"}
_SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"}
_UNPICKLERS = {"pickle.Unpickler", "_pickle.Unpickler", "dill.Unpickler"}


class _Scanner(ast.NodeVisitor):
    """Finds the patterns in one module; names are resolved through its imports."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.names: dict[str, str] = {}
        self.findings: list[Finding] = []

    def add(self, node: ast.AST, pattern: str, detail: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), pattern, detail))

    # imports: local name → qualified name
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "shelve":
                self.add(node, "shelve", "imports shelve (pickle underneath)")
            self.names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module.split(".")[0] == "shelve":
            self.add(node, "shelve", "imports from shelve (pickle underneath)")
        for alias in node.names:
            self.names[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name

    def qualify(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            return f"builtins.{node.id}" if node.id in ("eval", "exec") else None
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            if self.qualify(base) in _UNPICKLERS:
                self.add(node, "pickle.Unpickler", f"class {node.name} unpickles")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualify(node.func)
        if name is not None:
            self.check_call(node, name)
        self.generic_visit(node)

    def check_call(self, node: ast.Call, name: str) -> None:
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if _ALWAYS.get(name):
            self.add(node, _ALWAYS[name], f"{name}(...)")
        elif name in ("torch.load", "torch.serialization.load"):
            if not _is_true(keywords.get("weights_only")):
                self.add(node, "torch.load", "torch.load without weights_only=True")
        elif name in _SUBPROCESS or name == "asyncio.create_subprocess_shell":
            if name.endswith("_shell") or ("shell" in keywords and not _is_false(keywords["shell"])):
                self.add(node, "shell=True", f"{name}(..., shell=...)")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
            if loader is None or self.qualify(loader) not in _SAFE_YAML_LOADERS:
                self.add(node, "yaml.load", f"{name} without Loader=yaml.SafeLoader (use yaml.safe_load)")
        elif name == "numpy.load" and _is_true(keywords.get("allow_pickle")):
            self.add(node, "pickle.load", "numpy.load(..., allow_pickle=True)")


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in (False, None, 0)


def scan_source(source: str, path: str = "<snippet>") -> list[Finding]:
    scanner = _Scanner(path)
    scanner.visit(ast.parse(source, filename=path))
    return scanner.findings


def source_files() -> list[Path]:
    """The shipped code (packages, examples) and the scripts people and CI run."""
    files = [p for pattern in ("packages/*/src/**/*.py", "examples/**/*.py", "benchmarks/**/*.py", "scripts/**/*.py",
                               "docs/scripts/**/*.py") for p in ROOT.glob(pattern)]
    return sorted(p for p in files if ".venv" not in p.parts and "build" not in p.parts)


def scan_repository() -> list[Finding]:
    found = []
    for path in source_files():
        found += scan_source(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return found


def test_the_source_has_no_unsafe_call_outside_the_allow_list():
    files = source_files()
    assert len(files) > 100 and any("examples" in p.parts for p in files)
    found = scan_repository()
    unexpected = [f for f in found if (f.path, f.pattern) not in ALLOWED]
    assert not unexpected, "unsafe calls:\n" + "\n".join(map(str, unexpected))
    stale = set(ALLOWED) - {(f.path, f.pattern) for f in found}
    assert not stale, f"allow-list entries that match nothing any more (remove them): {sorted(stale)}"


PLANTED = {
    "pickle.load": ["import pickle\npickle.load(open('x', 'rb'))", "import pickle as p\np.loads(b'')",
                    "from pickle import loads\nloads(b'')", "import dill\ndill.load(f)",
                    "import numpy as np\nnp.load('a.npy', allow_pickle=True)"],
    "pickle.Unpickler": ["import pickle\nclass U(pickle.Unpickler):\n    pass"],
    "torch.load": ["import torch\ntorch.load('m.pt')", "import torch\ntorch.load('m.pt', weights_only=False)",
                   "from torch import load\nload('m.pt', map_location='cpu')",
                   "import torch\nflag = True\ntorch.load('m.pt', weights_only=flag)"],
    "eval": ["eval('1 + 1')", "exec('x = 1')", "import builtins\nbuiltins.eval('2')"],
    "shell=True": ["import subprocess\nsubprocess.run('ls', shell=True)",
                   "from subprocess import Popen\nPopen('ls', shell=True)",
                   "import subprocess as sp\nsp.check_output(cmd, shell=1)", "import subprocess\nsubprocess.getoutput('ls')"],
    "os.system": ["import os\nos.system('ls')", "from os import system\nsystem('ls')", "import os\nos.popen('ls')"],
    "yaml.load": ["import yaml\nyaml.load(text)", "import yaml\nyaml.load(text, Loader=yaml.FullLoader)",
                  "import yaml\nyaml.unsafe_load(text)", "from yaml import load, Loader\nload(text, Loader)"],
    "marshal.loads": ["import marshal\nmarshal.loads(b'')"],
    "shelve": ["import shelve", "from shelve import open"],
}
SAFE = """
import pickle, subprocess, yaml, torch
# pickle.load(f), eval("x"), os.system("ls") in a comment
text = "torch.load('m.pt') and yaml.load(x) in a string"
torch.load("m.pt", map_location="cpu", weights_only=True)
yaml.safe_load(text)
yaml.load(text, Loader=yaml.SafeLoader)
subprocess.run(["ls", "-l"], check=True)
subprocess.Popen(["ls"], shell=False)
pickle.dumps([1, 2])
model.eval()
self.exec("x")
"""


@pytest.mark.parametrize("pattern", sorted(PLANTED))
def test_the_scanner_catches_each_pattern(pattern):
    for snippet in PLANTED[pattern]:
        found = scan_source(snippet)
        assert [f.pattern for f in found] == [pattern], (snippet, found)


def test_the_scanner_passes_safe_code_comments_and_strings():
    assert scan_source(SAFE) == []


# -- ultralytics in safe-load mode ----------------------------------------------------------------

class _RunsCode:
    """A pickle payload that creates a file when unpickled without restriction."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_the_shared_ultralytics_loader_refuses_a_checkpoint_that_runs_code(tmp_path, monkeypatch):
    pytest.importorskip("ultralytics")
    import ultralytics.nn.tasks as tasks

    from uprm.errors import UltralyticsModelError
    from uprm.integrations.ultralytics import load_checkpoint

    monkeypatch.setenv("ULTRALYTICS_SAFE_LOAD", "0")  # the user's setting does not matter
    monkeypatch.setattr(tasks, "SAFE_LOAD", False, raising=False)
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(marker)}, evil)
    with pytest.raises(UltralyticsModelError) as info:
        load_checkpoint(evil)
    assert info.value.kind == "unreadable" and "evil.pt" in str(info.value)
    assert not marker.exists()


_ULTRALYTICS_OFFLINE = textwrap.dedent("""
    import json
    from uprm.offline import prepare_ultralytics

    prepare_ultralytics()
    import ultralytics.utils as u
    from ultralytics.nn.tasks import torch_safe_load  # what the shared loader imports
    from ultralytics.utils.events import events

    print(json.dumps({"online": u.ONLINE, "events": bool(events.enabled), "sync": u.SETTINGS["sync"]}))
""")


def test_offline_ultralytics_stays_off_the_network_and_prints_no_settings_banner(tmp_path):
    pytest.importorskip("ultralytics")
    env = {k: v for k, v in os.environ.items() if k not in ("YOLO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                             "YOLO_CONFIG_DIR")}
    env.update(UPRM_OFFLINE="1", UPRM_CACHE=str(tmp_path / "cache"), UPRM_SOCKET_LOG=str(tmp_path / "sockets.log"),
               PYTHONPATH=_guard_dir(tmp_path))
    result = subprocess.run([sys.executable, "-c", _ULTRALYTICS_OFFLINE], env=env, capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["online"] is False and state["events"] is False, state  # no analytics, no hub, no sentry
    assert (tmp_path / "cache" / "ultralytics" / "Ultralytics" / "settings.json").is_file()  # a first run
    assert "Settings" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert not (tmp_path / "sockets.log").exists(), (tmp_path / "sockets.log").read_text()


# -- uprm serve opens no network socket offline ----------------------------------------------------

def _guard_dir(tmp_path: Path) -> str:
    """A folder holding tests/socket_guard.py as sitecustomize.py (first on PYTHONPATH)."""
    folder = tmp_path / "guard"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(GUARD, folder / "sitecustomize.py")
    return os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


def test_the_guard_refuses_network_sockets_in_a_fresh_interpreter(tmp_path):
    """The guard works as sitecustomize (so a passing serve test means something)."""
    script = textwrap.dedent("""
        import socket
        for host in ("example.com", "8.8.8.8", "127.0.0.1"):
            try:
                socket.getaddrinfo(host, 80)
                print(host, "allowed")
            except OSError:
                print(host, "refused")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"x", ("8.8.8.8", 53))
        except OSError:
            print("udp refused")
    """)
    log = tmp_path / "sockets.log"
    for loopback, expected in (("0", "refused"), ("1", "allowed")):
        env = {**os.environ, "PYTHONPATH": _guard_dir(tmp_path), "UPRM_SOCKET_LOG": str(log),
               "UPRM_SOCKET_LOOPBACK": loopback}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert out.stdout.split("\n")[:4] == ["example.com refused", "8.8.8.8 refused", f"127.0.0.1 {expected}",
                                               "udp refused"], out.stdout + out.stderr
    assert log.read_text().count("example.com") == 2


def _tiny_checkpoint(folder: Path) -> Path:
    import uprm

    torch.manual_seed(0)
    model = uprm.build_model(uprm.UPRMConfig.tiny(experts=["coarse"], num_frames=2, max_new_tokens=4))
    return model.save_pretrained(folder)


@pytest.mark.slow
def test_uprm_serve_offline_opens_no_network_socket(tmp_path):
    """API process and worker under the guard (loopback allowed): start, take a path job,
    run it, answer its result."""
    import httpx
    import numpy as np

    from uprm.data import write_mp4

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt")
    media = tmp_path / "media"
    write_mp4(media / "clip.mp4", [np.full((32, 32, 3), 30 * i, np.uint8) for i in range(8)], fps=2)
    log = tmp_path / "sockets.log"
    env = {k: v for k, v in os.environ.items() if k not in ("YOLO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(UPRM_OFFLINE="1", UPRM_SOCKET_LOG=str(log), UPRM_SOCKET_LOOPBACK="1", PYTHONPATH=_guard_dir(tmp_path))
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    cmd = [sys.executable, "-m", "uprm", "serve", "--checkpoint", str(checkpoint), "--data-dir", str(tmp_path / "data"),
           "--media-root", str(media), "--port", "0", "--threads", "1", "--log-level", "warning", "--no-evidence"]
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env)
    try:
        url = _wait_for_url(proc, out, err)
        job = httpx.post(f"{url}/v1/jobs", json={"path": "clip.mp4"}, timeout=30).json()
        deadline = time.monotonic() + 180
        while (state := httpx.get(f"{url}/v1/jobs/{job['id']}", timeout=30).json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline and proc.poll() is None, err.read_text()[-3000:]
            time.sleep(0.3)
        assert state["state"] == "done", state
        assert httpx.get(f"{url}/v1/jobs/{job['id']}/result", timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(60)
    assert not log.exists(), log.read_text()


def _wait_for_url(proc: subprocess.Popen, out: Path, err: Path) -> str:
    deadline = time.monotonic() + 120
    while "uprm serve: http://" not in (out.read_text() if out.exists() else ""):
        assert proc.poll() is None, f"uprm serve exited: {err.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"uprm serve did not start: {err.read_text()[-3000:]}"
        time.sleep(0.1)
    return out.read_text().split("uprm serve: ")[1].split()[0]
