"""Plugin discovery through real entry points: each test writes small installed
distributions (``*.dist-info`` with ``entry_points.txt``) onto ``sys.path``, exactly what
``pip install`` leaves behind, and runs a fresh plugin host over them."""

import importlib
import itertools
import sys
import textwrap

import pytest
from click.testing import CliRunner

import uprm
from uprm.plugins import manager
from uprm.plugins.manager import UPRMPluginWarning

_counter = itertools.count()

EXPERT_MODULE = """
import uprm
from uprm.testing import ColourExpert

IMPORTS = globals().get("IMPORTS", 0) + 1

class {cls}(ColourExpert):
    name = {expert!r}

@uprm.hookimpl
def uprm_register_experts():
    return [{cls}]
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site-packages directory on sys.path; ``site(dist, version, plugins)`` installs a
    distribution whose entry points map plugin name -> module source."""
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def install(dist, version="1.0", plugins=None):
        lines = ["[uprm]"]
        for plugin_name, source in (plugins or {}).items():
            module = f"uprm_test_plugin_{next(_counter)}"
            (root / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{plugin_name} = {module}")
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()

    yield install
    manager.reset_plugins()


def expert_module(expert, cls="Custom"):
    return EXPERT_MODULE.format(expert=expert, cls=cls)


def fresh_host(monkeypatch, load=None, disable=None):
    for var, value in (("UPRM_LOAD_PLUGINS", load), ("UPRM_DISABLE_PLUGINS", disable)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    manager.reset_plugins()
    return manager.get_plugin_host()


def test_core_alone_provides_the_coarse_expert(monkeypatch):
    fresh_host(monkeypatch, load="")
    infos = uprm.expert_infos()
    assert list(infos) == ["coarse"]
    assert infos["coarse"].distribution == "uprm-core"
    assert infos["coarse"].version == uprm.__version__
    assert uprm.available_experts()["coarse"].granularity == "coarse"


def test_an_entry_point_plugin_is_found_with_its_distribution(site, monkeypatch):
    site("uprm-expert-motion", "0.3.1", {"motion": expert_module("motion")})
    fresh_host(monkeypatch)
    infos = uprm.expert_infos()
    assert infos["motion"].distribution == "uprm-expert-motion"
    assert infos["motion"].version == "0.3.1"
    assert infos["motion"].plugin == "motion"
    assert infos["motion"].granularity == "fine"
    assert issubclass(uprm.available_experts()["motion"], uprm.Expert)


def test_discovery_is_lazy_and_happens_once(site, monkeypatch):
    site("uprm-expert-lazy", "1.0", {"lazy": expert_module("lazy")})
    calls = []
    real = manager.md.entry_points
    monkeypatch.setattr(manager.md, "entry_points", lambda **kw: calls.append(kw) or real(**kw))
    host = fresh_host(monkeypatch)
    loaded = [m for m in sys.modules if m.startswith("uprm_test_plugin_")]
    assert calls == [] and not host._loaded, "nothing is discovered before experts are asked for"
    uprm.available_experts()
    uprm.available_experts()
    uprm.expert_infos()
    assert len(calls) == 1
    new = [m for m in sys.modules if m.startswith("uprm_test_plugin_") and m not in loaded]
    assert len(new) == 1 and sys.modules[new[0]].IMPORTS == 1


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(site, monkeypatch):
    site("uprm-expert-good", "1.0", {"good": expert_module("good")})
    site("uprm-expert-broken", "2.0", {"broken": "import torch\nraise ImportError('needs libfoo.so')\n"})
    fresh_host(monkeypatch)
    with pytest.warns(UPRMPluginWarning, match=r"skipped plugin 'broken' from uprm-expert-broken: ImportError: needs libfoo.so"):
        experts = uprm.available_experts()
    assert "good" in experts and "coarse" in experts
    broken = manager.get_plugin_host().broken()
    assert [(p.name, p.distribution, p.version) for p in broken] == [("broken", "uprm-expert-broken", "2.0")]
    assert "needs libfoo.so" in broken[0].error


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (
            "import uprm\n@uprm.hookimpl\ndef uprm_register_expert():\n    return []\n",
            r"unknown hook\(s\) uprm_register_expert",
        ),
        (
            "import uprm\n@uprm.hookimpl\ndef uprm_register_experts():\n    return [dict]\n",
            r"not a subclass of uprm.Expert",
        ),
        (
            "import uprm\n@uprm.hookimpl\ndef uprm_register_experts():\n    raise RuntimeError('boom')\n",
            r"uprm_register_experts failed: RuntimeError: boom",
        ),
        (
            expert_module("Bad Name"),
            r"has name 'Bad Name'",
        ),
        (
            "import uprm\n@uprm.hookimpl\ndef uprm_register_experts(ctx):\n    return []\n",
            r"PluginValidationError",
        ),
    ],
    ids=["typo-hook", "not-an-expert", "hook-raises", "bad-name", "bad-signature"],
)
def test_misbehaving_plugins_are_skipped_with_their_error(site, monkeypatch, source, error):
    site("uprm-expert-odd", "1.0", {"odd": source})
    site("uprm-expert-fine", "1.0", {"fine": expert_module("fine")})
    fresh_host(monkeypatch)
    with pytest.warns(UPRMPluginWarning, match=error):
        experts = uprm.available_experts()
    assert {"coarse", "fine"} <= set(experts)
    assert [p.name for p in manager.get_plugin_host().broken()] == ["odd"]


def test_a_duplicate_expert_name_names_both_distributions(site, monkeypatch):
    site("uprm-expert-pose", "0.1.0", {"pose": expert_module("pose")})
    site("acme-pose", "9.9", {"acmepose": expert_module("pose", cls="Acme")})
    fresh_host(monkeypatch)
    with pytest.raises(uprm.DuplicateExpertError) as info:
        uprm.available_experts()
    message = str(info.value)
    assert "expert 'pose' is registered twice" in message
    assert "acme-pose 9.9" in message and "uprm-expert-pose 0.1.0" in message
    # switching one off resolves it
    fresh_host(monkeypatch, disable="acmepose")
    assert uprm.expert_infos()["pose"].distribution == "uprm-expert-pose"


def test_a_duplicate_plugin_name_is_reported(site, monkeypatch):
    site("first-dist", "1.0", {"same": expert_module("one")})
    site("second-dist", "1.0", {"same": expert_module("two", cls="Two")})
    fresh_host(monkeypatch)
    with pytest.warns(UPRMPluginWarning, match="already used by"):
        experts = uprm.available_experts()
    assert len({"one", "two"} & set(experts)) == 1


def test_load_and_disable_variables(site, monkeypatch):
    site("dist-a", "1.0", {"a": expert_module("a")})
    site("dist-b", "1.0", {"b": expert_module("b", cls="B")})
    site("dist-c", "1.0", {"c": expert_module("c", cls="C")})
    fresh_host(monkeypatch)
    assert {"a", "b", "c", "coarse"} <= set(uprm.available_experts())
    fresh_host(monkeypatch, load="a, c")
    assert set(uprm.available_experts()) == {"a", "c", "coarse"}
    fresh_host(monkeypatch, load="")
    assert set(uprm.available_experts()) == {"coarse"}
    fresh_host(monkeypatch, disable="b")
    assert {"a", "c"} <= set(uprm.available_experts()) and "b" not in uprm.available_experts()
    fresh_host(monkeypatch, load="a,b", disable="b,coarse")
    assert set(uprm.available_experts()) == {"a"}


def test_isolated_plugins_registers_throw_away_plugins():
    class Plugin:
        @staticmethod
        @uprm.hookimpl
        def uprm_register_experts():
            from uprm.testing import ColourExpert

            return [ColourExpert]

    before = manager._HOST
    with isolated_plugins_ctx(Plugin) as host:
        assert "colour" in uprm.available_experts()
        assert host.experts()["colour"].distribution == "test-colour"
    assert manager._HOST is before


def isolated_plugins_ctx(plugin):
    from uprm.testing import isolated_plugins

    return isolated_plugins(plugins={"colour": plugin}, load_entry_points=False)


def test_cli_lists_experts_and_broken_plugins(site, monkeypatch):
    from uprm.cli import cli

    site("uprm-expert-motion", "0.2.0", {"motion": expert_module("motion")})
    site("uprm-expert-broken", "1.0", {"broken": "raise ImportError('no module named cv9')\n"})
    fresh_host(monkeypatch)
    with pytest.warns(UPRMPluginWarning):
        result = CliRunner().invoke(cli, ["experts"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "GRANULARITY", "DISTRIBUTION", "VERSION", "PLUGIN"]
    assert ["coarse", "coarse", "uprm-core", uprm.__version__, "coarse"] in [line.split() for line in lines]
    assert ["motion", "fine", "uprm-expert-motion", "0.2.0", "motion"] in [line.split() for line in lines]
    assert "Broken plugins (skipped):" in result.output
    assert "broken (uprm-expert-broken 1.0): ImportError: no module named cv9" in result.output


def test_cli_reports_a_duplicate_as_an_error(site, monkeypatch):
    from uprm.cli import cli

    site("dist-one", "1.0", {"one": expert_module("twin")})
    site("dist-two", "1.0", {"two": expert_module("twin", cls="Twin")})
    fresh_host(monkeypatch)
    result = CliRunner().invoke(cli, ["experts"])
    assert result.exit_code == 1
    assert "expert 'twin' is registered twice" in result.output
    assert "UPRM_DISABLE_PLUGINS=" in result.output
