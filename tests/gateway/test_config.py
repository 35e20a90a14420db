"""The policy loader: good files load; bad files fail with the file, the key path and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import PolicyError, load_policy, parse_policy
from gateway.runtime import compile_policy
from tests.gateway.conftest import POLICY_YAML

REPO = Path(__file__).resolve().parents[2]


def test_default_policy_loads_and_compiles() -> None:
    policy = load_policy(REPO / "policies" / "default.yaml")
    runtime = compile_policy(policy, env={})
    assert set(runtime.routes) == {"small", "rag", "long_context", "frontier"}
    assert runtime.pinnable["sim-small"] == "small-ft"
    assert policy.classifier is not None
    assert policy.classifier.artefact.is_absolute()  # resolved relative to the policy file


def test_every_shipped_policy_loads() -> None:
    for path in (REPO / "policies").glob("*.yaml"):
        load_policy(path)


def errors_for(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, Path("p.yaml"))
    return str(info.value)


def test_unknown_key_is_named_with_its_path() -> None:
    message = errors_for(
        POLICY_YAML.replace("max_context_tokens: 1000,", "max_context_tokens: 1000, colour: red,")
    )
    assert "p.yaml" in message
    assert "backends[0].colour: unknown key" in message


def test_wrong_type_and_range() -> None:
    message = errors_for(POLICY_YAML.replace("price_per_mtok_in: 1,", "price_per_mtok_in: -1,"))
    assert "backends[0].price_per_mtok_in" in message
    assert "greater than or equal to 0" in message


def test_route_naming_unknown_backend() -> None:
    message = errors_for(POLICY_YAML.replace("[small-a, big-a]", "[small-a, ghost]"))
    assert "routes.small: unknown backend 'ghost'" in message


def test_unknown_default_route() -> None:
    assert "default_route: unknown route 'nowhere'" in errors_for(
        POLICY_YAML.replace("default_route: frontier", "default_route: nowhere")
    )


def test_api_key_must_be_an_env_var_name_not_a_key() -> None:
    message = errors_for(POLICY_YAML.replace("api_key_env: TEST_BIG_KEY", "api_key_env: sk-live-123"))
    assert "backends[3].api_key_env" in message
    assert "environment variable name" in message


def test_duplicate_backend_names() -> None:
    assert "repeated: small-a" in errors_for(POLICY_YAML.replace("name: rag-a", "name: small-a"))


def test_bad_yaml_names_line() -> None:
    message = errors_for("name: x\nbackends: [\n")
    assert "p.yaml" in message and "line" in message and "not valid YAML" in message


def test_top_level_must_be_mapping() -> None:
    assert "mapping" in errors_for("- 1\n- 2\n")


def test_missing_file() -> None:
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy("/nonexistent/policy.yaml")


def test_timeouts_must_be_ordered() -> None:
    text = POLICY_YAML.replace(
        "price_per_mtok_in: 1, price_per_mtok_out: 2}",
        "price_per_mtok_in: 1, price_per_mtok_out: 2, timeouts: {first_byte_ms: 5000, total_ms: 10}}",
    )
    assert "total_ms must be at least first_byte_ms" in errors_for(text)


def test_missing_key_env_var_is_a_clear_error_at_compile() -> None:
    policy = parse_policy(POLICY_YAML, Path("p.yaml"))
    with pytest.raises(PolicyError, match="TEST_BIG_KEY is not set"):
        compile_policy(policy, env={})


def test_key_is_not_in_runtime_repr() -> None:
    policy = parse_policy(POLICY_YAML, Path("p.yaml"))
    runtime = compile_policy(policy, env={"TEST_BIG_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(runtime)
    assert runtime.backends["big-a"].auth_headers["authorization"] == "Bearer sk-very-secret"


def test_version_changes_with_content() -> None:
    a = compile_policy(parse_policy(POLICY_YAML, Path("p.yaml")), env={"TEST_BIG_KEY": "k"})
    b = compile_policy(
        parse_policy(POLICY_YAML.replace("threshold_tokens: 2000", "threshold_tokens: 3000"), Path("p.yaml")),
        env={"TEST_BIG_KEY": "k"},
    )
    assert a.version.startswith("7+") and a.version != b.version
