//! Bounded reads of the files an operator hands the node or a client (config, genesis,
//! keys, code, documents), so that none can make it allocate without bound.

use std::io::Read;
use std::path::Path;

/// Reads a file of at most `max` bytes; `Ok(None)` if it is larger.
pub fn read_bounded_bytes(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path)?;
    let read = file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((read as u64 <= max).then_some(bytes))
}

/// Reads a UTF-8 file of at most `max` bytes; `Ok(None)` if it is larger.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<String>> {
    let mut text = String::new();
    let file = std::fs::File::open(path)?;
    let read = file.take(max.saturating_add(1)).read_to_string(&mut text)?;
    Ok((read as u64 <= max).then_some(text))
}
