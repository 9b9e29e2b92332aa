"""Fixtures of the ``uprm serve`` tests.

- small threat videos: dark frames, bright ones during the threat (2 fps, 64×64);
- a tiny checkpoint trained (for real, a few dozen steps) to answer the DeepSVU questions
  about them — "yes" with "between 0 and 8 seconds" and "a person grabbing a bag" on a
  window that samples a bright frame, "no" on the others — with the experts that need
  nothing but the video (coarse, plus background when uprm-expert-background is
  installed); the detection tests' recipe, on the four distinct windows only;
- ``uprm serve`` as a real process on loopback (:class:`ServerProcess`), or the app in
  process without a worker (``make_client``, on a fake checkpoint: ``fake_checkpoint``);
- a headless Chromium driven by selenium (Debian's chromium + chromium-driver): skipped
  when absent, except under ``CI=true``, where it fails; the page tests' helpers
  (``page_tools``).
- a real PostgreSQL server (``postgres``: Debian's initdb into a temporary folder, run as
  ``nobody`` when the tests run as root; :mod:`uprm.testing.postgres`), absent
  programs handled as the browser's; ``make_store`` opens a test's store in SQLite and,
  parametrised, in a fresh PostgreSQL database.

The fixtures are package-scoped (this folder has an ``__init__.py``), so the servers and
the browser stop when these tests end, not at the end of the whole suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

FPS = 2
SIZE = 64
CAUSE = "a person grabbing a bag"
ANSWERS = {"yes": "Yes, there exists a threat.", "no": "No, there is no threat.",
           "locate": "The threat occurs between 0 and 8 seconds.", "attribute": f"The threat is attributed to {CAUSE}."}
THREAT = (16.0, 28.0)


def _frames(duration: float, threat: tuple[float, float]):
    dark = np.full((SIZE, SIZE, 3), 20, np.uint8)
    bright = np.full((SIZE, SIZE, 3), 230, np.uint8)
    for i in range(round(duration * FPS)):
        yield bright if threat[0] <= i / FPS < threat[1] else dark


def write_threat_video(path: Path, duration: float, threat: tuple[float, float] = THREAT) -> Path:
    from uprm.data import write_mp4

    return write_mp4(path, _frames(duration, threat), fps=FPS)


def _serve_experts() -> list[str]:
    import uprm

    return ["coarse"] + (["background"] if "background" in uprm.available_experts() else [])


def _training_items(model, video: Path):
    """One item per distinct window (which of its sampled frames are bright): identify
    for each, locate and attribute once."""
    from uprm.data import load_clip
    from uprm.detection import plan_windows

    plan = plan_windows(40.0, 8.0, 4.0, model.config.num_frames)
    items, seen = [], set()
    for w in range(len(plan)):
        pattern = tuple(THREAT[0] <= t < THREAT[1] for t in plan.times(w))
        if pattern in seen:
            continue
        seen.add(pattern)
        feats = model.extract(load_clip(video, model.config.num_frames, *plan.span(w)))
        if not any(pattern):
            items.append((feats, "identify", ANSWERS["no"]))
            continue
        items.append((feats, "identify", ANSWERS["yes"]))
        if not any(q == "locate" for _, q, _ in items):
            items += [(feats, "locate", ANSWERS["locate"]), (feats, "attribute", ANSWERS["attribute"])]
    return items


def train_checkpoint(root: Path, out: Path, steps: int = 150) -> Path:
    import torch

    import uprm
    from uprm.testing import overfit

    torch.manual_seed(0)
    video = write_threat_video(root / "train.mp4", 40.0)
    model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=2, max_new_tokens=12, experts=_serve_experts()))
    items = _training_items(model, video)
    return overfit(model, items, lr=3e-3, max_steps=steps).save_pretrained(out)


@pytest.fixture(scope="package")
def checkpoint(tmp_path_factory) -> Path:
    """The trained tiny checkpoint (module doc)."""
    root = tmp_path_factory.mktemp("serve-model")
    return train_checkpoint(root, root / "checkpoint")


@pytest.fixture(scope="package")
def videos(tmp_path_factory) -> dict[str, Path]:
    """``shop`` (40 s, threat 16-28 s), ``quiet`` (12 s, no threat), ``short`` (12 s,
    threat 4-8 s), ``long`` (64 s, threat 16-28 s), all in one folder (a media root), and
    ``longer`` (120 s) elsewhere."""
    root = tmp_path_factory.mktemp("serve-videos")
    other = tmp_path_factory.mktemp("serve-videos-more")
    return {"shop": write_threat_video(root / "shop.mp4", 40.0),
            "quiet": write_threat_video(root / "quiet.mp4", 12.0, (99.0, 99.0)),
            "short": write_threat_video(root / "short.mp4", 12.0, (4.0, 8.0)),
            "long": write_threat_video(root / "long.mp4", 64.0),
            "longer": write_threat_video(other / "longer.mp4", 120.0)}


# -- a real `uprm serve` process -----------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split() if (task / "children").exists() else []
        found += [int(c) for c in text]
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


class ServerProcess:
    """``python -m uprm serve --port 0 ...`` on loopback; the URL it prints is read back."""

    def __init__(self, checkpoint: Path, data_dir: Path, *args: str) -> None:
        self.checkpoint, self.data_dir, self.args = checkpoint, data_dir, args
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.runs = 0

    def start(self, timeout: float = 240.0) -> ServerProcess:
        self.runs += 1
        self.url = ""
        out = self.data_dir.parent / f"{self.data_dir.name}.stdout.{self.runs}"
        err = self.data_dir.parent / f"{self.data_dir.name}.stderr.{self.runs}"
        self.log = err
        cmd = [sys.executable, "-m", "uprm", "serve", "--checkpoint", str(self.checkpoint), "--data-dir",
               str(self.data_dir), "--port", "0", "--log-level", "warning", *self.args]
        with open(out, "wb") as o, open(err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.url:
            text = out.read_text() if out.exists() else ""
            if "uprm serve: http://" in text:
                self.url = text.split("uprm serve: ")[1].split()[0]
                break
            self._check_running(deadline)
        self.wait_ready(deadline)
        return self

    def _check_running(self, deadline: float) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uprm serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"uprm serve did not start:\n{self.log.read_text()[-3000:]}")
        time.sleep(0.1)

    def wait_ready(self, deadline: float) -> None:
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).json().get("ready"):
                    return
            except httpx.HTTPError:
                pass
            self._check_running(deadline)
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return children(self.pid) if self.proc is not None and self.proc.poll() is None else []

    def kill(self) -> list[int]:
        """SIGKILL the server process (not its worker); returns the worker's pids."""
        workers = self.worker_pids()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.url = ""
        return workers

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        workers = self.worker_pids()
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        for pid in workers:  # never leave a worker behind, whatever happened
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="package")
def start_server(tmp_path_factory):
    """Start ``uprm serve`` processes (stopped when this package's tests end)."""
    started: list[ServerProcess] = []

    def start(checkpoint: Path, *args: str, name: str = "serve") -> ServerProcess:
        data = tmp_path_factory.mktemp(name) / "data"
        server = ServerProcess(checkpoint, data, *args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def wait_for(client: httpx.Client, job_id: str, states=("done", "failed"), timeout: float = 240.0) -> dict:
    """Poll a job until it reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {job['state']}")
        time.sleep(0.2)


@pytest.fixture(scope="package")
def wait_job():
    return wait_for


def write_fake_checkpoint(folder: Path, model_type: str = "uprm") -> Path:
    """The files the API checks of a checkpoint (it never loads a model)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    (folder / "model.safetensors").write_bytes(b"\0" * 8)
    return folder


@pytest.fixture(scope="package")
def fake_checkpoint():
    """``fake_checkpoint(folder, model_type="uprm")``: write a checkpoint's files, no model."""
    return write_fake_checkpoint


@pytest.fixture
def make_client(tmp_path):
    """``make_client(**settings)``: a TestClient on an app without a worker (no model is
    loaded); ``settings`` go to ServeConfig. The checkpoint is by default a fake one at
    ``tmp_path / "base"``, the data folder ``tmp_path / "data"``: the same each time, so a
    second client is the server restarted. The clients are closed after the test."""
    from fastapi.testclient import TestClient

    from uprm.serve import ServeConfig, create_app

    base = write_fake_checkpoint(tmp_path / "base")
    clients = []

    def make(**settings) -> TestClient:
        settings.setdefault("checkpoint", base)
        settings.setdefault("data_dir", tmp_path / "data")
        client = TestClient(create_app(ServeConfig(**settings), worker=False), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="package")
def server_tools():
    """Helpers for tests (importlib mode: helpers come as fixtures)."""
    return {"rss_mb": rss_mb, "alive": alive, "children": children, "write_threat_video": write_threat_video}


# -- the browser ------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("UPRM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("UPRM_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="package")
def chrome(missing_system_tool):
    """A headless Chromium (selenium), shared by this package's tests (a missing browser
    fails them: ``missing_system_tool``)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        missing_system_tool(f"missing {', '.join(missing)}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing_system_tool("selenium is not installed (pip install 'uprm-core[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,1400", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="uprm-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


PAGE_MESSAGES = ("state", "job-error", "submit-error", "review-error")  # shown when a wait times out


def until(driver, script: str, timeout: float = 240.0, what: str = ""):
    """Run ``script`` (a JS expression) until it is truthy; its value. On timeout the error
    names what was awaited and the page's state and error messages."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        if time.monotonic() > deadline:
            state = driver.execute_script("return arguments[0].map((id) => "
                                          "(document.getElementById(id) || {}).textContent)", list(PAGE_MESSAGES))
            raise TimeoutError(f"waited {timeout} s for {what or script}; page state {state}")
        time.sleep(0.2)


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """A screenshot in ``tmp_path``, copied to ``screenshots/`` beside the test cache (the docs use them)."""
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    keep = Path(os.environ.get("UPRM_CACHE", tmp_path)).parent / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, keep / name)
    return path


def severe_console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="package")
def page_tools():
    """The page tests' helpers (importlib mode: helpers come as fixtures): ``until``,
    ``save_screenshot``, ``severe_console_errors``."""
    return {"until": until, "save_screenshot": save_screenshot, "severe_console_errors": severe_console_errors}


@pytest.fixture(scope="package")
def served(start_server, checkpoint, videos) -> ServerProcess:
    """``uprm serve`` with the trained checkpoint, the videos' folder as its media root."""
    return start_server(checkpoint, "--media-root", str(videos["shop"].parent), name="served")


TOKEN = "load-test-token-0123456789abcdef"


@pytest.fixture(scope="package")
def guarded(start_server, checkpoint) -> ServerProcess:
    """``uprm serve`` with a token (checked on loopback too when given), a short queue
    (6 waiting jobs) and one torch thread, for the login page and the load tests."""
    server = start_server(checkpoint, "--token", TOKEN, "--max-queue", "6", "--threads", "1", name="guarded")
    server.token = TOKEN
    return server


# -- the stores: SQLite and a real PostgreSQL ---------------------------------------------------------


@pytest.fixture(scope="package")
def postgres(missing_system_tool):
    """One PostgreSQL server for this package's tests (:mod:`uprm.testing.postgres`); a
    missing initdb or postgres is handled as a missing browser (``missing_system_tool``)."""
    from uprm.testing.postgres import PostgresMissing, PostgresServer

    try:
        server = PostgresServer()
    except PostgresMissing as exc:
        missing_system_tool(str(exc))
    with server:
        yield server


def new_database(postgres) -> str:
    """The URL of a new empty database on the test server."""
    import secrets

    return postgres.create_database(f"uprm_{secrets.token_hex(6)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request, tmp_path):
    """``make_store()``: open this test's job store — SQLite in ``tmp_path``, or a fresh
    PostgreSQL database — again at each call (a second process, or a restart, on the same
    store); the stores are closed after the test. ``make_store.kind`` says which."""
    from uprm.serve.store import JobStore

    if request.param == "sqlite":
        def opener():
            return JobStore(tmp_path / "jobs.sqlite3")
    else:
        from uprm.serve.pgstore import PostgresStore

        url = new_database(request.getfixturevalue("postgres"))

        def opener():
            return PostgresStore(url, pool_size=4)
    opened = []

    def make():
        opened.append(opener())
        return opened[-1]

    make.kind = request.param
    yield make
    for store in opened:
        store.close()
