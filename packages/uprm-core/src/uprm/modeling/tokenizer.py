"""A small tokenizer built offline, for the tiny Video-LLaVA of tests and demos.

Byte-level BPE (any string encodes, nothing is ``<unk>``) with digits split one by one
(as Llama's tokenizer does, so times like ``12.5`` are learnable digit by digit), trained
in well under a second on a built-in corpus of the instruction templates and
surveillance vocabulary. Special tokens: ``<pad> <unk> <s> </s> <image> <video>``.
Deterministic: the same corpus gives the same vocabulary.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["SPECIAL_TOKENS", "TINY_CORPUS", "build_tiny_tokenizer"]

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "<video>"]

_TEMPLATES = [
    "USER: <video>\nPlease determine whether there exist threats in the video ASSISTANT: Yes, there exists a threat.",
    "USER: <video>\nPlease determine whether there exist threats in the video ASSISTANT: No, there is no threat.",
    "USER: <video>\nPlease locate the exact timestamps where the threats occur ASSISTANT: "
    "The threat occurs between 5.5 and 8 seconds.",
    "The threat occurs between 3 and 5 seconds and between 9 and 12 seconds.",
    "There is no threat in the video.",
    "USER: <video>\nPlease give me a detailed explanation of the root causes of the threat ASSISTANT: "
    "The threat is attributed to a man pushing another person to the ground.",
    "Analyze the designated area <region> and the actions depicted in the video.",
    "Describe the human motion in the video. Describe the relations between the objects in the image.",
    "What kind of scene is shown in this remote sensing image?",
]

_VOCABULARY = (
    "a an the this that these those is are was were be been being has have had do does did not no yes "
    "there exists exist threat threats occurs occur between and seconds second minute minutes from to at in on "
    "of with by for into onto near far inside outside above below left right behind front "
    "person people man woman men women child boy girl thief driver guard crowd group someone another other "
    "car cars truck bus bicycle motorcycle bag backpack handbag door window shop store street road parking lot "
    "fire smoke flames explosion gun knife weapon stick bottle box table chair fence wall building house "
    "walk walks walking walked run runs running ran stand stands standing stood talk talks talking talked "
    "fight fights fighting fought push pushes pushing pushed hit hits hitting punch punches punching kick kicks "
    "kicking steal steals stealing stole stolen grab grabs grabbing grabbed carry carries carrying carried "
    "hold holds holding held fall falls falling fell ground attack attacks attacking attacked break breaks "
    "breaking broke broken vandalise vandalises vandalising vandalised vandalize smash smashes smashing smashed "
    "burn burns burning burned shoot shoots shooting shot rob robs robbing robbed robbery burglary arson assault "
    "abuse arrest accident explosion shoplifting stealing vandalism fighting normal event activity "
    "approaches approaching leaves leaving enters entering opens opening closes closing picks picking drops "
    "dropping throws throwing chases chasing escapes escaping flees fleeing suddenly quickly slowly then while "
    "after before because due caused attributed root cause causes explanation detailed give me please locate "
    "exact timestamps determine whether video image scene area designated region actions depicted analyze "
    "describe motion relations objects remote sensing kind shown what which who where when why how"
)


def _corpus() -> list[str]:
    words = _VOCABULARY.split()
    lines = list(_TEMPLATES) * 4
    for i in range(0, len(words), 12):
        lines.append(" ".join(words[i : i + 12]))
        lines.append(" ".join(w.capitalize() for w in words[i : i + 12]))
    lines += [f"between {a} and {b} seconds" for a, b in [(0, 1), (2.5, 3), (4, 6.5), (7, 8), (9, 10.5)]]
    lines += [f"{m:02d}:{s:02d}" for m, s in [(0, 12), (1, 34), (5, 6), (7, 59)]]
    return lines


TINY_CORPUS = _corpus()


@lru_cache(maxsize=4)
def _train(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TINY_CORPUS, trainer)
    return tok.to_str()


def build_tiny_tokenizer(vocab_size: int = 1024):
    """A ``PreTrainedTokenizerFast`` with the special tokens Video-LLaVA needs."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(_train(vocab_size))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens=["<image>", "<video>"],
        clean_up_tokenization_spaces=False,
    )
