#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io if dockerd is missing,
# start dockerd in the background if nothing answers, wait until it does.
# Idempotent: a no-op when `docker info` already works.
set -euo pipefail
log=${SHIPML_DOCKERD_LOG:-/var/log/shipml-dockerd.log}

if docker info >/dev/null 2>&1; then
  echo "docker-engine: running"
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing docker.io (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
fi
# The Debian package ships its own client in /usr/bin; a client elsewhere on PATH may be
# newer than the engine's API, which Docker negotiates down, so either works.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  mkdir -p "$(dirname "$log")"
  setsid nohup dockerd >"$log" 2>&1 < /dev/null &
fi
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    echo "docker-engine: started ($(docker info --format '{{.ServerVersion}} {{.Driver}}'))"
    exit 0
  fi
  sleep 0.5
done
echo "docker-engine: dockerd did not answer within 60 s; the end of $log:" >&2
tail -n 30 "$log" >&2 || true
exit 1
