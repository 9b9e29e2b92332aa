"""The rule for the browser and stream tests' system tools (chromium, chromium-driver,
ffmpeg): missing fails; only an explicit opt-out skips, and never under CI=true."""

import pytest


@pytest.mark.parametrize(("env", "outcome"), [
    ({}, pytest.fail.Exception),
    ({"UPRM_SKIP_SYSTEM_TESTS": "1"}, pytest.skip.Exception),
    ({"UPRM_SKIP_SYSTEM_TESTS": "1", "CI": "true"}, pytest.fail.Exception),
])
def test_a_missing_tool_fails_unless_skipping_is_asked_for_outside_ci(missing_system_tool, monkeypatch, env, outcome):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("UPRM_SKIP_SYSTEM_TESTS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(outcome, match=r"ffmpeg is not installed.*UPRM_SKIP_SYSTEM_TESTS"):
        missing_system_tool("ffmpeg is not installed")
