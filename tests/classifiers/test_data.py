from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.data import Example, read_examples
from classifiers.errors import DataError


def test_reads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "ex.jsonl"
    path.write_text(
        '{"text": " hello ", "label": "small", "source": "x"}\n\n{"text": "docs?", "label": "rag"}\n'
    )
    data = read_examples(path)
    assert data.examples == (Example("hello", "small"), Example("docs?", "rag"))
    assert data.labels == ("rag", "small")
    assert data.counts == {"rag": 1, "small": 1}
    assert len(data.sha256) == 64


def test_reads_csv_with_bom_and_quoted_commas(tmp_path: Path) -> None:
    path = tmp_path / "ex.csv"
    path.write_text('\ufefflabel,text\nsmall,"hi, there"\nrag,what does the wiki say\n', encoding="utf-8")
    data = read_examples(path)
    assert data.examples == (Example("hi, there", "small"), Example("what does the wiki say", "rag"))


def test_same_rows_in_csv_and_jsonl_have_the_same_digest(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("text,label\nhello,small\n")
    (tmp_path / "b.jsonl").write_text('{"label": "small", "text": "hello"}\n')
    assert read_examples(tmp_path / "a.csv").sha256 == read_examples(tmp_path / "b.jsonl").sha256


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"text": "a", "label": "small"}\n{oops\n', r"bad\.jsonl:2: not valid JSON"),
        ("bad.jsonl", '["a", "small"]\n', r"bad\.jsonl:1: expected a JSON object"),
        ("bad.jsonl", '{"text": "a"}\n', r"bad\.jsonl:1: missing 'label'"),
        ("bad.jsonl", '{"text": "  ", "label": "small"}\n', r"bad\.jsonl:1: empty text"),
        ("bad.jsonl", '{"text": 3, "label": "small"}\n', r"bad\.jsonl:1: 'text' must be a string"),
        ("bad.csv", "text,category\na,b\n", r"bad\.csv:1: header must name columns 'text' and 'label'"),
        ("bad.csv", "text,label\nfine,small\n,rag\n", r"bad\.csv:3: empty text"),
        ("bad.csv", "text,label\nfine,small,extra\n", r"bad\.csv:2: expected 2 fields, found 3"),
        ("bad.csv", "", r"bad\.csv: no examples"),
        ("bad.txt", "text,label\n", r"bad\.txt: unknown extension '\.txt'"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_examples(path)


def test_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_examples(tmp_path / "absent.jsonl")
    (tmp_path / "latin.csv").write_bytes(b"text,label\ncaf\xe9,small\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_examples(tmp_path / "latin.csv")
