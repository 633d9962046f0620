//! The state a call sees: committed state underneath, the block's pending writes on top, and
//! the transaction's own writes on top of those, one layer per nested contract call, each
//! kept apart until its call succeeds.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// A key and its value, as a scan returns them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Read access to committed state.
pub trait StateReader: Send + Sync {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;

    /// Up to `limit` entries whose keys start with `prefix` and sort after `after` (or from
    /// the start of the prefix), in key order.
    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry>;
}

/// Scans a lower layer: (after, limit) to the entries, as [`StateReader::scan`] with the
/// prefix fixed.
pub type LowerScan<'a> = &'a dyn Fn(Option<&[u8]>, usize) -> Vec<Entry>;

/// A write set: `None` marks a removal.
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The pending writes of `writes` in scan order: keys with `prefix`, after `after`.
fn pending<'a>(
    writes: &'a Writes,
    prefix: &'a [u8],
    after: Option<&[u8]>,
) -> impl Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)> + 'a {
    let start = match after {
        Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    };
    writes.range((start, Bound::Unbounded)).take_while(move |(key, _)| key.starts_with(prefix))
}

/// Scans `writes` laid over whatever `lower` scans: a pending write hides the lower value
/// of its key, and a pending removal hides the key altogether.
pub fn scan_layered(
    writes: &Writes,
    lower: LowerScan<'_>,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Vec<Entry> {
    let mut out = Vec::new();
    if limit == 0 {
        return out;
    }
    let mut upper = pending(writes, prefix, after).peekable();
    // The last lower key consumed (taken, or hidden by a pending write): the next lower
    // batch starts after it.
    let mut lower_cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
    let mut batch: std::collections::VecDeque<Entry> = lower(after, limit).into();
    let mut batch_full = batch.len() == limit;
    while out.len() < limit {
        if batch.is_empty() && batch_full {
            batch = lower(lower_cursor.as_deref(), limit).into();
            batch_full = batch.len() == limit;
        }
        let take_upper = match (upper.peek(), batch.front()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((uk, _)), Some((lk, _))) => uk.as_slice() <= lk.as_slice(),
        };
        if take_upper {
            let (key, value) = upper.next().expect("peeked");
            if batch.front().is_some_and(|(lk, _)| lk == key) {
                batch.pop_front();
                lower_cursor = Some(key.clone());
            }
            if let Some(value) = value {
                out.push((key.clone(), value.clone()));
            }
        } else if let Some(entry) = batch.pop_front() {
            lower_cursor = Some(entry.0.clone());
            out.push(entry);
        }
    }
    out
}

/// Committed state plus pending writes.
pub struct Overlay {
    base: Arc<dyn StateReader>,
    writes: Writes,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Overlay({} pending writes)", self.writes.len())
    }
}

impl Overlay {
    pub fn new(base: Arc<dyn StateReader>) -> Overlay {
        Overlay { base, writes: Writes::new() }
    }

    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(pending) => pending.clone(),
            None => self.base.get(key),
        }
    }

    pub fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        scan_layered(&self.writes, &|after, limit| self.base.scan(prefix, after, limit), prefix, after, limit)
    }

    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Applies a transaction's write set on top of this overlay.
    pub fn apply(&mut self, writes: Writes) {
        self.writes.extend(writes);
    }

    /// The pending writes, sorted by key.
    pub fn into_writes(self) -> Writes {
        self.writes
    }

    pub fn writes(&self) -> &Writes {
        &self.writes
    }

    /// The pending entry for `key`, if any (`Some(None)` is a pending removal).
    pub fn pending_entry(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.writes.get(key).cloned()
    }

    /// Puts back what [`Overlay::pending_entry`] returned: undoes later writes of `key`.
    pub fn restore_entry(&mut self, key: Vec<u8>, entry: Option<Option<Vec<u8>>>) {
        match entry {
            Some(value) => {
                self.writes.insert(key, value);
            }
            None => {
                self.writes.remove(&key);
            }
        }
    }
}

impl StateReader for Overlay {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        Overlay::get(self, key)
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        Overlay::scan(self, prefix, after, limit)
    }
}

/// A transaction's view: reads fall through its call layers (innermost call last) to the
/// block overlay.
#[derive(Debug)]
pub struct TxState {
    pub block: Overlay,
    pub layers: Vec<Writes>,
}

impl TxState {
    pub fn new(block: Overlay) -> TxState {
        TxState { block, layers: vec![Writes::new()] }
    }

    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        for layer in self.layers.iter().rev() {
            if let Some(pending) = layer.get(key) {
                return pending.clone();
            }
        }
        self.block.get(key)
    }

    pub fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        self.scan_from(self.layers.len(), prefix, after, limit)
    }

    fn scan_from(&self, depth: usize, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        match depth.checked_sub(1) {
            None => self.block.scan(prefix, after, limit),
            Some(below) => scan_layered(
                &self.layers[below],
                &|after, limit| self.scan_from(below, prefix, after, limit),
                prefix,
                after,
                limit,
            ),
        }
    }

    /// Writes into the innermost call's layer.
    pub fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.layers.last_mut().expect("a transaction always has a layer").insert(key, value);
    }

    /// A nested call starts: its writes go to a new layer.
    pub fn begin(&mut self) {
        self.layers.push(Writes::new());
    }

    /// The innermost call ended: keep its writes (merged into its caller's) or drop them.
    pub fn end(&mut self, keep: bool) {
        if self.layers.len() < 2 {
            return;
        }
        let top = self.layers.pop().expect("checked above");
        if keep {
            self.layers.last_mut().expect("checked above").extend(top);
        }
    }

    /// The transaction's writes, once every nested call has ended.
    pub fn into_parts(mut self) -> (Overlay, Writes) {
        let mut writes = Writes::new();
        for layer in self.layers.drain(..) {
            writes.extend(layer);
        }
        (self.block, writes)
    }
}

/// A `StateReader` over an in-memory map, for tests and benches.
#[derive(Debug, Default)]
pub struct MemoryState(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateReader for MemoryState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        self.0
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(layers: &[&Writes], base: &BTreeMap<Vec<u8>, Vec<u8>>, prefix: &[u8], after: Option<&[u8]>) -> Vec<Entry> {
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            base.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        for layer in layers {
            merged.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        merged
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_slice() > a))
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }

    /// Every layering of pseudo-random writes and removals over a base scans the same as a
    /// naive merge, for every limit, prefix and starting point, page by page.
    #[test]
    fn layered_scans_match_a_naive_merge() {
        let mut seed = 0x5eed_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut base = BTreeMap::new();
            for _ in 0..(next() % 20) {
                base.insert(vec![(next() % 3) as u8, (next() % 8) as u8], vec![1]);
            }
            let mut block = Overlay::new(Arc::new(MemoryState(base.clone())));
            let mut tx_layers: Vec<Writes> = Vec::new();
            for layer in 0..3 {
                let mut writes = Writes::new();
                for _ in 0..(next() % 10) {
                    let key = vec![(next() % 3) as u8, (next() % 8) as u8];
                    let value = if next() % 2 == 0 { None } else { Some(vec![layer + 2]) };
                    writes.insert(key, value);
                }
                if layer == 0 {
                    block.apply(writes);
                } else {
                    tx_layers.push(writes);
                }
            }
            let block_writes = block.writes().clone();
            let mut tx = TxState::new(block);
            tx.layers = tx_layers.clone();
            tx.layers.insert(0, Writes::new());
            let all: Vec<&Writes> = std::iter::once(&block_writes).chain(tx_layers.iter()).collect();
            for prefix in [vec![], vec![1u8]] {
                let expected = naive(&all, &base, &prefix, None);
                for limit in 1..5 {
                    let mut got = Vec::new();
                    let mut after: Option<Vec<u8>> = None;
                    loop {
                        let page = tx.scan(&prefix, after.as_deref(), limit);
                        assert!(page.len() <= limit);
                        got.extend(page.iter().cloned());
                        if page.len() < limit {
                            break;
                        }
                        after = page.last().map(|(k, _)| k.clone());
                    }
                    assert_eq!(got, expected, "prefix {prefix:?} limit {limit}");
                }
            }
        }
    }
}
