//! Shutong's governance system contract: the validator set and its scheduled changes.
//!
//! Rules: only a governance admin (set at genesis) may call `set_validators`; the new set has
//! 1 to 256 distinct keys; at most one change is pending; it takes effect
//! `CHANGE_DELAY_BLOCKS` after the block that schedules it, when the node moves it into the
//! current set (`shutong_system_api::governance`). `get_validators` returns the current set
//! and the pending change. Event: `validators.scheduled` with the activation height (decimal).
//! `approve_code` (admins only) approves a code hash for upload under the `governance`
//! upload policy (`shutong_system_api::lifecycle`); event `code.approved` with the hash (hex).
//! Until issue 5's committee with threshold policies, the admins act alone.

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::{self as contract, Error, MethodResult};
use shutong_system_api::governance::{
    approved_code_key, Admins, ApproveCode, PendingSet, SetValidators, ValidatorSet, Validators, ADMINS_KEY,
    CHANGE_DELAY_BLOCKS, PENDING_KEY, VALIDATORS_KEY,
};

contract::entrypoints!(set_validators, get_validators, approve_code);

fn load<T: Decode>(key: &[u8], what: &str) -> Result<Option<T>, Error> {
    match contract::storage_get(key) {
        Some(bytes) => Ok(Some(T::decode(&bytes).map_err(|e| Error(format!("stored {} is corrupt: {}", what, e)))?)),
        None => Ok(None),
    }
}

/// The caller, if it is a governance admin.
fn admin_caller(refusal: &str) -> Result<[u8; 32], Error> {
    let admins: Admins = load(ADMINS_KEY, "admins")?.ok_or_else(|| Error::new("governance has no admins"))?;
    let caller = contract::caller();
    if !admins.accounts.contains(&caller) {
        return Err(Error::new(refusal));
    }
    Ok(caller)
}

pub fn approve_code(args: &[u8]) -> MethodResult {
    let req = ApproveCode::decode(args)?;
    let caller = admin_caller("only a governance admin may approve code")?;
    let key = approved_code_key(&req.code_hash);
    if contract::storage_get(&key).is_some() {
        return Err(Error::new("this code hash is already approved"));
    }
    contract::storage_set(&key, &caller);
    let hex: String = req.code_hash.iter().map(|b| format!("{:02x}", b)).collect();
    contract::emit_event("code.approved", hex.as_bytes());
    Ok(Vec::new())
}

pub fn set_validators(args: &[u8]) -> MethodResult {
    let req = SetValidators::decode(args)?;
    let caller = admin_caller("only a governance admin may change the validator set")?;
    if req.keys.is_empty() {
        return Err(Error::new("the validator set cannot be empty"));
    }
    let mut sorted = req.keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != req.keys.len() {
        return Err(Error::new("a validator key appears twice"));
    }
    if contract::storage_get(PENDING_KEY).is_some() {
        return Err(Error::new("a validator-set change is already pending"));
    }
    let current: ValidatorSet =
        load(VALIDATORS_KEY, "validator set")?.ok_or_else(|| Error::new("governance has no validator set"))?;
    if current.keys == req.keys {
        return Err(Error::new("the new validator set is the current one"));
    }
    let activation_height = contract::block_height() + CHANGE_DELAY_BLOCKS;
    let pending = PendingSet { activation_height, keys: req.keys, proposer: caller };
    contract::storage_set(PENDING_KEY, &pending.encode());
    contract::emit_event("validators.scheduled", activation_height.to_string().as_bytes());
    Ok(Vec::new())
}

pub fn get_validators(_args: &[u8]) -> MethodResult {
    let current: ValidatorSet =
        load(VALIDATORS_KEY, "validator set")?.ok_or_else(|| Error::new("governance has no validator set"))?;
    let pending: Option<PendingSet> = load(PENDING_KEY, "pending change")?;
    Ok(Validators { current, pending }.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_contract::testing;

    fn setup() {
        contract::storage_set(ADMINS_KEY, &Admins { accounts: vec![[1; 32]] }.encode());
        let set = ValidatorSet { epoch: 0, since_height: 0, keys: vec![[10; 32], [11; 32]] };
        contract::storage_set(VALIDATORS_KEY, &set.encode());
    }

    fn args(keys: &[[u8; 32]]) -> Vec<u8> {
        SetValidators { keys: keys.to_vec() }.encode()
    }

    #[test]
    fn an_admin_schedules_a_change_after_the_delay() {
        testing::set_context([1; 32], 5);
        setup();
        set_validators(&args(&[[10; 32]])).unwrap();
        let got = Validators::decode(&get_validators(&[]).unwrap()).unwrap();
        let pending = got.pending.unwrap();
        assert_eq!(pending.activation_height, 5 + CHANGE_DELAY_BLOCKS);
        assert_eq!(pending.keys, vec![[10; 32]]);
        assert_eq!(got.current.keys, vec![[10; 32], [11; 32]]);
        let height = (5 + CHANGE_DELAY_BLOCKS).to_string().into_bytes();
        assert_eq!(testing::take_events(), vec![("validators.scheduled".to_string(), height)]);
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        testing::set_context([2; 32], 5);
        setup();
        assert_eq!(
            set_validators(&args(&[[10; 32]])),
            Err(Error::new("only a governance admin may change the validator set"))
        );
        testing::set_context([1; 32], 5);
        assert_eq!(set_validators(&args(&[])), Err(Error::new("the validator set cannot be empty")));
        assert_eq!(set_validators(&args(&[[9; 32], [9; 32]])), Err(Error::new("a validator key appears twice")));
        assert_eq!(
            set_validators(&args(&[[10; 32], [11; 32]])),
            Err(Error::new("the new validator set is the current one"))
        );
        set_validators(&args(&[[10; 32]])).unwrap();
        assert_eq!(set_validators(&args(&[[11; 32]])), Err(Error::new("a validator-set change is already pending")));
    }

    #[test]
    fn only_an_admin_approves_code_and_only_once() {
        testing::set_context([2; 32], 5);
        setup();
        let req = ApproveCode { code_hash: [7; 32] }.encode();
        assert_eq!(approve_code(&req), Err(Error::new("only a governance admin may approve code")));
        testing::set_context([1; 32], 5);
        approve_code(&req).unwrap();
        assert_eq!(contract::storage_get(&approved_code_key(&[7; 32])), Some(vec![1; 32]));
        assert_eq!(approve_code(&req), Err(Error::new("this code hash is already approved")));
        let events = testing::take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "code.approved");
    }
}
