//! What a node counts, and its Prometheus text exposition (`GET /metrics` on the RPC port)
//! and health check (`GET /health`). `docs/metrics.md` describes each metric.
//!
//! Counters and histograms are atomics updated where things happen (commit, admission, the
//! network task, the VM); gauges are read when scraped.

use shutong_p2p::traffic::{NetCounters, Traffic};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram of seconds with fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// Bounds for latencies from a millisecond to ten seconds.
pub const LATENCY_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, seconds: f64) {
        let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// What the chain's driver and the RPC server count.
#[derive(Debug)]
pub struct Metrics {
    pub blocks: AtomicU64,
    pub txs: AtomicU64,
    pub txs_failed: AtomicU64,
    pub gas_used: AtomicU64,
    /// From a block's timestamp (its proposer's clock) to this node committing it.
    pub finality: Histogram,
    /// Executing a block (before voting on it, or when it is finalized unexecuted).
    pub block_execute: Histogram,
    /// Writing a committed block, its state and indexes in one batch.
    pub block_commit: Histogram,
    /// When this node last committed a block (ms since the epoch), for the health check.
    pub last_commit_ms: AtomicU64,
    pub height: AtomicU64,
    /// Transactions refused at admission, by reason.
    pub rejections: Mutex<BTreeMap<&'static str, u64>>,
    /// Consensus timers that fired, by [`TIMERS`]: how much time the node has seen pass in
    /// views that did not end, which tests wait on instead of sleeping.
    pub timeouts: [AtomicU64; 3],
    /// Votes this validator skipped because its signer failed (a token removed, a PIN locked).
    pub signing_failures: AtomicU64,
    /// The signer's last failure, until it signs again: the node is unhealthy meanwhile.
    pub signer_fault: Mutex<Option<String>>,
}

/// The consensus timers, in the order of [`Metrics::timeouts`].
pub const TIMERS: [&str; 3] = ["leader", "advance", "rebroadcast"];

impl Metrics {
    /// Counts a consensus timer that fired.
    pub fn observe_timeout(&self, timer: shutong_consensus::Timer) {
        use shutong_consensus::Timer;
        let index = match timer {
            Timer::Leader => 0,
            Timer::Advance => 1,
            Timer::Rebroadcast => 2,
        };
        self.timeouts[index].fetch_add(1, Ordering::Relaxed);
    }

    /// This validator's signer failed: a vote was skipped.
    pub fn observe_signing_failure(&self, reason: String) {
        self.signing_failures.fetch_add(1, Ordering::Relaxed);
        *self.signer_fault.lock().expect("metrics lock poisoned") = Some(reason);
    }

    /// This validator's signer signed a vote: a fault it had is over.
    pub fn observe_signed(&self) {
        let mut fault = self.signer_fault.lock().expect("metrics lock poisoned");
        if fault.is_some() {
            *fault = None;
        }
    }

    fn signer_fault(&self) -> Option<String> {
        self.signer_fault.lock().expect("metrics lock poisoned").clone()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            blocks: AtomicU64::new(0),
            txs: AtomicU64::new(0),
            txs_failed: AtomicU64::new(0),
            gas_used: AtomicU64::new(0),
            finality: Histogram::new(LATENCY_BOUNDS),
            block_execute: Histogram::new(LATENCY_BOUNDS),
            block_commit: Histogram::new(LATENCY_BOUNDS),
            last_commit_ms: AtomicU64::new(0),
            height: AtomicU64::new(0),
            rejections: Mutex::new(BTreeMap::new()),
            timeouts: Default::default(),
            signing_failures: AtomicU64::new(0),
            signer_fault: Mutex::new(None),
        }
    }
}

impl Metrics {
    /// Counts a committed block.
    pub fn observe_commit(
        &self,
        header: &shutong_types::BlockHeader,
        output: &shutong_execution::executor::BlockOutput,
    ) {
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.finality.observe(now_ms.saturating_sub(header.timestamp_ms) as f64 / 1000.0);
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.height.store(header.height, Ordering::Relaxed);
        self.last_commit_ms.store(now_ms, Ordering::Relaxed);
        self.txs.fetch_add(output.receipts.len() as u64, Ordering::Relaxed);
        let failed = output.receipts.iter().filter(|r| !r.status.is_success()).count();
        self.txs_failed.fetch_add(failed as u64, Ordering::Relaxed);
        self.gas_used.fetch_add(output.gas_used, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: &'static str) {
        if let Ok(mut r) = self.rejections.lock() {
            *r.entry(reason).or_insert(0) += 1;
        }
    }
}

/// Everything read at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    pub view: u64,
    pub finalized_view: u64,
    pub peers: u64,
    pub validators: u64,
    pub mempool_txs: u64,
    pub mempool_bytes: u64,
    pub dropped_inbound: u64,
    pub dropped_outbound: u64,
    pub dropped_over_rate: u64,
    pub bans: u64,
    /// (label, VM statistics) for each VM of the node.
    pub vms: Vec<(&'static str, shutong_vm::VmStats)>,
    pub db: shutong_storage::DbFigures,
    /// Why the node is not writing to its disk, if it is not (`crate::disk`).
    pub disk_fault: Option<String>,
}

fn line(out: &mut String, kind: &str, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// The Prometheus text exposition (format 0.0.4) of everything.
pub fn render(m: &Metrics, net: &NetCounters, g: &Gauges) -> String {
    let mut out = String::with_capacity(8 << 10);
    let o = &mut out;
    line(o, "gauge", "shutong_height", "Height of the last committed block.", m.height.load(Ordering::Relaxed));
    line(o, "gauge", "shutong_view", "The consensus view this node is in.", g.view);
    line(o, "gauge", "shutong_finalized_view", "The last view this node saw finalized.", g.finalized_view);
    let name = "shutong_consensus_timeouts_total";
    let _ = writeln!(o, "# HELP {name} Consensus timers that fired, by timer.\n# TYPE {name} counter");
    for (timer, count) in TIMERS.iter().zip(&m.timeouts) {
        let _ = writeln!(o, "{name}{{timer=\"{timer}\"}} {}", count.load(Ordering::Relaxed));
    }
    line(o, "counter", "shutong_blocks_committed_total", "Blocks committed.", m.blocks.load(Ordering::Relaxed));
    line(
        o,
        "counter",
        "shutong_txs_committed_total",
        "Transactions committed (failed calls included).",
        m.txs.load(Ordering::Relaxed),
    );
    line(
        o,
        "counter",
        "shutong_txs_failed_total",
        "Committed transactions whose call failed.",
        m.txs_failed.load(Ordering::Relaxed),
    );
    line(
        o,
        "counter",
        "shutong_gas_used_total",
        "Gas used by committed transactions.",
        m.gas_used.load(Ordering::Relaxed),
    );
    m.finality.render(o, "shutong_finality_seconds", "From a block's timestamp to this node committing it.");
    m.block_execute.render(
        o,
        "shutong_block_execute_seconds",
        "Executing a block's transactions, tree and log updates.",
    );
    m.block_commit.render(
        o,
        "shutong_block_commit_seconds",
        "Writing a committed block, its state and indexes to the database.",
    );
    line(o, "gauge", "shutong_mempool_txs", "Transactions waiting in the mempool.", g.mempool_txs);
    line(o, "gauge", "shutong_mempool_bytes", "Bytes of transactions waiting in the mempool.", g.mempool_bytes);
    let _ = writeln!(
        o,
        "# HELP shutong_mempool_rejections_total Transactions refused at admission, by reason.\n# TYPE shutong_mempool_rejections_total counter"
    );
    if let Ok(rejections) = m.rejections.lock() {
        for (reason, count) in rejections.iter() {
            let _ = writeln!(o, "shutong_mempool_rejections_total{{reason=\"{reason}\"}} {count}");
        }
    }
    line(o, "gauge", "shutong_peers", "Connected p2p peers.", g.peers);
    line(o, "gauge", "shutong_validators", "Validators in the current set.", g.validators);
    line(
        o,
        "counter",
        "shutong_p2p_dropped_inbound_total",
        "Messages dropped because the driver's queue was full.",
        g.dropped_inbound,
    );
    line(
        o,
        "counter",
        "shutong_p2p_dropped_outbound_total",
        "Messages dropped because the network's queue was full or their peer was not connected.",
        g.dropped_outbound,
    );
    line(
        o,
        "counter",
        "shutong_p2p_dropped_over_rate_total",
        "Messages dropped unread because their peer was over its rate.",
        g.dropped_over_rate,
    );
    line(o, "counter", "shutong_p2p_bans_total", "Peers disconnected and refused for misbehaving.", g.bans);
    let traffic = net.by_kind();
    for (name, help, pick) in [
        (
            "shutong_p2p_bytes_in_total",
            "Bytes received, by message kind.",
            (|t: &Traffic| t.bytes_in) as fn(&Traffic) -> u64,
        ),
        ("shutong_p2p_bytes_out_total", "Bytes sent, by message kind (once per peer).", |t| t.bytes_out),
        ("shutong_p2p_messages_in_total", "Messages received, by message kind.", |t| t.messages_in),
        ("shutong_p2p_messages_out_total", "Messages sent, by message kind (once per peer).", |t| t.messages_out),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
        for (kind, t) in &traffic {
            let _ = writeln!(o, "{name}{{kind=\"{kind}\"}} {}", pick(t));
        }
    }
    for (name, help, pick) in [
        (
            "shutong_vm_instantiations_total",
            "Contract instances created.",
            (|s: &shutong_vm::VmStats| s.instantiations as f64) as fn(&shutong_vm::VmStats) -> f64,
        ),
        ("shutong_vm_instantiate_seconds_total", "Time spent creating contract instances.", |s| {
            s.instantiate_nanos as f64 / 1e9
        }),
        ("shutong_vm_calls_total", "Contract calls run (nested calls included).", |s| s.calls as f64),
        ("shutong_vm_call_seconds_total", "Time spent in contract calls, instantiation included.", |s| {
            s.call_nanos as f64 / 1e9
        }),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
        for (vm, stats) in &g.vms {
            let _ = writeln!(o, "{name}{{vm=\"{vm}\"}} {}", pick(stats));
        }
    }
    for (name, help, values) in [
        ("shutong_db_sst_bytes", "Bytes of SST files, by column family.", &g.db.sst_bytes),
        ("shutong_db_live_data_bytes", "Estimated live data, by column family.", &g.db.live_data_bytes),
        ("shutong_db_memtable_bytes", "Bytes in memtables, by column family.", &g.db.memtable_bytes),
        (
            "shutong_db_pending_compaction_bytes",
            "Bytes compaction has yet to rewrite, by column family.",
            &g.db.pending_compaction_bytes,
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (cf, value) in values {
            let _ = writeln!(o, "{name}{{cf=\"{cf}\"}} {value}");
        }
    }
    line(
        o,
        "gauge",
        "shutong_disk_fault",
        "1 while the node neither votes nor commits because its disk is full or failed (see /health).",
        u8::from(g.disk_fault.is_some()),
    );
    line(
        o,
        "counter",
        "shutong_signing_failures_total",
        "Votes skipped because this validator's signer failed (see /health for the last reason).",
        m.signing_failures.load(Ordering::Relaxed),
    );
    line(
        o,
        "gauge",
        "shutong_signer_fault",
        "1 while this validator's signer fails: it does not vote until it signs again.",
        u8::from(m.signer_fault().is_some()),
    );
    line(o, "gauge", "shutong_db_write_stopped", "1 while RocksDB stops writes (a write stall).", g.db.write_stopped);
    line(
        o,
        "gauge",
        "shutong_db_delayed_write_rate",
        "RocksDB's delayed-write rate in bytes/s (0: writes are not slowed).",
        g.db.delayed_write_rate,
    );
    out
}

/// The health check: healthy while the node has committed a block in the last `stale_ms`.
pub fn health(m: &Metrics, g: &Gauges, now_ms: u64, stale_ms: u64) -> (bool, serde_json::Value) {
    let last = m.last_commit_ms.load(Ordering::Relaxed);
    let age = if last == 0 { None } else { Some(now_ms.saturating_sub(last)) };
    let signer = m.signer_fault();
    let healthy =
        age.is_some_and(|a| a <= stale_ms) && g.db.write_stopped == 0 && g.disk_fault.is_none() && signer.is_none();
    let json = serde_json::json!({
        "status": if healthy { "ok" } else { "unhealthy" },
        "height": m.height.load(Ordering::Relaxed),
        "last_commit_age_ms": age,
        "stale_after_ms": stale_ms,
        "peers": g.peers,
        "validators": g.validators,
        "mempool_txs": g.mempool_txs,
        "write_stopped": g.db.write_stopped == 1,
        "disk": g.disk_fault,
        "signer": signer,
        "signing_failures": m.signing_failures.load(Ordering::Relaxed),
    });
    (healthy, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_signer_makes_the_node_unhealthy_until_it_signs_again() {
        let m = Metrics::default();
        m.last_commit_ms.store(1_000, Ordering::Relaxed);
        let g = Gauges::default();
        assert!(health(&m, &g, 1_500, 10_000).0);
        m.observe_signing_failure("token validator-token: CKR_DEVICE_REMOVED".into());
        let (healthy, json) = health(&m, &g, 1_500, 10_000);
        assert!(!healthy);
        assert_eq!(json["signer"], "token validator-token: CKR_DEVICE_REMOVED");
        assert_eq!(json["signing_failures"], 1);
        let text = render(&m, &NetCounters::default(), &g);
        assert!(text.contains("shutong_signing_failures_total 1\n") && text.contains("shutong_signer_fault 1\n"));
        m.observe_signed();
        let (healthy, json) = health(&m, &g, 1_500, 10_000);
        assert!(healthy, "{json}");
        assert_eq!(json["signing_failures"], 1, "the count stays");
    }
}
