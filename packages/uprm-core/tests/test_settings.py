"""``uprm.settings.Settings``: the one base of every settings type — strict values, one
error type naming the file, the YAML line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import pytest
from pydantic import Field

from uprm.errors import ConfigError, ServeConfigError
from uprm.settings import PathStr, Settings


class Inner(Settings):
    depth: int = Field(2, ge=1)


class Run(Settings):
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    steps: int = 10
    mode: Literal["fast", "slow"] = "fast"
    out: PathStr | None = None
    inner: Inner = Inner()


class Served(Settings):
    error: ClassVar[type[ConfigError]] = ServeConfigError
    port: int = Field(8000, ge=0, le=65535)


def test_values_are_strict_and_errors_name_the_field():
    assert Run(lr=1, out=Path("/tmp/x")).out == "/tmp/x"  # an int is a float; a path a str
    for bad, field in [({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"), ({"steps": "8"}, "steps"),
                       ({"mode": "medium"}, "mode"), ({"inner": {"depth": 0}}, "inner: depth")]:
        with pytest.raises(ConfigError, match=rf"^{field}: "):
            Run(**bad)
    with pytest.raises(ConfigError, match=r"stps: unknown setting \(known settings: inner, lr, mode, out, steps\)"):
        Run(stps=3)


def test_a_settings_type_raises_its_own_config_error():
    with pytest.raises(ServeConfigError, match="port"):
        Served(port=70000)
    assert issubclass(ServeConfigError, ConfigError)


def test_a_run_file_error_names_the_file_the_line_and_the_field(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("# a run\nsteps: 5\n\nlr: fast\nnope: 1\n")
    with pytest.raises(ConfigError) as err:
        Run.from_file(path)
    message = str(err.value)
    assert f"{path}, line 4: lr: Input should be a valid number" in message
    assert f"{path}, line 5: nope: unknown setting" in message


def test_a_value_given_over_the_file_is_not_blamed_on_the_file_s_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("steps: 5\nlr: 0.1\n")
    assert Run.from_file(path, steps=7).steps == 7
    with pytest.raises(ConfigError) as err:
        Run.from_file(path, steps="many")
    assert str(err.value).startswith(f"{path}: steps:")


def test_a_repeated_key_a_non_mapping_and_bad_yaml_are_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("steps: 5\nlr: 0.1\nsteps: 6\n")
    with pytest.raises(ConfigError, match=r"line 3: 'steps' is given twice \(first on line 1\)"):
        Run.from_file(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping of settings, got list"):
        Run.from_file(path)
    path.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match=rf"{path}, line \d+: not valid YAML"):
        Run.from_file(path)
    with pytest.raises(ConfigError, match="no such file"):
        Run.from_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text('{"steps": 1,}')
    with pytest.raises(ConfigError, match=r"bad\.json, line 1: not valid JSON"):
        Run.from_file(tmp_path / "bad.json")


def test_scientific_numbers_without_a_dot_are_numbers(tmp_path):
    """YAML 1.1 reads ``1e-4`` as a string; a learning rate is written that way."""
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-4\nmode: slow\n")
    assert Run.from_file(path).lr == pytest.approx(1e-4)


def test_replace_validates_like_the_constructor_and_leaves_the_original():
    run = Run()
    assert run.replace(steps=3).steps == 3 and run.steps == 10
    with pytest.raises(ConfigError, match="steps"):
        run.replace(steps=-1.5)
    assert Run(inner={"depth": 3}).to_dict()["inner"] == {"depth": 3}
