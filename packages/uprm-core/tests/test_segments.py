"""parse_segments on the answers models give, and on anything else."""

import pytest

from uprm import Segment, parse_segments
from uprm.inference.segments import parse_time


def spans(text, duration=600):
    return [(s.start, s.end) for s in parse_segments(text, duration)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The threat occurs between 22 and 24 seconds.", [(22, 24)]),
        ("The threat occurs between 22.5s and 24.5s", [(22.5, 24.5)]),
        ("between 22 seconds and 24 seconds", [(22, 24)]),
        ("from 1:02 to 1:10", [(62, 70)]),
        ("from 00:01:02.5 until 00:01:10", [(62.5, 70)]),
        ("22-24", [(22, 24)]),
        ("22 – 24 s", [(22, 24)]),
        ("22s—24s", [(22, 24)]),
        ("[12.5, 20]", [(12.5, 20)]),
        ("(3; 7)", [(3, 7)]),
        ("between 1 and 2 minutes", [(60, 120)]),
        ("between 1.5 min and 100 s", [(90, 100)]),
        ("[0052,0114][0118,0144]", [(52, 74), (78, 104)]),
        ("The threat occurs between 3 and 5 seconds and between 9 and 12 seconds.", [(3, 5), (9, 12)]),
        ("The threat occurs between 5.5 and 8 seconds.</s>", [(5.5, 8)]),
        ("<s> USER answer: 10 to 20 seconds </s><pad><pad>", [(10, 20)]),
        ("between 8 and 3", [(3, 8)]),  # ordered
        ("between 590 and 700", [(590, 600)]),  # clamped to the duration
        ("between 5 and 5", []),  # empty
        ("between 700 and 800", []),  # empty after clamping
        ("There is no threat in the video.", []),
        ("Yes, there exists a threat.", []),
        ("the 2019-2020 season", []),
        ("", []),
    ],
)
def test_answers(text, expected):
    assert spans(text) == [(float(a), float(b)) for a, b in expected]


def test_a_segment_has_defaults_and_serialises():
    seg = parse_segments("between 1 and 2", 10)[0]
    assert seg == Segment(1.0, 2.0, "", 1.0) and seg.length == 1.0
    assert seg.to_dict() == {"start_s": 1.0, "end_s": 2.0, "cause": "", "score": 1.0}


def test_no_duration_means_no_upper_bound():
    assert spans("between 100 and 5000", None) == [(100.0, 5000.0)]


@pytest.mark.parametrize("junk", [None, 42, b"bytes", ["list"], "\x00" * 50, "between", "1:" * 5000,
                                  "between " + "9" * 400 + " and 1", "[" * 10000, "-" * 10000 + "1-2"])
def test_never_raises(junk):
    result = parse_segments(junk, 60)
    assert isinstance(result, list)
    assert all(0 <= s.start < s.end <= 60 for s in result)


def test_parse_time():
    assert parse_time("1:02:03.5") == 3723.5
    assert parse_time("01:14") == 74
    assert parse_time("22.5s") == 22.5
    assert parse_time("2 min") == 120
    assert parse_time("soon") is None
