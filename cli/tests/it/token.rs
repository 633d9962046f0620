//! Keys in a PKCS#11 token: SoftHSM2 from Debian's packages, the module a hardware security
//! module would replace. The CLI makes an ed25519 key inside the token and signs with it;
//! a full node whose validator key is in the token joins the set with a proof of
//! possession the token signed (binding its transport key, since the token never releases
//! the secret libp2p needs), then votes: with another validator down, its votes make the
//! quorum. A missing SoftHSM2 fails these tests; `scripts/lib/setup.sh` installs it.

use crate::membership::{joins_and_makes_the_quorum, status};
use shutong_sdk::system_api::governance::{KeyProof, TransportKey};
use shutong_testnet::Cluster;
use shutong_types::PublicKey;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const WAIT: Duration = Duration::from_secs(120);
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN_ENV: &str = "SHUTONG_TEST_TOKEN_PIN";
const PIN: &str = "246810";

/// A fresh SoftHSM2 token in its own directory, found through `SOFTHSM2_CONF`.
struct Token {
    _dir: tempfile::TempDir,
    conf: PathBuf,
    label: &'static str,
}

impl Token {
    fn new(label: &'static str) -> Token {
        assert!(Path::new(MODULE).exists(), "{MODULE} is missing: scripts/lib/setup.sh installs softhsm2");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().join("tokens").display()
        );
        std::fs::write(dir.path().join("softhsm2.conf"), conf).unwrap();
        let token = Token { conf: dir.path().join("softhsm2.conf"), _dir: dir, label };
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label, "--so-pin", "13579", "--pin", PIN])
            .envs(token.env())
            .output()
            .expect("softhsm2-util runs (scripts/lib/setup.sh installs softhsm2)");
        assert!(out.status.success(), "softhsm2-util: {}", String::from_utf8_lossy(&out.stderr));
        token
    }

    /// What a process that opens the token needs in its environment.
    fn env(&self) -> [(&'static str, &OsStr); 2] {
        [("SOFTHSM2_CONF", self.conf.as_os_str()), (PIN_ENV, OsStr::new(PIN))]
    }

    fn uri(&self, object: &str) -> String {
        format!("pkcs11:token={};object={object}?module-path={MODULE}&pin-source=env:{PIN_ENV}", self.label)
    }
}

/// Runs the CLI with the token's environment; its JSON output, or its error text.
fn shutong(token: &Token, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new(BIN).args(args).args(["--output", "json"]).envs(token.env()).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn key_in(json: &serde_json::Value) -> PublicKey {
    json["public_key"].as_str().unwrap().parse().unwrap()
}

#[test]
fn the_cli_makes_a_key_inside_a_token_and_names_what_is_wrong() {
    let token = Token::new("cli-token");
    let uri = token.uri("principal");
    let made = shutong(&token, &["keys", "token-new", "--uri", &uri]).unwrap();
    let key = key_in(&made);
    assert_eq!(key.suite(), shutong_types::Suite::Ed25519Blake3);
    // Opening it signs once and checks the signature under the key the token reports.
    assert_eq!(key_in(&shutong(&token, &["keys", "show", "--key", &uri]).unwrap()), key);

    let again = shutong(&token, &["keys", "token-new", "--uri", &uri]).unwrap_err();
    assert!(again.contains("token cli-token already has a key labelled principal"), "{again}");
    let missing = shutong(&token, &["keys", "show", "--key", &token.uri("nobody")]).unwrap_err();
    assert!(missing.contains("token cli-token has no private key labelled nobody"), "{missing}");
    let other = shutong(&token, &["keys", "show", "--key", &uri.replace("token=cli-token", "token=elsewhere")]);
    let other = other.unwrap_err();
    assert!(other.contains("no token labelled elsewhere") && other.contains("tokens present: cli-token"), "{other}");
    let wrong_pin = Command::new(BIN)
        .args(["keys", "show", "--key", &uri])
        .envs(token.env())
        .env(PIN_ENV, "000000")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&wrong_pin.stderr);
    assert!(!wrong_pin.status.success());
    assert!(text.contains(&format!("token cli-token refused the PIN from environment variable {PIN_ENV}")), "{text}");
    let in_uri = shutong(&token, &["keys", "show", "--key", &format!("{uri}&pin-value=1")]).unwrap_err();
    assert!(in_uri.contains("pin-value puts the PIN in the URI"), "{in_uri}");
}

/// A proof of possession as `shutong gov possession` prints it: key:sig[:transport:binding].
fn proof_of(text: &str) -> KeyProof {
    let parts: Vec<&str> = text.trim().split(':').collect();
    let bytes = |i: usize| hex::decode(parts[i]).unwrap();
    KeyProof {
        key: parts[0].parse::<PublicKey>().unwrap().to_key_bytes(),
        signature: bytes(1).try_into().unwrap(),
        transport: (parts.len() == 4)
            .then(|| TransportKey { key: bytes(2).try_into().unwrap(), binding: bytes(3).try_into().unwrap() }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validator_votes_with_its_key_in_a_pkcs11_token() {
    let token = Token::new("validator-token");
    let uri = token.uri("validator");
    let token_key = key_in(&shutong(&token, &["keys", "token-new", "--uri", &uri]).unwrap());

    // The full node's validator key is the token's; its old key file becomes its transport
    // key, the p2p identity the validators already let in.
    let mut cluster = Cluster::init_with_full_nodes(Path::new(BIN), 4, 1, 100).unwrap();
    let home = cluster.members[4].home.clone();
    let transport = cluster.members[4].public_key;
    let mut cfg = shutong_node::config::Config::load(&home.join("config.toml")).unwrap();
    cfg.key_uri = Some(uri.clone());
    cfg.p2p.transport_key_file = Some(cfg.key_file.clone());
    std::fs::write(home.join("config.toml"), toml::to_string(&cfg).unwrap()).unwrap();
    for i in 0..4 {
        cluster.start(i).await.unwrap();
    }
    cluster.start_with_env(4, &token.env()).await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3, 4], 3, WAIT).await.unwrap();
    let v0 = cluster.client(0).unwrap();
    let full = cluster.client(4).unwrap();
    assert!(status(&full).await.full_node);

    // Its holder proves possession through the token with the CLI, binding the transport
    // key; the committee carries the change.
    let keys: Vec<PublicKey> = (0..3).map(|i| cluster.members[i].public_key).chain([token_key]).collect();
    let rpc = format!("http://{}", cluster.members[0].rpc);
    let mut args: Vec<String> = ["gov", "possession", "--key", &uri, "--rpc", &rpc].map(String::from).to_vec();
    for key in &keys {
        args.extend(["--validator".into(), key.to_hex()]);
    }
    args.extend(["--transport".into(), transport.to_hex()]);
    let printed = shutong(&token, &args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let proof = proof_of(printed["proof"].as_str().unwrap());
    assert_eq!(proof.key, token_key.to_key_bytes());
    // From the activation height the token's key votes in validator 3's place; with
    // validator 1 down, every block finalized carries a vote the token signed.
    let from = joins_and_makes_the_quorum(&mut cluster, &keys, proof).await;
    let mut certified = 0;
    for height in from + 1..=from + 5 {
        let block = v0.block(height).await.unwrap().unwrap();
        if block.certificate_hex.is_empty() {
            continue; // finalized through a descendant
        }
        let bytes = hex::decode(&block.certificate_hex).unwrap();
        let certificate = <shutong_types::Certificate as shutong_types::Decode>::decode(&bytes).unwrap();
        assert!(certificate.signer_indices().contains(&3), "the token's key (index 3) did not sign at {height}");
        certified += 1;
    }
    assert!(certified > 0, "no block from {from} on has a certificate of its own");
    let (healthy, health) = full.health().await.unwrap();
    assert!(healthy, "{health}");
    assert_eq!(health["signer"], serde_json::Value::Null, "{health}");
    assert_eq!(health["signing_failures"], 0, "{health}");
}
