"""Loading outcome files, and one-line errors for malformed ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.outcomes_data import OutcomesError, excluded_prompts, load_outcomes

from .conftest import STRONG, WEAK, synthetic_rows, write_csv


def test_csv_with_booleans(outcomes_csv: Path) -> None:
    table = load_outcomes(outcomes_csv)
    assert table.backends == (WEAK, STRONG)
    assert table.n == 120
    assert table.binary
    assert table.quality[0].tolist() == [0.0, 0.0]
    assert table.quality[1].tolist() == [1.0, 1.0]
    assert len(table.sha256) == 64


def test_directory_of_csvs_groups_rows_by_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "mmlu_a.csv", synthetic_rows(6))
    write_csv(tmp_path / "mmlu_b.csv", synthetic_rows(4))
    table = load_outcomes(tmp_path)
    assert table.n == 10
    assert table.groups.count("mmlu_a") == 6
    assert table.groups.count("mmlu_b") == 4


def test_jsonl_with_scores_and_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    lines = [
        {"prompt": "p1", "a": 7, "b": 3.5},
        {"prompt": "p2", "a": None, "b": 9, "group": "g"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    table = load_outcomes(path)
    assert table.backends == ("a", "b")
    assert not table.binary
    assert np.isnan(table.quality[1, 0])
    assert table.groups == ("", "g")


def test_long_format_directory(tmp_path: Path) -> None:
    (tmp_path / "question.jsonl").write_text(
        json.dumps({"question_id": "q1", "turns": ["hello"]})
        + "\n"
        + json.dumps({"question_id": "q2", "turns": ["bye"]})
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "scores.csv").write_text(
        "question_id,model,score\nq1,m1,8\nq1,m2,-1\nq2,m1,3\nq2,m2,10\n", encoding="utf-8"
    )
    table = load_outcomes(tmp_path)
    assert table.prompts == ("hello", "bye")
    assert table.backends == ("m1", "m2")
    assert table.quality[0, 0] == 8 and np.isnan(table.quality[0, 1])


def test_excluded_prompts_reads_routellm_format(tmp_path: Path) -> None:
    path = tmp_path / "contaminated.jsonl"
    path.write_text(json.dumps({"train_prompt": "x", "eval_prompt": "y"}) + "\n", encoding="utf-8")
    assert excluded_prompts(path) == frozenset({"y"})


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "", "empty file"),
        ("a.csv", "text,m1\nhi,True\n", "header must be 'prompt,<backend>"),
        ("a.csv", "prompt,m1,m2\nhi,True\n", r"a.csv:2: expected 3 fields, got 2"),
        ("a.csv", "prompt,m1\nhi,maybe\n", r"a.csv:2: quality 'maybe' is not true/false or a number"),
        ("a.csv", "prompt,m1,m1\nhi,1,1\n", "duplicate backend"),
        ("a.jsonl", '{"prompt": "x", "m": 1}\n{broken\n', r"a.jsonl:2: invalid JSON"),
        ("a.jsonl", '{"m": 1}\n', r"a.jsonl:1: missing 'prompt'"),
        ("a.jsonl", '{"prompt": "x", "m": 1}\n{"prompt": "y", "n": 1}\n', "differ from line 1"),
        ("a.jsonl", "[1, 2]\n", "expected a JSON object"),
        ("a.txt", "prompt,m\n", "unsupported file type"),
    ],
)
def test_malformed_files_give_one_line_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OutcomesError, match=message) as info:
        load_outcomes(path)
    assert "\n" not in str(info.value)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(OutcomesError, match="no such file"):
        load_outcomes(tmp_path / "nope.csv")
    with pytest.raises(OutcomesError, match=r"no \.csv or \.jsonl"):
        load_outcomes(tmp_path)


def test_files_with_different_backends_in_one_directory(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", synthetic_rows(3))
    (tmp_path / "b.csv").write_text("prompt,x,y\nhi,True,False\n", encoding="utf-8")
    with pytest.raises(OutcomesError, match="backend columns differ"):
        load_outcomes(tmp_path)
