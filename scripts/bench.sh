#!/usr/bin/env bash
# Installs what the benchmarks need (the peers they measure against included), builds them in
# release mode and runs them all; the tables go to standard output (docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --bench
cargo build --release -p kubelite -p bench
cargo xtask demo-image
echo "## API server (SQLite, then etcd)"
target/release/kubelite-bench --pods 10000
echo "## Pods"
target/release/kubelite-bench pods
