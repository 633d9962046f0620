//! What a node does when its disk fails.
//!
//! Two failures, two answers (`docs/operations.md`, "A full disk", "A failing disk"):
//!
//! - **Full.** Before each vote and each commit the [`DiskGuard`] checks that the data
//!   directory's file system has `storage.min_free_mb` free; a write RocksDB refuses for want
//!   of space counts the same. The node then sends no vote (a vote whose write-ahead-log
//!   write failed is never sent, nor re-sent later), commits nothing (a block is one atomic
//!   batch, so nothing of it is stored), answers 503 on `/health` with the reason, and logs
//!   the disk by path. Every [`PROBE_EVERY`] it looks again; once there is room and a probe
//!   write succeeds (after reopening the database, which RocksDB needs after it refused a
//!   log write) it goes on, and block sync brings it back to the others' tip.
//! - **Anything else** (an I/O error, above all on fsync): whether the write reached the disk
//!   is unknown, and retrying it could report as durable what is not. The node stops
//!   ([`DiskStatus::stopped`]), and the process exits with the reason.

use crate::clock::Clock;
use shutong_storage::{Storage, StorageError};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a node whose disk is full looks again.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// The room a reopen of the database needs (a new log and manifest): it is not tried with
/// less free, whatever the reserve.
pub const REOPEN_ROOM: u64 = 16 << 20;

/// The disk as `/health`, the metrics and the binary see it.
#[derive(Debug)]
pub struct DiskStatus {
    full: AtomicBool,
    reason: Mutex<Option<String>>,
    stopped: tokio::sync::watch::Sender<Option<String>>,
}

impl Default for DiskStatus {
    fn default() -> DiskStatus {
        DiskStatus {
            full: AtomicBool::new(false),
            reason: Mutex::new(None),
            stopped: tokio::sync::watch::channel(None).0,
        }
    }
}

impl DiskStatus {
    /// Why the node is not writing, if it is not: the disk is full, or it failed.
    pub fn fault(&self) -> Option<String> {
        if let Some(reason) = self.stopped.borrow().clone() {
            return Some(reason);
        }
        if !self.full.load(Ordering::Relaxed) {
            return None;
        }
        self.reason.lock().expect("disk status lock poisoned").clone()
    }

    /// Whether the disk is full now (for the metric).
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    fn set_full(&self, reason: Option<String>) {
        self.full.store(reason.is_some(), Ordering::Relaxed);
        *self.reason.lock().expect("disk status lock poisoned") = reason;
    }

    /// Watches for a failure that stops the node: `Some(reason)` once it happened.
    pub fn stopped(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.stopped.subscribe()
    }

    fn stop(&self, reason: String) {
        self.stopped.send_replace(Some(reason));
    }
}

/// What became of a write the database refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The disk is full: writes stop until space is freed.
    Full,
    /// Durability is unknown: the node stops.
    Fatal,
}

/// Guards the driver's and the follower's writes (module docs).
#[derive(Debug)]
pub struct DiskGuard {
    reserve_bytes: u64,
    full: bool,
    next_probe: Option<Instant>,
}

impl DiskGuard {
    pub fn new(min_free_mb: u64) -> DiskGuard {
        DiskGuard { reserve_bytes: min_free_mb.saturating_mul(1 << 20), full: false, next_probe: None }
    }

    /// As if space were freed: for tests.
    #[cfg(test)]
    pub(crate) fn set_reserve_bytes(&mut self, bytes: u64) {
        self.reserve_bytes = bytes;
    }

    /// Whether the disk is full (writes are held back until space is freed).
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Whether a write may be tried now: the disk has its reserve free, and, if it was
    /// full, a probe write succeeds (tried at most every [`PROBE_EVERY`]).
    pub fn writable(&mut self, storage: &Storage, status: &DiskStatus, clock: &dyn Clock) -> bool {
        if status.stopped.borrow().is_some() {
            return false;
        }
        let now = clock.now();
        if self.full && self.next_probe.is_some_and(|at| now < at) {
            return false;
        }
        let free = match storage.free_bytes() {
            Ok(free) => free,
            Err(err) => {
                // The write itself will tell whether the disk is usable.
                tracing::warn!(disk = %storage.path().display(), %err, "cannot read the disk's free space");
                u64::MAX
            }
        };
        if free < self.reserve_bytes {
            if !self.full {
                let reason = format!(
                    "disk full: {} has {} MiB free, under the {} MiB reserve (storage.min_free_mb)",
                    storage.path().display(),
                    free >> 20,
                    self.reserve_bytes >> 20
                );
                self.set_full(storage, status, reason);
            }
            self.next_probe = Some(now + PROBE_EVERY);
            return false;
        }
        if !self.full {
            return true;
        }
        self.next_probe = Some(now + PROBE_EVERY);
        let mut probe = storage.probe();
        if probe.as_ref().is_err_and(StorageError::is_no_space) && free >= REOPEN_ROOM.max(self.reserve_bytes) {
            // RocksDB refuses writes after a failed log write until it is opened again.
            if let Err(err) = storage.reopen() {
                self.failed(&err, storage, status);
                return false;
            }
            probe = storage.probe();
        }
        match probe {
            Ok(()) => {
                self.full = false;
                status.set_full(None);
                tracing::warn!(
                    disk = %storage.path().display(),
                    free_mib = free >> 20,
                    "the disk takes writes again: voting and committing resume"
                );
                true
            }
            Err(err) => {
                if self.failed(&err, storage, status) == Failure::Fatal {
                    return false;
                }
                tracing::debug!(%err, "the disk still refuses writes");
                false
            }
        }
    }

    /// Classifies a write the database refused, and acts on it: a full disk holds writes
    /// back; anything else stops the node.
    pub fn failed(&mut self, err: &StorageError, storage: &Storage, status: &DiskStatus) -> Failure {
        if err.is_no_space() {
            if !self.full {
                self.set_full(storage, status, format!("disk full: {err}"));
            }
            return Failure::Full;
        }
        tracing::error!(
            disk = %storage.path().display(),
            %err,
            "the disk failed a write whose durability is now unknown; the node stops rather than retry it"
        );
        status.stop(format!("disk failed: {err}"));
        Failure::Fatal
    }

    fn set_full(&mut self, storage: &Storage, status: &DiskStatus, reason: String) {
        self.full = true;
        tracing::error!(
            disk = %storage.path().display(),
            %reason,
            "not voting or committing until space is freed on the disk"
        );
        status.set_full(Some(reason));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_reserve_larger_than_the_disk_holds_writes_back_and_says_which_disk() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).unwrap();
        let status = DiskStatus::default();
        let clock = ManualClock::new(1);
        let mut guard = DiskGuard::new(0);
        assert!(guard.writable(&storage, &status, &clock));
        assert_eq!(status.fault(), None);
        // No disk has an exbibyte free.
        let mut guard = DiskGuard::new(1 << 40);
        assert!(!guard.writable(&storage, &status, &clock));
        let fault = status.fault().unwrap();
        assert!(fault.contains(&dir.path().display().to_string()) && fault.contains("storage.min_free_mb"), "{fault}");
        assert!(status.is_full() && guard.is_full());
        // Not looked at again before the probe interval.
        clock.advance(PROBE_EVERY / 2);
        assert!(!guard.writable(&storage, &status, &clock));
        // Space "freed": the reserve drops, and the next probe succeeds.
        guard.set_reserve_bytes(0);
        assert!(!guard.writable(&storage, &status, &clock), "the interval has not passed");
        clock.advance(PROBE_EVERY);
        assert!(guard.writable(&storage, &status, &clock));
        assert_eq!(status.fault(), None);
    }

    #[test]
    fn an_error_other_than_a_full_disk_stops_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).unwrap();
        let status = DiskStatus::default();
        let mut guard = DiskGuard::new(0);
        let stopped = status.stopped();
        let full = StorageError::Write { what: "a vote", path: "d".into(), reason: "No space".into(), no_space: true };
        assert_eq!(guard.failed(&full, &storage, &status), Failure::Full);
        assert!(stopped.borrow().is_none());
        let eio = StorageError::Write {
            what: "a block",
            path: "d".into(),
            reason: "IO error: While fdatasync: Input/output error".into(),
            no_space: false,
        };
        assert_eq!(guard.failed(&eio, &storage, &status), Failure::Fatal);
        let reason = stopped.borrow().clone().unwrap();
        assert!(reason.contains("fdatasync"), "{reason}");
        assert!(!guard.writable(&storage, &status, &ManualClock::new(1)), "a stopped node writes nothing");
    }
}
