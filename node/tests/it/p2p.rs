//! The peer-to-peer layer over real TCP sockets on 127.0.0.1: allowed peers connect and
//! exchange messages; a peer whose key is not allowed is refused after the handshake; an
//! allowed peer that misbehaves is banned.
use libp2p::futures::StreamExt;
use libp2p::request_response::{Event, Message};
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{Multiaddr, Swarm};
use shutong_p2p::swarm::{self as p2p, Behaviour, BehaviourEvent};
use shutong_types::Keypair;
use std::time::Duration;

async fn listening(swarm: &mut Swarm<Behaviour>) -> Multiaddr {
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return address;
        }
    }
}

#[tokio::test]
async fn allowed_peers_exchange_messages_and_others_are_refused_at_the_handshake() {
    let (a_key, b_key, c_key) = (
        Keypair::generate(shutong_types::Suite::Ed25519Blake3),
        Keypair::generate(shutong_types::Suite::Ed25519Blake3),
        Keypair::generate(shutong_types::Suite::Ed25519Blake3),
    );
    // A lets in B only; B and C would both like to talk to A.
    let mut a = p2p::swarm(&a_key, &[b_key.public()]).unwrap();
    let mut b = p2p::swarm(&b_key, &[a_key.public()]).unwrap();
    let mut c = p2p::swarm(&c_key, &[a_key.public()]).unwrap();
    let a_addr = listening(&mut a).await;
    let a_peer = p2p::peer_id(&a_key.public()).unwrap();
    let c_peer = p2p::peer_id(&c_key.public()).unwrap();
    // B learns A's address and sends: the request dials A.
    b.add_peer_address(a_peer, a_addr.clone());
    b.behaviour_mut().consensus.send_request(&a_peer, b"hello from b".to_vec());
    c.dial(a_addr).unwrap();

    let mut a_received = None;
    let mut c_refused_at_a = false;
    let mut c_dial_failed = false;
    let mut c_connected_to_a = false;
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            tokio::select! {
                event = a.select_next_some() => match event {
                    SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::Message {
                        peer, message: Message::Request { request, channel, .. }, ..
                    })) => {
                        a_received = Some((peer, request));
                        a.behaviour_mut().consensus.send_response(channel, Vec::new()).unwrap();
                    }
                    SwarmEvent::IncomingConnectionError { error: ListenError::Denied { .. }, .. } => c_refused_at_a = true,
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == c_peer => c_connected_to_a = true,
                    _ => {}
                },
                event = b.select_next_some() => { let _ = event; }
                event = c.select_next_some() => match event {
                    SwarmEvent::OutgoingConnectionError { .. } => c_dial_failed = true,
                    SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == a_peer => c_dial_failed = true,
                    _ => {}
                },
            }
            if a_received.is_some() && c_refused_at_a && c_dial_failed {
                return;
            }
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "timed out: a received {a_received:?}, c refused {c_refused_at_a}, c failed {c_dial_failed}"
    );
    let (peer, request) = a_received.unwrap();
    assert_eq!(peer, p2p::peer_id(&b_key.public()).unwrap());
    assert_eq!(request, b"hello from b");
    assert!(!c_connected_to_a, "a must never report c as connected");
}

#[test]
fn peer_ids_follow_from_the_node_key() {
    let key = Keypair::from_seed("node");
    assert_eq!(p2p::identity(&key).public().to_peer_id(), p2p::peer_id(&key.public()).unwrap());
}

/// A peer on the allow list that sends junk is charged for each message, banned at the ban
/// score (disconnected, and refused when it dials again), while the validator keeps
/// finalizing blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_peer_that_sends_junk_is_banned_and_the_chain_goes_on() {
    let rogue_key = Keypair::from_seed("rogue-full-node");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = crate::common::config();
    cfg.p2p.listen = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.p2p.full_nodes = vec![rogue_key.public()];
    let t = crate::common::TestNode::start_with(cfg).await;
    let node_peer = p2p::peer_id(&t.validator.public()).unwrap();
    let node_addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let height_before = t.client.status().await.unwrap().height;

    let mut rogue = p2p::swarm(&rogue_key, &[t.validator.public()]).unwrap();
    rogue.add_peer_address(node_peer, node_addr.clone());
    // Six messages that are not Shutong messages: 20 points each, and the ban is at 100.
    for i in 0..6u8 {
        rogue.behaviour_mut().consensus.send_request(&node_peer, vec![0xEE, i, 0xEE]);
    }
    let mut connected = false;
    let mut closed = false;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rogue.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == node_peer => connected = true,
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } if peer_id == node_peer => {
                    closed = true;
                    return;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the node never closed the junk sender's connection");
    assert!(connected && closed);

    // Dialling again during the ban: refused right after the handshake.
    rogue.dial(node_addr).unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rogue.select_next_some().await {
                SwarmEvent::OutgoingConnectionError { .. } => return true,
                SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == node_peer => return true,
                SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::Message { .. })) => return false,
                _ => {}
            }
        }
    })
    .await
    .expect("a banned peer's dial neither failed nor closed");
    assert!(refused);

    let metrics = crate::common::http_get(t.node.as_ref().unwrap().rpc_addr, "/metrics").await;
    assert!(metrics.contains("shutong_p2p_bans_total 1"), "{metrics}");
    // The chain did not wait for the junk.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.client.status().await.unwrap().height < height_before + 3 {
        assert!(tokio::time::Instant::now() < deadline, "the validator stopped finalizing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.stop().await;
}

/// An SM node starts only under the transport key its validator key bound: without
/// `p2p.transport_key_file`, or with another key there, it refuses, naming the keys, and
/// with the bound one it runs.
#[tokio::test(flavor = "multi_thread")]
async fn an_sm_validator_starts_only_under_its_bound_transport_key() {
    let mut t = crate::common::TestNode::start_in(shutong_types::Suite::Sm2Sm3, crate::common::config()).await;
    let bound = t.genesis.validators[0].transport.unwrap().key;
    t.node.take().unwrap().stop().await;
    let refused = |cfg: shutong_node::config::Config| async {
        match shutong_node::Node::start_with(t.home.path(), cfg, t.genesis.clone(), t.validator.clone()).await {
            Ok(_) => panic!("the node started"),
            Err(err) => err.to_string(),
        }
    };
    let mut cfg = t.cfg.clone();
    cfg.p2p.transport_key_file = None;
    let err = refused(cfg).await;
    assert!(err.contains("set p2p.transport_key_file"), "{err}");
    let other = Keypair::from_seed("another-transport");
    let file = t.home.path().join("other-transport.json");
    shutong_sdk::keyfile::write(&file, &other, false).unwrap();
    let mut cfg = t.cfg.clone();
    cfg.p2p.transport_key_file = Some(file);
    let err = refused(cfg).await;
    assert!(err.contains(&format!("this node's transport key {} is not the one bound", other.public())), "{err}");
    assert!(err.contains(&bound.to_string()), "{err}");
    // Under the bound key it starts and goes on committing.
    t.start_again().await;
    let after = t.client.status().await.unwrap().height + 2;
    tokio::time::timeout(crate::common::WAIT, async {
        while t.client.status().await.unwrap().height < after {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the node commits under its bound transport key");
    t.stop().await;
}

/// A joining node's side of state sync against a running node, over a real connection: the
/// newest snapshot's manifest checks against the header the node serves over RPC, and every
/// chunk against the manifest. The answers come from the node's snapshot thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_serves_a_snapshot_that_checks_against_its_header() {
    use shutong_consensus::wire::NetMessage;
    use shutong_types::snapshot::{Manifest, verify_chunk, verify_manifest};
    use shutong_types::{Decode, Encode};
    let joining = Keypair::from_seed("joining-node");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = crate::common::config();
    cfg.p2p.listen = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.p2p.full_nodes = vec![joining.public()];
    cfg.state_sync.snapshot_interval = 3;
    let t = crate::common::TestNode::start_with(cfg).await;
    let anonymous = t.anonymous();
    while anonymous.status().await.unwrap().height < 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let node = p2p::peer_id(&t.validator.public()).unwrap();
    let mut swarm = p2p::swarm(&joining, &[t.validator.public()]).unwrap();
    swarm.add_peer_address(node, format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap());
    swarm.behaviour_mut().consensus.send_request(&node, NetMessage::SnapshotRequest { height: 0 }.encode());

    // The node answers with requests of its own, each acknowledged.
    let mut offer: Option<(u64, Manifest)> = None;
    let mut keys = 0;
    let mut chunks = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::Message {
                message: Message::Request { request, channel, .. },
                ..
            })) = swarm.select_next_some().await
            else {
                continue;
            };
            swarm.behaviour_mut().consensus.send_response(channel, Vec::new()).unwrap();
            match NetMessage::decode(&request).unwrap() {
                NetMessage::SnapshotOffer { height, manifest } => {
                    for index in 0..manifest.subtrees.len() as u32 {
                        let ask =
                            NetMessage::ChunkRequest { version: manifest.version, nibbles: manifest.nibbles, index };
                        swarm.behaviour_mut().consensus.send_request(&node, ask.encode());
                    }
                    offer = Some((height, *manifest));
                }
                NetMessage::Chunk { index, entries, .. } => {
                    let (_, manifest) = offer.as_ref().expect("chunks come after the offer");
                    verify_chunk(shutong_types::Suite::Ed25519Blake3, manifest, index as usize, &entries).unwrap();
                    keys += entries.len();
                    chunks += 1;
                    if chunks == manifest.subtrees.len() {
                        return;
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the node served the snapshot and every chunk");
    let (height, manifest) = offer.unwrap();
    assert_eq!(height % 3, 0, "a multiple of the snapshot interval");
    assert_eq!(manifest.version, height - 1);
    let mut params = jsonrpsee::core::params::ArrayParams::new();
    params.insert(height).unwrap();
    let header: Option<shutong_sdk::rpc::HeaderInfo> =
        anonymous.call_raw(shutong_sdk::rpc::method::GET_HEADER, params).await.unwrap();
    let header = shutong_types::BlockHeader::decode(&hex::decode(header.unwrap().header_hex).unwrap()).unwrap();
    verify_manifest(shutong_types::Suite::Ed25519Blake3, &header.state_root, &manifest).unwrap();
    assert!(keys > 0, "genesis alone holds the system contracts");
}
