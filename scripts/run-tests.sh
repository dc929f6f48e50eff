#!/usr/bin/env bash
# Start the services the suite needs, then run it. Called by `make test` with the venv's bin.
set -euo pipefail
bin=${1:-.venv/bin}
cd "$(dirname "$0")/.."
for service in scripts/services.d/*.sh; do
  [ -e "$service" ] || continue
  bash "$service"
done
set +e
"$bin/pytest" -q
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
