"""Intent accuracy of each encoder x head on CLINC150 (in-scope) and BANKING77, few-shot and full.

    .venv/bin/python benchmarks/encoders/accuracy.py [--data ../shared/data] [--out benchmarks/out/encoders]

Vectors are cached as .npy under ``--out/vectors`` (delete them to re-encode). Heads are the
project's (``classifiers.heads``) with temperature calibration off (``calib_folds=1``): it does
not change the arg-max, so accuracy is the same and the run is several times shorter. For 5 and
10 examples per class the figure is the mean over seeds 0, 1, 2 (the same rows for every encoder
and head); "all" uses the whole training set once. Also writes the chosen rows per split
(``splits-<dataset>.json``) for ``semantic_router_compare.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.encoders.common import (
    DATASETS,
    DEFAULT_DATA,
    DEFAULT_OUT,
    ENCODERS,
    SEEDS,
    cached_vectors,
    few_shot_rows,
    load_dataset,
    machine,
)
from classifiers.heads import fit_head

HEADS = ("logreg", "centroid", "knn")
SHOTS: tuple[int | None, ...] = (5, 10, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS))
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    for dataset_name in DATASETS:
        dataset = load_dataset(dataset_name, args.data)
        splits = {
            f"{shots or 'all'}/{seed}": few_shot_rows(dataset.train.labels, shots, seed).tolist()
            for shots in SHOTS
            for seed in (SEEDS if shots else (0,))
        }
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"splits-{dataset_name}.json").write_text(json.dumps(splits))
        np.savez(
            args.out / f"labels-{dataset_name}.npz",
            train=dataset.train.labels,
            test=dataset.test.labels,
            names=np.array(dataset.names),
        )
        for encoder_name in args.encoders:
            X_train = cached_vectors(encoder_name, dataset, "train", args.out)
            X_test = cached_vectors(encoder_name, dataset, "test", args.out)
            for shots in SHOTS:
                for head in HEADS:
                    scores = []
                    started = time.perf_counter()
                    for seed in SEEDS if shots else (0,):
                        rows = few_shot_rows(dataset.train.labels, shots, seed)
                        options = {} if head == "knn" else {"calib_folds": 1}
                        fitted = fit_head(
                            head, X_train[rows], dataset.train.labels[rows], dataset.names, **options
                        )
                        predicted = fitted.predict_proba(X_test).argmax(axis=1)
                        scores.append(float((predicted == dataset.test.labels).mean()))
                    row = {
                        "dataset": dataset_name,
                        "encoder": encoder_name,
                        "head": head,
                        "per_class": shots or "all",
                        "accuracy": round(float(np.mean(scores)), 4),
                        "per_seed": [round(s, 4) for s in scores],
                        "fit_and_eval_s": round(time.perf_counter() - started, 1),
                    }
                    results.append(row)
                    print(json.dumps(row), flush=True)
    # Merge with an earlier run's rows for other encoders, so encoders can be run one at a time.
    path = args.out / "accuracy.json"
    earlier = json.loads(path.read_text())["results"] if path.is_file() else []
    kept = [row for row in earlier if row["encoder"] not in args.encoders]
    report = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "results": kept + results}
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
