"""Two-backend (RouteLLM) routing on RouteLLM's MMLU outcomes: Mixtral-8x7B (cheap) vs GPT-4-1106.

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.routing.mmlu_two_backend [--data ../shared/data]

Two held-out splits, both with seed 0 and RouteLLM's contaminated prompts removed from evaluation:

* ``half``: 50/50 within each MMLU subject file (in-distribution: the router has seen other
  questions of every subject - the gateway's situation when it learns from its own traffic);
* ``group``: a seeded half of the 57 subject files for training, the other half for evaluation
  (unseen subjects - closer to RouteLLM's out-of-distribution setting).

Routers: logistic regression and similarity-weighted kNN on MiniLM embeddings, each twice: with
the library defaults (C=1; k=50, temperature 0.05) and with the setting that had the best 5-fold
APGR on the training rows (C in 0.3..100; k in 20/50/200 x temperature 0.02/0.05/0.1) - never tuned
on the evaluation rows. Plus a "subject prior" baseline (the training rate of
"cheap is good enough" in the query's subject; half split only), an oracle and a random router.
Writes ``benchmarks/out/routing/mmlu/<split>/{report.json,cost_quality.png}`` and
``benchmarks/out/routing/mmlu/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.routing._common import DEFAULT_DATA, OUT_DIR, encode_cached, load_bench_encoder, machine_facts
from classifiers.outcomes_data import excluded_prompts, load_outcomes
from classifiers.outcomes_eval import CurveSeries, Evaluation, evaluate_two_backend, tune_two_backend
from classifiers.outcomes_metrics import apgr, apgr_quantile_bins, cpt, exact_curve, threshold_grid
from classifiers.outcomes_report import format_summary, write_report
from classifiers.outcomes_train import (
    EncoderInfo,
    HeadConfig,
    good_enough,
    split_by_group,
    split_half,
    train_two_backend,
)

LOGISTIC_GRID = [HeadConfig(head="logistic", c=c) for c in (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)]
KNN_GRID = [HeadConfig(head="knn", k=k, temperature=t) for k in (20, 50, 200) for t in (0.02, 0.05, 0.1)]
CHEAP = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = args.data / "routing_outcomes" / "routellm"
    table = load_outcomes(root / "mmlu")
    exclude = excluded_prompts(root / "mmlu_contaminated_prompts.jsonl")
    started = time.perf_counter()
    vectors = encode_cached(args.encoder, table.prompts)
    encode_seconds = time.perf_counter() - started
    encoder = load_bench_encoder(args.encoder)
    info = EncoderInfo(encoder.id, encoder.space, encoder.dim)
    out = OUT_DIR / "routing" / "mmlu"
    summary: dict[str, Any] = {
        "machine": machine_facts(),
        "rows": table.n,
        "excluded_prompts": len(exclude),
        "encode_seconds_or_cached": round(encode_seconds, 1),
    }
    for split in ("half", "group"):
        mask = (
            split_half(table.groups, args.seed)
            if split == "half"
            else split_by_group(table.groups, args.seed)
        )
        started = time.perf_counter()
        best_logistic, logistic_cv = tune_two_backend(
            table.subset(mask), vectors[mask], info, cheap=CHEAP, strong=STRONG, candidates=LOGISTIC_GRID
        )
        best_knn, knn_cv = tune_two_backend(
            table.subset(mask), vectors[mask], info, cheap=CHEAP, strong=STRONG, candidates=KNN_GRID
        )
        print(
            f"5-fold APGR on the training rows ({time.perf_counter() - started:.0f} s): {logistic_cv} {knn_cv}"
        )
        heads = [HeadConfig(head="logistic"), best_logistic, HeadConfig(head="knn"), best_knn]
        evaluation = evaluate_two_backend(
            table,
            vectors,
            info,
            cheap=CHEAP,
            strong=STRONG,
            heads=heads,
            thresholds=threshold_grid(11),
            split=split,
            seed=args.seed,
            exclude=exclude,
        )
        if split == "half":
            evaluation = _with_subject_prior(evaluation, table, exclude, args.seed)
        print(f"\n== split: {split} ==\n{format_summary(evaluation.report)}")
        write_report(evaluation, out / split)
        summary[split] = {
            name: {k: body[k] for k in ("apgr", "cpt50", "cpt80") if k in body}
            | ({"apgr_quantile_bins": body["apgr_quantile_bins"]} if "apgr_quantile_bins" in body else {})
            for name, body in evaluation.report["routers"].items()
        }
        summary[split]["_split"] = evaluation.report["split"]
        summary[split]["_cv_apgr_on_training_rows"] = logistic_cv | knn_cv
        summary[split]["_quality"] = {
            "always_cheap": evaluation.report["weak_quality"],
            "always_strong": evaluation.report["strong_quality"],
        }
        summary[split]["random"]["apgr_simulated_95pct"] = evaluation.report["routers"]["random"][
            "apgr_simulated_95pct"
        ]
    summary["choose_microseconds"] = _time_choose(table, vectors, info, args.seed)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nchoose() per call: {summary['choose_microseconds']}\nwrote {out}")
    return 0


def _with_subject_prior(evaluation: Evaluation, table: Any, exclude: frozenset[str], seed: int) -> Evaluation:
    """Add the subject-rate baseline: score = share of training rows of the subject where cheap sufficed."""
    usable, label = good_enough(table, CHEAP, STRONG)
    train = split_half(table.groups, seed) & usable
    excluded = np.asarray([p in exclude for p in table.prompts])
    held_out = ~train & usable & ~excluded
    groups = np.asarray(table.groups)
    rate = {g: float(label[train & (groups == g)].mean()) for g in set(table.groups)}
    score = np.asarray([rate[g] for g in groups[held_out]])
    weak, strong = table.column(CHEAP)[held_out], table.column(STRONG)[held_out]
    curve = exact_curve(score, weak, strong)
    report = dict(evaluation.report)
    routers = dict(report["routers"])
    routers["subject_prior"] = {
        "apgr": apgr(curve),
        "apgr_quantile_bins": apgr_quantile_bins(score, weak, strong),
        "cpt50": cpt(curve, 0.5),
        "cpt80": cpt(curve, 0.8),
    }
    report["routers"] = routers
    curves = (*evaluation.curves, CurveSeries("subject_prior", curve.strong_share, curve.quality))
    return Evaluation(report, curves)


def _time_choose(table: Any, vectors: np.ndarray, info: EncoderInfo, seed: int) -> dict[str, float]:
    usable, _ = good_enough(table, CHEAP, STRONG)
    train = split_half(table.groups, seed) & usable
    timings = {}
    for head in ("logistic", "knn"):
        router = train_two_backend(
            table.subset(train),
            vectors[train],
            info,
            cheap=CHEAP,
            strong=STRONG,
            config=HeadConfig(head=head),
        )
        queries = vectors[~train][:2000]
        candidates, prices = [CHEAP, STRONG], {CHEAP: 0.6, STRONG: 20.0}
        start = time.perf_counter()
        for v in queries:
            router.choose(v, candidates, prices, 0.5)
        timings[head] = round((time.perf_counter() - start) / len(queries) * 1e6, 1)
    return timings


if __name__ == "__main__":
    raise SystemExit(main())
