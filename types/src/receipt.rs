//! Receipts and events: what executing a transaction produced.

use crate::hash::Hash;
use crate::keys::Address;
use crate::limits::*;
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};

/// An event a contract emitted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub contract: Address,
    pub topic: String,
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// How a transaction's execution ended. Every status but `Success` rolls back the
/// transaction's writes and events; gas used is charged either way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum ExecStatus {
    Success,
    /// The contract aborted with a message.
    Aborted(String),
    OutOfGas,
    UnknownContract,
    UnknownMethod(String),
    /// The contract trapped (out-of-bounds access, unreachable, stack overflow, ...).
    Trapped(String),
    /// Included but not executed (its nonce no longer matches); no gas is charged.
    Rejected(String),
    /// The contract is frozen: calls to it are refused until its admin unfreezes it.
    Frozen,
}

impl ExecStatus {
    fn tag(&self) -> u8 {
        match self {
            ExecStatus::Success => 0,
            ExecStatus::Aborted(_) => 1,
            ExecStatus::OutOfGas => 2,
            ExecStatus::UnknownContract => 3,
            ExecStatus::UnknownMethod(_) => 4,
            ExecStatus::Trapped(_) => 5,
            ExecStatus::Rejected(_) => 6,
            ExecStatus::Frozen => 7,
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self, ExecStatus::Success)
    }
}

/// The outcome of one transaction in a block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub tx_id: Hash,
    pub height: u64,
    pub index: u32,
    pub status: ExecStatus,
    pub gas_used: u64,
    pub events: Vec<Event>,
    #[serde(with = "hex_bytes")]
    pub output: Vec<u8>,
}

impl Encode for Event {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.contract.encode_to(out);
        write::str(out, &self.topic);
        write::bytes(out, &self.data);
    }
}

impl Decode for Event {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Event {
            contract: Address::decode_from(r)?,
            topic: r.string("event.topic", EVENT_TOPIC_BYTES_MAX)?,
            data: r.byte_vec("event.data", EVENT_DATA_BYTES_MAX)?,
        })
    }
}

impl Encode for ExecStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, self.tag());
        match self {
            ExecStatus::Aborted(m)
            | ExecStatus::UnknownMethod(m)
            | ExecStatus::Trapped(m)
            | ExecStatus::Rejected(m) => write::str(out, m),
            ExecStatus::Success | ExecStatus::OutOfGas | ExecStatus::UnknownContract | ExecStatus::Frozen => {}
        }
    }
}

impl Decode for ExecStatus {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => ExecStatus::Success,
            1 => ExecStatus::Aborted(r.string("status.message", MESSAGE_BYTES_MAX)?),
            2 => ExecStatus::OutOfGas,
            3 => ExecStatus::UnknownContract,
            4 => ExecStatus::UnknownMethod(r.string("status.message", MESSAGE_BYTES_MAX)?),
            5 => ExecStatus::Trapped(r.string("status.message", MESSAGE_BYTES_MAX)?),
            6 => ExecStatus::Rejected(r.string("status.message", MESSAGE_BYTES_MAX)?),
            7 => ExecStatus::Frozen,
            tag => return Err(DecodeError::InvalidTag { what: "status", tag }),
        })
    }
}

impl Encode for Receipt {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.tx_id.encode_to(out);
        write::u64(out, self.height);
        write::u32(out, self.index);
        self.status.encode_to(out);
        write::u64(out, self.gas_used);
        write::seq(out, &self.events, |out, e| e.encode_to(out));
        write::bytes(out, &self.output);
    }
}

impl Decode for Receipt {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Receipt {
            tx_id: Hash::decode_from(r)?,
            height: r.u64()?,
            index: r.u32()?,
            status: ExecStatus::decode_from(r)?,
            gas_used: r.u64()?,
            events: r.seq("receipt.events", EVENTS_PER_RECEIPT_MAX, Event::decode_from)?,
            output: r.byte_vec("receipt.output", OUTPUT_BYTES_MAX)?,
        })
    }
}

/// Serde helper: `Vec<u8>` as a hex string.
pub mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        hex::decode(text.strip_prefix("0x").unwrap_or(&text)).map_err(serde::de::Error::custom)
    }
}
