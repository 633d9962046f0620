//! Key files: a JSON file holding one ed25519 key, readable by its owner only.

use serde::{Deserialize, Serialize};
use shutong_types::{AccountId, Keypair, PublicKey};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path} already exists; pass --force to overwrite it")]
    Exists { path: PathBuf },
    #[error("cannot read key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("key file {path} is not a shutong key file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("key file {path} can be read by others (mode {mode:o}); run: chmod 600 {path}")]
    Permissions { path: PathBuf, mode: u32 },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    public_key: PublicKey,
    account: AccountId,
    secret_key: String,
}

/// A key file is a few hundred bytes; anything much larger is not one.
pub const KEY_FILE_BYTES_MAX: u64 = 4096;

/// Reads a UTF-8 file of at most `max` bytes; `Ok(None)` if it is larger. Used for every
/// file an operator hands the node (config, genesis, keys), so that none can make it
/// allocate without bound.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let mut text = String::new();
    let file = std::fs::File::open(path)?;
    let read = file.take(max + 1).read_to_string(&mut text)?;
    Ok((read as u64 <= max).then_some(text))
}

/// Writes `key` to `path` with mode 0600.
pub fn write(path: &Path, key: &Keypair, force: bool) -> Result<(), KeyFileError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| KeyFileError::Write { path: path.to_path_buf(), source };
    if path.exists() && !force {
        return Err(KeyFileError::Exists { path: path.to_path_buf() });
    }
    let body = KeyFile { public_key: key.public(), account: key.account(), secret_key: hex::encode(key.secret()) };
    let json = serde_json::to_string_pretty(&body).expect("key file serialises");
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
    file.write_all(json.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}

/// Reads a key file, refusing one that others can read.
pub fn read(path: &Path) -> Result<Keypair, KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let read_err = |source| KeyFileError::Read { path: path.to_path_buf(), source };
    let mode = std::fs::metadata(path).map_err(read_err)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { path: path.to_path_buf(), mode });
    }
    let invalid = |reason: String| KeyFileError::Invalid { path: path.to_path_buf(), reason };
    let text = read_bounded(path, KEY_FILE_BYTES_MAX)
        .map_err(read_err)?
        .ok_or_else(|| invalid(format!("larger than {KEY_FILE_BYTES_MAX} bytes")))?;
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let secret = hex::decode(&file.secret_key).map_err(|e| invalid(format!("secret_key: {e}")))?;
    let secret: [u8; 32] = secret.try_into().map_err(|_| invalid("secret_key is not 32 bytes".into()))?;
    let key = Keypair::from_secret(secret);
    if key.public() != file.public_key || key.account() != file.account {
        return Err(invalid("public_key or account does not match secret_key".into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_written_key_reads_back_and_a_readable_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("shutong-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.json");
        let key = Keypair::from_seed("k");
        write(&path, &key, false).unwrap();
        assert_eq!(read(&path).unwrap().public(), key.public());
        assert!(matches!(write(&path, &key, false), Err(KeyFileError::Exists { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read(&path), Err(KeyFileError::Permissions { mode: 0o644, .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
