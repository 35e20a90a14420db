"""Prometheus rules: syntax (promtool check rules) and behaviour (promtool test rules)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

RULES = ("deploy/prometheus/recording_rules.yml", "deploy/prometheus/alerting_rules.yml")
RUNBOOK = "https://github.com/routing-gateway/routing-gateway/blob/main/docs/operations.md#"


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _alerts(root: Path) -> list[dict[str, object]]:
    data = yaml.safe_load((root / RULES[1]).read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules(repo_root: Path, promtool: str) -> None:
    result = _run([promtool, "check", "rules", *RULES], repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests(repo_root: Path, promtool: str) -> None:
    tests = sorted(
        str(p.relative_to(repo_root)) for p in (repo_root / "deploy/prometheus/tests").glob("*.yml")
    )
    assert tests
    result = _run([promtool, "test", "rules", *tests], repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing(repo_root: Path) -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in (repo_root / "deploy/prometheus/tests").glob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in data["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {str(rule["alert"]) for rule in _alerts(repo_root)}
    assert names - fired == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"


def test_alerts_have_annotations_and_runbook_anchors(repo_root: Path) -> None:
    runbook = (repo_root / "docs/operations.md").read_text(encoding="utf-8")
    headings = {line[4:].strip().lower() for line in runbook.splitlines() if line.startswith("### ")}
    for rule in _alerts(repo_root):
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]
        url = str(annotations["runbook_url"])
        assert url.startswith(RUNBOOK), url
        assert url.removeprefix(RUNBOOK) in headings, f"docs/operations.md has no section for {url}"
        labels = rule["labels"]
        assert isinstance(labels, dict)
        assert labels["severity"] in {"critical", "warning"}


def test_rules_select_the_llm_gateway_job(repo_root: Path) -> None:
    for rel in RULES:
        data = yaml.safe_load((repo_root / rel).read_text(encoding="utf-8"))
        for group in data["groups"]:
            for rule in group["rules"]:
                expr = str(rule["expr"])
                if "gateway_" in expr and "{" in expr:
                    assert 'job="llm-gateway"' in expr, rule
