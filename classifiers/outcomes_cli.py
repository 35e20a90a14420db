"""``gateway eval --outcomes FILE_OR_DIR`` and ``gateway train-outcomes OUTCOMES``.

``python -m classifiers.outcomes_cli {eval,train-outcomes} ...`` runs the same commands on their own.
The gateway's CLI adds :func:`add_outcomes_arguments` to its ``eval`` parser and
:func:`add_train_outcomes_parser` to its subparsers. Errors in files or arguments print one line
(``gateway <command>: error: ...``) and return exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classifiers.encoders.base import Encoder
from classifiers.errors import ClassifierError
from classifiers.outcomes_artefact import save_artefact
from classifiers.outcomes_data import OutcomesError, OutcomesTable, excluded_prompts, load_outcomes
from classifiers.outcomes_eval import evaluate_floor, evaluate_two_backend
from classifiers.outcomes_metrics import threshold_grid
from classifiers.outcomes_report import format_summary, write_report
from classifiers.outcomes_router import Mode
from classifiers.outcomes_train import HEAD_TYPES, EncoderInfo, HeadConfig, HeadType, pick_pair, train

EXIT_USAGE = 2
DEFAULT_ENCODER = "minilm"
EncoderLoader = Callable[[str], Encoder]


def _default_loader(name: str) -> Encoder:
    from classifiers.encoders import load_encoder

    return load_encoder(name)


def _add_if_absent(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    # The eval parser is shared with route-classifier evaluation, which may define --out/--encoder.
    if flag not in parser._option_string_actions:
        parser.add_argument(flag, **kwargs)


def _common_options(parser: argparse.ArgumentParser) -> None:
    _add_if_absent(
        parser,
        "--mode",
        choices=("two_backend", "floor"),
        help="two_backend (threshold) or floor (N backends); default: two_backend for two backends",
    )
    _add_if_absent(parser, "--cheap", metavar="BACKEND", help="two-backend mode: the cheap backend")
    _add_if_absent(parser, "--strong", metavar="BACKEND", help="two-backend mode: the strong backend")
    _add_if_absent(
        parser,
        "--exclude-prompts",
        type=Path,
        metavar="JSONL",
        help="prompts to leave out of evaluation (JSONL with eval_prompt or prompt)",
    )
    _add_if_absent(parser, "--seed", type=int, default=0, help="seed for splits and folds (default 0)")
    _add_if_absent(parser, "--folds", type=int, default=5, help="floor mode: k for k-fold (default 5)")
    _add_if_absent(
        parser,
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="cache prompt embeddings as .npy here (keyed by encoder and prompts)",
    )


def add_outcomes_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gateway eval --outcomes``; flags the parser already has are left alone."""
    _add_if_absent(
        parser,
        "--outcomes",
        type=Path,
        metavar="FILE_OR_DIR",
        help="outcomes file or directory: evaluate cost/quality routing",
    )
    _add_if_absent(parser, "--encoder", metavar="NAME", help=f"encoder (default {DEFAULT_ENCODER})")
    _add_if_absent(
        parser, "--out", type=Path, metavar="DIR", help="write report.json and cost_quality.png here"
    )
    _add_if_absent(
        parser,
        "--threshold-grid",
        type=int,
        default=11,
        metavar="N",
        help="two-backend mode: N thresholds evenly spaced in 0..1 for the sweep table (default 11)",
    )
    _add_if_absent(
        parser,
        "--split",
        choices=("half", "group"),
        default="half",
        help="two-backend mode: half = seeded 50/50 within each file; group = by file (default half)",
    )
    _add_if_absent(
        parser,
        "--heads",
        default=None,
        metavar="LIST",
        help="comma-separated heads to compare (default: logistic,knn or ridge,knn)",
    )
    _add_if_absent(
        parser, "--prices", type=Path, metavar="JSON", help='floor mode: {"backend": cost per call, ...}'
    )
    _add_if_absent(
        parser,
        "--floors",
        default=None,
        metavar="LIST",
        help="floor mode: comma-separated quality floors (default 0.5,0.7,0.9 or 6,7,8)",
    )
    _common_options(parser)


def add_train_outcomes_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "train-outcomes",
        help="train a cost/quality routing artefact from per-backend outcomes",
        description="Embed the prompts of an outcomes file, train the cost/quality heads on all rows, "
        "measure them on a held-out split, and write an artefact directory (arrays.npz + meta.json).",
    )
    parser.add_argument("outcomes", type=Path, help="outcomes file or directory")
    parser.add_argument("--encoder", required=True, metavar="NAME", help="encoder registry name")
    parser.add_argument("--out", required=True, type=Path, metavar="ARTEFACT_DIR", help="artefact directory")
    parser.add_argument(
        "--head",
        choices=HEAD_TYPES,
        default=None,
        help="logistic (default for correctness data), ridge (default for scores) or knn",
    )
    _common_options(parser)
    parser.set_defaults(func=train_outcomes)
    return parser


def eval_outcomes(args: argparse.Namespace, encoder_loader: EncoderLoader | None = None) -> int:
    """Entry point of ``gateway eval --outcomes``; options the caller's parser lacks take their defaults."""
    try:
        return _eval(_with_defaults(args, add_outcomes_arguments), encoder_loader or _default_loader)
    except (ClassifierError, OSError) as exc:
        print(f"gateway eval: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE


def train_outcomes(args: argparse.Namespace, encoder_loader: EncoderLoader | None = None) -> int:
    try:
        return _train(_with_defaults(args, _common_options), encoder_loader or _default_loader)
    except (ClassifierError, OSError) as exc:
        print(f"gateway train-outcomes: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _with_defaults(
    args: argparse.Namespace, add: Callable[[argparse.ArgumentParser], None]
) -> argparse.Namespace:
    defaults = argparse.ArgumentParser(add_help=False)
    add(defaults)
    merged = vars(defaults.parse_args([]))
    merged.update(vars(args))
    return argparse.Namespace(**merged)


def _message(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"{exc.filename or ''}: {exc.strerror or exc}"
    return str(exc)


def _prepare(
    args: argparse.Namespace, loader: EncoderLoader, path: Path
) -> tuple[OutcomesTable, Encoder, npt.NDArray[np.float32], Mode, frozenset[str]]:
    table = load_outcomes(path)
    exclude = (
        excluded_prompts(args.exclude_prompts) if getattr(args, "exclude_prompts", None) else frozenset()
    )
    encoder = loader(getattr(args, "encoder", None) or DEFAULT_ENCODER)
    vectors = encode_with_cache(encoder, table.prompts, getattr(args, "cache_dir", None))
    mode: Mode
    if getattr(args, "mode", None):
        mode = args.mode
    elif len(table.backends) == 2 or getattr(args, "cheap", None) or getattr(args, "strong", None):
        mode = "two_backend"
    else:
        mode = "floor"
    return table, encoder, vectors, mode, exclude


def _eval(args: argparse.Namespace, loader: EncoderLoader) -> int:
    if args.outcomes is None:
        raise OutcomesError("give --outcomes FILE_OR_DIR")
    table, encoder, vectors, mode, exclude = _prepare(args, loader, args.outcomes)
    info = EncoderInfo(encoder.id, encoder.space, encoder.dim)
    if mode == "two_backend":
        cheap, strong = pick_pair(table, args.cheap, args.strong)
        heads = [HeadConfig(head=h) for h in _heads(args.heads, ("logistic", "knn"))]
        evaluation = evaluate_two_backend(
            table,
            vectors,
            info,
            cheap=cheap,
            strong=strong,
            heads=heads,
            thresholds=threshold_grid(args.threshold_grid),
            split=args.split,
            seed=args.seed,
            exclude=exclude,
        )
    else:
        if args.prices is None:
            raise OutcomesError("floor mode needs --prices JSON (cost per call of each backend)")
        prices = _read_prices(args.prices)
        default_heads: tuple[HeadType, ...] = ("logistic", "knn") if table.binary else ("ridge", "knn")
        heads = [HeadConfig(head=h) for h in _heads(args.heads, default_heads)]
        floors = (
            _floats(args.floors) if args.floors else ((0.5, 0.7, 0.9) if table.binary else (6.0, 7.0, 8.0))
        )
        costs = np.tile([prices.get(b, np.nan) for b in table.backends], (table.n, 1))
        evaluation = evaluate_floor(
            table,
            vectors,
            info,
            prices=prices,
            costs=costs,
            floors=floors,
            heads=heads,
            folds=args.folds,
            seed=args.seed,
        )
    print(format_summary(evaluation.report))
    if args.out is not None:
        paths = write_report(evaluation, args.out)
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _train(args: argparse.Namespace, loader: EncoderLoader) -> int:
    table, encoder, vectors, mode, exclude = _prepare(args, loader, args.outcomes)
    info = EncoderInfo(encoder.id, encoder.space, encoder.dim)
    head: HeadType = args.head or ("logistic" if table.binary or mode == "two_backend" else "ridge")
    config = HeadConfig(head=head)
    metrics: dict[str, Any]
    cheap = strong = None
    if mode == "two_backend":
        cheap, strong = pick_pair(table, args.cheap, args.strong)
        held_out = evaluate_two_backend(
            table,
            vectors,
            info,
            cheap=cheap,
            strong=strong,
            heads=[config],
            thresholds=threshold_grid(11),
            seed=args.seed,
            exclude=exclude,
        ).report
        body = held_out["routers"][head]
        metrics = {
            "held_out": {k: body[k] for k in ("n", "apgr", "apgr_quantile_bins", "cpt50", "cpt80")},
            "threshold_for_strong_share": body["threshold_for_strong_share"],
            "split": held_out["split"],
        }
    else:
        from classifiers.outcomes_eval import out_of_fold

        predicted = out_of_fold(table, vectors, info, config, folds=args.folds, seed=args.seed)
        known = ~np.isnan(table.quality)
        metrics = {"oof_mae": float(np.abs(predicted - table.quality)[known].mean()), "folds": args.folds}
    router = train(mode, table, vectors, info, config=config, cheap=cheap, strong=strong)
    training = {
        "data_sha256": table.sha256,
        "source": table.source,
        "rows": table.n,
        "backends": list(table.backends),
        "quality_scale": "binary" if table.binary else "score",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = save_artefact(router, args.out, training, metrics)
    summary = f"trained {mode} ({head}) on {table.n} prompts with encoder {encoder.id!r}; wrote {out}"
    if mode == "two_backend":
        held = metrics["held_out"]
        summary += (
            f"\nheld-out APGR {held['apgr']:.4f}  CPT(50%) {held['cpt50']:.1%}  CPT(80%) {held['cpt80']:.1%}"
        )
    else:
        summary += f"\n{args.folds}-fold out-of-fold MAE {metrics['oof_mae']:.3f}"
    print(summary)
    return 0


def encode_with_cache(
    encoder: Encoder, texts: Sequence[str], cache_dir: Path | None
) -> npt.NDArray[np.float32]:
    """Encode ``texts``; with ``cache_dir``, reuse a ``.npy`` keyed by encoder space and the texts."""
    if cache_dir is None:
        return np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    digest = hashlib.sha256(encoder.space.encode() + b"\x00")
    for text in texts:
        digest.update(text.encode("utf-8") + b"\x00")
    path = cache_dir / f"{encoder.id}-{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        cached = np.load(path, allow_pickle=False)
        if cached.shape == (len(texts), encoder.dim):
            return np.asarray(cached, dtype=np.float32)
    vectors = np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors, allow_pickle=False)
    return vectors


def _heads(value: str | None, default: Sequence[HeadType]) -> list[HeadType]:
    if not value:
        return list(default)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in HEAD_TYPES]
    if unknown or not names:
        raise OutcomesError(f"--heads: unknown head(s) {unknown}; choose from {', '.join(HEAD_TYPES)}")
    return [h for h in HEAD_TYPES if h in names]


def _floats(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise OutcomesError(f"--floors: expected comma-separated numbers, got {value!r}") from None


def _read_prices(path: Path) -> dict[str, float]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OutcomesError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise OutcomesError(f"{path}: invalid JSON ({exc.msg})") from None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        for k, v in raw.items()
    ):
        raise OutcomesError(f'{path}: expected {{"backend": non-negative cost per call, ...}}')
    return {k: float(v) for k, v in raw.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.outcomes_cli")
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    evaluate = subparsers.add_parser("eval", help="evaluate cost/quality routing on an outcomes file")
    add_outcomes_arguments(evaluate)
    evaluate.set_defaults(func=eval_outcomes)
    add_train_outcomes_parser(subparsers)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
