"""Shared fixtures for the operations checks (rules, chart, dashboard)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not found: apt-get install -y prometheus (CI installs it)")
    return found


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment with the project-local helm (scripts/install_tools.sh) first on PATH."""
    tools = REPO_ROOT / ".tools"
    helm = tools / "bin" / "helm"
    if not helm.exists() and shutil.which("helm") is None:
        pytest.skip("helm not found: run scripts/install_tools.sh")
    env = dict(os.environ)
    env["PATH"] = f"{tools / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for var, sub in (
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ):
        env[var] = str(tools / "helm" / sub) if helm.exists() else str(tmp_path_factory.mktemp(f"helm-{sub}"))
    return env
