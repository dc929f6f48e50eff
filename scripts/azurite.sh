#!/usr/bin/env bash
# Start the Azurite blob emulator on 127.0.0.1:PORT for the Azure store tests.
# Installs azurite@3 from npm into .tools/ on first use. Idempotent.
# Usage: scripts/azurite.sh [PORT]   (default 10000; account devstoreaccount1)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-${SHIPML_TEST_AZURITE_PORT:-10000}}
data=${SHIPML_TEST_AZURITE_DIR:-/tmp/shipml-azurite}

answers() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/devstoreaccount1?comp=list" | grep -qE '^[2-4][0-9][0-9]$'; }
if answers; then
  echo "azurite: 127.0.0.1:$port (running)"
  exit 0
fi
if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
  npm install --silent --no-audit --no-fund --prefix .tools azurite@3 >/dev/null
fi
mkdir -p "$data"
setsid nohup .tools/node_modules/.bin/azurite-blob --silent --location "$data" \
  --blobHost 127.0.0.1 --blobPort "$port" --skipApiVersionCheck --loose \
  > "$data/azurite.log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if answers; then
    echo "azurite: 127.0.0.1:$port (account devstoreaccount1)"
    exit 0
  fi
  sleep 0.5
done
echo "azurite: did not answer on 127.0.0.1:$port; its log:" >&2
tail -n 20 "$data/azurite.log" >&2 || true
exit 1
