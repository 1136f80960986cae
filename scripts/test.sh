#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests, the storage suite on SQLite and a real
# etcd, and the end-to-end tests that drive the real binary with the real kubectl and Python client.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
# Before building: everything the build and the tests use came from deps.sh (a fresh machine has
# nothing else).
scripts/check-deps.sh
# The offline demo image the pod tests run (a static kuard plus busybox).
cargo xtask demo-image
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace 2>&1
