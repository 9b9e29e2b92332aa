"""Gradient accumulation in one process, fast: ``--batch-size`` is the effective batch
(docs/design.md §9a), so ``grad_accum`` 2 or 4 (micro-batches of 2 or 1) must train the
same model as one micro-batch of 4 — the same losses, gradient norms and weights. The
slow two-process ``torchrun`` test checks the same rule across processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from uprm.data import load_records
from uprm.training import train

#: every record's answer in these runs: with as many answer tokens in every item, the
#: mean loss of a batch is exactly the mean of its equal micro-batches' mean losses (the
#: cross-entropy averages over a batch's answer tokens)
ANSWER = "Yes, there exists a threat."
STEP_FIGURES = ("loss", "ce_loss", "z_loss", "grad_norm")


def _one_answer_records(train_file: Path, out: Path) -> Path:
    """The training records with every answer set to :data:`ANSWER` and their paths made
    absolute (so the session's feature cache still serves every clip)."""
    records = []
    for record in load_records(train_file):
        rec = dict(record)
        for key in ("video", "keypoints", "scene_graph"):
            if rec.get(key):
                rec[key] = str((train_file.parent / rec[key]).resolve())
        rec["conversations"] = [rec["conversations"][0], {"from": "gpt", "value": ANSWER}]
        records.append(rec)
    out.write_text(json.dumps(records))
    return out


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_accumulation_trains_the_same_model_as_one_micro_batch(tiny_settings, split_files, tmp_path):
    data = _one_answer_records(split_files["train"], tmp_path / "train.json")
    settings = {**tiny_settings, "data": [str(data)], "batch_size": 4, "max_steps": 3}
    runs = {k: train(out=str(tmp_path / f"accum{k}"), grad_accum=k, **settings) for k in (1, 2, 4)}
    for k, run in runs.items():
        derived = json.loads((run / "train_config.json").read_text())["derived"]
        assert derived["micro_batch_size"] == 4 // k  # the accumulation really split the batch

    whole = _log(runs[1])
    assert len(whole) == 3
    weights = load_file(str(runs[1] / "model.safetensors"))
    for k in (2, 4):
        log = _log(runs[k])
        for key in STEP_FIGURES:
            assert [r[key] for r in log] == pytest.approx([r[key] for r in whole], rel=1e-5, abs=1e-7), (k, key)
        other = load_file(str(runs[k] / "model.safetensors"))
        assert other.keys() == weights.keys()
        assert all(torch.allclose(other[n], weights[n], rtol=0, atol=1e-5) for n in weights), k
    assert whole[2]["loss"] < whole[0]["loss"] - 1e-3  # the steps did train: the comparison is not vacuous
