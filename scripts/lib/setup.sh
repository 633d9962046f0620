# Sourced by the scripts: installs what a fresh machine lacks, and sets the shared cargo
# target directory (kept outside the clone so CI and later runs reuse the build).

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/shutong-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {
  if [ -z "${SHUTONG_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq
    export SHUTONG_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# RocksDB's bindings need libclang at build time.
ensure_build_packages() {
  # Not `grep -q` in the pipe: under pipefail its early exit fails ldconfig with SIGPIPE.
  if ! ldconfig -p 2>/dev/null | grep 'libclang\(-[0-9.]*\)\?\.so' >/dev/null; then
    echo "installing clang (librocksdb-sys needs libclang)" >&2
    apt_install clang
  fi
  # The SM suite's tests check the node's SM2/SM3 against a second implementation.
  if ! command -v openssl >/dev/null; then
    echo "installing openssl (the SM2/SM3 cross-checks run it)" >&2
    apt_install openssl
  fi
  # The PKCS#11 signer's tests sign with a key in a SoftHSM2 token.
  if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null; then
    echo "installing softhsm2 (the PKCS#11 signer's tests use its token)" >&2
    apt_install softhsm2
  fi
  # A test checks the systemd unit in deploy/ with systemd-analyze.
  if ! command -v systemd-analyze >/dev/null; then
    echo "installing systemd (a test verifies the unit file with systemd-analyze)" >&2
    apt_install systemd
  fi
  # A test checks the alerting rules in deploy/ with promtool (Debian ships it in prometheus).
  if ! command -v promtool >/dev/null; then
    echo "installing prometheus (a test checks the alerting rules with its promtool)" >&2
    apt_install --no-install-recommends prometheus
  fi
  if ! command -v cargo >/dev/null; then
    echo "cargo is not on PATH: install Rust 1.95 (rustup) first" >&2
    return 1
  fi
}
