"""The shared ultralytics loader (uprm.integrations.ultralytics): local paths load in safe
mode, bare asset names go to ultralytics' own download when online and fail at once
offline, hostile pickles and wrong tasks are refused, and the core does not import
ultralytics until a function runs."""

import pathlib
import subprocess
import sys

import pytest
import torch

from uprm.integrations import ultralytics as ul

pytest.importorskip("ultralytics")  # an optional dependency of the core (the plugins require it)


@pytest.fixture(scope="module")
def detector_pt(tmp_path_factory) -> pathlib.Path:
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny-detect.pt"
    torch.save({"model": DetectionModel("yolo11n.yaml", verbose=False)}, path)
    return path


@pytest.fixture
def online(monkeypatch):
    """As on a user's machine with a network: no offline switch set."""
    for name in ("UPRM_OFFLINE", "YOLO_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def downloads(monkeypatch, tmp_path, detector_pt):
    """Replace ultralytics' asset download: an existing file is returned as it is (as
    ultralytics does; its loader asks for every file); a missing one is recorded and
    "downloaded" from ``downloads.serve`` into tmp_path."""
    from ultralytics.utils import downloads as module

    calls = []

    def fake(file, *args, **kwargs):
        if pathlib.Path(file).exists():
            return str(file)
        calls.append(str(file))
        target = tmp_path / "downloaded" / str(file)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(pathlib.Path(fake.serve).read_bytes())
        return str(target)

    fake.serve = detector_pt
    fake.calls = calls
    monkeypatch.setattr(module, "attempt_download_asset", fake)
    monkeypatch.chdir(tmp_path)  # no "yolo11n.pt" lying in the working directory
    return fake


def test_a_local_path_loads_in_safe_mode_checked_and_frozen(detector_pt, downloads):
    model = ul.load_model(detector_pt, task="detect")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert ul.model_task(model) == "detect"
    assert downloads.calls == []  # a local file is never looked up online
    with pytest.raises(ul.UltralyticsModelError, match=r"tiny-detect\.pt: is an ultralytics 'detect' model") as err:
        ul.load_model(detector_pt, task="pose", kpt_shape=(17, 3))
    assert (err.value.kind, err.value.detail, err.value.path) == ("task", "detect", str(detector_pt))


def test_online_a_bare_asset_name_is_downloaded_by_ultralytics_then_loaded_safely(online, downloads):
    model = ul.load_model("yolo11n.pt", task="detect", missing="no yolo11n.pt")
    assert downloads.calls == ["yolo11n.pt"]
    assert ul.model_task(model) == "detect"


class _RunsCode:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):  # what a hostile checkpoint does: run code when unpickled
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_a_downloaded_file_is_loaded_in_safe_mode_too(online, downloads, tmp_path, monkeypatch):
    import ultralytics.nn.tasks as tasks

    monkeypatch.setattr(tasks, "SAFE_LOAD", False)  # as if ULTRALYTICS_SAFE_LOAD were off
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(marker)}, evil)
    downloads.serve = evil
    with pytest.raises(ul.UltralyticsModelError, match=r"yolo11n\.pt: cannot be loaded in safe mode") as err:
        ul.load_model("yolo11n.pt", task="detect")
    assert err.value.kind == "unreadable"
    assert downloads.calls == ["yolo11n.pt"] and not marker.exists()


@pytest.mark.parametrize("switch", ["UPRM_OFFLINE", "YOLO_OFFLINE"])
def test_offline_a_missing_asset_name_fails_at_once(online, downloads, monkeypatch, switch):
    monkeypatch.setenv(switch, "1")
    with pytest.raises(FileNotFoundError, match=r"pass yolo11n\.pt .*offline: UPRM_OFFLINE or YOLO_OFFLINE is set"):
        ul.load_model("yolo11n.pt", task="detect", missing="pass yolo11n.pt as a local path")
    assert downloads.calls == []


def test_a_missing_path_is_never_downloaded(online, downloads, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing is downloaded for a path"):
        ul.resolve_weights(tmp_path / "models" / "yolo11n.pt", "no such file")
    assert downloads.calls == []
    assert ul.is_asset_name("yolo11n-pose.pt") and not ul.is_asset_name("models/yolo11n.pt")
    assert not ul.is_asset_name("yolo11n.onnx") and not ul.is_asset_name("")


def test_refusals_name_the_file_and_the_kind(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    bare = tmp_path / "state.pt"
    torch.save({"weights": torch.zeros(2)}, bare)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\0not a checkpoint" * 8)
    for path, kind in ((onnx, "suffix"), (bare, "no_model"), (damaged, "unreadable")):
        with pytest.raises(ul.UltralyticsModelError) as err:
            ul.load_checkpoint(path)
        assert err.value.kind == kind and err.value.path == str(path) and str(path) in str(err.value)
    with pytest.raises(ul.UltralyticsModelError, match="cannot be built") as err:
        ul.build_model("yolo11n.json")
    assert err.value.kind == "build"


def test_a_random_model_from_a_yaml_is_seeded_and_checked():
    a, b = ul.build_model("yolo11n-pose.yaml", seed=3), ul.build_model("yolo11n-pose.yaml", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    ul.check_model(a, "yolo11n-pose.yaml", "pose", kpt_shape=(17, 3))
    with pytest.raises(ul.UltralyticsModelError, match=r"kpt_shape \[17, 3\]") as err:
        ul.check_model(a, "yolo11n-pose.yaml", "pose", kpt_shape=(5, 3))
    assert err.value.detail == [17, 3]


def test_the_core_does_not_import_ultralytics():
    code = "import sys, uprm.integrations.ultralytics; assert 'ultralytics' not in sys.modules, 'imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
