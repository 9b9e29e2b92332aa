"""Who reads the key? Small training runs on the keyed world's windows that find where
the fine experts' key is lost (benchmarks/keyed_ablation.md §4).

Each mode trains for a few hundred steps on the identify windows of the keyed world that
``benchmarks/keyed_ablation.py --windows 4,2 --work WORK`` prepared (``WORK/windows_4_2``
and the feature cache ``WORK/cache``), then scores the test windows and prints the
window AUC per keyed group (threat-video windows marked "yes" against all other windows
of the group; 0.5 = chance) every ``--every`` steps:

``stages``  the paired |threat − twin| difference against the spread at each stage of
            the pose path (keypoints, pose tokens, cross-attention, adapter output, the
            mixed tokens ``z``) of a fresh tiny model or ``--checkpoint``; no training.
``adapter`` the pose adapter alone + a linear head on its mean-pooled output (Fighting);
            with the pose expert (here and in ``head``) each line also gives the mean
            norm of eq.2's output ``T_c`` and the pose tokenizer's gradient norm.
``head``    the UPE block (``--experts``, the router) + a linear head on mean-pooled ``z``.
``llm``     the whole tiny model, as ``uprm train`` trains it (next-token loss on the
            answers), scored by the yes − no logit of the answer's first token;
            ``--lm-lr``/``--block-lr`` set the two learning rates, ``--captions`` adds
            pose-caption answers (fight / dance / talk) to the Fighting windows.

    .venv/bin/python benchmarks/keyed_readers.py stages --work runs/keyed
    .venv/bin/python benchmarks/keyed_readers.py adapter --work runs/keyed --steps 300
    .venv/bin/python benchmarks/keyed_readers.py head --work runs/keyed --groups Fighting --experts pose
    .venv/bin/python benchmarks/keyed_readers.py llm --work runs/keyed --groups Stealing --experts relation
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("UPRM_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keyed_ablation import keyed_groups

CAPTIONS = {"threat": "Two people trade fast jabs at head height and kick at each other.",
            "twin": "Two people dance, swinging their arms overhead to a slow beat.",
            "else": "Two people stand face to face and talk."}


def _records(work: Path, split: str, groups: Sequence[str], task: str = "identify") -> list[dict[str, Any]]:
    group, _, _ = keyed_groups(work / "world")
    name = "keyed_train.json" if split == "train" else f"keyed_{split}.json"
    recs = json.loads((work / "windows_4_2" / name).read_text())
    return [r for r in recs if r["task"] == task and group[r["video_id"]] in groups]


def _with_captions(work: Path, recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Fighting windows once more, each answered with what the people do in it."""
    truth = json.loads((work / "world" / "annotations" / "activitynet.json").read_text())["database"]
    design = json.loads((work / "world" / "design.json").read_text())
    threat_of = {p["twin"]: p["threat"] for p in design["pairs"]} | {p["threat"]: p["threat"] for p in design["pairs"]}
    out = list(recs)
    for r in recs:
        threat = threat_of[r["video_id"]]
        start, end = truth[threat]["annotations"][0]["segment"]
        a, b = r["window"]
        kind = "else" if min(b, end) - max(a, start) < 1.5 else ("threat" if r["video_id"] == threat else "twin")
        c = copy.deepcopy(r)
        c["id"], c["task"] = r["id"].replace("/identify", "/pose"), "pose"
        c["conversations"] = [{"from": "human", "value": "<video>\nAnalyze the human pose and the actions depicted "
                               "in the video."}, {"from": "gpt", "value": CAPTIONS[kind]}]
        out.append(c)
    return out


def _dataset(work: Path, recs: list[dict[str, Any]], model: Any, name: str) -> Any:
    from uprm.training.data import load_run_data

    path = work / "windows_4_2" / f"readers_{name}.json"  # beside the others: the same relative paths
    path.write_text(json.dumps(recs))
    return load_run_data([str(path)], model, str(work / "cache"), 4).dataset


def _model(args: argparse.Namespace, data: Path) -> Any:
    from uprm.training.build import build_training_model, resolve_config
    from uprm.training.config import TrainConfig

    # the seed is the training seed (head, data order); the towers and adapters start from
    # model seed 0, as uprm ablate's runs do, so every run reads the one shared feature cache
    cfg = resolve_config(TrainConfig(data=[str(data)], out="unused", tiny=True, num_frames=4, seed=args.seed,
                                     model_seed=0, experts=args.experts.split(","), router=args.router,
                                     expert_option=_options_for(args.expert_option, args.experts),
                                     router_norm=bool(getattr(args, "router_norm", False))))
    model = build_training_model(cfg)
    model.train()
    return model


def _options_for(options: Sequence[str], experts: str) -> list[str]:
    """The ``NAME.KEY=VALUE`` expert options whose expert is in this run (a w/o-pose run
    drops the pose options)."""
    names = set(experts.split(","))
    return [o for o in options if o.split(".", 1)[0] in names]


def _auc(work: Path, recs: list[dict[str, Any]], scores: np.ndarray) -> dict[str, float]:
    group, _, _ = keyed_groups(work / "world")
    g = np.array([group[r["video_id"]] for r in recs])
    y = np.array([r["conversations"][1]["value"].startswith("Yes") for r in recs])
    return {str(k): round(float(roc_auc_score(y[g == k], scores[g == k])), 3) for k in sorted(set(g))}


def _labels(recs: list[dict[str, Any]]) -> torch.Tensor:
    return torch.tensor([r["conversations"][1]["value"].startswith("Yes") for r in recs], dtype=torch.float32)


def run_head(args: argparse.Namespace, work: Path, adapter_only: bool) -> None:
    """The block (or the pose adapter alone) + a linear head on the mean of its tokens."""
    groups = ["Fighting"] if adapter_only else args.groups.split(",")
    train, test = _records(work, "train", groups), _records(work, "test", groups)
    model = _model(args, work / "windows_4_2" / "keyed_train.json")
    block = model.block
    feats = {s: [d["features"] for d in _dataset(work, r, model, s)] for s, r in (("train", train), ("test", test))}
    head = torch.nn.Linear(block.ctx.hidden_size, 1)
    pose = block.experts["pose"] if adapter_only else None

    def tokens(batch: list[dict[str, Any]]) -> torch.Tensor:
        collated = block.collate(batch)
        if pose is None:
            return block(collated).z.mean(1)
        with torch.no_grad():
            h = block.experts["coarse"](collated["coarse"], None)
        return pose(collated["pose"], h).mean(1)

    if args.save:
        tokens = _tapped(block, tokens, pose)
    named = pose.named_parameters() if pose is not None else block.named_parameters()
    frozen = tuple(f"experts.{name}." for name in args.freeze)  # e.g. the coarse projector: no shortcut through it
    params = [p for n, p in named if p.requires_grad and not n.startswith(frozen)]
    opt = torch.optim.AdamW(params + list(head.parameters()), lr=args.block_lr or args.lr, weight_decay=0.0)
    y, gen = _labels(train), torch.Generator().manual_seed(args.seed)
    adapter = pose if pose is not None else dict(block.experts.items()).get("pose")
    watch = _PoseWatch(adapter.adapter) if adapter is not None else None
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(train), (args.batch_size,), generator=gen).tolist()
        logit = head(tokens([feats["train"][i] for i in idx])).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y[idx])
        opt.zero_grad()
        loss.backward()
        if watch is not None:
            watch.after_backward()
        opt.step()
        if step % args.every == 0:
            with torch.no_grad():
                s = torch.cat([head(tokens(feats["test"][i:i + 64])).squeeze(-1)
                               for i in range(0, len(test), 64)]).numpy()
            print(f"step {step} loss {loss.item():.3f} window AUC {_auc(work, test, s)}"
                  + (f" | pose: {watch.line()}" if watch is not None else ""), flush=True)
    if args.save:
        _save(args.save, block, head, tokens, feats["test"], test)


class _PoseWatch:
    """What the pose adapter's training does to the scale of eq.2's output ``T_c`` (the
    input of the post-LN eq.2-3 block, which ignores that scale) and to the gradient that
    reaches the pose tokenizer: the mean token norm of ``T_c`` in the last batch, and the
    tokenizer's gradient norm averaged since the last line."""

    def __init__(self, adapter: Any) -> None:
        self.tokenizer, self.norm, self.grads = adapter.tokenizer, float("nan"), []
        adapter.cross.register_forward_hook(self._hook)

    def _hook(self, module: Any, inputs: Any, output: torch.Tensor) -> None:
        if torch.is_grad_enabled():
            self.norm = float(output.detach().norm(dim=-1).mean())

    def after_backward(self) -> None:
        grads = [p.grad for p in self.tokenizer.parameters() if p.grad is not None]
        self.grads.append(float(torch.sqrt(sum((g ** 2).sum() for g in grads))) if grads else 0.0)

    def line(self) -> str:
        grad, self.grads = float(np.mean(self.grads)) if self.grads else float("nan"), []
        return f"|T_c| {self.norm:.2f}, tokenizer gradient norm {grad:.4f}"


def _tapped(block: Any, tokens: Any, pose: Any) -> Any:
    """``tokens`` that also keeps the router's mean weights of the last batch (block mode)."""
    if pose is not None:
        return tokens

    def tap(batch: list[dict[str, Any]]) -> torch.Tensor:
        out = block(block.collate(batch))
        tap.weights = out.expert_weights.float().mean(1)  # type: ignore[attr-defined]
        return out.z.mean(1)

    return tap


def _save(path: Path, block: Any, head: Any, tokens: Any, feats: list[dict[str, Any]], recs: list[dict[str, Any]]
          ) -> None:
    """The test windows' scores and router weights of one trained reader, written atomically."""
    block.eval()
    scores, weights = [], []
    with torch.no_grad():
        for i in range(0, len(recs), 64):
            scores.append(head(tokens(feats[i:i + 64])).squeeze(-1))
            weights.append(getattr(tokens, "weights", torch.zeros(len(feats[i:i + 64]), 0)))
    out = {"windows": [r["id"] for r in recs], "videos": [r["video_id"] for r in recs],
           "labels": [r["conversations"][1]["value"].startswith("Yes") for r in recs],
           "scores": torch.cat(scores).tolist(), "expert_names": list(block.expert_names),
           "weights": torch.cat(weights).tolist()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(path)


def run_llm(args: argparse.Namespace, work: Path) -> None:
    """The whole tiny model on the identify windows, scored by the first answer token."""
    from uprm.data import UPRMCollator
    from uprm.training.build import trainable_parameters
    from uprm.training.data import model_inputs

    groups = args.groups.split(",")
    train, test = _records(work, "train", groups), _records(work, "test", groups)
    if args.captions:
        train = _with_captions(work, train)
    model = _model(args, work / "windows_4_2" / "keyed_train.json")
    data = {s: _dataset(work, r, model, s) for s, r in (("train", train), ("test", test))}
    collate = UPRMCollator(model.collate, model.tokenize)
    lm = [p for n, p in trainable_parameters(model) if not n.startswith("block.")]
    block = [p for n, p in trainable_parameters(model) if n.startswith("block.")]
    opt = torch.optim.AdamW([{"params": lm, "lr": args.lm_lr or args.lr}, {"params": block, "lr": args.block_lr or args.lr}],
                            weight_decay=0.0)
    yes, no = (model.tokenizer(w, add_special_tokens=False).input_ids[0] for w in ("Yes", "No"))
    gen, cpu = torch.Generator().manual_seed(args.seed), torch.device("cpu")
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(train), (args.batch_size,), generator=gen).tolist()
        out = model(**model_inputs(collate([data["train"][i] for i in idx]), cpu))
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(lm + block, 1.0)
        opt.step()
        if step % args.every == 0:
            s = _answer_logits(model, collate, data["test"], yes, no)
            print(f"step {step} loss {out.ce_loss.item():.4f} window AUC {_auc(work, test, s)} "
                  f"yes-no logit spread {s.std():.4f}", flush=True)


def _answer_logits(model: Any, collate: Any, dataset: Any, yes: int, no: int) -> np.ndarray:
    from uprm.training.data import model_inputs

    model.eval()
    scores = []
    with torch.no_grad():
        for i in range(0, len(dataset), 32):
            batch = collate([dataset[j] for j in range(i, min(i + 32, len(dataset)))])
            logits = model(**model_inputs(batch, torch.device("cpu"))).logits
            first = (batch["labels"] != -100).float().argmax(1) - 1  # the position predicting the answer's first token
            row = logits[torch.arange(len(first)), first]
            scores.append((row[:, yes] - row[:, no]).numpy())
    model.train()
    return np.concatenate(scores)


def run_stages(args: argparse.Namespace, work: Path) -> None:
    """Paired |threat − twin| / spread at each stage of the pose path (Fighting test+train windows)."""
    import uprm

    recs = _records(work, "train", ["Fighting"]) + _records(work, "test", ["Fighting"])
    model = (uprm.load_model(args.checkpoint, device="cpu").model if args.checkpoint
             else _model(args, work / "windows_4_2" / "keyed_train.json").eval())
    design = json.loads((work / "world" / "design.json").read_text())
    twin = {p["threat"]: p["twin"] for p in design["pairs"]}
    by_key = {(r["video_id"], tuple(r["window"])): i for i, r in enumerate(recs)}
    pairs = [(i, by_key[(twin[r["video_id"]], tuple(r["window"]))]) for i, r in enumerate(recs)
             if r["video_id"] in twin and (twin[r["video_id"]], tuple(r["window"])) in by_key]
    feats = model.collate([d["features"] for d in _dataset(work, recs, model, "stages")])
    block, pose = model.block, model.block.experts["pose"]
    ad, f = pose.adapter, feats["pose"]
    with torch.no_grad():
        h = block.experts["coarse"](feats["coarse"], None)
        tok, mask = ad.tokenizer(f["keypoints"].float(), f["boxes"].float(), f["scores"].float(), f["person_mask"].bool())
        cross = ad.cross(ad.query_in(h), tok, mask)
        stages = {"keypoints": f["keypoints"], "pose tokens": tok, "cross-attention T_c": cross,
                  "pose adapter output": pose(f, h), "coarse tokens h": h, "mixed tokens z": block(feats).z}
    print(f"{len(pairs)} threat/twin window pairs of Fighting ({'checkpoint' if args.checkpoint else 'fresh model'})")
    for name, x in stages.items():
        x = x.float().reshape(len(recs), -1)
        diff = torch.stack([(x[a] - x[b]).abs().mean() for a, b in pairs]).mean()
        print(f"{name:24s} paired |threat - twin| {diff:.2e}  spread {x.std():.3f}  ratio {diff / x.std():.1e}")


# ----------------------------------------------------------------------------- the block-level signature
#: variant -> (fine experts, router); the same names as benchmarks/keyed_ablation.py
READER_VARIANTS = {"full": ("background,pose,relation", "tradeoff"), "wo_pose": ("background,relation", "tradeoff"),
                   "wo_relation": ("background,pose", "tradeoff"), "wo_background": ("pose,relation", "tradeoff"),
                   "wo_upe": ("coarse", "tradeoff"), "wo_ptr": ("background,pose,relation", "basic")}


def run_signature(args: argparse.Namespace, work: Path) -> None:
    """Every variant × seed as a ``head`` reader (block + linear head on the mean of ``z``),
    ``--parallel`` at once, each resumable (a finished run's JSON is kept); then the
    signature with intervals over test videos and seeds."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    out = args.readers or work / "readers"
    seeds = [int(x) for x in args.seeds.split(",")]
    jobs = []
    for variant in args.variants.split(","):
        experts, router = READER_VARIANTS[variant]
        for seed in seeds:
            path = out / variant / f"seed{seed}.json"
            if not path.is_file():
                jobs.append([sys.executable, __file__, "head", "--work", str(work), "--groups", args.groups,
                             "--experts", experts, "--router", router, "--seed", str(seed), "--steps", str(args.steps),
                             "--every", str(args.steps), "--batch-size", str(args.batch_size),
                             "--lr", str(args.lr), *(["--block-lr", str(args.block_lr)] if args.block_lr else []),
                             *[f"--freeze={e}" for e in args.freeze], *(["--router-norm"] if args.router_norm else []),
                             *[f"--expert-option={o}" for o in args.expert_option], "--save", str(path)])

    def one(cmd: list[str]) -> None:
        log = Path(cmd[-1]).with_suffix(".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as fh:
            subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True)
        print(f"done {cmd[-1]} ({time.time() - start:.0f} s)", flush=True)

    start = time.time()
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(one, jobs))
    text = signature_report(out, args.variants.split(","), seeds, args.groups.split(","), args)
    (out / "signature.md").write_text(text)
    print(text)


def _load_runs(out: Path, variants: Sequence[str], seeds: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    return {v: [json.loads((out / v / f"seed{s}.json").read_text()) for s in seeds] for v in variants}


def _by_video(run: dict[str, Any], videos: list[str]) -> list[np.ndarray]:
    index = {v: i for i, v in enumerate(videos)}
    rows: list[list[int]] = [[] for _ in videos]
    for j, v in enumerate(run["videos"]):
        rows[index[v]].append(j)
    return [np.array(r, dtype=int) for r in rows]


def _group_auc(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, rows: Sequence[np.ndarray],
               units: np.ndarray, wanted: Sequence[str]) -> dict[str, float | None]:
    idx = np.concatenate([rows[u] for u in units]) if len(units) else np.zeros(0, dtype=int)
    out: dict[str, float | None] = {}
    for g in wanted:
        sel = idx[groups[idx] == g]
        y = labels[sel]
        out[g] = float(roc_auc_score(y, scores[sel])) if 0 < y.sum() < y.size else None
    return out


def signature_report(out: Path, variants: Sequence[str], seeds: Sequence[int], groups: Sequence[str],
                     args: argparse.Namespace) -> str:
    """The block-level signature: window AUC per variant and group with intervals, paired
    deltas against full (Holm over the variants of a group), and the router contrasts."""
    from uprm.metrics.uncertainty import Bootstrap, bootstrap, compare_paired, holm

    runs = _load_runs(out, variants, seeds)
    ref = runs["full"][0]
    videos = sorted(set(ref["videos"]))
    rows = _by_video(ref, videos)
    group_of, _, _ = keyed_groups(Path(args.work) / "world")
    groups_w = np.array([group_of[v] for v in ref["videos"]], dtype=object)
    labels = np.array(ref["labels"], dtype=bool)
    spec = Bootstrap(samples=args.bootstrap, seed=0)
    n = len(videos)
    scores = {v: [np.array(r["scores"]) for r in rs] for v, rs in runs.items()}
    auc = {v: bootstrap(lambda k, u, v=v: _group_auc(scores[v][k], labels, groups_w, rows, u, groups), n, spec,
                        n_seeds=len(seeds)) for v in variants}
    deltas: dict[str, dict[str, Any]] = {}
    for v in variants:
        if v == "full":
            continue

        def paired(k: int, u: np.ndarray, v: str = v) -> dict[str, float | None]:
            a, b = u[u < n], u[u >= n] - n  # a: the variant's results of those videos, b: full's
            both = np.concatenate([scores[v][k], scores["full"][k]])
            shifted = [r + len(labels) for r in rows]
            idx_rows = [rows[i] for i in a] + [shifted[i] for i in b]
            return _group_auc(both, np.concatenate([labels, labels]), np.concatenate([groups_w, groups_w]),
                              idx_rows, np.arange(len(idx_rows)), groups)

        deltas[v] = compare_paired(paired, n, spec, n_seeds=len(seeds), permutations=args.bootstrap)
    for g in groups:
        corrected = holm({v: deltas[v][g].p for v in deltas})
        for v in deltas:
            deltas[v][g].p_holm = corrected[v]
    contrasts = _router_contrasts(runs["full"], rows, groups_w, n, spec, len(seeds))
    return _signature_text(variants, groups, auc, deltas, contrasts, args, n, seeds)


def _router_contrasts(runs: list[dict[str, Any]], rows: Sequence[np.ndarray], groups_w: np.ndarray, n: int,
                      spec: Any, n_seeds: int) -> dict[str, Any]:
    from uprm.metrics.uncertainty import bootstrap

    names = runs[0]["expert_names"]
    w = [np.array(r["weights"]) for r in runs]
    jp, jr = names.index("pose"), names.index("relation")

    def stat(k: int, u: np.ndarray) -> dict[str, float | None]:
        idx = np.concatenate([rows[i] for i in u])
        f, s = idx[groups_w[idx] == "Fighting"], idx[groups_w[idx] == "Stealing"]
        if not f.size or not s.size:
            return {"pose": None, "relation": None}
        return {"pose": float(w[k][f, jp].mean() - w[k][s, jp].mean()),
                "relation": float(w[k][s, jr].mean() - w[k][f, jr].mean())}

    means = {g: dict(zip(names, np.mean([x[groups_w == g].mean(0) for x in w], axis=0).round(3).tolist()))
             for g in ("Fighting", "Stealing")}
    return {"means": means, **bootstrap(stat, n, spec, n_seeds=n_seeds)}


def _ci(e: Any, digits: int = 3) -> str:
    if e.value is None:
        return "–"
    return f"{e.value:.{digits}f}" + (f" [{e.ci[0]:.{digits}f}, {e.ci[1]:.{digits}f}]" if e.ci else "")


def _d(c: Any) -> str:
    if c.delta is None:
        return "–"
    mark = " †" if c.excludes_zero else ""
    ci = f" [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]" if c.ci else ""
    return f"{c.delta:+.3f}{ci} p_H={c.p_holm if c.p_holm is not None else c.p:.3f}{mark}"


def _line(ok: bool, text: str) -> str:
    return f"- {'HOLDS' if ok else 'FAILS'}: {text}"


def _signature_lines(auc: Mapping, deltas: Mapping, contrasts: Mapping) -> list[str]:
    lines = []
    for g in ("Fighting", "Stealing"):
        e = auc["full"][g]
        lines.append(_line(e.ci is not None and e.ci[0] > 0.5, f"full reads the {g} key: AUC interval above 0.5 — {_ci(e)}"))
    for v, hurt, spared in (("wo_pose", "Fighting", "Stealing"), ("wo_relation", "Stealing", "Fighting")):
        if v not in deltas:
            continue
        c, o = deltas[v][hurt], deltas[v][spared]
        lines.append(_line(c.ci is not None and c.ci[1] < 0, f"removing {v[3:]} hurts {hurt}: delta interval below zero — {_d(c)}"))
        lines.append(_line(o.ci is not None and o.ci[0] <= 0 <= o.ci[1],
                           f"removing {v[3:]} spares {spared}: delta interval holds zero — {_d(o)}"))
    if "wo_background" in deltas:
        for g in ("Fighting", "Stealing"):
            c = deltas["wo_background"][g]
            lines.append(_line(c.ci is not None and c.ci[0] <= 0 <= c.ci[1],
                               f"removing background spares {g}: delta interval holds zero — {_d(c)}"))
    if "wo_upe" in auc:
        for g in ("Fighting", "Stealing"):
            e = auc["wo_upe"][g]
            lines.append(_line(e.ci is not None and e.ci[0] <= 0.5 <= e.ci[1],
                               f"coarse only is at chance on {g} (a check of the world): AUC interval holds 0.5 — {_ci(e)}"))
    for k, text in (("pose", "pose weight on Fighting minus on Stealing"),
                    ("relation", "relation weight on Stealing minus on Fighting")):
        e = contrasts[k]
        lines.append(_line(e.ci is not None and e.ci[0] > 0, f"the router routes by content: {text} above zero — "
                           f"{_ci(e, 4)}"))
    return lines


def _signature_text(variants: Sequence[str], groups: Sequence[str], auc: Mapping, deltas: Mapping,
                    contrasts: Mapping, args: argparse.Namespace, n: int, seeds: Sequence[int]) -> str:
    head = (f"Block-level readers: the UPE block + a linear head on the mean of z, trained {args.steps} steps "
            f"(batch {args.batch_size}, lr {args.block_lr or args.lr:g}"
            f"{', router input normalised (--router-norm)' if args.router_norm else ''}) on the {', '.join(groups)} identify windows of the keyed world's "
            f"train videos, seeds {list(seeds)}; window AUC on the {n} test videos' windows. Intervals: 95 % "
            f"percentile bootstrap, {args.bootstrap} resamples of test videos and seeds; deltas variant − full, "
            f"paired by video and seed, permutation p with Holm's correction over the variants of a group (p_H); "
            f"† = the delta's interval excludes zero.")
    out = [head, "", "### The signature, line by line", "", *_signature_lines(auc, deltas, contrasts), "",
           "### Window AUC [95 % interval] and delta vs full", "", "| Variant | " + " | ".join(groups) + " |",
           "|---" * (len(groups) + 1) + "|"]
    for v in ["full", *(x for x in variants if x != "full")]:
        cells = [_ci(auc[v][g]) + ("" if v == "full" else f"<br>Δ {_d(deltas[v][g])}") for g in groups]
        out.append(f"| {v} | " + " | ".join(cells) + " |")
    out += ["", "### The router's mean weights (full, over seeds)", "", "| group | " +
            " | ".join(contrasts["means"]["Fighting"]) + " |", "|---" * (1 + len(contrasts["means"]["Fighting"])) + "|"]
    for g, m in contrasts["means"].items():
        out.append(f"| {g} | " + " | ".join(f"{x:.3f}" for x in m.values()) + " |")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("stages", "adapter", "head", "llm", "signature"))
    p.add_argument("--work", type=Path, default=Path("runs/keyed"), help="what keyed_ablation.py --windows 4,2 built")
    p.add_argument("--groups", default="Fighting,Stealing,Arson,RoadAccidents", help="keyed groups to train on")
    p.add_argument("--experts", default="background,pose,relation", help="fine experts of the model (coarse always)")
    p.add_argument("--router", default="tradeoff")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=100, help="score the test windows every N steps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lm-lr", type=float, default=None, help="llm: the language model's learning rate")
    p.add_argument("--block-lr", type=float, default=None, help="the UPE block's (adapters, router) learning rate")
    p.add_argument("--captions", action="store_true", help="llm: add pose-caption answers to the Fighting windows")
    p.add_argument("--checkpoint", default=None, help="stages: a trained model instead of a fresh one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(READER_VARIANTS), help="signature: the variants to run")
    p.add_argument("--seeds", default="0,1,2", help="signature: the seeds")
    p.add_argument("--parallel", type=int, default=2, help="signature: runs at once (one torch thread each)")
    p.add_argument("--bootstrap", type=int, default=1000, help="signature: bootstrap resamples and permutations")
    p.add_argument("--expert-option", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="an expert option of every run (repeatable), e.g. pose.residual=true")
    p.add_argument("--freeze", action="append", default=[], metavar="EXPERT",
                   help="head: keep this expert's trainable part frozen (repeatable), e.g. coarse")
    p.add_argument("--readers", type=Path, default=None, help="signature: the runs' folder (default WORK/readers)")
    p.add_argument("--save", type=Path, default=None, help="head: write the test windows' scores and weights here")
    p.add_argument("--router-norm", action="store_true",
                   help="head/llm/signature: a LayerNorm without parameters in front of the router (`uprm train "
                        "--router-norm`, a departure from eq.6)")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    start = time.time()
    if args.mode == "stages":
        run_stages(args, args.work)
    elif args.mode == "signature":
        run_signature(args, args.work)
    elif args.mode == "llm":
        run_llm(args, args.work)
    else:
        run_head(args, args.work, adapter_only=args.mode == "adapter")
    print(f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
