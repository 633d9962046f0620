//! RocksDB storage: one column family per kind of record, one atomic, synced write batch per
//! committed block, and the consensus write-ahead log.
//!
//! A crash at any point leaves either the old block or the new one, never a mix: the block,
//! its certificate, its receipts, its state writes, its state-tree nodes, its audit-log
//! tiles and the new tip go in one batch.

use crate::audit_log::{LogError, LogReader, LogUpdate, Tile, TileKey};
use crate::state_tree::{Node, NodeKey, TreeError, TreeReader, TreeUpdate};
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};
use shutong_consensus::SignedVote;
use shutong_types::{Block, Certificate, Hash, Receipt};
use shutong_vm::state::{Entry, StateReader, Writes};
use std::path::Path;
use std::sync::Arc;

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
/// Auditors' indexes of the audit log ([`crate::audit_index`]).
const CF_AUDIT_INDEX: &str = "audit_index";
const COLUMN_FAMILIES: [&str; 11] = [
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
];
/// The block cache shared by the column families that are read at random.
const BLOCK_CACHE_BYTES: usize = 128 << 20;

const META_TIP: &[u8] = b"tip";
/// `epoch/<epoch, 8 bytes BE>` → the epoch's first height.
const META_EPOCH: &[u8] = b"epoch/";

fn epoch_key(epoch: u64) -> Vec<u8> {
    let mut key = META_EPOCH.to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
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
    db: DB,
    tree_cache: quick_cache::sync::Cache<NodeKey, Node>,
    tile_cache: quick_cache::sync::Cache<TileKey, Arc<Tile>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.db.path().display())
    }
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

fn decode_stored<T: Decode>(what: &str, bytes: &[u8]) -> T {
    T::decode(bytes).unwrap_or_else(|e| panic!("stored {what} does not decode ({e}): the database is corrupt"))
}

impl Storage {
    pub fn open(path: &Path) -> Result<Storage, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.set_max_open_files(512);
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
            ColumnFamilyDescriptor::new(*name, cf)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs)
            .map_err(|e| StorageError::Open { path: path.display().to_string(), reason: e.to_string() })?;
        Ok(Storage {
            db,
            tree_cache: quick_cache::sync::Cache::new(TREE_CACHE_NODES),
            tile_cache: quick_cache::sync::Cache::new(TILE_CACHE_TILES),
        })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("every column family is created at open")
    }

    fn get(&self, cf: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.db.get_cf(self.cf(cf), key).expect("rocksdb read failed")
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
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        self.db
            .iterator_cf(self.cf(CF_AUDIT_INDEX), mode)
            .map(|item| item.expect("rocksdb index scan failed"))
            .take_while(|(key, _)| key.as_ref() <= end)
            .take(limit)
            .filter_map(|(key, _)| crate::audit_index::position(&key))
            .collect()
    }

    pub fn state_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(CF_STATE, key)
    }

    /// Writes a committed block and everything it produced in one synced batch, and drops
    /// the write-ahead-log entries of views up to the block's.
    pub fn commit(&self, commit: Commit<'_>) {
        let height = commit.block.header.height;
        assert_eq!(height, commit.tip.height, "the tip must be the committed block");
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_BLOCKS), height.to_be_bytes(), commit.block.encode());
        batch.put_cf(self.cf(CF_BLOCK_INDEX), commit.tip.hash.0, height.to_be_bytes());
        if let Some(certificate) = commit.certificate {
            batch.put_cf(self.cf(CF_CERTIFICATES), height.to_be_bytes(), certificate.encode());
        }
        let mut seen = std::collections::HashSet::new();
        for receipt in commit.receipts {
            // A transaction a faulty leader repeats gets a `Rejected` receipt the second time;
            // the receipt of its first execution is the one kept.
            if seen.insert(receipt.tx_id) && self.get(CF_RECEIPTS, &receipt.tx_id.0).is_none() {
                batch.put_cf(self.cf(CF_RECEIPTS), receipt.tx_id.0, receipt.encode());
            }
        }
        let state = self.cf(CF_STATE);
        for (key, value) in commit.writes {
            match value {
                Some(value) => batch.put_cf(state, key, value),
                None => batch.delete_cf(state, key),
            }
        }
        let tree = self.cf(CF_TREE);
        for (key, node) in &commit.tree.nodes {
            batch.put_cf(tree, key.to_bytes(), node.encode());
        }
        let stale = self.cf(CF_STALE);
        for key in &commit.tree.stale {
            let mut entry = commit.tree.version.to_be_bytes().to_vec();
            entry.extend_from_slice(&key.to_bytes());
            batch.put_cf(stale, entry, []);
        }
        let log = self.cf(CF_LOG);
        for (key, tile) in &commit.log.tiles {
            batch.put_cf(log, key.to_bytes(), tile.encode());
        }
        let index = self.cf(CF_AUDIT_INDEX);
        for key in crate::audit_index::keys_for(commit.writes) {
            batch.put_cf(index, key, []);
        }
        if let Some((epoch, start)) = crate::epochs::started(commit.writes) {
            batch.put_cf(self.cf(CF_META), epoch_key(epoch), start.to_be_bytes());
        }
        batch.delete_range_cf(self.cf(CF_WAL), 0u64.to_be_bytes(), (commit.tip.view + 1).to_be_bytes());
        batch.put_cf(self.cf(CF_META), META_TIP, commit.tip.encode());
        self.db.write_opt(batch, &synced()).expect("rocksdb commit failed");
        for (key, node) in &commit.tree.nodes {
            self.tree_cache.insert(key.clone(), node.clone());
        }
    }

    /// Makes a vote durable (synced) before it may be sent: the consensus host contract.
    pub fn persist_vote(&self, entry: &WalEntry) {
        let subject = entry.vote.subject;
        let mut key = subject.view.to_be_bytes().to_vec();
        key.push(subject.kind as u8);
        self.db.put_cf_opt(self.cf(CF_WAL), key, entry.encode(), &synced()).expect("rocksdb wal write failed");
    }

    /// The votes in the write-ahead log, in view order.
    pub fn wal(&self) -> Vec<WalEntry> {
        self.db
            .iterator_cf(self.cf(CF_WAL), rocksdb::IteratorMode::Start)
            .map(|item| {
                let (_, value) = item.expect("rocksdb wal read failed");
                decode_stored("wal entry", &value)
            })
            .collect()
    }
}

impl TreeReader for Storage {
    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, TreeError> {
        if let Some(node) = self.tree_cache.get(key) {
            return Ok(Some(node));
        }
        let Some(bytes) = self.get(CF_TREE, &key.to_bytes()) else { return Ok(None) };
        let node = Node::decode(&bytes).map_err(|e| TreeError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        self.tree_cache.insert(key.clone(), node.clone());
        Ok(Some(node))
    }
}

impl LogReader for Storage {
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
        let start = match after {
            Some(after) if after >= prefix => after,
            _ => prefix,
        };
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        self.db
            .iterator_cf(self.cf(CF_STATE), mode)
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
        crate::test_block("storage", height, parent)
    }

    fn receipt(tx_id: Hash, height: u64, status: ExecStatus) -> Receipt {
        Receipt { tx_id, height, index: 0, status, gas_used: 0, events: Vec::new(), output: Vec::new() }
    }

    fn commit(storage: &Storage, block: &Block, receipts: &[Receipt]) {
        let header = &block.header;
        let tip = Tip {
            height: header.height,
            view: header.view,
            hash: header.hash(),
            timestamp_ms: header.timestamp_ms,
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            audit_root: Hash::ZERO,
            audit_size: 0,
        };
        let (tree, log) = (TreeUpdate::default(), LogUpdate::default());
        storage.commit(Commit {
            block,
            certificate: None,
            receipts,
            writes: &Writes::new(),
            tree: &tree,
            log: &log,
            tip,
        });
    }

    /// A transaction a faulty leader repeats, in the same block or a later one, gets a
    /// `Rejected` receipt there; the receipt of its first execution is the one kept.
    #[test]
    fn the_first_receipt_of_a_transaction_is_kept_and_blocks_are_found_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let id = Hash::of("tx", b"once");
        let first = block(1, Hash::ZERO);
        let rejected = ExecStatus::Rejected("nonce 0 is not the next nonce 1".into());
        commit(&storage, &first, &[receipt(id, 1, ExecStatus::Success), receipt(id, 1, rejected.clone())]);
        let second = block(2, first.header.hash());
        commit(&storage, &second, &[receipt(id, 2, rejected)]);
        let kept = storage.receipt(&id).unwrap();
        assert_eq!((kept.height, kept.status), (1, ExecStatus::Success));
        assert_eq!(storage.block_by_hash(&second.header.hash()).unwrap(), second);
        assert_eq!(storage.block_by_hash(&first.header.hash()).unwrap(), first);
        assert!(storage.block_by_hash(&Hash::of("tx", b"no such block")).is_none());
    }
}
