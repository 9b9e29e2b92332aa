"""The detector source: ultralytics models from YAML and from .pt in safe mode."""

import pickle
from pathlib import Path

import pytest
import torch

from uprm.testing import random_video_tokens, synthetic_clip, tiny_context
from uprm_expert_relation import RelationExpert
from uprm_expert_relation.detector import DetectorError, letterbox
from uprm_expert_relation.testing import save_detector_checkpoint
from uprm_expert_relation.vocab import COCO_LABELS, DERIVED_PREDICATES

CTX = tiny_context()


def test_a_yaml_detector_runs_the_real_code_path():
    expert = RelationExpert(CTX, model_config="yolo11n.yaml", imgsz=64, conf=0.0, max_objects=5, node_dim=8)
    assert expert.perception_names == ("detector",)
    assert expert.detector_names == list(COCO_LABELS)  # a COCO-sized YAML model gets COCO's names
    assert not any(k.startswith("detector.") for k in expert.trainable_state_dict())
    feats = expert.extract(synthetic_clip(2, size=(48, 64)))
    assert feats["object_mask"].sum(1).tolist() == [5, 5]  # conf 0: K objects per frame
    assert all(expert.labels.is_known(expert.labels.name(i)) for i in feats["labels"][feats["object_mask"]].tolist())
    # the same seed builds the same random detector: extraction is reproducible across instances
    again = RelationExpert(CTX, model_config="yolo11n.yaml", imgsz=64, conf=0.0, max_objects=5, node_dim=8)
    assert torch.equal(again.extract(synthetic_clip(2, size=(48, 64)))["scores"], feats["scores"])


def test_detections_are_valid_boxes_with_derived_relations(detector_pt):
    expert = RelationExpert(CTX, weights=detector_pt, imgsz=64, conf=0.25, max_objects=6, node_dim=8)
    clip = synthetic_clip(4, size=(48, 64), seed=1)
    graphs = expert.frame_graphs(clip)
    assert sum(len(g.objects) for g in graphs) > 0
    for g in graphs:
        assert len(g.objects) <= 6
        scores = [o.score for o in g.objects]
        assert scores == sorted(scores, reverse=True) and all(s >= 0.25 for s in scores)
        for o in g.objects:
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert {r.predicate for r in g.relations} <= set(DERIVED_PREDICATES)
    assert any(g.relations for g in graphs)
    feats = expert.extract(clip)
    tokens = random_video_tokens(CTX, 1)
    with torch.no_grad():
        out = expert({k: v[None] for k, v in feats.items()}, tokens)
    assert out.shape == tokens.shape and not torch.equal(out, tokens)
    # derive_relations=False: objects only
    bare = RelationExpert(CTX, weights=detector_pt, imgsz=64, max_objects=6, node_dim=8, derive_relations=False)
    assert all(not g.relations for g in bare.frame_graphs(clip))


def test_nothing_detected_gives_empty_graphs(detector_pt):
    expert = RelationExpert(CTX, weights=detector_pt, imgsz=64, conf=1.0, max_objects=4, node_dim=8)
    feats = expert.extract(synthetic_clip(4, size=64))
    assert not feats["object_mask"].any() and feats["relations"].eq(0).all()
    tokens = random_video_tokens(CTX, 1)
    with torch.no_grad():
        assert expert({k: v[None] for k, v in feats.items()}, tokens).eq(0).all()  # nothing to say


def test_json_wins_over_the_detector_in_auto_mode(detector_pt, write_json):
    from uprm_expert_relation.testing import scene_graph_document

    expert = RelationExpert(CTX, weights=detector_pt, imgsz=64, node_dim=8)
    clip = synthetic_clip(1, size=64)
    clip.meta.update(frame_indices=[0], scene_graph=str(write_json(scene_graph_document([{"frame_index": 0, "objects": [("fire", [0, 0, 9, 9])]}]))))
    assert expert.describe(expert.extract(clip)) == [["fire#0"]]
    forced = RelationExpert(CTX, weights=detector_pt, imgsz=64, node_dim=8, source="detector", conf=1.0)
    assert forced.describe(forced.extract(clip)) == [[]]


def test_extraction_config_names_the_weights_by_content(detector_pt, tmp_path):
    expert = RelationExpert(CTX, weights=detector_pt, imgsz=64, node_dim=8)
    config = expert.extraction_config()
    assert config["options"]["weights"] == str(detector_pt) and len(config["weights_sha256"]) == 64
    other = tmp_path / "other.pt"
    other.write_bytes(Path(detector_pt).read_bytes() + b"\0")  # zip readers ignore trailing bytes
    assert RelationExpert(CTX, weights=other, imgsz=64, node_dim=8).extraction_config()["weights_sha256"] != config["weights_sha256"]


def test_a_pose_model_is_refused(tmp_path):
    from ultralytics.nn.tasks import PoseModel

    path = save_detector_checkpoint(PoseModel("yolo11n-pose.yaml", verbose=False), tmp_path / "pose.pt")
    with pytest.raises(DetectorError, match=r"pose.pt: is a pose model; the relation expert needs an object detection model"):
        RelationExpert(CTX, weights=path)


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):  # what a malicious checkpoint does: run code on load
        return (Path.touch, (self.target,))


def test_checkpoints_load_in_safe_mode_only(tmp_path, monkeypatch):
    monkeypatch.setenv("ULTRALYTICS_SAFE_LOAD", "0")  # the user's setting does not matter
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Payload(target)}, evil)
    with pytest.raises(DetectorError, match=r"evil.pt: not a loadable ultralytics checkpoint in safe mode"):
        RelationExpert(CTX, weights=evil)
    assert not target.exists()


@pytest.fixture
def asset_download(monkeypatch, tmp_path):
    """A machine online (no offline switch) whose ultralytics "downloads" an asset by
    copying ``asset_download.serve``; the names asked for are in ``asset_download.calls``."""
    from ultralytics.utils import downloads

    for name in ("UPRM_OFFLINE", "YOLO_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def fake(file, *args, **kwargs):
        if Path(file).exists():  # ultralytics' loader asks for local files too
            return str(file)
        fake.calls.append(str(file))
        target = tmp_path / "assets" / str(file)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(Path(fake.serve).read_bytes())
        return str(target)

    fake.calls = []
    monkeypatch.setattr(downloads, "attempt_download_asset", fake)
    return fake


def test_online_an_asset_name_is_downloaded_by_ultralytics_and_loaded_safely(asset_download, detector_pt, tmp_path):
    asset_download.serve = detector_pt
    expert = RelationExpert(CTX, weights="yolo11n.pt", imgsz=64, node_dim=8)
    assert asset_download.calls == ["yolo11n.pt"] and expert.detector_names == list(COCO_LABELS)
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Payload(target)}, evil)
    asset_download.serve = evil
    with pytest.raises(DetectorError, match=r"yolo11s.pt: not a loadable ultralytics checkpoint in safe mode"):
        RelationExpert(CTX, weights="yolo11s.pt")
    assert not target.exists()


def test_offline_an_asset_name_that_is_not_a_local_file_fails_at_once(asset_download, monkeypatch):
    monkeypatch.setenv("UPRM_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"'yolo11n.pt' are not a local file.*offline.*nothing is downloaded"):
        RelationExpert(CTX, weights="yolo11n.pt")
    assert asset_download.calls == []


def test_bad_weight_files_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing.pt' are not a local file"):
        RelationExpert(CTX, weights=tmp_path / "missing.pt")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(DetectorError, match=r"model.onnx: an ultralytics detector checkpoint is a .pt file"):
        RelationExpert(CTX, weights=tmp_path / "model.onnx")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "state.pt")
    with pytest.raises(DetectorError, match=r"state.pt: the checkpoint holds no ultralytics model"):
        RelationExpert(CTX, weights=tmp_path / "state.pt")
    (tmp_path / "junk.pt").write_bytes(pickle.dumps([1, 2, 3], protocol=2)[:5])
    with pytest.raises(DetectorError, match=r"junk.pt: not a loadable"):
        RelationExpert(CTX, weights=tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="not both"):
        RelationExpert(CTX, weights=tmp_path / "state.pt", model_config="yolo11n.yaml")


def test_letterbox_keeps_the_aspect_and_pads_grey_to_the_stride():
    frames = torch.full((2, 3, 96, 128), 255, dtype=torch.uint8)
    x, scale, (left, top) = letterbox(frames, 100, 32)
    assert scale == pytest.approx(100 / 128)
    assert x.shape == (2, 3, 96, 128)  # 75 x 100 padded up to multiples of 32
    assert (left, top) == (14, 10)
    assert torch.allclose(x[:, :, top : top + 75, left : left + 100], torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(x[:, :, :top], torch.tensor(114 / 255))
    assert torch.allclose(x[:, :, :, :left], torch.tensor(114 / 255))
