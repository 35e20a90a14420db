"""Counters the simulator exposes at `GET /__sim/stats` (owned by one server instance)."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any


class SimStats:
    """Mutable counters; `in_flight` and `open_connections` are gauges and survive a reset."""

    def __init__(self) -> None:
        self.started = time.time()
        self.in_flight = 0
        self.open_connections = 0
        self.in_flight_by_model: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        self.since = time.time()
        self.requests_total = 0
        self.requests_by_model: Counter[str] = Counter()
        self.requests_by_endpoint: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.completed = 0
        self.aborted = 0
        self.client_disconnects = 0
        self.errors_4xx = 0
        self.connections_total = 0
        self.prompt_tokens_total = 0
        self.completion_tokens_total = 0

    def to_json(self) -> dict[str, Any]:
        now = time.time()
        return {
            "requests_total": self.requests_total,
            "requests_by_model": dict(self.requests_by_model),
            "requests_by_endpoint": dict(self.requests_by_endpoint),
            "in_flight": self.in_flight,
            "in_flight_by_model": {m: n for m, n in self.in_flight_by_model.items() if n},
            "completed": self.completed,
            "aborted": self.aborted,
            "client_disconnects": self.client_disconnects,
            "open_connections": self.open_connections,
            "connections_total": self.connections_total,
            "faults_injected": dict(self.faults_injected),
            "errors_4xx": self.errors_4xx,
            "prompt_tokens_total": self.prompt_tokens_total,
            "completion_tokens_total": self.completion_tokens_total,
            "since_unix": self.since,
            "uptime_s": now - self.started,
            "pid": os.getpid(),
        }
