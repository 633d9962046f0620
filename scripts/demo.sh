#!/usr/bin/env bash
# The run command: builds the node, starts a local single-validator chain with the system
# contracts, and walks through a signed call end to end, including a SIGKILL and restart.
# Installs what a fresh machine lacks. Options: --follow (keep the node running and show its
# log until Ctrl-C). Environment: SHUTONG_DEMO_HOME (default ~/.shutong-demo, wiped first),
# SHUTONG_DEMO_PORT (default 26657), SHUTONG_PROFILE (release or dev; default release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/setup.sh
ensure_build_packages

follow=0
[ "${1:-}" = "--follow" ] && follow=1
profile=${SHUTONG_PROFILE:-release}
home=${SHUTONG_DEMO_HOME:-$HOME/.shutong-demo}
port=${SHUTONG_DEMO_PORT:-26657}
rpc=http://127.0.0.1:$port

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building shutong ($profile; the first build takes a while)"
if [ "$profile" = release ]; then
  cargo build --release --locked -p shutong-node --bin shutong
else
  cargo build --locked -p shutong-node --bin shutong
fi
bin=$CARGO_TARGET_DIR/$([ "$profile" = release ] && echo release || echo debug)/shutong

rm -rf "$home"
node_pid=
stop_node() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null; node_pid=; true; }
trap stop_node EXIT
start_node() {
  "$bin" node run --home "$home" >>"$home/node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 1 100); do
    "$bin" status --rpc "$rpc" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the node did not come up; its log:" >&2; tail -20 "$home/node.log" >&2; return 1
}

step "initialising a chain in $home (validator key, admin key, genesis with the registry contract)"
"$bin" init --home "$home" --chain-id shutong-demo --rpc-listen "127.0.0.1:$port" --block-interval-ms 200
cat "$home/genesis.json"

step "starting the validator; it produces a block every 200 ms"
start_node
sleep 1
"$bin" status --rpc "$rpc"

step "the admin signs a transaction that registers Jing'an's data bureau"
"$bin" tx --rpc "$rpc" --key "$home/keys/admin.json" org register --id jingan-data --name "静安区数据局 Jing'an Data Bureau" --kind department

step "anyone can read it back from the chain"
"$bin" query --rpc "$rpc" org --id jingan-data

step "another key tries to rename it: the contract refuses, the nonce advances, nothing else changes"
"$bin" keys new --out "$home/keys/intruder.json" >/dev/null
"$bin" tx --rpc "$rpc" --key "$home/keys/intruder.json" org update --id jingan-data --name "hijacked" || true

step "the admin suspends it"
"$bin" tx --rpc "$rpc" --key "$home/keys/admin.json" org update --id jingan-data --status suspended
height=$("$bin" --output json query --rpc "$rpc" org --id jingan-data | sed 's/.*"updated_height":\([0-9]*\).*/\1/')
"$bin" query --rpc "$rpc" block --height "$height"

step "SIGKILL the node and start it again: every committed block and the state survive"
kill -9 "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=
start_node
"$bin" query --rpc "$rpc" org --id jingan-data
sleep 1
"$bin" status --rpc "$rpc"

if [ $follow = 1 ]; then
  step "following the node's log (Ctrl-C to stop)"
  tail -f "$home/node.log"
else
  step "done; the chain's data is in $home (run with --follow to keep the node running)"
fi
