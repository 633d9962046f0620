#!/usr/bin/env bash
# The test command: formatting, lints, every test of the node workspace (benches run once
# each in test mode so they never rot) and the contracts' native unit tests. Installs what a
# fresh machine lacks. Needs no wasm toolchain: the contract artifacts are committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/setup.sh
ensure_build_packages

echo "== fmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -q -- -D warnings
echo "== node workspace tests"
cargo test --workspace --all-targets --locked
echo "== doc tests"
cargo test --workspace --doc --locked
echo "== contracts' native unit tests"
cargo test --manifest-path contracts/Cargo.toml --workspace --locked
