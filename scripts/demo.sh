#!/usr/bin/env bash
# The run command: builds the node, starts a local testnet of validator processes on
# 127.0.0.1 with the system contracts, walks through a signed call end to end, and shows the
# chain going on when a validator is SIGKILLed and the validator catching up when it is back.
# Installs what a fresh machine lacks. Options: --follow (keep the testnet running and show
# validator-0's log until Ctrl-C, then stop it); --suite sm2-sm3 (a 国密 chain: SM2 keys and
# signatures, SM3 hashes; the default is ed25519-blake3). Environment: SHUTONG_DEMO_DIR (default
# ~/.shutong-demo, wiped first), SHUTONG_DEMO_VALIDATORS (default 4), SHUTONG_DEMO_PORT (the
# first of the ports, default 26600), SHUTONG_PROFILE (release or dev; default release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/setup.sh
ensure_build_packages

follow=0
suite=ed25519-blake3
while [ $# -gt 0 ]; do
  case $1 in
    --follow) follow=1 ;;
    --suite) suite=${2:?--suite needs ed25519-blake3 or sm2-sm3}; shift ;;
    *) echo "unknown option $1 (--follow, --suite NAME)" >&2; exit 2 ;;
  esac
  shift
done
# Every key the demo makes, and every code hash it computes, is of the chain's suite.
export SHUTONG_SUITE=$suite
profile=${SHUTONG_PROFILE:-release}
dir=${SHUTONG_DEMO_DIR:-$HOME/.shutong-demo}
validators=${SHUTONG_DEMO_VALIDATORS:-4}
base=${SHUTONG_DEMO_PORT:-26600}
rpc0=http://127.0.0.1:$base
rpc3=http://127.0.0.1:$((base + 2 * (validators - 1)))

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Runs a query until it succeeds: another validator may commit a block a moment later.
query_until() {
  for _ in $(seq 1 50); do "$bin" "$@" 2>/dev/null && return 0; sleep 0.2; done
  "$bin" "$@"
}

step "building shutong ($profile; the first build takes a while)"
if [ "$profile" = release ]; then
  cargo build --release --locked -p shutong-cli --bin shutong
else
  cargo build --locked -p shutong-cli --bin shutong
fi
bin=$CARGO_TARGET_DIR/$([ "$profile" = release ] && echo release || echo debug)/shutong

[ -f "$dir/testnet.json" ] && "$bin" testnet down --dir "$dir" --purge >/dev/null 2>&1 || true
rm -rf "$dir"
down() { [ $follow = 1 ] && return 0; "$bin" testnet down --dir "$dir" >/dev/null 2>&1 || true; }
trap down EXIT

step "starting $validators validators ($suite): keys, one genesis with the system contracts, each node dialling the others"
"$bin" testnet up --dir "$dir" --validators "$validators" --base-port "$base" --chain-id shutong-demo --suite "$suite"
admin=$dir/keys/admin.json
second=$dir/keys/committee-1.json
# Every command below that names no --key signs its requests as the committee's first seat
# (the district office): a node answers only status and proofs to anonymous callers
# (docs/rpc.md, "Access control").
export SHUTONG_KEY=$admin

# `decide PROPOSAL FLAGS...`: the district office proposes, the data bureau's vote carries it
# (two of the committee's three departments).
decide() {
  local out id
  out=$("$bin" gov propose "$@" --rpc "$rpc0" --key "$admin")
  echo "$out"
  id=$(sed -n 's/.*proposal \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -n 1)
  "$bin" gov vote --rpc "$rpc0" --key "$second" --id "$id"
}

step "no single key rules the chain: genesis names a committee of three departments, any two of which decide"
"$bin" gov committee --rpc "$rpc0"
echo "-- the key that signed genesis, alone, tries to freeze the audit contract: refused"
"$bin" contract freeze --rpc "$rpc0" --key "$admin" --contract audit || true
echo "-- it proposes the freeze instead: one department's vote of the two needed, so nothing happens"
out=$("$bin" gov propose freeze --rpc "$rpc0" --key "$admin" --contract audit)
echo "$out"
"$bin" gov show --rpc "$rpc0" --id "$(sed -n 's/.*proposal \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -n 1)"

step "a new department registers with a key of its own: it is pending until the committee approves it"
"$bin" keys new --out "$dir/keys/health.json" >/dev/null
"$bin" org register --rpc "$rpc0" --key "$dir/keys/health.json" --id jingan-health --name "静安区卫生健康委 Health Commission" --kind department
query_until org show --rpc "$rpc3" --id jingan-health
echo "-- two departments approve it (propose, vote): it is active, on every validator"
decide approve-org --id jingan-health
query_until org show --rpc "$rpc3" --id jingan-health

step "access control: without a signature the node answers status and proofs only; a key it does not know may send nothing but its own registration"
env -u SHUTONG_KEY "$bin" org show --rpc "$rpc3" --id jingan-health || true
"$bin" keys new --out "$dir/keys/intruder.json" >/dev/null
"$bin" org update --rpc "$rpc0" --key "$dir/keys/intruder.json" --id jingan-health --name "hijacked" || true

step "an enterprise deploys its own contract: certificate verification (证明电子化), checked by the VM at upload"
wasm=$root/contracts/artifacts/cert-verify.wasm
"$bin" keys new --out "$dir/keys/enterprise.json" >/dev/null
"$bin" keys new --out "$dir/keys/bank.json" >/dev/null
enterprise=$dir/keys/enterprise.json
echo "-- the enterprise and a bank join: each registers its organisation, and the enterprise names itself a deployer"
"$bin" org register --rpc "$rpc0" --key "$enterprise" --id example-co --name "Shanghai Example Co., Ltd." --kind enterprise
enterprise_account=$("$bin" --output json keys show --key "$enterprise" | sed 's/.*"account":"\([0-9a-f]*\)".*/\1/')
"$bin" org set-principal --rpc "$rpc0" --key "$enterprise" --id example-co --account "$enterprise_account" --roles admin,deployer
"$bin" org register --rpc "$rpc0" --key "$dir/keys/bank.json" --id example-bank --name "Example Bank" --kind enterprise
code=$("$bin" contract hash --wasm "$wasm")
echo "code hash $code"
echo "-- before governance approves the code hash, the upload is refused:"
"$bin" contract upload --rpc "$rpc0" --key "$enterprise" --wasm "$wasm" || true
echo "-- the committee approves it (two departments), then the upload goes through:"
decide approve-code --code-hash "$code"
"$bin" contract upload --rpc "$rpc0" --key "$enterprise" --wasm "$wasm"
contract=$("$bin" --output json contract instantiate --rpc "$rpc0" --key "$enterprise" --code-hash "$code" --label certs \
  | sed 's/.*"output":"\([0-9a-f]*\)".*/\1/')
echo "instantiated at $contract"
query_until contract show --rpc "$rpc3" --contract "$contract"

step "the enterprise issues a certificate for a licence; only its hash goes on chain"
printf 'Business licence of Shanghai Example Co., Ltd.\n' > "$dir/licence.txt"
printf 'Forged licence\n' > "$dir/forged.txt"
"$bin" cert issue --rpc "$rpc0" --key "$enterprise" --contract "$contract" --id lic-2026-001 \
  --kind business-licence --holder 91310000MA1EXAMPLE --document "$dir/licence.txt"
echo "-- a bank asks whether the presented licence is certified (a query, off the record):"
query_until cert check --rpc "$rpc3" --contract "$contract" --id lic-2026-001 --holder 91310000MA1EXAMPLE --document "$dir/licence.txt"
"$bin" cert check --rpc "$rpc3" --contract "$contract" --id lic-2026-001 --holder 91310000MA1EXAMPLE --document "$dir/forged.txt"
echo "-- and on the record: the question and the answer become an audit-log leaf"
"$bin" cert verify --rpc "$rpc0" --key "$dir/keys/bank.json" --contract "$contract" --id lic-2026-001 \
  --holder 91310000MA1EXAMPLE --document "$dir/licence.txt"
echo "-- the enterprise freezes its contract; calls are refused until it unfreezes it"
"$bin" contract freeze --rpc "$rpc0" --key "$enterprise" --contract "$contract"
"$bin" cert verify --rpc "$rpc0" --key "$dir/keys/bank.json" --contract "$contract" --id lic-2026-001 \
  --holder 91310000MA1EXAMPLE --document "$dir/licence.txt" || true
"$bin" contract unfreeze --rpc "$rpc0" --key "$enterprise" --contract "$contract"

# --- The authorisation story: who may use which data, for what, and what was done with it ---
acct() { "$bin" --output json keys show --key "$1" | sed 's/.*"account":"\([0-9a-f]*\)".*/\1/'; }
for who in market cdo security gateway tax acme analyst auditor; do
  "$bin" keys new --out "$dir/keys/$who.json" >/dev/null
done
k() { echo "$dir/keys/$1.json"; }
# A signed command: `by WHO GROUP VERB FLAGS...`.
by() { local key=$1; shift; "$bin" "$@" --rpc "$rpc0" --key "$(k "$key")"; }

step "the story: Jing'an's market bureau, an enterprise and the tax bureau join, each with its people and their roles (the departments once the committee approves them)"
by market org register --id market --name "静安区市场监管局 Market Regulation Bureau" --kind department
by tax org register --id tax --name "静安区税务局 Tax Bureau" --kind department
decide approve-org --id market
decide approve-org --id tax
by acme org register --id acme --name "Shanghai Example Co., Ltd." --kind enterprise
by market org set-principal --id market --account "$(acct "$(k market)")" --roles admin,data_provider
by market org set-principal --id market --account "$(acct "$(k cdo)")" --roles cdo
by market org set-principal --id market --account "$(acct "$(k security)")" --roles security_officer
by market org set-principal --id market --account "$(acct "$(k gateway)")" --roles data_provider --kind gateway
by tax org set-principal --id tax --account "$(acct "$(k tax)")" --roles admin,data_provider
by acme org set-principal --id acme --account "$(acct "$(k analyst)")" --roles data_consumer

step "governance defines the purpose the story uses, and the legal bases it may rest on"
decide define-purpose --id licensing --bases statute,duty_mandate,consent --description "business licensing and its renewal"

step "the committee names the market bureau the authoritative source of two data elements (一数一源): a governed decision, never whoever publishes first"
echo "-- the tax bureau publishes first, claiming an element nobody was assigned: refused"
by tax catalog publish --id tax/registration --org tax --classification general --share conditional \
  --conditions "tax matters" --field uscc:string:general:enterprise.uscc || true
decide assign-source --element enterprise.uscc --org market
decide assign-source --element enterprise.name --org market

step "the market bureau publishes its business-licence records, classified important (编目), as the source of both elements"
by market catalog publish --id market/business-licence --org market --classification important --share conditional \
  --conditions "licensing and tax matters" --methods query,verify \
  --field uscc:string:general:enterprise.uscc --field name:string:general:enterprise.name --field legal_rep_id:string:important
echo "-- the tax bureau tries to publish the same data element again: refused, naming its source"
by tax catalog publish --id tax/registration --org tax --classification general --share conditional \
  --conditions "tax matters" --field uscc:string:general:enterprise.uscc || true

step "the enterprise's analyst asks for three fields for licence renewal, at most 3 uses"
out=$(by analyst request submit --resource market/business-licence --fields uscc,name,legal_rep_id \
  --purpose licensing.renewal --max-uses 3)
echo "$out"
request=$(sed -n 's/^request \([0-9]*\)$/\1/p' <<<"$out")

step "important data: the bureau's CDO and its security officer must both approve; they grant two of the three fields"
by cdo request approve --id "$request" --fields uscc,name --max-uses 3
out=$(by security request approve --id "$request" --fields uscc,name --max-uses 3)
echo "$out"
grant=$(sed -n 's/^approved: grant \([0-9]*\) issued$/\1/p' <<<"$out")
query_until request show --rpc "$rpc3" --id "$request"

step "the bureau's gateway records each use of the data: three are permitted and counted against the grant"
use() { by gateway audit record --id "$grant" --consumer "$(acct "$(k analyst)")" --fields "$1" --purpose "$2" --reference "case-$3"; }
use uscc,name licensing.renewal 1
use uscc licensing.renewal 2
use uscc licensing.renewal.online 3
echo "-- a fourth use is beyond the grant's 3 uses: denied, and recorded"
use uscc licensing.renewal 4
echo "-- a use for a purpose the grant does not cover: denied, recorded, and a violation opened"
use uscc marketing 5

step "the bureau revokes the grant; the next use is denied"
by cdo grant revoke --id "$grant" --reason "annual review"
use uscc licensing.renewal 6

step "the gateway anchors a batch of 1,000,000 uses under the revoked grant: recorded, never refused, every use beyond the grant a violation naming the excess"
now_ms=$(date +%s%3N)
by gateway audit anchor --id "$grant" --consumer "$(acct "$(k analyst)")" --fields uscc --purpose licensing.renewal \
  --records 1000000 --seq 1 --root "$(printf 'ab%.0s' $(seq 32))" --from-ms $((now_ms - 60000)) --to-ms $((now_ms - 1000))
by gateway audit violation --id 2

step "the district's inspection office joins with an auditor (an organisation of kind auditor, a principal with the auditor role)"
by auditor org register --id inspect --name "静安区数据监察 Data Inspection Office" --kind auditor
decide approve-org --id inspect
by auditor org set-principal --id inspect --account "$(acct "$(k auditor)")" --roles admin,auditor
query_until grant show --rpc "$rpc3" --id "$grant"

step "the auditor asks another validator for the grant's full history: the question goes on the record first, and every entry is proven against a header the validators finalized (trust: the genesis file only)"
"$bin" audit trail --rpc "$rpc3" --key "$(k auditor)" --genesis "$dir/node0/genesis.json" --grant "$grant" \
  --reason "annual inspection 2026-17" --export "$dir/grant-$grant-trail.json"
echo "-- who used the bureau's licence records, for what purpose:"
"$bin" audit trail --rpc "$rpc3" --key "$(k auditor)" --genesis "$dir/node0/genesis.json" \
  --resource market/business-licence --reason "annual inspection 2026-17"

step "offline, the exported bundle is checked with no node at all; an edited copy is refused"
"$bin" audit verify "$dir/grant-$grant-trail.json" --genesis "$dir/node0/genesis.json"
sed 's/"leaf_hex": "0/"leaf_hex": "1/; t; s/"leaf_hex": "[1-9a-f]/"leaf_hex": "0/' "$dir/grant-$grant-trail.json" >"$dir/edited-trail.json"
if "$bin" audit verify "$dir/edited-trail.json" --genesis "$dir/node0/genesis.json"; then
  echo "an edited bundle verified: this must not happen" >&2
  exit 1
fi

step "SIGKILL validator-1: the other $((validators - 1)) keep finalizing (its views time out and are skipped)"
"$bin" testnet stop --dir "$dir" --node 1 --kill
"$bin" org update --rpc "$rpc0" --key "$dir/keys/health.json" --id jingan-health --name "静安区卫生健康委员会 Health Commission"
sleep 3
"$bin" testnet status --dir "$dir"

step "validator-1 restarts, fetches the blocks it missed and reaches the same state root"
"$bin" testnet start --dir "$dir" --node 1
sleep 4
"$bin" testnet status --dir "$dir"
query_until org show --rpc "http://127.0.0.1:$((base + 2))" --id jingan-health

step "governance: two departments remove validator-$((validators - 1)) from the set; it takes effect 10 blocks later"
keep=$("$bin" --output json gov validators --rpc "$rpc0" | sed 's/.*"validators":\[\([^]]*\)\].*/\1/' | tr -d '"' | tr ',' '\n' | head -n $((validators - 1)) | sed 's/^/--validator /' | tr '\n' ' ')
# shellcheck disable=SC2086
decide set-validators $keep
"$bin" gov validators --rpc "$rpc0"
for _ in $(seq 1 100); do
  "$bin" gov validators --rpc "$rpc0" 2>/dev/null | grep -q '^epoch 1' && break
  sleep 0.2
done
"$bin" gov validators --rpc "$rpc0"
"$bin" testnet status --dir "$dir"

if [ $follow = 1 ]; then
  step "following validator-0's log (Ctrl-C to stop following; \`$bin testnet down --dir $dir\` stops the testnet)"
  tail -f "$dir/node0/node.log"
else
  step "done; stopping the testnet (its data stays in $dir; run with --follow to keep it running)"
fi
