//! The audit log's Merkle tree ([`shutong_types::auditlog`]) stored in RocksDB as tiles.
//!
//! A tile is a subtree eight levels high: tile `(t, j)` holds the complete nodes at hash
//! levels `8t ..= 8t + 7` under the 256 nodes `j·256 .. j·256 + 255` of level `8t`, row by
//! row (row 0: up to 256 hashes, row 1: up to 128, …, row 7: up to 2). A node at level 8t+8
//! is row 0 of a tile one level up. Every complete node is stored exactly once; a tile is
//! rewritten only while it is the right edge of its level, and nodes never change once
//! complete, so a proof for any earlier size reads the same tiles as one for the latest.
//!
//! An inclusion or consistency proof in a log of 2^24 leaves reads about six tiles; an
//! append of k leaves hashes about 2k times and writes about k/256 + 3 tiles.

use shutong_codec::{Decode, DecodeError, Encode, Reader, write};
use shutong_types::auditlog::{self, ConsistencyProof, InclusionProof, LogNodes};
use shutong_types::{Hash, Suite};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

const TILE_HEIGHT: u32 = 8;
const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// Where a tile is stored: its tile level (hash level / 8) and index along that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    pub level: u8,
    pub index: u64,
}

impl TileKey {
    pub fn to_bytes(self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[0] = self.level;
        out[1..].copy_from_slice(&self.index.to_be_bytes());
        out
    }
}

/// The complete nodes of one tile, row by row; row r holds `rows[0].len() >> r` hashes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tile {
    rows: [Vec<Hash>; TILE_HEIGHT as usize],
}

impl Tile {
    pub fn width(&self) -> usize {
        self.rows[0].len()
    }

    /// Whether the tile holds all 256 nodes of its bottom row (and so never changes again).
    pub fn is_full(&self) -> bool {
        self.width() == TILE_WIDTH
    }

    fn get(&self, row: u32, offset: usize) -> Option<Hash> {
        self.rows[row as usize].get(offset).copied()
    }

    /// Adds the next node of row 0 and every node it completes above it in the tile;
    /// returns the tile's root once the tile is full.
    fn push(&mut self, suite: Suite, hash: Hash) -> Option<Hash> {
        self.rows[0].push(hash);
        let mut pos = self.rows[0].len() - 1;
        let mut node = hash;
        for row in 1..TILE_HEIGHT as usize {
            if pos.is_multiple_of(2) {
                return None;
            }
            node = auditlog::node_hash(suite, &self.rows[row - 1][pos - 1], &node);
            self.rows[row].push(node);
            pos /= 2;
        }
        (pos % 2 == 1).then(|| auditlog::node_hash(suite, &self.rows[TILE_HEIGHT as usize - 1][0], &node))
    }
}

impl Encode for Tile {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u16(out, self.width() as u16);
        for row in &self.rows {
            for hash in row {
                out.extend_from_slice(&hash.0);
            }
        }
    }
}

impl Decode for Tile {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let width = r.u16()? as usize;
        if width == 0 || width > TILE_WIDTH {
            return Err(DecodeError::InvalidTag { what: "log_tile.width", tag: 0 });
        }
        let mut tile = Tile::default();
        for (row, hashes) in tile.rows.iter_mut().enumerate() {
            let bytes = r.take((width >> row) * 32)?;
            *hashes = bytes.chunks_exact(32).map(|c| Hash(c.try_into().expect("32-byte chunks"))).collect();
        }
        Ok(tile)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("audit log tile {0:?} is missing: the database is damaged")]
    Missing(TileKey),
    #[error("audit log tile {key:?} does not decode ({reason}): the database is damaged")]
    Corrupt { key: TileKey, reason: String },
    #[error("leaf {index} is not in a log of {size} leaves")]
    OutOfRange { index: u64, size: u64 },
}

/// Where tiles are read from: the database, or the database with uncommitted blocks' tiles
/// on top.
pub trait LogReader: Send + Sync {
    /// The suite the log hashes with.
    fn suite(&self) -> Suite;
    fn log_tile(&self, key: &TileKey) -> Result<Option<Arc<Tile>>, LogError>;
}

/// What one block appends to the log.
#[derive(Debug, Clone, Default)]
pub struct LogUpdate {
    /// The log's size and root after the block.
    pub size: u64,
    pub root: Hash,
    /// The tiles this block writes (new ones, and the right edges it extended).
    pub tiles: HashMap<TileKey, Arc<Tile>>,
}

/// Where a node sits: its tile, and row and offset in it.
fn locate(level: u32, index: u64) -> (TileKey, u32, usize) {
    let row = level % TILE_HEIGHT;
    let per_tile = TILE_WIDTH >> row;
    let key = TileKey { level: (level / TILE_HEIGHT) as u8, index: index / per_tile as u64 };
    (key, row, (index % per_tile as u64) as usize)
}

/// Nodes read through a [`LogReader`], each tile read once; the first failure is kept.
struct Nodes<'a> {
    reader: &'a dyn LogReader,
    tiles: RefCell<HashMap<TileKey, Option<Arc<Tile>>>>,
    error: RefCell<Option<LogError>>,
}

impl<'a> Nodes<'a> {
    fn new(reader: &'a dyn LogReader) -> Nodes<'a> {
        Nodes { reader, tiles: RefCell::default(), error: RefCell::default() }
    }

    fn fail(&self, fallback: LogError) -> LogError {
        self.error.borrow_mut().take().unwrap_or(fallback)
    }
}

impl LogNodes for Nodes<'_> {
    fn suite(&self) -> Suite {
        self.reader.suite()
    }

    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        let (key, row, offset) = locate(level, index);
        let mut tiles = self.tiles.borrow_mut();
        let tile = match tiles.get(&key) {
            Some(tile) => tile.clone(),
            None => {
                let tile = match self.reader.log_tile(&key) {
                    Ok(tile) => tile,
                    Err(err) => {
                        self.error.borrow_mut().get_or_insert(err);
                        None
                    }
                };
                tiles.insert(key, tile.clone());
                tile
            }
        };
        let found = tile.as_ref().and_then(|t| t.get(row, offset));
        if found.is_none() {
            self.error.borrow_mut().get_or_insert(LogError::Missing(key));
        }
        found
    }
}

/// Appends leaves (by their hashes) to the log of `size` leaves.
pub fn append(reader: &dyn LogReader, size: u64, leaves: &[Hash]) -> Result<LogUpdate, LogError> {
    let mut tiles: HashMap<TileKey, Tile> = HashMap::new();
    let mut hashes = leaves.to_vec();
    // The number of nodes at this tile level's bottom hash level before the append.
    let mut count = size;
    let mut level = 0u8;
    while !hashes.is_empty() {
        let mut up = Vec::with_capacity(hashes.len() / TILE_WIDTH + 1);
        for (i, hash) in hashes.iter().enumerate() {
            let index = count + i as u64;
            let key = TileKey { level, index: index / TILE_WIDTH as u64 };
            let tile = match tiles.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let existing =
                        if index.is_multiple_of(TILE_WIDTH as u64) { None } else { reader.log_tile(&key)? };
                    let tile = existing.map(Arc::unwrap_or_clone).unwrap_or_default();
                    if tile.width() as u64 != index % TILE_WIDTH as u64 {
                        return Err(LogError::Missing(key));
                    }
                    e.insert(tile)
                }
            };
            if let Some(root) = tile.push(reader.suite(), *hash) {
                up.push(root);
            }
        }
        count /= TILE_WIDTH as u64;
        level += 1;
        hashes = up;
    }
    let update = LogUpdate {
        size: size + leaves.len() as u64,
        root: Hash::ZERO,
        tiles: tiles.into_iter().map(|(k, t)| (k, Arc::new(t))).collect(),
    };
    let root = {
        let layered = Layer { update: &update, below: reader };
        root(&layered, update.size)?
    };
    Ok(LogUpdate { root, ..update })
}

/// The tiles of one update over a reader.
struct Layer<'a> {
    update: &'a LogUpdate,
    below: &'a dyn LogReader,
}

impl LogReader for Layer<'_> {
    fn suite(&self) -> Suite {
        self.below.suite()
    }

    fn log_tile(&self, key: &TileKey) -> Result<Option<Arc<Tile>>, LogError> {
        match self.update.tiles.get(key) {
            Some(tile) => Ok(Some(Arc::clone(tile))),
            None => self.below.log_tile(key),
        }
    }
}

/// The root of the log's first `size` leaves.
pub fn root(reader: &dyn LogReader, size: u64) -> Result<Hash, LogError> {
    let nodes = Nodes::new(reader);
    auditlog::root(&nodes, size).ok_or_else(|| nodes.fail(LogError::Missing(TileKey { level: 0, index: 0 })))
}

/// The inclusion proof of leaf `index` in the log of `size` leaves.
pub fn prove_inclusion(reader: &dyn LogReader, index: u64, size: u64) -> Result<InclusionProof, LogError> {
    if index >= size {
        return Err(LogError::OutOfRange { index, size });
    }
    let nodes = Nodes::new(reader);
    auditlog::prove_inclusion(&nodes, index, size).ok_or_else(|| nodes.fail(LogError::OutOfRange { index, size }))
}

/// The consistency proof from the log of `from` leaves to the log of `to` leaves.
pub fn prove_consistency(reader: &dyn LogReader, from: u64, to: u64) -> Result<ConsistencyProof, LogError> {
    if from > to {
        return Err(LogError::OutOfRange { index: from, size: to });
    }
    let nodes = Nodes::new(reader);
    auditlog::prove_consistency(&nodes, from, to)
        .ok_or_else(|| nodes.fail(LogError::OutOfRange { index: from, size: to }))
}

/// The hash of leaf `index` as the log holds it.
pub fn leaf(reader: &dyn LogReader, index: u64) -> Result<Hash, LogError> {
    let nodes = Nodes::new(reader);
    nodes.node(0, index).ok_or_else(|| nodes.fail(LogError::Missing(locate(0, index).0)))
}

/// Tiles in memory: for tests and benchmarks of the log alone.
#[derive(Debug, Default)]
pub struct MemoryTiles {
    pub suite: Suite,
    pub tiles: HashMap<TileKey, Arc<Tile>>,
    pub size: u64,
}

impl MemoryTiles {
    pub fn new(suite: Suite) -> MemoryTiles {
        MemoryTiles { suite, ..MemoryTiles::default() }
    }

    /// Appends `leaves` and returns the new root.
    pub fn append(&mut self, leaves: &[Hash]) -> Result<Hash, LogError> {
        let update = append(self, self.size, leaves)?;
        self.tiles.extend(update.tiles);
        self.size = update.size;
        Ok(update.root)
    }
}

impl LogReader for MemoryTiles {
    fn suite(&self) -> Suite {
        self.suite
    }

    fn log_tile(&self, key: &TileKey) -> Result<Option<Arc<Tile>>, LogError> {
        Ok(self.tiles.get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_types::auditlog::MemoryLog;

    fn leaves(suite: Suite, from: u64, to: u64) -> Vec<Hash> {
        (from..to).map(|i| auditlog::leaf_hash(suite, format!("leaf {i}").as_bytes())).collect()
    }

    /// Appends in uneven batches across several tile boundaries and levels, and checks every
    /// root and a spread of proofs against the plain in-memory log.
    #[test]
    fn tiles_agree_with_the_reference_log_across_tile_boundaries() {
        for &suite in Suite::ALL {
            tiles_agree_with_the_reference_log(suite);
        }
    }

    fn tiles_agree_with_the_reference_log(suite: Suite) {
        let mut tiles = MemoryTiles::new(suite);
        let mut reference = MemoryLog::new(suite);
        let mut roots = vec![reference.root()];
        let batches = [1u64, 2, 253, 1, 256, 300, 1, 70_000, 3, 65_536 - 3];
        let mut size = 0;
        for batch in batches {
            let new = leaves(suite, size, size + batch);
            for leaf in &new {
                reference.push(*leaf);
            }
            let root = tiles.append(&new).unwrap();
            size += batch;
            assert_eq!(root, reference.root(), "size {size}");
            roots.push(root);
        }
        let sizes: Vec<u64> = std::iter::once(0)
            .chain(batches.iter().scan(0, |s, b| {
                *s += b;
                Some(*s)
            }))
            .collect();
        for (i, &to) in sizes.iter().enumerate() {
            for &from in &sizes[..=i] {
                let proof = prove_consistency(&tiles, from, to).unwrap();
                proof.verify(suite, &roots[sizes.iter().position(|s| *s == from).unwrap()], &roots[i]).unwrap();
            }
            for index in [0, 1, 255, 256, 257, 65_535, 65_536, 70_000, to.saturating_sub(1)] {
                if index < to {
                    let proof = prove_inclusion(&tiles, index, to).unwrap();
                    assert_eq!(proof, auditlog::prove_inclusion(&reference, index, to).unwrap());
                    proof.verify(suite, &leaf(&tiles, index).unwrap(), &roots[i]).unwrap();
                }
            }
        }
        assert_eq!(prove_inclusion(&tiles, size, size), Err(LogError::OutOfRange { index: size, size }));
    }

    #[test]
    fn a_missing_or_damaged_tile_is_named() {
        let mut tiles = MemoryTiles::new(Suite::Sm2Sm3);
        tiles.append(&leaves(Suite::Sm2Sm3, 0, 600)).unwrap();
        let key = TileKey { level: 0, index: 1 };
        tiles.tiles.remove(&key);
        assert_eq!(prove_inclusion(&tiles, 300, 600), Err(LogError::Missing(key)));
        assert!(Tile::decode(&[0, 0]).is_err(), "a tile of width 0");
        assert!(Tile::decode(&[1, 1]).is_err(), "a tile wider than 256");
        let tile = tiles.tiles[&TileKey { level: 0, index: 0 }].clone();
        assert_eq!(Tile::decode(&tile.encode()).unwrap(), *tile);
    }
}
