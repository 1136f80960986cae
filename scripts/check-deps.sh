#!/usr/bin/env bash
# Checks, before anything is built, that every tool, header and file the build and the tests use
# is on this machine because scripts/deps.sh installed it, not because someone installed it by
# hand: each one must belong to a Debian package deps.sh names. A machine that passes here passes
# the same way on a fresh machine after scripts/deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t named < <(scripts/deps.sh --list)
failed=0
fail() { echo "check-deps: $*" >&2; failed=1; }

# The Debian package that owns a file (merged /usr: a file may be registered without /usr).
owner() {
  local f=$1 alt
  alt=${f#/usr}
  [ "$alt" = "$f" ] && alt=/usr$f
  { dpkg-query -S "$f" 2>/dev/null || dpkg-query -S "$alt" 2>/dev/null; } | head -n1 | cut -d: -f1
}

# What the build and the tests use, from deps.sh's packages.
for f in /usr/bin/protoc /usr/include/google/protobuf/descriptor.proto \
         /usr/include/google/protobuf/timestamp.proto /usr/bin/etcd /usr/bin/curl /usr/bin/ip \
         /usr/bin/crun /usr/bin/runc /usr/bin/conmon /usr/lib/cni/bridge /usr/lib/cni/host-local \
         /usr/lib/cni/loopback /usr/bin/catatonit /bin/busybox /usr/bin/docker-registry /usr/bin/skopeo; do
  if [ ! -e "$f" ]; then
    fail "$f is missing (run scripts/deps.sh)"
    continue
  fi
  pkg=$(owner "$f")
  if [ -z "$pkg" ]; then
    fail "$f belongs to no Debian package: it was installed by hand"
  elif ! printf '%s\n' "${named[@]}" | grep -qx "$pkg"; then
    fail "$f comes from the package $pkg, which scripts/deps.sh does not install"
  fi
done

# protoc must find the well-known types, as etcd-client's build script needs.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/check.proto" <<'PROTO'
syntax = "proto3";
package check;
import "google/protobuf/descriptor.proto";
import "google/protobuf/timestamp.proto";
extend google.protobuf.FieldOptions { string check_note = 50000; }
message Check { google.protobuf.Timestamp at = 1; }
PROTO
protoc --proto_path="$tmp" --descriptor_set_out="$tmp/check.pb" "$tmp/check.proto" \
  || fail "protoc cannot compile a .proto that imports the well-known types"

# The official Python client, installed by deps.sh into target/pyenv.
target/pyenv/bin/python -c 'import kubernetes' 2>/dev/null \
  || fail "the Python client is missing from target/pyenv (run scripts/deps.sh)"

# The real kubectl the end-to-end tests drive comes with the machine image (the Google Cloud CLI
# packages: /usr/bin/kubectl and kubectl.1.27 ... kubectl.1.33), not from deps.sh.
for k in /usr/bin/kubectl /usr/lib/google-cloud-sdk/bin/kubectl.1.27 /usr/lib/google-cloud-sdk/bin/kubectl.1.33; do
  [ -x "$k" ] || fail "$k is missing: the tests drive the real kubectl of the machine image"
done

if ((failed)); then exit 1; fi
echo "check-deps: every build and test dependency comes from scripts/deps.sh"
