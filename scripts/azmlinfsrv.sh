#!/usr/bin/env bash
# Microsoft's reference server for Azure ML scoring scripts (azureml-inference-server-http), in
# its own venv .venv-azmlinfsrv: the differential tests run every script of
# tests/fixtures/azureml_scripts under it and under shipml, and compare the answers.
#
# Idempotent. The venv gets the *same* versions of numpy, scipy, scikit-learn, joblib and pandas
# as the project's venv (read from PROJECT_PYTHON), so that a pickle built once loads identically
# in both; it is brought in line again whenever those versions change.
#
# usage: scripts/azmlinfsrv.sh [PROJECT_PYTHON]   (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
project_python=${1:-.venv/bin/python}
venv=${AZMLINFSRV_VENV:-.venv-azmlinfsrv}

# The reference server and what the collected scripts import beside the model's libraries:
# inference-schema's numpy/pandas support (its only other extra is pyspark) and azureml-core,
# for the scripts that call v1's Model.get_model_path (it installs cleanly on Python 3.11;
# the AutoML scoring packages do not: they pin numpy below the project's).
server_reqs=(
  "azureml-inference-server-http==1.5.1"
  "inference-schema[numpy-support,pandas-support]==1.8"
  "azureml-core"
  # MLflow-model scoring scripts (mlflow.pyfunc, mlflow.pyfunc.scoring_server): the skinny
  # distribution has both without MLflow's tracking server.
  "mlflow-skinny==3.17.2"
)
# AutoML's generated scoring scripts import azureml.automl.core and azureml.telemetry at their
# top. Those packages' full requirements pin numpy below the project's, and what the scripts
# import needs none of them, so they are installed without their dependencies.
no_deps_reqs=(
  "azureml-automl-core"
  "azureml-telemetry"
  "applicationinsights"
)

# Pin the model libraries (pyarrow too: pandas 3 backs text columns with it, so a pickled
# ColumnTransformer refers to it; Pillow, for the image samples; nltk, for the n-gram text
# model's helper) to the project's versions; a library the project does not have is installed
# unpinned.
pins=$("$project_python" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version

for name in ("numpy", "scipy", "scikit-learn", "joblib", "pandas", "pyarrow", "pillow", "nltk"):
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(name)
EOF
)
wanted=$(printf '%s\n' "${server_reqs[@]}" "$pins" "--no-deps" "${no_deps_reqs[@]}")

stamp="$venv/.shipml-requirements"
if [ -x "$venv/bin/azmlinfsrv" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

echo "azmlinfsrv: installing the reference server into $venv" >&2
[ -x "$venv/bin/python" ] || scripts/uv.sh venv --quiet --seed --python python3 "$venv"
mapfile -t reqs < <(printf '%s\n' "${server_reqs[@]}" "$pins")
scripts/uv.sh pip install --quiet --compile-bytecode --python "$venv/bin/python" "${reqs[@]}"
scripts/uv.sh pip install --quiet --compile-bytecode --python "$venv/bin/python" --no-deps "${no_deps_reqs[@]}"
printf '%s' "$wanted" >"$stamp"
