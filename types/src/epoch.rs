//! Following a validator-set change from proofs alone, without executing blocks: what a
//! light client does, and what a node that lags behind a change does to learn whom to let
//! in (`shutong_node::chain::Gate`).
//!
//! A change is proven by the old epoch's last header, finalized by a quorum of the old
//! set, and two state proofs against the state root that header carries: the set in force
//! (which must be the old set, so the proof is anchored to what the checker already
//! trusts) and the scheduled change (which must activate right after that header). The
//! governance contract refuses a change once one is pending, so what is pending at the
//! epoch's last header is what took effect.

use crate::block::{BlockHeader, Certificate, VoteKind};
use crate::keys::{Address, PublicKey};
use crate::smt::StateProof;
use crate::suite::Suite;
use crate::{Decode, DecodeError, Encode, keyspace, quorum, validator_set_hash};
use shutong_codec::{Reader, write};
use shutong_system_api::KeyBytes;
use shutong_system_api::governance::{PENDING_KEY, PendingSet, TransportKey, VALIDATORS_KEY, ValidatorSet};
use shutong_system_api::names;

/// One epoch's validators and the first height they validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownEpoch {
    pub epoch: u64,
    pub start_height: u64,
    pub validators: Vec<PublicKey>,
    /// The validators' bound transport keys, one entry per validator in the same order, when
    /// known (a set proven from a change always carries them; empty for a trusted genesis set).
    pub transports: Vec<Option<TransportKey>>,
}

/// A state value (`None`: absent) and its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenValue {
    pub value: Option<Vec<u8>>,
    pub proof: StateProof,
}

/// The proof that epoch `epoch` begins at `start_height` (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochChange {
    pub epoch: u64,
    pub start_height: u64,
    pub last_header: BlockHeader,
    pub certificate: Certificate,
    pub validators: ProvenValue,
    pub pending: ProvenValue,
}

/// The state keys of the governance contract's set in force and scheduled change.
pub fn governance_key(name: &[u8]) -> Vec<u8> {
    keyspace::contract_storage(&Address::system(names::GOVERNANCE), name)
}

/// Checks `change` as the step from `current` to the next epoch on chain `chain_id` of
/// `suite`; returns the next epoch, or why the proof does not hold.
pub fn verify_change(
    chain_id: &str,
    suite: Suite,
    current: &KnownEpoch,
    change: &EpochChange,
) -> Result<KnownEpoch, String> {
    let epoch = current.epoch + 1;
    let header = &change.last_header;
    if change.epoch != epoch {
        return Err(format!("it describes epoch {} instead of {epoch}", change.epoch));
    }
    if header.height < current.start_height || header.height + 1 != change.start_height {
        return Err(format!(
            "it starts at {} after a last header {}, not after epoch {}'s start {}",
            change.start_height, header.height, current.epoch, current.start_height
        ));
    }
    // The old epoch's last header, finalized by the old set.
    if header.suite != suite {
        return Err(format!("header {} names suite {}, but the chain runs {suite}", header.height, header.suite));
    }
    if header.chain_id != chain_id || header.validator_set != validator_set_hash(suite, &current.validators) {
        return Err(format!("header {} is not one of epoch {}'s on this chain", header.height, current.epoch));
    }
    let subject = &change.certificate.subject;
    if subject.kind != VoteKind::Finalize || subject.epoch != current.epoch || subject.digest != header.hash() {
        return Err(format!(
            "the certificate is not epoch {}'s finalization of header {}",
            current.epoch, header.height
        ));
    }
    change
        .certificate
        .verify(chain_id, &current.validators, quorum(current.validators.len()))
        .map_err(|e| format!("the certificate of header {} does not check: {e}", header.height))?;
    let proven = |what: &str, name: &[u8], value: &ProvenValue| -> Result<Vec<u8>, String> {
        value
            .proof
            .verify(suite, &header.state_root, &governance_key(name), value.value.as_deref())
            .map_err(|e| format!("the proof of the {what} does not check: {e}"))?;
        value.value.clone().ok_or_else(|| format!("the {what} is absent"))
    };
    let set = ValidatorSet::decode(&proven("set in force", VALIDATORS_KEY, &change.validators)?)
        .map_err(|e| format!("the set in force does not decode: {e}"))?;
    let pending = PendingSet::decode(&proven("scheduled change", PENDING_KEY, &change.pending)?)
        .map_err(|e| format!("the scheduled change does not decode: {e}"))?;
    next_epoch(current, change.start_height, &set, &pending)
}

/// The epoch after `current`, from the proven set in force and scheduled change at its last
/// header, for an epoch said to start at `start_height`; or why they do not make one.
pub fn next_epoch(
    current: &KnownEpoch,
    start_height: u64,
    set: &ValidatorSet,
    pending: &PendingSet,
) -> Result<KnownEpoch, String> {
    let known: Vec<KeyBytes> = current.validators.iter().map(PublicKey::to_key_bytes).collect();
    if set.epoch != current.epoch || set.keys != known {
        return Err(format!("the proven set is epoch {}'s, not the known epoch {}'s", set.epoch, current.epoch));
    }
    if pending.activation_height != start_height {
        return Err(format!("the proven change activates at {}, not {start_height}", pending.activation_height));
    }
    let suite = current.validators.first().map(PublicKey::suite);
    let mut sorted = pending.keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if pending.keys.is_empty()
        || sorted.len() != pending.keys.len()
        || pending.keys.iter().map(PublicKey::from_key).any(|k| !k.is_point() || Some(k.suite()) != suite)
    {
        return Err(
            "the proven change is empty, repeats a key, or names a key that is no curve point of the chain's suite"
                .into(),
        );
    }
    let sm = suite == Some(crate::Suite::Sm2Sm3);
    if pending.transports.len() != pending.keys.len() || (sm && pending.transports.iter().any(Option::is_none)) {
        return Err(format!(
            "the proven change carries {} transport entries for {} validator keys, or an SM key without one",
            pending.transports.len(),
            pending.keys.len(),
        ));
    }
    Ok(KnownEpoch {
        epoch: current.epoch + 1,
        start_height,
        validators: pending.keys.iter().map(PublicKey::from_key).collect(),
        transports: pending.transports.clone(),
    })
}

/// The longest state value a proof here carries: a validator set of 256 SM2 keys with their
/// transport keys (about 33 KiB), and then some.
const VALUE_BYTES_MAX: u32 = 64 * 1024;

impl Encode for ProvenValue {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::option(out, &self.value, |out, v| write::bytes(out, v));
        self.proof.encode_to(out);
    }
}

impl Decode for ProvenValue {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProvenValue {
            value: r.option("proven.value", |r| r.byte_vec("proven.value", VALUE_BYTES_MAX))?,
            proof: StateProof::decode_from(r)?,
        })
    }
}

impl Encode for EpochChange {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.epoch);
        write::u64(out, self.start_height);
        self.last_header.encode_to(out);
        self.certificate.encode_to(out);
        self.validators.encode_to(out);
        self.pending.encode_to(out);
    }
}

impl Decode for EpochChange {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EpochChange {
            epoch: r.u64()?,
            start_height: r.u64()?,
            last_header: BlockHeader::decode_from(r)?,
            certificate: Certificate::decode_from(r)?,
            validators: ProvenValue::decode_from(r)?,
            pending: ProvenValue::decode_from(r)?,
        })
    }
}
