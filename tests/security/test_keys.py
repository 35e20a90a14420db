"""The keys file, keys from the environment, and the `gateway keys` commands."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.auth import (
    KeysFileError,
    build_keyring,
    check_routes,
    hash_key,
    load_keys_file,
    load_ring,
    parse_keys_file,
)
from gateway.cli import main
from gateway.settings import Settings
from tests.e2e.procs import REPO
from tests.security.conftest import ADMIN_KEY, USER_KEY, keys_yaml

DIGEST = hash_key(USER_KEY)


def parse(text: str) -> object:
    return parse_keys_file(text, Path("keys.yaml"))


def test_a_good_file_compiles_into_a_ring() -> None:
    text = f"""
default_limits: {{requests_per_min: 100}}
keys:
  - id: team-a
    sha256: {DIGEST.upper()}
    allowed_routes: [small]
    limits:
      tokens_per_min: 5000
      budget: {{usd: 2.5, per: hour, action: downgrade, downgrade_route: small}}
  - id: team-b
    sha256: {hash_key("b")}
  - id: ops
    sha256: {hash_key(ADMIN_KEY)}
    role: admin
"""
    ring = build_keyring(parse_keys_file(text, Path("keys.yaml")))
    a, b, ops = ring.keys
    assert a.limits is not None and a.limits.requests_per_min is None  # own limits replace defaults
    assert a.limits.tokens_per_min == 5000
    assert a.limits.budget is not None and a.limits.budget.nano_usd == 2_500_000_000
    assert a.limits.budget.window_s == 3600 and not a.limits.budget.reject
    assert b.limits is not None and b.limits.requests_per_min == 100  # the defaults
    assert ops.role == "admin" and ops.limits is None
    assert ring.find(USER_KEY) is a and ring.find(ADMIN_KEY) is ops
    assert ring.find("nope") is None
    assert ring.routes() == {"small"}
    assert USER_KEY not in repr(ring) and DIGEST not in repr(ring)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keys: [{id: a, sha256: abc}]", r"keys\[0\] \(id 'a'\)\.sha256: must be the SHA-256 of the key"),
        (f"keys: [{{id: a, sha256: {DIGEST}, limit: {{}}}}]", r"keys\[0\] \(id 'a'\)\.limit: unknown key"),
        (
            f"keys: [{{id: a, sha256: {DIGEST}, limits: {{budget: {{usd: 1, action: downgrade}}}}}}]",
            r"keys\[0\] \(id 'a'\)\.limits\.budget: .*needs downgrade_route",
        ),
        (
            f"keys: [{{id: a, sha256: {DIGEST}}}, {{id: a, sha256: {hash_key('x')}}}]",
            "key ids must be unique; repeated: a",
        ),
        (
            f"keys: [{{id: a, sha256: {DIGEST}}}, {{id: b, sha256: {DIGEST}}}]",
            "keys 'a' and 'b' have the same sha256",
        ),
        (
            f"keys: [{{id: a, sha256: {DIGEST}, role: admin, limits: {{requests_per_min: 1}}}}]",
            "an admin key only opens /admin",
        ),
        (
            f"keys: [{{id: a, sha256: {DIGEST}, allowed_routes: [rag], "
            "limits: {budget: {usd: 1, action: downgrade, downgrade_route: small}}}]",
            "downgrade_route 'small' is not in allowed_routes",
        ),
        (
            f"keys: [{{id: 'bad id', sha256: {DIGEST}}}]",
            r"keys\[0\] \(id 'bad id'\)\.id: String should match pattern",
        ),
        ("keys: [{id: a", "not valid YAML"),
        ("- just a list", "a keys file must be a YAML mapping"),
    ],
)
def test_bad_files_name_the_file_and_the_entry(text: str, expected: str) -> None:
    with pytest.raises(KeysFileError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith("keys.yaml:")
    assert re.search(expected, message), message


def test_a_raw_key_pasted_as_the_hash_is_never_echoed() -> None:
    with pytest.raises(KeysFileError) as info:
        parse(f"keys: [{{id: a, sha256: {USER_KEY}}}]")
    assert USER_KEY not in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(KeysFileError, match="no such keys file"):
        load_keys_file(tmp_path / "absent.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_keys_file(empty).keys == ()


def test_routes_must_exist_in_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(f"keys: [{{id: a, sha256: {DIGEST}, allowed_routes: [small, tiny]}}]")
    ring = load_ring(path, (), None)
    check_routes(ring, {"small", "tiny"}, path)
    with pytest.raises(KeysFileError, match=r"k\.yaml: .*not in the policy: tiny"):
        check_routes(ring, {"small", "frontier"}, path)


def test_env_keys_are_hashed_at_load_and_never_kept() -> None:
    settings = Settings.from_env({"GATEWAY_API_KEYS": f" {USER_KEY} , other-key ,"})
    assert settings.api_keys == (DIGEST, hash_key("other-key"))
    assert USER_KEY not in repr(settings) and USER_KEY not in settings.model_dump_json()
    ring = build_keyring(None, settings.api_keys)
    key = ring.find(USER_KEY)
    assert key is not None and key.id == f"env-{DIGEST[:8]}" and key.role == "user"


def test_admin_digest_from_env_and_bad_values_are_not_echoed() -> None:
    settings = Settings.from_env({"GATEWAY_ADMIN_KEY_SHA256": hash_key(ADMIN_KEY).upper()})
    ring = build_keyring(None, (), settings.admin_key_sha256)
    found = ring.find(ADMIN_KEY)
    assert found is not None and found.role == "admin"
    with pytest.raises(ValidationError) as info:
        Settings.from_env({"GATEWAY_ADMIN_KEY_SHA256": ADMIN_KEY})
    assert ADMIN_KEY not in str(info.value)


def test_keys_hash_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(USER_KEY + "\n"))
    assert main(["keys", "hash"]) == 0
    assert capsys.readouterr().out.strip() == f"sha256: {DIGEST}"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["keys", "hash"]) == 2
    assert "no key on stdin" in capsys.readouterr().err


def test_keys_new_prints_a_key_and_an_entry_that_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new", "--id", "team-z"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"^key: (gk-\S+)$", out, re.M)
    assert key is not None and len(key.group(1)) > 40
    entry = out.split("\n", 1)[1]
    ring = build_keyring(parse(f"keys:\n{entry}"))  # type: ignore[arg-type]
    found = ring.find(key.group(1))
    assert found is not None and found.id == "team-z"


def test_serve_refuses_a_bad_keys_file_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "keys.yaml"
    bad.write_text(keys_yaml().replace("role: admin", "role: root"))
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--keys", str(bad), "--port", "1"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert f"{bad}: invalid keys file" in result.stderr and "keys[3] (id 'ops').role" in result.stderr
    assert "Traceback" not in result.stderr
