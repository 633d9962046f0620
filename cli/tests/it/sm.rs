//! A chain of the `sm2-sm3` suite (国密) on real processes. Its validators vote with SM2
//! keys and connect under ed25519 transport keys that their SM2 keys bound in genesis
//! (libp2p has no SM2 keys). The light client follows it from genesis. A full node joins
//! the set with its proof of possession and its transport binding, and the committee cannot
//! skip either. A connection under a key no validator bound is refused at the handshake.

use crate::membership::{joins_and_makes_the_quorum, propose, status};
use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use shutong_sdk::system_api::governance::Action;
use shutong_sdk::{LightClient, VerifyingClient, builder, keyfile};
use shutong_testnet::Cluster;
use shutong_types::{ExecStatus, Keypair, PublicKey, Suite};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const WAIT: Duration = Duration::from_secs(120);

fn key_of(cluster: &Cluster, i: usize, file: &str) -> Keypair {
    keyfile::read(&cluster.members[i].home.join(file)).unwrap()
}

/// Whether validator 0 closes a connection from `key` right after the handshake.
async fn refused(cluster: &Cluster, key: &Keypair) -> bool {
    let mut swarm = shutong_p2p::swarm::swarm(key, &[]).unwrap();
    let addr = cluster.members[0].p2p;
    swarm.dial(format!("/ip4/{}/tcp/{}", addr.ip(), addr.port()).parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::OutgoingConnectionError { .. } | SwarmEvent::ConnectionClosed { .. } => return true,
                _ => {}
            }
        }
    });
    closed.await == Ok(true)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sm_chain_runs_on_transport_keys_its_validators_bound() {
    let mut cluster = Cluster::init_in(Path::new(BIN), Suite::Sm2Sm3, 4, 1, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3, 4], 3, WAIT).await.unwrap();
    let v0 = cluster.client(0).unwrap();
    let genesis_keys: Vec<PublicKey> = (0..4).map(|i| cluster.members[i].public_key).collect();
    assert!(genesis_keys.iter().all(|k| k.suite() == Suite::Sm2Sm3));
    assert_eq!(status(&v0).await.suite, Suite::Sm2Sm3);
    // The other three validators and the full node connect, by transport key.
    cluster.wait_peers(0, 4, WAIT).await.unwrap();

    // A light client that trusts only the genesis keys checks every header from genesis:
    // SM3 hashes, SM2 certificates.
    let light = LightClient::new(&cluster.chain_id, Suite::Sm2Sm3, genesis_keys.clone());
    let mut verifying = VerifyingClient::new(v0.clone(), light);
    let synced = verifying.sync().await.unwrap();
    assert_eq!(synced.header.suite, Suite::Sm2Sm3);
    assert!(synced.header.height >= 3);

    // A validator's own SM2 key has no peer id, and an ed25519 key no validator bound is
    // refused at the handshake.
    assert!(shutong_p2p::peer_id(&genesis_keys[0]).is_none());
    assert!(refused(&cluster, &Keypair::generate(Suite::Ed25519Blake3)).await, "an unbound transport key got in");

    // The full node joins in validator 3's place, with its SM2 key and its transport key.
    let joining = key_of(&cluster, 4, "keys/validator.json");
    let transport = key_of(&cluster, 4, "keys/transport.json").public();
    let keys: Vec<PublicKey> = genesis_keys[..3].iter().copied().chain([joining.public()]).collect();
    let set: Vec<shutong_sdk::system_api::KeyBytes> = keys.iter().map(PublicKey::to_key_bytes).collect();
    let hex = joining.public().to_hex();
    // Without a transport key bound, or with one bound by another SM2 key: refused when
    // proposed, naming the rule.
    let unbound = builder::possession(&cluster.chain_id, &keys, &joining, None).unwrap();
    let receipt = propose(&cluster, &v0, Action::SetValidators { keys: set.clone(), proofs: vec![unbound] }).await;
    let rule = format!("validator key {hex} has no transport key bound to it: on an SM chain its proof carries one");
    assert_eq!(receipt.status, ExecStatus::Aborted(rule), "{receipt:?}");
    let stranger = Keypair::generate(Suite::Sm2Sm3);
    let mut stolen = builder::possession(&cluster.chain_id, &keys, &joining, Some(&transport)).unwrap();
    stolen.transport = builder::possession(&cluster.chain_id, &keys, &stranger, Some(&transport)).unwrap().transport;
    let receipt = propose(&cluster, &v0, Action::SetValidators { keys: set.clone(), proofs: vec![stolen] }).await;
    let rule = format!(
        "transport key {} is not bound to validator key {hex}: the binding does not verify",
        transport.to_hex()
    );
    assert_eq!(receipt.status, ExecStatus::Aborted(rule), "{receipt:?}");

    // Bound by its own key: two departments carry it.
    let proof = builder::possession(&cluster.chain_id, &keys, &joining, Some(&transport)).unwrap();
    let from = joins_and_makes_the_quorum(&mut cluster, &keys, proof).await;
    // The light client follows the set change from proofs alone.
    let synced = verifying.sync().await.unwrap();
    assert!(synced.header.height >= from + 5);
    assert_eq!(verifying.light.epoch().validators, keys);
}
