#!/usr/bin/env bash
# Start every service the suite needs, then run it. Called by `make test` with the venv's bin.
set -euo pipefail
bin=${1:-.venv/bin}
cd "$(dirname "$0")/.."
scripts/docker-engine.sh
scripts/base-image.sh "${SHIPML_TEST_BASE_IMAGE:-shipml-test/python:3.11-slim}"
scripts/registry.sh "${SHIPML_TEST_REGISTRY_PORT:-5000}"
scripts/browser.sh
scripts/azurite.sh "${SHIPML_TEST_AZURITE_PORT:-10000}"
scripts/deploy-tools.sh
scripts/docker-compose.sh
scripts/sshd.sh "${SHIPML_TEST_SSHD_PORT:-2222}"
scripts/kserve-client.sh
scripts/azmlinfsrv.sh "$bin/python"
scripts/azureml-core-venv.sh "$bin/python"
set +e
"$bin/pytest" -q
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
