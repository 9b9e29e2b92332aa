"""Label imports: Label Studio's JSON export and CVAT for video 1.1 XML, written here in
the tools' documented layouts, become VideoAnnotations with segments in seconds, checked
against the taxonomy; `uprm data label-studio|cvat` write ActivityNet ground truth and
the instruction JSON."""

from __future__ import annotations

import json
import zipfile

import click
import pytest
from click.testing import CliRunner

from uprm.cli import cli
from uprm.data import AnnotationError, read_cvat, read_label_studio
from uprm.data.labelstudio import label_studio_video_name
from uprm.taxonomy import UnknownCategoryError, load_taxonomy

SITE = """\
categories:
  - name: Trespassing
    description: Someone climbs over the fence.
    severity: high
    causes: [a person climbing over the fence]
    aliases: [Intrusion]
  - name: Fighting
    description: People exchange blows.
    severity: high
    causes: [two people exchanging blows]
"""


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["data", *args])


# --------------------------------------------------------------------------- Label Studio
def timeline(rid: str, label: str | list[str], *ranges: tuple[int, int]) -> dict:
    """One <TimelineLabels> result as Label Studio exports it."""
    return {"id": rid, "type": "timelinelabels", "from_name": "timeline", "to_name": "video", "origin": "manual",
            "value": {"ranges": [{"start": s, "end": e} for s, e in ranges],
                      "timelinelabels": label if isinstance(label, list) else [label]}}


def textarea(rid: str, text: str) -> dict:
    return {"id": rid, "type": "textarea", "from_name": "cause", "to_name": "video", "value": {"text": [text]}}


def task(task_id: int, video: str, *results: dict, **annotation: object) -> dict:
    return {"id": task_id, "data": {"video": video}, "project": 3, "file_upload": video.rsplit("/", 1)[-1],
            "annotations": [{"id": 100 + task_id, "completed_by": 1, "was_cancelled": False, "ground_truth": False,
                             "created_at": "2025-01-05T10:00:00.000000Z", "updated_at": "2025-01-05T10:00:00.000000Z",
                             "result": list(results), **annotation}],
            "predictions": []}


@pytest.fixture
def ls_export(tmp_path):
    tasks = [
        # frames 31-90 at 30 fps (counted from 1): 1.0-3.0 s; its cause from the region's text area
        task(7, "/data/upload/3/1a2b3c4d-gate_fight.mp4",
             timeline("r1", "Fighting", (31, 90)), textarea("r1", "two men trading punches by the gate")),
        # a submitted annotation without labels: Normal for the whole video
        task(8, "/data/local-files/?d=cams%2Fyard_quiet.mp4"),
        # two labels: Trespassing (alias, lower case) covers more time than Fighting
        task(9, "/data/upload/3/0f0f0f0f-yard_night.mp4",
             timeline("a", "intrusion", (1, 60), (121, 150)), timeline("b", "fighting", (151, 180))),
        # nobody annotated it: left out
        {"id": 10, "data": {"video": "/data/upload/3/deadbeef-unlabelled.mp4"}, "annotations": []},
    ]
    path = tmp_path / "project-3-at-2025-01-05.json"
    path.write_text(json.dumps(tasks))
    return path


def test_label_studio_video_names_lose_the_upload_prefix():
    assert label_studio_video_name("/data/upload/3/1a2b3c4d-clip.mp4") == ("clip.mp4", "1a2b3c4d-clip.mp4")
    assert label_studio_video_name("/data/local-files/?d=cams%2Fgate%2Fclip.mp4") == ("clip.mp4", None)
    assert label_studio_video_name("https://bucket.s3.amazonaws.com/v/1a2b3c4d-clip.mp4?X-Amz=1") == (
        "1a2b3c4d-clip.mp4", None)  # not an upload: the name is the user's own


def test_label_studio_timeline_labels_become_seconds_causes_and_normal(ls_export, tmp_path):
    taxonomy = tmp_path / "site.yaml"
    taxonomy.write_text(SITE)
    with pytest.warns(UserWarning, match=r"1 task\(s\) without a submitted annotation left out \(task 10\)"):
        anns = read_label_studio(ls_export, taxonomy, fps=30)
    by_id = {a.video_id: a for a in anns}
    assert list(by_id) == ["gate_fight", "yard_quiet", "yard_night"]
    fight = by_id["gate_fight"]
    assert fight.category == "Fighting" and fight.segments == [(1.0, 3.0)]
    assert fight.causes == ["two men trading punches by the gate"]
    assert fight.video == "gate_fight.mp4" and fight.extra["task"] == 7 and fight.extra["fps_source"] == "fps"
    quiet = by_id["yard_quiet"]
    assert quiet.category == "Normal" and quiet.segments == [] and not quiet.is_threat
    night = by_id["yard_night"]
    assert night.category == "Trespassing"  # 3 s of Trespassing against 1 s of Fighting
    assert night.segments == [(0.0, 2.0), (4.0, 6.0)]  # 121-150 and 151-180 touch: one segment
    assert night.extra["labels"] == ["Trespassing", "Fighting"]
    assert [(s["label"], s["start"], s["end"]) for s in night.extra["spans"]] == [
        ("Trespassing", 0.0, 2.0), ("Trespassing", 4.0, 5.0), ("Fighting", 5.0, 6.0)]


def test_label_studio_uses_the_ground_truth_or_latest_annotation_and_skips_cancelled(tmp_path):
    item = task(1, "/data/upload/1/aaaaaaaa-v.mp4", timeline("x", "Fighting", (1, 30)))
    old = dict(item["annotations"][0], id=1, updated_at="2025-01-01T00:00:00Z",
               result=[timeline("y", "Fighting", (31, 60))])
    cancelled = dict(item["annotations"][0], id=2, was_cancelled=True, updated_at="2026-01-01T00:00:00Z",
                     result=[timeline("z", "Fighting", (61, 90))])
    item["annotations"] += [old, cancelled]
    path = tmp_path / "export.json"
    path.write_text(json.dumps([item]))
    assert read_label_studio(path, fps=30)[0].segments == [(0.0, 1.0)]  # the latest that was not cancelled
    old["ground_truth"] = True
    path.write_text(json.dumps([item]))
    assert read_label_studio(path, fps=30)[0].segments == [(1.0, 2.0)]  # the ground truth wins


def test_label_studio_video_rectangles_hold_their_label_over_their_lifespan(tmp_path):
    def box(frame: int, enabled: bool) -> dict:
        return {"frame": frame, "enabled": enabled, "rotation": 0, "x": 10, "y": 10, "width": 20, "height": 20,
                "time": (frame - 1) / 10}

    rect = {"id": "b1", "type": "videorectangle", "from_name": "box", "to_name": "video",
            "value": {"framesCount": 100, "duration": 10.0, "labels": ["Fighting"],
                      "sequence": [box(11, True), box(15, True), box(20, False), box(51, True)]}}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task(1, "/data/upload/1/aaaaaaaa-v.mp4", rect)]))
    (ann,) = read_label_studio(path, fps=10)
    # frames 11-20 (the disabled keyframe is drawn), then 51 to the last frame (100)
    assert ann.segments == [(1.0, 2.0), (5.0, 10.0)]


def test_a_label_not_in_the_taxonomy_names_the_label_the_task_and_the_file(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task(7, "/data/upload/3/1a2b3c4d-gate.mp4", timeline("r1", "Loitering", (1, 5)))]))
    with pytest.raises(UnknownCategoryError) as info:
        read_label_studio(path, fps=30)
    message = str(info.value)
    assert message.startswith(f"{path}: task 7 (video gate.mp4), annotation 107, result 'r1': label 'Loitering'")
    assert "Abuse, Arrest" in message  # the default taxonomy's categories
    result = run("label-studio", str(path), "--fps", "30", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "label 'Loitering' is not a category" in result.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_label_studio_needs_a_frame_rate_only_for_labelled_videos(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task(1, "/data/upload/1/aaaaaaaa-quiet.mp4")]))
    assert read_label_studio(path)[0].category == "Normal"  # nothing to convert
    path.write_text(json.dumps([task(1, "/data/upload/1/aaaaaaaa-gate.mp4", timeline("r", "Fighting", (1, 5)))]))
    with pytest.raises(AnnotationError, match=r"task 1 \(video gate.mp4\).*video 'gate' \(no videos folder\).*--fps"):
        read_label_studio(path)


def test_label_studio_reads_frame_rate_and_duration_from_the_videos(tmp_path, write_video):
    videos = tmp_path / "videos"
    write_video(videos / "gate.mp4", num_frames=40, fps=10.0)  # 4 s
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task(1, "/data/upload/1/aaaaaaaa-gate.mp4",
                                     timeline("r", "Fighting", (11, 20), (31, 60)))]))
    (ann,) = read_label_studio(path, videos=videos)
    assert ann.segments == [(1.0, 2.0), (3.0, 4.0)]  # 10 fps from the file; 31-60 cut at the video's end
    assert ann.duration == pytest.approx(4.0) and ann.video == str(videos / "gate.mp4")
    assert ann.extra["fps_source"] == "video"
    path.write_text(json.dumps([task(1, "/data/upload/1/aaaaaaaa-gate.mp4", timeline("r", "Fighting", (41, 50)))]))
    with pytest.raises(AnnotationError, match=r"starts at or after the video's end \(4.00 s\)"):
        read_label_studio(path, videos=videos)


def test_label_studio_refuses_labels_it_cannot_place_in_time(tmp_path):
    rect = {"id": "i", "type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 2, "height": 2,
                                                            "rectanglelabels": ["Fighting"]}}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task(1, "/data/upload/1/aaaaaaaa-v.mp4", rect)]))
    with pytest.raises(AnnotationError, match="'rectanglelabels' result carries labels"):
        read_label_studio(path, fps=30)
    path.write_text(json.dumps([task(1, "/data/upload/1/aaaaaaaa-v.mp4", timeline("r", "Fighting", (9, 3)))]))
    with pytest.raises(AnnotationError, match=r"the range ends \(frame 3\) before it starts \(frame 9\)"):
        read_label_studio(path, fps=30)
    path.write_text(json.dumps({"video": "v.mp4", "timeline": []}))
    with pytest.raises(AnnotationError, match="not JSON-MIN"):
        read_label_studio(path, fps=30)


# --------------------------------------------------------------------------- CVAT
def cvat_xml(*body: str, task: str = "", source: str = "gate.mp4") -> str:
    """A CVAT for video 1.1 export of one task (frames 0-299)."""
    meta = task or f"""
    <task>
      <id>5</id><name>gate camera</name><size>300</size><mode>interpolation</mode><overlap>5</overlap>
      <start_frame>0</start_frame><stop_frame>299</stop_frame><frame_filter></frame_filter>
      <labels><label><name>Fighting</name><type>any</type><attributes></attributes></label></labels>
      <original_size><width>640</width><height>480</height></original_size>
      <source>{source}</source>
    </task>"""
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
            f"  <meta>{meta}\n    <dumped>2025-01-05 10:00:00+00:00</dumped>\n  </meta>\n" + "\n".join(body)
            + "\n</annotations>\n")


def box(frame: int, outside: int, keyframe: int = 1) -> str:
    return (f'    <box frame="{frame}" keyframe="{keyframe}" outside="{outside}" occluded="0" xtl="10.00" ytl="10.00" '
            f'xbr="50.00" ybr="80.00" z_order="0"></box>')


def track(track_id: int, label: str, *shapes: str, attrs: str = "") -> str:
    return f'  <track id="{track_id}" label="{label}" source="manual"{attrs}>\n' + "\n".join(shapes) + "\n  </track>"


def test_cvat_tracks_and_tags_become_segments_in_seconds(tmp_path):
    xml = cvat_xml(
        # on screen from frame 25 to 74 (outside from 75): 1.0-3.0 s at 25 fps
        track(0, "Fighting", box(25, 0), box(50, 0, keyframe=0), box(75, 1)),
        # tags on frames 100-124 in a row: 4.0-5.0 s; frame 150 alone: 6.0-6.04 s
        *[f'  <tag frame="{f}" label="vandalism" source="manual"></tag>' for f in (*range(100, 125), 150)],
    )
    path = tmp_path / "annotations.xml"
    path.write_text(xml)
    (ann,) = read_cvat(path, fps=25)
    assert ann.video_id == "gate" and ann.video == "gate.mp4" and ann.extra["task"] == "5"
    assert ann.duration == pytest.approx(12.0)  # frames 0-299 at 25 fps
    assert ann.category == "Fighting"  # 2 s of Fighting against 1.04 s of Vandalism
    spans = [(s["label"], s["start"], s["end"]) for s in ann.extra["spans"]]
    assert spans == [("Fighting", 1.0, 3.0), ("Vandalism", 4.0, 5.0), ("Vandalism", 6.0, 6.04)]
    assert ann.segments == [(1.0, 3.0), (4.0, 5.0), (6.0, 6.04)]


def test_cvat_a_track_without_an_outside_end_lasts_to_the_task_end_and_steps_count(tmp_path):
    meta = """
    <task><id>9</id><name>yard</name><size>30</size><mode>interpolation</mode>
      <start_frame>10</start_frame><stop_frame>155</stop_frame><frame_filter>step=5</frame_filter>
      <source>videos/yard.mp4</source></task>"""
    path = tmp_path / "annotations.xml"
    path.write_text(cvat_xml(track(0, "Fighting", box(60, 0)), task=meta))
    (ann,) = read_cvat(path, fps=10)
    # frames are the video's own (start_frame + k * step); the last (155) lasts 5 frames: 6.0-16.0 s
    assert ann.video_id == "yard" and ann.segments == [(6.0, 16.0)] and ann.duration == pytest.approx(16.0)


def test_cvat_project_zip_images_layout_and_normal_tasks(tmp_path):
    meta = """
    <project><id>1</id><name>site</name><tasks>
      <task><id>1</id><name>a</name><size>100</size><mode>interpolation</mode><start_frame>0</start_frame>
        <stop_frame>99</stop_frame><source>a.mp4</source></task>
      <task><id>2</id><name>b</name><size>100</size><mode>interpolation</mode><start_frame>0</start_frame>
        <stop_frame>99</stop_frame><source>b.mp4</source></task>
      <task><id>3</id><name>c</name><size>100</size><mode>interpolation</mode><start_frame>0</start_frame>
        <stop_frame>99</stop_frame><source>c.mp4</source></task>
    </tasks></project>"""
    xml = cvat_xml(
        track(0, "Fighting", box(10, 0), box(20, 1), attrs=' task_id="1" subset="default"'),
        '  <image id="0" name="frame_000030" task_id="2"><tag label="Fighting" source="manual"></tag></image>',
        '  <image id="1" name="frame_000031" task_id="2"><tag label="Fighting" source="manual"></tag></image>',
        task=meta)
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("annotations.xml", xml)
    anns = {a.video_id: a for a in read_cvat(path, fps=10)}
    assert anns["a"].segments == [(1.0, 2.0)]
    assert anns["b"].segments == [(3.0, 3.2)]
    assert anns["c"].category == "Normal" and anns["c"].segments == []  # no labels: Normal


def test_cvat_a_label_not_in_the_taxonomy_names_the_label_the_track_and_the_file(tmp_path):
    path = tmp_path / "annotations.xml"
    path.write_text(cvat_xml(track(3, "Loitering", box(1, 0), box(5, 1))))
    taxonomy = load_taxonomy(None)
    with pytest.raises(UnknownCategoryError) as info:
        read_cvat(path, taxonomy, fps=25)
    assert str(info.value).startswith(f"{path}: track 3 (task 5, video gate.mp4): label 'Loitering' is not a")


def test_cvat_needs_a_frame_rate_and_a_cvat_file(tmp_path):
    path = tmp_path / "annotations.xml"
    path.write_text(cvat_xml(track(0, "Fighting", box(1, 0), box(5, 1))))
    with pytest.raises(AnnotationError, match=r"task 5 \(video gate.mp4\).*frame numbers into seconds.*'gate'"):
        read_cvat(path)
    path.write_text("<annotations><track></annotations>")
    with pytest.raises(AnnotationError, match=r"annotations.xml:1: not valid XML"):
        read_cvat(path, fps=25)
    path.write_text("<dataset/>")
    with pytest.raises(AnnotationError, match=r"not a CVAT XML export \(the root is <dataset>"):
        read_cvat(path, fps=25)


# --------------------------------------------------------------------------- the commands
def test_label_studio_command_writes_activitynet_and_instructions(ls_export, tmp_path):
    taxonomy = tmp_path / "site.yaml"
    taxonomy.write_text(SITE)
    out = tmp_path / "labels"
    result = run("label-studio", str(ls_export), "--taxonomy", str(taxonomy), "--fps", "30", "--out", str(out),
                 "--splits", "1,0,0")
    assert result.exit_code == 0, result.output
    assert "7 records from 3 annotated videos" in result.output
    assert "warning: " in result.output and "1 task(s) without a submitted annotation left out (task 10)" in result.output
    truth = json.loads((out / "activitynet.json").read_text())["database"]
    assert truth["gate_fight"]["annotations"] == [{"segment": [1.0, 3.0], "label": "Fighting"}]
    assert truth["gate_fight"]["causes"] == ["two men trading punches by the gate"]
    assert truth["yard_quiet"]["annotations"] == []
    records = {r["id"]: r for r in json.loads((out / "label_studio_train.json").read_text())}
    assert records["gate_fight/locate"]["conversations"][1]["value"] == "The threat occurs between 1 and 3 seconds."
    assert records["gate_fight/attribute"]["conversations"][1]["value"] == (
        "The threat is attributed to two men trading punches by the gate.")
    assert records["yard_quiet/identify"]["conversations"][1]["value"] == "No, there is no threat."
    assert records["yard_night/locate"]["category"] == "Trespassing"
    assert records["gate_fight/identify"]["video"] == "gate_fight.mp4"


def test_cvat_command_reads_the_videos_frame_rate(tmp_path, write_video):
    videos = tmp_path / "videos"
    write_video(videos / "gate.mp4", num_frames=40, fps=10.0)
    path = tmp_path / "annotations.xml"
    path.write_text(cvat_xml(track(0, "Fighting", box(10, 0), box(20, 1))))
    out = tmp_path / "labels"
    result = run("cvat", str(path), "--videos", str(videos), "--out", str(out), "--tasks", "identify,locate")
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "activitynet.json").read_text())["database"]
    assert truth["gate"]["annotations"] == [{"segment": [1.0, 2.0], "label": "Fighting"}]
    assert truth["gate"]["duration"] == pytest.approx(4.0)
    (records,) = [json.loads(f.read_text()) for f in out.glob("cvat_*.json")]
    assert {r["task"] for r in records} == {"identify", "locate"}
    assert all((out / r["video"]).resolve() == (videos / "gate.mp4").resolve() for r in records)
    result = run("cvat", str(path), "--out", str(out))
    assert result.exit_code == 1 and "frame numbers into seconds" in result.output and "--fps" in result.output


@pytest.mark.parametrize("command", ["label-studio", "cvat"])
def test_help_says_what_the_import_needs(command):
    result = CliRunner().invoke(cli, ["data", command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--taxonomy FILE" in text and "UCF-Crime's 13 categories and Normal" in text
    assert "activitynet.json" in text and "--fps" in text and "--videos" in text
    assert "Normal for the whole video" in text
    assert ("counted from 1" if command == "label-studio" else "counted from 0") in text
