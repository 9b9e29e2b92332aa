import os

import pytest

import uprm
from uprm.testing import ColourExpert, isolated_plugins


class MotionLike(ColourExpert):
    """A second fine expert, so the router mixes three experts."""

    name = "shade"


class _Plugin:
    @staticmethod
    @uprm.hookimpl
    def uprm_register_experts():
        return [ColourExpert, MotionLike]


@pytest.fixture
def toy_plugins():
    """Only the built-in coarse expert and two small real fine experts (colour, shade),
    whatever else is installed."""
    with isolated_plugins(plugins={"toy": _Plugin}, load_entry_points=False) as host:
        yield host


SITE_TAXONOMY = """\
name: warehouse
categories:
  - name: Trespassing
    description: Someone climbs over the fence into the yard.
    severity: high
    causes: [a person climbing over the fence, a person climbing]
    aliases: [Intrusion, fence jump]
  - name: Fall
    description: A worker falls.
    severity: critical
    causes: [a worker slipping on a wet floor, a person falling from a ladder]
    aliases: [Slip]
  - name: BagSnatching
    description: Someone grabs a bag that is not theirs.
    severity: medium
    causes: [a person grabbing a bag]
"""


@pytest.fixture
def site_taxonomy(tmp_path):
    """A small site taxonomy written to ``tmp_path / "site.yaml"`` (its path), shared by the
    taxonomy, options, category and review tests: three threats of three severities, causes
    of which one holds another (``a person climbing``), aliases, and ``a person grabbing a
    bag`` (the trained test checkpoints' cause) as BagSnatching. Line 5 is the first
    category's severity, the only ``severity: high``."""
    path = tmp_path / "site.yaml"
    path.write_text(SITE_TAXONOMY)
    return path


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def missing_system_tool():
    """``missing_system_tool(what)``: the browser, stream and deployment tests need Debian's
    chromium, chromium-driver, ffmpeg, rtsp-server-perl and postgresql
    (``scripts/system-packages.sh``, run by ``make test`` and ``.ci/run``, installs them).
    Without one the test fails with the install line: a green run always means they ran."""

    def missing(what: str) -> None:
        pytest.fail(f"{what} (install Debian's chromium, chromium-driver, ffmpeg, rtsp-server-perl and postgresql, as "
                    "scripts/system-packages.sh does)")

    return missing
