"""The Grafana dashboard and the PromQL helper that a live-Prometheus test relies on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.promql import (
    DEFAULT_VARIABLES,
    UnknownVariableError,
    all_expressions,
    metric_names,
    operands,
    recorded_names,
    substitute,
)

DASHBOARD = "deploy/grafana/routing-gateway.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def _dashboard(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / DASHBOARD).read_text(encoding="utf-8"))
    return data


def _panels(root: Path) -> list[dict[str, Any]]:
    return [p for p in _dashboard(root)["panels"] if p["type"] != "row"]


def documented_metrics(root: Path) -> dict[str, str]:
    """Metric name -> type, from the summary table of docs/metrics.md."""
    table = re.compile(r"^\|\s*`(gateway_\w+)`\s*\|\s*(counter|gauge|histogram)\s*\|", re.MULTILINE)
    return dict(table.findall((root / "docs/metrics.md").read_text(encoding="utf-8")))


def _base_name(name: str, kinds: dict[str, str]) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and kinds.get(base) == "histogram":
            return base
    return name


def test_dashboard_header(repo_root: Path) -> None:
    data = _dashboard(repo_root)
    assert 36 <= data["schemaVersion"] <= 41
    assert data["uid"] and data["title"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    assert variables["job"]["current"]["value"] == "llm-gateway"
    assert variables["instance"]["includeAll"] is True


def test_every_panel_has_a_datasource_and_targets(repo_root: Path) -> None:
    panels = _panels(repo_root)
    assert len(panels) >= 20
    ids = [p["id"] for p in _dashboard(repo_root)["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_instance_variable_is_only_used_as_a_regex(repo_root: Path) -> None:
    for panel in _panels(repo_root):
        for target in panel["targets"]:
            for match in re.finditer(r"(\w+)\s*(=~|!~|=|!=)\s*\"\$(job|instance)\"", target["expr"]):
                assert match.group(2) == "=~", f"{panel['title']}: {match.group(0)}"


def test_dashboard_metrics_are_documented_or_recorded(repo_root: Path) -> None:
    kinds = documented_metrics(repo_root)
    assert len(kinds) >= 20
    recorded = recorded_names(repo_root)
    for expr in all_expressions(repo_root):
        for name in metric_names(expr.query):
            if name == "up" or name in recorded:
                continue
            assert _base_name(name, kinds) in kinds, (
                f"{expr.source} {expr.where}: {name} not in docs/metrics.md"
            )


def test_every_catalogue_metric_is_on_the_dashboard_or_in_a_rule(repo_root: Path) -> None:
    kinds = documented_metrics(repo_root)
    used = {_base_name(n, kinds) for e in all_expressions(repo_root) for n in metric_names(e.query)}
    unused = set(kinds) - used - {"gateway_baseline_cost_usd_total"}
    assert unused == set()


def test_dashboard_uses_only_existing_recording_rules(repo_root: Path) -> None:
    recorded = recorded_names(repo_root)
    for expr in all_expressions(repo_root):
        if expr.kind == "panel":
            for name in metric_names(expr.query):
                if ":" in name:
                    assert name in recorded, f"{expr.where}: {name}"


def test_every_expression_parses(repo_root: Path, promtool: str, tmp_path: Path) -> None:
    rules = [
        {"record": f"check:expr_{i}", "expr": query}
        for i, expr in enumerate(all_expressions(repo_root))
        for query in (expr.query, *expr.probes)
    ]
    path = tmp_path / "all.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "all", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_helper_covers_dashboard_and_rules(repo_root: Path) -> None:
    exprs = all_expressions(repo_root, rate_interval="30s")
    kinds = {e.kind for e in exprs}
    assert kinds == {"panel", "record", "alert"}
    for expr in exprs:
        assert "$" not in expr.query, expr
        assert expr.probes, expr
    panel_queries = " ".join(e.query for e in exprs if e.kind == "panel")
    assert "[30s]" in panel_queries
    assert 'job=~"llm-gateway"' in panel_queries
    assert 'instance=~".*"' in panel_queries
    alert_count = sum(1 for e in exprs if e.kind == "alert")
    assert alert_count == 10


def test_operands_split_alerts_into_probes() -> None:
    expr = 'a:b:ratio_rate1h{job="x"} > (14.4 * 0.005) and a:b:ratio_rate5m{job="x"} > (14.4 * 0.005)'
    assert operands(expr) == ('a:b:ratio_rate1h{job="x"}', 'a:b:ratio_rate5m{job="x"}')
    assert operands("x:cost:rate1h > on (job) x:budget") == ("x:cost:rate1h", "x:budget")
    assert operands('up{job="j"} == 0') == ('up{job="j"}',)
    assert operands('sum by (job) (rate(m{l=~"a|b",k!="v>1"}[5m])) > 0') == (
        'sum by (job) (rate(m{l=~"a|b",k!="v>1"}[5m]))',
    )
    assert operands("(a or b * 0) / c") == ("(a or b * 0) / c",)
    assert operands("sandwich_total > 1") == ("sandwich_total",)


def test_substitute_fills_known_variables_and_refuses_unknown_ones() -> None:
    assert substitute('rate(m{job=~"$job"}[$__rate_interval])') == 'rate(m{job=~"llm-gateway"}[1m])'
    assert substitute('m{instance=~"${instance}"}') == 'm{instance=~".*"}'
    assert DEFAULT_VARIABLES["job"] == "llm-gateway"
    with pytest.raises(UnknownVariableError):
        substitute('m{pod=~"$pod"}')


def test_metric_names_ignores_functions_and_labels() -> None:
    query = 'histogram_quantile(0.99, sum by (le, route) (rate(gateway_x_bucket{job=~"a"}[1m]))) or on () vector(0)'
    assert metric_names(query) == {"gateway_x_bucket"}
    assert metric_names('job:y:rate5m{job=~"llm-gateway"} / ignoring (route) group_left up') == {
        "job:y:rate5m",
        "up",
    }
