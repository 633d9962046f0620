//! Bytes and messages in and out, per message kind (`wire::Kind`), for the node's metrics.

use shutong_consensus::wire::Kind;
use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds counted: every wire kind, then "other" for bytes whose first byte names none.
const SLOTS: usize = Kind::ALL.len() + 1;

/// Counters of traffic by message kind.
#[derive(Debug, Default)]
pub struct NetCounters {
    bytes_in: [AtomicU64; SLOTS],
    bytes_out: [AtomicU64; SLOTS],
    messages_in: [AtomicU64; SLOTS],
    messages_out: [AtomicU64; SLOTS],
}

/// One kind's traffic so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub messages_out: u64,
}

fn slot(bytes: &[u8]) -> usize {
    Kind::of_bytes(bytes).map_or(SLOTS - 1, |kind| kind.tag() as usize)
}

impl NetCounters {
    pub fn received(&self, bytes: &[u8]) {
        let k = slot(bytes);
        self.bytes_in[k].fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.messages_in[k].fetch_add(1, Ordering::Relaxed);
    }

    /// `bytes` sent to `peers` peers.
    pub fn sent(&self, bytes: &[u8], peers: u64) {
        let k = slot(bytes);
        self.bytes_out[k].fetch_add(bytes.len() as u64 * peers, Ordering::Relaxed);
        self.messages_out[k].fetch_add(peers, Ordering::Relaxed);
    }

    /// Each kind's name and traffic, "other" last.
    pub fn by_kind(&self) -> Vec<(&'static str, Traffic)> {
        let names = Kind::ALL.iter().map(|k| k.name()).chain(["other"]);
        names
            .enumerate()
            .map(|(i, name)| {
                let load = |a: &[AtomicU64; SLOTS]| a[i].load(Ordering::Relaxed);
                let traffic = Traffic {
                    bytes_in: load(&self.bytes_in),
                    bytes_out: load(&self.bytes_out),
                    messages_in: load(&self.messages_in),
                    messages_out: load(&self.messages_out),
                };
                (name, traffic)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_counted_by_the_kind_its_first_byte_names() {
        let counters = NetCounters::default();
        counters.received(&[Kind::CompactProposal.tag(), 1, 2]);
        counters.sent(&[Kind::Batch.tag(), 1], 3);
        counters.received(&[200]);
        let rows = counters.by_kind();
        let get = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).unwrap_or_default();
        assert_eq!(get("compact_proposal"), Traffic { bytes_in: 3, messages_in: 1, ..Traffic::default() });
        assert_eq!(get("batch"), Traffic { bytes_out: 6, messages_out: 3, ..Traffic::default() });
        assert_eq!(get("other"), Traffic { bytes_in: 1, messages_in: 1, ..Traffic::default() });
        assert_eq!(rows.len(), Kind::ALL.len() + 1);
    }
}
