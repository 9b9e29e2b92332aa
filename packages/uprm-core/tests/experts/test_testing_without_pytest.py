"""``import uprm.testing`` (and the plugins' own ``testing`` modules) must work where
pytest is not installed: demos, benchmarks and notebooks use their helpers."""

import importlib.util
import subprocess
import sys
import textwrap

import pytest

NO_PYTEST = "import sys; sys.modules['pytest'] = None  # `import pytest` now raises ImportError\n"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_PYTEST + textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_uprm_testing_imports_without_pytest():
    result = run(
        """
        try:
            import pytest
        except ImportError:
            pass
        else:
            raise SystemExit("pytest imported: the trick did not work")
        import uprm.testing
        from uprm.testing import ColourExpert, synthetic_clip, tiny_context

        ctx = tiny_context()
        expert = ColourExpert(ctx)
        assert expert.collate([expert.extract(synthetic_clip(ctx.num_frames))])["colour"].shape == (1, 4, 3)
        try:
            from uprm.testing import ExpertTests
        except ImportError as err:
            assert "needs pytest" in str(err), err
        else:
            raise SystemExit("ExpertTests imported without pytest")
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.skipif(
    importlib.util.find_spec("uprm_expert_pose") is None or importlib.util.find_spec("uprm_expert_relation") is None,
    reason="needs the uprm-expert-pose and uprm-expert-relation plugins installed",
)
def test_the_plugins_testing_modules_import_without_pytest():
    result = run(
        """
        from uprm_expert_pose.testing import pose_clip
        from uprm_expert_relation.testing import scene_graph_document

        assert callable(pose_clip)

        assert scene_graph_document([{"frame_index": 0}])["frames"][0]["objects"] == []
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
