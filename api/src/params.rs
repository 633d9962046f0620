//! Every JSON-RPC method's parameters, parsed from their JSON text with bounds and errors
//! that name the parameter. The node's handlers parse with [`parse`] and nothing else, so
//! one function decides what a client's parameters mean, and the `rpc_params` fuzz target
//! drives it with arbitrary text (`docs/security.md`).

use crate::rpc::{AuditQuery, method};
use serde_json::Value;
use shutong_types::limits::{ARGS_BYTES_MAX, METHOD_BYTES_MAX, TX_BYTES_MAX};
use shutong_types::{AccountId, Address, Hash};

/// The longest state key a proof is asked for.
pub const PROOF_KEY_BYTES_MAX: usize = 64 * 1024;
/// The most items in one page of an audit query.
pub const AUDIT_PAGE_MAX: u32 = 100;
/// The longest event-topic prefix a subscription filters by.
pub const TOPIC_PREFIX_BYTES_MAX: usize = 64;

/// Why parameters were refused; the node answers it as INVALID_PARAMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

fn bad<T>(message: impl Into<String>) -> Result<T, ParamError> {
    Err(ParamError(message.into()))
}

/// A method with its parameters, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status,
    /// The transaction's bytes, at most twice the size limit (so that an oversized one gets
    /// its own, precise refusal from admission).
    SubmitTx {
        tx: Vec<u8>,
    },
    GetReceipt {
        tx_id: Hash,
    },
    GetBlock {
        height: u64,
    },
    GetNonce {
        account: AccountId,
    },
    Query {
        contract: Address,
        method: String,
        args: Vec<u8>,
    },
    GetCode {
        code_hash: Hash,
    },
    GetContract {
        address: Address,
    },
    GetHeader {
        height: u64,
    },
    GetFinalized,
    GetEpoch {
        epoch: u64,
    },
    GetStateProof {
        key: Vec<u8>,
        height: Option<u64>,
    },
    GetAuditProof {
        index: u64,
        height: Option<u64>,
    },
    GetConsistencyProof {
        from_size: u64,
        height: Option<u64>,
    },
    /// The query, its period and page size checked, with its cursor decoded as (time, index).
    AuditQuery {
        query: AuditQuery,
        cursor: Option<(u64, u64)>,
    },
    SubscribeBlocks,
    SubscribeEvents {
        prefix: String,
    },
}

/// The positional parameters: absent, or a JSON array of `min..=max` values.
fn positional(name: &str, params: Option<&str>, min: usize, max: usize) -> Result<Vec<Value>, ParamError> {
    let values = match params.map(str::trim) {
        None | Some("") => Vec::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(values)) => values,
            Ok(_) => return bad(format!("{name} takes its parameters as a JSON array")),
            Err(e) => return bad(format!("{name}: the parameters are not JSON: {e}")),
        },
    };
    if values.len() < min || values.len() > max {
        let wanted = if min == max { min.to_string() } else { format!("{min} to {max}") };
        return bad(format!("{name} takes {wanted} parameters, not {}", values.len()));
    }
    Ok(values)
}

fn text<'a>(value: &'a Value, what: &str) -> Result<&'a str, ParamError> {
    value.as_str().ok_or_else(|| ParamError(format!("{what} must be a string")))
}

fn number(value: &Value, what: &str) -> Result<u64, ParamError> {
    value.as_u64().ok_or_else(|| ParamError(format!("{what} must be a whole number from 0 to 2^64 - 1")))
}

fn optional_number(value: Option<&Value>, what: &str) -> Result<Option<u64>, ParamError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => number(value, what).map(Some),
    }
}

/// Hex (an optional `0x` prefix), at most `max_bytes` bytes.
pub fn hex_bytes(what: &str, text: &str, max_bytes: usize) -> Result<Vec<u8>, ParamError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() > 2 * max_bytes {
        return bad(format!("{what} is {} hex digits, above the maximum {}", text.len(), 2 * max_bytes));
    }
    hex::decode(text).map_err(|e| ParamError(format!("{what} is not hex: {e}")))
}

fn typed<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, ParamError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| ParamError(format!("{what}: {e}")))
}

/// An audit-query cursor: 16 bytes of hex, a leaf's time and index.
pub fn cursor(text: &str) -> Result<(u64, u64), ParamError> {
    let bytes = hex_bytes("cursor", text, 16)?;
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| ParamError("a cursor is 16 bytes".into()))?;
    let (time, index) = bytes.split_at(8);
    let be = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("eight bytes"));
    Ok((be(time), be(index)))
}

/// Parses the parameters of `name` from their JSON text (`None` when the request has none).
pub fn parse(name: &str, params: Option<&str>) -> Result<Request, ParamError> {
    let p = |min, max| positional(name, params, min, max);
    Ok(match name {
        method::STATUS => p(0, 0).map(|_| Request::Status)?,
        method::GET_FINALIZED => p(0, 0).map(|_| Request::GetFinalized)?,
        method::SUBSCRIBE_BLOCKS => p(0, 0).map(|_| Request::SubscribeBlocks)?,
        method::SUBMIT_TX => {
            let v = p(1, 1)?;
            Request::SubmitTx { tx: hex_bytes("transaction", text(&v[0], "transaction")?, 2 * TX_BYTES_MAX)? }
        }
        method::GET_RECEIPT => {
            let v = p(1, 1)?;
            Request::GetReceipt { tx_id: typed("transaction id", text(&v[0], "transaction id")?)? }
        }
        method::GET_BLOCK => Request::GetBlock { height: number(&p(1, 1)?[0], "height")? },
        method::GET_HEADER => Request::GetHeader { height: number(&p(1, 1)?[0], "height")? },
        method::GET_NONCE => {
            let v = p(1, 1)?;
            Request::GetNonce { account: typed("account", text(&v[0], "account")?)? }
        }
        method::QUERY => {
            let v = p(3, 3)?;
            let contract = typed("contract", text(&v[0], "contract")?)?;
            let method_name = text(&v[1], "method")?;
            if method_name.len() > METHOD_BYTES_MAX as usize {
                return bad(format!("method name is above {METHOD_BYTES_MAX} bytes"));
            }
            let args = hex_bytes("args", text(&v[2], "args")?, ARGS_BYTES_MAX as usize)?;
            Request::Query { contract, method: method_name.to_string(), args }
        }
        method::GET_CODE => {
            let v = p(1, 1)?;
            Request::GetCode { code_hash: typed("code hash", text(&v[0], "code hash")?)? }
        }
        method::GET_CONTRACT => {
            let v = p(1, 1)?;
            Request::GetContract { address: typed("contract", text(&v[0], "contract")?)? }
        }
        method::GET_EPOCH => {
            let epoch = number(&p(1, 1)?[0], "epoch")?;
            if epoch == 0 {
                return bad("epoch 0 is the genesis validators: read them from the genesis file");
            }
            Request::GetEpoch { epoch }
        }
        method::GET_STATE_PROOF => {
            let v = p(1, 2)?;
            let key = hex_bytes("key", text(&v[0], "key")?, PROOF_KEY_BYTES_MAX)?;
            Request::GetStateProof { key, height: optional_number(v.get(1), "height")? }
        }
        method::GET_AUDIT_PROOF => {
            let v = p(1, 2)?;
            Request::GetAuditProof { index: number(&v[0], "index")?, height: optional_number(v.get(1), "height")? }
        }
        method::GET_CONSISTENCY_PROOF => {
            let v = p(1, 2)?;
            Request::GetConsistencyProof {
                from_size: number(&v[0], "from_size")?,
                height: optional_number(v.get(1), "height")?,
            }
        }
        method::AUDIT_QUERY => {
            let mut v = p(1, 1)?;
            let query: AuditQuery = serde_json::from_value(v.remove(0))
                .map_err(|e| ParamError(format!("the audit query is not one: {e}")))?;
            if query.to_ms < query.from_ms {
                return bad(format!("the period ends at {} before it starts at {}", query.to_ms, query.from_ms));
            }
            let limit = query.limit.unwrap_or(AUDIT_PAGE_MAX);
            if limit == 0 || limit > AUDIT_PAGE_MAX {
                return bad(format!("a page holds 1 to {AUDIT_PAGE_MAX} items"));
            }
            let cursor = query.cursor.as_deref().map(cursor).transpose()?;
            Request::AuditQuery { query, cursor }
        }
        method::SUBSCRIBE_EVENTS => {
            let v = p(1, 1)?;
            let prefix = text(&v[0], "topic prefix")?;
            if prefix.len() > TOPIC_PREFIX_BYTES_MAX {
                return bad(format!("a topic prefix has at most {TOPIC_PREFIX_BYTES_MAX} bytes"));
            }
            Request::SubscribeEvents { prefix: prefix.to_string() }
        }
        other => return bad(format!("no method {other:?} takes parameters here")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_method_parses_its_parameters() {
        let hash = Hash([7; 32]).to_hex();
        assert_eq!(parse(method::STATUS, None).unwrap(), Request::Status);
        assert_eq!(parse(method::STATUS, Some("[]")).unwrap(), Request::Status);
        assert_eq!(parse(method::GET_BLOCK, Some("[5]")).unwrap(), Request::GetBlock { height: 5 });
        assert_eq!(
            parse(method::GET_RECEIPT, Some(&format!("[\"{hash}\"]"))).unwrap(),
            Request::GetReceipt { tx_id: Hash([7; 32]) }
        );
        assert_eq!(
            parse(method::GET_STATE_PROOF, Some("[\"0xab\", null]")).unwrap(),
            Request::GetStateProof { key: vec![0xab], height: None }
        );
        assert_eq!(
            parse(method::GET_AUDIT_PROOF, Some("[3, 9]")).unwrap(),
            Request::GetAuditProof { index: 3, height: Some(9) }
        );
        let query = r#"[{"by":"grant","value":"1","from_ms":0,"to_ms":5,"log_tx":"HASH","cursor":"00000000000000010000000000000002"}]"#;
        match parse(method::AUDIT_QUERY, Some(&query.replace("HASH", &hash))).unwrap() {
            Request::AuditQuery { cursor, .. } => assert_eq!(cursor, Some((1, 2))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_parameters_are_refused_with_what_is_wrong() {
        let cases = [
            (method::GET_BLOCK, "{\"height\": 1}", "JSON array"),
            (method::GET_BLOCK, "[1, 2]", "takes 1 parameters, not 2"),
            (method::GET_BLOCK, "[-1]", "whole number"),
            (method::GET_BLOCK, "[1.5]", "whole number"),
            (method::GET_BLOCK, "[\"1\"]", "whole number"),
            (method::GET_BLOCK, "[1", "not JSON"),
            (method::GET_NONCE, "[\"xyz\"]", "account"),
            (method::SUBMIT_TX, "[\"0xzz\"]", "not hex"),
            (method::QUERY, "[\"00\", \"m\", \"\"]", "contract"),
            (method::GET_EPOCH, "[0]", "genesis"),
            (method::SUBSCRIBE_EVENTS, "[7]", "must be a string"),
            (method::AUDIT_QUERY, "[{\"by\": 1}]", "not one"),
            (method::STATUS, "[1]", "takes 0 parameters"),
        ];
        for (name, params, expected) in cases {
            let err = parse(name, Some(params)).unwrap_err();
            assert!(err.0.contains(expected), "{name} {params}: {err}");
        }
        let long = format!("[\"{}\"]", "ab".repeat(2 * TX_BYTES_MAX + 1));
        assert!(parse(method::SUBMIT_TX, Some(&long)).unwrap_err().0.contains("above the maximum"));
        let wide = format!("[\"{}\"]", "x".repeat(TOPIC_PREFIX_BYTES_MAX + 1));
        assert!(parse(method::SUBSCRIBE_EVENTS, Some(&wide)).unwrap_err().0.contains("at most 64 bytes"));
    }
}
