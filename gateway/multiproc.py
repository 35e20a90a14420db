"""Prometheus metrics across several worker processes (``gateway serve --workers N``, N > 1).

prometheus_client picks how metric values are stored when ``prometheus_client.values`` is first
imported: in memory, or in memory-mapped files under ``PROMETHEUS_MULTIPROC_DIR`` when that
variable is set. So ``gateway serve`` creates a fresh directory and sets the variable before
uvicorn starts the workers (``multiprocess_metrics``); every worker then writes its own files, and
``GET /metrics`` on any worker merges the files of all workers into a registry built for that
scrape (``exposition``). A worker marks itself dead when it stops (``mark_worker_dead``) so its
live gauges (``gateway_in_flight_requests``) drop out; its counters stay in the sums. With one
worker nothing of this is used: the in-process registry is read directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client's multiprocess helpers carry no annotations; these are their signatures.
_collect_into: Callable[..., object] = multiprocess.MultiProcessCollector
_mark_dead: Callable[[int, str], None] = multiprocess.mark_process_dead


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV) or None


@contextlib.contextmanager
def multiprocess_metrics(workers: int) -> Iterator[Path | None]:
    """Around the server: a fresh, empty metrics directory for N > 1 workers, removed at exit.

    With one worker the variable is removed instead (an inherited one would switch the single
    process to the slower file-backed values)."""
    previous = os.environ.pop(ENV, None)
    try:
        if workers <= 1:
            yield None
            return
        path = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
        os.environ[ENV] = str(path)
        try:
            yield path
        finally:
            os.environ.pop(ENV, None)
            shutil.rmtree(path, ignore_errors=True)
    finally:
        if previous is not None:
            os.environ[ENV] = previous


def exposition(registry: CollectorRegistry) -> bytes:
    """The text a scrape returns: this process's registry, or the merge of all workers' files."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(registry)
    merged = CollectorRegistry()
    _collect_into(merged, path=directory)
    return generate_latest(merged)


def mark_worker_dead() -> None:
    """Called when a worker's app shuts down: its live gauges stop counting."""
    directory = multiprocess_dir()
    if directory is not None:
        _mark_dead(os.getpid(), directory)
