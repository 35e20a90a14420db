#!/usr/bin/env bash
# Runs semantic_router_compare.py in a throwaway venv (semantic-router pulls in openai,
# tiktoken and other pins that the project does not need). Run accuracy.py first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${SEMANTIC_ROUTER_VENV:-/tmp/semantic-router-venv}"
version="${SEMANTIC_ROUTER_VERSION:-1.1.1}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -c "$repo/constraints.txt" "semantic-router==$version"
fi
export HF_HUB_OFFLINE=1
exec "$venv/bin/python" "$here/semantic_router_compare.py" "$@"
