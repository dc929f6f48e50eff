#!/usr/bin/env bash
# Start every service the suite needs, then run it. `make test` calls it with the venv's bin,
# the command that installs the project (`make install`) and the one that checks it (`make
# lint`), so that the services start while the project installs and lints: on a fresh machine
# both take minutes.
#
# Independent lines run at once: the apt-installed services and the Docker engine (one
# after another: apt holds a lock), Azurite (npm), KServe's client venv, and, once the
# project's venv exists (their pins are read from it), the two Azure ML reference venvs,
# beside the lint. Each
# line's output is printed when it ends; any failure stops the run with that line's log.
# pytest then runs on one xdist worker per core (at least 2, at most 8; tests/conftest.py
# keeps the tests that must share a worker together, every Docker-engine test among them);
# SHIPML_TEST_WORKERS=N sets the number, 0 runs it in one process.
#
# usage: scripts/run-tests.sh [BIN] [INSTALL COMMAND] [CHECK COMMAND]
set -euo pipefail
bin=${1:-.venv/bin}
install=${2:-true}
check=${3:-true}
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

engine_and_apt() {
  scripts/docker-engine.sh
  scripts/base-image.sh "${SHIPML_TEST_BASE_IMAGE:-shipml-test/python:3.11-slim}"
  scripts/registry.sh "${SHIPML_TEST_REGISTRY_PORT:-5000}"
  scripts/browser.sh
  scripts/deploy-tools.sh
  scripts/docker-compose.sh
  scripts/sshd.sh "${SHIPML_TEST_SSHD_PORT:-2222}"
}
azurite() { scripts/azurite.sh "${SHIPML_TEST_AZURITE_PORT:-10000}"; }
kserve_client() { scripts/kserve-client.sh; }
azmlinfsrv() { scripts/azmlinfsrv.sh "$bin/python"; }
azureml_core() { scripts/azureml-core-venv.sh "$bin/python"; }

declare -A pids
started=()
start() {
  ( set -euo pipefail; "$1" ) >"$logs/$1.log" 2>&1 &
  pids[$1]=$!
  started+=("$1")
}
failed=()
finish() {
  for name in "${started[@]}"; do
    if wait "${pids[$name]}"; then
      cat "$logs/$name.log"
    else
      echo "run-tests: starting $name failed:" >&2
      cat "$logs/$name.log" >&2
      failed+=("$name")
    fi
  done
}

start engine_and_apt
start azurite
start kserve_client
if ! bash -c "$install"; then
  finish
  echo "run-tests: '$install' failed; not running the suite" >&2
  exit 1
fi
start azmlinfsrv
start azureml_core
if ! bash -c "$check"; then
  finish
  echo "run-tests: '$check' failed; not running the suite" >&2
  exit 1
fi
finish
if [ "${#failed[@]}" -gt 0 ]; then
  echo "run-tests: not running the suite: ${failed[*]} did not start" >&2
  exit 1
fi

cores=$(nproc)
workers=${SHIPML_TEST_WORKERS:-$((cores < 2 ? 2 : (cores > 8 ? 8 : cores)))}
parallel=()
if [ "$workers" -gt 0 ]; then
  parallel=(-n "$workers" --dist loadgroup)
fi
set +e
# Bytecode written (__pycache__, ignored by git and by shipml) even if the shell says not to:
# otherwise every worker and every `shipml` the tests start compiles the same modules again.
env -u PYTHONDONTWRITEBYTECODE "$bin/pytest" -q "${parallel[@]}" --durations=20
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
