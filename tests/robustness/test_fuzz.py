"""Fuzzing with hypothesis (issue 16, item 3).

- :func:`uprm.parse_segments` on arbitrary text and text built from time-like fragments,
  with arbitrary durations: never raises; every segment has finite ``0 ≤ start < end``,
  inside ``[0, duration]`` when a duration is given (segments stay in order of
  appearance: a model's first range is its best guess).
- The annotation readers (UCF-Crime, UCA, CUVA) and the instruction loader on
  arbitrary text and bytes written to a file: they parse, or raise the library's error
  (``AnnotationError`` / ``RecordError``) naming the file and, for a bad line, the line —
  never another exception.
- The REST API on arbitrary JSON: never a 500; every refusal is a problem+json 4xx, or
  the job is accepted (202).

Deterministic (``derandomize=True``) and without an example database (nothing is written
into the repository). Each example a fuzzer found is kept as an explicit ``@example``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from uprm import parse_segments
from uprm.errors import AnnotationError, RecordError

# hypothesis' own caches (constants, unicode data) go with the tests' other caches, not
# into the working directory; no example database is kept (database=None)
set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / ".cache" / "test" / "hypothesis")
FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FEW = settings(FUZZ, max_examples=60)


# -- parse_segments ------------------------------------------------------------------------------

_FRAGMENTS = ["between", "and", "from", "to", "until", "-", "–", "—", "~", "[", "]", "(", ")", ",", ";", ".",
              ":", " ", "  ", "\n", "s", "sec", "seconds", "min", "minutes", "m", "h", "hours", "The threat occurs",
              "</s>", "<pad>", "[INST]", "<|im_end|>", "【", "】", "，", "0052", "0114", "9999", "0060", "-1", "1e309"]
_numbers = st.one_of(
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e5, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.integers(0, 99).map(lambda v: f"{v:02d}"),
    st.integers(300, 400).map(lambda n: "9" * n),  # overflows a float: inf
)
_clocks = st.builds(lambda h, m, s: f"{h}:{m:02d}:{s:02d}", st.integers(0, 30), st.integers(0, 99), st.integers(0, 99))
_timelike = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), _numbers, _clocks), max_size=24).map("".join)
_texts = st.one_of(st.text(max_size=200), _timelike,
                   st.lists(st.one_of(_timelike, st.text(max_size=8)), max_size=6).map(" ".join))
_durations = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6),
                       st.floats(0.001, 1e4))


@FUZZ
@given(text=_texts, duration=_durations)
@example(text="between 1 and " + "9" * 400 + " seconds", duration=None)  # an end of inf seconds
@example(text="from 0:10 to 99999999999999999999999999999999999:00", duration=float("inf"))
@example(text="[0052,0114] between 8 and 3", duration=float("nan"))
def test_parse_segments_never_raises_and_returns_valid_segments(text, duration):
    segments = parse_segments(text, duration)
    assert isinstance(segments, list)
    bounded = duration is not None and math.isfinite(float(duration)) and float(duration) > 0
    for seg in segments:
        assert math.isfinite(seg.start) and math.isfinite(seg.end), (text, seg)
        assert 0.0 <= seg.start < seg.end, (text, seg)
        if bounded:
            assert seg.end <= float(duration), (text, duration, seg)
    assert len({(s.start, s.end) for s in segments}) == len(segments)  # de-duplicated


@FUZZ
@given(value=st.one_of(st.none(), st.integers(), st.binary(max_size=20), st.lists(st.text(max_size=5), max_size=3)))
def test_parse_segments_takes_anything(value):
    assert parse_segments(value, 10.0) == []


# -- annotation readers and instruction files ---------------------------------------------------

_UCF_FIELDS = ["Arson/Arson022_x264.mp4", "Normal_Videos_003_x264", "Abuse028_x264", "Arson", "Normal", "-1",
               "165", "240", "1e400", "nan", "inf", "12.5", "-7", "0", "#", "x", "\t"]
_ucf_line = st.lists(st.one_of(st.sampled_from(_UCF_FIELDS), st.integers(-5, 10**5).map(str)), max_size=8).map(" ".join)
_ucf_text = st.one_of(st.text(max_size=300), st.lists(_ucf_line, max_size=6).map("\n".join))
_uca_line = st.lists(st.one_of(st.sampled_from(["Abuse037_x264", "Normal_Videos_1", "00:01.2", "00:08.2", "##",
                                                "##A man", "1:02:03", "12", "x"]), st.text(max_size=6)),
                     max_size=6).map(" ".join)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_uca_json = st.dictionaries(
    st.sampled_from(["Abuse037_x264", "Normal_Videos_003_x264", "x"]),
    st.one_of(_json, st.fixed_dictionaries({}, optional={
        "duration": _json, "timestamps": st.one_of(_json, st.lists(st.lists(st.floats(-5, 50), max_size=3), max_size=3)),
        "sentences": st.one_of(_json, st.lists(st.text(max_size=5), max_size=3))})),
    max_size=3,
).map(json.dumps)
_CUVA_KEYS = ["instruction", "visual_input", "Visual_Input", "output", "task", "Task", "ID"]
_CUVA_VALUES = ["Detection", "Classification", "Cause", "Result", "Timestamp", "Description", "00001.mp4",
                "[0052,0114][0118,0144]", "[0075,0110]", "[7-1,5]", "7-1", "99", "12.5s to 20s", "between 0:03 and 0:09",
                "[a][b]", ""]
_cuva_row = st.dictionaries(st.sampled_from(_CUVA_KEYS), st.one_of(st.sampled_from(_CUVA_VALUES), _json), max_size=5)
_cuva_rows = st.lists(st.one_of(_cuva_row, _json), max_size=5)


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def _check_annotation_error(exc: AnnotationError, path: Path) -> None:
    """The message names the file, and the line (or JSON place) when there is one."""
    message = str(exc)
    assert message.startswith(str(path)), message
    if exc.line is not None:
        assert message.startswith(f"{path}:{exc.line}"), message


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _read(reader, path: Path) -> None:
    try:
        reader(path)
    except AnnotationError as exc:
        _check_annotation_error(exc, path)


@FUZZ
@given(content=st.one_of(_ucf_text, st.binary(max_size=200)))
@example(content="Abuse028_x264 Abuse 10 20 -1 -1\nAbuse029_x264 Abuse 10 20 -1 -1\n\xff".encode() + b"\xff\n")
def test_ucf_crime_reader_parses_or_names_the_file_and_line(folder, content):
    from uprm.data import read_ucf_crime

    path = _write(folder, "Temporal_Anomaly_Annotation.txt", content)
    try:
        anns = read_ucf_crime(path)
    except AnnotationError as exc:
        _check_annotation_error(exc, path)
        assert exc.line is not None, str(exc)  # every problem of this format is on a line
        return
    for ann in anns:
        assert all(0 <= s <= e for s, e in ann.segments)


def test_a_bad_line_is_named_by_its_number(folder):
    from uprm.data import read_cuva, read_ucf_crime

    good = "Abuse028_x264 Abuse 10 20 -1 -1\n"
    with pytest.raises(AnnotationError, match=r"ucf\.txt:3: not a UTF-8 text file"):
        read_ucf_crime(_write(folder, "ucf.txt", (good + "Abuse029_x264 Abuse 10 20 -1 -1\n").encode() + b"\xff\n"))
    with pytest.raises(AnnotationError, match=r"ucf\.txt:2: column 4 must be a number"):
        read_ucf_crime(_write(folder, "ucf.txt", good + "Abuse029_x264 Abuse 10 x -1 -1\n"))
    with pytest.raises(AnnotationError, match=r"cuva\.csv:2: not a readable CSV row"):
        read_cuva(_write(folder, "cuva.csv", "visual_input,output,task\n" + "x" * 200_000 + ",1,Cause\n"))
    with pytest.raises(AnnotationError, match=r"cuva\.jsonl:2: invalid JSON \(nested too deeply\)"):
        read_cuva(_write(folder, "cuva.jsonl", '{"task": "Cause", "visual_input": "1.mp4", "output": "x"}\n'
                         + "[" * 100_000))


@FUZZ
@given(content=st.one_of(st.lists(_uca_line, max_size=6).map("\n".join), _uca_json, _json.map(json.dumps),
                         st.text(max_size=200), st.binary(max_size=100)))
@example(content='{"Abuse037_x264": {"duration": "ten", "timestamps": [], "sentences": []}}')  # not a number
@example(content='{"Abuse037_x264": {"duration": {}, "timestamps": [], "sentences": []}}')
@example(content="{" * 100_000)  # nested too deeply for the JSON parser
def test_uca_reader_parses_or_names_the_file_and_line(folder, content):
    from uprm.data import read_uca

    _read(read_uca, _write(folder, "UCFCrime_Train.txt", content))


@FUZZ
@given(suffix=st.sampled_from([".json", ".jsonl", ".csv"]),
       content=st.one_of(_cuva_rows.map(json.dumps), _cuva_rows.map(lambda rows: "\n".join(map(json.dumps, rows))),
                         st.text(max_size=200), st.binary(max_size=100)))
@example(suffix=".csv", content=b"visual_input,output,task\n\xff\xfe,1,Cause\n")  # not UTF-8
@example(suffix=".csv", content="visual_input,output,task\n" + "x" * 200_000 + ",1,Cause\n")  # a huge field
@example(suffix=".json", content="[" * 100_000)
def test_cuva_reader_parses_or_names_the_file_and_line(folder, suffix, content):
    from uprm.data import read_cuva

    _read(read_cuva, _write(folder, f"cuva{suffix}", content))


_segment = st.one_of(_json, st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                                                st.booleans()), max_size=3))
_activitynet = st.one_of(
    _json,
    st.fixed_dictionaries({"database": st.dictionaries(st.text(max_size=6), st.one_of(_json, st.fixed_dictionaries(
        {}, optional={"duration": _json, "subset": _json, "causes": _json,
                      "annotations": st.one_of(_json, st.lists(st.fixed_dictionaries(
                          {}, optional={"segment": _segment, "label": _json}), max_size=3))})), max_size=3)}),
    st.fixed_dictionaries({"results": st.dictionaries(st.text(max_size=6), st.one_of(_json, st.lists(
        st.fixed_dictionaries({}, optional={"segment": _segment, "score": _json, "label": _json}), max_size=3)),
        max_size=3)}),
).map(json.dumps)


@FUZZ
@given(content=st.one_of(_activitynet, st.text(max_size=100), st.binary(max_size=60)))
@example(content='{"database": {"v": {"duration": "long"}}}')  # not a number
@example(content='{"database": {"v": {"subset": ["test"]}}}')  # not a string
@example(content='{"database": {"v": {"causes": 3}}}')  # not a list
@example(content='{"database": {"v": {"annotations": [{"segment": [true, 2]}]}}}')  # a boolean time
@example(content='{"results": {"v": [{"segment": [1, 2], "score": true}]}}')
def test_activitynet_readers_parse_or_name_the_file_and_place(folder, content):
    from uprm.data import read_activitynet, read_activitynet_predictions

    path = _write(folder, "activitynet.json", content)
    for reader in (read_activitynet, read_activitynet_predictions):
        _read(reader, path)


_RECORD_KEYS = ["id", "video", "image", "window", "keypoints", "scene_graph", "video_id", "conversations"]
_record = st.dictionaries(st.sampled_from(_RECORD_KEYS), st.one_of(
    _json, st.sampled_from(["a.mp4", "v/clip.mp4", "x\x00y.mp4", "\ud800.mp4", "", " "]),
    st.lists(st.floats(-10, 100), min_size=2, max_size=2),
    st.lists(st.fixed_dictionaries({"from": st.sampled_from(["human", "gpt", "x"]),
                                    "value": st.one_of(st.text(max_size=20), _json)}), max_size=3)), max_size=6)


@FUZZ
@given(content=st.one_of(st.lists(st.one_of(_record, _json), max_size=4).map(json.dumps), st.text(max_size=200),
                         st.binary(max_size=100)))
@example(content=json.dumps([{"video": "x\x00y.mp4"}]))  # a NUL byte in a path
@example(content=json.dumps([{"video": "a.mp4", "keypoints": "k\x00.json"}]))
@example(content=json.dumps([{"video": "\ud800.mp4"}]))  # a lone surrogate (valid JSON escape)
@example(content="[" * 100_000)
def test_instruction_loader_parses_or_names_the_file(folder, content):
    from uprm.data.records import load_records, record_clip_key, split_conversation

    path = _write(folder, "instructions.json", content)
    try:
        for record in load_records(path):
            record_clip_key(record)
            if "conversations" in record:
                split_conversation(record)
    except RecordError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        assert re.search(r"record \d+|line \d+|byte \d+|no such|not a readable|JSON list|nested", str(exc)), str(exc)


# -- the REST API --------------------------------------------------------------------------------

TOKEN = "fuzzing-token-of-32-characters-x"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """``uprm serve``'s app in process without a worker (jobs are only queued), with a
    token (so the session endpoint checks it) and a media root holding one real video."""
    from fastapi.testclient import TestClient

    from uprm.serve import ServeConfig, create_app

    root = tmp_path_factory.mktemp("fuzz-serve")
    (root / "ckpt").mkdir()
    (root / "ckpt" / "config.json").write_text("{}")
    media = root / "media"
    (media / "sub").mkdir(parents=True)
    (media / "notes.txt").write_text("not a video")
    import numpy as np

    from uprm.data import write_mp4

    write_mp4(media / "clip.mp4", [np.full((32, 32, 3), 40 * i, np.uint8) for i in range(4)], fps=2)
    config = ServeConfig(checkpoint=root / "ckpt", data_dir=root / "data", media_root=media, token=TOKEN,
                         max_queue=10_000)
    with TestClient(create_app(config, worker=False), raise_server_exceptions=False) as client:
        yield client


def _check_response(response) -> None:
    assert response.status_code != 500 and response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text
        body = response.json()
        assert body["status"] == response.status_code and body["code"] and body["detail"], body
        assert "Traceback" not in response.text


_paths = st.one_of(
    st.sampled_from(["clip.mp4", "/clip.mp4", "sub", "notes.txt", "../clip.mp4", "nothing.mp4", "a" * 300,
                     "sub/" + "b" * 256 + ".mp4", "\ud800.mp4", "clip.mp4\x00", "~/clip.mp4", "."]),
    st.text(max_size=40),
)
_bodies = st.one_of(st.fixed_dictionaries({"path": _paths}), _json,
                    st.dictionaries(st.sampled_from(["path", "video", "token"]), _json, max_size=3))
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _post_json(client, url: str, body, headers=None):
    raw = json.dumps(body, ensure_ascii=True).encode()  # lone surrogates travel as \ud800 escapes
    return client.post(url, content=raw, headers={"Content-Type": "application/json", **(headers or {})})


@FEW
@given(body=_bodies)
@example(body={"path": "a" * 300})  # a file name longer than the file system allows
@example(body={"path": "sub/" + "b" * 256 + ".mp4"})
@example(body={"path": "\ud800.mp4"})  # not encodable as a file name
def test_job_endpoint_answers_problem_json_or_accepts(api, body):
    response = _post_json(api, "/v1/jobs", body, AUTH)
    _check_response(response)
    if response.status_code == 202:
        assert body == {"path": "clip.mp4"} or body == {"path": "/clip.mp4"} or "clip.mp4" in str(body)


@FEW
@given(body=_bodies, raw=st.binary(max_size=60))
@example(body={"token": "\ud800"}, raw=b"")
def test_session_and_raw_bodies_never_answer_500(api, body, raw):
    _check_response(_post_json(api, "/v1/session", body))
    _check_response(api.post("/v1/session", content=raw, headers={"Content-Type": "application/json"}))
    _check_response(api.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json", **AUTH}))


@FEW
@given(job_id=st.text(max_size=40), limit=st.one_of(st.text(max_size=6), st.integers()), state=st.text(max_size=8))
def test_job_queries_never_answer_500(api, job_id, limit, state):
    _check_response(api.get("/v1/jobs", params={"limit": limit, "state": state}, headers=AUTH))
    for suffix in ("", "/result", "/video"):
        _check_response(api.get(f"/v1/jobs/{quote(job_id, safe='')}{suffix}", headers=AUTH))


_MAGIC = [b"", b"\x00\x00\x00\x18ftypisom", b"\x00\x00\x00\x08moov", b"\x1a\x45\xdf\xa3", b"RIFF\x00\x00\x00\x00AVI ",
          b"\x00\x00\x01\xba", b"FLV\x01", b"OggS", bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"),
          (b"\x47" + b"\x00" * 187) * 3]


@FEW
@given(head=st.sampled_from(_MAGIC), body=st.binary(max_size=400), name=st.text(max_size=20))
@example(head=b"\x1a\x45\xdf\xa3", body=b"\x00" * 64, name="a.mkv")
def test_uploads_of_arbitrary_bytes_never_answer_500(api, head, body, name):
    """Bytes that start like a container (what the content sniffing trusts) but are not one."""
    response = api.post("/v1/jobs", files={"video": (name or "x", head + body, "video/mp4")}, headers=AUTH)
    _check_response(response)
    assert response.status_code in (400, 413, 415, 422), response.text
