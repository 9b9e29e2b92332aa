"""``uprm.evaluate(judge=True)`` without the judge extra stops before the model runs."""

from __future__ import annotations

import pytest

from uprm.errors import MissingExtraError


def test_a_judge_without_openai_stops_before_the_model_loads(test_json, tmp_path, monkeypatch):
    import uprm.extras
    from uprm.evaluation import evaluate

    monkeypatch.setattr(uprm.extras, "installed", lambda module: module != "openai")
    # the checkpoint does not exist: reaching the loader would be a CheckpointError instead
    with pytest.raises(MissingExtraError, match=r'pip install "uprm-core\[judge\]"'):
        evaluate(tmp_path / "no-checkpoint", test_json, judge=True)
