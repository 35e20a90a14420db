"""``gateway eval --outcomes`` and ``gateway train-outcomes`` end to end with the hash encoder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.encoders import load_encoder
from classifiers.outcomes import (
    add_outcomes_arguments,
    add_train_outcomes_parser,
    eval_outcomes,
    load_artefact,
    train_outcomes,
)


def eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway eval")
    # The route-classifier eval command already owns these two flags.
    parser.add_argument("--out", type=Path)
    parser.add_argument("--encoder")
    add_outcomes_arguments(parser)
    return parser


def cli() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway")
    add_train_outcomes_parser(parser.add_subparsers(required=True))
    return parser


def test_eval_two_backend_prints_metrics_and_writes_report(
    tmp_path: Path, outcomes_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = eval_parser().parse_args(
        [
            "--outcomes",
            str(outcomes_csv),
            "--encoder",
            "hash",
            "--out",
            str(tmp_path / "r"),
            "--threshold-grid",
            "5",
        ]
    )
    assert eval_outcomes(args) == 0
    out = capsys.readouterr().out
    assert "APGR" in out and "CPT(50%)" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (tmp_path / "r" / "cost_quality.png").stat().st_size > 1000
    assert report["cheap"] == "cheap-model" and report["strong"] == "strong-model"
    assert len(report["routers"]["logistic"]["sweep"]) == 5
    assert report["routers"]["random"]["apgr"] == 0.5
    # The arithmetic prompts share words, so the learned router beats random on held-out rows.
    assert report["routers"]["logistic"]["apgr"] > 0.6
    assert report["routers"]["oracle"]["apgr"] >= report["routers"]["logistic"]["apgr"]


def test_eval_floor_mode_with_prices(
    tmp_path: Path, outcomes_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"cheap-model": 0.1, "strong-model": 1.0}))
    args = eval_parser().parse_args(
        [
            "--outcomes",
            str(outcomes_csv),
            "--encoder",
            "hash",
            "--mode",
            "floor",
            "--prices",
            str(prices),
            "--floors",
            "0.5",
            "--folds",
            "3",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert eval_outcomes(args) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    floor = report["routers"]["logistic"]["floors"][0]
    assert report["baselines"]["always_strongest"]["mean_cost"] == pytest.approx(1.0)
    assert 0.1 <= floor["mean_cost"] <= 1.0
    assert "best single for floor" in capsys.readouterr().out


def test_train_outcomes_writes_a_servable_artefact(
    tmp_path: Path, outcomes_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = cli().parse_args(
        ["train-outcomes", str(outcomes_csv), "--encoder", "hash", "--out", str(tmp_path / "a")]
    )
    assert args.func(args) == 0
    assert "held-out APGR" in capsys.readouterr().out
    router = load_artefact(tmp_path / "a")
    encoder = load_encoder("hash")
    assert (router.encoder_space, router.dim) == (encoder.space, encoder.dim)
    candidates, prices = ["cheap-model", "strong-model"], {"cheap-model": 0.1, "strong-model": 1.0}
    maths = encoder.encode(["compute the integral of polynomial number 999 step by step"])[0]
    trivia = encoder.encode(["which capital city is famous for landmark 999"])[0]
    assert router.choose(maths, candidates, prices, 0.5).backend == "strong-model"
    assert router.choose(trivia, candidates, prices, 0.5).backend == "cheap-model"
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["metrics"]["held_out"]["apgr"] > 0.5
    assert np.isclose(sum(1 for _ in meta["backends"]), 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("prompt,a,b\nhi,True\n", "outcomes.csv:2: expected 3 fields, got 2"),
        ("prompt,a,b\nhi,True,huh\n", "outcomes.csv:2: quality 'huh' is not true/false or a number"),
    ],
)
def test_malformed_file_is_one_line_and_exit_2(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text(content)
    args = eval_parser().parse_args(["--outcomes", str(path), "--encoder", "hash"])
    assert eval_outcomes(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("gateway eval: error: ") and message in err


def test_floor_mode_without_prices_and_unknown_encoder(
    tmp_path: Path, outcomes_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = eval_parser().parse_args(["--outcomes", str(outcomes_csv), "--encoder", "hash", "--mode", "floor"])
    assert eval_outcomes(args) == 2
    assert "floor mode needs --prices" in capsys.readouterr().err
    args = cli().parse_args(
        ["train-outcomes", str(outcomes_csv), "--encoder", "nope", "--out", str(tmp_path)]
    )
    assert train_outcomes(args) == 2
    assert "unknown encoder 'nope'" in capsys.readouterr().err


def test_eval_accepts_a_namespace_from_a_parser_without_outcome_options(
    outcomes_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The route-classifier eval parser only knows --outcomes, --out and --encoder.
    args = argparse.Namespace(outcomes=outcomes_csv, out=None, encoder="hash", artefact=None)
    assert eval_outcomes(args) == 0
    assert "APGR" in capsys.readouterr().out
