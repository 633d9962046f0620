//! Which validators validate which height: read from the governance system contract's
//! storage, so every node derives the same answer from the same state.
//!
//! The contract keeps the current set and at most one pending change
//! (`shutong_system_api::governance`). Before executing the block at a pending change's
//! activation height, the executor moves it into the current set with the next epoch number
//! ([`begin_block`]); [`validators_for`] gives the same answer from the state after the
//! parent, which is what a node needs before that block exists. Each epoch's set is also
//! kept under its number (`epoch_set_key`), for evidence against a validator of a past
//! epoch. A key enters a set only with its holder's proof of possession, which the contract
//! checks; a pending set with a key that is not an ed25519 public key would still be
//! dropped at activation (a second line, the same on every node).

use shutong_codec::{Decode, Encode};
use shutong_system_api::KeyBytes;
use shutong_system_api::governance::{
    CHAIN_ID_KEY, COMMITTEE_KEY, Committee, PENDING_KEY, PendingSet, TransportKey, VALIDATORS_KEY, ValidatorSet,
    epoch_set_key,
};
use shutong_system_api::names;
use shutong_types::keyspace;
use shutong_types::transport::Member;
use shutong_types::{Address, PublicKey};
use shutong_vm::state::{Overlay, StateReader, Writes};

/// The set that validates one height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    pub epoch: u64,
    pub validators: Vec<PublicKey>,
    /// The validators' bound transport keys, an entry each in the same order (a key without
    /// one is its own transport key; every SM2 key has one).
    pub transports: Vec<Option<TransportKey>>,
}

impl Epoch {
    /// The validators as the network sees them ([`Member`]).
    pub fn members(&self) -> Vec<Member> {
        Member::of_set(&self.validators, &self.transports)
    }
}

pub fn governance() -> Address {
    Address::system(names::GOVERNANCE)
}

fn key(name: &[u8]) -> Vec<u8> {
    keyspace::contract_storage(&governance(), name)
}

/// The state key of the validator set in force.
pub fn validators_key() -> Vec<u8> {
    key(VALIDATORS_KEY)
}

/// The state key of the scheduled validator-set change.
pub fn pending_key() -> Vec<u8> {
    key(PENDING_KEY)
}

/// The epoch a block's writes start, and its first height, if they install a new set.
pub fn started(writes: &Writes) -> Option<(u64, u64)> {
    let bytes = writes.get(&validators_key())?.as_ref()?;
    let set = ValidatorSet::decode(bytes).ok()?;
    Some((set.epoch, set.since_height))
}

fn valid(keys: &[KeyBytes]) -> bool {
    !keys.is_empty() && keys.iter().all(|k| PublicKey::from_key(k).is_point())
}

fn read<T: Decode>(state: &dyn Fn(&[u8]) -> Option<Vec<u8>>, name: &[u8]) -> Option<T> {
    state(&key(name)).map(|bytes| T::decode(&bytes).expect("stored governance record decodes"))
}

/// The set that validates `height`, from the state after `height - 1`; `None` if the state
/// has no governance contract.
pub fn validators_for(state: &dyn StateReader, height: u64) -> Option<Epoch> {
    let get = |k: &[u8]| state.get(k);
    let current: ValidatorSet = read(&get, VALIDATORS_KEY)?;
    let pending: Option<PendingSet> = read(&get, PENDING_KEY);
    let (epoch, keys, transports) = match pending {
        Some(p) if p.activation_height <= height && valid(&p.keys) => (current.epoch + 1, p.keys, p.transports),
        _ => (current.epoch, current.keys, current.transports),
    };
    Some(Epoch { epoch, validators: keys.iter().map(PublicKey::from_key).collect(), transports })
}

/// The validators a scheduled change adds to the set in force, or whose transport key it
/// changes (none if no change is pending).
pub fn joining(state: &dyn StateReader) -> Vec<Member> {
    let get = |k: &[u8]| state.get(k);
    let (Some(current), Some(pending)) =
        (read::<ValidatorSet>(&get, VALIDATORS_KEY), read::<PendingSet>(&get, PENDING_KEY))
    else {
        return Vec::new();
    };
    let now = Member::of_set(&current.keys.iter().map(PublicKey::from_key).collect::<Vec<_>>(), &current.transports);
    let next = Member::of_set(&pending.keys.iter().map(PublicKey::from_key).collect::<Vec<_>>(), &pending.transports);
    next.into_iter().filter(|m| !now.contains(m)).collect()
}

/// Applies a pending change whose activation height has come, before the block at `height`
/// executes.
pub fn begin_block(overlay: &mut Overlay, height: u64) {
    let get = |k: &[u8]| overlay.get(k);
    let Some(pending) = read::<PendingSet>(&get, PENDING_KEY) else { return };
    if pending.activation_height > height {
        return;
    }
    let current: Option<ValidatorSet> = read(&get, VALIDATORS_KEY);
    overlay.remove(key(PENDING_KEY));
    if let Some(current) = current
        && valid(&pending.keys)
    {
        let next = ValidatorSet {
            epoch: current.epoch + 1,
            since_height: height,
            keys: pending.keys,
            transports: pending.transports,
        };
        overlay.set(key(&epoch_set_key(next.epoch)), next.encode());
        overlay.set(key(VALIDATORS_KEY), next.encode());
    }
}

/// The state key of the governance committee.
pub fn committee_key() -> Vec<u8> {
    key(COMMITTEE_KEY)
}

/// The governance contract's storage at genesis: the chain id, its committee and the first
/// validator set (also as epoch 0's), with its transport keys (an entry per validator).
pub fn genesis_state(
    writes: &mut Writes,
    chain_id: &str,
    committee: &Committee,
    validators: &[PublicKey],
    transports: Vec<Option<TransportKey>>,
) {
    writes.insert(key(CHAIN_ID_KEY), Some(chain_id.as_bytes().to_vec()));
    writes.insert(key(COMMITTEE_KEY), Some(committee.encode()));
    let keys = validators.iter().map(PublicKey::to_key_bytes).collect();
    let set = ValidatorSet { epoch: 0, since_height: 0, keys, transports };
    writes.insert(key(&epoch_set_key(0)), Some(set.encode()));
    writes.insert(key(VALIDATORS_KEY), Some(set.encode()));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_types::Keypair;
    use shutong_vm::state::MemoryState;
    use std::sync::Arc;

    fn keys(n: usize) -> Vec<PublicKey> {
        (0..n).map(|i| Keypair::from_seed(&format!("epoch-{i}")).public()).collect()
    }

    /// Genesis governance state with `pending` scheduled to take effect at height 15.
    fn state(pending: Option<Vec<KeyBytes>>) -> MemoryState {
        let mut writes = Writes::new();
        let committee = Committee {
            seats: vec![shutong_system_api::governance::Seat { account: [1; 32], org: "office".into() }],
            threshold: 1,
        };
        genesis_state(&mut writes, "epochs-test", &committee, &keys(4), Vec::new());
        if let Some(keys) = pending {
            let p = PendingSet { activation_height: 15, keys, transports: Vec::new(), proposer: [1; 32] };
            writes.insert(key(PENDING_KEY), Some(p.encode()));
        }
        MemoryState(writes.into_iter().map(|(k, v)| (k, v.unwrap())).collect())
    }

    #[test]
    fn a_change_applies_from_its_activation_height_and_begin_block_agrees() {
        let new: Vec<KeyBytes> = keys(3).iter().map(PublicKey::to_key_bytes).collect();
        let state = state(Some(new.clone()));
        assert_eq!(
            validators_for(&state, 14).unwrap(),
            Epoch { epoch: 0, validators: keys(4), transports: Vec::new() }
        );
        assert_eq!(
            validators_for(&state, 15).unwrap(),
            Epoch { epoch: 1, validators: keys(3), transports: Vec::new() }
        );

        let base: Arc<dyn StateReader> = Arc::new(state);
        let mut before = Overlay::new(Arc::clone(&base));
        begin_block(&mut before, 14);
        assert!(before.writes().is_empty(), "nothing changes before the activation height");
        let mut at = Overlay::new(Arc::clone(&base));
        begin_block(&mut at, 15);
        let after = MemoryState(at.into_writes().into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect());
        // What begin_block wrote is what validators_for predicted, with no change pending.
        let current: ValidatorSet = ValidatorSet::decode(&after.get(&key(VALIDATORS_KEY)).unwrap()).unwrap();
        assert_eq!(current, ValidatorSet { epoch: 1, since_height: 15, keys: new, transports: Vec::new() });
        // Kept under its epoch too, next to epoch 0's, for evidence of either epoch.
        let kept = ValidatorSet::decode(&after.get(&key(&epoch_set_key(1))).unwrap()).unwrap();
        assert_eq!(kept, current);
        assert_eq!(ValidatorSet::decode(&base.get(&key(&epoch_set_key(0))).unwrap()).unwrap().keys.len(), 4);
    }

    #[test]
    fn a_set_with_a_key_that_is_not_a_curve_point_is_dropped_at_activation() {
        // About half of all y-coordinates are on no curve point; take the first.
        let bad = (2u8..)
            .map(|b| {
                let mut key = [0u8; 32];
                key[0] = b;
                key
            })
            .find(|k| !PublicKey::Ed25519(*k).is_point())
            .unwrap();
        let state = state(Some(vec![keys(1)[0].to_key_bytes(), KeyBytes::ed25519(bad)]));
        assert_eq!(validators_for(&state, 15).unwrap().epoch, 0);
        let mut overlay = Overlay::new(Arc::new(state));
        begin_block(&mut overlay, 15);
        assert_eq!(overlay.writes().get(&key(PENDING_KEY)), Some(&None), "the pending change is removed");
        assert!(!overlay.writes().contains_key(&key(VALIDATORS_KEY)), "the set in force stays");
    }
}
