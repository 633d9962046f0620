#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a set time, each on its committed corpus
# (fuzz/corpus/TARGET), which grows with what the run finds; crashes land in
# fuzz/artifacts/TARGET and fail the script.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# FUZZ_SMOKE=1 (how the test command runs it, a few seconds a target) works on a copy of the
# corpus, so a run leaves the checkout as it was.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain for the sanitizer
# (`rustup toolchain install nightly`); without nightly it builds with the stable toolchain and
# no sanitizer (RUSTC_BOOTSTRAP=1 unlocks the flags cargo-fuzz passes), which still finds
# panics, overflows (debug assertions are on) and over-allocation.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^shutong-fuzz$')

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
target_dir=${FUZZ_TARGET_DIR:-$HOME/.cache/shutong-fuzz-target}
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
  sanitizer=address
else
  toolchain=()
  sanitizer=none
  export RUSTC_BOOTSTRAP=1
fi
# -rss_limit_mb: an input that makes a decoder allocate far beyond its bytes fails the run.
flags=(-max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1)

cd fuzz
corpus=corpus
if [ "${FUZZ_SMOKE:-0}" = 1 ]; then
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
  cp -r corpus/. "$corpus"/
fi
cargo "${toolchain[@]}" fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir"
status=0
for target in "${targets[@]}"; do
  mkdir -p "$corpus/$target"
  echo "== $target: $seconds s"
  log=$(mktemp)
  if ! cargo "${toolchain[@]}" fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" "$target" "$corpus/$target" -- "${flags[@]}" >"$log" 2>&1; then
    status=1
    echo "!! $target failed; its crash input is in fuzz/artifacts/$target"
    tail -n 40 "$log"
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done [0-9]+ runs' "$log" || true
  echo "corpus: $(find "$corpus/$target" -type f | wc -l) inputs"
  rm -f "$log"
done
exit $status
