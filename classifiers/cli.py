"""``gateway train`` and ``gateway eval``: subcommands the gateway's console script registers.

``gateway/cli.py`` calls :func:`add_train_parser` and :func:`add_eval_parser` on its argparse
subparsers; each sets ``func`` to a handler that takes the parsed namespace and returns an exit
code. Bad input (a file, an encoder name, an artefact that does not fit) prints one line to
stderr and exits 2. ``python -m classifiers.cli`` runs the same subcommands on their own.

``gateway eval --outcomes FILE`` hands over to ``classifiers.outcomes.eval_outcomes(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from classifiers.errors import ClassifierError

EXIT_USAGE = 2
Handler = Callable[[argparse.Namespace], int]


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    from classifiers.encoders import known_encoders
    from classifiers.heads import HEADS

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a route classifier artefact from labelled examples",
        description="Embed labelled examples (JSONL or CSV with text,label), cross-validate, fit on all, "
        "and write an artefact directory (arrays.npz + meta.json).",
    )
    parser.add_argument(
        "examples", type=Path, help="labelled examples (.jsonl or .csv with a text,label header)"
    )
    parser.add_argument(
        "--encoder", required=True, metavar="NAME", help=f"one of: {', '.join(known_encoders())}"
    )
    parser.add_argument(
        "--head", choices=tuple(HEADS), default="logreg", help="classifier head (default: logreg)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="ARTEFACT_DIR", help="artefact directory to write"
    )
    parser.add_argument(
        "--cv", type=int, default=5, metavar="FOLDS", help="cross-validation folds; 0 skips (default 5)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for folds and calibration (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_guarded("train", run_train))
    return parser


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="evaluate a trained artefact on a labelled test set",
        description="Print accuracy, macro-F1, per-label scores and the confusion matrix; "
        "with --out also write report.json, confusion_matrix.png and reliability.png.",
    )
    parser.add_argument(
        "artefact", type=Path, nargs="?", help="artefact directory written by `gateway train`"
    )
    parser.add_argument("testset", type=Path, nargs="?", help="labelled test set (.jsonl or .csv)")
    parser.add_argument("--out", type=Path, metavar="REPORT_DIR", help="directory for report files")
    parser.add_argument(
        "--encoder",
        metavar="NAME",
        help="encoder to serve with (default: the one the artefact was trained with)",
    )
    parser.add_argument(
        "--outcomes",
        type=Path,
        metavar="FILE",
        help="evaluate cost/quality routing against recorded outcomes instead",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    from classifiers.outcomes import add_outcomes_arguments

    add_outcomes_arguments(parser)
    parser.set_defaults(func=_guarded("eval", run_eval))
    return parser


def _guarded(command: str, handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ClassifierError as exc:
            print(f"gateway {command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            print(f"gateway {command}: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def run_train(args: argparse.Namespace) -> int:
    from classifiers.artefact import save_artefact
    from classifiers.data import read_examples
    from classifiers.encoders import load_encoder
    from classifiers.evaluation import format_summary
    from classifiers.training import train

    dataset = read_examples(args.examples)
    encoder = load_encoder(args.encoder)
    head, report = train(
        dataset.examples, encoder, args.head, args.cv, seed=args.seed, progress=not args.quiet
    )
    out = save_artefact(
        args.out,
        head,
        encoder,
        data_sha256=dataset.sha256,
        label_counts=dataset.counts,
        data_source=str(args.examples),
        cv_metrics=report.to_json() if report else None,
    )
    print(f"trained {args.head} on {len(dataset.examples)} examples with encoder {encoder.id!r}; wrote {out}")
    if report is not None:
        print(f"\n{args.cv}-fold cross-validation\n{format_summary(report)}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    if args.outcomes is not None:
        return _eval_outcomes(args)
    if args.artefact is None or args.testset is None:
        print("gateway eval: error: give ARTEFACT and TESTSET (or --outcomes FILE)", file=sys.stderr)
        return EXIT_USAGE

    from classifiers.artefact import load_artefact, read_meta
    from classifiers.data import read_examples
    from classifiers.encoders import load_encoder
    from classifiers.errors import DataError
    from classifiers.evaluation import evaluate, format_summary, write_report
    from classifiers.training import embed

    meta = read_meta(args.artefact)
    dataset = read_examples(args.testset)
    unknown = sorted(set(dataset.labels) - set(meta.labels))
    if unknown:
        raise DataError(
            f"{args.testset}: labels {unknown} are not among the artefact's labels {list(meta.labels)}"
        )
    encoder = load_encoder(args.encoder or meta.encoder.id)
    artefact = load_artefact(args.artefact, encoder)
    proba = artefact.head.predict_proba(embed(dataset.texts, encoder, progress=not args.quiet))
    report = evaluate(dataset.targets, proba, artefact.head.labels)
    print(f"{args.artefact} ({meta.head_kind}, encoder {encoder.id!r}) on {args.testset}")
    print(format_summary(report))
    if args.out is not None:
        extra = {
            "artefact": str(args.artefact),
            "testset": str(args.testset),
            "encoder": encoder.id,
            "testset_sha256": dataset.sha256,
        }
        paths = write_report(report, args.out, extra=extra)
        print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


def _eval_outcomes(args: argparse.Namespace) -> int:
    try:
        outcomes = importlib.import_module("classifiers.outcomes")
    except ImportError as exc:
        print(f"gateway eval: error: --outcomes is not available in this build ({exc})", file=sys.stderr)
        return EXIT_USAGE
    handler = getattr(outcomes, "eval_outcomes", None)
    if not callable(handler):
        print("gateway eval: error: classifiers.outcomes defines no eval_outcomes(args)", file=sys.stderr)
        return EXIT_USAGE
    return int(handler(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.cli")
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
