"""The layers point one way: each module imports only the layers below it.

Checked in fresh interpreters (what a module drags in is what ``sys.modules`` holds
after importing it alone)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize(
    "module",
    [
        "uprm.data.annotations",
        "uprm.data.instructions",
        "uprm.data.pretune",
        "uprm.data.records",
        "uprm.data.labelstudio",
        "uprm.data.cvat",
        "uprm.taxonomy",
        "uprm.prompts",
        "uprm.coco",
        "uprm.timeparse",
        "uprm.errors",
        "uprm.moe.names",
    ],
)
def test_plain_python_layers_import_no_torch_and_no_video_library(module):
    loaded = _loaded_after(f"import {module}")
    assert not {"torch", "av", "numpy", "click", "PIL"} & _tops(loaded), module


@pytest.mark.parametrize("module", ["uprm.prompts", "uprm.coco", "uprm.timeparse"])
def test_shared_constants_import_nothing_of_uprm(module):
    loaded = _loaded_after(f"import {module}")
    # uprm/__init__ reads its version, applies UPRM_OFFLINE and attaches its stub (modules importing nothing of uprm)
    assert {m for m in loaded if m.startswith("uprm.")} - {"uprm._version", "uprm.offline", "uprm._lazy"} == {module}


def test_hasattr_on_uprm_data_imports_nothing():
    loaded = _loaded_after(
        "import uprm.data as d\n"
        "for name in ('no_such_name', '__wrapped__', '_pytestfixturefunction', 'generate_world', 'build_extractors'):\n"
        "    assert not hasattr(d, name), name\n"
        "assert 'clip_from_record' in dir(d) and 'FeatureCache' in d.__all__ and 'load_clip' in d.__all__"
    )
    assert not {"torch", "av", "numpy", "PIL"} & _tops(loaded)
    assert not {m for m in loaded if m.startswith(("uprm.data.", "uprm.synthetic"))}


def test_the_readers_and_errors_of_uprm_data_load_no_decoder_no_torch_and_no_renderer():
    loaded = _loaded_after(
        "import uprm.data as d\n"
        "for name in ('read_ucf_crime', 'read_cuva', 'load_records', 'build_instructions', 'build_refcoco',\n"
        "             'VideoError', 'CacheError', 'RecordError', 'AnnotationError'):\n"
        "    assert hasattr(d, name), name\n"
        "assert issubclass(d.CacheError, d.RecordError)"
    )
    assert not {"torch", "av", "numpy", "PIL"} & _tops(loaded)
    assert not {m for m in loaded if m.startswith(("uprm.data.video", "uprm.data.features", "uprm.synthetic"))}


def test_probing_uprm_synthetic_loads_no_renderer():
    loaded = _loaded_after(
        "import uprm.synthetic as s\n"
        "assert not hasattr(s, 'no_such_name') and not hasattr(s, 'read_ucf_crime')\n"
        "assert 'generate_world' in dir(s) and 'make_video' in s.__all__"
    )
    assert not {"numpy", "PIL"} & _tops(loaded)
    assert not {m for m in loaded if m.startswith("uprm.synthetic.")}


def test_decoding_knows_no_experts_and_no_plugins():
    loaded = _loaded_after("import uprm.data.video, uprm.data.clips, uprm.data.mp4")
    assert not {m for m in loaded if m.startswith(("uprm.experts", "uprm.plugins", "uprm.moe", "uprm.modeling"))}
    assert not {m for m in loaded if m.startswith("uprm.data.features")}


def test_the_moe_block_is_pure_torch():
    loaded = _loaded_after("import uprm.moe")
    assert not {m for m in loaded if m.startswith(("uprm.plugins", "uprm.data", "uprm.modeling"))}
    assert "pluggy" not in _tops(loaded)


def test_the_synthetic_world_has_no_click_and_is_lazy():
    assert not {"numpy", "torch", "PIL"} & _tops(_loaded_after("import uprm.synthetic"))
    loaded = _loaded_after("import uprm.synthetic.world")
    assert "click" not in _tops(loaded)
    assert not {m for m in loaded if m.startswith(("uprm.experts", "uprm.plugins", "uprm.modeling", "uprm.cli"))}


def test_the_model_does_not_import_the_data_package():
    loaded = _loaded_after("import uprm.modeling.model")
    assert not {m for m in loaded if m.startswith(("uprm.data", "uprm.synthetic", "uprm.cli"))}
