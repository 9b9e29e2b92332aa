"""The LLM judge: the paper's GPT score of an attribution (§4.3), on any
OpenAI-compatible chat endpoint.

Each attribution is scored 1-10 for *relevance* (how relevant the cause given is to the
threat the reference describes) and *consistency* (how consistent it is with the
reference's facts and clues); the GPT score of a record is their mean, the report's
``gpt`` the mean over the attribute records judged.

- **Configuration** from arguments or the environment, never from a file in the
  repository: ``UPRM_JUDGE_BASE_URL`` (else ``OPENAI_BASE_URL``, else
  ``https://api.openai.com/v1``), ``UPRM_JUDGE_MODEL`` (else ``OPENAI_MODEL``; required)
  and ``UPRM_JUDGE_API_KEY`` (else ``OPENAI_API_KEY``; optional for a local server).
  With ``UPRM_OFFLINE=1`` only a server on this machine (localhost, 127.0.0.1, ::1) may
  be used.
- **Request**: a chat completion with a fixed system and user prompt
  (:data:`SYSTEM_PROMPT`, :data:`USER_PROMPT`), temperature 0, asking for JSON
  ``{"relevance": n, "consistency": n}``, sent by the ``openai`` client
  (``openai.OpenAI(base_url=..., api_key=..., max_retries=..., timeout=...)``; the
  optional extra ``uprm-core[judge]``, imported only when a judge is made).
- **Parsing**: the first JSON object in the reply (code fences and prose around it are
  ignored), keys case-insensitive, numbers or numeric strings; a missing key or a value
  outside 1-10 is refused (not clamped: it means the judge did not follow the scale).
- **Retries**: the ``openai`` client retries HTTP 408, 409, 429 and 5xx, timeouts and
  connection errors ``max_retries`` times, waiting the server's ``Retry-After`` (up to
  60 s) or its own back-off (0.5 s doubling to 8 s, less up to 25 % jitter); when they
  are spent the record fails (:class:`~uprm.evaluation.errors.JudgeReplyError`) and the
  others go on. Other HTTP errors (401, 404, ...) stop at once with
  :class:`~uprm.evaluation.errors.JudgeError`. A reply out of format (not JSON, no
  verdict, a score outside 1-10) is asked again ``max_retries`` times after
  ``backoff``, ``2·backoff``, ... s (at most ``max_backoff``; tenacity), then the record
  fails.
- **Cache** of verdicts: a JSON-lines file keyed by the SHA-256 of the model name and
  the request's messages, so a rerun (or another run with the same answers) asks
  nothing twice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from uprm.evaluation.errors import JudgeError, JudgeReplyError

__all__ = ["SYSTEM_PROMPT", "USER_PROMPT", "JudgeConfig", "LLMJudge", "Verdict", "judge_answers", "make_judge",
           "parse_verdict"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SYSTEM_PROMPT = (
    "You are an impartial expert judge of explanations of threats in surveillance videos. You compare a model's "
    "explanation of the root cause of a threat with the reference cause written by a human annotator, and you "
    "answer with JSON only."
)
USER_PROMPT = """Question asked about the video: {question}

Reference cause (human annotation): {reference}

Model's answer: {answer}

Score the model's answer on two criteria, each an integer from 1 (worst) to 10 (best):
- relevance: how relevant the cause the model gives is to the threat described by the reference;
- consistency: how consistent the model's cause is with the reference's facts and clues (who did what, to whom, where, and why).
Reply with JSON only, exactly: {{"relevance": <1-10>, "consistency": <1-10>}}"""

_ENV = {"base_url": ("UPRM_JUDGE_BASE_URL", "OPENAI_BASE_URL"), "model": ("UPRM_JUDGE_MODEL", "OPENAI_MODEL"),
        "api_key": ("UPRM_JUDGE_API_KEY", "OPENAI_API_KEY")}
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_NO_KEY = "no-key"  # the openai client insists on a key; a local server without one ignores it
_RETRIED_STATUS = (408, 409, 429)  # and 5xx: what the openai client retries itself
INSTALL = 'pip install "uprm-core[judge]"'

log = logging.getLogger("uprm.evaluation")


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to ask. ``api_key`` is never shown in ``repr``."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    temperature: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> JudgeConfig:
        """The configuration from the environment (see the module docstring);
        ``overrides`` (``base_url``, ``model``, ``api_key``, ``timeout``...) win when not None.
        A :class:`JudgeError` when the model is not named or ``openai`` is not installed."""
        env = os.environ if environ is None else environ
        values = {k: next((env[n] for n in names if env.get(n)), None) for k, names in _ENV.items()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["base_url"] = values.get("base_url") or DEFAULT_BASE_URL
        if not values.get("model"):
            raise JudgeError("the LLM judge needs a model name: set UPRM_JUDGE_MODEL (or OPENAI_MODEL), "
                             "or pass --judge-model")
        if not _openai_installed():  # before a long evaluation, not after it
            raise JudgeError(f"the LLM judge needs the openai package: {INSTALL}")
        return cls(**values)

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class Verdict:
    """One judged attribution: ``relevance`` and ``consistency`` in [1, 10]."""

    relevance: float
    consistency: float
    cached: bool = False

    @property
    def score(self) -> float:
        return (self.relevance + self.consistency) / 2


class _OutOfFormat(Exception):
    """A reply without a usable verdict: worth asking again."""


_OBJECT = re.compile(r"\{[^{}]*\}", re.S)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*", value)
        return float(m.group(1)) if m else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def parse_verdict(text: str) -> Verdict:
    """The verdict in a judge's reply; ``ValueError`` naming the problem otherwise."""
    for match in _OBJECT.finditer(text or ""):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        lowered = {str(k).strip().lower(): v for k, v in data.items()}
        if "relevance" in lowered or "consistency" in lowered:
            break
    else:
        raise ValueError(f"no JSON object with relevance and consistency in the reply {text[:200]!r}")
    values = {k: _number(lowered.get(k)) for k in ("relevance", "consistency")}
    for key, value in values.items():
        if value is None or not 1 <= value <= 10:
            raise ValueError(f"{key} must be a number from 1 to 10, got {lowered.get(key)!r}")
    return Verdict(values["relevance"], values["consistency"])


def _openai_installed() -> bool:
    """Whether ``openai`` can be imported (looked up, not imported: that takes a second)."""
    if "openai" in sys.modules:
        return sys.modules["openai"] is not None
    try:
        return importlib.util.find_spec("openai") is not None
    except (ImportError, ValueError):
        return False


def _openai() -> Any:
    """The ``openai`` package, or a :class:`JudgeError` with the line that installs it."""
    try:
        import openai
    except ImportError as exc:
        raise JudgeError(f"the LLM judge needs the openai package: {INSTALL} ({exc})") from None
    return openai


class LLMJudge:
    """Scores attributions with an OpenAI-compatible chat endpoint.

    Args:
        config: the endpoint, model and key (:meth:`JudgeConfig.from_env`).
        cache: a JSON-lines file of verdicts (created), or ``None`` for none.
        sleep: how to wait before asking again after a reply out of format (tests pass
            one that records the waits); the ``openai`` client waits between its own
            HTTP retries.

    Raises:
        JudgeError: ``openai`` is not installed (the message has the install line), or
            ``UPRM_OFFLINE=1`` and the endpoint is not on this machine.
    """

    def __init__(self, config: JudgeConfig, cache: str | os.PathLike | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._openai = _openai()
        _check_offline(config.base_url)
        self.config = config
        self.cache_path = Path(cache) if cache is not None else None
        self.sleep = sleep
        self.requests = 0  # chat completions asked for (each may be retried by the openai client)
        self._cache = self._load_cache()
        self._client = self._openai.OpenAI(base_url=config.base_url, api_key=config.api_key or _NO_KEY,
                                           max_retries=config.max_retries, timeout=config.timeout)
        self._retrying = Retrying(
            stop=stop_after_attempt(config.max_retries + 1),
            wait=wait_exponential(multiplier=config.backoff, max=config.max_backoff),
            retry=retry_if_exception_type(_OutOfFormat), sleep=sleep, before_sleep=self._asking_again, reraise=True)

    def _load_cache(self) -> dict[str, Verdict]:
        out: dict[str, Verdict] = {}
        if self.cache_path is None or not self.cache_path.exists():
            return out
        for line in self.cache_path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
                out[item["key"]] = Verdict(float(item["relevance"]), float(item["consistency"]), cached=True)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line cut short by a kill
        return out

    def messages(self, question: str, answer: str, reference: str) -> list[dict[str, str]]:
        user = USER_PROMPT.format(question=question.strip(), reference=reference.strip(), answer=answer.strip())
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    def cache_key(self, messages: Sequence[Mapping[str, str]]) -> str:
        blob = json.dumps({"model": self.config.model, "messages": list(messages)}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def judge(self, question: str, answer: str, reference: str) -> Verdict:
        """The verdict on one attribution (from the cache when it is there)."""
        messages = self.messages(question, answer, reference)
        key = self.cache_key(messages)
        if key in self._cache:
            return self._cache[key]
        verdict = self._ask(messages)
        self._store(key, verdict)
        return verdict

    def _store(self, key: str, verdict: Verdict) -> None:
        self._cache[key] = Verdict(verdict.relevance, verdict.consistency, cached=True)
        if self.cache_path is None:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": key, "model": self.config.model, "relevance": verdict.relevance,
                           "consistency": verdict.consistency}) + "\n"
        with self.cache_path.open("a+b") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end and (fh.seek(end - 1), fh.read(1))[1] != b"\n":  # a line cut short by a kill: end it first
                line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()

    def _ask(self, messages: list[dict[str, str]]) -> Verdict:
        try:
            return self._retrying(self._attempt, messages)
        except _OutOfFormat as exc:
            raise JudgeReplyError(f"{self.config.url}: no usable verdict after {self.config.max_retries + 1} "
                                  f"attempts; last: {exc}") from None

    def _asking_again(self, state: RetryCallState) -> None:
        log.warning("LLM judge %s: %s; asking again in %.1f s", self.config.url,
                    state.outcome.exception() if state.outcome else "?", state.upcoming_sleep)

    def _attempt(self, messages: list[dict[str, str]]) -> Verdict:
        """One chat completion (HTTP retries inside the client) and its verdict;
        :class:`_OutOfFormat` when the reply has none."""
        openai = self._openai
        self.requests += 1
        try:
            completion = self._client.chat.completions.create(model=self.config.model, messages=messages,
                                                              temperature=self.config.temperature)
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except openai.APIConnectionError as exc:  # timeouts too, once the client's retries are spent
            raise JudgeReplyError(f"{self.config.url}: {type(exc).__name__} after {self.config.max_retries} "
                                  f"retries: {exc}") from None
        except (openai.APIResponseValidationError, ValueError) as exc:  # a body that is not JSON
            raise _OutOfFormat(f"a reply that is not JSON ({type(exc).__name__}: {exc})") from None
        except openai.OpenAIError as exc:
            raise JudgeError(f"{self.config.url}: {type(exc).__name__}: {exc}") from None
        try:
            content = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise _OutOfFormat(f"a reply without choices[0].message.content ({type(exc).__name__}: {exc})") from None
        try:
            return parse_verdict(content if isinstance(content, str) else "")
        except ValueError as exc:
            raise _OutOfFormat(str(exc)) from None

    def _status_error(self, exc: Any) -> JudgeError:
        """A 429 or 5xx left after the client's retries fails this record; other HTTP
        errors (a wrong key, URL or model) stop the run."""
        status = int(exc.status_code)
        detail = exc.response.text[:300] if exc.response is not None else str(exc)
        if status in _RETRIED_STATUS or status >= 500:
            return JudgeReplyError(f"{self.config.url}: HTTP {status} after {self.config.max_retries} retries "
                                   f"({detail})")
        return JudgeError(f"{self.config.url}: HTTP {status} ({detail}); check the base URL, model and API key")


def _check_offline(base_url: str) -> None:
    from uprm.offline import OFFLINE_ENV

    if os.environ.get(OFFLINE_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return
    host = urllib.parse.urlsplit(base_url).hostname or ""
    if host not in _LOCAL_HOSTS:
        raise JudgeError(f"{OFFLINE_ENV}=1: the LLM judge may only use a server on this machine, not {base_url}")


def make_judge(judge: Any, cache: str | os.PathLike | None = None) -> LLMJudge:
    """An :class:`LLMJudge` from ``True`` (configured from the environment), a
    :class:`JudgeConfig`, or an ``LLMJudge`` (returned as it is)."""
    if isinstance(judge, LLMJudge):
        return judge
    if isinstance(judge, JudgeConfig):
        return LLMJudge(judge, cache)
    if judge is True:
        return LLMJudge(JudgeConfig.from_env(), cache)
    raise TypeError(f"judge must be True, a JudgeConfig or an LLMJudge, not {type(judge).__name__}")


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def judge_answers(judge: LLMJudge, lines: Sequence[Mapping[str, Any]],
                  progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Judge the attribute lines of ``answers.jsonl`` (``question``, ``answer``,
    ``reference_cause``). Returns the summary (``score`` = mean of the records' GPT
    scores, ``relevance``, ``consistency``, ``judged``, ``failed``, ``cached``,
    ``model``) and one verdict dict per line (``id``, ``relevance``, ``consistency``,
    ``score``, or ``error``)."""
    from tqdm.auto import tqdm

    verdicts: list[dict[str, Any]] = []
    good: list[Verdict] = []
    for line in tqdm(lines, desc="judge", unit="answer", disable=not progress):
        try:
            v = judge.judge(str(line["question"]), str(line["answer"]), str(line.get("reference_cause", "")))
        except JudgeReplyError as exc:  # other JudgeErrors (a 401, a 404) stop the run
            verdicts.append({"id": line.get("id"), "error": str(exc)})
            continue
        good.append(v)
        verdicts.append({"id": line.get("id"), "relevance": v.relevance, "consistency": v.consistency,
                         "score": v.score})
    summary = {"score": _mean([v.score for v in good]), "relevance": _mean([v.relevance for v in good]),
               "consistency": _mean([v.consistency for v in good]), "judged": len(good),
               "failed": len(verdicts) - len(good), "cached": sum(v.cached for v in good),
               "model": judge.config.model, "base_url": judge.config.base_url}
    return summary, verdicts
