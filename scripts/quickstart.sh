#!/usr/bin/env bash
# One command for a newcomer: set up, then run the gateway on the default policy with the
# upstream simulator behind it. Try:  curl localhost:8080/v1/chat/completions -H 'content-type: application/json' \
#   -d '{"model":"auto","messages":[{"role":"user","content":"What is our parental leave policy?"}]}' -i
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/gateway serve --with-simulator "$@"
