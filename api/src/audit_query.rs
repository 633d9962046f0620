//! The auditors' questions, as node and client both read them: which audit leaves answer a
//! question, and which numbered sequence a complete answer walks (ADR 010). The node answers
//! with these, and the light client checks the answer with the same functions.

use crate::rpc::AuditQuery;
use shutong_system_api::audit::{AuditEntry, Selector, selector_count_key};
use shutong_types::keyspace::AuditLeaf;

/// The entry in an audit leaf, if a system contract that writes entries appended it.
pub fn entry_of(leaf: &AuditLeaf) -> Option<AuditEntry> {
    use shutong_system_api::names;
    let writers = [shutong_types::Address::system(names::AUTHZ), shutong_types::Address::system(names::AUDIT)];
    if !writers.contains(&leaf.contract) {
        return None;
    }
    AuditEntry::from_leaf(&leaf.data)
}

/// Why a leaf does not answer `query` (by, value and period), if it does not.
pub fn off_query(query: &AuditQuery, leaf: &AuditLeaf) -> Option<String> {
    if leaf.time_ms < query.from_ms || leaf.time_ms > query.to_ms {
        return Some(format!("its time {} is outside {}..={}", leaf.time_ms, query.from_ms, query.to_ms));
    }
    if query.by == "time" {
        return None;
    }
    let Some(entry) = entry_of(leaf) else { return Some("it is no authorisation or access entry".into()) };
    let v = query.value.as_str();
    let matches = match walk_of(query) {
        Ok(Walk::Grant(grant)) => entry.grant == grant,
        Ok(Walk::Selector(selector)) => entry.selectors().contains(&selector),
        Ok(Walk::Time) => true,
        Err(reason) => return Some(reason),
    };
    (!matches).then(|| format!("its {} is not {v:?}", query.by))
}

/// The numbered sequence an answer to a question walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    /// Every leaf of the log, numbered by its index.
    Time,
    /// A grant's entries, numbered by `grant_seq`.
    Grant(u64),
    /// A selector's entries, numbered by `AuditEntry::seq_of`.
    Selector(Selector),
}

/// The sequence `query` walks, or why it names none.
pub fn walk_of(query: &AuditQuery) -> Result<Walk, String> {
    let v = query.value.as_str();
    Ok(match query.by.as_str() {
        "time" => Walk::Time,
        "grant" => Walk::Grant(v.parse().map_err(|_| format!("{v:?} is not a grant number"))?),
        "resource" => Walk::Selector(Selector::Resource(v.to_string())),
        "org" => Walk::Selector(Selector::Org(v.to_string())),
        "principal" => {
            let bytes = hex::decode(v).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            Walk::Selector(Selector::Principal(bytes.ok_or_else(|| format!("{v:?} is not a principal's account"))?))
        }
        "purpose" => Walk::Selector(Selector::Purpose(v.to_string())),
        other => return Err(format!("unknown selector {other:?}")),
    })
}

impl Walk {
    /// The state key of this sequence's entry count (none for `time`: the header's log size).
    pub fn count_key(&self) -> Option<Vec<u8>> {
        let authz = shutong_types::Address::system(shutong_system_api::names::AUTHZ);
        match self {
            Walk::Time => None,
            Walk::Grant(grant) => Some(grant_log_key(*grant)),
            Walk::Selector(s) => Some(shutong_types::keyspace::contract_storage(&authz, &selector_count_key(s))),
        }
    }

    /// The number in this sequence of leaf `index`, whose entry is `entry`, if it is in it.
    pub fn position(&self, index: u64, entry: Option<&AuditEntry>) -> Option<u64> {
        match (self, entry) {
            (Walk::Time, _) => Some(index),
            (Walk::Grant(grant), Some(entry)) if entry.grant == *grant => Some(entry.grant_seq),
            (Walk::Selector(selector), Some(entry)) => entry.seq_of(selector),
            _ => None,
        }
    }
}

/// The state key of grant `grant`'s entry count (in the authz contract's storage).
pub fn grant_log_key(grant: u64) -> Vec<u8> {
    let mut key = shutong_system_api::audit::GRANT_LOG_PREFIX.to_vec();
    key.extend_from_slice(&grant.to_be_bytes());
    let authz = shutong_types::Address::system(shutong_system_api::names::AUTHZ);
    shutong_types::keyspace::contract_storage(&authz, &key)
}
