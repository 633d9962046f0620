//! `shutong node backup` and `shutong node restore` on a running 4-validator chain: a backup
//! taken under load by the running validator, the bad backups a restore refuses, and the
//! validator brought back from that (by then old) backup, which reaches the others' roots,
//! votes again only above its signing high-water mark, and is never reported for a double
//! vote.

use shutong_sdk::system_api::registry::OrgKind;
use shutong_sdk::{TxBuilder, builder};
use shutong_testnet::Cluster;
use shutong_types::{Certificate, Decode};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const WAIT: Duration = Duration::from_secs(90);
const PASSPHRASE: &str = "correct horse battery staple";

/// Runs `shutong --output json ARGS` with the backup passphrase `passphrase`.
fn shutong(args: &[&std::ffi::OsStr], passphrase: &str) -> Output {
    std::process::Command::new(BIN)
        .args(["--output", "json"])
        .args(args)
        .env("SHUTONG_BACKUP_PASSPHRASE", passphrase)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The error a refused command printed; it must have failed.
fn refusal(out: &Output) -> String {
    assert!(!out.status.success(), "expected a refusal: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn restore(from: &Path, home: &Path, floor: Option<&str>, passphrase: &str) -> Output {
    let mut args = vec![os("node"), os("restore"), os("--from"), from.as_os_str(), os("--home"), home.as_os_str()];
    if let Some(floor) = floor {
        args.extend([os("--signing-floor"), os(floor)]);
    }
    shutong(&args, passphrase)
}

/// Copies the backup directory `from` to `to`.
fn copy_backup(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("files")).unwrap();
    for entry in walk(from) {
        let relative = entry.strip_prefix(from).unwrap();
        std::fs::copy(&entry, to.join(relative)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

fn mark(home: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(home.join("signing.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    (json["epoch"].as_u64().unwrap(), json["view"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validator_restored_from_an_old_backup_catches_up_and_signs_no_view_twice() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 2, WAIT).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let home = cluster.members[3].home.clone();

    // Load: enterprises registering, on validator 0, all through the backup.
    let client = cluster.client(0).unwrap();
    let chain_id = cluster.chain_id.clone();
    let key = shutong_types::Keypair::generate(shutong_types::Suite::Ed25519Blake3);
    let account = key.account();
    let load = tokio::spawn(async move {
        let txb = TxBuilder::new(&chain_id, key);
        let mut nonce = 0;
        loop {
            let until = client.status().await.map(|s| s.height + 1000).unwrap_or(1000);
            let tx = txb.call(builder::register_org(&format!("org-{nonce}"), "X", OrgKind::Enterprise), nonce, until);
            if client.submit(&tx.unwrap()).await.is_ok() {
                nonce += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let v0 = cluster.client(0).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while v0.nonce(&account).await.unwrap() < 50 {
        assert!(tokio::time::Instant::now() < deadline, "the load commits nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let old = work.path().join("old");
    let taken = json(&shutong(
        &[os("node"), os("backup"), os("--home"), home.as_os_str(), os("--to"), old.as_os_str()],
        PASSPHRASE,
    ));
    assert_eq!(taken["online"], true, "the running validator took the checkpoint: {taken}");
    let backup_height = taken["height"].as_u64().unwrap();
    eprintln!("backup under load: {taken}");
    assert!(old.join("backup.json").exists() && old.join("manifest.sealed").exists());
    assert!(
        !walk(cluster.members[3].home.as_path()).iter().any(|p| p.to_string_lossy().contains(".checkpoint-")),
        "the checkpoint is removed"
    );

    // The validator goes on signing well past the backup, then its machine is lost.
    cluster.wait_height(&[0, 1, 2, 3], backup_height + 15, WAIT).await.unwrap();
    load.abort();
    cluster.kill(3);
    let (epoch, signed_view) = mark(&home);
    let restored_data = home.join("data");
    std::fs::rename(&restored_data, work.path().join("data.lost")).unwrap();

    // What a restore refuses, each by name, leaving the home as it was.
    let wrong = refusal(&restore(&old, &home, None, "not the passphrase"));
    assert!(wrong.contains("passphrase"), "{wrong}");
    let truncated = work.path().join("truncated");
    copy_backup(&old, &truncated);
    let largest =
        walk(&truncated.join("files")).into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let len = std::fs::metadata(&largest).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&largest).unwrap().set_len(len / 2).unwrap();
    let err = refusal(&restore(&truncated, &home, None, PASSPHRASE));
    assert!(err.contains("truncated") && err.contains(&*largest.file_name().unwrap().to_string_lossy()), "{err}");
    let newer = work.path().join("newer");
    copy_backup(&old, &newer);
    let header = std::fs::read_to_string(newer.join("backup.json")).unwrap();
    let mut header: serde_json::Value = serde_json::from_str(&header).unwrap();
    header["format"] = serde_json::json!(99);
    std::fs::write(newer.join("backup.json"), header.to_string()).unwrap();
    let err = refusal(&restore(&newer, &home, None, PASSPHRASE));
    assert!(err.contains("99") && err.contains("newer"), "{err}");
    let other = work.path().join("other-home");
    let init = std::process::Command::new(BIN)
        .args(["init", "--chain-id", "another-chain", "--home"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let err = refusal(&restore(&old, &other, Some("0:1"), PASSPHRASE));
    assert!(err.contains("another chain") || err.contains("of chain"), "{err}");
    std::fs::create_dir_all(&restored_data).unwrap();
    std::fs::write(restored_data.join("stray"), b"x").unwrap();
    let err = refusal(&restore(&old, &home, None, PASSPHRASE));
    assert!(err.contains("not empty"), "{err}");
    std::fs::remove_dir_all(&restored_data).unwrap();
    let err = refusal(&restore(&old, &home, Some("0:1"), PASSPHRASE));
    assert!(err.contains("never lowered"), "a home's own mark is kept: {err}");
    assert!(!restored_data.exists(), "no refused restore left anything behind");

    // The good restore. The home keeps its mark, from after the backup.
    let restored = json(&restore(&old, &home, None, PASSPHRASE));
    assert_eq!(restored["height"].as_u64(), Some(backup_height));
    assert_eq!(restored["signing_mark"]["view"].as_u64(), Some(signed_view));
    assert_eq!(mark(&home), (epoch, signed_view));

    // Back in the chain: it syncs past the backup to the others' blocks and roots.
    cluster.start(3).await.unwrap();
    let log = std::fs::read_to_string(home.join("node.log")).unwrap();
    let floor = log.lines().find(|l| l.contains("behind the signing high-water mark"));
    eprintln!("validator 3 signed up to view {signed_view} of epoch {epoch}; after the restore: {floor:?}");
    assert!(floor.is_some_and(|l| l.contains(&format!("at or below view {signed_view}"))), "{}", cluster.log_tail(3));
    let target = v0.status().await.unwrap().height + 10;
    cluster.wait_height(&[0, 1, 2, 3], target, WAIT).await.unwrap();
    let v3 = cluster.client(3).unwrap();
    let theirs = v0.block(target).await.unwrap().unwrap();
    let ours = v3.block(target).await.unwrap().unwrap();
    assert_eq!((ours.hash, ours.header.state_root), (theirs.hash, theirs.header.state_root));

    // It votes again above its mark: its signature is in later finalizations, made by
    // others' nodes from the votes they received.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut height = target;
    loop {
        let block = v0.block(height).await.unwrap();
        if let Some(block) = block.filter(|b| !b.certificate_hex.is_empty()) {
            let certificate = Certificate::decode(&hex::decode(&block.certificate_hex).unwrap()).unwrap();
            if certificate.signer_indices().contains(&3) {
                assert!(certificate.subject.view > signed_view, "signed in view {} again", certificate.subject.view);
                break;
            }
            height += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(tokio::time::Instant::now() < deadline, "validator 3 never voted again");
    }
    assert!(mark(&home).1 > signed_view, "the mark moves on with its votes");

    // Nobody reported it for a conflicting vote.
    let out = std::process::Command::new(BIN)
        .args(["--output", "json", "--rpc", &format!("http://{}", cluster.members[0].rpc), "gov", "evidence"])
        .env("SHUTONG_KEY", &cluster.admin_key)
        .output()
        .unwrap();
    let evidence = json(&out);
    assert_eq!(evidence["evidence"].as_array().map(Vec::len), Some(0), "{evidence}");

    // A stopped node is backed up by the command itself.
    cluster.kill(3);
    let offline = work.path().join("offline");
    let taken = json(&shutong(
        &[os("node"), os("backup"), os("--home"), home.as_os_str(), os("--to"), offline.as_os_str()],
        PASSPHRASE,
    ));
    assert_eq!(taken["online"], false);
    assert!(taken["height"].as_u64().unwrap() >= target);
}
