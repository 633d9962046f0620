//! RPC parameters, as any client may send them: for every method, the JSON text of its
//! parameters is parsed by the one parser the node's handlers use. It must answer with a
//! request or a reason, never panic, and whatever it accepts is within the method's bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_api::params::{self, AUDIT_PAGE_MAX, PROOF_KEY_BYTES_MAX, Request, TOPIC_PREFIX_BYTES_MAX};
use shutong_api::rpc::method;
use shutong_types::limits::{ARGS_BYTES_MAX, METHOD_BYTES_MAX, TX_BYTES_MAX};

const METHODS: [&str; 18] = [
    method::STATUS,
    method::SUBMIT_TX,
    method::GET_RECEIPT,
    method::GET_BLOCK,
    method::GET_NONCE,
    method::QUERY,
    method::GET_CODE,
    method::GET_CONTRACT,
    method::GET_HEADER,
    method::GET_FINALIZED,
    method::GET_EPOCH,
    method::GET_STATE_PROOF,
    method::GET_AUDIT_PROOF,
    method::GET_CONSISTENCY_PROOF,
    method::AUDIT_QUERY,
    method::SUBSCRIBE_BLOCKS,
    method::SUBSCRIBE_EVENTS,
    "shutong_noSuchMethod",
];

fuzz_target!(|data: &[u8]| {
    // The first byte picks the method; the rest is the parameters' text.
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let name = METHODS[usize::from(which) % METHODS.len()];
    match params::parse(name, Some(text)) {
        Ok(Request::SubmitTx { tx }) => assert!(tx.len() <= 2 * TX_BYTES_MAX),
        Ok(Request::Query { method, args, .. }) => {
            assert!(method.len() <= METHOD_BYTES_MAX as usize && args.len() <= ARGS_BYTES_MAX as usize)
        }
        Ok(Request::GetStateProof { key, .. }) => assert!(key.len() <= PROOF_KEY_BYTES_MAX),
        Ok(Request::GetEpoch { epoch }) => assert!(epoch > 0),
        Ok(Request::AuditQuery { query, .. }) => {
            assert!(query.from_ms <= query.to_ms);
            assert!((1..=AUDIT_PAGE_MAX).contains(&query.limit.unwrap_or(AUDIT_PAGE_MAX)));
        }
        Ok(Request::SubscribeEvents { prefix }) => assert!(prefix.len() <= TOPIC_PREFIX_BYTES_MAX),
        Ok(_) => {}
        Err(err) => assert!(!err.0.is_empty(), "a refusal without a reason"),
    }
});
