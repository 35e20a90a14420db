"""Labelled examples: ``text,label`` rows from JSONL or CSV.

- ``.jsonl`` / ``.ndjson``: one JSON object per line with string fields ``text`` and ``label``;
  other fields are ignored, blank lines are skipped.
- ``.csv``: a header row naming (at least) ``text`` and ``label``; UTF-8, optional BOM.

Every problem raises :class:`DataError` naming the file and line. The dataset digest
(``sha256``) covers the normalised rows in file order — text and label stripped, serialised
as canonical JSON — so reformatting a file does not change it but editing an example does.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers.errors import DataError

SUFFIXES = (".jsonl", ".ndjson", ".csv")


@dataclass(frozen=True)
class Example:
    text: str
    label: str


@dataclass(frozen=True)
class Dataset:
    source: str
    examples: tuple[Example, ...]

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def targets(self) -> list[str]:
        return [e.label for e in self.examples]

    @property
    def labels(self) -> tuple[str, ...]:
        """Distinct labels, sorted."""
        return tuple(sorted({e.label for e in self.examples}))

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(e.label for e in self.examples)
        return {label: counts[label] for label in self.labels}

    @property
    def sha256(self) -> str:
        return dataset_sha256(self.examples)


def dataset_sha256(examples: Iterable[Example]) -> str:
    digest = hashlib.sha256()
    for e in examples:
        line = json.dumps(
            {"label": e.label.strip(), "text": e.text.strip()}, ensure_ascii=False, sort_keys=True
        )
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def read_examples(path: str | Path) -> Dataset:
    """Read a JSONL or CSV file of labelled examples; at least one row is required."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unknown extension {suffix or '(none)'!r}; expected one of {', '.join(SUFFIXES)}"
        )
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = tuple(_read_csv(path, handle) if suffix == ".csv" else _read_jsonl(path, handle))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not rows:
        raise DataError(f"{path}: no examples")
    return Dataset(str(path), rows)


def _example(path: Path, line: int, text: object, label: object) -> Example:
    if not isinstance(text, str):
        raise DataError(f"{path}:{line}: 'text' must be a string")
    if not isinstance(label, str):
        raise DataError(f"{path}:{line}: 'label' must be a string")
    if not text.strip():
        raise DataError(f"{path}:{line}: empty text")
    if not label.strip():
        raise DataError(f"{path}:{line}: empty label")
    return Example(text.strip(), label.strip())


def _read_jsonl(path: Path, lines: Iterable[str]) -> Iterator[Example]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object with 'text' and 'label'")
        missing = [key for key in ("text", "label") if key not in row]
        if missing:
            raise DataError(f"{path}:{number}: missing {' and '.join(repr(m) for m in missing)}")
        yield _example(path, number, row["text"], row["label"])


def _read_csv(path: Path, lines: Iterable[str]) -> Iterator[Example]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(f"{path}:1: malformed CSV ({exc})") from None
    columns = [name.strip().lower() for name in header]
    missing = [key for key in ("text", "label") if key not in columns]
    if missing:
        raise DataError(
            f"{path}:1: header must name columns 'text' and 'label' "
            f"(missing {', '.join(missing)}; got {header})"
        )
    text_at, label_at = columns.index("text"), columns.index("label")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{reader.line_num}: expected {len(header)} fields, found {len(row)}")
        yield _example(path, reader.line_num, row[text_at], row[label_at])


def label_indices(targets: Sequence[str], labels: Sequence[str]) -> list[int]:
    index = {label: i for i, label in enumerate(labels)}
    return [index[t] for t in targets]
