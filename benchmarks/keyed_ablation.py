"""The paper's mechanism on a world whose answer is known: the keyed ablation.

In the keyed world (``uprm data synthetic --design keyed``, docs/formats.md) each threat
category differs from its look-alike normal twin in exactly one expert's input:
Fighting in the keypoints (pose), Stealing in the scene graphs (relation), Arson in the
look of the scene (background), RoadAccidents in gross motion (the coarse tower). The
pose- and relation-keyed pairs render to identical videos, so the coarse tower cannot
tell them apart. The design predicts a signature:

1. removing an expert hurts the categories keyed to it (the paired delta's interval
   excludes zero) and not the others (it includes zero);
2. full beats w/o UPE (coarse only) overall, with an interval that excludes zero;
3. the router gives pose more weight on pose-keyed windows than on relation-keyed ones,
   and the reverse for relation;
and, as a check of the world, the coarse-only model is at chance on the pose- and
relation-keyed pairs.

What runs: the world and its feature cache once; then ``uprm ablate`` over full, w/o pose,
w/o relation, w/o background, w/o UPE and w/o PTR at three seeds (one shared cache;
``--parallel`` runs at once, one torch thread each), each run trained with the tiny model
(stage 2 only: no run is pre-tuned, the same for every variant) and evaluated on the test
videos. The ablation's own intervals and paired tests (``ablation.json``) are read back,
and the per-category figures are recomputed with each twin counted in its threat's
category ("keyed group"), since per-category FNR alone cannot see false alarms on twins:

- F2 per keyed group (seconds of the threat and of its twin) and FNR per category, 95 %
  intervals over videos and seeds, paired deltas against full;
- pair AUC per keyed group: does P(yes) rank each threat video above the twins (0.5 =
  chance; a model that sees the same input for both gives exactly 0.5);
- the router's mean weight per expert per keyed group (the paper's Fig. 5), and the
  difference pose(Fighting) − pose(Stealing) and relation(Stealing) − relation(Fighting)
  with intervals.

Writes ``benchmarks/keyed_ablation.md`` (``--report``) with the settings, the measured
times, the tables and each line of the signature as it came out.

    .venv/bin/python benchmarks/keyed_ablation.py                  # the grid: ~60-90 min on 2 cores
    .venv/bin/python benchmarks/keyed_ablation.py --quick --parallel 1   # the same path in about a minute
    .venv/bin/python benchmarks/keyed_ablation.py --work runs/keyed   # keep (and resume) the runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("UPRM_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

VARIANTS = ("full", "wo_pose", "wo_relation", "wo_background", "wo_upe", "wo_ptr")
LABELS = {"full": "UPRM (full)", "wo_pose": "w/o HPE (pose)", "wo_relation": "w/o ORE (relation)",
          "wo_background": "w/o VBE (background)", "wo_upe": "w/o UPE (coarse only)", "wo_ptr": "w/o PTR (basic router)"}
#: the expert each variant removes, and so the channel whose category it should hurt
REMOVES = {"wo_pose": "pose", "wo_relation": "relation", "wo_background": "background"}
FULL = dict(videos=400, steps=1500, seeds=(0, 1, 2), bootstrap=1000, permutations=1000, duration=(8.0, 12.0),
            splits=(0.6, 0.1, 0.3), variants=VARIANTS)
QUICK = dict(videos=32, steps=2, seeds=(0,), bootstrap=50, permutations=50, duration=(6.0, 6.0),
             splits=(0.5, 0.0, 0.5), variants=("full", "wo_upe"))


# ----------------------------------------------------------------------------- running
def build_world(work: Path, cfg: Mapping[str, Any], seed: int) -> dict[str, Any]:
    from uprm.synthetic import generate_world

    world = work / "world"
    lo, hi = cfg["duration"]
    summary = generate_world(world, cfg["videos"], seed=seed, design="keyed", size=64, min_duration=lo,
                             max_duration=hi, splits=tuple(cfg["splits"]), progress=False)
    return summary


def instruction_files(work: Path, splits: Sequence[float], windows: tuple[float, float] | None = None
                      ) -> dict[str, Path]:
    """The world's whole-video instructions, or (``windows=(window, stride)``) those of
    every window, as the demo trains: a window is a threat when the threat covers more
    than 1 s of it, and the training file's threat windows are repeated until about half
    the identify answers are yes (:func:`uprm.demo.world.balance_threats`)."""
    names = [s for s, f in zip(("train", "val", "test"), splits) if f > 0]
    if windows is None:
        return {s: work / "world" / "instructions" / f"synthetic_{s}.json" for s in names}
    from uprm.data import build_instructions
    from uprm.data.annotations import read_activitynet
    from uprm.demo.world import balance_threats

    world = work / "world"
    out = work / f"windows_{windows[0]:g}_{windows[1]:g}"
    records = build_instructions(read_activitynet(world / "annotations" / "activitynet.json"), out, name="keyed",
                                 videos=world / "videos", keypoints=world / "keypoints",
                                 scene_graphs=world / "scene_graphs", seed=0, window_s=windows[0],
                                 stride_s=windows[1], min_overlap_s=1.0, missing="error")
    files = {s: Path(f) for s, f in dict(records.files).items() if s in names}
    balance_threats(files["train"])
    return files


def extract(work: Path, files: Mapping[str, Path]) -> None:
    """Every expert's features of every clip, once (the runs share the cache): ``uprm extract``."""
    from click.testing import CliRunner

    from uprm.cli import cli

    args = ["extract", "--model", "tiny", "--num-frames", "4", "--out", str(work / "cache"), "--quiet"]
    for f in files.values():
        args += ["--data", str(f)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"uprm extract failed:\n{result.output}")


def write_grid(work: Path, files: Mapping[str, Path], cfg: Mapping[str, Any]) -> Path:
    grid = {
        "train": str(files["train"]), "test": str(files["test"]), "cache": str(work / "cache"),
        "out": str(work / "ablation"),
        # the UPE block at 3e-4: at the tiny LM's 1e-3 the pose adapter does not learn (keyed_ablation.md §3c)
        "training": {"tiny": True, "num_frames": 4, "max_steps": cfg["steps"], "lr": 1.0e-3, "block_lr": 3.0e-4,
                     "scheduler": "constant", "batch_size": 8, "save_every": max(cfg["steps"], 1),
                     # float32 on the CPU, as the demo trains: "auto" autocasts to bfloat16 on a CPU, which
                     # made the steps 2.7x slower here (3.5 steps/s against the demo's 9.4)
                     "cpu": True, "mixed_precision": "no",
                     # uprm train --router-norm (keyed_ablation.md §3c): off unless asked for
                     **({"router_norm": True} if cfg.get("router_norm") else {})},
        "evaluation": {"dataset": "ucf", "batch_size": 8, "sbert": False},
        "seeds": list(cfg["seeds"]), "variants": list(cfg["variants"]), "threads": 1,
        "bootstrap": cfg["bootstrap"], "permutations": cfg["permutations"],
    }
    if "val" in files:
        grid["val"] = str(files["val"])
    path = work / "grid.json"
    path.write_text(json.dumps(grid, indent=1))
    return path


def run_grid(grid: Path, cfg: Mapping[str, Any], parallel: int) -> float:
    """The runs, ``parallel`` ``uprm ablate`` processes at once (each a share of the
    (variant, seed) runs, one torch thread), then one ``uprm ablate`` over the whole grid:
    every run is finished, so it only reads the evaluations and writes the summary."""
    started = time.perf_counter()
    if parallel <= 1:  # in this process: `uprm.ablate` runs the grid and writes its summary
        from uprm.ablation import ablate

        ablate(str(grid), quiet=True)
        return time.perf_counter() - started
    runs = [(v, s) for s in cfg["seeds"] for v in cfg["variants"]]
    shares = [runs[i::parallel] for i in range(parallel)]
    procs = []
    for k, share in enumerate(s for s in shares if s):
        log = open(grid.parent / f"ablate-{k}.log", "w")  # noqa: SIM115 (closed below)
        # one shell per share: its runs one after another, each an `uprm ablate` of one (variant, seed)
        cmd = (f"for r in {' '.join(f'{v}:{s}' for v, s in share)}; do "
               f"{sys.executable} -m uprm ablate --config {grid} --variants ${{r%%:*}} --seeds ${{r##*:}} "
               f"--bootstrap 0 --quiet || exit 1; done")
        procs.append((subprocess.Popen(["bash", "-c", cmd], stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"}), log))
    failed = []
    for proc, log in procs:
        if proc.wait() != 0:
            failed.append(log.name)
        log.close()
    if failed:
        raise SystemExit(f"a share of the grid failed; see {', '.join(failed)}")
    subprocess.run([sys.executable, "-m", "uprm", "ablate", "--config", str(grid), "--quiet"], check=True)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- reading
def keyed_groups(world: Path) -> tuple[dict[str, str], dict[str, str], dict[str, bool]]:
    """``{video: keyed group}`` (a twin in its threat's category), ``{category: channel}``
    and ``{video: is the threat}``."""
    design = json.loads((world / "design.json").read_text())
    group, threat = {}, {}
    for pair in design["pairs"]:
        group[pair["threat"]], group[pair["twin"]] = pair["category"], pair["category"]
        threat[pair["threat"]], threat[pair["twin"]] = True, False
    channels = {c: d["channel"] for c, d in design["categories"].items()}
    return group, channels, threat


def run_folders(out: Path, variants: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int, Path]]:
    return [(v, s, out / v / f"seed{s}" / "eval") for v in variants for s in seeds
            if (out / v / f"seed{s}" / "eval" / "videos.json").is_file()]


def clip_results(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """Per video: the highest P(yes) of its clips and the mean router weights (clips.jsonl)."""
    per: dict[str, dict[str, Any]] = {}
    lines = (eval_dir / "clips.jsonl").read_text().splitlines()
    for line in lines[1:]:  # the first line is the run's header
        row = json.loads(line)
        v = per.setdefault(row["video_id"], {"p_yes": 0.0, "weights": []})
        v["p_yes"] = max(v["p_yes"], float(row.get("p_yes", 0.0)))
        if row.get("expert_weights"):
            v["weights"].append(row["expert_weights"])
    for v in per.values():
        names = sorted({k for w in v["weights"] for k in w})
        v["weights"] = {k: float(np.mean([w.get(k, 0.0) for w in v["weights"]])) for k in names}
    return per


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC with ties counted half (Mann-Whitney); None without both classes."""
    pos, neg = scores[labels], scores[~labels]
    if pos.size == 0 or neg.size == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


class Reader:
    """The runs of the grid with each video's keyed group."""

    def __init__(self, work: Path, variants: Sequence[str], seeds: Sequence[int]) -> None:
        from uprm.ablation.effects import read_units

        self.group, self.channels, self.threat = keyed_groups(work / "world")
        self.out = work / "ablation"
        runs = run_folders(self.out, variants, seeds)
        units, missing = read_units(runs)
        if missing:
            raise SystemExit(f"runs without videos.json: {missing}")
        self.units = {v: {s: dataclasses.replace(u, categories=[self.group[x] for x in u.videos])
                          for s, u in by_seed.items()} for v, by_seed in units.items()}
        self.variants = [v for v in variants if v in self.units]
        self.seeds = {v: sorted(self.units[v]) for v in self.variants}
        self.videos = sorted(next(iter(self.units[self.variants[0]].values())).videos)
        self.clips = {(v, s): clip_results(f) for v, s, f in runs}
        self.groups = sorted(set(self.group[x] for x in self.videos))


def pair_auc(reader: Reader, spec: Any) -> dict[str, dict[str, Any]]:
    """Per variant and keyed group: pair AUC over videos and seeds, with its interval."""
    from uprm.metrics.uncertainty import bootstrap

    videos = reader.videos
    labels = np.array([reader.threat[x] for x in videos])
    group = np.array([reader.group[x] for x in videos], dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for v in reader.variants:
        seeds = reader.seeds[v]
        table = np.array([[reader.clips[(v, s)].get(x, {}).get("p_yes", 0.0) for x in videos] for s in seeds])

        def stat(k: int, units: np.ndarray, table: np.ndarray = table) -> dict[str, float | None]:
            return {g: _auc(table[k, units][group[units] == g], labels[units][group[units] == g])
                    for g in reader.groups}

        out[v] = {g: e for g, e in bootstrap(stat, len(videos), spec, n_seeds=len(seeds)).items()}
    return out


def router_weights(reader: Reader, spec: Any, variant: str = "full") -> tuple[dict[str, dict[str, float]], dict]:
    """Mean router weight per expert per keyed group (``variant``'s seeds), and the
    intervals of pose(pose-keyed) − pose(relation-keyed) and relation(relation-keyed) −
    relation(pose-keyed)."""
    from uprm.metrics.uncertainty import bootstrap

    seeds = reader.seeds[variant]
    videos = reader.videos
    names = sorted({k for s in seeds for r in reader.clips[(variant, s)].values() for k in r["weights"]})
    w = np.array([[[reader.clips[(variant, s)].get(x, {}).get("weights", {}).get(n, np.nan) for n in names]
                   for x in videos] for s in seeds])  # [seeds, videos, experts]
    group = np.array([reader.group[x] for x in videos], dtype=object)
    means = {g: {n: float(np.nanmean(w[:, group == g, j])) for j, n in enumerate(names)} for g in reader.groups}
    by_channel = {c: g for g, c in reader.channels.items()}
    contrasts: dict[str, Any] = {}
    if {"pose", "relation"} <= set(by_channel) and {"pose", "relation"} <= set(names):
        pg, rg = by_channel["pose"], by_channel["relation"]
        jp, jr = names.index("pose"), names.index("relation")

        def stat(k: int, units: np.ndarray) -> dict[str, float | None]:
            g = group[units]
            on_p, on_r = units[g == pg], units[g == rg]
            if on_p.size == 0 or on_r.size == 0:
                return {"pose": None, "relation": None}
            return {"pose": float(np.nanmean(w[k, on_p, jp]) - np.nanmean(w[k, on_r, jp])),
                    "relation": float(np.nanmean(w[k, on_r, jr]) - np.nanmean(w[k, on_p, jr]))}

        contrasts = bootstrap(stat, len(videos), spec, n_seeds=len(seeds))
        contrasts = {"groups": (pg, rg), **contrasts}
    return means, contrasts


# ----------------------------------------------------------------------------- do the features carry the key?
PROBED = (("Fighting", "pose", "keypoints"), ("Stealing", "relation", "relations"),
          ("Arson", "background", "embedding"), ("RoadAccidents", "coarse", "vision_features"))


def probe_features(work: Path, window: float = 4.0, min_cover: float = 1.5) -> list[tuple[str, str, int, float, float]]:
    """A linear probe per keyed category on the cached features of the expert keyed to it:
    the windows (about ``window`` s long) that cover at least ``min_cover`` s of the threat,
    and the twin's windows of the same spans; logistic regression trained on the train
    pairs, accuracy on the test pairs (0.5 = chance). Reads ``WORK/cache`` as the
    windowed runs filled it (``--windows``). Returns (category, expert, windows, train
    accuracy, test accuracy)."""
    from safetensors.numpy import load_file
    from sklearn.linear_model import LogisticRegression

    design = json.loads((work / "world" / "design.json").read_text())
    truth = json.loads((work / "world" / "annotations" / "activitynet.json").read_text())["database"]
    out = []
    for category, expert, key in PROBED:
        rows, labels, splits = [], [], []
        for pair in (p for p in design["pairs"] if p["category"] == category):
            start, end = truth[pair["threat"]]["annotations"][0]["segment"]
            for video, label in ((pair["threat"], 1), (pair["twin"], 0)):
                for name in sorted(os.listdir(work / "cache" / video)):
                    a, b = (float(x) for x in name.split("_")[0].split("-"))
                    if b - a > window + 0.5 or min(b, end) - max(a, start) < min_cover:
                        continue
                    rows.append(load_file(str(work / "cache" / video / name / f"{expert}.safetensors"))[key].ravel())
                    labels.append(label)
                    splits.append(pair["split"])
        x, y, sp = np.array(rows, dtype=np.float64), np.array(labels), np.array(splits)
        model = LogisticRegression(max_iter=2000).fit(x[sp == "train"], y[sp == "train"])
        out.append((category, expert, len(y), float(model.score(x[sp == "train"], y[sp == "train"])),
                    float(model.score(x[sp == "test"], y[sp == "test"]))))
    return out


def trace_block(work: Path, checkpoint: str | Path, categories: Sequence[str] = ("Stealing", "Fighting"),
                window: float = 4.0, min_cover: float = 1.5) -> list[dict[str, Any]]:
    """Where the key is lost: the trained model's UPE block output ``z`` (``model.prefill``)
    on the same windows as :func:`probe_features`; per keyed category a linear probe of
    ``z`` (train pairs → test pairs), the mean |threat − twin| difference of ``z`` against
    its spread, and the router's mean weights on threats and on twins."""
    import torch
    from safetensors.torch import load_file
    from sklearn.linear_model import LogisticRegression

    import uprm

    model = uprm.load_model(str(checkpoint), device="cpu").model
    design = json.loads((work / "world" / "design.json").read_text())
    truth = json.loads((work / "world" / "annotations" / "activitynet.json").read_text())["database"]
    out = []
    for category in categories:
        items = []
        for pair in (p for p in design["pairs"] if p["category"] == category):
            start, end = truth[pair["threat"]]["annotations"][0]["segment"]
            for video, label in ((pair["threat"], 1), (pair["twin"], 0)):
                for name in sorted(os.listdir(work / "cache" / video)):
                    a, b = (float(x) for x in name.split("_")[0].split("-"))
                    if b - a <= window + 0.5 and min(b, end) - max(a, start) >= min_cover:
                        feats = {n: load_file(str(work / "cache" / video / name / f"{n}.safetensors"))
                                 for n in model.expert_names}
                        items.append((feats, label, pair["split"]))
        z, w = [], []
        with torch.no_grad():
            for i in range(0, len(items), 16):
                prefix = model.prefill(model.collate([f for f, _, _ in items[i:i + 16]]))
                z.append(prefix.visual_tokens.float().reshape(len(items[i:i + 16]), -1).numpy())
                w.append(prefix.expert_weights.float().mean(1).numpy())
        zs, ws = np.concatenate(z), np.concatenate(w)
        y, sp = np.array([it[1] for it in items]), np.array([it[2] for it in items])
        probe = LogisticRegression(max_iter=3000).fit(zs[sp == "train"], y[sp == "train"])
        out.append({"category": category, "windows": len(y),
                    "probe_train": float(probe.score(zs[sp == "train"], y[sp == "train"])),
                    "probe_test": float(probe.score(zs[sp == "test"], y[sp == "test"])),
                    "z_std": float(zs.std()), "threat_twin_diff": float(np.abs(zs[y == 1].mean(0) - zs[y == 0].mean(0)).mean()),
                    "weights_threat": dict(zip(model.expert_names, ws[y == 1].mean(0).round(4).tolist())),
                    "weights_twin": dict(zip(model.expert_names, ws[y == 0].mean(0).round(4).tolist()))})
    return out


# ----------------------------------------------------------------------------- the report
def _f(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(e: Any, digits: int = 1) -> str:
    if e is None or e.value is None:
        return "–"
    return f"{e.value:.{digits}f}" + ("" if e.ci is None else f" [{e.ci[0]:.{digits}f}, {e.ci[1]:.{digits}f}]")


def _delta(c: Any, digits: int = 1) -> str:
    if c is None or c.delta is None:
        return "–"
    mark = " †" if c.excludes_zero else ""
    ci = "" if c.ci is None else f" [{c.ci[0]:+.{digits}f}, {c.ci[1]:+.{digits}f}]"
    p = "" if c.p_holm is None else f" p_H={c.p_holm:.3f}"
    return f"{c.delta:+.{digits}f}{ci}{p}{mark}"


Line = tuple[str, "bool | None", str]


def _removal_lines(reader: Reader, effects: Any) -> list[Line]:
    """1: removing an expert hurts its own keyed group and leaves the others."""
    lines: list[Line] = []
    channel_group = {c: g for g, c in reader.channels.items()}
    for variant, channel in REMOVES.items():
        for g in reader.groups:
            c = effects.vs_full.get(variant, {}).get(f"per_category/{g}/f2")
            if c is None or c.ci is None:
                continue
            if g == channel_group.get(channel):
                lines.append((f"removing {channel} hurts {g} (keyed to it): F2 delta interval below zero",
                              c.ci[1] < 0, _delta(c)))
            else:
                lines.append((f"removing {channel} leaves {g} ({reader.channels[g]}-keyed): interval includes zero",
                              c.ci[0] <= 0 <= c.ci[1], _delta(c)))
    return lines


def _coarse_lines(reader: Reader, effects: Any, aucs: Mapping) -> list[Line]:
    """2: full beats coarse only; and the world's check: coarse only at chance on pose/relation pairs."""
    lines: list[Line] = []
    for key, name in (("f2", "F2"), ("map_average", "mAP average")):
        c = effects.vs_full.get("wo_upe", {}).get(key)
        if c is not None and c.ci is not None:
            lines.append((f"full beats w/o UPE overall ({name}): delta interval below zero", c.ci[1] < 0, _delta(c)))
    for g in reader.groups:
        e = aucs.get("wo_upe", {}).get(g)
        if reader.channels[g] in ("pose", "relation") and e is not None and e.value is not None:
            lines.append((f"coarse only is at chance on {g} ({reader.channels[g]}-keyed pairs): pair AUC interval "
                          "includes 0.5", e.ci is not None and e.ci[0] <= 0.5 <= e.ci[1], _ci(e, 3)))
    return lines


def _router_lines(contrasts: Mapping) -> list[Line]:
    """3: the router weighs pose on pose-keyed windows, relation on relation-keyed ones."""
    lines: list[Line] = []
    for expert in ("pose", "relation"):
        e = contrasts.get(expert)
        if e is not None and e.value is not None:
            pg, rg = contrasts["groups"]
            a, b = (pg, rg) if expert == "pose" else (rg, pg)
            lines.append((f"the router gives {expert} more weight on {a} than on {b}: interval above zero",
                          e.ci is not None and e.ci[0] > 0, _ci(e, 4)))
    return lines


def signature(reader: Reader, effects: Any, aucs: Mapping, contrasts: Mapping) -> list[Line]:
    """Each predicted line: (what, held?, the numbers)."""
    return _removal_lines(reader, effects) + _coarse_lines(reader, effects, aucs) + _router_lines(contrasts)


def _group_table(reader: Reader, effects: Any, metric: str, title: str, headers: Sequence[str]) -> list[str]:
    """A variant-by-group table of ``per_category/<group>/<metric>`` with each variant's delta vs full."""
    from uprm.ablation.effects import metric_key

    lines = [title, "| Variant | " + " | ".join(headers) + " |", "|---|" + "---|" * len(reader.groups)]
    for v in reader.variants:
        cells = []
        for g in reader.groups:
            key = metric_key(f"per_category/{g}/{metric}")
            cell = _ci(effects.estimates[v].get(key))
            if v in effects.vs_full:
                cell += f"<br>Δ {_delta(effects.vs_full[v].get(key))}"
            cells.append(cell)
        lines.append(f"| {LABELS[v]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def report(reader: Reader, effects: Any, aucs: Mapping, weights: Mapping, contrasts: Mapping,
           info: Mapping[str, Any]) -> str:

    rows = []
    add = rows.append
    add("# The keyed ablation: the mechanism on a world whose answer is known\n")
    add(f"Measured {info['date']} with `benchmarks/keyed_ablation.py{info['argv']}` on this machine "
        f"({os.cpu_count()} CPU cores, no GPU; load average at the start {info['load']}).\n")
    add(f"World: `uprm data synthetic --design keyed --videos {info['videos']}` (64 px, "
        f"{info['duration'][0]:g}-{info['duration'][1]:g} s, seed {info['world_seed']}): "
        f"{info['counts']}. Test set: {len(reader.videos)} videos "
        f"({', '.join(f'{g} {sum(reader.group[x] == g for x in reader.videos)}' for g in reader.groups)}; "
        f"half threats, half twins). Keyed to: "
        f"{', '.join(f'{g} {c}' for g, c in sorted(reader.channels.items()))}.\n")
    add(f"Runs: {', '.join(LABELS[v] for v in reader.variants)} at seeds {list(info['seeds'])}; the tiny model, "
        f"4 frames, {info['steps']} steps of stage 2 (batch 8, lr 1e-3 constant; no stage 1 for any variant), "
        f"one shared feature cache; evaluated on the test videos (SB not scored). Times: world "
        f"{info['t_world']:.0f} s, features {info['t_extract']:.0f} s, the {info['runs']} runs "
        f"{info['t_grid'] / 60:.1f} min ({info['parallel']} at once), analysis {info['t_analysis']:.0f} s; total "
        f"{info['t_total'] / 60:.1f} min.\n")
    add(f"Intervals: 95 % percentile bootstrap, {effects.spec.samples} resamples drawing test videos and seeds "
        f"with replacement; deltas are variant − full, paired by video and seed, with a paired permutation p "
        f"({effects.permutations} permutations) and Holm's correction over the variants of one metric (p_H). "
        "† marks a delta whose interval excludes zero.\n")
    add("## The signature, line by line\n")
    for what, ok, numbers in info["signature"]:
        add(f"- {'HOLDS' if ok else 'FAILS' if ok is False else '—'}: {what} — {numbers}")
    add("")
    add("## Overall (mean over seeds [95 % interval])\n")
    cols = [("fnr", "FNR↓"), ("f2", "F2"), ("map_average", "mAP avg")]
    add("| Variant | " + " | ".join(h for _, h in cols) + " | Δ F2 vs full | Δ mAP avg vs full | P(full better) |")
    add("|---|" + "---|" * (len(cols) + 3))
    for v in reader.variants:
        est = effects.estimates[v]
        vs = effects.vs_full.get(v, {})
        add(f"| {LABELS[v]} | " + " | ".join(_ci(est.get(k)) for k, _ in cols)
            + f" | {_delta(vs.get('f2'))} | {_delta(vs.get('map_average'))} | "
            + f"{_f(effects.improvement.get(v), 2) if v != 'full' else ''} |")
    add("")
    rows += _group_table(reader, effects, "f2", "## Per keyed group: F2 (threat and twin seconds) [interval], and "
                         "its delta vs full\n", [f"{g} ({reader.channels[g]})" for g in reader.groups])
    rows += _group_table(reader, effects, "fnr", "## Per category: FNR of the threat seconds [interval], and its "
                         "delta vs full\n", reader.groups)
    add("## Pair AUC per keyed group (P(yes) of threats against twins; 0.5 = chance) [interval]\n")
    add("| Variant | " + " | ".join(reader.groups) + " |")
    add("|---|" + "---|" * len(reader.groups))
    for v in reader.variants:
        add(f"| {LABELS[v]} | " + " | ".join(_ci(aucs[v].get(g), 3) for g in reader.groups) + " |")
    add("")
    add("## The router's mean weight per expert per keyed group (full, all seeds; Fig. 5)\n")
    experts = sorted({n for g in weights.values() for n in g})
    add("| Keyed group | " + " | ".join(experts) + " |")
    add("|---|" + "---|" * len(experts))
    for g in reader.groups:
        add(f"| {g} ({reader.channels[g]}) | " + " | ".join(_f(weights[g].get(n), 3) for n in experts) + " |")
    add("")
    return "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------- main
def analyse(work: Path, cfg: Mapping[str, Any]) -> tuple[Reader, Any, dict, dict, dict]:
    from uprm.ablation.effects import measure
    from uprm.metrics.uncertainty import Bootstrap

    reader = Reader(work, cfg["variants"], cfg["seeds"])
    spec = Bootstrap(samples=cfg["bootstrap"], seed=0)
    effects = measure(reader.units, spec, permutations=cfg["permutations"], order=reader.variants)
    aucs = pair_auc(reader, spec)
    weights, contrasts = router_weights(reader, spec) if "full" in reader.variants else ({}, {})
    return reader, effects, aucs, weights, contrasts


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the same path in about a minute (CI): 32 videos, "
                   "full and w/o UPE, 1 seed, 2 steps")
    p.add_argument("--work", default=None, help="keep the world, cache and runs here (runs resume)")
    p.add_argument("--videos", type=int, default=None, help="keyed world size, a multiple of 8 (default 400: 64 "
                   "test videos)")
    p.add_argument("--steps", type=int, default=None, help="stage-2 steps of each run (default 1500)")
    p.add_argument("--seeds", default=None, help="e.g. 0,1,2 (default)")
    p.add_argument("--parallel", type=int, default=2, help="runs at once, each an `uprm ablate` process with one "
                   "torch thread (1: the grid in this process)")
    p.add_argument("--report", default=None, help="write the Markdown here (default: benchmarks/keyed_ablation.md; "
                   "--quick: WORK/keyed_ablation.md)")
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--variants", default=None, help="a subset, e.g. full,wo_upe (default: the six)")
    p.add_argument("--windows", default=None, metavar="W,S", help="train and evaluate on W-second windows every "
                   "S seconds (as the demo) instead of whole videos, e.g. 4,2")
    p.add_argument("--router-norm", action="store_true", help="train every run with `uprm train --router-norm` "
                   "(a parameter-free LayerNorm on the router's input; keyed_ablation.md §3c)")
    p.add_argument("--probe", action="store_true", help="only the linear probes of the cached features "
                   "(WORK must hold a world and a windowed cache)")
    p.add_argument("--trace", default=None, metavar="CHECKPOINT", help="only trace the keys through a trained "
                   "model's UPE block on the same windows as --probe")
    args = p.parse_args(argv)
    if args.trace:
        for row in trace_block(Path(args.work), args.trace):
            print(json.dumps(row))
        return {}
    if args.probe:
        for category, expert, n, train, test in probe_features(Path(args.work)):
            print(f"{category:<14} {expert:<11} {n:>4} windows: train accuracy {train:.3f}, test accuracy {test:.3f}")
        return {}
    cfg = dict(QUICK if args.quick else FULL)
    for key in ("videos", "steps"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.seeds:
        cfg["seeds"] = tuple(int(s) for s in args.seeds.split(","))
    if args.variants:
        cfg["variants"] = tuple(args.variants.split(","))
    cfg["router_norm"] = args.router_norm
    windows = tuple(float(x) for x in args.windows.split(",")) if args.windows else None
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="uprm-keyed-"))
    work.mkdir(parents=True, exist_ok=True)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    started = time.perf_counter()
    summary, t_world = _timed(lambda: build_world(work, cfg, args.world_seed))
    print(f"world: {t_world:.0f} s", flush=True)
    files = instruction_files(work, cfg["splits"], windows)
    _, t_extract = _timed(lambda: extract(work, files))
    print(f"features: {t_extract:.0f} s", flush=True)
    grid = write_grid(work, files, cfg)
    t_grid = run_grid(grid, cfg, max(1, args.parallel))
    print(f"grid: {t_grid / 60:.1f} min", flush=True)
    (reader, effects, aucs, weights, contrasts), t_analysis = _timed(lambda: analyse(work, cfg))
    counts = summary.get("counts", {})
    info = {"date": time.strftime("%Y-%m-%d"), "argv": "".join(f" {a}" for a in (argv or sys.argv[1:])),
            "load": load, "videos": cfg["videos"], "duration": cfg["duration"], "world_seed": args.world_seed,
            "counts": json.dumps(counts.get("split", counts))[:300], "seeds": cfg["seeds"], "steps": cfg["steps"],
            "t_world": t_world, "t_extract": t_extract, "t_grid": t_grid, "t_analysis": t_analysis,
            "t_total": time.perf_counter() - started, "parallel": args.parallel,
            "runs": len(cfg["seeds"]) * len(cfg["variants"])}
    info["signature"] = signature(reader, effects, aucs, contrasts)
    text = report(reader, effects, aucs, weights, contrasts, info)
    out = Path(args.report) if args.report else (work / "keyed_ablation.md" if args.quick else
                                                  Path(__file__).with_name("keyed_ablation.md"))
    out.write_text(text)
    print(text)
    print(f"written: {out}")
    return {"work": work, "report": out, "signature": info["signature"], "effects": effects, "aucs": aucs,
            "weights": weights}


if __name__ == "__main__":
    main()
