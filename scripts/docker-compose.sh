#!/usr/bin/env bash
# Make sure Docker Compose answers (Debian's docker-compose 1.29, the Compose file format),
# for the compose deploy tests. Idempotent: a no-op when it is installed.
set -euo pipefail
if command -v docker-compose >/dev/null 2>&1; then
  echo "docker-compose: $(docker-compose version --short)"
  exit 0
fi
echo "docker-compose: installing (Debian)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
echo "docker-compose: $(docker-compose version --short)"
