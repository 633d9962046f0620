//! Four real `shutong` validator processes on 127.0.0.1, talking libp2p: they finalize
//! blocks; with one SIGKILLed the rest go on, and the restarted one catches up to the same
//! blocks and state; with two of four down the chain stops without forking and resumes when
//! they return; a key outside the validator set cannot connect; a governance transaction
//! changes the validator set at a later height, the same on every node.

use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use shutong_sdk::system_api::governance::{Action, CHANGE_DELAY_BLOCKS, LifecycleOp};
use shutong_sdk::system_api::registry::OrgKind;
use shutong_sdk::{Client, TxBuilder, builder, keyfile};
use shutong_testnet::Cluster;
use shutong_types::{Decode, Encode, ExecStatus, Hash, Keypair, PublicKey, validator_set_hash};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const WAIT: Duration = Duration::from_secs(90);

/// The registry contract's state key for organisation `id`.
fn registry_org_key(id: &str) -> Vec<u8> {
    let registry = shutong_types::Address::system(shutong_sdk::system_api::names::REGISTRY);
    let mut key = b"org/".to_vec();
    key.extend_from_slice(id.as_bytes());
    shutong_types::keyspace::contract_storage(&registry, &key)
}

async fn hash_at(client: &Client, height: u64) -> Option<Hash> {
    client.block(height).await.unwrap().map(|b| b.hash)
}

/// Every node in `nodes` holds the same block at every height up to `up_to`.
async fn same_chain(cluster: &Cluster, nodes: &[usize], up_to: u64) {
    for height in 0..=up_to {
        let expected = hash_at(&cluster.client(nodes[0]).unwrap(), height).await;
        assert!(expected.is_some(), "{} lacks block {height}", cluster.members[nodes[0]].name);
        for &i in &nodes[1..] {
            let got = hash_at(&cluster.client(i).unwrap(), height).await;
            assert_eq!(
                got, expected,
                "{} and {} differ at height {height}",
                cluster.members[nodes[0]].name, cluster.members[i].name
            );
        }
    }
}

async fn height(cluster: &Cluster, i: usize) -> u64 {
    cluster.client(i).unwrap().status().await.unwrap().height
}

#[tokio::test(flavor = "multi_thread")]
async fn four_validators_finalize_and_a_killed_one_catches_up() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 3, WAIT).await.unwrap();

    // A transaction submitted to validator 1 reaches the others in a batch: once validator 0
    // holds it, validator 1 may die and the transaction is still committed.
    let admin = keyfile::read(&cluster.admin_key).unwrap();
    let txb = TxBuilder::new(&cluster.chain_id, admin.clone());
    let nonce = cluster.client(1).unwrap().nonce(&admin.account()).await.unwrap();
    let tx =
        txb.call(builder::register_org("jingan", "Jing'an Data Bureau", OrgKind::Department), nonce, 10_000).unwrap();
    cluster.client(1).unwrap().submit(&tx).await.unwrap();
    let zero = cluster.client(0).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let held = zero.status().await.unwrap().mempool_txs > 0;
        if held || zero.receipt(&tx.id()).await.unwrap().is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "validator 0 never received the transaction's batch");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // SIGKILL validator 1: the other three keep finalizing, the transaction included.
    cluster.kill(1);
    let receipt = zero.wait_for_receipt(&tx.id(), Duration::from_secs(30)).await.unwrap();
    assert_eq!(receipt.status, ExecStatus::Success);
    let at_kill = height(&cluster, 0).await;
    cluster.wait_height(&[0, 2, 3], at_kill + 10, WAIT).await.unwrap();
    same_chain(&cluster, &[0, 2, 3], at_kill + 10).await;

    // Restarted, it catches up: the same blocks, the same state root, the same receipt.
    cluster.start(1).await.unwrap();
    let target = height(&cluster, 0).await + 5;
    cluster.wait_height(&[0, 1, 2, 3], target, WAIT).await.unwrap();
    same_chain(&cluster, &[0, 1, 2, 3], target).await;
    let root_at = |i: usize| {
        let client = cluster.client(i).unwrap();
        async move { client.block(target).await.unwrap().unwrap().header.state_root }
    };
    let root = root_at(0).await;
    for i in 1..4 {
        assert_eq!(root_at(i).await, root, "validator {i} has another state root at height {target}");
    }
    let stored = cluster.client(1).unwrap().receipt(&tx.id()).await.unwrap().unwrap();
    assert_eq!(stored, receipt, "the restarted validator has the transaction's receipt");
    let status = cluster.client(1).unwrap().status().await.unwrap();
    assert_eq!(status.peers, 3, "the restarted validator is connected to the other three");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_of_four_down_stops_the_chain_without_a_fork_and_it_resumes() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 3, WAIT).await.unwrap();

    // A key outside the validator set is refused right after the handshake, over a real
    // socket to a real node.
    let outsider = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
    let mut swarm = shutong_p2p::swarm::swarm(&outsider, &[]).unwrap();
    let addr = cluster.members[0].p2p;
    swarm.dial(format!("/ip4/{}/tcp/{}", addr.ip(), addr.port()).parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::OutgoingConnectionError { .. } => return true,
                SwarmEvent::ConnectionClosed { .. } => return true,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(refused, Ok(true), "the outsider's connection must be closed");
    let status = cluster.client(0).unwrap().status().await.unwrap();
    assert_eq!(status.peers, 3, "only the three other validators are connected");

    cluster.kill(2);
    cluster.kill(3);
    // A block already on its way may still finalize: by the time two timers have fired in
    // views that did not end, it has. After that, through three more, nothing does.
    cluster.wait_timeouts(0, 2, WAIT).await.unwrap();
    let stopped = height(&cluster, 0).await;
    cluster.wait_timeouts(0, 3, WAIT).await.unwrap();
    assert_eq!(height(&cluster, 0).await, stopped, "two of four validators cannot finalize");
    let other = height(&cluster, 1).await;
    assert!(other.abs_diff(stopped) <= 1, "the two live validators are at {stopped} and {other}");
    same_chain(&cluster, &[0, 1], stopped.min(other)).await;

    cluster.start(2).await.unwrap();
    cluster.start(3).await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], stopped + 10, WAIT).await.unwrap();
    same_chain(&cluster, &[0, 1, 2, 3], stopped + 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_governance_transaction_changes_the_validator_set_at_a_later_height() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 3, WAIT).await.unwrap();
    let keys: Vec<PublicKey> = cluster.members.iter().map(|m| m.public_key).collect();
    let old_set = validator_set_hash(shutong_types::Suite::Ed25519Blake3, &keys);
    let new_keys = keys[..3].to_vec();
    let new_set = validator_set_hash(shutong_types::Suite::Ed25519Blake3, &new_keys);

    // Only the committee may change the set, and one of its keys alone may not.
    let zero = cluster.client(0).unwrap();
    let outsider = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
    let tx =
        TxBuilder::new(&cluster.chain_id, outsider).call(builder::set_validators(&new_keys, &[]), 0, 10_000).unwrap();
    let refused = zero.submit_and_wait(&tx, Duration::from_secs(30)).await.unwrap();
    let not_member = "only a member of the governance committee may change the validator set";
    assert_eq!(refused.status, ExecStatus::Aborted(not_member.into()), "{refused:?}");
    let admin = keyfile::read(&cluster.admin_key).unwrap();
    let alone = send(&zero, &cluster.chain_id, &admin, builder::set_validators(&new_keys, &[])).await;
    let needs_two = "the committee needs the votes of 2 organisations: propose and vote instead";
    assert_eq!(alone.status, ExecStatus::Aborted(needs_two.into()));

    // A change that would stop the chain is refused when proposed, naming the rule: two of
    // four leaving at once, or two joining at once.
    let seat = &cluster.committee.keys[0];
    let too_many_leave =
        Action::SetValidators { keys: keys[..2].iter().map(|k| k.to_key_bytes()).collect(), proofs: Vec::new() };
    let refused = send(&zero, &cluster.chain_id, seat, builder::propose(too_many_leave)).await;
    let rule = "the change removes 2 of the 4 validators in force; at most 1 may leave at once";
    assert_eq!(refused.status, ExecStatus::Aborted(rule.into()), "{refused:?}");
    let mut two_join: Vec<shutong_sdk::system_api::KeyBytes> = keys.iter().map(|k| k.to_key_bytes()).collect();
    two_join.extend([
        Keypair::generate(shutong_types::Suite::Ed25519Blake3).public().to_key_bytes(),
        Keypair::generate(shutong_types::Suite::Ed25519Blake3).public().to_key_bytes(),
    ]);
    let refused = send(
        &zero,
        &cluster.chain_id,
        seat,
        builder::propose(Action::SetValidators { keys: two_join, proofs: Vec::new() }),
    )
    .await;
    let rule = "the change adds 2 validators: the 4 that stay must be a quorum (5) of the new set of 6";
    assert_eq!(refused.status, ExecStatus::Aborted(rule.into()), "{refused:?}");

    // Two of the three departments remove validator 3; the change takes effect
    // CHANGE_DELAY_BLOCKS after the vote that carries it.
    let receipt = decide(
        &cluster,
        &zero,
        Action::SetValidators { keys: new_keys.iter().map(|k| k.to_key_bytes()).collect(), proofs: Vec::new() },
    )
    .await;
    let activation = receipt.height + CHANGE_DELAY_BLOCKS;
    let scheduled = receipt.events.iter().find(|e| e.topic == "validators.scheduled").unwrap();
    assert_eq!(scheduled.data, activation.to_string().into_bytes());

    // Every validator agrees on the set of every height: the old one up to activation − 1,
    // the new one from there on. Validator 3 stops at the end of its last epoch.
    cluster.wait_height(&[0, 1, 2], activation + 3, WAIT).await.unwrap();
    cluster.wait_height(&[3], activation - 1, WAIT).await.unwrap();
    same_chain(&cluster, &[0, 1, 2], activation + 3).await;
    same_chain(&cluster, &[0, 1, 2, 3], activation - 1).await;
    for height in 1..=activation + 3 {
        let header = zero.block(height).await.unwrap().unwrap().header;
        let expected = if height < activation { old_set } else { new_set };
        assert_eq!(header.validator_set, expected, "validator set named by the block at height {height}");
    }
    let status = zero.status().await.unwrap();
    assert_eq!(status.validators, new_keys);
    // Validator 3 has no standing left: the others closed its connections, and its dials are
    // refused at the handshake.
    for i in 0..3 {
        cluster.wait_peers(i, 2, WAIT).await.unwrap();
    }
    cluster.wait_peers(3, 0, WAIT).await.unwrap();

    // A light client that trusts only the genesis set follows the change: the old set's
    // last header and the proven scheduled change give it the new set, which certifies
    // the newest header.
    let mut light = shutong_sdk::VerifyingClient::new(
        zero.clone(),
        shutong_sdk::LightClient::new(&cluster.chain_id, shutong_types::Suite::Ed25519Blake3, keys.clone()),
    );
    let newest = light.sync().await.unwrap();
    assert!(newest.header.height >= activation);
    assert_eq!(light.light.epoch().epoch, 1);
    assert_eq!(light.light.epoch().start_height, activation);
    assert_eq!(light.light.epoch().validators, new_keys);

    // Without validator 3 in the set, killing it costs nothing: no view is skipped waiting
    // for it (with it still in the set, every fourth view would time out).
    cluster.kill(3);
    let from = height(&cluster, 0).await;
    cluster.wait_height(&[0, 1, 2], from + 20, WAIT).await.unwrap();
    let mut skipped = 0;
    let mut previous = zero.block(from).await.unwrap().unwrap().header.view;
    for h in from + 1..=from + 20 {
        let view = zero.block(h).await.unwrap().unwrap().header.view;
        skipped += view - previous - 1;
        previous = view;
    }
    assert!(skipped <= 2, "{skipped} views skipped in 20 blocks after the removed validator died");

    // A validator restarted in the new epoch reads its set from the state and catches up.
    cluster.kill(1);
    cluster.start(1).await.unwrap();
    let target = height(&cluster, 0).await + 5;
    cluster.wait_height(&[0, 1, 2], target, WAIT).await.unwrap();
    same_chain(&cluster, &[0, 1, 2], target).await;
}

/// Signs `call` by `key` with its next nonce, submits it to `client` and waits for its receipt.
async fn send(client: &Client, chain_id: &str, key: &Keypair, call: shutong_types::Call) -> shutong_types::Receipt {
    let nonce = client.nonce(&key.account()).await.unwrap();
    let mut txb = TxBuilder::new(chain_id, key.clone());
    txb.gas_limit = builder::GAS_LIMIT_DEFAULT;
    let expiry = client.status().await.unwrap().height + 1_000;
    client.submit_and_wait(&txb.call(call, nonce, expiry).unwrap(), Duration::from_secs(30)).await.unwrap()
}

/// The committee's first seat proposes `action`, which stays open with one department's vote;
/// the second seat's vote carries it. Returns the receipt of the carrying vote.
async fn decide(cluster: &Cluster, client: &Client, action: Action) -> shutong_types::Receipt {
    let keys = &cluster.committee.keys;
    let proposed = send(client, &cluster.chain_id, &keys[0], builder::propose(action)).await;
    assert_eq!(proposed.status, ExecStatus::Success);
    assert!(!proposed.events.iter().any(|e| e.topic == "proposal.executed"), "one department is not a quorum");
    let id = u64::decode(&proposed.output).unwrap();
    let carried = send(client, &cluster.chain_id, &keys[1], builder::vote(id)).await;
    assert_eq!(carried.status, ExecStatus::Success);
    assert!(carried.events.iter().any(|e| e.topic == "proposal.executed"), "{:?}", carried.events);
    carried
}

/// The system contracts answer to the committee only: the key that signed genesis (the
/// committee's first seat) cannot freeze, unfreeze, migrate or hand over any of them by
/// itself, over RPC on real nodes; two departments' votes freeze the audit contract after
/// the lifecycle delay, and unfreeze it again.
#[tokio::test(flavor = "multi_thread")]
async fn one_key_alone_cannot_freeze_or_migrate_a_system_contract() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 2, WAIT).await.unwrap();
    let zero = cluster.client(0).unwrap();
    let admin = keyfile::read(&cluster.admin_key).unwrap();
    let chain = cluster.chain_id.clone();
    let code = shutong_execution::genesis::SYSTEM_CONTRACTS[0].1;
    let other_code = shutong_types::Hash::of(shutong_types::Suite::Ed25519Blake3, "test", code);
    for contract in [builder::registry(), builder::governance(), builder::catalog(), builder::authz(), builder::audit()]
    {
        let refusal =
            format!("{contract} is administered by the governance committee: only a carried proposal may {{}} it");
        let attempts = [
            (builder::freeze(&contract), "freeze"),
            (builder::migrate(&contract, &other_code, &[]), "migrate"),
            (builder::set_admin(&contract, &admin.account()), "hand over"),
        ];
        for (call, action) in attempts {
            let refused = send(&zero, &chain, &admin, call).await;
            assert_eq!(refused.status, ExecStatus::Aborted(refusal.replace("{}", action)), "{contract} {action}");
        }
    }

    // A proposal to freeze audit, with one department's vote, changes nothing; with two it
    // is carried and takes effect `lifecycle_delay_blocks` later.
    let freeze = Action::Lifecycle { contract: builder::audit().0, op: LifecycleOp::Freeze };
    let carried = decide(&cluster, &zero, freeze).await;
    let delay = shutong_sdk::system_api::governance::LIFECYCLE_DELAY_BLOCKS_DEFAULT;
    let due = carried.height + delay;
    let instance = |client: Client| async move { client.contract(&builder::audit()).await.unwrap().unwrap() };
    if zero.status().await.unwrap().height < due {
        assert!(!instance(zero.clone()).await.frozen, "nothing changes before the delay");
    }
    cluster.wait_height(&[0, 1, 2, 3], due, WAIT).await.unwrap();
    for i in 0..4 {
        assert!(instance(cluster.client(i).unwrap()).await.frozen, "validator {i} has audit frozen");
    }
    let record = shutong_types::Call { contract: builder::audit(), method: "record".into(), args: Vec::new() };
    let frozen = send(&zero, &chain, &admin, record).await;
    assert_eq!(frozen.status, ExecStatus::Frozen);
    // What the committee froze, one key cannot unfreeze.
    let alone = send(&zero, &chain, &admin, builder::unfreeze(&builder::audit())).await;
    assert!(matches!(alone.status, ExecStatus::Aborted(ref m) if m.contains("governance committee")), "{alone:?}");
    let unfreeze = Action::Lifecycle { contract: builder::audit().0, op: LifecycleOp::Unfreeze };
    let carried = decide(&cluster, &zero, unfreeze).await;
    cluster.wait_height(&[0, 1, 2, 3], carried.height + delay, WAIT).await.unwrap();
    assert!(!instance(zero.clone()).await.frozen);
}

/// A Byzantine validator (its key is in the set, so it gets through the handshake) sends
/// garbage and hostile messages; the others drop them and keep finalizing one chain.
#[tokio::test(flavor = "multi_thread")]
async fn a_byzantine_validator_s_garbage_changes_nothing() {
    use shutong_consensus::wire::{Batch, CompactProposal, NetMessage};
    use shutong_consensus::{Message, SignedVote};
    use shutong_types::block::VoteSubject;
    use shutong_types::{Decode, VoteKind};

    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    for i in 0..3 {
        cluster.start(i).await.unwrap();
    }
    cluster.wait_height(&[0, 1, 2], 2, WAIT).await.unwrap();
    let byzantine = keyfile::read(&cluster.members[3].home.join("keys/validator.json")).unwrap();
    let allowed: Vec<PublicKey> = cluster.members.iter().map(|m| m.public_key).collect();
    let mut swarm = shutong_p2p::swarm::swarm(&byzantine, &allowed).unwrap();
    let target: PublicKey = allowed[0];
    let target_peer = shutong_p2p::swarm::peer_id(&target).unwrap();
    let addr = cluster.members[0].p2p;
    swarm.add_peer_address(target_peer, format!("/ip4/{}/tcp/{}", addr.ip(), addr.port()).parse().unwrap());

    let status = cluster.client(0).unwrap().status().await.unwrap();
    let tip = cluster.client(0).unwrap().block(status.height).await.unwrap().unwrap();
    let view = status.consensus_view + 1;
    let subject = VoteSubject { kind: VoteKind::Notarize, epoch: 0, view, digest: tip.hash };
    let forged = SignedVote { subject, signer: 3, signature: subject.sign("another chain", &byzantine) };
    let block = shutong_types::Block::decode(&hex::decode(&tip.block_hex).unwrap()).unwrap();
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 64],
        vec![3, 0xff, 0xff, 0xff, 0xff],
        // A vote signed for another chain, and one claiming another signer.
        NetMessage::Consensus(Message::Vote(forged.clone())).encode(),
        NetMessage::Consensus(Message::Vote(SignedVote { signer: 1, ..forged.clone() })).encode(),
        // A compact proposal whose positions point outside its (unknown) batches.
        NetMessage::CompactProposal(CompactProposal {
            header: block.header.clone(),
            batches: vec![Hash::of(shutong_types::Suite::Ed25519Blake3, "nothing", b"")],
            positions: vec![(7, 1_000_000)],
            parent_view: 0,
            vote: forged.clone(),
        })
        .encode(),
        // A proposal of an old block, requests for unknown things, a huge sync request.
        NetMessage::Proposal { block, parent_view: 0, vote: forged }.encode(),
        NetMessage::BlockRequest {
            digest: Hash::of(shutong_types::Suite::Ed25519Blake3, "unknown", b""),
            ancestors: u32::MAX,
        }
        .encode(),
        NetMessage::SyncRequest { from_height: u64::MAX - 5, count: u32::MAX }.encode(),
        NetMessage::BatchRequest(vec![Hash::ZERO; 1024]).encode(),
        // An empty batch and one whose transaction is not even signed right.
        NetMessage::Batch(Batch { author: allowed[3], seq: 1, txs: Vec::new() }).encode(),
    ];
    let sends = garbage.len() * 20;
    for _ in 0..20 {
        for bytes in &garbage {
            swarm.behaviour_mut().consensus.send_request(&target_peer, bytes.clone());
        }
    }
    // Drive the swarm until every request was acknowledged or failed.
    let mut done = 0;
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        while done < sends {
            use libp2p::request_response::{Event, Message as Rr};
            use shutong_p2p::swarm::BehaviourEvent;
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::Message {
                    message: Rr::Response { .. },
                    ..
                }))
                | SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::OutboundFailure { .. })) => done += 1,
                _ => {}
            }
        }
    })
    .await;
    assert!(finished.is_ok(), "only {done} of {sends} messages were answered");

    let before = height(&cluster, 0).await;
    cluster.wait_height(&[0, 1, 2], before + 5, WAIT).await.unwrap();
    same_chain(&cluster, &[0, 1, 2], before + 5).await;
}

/// An enterprise deploys its own contract through the SDK on four validators: governance
/// approves the code hash, the enterprise uploads and instantiates it, issues a
/// certificate, and every validator answers a verification the same; the audit leaf and the
/// state root agree everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn an_enterprise_contract_is_deployed_and_called_through_the_sdk() {
    const CODE: &[u8] = include_bytes!("../../../contracts/artifacts/cert-verify.wasm");
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 2, WAIT).await.unwrap();
    let zero = cluster.client(0).unwrap();
    let admin = keyfile::read(&cluster.admin_key).unwrap();
    let enterprise = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
    let bank = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
    let timeout = Duration::from_secs(30);
    let send = |key: &Keypair, call, gas: u64| {
        let client = cluster.client(0).unwrap();
        let mut txb = TxBuilder::new(&cluster.chain_id, key.clone());
        txb.gas_limit = gas;
        let account = key.account();
        async move {
            let nonce = client.nonce(&account).await.unwrap();
            let receipt = client.submit_and_wait(&txb.call(call, nonce, 10_000).unwrap(), timeout).await.unwrap();
            assert!(receipt.status.is_success(), "{receipt:?}");
            receipt
        }
    };

    let code_hash = shutong_vm::Vm::code_hash(shutong_types::Suite::Ed25519Blake3, CODE);
    drop(admin);
    decide(&cluster, &zero, Action::ApproveCode { code_hash: code_hash.0 }).await;
    send(&enterprise, builder::upload_code(CODE), builder::upload_gas_limit(CODE.len())).await;
    let info = zero.code(&code_hash).await.unwrap().unwrap();
    assert_eq!((info.size as usize, info.uploader), (CODE.len(), enterprise.account()));
    let made =
        send(&enterprise, builder::instantiate(&code_hash, "certs", &enterprise.account(), &[]), 5_000_000).await;
    let address = builder::instance_address(shutong_types::Suite::Ed25519Blake3, &enterprise.account(), "certs");
    assert_eq!(made.output, address.0.to_vec());

    let holder = builder::cert::digest(b"91310000MA1EXAMPLE");
    let document = builder::cert::digest(b"licence");
    let issue = builder::cert::issue(&address, "lic-1", "business-licence", holder, document, u64::MAX);
    send(&enterprise, issue, 5_000_000).await;
    let verified = send(&bank, builder::cert::verify(&address, "lic-1", holder, document), 5_000_000).await;
    let answer = builder::cert::Answer::decode(&verified.output).unwrap();
    assert!(answer.valid && answer.audit_index == 0, "{answer:?}");

    // Every validator holds the contract and gives the same answers, at the same state root.
    cluster.wait_height(&[0, 1, 2, 3], verified.height + 1, WAIT).await.unwrap();
    let yes = builder::cert::verify_args("lic-1", holder, document);
    let forged = builder::cert::verify_args("lic-1", holder, builder::cert::digest(b"forged"));
    for i in 0..4 {
        let client = cluster.client(i).unwrap();
        let contract = client.contract(&address).await.unwrap().unwrap();
        assert_eq!((contract.code_hash, contract.label.as_str()), (code_hash, "certs"));
        let answer = builder::cert::Answer::decode(&client.query(&address, "verify", &yes).await.unwrap()).unwrap();
        assert!(answer.valid);
        let answer = builder::cert::Answer::decode(&client.query(&address, "verify", &forged).await.unwrap()).unwrap();
        assert_eq!(answer.reason, "the document does not match");
        let block = client.block(verified.height).await.unwrap().unwrap();
        assert_eq!(block.hash, zero.block(verified.height).await.unwrap().unwrap().hash);
    }
}

/// The whole authorisation story (`common/story.rs`) on four validator processes, the calls
/// spread over the validators; then every validator holds the same chain.
#[tokio::test(flavor = "multi_thread")]
async fn the_authorisation_story_holds_on_four_validators() {
    story_on_four_validators(shutong_types::Suite::Ed25519Blake3).await;
}

/// The same on a 国密 chain: SM2 keys and signatures, SM3 hashes, the validators connected
/// under the transport keys their SM2 keys bound, and every auditor's proof checked.
#[tokio::test(flavor = "multi_thread")]
async fn the_authorisation_story_holds_on_four_sm2_sm3_validators() {
    story_on_four_validators(shutong_types::Suite::Sm2Sm3).await;
}

async fn story_on_four_validators(suite: shutong_types::Suite) {
    let mut cluster = Cluster::init_in(Path::new(BIN), suite, 4, 0, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 2, WAIT).await.unwrap();
    let mut runner = crate::common::RpcRunner {
        handle: tokio::runtime::Handle::current(),
        client: cluster.client(2).unwrap(),
        chain_id: cluster.chain_id.clone(),
        nonces: std::collections::HashMap::new(),
        admin: keyfile::read(&cluster.admin_key).unwrap(),
        voters: cluster.committee.keys[1..cluster.committee.threshold as usize].to_vec(),
        suite,
    };
    tokio::task::spawn_blocking(move || crate::common::story::authorisation_story(&mut runner)).await.unwrap();
    let top = height(&cluster, 2).await;
    cluster.wait_height(&[0, 1, 2, 3], top, WAIT).await.unwrap();
    same_chain(&cluster, &[0, 1, 2, 3], top).await;

    // An auditor trusting only the genesis validators reads the whole audit log from
    // another validator, every leaf proven against a header three of four finalized.
    let keys: Vec<PublicKey> = cluster.members.iter().map(|m| m.public_key).collect();
    assert!(keys.iter().all(|k| k.suite() == suite));
    let (verifying, leaves) =
        crate::common::verified_audit_log(&cluster.client(1).unwrap(), &cluster.chain_id, keys).await;
    let kinds: Vec<String> = leaves.iter().filter_map(shutong_sdk::light::entry_of).map(|e| e.kind).collect();
    assert!(kinds.iter().filter(|k| k.starts_with("access.")).count() >= 5, "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "violation.opened"), "the violation is in the log");
    assert!(kinds.iter().any(|k| k == "grant.revoked"), "authorisation changes are in the log");
    // And the state it proves agrees with what the node's query answers.
    let market = verifying.state(&registry_org_key("market")).await.unwrap();
    assert!(market.is_some(), "the organisation is in the proven state");
}
