//! Validator-set membership on real processes: a full node joins the set live (with a proof
//! of possession of its key, which the committee cannot skip) and the validator it replaces
//! becomes a full node live; and a validator's double vote sent to a validator ends up as
//! evidence on chain, shown by `shutong gov evidence`. A validator proves a later epoch to
//! a node that knows only genesis, over a real connection.

use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use shutong_consensus::SignedVote;
use shutong_consensus::wire::NetMessage;
use shutong_sdk::system_api::governance::{Action, CHANGE_DELAY_BLOCKS, KeyProof};
use shutong_sdk::{Client, builder, keyfile};
use shutong_testnet::Cluster;
use shutong_types::epoch::{EpochChange, KnownEpoch, verify_change};
use shutong_types::{Decode, Encode, ExecStatus, Hash, Keypair, PublicKey, VoteKind, VoteSubject};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const WAIT: Duration = Duration::from_secs(90);

fn node_key(cluster: &Cluster, i: usize) -> Keypair {
    keyfile::read(&cluster.members[i].home.join("keys/validator.json")).unwrap()
}

pub(crate) async fn status(client: &Client) -> shutong_sdk::rpc::Status {
    client.status().await.unwrap()
}

/// The first committee seat proposes `action`; returns its receipt.
pub(crate) async fn propose(cluster: &Cluster, client: &Client, action: Action) -> shutong_types::Receipt {
    let seat = &cluster.committee.keys[0];
    let nonce = client.nonce(&seat.account()).await.unwrap();
    let mut txb = shutong_sdk::TxBuilder::new(&cluster.chain_id, seat.clone());
    txb.gas_limit = builder::GAS_LIMIT_DEFAULT;
    let expiry = status(client).await.height + 1_000;
    client
        .submit_and_wait(&txb.call(builder::propose(action), nonce, expiry).unwrap(), Duration::from_secs(30))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_node_joins_the_set_live_and_the_validator_it_replaces_leaves_live() {
    let mut cluster = Cluster::init_with_full_nodes(Path::new(BIN), 4, 1, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3, 4], 3, WAIT).await.unwrap();
    let v0 = cluster.client(0).unwrap();
    let full = cluster.client(4).unwrap();
    assert!(status(&full).await.full_node);
    let joining = node_key(&cluster, 4);
    let keys: Vec<PublicKey> = (0..3).map(|i| cluster.members[i].public_key).chain([joining.public()]).collect();
    let set: Vec<shutong_sdk::system_api::KeyBytes> = keys.iter().map(|k| k.to_key_bytes()).collect();

    // A key enters the set only with its holder's proof: none, or one signed by another
    // key, is refused when proposed, naming the rule.
    let hex = joining.public().to_hex();
    let refused = propose(&cluster, &v0, Action::SetValidators { keys: set.clone(), proofs: Vec::new() }).await;
    let rule = format!("validator key {hex} joins without a proof of possession");
    assert_eq!(refused.status, ExecStatus::Aborted(rule), "{refused:?}");
    let forged = KeyProof {
        key: joining.public().to_key_bytes(),
        ..builder::possession(&cluster.chain_id, &keys, &Keypair::generate(shutong_types::Suite::Ed25519Blake3), None)
            .unwrap()
    };
    let refused = propose(&cluster, &v0, Action::SetValidators { keys: set, proofs: vec![forged] }).await;
    let rule = format!(
        "the proof of possession of validator key {hex} does not verify: it must be this chain's suite and sign the chain id and the proposed set"
    );
    assert_eq!(refused.status, ExecStatus::Aborted(rule), "{refused:?}");
    // An SM2 key with its holder's own valid proof: refused on this ed25519 chain, since the
    // host verifies only keys of the chain's suite.
    let sm = Keypair::generate(shutong_types::Suite::Sm2Sm3);
    let sm_keys: Vec<PublicKey> = keys[..3].iter().copied().chain([sm.public()]).collect();
    let sm_proof = builder::possession(&cluster.chain_id, &sm_keys, &sm, None).unwrap();
    let sm_set = sm_keys.iter().map(|k| k.to_key_bytes()).collect();
    let refused = propose(&cluster, &v0, Action::SetValidators { keys: sm_set, proofs: vec![sm_proof] }).await;
    let rule = format!(
        "the proof of possession of validator key {} does not verify: it must be this chain's suite and sign the chain id and the proposed set",
        sm.public()
    );
    assert_eq!(refused.status, ExecStatus::Aborted(rule), "{refused:?}");

    // With the full node's proof, two departments replace validator 3 with it.
    let proof = builder::possession(&cluster.chain_id, &keys, &joining, None).unwrap();
    let (carried, activation) = carry_set(&cluster, &keys, proof).await;
    assert!(carried.events.iter().any(|e| e.topic == "validators.scheduled"), "{:?}", carried.events);

    // Without a restart, the full node votes from the activation height and validator 3
    // follows as a full node.
    cluster.wait_height(&[0, 1, 2, 4], activation + 5, WAIT).await.unwrap();
    roles_switched(&cluster, 4, 3).await;
    assert_eq!(status(&full).await.validators, keys);

    // The joined node's vote is needed now: with validator 1 down, validators 0 and 2 and
    // the joined node are the quorum of three, and the chain goes on finalizing.
    cluster.kill(1);
    // A node that knows only genesis asks validator 0, over a real connection, to prove
    // epoch 1, and checks the answer alone: the joined key is in it; altered, it fails.
    let change = epoch_proof(&cluster, &node_key(&cluster, 1), 1).await;
    let genesis = KnownEpoch {
        epoch: 0,
        start_height: 0,
        validators: (0..4).map(|i| cluster.members[i].public_key).collect(),
        transports: Vec::new(),
    };
    let proven = verify_change(&cluster.chain_id, shutong_types::Suite::Ed25519Blake3, &genesis, &change).unwrap();
    assert_eq!((proven.validators, proven.start_height), (keys.clone(), activation));
    let mut altered = change.clone();
    altered.pending.value.as_mut().unwrap()[0] ^= 1;
    assert!(verify_change(&cluster.chain_id, shutong_types::Suite::Ed25519Blake3, &genesis, &altered).is_err());
    let from = status(&v0).await.height;
    cluster.wait_height(&[0, 2, 4], from + 10, WAIT).await.unwrap();
    let header = v0.block(from + 10).await.unwrap().unwrap().header;
    assert_eq!(header.validator_set, shutong_types::validator_set_hash(shutong_types::Suite::Ed25519Blake3, &keys));
    // Validator 3 left: the others closed its connections (it is no listed full node).
    cluster.wait_peers(0, 2, WAIT).await.unwrap();
}

/// Two departments carry the validator set `keys`, whose joining key comes with `proof`:
/// the decision's receipt and the height the set takes effect.
async fn carry_set(cluster: &Cluster, keys: &[PublicKey], proof: KeyProof) -> (shutong_types::Receipt, u64) {
    let v0 = cluster.client(0).unwrap();
    let set = keys.iter().map(PublicKey::to_key_bytes).collect();
    let action = Action::SetValidators { keys: set, proofs: vec![proof] };
    let carried = cluster.committee.decide(std::slice::from_ref(&v0), vec![action]).await.unwrap();
    let activation = carried[0].height + CHANGE_DELAY_BLOCKS;
    (carried[0].clone(), activation)
}

/// The committee carries the set `keys`, in which full node 4 (with `proof`) takes validator
/// 3's place; waits until it votes, then kills validator 1 so that its votes are needed for
/// the quorum, and waits five more heights. Returns the height it waited from.
pub(crate) async fn joins_and_makes_the_quorum(cluster: &mut Cluster, keys: &[PublicKey], proof: KeyProof) -> u64 {
    let v0 = cluster.client(0).unwrap();
    let (_, activation) = carry_set(cluster, keys, proof).await;
    // The joined node votes from the activation height; validator 3 follows as a full
    // node, and validator 0 lets it go.
    cluster.wait_height(&[0, 1, 2, 4], activation + 5, WAIT).await.unwrap();
    roles_switched(cluster, 4, 3).await;
    assert_eq!(status(&cluster.client(4).unwrap()).await.validators, keys);
    // With validator 1 down, 0, 2 and the joined node are the quorum of 3.
    cluster.kill(1);
    let from = status(&v0).await.height;
    cluster.wait_height(&[0, 2, 4], from + 5, WAIT).await.unwrap();
    from
}

/// Waits until member `joined` votes as a validator and member `left` follows as a full node,
/// both without a restart.
pub(crate) async fn roles_switched(cluster: &Cluster, joined: usize, left: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let full_node = |i: usize| async move { status(&cluster.client(i).unwrap()).await.full_node };
    while full_node(joined).await || !full_node(left).await {
        assert!(tokio::time::Instant::now() < deadline, "the roles did not switch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects to validator 0 as `key` (a key it lets in) and asks it for the proof of `epoch`.
async fn epoch_proof(cluster: &Cluster, key: &Keypair, epoch: u64) -> EpochChange {
    use libp2p::request_response::{Event, Message};
    use shutong_p2p::swarm::BehaviourEvent;
    let v0_key = cluster.members[0].public_key;
    let mut swarm = shutong_p2p::swarm::swarm(key, &[v0_key]).unwrap();
    let addr = cluster.members[0].p2p;
    swarm.dial(format!("/ip4/{}/tcp/{}", addr.ip(), addr.port()).parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let peer = shutong_p2p::peer_id(&v0_key).unwrap();
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                    let request = NetMessage::EpochRequest { epoch };
                    swarm.behaviour_mut().consensus.send_request(&peer, request.encode());
                }
                SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::Message {
                    message: Message::Request { request, channel, .. },
                    ..
                })) => {
                    let _ = swarm.behaviour_mut().consensus.send_response(channel, Vec::new());
                    if let Ok(NetMessage::EpochProof(change)) = NetMessage::decode(&request) {
                        return *change;
                    }
                }
                _ => {}
            }
        }
    })
    .await;
    answer.expect("validator 0 proves the epoch")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_double_vote_sent_to_a_validator_ends_up_as_evidence_on_chain() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 3, WAIT).await.unwrap();
    // Validator 3 turns Byzantine: stopped, its key signs two notarizes of different blocks
    // in one view, and both go to validator 0 over a real connection.
    cluster.kill(3);
    let key = node_key(&cluster, 3);
    let v0 = cluster.client(0).unwrap();
    let view = status(&v0).await.consensus_view + 2;
    let vote = |digest: &str| {
        let subject = VoteSubject {
            kind: VoteKind::Notarize,
            epoch: 0,
            view,
            digest: Hash::of(shutong_types::Suite::Ed25519Blake3, "test", digest.as_bytes()),
        };
        SignedVote { subject, signer: 3, signature: subject.sign(&cluster.chain_id, &key) }
    };
    let v0_key = cluster.members[0].public_key;
    let mut swarm = shutong_p2p::swarm::swarm(&key, &[v0_key]).unwrap();
    let addr = cluster.members[0].p2p;
    swarm.dial(format!("/ip4/{}/tcp/{}", addr.ip(), addr.port()).parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let peer = shutong_p2p::peer_id(&v0_key).unwrap();
    let sent = tokio::time::timeout(WAIT, async {
        let mut answered = 0;
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                    for digest in ["a", "b"] {
                        let message = NetMessage::Consensus(shutong_consensus::Message::Vote(vote(digest)));
                        swarm.behaviour_mut().consensus.send_request(&peer, message.encode());
                    }
                }
                SwarmEvent::Behaviour(shutong_p2p::swarm::BehaviourEvent::Consensus(
                    libp2p::request_response::Event::Message { .. },
                )) => {
                    answered += 1;
                    if answered == 2 {
                        return;
                    }
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(sent.is_ok(), "validator 0 took both votes");

    // Validator 0 reports them on chain; `shutong gov evidence` shows the record.
    let deadline = tokio::time::Instant::now() + WAIT;
    let shown = loop {
        let out = std::process::Command::new(BIN)
            .args(["--output", "json", "--rpc", &format!("http://{}", cluster.members[0].rpc), "gov", "evidence"])
            .env("SHUTONG_KEY", &cluster.admin_key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if json["evidence"].as_array().is_some_and(|e| !e.is_empty()) {
            break json;
        }
        assert!(tokio::time::Instant::now() < deadline, "no evidence on chain: {json}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let record = &shown["evidence"][0];
    assert_eq!(record["validator"], key.public().to_hex());
    assert_eq!((record["epoch"].as_u64(), record["view"].as_u64()), (Some(0), Some(view)));
    let reporter = shutong_types::AccountId::from_public_key(&cluster.members[0].public_key);
    assert_eq!(record["reporter"], hex::encode(reporter.0));
    assert_eq!(record["first"]["kind"], "notarize");
    // Every other validator that saw it would be refused as "already recorded": once only.
    assert_eq!(shown["evidence"].as_array().unwrap().len(), 1);
    // Auditors see the same record.
    let text = std::process::Command::new(BIN)
        .args(["--rpc", &format!("http://{}", cluster.members[0].rpc), "audit", "evidence"])
        .env("SHUTONG_KEY", &cluster.admin_key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    eprintln!("shutong audit evidence:\n{text}");
    assert!(text.starts_with("1 equivocation records") && text.contains(&key.public().to_hex()), "{text}");

    // The committee may then remove the validator: an ordinary set change.
    let keep: Vec<shutong_sdk::system_api::KeyBytes> =
        (0..3).map(|i| cluster.members[i].public_key.to_key_bytes()).collect();
    let carried = cluster
        .committee
        .decide(std::slice::from_ref(&v0), vec![Action::SetValidators { keys: keep, proofs: Vec::new() }])
        .await
        .unwrap();
    assert!(carried[0].events.iter().any(|e| e.topic == "validators.scheduled"), "{:?}", carried[0].events);
}
