//! What validators send each other over the consensus protocol, in its canonical encoding.
//!
//! Every message is decoded with bounds: a peer's bytes never allocate more than the frame
//! they arrived in (the node's transport bounds each frame), and a message that
//! does not decode is dropped and counted, never acted on.

use crate::{Message, SignedVote};
use shutong_codec::{Reader, write};
use shutong_types::epoch::EpochChange;
use shutong_types::hash::tag;
use shutong_types::limits::BLOCK_TXS_MAX;
use shutong_types::snapshot::{Entries, Manifest};
use shutong_types::{Block, BlockHeader, Certificate, Decode, DecodeError, Encode, Hash, PublicKey, SignedTransaction};

/// The most blocks one answer carries.
pub const BLOCKS_PER_MESSAGE_MAX: u32 = 64;
/// The most transactions in one batch.
pub const BATCH_TXS_MAX: u32 = 4_096;
/// The most batches one proposal or request names.
pub const BATCHES_PER_MESSAGE_MAX: u32 = 1_024;
/// The most (key, value) pairs one snapshot chunk carries (the frame bounds its bytes).
pub const CHUNK_ENTRIES_MAX: u32 = 1 << 20;
/// The longest state key and value a chunk may carry: a message's own bound.
const ENTRY_BYTES_MAX: u32 = shutong_types::limits::BLOCK_BYTES_MAX as u32;

/// Transactions a validator received from clients, pushed to every other validator ahead of
/// any proposal that includes them. Named by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub author: PublicKey,
    /// The author's counter; keeps two batches of the same transactions apart.
    pub seq: u64,
    pub txs: Vec<SignedTransaction>,
}

impl Batch {
    /// The batch's name, hashed with the suite of its author's key (a validator's, so the
    /// chain's).
    pub fn digest(&self) -> Hash {
        Hash::of(self.author.suite(), tag::BATCH, &self.encode())
    }
}

impl Encode for Batch {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.author.encode_to(out);
        write::u64(out, self.seq);
        write::seq(out, &self.txs, |out, tx| tx.encode_to(out));
    }
}

impl Decode for Batch {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Batch {
            author: PublicKey::decode_from(r)?,
            seq: r.u64()?,
            txs: r.seq("batch.txs", BATCH_TXS_MAX, SignedTransaction::decode_from)?,
        })
    }
}

/// A proposal that names its transactions by batch instead of carrying them: the block's
/// transactions are, in order, `batches[b].txs[i]` for each `(b, i)` in `positions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactProposal {
    pub header: BlockHeader,
    pub batches: Vec<Hash>,
    pub positions: Vec<(u32, u32)>,
    pub parent_view: u64,
    pub vote: SignedVote,
}

impl Encode for CompactProposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        write::seq(out, &self.batches, |out, digest| digest.encode_to(out));
        write::seq(out, &self.positions, |out, (batch, index)| {
            write::u32(out, *batch);
            write::u32(out, *index);
        });
        write::u64(out, self.parent_view);
        self.vote.encode_to(out);
    }
}

impl Decode for CompactProposal {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CompactProposal {
            header: BlockHeader::decode_from(r)?,
            batches: r.seq("proposal.batches", BATCHES_PER_MESSAGE_MAX, Hash::decode_from)?,
            positions: r.seq("proposal.positions", BLOCK_TXS_MAX, |r| Ok((r.u32()?, r.u32()?)))?,
            parent_view: r.u64()?,
            vote: SignedVote::decode_from(r)?,
        })
    }
}

/// The kinds of message, by the tag that starts each on the wire: the one table the
/// encoder, the decoder, the peer guard's request limit and the traffic metrics read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Consensus,
    Proposal,
    BlockRequest,
    Blocks,
    SyncRequest,
    SyncBlocks,
    Batch,
    CompactProposal,
    BatchRequest,
    EpochRequest,
    EpochProof,
    SnapshotRequest,
    SnapshotOffer,
    ChunkRequest,
    Chunk,
}

impl Kind {
    /// Every kind, in tag order: `ALL[t]` has tag `t`.
    pub const ALL: [Kind; 15] = [
        Kind::Consensus,
        Kind::Proposal,
        Kind::BlockRequest,
        Kind::Blocks,
        Kind::SyncRequest,
        Kind::SyncBlocks,
        Kind::Batch,
        Kind::CompactProposal,
        Kind::BatchRequest,
        Kind::EpochRequest,
        Kind::EpochProof,
        Kind::SnapshotRequest,
        Kind::SnapshotOffer,
        Kind::ChunkRequest,
        Kind::Chunk,
    ];

    pub fn tag(self) -> u8 {
        match self {
            Kind::Consensus => 0,
            Kind::Proposal => 1,
            Kind::BlockRequest => 2,
            Kind::Blocks => 3,
            Kind::SyncRequest => 4,
            Kind::SyncBlocks => 5,
            Kind::Batch => 6,
            Kind::CompactProposal => 7,
            Kind::BatchRequest => 8,
            Kind::EpochRequest => 9,
            Kind::EpochProof => 10,
            Kind::SnapshotRequest => 11,
            Kind::SnapshotOffer => 12,
            Kind::ChunkRequest => 13,
            Kind::Chunk => 14,
        }
    }

    pub fn of_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.get(tag as usize).copied()
    }

    /// The kind an encoded message claims by its first byte (it may still not decode).
    pub fn of_bytes(bytes: &[u8]) -> Option<Kind> {
        bytes.first().and_then(|tag| Kind::of_tag(*tag))
    }

    /// A short name, for metric labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Consensus => "consensus",
            Kind::Proposal => "proposal",
            Kind::BlockRequest => "block_request",
            Kind::Blocks => "blocks",
            Kind::SyncRequest => "sync_request",
            Kind::SyncBlocks => "sync_blocks",
            Kind::Batch => "batch",
            Kind::CompactProposal => "compact_proposal",
            Kind::BatchRequest => "batch_request",
            Kind::EpochRequest => "epoch_request",
            Kind::EpochProof => "epoch_proof",
            Kind::SnapshotRequest => "snapshot_request",
            Kind::SnapshotOffer => "snapshot_offer",
            Kind::ChunkRequest => "chunk_request",
            Kind::Chunk => "chunk",
        }
    }

    /// Whether answering it makes the receiver read blocks or batches and send them back:
    /// such requests have a rate of their own.
    pub fn is_costly_request(self) -> bool {
        matches!(
            self,
            Kind::BlockRequest
                | Kind::SyncRequest
                | Kind::BatchRequest
                | Kind::EpochRequest
                | Kind::SnapshotRequest
                | Kind::ChunkRequest
        )
    }
}

/// A message between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMessage {
    /// Votes, certificates and certificate requests (consensus.md).
    Consensus(Message),
    /// A leader's block with its own notarize vote, and the view its parent was proposed in.
    Proposal { block: Block, parent_view: u64, vote: SignedVote },
    /// "Send me the block with this digest and up to `ancestors` of its ancestors": for a
    /// proposal whose parent this node missed, committed or not.
    BlockRequest { digest: Hash, ancestors: u32 },
    /// Blocks by digest, newest first, each the parent of the one before.
    Blocks(Vec<Block>),
    /// "Send me up to `count` committed blocks from `from_height` on": block sync.
    SyncRequest { from_height: u64, count: u32 },
    /// Committed blocks in height order, each with its finalization certificate if it was
    /// finalized directly (an ancestor of a finalized block is final without one).
    SyncBlocks(Vec<(Block, Option<Certificate>)>),
    /// A batch of transactions, pushed or asked for.
    Batch(Batch),
    /// A proposal by batch digests.
    CompactProposal(CompactProposal),
    /// "Send me these batches."
    BatchRequest(Vec<Hash>),
    /// "Prove to me that this epoch began, and with whom": asked by a node that met a peer
    /// of a later epoch than its own (`shutong_types::epoch`).
    EpochRequest { epoch: u64 },
    /// The proof of an epoch's start: its previous epoch's last header, certified, and the
    /// proven set and scheduled change there.
    EpochProof(Box<EpochChange>),
    /// "Offer me your state snapshot at header `height`" (0: the newest): a node joining by
    /// state sync, usually at the height its operator trusts.
    SnapshotRequest { height: u64 },
    /// A snapshot: the manifest of the state that header `height` commits to
    /// (`shutong_types::snapshot`).
    SnapshotOffer { height: u64, manifest: Box<Manifest> },
    /// "Send me chunk `index` of the snapshot of state `version` split on `nibbles`."
    ChunkRequest { version: u64, nibbles: u8, index: u32 },
    /// One chunk: every (key, value) under its prefix, in key-hash order.
    Chunk { version: u64, index: u32, entries: Entries },
}

impl NetMessage {
    pub fn kind(&self) -> Kind {
        match self {
            NetMessage::Consensus(_) => Kind::Consensus,
            NetMessage::Proposal { .. } => Kind::Proposal,
            NetMessage::BlockRequest { .. } => Kind::BlockRequest,
            NetMessage::Blocks(_) => Kind::Blocks,
            NetMessage::SyncRequest { .. } => Kind::SyncRequest,
            NetMessage::SyncBlocks(_) => Kind::SyncBlocks,
            NetMessage::Batch(_) => Kind::Batch,
            NetMessage::CompactProposal(_) => Kind::CompactProposal,
            NetMessage::BatchRequest(_) => Kind::BatchRequest,
            NetMessage::EpochRequest { .. } => Kind::EpochRequest,
            NetMessage::EpochProof(_) => Kind::EpochProof,
            NetMessage::SnapshotRequest { .. } => Kind::SnapshotRequest,
            NetMessage::SnapshotOffer { .. } => Kind::SnapshotOffer,
            NetMessage::ChunkRequest { .. } => Kind::ChunkRequest,
            NetMessage::Chunk { .. } => Kind::Chunk,
        }
    }
}

impl Encode for NetMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, self.kind().tag());
        match self {
            NetMessage::Consensus(message) => message.encode_to(out),
            NetMessage::Proposal { block, parent_view, vote } => {
                block.encode_to(out);
                write::u64(out, *parent_view);
                vote.encode_to(out);
            }
            NetMessage::BlockRequest { digest, ancestors } => {
                digest.encode_to(out);
                write::u32(out, *ancestors);
            }
            NetMessage::Blocks(blocks) => write::seq(out, blocks, |out, block| block.encode_to(out)),
            NetMessage::SyncRequest { from_height, count } => {
                write::u64(out, *from_height);
                write::u32(out, *count);
            }
            NetMessage::SyncBlocks(blocks) => {
                write::seq(out, blocks, |out, (block, certificate)| {
                    block.encode_to(out);
                    write::option(out, certificate, |out, c| c.encode_to(out));
                });
            }
            NetMessage::Batch(batch) => batch.encode_to(out),
            NetMessage::CompactProposal(proposal) => proposal.encode_to(out),
            NetMessage::BatchRequest(digests) => write::seq(out, digests, |out, digest| digest.encode_to(out)),
            NetMessage::EpochRequest { epoch } => write::u64(out, *epoch),
            NetMessage::EpochProof(change) => change.encode_to(out),
            NetMessage::SnapshotRequest { height } => write::u64(out, *height),
            NetMessage::SnapshotOffer { height, manifest } => {
                write::u64(out, *height);
                manifest.encode_to(out);
            }
            NetMessage::ChunkRequest { version, nibbles, index } => {
                write::u64(out, *version);
                write::u8(out, *nibbles);
                write::u32(out, *index);
            }
            NetMessage::Chunk { version, index, entries } => {
                write::u64(out, *version);
                write::u32(out, *index);
                write::seq(out, entries, |out, (key, value)| {
                    write::bytes(out, key);
                    write::bytes(out, value);
                });
            }
        }
    }
}

impl Decode for NetMessage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        let Some(kind) = Kind::of_tag(tag) else {
            return Err(DecodeError::InvalidTag { what: "net message", tag });
        };
        Ok(match kind {
            Kind::Consensus => NetMessage::Consensus(Message::decode_from(r)?),
            Kind::Proposal => NetMessage::Proposal {
                block: Block::decode_from(r)?,
                parent_view: r.u64()?,
                vote: SignedVote::decode_from(r)?,
            },
            Kind::BlockRequest => NetMessage::BlockRequest { digest: Hash::decode_from(r)?, ancestors: r.u32()? },
            Kind::Blocks => NetMessage::Blocks(r.seq("net.blocks", BLOCKS_PER_MESSAGE_MAX, Block::decode_from)?),
            Kind::SyncRequest => NetMessage::SyncRequest { from_height: r.u64()?, count: r.u32()? },
            Kind::SyncBlocks => NetMessage::SyncBlocks(r.seq("net.sync_blocks", BLOCKS_PER_MESSAGE_MAX, |r| {
                Ok((Block::decode_from(r)?, r.option("net.sync_certificate", Certificate::decode_from)?))
            })?),
            Kind::Batch => NetMessage::Batch(Batch::decode_from(r)?),
            Kind::CompactProposal => NetMessage::CompactProposal(CompactProposal::decode_from(r)?),
            Kind::BatchRequest => {
                NetMessage::BatchRequest(r.seq("net.batch_request", BATCHES_PER_MESSAGE_MAX, Hash::decode_from)?)
            }
            Kind::EpochRequest => NetMessage::EpochRequest { epoch: r.u64()? },
            Kind::EpochProof => NetMessage::EpochProof(Box::new(EpochChange::decode_from(r)?)),
            Kind::SnapshotRequest => NetMessage::SnapshotRequest { height: r.u64()? },
            Kind::SnapshotOffer => {
                NetMessage::SnapshotOffer { height: r.u64()?, manifest: Box::new(Manifest::decode_from(r)?) }
            }
            Kind::ChunkRequest => NetMessage::ChunkRequest { version: r.u64()?, nibbles: r.u8()?, index: r.u32()? },
            Kind::Chunk => NetMessage::Chunk {
                version: r.u64()?,
                index: r.u32()?,
                entries: r.seq("net.chunk", CHUNK_ENTRIES_MAX, |r| {
                    Ok((r.byte_vec("net.chunk.key", ENTRY_BYTES_MAX)?, r.byte_vec("net.chunk.value", ENTRY_BYTES_MAX)?))
                })?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_types::block::VoteSubject;
    use shutong_types::{Keypair, Suite, VoteKind};

    fn block(height: u64) -> Block {
        Block::empty("wire", height, Hash::of(Suite::Ed25519Blake3, "test", &height.to_le_bytes()))
    }

    fn samples() -> Vec<NetMessage> {
        let key = Keypair::from_seed("wire-voter");
        let subject = VoteSubject { kind: VoteKind::Notarize, epoch: 0, view: 3, digest: block(3).header.hash() };
        let vote = SignedVote { subject, signer: 1, signature: subject.sign("wire", &key) };
        let certificate = Certificate::new(subject, 4, &[(1, vote.signature)]);
        vec![
            NetMessage::Consensus(Message::Vote(vote.clone())),
            NetMessage::Proposal { block: block(3), parent_view: 2, vote },
            NetMessage::BlockRequest { digest: Hash::of(Suite::Ed25519Blake3, "x", b"y"), ancestors: 16 },
            NetMessage::Blocks(vec![block(5), block(4)]),
            NetMessage::SyncRequest { from_height: 9, count: 64 },
            NetMessage::SyncBlocks(vec![(block(9), None), (block(10), Some(certificate))]),
            NetMessage::Batch(Batch { author: key.public(), seq: 4, txs: Vec::new() }),
            NetMessage::CompactProposal(CompactProposal {
                header: block(3).header,
                batches: vec![Hash::of(Suite::Ed25519Blake3, "b", b"1"), Hash::of(Suite::Ed25519Blake3, "b", b"2")],
                positions: vec![(0, 0), (1, 7)],
                parent_view: 2,
                vote: SignedVote { subject, signer: 1, signature: subject.sign("wire", &key) },
            }),
            NetMessage::BatchRequest(vec![Hash::of(Suite::Ed25519Blake3, "b", b"1")]),
            NetMessage::EpochRequest { epoch: 2 },
            NetMessage::EpochProof(Box::new(EpochChange {
                epoch: 1,
                start_height: 4,
                last_header: block(3).header,
                certificate: Certificate::new(subject, 4, &[(1, subject.sign("wire", &key))]),
                validators: shutong_types::epoch::ProvenValue {
                    value: Some(vec![1, 2]),
                    proof: shutong_types::smt::StateProof { leaf: None, siblings: Vec::new() },
                },
                pending: shutong_types::epoch::ProvenValue {
                    value: None,
                    proof: shutong_types::smt::StateProof { leaf: None, siblings: Vec::new() },
                },
            })),
            NetMessage::SnapshotRequest { height: 1000 },
            NetMessage::SnapshotOffer {
                height: 1000,
                manifest: Box::new(Manifest {
                    version: 999,
                    nibbles: 1,
                    subtrees: (0..16u8)
                        .map(|i| match i % 3 {
                            0 => shutong_types::smt::Subtree::Empty,
                            1 => shutong_types::smt::Subtree::Lone(Hash([i; 32])),
                            _ => shutong_types::smt::Subtree::Many(Hash([i; 32])),
                        })
                        .collect(),
                }),
            },
            NetMessage::ChunkRequest { version: 999, nibbles: 1, index: 7 },
            NetMessage::Chunk {
                version: 999,
                index: 7,
                entries: vec![(b"k".to_vec(), b"v".to_vec()), (Vec::new(), Vec::new())],
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            assert_eq!(NetMessage::decode(&message.encode()).unwrap(), message);
        }
    }

    #[test]
    fn each_kind_starts_its_messages_and_the_tags_are_stable() {
        let kinds: Vec<Kind> = samples().iter().map(NetMessage::kind).collect();
        assert_eq!(kinds, Kind::ALL, "one sample of each kind, in tag order");
        for (tag, message) in samples().iter().enumerate() {
            assert_eq!(message.encode()[0], tag as u8, "{message:?}");
            assert_eq!(Kind::of_bytes(&message.encode()), Some(message.kind()));
        }
        assert_eq!(Kind::of_tag(15), None);
    }

    #[test]
    fn truncated_and_unknown_messages_are_refused() {
        for message in samples() {
            let bytes = message.encode();
            for len in 0..bytes.len() {
                assert!(NetMessage::decode(&bytes[..len]).is_err(), "{message:?} cut to {len} bytes decoded");
            }
        }
        assert!(NetMessage::decode(&[15]).is_err());
        assert!(NetMessage::decode(&[255, 0, 0]).is_err());
    }

    #[test]
    fn a_huge_block_count_is_refused_before_allocating() {
        let mut bytes = vec![3];
        write::u32(&mut bytes, u32::MAX);
        let err = NetMessage::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("net.blocks"), "{err}");
    }
}
