"""The derived predicates: per-frame geometry, association across frames, motion."""

import pytest

from uprm_expert_relation.geometry import (
    GeometryThresholds,
    associate,
    derive_relations,
    motion_relations,
    spatial_relations,
)
from uprm_expert_relation.graph import FrameGraph, GraphObject, Relation

SQUARE = (100, 100)  # frame size in pixels; boxes below are normalised
TH = GeometryThresholds()


def obj(label, x1, y1, x2, y2, score=1.0):
    return GraphObject(label, (x1, y1, x2, y2), score)


def triples(relations, objects):
    return sorted((objects[r.subject].label, r.predicate, objects[r.object].label) for r in relations)


def test_inside_is_one_way_and_has_no_direction():
    objects = [obj("bag", 0.42, 0.42, 0.48, 0.48), obj("car", 0.3, 0.3, 0.7, 0.7)]
    assert triples(spatial_relations(objects, SQUARE, TH), objects) == [("bag", "inside", "car")]


def test_overlapping_pairs_get_overlap_and_direction_both_ways():
    objects = [obj("person", 0.1, 0.1, 0.4, 0.4), obj("car", 0.3, 0.15, 0.6, 0.45)]
    assert triples(spatial_relations(objects, SQUARE, TH), objects) == [
        ("car", "overlapping", "person"),
        ("car", "right of", "person"),
        ("person", "left of", "car"),
        ("person", "overlapping", "car"),
    ]


def test_near_uses_the_gap_relative_to_the_boxes_size():
    # sides 0.2: gap ≤ 0.5 × 0.2 = 0.1 is near; the vertical offset dominates
    close = [obj("person", 0.4, 0.1, 0.6, 0.3), obj("bag", 0.4, 0.38, 0.6, 0.58)]
    assert triples(spatial_relations(close, SQUARE, TH), close) == [
        ("bag", "below", "person"),
        ("bag", "near", "person"),
        ("person", "above", "bag"),
        ("person", "near", "bag"),
    ]
    far = [obj("person", 0.4, 0.1, 0.6, 0.3), obj("bag", 0.4, 0.45, 0.6, 0.65)]
    assert spatial_relations(far, SQUARE, TH) == []
    assert spatial_relations(close, SQUARE, GeometryThresholds(near=0.0)) == []


def test_distances_are_in_frame_diagonals_not_normalised_units():
    # the same normalised gap is a larger distance along the long side of a wide frame
    pair = [obj("person", 0.1, 0.4, 0.2, 0.6), obj("bag", 0.26, 0.4, 0.36, 0.6)]
    assert spatial_relations(pair, (100, 100), TH)  # gap 0.06 ≤ 0.5 × √(0.1 × 0.2)
    assert not spatial_relations(pair, (400, 100), TH)  # gap stretched horizontally 4×


def test_association_is_one_to_one_by_overlap_and_label():
    before = [obj("person", 0.1, 0.1, 0.3, 0.5), obj("person", 0.6, 0.1, 0.8, 0.5), obj("car", 0.1, 0.6, 0.4, 0.9)]
    after = [obj("person", 0.62, 0.1, 0.82, 0.5), obj("car", 0.1, 0.6, 0.4, 0.9), obj("person", 0.12, 0.1, 0.32, 0.5)]
    assert associate(before, after, SQUARE, TH) == {0: 1, 1: 2, 2: 0}
    # another label never matches, and a jump beyond both thresholds starts a new object
    assert associate(before, [obj("bag", 0.1, 0.1, 0.3, 0.5)], SQUARE, TH) == {}
    assert associate(before, [obj("person", 0.35, 0.55, 0.45, 0.95)], SQUARE, TH) == {}
    # small, fast objects without overlap are matched by centre distance
    assert associate([obj("bag", 0.1, 0.1, 0.12, 0.12)], [obj("bag", 0.15, 0.1, 0.17, 0.12)], SQUARE, TH) == {0: 0}


def test_approaching_and_moving_away_need_both_objects_tracked():
    people = [obj("person", 0.1, 0.3, 0.2, 0.7), obj("person", 0.7, 0.3, 0.8, 0.7)]
    closer = [obj("person", 0.15, 0.3, 0.25, 0.7), obj("person", 0.65, 0.3, 0.75, 0.7)]
    assert triples(motion_relations(people, closer, SQUARE, TH), closer) == [
        ("person", "approaching", "person"),
        ("person", "approaching", "person"),
    ]
    assert {r.predicate for r in motion_relations(closer, people, SQUARE, TH)} == {"moving away"}
    assert motion_relations(people, people, SQUARE, TH) == []  # standing still
    nudged = [obj("person", 0.105, 0.3, 0.205, 0.7), obj("person", 0.7, 0.3, 0.8, 0.7)]
    assert motion_relations(people, nudged, SQUARE, TH) == []  # 0.005 of the side < 0.02 of the diagonal
    newcomer = [closer[0], obj("person", 0.45, 0.3, 0.55, 0.7)]  # the second one is not the earlier one
    assert motion_relations(people, newcomer, SQUARE, TH) == []


def test_derive_relations_adds_to_the_given_relations_without_changing_them():
    frames = [
        FrameGraph([obj("person", 0.1, 0.3, 0.2, 0.7, 0.9), obj("bag", 0.35, 0.5, 0.45, 0.6, 0.5)]),  # apart
        FrameGraph([obj("person", 0.17, 0.3, 0.27, 0.7, 0.9), obj("bag", 0.32, 0.5, 0.42, 0.6, 0.5)]),  # closer
    ]
    frames[1].relations.append(Relation(0, "holding", 1, 0.8))
    derived = derive_relations(frames, SQUARE)
    assert len(frames[1].relations) == 1  # input untouched
    assert triples(derived[0].relations, derived[0].objects) == []
    got = triples(derived[1].relations, derived[1].objects)
    assert got == [
        ("bag", "approaching", "person"),
        ("bag", "near", "person"),
        ("bag", "right of", "person"),
        ("person", "approaching", "bag"),
        ("person", "holding", "bag"),
        ("person", "left of", "bag"),
        ("person", "near", "bag"),
    ]
    assert all(r.score == pytest.approx(0.45) for r in derived[1].relations if r.predicate != "holding")


def test_thresholds_are_validated():
    assert GeometryThresholds.from_options({"near": 1}).near == 1.0
    with pytest.raises(ValueError, match=r"unknown geometry threshold\(s\) \['nearby'\]"):
        GeometryThresholds.from_options({"nearby": 0.3})
    with pytest.raises(ValueError, match="'motion' must be a non-negative number"):
        GeometryThresholds.from_options({"motion": -1})
