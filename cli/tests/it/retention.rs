//! Retention by time on a test chain whose legal minimum is seconds, not 180 days: four
//! pruning validators under the authz workload and one archive full node. Pruned heights
//! answer `PRUNED` naming the oldest height the node can prove; the archive node answers
//! for them; and an auditor's light client still proves access events against the
//! pruning node's newest header, the old ones included (the audit log is never pruned).

use shutong_sdk::rpc::RpcCode;
use shutong_sdk::{Client, LightClient, VerifyingClient};
use shutong_testnet::Cluster;
use shutong_testnet::load::{self, Shape, World};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const WAIT: Duration = Duration::from_secs(120);
/// The window, in the chain's time.
const RETENTION_SECS: u64 = 4;

#[tokio::test(flavor = "multi_thread")]
async fn a_pruning_node_keeps_its_window_and_every_audit_proof() {
    let mut cluster = Cluster::init_pruning(Path::new(BIN), 4, 1, 50, RETENTION_SECS).unwrap();
    // The full node keeps everything.
    let archive_home = cluster.members[4].home.clone();
    let config = archive_home.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("archive = false", "archive = true");
    std::fs::write(&config, text).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3, 4], 2, WAIT).await.unwrap();
    let clients: Vec<Client> = (0..4).map(|i| cluster.client(i).unwrap()).collect();
    let shape = Shape {
        providers: 1,
        gateways_per_provider: 2,
        consumers: 1,
        analysts_per_consumer: 1,
        spare_grants: 5,
        pending_requests: 5,
    };
    let mut world = World::build(&clients, &cluster.committee, shape).await.unwrap();
    let v0 = &clients[0];
    let built = v0.status().await.unwrap().height;

    // Load until pruning (a pass every 100 heights) has dropped the blocks of the world's
    // set-up on validator 0.
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        let from = v0.status().await.unwrap().height;
        let txs = world.sign(80, from);
        let report = load::run(&clients, v0, &[], txs, 40.0, Duration::from_secs(60)).await.unwrap();
        assert!(report.committed > 0, "{report:?}");
        let status = v0.status().await.unwrap();
        if status.retained_from > built {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing was pruned: {status:?}");
    };
    eprintln!("validator 0 at height {} keeps blocks from {}", status.height, status.retained_from);
    assert!(!status.archive);

    // A pruned height answers PRUNED, naming where this node's history starts.
    let err = v0.block(1).await.unwrap_err();
    assert_eq!(err.code(), Some(RpcCode::Pruned), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("from height {} on", status.retained_from)) && text.contains("archive"), "{text}");
    let mut params = jsonrpsee::core::params::ArrayParams::new();
    params.insert(1u64).unwrap();
    let header =
        v0.call_raw::<Option<shutong_sdk::rpc::HeaderInfo>>(shutong_sdk::rpc::method::GET_HEADER, params).await;
    assert_eq!(header.unwrap_err().code(), Some(RpcCode::Pruned));
    // The CLI says where to go.
    let out = std::process::Command::new(BIN)
        .args(["--rpc", &format!("http://{}", cluster.members[0].rpc), "block", "--height", "1"])
        .env("SHUTONG_KEY", &cluster.admin_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("archive node"), "{stderr}");
    // Inside the window everything is there, and the archive node has all of it.
    let kept = v0.block(status.retained_from).await.unwrap().unwrap();
    let archive = cluster.client(4).unwrap();
    let archive_status = archive.status().await.unwrap();
    assert!(archive_status.archive && archive_status.retained_from == 1, "{archive_status:?}");
    let old = archive.block(1).await.unwrap().expect("the archive node keeps block 1");
    assert_eq!(old.header.height, 1);
    assert_eq!(archive.block(status.retained_from).await.unwrap().unwrap().hash, kept.hash);

    // An auditor trusting only the genesis file proves access events through the pruning
    // node: the newest, and the first, recorded before the window.
    let genesis = cluster.members[0].home.join("genesis.json");
    let light = LightClient::from_genesis_file(&genesis).unwrap();
    let mut auditor = VerifyingClient::new(cluster.client(0).unwrap(), light);
    let verified = auditor.sync().await.unwrap();
    let size = verified.header.audit_size;
    assert!(size > 1, "the load recorded access events");
    let first = auditor.audit_leaf(0).await.unwrap();
    assert!(first.height < status.retained_from, "the first event's block is pruned, its proof is not");
    let newest = auditor.audit_leaf(size - 1).await.unwrap();
    eprintln!(
        "leaves 0 (block {}, pruned) and {} (block {}) of {size} proven against header {}",
        first.height,
        size - 1,
        newest.height,
        verified.header.height
    );
}
