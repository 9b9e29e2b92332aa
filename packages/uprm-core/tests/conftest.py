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


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def missing_system_tool():
    """``missing_system_tool(what)``: the browser and stream tests need Debian's chromium,
    chromium-driver and ffmpeg (``.ci/run`` installs them). Without one the test fails
    with the install line, so a green run always means they ran; only an explicit
    ``UPRM_SKIP_SYSTEM_TESTS=1`` makes it a (reported) skip, and never under ``CI=true``."""

    def missing(what: str) -> None:
        message = (f"{what} (install Debian's chromium, chromium-driver and ffmpeg, as .ci/run does, "
                   "or set UPRM_SKIP_SYSTEM_TESTS=1 to skip these tests)")
        if _truthy("UPRM_SKIP_SYSTEM_TESTS") and not _truthy("CI"):
            pytest.skip(message)
        pytest.fail(message)

    return missing
