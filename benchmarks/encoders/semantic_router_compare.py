"""The ``semantic-router`` library on the same vectors and the same examples as accuracy.py.

Runs in its own venv (semantic-router pins its own dependencies; see run_semantic_router.sh):

    bash benchmarks/encoders/run_semantic_router.sh

Needs the vectors and splits that accuracy.py caches under benchmarks/out/encoders. The library
is used as shipped: ``IndexedRouter`` with its defaults (local index, top_k=5, mean
aggregation, no confidence threshold), one ``Route`` per intent holding the same training
utterances, and a custom ``DenseEncoder`` that returns our cached vectors for those texts.
Accuracy comes from the library's own ``evaluate``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.encoders.common import DATASETS, DEFAULT_DATA, DEFAULT_OUT, load_dataset, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--encoders", nargs="+", default=["minilm", "static"])
    args = parser.parse_args()

    from semantic_router import IndexedRouter, Route
    from semantic_router.encoders import DenseEncoder

    class CachedVectors(DenseEncoder):  # type: ignore[misc]
        """Looks texts up in vectors computed by the project's encoders."""

        table: dict[str, Any]

        def __call__(self, docs: list[Any]) -> list[list[float]]:
            return [self.table[str(d)] for d in docs]

    results = []
    for dataset_name in DATASETS:
        dataset = load_dataset(dataset_name, args.data)
        splits = json.loads((args.out / f"splits-{dataset_name}.json").read_text())
        for encoder_name in args.encoders:
            vectors = {
                part: np.load(args.out / "vectors" / f"{encoder_name}-{dataset_name}-{part}.npy")
                for part in ("train", "test")
            }
            table: dict[str, Any] = {}
            for part in ("train", "test"):
                texts = getattr(dataset, part).texts
                table.update({t: vectors[part][i].tolist() for i, t in enumerate(texts)})
            encoder = CachedVectors(name=f"project-{encoder_name}", table=table)
            test_labels = [dataset.names[i] for i in dataset.test.labels]
            by_shots: dict[str, list[float]] = {}
            for key, rows in splits.items():
                shots = key.split("/")[0]
                utterances: dict[str, list[str]] = {}
                for i in rows:
                    utterances.setdefault(dataset.names[dataset.train.labels[i]], []).append(
                        dataset.train.texts[i]
                    )
                routes = [
                    Route(name=name, utterances=list(dict.fromkeys(u))) for name, u in utterances.items()
                ]
                started = time.perf_counter()
                router = IndexedRouter(encoder=encoder, routes=routes)
                accuracy = router.evaluate(list(dataset.test.texts), test_labels)
                by_shots.setdefault(shots, []).append(accuracy)
                print(
                    f"  {dataset_name} {encoder_name} {key}: {accuracy:.4f} ({time.perf_counter() - started:.1f} s)"
                )
            for shots, scores in by_shots.items():
                row = {
                    "dataset": dataset_name,
                    "encoder": encoder_name,
                    "router": "semantic-router IndexedRouter (defaults)",
                    "per_class": shots,
                    "accuracy": round(float(np.mean(scores)), 4),
                    "per_seed": [round(s, 4) for s in scores],
                }
                results.append(row)
                print(json.dumps(row), flush=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "semantic_router_version": metadata.version("semantic-router"),
        "results": results,
    }
    (args.out / "semantic_router.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
