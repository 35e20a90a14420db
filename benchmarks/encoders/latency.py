"""Time per routing decision (embed one query + logistic-regression head) for each encoder.

    .venv/bin/python benchmarks/encoders/latency.py [--queries 400] [--data ../shared/data]

Three ways of serving, on CLINC150 test queries, with a head fitted on 10 examples per class
(the head's cost does not depend on how many examples it was fitted on):

- ``c1``: one caller, one query per ``encode`` call.
- ``c64-single``: 64 threads, each sending one query per call (the encoder is shared).
- ``c64-batched``: 64 queries arrive together and are encoded in one call; every query in the
  batch waits for the whole batch, so its latency is the batch's time.

Reports p50/p99 per query in milliseconds and queries per second. ONNX sessions use one
intra-op thread (the serving default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.encoders.common import (
    DEFAULT_DATA,
    DEFAULT_OUT,
    few_shot_rows,
    load_dataset,
    machine,
    make_encoder,
)
from classifiers.heads import LogisticHead

ENCODERS = ("minilm", "minilm-onnx-fp32", "minilm-onnx", "static")
CONCURRENCY = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS))
    args = parser.parse_args()
    dataset = load_dataset("clinc150", args.data)
    queries = list(dataset.test.texts[: args.queries])
    rows = few_shot_rows(dataset.train.labels, 10, 0)
    results = []
    for name in args.encoders:
        encoder = make_encoder(name)
        train_texts = [dataset.train.texts[i] for i in rows]
        head = LogisticHead.fit(
            encoder.encode(train_texts), dataset.train.labels[rows], dataset.names, calib_folds=1
        )

        def decide(texts: list[str], encoder=encoder, head=head) -> np.ndarray:
            return head.predict_proba(encoder.encode(texts)).argmax(axis=1)

        decide(queries[:CONCURRENCY])  # warm-up
        n = len(queries) if name != "minilm" else min(len(queries), 200)
        for mode, timings, wall in (
            ("c1", *_sequential(decide, queries[:n])),
            ("c64-single", *_threaded(decide, queries[:n])),
            ("c64-batched", *_batched(decide, queries[:n])),
        ):
            ms = np.array(timings) * 1e3
            row = {
                "encoder": name,
                "mode": mode,
                "queries": n,
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
                "p99_ms": round(float(np.percentile(ms, 99)), 3),
                "qps": round(n / wall, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(report, indent=1))


def _sequential(decide, queries: list[str]) -> tuple[list[float], float]:
    timings = []
    started = time.perf_counter()
    for query in queries:
        t0 = time.perf_counter()
        decide([query])
        timings.append(time.perf_counter() - t0)
    return timings, time.perf_counter() - started


def _threaded(decide, queries: list[str]) -> tuple[list[float], float]:
    def one(query: str) -> float:
        t0 = time.perf_counter()
        decide([query])
        return time.perf_counter() - t0

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        timings = list(pool.map(one, queries))
    return timings, time.perf_counter() - started


def _batched(decide, queries: list[str]) -> tuple[list[float], float]:
    timings = []
    started = time.perf_counter()
    for start in range(0, len(queries), CONCURRENCY):
        batch = queries[start : start + CONCURRENCY]
        t0 = time.perf_counter()
        decide(batch)
        timings.extend([time.perf_counter() - t0] * len(batch))
    return timings, time.perf_counter() - started


if __name__ == "__main__":
    main()
