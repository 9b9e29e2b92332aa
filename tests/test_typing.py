"""The public API is typed: a custom-expert author's code is checked against it.

mypy, with the project's configuration, reads two files written as a plugin author
would: one correct expert (class, hook, standard tests) that must pass, and one with the
mistakes an editor should flag — a misspelt context field, ``extract`` returning the
wrong type, ``forward`` missing its tokens argument, a hook returning instances, an
unknown option of ``tiny_context`` — each of which must be reported on its line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="the type checker: pip install --group typing")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

GOOD = textwrap.dedent("""
    from collections.abc import Mapping

    import torch

    import uprm
    from uprm.testing import ExpertTests, synthetic_clip, tiny_context


    class MotionExpert(uprm.Expert):
        name = "motion"
        granularity = "fine"

        def __init__(self, ctx: uprm.ExpertContext, width: int = 8) -> None:
            super().__init__(ctx)
            self.proj = torch.nn.Linear(3, ctx.hidden_size)

        def extract(self, clip: uprm.VideoClip) -> dict[str, torch.Tensor]:
            return {"colour": clip.frames.float().mean(dim=(2, 3))}

        def forward(self, features: Mapping[str, torch.Tensor], video_tokens: torch.Tensor) -> torch.Tensor:
            return video_tokens + self.proj(features["colour"]).mean(dim=1, keepdim=True)


    @uprm.hookimpl
    def uprm_register_experts() -> list[type[uprm.Expert]]:
        return [MotionExpert]


    class TestMotionExpert(ExpertTests):
        expert_class = MotionExpert
        expert_options = {"width": 4}


    expert = MotionExpert(tiny_context(hidden_size=16))
    features = expert.collate([expert.extract(synthetic_clip(4, seed=0))])
    tokens: torch.Tensor = expert(features, torch.zeros(1, 4 * expert.ctx.tokens_per_frame, 16))
    names: list[str] = sorted(uprm.available_experts())
""").lstrip("\n")

BAD = textwrap.dedent("""
    from collections.abc import Mapping

    import torch

    import uprm


    class MotionExpert(uprm.Expert):
        name = "motion"

        def __init__(self, ctx: uprm.ExpertContext) -> None:
            super().__init__(ctx)
            self.proj = torch.nn.Linear(3, ctx.hidden_sise)  # line 13: a misspelt field

        def extract(self, clip: uprm.VideoClip) -> list[torch.Tensor]:  # line 15: not a dict
            return [clip.frames]

        def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:  # line 18: no tokens
            return self.proj(features["x"])


    @uprm.hookimpl
    def uprm_register_experts() -> list[type[uprm.Expert]]:
        return [MotionExpert(uprm.testing.tiny_context())]  # line 24: an instance, not a class
""").lstrip("\n")


def test_a_custom_expert_is_checked_against_the_public_api(tmp_path):
    (tmp_path / "good_expert.py").write_text(GOOD)
    (tmp_path / "bad_expert.py").write_text(BAD)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary",
         "--cache-dir", str(ROOT / ".mypy_cache"), str(tmp_path / "good_expert.py"), str(tmp_path / "bad_expert.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    lines = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not [line for line in lines if "good_expert.py" in line], result.stdout
    flagged = {int(line.split(":")[1]) for line in lines if "bad_expert.py" in line}
    assert {13, 15, 18, 24} <= flagged, result.stdout + result.stderr
    assert "hidden_sise" in result.stdout
