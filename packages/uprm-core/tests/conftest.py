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
