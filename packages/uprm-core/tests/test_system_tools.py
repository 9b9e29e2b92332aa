"""The rule for the system tools of the browser, stream and deployment tests: a missing
one fails the test with the install line, whatever the environment says (no opt-out)."""

import pytest


@pytest.mark.parametrize("env", [{}, {"UPRM_SKIP_SYSTEM_TESTS": "1"}, {"CI": "true"}])
def test_a_missing_tool_always_fails_with_the_install_line(missing_system_tool, monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(pytest.fail.Exception, match=r"ffmpeg is not installed.*rtsp-server-perl and postgresql"):
        missing_system_tool("ffmpeg is not installed")
