#!/usr/bin/env bash
# Tools the deployment tests run for real besides the Python ones (kubectl,
# kubernetes-validate and check-jsonschema come with the dev extra): envsubst, which the
# commands printed by 'shipml deploy aci' use to fill secrets in. Idempotent.
set -euo pipefail
if command -v envsubst >/dev/null 2>&1; then
  echo "deploy-tools: envsubst present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gettext-base >/dev/null
echo "deploy-tools: installed gettext-base (envsubst)"
