#!/usr/bin/env bash
# Builds the system contracts for wasm32 with Debian's Rust 1.63 toolchain and refreshes
# contracts/artifacts/ (the .wasm files and SHA256SUMS). With --check, builds into a
# temporary directory and fails if the result differs from the committed artifacts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
contracts=(registry governance catalog authz audit cert-verify)

check=0
[ "${1:-}" = "--check" ] && check=1

if ! [ -x /usr/bin/rustc ] || ! [ -d /usr/lib/rustlib/wasm32-unknown-unknown ]; then
  echo "installing Debian's rustc with the wasm32 target (needs root)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc cargo libstd-rust-dev-wasm32 lld-14 >/dev/null
fi

# Debian's cargo and rustc, never rustup's; paths remapped so the bytes do not depend on
# where the repository is checked out. 2 MiB of initial memory (1 MiB of stack, the data,
# and the rest heap) is more than a system-contract call allocates, so calls never grow
# memory (see contracts/sdk/src/alloc.rs).
export PATH=/usr/bin:$PATH
unset RUSTUP_TOOLCHAIN CARGO_TARGET_DIR
export RUSTFLAGS="--remap-path-prefix=$root=/shutong -C link-arg=-s -C link-arg=--initial-memory=2097152"
export CARGO_HOME=$root/contracts/target/cargo-home
cd "$root/contracts"
/usr/bin/cargo build --offline --release --target wasm32-unknown-unknown --locked -q

out=$root/contracts/artifacts
[ $check = 1 ] && out=$(mktemp -d)
for name in "${contracts[@]}"; do
  cp "target/wasm32-unknown-unknown/release/shutong_${name//-/_}.wasm" "$out/${name}.wasm"
done
(cd "$out" && sha256sum ./*.wasm | sed 's# \./# #' > SHA256SUMS)

if [ $check = 1 ]; then
  if diff -u "$root/contracts/artifacts/SHA256SUMS" "$out/SHA256SUMS"; then
    echo "contract artifacts match the sources"
    rm -rf "$out"
  else
    echo "contract artifacts differ from a fresh build: run scripts/build-contracts.sh and commit" >&2
    exit 1
  fi
else
  cat "$out/SHA256SUMS"
fi
