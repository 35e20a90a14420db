"""The Helm chart: lint, render (defaults and every optional feature), validate, key fields."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = "helm/routing-gateway"
ALL_FEATURES = "tests/ops/values-all-features.yaml"
KUBE_VERSION = "1.30.0"

Manifest = dict[str, Any]


def _run(cmd: list[str], root: Path, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(
        cmd, cwd=root, env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _template(root: Path, env: dict[str, str], *args: str) -> str:
    return _run(["helm", "template", "rel", CHART, "--namespace", "llm", *args], root, env)


def _docs(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _find(docs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def _gateway_container(docs: list[Manifest]) -> Manifest:
    deployment = _find(docs, "Deployment", "rel-routing-gateway")
    container: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.fixture(scope="module")
def default_render(repo_root: Path, helm_env: dict[str, str]) -> str:
    return _template(repo_root, helm_env)


@pytest.fixture(scope="module")
def full_render(repo_root: Path, helm_env: dict[str, str]) -> str:
    return _template(repo_root, helm_env, "-f", ALL_FEATURES)


@pytest.mark.parametrize("values", [[], ["-f", ALL_FEATURES]], ids=["defaults", "all-features"])
def test_helm_lint_strict(repo_root: Path, helm_env: dict[str, str], values: list[str]) -> None:
    _run(["helm", "lint", "--strict", CHART, *values], repo_root, helm_env)


@pytest.mark.parametrize("render", ["default_render", "full_render"])
def test_manifests_validate_against_kubernetes_schemas(
    repo_root: Path, render: str, request: pytest.FixtureRequest
) -> None:
    validator = Path(sys.executable).with_name("kubernetes-validate")
    if not validator.exists():
        found = shutil.which("kubernetes-validate")
        if found is None:
            pytest.skip(
                "kubernetes-validate not installed: pip install -c constraints.txt kubernetes-validate"
            )
        validator = Path(found)
    text = request.getfixturevalue(render)
    out = _run([str(validator), "--strict", "-k", KUBE_VERSION, "-"], repo_root, stdin=text)
    assert "ERROR" not in out


def test_default_render_has_the_core_objects_only(default_render: str) -> None:
    kinds = sorted(d["kind"] for d in _docs(default_render))
    assert kinds == ["Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]


def test_all_features_render_every_optional_object(full_render: str) -> None:
    kinds = {d["kind"] for d in _docs(full_render)}
    assert {
        "ServiceMonitor",
        "PrometheusRule",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ConfigMap",
        "PodDisruptionBudget",
    } <= kinds
    _find(_docs(full_render), "Deployment", "rel-routing-gateway-simulator")
    _find(_docs(full_render), "Service", "rel-routing-gateway-simulator")


def test_probes_and_shutdown(default_render: str) -> None:
    docs = _docs(default_render)
    pod = _find(docs, "Deployment")["spec"]["template"]["spec"]
    container = _gateway_container(docs)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "too little time to load the model"
    env = {e["name"]: e.get("value") for e in container["env"]}
    grace = float(env["GATEWAY_SHUTDOWN_GRACE_S"])
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > grace + pre_stop
    assert container["command"] == ["gateway"]
    assert container["args"][:3] == ["serve", "--workers", "2"]
    assert env["HF_HUB_OFFLINE"] == "1"
    assert "resources" in container and container["resources"]["requests"]


def test_security_context_non_root_read_only(full_render: str) -> None:
    for deployment in (d for d in _docs(full_render) if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_secrets_are_references_never_values(full_render: str, default_render: str) -> None:
    for text in (default_render, full_render):
        assert all(d["kind"] != "Secret" for d in _docs(text))
    env = {e["name"]: e for e in _gateway_container(_docs(full_render))["env"]}
    for name, key in (("OPENAI_API_KEY", "openai-api-key"), ("ANTHROPIC_API_KEY", "anthropic-api-key")):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "llm-backend-keys", "key": key}
    default_env = {e["name"] for e in _gateway_container(_docs(default_render))["env"]}
    assert not any("KEY" in name or "TOKEN" in name or "SECRET" in name for name in default_env)


def test_secret_env_without_existing_secret_is_refused(repo_root: Path, helm_env: dict[str, str]) -> None:
    cmd = ["helm", "template", "rel", CHART, "--set", "secrets.env[0].name=OPENAI_API_KEY"]
    cmd += ["--set", "secrets.env[0].key=k"]
    result = subprocess.run(
        cmd, cwd=repo_root, env=helm_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "secrets.existingSecret" in result.stderr


def test_short_termination_grace_is_refused(repo_root: Path, helm_env: dict[str, str]) -> None:
    cmd = ["helm", "template", "rel", CHART, "--set", "terminationGracePeriodSeconds=30"]
    result = subprocess.run(
        cmd, cwd=repo_root, env=helm_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "terminationGracePeriodSeconds" in result.stderr


def test_unknown_values_are_rejected_by_the_schema(repo_root: Path, helm_env: dict[str, str]) -> None:
    cmd = ["helm", "template", "rel", CHART, "--set", "gateway.wokers=3"]
    result = subprocess.run(
        cmd, cwd=repo_root, env=helm_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "wokers" in result.stderr


def test_service_monitor_only_when_enabled(default_render: str, full_render: str) -> None:
    assert all(d["kind"] != "ServiceMonitor" for d in _docs(default_render))
    monitor = _find(_docs(full_render), "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == "http"
    assert {"action": "replace", "targetLabel": "job", "replacement": "llm-gateway"} in endpoint[
        "relabelings"
    ]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_policy_from_inline_values_and_existing_configmap(repo_root: Path, helm_env: dict[str, str]) -> None:
    inline = _docs(_template(repo_root, helm_env, "--set-string", "policy.inline=name: x"))
    configmap = _find(inline, "ConfigMap")
    assert configmap["data"]["policy.yaml"].strip() == "name: x"
    env = {e["name"]: e.get("value") for e in _gateway_container(inline)["env"]}
    assert env["GATEWAY_POLICY_PATH"] == "/etc/routing-gateway/policy.yaml"

    existing = _docs(_template(repo_root, helm_env, "--set", "policy.existingConfigMap=team-policy"))
    assert all(d["kind"] != "ConfigMap" for d in existing)
    volumes = _find(existing, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "team-policy", "items": [{"key": "policy.yaml", "path": "policy.yaml"}]} in [
        v.get("configMap") for v in volumes
    ]


def test_demo_policy_is_a_valid_policy(full_render: str, tmp_path: Path) -> None:
    config = pytest.importorskip("gateway.config")
    text = _find(_docs(full_render), "ConfigMap")["data"]["policy.yaml"]
    policy = config.parse_policy(text, tmp_path / "policy.yaml")
    assert {b.base_url.host for b in policy.backends} == {"rel-routing-gateway-simulator"}
    assert set(policy.routes) == {"small", "rag", "long_context", "frontier"}


def test_prometheus_rule_renders_the_rule_files_with_the_budget(
    full_render: str, repo_root: Path, tmp_path: Path
) -> None:
    rule = _find(_docs(full_render), "PrometheusRule")
    groups = rule["spec"]["groups"]
    expected = []
    for name in ("recording_rules.yml", "alerting_rules.yml"):
        expected += yaml.safe_load((repo_root / "deploy/prometheus" / name).read_text(encoding="utf-8"))[
            "groups"
        ]
    budget = next(g for g in expected if g["name"] == "llm-gateway.budget")
    budget["rules"][0]["expr"] = "vector(120)"  # prometheusRule.spendBudgetUsdPerHour in the values file
    assert groups == expected
    promtool = shutil.which("promtool")
    if promtool is not None:
        path = tmp_path / "rendered.yml"
        path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
        _run([promtool, "check", "rules", str(path)], repo_root)


@pytest.mark.parametrize("name", ["recording_rules.yml", "alerting_rules.yml"])
def test_chart_copy_of_rules_is_identical(repo_root: Path, name: str) -> None:
    source = (repo_root / "deploy/prometheus" / name).read_bytes()
    copy = (repo_root / CHART / "files" / name).read_bytes()
    assert copy == source, f"cp deploy/prometheus/{name} {CHART}/files/{name}"


def test_image_defaults_to_app_version(default_render: str, repo_root: Path) -> None:
    chart = yaml.safe_load((repo_root / CHART / "Chart.yaml").read_text(encoding="utf-8"))
    image = _gateway_container(_docs(default_render))["image"]
    assert image == f"ghcr.io/routing-gateway/routing-gateway:{chart['appVersion']}"


def test_access_control_from_secrets(full_render: str, default_render: str) -> None:
    docs = _docs(full_render)
    container = _gateway_container(docs)
    env = {e["name"]: e for e in container["env"]}
    assert env["GATEWAY_KEYS_FILE"]["value"] == "/etc/routing-gateway-keys/keys.yaml"
    assert env["GATEWAY_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "gateway-redis",
        "key": "redis-url",
    }
    assert env["GATEWAY_LIMITER_FAIL_MODE"]["value"] == "closed"
    volumes = {
        v["name"]: v
        for v in _find(docs, "Deployment", "rel-routing-gateway")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["keys"]["secret"]["secretName"] == "gateway-keys"
    default_env = {e["name"] for e in _gateway_container(_docs(default_render))["env"]}
    assert "GATEWAY_KEYS_FILE" not in default_env and "GATEWAY_REDIS_URL" not in default_env
