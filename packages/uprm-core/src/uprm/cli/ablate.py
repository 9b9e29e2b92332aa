"""``uprm ablate``: the paper's ablation grid through training and evaluation
(:mod:`uprm.ablation` does the work; this module reads options and prints)."""

from __future__ import annotations

import json

import click


@click.command("ablate")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="The grid (YAML or JSON): train/test (and val) instruction files, cache, stage1, training, "
                   "evaluation, seeds, variants. See docs/ablation.md.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (overrides the file's `out`).")
@click.option("--variants", default=None, metavar="V1,V2,…",
              help="Variants to run (overrides the file): full, wo_pose, wo_relation, wo_background, wo_upe, "
                   "wo_ptr, wo_pretune, residual, or all.")
@click.option("--seeds", default=None, metavar="S1,S2,…", help="Seeds (overrides the file), e.g. 0,1,2.")
@click.option("--dry-run", is_flag=True, help="Print the plan (each run's experts, router, stage 1, settings) "
                                              "and run nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
@click.option("--quiet", is_flag=True, help="No progress lines and no table (the files are written).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=None, metavar="N",
              help="Resamples of the 95 % intervals, which draw the test videos and the seeds with replacement, "
                   "and of each variant's paired difference from full (default: the file's, else 1000; "
                   "0: mean ± std, no intervals).")
@click.option("--bootstrap-seed", type=int, default=None, help="Seed of the resamples (default 0).")
@click.option("--permutations", type=click.IntRange(min=1), default=None, metavar="R",
              help="Permutations of each paired p-value (default: as many as --bootstrap).")
def cli(config_file: str, out: str | None, variants: str | None, seeds: str | None, dry_run: bool, as_json: bool,
        quiet: bool, bootstrap: int | None, bootstrap_seed: int | None, permutations: int | None) -> None:
    """Run the ablation grid of Tables 1-2: full, w/o pose (HPE), w/o relation (ORE),
    w/o background (VBE), w/o UPE (coarse only), w/o PTR (basic router), w/o
    pre-tuning, and the residual form of the fine experts, at every seed.

    \b
    Each run is OUT/<variant>/seed<k>/{pretune,train,eval}: `uprm train` (stage 1 when
    the grid has stage-1 data, shared by the variants with the same model), then
    `uprm eval` on the test files. Finished runs are kept, so a killed ablation resumes;
    a failed run is reported and the others go on (exit status 1 at the end).
    Writes OUT/ablation.md, ablation.csv, ablation.json (each metric's mean over seeds
    with its 95 % interval over videos and seeds, the paper's units; each variant's
    paired difference from full, variant − full, with its interval and Holm-corrected
    p-value, marked † when the interval excludes zero; the probability of improvement of
    full over each variant), OUT/ablation_effects.png (those differences, a forest plot)
    and OUT/convergence.png (Fig. 9), and prints the table. Run it again on a finished
    folder (e.g. with another --bootstrap) to re-summarise without retraining.
    """
    from uprm.extras import require_all

    reader = [] if config_file.lower().endswith(".json") else ["yaml"]
    require_all({"train": reader} if dry_run else
                {"train": ["accelerate", *reader], "metrics": ["sklearn", "rouge_score", "sacrebleu"]})
    from uprm.ablation import AblationError, ablate

    try:
        result = ablate(config_file, dry_run=dry_run, quiet=quiet or as_json, out=out, variants=variants,
                        seeds=seeds, bootstrap=bootstrap, bootstrap_seed=bootstrap_seed, permutations=permutations)
    except AblationError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        if as_json:
            click.echo(json.dumps(result, indent=2, default=str))
        return
    failures = result["failures"]
    if failures:
        lines = [f"  {f['variant']}/seed{f['seed']} at {f['stage']}: {f['error']} (log: {f['log']})" for f in failures]
        click.echo(f"{len(failures)} run(s) failed:\n" + "\n".join(lines), err=True)
        raise SystemExit(1)
