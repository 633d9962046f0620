//! What an operator installs beside the binary: the systemd unit passes `systemd-analyze
//! verify` with no warning (an unknown or misspelt directive is only a warning to systemd,
//! and would silently drop a hardening option), run against this build's binary; the
//! Prometheus alerting rules pass `promtool check rules` and their unit tests; the rules and
//! the Grafana dashboard name only metrics `docs/metrics.md` documents.

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

fn promtool(args: &[&str]) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus");
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs (scripts/lib/setup.sh installs Debian's prometheus package for it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

#[test]
fn the_alerting_rules_check_and_fire_when_they_should() {
    assert!(promtool(&["check", "rules", "alerts.yml"]).contains("SUCCESS: 8 rules found"));
    promtool(&["test", "rules", "alerts.test.yml"]);
    // Every metric of ours they name is one the node exports.
    let named = documented_metrics(include_str!("../../../deploy/prometheus/alerts.yml"));
    assert_eq!(named.len(), 7, "{named:?}");
}

/// The node's metrics `text` names, each checked against `docs/metrics.md` (a histogram's
/// `_bucket` series by the histogram's name).
fn documented_metrics(text: &str) -> std::collections::BTreeSet<&str> {
    let documented = include_str!("../../../docs/metrics.md");
    let named: std::collections::BTreeSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("shutong_"))
        .map(|word| word.strip_suffix("_bucket").unwrap_or(word))
        .collect();
    for metric in &named {
        assert!(documented.contains(&format!("`{metric}")), "{metric} is not in docs/metrics.md");
    }
    named
}

#[test]
fn the_grafana_dashboard_queries_documented_metrics_in_panels_that_do_not_overlap() {
    let text = include_str!("../../../deploy/grafana/shutong.json");
    let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut cells = std::collections::BTreeSet::new();
    let mut exprs = String::new();
    for (i, panel) in panels.iter().enumerate() {
        assert_eq!(panel["id"], i + 1);
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {i} names its data source by the input");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty());
        for target in targets {
            exprs.push_str(target["expr"].as_str().unwrap());
            exprs.push('\n');
        }
        let grid = &panel["gridPos"];
        let at = |k: &str| grid[k].as_u64().unwrap();
        assert!(at("x") + at("w") <= 24, "panel {i} is wider than the dashboard");
        for x in at("x")..at("x") + at("w") {
            for y in at("y")..at("y") + at("h") {
                assert!(cells.insert((x, y)), "panel {i} overlaps another at ({x}, {y})");
            }
        }
    }
    assert!(documented_metrics(&exprs).len() >= 15);
}
