#!/usr/bin/env bash
# The KServe Python client (kserve's InferenceRESTClient) in a venv of its own under .tools/:
# kserve pins protobuf, pandas and kubernetes versions our dev extra does not want, so the
# Open Inference Protocol tests run it in a subprocess with this venv's python. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/kserve-venv
version=0.21.0
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('kserve') != '$version')" 2>/dev/null; then
  echo "kserve-client: kserve $version present in $venv"
  exit 0
fi
[ -x "$venv/bin/python" ] || scripts/uv.sh venv --quiet --python python3 "$venv"
scripts/uv.sh pip install --quiet --compile-bytecode --python "$venv/bin/python" "kserve==$version"
echo "kserve-client: kserve $version installed in $venv"
