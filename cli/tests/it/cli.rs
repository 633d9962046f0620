//! The `shutong` command as scripts use it: one `NOUN VERB --flags` tree, `--output json`
//! everywhere, the signer from `--key` or `SHUTONG_KEY`, and errors that name the problem
//! and say what to do. Against a real node in this process.

use crate::common::TestNode;
use serde_json::Value;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");

struct Shell {
    rpc: String,
    dir: tempfile::TempDir,
}

struct Ran {
    args: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        assert!(self.ok, "`shutong {}` failed: {}", self.args, self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not one JSON value ({e}): {}", self.stdout))
    }
}

impl Shell {
    fn key(&self, name: &str) -> String {
        self.dir.path().join(format!("{name}.json")).to_str().unwrap().to_string()
    }

    /// Runs `shutong --output json --rpc RPC ARGS`, signing as `who` if given (via SHUTONG_KEY).
    fn run(&self, who: Option<&str>, args: &[&str]) -> Ran {
        let mut command = std::process::Command::new(BIN);
        command.args(["--output", "json", "--rpc", &self.rpc]).args(args).env_remove("SHUTONG_KEY");
        if let Some(who) = who {
            command.env("SHUTONG_KEY", self.key(who));
        }
        let out = command.output().unwrap();
        Ran {
            args: args.join(" "),
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A new key; returns its account.
    fn new_key(&self, name: &str) -> String {
        let made = self.run(None, &["keys", "new", "--out", &self.key(name)]).json();
        made["account"].as_str().unwrap().to_string()
    }

    /// A signed command that must succeed; returns its receipt.
    fn send(&self, who: &str, args: &[&str]) -> Value {
        let receipt = self.run(Some(who), args).json();
        assert_eq!(receipt["status"]["kind"], "success", "{args:?}: {receipt}");
        receipt
    }
}

fn output_u64(receipt: &Value) -> u64 {
    // The call's output is the encoded id: a little-endian u64 (or an Option of one).
    let hex = receipt["output"].as_str().unwrap();
    let bytes = hex::decode(hex).unwrap();
    let tail: [u8; 8] = bytes[bytes.len() - 8..].try_into().unwrap();
    u64::from_le_bytes(tail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_tree_tells_the_story_in_json() {
    let t = TestNode::start().await;
    let sh = Shell { rpc: format!("http://{}", t.node.as_ref().unwrap().rpc_addr), dir: tempfile::tempdir().unwrap() };
    shutong_sdk::keyfile::write(Path::new(&sh.key("admin")), &t.admin, false).unwrap();
    let market = sh.new_key("market");
    let analyst = sh.new_key("analyst");
    let gateway = sh.new_key("gateway");
    sh.new_key("acme");
    assert_eq!(sh.run(Some("market"), &["keys", "show"]).json()["account"], market.as_str());

    // Organisations and principals.
    sh.send("market", &["org", "register", "--id", "market", "--name", "Market Bureau", "--kind", "department"]);
    let shown = sh.run(Some("admin"), &["org", "show", "--id", "market"]).json();
    assert_eq!((shown["kind"].as_str(), shown["admin"].as_str()), (Some("department"), Some(market.as_str())));
    assert_eq!(shown["status"], "pending", "a department waits for the committee: {shown}");
    let approved = sh.send("admin", &["gov", "propose", "approve-org", "--id", "market"]);
    let shown = sh.run(Some("admin"), &["gov", "show", "--id", &output_u64(&approved).to_string()]).json();
    assert_eq!(shown["executed"], true, "{shown}");
    assert_eq!(sh.run(Some("admin"), &["org", "show", "--id", "market"]).json()["status"], "active");
    sh.send(
        "market",
        &["org", "set-principal", "--id", "market", "--account", &market, "--roles", "admin,data_provider,cdo"],
    );
    sh.send(
        "market",
        &[
            "org",
            "set-principal",
            "--id",
            "market",
            "--account",
            &gateway,
            "--roles",
            "data_provider",
            "--kind",
            "gateway",
        ],
    );
    sh.send("acme", &["org", "register", "--id", "acme", "--name", "Acme", "--kind", "enterprise"]);
    sh.send("acme", &["org", "set-principal", "--id", "acme", "--account", &analyst, "--roles", "data_consumer"]);
    let member = sh.run(Some("admin"), &["org", "member", "--account", &analyst]).json();
    assert_eq!((member["org"].as_str(), member["acting"].as_bool()), (Some("acme"), Some(true)));

    // Governance, the catalog, a request and its grant.
    sh.send("admin", &["gov", "propose", "define-purpose", "--id", "licensing", "--bases", "statute,duty_mandate"]);
    assert_eq!(sh.run(Some("admin"), &["gov", "purpose", "--id", "licensing.renewal"]).json()["id"], "licensing");
    sh.send(
        "market",
        &[
            "catalog",
            "publish",
            "--id",
            "market/licence",
            "--org",
            "market",
            "--classification",
            "general",
            "--share",
            "conditional",
            "--conditions",
            "licensing matters",
            "--field",
            "uscc:string:general",
            "--field",
            "name:string:general",
        ],
    );
    assert_eq!(
        sh.run(Some("admin"), &["catalog", "show", "--id", "market/licence"]).json()["fields"][1]["name"],
        "name"
    );
    let submitted = sh.send(
        "analyst",
        &[
            "request",
            "submit",
            "--resource",
            "market/licence",
            "--fields",
            "uscc,name",
            "--purpose",
            "licensing.renewal",
            "--max-uses",
            "2",
        ],
    );
    let request = output_u64(&submitted).to_string();
    let approved = sh.send("market", &["request", "approve", "--id", &request, "--fields", "uscc"]);
    let grant = output_u64(&approved).to_string();
    let g = sh.run(Some("admin"), &["grant", "show", "--id", &grant]).json();
    assert_eq!((g["fields"].clone(), g["max_uses"].as_u64()), (serde_json::json!(["uscc"]), Some(2)));
    let check = |fields: &str| {
        sh.run(
            Some("gateway"),
            &[
                "grant",
                "check",
                "--id",
                &grant,
                "--consumer",
                &analyst,
                "--fields",
                fields,
                "--purpose",
                "licensing.renewal",
            ],
        )
        .json()
    };
    assert_eq!(check("uscc")["permit"], true);
    assert_eq!(check("uscc,name")["permit"], false, "name was not granted");

    // The provider records a use; anyone reads it back.
    sh.send(
        "gateway",
        &[
            "audit",
            "record",
            "--id",
            &grant,
            "--consumer",
            &analyst,
            "--fields",
            "uscc",
            "--purpose",
            "licensing.renewal",
        ],
    );
    let history = sh.run(Some("admin"), &["audit", "history", "--id", &grant]).json();
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["permit"], true);
    let event = sh.run(Some("admin"), &["audit", "event", "--id", &history[0]["id"].to_string()]).json();
    assert_eq!(event["grant"].to_string(), grant);

    // Offline signing: `tx sign` needs no node, `tx submit` sends it, `tx show` finds it.
    let nonce = sh.run(Some("market"), &["tx", "nonce"]).json()["nonce"].as_u64().unwrap();
    let height = sh.run(None, &["status"]).json()["height"].as_u64().unwrap();
    let signed = sh.dir.path().join("suspend.tx");
    let args = hex::encode(shutong_sdk::builder::access::suspend(grant.parse().unwrap(), "review").args);
    let offline = std::process::Command::new(BIN)
        .args(["--output", "json", "--rpc", "http://127.0.0.1:1", "--key", &sh.key("market"), "tx", "sign"])
        .args([
            "--contract",
            "authz",
            "--method",
            "suspend",
            "--args-hex",
            &args,
            "--chain-id",
            crate::common::CHAIN_ID,
        ])
        .args(["--nonce", &nonce.to_string(), "--expiry-height", &(height + 100).to_string()])
        .arg("--out")
        .arg(&signed)
        .output()
        .unwrap();
    assert!(offline.status.success(), "{}", String::from_utf8_lossy(&offline.stderr));
    let tx_id = serde_json::from_slice::<Value>(&offline.stdout).unwrap()["tx_id"].as_str().unwrap().to_string();
    let receipt = sh.run(Some("admin"), &["tx", "submit", "--file", signed.to_str().unwrap()]).json();
    assert_eq!(receipt["tx_id"], tx_id.as_str());
    assert_eq!(sh.run(Some("admin"), &["tx", "show", "--id", &tx_id]).json()["status"]["kind"], "success");
    assert_eq!(sh.run(Some("admin"), &["grant", "show", "--id", &grant]).json()["status"], "suspended");

    // Raw reads and blocks.
    let raw =
        sh.run(Some("admin"), &["contract", "query", "--contract", "governance", "--method", "get_validators"]).json();
    assert!(!raw["output"].as_str().unwrap().is_empty());
    assert_eq!(sh.run(Some("admin"), &["block", "--height", "1"]).json()["header"]["height"], 1);
    assert_eq!(sh.run(Some("admin"), &["gov", "validators"]).json()["validators"].as_array().unwrap().len(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_problem_and_say_what_to_do() {
    let t = TestNode::start().await;
    let sh = Shell { rpc: format!("http://{}", t.node.as_ref().unwrap().rpc_addr), dir: tempfile::tempdir().unwrap() };
    shutong_sdk::keyfile::write(Path::new(&sh.key("admin")), &t.admin, false).unwrap();
    sh.new_key("someone");

    // No key for a command that signs.
    let ran = sh.run(None, &["org", "register", "--id", "x", "--name", "X", "--kind", "department"]);
    assert!(!ran.ok && ran.stderr.contains("pass --key FILE or set SHUTONG_KEY"), "{}", ran.stderr);

    // No node where --rpc points.
    let down = Shell { rpc: "http://127.0.0.1:1".into(), dir: tempfile::tempdir().unwrap() };
    let ran = down.run(None, &["status"]);
    assert!(!ran.ok && ran.stderr.contains("hint: is a node running at http://127.0.0.1:1?"), "{}", ran.stderr);

    // A data subject's reference goes on chain only as a digest keyed by the organisation's
    // subject key: without the key, no consent record is sent.
    let consent = ["request", "consent", "--id", "c1", "--resource", "r", "--purpose", "p", "--subject", "3101011990"];
    let ran = sh.run(Some("admin"), &consent);
    assert!(!ran.ok && ran.stderr.contains("set SHUTONG_SUBJECT_KEY"), "{}", ran.stderr);

    // A bad value names the flag and the choices.
    let ran = sh.run(Some("someone"), &["org", "register", "--id", "x", "--name", "X", "--kind", "ministry"]);
    assert!(!ran.ok && ran.stderr.contains("department, enterprise, auditor or operator"), "{}", ran.stderr);
    let ran = sh.run(None, &["gov", "propose", "define-purpose", "--id", "p", "--bases", "statute,vibes"]);
    assert!(!ran.ok && ran.stderr.contains("\"vibes\" is not a legal basis"), "{}", ran.stderr);

    // A key that is not a registered principal may only register its organisation: the node
    // refuses anything else before it reaches the pool, and the key's nonce stays at 0.
    let ran = sh.run(Some("someone"), &["org", "update", "--id", "nobody", "--name", "Y"]);
    assert!(!ran.ok && ran.stderr.contains("not a registered principal"), "{}", ran.stderr);
    assert!(ran.stderr.contains("shutong org set-principal"), "{}", ran.stderr);
    let someone = sh.run(Some("someone"), &["keys", "show"]).json()["account"].as_str().unwrap().to_string();
    assert_eq!(t.client.nonce(&someone.parse().unwrap()).await.unwrap(), 0);

    // The contract's refusal is the error, and nothing changed but the nonce.
    let ran = sh.run(Some("admin"), &["org", "update", "--id", "nobody", "--name", "Y"]);
    assert!(!ran.ok && ran.stderr.contains("failed: Aborted("), "{}", ran.stderr);
    assert!(ran.stderr.contains("changed nothing else"), "{}", ran.stderr);
    assert!(!sh.run(Some("admin"), &["org", "show", "--id", "nobody"]).ok);

    // A read of something that is not there says so.
    let ran = sh.run(Some("admin"), &["grant", "show", "--id", "99"]);
    assert!(!ran.ok && ran.stderr.contains("no grant 99"), "{}", ran.stderr);
    assert!(ran.stderr.contains("hint: the contract refused the question"), "{}", ran.stderr);

    // Without a key, a read is refused by the node's access control, with what to do.
    let ran = sh.run(None, &["org", "show", "--id", "nobody"]);
    assert!(!ran.ok && ran.stderr.contains("needs a request signed by a registered principal"), "{}", ran.stderr);
    assert!(ran.stderr.contains("pass --key FILE or set SHUTONG_KEY"), "{}", ran.stderr);
    // A key file others can read is refused, with the fix.
    let loose = sh.key("loose");
    shutong_sdk::keyfile::write(
        Path::new(&loose),
        &shutong_types::Keypair::generate(shutong_types::Suite::Ed25519Blake3),
        false,
    )
    .unwrap();
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let ran = sh.run(Some("loose"), &["org", "show", "--id", "nobody"]);
    assert!(
        !ran.ok && ran.stderr.contains("can be read by others") && ran.stderr.contains("chmod 600"),
        "{}",
        ran.stderr
    );

    // A file that is not a signed transaction is refused before anything is sent.
    let junk = sh.dir.path().join("junk.tx");
    std::fs::write(&junk, "00ff").unwrap();
    let ran = sh.run(None, &["tx", "submit", "--file", junk.to_str().unwrap()]);
    assert!(!ran.ok && ran.stderr.contains("is not a signed transaction"), "{}", ran.stderr);
    t.stop().await;
}

/// A department's part of an SM genesis, made offline: its SM2 validator key binds its
/// node's ed25519 transport key, and the entry it prints checks on that chain only.
#[test]
fn a_department_binds_its_transport_key_offline_for_genesis() {
    use shutong_types::transport::Member;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(["--output", "json"])
            .args(args)
            .env_remove("SHUTONG_KEY")
            .env_remove("SHUTONG_SUITE")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let public = |out: &str| -> shutong_types::PublicKey {
        let json: Value = serde_json::from_str(out).unwrap();
        json["public_key"].as_str().unwrap().parse().unwrap()
    };
    let (ok, made, _) = run(&["keys", "new", "--suite", "sm2-sm3", "--out", &path("validator.json")]);
    assert!(ok);
    let validator = public(&made);
    assert_eq!(validator.suite(), shutong_types::Suite::Sm2Sm3);
    let (ok, made, _) = run(&["keys", "new", "--out", &path("transport.json")]);
    assert!(ok);
    let transport = public(&made);
    let bind = |transport: &shutong_types::PublicKey| {
        run(&[
            "keys",
            "bind-transport",
            "--key",
            &path("validator.json"),
            "--chain-id",
            "district-chain",
            "--transport",
            &transport.to_hex(),
            "--name",
            "market",
        ])
    };
    let (ok, out, err) = bind(&transport);
    assert!(ok, "{err}");
    let entry: shutong_execution::genesis::GenesisValidator = serde_json::from_str(&out).unwrap();
    assert_eq!((entry.name.as_str(), entry.public_key), ("market", validator));
    let member = Member { key: entry.public_key, transport: entry.transport };
    assert_eq!(member.peer_key("district-chain"), Ok(transport));
    assert!(member.peer_key("another-chain").is_err(), "a binding is good for its chain only");
    // An SM2 key is no transport key.
    let (ok, _, err) = bind(&validator);
    assert!(!ok && err.contains("is not an ed25519 public key"), "{err}");
}
