#!/usr/bin/env bash
# Installs what building and testing kubelite needs on a Debian machine (idempotent): system
# packages, and the official Python client in target/pyenv for the client tests.
#   scripts/deps.sh            build, run and test
#   scripts/deps.sh --bench    also what the benchmarks compare against (podman and its network helpers)
#   scripts/deps.sh --list     print the Debian packages this script installs, one a line
set -euo pipefail
cd "$(dirname "$0")/.."

# Every package is named here, including those another package only recommends: installs run
# with --no-install-recommends, so a recommended package is never pulled in by itself.
packages=(
  protobuf-compiler libprotobuf-dev    # etcd-client's build compiles .proto files importing the well-known types
  etcd-server                          # the etcd backend's tests run a real etcd
  curl ca-certificates iproute2 python3-venv
  crun runc conmon containernetworking-plugins catatonit   # the container runtime stack
  busybox-static                       # the demo image's userland
  docker-registry skopeo               # the registry pull tests
)
bench_packages=(podman netavark aardvark-dns)

case "${1:-}" in
  --list) printf '%s\n' "${packages[@]}" "${bench_packages[@]}"; exit 0 ;;
  --bench) packages+=("${bench_packages[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--bench|--list]" >&2; exit 2 ;;
esac

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

if [ ! -x target/pyenv/bin/python ] || ! target/pyenv/bin/python -c 'import kubernetes' 2>/dev/null; then
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install -q --disable-pip-version-check 'kubernetes>=31'
fi
