#!/usr/bin/env bash
# Install Debian's headless Chromium for the browser tests (Playwright drives it; its own
# browser download does not work here). Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -n 1) installed"
