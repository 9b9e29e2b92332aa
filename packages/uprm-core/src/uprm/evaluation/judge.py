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
- **Request**: ``POST {base_url}/chat/completions`` with a fixed system and user prompt
  (:data:`SYSTEM_PROMPT`, :data:`USER_PROMPT`), temperature 0, asking for JSON
  ``{"relevance": n, "consistency": n}`` (stdlib ``urllib``: no extra dependency).
- **Parsing**: the first JSON object in the reply (code fences and prose around it are
  ignored), keys case-insensitive, numbers or numeric strings; a missing key or a value
  outside 1-10 is refused (not clamped: it means the judge did not follow the scale).
- **Retries** with exponential backoff (``backoff × 2^attempt``, at most
  ``max_backoff`` s, or the server's ``Retry-After``) on HTTP 429 and 5xx, timeouts,
  connection errors and replies out of format; other HTTP errors (401, 404, ...) stop at
  once with :class:`~uprm.evaluation.errors.JudgeError`. A record whose attempts all
  fail is reported as failed and the others go on.
- **Cache** of verdicts: a JSON-lines file keyed by the SHA-256 of the model name and
  the request's messages, so a rerun (or another run with the same answers) asks
  nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        ``overrides`` (``base_url``, ``model``, ``api_key``, ``timeout``...) win when not None."""
        env = os.environ if environ is None else environ
        values = {k: next((env[n] for n in names if env.get(n)), None) for k, names in _ENV.items()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["base_url"] = values.get("base_url") or DEFAULT_BASE_URL
        if not values.get("model"):
            raise JudgeError("the LLM judge needs a model name: set UPRM_JUDGE_MODEL (or OPENAI_MODEL), "
                             "or pass --judge-model")
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


class _Retry(Exception):
    """A failure worth another attempt (429, 5xx, timeout, reply out of format)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers is not None and headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None


class LLMJudge:
    """Scores attributions with an OpenAI-compatible chat endpoint.

    Args:
        config: the endpoint, model and key (:meth:`JudgeConfig.from_env`).
        cache: a JSON-lines file of verdicts (created), or ``None`` for none.
        sleep: how to wait between attempts (tests pass a no-op).
    """

    def __init__(self, config: JudgeConfig, cache: str | os.PathLike | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.cache_path = Path(cache) if cache is not None else None
        self.sleep = sleep
        self.requests = 0  # HTTP requests sent (for reports and tests)
        self._cache = self._load_cache()
        _check_offline(config.base_url)

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
                           "consistency": verdict.consistency})
        with self.cache_path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()

    def _ask(self, messages: list[dict[str, str]]) -> Verdict:
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(messages)
            except _Retry as exc:
                if attempt + 1 == attempts:
                    raise JudgeReplyError(f"{self.config.url}: no usable verdict after {attempts} attempts; "
                                     f"last: {exc}") from None
                delay = exc.retry_after if exc.retry_after is not None else self.config.backoff * 2**attempt
                self.sleep(min(delay, self.config.max_backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, messages: list[dict[str, str]]) -> Verdict:
        reply = self._post({"model": self.config.model, "messages": messages,
                            "temperature": self.config.temperature})
        try:
            content = reply["choices"][0]["message"]["content"]
            return parse_verdict(content)
        except (KeyError, IndexError, TypeError) as exc:
            raise _Retry(f"a reply without choices[0].message.content ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            raise _Retry(str(exc)) from None

    def _post(self, payload: Mapping[str, Any]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(self.config.url, data=json.dumps(payload).encode("utf-8"), headers=headers,
                                         method="POST")
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            if exc.code == 429 or exc.code >= 500:
                raise _Retry(f"HTTP {exc.code}: {detail}", _retry_after(exc.headers)) from None
            raise JudgeError(f"{self.config.url}: HTTP {exc.code} ({detail}); check the base URL, model and "
                             "API key") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retry(f"a reply that is not JSON: {body[:200]!r}") from None


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
