"""Every PromQL expression the project ships, ready to send to a Prometheus server.

Sources: the Grafana dashboard (deploy/grafana/*.json) and the rule files
(deploy/prometheus/*_rules.yml). Dashboard template variables are replaced by values that work
against a plain Prometheus (see ``DEFAULT_VARIABLES``); anything else that looks like a
variable is an error, so a new variable cannot slip through untested.

Each ``Expression`` carries ``probes``: the queries that must return data on a gateway that has
served traffic for a short while.

- dashboard targets and recording rules: the expression itself;
- alerts: an alert expression returns data only while it fires, so the probes are the vector
  operands of its top-level comparisons and ``and``/``unless`` (``a > 0.05 and b > 0.05``
  gives ``a`` and ``b``); constant operands such as ``(14.4 * 0.005)`` are dropped.

Usage from a test that runs a real Prometheus::

    for expr in all_expressions(repo_root, rate_interval="30s"):
        for query in expr.probes:
            assert instant_query(query), f"{expr.where}: no data for {query}"
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DASHBOARD_GLOB = "deploy/grafana/*.json"
RULES_GLOB = "deploy/prometheus/*_rules.yml"

DEFAULT_VARIABLES: Mapping[str, str] = {
    "job": "llm-gateway",
    "instance": ".*",  # "All": every use of $instance is a regex match (=~)
    "datasource": "prometheus",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_IDENT = re.compile(r"[A-Za-z0-9_:]")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_SPLIT_KEYWORDS = ("and", "unless")
_MODIFIERS = re.compile(
    r"^\s*(?:bool\s+)?(?:(?:on|ignoring)\s*\([^)]*\)\s*)?(?:(?:group_left|group_right)\s*(?:\([^)]*\))?\s*)?"
)
_CONSTANT = re.compile(r"^[\d\s.()+\-*/eE]+$")


class UnknownVariableError(ValueError):
    """An expression uses a template variable this module does not know how to fill."""


@dataclass(frozen=True)
class Expression:
    source: str  # file path relative to the repository root
    where: str  # panel title and refId, or rule name
    kind: str  # "panel", "record" or "alert"
    raw: str  # as written in the file
    query: str  # variables substituted
    probes: tuple[str, ...]  # queries that must return data under load


def substitute(expr: str, variables: Mapping[str, str] = DEFAULT_VARIABLES) -> str:
    """Replace Grafana template variables ($x, ${x}, ${x:fmt}, [[x]])."""

    def repl(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g is not None)
        if name not in variables:
            raise UnknownVariableError(f"no value for template variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(repl, expr)


def _top_level_tokens(expr: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of binary operators that split ``expr`` at nesting depth 0."""
    depth = 0
    quote: str | None = None
    i = 0
    n = len(expr)
    while i < n:
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            op = next((c for c in _COMPARISONS if expr.startswith(c, i)), None)
            if op is not None and not expr.startswith("=~", i) and not expr.startswith("!~", i):
                yield i, i + len(op)
                i += len(op)
                continue
            for word in _SPLIT_KEYWORDS:
                end = i + len(word)
                if (
                    expr.startswith(word, i)
                    and (i == 0 or not _IDENT.match(expr[i - 1]))
                    and (end >= n or not _IDENT.match(expr[end]))
                ):
                    yield i, end
                    i = end
                    break
            else:
                i += 1
                continue
            continue
        i += 1


def operands(expr: str) -> tuple[str, ...]:
    """Vector operands of the top-level comparisons and ``and``/``unless`` of ``expr``."""
    parts: list[str] = []
    start = 0
    for op_start, op_end in _top_level_tokens(expr):
        parts.append(expr[start:op_start])
        start = op_end
    parts.append(expr[start:])
    cleaned = []
    for part in parts:
        text = _MODIFIERS.sub("", part, count=1).strip()
        if text and not _CONSTANT.match(text):
            cleaned.append(" ".join(text.split()))
    return tuple(cleaned)


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def dashboard_expressions(
    path: Path, root: Path, variables: Mapping[str, str] = DEFAULT_VARIABLES
) -> list[Expression]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for panel in _walk_panels(data.get("panels", [])):
        for target in panel.get("targets", []):
            raw = target.get("expr")
            if not raw:
                continue
            query = " ".join(substitute(raw, variables).split())
            out.append(
                Expression(
                    source=str(path.relative_to(root)),
                    where=f"panel {panel.get('title')!r} target {target.get('refId')}",
                    kind="panel",
                    raw=raw,
                    query=query,
                    probes=(query,),
                )
            )
    return out


def rule_expressions(path: Path, root: Path) -> list[Expression]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for group in data.get("groups", []):
        for rule in group.get("rules", []):
            raw = str(rule["expr"])
            query = " ".join(raw.split())
            if "alert" in rule:
                kind, name, probes = "alert", rule["alert"], operands(query)
            else:
                kind, name, probes = "record", rule["record"], (query,)
            out.append(
                Expression(
                    source=str(path.relative_to(root)),
                    where=f"{kind} {name} (group {group['name']})",
                    kind=kind,
                    raw=raw,
                    query=query,
                    probes=probes,
                )
            )
    return out


def all_expressions(root: Path, *, rate_interval: str | None = None) -> list[Expression]:
    """Every expression from the dashboards and the rule files under ``root``."""
    variables = dict(DEFAULT_VARIABLES)
    if rate_interval is not None:
        variables["__rate_interval"] = rate_interval
    out: list[Expression] = []
    for path in sorted(root.glob(DASHBOARD_GLOB)):
        out.extend(dashboard_expressions(path, root, variables))
    for path in sorted(root.glob(RULES_GLOB)):
        out.extend(rule_expressions(path, root))
    return out


def recorded_names(root: Path) -> set[str]:
    """Names defined by the recording rules."""
    names: set[str] = set()
    for path in sorted(root.glob(RULES_GLOB)):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in data.get("groups", []):
            names.update(rule["record"] for rule in group.get("rules", []) if "record" in rule)
    return names


_SELECTOR_NAME = re.compile(r"(?<![A-Za-z0-9_:\"'])([A-Za-z_:][A-Za-z0-9_:]*)\s*(?=\{|\[|\)|$|\s)")
_NON_METRICS = frozenset(
    {
        "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
        "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
        "and", "or", "unless", "bool", "offset", "rate", "irate", "increase", "delta", "idelta",
        "deriv", "histogram_quantile", "vector", "scalar", "abs", "round", "clamp_min",
        "clamp_max", "label_replace", "label_join", "time", "absent", "absent_over_time",
        "max_over_time", "min_over_time", "avg_over_time", "sum_over_time", "inf", "nan",
    }
)  # fmt: skip


def metric_names(query: str) -> set[str]:
    """Metric and recorded-series names a (substituted) query selects."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_grouping = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", without_labels
    )
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_grouping)
    names = set()
    for match in _SELECTOR_NAME.finditer(without_ranges):
        name = match.group(1)
        if name.lower() in _NON_METRICS:
            continue
        names.add(name)
    return names
