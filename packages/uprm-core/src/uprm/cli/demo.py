"""``uprm demo``: the end-to-end path on built-in defaults, offline, in under a minute."""

from __future__ import annotations

import click

from uprm.moe.names import ROUTER_NAMES


@click.command("demo")
@click.option("--frames", default=8, show_default=True, help="Frames sampled per clip.")
@click.option("--router", type=click.Choice(list(ROUTER_NAMES)), default="tradeoff", show_default=True,
              help="tradeoff = UPRM (eq.6 + z-loss eq.7); basic = the w/o PTR ablation.")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic world and the random weights.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Keep the rendered synthetic world here (default: a temporary folder).")
def cli(frames: int, router: str, seed: int, out: str | None) -> None:
    """Render a synthetic surveillance clip and run a tiny UPRM model on it.

    Renders a threat video of the synthetic world (with its true keypoints and scene
    graph), builds the tiny randomly initialised Video-LLaVA with every installed
    expert, runs each expert's frozen perception, mixes their tokens with the
    router, and runs one training forward on the clip's locate instruction. Prints
    the token grid, the per-expert router weights (the paper's Fig. 5 quantity), the
    z-loss and the loss. Nothing is downloaded.
    """
    import tempfile
    from pathlib import Path

    import torch

    from uprm.data import clip_keys_from_records, load_clip_for, load_records
    from uprm.modeling import UPRMConfig, build_model
    from uprm.plugins.manager import get_plugin_host
    from uprm.synthetic import generate_world

    torch.manual_seed(seed)
    host = get_plugin_host()
    infos = host.experts()
    click.echo(f"Installed experts: {', '.join(f'{n} ({i.distribution} {i.version})' for n, i in infos.items())}")
    for p in host.broken():
        click.echo(f"Skipped broken plugin {p.name}: {p.error}")

    with tempfile.TemporaryDirectory() as tmp:
        world = Path(out) if out else Path(tmp) / "world"
        generate_world(world, num_videos=2, seed=seed, progress=False)
        files = sorted((world / "instructions").glob("*.json"))
        records = [r for f in files for r in load_records(f) if r.get("task") == "locate" and r.get("segments")]
        if not records:  # pragma: no cover - the world always holds a threat video
            raise click.ClickException(f"{world}: no threat video was rendered")
        record = records[0]
        key = next(k for k in clip_keys_from_records(files, frames) if k.video_id == record["video_id"])
        clip = load_clip_for(key)
        click.echo(f"Clip: {clip} [{record['category']}]")
        click.echo(f"  question: {record['conversations'][0]['value'].splitlines()[-1]}")
        click.echo(f"  answer:   {record['conversations'][1]['value']}")

        model = build_model(UPRMConfig.tiny(router=router, num_frames=frames, seed=seed))
        click.echo(f"Model: tiny Video-LLaVA + experts {list(model.expert_names)} "
                   f"({model.num_parameters(trainable_only=True):,} trainable of {model.num_parameters():,})")
        features = model.extract(clip)
        for name, feats in features.items():
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feats.items())
            click.echo(f"  extract[{name}]: {shapes}")
        batch = model.collate([features])
        inputs = model.tokenize([record["conversations"][0]["value"]], [record["conversations"][1]["value"]], frames)
        with torch.no_grad():
            out_ = model(inputs["input_ids"], inputs["attention_mask"], batch, inputs["labels"])
        t = out_.router_logits.shape[1]
        click.echo(f"Video tokens: {t} = {frames} frames x {model.ctx.tokens_per_frame} tokens, "
                   f"hidden {model.ctx.hidden_size}; router columns {list(model.expert_names)}")
        for name, w in zip(model.expert_names, out_.expert_weights.mean(dim=(0, 1)).tolist()):
            click.echo(f"  mean weight {name:<12} {w:.3f}")
        z = f"{out_.z_loss.item():.4f}" if out_.z_loss is not None else "none (basic router)"
        click.echo(f"z-loss (eq.7): {z}   CE: {out_.ce_loss.item():.4f}   loss: {out_.loss.item():.4f}")
