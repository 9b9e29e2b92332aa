"""``DetectOptions`` and its one click decorator: ``uprm detect``, ``uprm serve`` and
``uprm watch`` declare the same flags once, ``ServeConfig`` and ``WatchSettings`` are
``DetectOptions`` with their own defaults."""

from __future__ import annotations

import pytest

from uprm.errors import ConfigError, ServeConfigError, WatchError
from uprm.options import FILE_ONLY, DetectOptions

SHARED = ["window", "stride", "batch_size", "max_side", "expert_option", "device", "threads", "taxonomy"]
FILES = ["merge_gap", "sidecar_dir", "no_evidence"]


def _params(name):
    import importlib

    command = importlib.import_module(f"uprm.cli.{name}").cli
    return {p.name: p for p in command.params}


def test_the_three_commands_declare_the_same_options():
    detect, serve, watch = _params("detect"), _params("serve"), _params("watch")
    for name in SHARED:
        ref = detect[name]
        for other in (serve[name], watch[name]):
            assert (other.opts, type(other.type), other.help, other.multiple) == \
                (ref.opts, type(ref.type), ref.help, ref.multiple), name
    for name in FILES:
        assert name in detect and name in serve and name not in watch
    # a live camera's defaults differ from a file's
    assert (detect["stride"].default, detect["batch_size"].default, detect["max_side"].default) == (4.0, 4, None)
    assert serve["stride"].default == 4.0
    assert (watch["stride"].default, watch["batch_size"].default, watch["max_side"].default) == (2.0, 8, 512)


def test_the_decorator_hands_the_command_one_validated_options_dict():
    import click
    from click.testing import CliRunner

    from uprm.cli._options import detect_options

    seen = {}

    @click.command()
    @detect_options()
    def command(detect):
        seen.update(detect)

    result = CliRunner().invoke(command, ["--window", "6", "--expert-option", "pose.max_people=2",
                                          "--expert-option", "pose.weights=/m/y.pt", "--no-evidence", "--threads", "1"])
    assert result.exit_code == 0, result.output
    options = DetectOptions(**seen)
    assert options.window == 6.0 and options.threads == 1 and options.evidence is False
    assert options.expert_options == {"pose": {"max_people": 2, "weights": "/m/y.pt"}}
    result = CliRunner().invoke(command, ["--expert-option", "pose"])
    assert result.exit_code == 2 and "--expert-option" in result.output and "NAME.KEY=VALUE" in result.output


@pytest.mark.parametrize("bad, field", [({"window": 0}, "window"), ({"stride": float("inf")}, "stride"),
                                        ({"batch_size": 0}, "batch_size"), ({"max_side": 8}, "max_side"),
                                        ({"threads": 0}, "threads"), ({"merge_gap": -1}, "merge_gap"),
                                        ({"window": "8"}, "window"), ({"expert_options": {"pose": 3}}, "expert_options")])
def test_bad_options_name_the_field(bad, field):
    with pytest.raises(ConfigError, match=field):
        DetectOptions(**bad)


def test_serve_and_watch_settings_are_detect_options(tmp_path):
    from uprm.serve.config import ServeConfig
    from uprm.watch.settings import WatchSettings

    serve = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "d", window=6.0, threads=2)
    assert isinstance(serve, DetectOptions) and serve.detect_options() == DetectOptions(window=6.0, threads=2)
    assert serve.requested() == DetectOptions(window=6.0).requested()
    with pytest.raises(ServeConfigError, match="batch_size"):
        ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "d", batch_size=0)
    watch = WatchSettings(window=4.0)
    assert isinstance(watch, DetectOptions) and (watch.stride, watch.batch_size, watch.max_side) == (2.0, 8, 512)
    for name in FILE_ONLY:
        value = True if name == "evidence" else ("/tmp" if name == "sidecar_dir" else 1.0)
        with pytest.raises(WatchError, match=f"{name} is an option of detection over files"):
            WatchSettings(**{name: value})
    # the same JSON both processes of the service read
    assert ServeConfig.from_json(serve.to_json()) == serve.replace(token=None)


def test_taxonomy_is_accepted_by_detect_serve_and_watch(tmp_path, site_taxonomy):
    from click.testing import CliRunner

    from uprm.cli import cli
    from uprm.serve.config import ServeConfig
    from uprm.watch.settings import WatchSettings

    site = site_taxonomy
    for name in ("detect", "serve", "watch"):
        assert _params(name)["taxonomy"].opts == ["--taxonomy"]
    help_text = " ".join(CliRunner().invoke(cli, ["detect", "--help"], terminal_width=120).output.split())
    assert "--taxonomy FILE" in help_text and "severity" in help_text and "UCF-Crime's 13 categories" in help_text
    options = DetectOptions(taxonomy=str(site))
    assert options.taxonomy == site.resolve() and options.site_taxonomy().threats == ("Trespassing", "Fall", "BagSnatching")
    assert DetectOptions().taxonomy is None and DetectOptions().site_taxonomy().name == "ucf-crime"
    assert options.video_kwargs()["taxonomy"] == site.resolve()
    # the rerun key names the taxonomy only when one is given (earlier outputs stay complete)
    assert "taxonomy" not in DetectOptions().requested()
    assert len(options.requested()["taxonomy"]) == 16
    serve = ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "d", taxonomy=site)
    assert serve.taxonomy == site.resolve() and serve.detect_options() == options
    assert ServeConfig.from_json(serve.to_json()).taxonomy == site.resolve()
    assert WatchSettings(taxonomy=site).site_taxonomy().severity("trespassing") == "high"


def test_a_bad_taxonomy_file_is_the_taxonomy_error_naming_the_file_and_line(tmp_path, site_taxonomy):
    from uprm.serve.config import ServeConfig
    from uprm.taxonomy import TaxonomyError
    from uprm.watch.settings import WatchSettings

    bad = tmp_path / "bad.yaml"
    bad.write_text(site_taxonomy.read_text().replace("    severity: high\n", "    severity: high\n    colour: red\n"))
    for make in (lambda: DetectOptions(taxonomy=bad), lambda: WatchSettings(taxonomy=str(bad)),
                 lambda: ServeConfig(checkpoint=tmp_path, data_dir=tmp_path / "d", taxonomy=bad)):
        with pytest.raises(TaxonomyError) as caught:
            make()
        assert str(caught.value).startswith(f"{bad}:6: categories[0].colour: unknown field")
        assert isinstance(caught.value, ConfigError)
    with pytest.raises(TaxonomyError, match="no such file"):
        DetectOptions(taxonomy=tmp_path / "missing.yaml")


def test_a_bad_taxonomy_file_stops_each_command_naming_the_file_and_line(tmp_path, site_taxonomy):
    from click.testing import CliRunner

    from uprm.cli import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text(site_taxonomy.read_text().replace("severity: high", "severity: severe"))
    video = tmp_path / "a.mp4"
    video.write_bytes(b"")
    for args in (["detect", str(video)], ["watch", str(video)]):
        result = CliRunner().invoke(cli, [*args, "--checkpoint", str(tmp_path), "--taxonomy", str(bad)])
        assert result.exit_code == 1, result.output
        assert f"{bad}:5: categories[0].severity:" in result.output and "Traceback" not in result.output
