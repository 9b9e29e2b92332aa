"""The batch plan: bucketed by frame count, deterministic, sharded by rank, resumable."""

from __future__ import annotations

import itertools

import pytest

from uprm.training.sampler import BatchPlan, RankBatchSampler, eval_batches, micro_batch_size, micro_batches

FRAMES = (8, 1, 8, 8, 1, 8, 1, 8, 8, 16, 8, 1, 8)  # videos, images and one 16-frame clip


def test_batches_never_mix_frame_counts_and_cover_every_item():
    plan = BatchPlan(FRAMES, batch_size=4, seed=1)
    assert plan.buckets == {1: 4, 8: 8, 16: 1}
    assert plan.steps_per_epoch == 1 + 2 + 1
    for epoch in range(3):
        batches = plan.epoch(epoch)
        assert len(batches) == plan.steps_per_epoch
        assert all(len(b) == 4 and len({FRAMES[i] for i in b}) == 1 for b in batches)
        assert set(itertools.chain(*batches)) == set(range(len(FRAMES)))


def test_plan_is_deterministic_per_seed_and_epoch():
    plan = BatchPlan(FRAMES, batch_size=4, seed=1)
    assert plan.epoch(0) == BatchPlan(FRAMES, batch_size=4, seed=1).epoch(0)
    assert plan.epoch(0) != plan.epoch(1)
    assert plan.epoch(0) != BatchPlan(FRAMES, batch_size=4, seed=2).epoch(0)
    assert plan.fingerprint() != BatchPlan(FRAMES, batch_size=2, seed=1).fingerprint()
    ordered = BatchPlan(FRAMES, batch_size=4, shuffle=False).epoch(0)
    assert ordered[0] == [1, 4, 6, 11]


def test_ranks_and_accumulation_split_the_same_global_batch():
    plan = BatchPlan(FRAMES, batch_size=8, seed=0)
    batch = plan.batch(0)
    one = micro_batches(batch, grad_accum=2, world_size=1, rank=0)
    two = [micro_batches(batch, grad_accum=1, world_size=2, rank=r)[0] for r in range(2)]
    assert one == two  # one process x 2 accumulation steps == two processes x 1
    four = [m for r in range(2) for m in micro_batches(batch, grad_accum=2, world_size=2, rank=r)]
    assert sorted(itertools.chain(*four)) == sorted(batch) and all(len(m) == 2 for m in four)
    with pytest.raises(ValueError, match="does not split into 3 accumulation"):
        micro_batch_size(8, 3, 1)


def test_sampler_resumes_at_any_step_with_the_same_order():
    plan = BatchPlan(FRAMES, batch_size=4, seed=5)
    full = list(RankBatchSampler(plan, grad_accum=2, world_size=1, rank=0, start_step=0, total_steps=10))
    assert len(full) == 20  # 10 steps over 2.5 epochs, 2 micro-batches each
    for start in (1, 4, 7):
        tail = list(RankBatchSampler(plan, grad_accum=2, world_size=1, rank=0, start_step=start, total_steps=10))
        assert tail == full[2 * start :]
    ranks = [list(RankBatchSampler(plan, grad_accum=1, world_size=2, rank=r, start_step=0, total_steps=10))
             for r in range(2)]
    assert [a + b for a, b in zip(*ranks)] == [plan.batch(s) for s in range(10)]


def test_validation_batches_cover_each_item_once_over_ranks():
    shards = [eval_batches(FRAMES, 3, world_size=2, rank=r) for r in range(2)]
    items = [i for shard in shards for b in shard for i in b]
    assert sorted(items) == list(range(len(FRAMES)))
    assert all(len({FRAMES[i] for i in b}) == 1 for shard in shards for b in shard)
