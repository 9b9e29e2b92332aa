"""A torch ``Dataset`` over instruction JSON, and the collator that makes the model's batch.

:class:`InstructionDataset` yields one conversation per item with every expert's
features of its clip: read from a :class:`~uprm.data.cache.FeatureCache` when a valid
entry is there (no video is decoded then), else extracted online from the decoded clip
(and optionally written back). :class:`UPRMCollator` batches items: the features with
the experts' ``collate`` (``UPEBlock.collate``), the text with the model's ``tokenize``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from uprm.data.clips import load_clip_for
from uprm.data.features.cache import FeatureCache, entry_spec
from uprm.data.records import ClipKey, load_records, record_clip_key, split_conversation
from uprm.errors import CacheError
from uprm.experts.base import Expert
from uprm.experts.faults import expert_call

__all__ = ["InstructionDataset", "UPRMCollator"]

class InstructionDataset(Dataset):
    """Conversations of instruction JSON files with their clips' expert features.

    Args:
        data: an instruction JSON path, or several (paths in each resolve against
            its folder).
        experts: the experts whose features each item carries: their modules
            (``{name: Expert}``, a sequence of experts, or a ``UPEBlock``) — then
            cached entries are checked against each expert's extraction config and
            weights and anything missing or stale is extracted online — or just their
            names, to read a cache as it is (no online extraction then).
        cache: a feature cache folder (``uprm extract``'s ``--out``) or ``None``.
        num_frames: frames per clip (must match the cache's ``--num-frames``).
        split, tasks: keep only records of this split / these tasks.
        write_back: store what was extracted online in ``cache``.

    Each item is a dict: ``id``, ``video_id``, ``task``, ``question`` (without the
    ``<video>`` placeholder), ``answer`` (``None`` if absent), ``media``
    (``"video"``/``"image"``), ``features`` (``{expert: {key: tensor}}``, no batch
    dim), ``num_frames``, ``timestamps [F]``, ``duration``, ``window`` (``[start, end]``
    seconds), ``segments``, ``category``, ``causes``, ``source`` (``"cache"`` or
    ``"online"`` per expert).

    Shapes:
        ``features[name]`` is what expert ``name``'s ``extract`` returns for one clip
        (e.g. coarse ``vision_features [F, tokens_per_frame, C]``); ``timestamps [F]``.
    """

    def __init__(
        self,
        data: str | os.PathLike | Sequence[str | os.PathLike],
        experts: Mapping[str, Expert] | Sequence[Expert] | Sequence[str] | Any,
        cache: FeatureCache | str | os.PathLike | None = None,
        *,
        num_frames: int = 8,
        split: str | None = None,
        tasks: Sequence[str] | None = None,
        write_back: bool = False,
    ) -> None:
        files = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        if not files:
            raise ValueError("no instruction files given")
        self.modules: dict[str, Expert] = _expert_modules(experts)
        self.expert_names: tuple[str, ...] = (
            tuple(self.modules) if self.modules else tuple(str(n) for n in experts)  # type: ignore[union-attr]
        )
        if not self.expert_names:
            raise ValueError("no experts given")
        self.cache = cache if (cache is None or isinstance(cache, FeatureCache)) else FeatureCache(cache)
        if not self.modules and self.cache is None:
            raise ValueError("with expert names only, a cache is needed to read features from")
        self.num_frames = int(num_frames)
        self.write_back = bool(write_back)
        self.specs = {name: entry_spec(e) for name, e in self.modules.items()}
        self.items: list[tuple[dict[str, Any], ClipKey, str]] = []
        for f in files:
            for rec in load_records(f):
                if split is not None and rec.get("split") != split:
                    continue
                if tasks is not None and rec.get("task") not in tasks:
                    continue
                split_conversation(rec)  # fail now, not in a worker later
                self.items.append((rec, record_clip_key(rec, None, self.num_frames), rec.where))

    def __len__(self) -> int:
        return len(self.items)

    def clip_keys(self) -> list[ClipKey]:
        """The distinct clips behind the items (what ``uprm extract`` would cache)."""
        return list(dict.fromkeys(key for _, key, _ in self.items))

    def features_for(self, key: ClipKey) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any], dict[str, str]]:
        """Every expert's features of one clip, its clip info and where each came from."""
        features: dict[str, dict[str, torch.Tensor]] = {}
        source: dict[str, str] = {}
        info: dict[str, Any] | None = None
        missing: list[str] = []
        for name in self.expert_names:
            entry = self.cache.read(key, name, self.specs.get(name)) if self.cache is not None else None
            if entry is None:
                missing.append(name)
                continue
            features[name] = entry.features
            source[name] = "cache"
            info = info or entry.clip
        if missing:
            if not self.modules:
                raise CacheError(
                    f"{key.video_id} [{key.window_tag}]: no valid cache entry for {missing} in {self.cache.root} "  # type: ignore[union-attr]
                    "and no expert modules to extract them online; run `uprm extract` first"
                )
            clip = load_clip_for(key)
            for name in missing:
                with expert_call(self.modules[name], "extract", f"clip {key.video_id} [{key.window_tag}]"):
                    feats = self.modules[name].extract(clip)
                features[name] = {k: v.detach().cpu() for k, v in feats.items()}
                source[name] = "online"
                if self.write_back and self.cache is not None:
                    self.cache.write(key, name, feats, self.specs[name], clip)
            info = {
                "num_frames": clip.num_frames,
                "timestamps": clip.timestamps.tolist(),
                "duration": float(clip.duration),
                "window": list(key.window) if key.window is not None else None,
            }
        assert info is not None
        return features, info, source

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec, key, where = self.items[index]
        question, answer = split_conversation(rec, where)
        features, info, source = self.features_for(key)
        duration = float(rec.get("duration") or info.get("duration") or 0.0)
        window = rec.get("window") or info.get("window") or [0.0, duration]
        return {
            "id": rec.get("id", f"{key.video_id}/{index}"),
            "video_id": key.video_id,
            "task": rec.get("task"),
            "question": question,
            "answer": answer,
            "media": key.media,
            "features": features,
            "num_frames": int(info["num_frames"]),
            "timestamps": torch.tensor(info.get("timestamps") or [], dtype=torch.float64),
            "duration": duration,
            "window": [float(window[0]), float(window[1])],
            "segments": [list(s) for s in rec.get("segments") or []],
            "category": rec.get("category"),
            "causes": list(rec.get("causes") or []),
            "source": source,
        }


def _expert_modules(experts: Any) -> dict[str, Expert]:
    if hasattr(experts, "experts") and hasattr(experts, "expert_names"):  # a UPEBlock
        return {name: experts.experts[name] for name in experts.expert_names}
    if isinstance(experts, Mapping):
        out = dict(experts)
        bad = [n for n, e in out.items() if not isinstance(e, Expert)]
        if bad:
            raise TypeError(f"experts {bad} are not uprm.Expert modules")
        return out
    items = list(experts)
    if items and all(isinstance(e, Expert) for e in items):
        return {e.name: e for e in items}
    if items and all(isinstance(e, str) for e in items):
        return {}
    raise TypeError("experts must be a UPEBlock, {name: Expert}, a list of experts, or a list of expert names")


Tokenize = Callable[[list[str], "list[str] | None", list[int]], Mapping[str, torch.Tensor]]


class UPRMCollator:
    """Batch dataset items for the model.

    Args:
        collate_features: ``list[{expert: {key: tensor}}] -> {expert: {key: tensor}}``,
            e.g. ``UPEBlock.collate`` (each expert stacks or pads its own features).
        tokenize: ``(questions, answers | None, num_frames) -> {"input_ids",
            "attention_mask", "labels", ...}`` tensors with batch dim ``B`` — the
            model's prompt builder; ``None`` leaves the text out.
        with_answers: pass the answers to ``tokenize`` (training); ``False`` for
            generation.

    Returns a dict with ``features``, the tokenizer's tensors, and ``ids``,
    ``video_ids``, ``tasks``, ``questions``, ``answers``, ``num_frames [B]``,
    ``durations [B]``, ``windows [B, 2]``. All items of a batch must have the same
    number of frames (an image is one frame: batch images and videos separately).

    Shapes:
        ``features[name]``: expert ``name``'s ``collate`` output (a leading batch dim
        ``B``, e.g. ``[B, F, tokens_per_frame, C]``); ``input_ids``, ``attention_mask``,
        ``labels``: ``[B, L]`` as ``tokenize`` makes them.
    """

    def __init__(self, collate_features: Callable[[list], Mapping[str, Any]], tokenize: Tokenize | None = None,
                 with_answers: bool = True) -> None:
        self.collate_features = collate_features
        self.tokenize = tokenize
        self.with_answers = with_answers

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ValueError("cannot collate an empty batch")
        frames = [int(it["num_frames"]) for it in items]
        if len(set(frames)) > 1:
            raise ValueError(
                f"a batch mixes clips of {sorted(set(frames))} frames (items {[it['id'] for it in items]}); "
                "batch images (1 frame) and videos separately"
            )
        questions = [it["question"] for it in items]
        answers = [it["answer"] for it in items]
        batch: dict[str, Any] = {"features": self.collate_features([it["features"] for it in items])}
        if self.tokenize is not None:
            if self.with_answers and any(a is None for a in answers):
                missing = [it["id"] for it in items if it["answer"] is None]
                raise ValueError(f"items {missing} have no answer to train on (use with_answers=False to generate)")
            text = self.tokenize(questions, answers if self.with_answers else None, frames)
            for key, value in text.items():
                if isinstance(value, torch.Tensor) and (value.dim() == 0 or value.shape[0] != len(items)):
                    raise ValueError(f"tokenize returned {key!r} of shape {tuple(value.shape)}; "
                                     f"expected a batch dimension of {len(items)}")
                if key in batch:
                    raise ValueError(f"tokenize returned {key!r}, which the collator already uses")
                batch[key] = value
        batch.update(
            ids=[it["id"] for it in items],
            video_ids=[it["video_id"] for it in items],
            tasks=[it["task"] for it in items],
            questions=questions,
            answers=answers,
            num_frames=torch.tensor(frames, dtype=torch.long),
            durations=torch.tensor([float(it["duration"]) for it in items], dtype=torch.float32),
            windows=torch.tensor([it["window"] for it in items], dtype=torch.float32),
        )
        return batch
