//! The gateway's durable journal: every batched event is written and fsynced here before the
//! gateway returns its data, and so is every seal and every confirmed anchor, so a gateway
//! that dies with events not yet anchored anchors them after a restart, each exactly once.
//!
//! A record is `len (u32 LE) ‖ kind (u8) ‖ payload ‖ blake3(kind ‖ payload)`, `len` counting
//! kind and payload. A record cut short at the end of the file is a write the crash
//! interrupted: its caller never got an answer, so it is dropped. A record that does not
//! check anywhere else is corruption, and the journal refuses to open.

use shutong_codec::{Decode, Encode, Reader, write};
use shutong_system_api::audit::AccessEvent;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The largest record the journal reads (an event is well under a kilobyte).
const RECORD_BYTES_MAX: usize = 1 << 20;
const CHECKSUM_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the gateway journal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the gateway journal {path} is corrupt at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("the gateway journal {path} was closed before the record was written")]
    Closed { path: PathBuf },
}

/// What the journal holds, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A permitted event, served at `time_ms`, waiting for its grant's next seal.
    Event { event: AccessEvent, time_ms: u64 },
    /// Grant `grant`'s `events` oldest waiting events were sealed into batch `seq` over
    /// `[start_ms, end_ms)`.
    Sealed { grant: u64, seq: u64, start_ms: u64, end_ms: u64, events: u64 },
    /// The chain recorded batch `seq` of `grant`.
    Anchored { grant: u64, seq: u64 },
    /// After a compaction: grant `grant`'s next batch is `next_seq`, starting at `start_ms`.
    Cursor { grant: u64, next_seq: u64, start_ms: u64 },
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Record::Event { event, time_ms } => {
                write::u8(&mut out, 0);
                write::u64(&mut out, *time_ms);
                event.encode_to(&mut out);
            }
            Record::Sealed { grant, seq, start_ms, end_ms, events } => {
                write::u8(&mut out, 1);
                for n in [grant, seq, start_ms, end_ms, events] {
                    write::u64(&mut out, *n);
                }
            }
            Record::Anchored { grant, seq } => {
                write::u8(&mut out, 2);
                write::u64(&mut out, *grant);
                write::u64(&mut out, *seq);
            }
            Record::Cursor { grant, next_seq, start_ms } => {
                write::u8(&mut out, 3);
                for n in [grant, next_seq, start_ms] {
                    write::u64(&mut out, *n);
                }
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Record, String> {
        let mut r = Reader::new(bytes);
        let e = |e: shutong_codec::DecodeError| e.to_string();
        let record = match r.u8().map_err(e)? {
            0 => {
                let time_ms = r.u64().map_err(e)?;
                let event = AccessEvent::decode_from(&mut r).map_err(e)?;
                Record::Event { event, time_ms }
            }
            1 => Record::Sealed {
                grant: r.u64().map_err(e)?,
                seq: r.u64().map_err(e)?,
                start_ms: r.u64().map_err(e)?,
                end_ms: r.u64().map_err(e)?,
                events: r.u64().map_err(e)?,
            },
            2 => Record::Anchored { grant: r.u64().map_err(e)?, seq: r.u64().map_err(e)? },
            3 => Record::Cursor {
                grant: r.u64().map_err(e)?,
                next_seq: r.u64().map_err(e)?,
                start_ms: r.u64().map_err(e)?,
            },
            other => return Err(format!("unknown record kind {other}")),
        };
        r.finish().map_err(e)?;
        Ok(record)
    }
}

/// An open journal file, appended to with group commit: [`Journal::append`] only queues
/// its records and answers a [`Commit`]. A writer thread of the journal's own writes and
/// fsyncs everything queued, round after round: the records queued while one round is
/// fsynced all go out in the next, under one fsync. A gateway serving many requests at once
/// thus pays one fsync per round, not per event, and a handler waits for its round
/// ([`Commit::wait`], or [`Commit::wait_async`] from async code) without doing the writing.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    /// The journal's size in bytes, counting what is queued.
    bytes: u64,
    writer: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled when records are queued, or the journal closes: wakes the writer.
    queued: Condvar,
    /// Signalled when a round of writing ends (and on close): wakes blocking waiters.
    written: Condvar,
    /// The number of the latest durable append, for async waiters.
    durable: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    file: Arc<File>,
    /// Framed records not yet written.
    queued: Vec<u8>,
    /// How many appends were queued, and how many of them are durable.
    appended: u64,
    durable: u64,
    /// The writer is writing and fsyncing a round.
    writing: bool,
    /// A failed write or fsync: what the file holds past the last durable append is unknown,
    /// so every later append and wait fails with it.
    failed: Option<(io::ErrorKind, String)>,
    /// The journal was dropped: what it had queued and not written is not durable.
    closed: bool,
    /// Rounds written, each ending in one fsync.
    syncs: u64,
    /// Callers blocked in [`Commit::wait`].
    waiters: u64,
    /// Tests hold the writer back, to see what is queued meanwhile.
    #[cfg(test)]
    paused: bool,
}

/// An append queued in the journal: [`Commit::wait`] returns once it is durable.
#[derive(Debug)]
#[must_use = "an append is durable only after its commit is waited on"]
pub struct Commit {
    shared: Arc<Shared>,
    seq: u64,
}

fn locked(shared: &Shared) -> MutexGuard<'_, State> {
    // The state stays consistent across a panic elsewhere: each field is set in one step.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn failure(path: &Path, (kind, message): &(io::ErrorKind, String)) -> JournalError {
    JournalError::Io { path: path.to_path_buf(), source: io::Error::new(*kind, message.clone()) }
}

/// Where append `seq` stands: `Some` once it is durable or can never be.
fn settled(shared: &Shared, state: &State, seq: u64) -> Option<Result<(), JournalError>> {
    if state.durable >= seq {
        return Some(Ok(()));
    }
    if let Some(failed) = &state.failed {
        return Some(Err(failure(&shared.path, failed)));
    }
    state.closed.then(|| Err(JournalError::Closed { path: shared.path.clone() }))
}

impl Commit {
    /// Blocks until the append is durable: written and fsynced with its round.
    pub fn wait(self) -> Result<(), JournalError> {
        let mut state = locked(&self.shared);
        loop {
            if let Some(result) = settled(&self.shared, &state, self.seq) {
                return result;
            }
            state.waiters += 1;
            state = self.shared.written.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.waiters -= 1;
        }
    }

    /// [`Commit::wait`] for async code: the task sleeps, no thread blocks.
    pub async fn wait_async(self) -> Result<(), JournalError> {
        let mut rounds = self.shared.durable.subscribe();
        loop {
            if let Some(result) = settled(&self.shared, &locked(&self.shared), self.seq) {
                return result;
            }
            // Every round's end, failure and close is sent; a closed channel cannot happen
            // while this commit holds the sender.
            if rounds.changed().await.is_err() {
                return Err(JournalError::Closed { path: self.shared.path.clone() });
            }
        }
    }
}

#[cfg(test)]
fn held_back(state: &State) -> bool {
    state.paused
}

#[cfg(not(test))]
fn held_back(_: &State) -> bool {
    false
}

/// The writer thread: writes and fsyncs what is queued, a round at a time, until the
/// journal is dropped.
fn write_rounds(shared: &Shared) {
    let mut state = locked(shared);
    loop {
        while (state.queued.is_empty() || held_back(&state)) && !state.closed && state.failed.is_none() {
            state = shared.queued.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed || state.failed.is_some() {
            return;
        }
        state.writing = true;
        let round = std::mem::take(&mut state.queued);
        let upto = state.appended;
        let file = Arc::clone(&state.file);
        drop(state);
        let result = (&*file).write_all(&round).and_then(|()| file.sync_data());
        state = locked(shared);
        state.writing = false;
        state.syncs += 1;
        match result {
            Ok(()) => state.durable = state.durable.max(upto),
            Err(e) => state.failed = Some((e.kind(), e.to_string())),
        }
        shared.durable.send_replace(state.durable);
        shared.written.notify_all();
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads back what it holds; a torn last
    /// record is cut off.
    pub fn open(path: &Path) -> Result<(Journal, Vec<Record>), JournalError> {
        let io = |source| JournalError::Io { path: path.to_path_buf(), source };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io)?;
        let (records, good) = parse(path, &data)?;
        if good < data.len() {
            file.set_len(good as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let state = State {
            file: Arc::new(file),
            queued: Vec::new(),
            appended: 0,
            durable: 0,
            writing: false,
            failed: None,
            closed: false,
            syncs: 0,
            waiters: 0,
            #[cfg(test)]
            paused: false,
        };
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            state: Mutex::new(state),
            queued: Condvar::new(),
            written: Condvar::new(),
            durable: tokio::sync::watch::Sender::new(0),
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("gateway-journal".into())
                .spawn(move || write_rounds(&shared))
                .map_err(io)?
        };
        Ok((Journal { shared, bytes: good as u64, writer: Some(writer) }, records))
    }

    /// Queues records, to be written in order after everything queued before them; they are
    /// durable once the answer's [`Commit::wait`] returns.
    pub fn append(&mut self, records: &[Record]) -> Result<Commit, JournalError> {
        let mut state = locked(&self.shared);
        if let Some(failed) = &state.failed {
            return Err(failure(&self.shared.path, failed));
        }
        let before = state.queued.len();
        for record in records {
            frame(&mut state.queued, record);
        }
        self.bytes += (state.queued.len() - before) as u64;
        state.appended += 1;
        self.shared.queued.notify_one();
        Ok(Commit { shared: Arc::clone(&self.shared), seq: state.appended })
    }

    /// Appends records and makes them durable before returning.
    pub fn append_durably(&mut self, records: &[Record]) -> Result<(), JournalError> {
        self.append(records)?.wait()
    }

    /// Makes everything appended so far durable (at once, if it already is).
    pub fn flush(&self) -> Result<(), JournalError> {
        let seq = locked(&self.shared).appended;
        Commit { shared: Arc::clone(&self.shared), seq }.wait()
    }

    /// The journal's size in bytes, counting what is queued.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many rounds were written, each ending in one fsync.
    pub fn syncs(&self) -> u64 {
        locked(&self.shared).syncs
    }

    /// How many callers are blocked waiting for their appends.
    pub fn waiters(&self) -> u64 {
        locked(&self.shared).waiters
    }

    /// Holds the writer back (it finishes the round it is writing), or lets it go on.
    #[cfg(test)]
    pub(crate) fn pause(&self, paused: bool) {
        locked(&self.shared).paused = paused;
        self.shared.queued.notify_all();
    }

    /// Waits until `n` callers are blocked waiting for their appends.
    #[cfg(test)]
    pub(crate) fn await_waiters(&self, n: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.waiters() < n {
            assert!(std::time::Instant::now() < deadline, "{n} callers never waited on the journal");
            std::thread::yield_now();
        }
    }

    /// Replaces the journal's contents with `records`, which must say everything appended so
    /// far (written to a new file, fsynced, then renamed over the old one, so a crash leaves
    /// one or the other whole). What was queued is dropped, and its commits are durable.
    pub fn rewrite(&mut self, records: &[Record]) -> Result<(), JournalError> {
        let path = &self.shared.path;
        let io = |source| JournalError::Io { path: path.clone(), source };
        let mut state = locked(&self.shared);
        while state.writing {
            state = self.shared.written.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if let Some(failed) = &state.failed {
            return Err(failure(&self.shared.path, failed));
        }
        let mut out = Vec::new();
        for record in records {
            frame(&mut out, record);
        }
        let fresh = path.with_extension("compacting");
        let mut file = File::create(&fresh).map_err(io)?;
        file.write_all(&out).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&fresh, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        state.file = Arc::new(OpenOptions::new().append(true).open(path).map_err(io)?);
        state.queued.clear();
        state.durable = state.appended;
        state.syncs += 1;
        self.bytes = out.len() as u64;
        self.shared.durable.send_replace(state.durable);
        self.shared.written.notify_all();
        Ok(())
    }
}

/// Dropping the journal is what a crash does to it: what it queued and did not write is
/// lost, and whoever still waits on it hears so. (The round being written finishes first.)
impl Drop for Journal {
    fn drop(&mut self) {
        {
            let mut state = locked(&self.shared);
            state.closed = true;
            state.queued.clear();
            self.shared.queued.notify_all();
        }
        if let Some(writer) = self.writer.take() {
            // The writer ends after its round; a panic there has nothing left to report to.
            let _ = writer.join();
        }
        let state = locked(&self.shared);
        self.shared.durable.send_replace(state.durable);
        self.shared.written.notify_all();
    }
}

fn frame(out: &mut Vec<u8>, record: &Record) {
    let body = record.encode();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(blake3::hash(&body).as_bytes());
}

/// The records in `data`, and how many bytes of it are whole records.
fn parse(path: &Path, data: &[u8]) -> Result<(Vec<Record>, usize), JournalError> {
    let corrupt = |offset: usize, reason: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let mut records = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let Some(len) = data.get(at..at + 4) else { break };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len == 0 || len > RECORD_BYTES_MAX {
            return Err(corrupt(at, format!("a record of {len} bytes")));
        }
        let end = at + 4 + len + CHECKSUM_BYTES;
        if end > data.len() {
            // Cut short by a crash during the write.
            break;
        }
        let body = &data[at + 4..at + 4 + len];
        if blake3::hash(body).as_bytes() != &data[at + 4 + len..end] {
            return Err(corrupt(at, "its checksum does not match".into()));
        }
        records.push(Record::decode(body).map_err(|reason| corrupt(at, reason))?);
        at = end;
    }
    Ok((records, at))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(grant: u64) -> AccessEvent {
        crate::gateway::tests::event(&crate::gateway::tests::request(grant, &["uscc"], "licensing.renewal"))
    }

    #[test]
    fn records_survive_a_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let written = vec![
            Record::Event { event: event(7), time_ms: 10 },
            Record::Sealed { grant: 7, seq: 1, start_ms: 10, end_ms: 11, events: 1 },
            Record::Anchored { grant: 7, seq: 1 },
            Record::Cursor { grant: 7, next_seq: 2, start_ms: 11 },
        ];
        let (mut journal, none) = Journal::open(&path).unwrap();
        assert!(none.is_empty());
        journal.append_durably(&written).unwrap();
        let whole = journal.bytes();
        drop(journal);
        // A crash in the middle of the next write leaves part of a record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[40, 0, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let (journal, read) = Journal::open(&path).unwrap();
        assert_eq!(read, written);
        assert_eq!((journal.bytes(), std::fs::metadata(&path).unwrap().len()), (whole, whole));
    }

    #[test]
    fn a_changed_byte_inside_the_journal_is_named_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal
            .append_durably(&[Record::Event { event: event(7), time_ms: 10 }, Record::Anchored { grant: 7, seq: 1 }])
            .unwrap();
        drop(journal);
        let mut data = std::fs::read(&path).unwrap();
        data[9] ^= 1;
        std::fs::write(&path, &data).unwrap();
        let err = Journal::open(&path).unwrap_err().to_string();
        assert!(err.contains("corrupt at byte 0") && err.contains("checksum"), "{err}");
        std::fs::write(&path, [0xff, 0xff, 0xff, 0x7f, 0]).unwrap();
        let err = Journal::open(&path).unwrap_err().to_string();
        assert!(err.contains("a record of 2147483647 bytes"), "{err}");
    }

    #[test]
    fn appends_queued_together_share_one_fsync_and_all_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        // The writer is busy (held back) while three appends queue up behind it.
        journal.pause(true);
        let commits: Vec<Commit> =
            (0..3).map(|i| journal.append(&[Record::Event { event: event(7), time_ms: i }]).unwrap()).collect();
        assert_eq!(journal.syncs(), 0);
        journal.pause(false);
        for c in commits {
            c.wait().unwrap();
        }
        assert_eq!(journal.syncs(), 1, "the three shared one round");
        drop(journal);
        let (_, read) = Journal::open(&path).unwrap();
        assert_eq!(read.iter().map(|r| matches!(r, Record::Event { .. })).filter(|e| *e).count(), 3);
    }

    #[test]
    fn many_threads_each_wait_for_their_own_append_and_none_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (journal, _) = Journal::open(&path).unwrap();
        let journal = Mutex::new(journal);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let journal = &journal;
                s.spawn(move || {
                    for i in 0..50u64 {
                        let commit = journal.lock().unwrap().append(&[Record::Anchored { grant: t, seq: i }]).unwrap();
                        commit.wait().unwrap();
                    }
                });
            }
        });
        let syncs = journal.lock().unwrap().syncs();
        assert!((1..=400).contains(&syncs), "{syncs} rounds");
        drop(journal);
        let (_, read) = Journal::open(&path).unwrap();
        for t in 0..8u64 {
            let mine: Vec<u64> = read
                .iter()
                .filter_map(|r| match r {
                    Record::Anchored { grant, seq } if *grant == t => Some(*seq),
                    _ => None,
                })
                .collect();
            assert_eq!(mine, (0..50).collect::<Vec<_>>(), "thread {t}'s appends, in order");
        }
    }

    #[test]
    fn a_rewrite_makes_queued_appends_durable_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        let queued = journal.append(&[Record::Anchored { grant: 1, seq: 1 }]).unwrap();
        journal.rewrite(&[Record::Cursor { grant: 1, next_seq: 2, start_ms: 5 }]).unwrap();
        queued.wait().unwrap();
        journal.append_durably(&[Record::Anchored { grant: 1, seq: 2 }]).unwrap();
        drop(journal);
        let (_, read) = Journal::open(&path).unwrap();
        assert_eq!(
            read,
            vec![Record::Cursor { grant: 1, next_seq: 2, start_ms: 5 }, Record::Anchored { grant: 1, seq: 2 }]
        );
    }

    #[test]
    fn a_failed_write_fails_its_wait_and_every_later_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (mut journal, _) = Journal::open(&path).unwrap();
        // The disk refuses the next write (here: the handle is read-only).
        locked(&journal.shared).file = Arc::new(File::open(&path).unwrap());
        let err = journal.append_durably(&[Record::Anchored { grant: 1, seq: 1 }]).unwrap_err().to_string();
        assert!(err.starts_with("the gateway journal"), "{err}");
        let later = journal.append(&[Record::Anchored { grant: 1, seq: 2 }]).unwrap_err().to_string();
        assert_eq!(later, err, "the journal stays failed");
        drop(journal);
        let (_, read) = Journal::open(&path).unwrap();
        assert!(read.is_empty());
    }
}
