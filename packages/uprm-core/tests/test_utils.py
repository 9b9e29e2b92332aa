"""Atomic writes: all or nothing, with the usual file mode."""

import json
import os

import pytest

from uprm.utils import atomic_path, atomic_write_json, jsonable


def test_atomic_write_replaces_in_one_step_and_keeps_the_usual_mode(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_jsonable():
    from pathlib import Path

    assert jsonable({"p": Path("/x"), "t": (1, 2), "s": {2, 1}, "o": object()})["p"] == "/x"
    assert jsonable((1, {2})) == [1, [2]]


def test_file_sha256_is_the_content_digest_and_follows_changes(tmp_path):
    import hashlib

    from uprm.utils import file_sha256

    path = tmp_path / "w.pt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()
    os.utime(path, ns=(1, 1))
    path.write_bytes(b"abcd")  # new size and mtime: not served from the memo
    assert file_sha256(path) == hashlib.sha256(b"abcd").hexdigest()
