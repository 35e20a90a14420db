"""Reading the YAML files people write (policies, key files) with errors that point at the line
and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_yaml(text: str, path: Path, error: type[Exception]) -> Any:
    """Parse ``text``; a syntax error becomes ``error("<path>: line L, column C: not valid YAML: ...")``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}:{where}: not valid YAML: {problem}") from None


def key_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a key path people read: ``backends[0].timeouts.total_ms``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
