"""Scene-graph JSON: reading, node merging, frame matching, encoding, bad input."""

import json
import os
import re
import warnings

import pytest
import torch

from uprm.testing import synthetic_clip, tiny_context
from uprm_expert_relation import RelationExpert
from uprm_expert_relation.graph import encode_graphs
from uprm_expert_relation.scene_graph import (
    SceneGraphError,
    SceneGraphWarning,
    clip_frame_graphs,
    read_scene_graph,
    write_scene_graph,
)
from uprm_expert_relation.testing import scene_graph_document
from uprm_expert_relation.vocab import Vocabulary, default_labels, default_predicates


@pytest.fixture(scope="module")
def expert():
    return RelationExpert(tiny_context(), node_dim=8, ffn_dim=8, max_objects=4, max_relations=2)


def clip_for(path, frame_indices=(0, 1), size=64, **meta):
    clip = synthetic_clip(len(frame_indices), size=size)
    clip.meta.update(scene_graph=str(path), frame_indices=list(frame_indices), **meta)
    return clip


PERSON = [8, 8, 24, 56]
BAG = [20, 30, 30, 40]


def test_triplets_and_objects_become_one_graph(expert, write_json):
    doc = scene_graph_document(
        [
            {"frame_index": 0, "objects": [("person", PERSON, 0.9), ("car", [40, 40, 60, 60], 0.8)]},
            {
                "frame_index": 1,
                "objects": [("person", PERSON, 0.9)],
                "triplets": [("Person", PERSON, "Holding", "bag", BAG, 0.87), ("person", [9, 8, 24, 57], "on_fire", "bag", BAG, 0.5)],
            },
        ]
    )
    feats = expert.extract(clip_for(write_json(doc)))
    assert expert.describe(feats) == [
        ["person#0", "car#1"],
        ["person#0 -holding-> bag#1 (0.87)", "person#0 -on fire-> bag#1 (0.50)"],
    ]
    # the listed person, "Person" and a near-identical person box are one node
    assert feats["object_mask"].sum(1).tolist() == [2, 2]
    assert feats["scores"][1, :2].tolist() == pytest.approx([0.9, 0.87])
    torch.testing.assert_close(feats["boxes"][1, 0], torch.tensor(PERSON) / 64.0)
    assert feats["relations"][0].eq(0).all()  # objects without triplets: no edges
    predicates = Vocabulary(default_predicates())
    assert sorted(feats["relations"][1, 0, 1].tolist()) == sorted([predicates.id("holding"), predicates.id("on fire")])


def test_unknown_strings_get_stable_hashed_buckets():
    labels = Vocabulary(default_labels(), buckets=64)
    n = len(labels.known)
    assert labels.id("person") == 1 and labels.is_known("Traffic_Light")
    unknown = labels.id("zorblax")
    assert n + 1 <= unknown <= n + 64 and labels.id("  ZORBLAX ") == unknown
    assert labels.name(unknown).startswith("<bucket")
    # CRC-32 is fixed, so the id is the same in every process: pinned here
    import zlib

    assert unknown == n + 1 + zlib.crc32(b"zorblax") % 64
    predicates = Vocabulary(default_predicates())
    for name in ("near", "holding", "hitting", "pushing", "carrying", "inside", "on fire", "left of", "approaching"):
        assert predicates.is_known(name), name
    assert predicates.id("left_of") == predicates.id("Left Of")


def test_keeps_the_best_objects_and_relations(write_json):
    expert = RelationExpert(tiny_context(), node_dim=8, max_objects=2, max_relations=2)
    doc = scene_graph_document(
        [
            {
                "frame_index": 0,
                "objects": [("car", [0, 0, 10, 10], 0.3), ("door", [40, 0, 50, 30], 0.6)],
                "triplets": [
                    ("person", PERSON, "near", "bag", BAG, 0.9),
                    ("person", PERSON, "holding", "bag", BAG, 0.7),
                    ("person", PERSON, "holding", "bag", BAG, 0.95),  # repeated predicate: counted once, best score
                    ("person", PERSON, "carrying", "bag", BAG, 0.4),  # third predicate of the pair: dropped (R = 2)
                    ("person", PERSON, "near", "car", [0, 0, 10, 10], 0.8),  # car is not among the K = 2 best
                ],
            }
        ]
    )
    feats = expert.extract(clip_for(write_json(doc), frame_indices=[0]))
    assert expert.describe(feats) == [["person#0 -holding-> bag#1 (0.95)", "person#0 -near-> bag#1 (0.90)"]]


def test_frames_match_by_index_then_nearest_within_half_a_step(expert, write_json):
    doc = scene_graph_document(
        [
            {"frame_index": 10, "objects": [("person", PERSON)]},
            {"frame_index": 21, "objects": [("car", PERSON)]},
            {"frame_index": 36, "objects": [("door", PERSON)]},
        ]
    )
    path = write_json(doc)
    feats = expert.extract(clip_for(path, frame_indices=[10, 20, 30]))  # step 10: tolerance 5
    assert expert.describe(feats) == [["person#0"], ["car#0"], []]
    # with meta fps instead: indices round(timestamp x fps)
    clip = synthetic_clip(2, size=64)
    clip.timestamps = torch.tensor([1.0, 2.1], dtype=torch.float64)
    clip.meta.update(scene_graph=str(path), fps=10.0)
    assert expert.describe(expert.extract(clip)) == [["person#0"], ["car#0"]]


def test_frames_match_by_timestamp_without_meta(expert, write_json):
    doc = scene_graph_document(
        [
            {"frame_index": 3, "timestamp": 0.1, "objects": [("person", PERSON)]},
            {"frame_index": 30, "timestamp": 1.02, "objects": [("bag", BAG)]},
        ]
    )
    clip = synthetic_clip(3, size=64)
    clip.timestamps = torch.tensor([0.1, 1.0, 1.9], dtype=torch.float64)
    clip.meta["scene_graph"] = str(write_json(doc))
    assert expert.describe(expert.extract(clip)) == [["person#0"], ["bag#0"], []]


def test_a_file_of_other_frames_warns(expert, write_json):
    path = write_json(scene_graph_document([{"frame_index": 500, "objects": [("person", PERSON)]}]))
    with pytest.warns(SceneGraphWarning, match=r"none of the 2 frames.*500\.\.500"):
        feats = expert.extract(clip_for(path))
    assert not feats["object_mask"].any()


def test_frame_size_comes_from_the_file_then_the_meta_then_the_clip(expert, write_json):
    doc = scene_graph_document([{"frame_index": 0, "objects": [("person", [0, 0, 32, 32])]}], width=128, height=128)
    with pytest.warns(SceneGraphWarning, match="differ from clip"):
        feats = expert.extract(clip_for(write_json(doc), frame_indices=[0], source_size=[64, 64]))
    assert feats["boxes"][0, 0].tolist() == [0, 0, 0.25, 0.25]
    del doc["width"], doc["height"]
    feats = expert.extract(clip_for(write_json(doc), frame_indices=[0], source_size=[64, 64]))
    assert feats["boxes"][0, 0].tolist() == [0, 0, 0.5, 0.5]
    feats = expert.extract(clip_for(write_json(doc), frame_indices=[0], size=32))  # no source_size: clip's 32x32
    assert feats["boxes"][0, 0].tolist() == [0, 0, 1, 1]


def test_grid_boxes_follow_the_coarse_centre_crop(expert, write_json):
    # 128x64 frame: the tower sees the centre 64x64 (x from 32 to 96)
    doc = scene_graph_document(
        [{"frame_index": 0, "objects": [("person", [48, 0, 80, 32]), ("car", [0, 0, 30, 64])]}], width=128, height=64
    )
    clip = synthetic_clip(1, size=(64, 128))
    clip.meta.update(scene_graph=str(write_json(doc)), frame_indices=[0])
    feats = expert.extract(clip)
    assert feats["grid_boxes"][0, 0].tolist() == [0.25, 0.0, 0.75, 0.5]
    x1, _, x2, _ = feats["grid_boxes"][0, 1].tolist()
    assert x1 == x2 == 0.0  # wholly left of the crop: covers no patch


def test_parsed_files_are_cached_until_they_change(write_json):
    path = write_json(scene_graph_document([{"frame_index": 0, "objects": [("person", PERSON)]}]))
    first = read_scene_graph(path)
    assert read_scene_graph(path) is first
    write_json(scene_graph_document([{"frame_index": 0, "objects": [("car", PERSON)]}, {"frame_index": 1}]))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = read_scene_graph(path)
    assert second is not first and sorted(second.frames) == [0, 1]


def test_write_then_read_gives_the_same_graphs(tmp_path):
    clip = synthetic_clip(2, size=(48, 64))
    expert = RelationExpert(tiny_context(), node_dim=8, max_objects=4, derive_relations=True)
    doc = scene_graph_document(
        [
            {"frame_index": 0, "objects": [("person", [4, 4, 20, 40], 0.9), ("bag", [18, 20, 26, 30], 0.7)]},
            {"frame_index": 1, "objects": [("person", [0, 4, 16, 40], 0.9), ("bag", [24, 20, 32, 30], 0.7)]},
        ],
        width=64,
        height=48,
    )
    (tmp_path / "in.json").write_text(json.dumps(doc))
    clip.meta.update(scene_graph=str(tmp_path / "in.json"), frame_indices=[0, 1])
    graphs = expert.frame_graphs(clip)  # objects + derived relations
    assert any(r.predicate == "moving away" for r in graphs[1].relations)
    write_scene_graph(tmp_path / "out.json", graphs, 64, 48, frame_indices=[0, 1], timestamps=[0.0, 0.5])
    clip.meta["scene_graph"] = str(tmp_path / "out.json")
    plain = RelationExpert(tiny_context(), node_dim=8, max_objects=4)  # JSON as is, nothing derived

    def bag(features):  # node numbers differ between the two files: compare without them
        return [sorted(re.sub(r"#\d+", "", line) for line in frame) for frame in expert.describe(features)]

    encoded = encode_graphs(graphs, expert.labels, expert.predicates, 4, 4, (64, 48))
    assert bag(plain.extract(clip)) == bag(encoded)


# ---------------------------------------------------------------------- bad input
BAD = [
    ('{"frames": [', None, r"malformed JSON at line 1, column 13"),
    ("[1, 2]", "top level", "must be a JSON object"),
    ("{}", "frames", "is missing"),
    ('{"frames": {}}', "frames", "must be a list"),
    ('{"frames": [{"objects": []}]}', r"frames\[0\]\.frame_index", "is missing"),
    ('{"frames": [{"frame_index": "3"}]}', r"frames\[0\]\.frame_index", "non-negative integer"),
    ('{"frames": [{"frame_index": -1}]}', r"frames\[0\]\.frame_index", "non-negative integer"),
    ('{"frames": [{"frame_index": 2}, {"frame_index": 2}]}', r"frames\[1\]\.frame_index", r"twice \(also in frames\[0\]\)"),
    ('{"frames": [{"frame_index": 0, "objects": [{"label": "car", "box": [1, 2, 3]}]}]}', r"frames\[0\]\.objects\[0\]\.box", "four numbers"),
    ('{"frames": [{"frame_index": 0, "objects": [{"label": "car", "box": [1, 2, "x", 4]}]}]}', r"frames\[0\]\.objects\[0\]\.box\[2\]", "finite number"),
    ('{"frames": [{"frame_index": 0, "objects": [{"label": "car", "box": [1, 2, NaN, 4]}]}]}', r"objects\[0\]\.box\[2\]", "finite number"),
    ('{"frames": [{"frame_index": 0, "objects": [{"label": "car", "box": [10, 0, 5, 10]}]}]}', r"frames\[0\]\.objects\[0\]\.box", "negative width"),
    ('{"frames": [{"frame_index": 0, "objects": [{"box": [0, 0, 5, 10]}]}]}', r"frames\[0\]\.objects\[0\]\.label", "is missing"),
    ('{"frames": [{"frame_index": 0, "objects": [{"label": "car", "box": [0, 0, 5, 10], "score": 1.5}]}]}', r"objects\[0\]\.score", r"must lie in \[0.0, 1.0\]"),
    ('{"frames": [{"frame_index": 0, "triplets": [{"subject": {"label": "a", "box": [0, 0, 1, 1]}, "object": {"label": "b", "box": [0, 0, 1, 1]}}]}]}', r"frames\[0\]\.triplets\[0\]\.predicate", "is missing"),
    ('{"frames": [{"frame_index": 0, "triplets": [{"subject": {"label": "a", "box": [0, 0, 1, 1]}, "predicate": " ", "object": {"label": "b", "box": [0, 0, 1, 1]}}]}]}', r"triplets\[0\]\.predicate", "non-empty string"),
    ('{"frames": [{"frame_index": 0, "triplets": [{"subject": {"label": "a", "box": [0, 9, 1, 1]}, "predicate": "near", "object": {"label": "b", "box": [0, 0, 1, 1]}}]}]}', r"triplets\[0\]\.subject\.box", "negative height"),
    ('{"width": -3, "frames": []}', "width", "must lie in"),
]


@pytest.mark.parametrize(("text", "field", "problem"), BAD)
def test_bad_files_name_the_file_and_the_field(expert, write_json, text, field, problem):
    path = write_json(text, name="bad.json")
    with pytest.raises(SceneGraphError) as info:
        expert.extract(clip_for(path))
    message = str(info.value)
    assert message.startswith(str(path)), message
    if field is not None:
        assert re.search(field, message) and re.search(field, info.value.field or ""), message
    assert re.search(problem, message), message


def test_boxes_outside_the_frame_are_clamped_or_dropped_with_a_warning(expert, write_json):
    doc = scene_graph_document(
        [
            {
                "frame_index": 0,
                "objects": [("person", [-10, -5, 30, 70])],
                "triplets": [("person", [-10, -5, 30, 70], "near", "car", [100, 10, 120, 30])],  # car: wholly outside
            }
        ]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feats = expert.extract(clip_for(write_json(doc), frame_indices=[0]))
    messages = [str(w.message) for w in caught if issubclass(w.category, SceneGraphWarning)]
    assert any("clamped" in m and "frames[0].objects[0].box" in m for m in messages), messages
    assert any("dropped" in m and "frames[0].triplets[0].object.box" in m for m in messages), messages
    assert expert.describe(feats) == [["person#0"]]  # the triplet went with the car
    assert feats["boxes"][0, 0].tolist() == [0.0, 0.0, 30 / 64, 1.0]


def test_missing_file_and_bad_meta_are_clear(expert, write_json, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        expert.extract(clip_for(tmp_path / "nope.json"))
    path = write_json(scene_graph_document([{"frame_index": 0}]))
    with pytest.raises(ValueError, match=r"clip 'synthetic-0'.*frame_indices.*one integer per frame \(2\)"):
        expert.extract(_with_meta(path, frame_indices=[0, 1, 2]))
    doc = scene_graph_document([{"frame_index": 0, "objects": [("person", PERSON)]}])
    clip = synthetic_clip(2, size=64)
    clip.meta["scene_graph"] = str(write_json(doc))  # no frame_indices, no fps, no timestamps in the file
    with pytest.raises(SceneGraphError, match=r"frames\[\*\]\.timestamp: cannot match clip 'synthetic-0'"):
        expert.extract(clip)


def _with_meta(path, **meta):
    clip = synthetic_clip(2, size=64)
    clip.meta.update(scene_graph=str(path), **meta)
    return clip


def test_without_any_source_the_error_says_what_to_pass():
    expert = RelationExpert(tiny_context(), node_dim=8)  # no options, no file: builds
    with pytest.raises(ValueError) as info:
        expert.extract(synthetic_clip(2, size=64, video_id="Stealing001"))
    message = str(info.value)
    assert "'Stealing001'" in message and "meta['scene_graph']" in message and "weights=" in message
    json_only = RelationExpert(tiny_context(), node_dim=8, source="json")
    with pytest.raises(ValueError, match=r"clip 'x' has no scene graph"):
        json_only.extract(synthetic_clip(1, size=32, video_id="x"))
    with pytest.raises(ValueError, match=r"source='detector' needs weights="):
        RelationExpert(tiny_context(), source="detector")
    with pytest.raises(ValueError, match="source must be one of"):
        RelationExpert(tiny_context(), source="reltr")


def test_clip_frame_graphs_is_usable_alone(write_json):
    path = write_json(scene_graph_document([{"frame_index": 1, "triplets": [("person", PERSON, "kicking", "door", BAG)]}]))
    graphs = clip_frame_graphs(clip_for(path), path)
    assert [len(g.objects) for g in graphs] == [0, 2]
    assert [(r.subject, r.predicate, r.object) for r in graphs[1].relations] == [(0, "kicking", 1)]
