//! Failing disks (`node/src/disk.rs`): RocksDB on a disk that fills up, a validator whose
//! data directory is on a size-limited tmpfs that fills, and a validator whose fsync fails
//! (an `LD_PRELOAD` shim returning EIO). Mounting a tmpfs needs root, as CI has.

use shutong_execution::audit_log::LogUpdate;
use shutong_execution::state_tree::TreeUpdate;
use shutong_node::config::Config;
use shutong_sdk::{Client, RpcCode};
use shutong_storage::{Commit, Storage, StorageError, Tip};
use shutong_testnet::Cluster;
use shutong_testnet::disk::{Tmpfs, eio_shim};
use shutong_testnet::faults;
use shutong_testnet::load::{self, Shape, World};
use shutong_types::{Block, Hash, Roots};
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shutong");

fn commit(storage: &Storage, parent: Hash, height: u64, value: Vec<u8>) -> Result<Hash, StorageError> {
    let block = Block::empty("disk", height, parent);
    let mut writes = shutong_vm::state::Writes::new();
    writes.insert(format!("key/{height}").into_bytes(), Some(value));
    let roots = Roots { state: Hash::ZERO, receipts: Hash::ZERO, audit: Hash::ZERO, audit_size: 0 };
    let tip = Tip::after(&block.header, roots);
    let (tree, log) = (TreeUpdate::default(), LogUpdate::default());
    let commit =
        Commit { block: &block, certificate: None, receipts: &[], writes: &writes, tree: &tree, log: &log, tip };
    storage.commit(commit).map(|()| block.header.hash())
}

/// RocksDB refuses a block on a full disk as a whole, and then every write, until it is
/// reopened once space is freed; the block written after is there after a restart.
#[test]
fn a_full_disk_refuses_a_block_whole_and_a_reopen_takes_writes_again() {
    let disk = Tmpfs::mount(24).unwrap();
    let path = disk.path().join("db");
    let storage = Storage::open(&path, shutong_types::Suite::Ed25519Blake3).unwrap();
    let mut parent = Hash::ZERO;
    for height in 1..=3 {
        parent = commit(&storage, parent, height, vec![height as u8; 1024]).unwrap();
    }
    disk.fill("ballast").unwrap();
    assert!(storage.free_bytes().unwrap() < 1 << 20);
    let err = commit(&storage, parent, 4, vec![4; 2 << 20]).unwrap_err();
    assert!(err.is_no_space(), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "the error names the disk: {err}");
    assert_eq!(storage.tip().unwrap().height, 3, "nothing of the refused block is stored");
    assert!(storage.block(4).is_none() && storage.state_get(b"key/4").is_none());
    std::fs::remove_file(disk.path().join("ballast")).unwrap();
    assert!(storage.probe().unwrap_err().is_no_space(), "RocksDB refuses writes after a failed log write");
    storage.reopen().unwrap();
    assert_eq!(storage.tip().unwrap().height, 3);
    commit(&storage, parent, 4, vec![4; 2 << 20]).unwrap();
    drop(storage);
    let storage = Storage::open(&path, shutong_types::Suite::Ed25519Blake3).unwrap();
    assert_eq!(storage.tip().unwrap().height, 4);
    assert_eq!(storage.state_get(b"key/4").unwrap().len(), 2 << 20);
    assert_eq!(storage.state_get(b"key/3").unwrap(), vec![3; 1024]);
}

/// Rewrites member `i`'s config.
fn configure(cluster: &Cluster, i: usize, change: impl FnOnce(&mut Config)) {
    let file = cluster.members[i].home.join(shutong_node::CONFIG_FILE);
    let mut cfg = Config::load(&file).unwrap();
    change(&mut cfg);
    std::fs::write(&file, cfg.to_toml()).unwrap();
}

/// Waits until `client`'s `/health` says `healthy`; returns its JSON.
async fn wait_health(client: &Client, healthy: bool, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok((ok, json)) = client.health().await
            && ok == healthy
        {
            return json;
        }
        assert!(Instant::now() < deadline, "/health not {} after {timeout:?}", if healthy { "ok" } else { "503" });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn log_of(cluster: &Cluster, i: usize) -> String {
    std::fs::read_to_string(cluster.members[i].home.join("node.log")).unwrap()
}

const SHAPE: Shape = Shape {
    providers: 1,
    gateways_per_provider: 2,
    consumers: 1,
    analysts_per_consumer: 2,
    spare_grants: 10,
    pending_requests: 10,
};

/// A validator on a tmpfs that fills up: it stops committing and voting, answers 503 on
/// `/health` naming the disk, refuses transactions it cannot keep, writes no partial block,
/// and goes on by itself once space is freed, with the others' blocks and state. No reserve
/// is configured, so RocksDB itself meets the full disk.
#[tokio::test(flavor = "multi_thread")]
async fn a_validator_whose_disk_fills_stops_and_goes_on_once_space_is_freed() {
    let disk = Tmpfs::mount(256).unwrap();
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    configure(&cluster, 3, |cfg| {
        cfg.data_dir = disk.path().join("data");
        cfg.storage.min_free_mb = 0;
    });
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.unwrap();
    let clients: Vec<Client> = (0..4).map(|i| cluster.client(i).unwrap()).collect();
    let mut world = World::build(&clients[..3], &cluster.committee, SHAPE).await.unwrap();

    let filled = disk.fill("ballast").unwrap();
    let health = wait_health(&clients[3], false, Duration::from_secs(60)).await;
    let fault = health["disk"].as_str().unwrap_or_default().to_string();
    eprintln!("filled {} MiB; /health of validator 3: {health}", filled >> 20);
    assert!(fault.contains(&disk.path().display().to_string()), "/health names the disk: {health}");
    assert!(log_of(&cluster, 3).contains("not voting or committing until space is freed"));
    let stuck = clients[3].status().await.unwrap().height;
    let refused = clients[3].submit_raw(&[0; 8]).await.unwrap_err();
    assert_eq!(refused.code(), Some(RpcCode::StorageUnavailable), "{refused}");

    // The others go on under load; validator 3 commits nothing meanwhile.
    let from = clients[0].status().await.unwrap().height;
    let txs = world.sign(200, from);
    let report = load::run(&clients[..3], &clients[0], &[], txs, 40.0, Duration::from_secs(60)).await.unwrap();
    cluster.wait_height(&[0, 1, 2], stuck + 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(clients[3].status().await.unwrap().height, stuck, "a validator on a full disk commits nothing");

    std::fs::remove_file(disk.path().join("ballast")).unwrap();
    wait_health(&clients[3], true, Duration::from_secs(90)).await;
    let log = log_of(&cluster, 3);
    assert!(log.contains("the disk takes writes again"), "{log}");
    // Whether RocksDB still refused writes after its failed log write (and so needed the
    // reopen the disk guard makes) depends on which write met the full disk; both happen.
    // The reopen itself is tested in `a_full_disk_refuses_a_block_whole_and_a_reopen_...`.
    eprintln!("database reopened to take writes again: {}", log.contains("database reopened"));
    let tally = faults::check(&cluster, &report.accepted_ids, from, Duration::from_secs(90)).await.unwrap();
    eprintln!("after space was freed: {tally:?}");
    assert_eq!((tally.lost, tally.duplicated, tally.validators_agreeing), (0, 0, 4), "{tally:?}");

    // What the node wrote across the fault opens whole after a crash.
    let height = clients[3].status().await.unwrap().height;
    cluster.kill(3);
    cluster.start(3).await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], height + 5, Duration::from_secs(90)).await.unwrap();
    let tally = faults::check(&cluster, &[], height, Duration::from_secs(90)).await.unwrap();
    assert_eq!(tally.validators_agreeing, 4, "{tally:?}");
}

/// A validator whose fsync fails stops, and says why, rather than retry a write whose
/// durability is unknown; the others go on, and it catches up once started on a good disk.
#[tokio::test(flavor = "multi_thread")]
async fn an_fsync_error_stops_the_validator() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let shim = eio_shim(scratch.path()).unwrap();
    let trigger = scratch.path().join("fail-fsync-now");
    for i in 0..3 {
        cluster.start(i).await.unwrap();
    }
    let env = [("LD_PRELOAD", shim.as_os_str()), ("SHUTONG_EIO_WHEN", trigger.as_os_str())];
    cluster.start_with_env(3, &env).await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(90)).await.unwrap();

    std::fs::write(&trigger, b"").unwrap();
    let status = cluster.wait_exit(3, Duration::from_secs(60)).await.unwrap();
    let log = log_of(&cluster, 3);
    let last: Vec<&str> = log.lines().filter(|l| l.contains("disk")).collect();
    eprintln!("validator 3 exited with {status}; its log on the disk:\n{}", last.join("\n"));
    assert!(!status.success(), "{status}");
    assert!(log.contains("the node stops rather than retry it"), "{log}");
    assert!(log.contains("Input/output error"), "the log names the error: {log}");

    let height = cluster.client(0).unwrap().status().await.unwrap().height;
    cluster.wait_height(&[0, 1, 2], height + 5, Duration::from_secs(60)).await.unwrap();
    std::fs::remove_file(&trigger).unwrap();
    cluster.start(3).await.unwrap();
    cluster.wait_height(&[3], height + 5, Duration::from_secs(90)).await.unwrap();
    let tally = faults::check(&cluster, &[], height, Duration::from_secs(90)).await.unwrap();
    assert_eq!(tally.validators_agreeing, 4, "{tally:?}");
}
