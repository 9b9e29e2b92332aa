"""Judging a file by its content: containers recognised from their bytes, opened with
that demuxer only (a playlist or concat script posing as a video never makes FFmpeg
read another file), damaged files refused; the media root listing."""

from __future__ import annotations

import numpy as np
import pytest

from uprm.serve.errors import ApiError
from uprm.serve.media import list_media, probe, sniff


def write(path, fmt, codec, n=6, size=32, **stream_options):
    import av

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=4)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), (40 * i) % 256, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("name, fmt, codec, demuxer, media_type", [
    ("a.mp4", "mp4", "libx264", "mov", "video/mp4"),
    ("a.webm", "webm", "libvpx", "matroska", "video/webm"),
    ("a.mkv", "matroska", "mpeg4", "matroska", "video/x-matroska"),
    ("a.avi", "avi", "mpeg4", "avi", "video/x-msvideo"),
    ("a.ts", "mpegts", "libx264", "mpegts", "video/mp2t"),
    ("a.flv", "flv", "flv", "flv", "video/x-flv"),
])
def test_containers_are_recognised_by_content(tmp_path, name, fmt, codec, demuxer, media_type):
    path = write(tmp_path / name, fmt, codec)
    disguised = path.rename(tmp_path / "renamed.bin")  # the name plays no part
    info = probe(disguised)
    assert (info.demuxer, info.media_type, info.width, info.height) == (demuxer, media_type, 32, 32)
    assert info.duration > 0 and info.size == disguised.stat().st_size


@pytest.mark.parametrize("content", [
    b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
    b"ffconcat version 1.0\nfile '/etc/passwd'\n",
    b"\x89PNG\r\n\x1a\n" + bytes(100),
    b"%PDF-1.7\n" + bytes(100),
])
def test_playlists_scripts_and_images_are_not_videos(tmp_path, content):
    path = tmp_path / "video.mp4"
    path.write_bytes(content)
    with pytest.raises(ApiError) as err:
        probe(path)
    assert (err.value.status, err.value.code) == (415, "not_a_video")


def test_sniff_needs_the_real_signatures():
    assert sniff(b"\x00\x00\x00\x18ftypisom") == ("mov", "video/mp4")
    assert sniff(b"\x00\x00\x00\x14ftypqt  ") == ("mov", "video/quicktime")
    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") is None  # RIFF audio
    assert sniff(b"G" + bytes(187) + b"G") is None  # one MPEG-TS sync byte is not enough
    assert sniff(b"") is None


def test_a_stream_cut_short_is_refused(tmp_path):
    path = write(tmp_path / "a.mkv", "matroska", "mpeg4", n=20)
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[:60])
    with pytest.raises(ApiError) as err:
        probe(cut)
    assert err.value.status == 400


def test_the_listing_skips_hidden_files_other_suffixes_and_links_out(tmp_path):
    root = tmp_path / "media"
    (root / "cam1").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for rel in ("a.mp4", "cam1/b.MKV", ".hidden/c.mp4", ".d.mp4", "notes.txt"):
        (root / rel).write_bytes(b"x")
    (tmp_path / "outside.mp4").write_bytes(b"x")
    (root / "out.mp4").symlink_to(tmp_path / "outside.mp4")
    (root / "in.mp4").symlink_to(root / "a.mp4")
    files, truncated = list_media(root)
    assert [f["path"] for f in files] == ["a.mp4", "in.mp4", "cam1/b.MKV"] and not truncated
    assert list_media(root, limit=2) == (files[:2], True)
