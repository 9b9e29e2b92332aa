"""`uprm train` end to end on the tiny model, in this process: the loss falls, the run
directory is complete and loadable, freezing is enforced, the cache fills itself."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import torch
from safetensors.torch import load_file

from uprm import UPRMModel
from uprm.training import TINY_LR, ConfigError, Trainer, make_config, train

from .conftest import EXPERTS, invoke

STEP_KEYS = {"step", "loss", "ce_loss", "z_loss", "lr", "grad_norm", "expert_weights"}


def _all_frozen(module):
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_train_resume_and_plot_from_the_command_line(tiny_args, split_files, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", *tiny_args, "--val", split_files["val"], "--max-steps", 16, "--save-every", 4,
                    "--keep-last", 2, "--eval-every", 8, "--out", run)
    assert "trainable parameters:" in result.output and "LoRA off" in result.output
    log = _log(run)
    assert [r["step"] for r in log] == list(range(1, 17))
    assert all(set(r) >= STEP_KEYS for r in log)
    assert all(set(r["expert_weights"]) == set(EXPERTS.split(",")) for r in log)
    assert all(abs(sum(r["expert_weights"].values()) - 1) < 1e-4 for r in log)  # weights of eq.6: R_i and 1 - G
    first, last = sum(r["loss"] for r in log[:4]) / 4, sum(r["loss"] for r in log[-4:]) / 4
    assert last < first - 0.2, (first, last)  # the loss falls
    assert log[0]["lr"] == pytest.approx(TINY_LR) and log[-1]["lr"] < log[0]["lr"]
    assert [r["step"] for r in map(json.loads, (run / "eval.jsonl").read_text().splitlines())] == [8, 16]
    if importlib.util.find_spec("tensorboard") is not None:  # optional at run time
        assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000012", "step-00000016"]
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["config"]["lr"] == TINY_LR and saved["config"]["data"] == [str(split_files["train"].resolve())]
    assert saved["derived"]["micro_batch_size"] == 4 and saved["derived"]["buckets"] == {"4": 11}

    model = UPRMModel.from_pretrained(run)  # the run directory is the final model
    final = load_file(str(run / "checkpoints" / "step-00000016" / "model.safetensors"))
    state = model.trainable_state_dict()
    assert set(state) == set(final) and all(torch.equal(state[k], final[k]) for k in final)

    again = invoke("train", "--out", run, "--resume")  # a finished run has nothing left to do
    assert "the run is complete" in again.output and len(_log(run)) == 16

    plots = invoke("plot", run, run, "--name", "a", "--name", "b", "--out", tmp_path / "plots")
    for name in ("loss.png", "expert_weights.png", "compare.png"):
        png = tmp_path / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in plots.output


def test_plot_draws_one_curve_per_expert_and_refuses_an_empty_run(tiny_settings, tmp_path):
    from uprm.training.plots import PlotError, plot_runs

    run = train(out=str(tmp_path / "run"), max_steps=3, **tiny_settings)
    files = {f.path.name: f for f in plot_runs([run], tmp_path / "plots", smooth=0.5)}
    assert files["expert_weights.png"].series == {"run": ["background", "coarse"]}
    assert files["loss.png"].series["loss"] == ["run", "run ce_loss"] and "compare.png" not in files
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlotError, match="empty: no training records"):
        plot_runs([tmp_path / "empty"], tmp_path / "p")
    assert "no such run directory" in invoke("plot", tmp_path / "missing", ok=False).output


def test_frozen_parts_get_no_gradient_no_optimizer_state_and_stay_in_eval(tiny_settings, tmp_path, capsys):
    seen = {}

    def inspect(trainer, record):
        model, opt = trainer.model, trainer.optimizer
        params = {id(p): (n, p) for n, p in model.named_parameters()}
        trainable = {i for i, (_, p) in params.items() if p.requires_grad}
        in_optimizer = {id(p) for g in opt.param_groups for p in g["params"]}
        assert in_optimizer == trainable
        assert {id(p) for p in opt.state} == trainable  # AdamW state for exactly the trained ones
        if record["step"] == 1:  # look at the gradients of step 2 just before the update
            def pre_step(optimizer, args, kwargs):
                grads = {n: p.grad for n, p in params.values()}
                seen["frozen_with_grad"] = [n for n, p in params.values() if not p.requires_grad and grads[n] is not None]
                seen["trained_with_grad"] = sum(grads[n] is not None for n, p in params.values() if p.requires_grad)
            inner = getattr(opt, "optimizer", opt)  # accelerate's wrapper around AdamW
            seen["hook"] = inner.register_step_pre_hook(pre_step)
        seen["eval"] = {
            "video tower": model.block.experts["coarse"].tower.training,
            "SAM encoder": any(m.training for m in model.block.experts["background"].modules()
                               if _all_frozen(m)),
            "image tower": model.vlm.model.image_tower.training,
        }
        seen["router in train mode"] = model.block.router.training
        seen["trainable"] = sum(p.numel() for i, (_, p) in params.items() if i in trainable)

    config = make_config(out=str(tmp_path / "run"), max_steps=3, **tiny_settings)
    run = Trainer(config, callbacks=[inspect]).fit()
    assert seen["frozen_with_grad"] == [] and seen["trained_with_grad"] > 0
    assert seen["eval"] == {"video tower": False, "SAM encoder": False, "image tower": False}
    assert seen["router in train mode"] is True
    assert f"trainable parameters: {seen['trainable']:,} of" in capsys.readouterr().out
    # the frozen weights are those of the untrained model: rebuilt from the config, they match
    trained, fresh = UPRMModel.from_pretrained(run), UPRMModel.from_pretrained(run)
    fresh_state = dict(fresh.named_parameters())
    for name, param in trained.named_parameters():
        if not param.requires_grad:
            assert torch.equal(param, fresh_state[name]), name


def test_missing_clips_are_extracted_once_and_written_back(split_files, tmp_path):
    cache = tmp_path / "cache"
    settings = {"tiny": True, "data": [str(split_files["train"])], "cache": str(cache), "experts": ["coarse"],
                "num_frames": 4, "batch_size": 4, "progress": False, "max_steps": 2}
    train(out=str(tmp_path / "a"), **settings)
    entries = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.safetensors"))
    assert len(entries) == 4 and all(e.endswith("_f4/coarse.safetensors") for e in entries)
    stamps = {p: p.stat().st_mtime_ns for p in cache.rglob("*.safetensors")}
    train(out=str(tmp_path / "b"), **settings)  # a second run reads them
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.safetensors")} == stamps
    a, b = _log(tmp_path / "a"), _log(tmp_path / "b")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]


def test_runs_are_never_overwritten_and_resume_refuses_a_changed_config(tiny_settings, tmp_path):
    run = str(tmp_path / "run")
    train(out=run, max_steps=2, **tiny_settings)
    with pytest.raises(ConfigError, match=r"already holds a training run .* pass --resume"):
        train(out=run, max_steps=2, **tiny_settings)
    with pytest.raises(ConfigError, match=r"configuration differs .*lr: 0.001 -> 0.0003"):
        train(out=run, resume=True, lr=3e-4)
    with pytest.raises(ConfigError, match=r"max_steps: 2 -> 5"):
        train(out=run, resume=True, max_steps=5, **tiny_settings)
    with pytest.raises(ConfigError, match="holds no training run to continue"):
        train(out=str(tmp_path / "other"), resume=True, max_steps=2, **tiny_settings)


def test_init_takes_the_checkpoint_experts_and_refuses_others(tiny_settings, tmp_path):
    from uprm import UPRMConfig, build_model

    init = tmp_path / "init"
    build_model(UPRMConfig.tiny(experts=["coarse"], num_frames=4)).save_pretrained(init)
    settings = {**tiny_settings, "experts": None}
    cfg = make_config(init=str(init), out=str(tmp_path / "run"), **settings)
    from uprm.training.build import resolve_config

    resolved = resolve_config(cfg)
    assert resolved.experts == ["coarse"] and resolved.router == "tradeoff" and resolved.tiny
    with pytest.raises(ConfigError, match=r"--experts \['background', 'coarse'\] differ from the experts of the --init"):
        resolve_config(cfg.replace(experts=["coarse", "background"]))
    with pytest.raises(ConfigError, match="--router basic differs"):
        resolve_config(cfg.replace(router="basic"))
    assert resolved.router_norm is False
    with pytest.raises(ConfigError, match="--router-norm differs from the --init checkpoint"):
        resolve_config(cfg.replace(router_norm=True))


def test_router_norm_is_built_saved_and_taken_by_init(tiny_settings, tmp_path):
    from uprm.training.build import build_training_model, resolve_config

    run = tmp_path / "run"
    config = make_config(out=str(run), max_steps=1, router_norm=True, **tiny_settings)
    assert build_training_model(resolve_config(config)).block.router.input_norm is not None
    Trainer(config).fit()
    loaded = UPRMModel.from_pretrained(run)
    assert loaded.config.router_options == {"input_norm": True}
    assert loaded.block.router.input_norm is not None  # the option survives save/load
    nxt = resolve_config(make_config(init=str(run), out=str(tmp_path / "next"), **{**tiny_settings, "experts": None}))
    assert nxt.router_norm is True  # a stage 2 from it keeps it
    with pytest.raises(ConfigError, match="--no-router-norm differs"):
        resolve_config(nxt.replace(router_norm=False))
    assert build_training_model(resolve_config(make_config(out=str(tmp_path / "plain"), max_steps=1,
                                                           **tiny_settings))).block.router.input_norm is None


@pytest.mark.parametrize("train_projector", [True, False])
def test_freeze_projector_keeps_it_out_of_the_optimizer_and_unchanged(tiny_settings, tmp_path, train_projector):
    from uprm.training.build import build_training_model, resolve_config

    seen = {}

    def inspect(trainer, record):
        projector = {id(p) for p in trainer.model.vlm.model.multi_modal_projector.parameters()}
        in_optimizer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
        seen["projector in optimizer"] = projector <= in_optimizer
        seen["projector kept out"] = not projector & in_optimizer
        seen["others trained"] = bool(in_optimizer - projector)
        seen["projector updated"] = projector <= {id(p) for p in trainer.optimizer.state}  # AdamW saw its gradient

    config = make_config(out=str(tmp_path / "run"), max_steps=2, train_projector=train_projector, **tiny_settings)
    start = {n: p.detach().clone() for n, p in
             build_training_model(resolve_config(config)).vlm.model.multi_modal_projector.named_parameters()}
    run = Trainer(config, callbacks=[inspect]).fit()
    assert seen["others trained"]
    assert seen["projector in optimizer"] is train_projector and seen["projector kept out"] is not train_projector
    assert seen["projector updated"] is train_projector
    end = dict(UPRMModel.from_pretrained(run).vlm.model.multi_modal_projector.named_parameters())
    assert all(torch.equal(start[n], end[n]) for n in start) is not train_projector


def test_the_freeze_projector_flag_reaches_the_run(tiny_args, tmp_path):
    result = invoke("train", *tiny_args, "--freeze-projector", "--max-steps", 1, "--out", tmp_path / "run")
    assert "expert coarse (projector)" not in result.output and "expert background (adapter)" in result.output
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["config"]["train_projector"] is False


def test_gradient_checkpointing_and_bf16_train_the_same_model(tiny_settings, tmp_path):
    plain = _log(train(out=str(tmp_path / "a"), max_steps=2, **tiny_settings))
    ckpt = _log(train(out=str(tmp_path / "b"), max_steps=2, gradient_checkpointing=True, **tiny_settings))
    assert [r["loss"] for r in ckpt] == pytest.approx([r["loss"] for r in plain], rel=1e-5)
    bf16 = _log(train(out=str(tmp_path / "c"), max_steps=2, mixed_precision="bf16", **tiny_settings))
    assert [r["loss"] for r in bf16] == pytest.approx([r["loss"] for r in plain], rel=0.02)


class _Crash(Exception):
    pass


def test_resume_restores_the_dropout_rng(tiny_settings, tmp_path, monkeypatch):
    """A tiny model with LoRA (dropout 0.05) as --init: resuming equals an uninterrupted
    run only because each process's RNG state comes back with the checkpoint."""
    from uprm import UPRMConfig, build_model
    from uprm.modeling.config import LoRASettings

    init = tmp_path / "init"
    lora = LoRASettings(r=4, alpha=8, dropout=0.05, target_modules="q_proj,v_proj")
    build_model(UPRMConfig.tiny(experts=["coarse"], num_frames=4, lora=lora)).save_pretrained(init)
    settings = {**tiny_settings, "tiny": False, "experts": None, "init": str(init), "max_steps": 5,
                "save_every": 2}

    def crash(trainer, record):
        if record["step"] == 3:
            raise _Crash

    def interrupted(out):
        with pytest.raises(_Crash):
            train(out=str(out), callbacks=[crash], **settings)
        return load_file(str(train(out=str(out), resume=True) / "model.safetensors"))

    whole = load_file(str(train(out=str(tmp_path / "whole"), **settings) / "model.safetensors"))
    resumed = interrupted(tmp_path / "resumed")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    monkeypatch.setattr("uprm.training.trainer.restore_rng", lambda state: None)
    forgetful = interrupted(tmp_path / "forgetful")
    assert not all(torch.equal(whole[k], forgetful[k]) for k in whole)  # the RNG state matters here


def test_a_real_backbone_trains_with_the_papers_lora(split_files, cache, tmp_path, capsys):
    """A Video-LLaVA directory (here the tiny one saved in the transformers layout)
    gets the paper's settings: LoRA r 16 / alpha 32 / dropout 0.05, lr 2e-5."""
    from uprm import UPRMConfig, build_model
    from uprm.modeling.config import LoRASettings

    backbone = tmp_path / "video-llava"
    base = build_model(UPRMConfig.tiny(lora=LoRASettings(enabled=False), experts=["coarse"], num_frames=4))
    base.vlm.save_pretrained(backbone)
    base.tokenizer.save_pretrained(backbone)
    run = train(backbone=str(backbone), data=[str(split_files["train"])], cache=str(cache), experts=["coarse"],
                num_frames=4, batch_size=4, max_steps=2, lora_targets="q_proj,v_proj", out=str(tmp_path / "run"),
                progress=False)
    printed = capsys.readouterr().out
    assert "LoRA r 16 / alpha 32 / dropout 0.05" in printed and "trained in full" not in printed
    lora = 2 * 2 * 16 * (64 + 64)  # 2 layers x (q, v) x r x (in + out)
    assert re.search(rf"LoRA \(language model\) +{lora:,}\n", printed), printed
    assert _log(run)[0]["lr"] == pytest.approx(2e-5)
    model = UPRMModel.from_pretrained(run)
    assert (model.config.lora.r, model.config.lora.alpha, model.config.lora.dropout) == (16, 32, 0.05)
    assert model.config.backbone == str(backbone)


def test_block_lr_gives_the_upe_block_its_own_rate_and_the_rest_keeps_lr(tiny_settings, tmp_path):
    from uprm.training.build import build_training_model, resolve_config

    config = make_config(out=str(tmp_path / "run"), max_steps=2, lr=1e-3, block_lr=1e-6, warmup_ratio=0.0,
                         scheduler="constant", **tiny_settings)
    seen = {}

    def inspect(trainer, record):
        names = {id(p): n for n, p in trainer.model.named_parameters()}
        seen["rates"] = {(names[id(p)].startswith("block."), g["initial_lr"])
                         for g in trainer.optimizer.param_groups for p in g["params"]}
        seen["lr"] = record["lr"]

    start = {n: p.detach().clone() for n, p in build_training_model(resolve_config(config)).named_parameters()
             if p.requires_grad}
    run = Trainer(config, callbacks=[inspect]).fit()
    assert seen["rates"] == {(True, 1e-6), (False, 1e-3)}  # every block parameter at block_lr, the rest at lr
    assert seen["lr"] == pytest.approx(1e-3)  # the logged rate is --lr's
    end = dict(UPRMModel.from_pretrained(run).named_parameters())
    moved = {n: (end[n] - start[n]).abs().max().item() for n in start if n in end}
    block = [m for n, m in moved.items() if n.startswith("block.")]
    rest = [m for n, m in moved.items() if not n.startswith("block.")]
    assert block and rest
    assert max(block) < 2.5e-6  # AdamW moves a weight by about lr a step at most: 2 steps (float32 rounding)
    assert max(rest) > 1e-4
    assert json.loads(run.joinpath("train_config.json").read_text())["config"]["block_lr"] == 1e-6
