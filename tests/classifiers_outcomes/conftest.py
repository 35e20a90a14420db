"""A tiny synthetic outcomes set: the cheap backend fails on arithmetic prompts, not on trivia."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

WEAK = "cheap-model"
STRONG = "strong-model"


def synthetic_rows(n: int = 120) -> list[tuple[str, bool, bool]]:
    rows = []
    for i in range(n):
        if i % 3 == 0:
            # Arithmetic: only the strong backend gets these right (one in five it fails too).
            rows.append((f"compute the integral of polynomial number {i} step by step", False, i % 15 != 0))
        else:
            rows.append((f"which capital city is famous for landmark {i}", True, i % 5 != 0))
    return rows


def write_csv(path: Path, rows: list[tuple[str, bool, bool]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", WEAK, STRONG])
        for prompt, weak, strong in rows:
            writer.writerow([prompt, weak, strong])
    return path


@pytest.fixture
def outcomes_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "outcomes.csv", synthetic_rows())
