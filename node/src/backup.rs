//! `shutong node backup` and `shutong node restore`: an online, encrypted copy of a node's
//! database, and bringing one back into a home.
//!
//! A backup is a checkpoint of the database (taken by the running node through its admin
//! socket, or by this process when no node runs), sealed by [`shutong_api::backup`] under
//! the chain's suite, with a manifest naming the chain, its genesis and the tip the copy
//! holds. A restore checks all of it before anything lands in the home, reopens the copy,
//! and checks that its tip and genesis block are the ones the manifest names.
//!
//! The restored database's consensus log is as old as the backup. The signing high-water
//! mark in the home (`crate::signing_mark`) is not, and it keeps the validator from voting
//! again where it voted after the backup; a home without one needs the operator to say
//! where the chain is (`signing_floor`).

use crate::admin::{self, AdminError};
use crate::config::Config;
use crate::signing_mark::{self, MarkFile, SIGNING_FILE};
use crate::{CONFIG_FILE, Error, GENESIS_FILE, in_home};
pub use shutong_api::backup::PASSPHRASE_ENV;
use shutong_api::backup::{self as sealed, BackupInfo, KdfCosts, Manifest};
use shutong_execution::genesis::Genesis;
use shutong_storage::Storage;
use std::path::{Path, PathBuf};

/// Files of a database that are not part of its content: the lock and RocksDB's own logs.
fn is_incidental(name: &str) -> bool {
    name == "LOCK" || name == "LOG" || name.starts_with("LOG.old")
}

/// What a backup did.
#[derive(Debug)]
pub struct Backup {
    pub manifest: Manifest,
    /// Whether a running node took the checkpoint (else this process did, on a stopped node).
    pub online: bool,
}

/// Removes a checkpoint directory when dropped.
struct Checkpoint(PathBuf);

impl Drop for Checkpoint {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(checkpoint = %self.0.display(), %err, "cannot remove the checkpoint");
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Backs up the node in `home` into `to` (a new or empty directory), sealed with
/// `passphrase`: online through the node's admin socket when it runs.
pub fn backup(home: &Path, to: &Path, passphrase: &str) -> Result<Backup, Error> {
    backup_with(home, to, passphrase, KdfCosts::default())
}

/// [`backup`] with chosen key-stretching costs (cheap ones in tests).
pub fn backup_with(home: &Path, to: &Path, passphrase: &str, costs: KdfCosts) -> Result<Backup, Error> {
    let cfg = Config::load(&home.join(CONFIG_FILE))?;
    let genesis = Genesis::load(&home.join(GENESIS_FILE))?;
    let data_dir = in_home(home, &cfg.data_dir);
    let socket = home.join(admin::ADMIN_SOCKET);
    let (checkpoint, online) = match admin::request_checkpoint(&socket) {
        Ok(dir) => (Checkpoint(dir), true),
        Err(AdminError::Connect { source, .. })
            if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) =>
        {
            // No node runs: the database is this process's to open (RocksDB refuses it if
            // a node holds it after all). Opening would create one where there is none.
            if !data_dir.join("CURRENT").exists() {
                let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no database here: nothing to back up");
                return Err(Error::Io { path: data_dir, source: missing });
            }
            let storage = Storage::open(&data_dir, genesis.suite)?;
            let dir = admin::checkpoint_dir(&data_dir, now_ms());
            storage.checkpoint(&dir)?;
            (Checkpoint(dir), false)
        }
        Err(err) => return Err(err.into()),
    };
    let info = {
        let storage = Storage::open(&checkpoint.0, genesis.suite)?;
        let tip = storage.tip().ok_or(Error::NoGenesisBlock)?;
        let first = storage.block(0).ok_or(Error::NoGenesisBlock)?;
        if first.header != genesis.block().header {
            return Err(Error::OtherGenesis { chain_id: first.header.chain_id });
        }
        BackupInfo {
            chain_id: genesis.chain_id.clone(),
            suite: genesis.suite,
            genesis_hash: first.header.hash(),
            height: tip.height,
            hash: tip.hash,
            state_root: tip.state_root,
        }
    };
    for entry in std::fs::read_dir(&checkpoint.0).map_err(Error::io(&checkpoint.0))? {
        let entry = entry.map_err(Error::io(&checkpoint.0))?;
        if is_incidental(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(entry.path()).map_err(Error::io(&entry.path()))?;
        }
    }
    let manifest = sealed::write(&checkpoint.0, to, &info, passphrase, costs)?;
    Ok(Backup { manifest, online })
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// The signing high-water mark the home holds now: its own, or the floor given.
    pub mark: (u64, u64),
}

/// Restores the backup in `from` into the home `home` (its config and genesis in place, its
/// database directory absent or empty). `signing_floor` (epoch, view) is required when the
/// home has no signing high-water mark, and refused when it has one.
pub fn restore(
    from: &Path,
    home: &Path,
    passphrase: &str,
    signing_floor: Option<(u64, u64)>,
) -> Result<Restored, Error> {
    let cfg = Config::load(&home.join(CONFIG_FILE))?;
    let genesis = Genesis::load(&home.join(GENESIS_FILE))?;
    let header = sealed::read_header(from)?;
    if header.chain_id != genesis.chain_id || header.suite != genesis.suite {
        return Err(Error::BackupOfAnotherChain {
            backup: format!("{} ({})", header.chain_id, header.suite),
            home: format!("{} ({})", genesis.chain_id, genesis.suite),
        });
    }
    let mark_path = home.join(SIGNING_FILE);
    let held = signing_mark::read(&mark_path)?;
    let mark = match (&held, signing_floor) {
        (Some(file), None) => (file.epoch, file.view),
        (None, Some(floor)) => floor,
        (None, None) => return Err(Error::RestoreWithoutMark { path: mark_path }),
        (Some(_), Some(_)) => return Err(Error::RestoreFloorOverMark { path: mark_path }),
    };
    let data_dir = in_home(home, &cfg.data_dir);
    let occupied = std::fs::read_dir(&data_dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if occupied {
        return Err(Error::RestoreOverData { path: data_dir });
    }
    let (_, manifest) = sealed::open_manifest(from, passphrase)?;
    let genesis_hash = genesis.block().header.hash();
    if manifest.genesis_hash != genesis_hash {
        return Err(Error::BackupOfAnotherChain {
            backup: format!("{} with genesis {}", manifest.chain_id, manifest.genesis_hash),
            home: format!("{} with genesis {genesis_hash}", genesis.chain_id),
        });
    }
    // An empty database directory is replaced whole.
    if data_dir.exists() {
        std::fs::remove_dir(&data_dir).map_err(Error::io(&data_dir))?;
    }
    let manifest = sealed::restore(from, passphrase, &data_dir)?;
    if let Err(err) = check_restored(&data_dir, &genesis, &manifest) {
        let _ = std::fs::remove_dir_all(&data_dir);
        return Err(err);
    }
    if held.is_none() {
        // The node fills in its key when it first opens the mark.
        let file = MarkFile { chain_id: genesis.chain_id.clone(), key: None, epoch: mark.0, view: mark.1 };
        signing_mark::write(&mark_path, &file).map_err(Error::io(&mark_path))?;
    }
    Ok(Restored { manifest, mark })
}

/// The restored database opens, and holds the genesis block and the tip the manifest names.
fn check_restored(data_dir: &Path, genesis: &Genesis, manifest: &Manifest) -> Result<(), Error> {
    let storage = Storage::open(data_dir, genesis.suite)?;
    let first = storage.block(0).ok_or(Error::NoGenesisBlock)?;
    if first.header != genesis.block().header {
        return Err(Error::OtherGenesis { chain_id: first.header.chain_id });
    }
    let tip = storage.tip().ok_or(Error::NoGenesisBlock)?;
    if (tip.height, tip.hash, tip.state_root) != (manifest.height, manifest.hash, manifest.state_root) {
        return Err(Error::RestoredTip {
            found: format!("height {} block {} state {}", tip.height, tip.hash, tip.state_root),
            named: format!("height {} block {} state {}", manifest.height, manifest.hash, manifest.state_root),
        });
    }
    Ok(())
}
