//! The signing high-water mark: the highest (epoch, view) this validator has signed a vote
//! in, kept in `signing.json` in its home directory, outside the database.
//!
//! The consensus write-ahead log is in the database, so restoring an old backup rolls it
//! back, and with it the record of which votes this validator signed since. The mark does
//! not roll back with it: every vote reaches the log, then the mark (written to a temporary
//! file, fsynced, renamed over the old one), and only then the network. At start the
//! driver compares them: a log that is behind the mark is a restored one, and the engine
//! then signs nothing at or below the mark's view ([`SigningMark::floor`]). A log that is
//! level with the mark is the whole truth, and the engine takes its votes back as before.
//!
//! It is CometBFT's `priv_validator_state.json`, for a chain whose views, not heights, are
//! where a vote can conflict.

use serde::{Deserialize, Serialize};
use shutong_types::PublicKey;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The mark's file name, in the node's home directory.
pub const SIGNING_FILE: &str = "signing.json";

/// The largest mark file read: it holds a few short fields.
const SIGNING_FILE_BYTES_MAX: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("cannot read the signing high-water mark {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the signing high-water mark {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "the signing high-water mark {path} is not valid ({reason}); a validator does not start without knowing \
         which views it signed in: restore the file, or see \"Restoring a validator\" in docs/operations.md"
    )]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "the signing high-water mark {path} belongs to {what} {found}, not {wanted}: it is another node's \
         (move it away if this home's key was replaced on purpose)"
    )]
    Other { path: PathBuf, what: &'static str, found: String, wanted: String },
}

/// What `signing.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MarkFile {
    pub chain_id: String,
    /// The validator key whose votes the mark is about; absent in a mark a restore wrote,
    /// until the node fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PublicKey>,
    /// The highest epoch, and the highest view in it, in which a vote was signed and may
    /// have been sent.
    pub epoch: u64,
    pub view: u64,
}

/// The mark, in memory and (unless [`SigningMark::volatile`]) on disk.
#[derive(Debug)]
pub struct SigningMark {
    path: Option<PathBuf>,
    file: MarkFile,
}

impl SigningMark {
    /// A mark kept in memory only: for the in-process chains of tests and the simulation,
    /// whose databases are never restored.
    pub fn volatile(chain_id: &str, key: PublicKey) -> SigningMark {
        SigningMark { path: None, file: MarkFile { chain_id: chain_id.to_string(), key: Some(key), epoch: 0, view: 0 } }
    }

    /// Reads the mark at `path`, or creates it at (0, 0) when there is none (a new node, or
    /// one from before the mark existed, whose log the driver then copies in).
    pub fn open(path: &Path, chain_id: &str, key: PublicKey) -> Result<SigningMark, MarkError> {
        match read(path)? {
            Some(file) => {
                if file.chain_id != chain_id {
                    return Err(MarkError::Other {
                        path: path.to_path_buf(),
                        what: "chain",
                        found: file.chain_id,
                        wanted: chain_id.to_string(),
                    });
                }
                match file.key {
                    Some(found) if found != key => Err(MarkError::Other {
                        path: path.to_path_buf(),
                        what: "key",
                        found: found.to_string(),
                        wanted: key.to_string(),
                    }),
                    Some(_) => Ok(SigningMark { path: Some(path.to_path_buf()), file }),
                    None => {
                        let file = MarkFile { key: Some(key), ..file };
                        write(path, &file).map_err(|source| MarkError::Write { path: path.to_path_buf(), source })?;
                        Ok(SigningMark { path: Some(path.to_path_buf()), file })
                    }
                }
            }
            None => {
                let file = MarkFile { chain_id: chain_id.to_string(), key: Some(key), epoch: 0, view: 0 };
                write(path, &file).map_err(|source| MarkError::Write { path: path.to_path_buf(), source })?;
                Ok(SigningMark { path: Some(path.to_path_buf()), file })
            }
        }
    }

    /// Where the mark is kept; `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The highest (epoch, view) signed in.
    pub fn mark(&self) -> (u64, u64) {
        (self.file.epoch, self.file.view)
    }

    /// The engine's vote floor in `epoch`, whose write-ahead log and last finalization reach
    /// view `logged`: the mark's view when it is above that (the log was rolled back), all
    /// of the epoch when the mark is in a later one, else none.
    pub fn floor(&self, epoch: u64, logged: u64) -> u64 {
        match self.file.epoch.cmp(&epoch) {
            std::cmp::Ordering::Greater => u64::MAX,
            std::cmp::Ordering::Equal if self.file.view > logged => self.file.view,
            _ => 0,
        }
    }

    /// Raises the mark to (epoch, view), durably, if it is higher. A vote may be sent only
    /// once this returned `Ok`.
    pub fn advance(&mut self, epoch: u64, view: u64) -> std::io::Result<()> {
        if (epoch, view) <= self.mark() {
            return Ok(());
        }
        let next = MarkFile { epoch, view, ..self.file.clone() };
        if let Some(path) = &self.path {
            write(path, &next)?;
        }
        self.file = next;
        Ok(())
    }
}

/// Reads a mark file; `None` if there is none.
pub fn read(path: &Path) -> Result<Option<MarkFile>, MarkError> {
    let text = match shutong_api::files::read_bounded(path, SIGNING_FILE_BYTES_MAX) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(MarkError::Invalid {
                path: path.to_path_buf(),
                reason: format!("larger than {SIGNING_FILE_BYTES_MAX} bytes"),
            });
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MarkError::Read { path: path.to_path_buf(), source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| MarkError::Invalid { path: path.to_path_buf(), reason: err.to_string() })
}

/// Writes `file` at `path` so that a crash leaves the old mark or the new one, never a
/// part: a temporary file, fsynced, renamed over the old, and the directory fsynced.
pub fn write(path: &Path, file: &MarkFile) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut body = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
    body.push(b'\n');
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(&body)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_types::Keypair;

    #[test]
    fn the_mark_only_rises_survives_a_reopen_and_belongs_to_one_key_of_one_chain() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join(SIGNING_FILE);
        let key = Keypair::from_seed("v").public();
        let mut mark = SigningMark::open(&path, "c", key).unwrap();
        assert!(path.exists(), "a new mark is written at once");
        assert_eq!(mark.mark(), (0, 0));
        mark.advance(0, 7).unwrap();
        mark.advance(0, 5).unwrap();
        assert_eq!(mark.mark(), (0, 7));
        mark.advance(1, 2).unwrap();
        let reopened = SigningMark::open(&path, "c", key).unwrap();
        assert_eq!(reopened.mark(), (1, 2));
        assert!(!path.with_extension("json.tmp").exists());
        let other = Keypair::from_seed("w").public();
        let err = SigningMark::open(&path, "c", other).unwrap_err().to_string();
        assert!(err.contains("belongs to key") && err.contains(&other.to_string()), "{err}");
        let err = SigningMark::open(&path, "d", key).unwrap_err().to_string();
        assert!(err.contains("belongs to chain c"), "{err}");
        // A mark a restore wrote names no key: the node's own is filled in.
        write(&path, &MarkFile { chain_id: "c".into(), key: None, epoch: 2, view: 9 }).unwrap();
        let filled = SigningMark::open(&path, "c", other).unwrap();
        assert_eq!(filled.mark(), (2, 9));
        assert_eq!(read(&path).unwrap().unwrap().key, Some(other));
        std::fs::write(&path, "{\"chain_id\": \"c\"").unwrap();
        let err = SigningMark::open(&path, "c", key).unwrap_err().to_string();
        assert!(err.contains("is not valid") && err.contains("docs/operations.md"), "{err}");
    }

    #[test]
    fn the_floor_is_the_mark_only_where_the_log_is_behind_it() {
        let mut mark = SigningMark::volatile("c", Keypair::from_seed("v").public());
        mark.advance(3, 40).unwrap();
        assert_eq!(mark.floor(3, 40), 0, "a log level with the mark is the whole truth");
        assert_eq!(mark.floor(3, 41), 0);
        assert_eq!(mark.floor(3, 12), 40, "a rolled-back log");
        assert_eq!(mark.floor(2, 12), u64::MAX, "an epoch before the one signed in last");
        assert_eq!(mark.floor(4, 0), 0);
    }
}
