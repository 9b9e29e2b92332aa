"""The LLM judge (the paper's GPT score): the real ``openai`` client against a small
OpenAI-compatible server the test starts on 127.0.0.1 — its HTTP retries (a 429 with
Retry-After, a 500 then success, a server that keeps failing or cannot be reached),
re-asking replies out of format with tenacity's back-off, refusal of out-of-range
scores, the verdict cache (and its file format), configuration from the environment
only, the ``judge`` extra imported only when a judge is made, and `uprm eval --judge`
end to end. No test waits: the client's and the judge's sleeps are recorded instead."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import invoke


class FakeOpenAI:
    """POST /v1/chat/completions. ``queue`` holds scripted ``(status, body[, headers])``
    replies served first; after that, a valid verdict: relevance = 2 + (characters of
    the model's answer mod 7), consistency = relevance - 1 (so the test can predict it)."""

    def __init__(self):
        self.queue: list[tuple] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body,
                                      "retry": self.headers.get("x-stainless-retry-count")})
                status, reply, *headers = fake.queue.pop(0) if fake.queue else (200, fake.verdict(body))
                data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers[0] if headers else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @staticmethod
    def expected(answer: str) -> tuple[int, int]:
        relevance = 2 + len(answer.strip()) % 7
        return relevance, relevance - 1

    @classmethod
    def verdict(cls, body: dict) -> dict:
        answer = re.search(r"Model's answer: (.*?)\n\nScore", body["messages"][1]["content"], re.S).group(1)
        r, c = cls.expected(answer)
        return chat(f'```json\n{{"relevance": {r}, "consistency": {c}}}\n```')

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def chat(content: str) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
                                                                                        "content": content}}]}


@pytest.fixture
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def client_sleeps(monkeypatch) -> list[float]:
    """The seconds the openai client waits between its HTTP retries, recorded instead of
    slept (its retry loop calls ``time.sleep`` of its ``_base_client`` module)."""
    import openai._base_client

    sleeps: list[float] = []

    class Clock:
        sleep = staticmethod(sleeps.append)

        def __getattr__(self, name):
            return getattr(time, name)

    monkeypatch.setattr(openai._base_client, "time", Clock())
    return sleeps


@pytest.fixture
def config(server):
    from uprm.evaluation.judge import JudgeConfig

    return JudgeConfig(base_url=server.base_url, model="judge-test", api_key="sk-test", max_retries=2, backoff=0.01)


def test_a_429_with_retry_after_and_a_500_are_retried_by_the_openai_client(server, config, client_sleeps):
    from uprm.evaluation.judge import LLMJudge

    waits = []
    server.queue = [(429, {"error": "slow down"}, {"Retry-After": "7"}), (500, {"error": "overloaded"})]
    judge = LLMJudge(config, sleep=waits.append)
    verdict = judge.judge("Why?", "a man hits another man", "a fight")
    assert (verdict.relevance, verdict.consistency) == FakeOpenAI.expected("a man hits another man")
    assert [r["retry"] for r in server.requests] == ["0", "1", "2"]  # one chat completion, retried twice
    assert client_sleeps[0] == 7.0 and 0 < client_sleeps[1] <= 8  # the server's Retry-After, then its back-off
    assert waits == [] and judge.requests == 1  # nothing was asked again
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "judge-test" and request["body"]["temperature"] == 0
    assert "a fight" in request["body"]["messages"][1]["content"]


def test_a_server_that_keeps_failing_fails_the_record_and_the_others_go_on(server, config, client_sleeps):
    from uprm.evaluation.judge import LLMJudge, judge_answers

    server.queue = [(503, {"error": "down"})] * 3  # the first try and max_retries=2 retries
    lines = [{"id": 1, "question": "Why?", "answer": "a punch"}, {"id": 2, "question": "Why?", "answer": "a fight"}]
    summary, verdicts = judge_answers(LLMJudge(config, sleep=lambda s: pytest.fail("no re-ask")), lines)
    assert re.search(r"HTTP 503 after 2 retries", verdicts[0]["error"]) and verdicts[1]["relevance"]
    assert summary["failed"] == 1 and summary["judged"] == 1 and len(server.requests) == 4
    assert len(client_sleeps) == 2


def test_an_unreachable_server_fails_the_record_after_the_clients_retries(config, port_closed, client_sleeps):
    from uprm.evaluation import JudgeReplyError
    from uprm.evaluation.judge import LLMJudge

    judge = LLMJudge(type(config)(**{**config.__dict__, "base_url": f"http://127.0.0.1:{port_closed}/v1"}))
    with pytest.raises(JudgeReplyError, match="APIConnectionError after 2 retries"):
        judge.judge("Why?", "x", "y")
    assert len(client_sleeps) == 2


@pytest.fixture
def port_closed() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replies_out_of_format_are_asked_again_with_backoff_then_reported(server, config, client_sleeps):
    from uprm.evaluation import JudgeReplyError
    from uprm.evaluation.judge import LLMJudge

    waits = []
    judge = LLMJudge(config, sleep=waits.append)
    server.queue = [(200, "not json at all"), (200, chat('{"relevance": 11, "consistency": 5}'))]
    assert judge.judge("Why?", "x", "y").relevance == FakeOpenAI.expected("x")[0]  # third attempt
    assert waits == [0.01, 0.02] and len(server.requests) == 3  # backoff, 2 x backoff
    server.queue = [(200, {"id": "no choices"}), (200, chat("I think it is good.")), (200, chat("Good."))]
    with pytest.raises(JudgeReplyError, match=r"no usable verdict after 3 attempts; last: no JSON object"):
        judge.judge("Why?", "another answer", "y")
    assert waits == [0.01, 0.02, 0.01, 0.02] and client_sleeps == []  # the client retried nothing


def test_the_reask_backoff_is_capped(server, config):
    from uprm.evaluation.judge import LLMJudge

    waits = []
    capped = type(config)(**{**config.__dict__, "max_retries": 5, "backoff": 1.0, "max_backoff": 3.0})
    server.queue = [(200, chat("{}"))] * 5
    assert LLMJudge(capped, sleep=waits.append).judge("Why?", "x", "y").score > 0  # the sixth attempt
    assert waits == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_a_client_error_stops_at_once(server, config, client_sleeps):
    from uprm.evaluation import JudgeError, JudgeReplyError
    from uprm.evaluation.judge import LLMJudge, judge_answers

    server.queue = [(401, {"error": "bad key"})]
    with pytest.raises(JudgeError, match=r"HTTP 401 \(\{\"error\": \"bad key\"\}\); check the base URL") as info:
        judge_answers(LLMJudge(config, sleep=lambda s: None), [{"question": "q", "answer": "a"}])
    assert not isinstance(info.value, JudgeReplyError) and len(server.requests) == 1 and client_sleeps == []


def test_a_local_server_needs_no_key(server, config):
    from uprm.evaluation.judge import LLMJudge

    keyless = type(config)(**{**config.__dict__, "api_key": None})
    assert LLMJudge(keyless).judge("Why?", "x", "y").score > 0
    assert server.requests[0]["auth"] == "Bearer no-key"  # a placeholder: the openai client insists on one


def test_verdicts_are_cached_across_runs(server, config, tmp_path):
    from uprm.evaluation.judge import LLMJudge, judge_answers

    lines = [{"id": i, "question": "Why?", "answer": a, "reference_cause": "a fight"}
             for i, a in enumerate(["a punch", "two people fighting in a car park", "nothing"])]
    server.queue = [(200, chat("{}"))] * 3  # the first answer never gets a verdict
    summary, verdicts = judge_answers(LLMJudge(config, tmp_path / "cache.jsonl", sleep=lambda s: None), lines)
    assert summary["judged"] == 2 and summary["failed"] == 1 and "error" in verdicts[0]
    want = [FakeOpenAI.expected(a) for a in ("two people fighting in a car park", "nothing")]
    assert summary["score"] == pytest.approx(sum(r + c for r, c in want) / 4)
    sent = len(server.requests)
    again = LLMJudge(config, tmp_path / "cache.jsonl")
    summary2, verdicts2 = judge_answers(again, lines)
    assert len(server.requests) == sent + 1  # only the answer that failed is asked again
    assert summary2["cached"] == 2 and summary2["judged"] == 3 and verdicts2[1:] == verdicts[1:]
    other = LLMJudge(type(config)(**{**config.__dict__, "model": "other-judge"}), tmp_path / "cache.jsonl")
    judge_answers(other, lines[1:])
    assert len(server.requests) == sent + 3  # the cache key holds the model


def test_a_cache_file_of_earlier_versions_is_read(server, config, tmp_path):
    """The cache format: one JSON line per verdict, keyed by the SHA-256 of
    ``{"messages": [...], "model": ...}`` (sorted keys, UTF-8), as earlier versions wrote it."""
    from uprm.evaluation.judge import SYSTEM_PROMPT, USER_PROMPT, LLMJudge

    user = USER_PROMPT.format(question="Why?", reference="a fight", answer="a punch")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    blob = json.dumps({"model": "judge-test", "messages": messages}, sort_keys=True, ensure_ascii=False)
    key = hashlib.sha256(blob.encode("utf-8")).hexdigest()
    cache = tmp_path / "judge_cache.jsonl"
    cache.write_text(json.dumps({"key": key, "model": "judge-test", "relevance": 9.0, "consistency": 4.0}) + "\n"
                     + '{"key": "cut sho')  # a line cut short by a kill is skipped
    judge = LLMJudge(config, cache)
    verdict = judge.judge(" Why? ", "a punch", "a fight")
    assert (verdict.relevance, verdict.consistency, verdict.cached) == (9.0, 4.0, True) and server.requests == []
    judge.judge("Why?", "two people", "a fight")  # appended after the cut line, on a line of its own
    line = json.loads(cache.read_text().splitlines()[-1])
    assert line == {"key": line["key"], "model": "judge-test", "relevance": line["relevance"],
                    "consistency": line["consistency"]} and len(line["key"]) == 64
    again = LLMJudge(config, cache)
    assert again.judge("Why?", "two people", "a fight").cached and len(server.requests) == 1


def test_openai_is_imported_only_when_a_judge_is_made(tmp_path):
    """``uprm.evaluation`` and ``uprm.evaluation.judge`` import without openai; asking for
    a judge without it (from the environment, as ``uprm eval --judge`` does before the
    model runs, or making one) stops at once with the install line (openai hidden)."""
    script = textwrap.dedent("""
        import sys
        sys.modules["openai"] = None  # as if the judge extra were not installed
        import uprm.evaluation, uprm.evaluation.judge
        from uprm.evaluation import JudgeError, JudgeConfig, LLMJudge
        from uprm.evaluation.judge import make_judge
        env = {"UPRM_JUDGE_MODEL": "m", "UPRM_JUDGE_BASE_URL": "http://127.0.0.1:9/v1"}
        config = JudgeConfig(base_url="http://127.0.0.1:9/v1", model="m")
        for make in (lambda: JudgeConfig.from_env(env), lambda: LLMJudge(config), lambda: make_judge(config)):
            try:
                make()
            except JudgeError as exc:
                print("refused:", exc)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3 and all('the LLM judge needs the openai package: pip install "uprm-core[judge]"' in x
                                   for x in lines)


@pytest.mark.parametrize(("reply", "want"), [
    ('{"relevance": 7, "consistency": 6}', (7, 6)),
    ('Sure!\n```json\n{"Relevance": "8", "Consistency": "9/10"}\n```', (8, 9)),
    ('{"relevance": 7.5, "consistency": 10}', (7.5, 10)),
])
def test_parse_verdict(reply, want):
    from uprm.evaluation.judge import parse_verdict

    v = parse_verdict(reply)
    assert (v.relevance, v.consistency) == want


@pytest.mark.parametrize("reply", ['{"relevance": 0, "consistency": 5}', '{"relevance": 7}', "7 and 8",
                                   '{"relevance": true, "consistency": 5}', '{"relevance": "high", "consistency": 5}'])
def test_parse_verdict_refuses(reply):
    from uprm.evaluation.judge import parse_verdict

    with pytest.raises(ValueError):
        parse_verdict(reply)


def test_configuration_comes_from_the_environment_only(monkeypatch):
    from uprm.evaluation import JudgeError
    from uprm.evaluation.judge import JudgeConfig, LLMJudge

    env = {"OPENAI_API_KEY": "sk-openai", "OPENAI_MODEL": "gpt-x", "UPRM_JUDGE_MODEL": "judge-y"}
    config = JudgeConfig.from_env(env)
    assert (config.base_url, config.model, config.api_key) == ("https://api.openai.com/v1", "judge-y", "sk-openai")
    assert "sk-openai" not in repr(config)
    with pytest.raises(JudgeError, match="UPRM_JUDGE_MODEL"):
        JudgeConfig.from_env({})
    monkeypatch.setenv("UPRM_OFFLINE", "1")
    with pytest.raises(JudgeError, match="only use a server on this machine"):
        LLMJudge(config)


def test_uprm_eval_judge_end_to_end(server, eval_run, checkpoint, test_json, cache, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(eval_run, run)  # its answers are reused: only the judge runs
    env = {"UPRM_JUDGE_BASE_URL": server.base_url, "UPRM_JUDGE_MODEL": "judge-test", "UPRM_JUDGE_API_KEY": "sk-env"}
    args = ["eval", "--checkpoint", checkpoint, "--data", test_json, "--cache", cache, "--out", run, "--judge",
            "--quiet", "--format", "json"]
    out = invoke(*args, env=env).output
    report = json.loads(out[out.index("{"):out.rindex("}") + 1])
    answers = [json.loads(x) for x in (run / "answers.jsonl").read_text().splitlines()]
    attributed = [a for a in answers if a["task"] == "attribute"]
    want = [sum(FakeOpenAI.expected(a["answer"])) / 2 for a in attributed]
    assert report["gpt"] == pytest.approx(sum(want) / len(want))
    assert report["gpt_judge"]["judged"] == len(attributed) and report["gpt_judge"]["model"] == "judge-test"
    distinct = len({(a["answer"], a["reference_cause"]) for a in attributed})  # the same answer is asked once
    assert {r["auth"] for r in server.requests} == {"Bearer sk-env"} and len(server.requests) == distinct
    verdicts = [json.loads(x) for x in (run / "judge.jsonl").read_text().splitlines()]
    assert [v["id"] for v in verdicts] == [a["id"] for a in attributed]
    assert "| GPT |" in (run / "report.md").read_text()
    again = json.loads((lambda o: o[o.index("{"):o.rindex("}") + 1])(invoke(*args, env=env).output))
    assert len(server.requests) == distinct and again["gpt"] == report["gpt"]  # all from the cache
    assert again["gpt_judge"]["cached"] == len(attributed)
