"""Plugin faults: a plugin that raises at import, in ``__init__``, in ``extract`` or in
``forward``, or returns tokens of the wrong shape, dtype or device, gives an error that
names the expert (or plugin) **and** its distribution; in a batch command (`uprm
extract`, `uprm detect` over several files) an expert that fails on one clip lets the
other clips finish, lists the failure and exits non-zero.

The plugins are real entry points: each test module installs two small distributions
(``*.dist-info`` with ``entry_points.txt``, what ``pip install`` leaves) on ``sys.path``:
``uprm-expert-faulty 0.3`` (plugin ``faulty``: an expert whose fault is chosen by the
``UPRM_TEST_FAULT`` variable, and ``UPRM_TEST_FAULT_CLIP`` limits it to one clip) and
``uprm-expert-broken 0.2`` (plugin ``broken``, whose module raises at import).
"""

from __future__ import annotations

import importlib
import json
import textwrap
import warnings

import pytest

import uprm
from uprm.errors import ExpertError, ExpertOutputError, UnknownExpertError
from uprm.plugins import manager
from uprm.plugins.manager import UPRMPluginWarning

from ._batch_fixtures import FRAMES, invoke, write_records, write_videos

FAULTY = "uprm-expert-faulty 0.3"
BROKEN = "uprm-expert-broken 0.2"

FAULTY_MODULE = '''
import os

import torch

import uprm
from uprm.testing import ColourExpert


def _fault(clip_id=None):
    only = os.environ.get("UPRM_TEST_FAULT_CLIP")
    if only is not None and clip_id != only:
        return ""
    return os.environ.get("UPRM_TEST_FAULT", "")


class Faulty(ColourExpert):
    name = "faulty"

    def __init__(self, ctx, width=8):
        if _fault() == "init":
            raise RuntimeError("cannot open /dev/faulty")
        super().__init__(ctx, width=width)

    def extract(self, clip):
        if _fault(clip.video_id) == "extract":
            raise RuntimeError(f"cannot perceive {clip.video_id}")
        return super().extract(clip)

    def forward(self, features, video_tokens):
        out = super().forward(features, video_tokens)
        fault = _fault()
        if fault == "forward":
            raise RuntimeError("the adapter exploded")
        if fault == "shape":
            return out[:, :-1]
        if fault == "dtype":
            return out.double()
        if fault == "device":
            return torch.empty(out.shape, dtype=out.dtype, device="meta")
        return out


@uprm.hookimpl
def uprm_register_experts():
    return [Faulty]
'''

BROKEN_MODULE = "import torch\nraise ImportError('needs libfaulty.so')\n"


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """The two distributions installed and a fresh plugin host that loads only them
    (plus the built-in coarse expert)."""
    site = tmp_path_factory.mktemp("site-packages")
    for dist, version, plugin, module, source in (
        ("uprm-expert-faulty", "0.3", "faulty", "uprm_faulty_plugin", FAULTY_MODULE),
        ("uprm-expert-broken", "0.2", "broken", "uprm_broken_plugin", BROKEN_MODULE),
    ):
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[uprm]\n{plugin} = {module}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        mp.setenv("UPRM_LOAD_PLUGINS", "faulty,broken")
        mp.delenv("UPRM_DISABLE_PLUGINS", raising=False)
        importlib.invalidate_caches()
        manager.reset_plugins()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UPRMPluginWarning)
            assert set(uprm.available_experts()) == {"coarse", "faulty"}
        yield [str(w.message) for w in caught if issubclass(w.category, UPRMPluginWarning)]
        manager.reset_plugins()


@pytest.fixture
def fault(monkeypatch):
    def choose(kind, clip=None):
        monkeypatch.setenv("UPRM_TEST_FAULT", kind)
        if clip is None:
            monkeypatch.delenv("UPRM_TEST_FAULT_CLIP", raising=False)
        else:
            monkeypatch.setenv("UPRM_TEST_FAULT_CLIP", clip)
    choose("")
    return choose


def _block():
    from uprm.moe import UPEBlock
    from uprm.testing import tiny_context

    return UPEBlock(uprm.build_experts(["coarse", "faulty"], tiny_context()))


def _run_block(block):
    from uprm.testing import synthetic_clip

    clip = synthetic_clip(4, 32, video_id="clip-7")
    return block(block.collate([block.extract(clip)]))


def _import():
    uprm.build_experts(["coarse", "broken"], _tiny())


def _init():
    uprm.build_experts(["coarse", "faulty"], _tiny())


def _tiny():
    from uprm.testing import tiny_context

    return tiny_context()


def _in_block():
    _run_block(_block())


# kind -> (what to run, the error type, the expert named, its distribution, text of the message)
CASES = {
    "import": (_import, UnknownExpertError, "broken", BROKEN, r"failed to load: ImportError: needs libfaulty\.so"),
    "init": (_init, ExpertError, "faulty", FAULTY, r"failed in __init__: RuntimeError: cannot open /dev/faulty"),
    "extract": (_in_block, ExpertError, "faulty", FAULTY, r"failed in extract on clip 'clip-7': RuntimeError"),
    "forward": (_in_block, ExpertError, "faulty", FAULTY, r"failed in forward: RuntimeError: the adapter exploded"),
    "shape": (_in_block, ExpertOutputError, "faulty", FAULTY, r"returned shape \(1, 67, 32\); the coarse token grid "
                                                              r"is \(1, 68, 32\)"),
    "dtype": (_in_block, ExpertOutputError, "faulty", FAULTY, r"returned dtype torch\.float64"),
    "device": (_in_block, ExpertOutputError, "faulty", FAULTY, r"returned tokens on meta"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_fault_names_the_expert_and_its_distribution(plugins, fault, kind):
    run, error, expert, distribution, text = CASES[kind]
    fault(kind)
    with pytest.raises(error, match=text) as info:
        run()
    message = str(info.value)
    assert f"'{expert}'" in message and distribution in message, message
    if kind not in ("import",):
        assert info.value.expert == expert and distribution in info.value.origin
    if kind in ("init", "extract", "forward"):  # the plugin's own exception is chained
        assert isinstance(info.value.__cause__, RuntimeError)
        assert info.value.stage == {"init": "__init__"}.get(kind, kind)


def test_a_plugin_that_fails_to_import_is_named_when_it_loads(plugins):
    assert any("'broken'" in m and "uprm-expert-broken" in m and "needs libfaulty.so" in m for m in plugins), plugins
    result = invoke("experts")
    assert "broken" in result.output and "uprm-expert-broken" in result.output


def test_the_cli_names_the_expert_and_its_distribution(plugins, fault, tmp_path):
    videos = write_videos(tmp_path / "videos", 1, seconds=4.0)
    records = write_records(tmp_path / "data.json", videos)
    fault("init")
    result = invoke("extract", "--data", records, "--experts", "coarse,faulty", "--num-frames", FRAMES, "--out",
                    tmp_path / "cache", "--quiet")
    assert result.exit_code != 0
    assert "expert 'faulty'" in result.output and FAULTY in result.output and "cannot open /dev/faulty" in result.output


# --------------------------------------------------------------------------- batch commands
@pytest.fixture(scope="module")
def three_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    return folder, write_videos(folder / "videos", 3, seconds=8.0)


def test_extract_goes_on_past_an_expert_that_fails_on_one_clip(plugins, fault, three_videos, tmp_path):
    _, videos = three_videos
    records = write_records(tmp_path / "data.json", videos)
    fault("extract", clip="v1")
    cache = tmp_path / "cache"
    result = invoke("extract", "--data", records, "--experts", "coarse,faulty", "--num-frames", FRAMES, "--out",
                    cache, "--quiet")
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if "failed: " in line]
    assert len(failed) == 2 and all(line.strip().startswith("failed: v1 [") for line in failed), result.output
    assert all("expert 'faulty'" in line and FAULTY in line and "cannot perceive v1" in line for line in failed)
    for vid in ("v0", "v2"):  # the other clips finished, every expert's entry
        assert len(list((cache / vid).rglob("faulty.safetensors"))) == 2
        assert len(list((cache / vid).rglob("coarse.safetensors"))) == 2
    assert not list((cache / "v1").rglob("faulty.safetensors"))


@pytest.fixture(scope="module")
def faulty_checkpoint(plugins, three_videos):
    """An untrained tiny model with the coarse and the faulty expert."""
    checkpoint = three_videos[0] / "checkpoint"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UPRM_TEST_FAULT", "")
        model = uprm.build_model(uprm.UPRMConfig.tiny(num_frames=FRAMES, max_new_tokens=4,
                                                      experts=["coarse", "faulty"]))
    return model.save_pretrained(checkpoint)


def test_eval_goes_on_past_an_expert_that_fails_on_one_video(plugins, fault, three_videos, faulty_checkpoint,
                                                             tmp_path):
    _, videos = three_videos
    records = write_records(tmp_path / "data.json", videos)
    fault("extract", clip="v1")
    out = tmp_path / "eval"
    result = invoke("eval", "--checkpoint", faulty_checkpoint, "--data", records, "--out", out, "--no-sbert",
                    "--format", "none", "--quiet", "--batch-size", "2")
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed: ")]
    assert [line.split()[1] for line in failed] == ["v1@0.000-4.000", "v1@4.000-8.000"], result.output
    assert all("expert 'faulty'" in line and FAULTY in line and "cannot perceive v1" in line for line in failed)
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["clips"] == 4 and [f["clip"] for f in report["failed"]] == [
        "v1@0.000-4.000", "v1@4.000-8.000"]


def test_detect_goes_on_past_an_expert_that_fails_on_one_video(plugins, fault, three_videos, faulty_checkpoint,
                                                               tmp_path):
    _, videos = three_videos
    checkpoint = faulty_checkpoint
    fault("extract", clip="v1")
    out = tmp_path / "out"
    result = invoke("detect", *videos, "--checkpoint", checkpoint, "--out", out, "--quiet", "--window", "4",
                    "--stride", "4")
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and "v1.mp4" in failed[0], result.output
    assert "expert 'faulty'" in failed[0] and FAULTY in failed[0] and "cannot perceive v1" in failed[0]
    assert "--sidecar-dir" not in failed[0] and "inside the plugin" in failed[0]  # no hint about missing inputs
    assert (out / "v0.json").is_file() and (out / "v2.json").is_file() and not (out / "v1.json").exists()
    assert sorted(json.loads((out / "results.json").read_text())["results"]) == ["v0", "v2"]
