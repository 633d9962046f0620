//! The peer-to-peer layer over real TCP sockets on 127.0.0.1: allowed peers connect and
//! exchange messages; a peer whose key is not allowed is refused after the handshake.
#![allow(clippy::unwrap_used)]

use libp2p::futures::StreamExt;
use libp2p::request_response::{Event, Message};
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{Multiaddr, Swarm};
use shutong_node::p2p::{self, Behaviour, BehaviourEvent};
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
    let (a_key, b_key, c_key) = (Keypair::generate(), Keypair::generate(), Keypair::generate());
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
