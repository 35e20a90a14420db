"""N-backend floor routing on arena-hard's arena-bench-v1 (300 prompts x 15 models, GPT-4 judge 1-10).

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.routing.arena_floor [--data ../shared/data]

Per query: the cheapest model whose predicted judge score reaches the floor (else the highest
prediction). Predictions are 5-fold out-of-fold (seed 0) from per-model ridge regressors and from
similarity-weighted kNN on MiniLM embeddings. Cost of a call = input tokens (cl100k_base count of
the prompt) x input price + an assumed 500 output tokens x output price, with the prices in
``prices_arena_bench_v1.json``; the router ranks models by their mean cost per call on this set.
Missing judge scores (-1, 39 of 4,500) are left out of training and, when a router picks such a
cell, scored as that model's mean score. Two candidate sets: all 15 models, and only the models
on the cost/quality frontier of the single models (the ones a random mix would use; picked from the
models' mean scores on this set, as an operator would from a public leaderboard). Each router is
also compared with a random mix of single models at the same mean cost.
Writes ``benchmarks/out/routing/arena/{all,frontier}/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.routing._common import DEFAULT_DATA, OUT_DIR, encode_cached, load_bench_encoder, machine_facts
from classifiers.outcomes_data import load_outcomes
from classifiers.outcomes_eval import evaluate_floor
from classifiers.outcomes_report import format_summary, write_report
from classifiers.outcomes_train import EncoderInfo, HeadConfig

PRICES = Path(__file__).with_name("prices_arena_bench_v1.json")
OUTPUT_TOKENS = 500
FLOORS = (6.0, 7.0, 8.0, 9.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = load_outcomes(args.data / "routing_outcomes" / "arena_bench_v1")
    vectors = encode_cached(args.encoder, table.prompts)
    encoder = load_bench_encoder(args.encoder)
    info = EncoderInfo(encoder.id, encoder.space, encoder.dim)
    price_table = json.loads(PRICES.read_text(encoding="utf-8"))["models"]
    import bpe_openai

    tokenizer = bpe_openai.get_encoding("cl100k_base")
    input_tokens = np.asarray([len(tokenizer.encode(p)) for p in table.prompts], dtype=np.float64)
    price_in = np.asarray([price_table[b]["input_per_mtok"] for b in table.backends])
    price_out = np.asarray([price_table[b]["output_per_mtok"] for b in table.backends])
    costs = (input_tokens[:, None] * price_in[None, :] + OUTPUT_TOKENS * price_out[None, :]) / 1e6
    actual = np.where(np.isnan(table.quality), np.nanmean(table.quality, axis=0), table.quality)
    frontier_models, frontier = _mix_frontier(table.backends, costs.mean(axis=0), actual.mean(axis=0))
    variants = {"all": list(table.backends), "frontier": frontier_models}
    summary: dict[str, Any] = {
        "machine": machine_facts(),
        "mean_input_tokens": float(input_tokens.mean()),
        "assumed_output_tokens": OUTPUT_TOKENS,
    }
    for label, models in variants.items():
        columns = [table.backends.index(b) for b in models]
        sub = dataclasses.replace(table, backends=tuple(models), quality=table.quality[:, columns])
        sub_costs = costs[:, columns]
        per_call = {b: float(sub_costs[:, j].mean()) for j, b in enumerate(models)}
        evaluation = evaluate_floor(
            sub,
            vectors,
            info,
            prices=per_call,
            costs=sub_costs,
            floors=FLOORS,
            heads=[HeadConfig(head="ridge"), HeadConfig(head="knn")],
            folds=args.folds,
            seed=args.seed,
        )
        matched = {
            name: [
                {
                    "floor": e["floor"],
                    "cost": e["mean_cost"],
                    "router_quality": e["mean_quality"],
                    "mix_quality_at_same_cost": frontier(e["mean_cost"]),
                }
                for e in body["floors"]
            ]
            for name, body in evaluation.report["routers"].items()
        }
        print(f"\n== candidates: {label} ({len(models)} models) ==\n{format_summary(evaluation.report)}")
        for name, rows in matched.items():
            for row in rows:
                print(
                    f"{name} floor {row['floor']:g}: quality {row['router_quality']:.3f} vs "
                    f"{row['mix_quality_at_same_cost']:.3f} for a random mix of single models at the same cost"
                )
        extra = {"cost_matched_random_mix": matched, "mean_cost_per_call_usd": per_call} | summary
        write_report(evaluation, OUT_DIR / "routing" / "arena" / label, extra=extra)
        prices_path = OUT_DIR / "routing" / "arena" / label / "prices_per_call.json"
        prices_path.write_text(json.dumps(per_call, indent=2) + "\n", encoding="utf-8")
    print(f"\nmean input tokens {input_tokens.mean():.0f}; frontier models: {', '.join(frontier_models)}")
    return 0


def _mix_frontier(names: Sequence[str], cost: np.ndarray, quality: np.ndarray) -> tuple[list[str], Any]:
    """Best quality reachable at a given mean cost by randomly mixing single models (the upper
    concave hull of the models' (cost, quality) points), and the models on that hull."""
    order = sorted(range(len(names)), key=lambda j: (float(cost[j]), -float(quality[j])))
    hull: list[int] = []
    for j in order:
        if hull and (quality[j] <= quality[hull[-1]] or cost[j] == cost[hull[-1]]):
            continue  # dearer (or as dear) and no better
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (quality[b] - quality[a]) * (cost[j] - cost[a]) <= (quality[j] - quality[a]) * (
                cost[b] - cost[a]
            ):
                hull.pop()  # b lies on or under the chord from a to j: mixing a and j does as well
            else:
                break
        hull.append(j)
    xs, ys = [float(cost[j]) for j in hull], [float(quality[j]) for j in hull]

    def at(c: float) -> float:
        return float(np.interp(c, xs, ys))

    return [names[j] for j in hull], at


if __name__ == "__main__":
    raise SystemExit(main())
