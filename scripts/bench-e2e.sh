#!/usr/bin/env bash
# The end-to-end benchmark (`performance.md`): builds the release node, then runs 1 and 4
# validator processes on 127.0.0.1 under the authz workload, sweeping offered load to
# saturation (`shutong testnet bench`). Prints the table, writes the figures as JSON (the
# file it names) and appends dated rows to benches/RESULTS.md. Extra arguments go to the
# benchmark (`--validators 4 --seconds 20 --start-rate 200`). Run it on a quiet machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/setup.sh
ensure_build_packages
cargo build --release --locked -p shutong-cli --bin shutong
mkdir -p "$CARGO_TARGET_DIR/e2e"
out="$CARGO_TARGET_DIR/e2e/e2e-$(date -u +%Y%m%dT%H%M%SZ)-$(git rev-parse --short HEAD 2>/dev/null || echo unknown).json"
"$CARGO_TARGET_DIR/release/shutong" testnet bench --out "$out" --append benches/RESULTS.md "$@"
