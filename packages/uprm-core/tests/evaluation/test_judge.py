"""The LLM judge (the paper's GPT score) against a small OpenAI-compatible server the
test starts on 127.0.0.1: retries on 500 and on malformed replies, refusal of
out-of-range scores, the verdict cache, configuration from the environment only, and
`uprm eval --judge` end to end."""

from __future__ import annotations

import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import invoke


class FakeOpenAI:
    """POST /v1/chat/completions. ``queue`` holds scripted ``(status, body)`` replies
    served first; after that, a valid verdict: relevance = 2 + (characters of the
    model's answer mod 7), consistency = relevance - 1 (so the test can predict it)."""

    def __init__(self):
        self.queue: list[tuple[int, object]] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, reply = fake.queue.pop(0) if fake.queue else (200, fake.verdict(body))
                data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
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


@pytest.fixture
def config(server):
    from uprm.evaluation.judge import JudgeConfig

    return JudgeConfig(base_url=server.base_url, model="judge-test", api_key="sk-test", max_retries=2, backoff=0.01)


def test_a_500_then_success_is_retried_with_backoff(server, config):
    from uprm.evaluation.judge import LLMJudge

    waits = []
    server.queue = [(500, {"error": "overloaded"}), (429, {"error": "slow down"})]
    verdict = LLMJudge(config, sleep=waits.append).judge("Why?", "a man hits another man", "a fight")
    assert (verdict.relevance, verdict.consistency) == FakeOpenAI.expected("a man hits another man")
    assert len(server.requests) == 3 and waits == [0.01, 0.02]  # exponential backoff
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "judge-test" and request["body"]["temperature"] == 0
    assert "a fight" in request["body"]["messages"][1]["content"]


def test_malformed_and_out_of_range_replies_are_retried_then_reported(server, config):
    from uprm.evaluation import JudgeReplyError
    from uprm.evaluation.judge import LLMJudge

    judge = LLMJudge(config, sleep=lambda s: None)
    server.queue = [(200, "not json at all"), (200, chat('{"relevance": 11, "consistency": 5}'))]
    assert judge.judge("Why?", "x", "y").relevance == FakeOpenAI.expected("x")[0]  # third attempt
    server.queue = [(200, chat("I think it is good."))] * 3
    with pytest.raises(JudgeReplyError, match=r"no usable verdict after 3 attempts; last: no JSON object"):
        judge.judge("Why?", "another answer", "y")


def test_a_client_error_stops_at_once(server, config):
    from uprm.evaluation import JudgeError, JudgeReplyError
    from uprm.evaluation.judge import LLMJudge, judge_answers

    server.queue = [(401, {"error": "bad key"})]
    with pytest.raises(JudgeError, match="HTTP 401") as info:
        judge_answers(LLMJudge(config, sleep=lambda s: None), [{"question": "q", "answer": "a"}])
    assert not isinstance(info.value, JudgeReplyError) and len(server.requests) == 1


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
