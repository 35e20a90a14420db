"""Outcome files: per-query quality of several backends, loaded into one table.

Accepted inputs (``load_outcomes(path)``):

* a CSV file whose first column is ``prompt`` and whose other columns are backend names; cells are
  ``True``/``False`` (answer correct), numbers (a quality score) or empty (no outcome). RouteLLM's
  MMLU response files have this shape.
* a JSONL file, one object per line: ``{"prompt": ..., "<backend>": value, ...}``; the keys
  ``prompt``, ``id`` and ``group`` are reserved, every other key is a backend.
* a directory of such files (``*.csv`` / ``*.jsonl``, same backends in each); the file stem becomes
  the row's ``group`` (e.g. the MMLU subject).
* a long-format directory holding ``question.jsonl`` (``question_id``, ``turns[0]`` = prompt) and
  ``scores.csv`` (``question_id,model,<score>``), as in arena-hard's bench; negative scores mean
  "no outcome".

Every problem with a file raises ``OutcomesError`` with a one-line message naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from classifiers.errors import DataError

Matrix = npt.NDArray[np.float64]
RESERVED_KEYS = frozenset({"prompt", "id", "group"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class OutcomesError(DataError):
    """A malformed outcomes file or an impossible request on one (message is one line)."""


@dataclass(frozen=True)
class OutcomesTable:
    """Quality of each backend on each prompt; ``quality[i, j]`` is NaN when there is no outcome."""

    prompts: tuple[str, ...]
    groups: tuple[str, ...]
    backends: tuple[str, ...]
    quality: Matrix
    binary: bool
    source: str
    sha256: str

    def __post_init__(self) -> None:
        if self.quality.shape != (len(self.prompts), len(self.backends)):
            raise OutcomesError(f"{self.source}: quality shape does not match prompts x backends")

    @property
    def n(self) -> int:
        return len(self.prompts)

    def column(self, backend: str) -> Matrix:
        if backend not in self.backends:
            raise OutcomesError(f"{self.source}: no backend {backend!r} (have {', '.join(self.backends)})")
        return self.quality[:, self.backends.index(backend)]

    def subset(self, mask: npt.NDArray[np.bool_]) -> OutcomesTable:
        index = np.flatnonzero(mask)
        return OutcomesTable(
            prompts=tuple(self.prompts[i] for i in index),
            groups=tuple(self.groups[i] for i in index),
            backends=self.backends,
            quality=self.quality[index],
            binary=self.binary,
            source=self.source,
            sha256=self.sha256,
        )


def load_outcomes(path: str | Path) -> OutcomesTable:
    """Load a CSV/JSONL file or a directory of them (see the module docstring)."""
    root = Path(path)
    if not root.exists():
        raise OutcomesError(f"{root}: no such file or directory")
    if root.is_dir():
        if (root / "question.jsonl").is_file() and (root / "scores.csv").is_file():
            return _load_long_dir(root)
        files = sorted(p for p in root.iterdir() if p.suffix in {".csv", ".jsonl"} and p.is_file())
        if not files:
            raise OutcomesError(f"{root}: directory holds no .csv or .jsonl outcome files")
        return _combine(root, [_read_file(p, group=p.stem) for p in files])
    return _combine(root, [_read_file(root, group="")])


def excluded_prompts(path: str | Path) -> frozenset[str]:
    """Prompts to leave out of an evaluation: a JSONL with ``eval_prompt`` (RouteLLM) or ``prompt``."""
    file = Path(path)
    prompts: set[str] = set()
    for number, record in _jsonl_records(file):
        text = record.get("eval_prompt", record.get("prompt"))
        if not isinstance(text, str):
            raise OutcomesError(f"{file}:{number}: expected an 'eval_prompt' or 'prompt' string")
        prompts.add(text)
    return frozenset(prompts)


@dataclass(frozen=True)
class _Rows:
    path: Path
    backends: tuple[str, ...]
    prompts: list[str]
    groups: list[str]
    values: list[list[float]]
    binary: bool
    digest: str


def _read_file(path: Path, group: str) -> _Rows:
    if path.suffix == ".csv":
        return _read_csv(path, group)
    if path.suffix == ".jsonl":
        return _read_jsonl(path, group)
    raise OutcomesError(f"{path}: unsupported file type (expected .csv or .jsonl)")


def _read_csv(path: Path, group: str) -> _Rows:
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            raise OutcomesError(f"{path}: empty file")
        if header[0].strip() != "prompt" or len(header) < 2:
            raise OutcomesError(
                f"{path}: header must be 'prompt,<backend>,...' (got {','.join(header)[:80]!r})"
            )
        backends = tuple(h.strip() for h in header[1:])
        _check_backend_names(path, backends)
        prompts: list[str] = []
        values: list[list[float]] = []
        binary = True
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise OutcomesError(f"{path}:{number}: expected {len(header)} fields, got {len(row)}")
            prompts.append(row[0])
            parsed = [_parse_cell(path, number, cell) for cell in row[1:]]
            binary = binary and all(isinstance(v, bool) or math.isnan(v) for v in parsed)
            values.append([float(v) for v in parsed])
    except csv.Error as exc:
        raise OutcomesError(f"{path}: not valid CSV ({exc})") from None
    except UnicodeDecodeError:
        raise OutcomesError(f"{path}: not UTF-8 text") from None
    return _Rows(path, backends, prompts, [group] * len(prompts), values, binary, _sha(data))


def _read_jsonl(path: Path, group: str) -> _Rows:
    backends: tuple[str, ...] | None = None
    prompts: list[str] = []
    groups: list[str] = []
    values: list[list[float]] = []
    binary = True
    for number, record in _jsonl_records(path):
        prompt = record.get("prompt")
        if not isinstance(prompt, str):
            raise OutcomesError(f"{path}:{number}: missing 'prompt' string")
        keys = tuple(k for k in record if k not in RESERVED_KEYS)
        if backends is None:
            backends = keys
            _check_backend_names(path, backends)
        elif set(keys) != set(backends):
            raise OutcomesError(
                f"{path}:{number}: backends {sorted(keys)} differ from line 1's {sorted(backends)}"
            )
        parsed = [_parse_value(path, number, record[b]) for b in backends]
        binary = binary and all(isinstance(v, bool) or math.isnan(v) for v in parsed)
        prompts.append(prompt)
        raw_group = record.get("group", group)
        groups.append(str(raw_group))
        values.append([float(v) for v in parsed])
    if backends is None:
        raise OutcomesError(f"{path}: empty file")
    return _Rows(path, backends, prompts, groups, values, binary, _sha(_read_bytes(path)))


def _load_long_dir(root: Path) -> OutcomesTable:
    questions = root / "question.jsonl"
    scores = root / "scores.csv"
    ids: list[str] = []
    prompts: list[str] = []
    for number, record in _jsonl_records(questions):
        qid, turns = record.get("question_id"), record.get("turns")
        if (
            not isinstance(qid, str)
            or not isinstance(turns, list)
            or not turns
            or not isinstance(turns[0], str)
        ):
            raise OutcomesError(f"{questions}:{number}: expected 'question_id' and a non-empty 'turns' list")
        ids.append(qid)
        prompts.append(turns[0])
    position = {qid: i for i, qid in enumerate(ids)}
    cells: dict[tuple[int, str], float] = {}
    models: list[str] = []
    data = _read_bytes(scores)
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header = next(reader, None)
        if header is None or len(header) != 3 or header[0] != "question_id" or header[1] != "model":
            raise OutcomesError(f"{scores}: header must be 'question_id,model,<score>'")
        for number, row in enumerate(reader, start=2):
            if len(row) != 3:
                raise OutcomesError(f"{scores}:{number}: expected 3 fields, got {len(row)}")
            if row[0] not in position:
                raise OutcomesError(f"{scores}:{number}: unknown question_id {row[0][:40]!r}")
            value = _parse_value(scores, number, row[2])
            if isinstance(value, bool):
                value = float(value)
            if row[1] not in models:
                models.append(row[1])
            cells[(position[row[0]], row[1])] = math.nan if value < 0 else value
    except (csv.Error, UnicodeDecodeError) as exc:
        raise OutcomesError(f"{scores}: unreadable ({type(exc).__name__})") from None
    quality = np.full((len(ids), len(models)), np.nan)
    for (row_index, model), value in cells.items():
        quality[row_index, models.index(model)] = value
    digest = _sha(_read_bytes(questions) + b"\x00" + data)
    return OutcomesTable(
        tuple(prompts), ("",) * len(prompts), tuple(models), quality, False, str(root), digest
    )


def _combine(root: Path, parts: Sequence[_Rows]) -> OutcomesTable:
    backends = parts[0].backends
    for part in parts[1:]:
        if part.backends != backends:
            raise OutcomesError(f"{part.path}: backend columns differ from {parts[0].path.name}'s")
    prompts = [p for part in parts for p in part.prompts]
    if not prompts:
        raise OutcomesError(f"{root}: no outcome rows")
    quality = np.asarray([v for part in parts for v in part.values], dtype=np.float64)
    digest = hashlib.sha256("".join(part.digest for part in parts).encode()).hexdigest()
    return OutcomesTable(
        prompts=tuple(prompts),
        groups=tuple(g for part in parts for g in part.groups),
        backends=backends,
        quality=quality,
        binary=all(part.binary for part in parts),
        source=str(root),
        sha256=digest if len(parts) > 1 else parts[0].digest,
    )


def _check_backend_names(path: Path, backends: Sequence[str]) -> None:
    if not backends:
        raise OutcomesError(f"{path}: no backend columns")
    if any(not b for b in backends):
        raise OutcomesError(f"{path}: empty backend name in header")
    if len(set(backends)) != len(backends):
        raise OutcomesError(f"{path}: duplicate backend names in header")


def _parse_cell(path: Path, number: int, cell: str) -> bool | float:
    lowered = cell.strip().lower()
    if lowered == "":
        return math.nan
    if lowered in _TRUE - {"1"}:
        return True
    if lowered in _FALSE - {"0"}:
        return False
    try:
        value = float(lowered)
    except ValueError:
        raise OutcomesError(f"{path}:{number}: quality {cell[:30]!r} is not true/false or a number") from None
    if not math.isfinite(value):
        raise OutcomesError(f"{path}:{number}: quality {cell[:30]!r} is not finite")
    return value


def _parse_value(path: Path, number: int, value: object) -> bool | float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(float(value)):
            raise OutcomesError(f"{path}:{number}: quality {value!r} is not finite")
        return float(value)
    if isinstance(value, str):
        return _parse_cell(path, number, value)
    raise OutcomesError(f"{path}:{number}: quality {str(value)[:30]!r} is not true/false or a number")


def _jsonl_records(path: Path) -> Iterable[tuple[int, Mapping[str, object]]]:
    data = _read_bytes(path)
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise OutcomesError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OutcomesError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise OutcomesError(f"{path}:{number}: expected a JSON object")
        yield number, record


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OutcomesError(f"{path}: cannot read ({exc.strerror})") from None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
