"""Extraction with ultralytics YOLO-pose: the real yolo11n-pose architecture with random
weights (nothing downloaded), safe loading, batching, and refusal of what is not a
17-joint pose model."""

import collections
import copy
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

from uprm.testing import synthetic_clip, tiny_context
from uprm_expert_pose import PoseExpert, PoseWeightsError
from uprm_expert_pose.testing import pose_clip, random_pose_checkpoint

LOW = dict(conf=1e-6, imgsz=96, max_people=3, joint_dim=8, pose_dim=16)


@pytest.fixture(scope="module")
def expert(pose_pt):
    return PoseExpert(tiny_context(), weights=str(pose_pt), **LOW)


def test_people_from_a_local_pose_checkpoint(expert):
    clip = synthetic_clip(5, size=(72, 96), seed=3)
    f = expert.extract(clip)
    assert f["keypoints"].shape == (5, 3, 17, 3) and f["boxes"].shape == (5, 3, 4)
    assert f["person_mask"].all()  # random weights + a tiny threshold: K people a frame
    assert ((f["keypoints"] >= 0) & (f["keypoints"] <= 1)).all()
    assert ((f["boxes"] >= 0) & (f["boxes"] <= 1)).all()
    assert (f["boxes"][..., 2:] >= f["boxes"][..., :2]).all()
    assert torch.all(f["scores"][:, :-1] >= f["scores"][:, 1:])  # most confident first
    assert len({tuple(k.flatten().tolist()) for k in f["keypoints"][:, 0]}) > 1  # frames differ


def test_matches_ultralytics_own_predict_on_rgb_images(expert, pose_pt):
    """Our uint8 RGB tensor → BGR array path gives what YOLO.predict gives for the same
    frames as PIL (RGB) images: colour order and normalisation are right."""
    from ultralytics import YOLO

    clip = synthetic_clip(3, size=(72, 96), seed=5)
    ours = expert.extract(clip)
    images = [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in clip.frames]
    results = YOLO(str(pose_pt)).predict(images, conf=1e-6, imgsz=96, max_det=3, verbose=False)
    for i, r in enumerate(results):
        torch.testing.assert_close(ours["keypoints"][i, :, :, :2], r.keypoints.xyn.float(), atol=1e-4, rtol=0)
        torch.testing.assert_close(ours["keypoints"][i, :, :, 2], r.keypoints.conf.float(), atol=1e-4, rtol=0)
        torch.testing.assert_close(ours["scores"][i], r.boxes.conf.float(), atol=1e-4, rtol=0)


def test_batched_extraction_equals_frame_by_frame(pose_pt, expert):
    clip = synthetic_clip(4, size=64, seed=1)
    single = PoseExpert(tiny_context(), weights=str(pose_pt), batch_size=1, **LOW)
    a, b = expert.extract(clip), single.extract(clip)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0)


def test_frames_are_sent_in_one_predict_call(expert, monkeypatch):
    calls = []
    predictor = expert.estimator._get_predictor()
    real_call = type(predictor).__call__

    def spy(self, source=None, *args, **kwargs):
        calls.append(len(source))
        return real_call(self, source, *args, **kwargs)

    monkeypatch.setattr(type(predictor), "__call__", spy)
    expert.extract(synthetic_clip(6, size=64, seed=2))
    assert calls == [6]


def test_extraction_leaves_torch_threads_alone(pose_pt):
    """ultralytics' device selection would set the process to cpu_count - 1 threads."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        expert = PoseExpert(tiny_context(), weights=str(pose_pt), **LOW)  # a new predictor is set up
        expert.extract(synthetic_clip(2, size=64, seed=0))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_default_confidence_finds_nobody_and_the_adapter_copes(pose_pt):
    expert = PoseExpert(tiny_context(), weights=str(pose_pt), imgsz=64, joint_dim=8, pose_dim=16)
    f = expert.extract(synthetic_clip(4, size=64, seed=0))
    assert not f["person_mask"].any()
    out = expert(expert.collate([f]), torch.randn(1, 4 * expert.ctx.tokens_per_frame, 32))
    assert torch.isfinite(out).all()


def test_source_option_chooses_between_json_and_model(expert, pose_pt, tmp_path):
    clip = pose_clip(tmp_path, [1, 0, 2, 0], seed=0)
    from_json = expert.extract(clip)
    assert from_json["person_mask"].sum(dim=1).tolist() == [1, 0, 2, 0]  # auto: the clip's file wins
    forced = PoseExpert(tiny_context(), weights=str(pose_pt), source="yolo", **LOW).extract(clip)
    assert forced["person_mask"].all()


def test_frozen_perception_survives_dtype_changes_and_is_not_checkpointed(pose_pt):
    expert = PoseExpert(tiny_context(), weights=str(pose_pt), **LOW)
    clip = synthetic_clip(3, size=64, seed=4)
    before = expert.extract(clip)
    expert.train()
    assert not expert.estimator.training
    assert not any(p.requires_grad for p in expert.estimator.parameters())
    assert not any(k.startswith("estimator.") for k in expert.trainable_state_dict())
    expert.double()  # the adapter follows the model's dtype; the estimator runs in float32
    after = expert.extract(clip)
    for key in before:
        torch.testing.assert_close(before[key], after[key])
    copied = copy.deepcopy(expert)  # the ultralytics predictor is not copied; it is rebuilt
    for key, value in copied.extract(clip).items():
        torch.testing.assert_close(value, before[key])
    config = expert.extraction_config()
    assert len(config["weights_sha256"]) == 64 and config["options"]["weights"] == str(pose_pt)


def test_random_model_from_yaml():
    expert = PoseExpert(tiny_context(), model_config="yolo11n-pose.yaml", **LOW)
    f = expert.extract(synthetic_clip(2, size=64, seed=0))
    assert f["person_mask"].all()


# ---------------------------------------------------------------------------- refusals
def test_missing_weights_file(tmp_path):
    path = tmp_path / "yolo11n-pose.pt"
    with pytest.raises(FileNotFoundError, match=rf"{path}.*does not exist.*nothing is downloaded"):
        PoseExpert(tiny_context(), weights=str(path))


@pytest.fixture
def asset_download(monkeypatch, tmp_path):
    """A machine online (no offline switch) whose ultralytics "downloads" an asset by
    copying ``asset_download.serve``; the names asked for are in ``asset_download.calls``."""
    from ultralytics.utils import downloads

    for name in ("UPRM_OFFLINE", "YOLO_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def fake(file, *args, **kwargs):
        if pathlib.Path(file).exists():  # ultralytics' loader asks for local files too
            return str(file)
        fake.calls.append(str(file))
        target = tmp_path / "assets" / str(file)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(pathlib.Path(fake.serve).read_bytes())
        return str(target)

    fake.calls = []
    monkeypatch.setattr(downloads, "attempt_download_asset", fake)
    return fake


def test_online_an_asset_name_is_downloaded_by_ultralytics_and_loaded_safely(asset_download, pose_pt, detect_pt):
    asset_download.serve = pose_pt
    expert = PoseExpert(tiny_context(), weights="yolo11n-pose.pt", **LOW)
    assert asset_download.calls == ["yolo11n-pose.pt"]
    assert expert.extract(synthetic_clip(2, size=64))["person_mask"].any()
    asset_download.serve = detect_pt  # what was downloaded is checked like a local file
    with pytest.raises(PoseWeightsError, match=r"yolo11n-pose\.pt.*'detect' model, not a pose model"):
        PoseExpert(tiny_context(), weights="yolo11n-pose.pt")


def test_offline_an_asset_name_that_is_not_a_local_file_fails_at_once(asset_download, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"'yolo11n-pose\.pt' \(option weights=\) does not exist.*offline"):
        PoseExpert(tiny_context(), weights="yolo11n-pose.pt")
    assert asset_download.calls == []


def test_detection_checkpoint_is_refused(detect_pt):
    with pytest.raises(PoseWeightsError, match=rf"{detect_pt}.*'detect' model, not a pose model") as err:
        PoseExpert(tiny_context(), weights=str(detect_pt))
    assert err.value.path == str(detect_pt)


def test_detection_yaml_is_refused():
    with pytest.raises(PoseWeightsError, match=r"yolo11n\.yaml.*not a pose model"):
        PoseExpert(tiny_context(), model_config="yolo11n.yaml")


def test_pose_model_with_other_joints_is_refused(tmp_path):
    from ultralytics.nn.tasks import PoseModel, yaml_model_load

    cfg = yaml_model_load("yolo11n-pose.yaml")
    cfg["kpt_shape"] = [5, 3]
    path = tmp_path / "hand-pose.pt"
    torch.save({"model": PoseModel(cfg, verbose=False)}, path)
    with pytest.raises(PoseWeightsError, match=r"hand-pose\.pt.*kpt_shape \[5, 3\].*\[17, 3\]"):
        PoseExpert(tiny_context(), weights=str(path))


def test_damaged_and_foreign_files_are_refused(tmp_path):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(PoseWeightsError, match=r"damaged\.pt.*safe mode"):
        PoseExpert(tiny_context(), weights=str(damaged))
    bare = tmp_path / "state-dict.pt"
    torch.save({"model": collections.OrderedDict(weight=torch.zeros(2))}, bare)
    with pytest.raises(PoseWeightsError, match=r"state-dict\.pt.*holds no ultralytics model"):
        PoseExpert(tiny_context(), weights=str(bare))
    onnx = tmp_path / "pose.onnx"
    onnx.write_bytes(b"onnx")
    with pytest.raises(PoseWeightsError, match=r"pose\.onnx.*\.pt"):
        PoseExpert(tiny_context(), weights=str(onnx))


class _RunsCode:
    """A pickle payload that would create a file when unpickled without weights_only."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_weights_are_loaded_in_safe_mode_whatever_the_environment(tmp_path, monkeypatch):
    import ultralytics.nn.tasks as tasks

    monkeypatch.setattr(tasks, "SAFE_LOAD", False)  # as if ULTRALYTICS_SAFE_LOAD were off
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil-pose.pt"
    torch.save({"model": _RunsCode(marker)}, path)
    with pytest.raises(PoseWeightsError, match=r"evil-pose\.pt.*safe mode"):
        PoseExpert(tiny_context(), weights=str(path))
    assert not marker.exists()


def test_checkpoint_helper_gives_image_dependent_output(tmp_path):
    path = random_pose_checkpoint(tmp_path / "p.pt", seed=1, calibration_size=64)
    expert = PoseExpert(tiny_context(), weights=str(path), **LOW)
    a = expert.extract(synthetic_clip(2, size=64, seed=0))["keypoints"]
    b = expert.extract(synthetic_clip(2, size=64, seed=1))["keypoints"]
    assert not np.allclose(a.numpy(), b.numpy(), atol=1e-3)
