//! `GET /metrics` and `GET /health` on the RPC port of a real node: what it counts moves
//! with what the node does, the exposition is well formed, and JSON-RPC on the same port is
//! untouched.

use crate::common::TestNode;
use shutong_sdk::system_api::registry::OrgKind;
use shutong_sdk::{Signer, builder};
use shutong_types::Keypair;
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_node_does_and_health_says_ok() {
    let t = TestNode::start().await;
    let me = Signer::connect(&t.client, Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await.unwrap();
    me.execute(builder::register_org("jingan", "Jing'an", OrgKind::Department)).await.unwrap();
    // One refusal of each of two kinds.
    let wrong_chain =
        shutong_sdk::TxBuilder::new("another-chain", Keypair::generate(shutong_types::Suite::Ed25519Blake3))
            .call(builder::register_org("x", "X", OrgKind::Department), 0, 10)
            .unwrap();
    assert!(t.client.submit(&wrong_chain).await.is_err());
    assert!(t.client.submit_raw(b"not a transaction").await.is_err());

    let m = t.client.metrics().await.unwrap();
    assert!(m["shutong_height"] >= 1.0, "{m:?}");
    assert!(m["shutong_blocks_committed_total"] >= 1.0);
    assert!(m["shutong_txs_committed_total"] >= 1.0);
    assert!(m["shutong_gas_used_total"] > 0.0);
    assert_eq!(m[r#"shutong_mempool_rejections_total{reason="wrong_chain"}"#], 1.0);
    assert_eq!(m[r#"shutong_mempool_rejections_total{reason="malformed"}"#], 1.0);
    assert!(m[r#"shutong_vm_calls_total{vm="executor"}"#] >= 1.0);
    assert!(m[r#"shutong_vm_instantiate_seconds_total{vm="executor"}"#] > 0.0);
    assert!(m[r#"shutong_finality_seconds_bucket{le="+Inf"}"#] >= 1.0);
    // A one-validator chain executes its own blocks at commit: that is timed too.
    assert!(m["shutong_block_execute_seconds_count"] >= 1.0, "{m:?}");
    assert!(m["shutong_block_commit_seconds_count"] >= 1.0);
    assert!(m[r#"shutong_db_sst_bytes{cf="state"}"#] >= 0.0);
    assert_eq!(m["shutong_db_write_stopped"], 0.0);
    assert_eq!(m["shutong_validators"], 1.0);
    for timer in ["leader", "advance", "rebroadcast"] {
        assert!(m.contains_key(&format!("shutong_consensus_timeouts_total{{timer=\"{timer}\"}}")), "{m:?}");
    }

    // Every metric has one HELP and one TYPE line, and every sample belongs to one of them.
    let text = raw(&t, "/metrics").await;
    let mut declared = HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(declared.insert(name.clone()), "{name} declared twice");
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(declared.contains(name) || declared.contains(base), "{line} has no TYPE");
            assert!(line.rsplit_once(' ').unwrap().1.parse::<f64>().is_ok(), "{line}");
        }
    }

    let (healthy, health) = t.client.health().await.unwrap();
    assert!(healthy, "{health}");
    assert_eq!(health["status"], "ok");
    assert!(health["height"].as_u64().unwrap() >= 1);
    // JSON-RPC on the same port still answers.
    assert!(t.client.status().await.unwrap().height >= 1);
    t.stop().await;
}

/// The body of a GET, by hand.
async fn raw(t: &TestNode, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.node.as_ref().unwrap().rpc_addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}
