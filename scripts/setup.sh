#!/usr/bin/env bash
# Sets up a fresh Debian machine and starts a single-node kubelite cluster on the embedded store.
# Afterwards: export KUBECONFIG=/etc/kubelite/kubelite.yaml; kubectl get pods
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cargo build --release --bin kubelite
install -m 0755 target/release/kubelite /usr/local/bin/kubelite
# Debian's own kubectl is far too old for a current cluster: without a kubectl on PATH, the
# binary's built-in one (it is kubectl when called by that name) takes its place.
if ! command -v kubectl >/dev/null; then
  ln -sf kubelite /usr/local/bin/kubectl
  echo "installed /usr/local/bin/kubectl (kubelite's built-in kubectl)"
fi
# The tutorial's image, rebuilt offline; the agent imports every archive in this folder at start.
cargo xtask demo-image
install -d -m 0700 /var/lib/kubelite
install -D -m 0644 target/images/kuard-amd64-1.tar /var/lib/kubelite/agent/images/kuard-amd64-1.tar

# A previous run of this script leaves its server's pid here; stop that one before starting anew.
pidfile=/run/kubelite/server.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "stopping the running kubelite ($(cat "$pidfile"))"
  kill "$(cat "$pidfile")"
  for _ in $(seq 1 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
fi
mkdir -p /var/log/kubelite /run/kubelite
nohup /usr/local/bin/kubelite server >/var/log/kubelite/server.log 2>&1 &
echo $! > "$pidfile"
# /readyz needs no credentials; the server's CA is the one it just made.
ca=/var/lib/kubelite/server/tls/ca.crt
for _ in $(seq 1 100); do
  if [ -f "$ca" ] && curl -fsS --cacert "$ca" https://127.0.0.1:6443/readyz >/dev/null 2>&1; then
    echo "kubelite is running (log: /var/log/kubelite/server.log)"
    echo "export KUBECONFIG=/etc/kubelite/kubelite.yaml"
    exit 0
  fi
  sleep 0.1
done
echo "kubelite did not become ready; see /var/log/kubelite/server.log" >&2
exit 1
