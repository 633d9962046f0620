//! The peer-to-peer network: libp2p over TCP with Noise and Yamux, gated to known peers.
//!
//! A node's libp2p identity is its validator (or full-node) ed25519 key, so its peer id
//! follows from its public key and the validator set names the peers to let in. Every
//! connection is refused right after the Noise handshake (the first point at which the
//! remote's key is proven) unless the peer is on the allow list: the current validators and
//! the configured full nodes.

use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{PeerId, StreamProtocol, Swarm, SwarmBuilder, identity, noise, request_response, tcp, yamux};
use shutong_types::{Keypair, PublicKey};
use std::io;
use std::time::Duration;

/// The consensus protocol: one request per message, answered with an empty acknowledgement.
pub const CONSENSUS_PROTOCOL: StreamProtocol = StreamProtocol::new("/shutong/consensus/1");

/// The largest message on any Shutong protocol (a largest block with room for its envelope);
/// a longer length prefix is refused before anything is allocated.
pub const MESSAGE_BYTES_MAX: usize = shutong_types::limits::BLOCK_BYTES_MAX + (64 << 10);

/// The node's libp2p identity: its ed25519 key (on an SM chain, its transport key).
/// `key` is ed25519 (`network::start` checks).
pub fn identity(key: &Keypair) -> identity::Keypair {
    let mut secret = key.secret();
    identity::Keypair::ed25519_from_bytes(&mut secret).expect("32 bytes are an ed25519 secret key")
}

/// The peer id of the node whose key is `key`, or `None` if the bytes are not an ed25519
/// point. libp2p has no SM2 keys: an SM2 key has no peer id of its own, and an SM chain's
/// validators are named by their bound transport keys (`shutong_types::transport`).
pub fn peer_id(key: &PublicKey) -> Option<PeerId> {
    let PublicKey::Ed25519(bytes) = key else { return None };
    let public = identity::ed25519::PublicKey::try_from_bytes(bytes).ok()?;
    Some(PeerId::from_public_key(&identity::PublicKey::from(public)))
}

/// The node's libp2p behaviours. (libp2p's behaviours do not all implement `Debug`.)
#[allow(missing_debug_implementations)]
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub allowed: allow_block_list::Behaviour<AllowedPeers>,
    pub limits: libp2p::connection_limits::Behaviour,
    pub consensus: request_response::Behaviour<BytesCodec>,
}

/// Connections still in their handshake (anyone can open one: the key is proven only at
/// its end), each way.
pub const PENDING_CONNECTIONS_MAX: u32 = 64;
/// Connections one peer may hold at once (two when both sides dial at the same moment).
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;

/// Length-prefixed byte messages (u32 little-endian length, then the bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MESSAGE_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes is over the limit of {MESSAGE_BYTES_MAX}"),
        ));
    }
    let mut bytes = vec![0u8; len];
    io.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len as usize <= MESSAGE_BYTES_MAX)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message over the size limit"))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

#[async_trait::async_trait]
impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &response).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot set up the tcp transport: {0}")]
    Transport(String),
    #[error("allowed peer key {0} is not an ed25519 public key")]
    BadPeerKey(PublicKey),
}

/// A swarm for `key` that lets in only `allowed` (validators and configured full nodes).
/// Must be called inside a tokio runtime.
pub fn swarm(key: &Keypair, allowed: &[PublicKey]) -> Result<Swarm<Behaviour>, Error> {
    let peers = allowed.iter().map(|k| peer_id(k).ok_or(Error::BadPeerKey(*k))).collect::<Result<Vec<_>, _>>()?;
    let consensus_cfg = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(10))
        .with_max_concurrent_streams(64);
    let mut swarm = SwarmBuilder::with_existing_identity(identity(key))
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_behaviour(|_| Behaviour {
            allowed: allow_block_list::Behaviour::default(),
            limits: libp2p::connection_limits::Behaviour::new(
                libp2p::connection_limits::ConnectionLimits::default()
                    .with_max_pending_incoming(Some(PENDING_CONNECTIONS_MAX))
                    .with_max_pending_outgoing(Some(PENDING_CONNECTIONS_MAX))
                    .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX)),
            ),
            consensus: request_response::Behaviour::new(
                [(CONSENSUS_PROTOCOL, request_response::ProtocolSupport::Full)],
                consensus_cfg,
            ),
        })
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_swarm_config(|c| {
            // Each message is a stream of its own, and multistream-select's default (V1) makes
            // the opener wait for the protocol's echo before sending: a round trip on every
            // message, which tripled finality across a WAN. Lazy: the message goes with the
            // protocol's name, since every peer speaks the one protocol.
            c.with_idle_connection_timeout(Duration::from_secs(3600))
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
        .build();
    for peer in peers {
        swarm.behaviour_mut().allowed.allow_peer(peer);
    }
    Ok(swarm)
}
