#!/usr/bin/env bash
# Start a test-only sshd (Debian's openssh-server) on 127.0.0.1:PORT for the remote-host
# deploy tests: its own host key, one client key pair, key auth only, root allowed with
# a key. The "remote" Docker host is this machine reached over SSH, so the docker CLI
# (docker system dial-stdio) must be on PATH; scripts/docker-engine.sh installs it.
# Idempotent: a no-op when it already answers. Files live in $SHIPML_TEST_SSHD_DIR:
#   client_key, client_key.pub   the key the tests log in with
#   known_hosts                  the host key, as "[127.0.0.1]:PORT ssh-ed25519 …"
# Usage: scripts/sshd.sh [PORT]   (default 2222)
set -euo pipefail
port=${1:-${SHIPML_TEST_SSHD_PORT:-2222}}
dir=${SHIPML_TEST_SSHD_DIR:-/tmp/shipml-sshd}

answers() {
  # An SSH server greets first: "SSH-2.0-…".
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 7 <&3" 2>/dev/null \
    | grep -q '^SSH-2.0'
}

if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null && answers; then
  echo "sshd: 127.0.0.1:$port (running)"
  exit 0
fi
if ! [ -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1; then
  echo "sshd: installing openssh-server (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Installing may try to start the system's own sshd on port 22; ours is separate.
  apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
fi
mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
[ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C shipml-test-host -f "$dir/host_key"
[ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C shipml-test-client -f "$dir/client_key"
cp "$dir/client_key.pub" "$dir/authorized_keys"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" > "$dir/known_hosts"
cat > "$dir/sshd_config" <<CONF
# Test-only sshd for shipml: loopback only, keys only.
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
# The keys live under /tmp, which is world-writable: the strict ownership checks would refuse them.
StrictModes no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
MaxSessions 50
MaxStartups 50:30:100
CONF
/usr/sbin/sshd -t -f "$dir/sshd_config"
/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
for _ in $(seq 1 40); do
  if answers; then
    echo "sshd: 127.0.0.1:$port (keys in $dir)"
    exit 0
  fi
  sleep 0.25
done
echo "sshd: did not answer on 127.0.0.1:$port; its log:" >&2
tail -n 20 "$dir/sshd.log" >&2 || true
exit 1
