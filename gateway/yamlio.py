"""Reading the YAML files people write (policies, key files) with errors that point at the line."""

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
