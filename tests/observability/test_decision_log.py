"""The decision log: one whole JSON line per request, no prompt text unless sampled (redacted),
size rotation, one file per worker."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from gateway.cli import build_parser
from gateway.decision_log import DecisionLog, RotatingFileSink, prompt_text, redacted_sample, worker_path
from gateway.settings import Settings
from tests.gateway.conftest import make_policy
from tests.gateway.fakes import MockUpstream
from tests.observability.conftest import gateway_client

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {
    "request_id", "time", "route", "backend", "reason", "confidence", "status", "error", "stream",
    "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "usage_estimated",
    "cost_usd", "baseline_cost_usd", "latency_ms", "upstream_ms", "ttft_ms", "decision_ms",
    "fallbacks", "policy_version", "api_key_id", "prompt_sha256",
}  # fmt: skip
SECRET_PROMPT = "prove it for jane.roe@example.org, card 4111-1111-1111-1111"


def chat(text: str) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}]}


async def test_one_line_per_request_with_every_field_and_no_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_BIG_KEY", "sk-test")
    log = tmp_path / "decisions.jsonl"
    upstream = MockUpstream(failures={"m-big": 503})
    async with gateway_client(
        make_policy(), upstream.handler, CollectorRegistry(), Settings(decision_log=str(log))
    ) as client:
        r = await client.post("/v1/chat/completions", json=chat(SECRET_PROMPT))
        bad = await client.post("/v1/chat/completions", json={**chat("x"), "model": "nope"})
    assert (r.status_code, bad.status_code) == (200, 404)
    text = log.read_text()
    assert "jane.roe" not in text and "4111" not in text
    ok, refused = (json.loads(line) for line in text.splitlines())
    assert set(ok) == FIELDS
    assert ok["request_id"] == r.headers["x-request-id"]
    assert ok["time"].endswith("+00:00")
    assert (ok["route"], ok["backend"], ok["reason"], ok["status"]) == (
        "frontier",
        "big-b",
        "classifier",
        200,
    )
    assert ok["confidence"] == 0.9
    assert ok["fallbacks"] == [{"backend": "big-a", "cause": "status_5xx", "status": 503}]
    assert ok["policy_version"] == r.headers["x-gateway-policy-version"]
    assert (ok["prompt_tokens"], ok["completion_tokens"]) == (10, 5)
    assert ok["cost_usd"] == pytest.approx((10 * 10 + 5 * 30) / 1e6)
    assert ok["latency_ms"] >= ok["ttft_ms"] > 0
    assert ok["api_key_id"] is None
    messages = chat(SECRET_PROMPT)["messages"]
    assert ok["prompt_sha256"] == hashlib.sha256(orjson.dumps(messages)).hexdigest()
    assert (refused["status"], refused["route"], refused["backend"]) == (404, "none", "none")


async def test_sampled_prompt_is_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BIG_KEY", "sk-test")
    log = tmp_path / "decisions.jsonl"
    settings = Settings(decision_log=str(log), decision_log_sample_rate=1.0)
    async with gateway_client(make_policy(), MockUpstream().handler, CollectorRegistry(), settings) as client:
        await client.post("/v1/chat/completions", json=chat(SECRET_PROMPT))
    (line,) = (json.loads(x) for x in log.read_text().splitlines())
    assert line["prompt_redacted"] == "user: prove it for [EMAIL], card [CARD]"


class ListSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write_line(self, line: bytes) -> None:
        self.lines.append(line)

    def close(self) -> None:
        return None


def test_sample_rate_is_honoured() -> None:
    log = DecisionLog(ListSink(), sample_rate=0.25, rng=random.Random(1))
    sampled = sum(log.prompt_fields("hello")[1] is not None for _ in range(4000))
    assert 850 < sampled < 1150
    never = DecisionLog(ListSink())
    assert all(never.prompt_fields("hello")[1] is None for _ in range(100))
    with pytest.raises(ValueError, match="between 0 and 1"):
        DecisionLog(ListSink(), sample_rate=1.5)


def test_prompt_text_of_messages_and_content_parts() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {}}],
        },
    ]
    assert prompt_text(messages) == "system: be brief\nuser: look"
    assert prompt_text(["a", "b"]) == "a\nb"
    assert prompt_text("plain") == "plain"


def test_sample_is_cut_and_a_secret_cut_at_the_window_cannot_leak() -> None:
    long = "x " * 20_000 + "4111 1111 1111 1111"
    out = redacted_sample(long)
    assert len(out) == 1000
    assert "4111" not in out


def test_rotation_keeps_whole_lines_and_the_configured_backups(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    sink = RotatingFileSink(path, max_bytes=1000, backups=2)
    for i in range(100):
        sink.write_line(orjson.dumps({"i": i, "pad": "p" * 80}) + b"\n")
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["d.jsonl", "d.jsonl.1", "d.jsonl.2"]
    seen = []
    for f in files:
        assert f.stat().st_size <= 1000
        seen += [json.loads(line)["i"] for line in f.read_text().splitlines()]
    assert sorted(seen) == list(range(min(seen), 100))  # the newest lines, none lost or cut


def test_rotation_without_backups_starts_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    sink = RotatingFileSink(path, max_bytes=300, backups=0)
    for i in range(10):
        sink.write_line(orjson.dumps({"i": i, "pad": "p" * 80}) + b"\n")
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["d.jsonl"]
    assert path.stat().st_size <= 300


def test_each_worker_writes_its_own_file(tmp_path: Path) -> None:
    assert worker_path(Path("/l/decisions.jsonl"), 42) == Path("/l/decisions.42.jsonl")
    assert worker_path(Path("/l/decisions"), 42) == Path("/l/decisions.42")
    log = DecisionLog.open(str(tmp_path / "decisions.jsonl"), workers=2)
    assert log is not None
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == [f"decisions.{os.getpid()}.jsonl"]
    assert DecisionLog.open("off") is None


def test_stdout_lines_from_several_processes_stay_whole(tmp_path: Path) -> None:
    """Four processes share one stdout (O_APPEND file), as uvicorn workers do."""
    code = (
        "import orjson, sys\n"
        "from gateway.decision_log import FdSink\n"
        "sink = FdSink()\n"
        "for i in range(300):\n"
        "    sink.write_line(orjson.dumps({'w': sys.argv[1], 'i': i, 'pad': 'z' * 900}) + b'\\n')\n"
    )
    out = tmp_path / "stdout.jsonl"
    with out.open("ab") as f:
        procs = [subprocess.Popen([sys.executable, "-c", code, str(w)], stdout=f, cwd=ROOT) for w in range(4)]
        assert all(p.wait(timeout=60) == 0 for p in procs)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1200
    for w in range(4):
        assert [x["i"] for x in lines if x["w"] == str(w)] == list(range(300))


def test_settings_and_flags() -> None:
    args = build_parser().parse_args(
        ["serve", "--decision-log", "d.jsonl", "--decision-log-max-mb", "5", "--decision-log-backups", "2",
         "--decision-log-sample-rate", "0.01"]
    )  # fmt: skip
    assert (args.decision_log_max_mb, args.decision_log_backups, args.decision_log_sample_rate) == (
        5,
        2,
        0.01,
    )
    env = {"GATEWAY_DECISION_LOG_MAX_MB": "5", "GATEWAY_DECISION_LOG_SAMPLE_RATE": "0.01"}
    settings = Settings.from_env(env)
    assert (settings.decision_log_max_mb, settings.decision_log_sample_rate) == (5, 0.01)
    with pytest.raises(ValidationError):
        Settings.from_env({"GATEWAY_DECISION_LOG_SAMPLE_RATE": "2"})
