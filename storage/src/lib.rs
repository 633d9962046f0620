//! Shutong's storage: the only crate that names RocksDB. Blocks, certificates, receipts, state, the state tree, the audit log, the auditors' indexes, the consensus WAL and pending transactions, one synced write batch per block.
//!
//! One column family per kind of record, one atomic, synced write batch per committed block,
//! and the consensus write-ahead log.
//!
//! A crash at any point leaves either the old block or the new one, never a mix: the block,
//! its certificate, its receipts, its state writes, its state-tree nodes, its audit-log
//! tiles and the new tip go in one batch.

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};
use shutong_consensus::SignedVote;
use shutong_execution::audit_log::{LogError, LogReader, LogUpdate, Tile, TileKey};
use shutong_execution::state_tree::{Node, NodeKey, TreeError, TreeReader, TreeUpdate};
use shutong_types::{Block, Certificate, Hash, Receipt, Suite};
use shutong_vm::state::{Entry, StateReader, Writes};
use std::path::Path;
use std::sync::Arc;

/// RocksDB's figures for metrics ([`Storage::db_figures`]).
#[derive(Debug, Clone, Default)]
pub struct DbFigures {
    pub sst_bytes: Vec<(&'static str, u64)>,
    pub live_data_bytes: Vec<(&'static str, u64)>,
    pub memtable_bytes: Vec<(&'static str, u64)>,
    pub pending_compaction_bytes: Vec<(&'static str, u64)>,
    pub write_stopped: u64,
    pub delayed_write_rate: u64,
}

const CF_BLOCKS: &str = "blocks";
const CF_CERTIFICATES: &str = "certificates";
const CF_RECEIPTS: &str = "receipts";
const CF_STATE: &str = "state";
const CF_WAL: &str = "consensus_wal";
const CF_META: &str = "meta";
/// Block hash → height, to serve a block asked for by its digest.
const CF_BLOCK_INDEX: &str = "block_index";
/// State-tree nodes by [`NodeKey`].
const CF_TREE: &str = "state_tree";
/// `stale since (8 bytes BE) ‖ node key` → nothing: what pruning a version may delete.
const CF_STALE: &str = "tree_stale";
/// Audit-log tiles by [`TileKey`].
const CF_LOG: &str = "audit_log";
/// Auditors' indexes of the audit log ([`shutong_execution::audit_index`]).
const CF_AUDIT_INDEX: &str = "audit_index";
/// Transactions this node accepted over RPC and has not seen committed: a SIGKILL between
/// the acknowledgement and the batch reaching the other validators loses nothing, since the
/// restarted node admits them again. Written without a sync (a process crash keeps the OS's
/// buffers), removed in the commit batch of the block that includes them.
const CF_PENDING: &str = "pending_txs";
const COLUMN_FAMILIES: [&str; 12] = [
    CF_BLOCKS,
    CF_CERTIFICATES,
    CF_RECEIPTS,
    CF_STATE,
    CF_WAL,
    CF_META,
    CF_BLOCK_INDEX,
    CF_TREE,
    CF_STALE,
    CF_LOG,
    CF_AUDIT_INDEX,
    CF_PENDING,
];
/// The column families that pruning deletes from: old blocks, their certificates,
/// receipts and hash index entries, and superseded state-tree nodes with their stale marks.
const PRUNED_FAMILIES: [&str; 6] = [CF_BLOCKS, CF_CERTIFICATES, CF_RECEIPTS, CF_BLOCK_INDEX, CF_TREE, CF_STALE];
/// The block cache shared by the column families that are read at random.
const BLOCK_CACHE_BYTES: usize = 128 << 20;
/// What all memtables together may hold before RocksDB flushes the largest.
const MEMTABLES_BYTES: usize = 128 << 20;
/// The most RocksDB write-ahead log kept on disk before the oldest is freed by flushes.
const WAL_BYTES_MAX: u64 = 64 << 20;

const META_TIP: &[u8] = b"tip";
/// `epoch/<epoch, 8 bytes BE>` → the epoch's first height.
const META_EPOCH: &[u8] = b"epoch/";
/// `epoch-proof/<epoch, 8 bytes BE>` → [`EpochProofs`]: kept forever, so that pruning old
/// state never stops a light client from following the validators from genesis.
const META_EPOCH_PROOF: &[u8] = b"epoch-proof/";
/// The lowest state-tree version still whole (absent: none was pruned).
const META_PRUNED_BELOW: &[u8] = b"pruned-below";
/// The lowest height whose block is still stored, apart from genesis and the last block of
/// each epoch (absent: none was pruned).
const META_RETAINED_FROM: &[u8] = b"retained-from";
/// Written by [`Storage::probe`].
const META_PROBE: &[u8] = b"probe";
/// The crypto suite the database's hashes were made with, written at the first open.
const META_SUITE: &[u8] = b"suite";
/// How often, in heights, a pruning node prunes what left its retention window.
const PRUNE_EVERY: u64 = 100;
/// The most heights one pruning pass removes: a long backlog (a node turned from archive to
/// pruning) is worked off over many commits, none of them held up for long.
const PRUNE_HEIGHTS_MAX: u64 = 1_000;

/// What a node keeps of the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Everything, for ever: an archive node.
    #[default]
    Archive,
    /// A pruning node: the blocks, their certificates and receipts, and the state versions
    /// whose header timestamp is more than `window_ms` older than the newest block's are
    /// removed. Kept for ever all the same: genesis, the last block of every epoch with its
    /// certificate, the proofs that start each epoch, and the whole audit log with its
    /// auditors' indexes.
    Window { window_ms: u64 },
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub blocks: u64,
    pub receipts: u64,
    pub tree_nodes: u64,
    /// The lowest height whose block is kept after the pass.
    pub retained_from: u64,
}

fn epoch_proof_key(epoch: u64) -> Vec<u8> {
    let mut key = META_EPOCH_PROOF.to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

/// The proofs that start an epoch: the governance contract's validator set and scheduled
/// change in the state the previous epoch's last header commits to (the state after the
/// block before it), taken when the epoch began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochProofs {
    pub validators: (Option<Vec<u8>>, shutong_types::smt::StateProof),
    pub pending: (Option<Vec<u8>>, shutong_types::smt::StateProof),
}

impl Encode for EpochProofs {
    fn encode_to(&self, out: &mut Vec<u8>) {
        for (value, proof) in [&self.validators, &self.pending] {
            write::option(out, value, |out, v| write::bytes(out, v));
            proof.encode_to(out);
        }
    }
}

impl Decode for EpochProofs {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let one = |r: &mut Reader<'_>| -> Result<_, DecodeError> {
            let value = r.option("epoch_proof.value", |r| r.byte_vec("epoch_proof.value", 1 << 20))?;
            Ok((value, shutong_types::smt::StateProof::decode_from(r)?))
        };
        Ok(EpochProofs { validators: one(r)?, pending: one(r)? })
    }
}

fn epoch_key(epoch: u64) -> Vec<u8> {
    let mut key = META_EPOCH.to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("the database at {path} holds a chain of suite {stored}, not {wanted}: it belongs to another chain")]
    Suite { path: String, stored: String, wanted: Suite },
    /// A write the database refused: nothing of it is stored (every write is one atomic
    /// batch). `no_space` says the disk is full, which freeing space cures; any other
    /// failure (an I/O error, above all on fsync) leaves durability unknown.
    #[error("cannot write {what} to the database at {path}: {reason}")]
    Write { what: &'static str, path: String, reason: String, no_space: bool },
    #[error("cannot take a checkpoint of the database at {path} into {into}: {reason}")]
    Checkpoint { path: String, into: String, reason: String },
}

impl StorageError {
    /// Whether the write failed for want of space on the disk.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StorageError::Write { no_space: true, .. })
    }
}

/// The last committed block and the roots after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    pub view: u64,
    pub hash: Hash,
    pub timestamp_ms: u64,
    /// The state root after this block.
    pub state_root: Hash,
    /// The receipts root of this block.
    pub receipts_root: Hash,
    /// The audit log's root and size after this block.
    pub audit_root: Hash,
    pub audit_size: u64,
}

impl Tip {
    /// The tip after the block with `header`, whose execution committed to `roots`.
    pub fn after(header: &shutong_types::BlockHeader, roots: shutong_types::Roots) -> Tip {
        Tip {
            height: header.height,
            view: header.view,
            hash: header.hash(),
            timestamp_ms: header.timestamp_ms,
            state_root: roots.state,
            receipts_root: roots.receipts,
            audit_root: roots.audit,
            audit_size: roots.audit_size,
        }
    }

    /// The commitments after this block, which its child's header must carry.
    pub fn roots(&self) -> shutong_types::Roots {
        shutong_types::Roots {
            state: self.state_root,
            receipts: self.receipts_root,
            audit: self.audit_root,
            audit_size: self.audit_size,
        }
    }
}

impl Encode for Tip {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.height);
        write::u64(out, self.view);
        self.hash.encode_to(out);
        write::u64(out, self.timestamp_ms);
        self.state_root.encode_to(out);
        self.receipts_root.encode_to(out);
        self.audit_root.encode_to(out);
        write::u64(out, self.audit_size);
    }
}

impl Decode for Tip {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Tip {
            height: r.u64()?,
            view: r.u64()?,
            hash: Hash::decode_from(r)?,
            timestamp_ms: r.u64()?,
            state_root: Hash::decode_from(r)?,
            receipts_root: Hash::decode_from(r)?,
            audit_root: Hash::decode_from(r)?,
            audit_size: r.u64()?,
        })
    }
}

/// Everything one committed block writes.
#[derive(Debug)]
pub struct Commit<'a> {
    pub block: &'a Block,
    pub certificate: Option<&'a Certificate>,
    pub receipts: &'a [Receipt],
    pub writes: &'a Writes,
    pub tree: &'a TreeUpdate,
    pub log: &'a LogUpdate,
    pub tip: Tip,
}

impl<'a> Commit<'a> {
    /// What committing `block`, executed as `output`, writes.
    pub fn executed(
        block: &'a Block,
        certificate: Option<&'a Certificate>,
        output: &'a shutong_execution::executor::BlockOutput,
    ) -> Commit<'a> {
        Commit {
            block,
            certificate,
            receipts: &output.receipts,
            writes: &output.writes,
            tree: &output.tree,
            log: &output.log,
            tip: Tip::after(&block.header, output.roots()),
        }
    }
}

/// The writes a power cut would lose, to undo after a simulated one
/// ([`Storage::power_cut`]): pending transactions written or forgotten without a sync, each
/// with what was there before.
#[derive(Debug, Clone, Default)]
pub struct PowerCut {
    pub pending: Vec<(Hash, Option<Vec<u8>>)>,
}

/// A vote from the write-ahead log, with the block it notarized if this node proposed it.
#[derive(Debug, Clone)]
pub struct WalEntry {
    pub vote: SignedVote,
    pub block: Option<Block>,
}

impl Encode for WalEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.vote.encode_to(out);
        write::option(out, &self.block, |out, block| block.encode_to(out));
    }
}

impl Decode for WalEntry {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let vote = SignedVote::decode_from(r)?;
        let block = r.option("wal.block", Block::decode_from)?;
        Ok(WalEntry { vote, block })
    }
}

/// Decoded state-tree nodes kept in memory: nodes never change once written, so the upper
/// levels every lookup passes through stay here (about 700 bytes a node).
const TREE_CACHE_NODES: usize = 32_768;
/// Decoded audit-log tiles kept in memory; only complete tiles, which never change.
const TILE_CACHE_TILES: usize = 1_024;

/// The node's database.
pub struct Storage {
    /// `None` only while [`Storage::reopen`] runs, or after it failed.
    db: parking_lot::RwLock<Option<DB>>,
    /// For the simulation only ([`Storage::open_simulated`]): the writes made since the
    /// last synced one, which a power cut would lose.
    unsynced: Option<parking_lot::Mutex<PowerCut>>,
    path: std::path::PathBuf,
    /// What is kept of the past.
    retention: Retention,
    /// The suite of the chain the database holds.
    suite: Suite,
    tree_cache: quick_cache::sync::Cache<NodeKey, Node>,
    tile_cache: quick_cache::sync::Cache<TileKey, Arc<Tile>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.path.display())
    }
}

/// The open database, for one method's use; many may hold one at once.
struct Handle<'a>(parking_lot::RwLockReadGuard<'a, Option<DB>>);

impl std::ops::Deref for Handle<'_> {
    type Target = DB;

    fn deref(&self) -> &DB {
        self.0.as_ref().expect("the database is open: a failed reopen stops the node")
    }
}

impl Handle<'_> {
    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.cf_handle(name).expect("every column family is created at open")
    }
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

/// The text of RocksDB's out-of-space error (`IOStatus::NoSpace`, or the OS's ENOSPC).
const NO_SPACE: &str = "No space left on device";

fn decode_stored<T: Decode>(what: &str, bytes: &[u8]) -> T {
    T::decode(bytes).unwrap_or_else(|e| panic!("stored {what} does not decode ({e}): the database is corrupt"))
}

/// Opens (creating if missing) the database at `path` with every column family.
fn open_db(path: &Path) -> Result<DB, StorageError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts.set_max_open_files(512);
    // One budget for every column family's memtables: without it each of the twelve may
    // grow to 64 MiB (twice) before it flushes, and a node's memory climbs for minutes
    // under load before it levels off (seen in a soak run).
    opts.set_db_write_buffer_size(MEMTABLES_BYTES);
    // A log file is deleted only once every family with writes in it has flushed; the
    // small, busy families (the consensus WAL, meta) otherwise keep hundreds of MiB of logs
    // on disk (seen in a soak run: three quarters of a data directory). Past this much log,
    // the families holding the oldest one are flushed.
    opts.set_max_total_wal_size(WAL_BYTES_MAX);
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let cfs = COLUMN_FAMILIES.iter().map(|name| {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        if [CF_STATE, CF_TREE, CF_LOG].contains(name) {
            // Point reads dominate: a bloom filter skips files without the key, and the
            // filters and indexes stay in the cache.
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        }
        let mut cf = Options::default();
        cf.set_block_based_table_factory(&table);
        if PRUNED_FAMILIES.contains(name) {
            // Pruning deletes whole ranges of old entries: a table file that is mostly
            // tombstones is compacted soon, so the disk gives the room back, rather than when
            // the file's level next fills up.
            cf.add_compact_on_deletion_collector_factory(1024, 256, 0.5);
        }
        ColumnFamilyDescriptor::new(*name, cf)
    });
    DB::open_cf_descriptors(&opts, path, cfs)
        .map_err(|e| StorageError::Open { path: path.display().to_string(), reason: e.to_string() })
}

impl Storage {
    /// Opens an archive of a chain of `suite`: everything is kept.
    pub fn open(path: &Path, suite: Suite) -> Result<Storage, StorageError> {
        Storage::open_with(path, suite, Retention::Archive)
    }

    /// Opens the database of a chain of `suite`, keeping what `retention` says. A database
    /// made for the other suite is refused.
    pub fn open_with(path: &Path, suite: Suite, retention: Retention) -> Result<Storage, StorageError> {
        let db = open_db(path)?;
        let meta = db.cf_handle(CF_META).expect("every column family is created at open");
        let stored = db
            .get_cf(meta, META_SUITE)
            .map_err(|e| StorageError::Open { path: path.display().to_string(), reason: e.into_string() })?;
        match stored {
            Some(bytes) if bytes != [suite as u8] => {
                let stored = bytes
                    .first()
                    .and_then(|b| Suite::ALL.iter().find(|s| **s as u8 == *b))
                    .map_or_else(|| format!("{bytes:?}"), |s| s.name().to_string());
                return Err(StorageError::Suite { path: path.display().to_string(), stored, wanted: suite });
            }
            Some(_) => {}
            None => db
                .put_cf_opt(meta, META_SUITE, [suite as u8], &synced())
                .map_err(|e| StorageError::Open { path: path.display().to_string(), reason: e.into_string() })?,
        }
        Ok(Storage {
            db: parking_lot::RwLock::new(Some(db)),
            path: path.to_path_buf(),
            unsynced: None,
            retention,
            suite,
            tree_cache: quick_cache::sync::Cache::new(TREE_CACHE_NODES),
            tile_cache: quick_cache::sync::Cache::new(TILE_CACHE_TILES),
        })
    }

    /// The suite of the chain the database holds.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The same, remembering the writes not yet synced so that a simulated power cut can
    /// lose them ([`Storage::power_cut`]). For the deterministic simulation.
    pub fn open_simulated(path: &Path, suite: Suite) -> Result<Storage, StorageError> {
        let mut storage = Storage::open(path, suite)?;
        storage.unsynced = Some(parking_lot::Mutex::new(PowerCut::default()));
        Ok(storage)
    }

    /// What a power cut now would lose: the writes since the last synced one (a synced write
    /// makes RocksDB's log durable up to it). Apply it with [`Storage::apply_power_cut`]
    /// after the database is closed and opened again. Empty unless [`Storage::open_simulated`].
    pub fn power_cut(&self) -> PowerCut {
        self.unsynced.as_ref().map(|u| u.lock().clone()).unwrap_or_default()
    }

    /// Undoes what a power cut lost ([`Storage::power_cut`]), newest first.
    pub fn apply_power_cut(&self, cut: &PowerCut) -> Result<(), StorageError> {
        let db = self.db();
        let mut batch = WriteBatch::default();
        for (id, before) in cut.pending.iter().rev() {
            match before {
                Some(bytes) => batch.put_cf(db.cf(CF_PENDING), id.0, bytes),
                None => batch.delete_cf(db.cf(CF_PENDING), id.0),
            }
        }
        db.write_opt(batch, &synced()).map_err(|e| self.write_error("a power cut", e))
    }

    /// An unsynced write of pending transaction `id` is about to happen.
    fn remember_unsynced(&self, db: &Handle<'_>, id: &Hash) {
        if let Some(unsynced) = &self.unsynced {
            let before = db.get_cf(db.cf(CF_PENDING), id.0).ok().flatten();
            unsynced.lock().pending.push((*id, before));
        }
    }

    /// A synced write succeeded: everything written before it is durable.
    fn synced_now(&self) {
        if let Some(unsynced) = &self.unsynced {
            unsynced.lock().pending.clear();
        }
    }

    /// Reads never wait for one another; a reader may take it again while it holds it
    /// (a commit reads the state tree), even with [`Storage::reopen`] waiting.
    fn db(&self) -> Handle<'_> {
        Handle(self.db.read_recursive())
    }

    /// Closes the database and opens it again, waiting for the reads under way. After
    /// RocksDB refused a write to its log for want of space it refuses every later write,
    /// and it does not recover by itself once space is freed (`cli/tests/it/disk.rs`); a
    /// reopen replays the log up to the last whole write and takes writes again. If the
    /// open fails, the database stays closed and the caller must stop.
    pub fn reopen(&self) -> Result<(), StorageError> {
        let mut db = self.db.write();
        *db = None;
        *db = Some(open_db(&self.path)?);
        tracing::warn!(path = %self.path.display(), "database reopened");
        Ok(())
    }

    /// Writes a consistent copy of the database into `into`, which must not exist: a
    /// RocksDB checkpoint, taken while blocks are committed (each commit is one atomic
    /// batch, so the copy holds whole blocks only). On the database's own file system its
    /// table files are hard links, so it costs little room until compaction replaces them.
    /// The copy is a database of its own, which [`Storage::open`] reads.
    pub fn checkpoint(&self, into: &Path) -> Result<(), StorageError> {
        let failed = |reason: String| StorageError::Checkpoint {
            path: self.path.display().to_string(),
            into: into.display().to_string(),
            reason,
        };
        let db = self.db();
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(&*db).map_err(|e| failed(e.into_string()))?;
        checkpoint.create_checkpoint(into).map_err(|e| failed(e.into_string()))
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_error(&self, what: &'static str, err: rocksdb::Error) -> StorageError {
        let reason = err.into_string();
        StorageError::Write {
            what,
            path: self.path().display().to_string(),
            no_space: reason.contains(NO_SPACE),
            reason,
        }
    }

    /// Bytes free to this process on the database's file system.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(self.path())?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// A small synced write: whether the database takes writes. After an out-of-space
    /// error RocksDB refuses every write until [`Storage::reopen`].
    pub fn probe(&self) -> Result<(), StorageError> {
        let db = self.db();
        db.put_cf_opt(db.cf(CF_META), META_PROBE, [1], &synced()).map_err(|e| self.write_error("a probe", e))?;
        self.synced_now();
        Ok(())
    }

    /// Remembers a transaction this node accepted until a committed block includes it.
    pub fn put_pending(&self, id: &Hash, bytes: &[u8]) -> Result<(), StorageError> {
        let db = self.db();
        self.remember_unsynced(&db, id);
        db.put_cf(db.cf(CF_PENDING), id.0, bytes).map_err(|e| self.write_error("a pending transaction", e))
    }

    /// Forgets a pending transaction (refused on reload: committed or expired meanwhile).
    pub fn forget_pending(&self, id: &Hash) -> Result<(), StorageError> {
        let db = self.db();
        self.remember_unsynced(&db, id);
        db.delete_cf(db.cf(CF_PENDING), id.0).map_err(|e| self.write_error("a pending transaction", e))
    }

    /// Every transaction accepted and not yet seen committed, as accepted.
    pub fn pending(&self) -> Vec<(Hash, Vec<u8>)> {
        let db = self.db();
        db.iterator_cf(db.cf(CF_PENDING), rocksdb::IteratorMode::Start)
            .filter_map(Result::ok)
            .filter_map(|(k, v)| Some((Hash(k.as_ref().try_into().ok()?), v.to_vec())))
            .collect()
    }

    /// RocksDB's own figures for metrics: per column family (sst bytes, estimated live
    /// data, memtable bytes, bytes waiting for compaction), and for the database whether
    /// writes are stopped and the delayed-write rate (a write stall slows writes first).
    pub fn db_figures(&self) -> DbFigures {
        let db = self.db();
        let per_cf = |property: &str| -> Vec<(&'static str, u64)> {
            COLUMN_FAMILIES
                .iter()
                .map(|name| (*name, db.property_int_value_cf(db.cf(name), property).ok().flatten().unwrap_or(0)))
                .collect()
        };
        let whole = |property: &str| db.property_int_value(property).ok().flatten().unwrap_or(0);
        DbFigures {
            sst_bytes: per_cf("rocksdb.total-sst-files-size"),
            live_data_bytes: per_cf("rocksdb.estimate-live-data-size"),
            memtable_bytes: per_cf("rocksdb.cur-size-all-mem-tables"),
            pending_compaction_bytes: per_cf("rocksdb.estimate-pending-compaction-bytes"),
            write_stopped: whole("rocksdb.is-write-stopped"),
            delayed_write_rate: whole("rocksdb.actual-delayed-write-rate"),
        }
    }

    fn get(&self, cf: &str, key: &[u8]) -> Option<Vec<u8>> {
        let db = self.db();
        db.get_cf(db.cf(cf), key).expect("rocksdb read failed")
    }

    pub fn tip(&self) -> Option<Tip> {
        self.get(CF_META, META_TIP).map(|bytes| decode_stored("tip", &bytes))
    }

    pub fn block(&self, height: u64) -> Option<Block> {
        self.get(CF_BLOCKS, &height.to_be_bytes()).map(|bytes| decode_stored("block", &bytes))
    }

    /// A committed block by its hash.
    pub fn block_by_hash(&self, hash: &Hash) -> Option<Block> {
        let height = self.get(CF_BLOCK_INDEX, &hash.0)?;
        let height = u64::from_be_bytes(height.try_into().expect("stored block index is a u64"));
        self.block(height)
    }

    pub fn certificate(&self, height: u64) -> Option<Certificate> {
        self.get(CF_CERTIFICATES, &height.to_be_bytes()).map(|bytes| decode_stored("certificate", &bytes))
    }

    pub fn receipt(&self, tx_id: &Hash) -> Option<Receipt> {
        self.get(CF_RECEIPTS, &tx_id.0).map(|bytes| decode_stored("receipt", &bytes))
    }

    /// The first height of `epoch`, once a committed block started it.
    pub fn epoch_start(&self, epoch: u64) -> Option<u64> {
        let bytes = self.get(CF_META, &epoch_key(epoch))?;
        Some(u64::from_be_bytes(bytes.try_into().expect("stored epoch start is a u64")))
    }

    /// The highest committed height at or below `below` with a certificate of its own,
    /// looking at most `window` heights down.
    pub fn certified_at_or_below(&self, below: u64, window: u64) -> Option<u64> {
        (below.saturating_sub(window)..=below).rev().find(|h| self.get(CF_CERTIFICATES, &h.to_be_bytes()).is_some())
    }

    /// Up to `limit` audit-index positions (time, leaf index) with keys in `[start, end]`.
    pub fn audit_index_scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(u64, u64)> {
        let db = self.db();
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        db.iterator_cf(db.cf(CF_AUDIT_INDEX), mode)
            .map(|item| item.expect("rocksdb index scan failed"))
            .take_while(|(key, _)| key.as_ref() <= end)
            .take(limit)
            .filter_map(|(key, _)| shutong_execution::audit_index::position(&key))
            .collect()
    }

    /// The (time, leaf index) of the last index key below `below` that starts with `prefix`.
    pub fn audit_index_last_below(&self, below: &[u8], prefix: &[u8]) -> Option<(u64, u64)> {
        let db = self.db();
        let mode = rocksdb::IteratorMode::From(below, rocksdb::Direction::Reverse);
        db.iterator_cf(db.cf(CF_AUDIT_INDEX), mode)
            .map(|item| item.expect("rocksdb index scan failed"))
            .find(|(key, _)| key.as_ref() < below)
            .filter(|(key, _)| key.starts_with(prefix))
            .and_then(|(key, _)| shutong_execution::audit_index::position(&key))
    }

    pub fn state_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(CF_STATE, key)
    }

    /// Writes a committed block and everything it produced in one synced batch, and drops
    /// the write-ahead-log entries of views up to the block's. On an error nothing of the
    /// block is stored.
    pub fn commit(&self, commit: Commit<'_>) -> Result<(), StorageError> {
        let db = self.db();
        let height = commit.block.header.height;
        assert_eq!(height, commit.tip.height, "the tip must be the committed block");
        let mut batch = WriteBatch::default();
        put_block(&db, &mut batch, &commit);
        let mut seen = std::collections::HashSet::new();
        for receipt in commit.receipts {
            // A transaction a faulty leader repeats gets a `Rejected` receipt the second time;
            // the receipt of its first execution is the one kept.
            if seen.insert(receipt.tx_id) && self.get(CF_RECEIPTS, &receipt.tx_id.0).is_none() {
                batch.put_cf(db.cf(CF_RECEIPTS), receipt.tx_id.0, receipt.encode());
            }
        }
        put_state(&db, &mut batch, &commit);
        let stale = db.cf(CF_STALE);
        for key in &commit.tree.stale {
            let mut entry = commit.tree.version.to_be_bytes().to_vec();
            entry.extend_from_slice(&key.to_bytes());
            batch.put_cf(stale, entry, []);
        }
        if let Some((epoch, start)) = shutong_execution::epochs::started(commit.writes) {
            batch.put_cf(db.cf(CF_META), epoch_key(epoch), start.to_be_bytes());
            if let Some(proofs) = self.epoch_proofs_now(start) {
                batch.put_cf(db.cf(CF_META), epoch_proof_key(epoch), proofs.encode());
            }
        }
        batch.delete_range_cf(db.cf(CF_WAL), 0u64.to_be_bytes(), (commit.tip.view + 1).to_be_bytes());
        let pending = db.cf(CF_PENDING);
        for tx in &commit.block.txs {
            batch.delete_cf(pending, tx.id().0);
        }
        batch.put_cf(db.cf(CF_META), META_TIP, commit.tip.encode());
        db.write_opt(batch, &synced()).map_err(|e| self.write_error("a block", e))?;
        self.synced_now();
        for (key, node) in &commit.tree.nodes {
            if matches!(node, Node::Internal(_)) {
                self.tree_cache.insert(key.clone(), node.clone());
            }
        }
        if let Retention::Window { window_ms } = self.retention
            && height.is_multiple_of(PRUNE_EVERY)
        {
            // The block is stored; pruning is tried again at the next mark. The window is
            // measured in the chain's time, so every pruning node keeps the same heights.
            let cutoff_ms = commit.block.header.timestamp_ms.saturating_sub(window_ms);
            match self.prune_before(cutoff_ms, height) {
                Ok(pruned) if pruned.blocks > 0 => tracing::info!(
                    blocks = pruned.blocks,
                    receipts = pruned.receipts,
                    tree_nodes = pruned.tree_nodes,
                    retained_from = pruned.retained_from,
                    "pruned what left the retention window"
                ),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "pruning what left the retention window failed"),
            }
        }
        Ok(())
    }

    /// The lowest height whose block this node still holds, apart from genesis and the
    /// last block of each epoch: the oldest header it can prove against.
    pub fn retained_from(&self) -> u64 {
        self.get(CF_META, META_RETAINED_FROM)
            .map_or(1, |b| u64::from_be_bytes(b.try_into().expect("stored retention mark is a u64")))
    }

    /// About how many keys the state holds (RocksDB's estimate): to size snapshot chunks.
    pub fn state_keys_estimate(&self) -> u64 {
        let db = self.db();
        db.property_int_value_cf(db.cf(CF_STATE), "rocksdb.estimate-num-keys").ok().flatten().unwrap_or(0)
    }

    /// What this node keeps of the past.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// The heights that end an epoch (the block before each epoch's first): kept for ever,
    /// with their certificates, as the light client's way from genesis to the current set.
    fn epoch_ends(&self) -> std::collections::BTreeSet<u64> {
        let db = self.db();
        let mode = rocksdb::IteratorMode::From(META_EPOCH, rocksdb::Direction::Forward);
        db.iterator_cf(db.cf(CF_META), mode)
            .map(|item| item.expect("rocksdb meta scan failed"))
            .take_while(|(key, _)| key.starts_with(META_EPOCH))
            .filter_map(|(_, value)| <[u8; 8]>::try_from(value.as_ref()).ok())
            .map(u64::from_be_bytes)
            .filter_map(|start| start.checked_sub(1))
            .collect()
    }

    /// Removes, from the lowest retained height up (at most [`PRUNE_HEIGHTS_MAX`] heights,
    /// never `tip` itself), the blocks whose timestamp is before `cutoff_ms`, with their
    /// certificates, hash index entries and receipts; then the state versions only they
    /// could prove against. The last block of each epoch and genesis stay.
    pub fn prune_before(&self, cutoff_ms: u64, tip: u64) -> Result<Pruned, StorageError> {
        let from = self.retained_from();
        let ends = self.epoch_ends();
        let mut pruned = Pruned { retained_from: from, ..Pruned::default() };
        let mut batch = WriteBatch::default();
        let mut height = from;
        {
            let db = self.db();
            while height < tip && height - from < PRUNE_HEIGHTS_MAX {
                let Some(block) = self.block(height) else {
                    height += 1;
                    continue;
                };
                if block.header.timestamp_ms >= cutoff_ms {
                    break;
                }
                if !ends.contains(&height) {
                    batch.delete_cf(db.cf(CF_BLOCKS), height.to_be_bytes());
                    batch.delete_cf(db.cf(CF_BLOCK_INDEX), block.header.hash().0);
                    batch.delete_cf(db.cf(CF_CERTIFICATES), height.to_be_bytes());
                    for tx in &block.txs {
                        // A repeated transaction's receipt is its first block's: delete it
                        // only with that block.
                        let id = tx.id();
                        if self.receipt(&id).is_some_and(|r| r.height == height) {
                            batch.delete_cf(db.cf(CF_RECEIPTS), id.0);
                            pruned.receipts += 1;
                        }
                    }
                    pruned.blocks += 1;
                }
                height += 1;
            }
            if height == from {
                return Ok(pruned);
            }
            batch.put_cf(db.cf(CF_META), META_RETAINED_FROM, height.to_be_bytes());
            db.write_opt(batch, &synced()).map_err(|e| self.write_error("pruned blocks", e))?;
        }
        self.synced_now();
        pruned.retained_from = height;
        // Header `height` commits the state after block `height − 1`.
        pruned.tree_nodes = self.prune_state_below(height - 1)? as u64;
        Ok(pruned)
    }

    /// Writes a state snapshot that state sync fetched and checked as the state after
    /// `commit.block` (the block before the header the snapshot came with): its pairs, its
    /// tree, the audit log rebuilt from its leaves, the auditors' indexes, and the tip. No
    /// earlier block, receipt or state version is held, so the node answers as a pruning
    /// node whose window starts there. Into a database that holds genesis only.
    pub fn import_snapshot(&self, commit: Commit<'_>) -> Result<(), StorageError> {
        let db = self.db();
        let height = commit.block.header.height;
        assert_eq!(height, commit.tip.height, "the tip must be the snapshot's block");
        let mut batch = WriteBatch::default();
        put_block(&db, &mut batch, &commit);
        put_state(&db, &mut batch, &commit);
        batch.put_cf(db.cf(CF_META), META_RETAINED_FROM, height.to_be_bytes());
        batch.put_cf(db.cf(CF_META), META_PRUNED_BELOW, height.to_be_bytes());
        batch.put_cf(db.cf(CF_META), META_TIP, commit.tip.encode());
        db.write_opt(batch, &synced()).map_err(|e| self.write_error("a state snapshot", e))?;
        self.synced_now();
        Ok(())
    }

    /// The epoch proofs for an epoch starting at `start`, from the tree of version
    /// `start − 2` (absent for a start below 2, which no governance change can have).
    fn epoch_proofs_now(&self, start: u64) -> Option<EpochProofs> {
        let version = start.checked_sub(2)?;
        let prove = |key: Vec<u8>| {
            shutong_execution::state_tree::prove(self, version, &key).expect("the state tree below the tip is whole")
        };
        Some(EpochProofs {
            validators: prove(shutong_execution::epochs::validators_key()),
            pending: prove(shutong_execution::epochs::pending_key()),
        })
    }

    /// The stored proofs that started `epoch`.
    pub fn epoch_proofs(&self, epoch: u64) -> Option<EpochProofs> {
        self.get(CF_META, &epoch_proof_key(epoch)).map(|bytes| decode_stored("epoch proofs", &bytes))
    }

    /// The lowest state version still whole.
    pub fn pruned_below(&self) -> u64 {
        self.get(CF_META, META_PRUNED_BELOW)
            .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("stored prune mark is a u64")))
    }

    /// Deletes the tree nodes that no version from `below` on uses: those stale since a
    /// version ≤ `below`. Returns how many were deleted.
    pub fn prune_state_below(&self, below: u64) -> Result<usize, StorageError> {
        let db = self.db();
        if below <= self.pruned_below() {
            return Ok(0);
        }
        let (tree, stale) = (db.cf(CF_TREE), db.cf(CF_STALE));
        let mut batch = WriteBatch::default();
        let mut deleted = 0;
        let end = (below + 1).to_be_bytes();
        for item in db.iterator_cf(stale, rocksdb::IteratorMode::Start) {
            let (entry, _) = item.expect("rocksdb stale scan failed");
            if entry[..8] >= end[..] {
                break;
            }
            if let Some(key) = NodeKey::from_bytes(&entry[8..]) {
                self.tree_cache.remove(&key);
            }
            batch.delete_cf(tree, &entry[8..]);
            batch.delete_cf(stale, &entry);
            deleted += 1;
        }
        batch.put_cf(db.cf(CF_META), META_PRUNED_BELOW, below.to_be_bytes());
        db.write_opt(batch, &synced()).map_err(|e| self.write_error("pruned state", e))?;
        self.synced_now();
        tracing::debug!(below, deleted, "pruned old state versions");
        Ok(deleted)
    }

    /// Makes a vote durable (synced) before it may be sent: the consensus host contract. A
    /// vote whose write failed must not be sent.
    pub fn persist_vote(&self, entry: &WalEntry) -> Result<(), StorageError> {
        let db = self.db();
        let subject = entry.vote.subject;
        let mut key = subject.view.to_be_bytes().to_vec();
        key.push(subject.kind as u8);
        db.put_cf_opt(db.cf(CF_WAL), key, entry.encode(), &synced()).map_err(|e| self.write_error("a vote", e))?;
        self.synced_now();
        Ok(())
    }

    /// The votes in the write-ahead log, in view order.
    pub fn wal(&self) -> Vec<WalEntry> {
        let db = self.db();
        db.iterator_cf(db.cf(CF_WAL), rocksdb::IteratorMode::Start)
            .map(|item| {
                let (_, value) = item.expect("rocksdb wal read failed");
                decode_stored("wal entry", &value)
            })
            .collect()
    }
}

/// Into `batch`: the block, its hash index entry and its certificate.
fn put_block(db: &Handle<'_>, batch: &mut WriteBatch, commit: &Commit<'_>) {
    let height = commit.block.header.height;
    batch.put_cf(db.cf(CF_BLOCKS), height.to_be_bytes(), commit.block.encode());
    batch.put_cf(db.cf(CF_BLOCK_INDEX), commit.tip.hash.0, height.to_be_bytes());
    if let Some(certificate) = commit.certificate {
        batch.put_cf(db.cf(CF_CERTIFICATES), height.to_be_bytes(), certificate.encode());
    }
}

/// Into `batch`: the state writes, the tree's new nodes, the log's tiles and the auditors'
/// index entries of the audit leaves written.
fn put_state(db: &Handle<'_>, batch: &mut WriteBatch, commit: &Commit<'_>) {
    let state = db.cf(CF_STATE);
    for (key, value) in commit.writes {
        match value {
            Some(value) => batch.put_cf(state, key, value),
            None => batch.delete_cf(state, key),
        }
    }
    let tree = db.cf(CF_TREE);
    for (key, node) in &commit.tree.nodes {
        batch.put_cf(tree, key.to_bytes(), node.encode());
    }
    let log = db.cf(CF_LOG);
    for (key, tile) in &commit.log.tiles {
        batch.put_cf(log, key.to_bytes(), tile.encode());
    }
    let index = db.cf(CF_AUDIT_INDEX);
    for key in shutong_execution::audit_index::keys_for(commit.writes) {
        batch.put_cf(index, key, []);
    }
}

impl TreeReader for Storage {
    fn suite(&self) -> Suite {
        self.suite
    }

    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, TreeError> {
        if let Some(node) = self.tree_cache.get(key) {
            return Ok(Some(node));
        }
        let Some(bytes) = self.get(CF_TREE, &key.to_bytes()) else { return Ok(None) };
        let node = Node::decode_in(self.suite, &bytes)
            .map_err(|e| TreeError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        // Inner nodes are what every lookup passes through; a leaf is read by one key's
        // lookups only, and would push them out.
        if matches!(node, Node::Internal(_)) {
            self.tree_cache.insert(key.clone(), node.clone());
        }
        Ok(Some(node))
    }
}

impl LogReader for Storage {
    fn suite(&self) -> Suite {
        self.suite
    }

    fn log_tile(&self, key: &TileKey) -> Result<Option<Arc<Tile>>, LogError> {
        if let Some(tile) = self.tile_cache.get(key) {
            return Ok(Some(tile));
        }
        let Some(bytes) = self.get(CF_LOG, &key.to_bytes()) else { return Ok(None) };
        let tile = Arc::new(Tile::decode(&bytes).map_err(|e| LogError::Corrupt { key: *key, reason: e.to_string() })?);
        // The right edge of a level is rewritten as the log grows; a full tile never is.
        if tile.is_full() {
            self.tile_cache.insert(*key, Arc::clone(&tile));
        }
        Ok(Some(tile))
    }
}

impl StateReader for Storage {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state_get(key)
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        let db = self.db();
        let start = match after {
            Some(after) if after >= prefix => after,
            _ => prefix,
        };
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        db.iterator_cf(db.cf(CF_STATE), mode)
            .map(|item| item.expect("rocksdb state scan failed"))
            .skip_while(|(key, _)| after.is_some_and(|a| key.as_ref() <= a))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.into_vec(), value.into_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_types::ExecStatus;

    fn block(height: u64, parent: Hash) -> Block {
        shutong_types::Block::empty("storage", height, parent)
    }

    fn receipt(tx_id: Hash, height: u64, status: ExecStatus) -> Receipt {
        Receipt { tx_id, height, index: 0, status, gas_used: 0, events: Vec::new(), output: Vec::new() }
    }

    fn commit(storage: &Storage, block: &Block, receipts: &[Receipt]) {
        let header = &block.header;
        let tip = Tip::after(
            header,
            shutong_types::Roots { state: Hash::ZERO, receipts: Hash::ZERO, audit: Hash::ZERO, audit_size: 0 },
        );
        let (tree, log) = (TreeUpdate::default(), LogUpdate::default());
        storage
            .commit(Commit { block, certificate: None, receipts, writes: &Writes::new(), tree: &tree, log: &log, tip })
            .unwrap();
    }

    /// A node keeping 100 ms of the chain's time (the test's blocks are 1 ms apart): every
    /// retained version proves every key, older blocks and versions are gone, and the last
    /// block of an epoch and the proofs that started the next outlive them.
    #[test]
    fn pruning_keeps_the_window_the_epoch_ends_and_the_epoch_proofs() {
        use shutong_system_api::governance::{PendingSet, ValidatorSet};
        let dir = tempfile::tempdir().unwrap();
        let storage =
            Storage::open_with(dir.path(), Suite::Ed25519Blake3, Retention::Window { window_ms: 100 }).unwrap();
        let key = |i: u64| format!("key-{}", i % 40).into_bytes();
        let mut roots = Vec::new();
        let mut parent = Hash::ZERO;
        for version in 0..=350u64 {
            let mut writes: Writes =
                (0..3).map(|j| (key(version * 3 + j), Some(version.to_be_bytes().to_vec()))).collect();
            if version == 110 {
                let pending = PendingSet {
                    activation_height: 120,
                    keys: vec![shutong_system_api::KeyBytes::ed25519([9; 32])],
                    transports: vec![None],
                    proposer: [1; 32],
                };
                writes.insert(shutong_execution::epochs::pending_key(), Some(pending.encode()));
            }
            if version == 120 {
                writes.insert(shutong_execution::epochs::pending_key(), None);
                let set = ValidatorSet {
                    epoch: 1,
                    since_height: 120,
                    keys: vec![shutong_system_api::KeyBytes::ed25519([9; 32])],
                    transports: vec![None],
                };
                writes.insert(shutong_execution::epochs::validators_key(), Some(set.encode()));
            }
            let tree = shutong_execution::state_tree::update(&storage, version, &writes).unwrap();
            roots.push(tree.root);
            let block = block(version, parent);
            parent = block.header.hash();
            let roots =
                shutong_types::Roots { state: tree.root, receipts: Hash::ZERO, audit: Hash::ZERO, audit_size: 0 };
            let tip = Tip::after(&block.header, roots);
            let log = LogUpdate::default();
            storage
                .commit(Commit {
                    block: &block,
                    certificate: None,
                    receipts: &[],
                    writes: &writes,
                    tree: &tree,
                    log: &log,
                    tip,
                })
                .unwrap();
        }
        // Pruned at height 300: blocks with timestamps before 200 went, and the state versions
        // only they proved against.
        assert_eq!(storage.retained_from(), 200);
        assert_eq!(storage.pruned_below(), 199);
        assert!(storage.block(199).is_none() && storage.block(1).is_none());
        assert!(storage.block(200).is_some() && storage.block(0).is_some());
        assert!(storage.block(119).is_some(), "the last block of epoch 0 stays");
        assert!(storage.block_by_hash(&storage.block(119).unwrap().header.hash()).is_some());
        for version in 199..=350u64 {
            for i in 0..40 {
                let (value, proof) = shutong_execution::state_tree::prove(&storage, version, &key(i)).unwrap();
                proof.verify(Suite::Ed25519Blake3, &roots[version as usize], &key(i), value.as_deref()).unwrap();
            }
        }
        assert!(matches!(shutong_execution::state_tree::prove(&storage, 150, &key(0)), Err(TreeError::Missing(_))));
        // Epoch 1 began at 120; its proofs are of the state after 118, long pruned.
        let proofs = storage.epoch_proofs(1).unwrap();
        let (value, proof) = &proofs.pending;
        proof
            .verify(Suite::Ed25519Blake3, &roots[118], &shutong_execution::epochs::pending_key(), value.as_deref())
            .unwrap();
        assert_eq!(PendingSet::decode(value.as_ref().unwrap()).unwrap().activation_height, 120);
        let (value, proof) = &proofs.validators;
        proof
            .verify(Suite::Ed25519Blake3, &roots[118], &shutong_execution::epochs::validators_key(), value.as_deref())
            .unwrap();
        assert_eq!(storage.epoch_start(1), Some(120));
    }

    /// A transaction a faulty leader repeats, in the same block or a later one, gets a
    /// `Rejected` receipt there; the receipt of its first execution is the one kept.
    #[test]
    fn the_first_receipt_of_a_transaction_is_kept_and_blocks_are_found_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), Suite::Ed25519Blake3).unwrap();
        let id = Hash::of(Suite::Ed25519Blake3, "tx", b"once");
        let first = block(1, Hash::ZERO);
        let rejected = ExecStatus::Rejected("nonce 0 is not the next nonce 1".into());
        commit(&storage, &first, &[receipt(id, 1, ExecStatus::Success), receipt(id, 1, rejected.clone())]);
        let second = block(2, first.header.hash());
        commit(&storage, &second, &[receipt(id, 2, rejected)]);
        let kept = storage.receipt(&id).unwrap();
        assert_eq!((kept.height, kept.status), (1, ExecStatus::Success));
        assert_eq!(storage.block_by_hash(&second.header.hash()).unwrap(), second);
        assert_eq!(storage.block_by_hash(&first.header.hash()).unwrap(), first);
        assert!(storage.block_by_hash(&Hash::of(Suite::Ed25519Blake3, "tx", b"no such block")).is_none());
    }

    #[test]
    fn a_database_of_one_suite_is_refused_under_the_other() {
        let dir = tempfile::tempdir().unwrap();
        drop(Storage::open(dir.path(), Suite::Sm2Sm3).unwrap());
        let err = Storage::open(dir.path(), Suite::Ed25519Blake3).unwrap_err();
        assert!(err.to_string().contains("holds a chain of suite sm2-sm3, not ed25519-blake3"), "{err}");
        assert_eq!(Storage::open(dir.path(), Suite::Sm2Sm3).unwrap().suite(), Suite::Sm2Sm3);
    }
}
