#!/usr/bin/env bash
# A second venv for shipml, with azureml-core: the differential tests serve the corpus' v1
# scripts (azureml-core's Model.get_model_path), AutoML's generated scripts (which import
# azureml.automl.core and azureml.telemetry) and MLflow-model scripts (mlflow-skinny) with
# shipml from it. azureml-core pins older packaging, cryptography and python-dateutil than
# the project's venv has, so it gets a venv of its own instead of the dev extra. The AutoML packages' own requirements pin numpy below
# the project's, and what the scripts import needs none of them: installed without them.
#
# Idempotent. numpy, scipy, scikit-learn, joblib and pandas are pinned to the project venv's
# versions (read from PROJECT_PYTHON), so a pickle built once loads identically in both.
#
# usage: scripts/azureml-core-venv.sh [PROJECT_PYTHON]   (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
project_python=${1:-.venv/bin/python}
venv=${SHIPML_AZURECORE_VENV:-.venv-azureml-core}

pins=$("$project_python" - <<'PY'
from importlib.metadata import PackageNotFoundError, version

for name in ("numpy", "scipy", "scikit-learn", "joblib", "pandas", "inference-schema", "werkzeug",
             "pillow"):
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(name)
PY
)
no_deps=(azureml-automl-core azureml-telemetry applicationinsights)
# MLflow-model scoring scripts are served from here too (mlflow.pyfunc and its scoring_server).
extra=(mlflow-skinny==3.17.2)
wanted=$(printf '%s\n' "azureml-core" "--editable=." "$pins" "${extra[@]}" "${no_deps[@]}")
stamp="$venv/.shipml-requirements"
if [ -x "$venv/bin/shipml" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
echo "azureml-core-venv: installing shipml with azureml-core into $venv" >&2
[ -x "$venv/bin/python" ] || scripts/uv.sh venv --quiet --seed --python python3 "$venv"
mapfile -t reqs <<<"$(printf '%s\n' "azureml-core" "--editable=." "$pins" "${extra[@]}")"
scripts/uv.sh pip install --quiet --compile-bytecode --python "$venv/bin/python" "${reqs[@]}"
scripts/uv.sh pip install --quiet --compile-bytecode --python "$venv/bin/python" --no-deps "${no_deps[@]}"
printf '%s' "$wanted" >"$stamp"
