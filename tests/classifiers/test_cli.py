from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from classifiers.cli import add_eval_parser, add_train_parser, main
from tests.classifiers.synthetic import make_examples


def _write(path: Path, seed: int, per_label: int = 15) -> Path:
    rows = [json.dumps({"text": e.text, "label": e.label}) for e in make_examples(per_label, seed)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_parsers_register_on_a_host_cli() -> None:
    parser = argparse.ArgumentParser(prog="gateway")
    subparsers = parser.add_subparsers()
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    args = parser.parse_args(["train", "ex.jsonl", "--encoder", "hash", "--out", "art"])
    assert (args.head, args.cv, args.out) == ("logreg", 5, Path("art"))
    assert callable(args.func)
    args = parser.parse_args(["eval", "art", "test.jsonl", "--out", "rep"])
    assert (args.artefact, args.testset, args.outcomes) == (Path("art"), Path("test.jsonl"), None)


def test_train_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_file = _write(tmp_path / "train.jsonl", seed=1)
    test_file = _write(tmp_path / "test.jsonl", seed=2, per_label=5)
    art = tmp_path / "art"
    assert (
        main(["train", str(train_file), "--encoder", "hash", "--out", str(art), "--cv", "3", "--quiet"]) == 0
    )
    out = capsys.readouterr().out
    assert "3-fold cross-validation" in out and "macro-F1" in out
    assert (art / "meta.json").exists()

    report_dir = tmp_path / "report"
    assert main(["eval", str(art), str(test_file), "--out", str(report_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "confusion (rows: true, columns: predicted)" in out
    report = json.loads((report_dir / "report.json").read_text())
    assert report["n"] == 20 and report["encoder"] == "hash"
    assert (report_dir / "confusion_matrix.png").exists() and (report_dir / "reliability.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "{d}/absent.jsonl", "--encoder", "hash", "--out", "{d}/a"], "absent.jsonl: no such file"),
        (
            ["train", "{d}/train.jsonl", "--encoder", "nope", "--out", "{d}/a"],
            "unknown encoder 'nope'; known",
        ),
        (["eval", "{d}/missing-art", "{d}/train.jsonl"], "meta.json not found"),
        (["eval", "{d}/art", "{d}/train.jsonl", "--encoder", "nope"], "unknown encoder 'nope'"),
        (["eval", "{d}/art"], "give ARTEFACT and TESTSET"),
    ],
)
def test_errors_print_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    _write(tmp_path / "train.jsonl", seed=1)
    assert (
        main(
            [
                "train",
                str(tmp_path / "train.jsonl"),
                "--encoder",
                "hash",
                "--out",
                str(tmp_path / "art"),
                "--cv",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main([a.format(d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_eval_refuses_artefact_of_another_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_file = _write(tmp_path / "train.jsonl", seed=1)
    art = tmp_path / "art"
    assert (
        main(["train", str(train_file), "--encoder", "hash", "--out", str(art), "--cv", "0", "--quiet"]) == 0
    )
    meta = json.loads((art / "meta.json").read_text())
    meta["encoder"] = {"id": "minilm", "space": "all-MiniLM-L6-v2", "dim": 256}
    (art / "meta.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["eval", str(art), str(train_file), "--encoder", "hash", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "was trained with encoder 'minilm' (space all-MiniLM-L6-v2, 256-d)" in err


def test_eval_rejects_testset_labels_the_artefact_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_file = _write(tmp_path / "train.jsonl", seed=1)
    art = tmp_path / "art"
    assert (
        main(["train", str(train_file), "--encoder", "hash", "--out", str(art), "--cv", "0", "--quiet"]) == 0
    )
    test_file = tmp_path / "test.jsonl"
    test_file.write_text('{"text": "hi", "label": "mystery"}\n')
    capsys.readouterr()
    assert main(["eval", str(art), str(test_file), "--quiet"]) == 2
    assert "labels ['mystery'] are not among the artefact's labels" in capsys.readouterr().err
