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
# A target directory of their own: the contracts' workspace builds the shared path crates
# (codec, contract SDK) with other metadata, and two builds of one crate in one directory
# make rustc's search for transitive dependencies ambiguous.
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/contracts-native" \
  cargo test --manifest-path contracts/Cargo.toml --workspace --locked
echo "== fuzz targets build"
# Their own workspace, lock file and target directory, like the contracts: built on every run
# so that they cannot rot. Where a nightly toolchain is installed, each also runs a few
# seconds under the address sanitizer on a copy of its corpus (scripts/fuzz.sh).
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/fuzz-check" \
  cargo check --manifest-path fuzz/Cargo.toml --bins --locked
if command -v rustup >/dev/null && rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "== fuzz smoke: 5 s a target (a nightly toolchain is installed)"
  FUZZ_SMOKE=1 bash scripts/fuzz.sh 5
else
  echo "== fuzz smoke skipped: no nightly toolchain (rustup toolchain install nightly runs it)"
fi
