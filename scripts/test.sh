#!/usr/bin/env bash
# The test suite, exactly as CI runs it: set up, install the real servers the tests use
# (Prometheus + promtool, Redis, helm), lint, type-check, then pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if (( ${#need_apt[@]} )); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "==> apt-get install ${need_apt[*]}"
    apt-get update -qq
    # The packages' own services are not wanted: the tests start their own servers on loopback.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "warning: ${need_apt[*]} missing and not root: the tests that need them will be skipped" >&2
  fi
fi

scripts/setup.sh --dev
scripts/install_tools.sh
eval "$(scripts/install_tools.sh --env)"
export HF_HUB_OFFLINE=1

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy
echo "==> import contracts"
.venv/bin/lint-imports
echo "==> pytest"
.venv/bin/pytest "$@"
