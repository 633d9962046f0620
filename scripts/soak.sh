#!/usr/bin/env bash
# The soak run: builds the release node, then runs validator processes under the authz
# workload with random faults (SIGKILL and restart, partitions, slowdowns) for as long as
# asked, checking after every round that nothing was lost, duplicated or forked, and
# sampling each node's memory (`shutong testnet soak`). Arguments go to it:
#   --minutes 60 --rate 200 --validators 4 --round-secs 60 --seed 1
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/setup.sh
ensure_build_packages
cargo build --release --locked -p shutong-cli --bin shutong
mkdir -p "$CARGO_TARGET_DIR/soak"
out="$CARGO_TARGET_DIR/soak/soak-$(date -u +%Y%m%dT%H%M%SZ).json"
"$CARGO_TARGET_DIR/release/shutong" testnet soak --out "$out" "$@"
