//! What an operator installs beside the binary: the systemd unit passes `systemd-analyze
//! verify` with no warning (an unknown or misspelt directive is only a warning to systemd,
//! and would silently drop a hardening option), run against this build's binary.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const UNIT: &str = include_str!("../../../deploy/systemd/shutong.service");

fn verify(unit: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shutong.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/shutong", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (scripts/lib/setup.sh installs systemd)");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    let (ok, warnings) = verify(UNIT);
    assert!(ok && warnings.is_empty(), "systemd-analyze verify: {warnings}");
    assert!(UNIT.contains("NoNewPrivileges=yes") && UNIT.contains("ProtectSystem=strict"));
    // The check sees a misspelt hardening option, which systemd itself only warns about.
    let (_, warnings) = verify(&UNIT.replace("ProtectHome=yes", "ProtectHomes=yes"));
    assert!(warnings.contains("Unknown key 'ProtectHomes'"), "{warnings}");
}
