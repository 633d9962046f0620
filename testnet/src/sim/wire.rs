//! The simulation's blocks and its message envelope. Every message crosses the simulated
//! network as bytes and is decoded on arrival, so malformed bytes reach the same decoder a
//! real node uses for consensus messages.

use shutong_codec::{Reader, write};
use shutong_consensus::{Message, SignedVote};
use shutong_types::{Decode, DecodeError, Encode, Hash};

const BLOCK_TAG: &str = "shutong/sim/block/v1";

/// A block as the simulation sees it: enough structure for rule 6's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimBlock {
    pub view: u64,
    pub height: u64,
    pub parent: Hash,
    pub parent_view: u64,
    pub proposer: u32,
    pub payload: u64,
}

impl SimBlock {
    pub fn digest(&self) -> Hash {
        Hash::of(shutong_types::Suite::Ed25519Blake3, BLOCK_TAG, &self.encode())
    }
}

impl Encode for SimBlock {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.view);
        write::u64(out, self.height);
        self.parent.encode_to(out);
        write::u64(out, self.parent_view);
        write::u32(out, self.proposer);
        write::u64(out, self.payload);
    }
}

impl Decode for SimBlock {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SimBlock {
            view: r.u64()?,
            height: r.u64()?,
            parent: Hash::decode_from(r)?,
            parent_view: r.u64()?,
            proposer: r.u32()?,
            payload: r.u64()?,
        })
    }
}

/// Everything a simulated validator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimMessage {
    Consensus(Message),
    Proposal { block: SimBlock, vote: SignedVote },
    BlockRequest(Hash),
    BlockResponse(SimBlock),
}

impl Encode for SimMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            SimMessage::Consensus(message) => {
                write::u8(out, 0);
                message.encode_to(out);
            }
            SimMessage::Proposal { block, vote } => {
                write::u8(out, 1);
                block.encode_to(out);
                vote.encode_to(out);
            }
            SimMessage::BlockRequest(digest) => {
                write::u8(out, 2);
                digest.encode_to(out);
            }
            SimMessage::BlockResponse(block) => {
                write::u8(out, 3);
                block.encode_to(out);
            }
        }
    }
}

impl Decode for SimMessage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(SimMessage::Consensus(Message::decode_from(r)?)),
            1 => Ok(SimMessage::Proposal { block: SimBlock::decode_from(r)?, vote: SignedVote::decode_from(r)? }),
            2 => Ok(SimMessage::BlockRequest(Hash::decode_from(r)?)),
            3 => Ok(SimMessage::BlockResponse(SimBlock::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag { what: "sim message", tag }),
        }
    }
}
