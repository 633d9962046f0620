//! The genesis ceremony of four departments, as `docs/operations.md` tells it: each makes
//! its own validator and committee keys and hands over only the public parts; a coordinator
//! assembles one genesis; every department checks it and gets the same hash; each makes its
//! home on it with `init --genesis`, and the four processes finalize blocks together.

use shutong_testnet::NodeProcess;
use shutong_testnet::layout::free_port;
use std::collections::HashSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");

fn shutong(args: &[&str]) -> Output {
    std::process::Command::new(BIN).args(["--output", "json"]).args(args).output().unwrap()
}

fn json(out: Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn refusal(out: Output) -> String {
    assert!(!out.status.success(), "expected a refusal: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn four_departments_assemble_one_genesis_and_finalize_together() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    // Each department, on its own machine: a validator key and a committee key.
    let mut validators = Vec::new();
    let mut seats = Vec::new();
    for i in 0..4 {
        let validator = json(shutong(&["keys", "new", "--out", &p(&format!("dept-{i}-validator.json"))]));
        let committee = json(shutong(&["keys", "new", "--out", &p(&format!("dept-{i}-committee.json"))]));
        validators.push(format!("dept-{i}={}", validator["public_key"].as_str().unwrap()));
        seats.push(format!("dept-{i}={}=Department {i}", committee["account"].as_str().unwrap()));
    }
    // The coordinator assembles the genesis from the public parts alone.
    let mut args = vec!["genesis", "new", "--chain-id", "ceremony", "--threshold", "3"];
    let out = p("genesis.json");
    args.extend(["--out", &out]);
    for v in &validators {
        args.extend(["--validator", v]);
    }
    for s in &seats {
        args.extend(["--committee", s]);
    }
    let made = json(shutong(&args));
    assert_eq!(made["validators"].as_array().unwrap().len(), 4);
    assert_eq!(made["governance_threshold"], 3);
    // What the coordinator refuses: a key twice, an account that is not one, a seat
    // without one, and overwriting a genesis.
    let twice = p("twice.json");
    let attempt = |out: &str, validators: &[&str], seat: &str| {
        let mut args = vec!["genesis", "new", "--chain-id", "c", "--out", out, "--committee", seat];
        for v in validators {
            args.extend(["--validator", v]);
        }
        refusal(shutong(&args))
    };
    let again = validators[0].replace("dept-0", "again");
    let err = attempt(&twice, &[&validators[0], &again], &seats[0]);
    assert!(err.contains("validators") && err.contains("twice"), "{err}");
    let err = attempt(&twice, &[&validators[0]], "dept-0=not-an-account");
    assert!(err.contains("--committee dept-0=not-an-account"), "{err}");
    let err = attempt(&twice, &[&validators[0]], "dept-0");
    assert!(err.contains("ORG=ACCOUNT"), "{err}");
    let err = attempt(&out, &[&validators[0]], &seats[0]);
    assert!(err.contains("exists"), "{err}");
    assert!(!Path::new(&twice).exists());

    // Every department checks the file it received: one hash.
    let hashes: HashSet<String> = (0..4)
        .map(|_| json(shutong(&["genesis", "show", "--genesis", &out]))["genesis_hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes.iter().next().unwrap(), made["genesis_hash"].as_str().unwrap());

    // Each makes its home on it, dialling the others.
    let mut taken = HashSet::new();
    let ports: Vec<(u16, u16)> =
        (0..4).map(|_| (free_port(&mut taken).unwrap(), free_port(&mut taken).unwrap())).collect();
    let keys: Vec<String> = validators.iter().map(|v| v.split_once('=').unwrap().1.to_string()).collect();
    let mut nodes = Vec::new();
    for i in 0..4 {
        let home = p(&format!("dept-{i}"));
        let (rpc, p2p) = (format!("127.0.0.1:{}", ports[i].0), format!("127.0.0.1:{}", ports[i].1));
        let peers: Vec<String> =
            (0..4).filter(|j| *j != i).map(|j| format!("{}@127.0.0.1:{}", keys[j], ports[j].1)).collect();
        let key = p(&format!("dept-{i}-validator.json"));
        let mut args = vec!["init", "--home", &home, "--genesis", &out, "--key", &key, "--rpc-listen", &rpc];
        args.extend(["--p2p-listen", &p2p]);
        for peer in &peers {
            args.extend(["--peer", peer]);
        }
        let made = json(shutong(&args));
        assert_eq!(made["validator"], format!("dept-{i}"));
        nodes.push(NodeProcess::spawn(Path::new(BIN), Path::new(&home), ports[i].0).unwrap());
    }
    let err = refusal(shutong(&[
        "init",
        "--home",
        &p("again"),
        "--genesis",
        &out,
        "--key",
        &p("dept-0-validator.json"),
        "--peer",
        "nobody",
    ]));
    assert!(err.contains("--peer nobody"), "{err}");

    // The four finalize blocks together.
    let mut clients = Vec::new();
    for node in &mut nodes {
        clients.push(node.wait_ready(Duration::from_secs(60)).await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    for client in &clients {
        while client.status().await.unwrap().height < 5 {
            assert!(tokio::time::Instant::now() < deadline, "the chain does not finalize");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let status = clients[0].status().await.unwrap();
    assert_eq!(status.validators.len(), 4);
    assert!(status.peers >= 3, "{status:?}");
    let admin = shutong_sdk::keyfile::read(Path::new(&p("dept-0-committee.json"))).unwrap();
    let mut hashes = HashSet::new();
    for client in &clients {
        let client = client.signed_for("ceremony", admin.clone());
        hashes.insert(client.block(5).await.unwrap().unwrap().hash);
    }
    assert_eq!(hashes.len(), 1, "one chain");
}
