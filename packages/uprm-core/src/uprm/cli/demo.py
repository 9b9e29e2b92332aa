"""``uprm demo``: the end-to-end path on built-in defaults, offline, in seconds."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--frames", default=8, show_default=True, help="Frames sampled from the synthetic clip.")
@click.option("--router", type=click.Choice(["tradeoff", "basic"]), default="tradeoff", show_default=True,
              help="tradeoff = UPRM (eq.6 + z-loss eq.7); basic = the w/o PTR ablation.")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic clip and the random weights.")
def cli(frames: int, router: str, seed: int) -> None:
    """Run the UPE block on a synthetic clip with every installed expert.

    Builds the coarse expert (a small random CLIP tower) and each installed fine
    expert on a tiny context, runs each expert's frozen perception on a synthetic
    clip, mixes their tokens with the router, and prints the token grid, the
    per-expert router weights (the paper's Fig. 5 quantity) and the z-loss.
    Nothing is downloaded.
    """
    import torch

    from uprm.moe.block import UPEBlock
    from uprm.plugins.manager import get_plugin_host
    from uprm.testing.fixtures import synthetic_clip, tiny_context

    torch.manual_seed(seed)
    host = get_plugin_host()
    infos = host.experts()
    click.echo(f"Installed experts: {', '.join(f'{n} ({i.distribution} {i.version})' for n, i in infos.items())}")
    for p in host.broken():
        click.echo(f"Skipped broken plugin {p.name}: {p.error}")

    ctx = tiny_context(num_frames=frames, hidden_size=64)
    experts = []
    for name, info in infos.items():
        try:
            experts.append(info.cls(ctx))
        except Exception as exc:
            click.echo(f"  {name}: not built with defaults ({type(exc).__name__}: {exc})")
    block = UPEBlock(experts, router=router).eval()
    clip = synthetic_clip(num_frames=frames, size=96, seed=seed)
    click.echo(f"Clip: {clip}")
    features = block.extract(clip)
    for name, feats in features.items():
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feats.items())
        click.echo(f"  extract[{name}]: {shapes}")
    with torch.no_grad():
        out = block(block.collate([features]))
    click.echo(f"Expert order (router columns): {list(out.expert_names)}")
    click.echo(f"z: {tuple(out.z.shape)} = [batch, frames x tokens_per_frame, hidden]")
    mean_w = out.expert_weights.mean(dim=(0, 1))
    for name, w in zip(out.expert_names, mean_w.tolist()):
        click.echo(f"  mean weight {name:<12} {w:.3f}")
    click.echo(f"z-loss (eq.7): {out.z_loss.item():.4f}" if out.z_loss is not None else "z-loss: none (basic router)")
