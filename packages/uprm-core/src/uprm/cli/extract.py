"""``uprm extract``: run each expert's frozen perception once per clip into a feature cache."""

from __future__ import annotations

import json

import click


@click.command("extract")
@click.option("--data", "data_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Instruction JSON (docs/formats.md); repeat for several (train, val, test).")
@click.option("--experts", default=None,
              help="Comma list of installed experts to extract (see `uprm experts`); default: the model's "
                   "experts with --model, else coarse.")
@click.option("--model", "model_path", default=None, metavar="CHECKPOINT|tiny",
              help="Extract with the perception of this model: a saved UPRM checkpoint directory, or `tiny` "
                   "for the tiny model (UPRMConfig.tiny with --seed). Its context and expert options are used, "
                   "and its own video tower for the coarse expert.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="The cache folder (created; an existing cache is resumed).")
@click.option("--num-frames", type=click.IntRange(min=1), default=None,
              help="Frames sampled uniformly per clip (window); images are one frame. Default: the model's, else 8.")
@click.option("--expert-option", "expert_option", multiple=True, metavar="NAME.KEY=VALUE",
              help="An option of one expert, e.g. pose.max_people=4 or coarse.vision_path=/models/tower "
                   "(VALUE is read as JSON when it parses). Repeatable.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of randomly initialised perception (experts given no weights).")
@click.option("--device", default="cpu", show_default=True, help="torch device for the experts.")
@click.option("--overwrite", is_flag=True, help="Recompute every entry, even valid ones.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first clip that fails (default: report and go on).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def cli(data_files: tuple[str, ...], experts: str | None, model_path: str | None, out_dir: str, num_frames: int | None,
        expert_option: tuple[str, ...], seed: int, device: str, overwrite: bool, fail_fast: bool, quiet: bool,
        as_json: bool) -> None:
    """Cache the experts' features of every clip in the instruction files.

    Each distinct (video, window) of the records is decoded once and every listed
    expert's `extract` runs on it; the result goes to
    OUT/<video_id>/<window>_f<F>/<expert>.safetensors, written atomically, with the
    expert's extraction config, a fingerprint of its frozen weights, the expert context
    and the core/plugin versions in the metadata. Valid entries are skipped, stale ones
    recomputed: re-running after an interruption (even kill -9) resumes.

    With --model, the experts are the model's own (its video tower for the coarse
    expert, its context and expert options), so the cache fits that model exactly.
    Without, the expert context is the tiny default (hidden 32, 1 + 4x4 tokens per
    frame from 32-pixel frames) with --num-frames frames; experts with no weights
    option get randomly initialised perception seeded by --seed. Keypoint and scene-graph sidecar
    files named in the records reach the pose and relation experts through the clip.

    Several processes: `torchrun --standalone --nproc_per_node 2 -m uprm extract ...`
    splits the clips between them (accelerate). Exits with status 1 if a clip failed.
    """
    import os

    from uprm.extras import require

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun the clips are split by accelerate
        require("train", "accelerate")
    from uprm.data import FeatureCache, clip_keys_from_records, extract_features
    from uprm.errors import UPRMError

    if model_path is not None and expert_option:
        raise click.BadParameter("expert options come from the model's config with --model",
                                 param_hint="--expert-option")
    try:
        model = _load_model(model_path, seed, num_frames, device) if model_path is not None else None
    except (UPRMError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    names = _expert_names(experts, model)
    try:
        extractors, frames = _extractors(names, model, expert_option, num_frames, seed, device)
        keys = clip_keys_from_records(data_files, frames)
        report = extract_features(keys, extractors, FeatureCache(out_dir), overwrite=overwrite,
                                  fail_fast=fail_fast, progress=not quiet)
    except (UPRMError, ValueError, FileNotFoundError, TypeError) as exc:
        raise click.ClickException(str(exc)) from exc
    _print_report(report, out_dir, as_json)
    if report.failed:
        raise SystemExit(1)


def _expert_names(experts: str | None, model) -> list[str]:
    names = [n.strip() for n in (experts or "").split(",") if n.strip()]
    if not names:
        if experts is not None:
            raise click.BadParameter("give at least one expert", param_hint="--experts")
        names = list(model.expert_names) if model is not None else ["coarse"]
    return names


def _extractors(names: list[str], model, expert_option: tuple[str, ...], num_frames: int | None, seed: int,
                device: str) -> tuple[dict, int]:
    """The experts to extract with, and the frame count: the model's own, or built by
    the plugin layer's factory on the default context."""
    from uprm.data import default_context
    from uprm.plugins.factory import build_experts, parse_expert_options

    if model is not None:
        unknown = sorted(set(names) - set(model.expert_names))
        if unknown:
            raise ValueError(f"the model has no expert(s) {unknown} (it has {list(model.expert_names)})")
        return {n: model.block.experts[n].to(device).eval() for n in names}, num_frames or model.config.num_frames
    try:
        options = parse_expert_options(expert_option, names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expert-option") from exc
    frames = num_frames or 8
    built = build_experts(names, default_context(frames), options, seed, device=device)
    return {n: e.eval() for n, e in built.items()}, frames


def _print_report(report, out_dir: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "errors": [{"clip": c, "error": e} for c, e in report.failed]},
                              indent=2))
        return
    click.echo(
        f"[process {report.process}] {report.clips} clips: {report.written} entries written "
        f"({report.stale} were stale), {report.cached} already cached, {len(report.failed)} clips failed "
        f"in {report.seconds:.1f} s -> {out_dir}"
    )
    for clip, error in report.failed:
        click.echo(f"  failed: {clip}: {error}", err=True)


def _load_model(path: str, seed: int, num_frames: int | None, device: str):
    """A saved checkpoint directory (through :func:`uprm.load_model`), or ``tiny``."""
    from uprm.modeling import UPRMConfig, build_model, load_model

    if path == "tiny":
        overrides = {"seed": seed}
        if num_frames:
            overrides["num_frames"] = num_frames
        return load_model(build_model(UPRMConfig.tiny(**overrides)), device=device).model
    return load_model(path, device=device).model
