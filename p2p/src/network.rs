//! The network task: owns the libp2p swarm, keeps a connection to every configured peer,
//! sends what the consensus driver asks it to, and hands it what peers send.
//!
//! The driver and this task are joined by bounded queues in both directions. Neither ever
//! waits for the other: a full queue drops the message and counts it, which consensus
//! tolerates (votes are re-sent on `t_r`, certificates and blocks are requested again), so a
//! slow or flooding peer can neither stall consensus nor grow memory. Messages are sent only
//! to connected peers, so nothing queues for a peer that is down. Each peer's messages are
//! counted against its rates and its misbehaviour against its score ([`crate::peer_guard`]);
//! a peer that reaches the ban score is disconnected and refused for a while.

use crate::peer_guard::{self, Misbehaviour, PeerGuard, Verdict};
use crate::swarm::{self as p2p, BehaviourEvent};
use crate::traffic::NetCounters;
use libp2p::futures::StreamExt;
use libp2p::request_response::{Event, Message};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId};
use shutong_types::transport::Member;
use shutong_types::{Keypair, PublicKey};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// How many outgoing messages may wait for the network task.
pub const OUTBOX_MAX: usize = 8_192;
/// How often peers that are not connected are dialled again.
const REDIAL_EVERY: Duration = Duration::from_secs(1);
/// What the driver asks the network to do.
#[derive(Debug)]
pub enum Command {
    /// Send to every validator but this node.
    Broadcast(Vec<u8>),
    /// Send to one peer.
    Send(PeerId, Vec<u8>),
    /// A new validator set: broadcast to it, and let its members in.
    SetValidators(Vec<Member>),
    /// The validators a scheduled set change adds, read from committed state: let them in
    /// ahead of their epoch (not broadcast to), so this node can reach them even while it
    /// lags.
    Expect(Vec<Member>),
    /// A peer sent something no honest peer sends.
    Penalise(PeerId, Misbehaviour),
}

/// Where the network hands what peers send: the receiver's mailbox, behind this trait so
/// that the network never names who receives. `deliver` must not wait; it answers false
/// when the mailbox is full and the message was dropped (counted, and tolerated: see the
/// module docs).
pub trait Inbox: Send + 'static {
    fn deliver(&self, inbound: Inbound) -> bool;
}

/// A message from a peer, still encoded.
#[derive(Debug)]
pub struct Inbound {
    pub from: PeerId,
    pub bytes: Vec<u8>,
}

/// Counters the status RPC reports.
#[derive(Debug, Default)]
pub struct NetStats {
    pub peers: AtomicU64,
    pub dropped_outbound: AtomicU64,
    pub dropped_inbound: AtomicU64,
    /// Messages dropped because their peer was over its rate.
    pub dropped_over_rate: AtomicU64,
    /// Peers disconnected and refused for misbehaving.
    pub bans: AtomicU64,
    pub traffic: NetCounters,
}

/// A peer this node dials: its key (which names its peer id: on an SM chain, its transport
/// key) and its address.
#[derive(Debug, Clone)]
pub struct Peer {
    pub key: PublicKey,
    pub address: SocketAddr,
}

/// The driver's handle on the network.
#[derive(Debug, Clone)]
pub struct NetHandle {
    commands: mpsc::Sender<Command>,
    pub stats: Arc<NetStats>,
}

impl NetHandle {
    /// Queues a command; drops it if the queue is full (see the module docs).
    pub fn send(&self, command: Command) {
        if self.commands.try_send(command).is_err() {
            self.stats.dropped_outbound.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn multiaddr(address: SocketAddr) -> Multiaddr {
    let ip = match address.ip() {
        std::net::IpAddr::V4(ip) => libp2p::multiaddr::Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => libp2p::multiaddr::Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(libp2p::multiaddr::Protocol::Tcp(address.port()))
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    P2p(#[from] p2p::Error),
    #[error("cannot listen on p2p address {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
    #[error("p2p peer key {0} is not an ed25519 public key")]
    BadPeerKey(PublicKey),
    #[error("this node's p2p key is not an ed25519 key: on an sm2-sm3 chain it is the transport key")]
    BadOwnKey,
}

/// The peer ids of `members` on chain `chain_id`, but `me`'s: each validator's bound
/// transport key names it (its own key on an ed25519 chain). A validator whose binding does
/// not check is left out, so the allow list refuses its connections, and logged.
fn peer_ids(chain_id: &str, members: &[Member], me: &PublicKey) -> Vec<PeerId> {
    let mut ids = Vec::with_capacity(members.len());
    for member in members {
        match member.peer_key(chain_id) {
            Ok(key) if key == *me => {}
            Ok(key) => ids.extend(p2p::peer_id(&key)),
            Err(reason) => {
                tracing::warn!(validator = %member.key, %reason, "p2p: transport key not bound: the validator is refused");
            }
        }
    }
    ids
}

/// Starts the network task with this node's p2p identity `key` (ed25519: on an SM chain,
/// its transport key): listens on `listen`, lets in `allowed` (the listed full nodes,
/// always) and `validators` (through their transport keys bound on chain `chain_id`),
/// dials `peers`, and sends broadcasts to `validators` (this node among them is skipped).
/// When the validator set changes
/// ([`Command::SetValidators`]), the keys that left it, unless in `allowed`, are
/// disconnected and refused from then on; keys a scheduled change adds are let in ahead of
/// it ([`Command::Expect`]). Incoming messages go to `inbox`. Must be called
/// inside a tokio runtime; the task ends when every [`NetHandle`] is dropped or it is
/// aborted.
pub fn start(
    key: &Keypair,
    chain_id: &str,
    listen: SocketAddr,
    allowed: &[PublicKey],
    validators: &[Member],
    peers: &[Peer],
    inbox: impl Inbox,
) -> Result<(NetHandle, tokio::task::JoinHandle<()>), NetError> {
    let me = key.public();
    if p2p::peer_id(&me).is_none() {
        return Err(NetError::BadOwnKey);
    }
    let chain_id = chain_id.to_string();
    let mut broadcast_to = peer_ids(&chain_id, validators, &me);
    let mut swarm = p2p::swarm(key, &[])?;
    for peer in allowed.iter().map(|k| p2p::peer_id(k).ok_or(NetError::BadPeerKey(*k))) {
        swarm.behaviour_mut().allowed.allow_peer(peer?);
    }
    for peer in &broadcast_to {
        swarm.behaviour_mut().allowed.allow_peer(*peer);
    }
    swarm.listen_on(multiaddr(listen)).map_err(|e| NetError::Listen { address: listen, reason: e.to_string() })?;
    let mut dial = Vec::new();
    for peer in peers {
        let id = p2p::peer_id(&peer.key).ok_or(NetError::BadPeerKey(peer.key))?;
        dial.push((id, multiaddr(peer.address)));
    }
    let always: std::collections::HashSet<PeerId> =
        allowed.iter().map(|k| p2p::peer_id(k).ok_or(NetError::BadPeerKey(*k))).collect::<Result<_, _>>()?;
    let mut let_in: std::collections::HashSet<PeerId> = always.iter().chain(&broadcast_to).copied().collect();
    let mut joining: Vec<PeerId> = Vec::new();
    let (commands, mut queue) = mpsc::channel(OUTBOX_MAX);
    let stats = Arc::new(NetStats::default());
    let task_stats = Arc::clone(&stats);
    let task = tokio::spawn(async move {
        let stats = task_stats;
        let mut redial = tokio::time::interval(REDIAL_EVERY);
        let mut guard = PeerGuard::default();
        // Bans `peer` if its score has reached the ban score.
        let ban_if_due = |guard: &mut PeerGuard, swarm: &mut libp2p::Swarm<p2p::Behaviour>, peer: PeerId| {
            if guard.should_ban(peer, std::time::Instant::now()) {
                tracing::warn!(%peer, for_secs = peer_guard::BAN_FOR.as_secs(), "p2p peer misbehaved: disconnected and refused");
                swarm.behaviour_mut().allowed.disallow_peer(peer);
                let _ = swarm.disconnect_peer_id(peer);
                stats.bans.fetch_add(1, Ordering::Relaxed);
            }
        };
        loop {
            tokio::select! {
                command = queue.recv() => match command {
                    None => return,
                    Some(Command::Broadcast(bytes)) => {
                        stats.traffic.sent(&bytes, broadcast_to.len() as u64);
                        for peer in &broadcast_to {
                            // Nothing waits for a peer that is not connected (see the module docs).
                            if swarm.is_connected(peer) {
                                swarm.behaviour_mut().consensus.send_request(peer, bytes.clone());
                            } else {
                                stats.dropped_outbound.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Some(Command::Send(peer, bytes)) => {
                        stats.traffic.sent(&bytes, 1);
                        if swarm.is_connected(&peer) {
                            swarm.behaviour_mut().consensus.send_request(&peer, bytes);
                        } else {
                            stats.dropped_outbound.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(command @ (Command::SetValidators(_) | Command::Expect(_))) => {
                        match command {
                            Command::SetValidators(members) => broadcast_to = peer_ids(&chain_id, &members, &me),
                            Command::Expect(members) => joining = peer_ids(&chain_id, &members, &me),
                            _ => {}
                        }
                        let standing: std::collections::HashSet<PeerId> =
                            always.iter().chain(&broadcast_to).chain(&joining).copied().collect();
                        for peer in let_in.difference(&standing) {
                            tracing::info!(%peer, "p2p peer left the validator set: disconnected and refused");
                            swarm.behaviour_mut().allowed.disallow_peer(*peer);
                            let _ = swarm.disconnect_peer_id(*peer);
                        }
                        for peer in &standing {
                            if !guard.is_banned(peer) {
                                swarm.behaviour_mut().allowed.allow_peer(*peer);
                            }
                        }
                        let_in = standing;
                    }
                    Some(Command::Penalise(peer, what)) => {
                        tracing::debug!(%peer, what = what.name(), "p2p peer penalised");
                        guard.penalise(peer, what, std::time::Instant::now());
                        ban_if_due(&mut guard, &mut swarm, peer);
                    }
                },
                _ = redial.tick() => {
                    for peer in guard.expired_bans(std::time::Instant::now()) {
                        if let_in.contains(&peer) {
                            tracing::info!(%peer, "p2p peer's ban ended: let in again");
                            swarm.behaviour_mut().allowed.allow_peer(peer);
                        }
                    }
                    for (peer, address) in &dial {
                        if !swarm.is_connected(peer) && !guard.is_banned(peer) && let_in.contains(peer) {
                            // libp2p forgets an address whose dial failed (a peer that was down
                            // or not yet listening), so it is given again every time.
                            swarm.add_peer_address(*peer, address.clone());
                            let opts = DialOpts::peer_id(*peer)
                                .addresses(vec![address.clone()])
                                .condition(PeerCondition::DisconnectedAndNotDialing)
                                .build();
                            let _ = swarm.dial(opts);
                        }
                    }
                }
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::Message {
                        peer, message: Message::Request { request, channel, .. }, ..
                    })) => {
                        // The acknowledgement only closes the stream; what the message means is
                        // the driver's business.
                        let _ = swarm.behaviour_mut().consensus.send_response(channel, Vec::new());
                        stats.traffic.received(&request);
                        if guard.admit(peer, &request, std::time::Instant::now()) == Verdict::Drop {
                            stats.dropped_over_rate.fetch_add(1, Ordering::Relaxed);
                            ban_if_due(&mut guard, &mut swarm, peer);
                            continue;
                        }
                        if !inbox.deliver(Inbound { from: peer, bytes: request }) {
                            stats.dropped_inbound.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::OutboundFailure { peer, error, .. })) => {
                        tracing::debug!(%peer, %error, "p2p send failed");
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Consensus(Event::InboundFailure { peer, error, .. })) => {
                        tracing::debug!(%peer, %error, "p2p receive failed");
                        // A frame over the size limit or a malformed length: the peer's doing.
                        if let libp2p::request_response::InboundFailure::Io(err) = &error
                            && err.kind() == std::io::ErrorKind::InvalidData
                        {
                            guard.penalise(peer, Misbehaviour::BrokenStream, std::time::Instant::now());
                            ban_if_due(&mut guard, &mut swarm, peer);
                        }
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, num_established, .. } => {
                        if num_established.get() == 1 {
                            tracing::info!(peer = %peer_id, "p2p peer connected");
                        }
                        stats.peers.store(swarm.connected_peers().count() as u64, Ordering::Relaxed);
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                        if num_established == 0 {
                            tracing::info!(peer = %peer_id, "p2p peer disconnected");
                        }
                        stats.peers.store(swarm.connected_peers().count() as u64, Ordering::Relaxed);
                    }
                    SwarmEvent::IncomingConnectionError { send_back_addr, error, peer_id, .. } => {
                        // A peer id that is no validator's bound transport key (nor a listed
                        // full node's) is refused once the handshake names it.
                        match peer_id {
                            Some(peer) => tracing::debug!(%peer, %send_back_addr, %error, "p2p connection refused"),
                            None => tracing::debug!(%send_back_addr, %error, "p2p connection refused"),
                        }
                    }
                    SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "p2p listening"),
                    _ => {}
                },
            }
        }
    });
    Ok((NetHandle { commands, stats }, task))
}
