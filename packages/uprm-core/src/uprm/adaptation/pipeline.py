"""The stages of an adaptation run, each leaving its outputs and a mark in ``RUN/adapt.json``.

1. ``labels``: read and check the labels (:mod:`uprm.adaptation.labels`), split the videos
   (:mod:`uprm.adaptation.split`) → ``split.json``, ``data/labels.json`` (the labels with
   each video's split as its ActivityNet subset) and ``data/held_out.json`` (the held-out
   videos' ground truth);
2. ``windows``: the identify / locate / attribute records of every window
   (:func:`uprm.data.build_instructions`; a threat labelled without a cause is attributed
   to one of its category's cause phrasings in the taxonomy) → ``data/adapt_train.json``
   (threat windows balanced) and ``data/adapt_test.json``;
3. ``features``: the checkpoint's experts' features of every window → ``cache/``;
4. ``train``: fine-tuning from the checkpoint (``uprm train --init CK``) → ``model/``;
5. ``eval_base`` and 6. ``eval_adapted``: both models on the held-out windows, with
   intervals (:func:`uprm.evaluation.evaluate`) → ``eval_base/``, ``eval_adapted/``;
7. ``report``: the paired comparison (:func:`uprm.evaluation.compare`, as ``uprm eval
   compare``) → ``comparison.json`` / ``.md``, the verdicts → ``adapt.md``.

**Resuming.** ``adapt.json`` holds the run's identity — its settings, the checkpoint's
fingerprint, the labels file's SHA-256 and the taxonomy — and the stages done. Running
again into the same folder with the same identity skips every stage that is marked and
whose outputs are there; an interrupted stage runs again, and the ones that can continue
do so: feature extraction keeps the valid cache entries, training resumes from its last
checkpoint (``uprm train --resume``), an evaluation from the answers it saved. Another
identity in the folder is an error naming what differs. Nothing is ever written into the
checkpoint's folder, and the run folder may not lie inside it.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from uprm.adaptation.settings import AdaptSettings
from uprm.adaptation.split import SPLIT_FILE
from uprm.errors import CheckpointError, ConfigError
from uprm.utils import atomic_write_json, atomic_write_text

__all__ = ["STAGES", "STATE_FILE", "Adaptation"]

STAGES = ("labels", "windows", "features", "train", "eval_base", "eval_adapted", "report")
STATE_FILE = "adapt.json"
_FORMAT = 1

#: what each stage leaves (relative to the run folder); a marked stage whose outputs are gone runs again
_OUTPUTS: dict[str, tuple[str, ...]] = {
    "labels": (SPLIT_FILE, "data/labels.json", "data/held_out.json"),
    "windows": ("data/adapt_train.json", "data/adapt_test.json"),
    "features": ("cache",),
    "train": ("model/config.json", "model/model.safetensors"),
    "eval_base": ("eval_base/report.json", "eval_base/videos.json"),
    "eval_adapted": ("eval_adapted/report.json", "eval_adapted/videos.json"),
    "report": ("comparison.json", "adapt.md"),
}


def check_checkpoint(path: Path) -> Any:
    """The checkpoint's :class:`~uprm.modeling.config.UPRMConfig`, or a
    :class:`CheckpointError` saying why ``path`` is not a checkpoint."""
    from uprm.modeling.config import UPRMConfig

    hint = "give a folder saved by `uprm train --out DIR` or save_pretrained"
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint folder ({hint})")
    if not path.is_dir():
        raise CheckpointError(f"{path}: a file, not a checkpoint folder ({hint})")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: not a checkpoint (no config.json in it; {hint})")
    config = UPRMConfig.from_pretrained(path)
    if not (path / "model.safetensors").is_file():
        raise CheckpointError(f"{path}: not a checkpoint (config.json but no model.safetensors; {hint})")
    return config


def _check_out(out: Path, checkpoint: Path) -> None:
    if out == checkpoint or checkpoint in out.parents:
        raise ConfigError(f"--out {out} lies inside the checkpoint {checkpoint}: the adaptation never writes into "
                          "the checkpoint's folder; choose a run folder outside it")


def _differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two identities, in words."""
    out = []
    before, now = saved.get("settings") or {}, current["settings"]
    out += [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(before) | set(now))
            if before.get(k) != now.get(k)]
    words = {"checkpoint": "the checkpoint's files changed", "labels": "the labels file changed",
             "taxonomy": "the taxonomy changed"}
    out += [text for key, text in words.items() if saved.get(key) != current[key]]
    return out


class Adaptation:
    """One adaptation run (module doc). ``Adaptation(settings).run()`` returns the result
    of :func:`uprm.adapt`. ``echo`` receives the progress lines (``None``: quiet, and the
    trainer's own report goes to ``RUN/model/announce.txt``); ``callbacks`` are
    :class:`~uprm.training.Trainer` callbacks of the fine-tuning."""

    def __init__(self, settings: AdaptSettings, *, echo: Callable[[str], None] | None = print,
                 callbacks: Sequence[Callable[..., None]] = ()) -> None:
        self.s = settings.resolved()
        self.out = Path(self.s.out)
        self.checkpoint = Path(self.s.checkpoint)
        self.quiet = echo is None
        self.echo: Callable[[str], None] = echo or (lambda text: None)
        self.callbacks = list(callbacks)
        self.state: dict[str, Any] = {}

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        self._open()
        steps = {"labels": self._labels, "windows": self._windows, "features": self._features,
                 "train": self._train, "eval_base": self._eval_base, "eval_adapted": self._eval_adapted,
                 "report": self._report}
        for number, name in enumerate(STAGES, 1):
            if name != "report" and self._done(name):
                self.echo(f"[{number}/{len(STAGES)}] {name}: done earlier, kept")
                continue
            self.echo(f"[{number}/{len(STAGES)}] {name}")
            began = time.perf_counter()
            facts = steps[name]() or {}
            self._mark(name, {"seconds": round(time.perf_counter() - began, 2), **facts})
        return self.result

    def _open(self) -> None:
        """Check the checkpoint and the run folder; start the run's state, or take up the
        one the folder holds when it is this run's."""
        from uprm.modeling.loading import model_fingerprint
        from uprm.taxonomy import load_taxonomy
        from uprm.utils import file_sha256

        self.ck_config = check_checkpoint(self.checkpoint)
        _check_out(self.out, self.checkpoint)
        self.taxonomy = load_taxonomy(self.s.taxonomy)
        labels = Path(self.s.labels)
        if not labels.is_file():
            from uprm.errors import AnnotationError

            raise AnnotationError(labels, "no such labels file (ActivityNet ground truth)")
        identity = {"settings": self.s.identity(), "checkpoint": model_fingerprint(self.checkpoint),
                    "labels": file_sha256(labels), "taxonomy": self.taxonomy.to_dict()}
        path = self.out / STATE_FILE
        saved = _read_state(path) if path.is_file() else None
        if saved is not None and not saved["stages"]:  # stopped before its first stage (bad input): start afresh
            saved = None
        if saved is not None:
            changed = _differences(saved.get("identity") or {}, identity)
            if changed:
                raise ConfigError(f"{path}: this run folder holds an adaptation made differently ({'; '.join(changed)})"
                                  "; run it again as it was to continue it, or choose another --out")
            self.state = saved
            self.echo(f"uprm adapt: continuing the run in {self.out}")
        elif self.out.exists() and not path.is_file() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise ConfigError(f"{self.out}: exists and holds no adaptation run ({STATE_FILE}); choose another --out")
        else:
            self.state = {"format": _FORMAT, "identity": identity, "stages": {}}
            self._save_state()

    def _done(self, name: str) -> bool:
        return name in self.state["stages"] and all((self.out / p).exists() for p in _OUTPUTS[name])

    def _mark(self, name: str, facts: Mapping[str, Any]) -> None:
        self.state["stages"][name] = dict(facts)
        self._save_state()

    def _save_state(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / STATE_FILE, self.state)

    # ------------------------------------------------------------------ stages
    def _labels(self) -> dict[str, Any]:
        from uprm.adaptation.labels import read_labels
        from uprm.adaptation.split import split_videos
        from uprm.data.annotations import write_activitynet

        labelled = read_labels(self.s.labels, self.s.videos, self.taxonomy)
        split = split_videos(labelled.categories, self.s.held_out, self.s.seed)
        held = set(split.held_out_videos)
        anns = [replace(a, split="test" if a.video_id in held else "train") for a in labelled.annotations]
        data = self.out / "data"
        data.mkdir(parents=True, exist_ok=True)
        write_activitynet(anns, data / "labels.json", version="uprm adapt")
        write_activitynet([a for a in anns if a.video_id in held], data / "held_out.json", version="uprm adapt")
        atomic_write_json(self.out / SPLIT_FILE, {**split.to_dict(), "labels": self.s.labels})
        per = ", ".join(f"{c} {len(v['held_out'])} of {len(v['train']) + len(v['held_out'])}"
                        for c, v in split.categories.items())
        self.echo(f"      {len(anns)} labelled videos: {len(split.train_videos)} train, {len(held)} held out ({per})")
        for note in split.notes:
            self.echo(f"      note: {note}")
        return {"videos": len(anns), "train": len(split.train_videos), "held_out": len(held)}

    def _windows(self) -> dict[str, Any]:
        from uprm.data.annotations import read_activitynet
        from uprm.data.instructions import build_instructions
        from uprm.demo.world import balance_threats

        s = self.s
        records = build_instructions(
            read_activitynet(self.out / "data" / "labels.json"), self.out / "data", name="adapt", videos=s.videos,
            keypoints=s.keypoints, scene_graphs=s.scene_graphs, seed=s.seed, source_split=True, window_s=s.window,
            stride_s=s.stride, min_overlap_s=s.min_overlap, missing="error", taxonomy=self.taxonomy)
        counts = {split: sum(1 for r in records if r.get("split") == split) for split in ("train", "test")}
        added = balance_threats(self.out / "data" / "adapt_train.json") if s.balance else 0
        self.echo(f"      {s.window:g}-s windows every {s.stride:g} s: {counts['train']} training records"
                  + (f" (+{added} threat repeats to balance)" if added else "") + f", {counts['test']} held-out")
        return {"train_records": counts["train"] + added, "test_records": counts["test"], "balanced": added}

    def _files(self) -> list[Path]:
        return [self.out / "data" / "adapt_train.json", self.out / "data" / "adapt_test.json"]

    def _features(self) -> dict[str, Any]:
        from uprm.data.features.cache import FeatureCache
        from uprm.data.features.extract import extract_features
        from uprm.data.records import clip_keys_from_records
        from uprm.modeling.loading import load_model

        model = load_model(self.checkpoint).model
        keys = clip_keys_from_records(self._files(), self.ck_config.num_frames)
        experts: dict[str, Any] = dict(model.block.experts.items())
        report = extract_features(keys, experts, FeatureCache(self.out / "cache"), fail_fast=True,
                                  progress=self.s.progress)
        self.echo(f"      {report.clips} clips x experts {list(model.expert_names)}: {report.written} written, "
                  f"{report.cached} cached -> {self.out / 'cache'}")
        return {"clips": report.clips}

    def _train(self) -> dict[str, Any]:
        from uprm.training import Trainer, make_config

        s, model_dir = self.s, self.out / "model"
        settings: dict[str, Any] = {
            "data": [str(self._files()[0])], "cache": str(self.out / "cache"), "out": str(model_dir),
            "init": str(self.checkpoint), "max_steps": s.steps, "batch_size": s.batch_size,
            "save_every": s.save_every, "keep_last": 2, "seed": s.seed, "num_frames": self.ck_config.num_frames,
            "progress": s.progress, "resume": (model_dir / "train_config.json").is_file()}
        if s.lr is not None:
            settings["lr"] = s.lr
        if settings["resume"]:
            self.echo(f"      resuming the fine-tuning in {model_dir}")
        run = self._fit(Trainer(make_config(**settings), callbacks=self.callbacks), model_dir)
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        config = json.loads((run / "train_config.json").read_text(encoding="utf-8"))["config"]
        return {"steps": summary.get("steps"), "final_loss": summary.get("final_loss"), "lr": config["lr"]}

    def _fit(self, trainer: Any, model_dir: Path) -> Path:
        """``trainer.fit()``; when quiet, its report goes to ``model_dir/announce.txt``."""
        if not self.quiet:
            return trainer.fit()
        announce = io.StringIO()
        try:
            with contextlib.redirect_stdout(announce):
                return trainer.fit()
        finally:
            model_dir.mkdir(parents=True, exist_ok=True)
            with (model_dir / "announce.txt").open("a", encoding="utf-8") as file:
                file.write(announce.getvalue())

    def _evaluate(self, checkpoint: Path, name: str) -> dict[str, Any]:
        from uprm.evaluation.api import evaluate

        s = self.s
        report = evaluate(str(checkpoint), [str(self._files()[1])], cache=str(self.out / "cache"),
                          out=str(self.out / f"eval_{name}"), ground_truth=str(self.out / "data" / "held_out.json"),
                          batch_size=s.eval_batch_size, bootstrap=s.bootstrap, bootstrap_seed=s.seed, sbert=s.sbert,
                          system=name, progress=s.progress, taxonomy=self.taxonomy)
        self.echo(f"      {name}: FNR {_pct(report.get('fnr'))}, F2 {_pct(report.get('f2'))}, mAP average "
                  f"{_pct((report.get('map') or {}).get('average'))} on {report['counts']['videos']} held-out videos")
        return {"fnr": report.get("fnr"), "f2": report.get("f2")}

    def _eval_base(self) -> dict[str, Any]:
        return self._evaluate(self.checkpoint, "base")

    def _eval_adapted(self) -> dict[str, Any]:
        return self._evaluate(self.out / "model", "adapted")

    def _report(self) -> dict[str, Any]:
        from uprm.adaptation.verdict import adapt_markdown, verdicts
        from uprm.evaluation.comparison import compare

        s = self.s
        comparison = compare(self.out / "eval_adapted", self.out / "eval_base", self.out, bootstrap=s.bootstrap,
                             seed=s.seed, names=("adapted", "base"))
        found = verdicts(comparison)
        split = json.loads((self.out / SPLIT_FILE).read_text(encoding="utf-8"))
        stages = self.state["stages"]
        about = {"checkpoint": str(self.checkpoint), "labels": s.labels, "videos": stages["labels"]["videos"],
                 "train_windows": stages["windows"]["train_records"], "steps": s.steps, "lr": stages["train"]["lr"],
                 "batch_size": s.batch_size}
        atomic_write_text(self.out / "adapt.md", adapt_markdown(comparison, found, split, about))
        self.state["verdicts"] = found
        self.result = {"out": str(self.out), "verdict": found["overall"]["verdict"], "verdicts": found,
                       "comparison": comparison, "split": split,
                       "files": {name: str(self.out / name) for name in
                                 ("adapt.md", "comparison.json", "comparison.md", SPLIT_FILE, "model", "eval_base",
                                  "eval_adapted", STATE_FILE)}}
        self.echo(self._summary(found))
        return {"verdict": found["overall"]["verdict"]}

    def _summary(self, found: Mapping[str, Any]) -> str:
        lines = [f"overall: {found['overall']['verdict']} "
                 f"({', '.join(f'{k} {v}' for k, v in found['overall']['metrics'].items())})"]
        lines += [f"  {category}: {row['verdict']}" for category, row in found["per_category"].items()]
        lines.append(f"wrote {self.out / 'adapt.md'} and {self.out / 'comparison.json'}")
        return "\n".join(lines)


def _pct(x: Any) -> str:
    return "–" if x is None else f"{float(x):.1f} %"


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the run's state ({exc}); choose another --out") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("stages"), dict):
        raise ConfigError(f"{path}: not the state of an adaptation run of this version; choose another --out")
    return data
