"""Request handling: (method, path, body) -> Reply. No sockets; the server plays the reply."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import orjson

from gateway.simulator.answers import Tokens, content_text, last_user_text
from gateway.simulator.faults import FaultKind, FaultSpec, SimulatorConfigError, choose_fault
from gateway.simulator.profiles import ModelProfile
from gateway.simulator.replies import (
    End,
    Reply,
    apply_timing_fault,
    body_reply,
    coalesce,
    error_reply,
    malformed_json_reply,
    malformed_sse_reply,
    stream_reply,
)
from gateway.simulator.settings import SimulatorSettings, apply_config
from gateway.simulator.stats import SimStats

_STATUS_FAULTS = {
    FaultKind.STATUS_500: (
        500,
        "The server had an error while processing your request.",
        "server_error",
        None,
    ),
    FaultKind.STATUS_502: (502, "Bad gateway.", "server_error", None),
    FaultKind.STATUS_503: (
        503,
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
    ),
    FaultKind.STATUS_429: (
        429,
        "Rate limit reached for requests. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
}
_TIMING_FAULTS = frozenset(
    {FaultKind.SLOW_FIRST_BYTE, FaultKind.STALL_MID_STREAM, FaultKind.RESET_MID_STREAM}
)
_CHAT_PATHS = frozenset({b"/v1/chat/completions", b"/chat/completions"})
_COMPLETION_PATHS = frozenset({b"/v1/completions", b"/completions"})


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class SimulatorApp:
    """Routes requests; owns the settings (swapped whole on reconfiguration), counters and RNG."""

    def __init__(self, settings: SimulatorSettings, tokens: Tokens) -> None:
        self.settings = settings
        self.tokens = tokens
        self.stats = SimStats()
        self._rng = random.Random(settings.seed)
        self._seq = 0
        self._id_prefix = os.urandom(3).hex()

    def configure(self, obj: object) -> SimulatorSettings:
        new = apply_config(self.settings, obj)
        if new.seed != self.settings.seed:
            self._rng = random.Random(new.seed)
        self.settings = new
        return new

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, method: bytes, url: bytes, body: bytes, keep: bool) -> Reply:
        self.stats.requests_total += 1
        q = url.find(b"?")
        path = url[:q] if q >= 0 else url
        if path in _CHAT_PATHS or path in _COMPLETION_PATHS:
            if method != b"POST":
                return self._client_error(405, f"use POST for {path.decode()}", keep)
            try:
                return self._completion(body, keep, legacy=path in _COMPLETION_PATHS)
            except BadRequest as exc:
                return self._client_error(400, str(exc), keep, exc.param, exc.code)
        if path in (b"/v1/models", b"/models"):
            self.stats.requests_by_endpoint["models"] += 1
            data = [
                {"id": name, "object": "model", "created": 1_735_689_600, "owned_by": "simulator"}
                for name in self.settings.profiles
            ]
            return body_reply(200, orjson.dumps({"object": "list", "data": data}), keep)
        if path in (b"/health", b"/healthz", b"/readyz", b"/"):
            self.stats.requests_by_endpoint["health"] += 1
            return body_reply(200, b'{"status":"ok"}', keep)
        if path.startswith(b"/__sim/"):
            return self._control(method, path, body, keep)
        return self._client_error(404, f"no route for {method.decode()} {path.decode('latin-1')}", keep)

    def _client_error(
        self, status: int, message: str, keep: bool, param: str | None = None, code: str | None = None
    ) -> Reply:
        self.stats.errors_4xx += 1
        return error_reply(status, message, "invalid_request_error", keep, code=code, param=param)

    def _control(self, method: bytes, path: bytes, body: bytes, keep: bool) -> Reply:
        self.stats.requests_by_endpoint["control"] += 1
        if path == b"/__sim/stats" and method == b"GET":
            return body_reply(200, orjson.dumps(self.stats.to_json()), keep)
        if path == b"/__sim/reset" and method == b"POST":
            self.stats.reset()
            return body_reply(200, b'{"ok":true}', keep)
        if path == b"/__sim/config":
            if method == b"POST":
                try:
                    self.configure(orjson.loads(body or b"{}"))
                except (orjson.JSONDecodeError, SimulatorConfigError) as exc:
                    return self._client_error(400, f"bad simulator config: {exc}", keep)
            return body_reply(200, orjson.dumps(self.settings.to_json()), keep)
        return self._client_error(404, f"no control route {method.decode()} {path.decode('latin-1')}", keep)

    # -- completions ------------------------------------------------------------------------
    def _completion(self, body: bytes, keep: bool, legacy: bool) -> Reply:
        try:
            req = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        if not isinstance(req, dict):
            raise BadRequest("the body must be a JSON object")
        model = req.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter", "model")
        if legacy:
            prompt_tokens, question = self._legacy_prompt(req.get("prompt"))
        else:
            messages = req.get("messages")
            if not isinstance(messages, list) or not messages:
                raise BadRequest("'messages' must be a non-empty array", "messages")
            prompt_tokens = self.tokens.chat_prompt_tokens(messages)
            question = last_user_text(messages)
        max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise BadRequest("max_tokens must be an integer >= 1", "max_tokens")
        stream = req.get("stream") is True
        options = req.get("stream_options")
        include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True

        settings = self.settings
        profile = settings.profile_for(model)
        if prompt_tokens > profile.context_tokens:
            raise BadRequest(
                f"This model's maximum context length is {profile.context_tokens} tokens. However, your "
                f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
                "messages",
                "context_length_exceeded",
            )
        stats = self.stats
        stats.requests_by_model[model] += 1
        stats.requests_by_endpoint[("completions" if legacy else "chat") + ("_stream" if stream else "")] += 1
        stats.prompt_tokens_total += prompt_tokens
        faults = settings.faults_for(model)
        fault = choose_fault(faults, self._rng.random()) if faults else None
        if fault is not None:
            stats.faults_injected[fault.kind.value] += 1
            early = self._early_fault(fault, keep, model, stream, profile)
            if early is not None:
                return early
        natural = settings.max_tokens_default
        n = natural if max_tokens is None else min(max_tokens, natural)
        finish = "length" if max_tokens is not None and max_tokens < natural else "stop"
        answer = self.tokens.answer(model, profile.description, question, settings.seed, natural)
        stats.completion_tokens_total += n
        self._seq += 1
        cid = ("cmpl-" if legacy else "chatcmpl-") + f"sim{self._id_prefix}{self._seq:012x}"
        created = int(time.time())
        ttft = profile.ttft_ms / 1000.0
        step = 1.0 / profile.tokens_per_second if profile.tokens_per_second > 0 else 0.0
        usage = _usage(prompt_tokens, n)
        if stream:
            events = (_legacy_events if legacy else _chat_events)(
                cid,
                created,
                model,
                answer.pieces_json[:n],
                finish=finish,
                usage=usage if include_usage else None,
            )
            lead = [] if legacy else [0.0]  # the chat role event goes out with the first token
            delays = [ttft, *lead] + [step] * (n - 1)
            delays += [0.0] * (len(events) - len(delays))
            reply = stream_reply(events, delays, keep, model)
        else:
            text = answer.text(n)
            if legacy:
                payload: dict[str, Any] = {
                    "id": cid,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_sim",
                    "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                }
            else:
                payload = {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": text,
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_sim",
                }
            reply = body_reply(200, orjson.dumps(payload), keep, delay_s=ttft + step * (n - 1), model=model)
        if fault is not None and fault.kind in _TIMING_FAULTS:
            reply = apply_timing_fault(reply, fault, stream)
        return reply if reply.end is End.ABORT or len(reply.segments) == 1 else coalesce(reply)

    def _early_fault(
        self, fault: FaultSpec, keep: bool, model: str, stream: bool, profile: ModelProfile
    ) -> Reply | None:
        """Faults that replace the answer; None for the ones that reshape a healthy reply."""
        status = _STATUS_FAULTS.get(fault.kind)
        if status is not None:
            code, message, err_type, err_code = status
            return error_reply(code, message, err_type, keep, code=err_code, model=model)
        if fault.kind is FaultKind.RESET_BEFORE_RESPONSE:
            return Reply((), End.CLOSE, 0, model)
        if fault.kind in (FaultKind.MALFORMED_JSON, FaultKind.MALFORMED_SSE):
            delay = profile.ttft_ms / 1000.0
            if stream:
                first = _chat_events(
                    "chatcmpl-broken", int(time.time()), model, (), finish="stop", usage=None
                )[0]
                return malformed_sse_reply(first, keep, delay, model)
            return malformed_json_reply(keep, delay, model)
        return None

    def _legacy_prompt(self, prompt: object) -> tuple[int, str]:
        if isinstance(prompt, str):
            return self.tokens.count(prompt), prompt
        if isinstance(prompt, list) and prompt:
            if all(isinstance(p, int) for p in prompt):
                return len(prompt), ""
            texts = [content_text(p) for p in prompt]
            return sum(self.tokens.count(t) for t in texts), texts[0]
        raise BadRequest("'prompt' must be a string or an array of strings", "prompt")


def _chat_events(
    cid: str,
    created: int,
    model: str,
    pieces: tuple[bytes, ...],
    *,
    finish: str,
    usage: dict[str, Any] | None,
) -> list[bytes]:
    top = (
        b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
        b'"service_tier":"default","system_fingerprint":"fp_sim","choices":'
        % (cid.encode(), created, orjson.dumps(model))
    )
    tail = b',"usage":null}\n\n' if usage is not None else b"}\n\n"
    open_ = top + b'[{"index":0,"delta":'
    null_finish = b',"logprobs":null,"finish_reason":null}]' + tail
    events = [open_ + b'{"role":"assistant","content":"","refusal":null}' + null_finish]
    prefix = open_ + b'{"content":'
    suffix = b"}" + null_finish
    events += [prefix + p + suffix for p in pieces]
    events.append(open_ + b'{},"logprobs":null,"finish_reason":"' + finish.encode() + b'"}]' + tail)
    if usage is not None:
        events.append(top + b'[],"usage":' + orjson.dumps(usage) + b"}\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _legacy_events(
    cid: str,
    created: int,
    model: str,
    pieces: tuple[bytes, ...],
    *,
    finish: str,
    usage: dict[str, Any] | None,
) -> list[bytes]:
    top = (
        b'data: {"id":"%s","object":"text_completion","created":%d,"model":%s,'
        b'"system_fingerprint":"fp_sim","choices":' % (cid.encode(), created, orjson.dumps(model))
    )
    tail = b',"usage":null}\n\n' if usage is not None else b"}\n\n"
    events = [
        top + b'[{"text":' + p + b',"index":0,"logprobs":null,"finish_reason":null}]' + tail for p in pieces
    ]
    events.append(
        top + b'[{"text":"","index":0,"logprobs":null,"finish_reason":"' + finish.encode() + b'"}]' + tail
    )
    if usage is not None:
        events.append(top + b'[],"usage":' + orjson.dumps(usage) + b"}\n\n")
    events.append(b"data: [DONE]\n\n")
    return events
