#!/usr/bin/env bash
# Installs what building and testing kubelite needs on a Debian machine (idempotent):
# system packages, and the official Python client in target/pyenv for the client tests.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(protobuf-compiler etcd-server curl python3-venv ca-certificates iproute2
          crun runc conmon containernetworking-plugins busybox-static catatonit
          docker-registry skopeo)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian etcd-server package starts a system etcd on 2379; the tests start their own.
if systemctl is-active --quiet etcd 2>/dev/null; then systemctl stop etcd || true; fi

if ! command -v kubectl >/dev/null; then
  echo "kubectl is not installed; kubelite's tests drive the real kubectl (1.27-1.33)" >&2
  exit 1
fi

if [ ! -x target/pyenv/bin/python ] || ! target/pyenv/bin/python -c 'import kubernetes' 2>/dev/null; then
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install -q --disable-pip-version-check 'kubernetes>=31'
fi
