"""``make docs``: the documentation site builds from a fresh tree with no network and with
warnings as errors, and holds what a reader needs — the guides, the tutorial built on
``examples/custom_expert``, the CLI reference of every command, the API reference of
every public name with its tensor shapes, and the pictures. A broken cross-reference
fails the build.

The build runs ``mkdocs build --strict`` (as ``make docs`` does) in a child interpreter
where opening any network socket raises, so "offline" is checked, not assumed.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytest.importorskip("mkdocs", reason="the docs tools: pip install --group docs")
pytest.importorskip("mkdocstrings_handlers.python", reason="the docs tools: pip install --group docs")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

NO_NETWORK = textwrap.dedent("""
    import socket

    def _refuse(*args, **kwargs):
        raise OSError("network access during the docs build")

    _connect = socket.socket.connect

    def _connect_local(self, address):
        if self.family == socket.AF_UNIX:
            return _connect(self, address)
        _refuse()

    socket.socket.connect = _connect_local
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
""")


def mkdocs_build(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` in a child interpreter with no network (sitecustomize)."""
    guard = tmp / "no-network"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(guard), NO_MKDOCS_2_WARNING="1", UPRM_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("docs")
    result = mkdocs_build(tmp, "--site-dir", str(tmp / "site"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return tmp / "site"


def page(site: Path, path: str) -> str:
    return (site / path).read_text(encoding="utf-8")


def test_the_site_builds_offline_and_opens_from_the_disk(site):
    index = page(site, "index.html")
    assert "UPRM" in index and 'href="getting-started.html"' in index  # plain file links, no server needed
    assert "fonts.googleapis" not in index and "fonts.gstatic" not in index  # no web fonts fetched
    for path in ("getting-started.html", "guides/reproduce.html", "guides/service-and-streams.html",
                 "training.html", "evaluation.html", "detection.html", "formats.html", "design.html",
                 "experts/pose.html", "experts/relation.html", "experts/background.html",
                 "tutorials/custom-expert.html", "reference/cli.html", "reference/api.html",
                 "reference/testing.html", "reference/plugins.html", "changelog.html",
                 "packages/uprm-core.html", "packages/uprm-expert-pose.html"):
        assert (site / path).is_file(), path


def test_the_cli_reference_documents_every_command(site):
    import click

    from uprm.cli import cli

    cli_page = page(site, "reference/cli.html")
    with click.Context(cli) as ctx:
        commands = cli.list_commands(ctx)
    assert {"demo", "detect", "eval", "experts", "extract", "train"} <= set(commands)
    for name in commands:
        assert f"uprm {name}" in cli_page, name
    assert "--checkpoint" in cli_page and "--sidecar-dir" in cli_page  # options, from click itself


def test_the_api_reference_shows_every_public_name_with_shapes(site):
    import uprm

    api = page(site, "reference/api.html")
    for name in uprm.__all__:
        if name != "__version__":
            assert f'id="uprm.{name}"' in api, name
    # the docstrings' "Shapes:" sections are boxes of their own, their entries a list
    assert api.count('class="shapes"') >= 5
    assert re.search(r'class="shapes"[^>]*>\s*<summary>Shapes</summary>\s*<ul>', api)
    # reStructuredText roles became links or code, never raw text
    for path in ("reference/api.html", "reference/experts.html", "reference/plugins.html", "reference/testing.html"):
        assert not re.search(r":(class|func|meth|mod|data):`", page(site, path)), path
    assert 'href="#uprm.VideoClip"' in api or 'href="api.html#uprm.VideoClip"' in api  # a role became a link


def test_the_tutorial_is_the_tested_example_package(site):
    tutorial = html.unescape(re.sub(r"<[^>]+>", "", page(site, "tutorials/custom-expert.html")))  # the text shown
    for rel in ("src/uprm_expert_motion/expert.py", "src/uprm_expert_motion/plugin.py", "tests/test_motion.py"):
        source = (ROOT / "examples/custom_expert" / rel).read_text()
        for line in source.splitlines():
            assert line.strip() in tutorial, (rel, line)
    assert 'motion = "uprm_expert_motion.plugin"' in tutorial


def test_the_pictures_are_there(site):
    for name in ("dataflow.png", "router-weights.png", "loss.png", "timeline.png", "evidence.png"):
        assert (site / "img" / name).stat().st_size > 5_000, name
    assert "img/dataflow.png" in page(site, "index.html")
    assert "Installed experts:" in page(site, "getting-started.html")  # the demo's real output


def test_a_broken_cross_reference_fails_the_build(tmp_path):
    """The same configuration on a page that links a name UPRM does not have."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Broken\n\nSee [the model][uprm.NoSuchModel].\n")
    config.update(docs_dir=str(docs), site_dir=str(tmp_path / "site"), nav=["index.md"], extra_css=[],
                  hooks=[str(ROOT / "docs/scripts/hooks.py")])
    python = config["plugins"][-1]["mkdocstrings"]["handlers"]["python"]
    python["paths"] = [str(ROOT / p) for p in python["paths"]]
    python["options"]["extensions"] = [str(ROOT / e) for e in python["options"]["extensions"]]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = mkdocs_build(tmp_path, "--config-file", str(tmp_path / "mkdocs.yml"))
    assert result.returncode != 0
    assert "uprm.NoSuchModel" in result.stderr
