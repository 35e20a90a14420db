"""docs/metrics.md lists exactly the metrics gateway/metrics.py defines, with the same labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from gateway.metrics import GatewayMetrics
from gateway.types import Reason

ROOT = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\|\s*`(gateway_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|\s*(.*?)\s*\|\s*$")


def documented(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """The Summary table: metric -> (type, labels)."""
    text = path.read_text(encoding="utf-8")
    section = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            name, kind, labels = match.groups()
            out[name] = (kind, frozenset(re.findall(r"`([a-z_]+)`", labels)))
    return out


def defined() -> dict[str, tuple[str, frozenset[str]]]:
    """What GatewayMetrics registers, named as scraped (counters with ``_total``)."""
    metrics = GatewayMetrics(CollectorRegistry())
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        # prometheus_client exposes no public accessor for a metric's label names
        name, kind, labels = value._name, str(value._type), frozenset(value._labelnames)
        out[f"{name}_total" if kind == "counter" else name] = (kind, labels)
    return out


def test_docs_list_every_metric_with_its_type_and_labels() -> None:
    docs = documented(ROOT / "docs" / "metrics.md")
    code = defined()
    assert set(docs) == set(code), (
        f"only in docs: {sorted(set(docs) - set(code))}; only in code: {sorted(set(code) - set(docs))}"
    )
    for name, spec in code.items():
        assert docs[name] == spec, f"{name}: docs say {docs[name]}, gateway/metrics.py says {spec}"
    assert "gateway_baseline_cost_usd_total" in docs


def test_every_metric_has_its_own_section() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    missing = [name for name in defined() if f"### {name}\n" not in text]
    assert not missing, f"no '### name' section in docs/metrics.md for {missing}"


def test_documented_reason_values_are_the_enum() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `reason` |"))
    assert set(re.findall(r"`([a-z_]+)`", row.split("|")[2])) == {r.value for r in Reason}
