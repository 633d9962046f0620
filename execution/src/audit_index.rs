//! Indexes of the audit log for auditors' questions: by resource, grant, organisation,
//! principal and purpose, each in time order, and every leaf by time.
//!
//! The indexes are the node's own (not committed state): an answer's items are each proven
//! by the leaf's inclusion in a certified log, and an entry carries every field it is indexed
//! by, so a client checks that each item matches the question. Index keys end with the
//! leaf's consensus time and index, both 8 bytes big-endian, so a prefix scan from a time
//! lists leaves in order; the value is empty.

use shutong_system_api::audit::Selector;
use shutong_types::Decode;
use shutong_types::keyspace::{self, AuditLeaf};
use shutong_vm::state::Writes;

/// What a query selects by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    Resource(String),
    Grant(u64),
    /// Leaves where the organisation is the provider or the consumer.
    Org(String),
    Principal([u8; 32]),
    Purpose(String),
    /// Every leaf.
    Time,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByError {
    #[error("unknown selector {0:?}: use resource, grant, org, principal, purpose or time")]
    Unknown(String),
    #[error("{0:?} is not a grant number")]
    Grant(String),
    #[error("{0:?} is not a principal's account (64 hex digits)")]
    Principal(String),
    #[error("a {what} of {len} bytes is longer than 256")]
    TooLong { what: &'static str, len: usize },
}

impl By {
    pub fn parse(by: &str, value: &str) -> Result<By, ByError> {
        let text = |what: &'static str| {
            if value.len() > 256 { Err(ByError::TooLong { what, len: value.len() }) } else { Ok(value.to_string()) }
        };
        match by {
            "resource" => Ok(By::Resource(text("resource")?)),
            "grant" => value.parse().map(By::Grant).map_err(|_| ByError::Grant(value.into())),
            "org" => Ok(By::Org(text("organisation")?)),
            "principal" => {
                let bytes = hex::decode(value).map_err(|_| ByError::Principal(value.into()))?;
                bytes.try_into().map(By::Principal).map_err(|_| ByError::Principal(value.into()))
            }
            "purpose" => Ok(By::Purpose(text("purpose")?)),
            "time" => Ok(By::Time),
            other => Err(ByError::Unknown(other.into())),
        }
    }

    /// The key prefix of this selection.
    fn prefix(&self) -> Vec<u8> {
        fn text(tag: u8, s: &str) -> Vec<u8> {
            let mut out = vec![tag];
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
            out
        }
        match self {
            By::Resource(r) => text(b'R', r),
            By::Grant(g) => {
                let mut out = vec![b'G'];
                out.extend_from_slice(&g.to_be_bytes());
                out
            }
            By::Org(o) => text(b'O', o),
            By::Principal(p) => {
                let mut out = vec![b'P'];
                out.extend_from_slice(p);
                out
            }
            By::Purpose(p) => text(b'U', p),
            By::Time => vec![b'T'],
        }
    }
}

fn key(prefix: Vec<u8>, time_ms: u64, index: u64) -> Vec<u8> {
    let mut key = prefix;
    key.extend_from_slice(&time_ms.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The index keys of the leaves a block appended.
pub fn keys_for(writes: &Writes) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let start = vec![keyspace::AUDIT_LEAF];
    let end = vec![keyspace::AUDIT_LEAF + 1];
    for (k, value) in writes.range(start..end) {
        let (Some(bytes), Ok(index)) = (value, <[u8; 8]>::try_from(&k[1..])) else { continue };
        let index = u64::from_be_bytes(index);
        let Ok(leaf) = AuditLeaf::decode(bytes) else { continue };
        let time = leaf.time_ms;
        keys.push(key(By::Time.prefix(), time, index));
        let Some(entry) = shutong_api::audit_query::entry_of(&leaf) else { continue };
        if entry.grant != 0 {
            keys.push(key(By::Grant(entry.grant).prefix(), time, index));
        }
        // Exactly the selectors the entry is numbered under (a purpose with its ancestors),
        // so each index lists one numbered sequence, in order.
        for selector in entry.selectors() {
            let by = match selector {
                Selector::Resource(r) => By::Resource(r),
                Selector::Org(o) => By::Org(o),
                Selector::Principal(p) => By::Principal(p),
                Selector::Purpose(p) => By::Purpose(p),
            };
            keys.push(key(by.prefix(), time, index));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Where a scan starts and stops: the selection's keys from `from_ms` (or just after the
/// cursor) up to and including `to_ms`.
pub fn range(by: &By, from_ms: u64, to_ms: u64, cursor: Option<(u64, u64)>) -> (Vec<u8>, Vec<u8>) {
    let prefix = by.prefix();
    let start = match cursor {
        Some((time, index)) => key(prefix.clone(), time, index.saturating_add(1)),
        None => key(prefix.clone(), from_ms, 0),
    };
    let end = key(prefix, to_ms, u64::MAX);
    (start, end)
}

/// The key just below which the last leaf before `from_ms` lies, and the prefix it must have.
pub fn before(by: &By, from_ms: u64) -> (Vec<u8>, Vec<u8>) {
    let prefix = by.prefix();
    (key(prefix.clone(), from_ms, 0), prefix)
}

/// Where the scan for the first leaf after `to_ms` starts and stops.
pub fn after(by: &By, to_ms: u64) -> Option<(Vec<u8>, Vec<u8>)> {
    let prefix = by.prefix();
    let from = to_ms.checked_add(1)?;
    Some((key(prefix.clone(), from, 0), key(prefix, u64::MAX, u64::MAX)))
}

/// The (time, leaf index) an index key ends with.
pub fn position(key: &[u8]) -> Option<(u64, u64)> {
    let tail = key.len().checked_sub(16).map(|at| &key[at..])?;
    let time = u64::from_be_bytes(tail[..8].try_into().ok()?);
    let index = u64::from_be_bytes(tail[8..].try_into().ok()?);
    Some((time, index))
}
