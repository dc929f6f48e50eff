#!/usr/bin/env bash
# Start an OCI registry (Debian's docker-registry, CNCF Distribution) on 127.0.0.1:PORT
# with htpasswd auth, for the image tests. Idempotent: a no-op when it already answers.
# Usage: scripts/registry.sh [PORT]   (default 5000; user shipml, password below)
set -euo pipefail
port=${1:-${SHIPML_TEST_REGISTRY_PORT:-5000}}
user=shipml
password=${SHIPML_TEST_REGISTRY_PASSWORD:-shipml-test-password}
root=${SHIPML_TEST_REGISTRY_DIR:-/tmp/shipml-registry}

status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
if [ "$status" = "401" ]; then
  echo "registry: 127.0.0.1:$port (running)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null
fi
mkdir -p "$root/data"
htpasswd -Bbn "$user" "$password" > "$root/htpasswd"   # Distribution needs bcrypt
cat > "$root/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $root/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: shipml-test
    path: $root/htpasswd
YAML
setsid nohup docker-registry serve "$root/config.yml" > "$root/registry.log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
  if [ "$status" = "401" ]; then
    echo "registry: 127.0.0.1:$port (user $user)"
    exit 0
  fi
  sleep 0.5
done
echo "registry: did not answer on 127.0.0.1:$port; its log:" >&2
tail -n 20 "$root/registry.log" >&2 || true
exit 1
