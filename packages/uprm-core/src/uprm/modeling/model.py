"""``UPRMModel``: Video-LLaVA whose video tokens come from the UPE block.

Data flow (shared/DESIGN.md §2)::

    clip ──extract──▶ features {expert: tensors}      (frozen perception, cacheable)
          ──UPE block──▶ z [B, T, D], router logits, z-loss
          ──scatter into the <video> token positions of the prompt embeddings──▶
          Video-LLaVA's language model (LoRA on every linear layer) ──▶ logits
    loss = CE(answer tokens) + α · L_z        (α = 0.05; no L_z for the basic router)

The coarse expert *is* Video-LLaVA's video path: its frozen tower is the backbone's
``video_tower`` and its trainable adapter the backbone's ``multi_modal_projector``.
Trainable: LoRA adapters, the projector, the fine experts' adapters, the router.
Frozen: the towers, the language model's base weights, every expert's perception.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.utils import ModelOutput

from uprm._version import __version__ as core_version
from uprm.errors import CheckpointError, MissingExpertError
from uprm.experts.base import ExpertContext
from uprm.inference.answers import ClipAnswers
from uprm.inference.segments import Segment
from uprm.modeling.backbone import build_tiny_backbone, dtype_of, load_backbone
from uprm.modeling.config import UPRMConfig
from uprm.moe.block import UPEBlock
from uprm.prompts import STAGE2_TASKS, VIDEO_PLACEHOLDER, YES_ANSWER, format_prompt, question_for
from uprm.types import VideoClip
from uprm.utils import atomic_path, is_torch_save

__all__ = ["WEIGHTS_NAME", "GenerationResult", "UPRMModel", "UPRMOutput", "VideoPrefix", "build_model",
           "merge_expert_options"]

WEIGHTS_NAME = "model.safetensors"
IGNORE_INDEX = -100
_LORA_PREFIX = "lora."
_BLOCK_PREFIX = "block."
_BASE_PREFIX = "base."


@dataclass
class UPRMOutput(ModelOutput):
    """Output of :meth:`UPRMModel.forward`.

    Attributes:
        loss: ``ce_loss + α · z_loss`` (``ce_loss`` alone for the basic router); ``None``
            without labels.
        logits: ``[B, L, vocab]``.
        ce_loss: cross-entropy over the answer tokens.
        z_loss: eq.7 over the router logits (``None`` for the basic router).
        router_logits: ``[B, T, N + 1]``, columns in ``expert_names`` order (coarse last).
        expert_weights: ``[B, T, N + 1]``, the weight each expert's tokens got.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    ce_loss: torch.Tensor | None = None
    z_loss: torch.Tensor | None = None
    router_logits: torch.Tensor | None = None
    expert_weights: torch.Tensor | None = None


@dataclass
class GenerationResult:
    """Answers with the log-probability of each generated token (end token excluded)."""

    texts: list[str]
    token_ids: list[list[int]]
    token_logprobs: list[list[float]]
    first_token_probs: torch.Tensor  # [B, vocab] distribution of the first answer token

    def mean_prob(self, i: int) -> float:
        """Geometric-mean probability of answer ``i``'s tokens (1.0 for an empty answer)."""
        lp = self.token_logprobs[i]
        return math.exp(sum(lp) / len(lp)) if lp else 1.0


@dataclass(frozen=True)
class VideoPrefix:
    """What every question about a clip shares, computed once: the UPE block's outputs and
    the language model's keys and values over the prompt up to the end of the video
    tokens (``<s>USER: `` and the video tokens; the questions differ only after them).

    :meth:`UPRMModel.prefill` makes one; :meth:`UPRMModel.answer` and
    :meth:`UPRMModel.generate` (``prefix=``) ask questions of it without running the
    experts, the router or the video tokens through the language model again. Asking never
    changes it (each generation grows its own copy of the rows it needs), so it can be
    asked again — identify of every window, then locate and attribute of
    ``prefix.select(yes)``.

    Attributes:
        visual_tokens: ``[B, T, D]``, the block's ``z``.
        expert_weights: ``[B, T, N + 1]``, the router's weights, columns in ``expert_names`` order.
        input_ids: ``[P]``, the prefix's token ids (the same for every clip).
        cache: transformers' ``DynamicCache`` over the prefix of the clips prefilled
            together, ``[B₀, heads, P, head_dim]`` per layer; shared by every selection.
        rows: ``[B]``, which of the cache's clips these are.
    """

    visual_tokens: torch.Tensor
    expert_weights: torch.Tensor
    input_ids: torch.Tensor
    cache: Any
    rows: torch.Tensor

    def __len__(self) -> int:
        return int(self.rows.numel())

    def select(self, rows: Sequence[int]) -> VideoPrefix:
        """The prefix of clips ``rows`` (indices into this one, in that order). Nothing is
        copied here: a generation copies the cache rows it asks about."""
        index = torch.as_tensor(list(rows), dtype=torch.long)
        on = self.visual_tokens.device
        return replace(self, visual_tokens=self.visual_tokens[index.to(on)],
                       expert_weights=self.expert_weights[index.to(self.expert_weights.device)], rows=self.rows[index])


def _continuation_cache(config: Any, prefix_cache: Any, rows: torch.Tensor, length: int) -> Any:
    """A cache of ``length`` positions that starts with rows ``rows`` of ``prefix_cache``
    (repeats allowed; ``prefix_cache`` is left as it is). It is transformers'
    ``StaticCache``, written in place as tokens come: a ``DynamicCache`` concatenates,
    copying all its keys and values at every generated token (three 48-token answers for
    8 windows at the scaled dims of ``benchmarks/detect.py``: 7.3 CPU-seconds with it,
    5.2 with this)."""
    from transformers import StaticCache

    cache = StaticCache(config=config, max_cache_len=length)
    for i, layer in enumerate(prefix_cache.layers):
        index = rows.to(layer.keys.device)
        cache.update(layer.keys.index_select(0, index), layer.values.index_select(0, index), i)
    return cache


def _cache_keyword(module: nn.Module) -> str:
    """The keyword a transformers model takes its key/value cache under (``cache`` from
    transformers 5, ``past_key_values`` before)."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def _read_weights(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's weights file (safetensors; a pickle only when asked)."""
    from safetensors.torch import load_file

    with open(path, "rb") as fh:
        head = fh.read(4)
    if not is_torch_save(head):
        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"{path}: cannot read the weights ({exc})") from None
    if not allow_pickle:
        raise CheckpointError(
            f"{path}: a pickle (torch.save) file, not safetensors; pickles are not loaded unless asked: "
            "UPRMModel.from_pretrained(..., allow_pickle=True) reads its tensors with torch.load(weights_only=True)"
        )
    try:
        with open(path, "rb") as fh:  # a file object: torch.load may treat a *.safetensors path as safetensors
            state = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        found = [ln for ln in lines if "GLOBAL" in ln or "global" in ln]
        reason = (found or lines or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: refused even with allow_pickle=True: it holds more than tensors ({reason})") \
            from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path}: the pickle does not hold a flat dict of named tensors")
    return state


class UPRMModel(nn.Module):
    """A UPRM model. Build it with :func:`build_model` (or ``UPRMModel.from_pretrained``)."""

    def __init__(self, config: UPRMConfig, backbone: nn.Module, tokenizer: Any, block: UPEBlock) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone  # the VideoLlava model, or the peft wrapper around it
        self.block = block
        self.tokenizer = tokenizer
        self.video_token_id = int(self.vlm.config.video_token_index)
        self.ctx: ExpertContext = block.ctx

    # ------------------------------------------------------------------ properties
    @property
    def vlm(self) -> nn.Module:
        """The ``VideoLlavaForConditionalGeneration`` (LoRA layers injected in place)."""
        backbone = self.backbone
        base = getattr(backbone, "base_model", None)
        return base.model if base is not None and hasattr(base, "model") and base is not backbone else backbone

    @property
    def expert_names(self) -> tuple[str, ...]:
        return self.block.expert_names

    @property
    def device(self) -> torch.device:
        return self.vlm.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vlm.get_input_embeddings().weight.dtype

    def num_parameters(self, trainable_only: bool = False) -> int:
        seen, total = set(), 0
        for p in self.parameters():
            if id(p) in seen or (trainable_only and not p.requires_grad):
                continue
            seen.add(id(p))
            total += p.numel()
        return total

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode for the block, restoring training mode after; nothing to switch (and
        no cost) when the model is already in eval mode."""
        if not self.training:
            yield
            return
        self.eval()
        try:
            yield
        finally:
            self.train(True)

    def train(self, mode: bool = True) -> UPRMModel:
        super().train(mode)
        for expert in self.block.experts.values():  # frozen perception stays in eval mode
            expert.train(mode)
        return self

    # ------------------------------------------------------------------ inputs
    def extract(self, clip: VideoClip) -> dict[str, dict[str, torch.Tensor]]:
        """Every expert's frozen perception of one clip."""
        return self.block.extract(clip)

    def collate(self, items: Sequence[Mapping[str, Mapping[str, torch.Tensor]]]) -> dict[str, dict[str, torch.Tensor]]:
        return self.block.collate(items)

    def tokenize(
        self,
        questions: Sequence[str],
        answers: Sequence[str] | None = None,
        num_frames: int | Sequence[int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Prompts (and answers) → ``input_ids``, ``attention_mask`` (and ``labels``).

        A question may be a task name (``identify``, ``locate``, ``attribute``). Each
        ``<video>`` placeholder becomes ``frames × tokens_per_frame`` video tokens;
        labels are ``-100`` everywhere but on the answer and its end token, so the
        cross-entropy is over answer tokens only. With answers the batch is padded on
        the right (training), without on the left (generation).

        Shapes: returns ``[B, L]`` tensors.
        """
        n = len(questions)
        if answers is not None and len(answers) != n:
            raise ValueError(f"{n} questions but {len(answers)} answers")
        if num_frames is None:
            num_frames = self.config.num_frames
        frames = [int(num_frames)] * n if isinstance(num_frames, int) else [int(f) for f in num_frames]
        tok = self.tokenizer
        rows, label_rows = [], []
        for i, question in enumerate(questions):
            ids, tail = self._prompt_ids(question, frames[i] * self.ctx.tokens_per_frame)
            ids += tail
            labels = [IGNORE_INDEX] * len(ids)
            if answers is not None:
                answer_ids = tok(" " + answers[i].strip(), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                ids += answer_ids
                labels += answer_ids
            rows.append(ids)
            label_rows.append(labels)
        longest = max(len(r) for r in rows)
        self._check_positions(longest)
        left = answers is None
        input_ids = torch.full((n, longest), self._pad_id(), dtype=torch.long)
        attention = torch.zeros((n, longest), dtype=torch.long)
        labels = torch.full((n, longest), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, lab) in enumerate(zip(rows, label_rows)):
            span = slice(longest - len(ids), longest) if left else slice(0, len(ids))
            input_ids[i, span] = torch.tensor(ids)
            attention[i, span] = 1
            labels[i, span] = torch.tensor(lab)
        out = {"input_ids": input_ids, "attention_mask": attention}
        if answers is not None:
            out["labels"] = labels
        return out

    def _prompt_ids(self, question: str, video_tokens: int) -> tuple[list[int], list[int]]:
        """A prompt's ids up to the end of its ``video_tokens`` video tokens, and the ids
        after them. Each part is tokenised on its own, so the first (``<s>USER: `` and the
        video tokens) is the same for every question that does not place the video itself."""
        tok = self.tokenizer
        head, _, tail = format_prompt(question_for(question)).partition(VIDEO_PLACEHOLDER)
        ids = [tok.bos_token_id] if tok.bos_token_id is not None else []
        ids += tok(head, add_special_tokens=False)["input_ids"]
        ids += [self.video_token_id] * video_tokens
        return ids, tok(tail, add_special_tokens=False)["input_ids"]

    def _pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def _check_positions(self, length: int) -> None:
        limit = getattr(self.vlm.config.text_config, "max_position_embeddings", None)
        if limit is not None and length > limit:
            raise ValueError(f"a prompt of {length} tokens exceeds the language model's {limit} positions")

    def _merge(self, input_ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings with ``z`` scattered into the ``<video>`` positions.

        Shapes: ``input_ids [B, L]``, ``z [B, T, D]`` → ``[B, L, D]``.
        """
        video_mask = input_ids == self.video_token_id
        counts = video_mask.sum(dim=1)
        if bool((counts != z.shape[1]).any()):
            bad = int((counts != z.shape[1]).nonzero()[0, 0])
            raise ValueError(
                f"batch item {bad} has {int(counts[bad])} <video> tokens but the experts produced "
                f"{z.shape[1]} tokens per clip (frames x {self.ctx.tokens_per_frame}); tokenize with the "
                "clip's number of frames"
            )
        embeds = self.vlm.get_input_embeddings()(input_ids)
        return embeds.masked_scatter(video_mask.unsqueeze(-1), z.to(embeds.dtype))

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: Mapping[str, Mapping[str, torch.Tensor]],
        labels: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
    ) -> UPRMOutput:
        """Shapes: ``input_ids``, ``attention_mask``, ``labels`` ``[B, L]``; ``features`` as
        :meth:`collate` returns them; ``token_mask [B, T]`` (real video tokens, for the
        z-loss). Returns :class:`UPRMOutput`."""
        device = self.device
        upe = self.block(features, token_mask)
        embeds = self._merge(input_ids.to(device), upe.z)
        out = self.vlm(
            inputs_embeds=embeds,
            attention_mask=attention_mask.to(device),
            labels=None if labels is None else labels.to(device),
            use_cache=False,
        )
        ce = out.loss
        loss = None
        if ce is not None:
            loss = ce if upe.z_loss is None else ce + self.config.z_loss_alpha * upe.z_loss.to(ce.dtype)
        return UPRMOutput(
            loss=loss,
            logits=out.logits,
            ce_loss=ce,
            z_loss=upe.z_loss,
            router_logits=upe.router_logits,
            expert_weights=upe.expert_weights,
        )

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        features: Mapping[str, Mapping[str, torch.Tensor]] | None,
        questions: Sequence[str],
        max_new_tokens: int | None = None,
        num_frames: int | Sequence[int] | None = None,
        *,
        visual_tokens: torch.Tensor | None = None,
        prefix: VideoPrefix | None = None,
        **generate_kwargs: Any,
    ) -> GenerationResult:
        """Greedy answers to ``questions``, one per batch item of ``features``.

        ``visual_tokens`` (``[B, T, D]``, the UPE block's ``z``) may be given instead of
        ``features`` to ask further questions about clips whose experts already ran;
        ``prefix`` (a :class:`VideoPrefix` of ``B`` clips, from :meth:`prefill`) to ask them
        of clips whose video tokens the language model already read — then only the
        questions' tokens are prefilled. A question that places ``<video>`` itself shares
        no prefix: ask it with ``features`` or ``visual_tokens``.

        Shapes: ``features`` as :meth:`collate` returns them (batch ``B = len(questions)``).
        """
        if prefix is not None:
            if features is not None or visual_tokens is not None:
                raise ValueError("give features, visual_tokens or a prefix, not several")
            if len(prefix) != len(questions):
                raise ValueError(f"{len(questions)} questions for a prefix of {len(prefix)} clips")
            return self._continue(prefix, range(len(prefix)), questions, max_new_tokens, **generate_kwargs)
        with self._eval_mode():
            z = visual_tokens if visual_tokens is not None else self.block(features).z
            if z.shape[0] != len(questions):
                raise ValueError(f"{len(questions)} questions for a batch of {z.shape[0]} clips")
            frames = num_frames if num_frames is not None else z.shape[1] // self.ctx.tokens_per_frame
            inputs = self.tokenize(questions, None, frames)
            embeds = self._merge(inputs["input_ids"].to(self.device), z)
            tok = self.tokenizer
            generate_kwargs.setdefault("do_sample", False)
            out = self.vlm.generate(
                inputs_embeds=embeds,
                attention_mask=inputs["attention_mask"].to(self.device),
                max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
                output_logits=True,
                return_dict_in_generate=True,
                **generate_kwargs,
            )
        return self._decode(out)

    @torch.no_grad()
    def prefill(self, features: Mapping[str, Mapping[str, torch.Tensor]]) -> VideoPrefix:
        """Run the experts and the router, and the language model over the part of the
        prompt every question shares (``<s>USER: `` and the video tokens), once per clip.
        Ask questions of the result with :meth:`answer` or :meth:`generate` (``prefix=``).

        Shapes: ``features`` as :meth:`collate` returns them (batch ``B``) → a prefix of ``B`` clips.
        """
        with self._eval_mode():
            upe = self.block(features)
        return self._prefill(upe.z, upe.expert_weights)

    @torch.no_grad()
    def _prefill(self, z: torch.Tensor, expert_weights: torch.Tensor) -> VideoPrefix:
        """The prefix of clips whose block gave ``z [B, T, D]`` (no attention mask: every
        clip's prefix has the same ``P`` tokens, so none is padded)."""
        ids = torch.tensor(self._prompt_ids("", z.shape[1])[0], dtype=torch.long)
        language_model = self.vlm.model.language_model
        with self._eval_mode():
            embeds = self._merge(ids.to(self.device).expand(z.shape[0], -1), z)
            out = language_model(inputs_embeds=embeds, use_cache=True)
        cache = getattr(out, "cache", None)
        if cache is None:  # transformers before 5
            cache = out.past_key_values
        return VideoPrefix(z, expert_weights, ids, cache, torch.arange(z.shape[0]))

    @torch.no_grad()
    def _continue(self, prefix: VideoPrefix, rows: Sequence[int], questions: Sequence[str],
                  max_new_tokens: int | None, **generate_kwargs: Any) -> GenerationResult:
        """Greedy answers to ``questions``, question ``i`` asked of clip ``rows[i]`` of
        ``prefix``: only the tokens after the video are prefilled, on a copy of the cache
        rows asked about.

        Each row is ``prefix · padding · question``: the padding is masked and transformers
        numbers positions from the attention mask, so a question's tokens sit at the
        positions (and see the keys) they have in its whole prompt alone."""
        p, shared = int(prefix.input_ids.numel()), prefix.input_ids.tolist()
        tails = []
        for i, question in enumerate(questions):
            head, tail = self._prompt_ids(question, prefix.visual_tokens.shape[1])
            if head != shared:
                raise ValueError(f"question {i} ({question!r}) places <video> itself, so it shares no prefix with "
                                 "'USER: <video>'; ask it with generate(features, ...) or visual_tokens=")
            tails.append(tail)
        width = max(len(t) for t in tails)
        self._check_positions(p + width)
        ids = torch.full((len(tails), p + width), self._pad_id(), dtype=torch.long)
        mask = torch.zeros_like(ids)
        ids[:, :p], mask[:, :p] = prefix.input_ids, 1
        for i, tail in enumerate(tails):
            ids[i, p + width - len(tail) :] = torch.tensor(tail, dtype=torch.long)
            mask[i, p + width - len(tail) :] = 1
        max_new_tokens = max_new_tokens or self.config.max_new_tokens
        picked = prefix.rows[torch.as_tensor(list(rows), dtype=torch.long)]
        cache = _continuation_cache(self.vlm.config.text_config, prefix.cache, picked, p + width + max_new_tokens)
        tok = self.tokenizer
        generate_kwargs.setdefault("do_sample", False)
        generate_kwargs.setdefault("disable_compile", True)  # else a GPU compiles the model for each cache length
        generate_kwargs[_cache_keyword(self.vlm)] = cache
        with self._eval_mode():
            out = self.vlm.generate(
                input_ids=ids.to(self.device),  # the prefix's ids are skipped: the cache holds them
                attention_mask=mask.to(self.device),
                max_new_tokens=max_new_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
                output_logits=True,
                return_dict_in_generate=True,
                **generate_kwargs,
            )
        return self._decode(out, start=p + width)

    def _decode(self, out: Any, start: int = 0) -> GenerationResult:
        """``out`` of transformers' generate → answers; ``start``: where the generated
        tokens begin in ``out.sequences`` (after the prompt's ids, when ids were given)."""
        tok = self.tokenizer
        logprobs = [torch.log_softmax(step.float(), dim=-1) for step in out.logits]
        texts, ids_out, lps = [], [], []
        for b, seq in enumerate(out.sequences[:, start:].tolist()):
            ids, lp = [], []
            for step, token in enumerate(seq):
                if token == tok.eos_token_id or step >= len(logprobs):
                    break
                if token == tok.pad_token_id:
                    continue
                ids.append(token)
                lp.append(float(logprobs[step][b, token]))
            ids_out.append(ids)
            lps.append(lp)
            texts.append(tok.decode(ids, skip_special_tokens=True).strip())
        return GenerationResult(texts, ids_out, lps, torch.softmax(out.logits[0].float(), dim=-1))

    def chat(self, clip: VideoClip, question: str, max_new_tokens: int | None = None) -> str:
        """Ask one question about a clip (``"identify"``, ``"locate"``, ``"attribute"`` or
        free text)."""
        features = self.collate([self.extract(clip)])
        return self.generate(features, [question_for(question)], max_new_tokens).texts[0]

    @torch.no_grad()
    def answer(
        self,
        features: Mapping[str, Mapping[str, torch.Tensor]] | VideoPrefix,
        tasks: Sequence[str] = STAGE2_TASKS,
        max_new_tokens: int | None = None,
    ) -> list[ClipAnswers]:
        """Ask the DeepSVU questions about a batch of clips.

        The experts and the router run **once** for the batch, and the language model reads
        each clip's video tokens **once** (:meth:`prefill`); every task is then asked of
        that shared prefix in one batched generation (``B × len(tasks)`` prompts that
        differ only after the video). ``features`` may be a :class:`VideoPrefix` already
        made — identify for every window, then locate and attribute of
        ``prefix.select(yes)`` — and then nothing before the questions runs again. Without
        tasks only the experts and the router run. Each clip's router weights are averaged
        over its tokens into ``ClipAnswers.expert_weights``.

        Shapes: ``features`` as :meth:`collate` returns them (batch ``B``) → ``B`` answers.
        """
        tasks = _check_tasks(tasks)
        if isinstance(features, VideoPrefix):
            prefix, weights = features, features.expert_weights
        else:
            with self._eval_mode():
                upe = self.block(features)
            prefix, weights = None, upe.expert_weights
            if tasks:
                prefix = self._prefill(upe.z, weights)
        out = self._clip_answers(weights)
        if tasks and out:
            questions = [question_for(t) for _ in out for t in tasks]
            gen = self._continue(prefix, [i for i in range(len(out)) for _ in tasks], questions, max_new_tokens)
            self._fill(out, tasks, gen)
        return out

    @torch.no_grad()
    def _answer_full_prompts(
        self,
        features: Mapping[str, Mapping[str, torch.Tensor]],
        tasks: Sequence[str] = STAGE2_TASKS,
        max_new_tokens: int | None = None,
    ) -> list[ClipAnswers]:
        """:meth:`answer` without the shared prefix, as it was: every question's whole
        prompt prefilled, its video tokens included. The reference the shared path is
        tested against, and the "before" of ``benchmarks/detect.py``."""
        tasks = _check_tasks(tasks)
        with self._eval_mode():
            upe = self.block(features)
        out = self._clip_answers(upe.expert_weights)
        if tasks:
            gen = self.generate(None, [question_for(t) for _ in out for t in tasks], max_new_tokens,
                                visual_tokens=upe.z.repeat_interleave(len(tasks), dim=0))
            self._fill(out, tasks, gen)
        return out

    def _clip_answers(self, expert_weights: torch.Tensor) -> list[ClipAnswers]:
        """One empty :class:`ClipAnswers` per clip, with its router weights averaged over its
        tokens (``expert_weights [B, T, N + 1]``)."""
        weights = expert_weights.float().mean(dim=1).tolist()
        return [ClipAnswers(expert_weights=dict(zip(self.expert_names, w))) for w in weights]

    def _fill(self, out: list[ClipAnswers], tasks: tuple[str, ...], gen: GenerationResult) -> None:
        """Write the answers of ``gen`` (clip by clip, the tasks in order) into ``out``:
        the texts, P(first token of "Yes") of identify, the locate answer's probability."""
        yes_id = self.tokenizer(" " + YES_ANSWER, add_special_tokens=False)["input_ids"][0]
        for i, clip in enumerate(out):
            for j, task in enumerate(tasks):
                row = i * len(tasks) + j
                setattr(clip, task, gen.texts[row])
                if task == "identify":
                    clip.p_yes = float(gen.first_token_probs[row, yes_id])
                elif task == "locate":
                    clip.locate_prob = gen.mean_prob(row)

    def detect(self, clip: VideoClip, features: Mapping[str, Mapping[str, torch.Tensor]] | None = None) -> list[Segment]:
        """Identify, locate and attribute threats in one clip (:meth:`answer`, then
        :meth:`ClipAnswers.segments`).

        ``score = P(first answer token of "Yes") × geometric-mean probability of the locate
        answer's tokens``, so predictions can be ranked for mAP. Times are in seconds of
        the source video (the clip's window start is added back). Returns ``[]`` when the
        model answers that there is no threat, or locates nothing.
        """
        if features is None:
            features = self.collate([self.extract(clip)])
        window = clip.meta.get("window")
        window = (float(window[0]), float(window[1])) if window else None
        return self.answer(features)[0].segments(window, clip.duration or None)

    # ------------------------------------------------------------------ save / load
    def _base_trained(self) -> dict[str, nn.Parameter]:
        """Backbone parameters trained in full (``config.train_modules``), by name."""
        if not self.config.train_modules:
            return {}
        return {
            n: p
            for n, p in self.vlm.named_parameters()
            if "lora_" not in n and any(re.search(rx, n) for rx in self.config.train_modules)
        }

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA adapters (``lora.*``), expert adapters, projector and router (``block.*``),
        and backbone parameters of ``config.train_modules`` (``base.*``)."""
        state: dict[str, torch.Tensor] = {_BASE_PREFIX + n: p for n, p in self._base_trained().items()}
        if self.config.lora.enabled:
            from peft import get_peft_model_state_dict

            state.update({_LORA_PREFIX + k: v for k, v in get_peft_model_state_dict(self.backbone).items()})
        state.update({_BLOCK_PREFIX + k: v for k, v in self.block.trainable_state_dict().items()})
        return state

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (only what was trained), each
        atomically. The frozen base comes from ``config.backbone`` (or, for a tiny model,
        from its dims and seed)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.trainable_state_dict().items()}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            # one metadata key: safetensors writes its metadata map in no fixed order, so two keys
            # made the same weights two different files (and fingerprints); the version is in config.json
            save_file(state, str(tmp), metadata={"format": "pt"})
        self.config.save_pretrained(directory)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, allow_pickle: bool = False, **overrides: Any) -> UPRMModel:
        """Load a model saved by :meth:`save_pretrained`.

        ``overrides`` replace config fields and are checked as the constructor checks
        them (e.g. ``backbone="/path/on/this/machine"``); ``expert_options`` is merged
        over the saved options (``{"pose": {"weights": "/models/yolo.pt"}}`` keeps the
        pose expert's other saved options and the other experts' options). A checkpoint whose experts are
        not installed fails with :class:`~uprm.errors.MissingExpertError`, naming the
        distribution to install; any malformed checkpoint (missing or truncated files,
        weights that do not fit, a router saved for another expert order) with
        :class:`~uprm.errors.CheckpointError` naming the file.

        ``model.safetensors`` that is really a pickle (``torch.save``) is refused unless
        ``allow_pickle=True``; even then it is read with ``torch.load(weights_only=True)``
        (tensors only: a pickle that carries code is still refused).
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise CheckpointError(f"{directory}: is a file; give the checkpoint folder (config.json and "
                                  f"{WEIGHTS_NAME}, as save_pretrained writes them)")
        config = UPRMConfig.from_pretrained(directory)
        saved_order = list(config.expert_names) if config.expert_names else None
        if overrides.get("expert_options"):
            overrides["expert_options"] = merge_expert_options(config.expert_options, overrides["expert_options"])
        config = config.replace(**overrides)
        _check_installed(config, directory)
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            raise CheckpointError(f"{weights}: missing; not a complete UPRM checkpoint")
        model = build_model(config)
        if saved_order is not None and list(model.expert_names) != saved_order:
            raise CheckpointError(
                f"{directory}: the router was saved with the expert columns {saved_order}, but this model's "
                f"columns are {list(model.expert_names)}; its router weights would load permuted or misplaced"
            )
        model.load_trainable_state_dict(_read_weights(weights, allow_pickle), source=str(weights))
        return model

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor], source: str = "state") -> None:
        """Load what :meth:`trainable_state_dict` wrote; anything that does not fit is a
        :class:`~uprm.errors.CheckpointError` naming ``source``."""
        parts = _split_state(state, source)
        self._load_base(parts[_BASE_PREFIX], source)
        self._load_lora(parts[_LORA_PREFIX], source)
        try:
            self.block.load_trainable_state_dict(parts[_BLOCK_PREFIX])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{source}: {exc}") from None

    def _load_base(self, base: Mapping[str, torch.Tensor], source: str) -> None:
        trained = self._base_trained()
        if set(base) != set(trained):
            raise CheckpointError(
                f"{source}: fully trained backbone weights do not match train_modules "
                f"(missing {sorted(set(trained) - set(base))[:4]}, unexpected {sorted(set(base) - set(trained))[:4]})"
            )
        with torch.no_grad():
            for name, value in base.items():
                if value.shape != trained[name].shape:
                    raise CheckpointError(f"{source}: {name} has shape {tuple(value.shape)}, the model's is "
                                          f"{tuple(trained[name].shape)}")
                trained[name].copy_(value)

    def _load_lora(self, lora: Mapping[str, torch.Tensor], source: str) -> None:
        if not self.config.lora.enabled:
            if lora:
                raise CheckpointError(f"{source}: holds LoRA weights but the config has LoRA disabled")
            return
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        expected = get_peft_model_state_dict(self.backbone)
        if set(lora) != set(expected):
            raise CheckpointError(
                f"{source}: LoRA weights do not match this model (missing {sorted(set(expected) - set(lora))[:4]}, "
                f"unexpected {sorted(set(lora) - set(expected))[:4]})"
            )
        wrong = [k for k, v in lora.items() if v.shape != expected[k].shape]
        if wrong:
            raise CheckpointError(f"{source}: LoRA weights of another shape (another rank?): {wrong[:4]}")
        set_peft_model_state_dict(self.backbone, {k: v.to(self.device) for k, v in lora.items()})


def _check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in STAGE2_TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; ask some of {list(STAGE2_TASKS)}")
    return tasks


def merge_expert_options(saved: Mapping[str, Mapping[str, Any]] | None,
                         given: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """``given`` over ``saved``, expert by expert and option by option."""
    merged = {str(n): dict(o) for n, o in (saved or {}).items()}
    for name, options in (given or {}).items():
        merged.setdefault(str(name), {}).update(options)
    return merged


def _split_state(state: Mapping[str, torch.Tensor], source: str) -> dict[str, dict[str, torch.Tensor]]:
    prefixes = (_LORA_PREFIX, _BLOCK_PREFIX, _BASE_PREFIX)
    stray = sorted(k for k in state if not k.startswith(prefixes))
    if stray:
        raise CheckpointError(f"{source}: unexpected keys {stray[:8]}")
    return {p: {k[len(p) :]: v for k, v in state.items() if k.startswith(p)} for p in prefixes}


def _check_installed(config: UPRMConfig, source: Path) -> None:
    from uprm.plugins.manager import KNOWN_DISTRIBUTIONS, expert_infos

    infos = expert_infos()
    names = config.expert_names or config.experts or []
    missing = [n for n in names if n not in infos]
    if missing:
        needs = []
        for name in missing:
            dist = config.distributions.get(name) or KNOWN_DISTRIBUTIONS.get(name)
            version = config.versions.get(dist, "") if dist else ""
            needs.append(f"{name!r} (from {dist} {version})".replace(" )", ")") if dist else repr(name))
        dists = sorted({config.distributions.get(n) or KNOWN_DISTRIBUTIONS.get(n) or n for n in missing})
        raise MissingExpertError(
            f"{source}: this checkpoint needs expert(s) {', '.join(needs)}, which are not installed; "
            f"install them with `pip install {' '.join(dists)}` (or check UPRM_LOAD_PLUGINS / UPRM_DISABLE_PLUGINS)"
        )
    for name in names:
        dist = infos[name].distribution
        saved = config.versions.get(dist or "")
        if saved and infos[name].version and saved != infos[name].version:
            warnings.warn(
                f"{source}: expert {name!r} was saved with {dist} {saved}, {infos[name].version} is installed",
                stacklevel=3,
            )


def _expert_context(vlm: nn.Module, num_frames: int, tiny: bool = False) -> ExpertContext:
    """The experts' view of the backbone: its dims and, as shared resources, its frozen
    video tower, its projector and the tower layer Video-LLaVA reads. ``tiny``: the
    random tiny backbone (experts given no weights may build random perception)."""
    vision = vlm.config.vision_config
    grid = vision.image_size // vision.patch_size
    return ExpertContext(
        hidden_size=int(vlm.config.text_config.hidden_size),
        num_frames=num_frames,
        tokens_per_frame=grid * grid + 1,
        num_prefix_tokens=1,
        image_size=int(vision.image_size),
        tiny=tiny,
        resources={
            "vision_tower": vlm.model.video_tower,
            "projector": vlm.model.multi_modal_projector,
            "vision_feature_layer": vlm.config.vision_feature_layer,
        },
    )


def _with_lora(vlm: nn.Module, config: UPRMConfig) -> nn.Module:
    if not config.lora.enabled:
        return vlm
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.targets_regex(),
    )
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # peft's own PeftModel.__init__ reads transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        torch.manual_seed(config.seed + 1)
        return get_peft_model(vlm, lora)


def build_model(config: UPRMConfig) -> UPRMModel:
    """Build a UPRM model: the backbone (tiny, a local directory, or a hub id resolved by
    transformers when online), LoRA on the language model, the experts (through the
    plugin layer's :func:`~uprm.plugins.build_experts`; the coarse one on the backbone's
    video tower and projector) and the router.

    ``config`` is not changed: the model's own ``model.config`` is a copy that records
    the resolved experts, the router order (``expert_names``), each expert's
    distribution and the core's and plugins' versions.
    """
    from uprm.plugins.factory import build_experts, expert_seed, resolve_expert_names
    from uprm.plugins.manager import expert_infos

    config = config.replace()  # a checked copy: the caller's config stays as it was
    names = resolve_expert_names(config.experts)
    dtype = dtype_of(config.torch_dtype)
    if config.backbone is None:
        vlm, tokenizer = build_tiny_backbone(config.tiny_backbone, seed=config.seed, dtype=dtype)
    else:
        vlm, tokenizer = load_backbone(config.backbone, dtype=dtype)
    vlm.requires_grad_(False)
    backbone = _with_lora(vlm, config)
    ctx = _expert_context(vlm, config.num_frames, config.is_tiny)
    experts = build_experts(names, ctx, config.expert_options, config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(expert_seed(config.seed, "<router>"))
        block = UPEBlock(list(experts.values()), router=config.router, router_options=config.router_options)
    block.to(dtype)
    vlm.model.multi_modal_projector.requires_grad_(True)
    for name, param in vlm.named_parameters():
        if "lora_" not in name and any(re.search(rx, name) for rx in config.train_modules):
            param.requires_grad_(True)
    infos = expert_infos()
    config.experts = names
    config.expert_names = list(block.expert_names)
    config.distributions = {n: infos[n].distribution for n in names if infos[n].distribution}
    config.versions = {"uprm-core": core_version}
    for n in names:
        if infos[n].distribution and infos[n].version:
            config.versions[infos[n].distribution] = infos[n].version
    return UPRMModel(config, backbone, tokenizer, block)
