//! Key files: a JSON file holding one key (ed25519 or SM2: the public key's length says
//! which), readable by its owner only; optionally with the secret encrypted under a
//! passphrase: argon2id then ChaCha20-Poly1305 for an ed25519 key, PBKDF2-HMAC-SM3 then
//! SM4-GCM for an SM2 key (so an SM chain's key files use SM algorithms only).
//!
//! An encrypted file is read with the passphrase in `SHUTONG_KEY_PASSPHRASE`, so that every
//! command and service that takes a key file takes an encrypted one the same way.

use serde::{Deserialize, Serialize};
use shutong_types::{AccountId, Keypair, PublicKey, Suite};
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
    #[error("key file {path} is encrypted: set {PASSPHRASE_ENV} to its passphrase")]
    NeedsPassphrase { path: PathBuf },
    #[error("key file {path} does not open with that passphrase (or it was changed)")]
    WrongPassphrase { path: PathBuf },
}

/// The environment variable an encrypted key file's passphrase is read from.
pub const PASSPHRASE_ENV: &str = "SHUTONG_KEY_PASSPHRASE";

#[derive(Serialize, Deserialize)]
struct KeyFile {
    public_key: PublicKey,
    account: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encrypted: Option<Sealed>,
}

/// The secret, sealed: argon2id stretches the passphrase into a key for ChaCha20-Poly1305,
/// or PBKDF2-HMAC-SM3 into a key for SM4-GCM.
#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: String,
    /// argon2id: memory in KiB, passes and lanes.
    #[serde(default)]
    m_cost: u32,
    #[serde(default)]
    t_cost: u32,
    #[serde(default)]
    p_cost: u32,
    /// PBKDF2: iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iterations: Option<u32>,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// argon2id costs for new files: 64 MiB, 3 passes, 1 lane (above OWASP's minimum).
pub(crate) const M_COST: u32 = 64 * 1024;
pub(crate) const T_COST: u32 = 3;
/// The most a file may ask for, so that a hostile key file cannot exhaust memory or time.
pub(crate) const M_COST_MAX: u32 = 1024 * 1024;
pub(crate) const T_COST_MAX: u32 = 16;
/// PBKDF2-HMAC-SM3 iterations for new files (OWASP's figure for PBKDF2 with SHA-256), and
/// the most a file may ask for.
pub(crate) const PBKDF2_ITERATIONS: u32 = 600_000;
pub(crate) const PBKDF2_ITERATIONS_MAX: u32 = 10_000_000;
/// The associated data SM4-GCM binds: the format, so a sealed secret cannot be moved into
/// another kind of file.
const SM4_AAD: &[u8] = b"shutong/key-file/sm4-gcm/v1";

/// argon2id (v0x13) of `passphrase` and `salt` into a 32-byte key; shared with backups.
pub(crate) fn stretch(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<[u8; 32], String> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon.hash_password_into(passphrase.as_bytes(), salt, &mut key).map_err(|e| e.to_string())?;
    Ok(key)
}

fn seal(suite: Suite, secret: &[u8; 32], passphrase: &str, (m, t): (u32, u32), iterations: u32) -> Sealed {
    use chacha20poly1305::aead::{Aead, KeyInit};
    use rand::RngCore;
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    if suite == Suite::Sm2Sm3 {
        let mut key = [0u8; 16];
        shutong_types::sm::pbkdf2_hmac_sm3(passphrase.as_bytes(), &salt, iterations, &mut key);
        let ciphertext = shutong_types::sm::sm4_gcm_seal(&key, &nonce, SM4_AAD, secret);
        return Sealed {
            kdf: "pbkdf2-hmac-sm3".into(),
            m_cost: 0,
            t_cost: 0,
            p_cost: 0,
            iterations: Some(iterations),
            salt: hex::encode(salt),
            cipher: "sm4-gcm".into(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
    }
    let key = stretch(passphrase, &salt, m, t, 1).expect("the built-in argon2 costs are valid");
    let cipher = chacha20poly1305::ChaCha20Poly1305::new((&key).into());
    let ciphertext = cipher.encrypt((&nonce).into(), secret.as_slice()).expect("encrypting 32 bytes cannot fail");
    Sealed {
        kdf: "argon2id".into(),
        m_cost: m,
        t_cost: t,
        p_cost: 1,
        iterations: None,
        salt: hex::encode(salt),
        cipher: "chacha20poly1305".into(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    }
}

fn open(suite: Suite, sealed: &Sealed, passphrase: &str, path: &Path) -> Result<[u8; 32], KeyFileError> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let invalid = |reason: String| KeyFileError::Invalid { path: path.to_path_buf(), reason };
    let bytes = |what: &str, text: &str, len: usize| -> Result<Vec<u8>, KeyFileError> {
        let b = hex::decode(text).map_err(|e| invalid(format!("{what}: {e}")))?;
        if b.len() != len {
            return Err(invalid(format!("{what} is {} bytes, not {len}", b.len())));
        }
        Ok(b)
    };
    let expected = match suite {
        Suite::Ed25519Blake3 => ("argon2id", "chacha20poly1305"),
        Suite::Sm2Sm3 => ("pbkdf2-hmac-sm3", "sm4-gcm"),
    };
    if (sealed.kdf.as_str(), sealed.cipher.as_str()) != expected {
        return Err(invalid(format!(
            "kdf {:?} and cipher {:?} do not seal an {suite} key: it takes {:?} and {:?}",
            sealed.kdf, sealed.cipher, expected.0, expected.1
        )));
    }
    if suite == Suite::Sm2Sm3 {
        let iterations = sealed.iterations.unwrap_or(0);
        if iterations == 0 || iterations > PBKDF2_ITERATIONS_MAX {
            return Err(invalid(format!(
                "{iterations} PBKDF2 iterations: a key file may ask for 1 to {PBKDF2_ITERATIONS_MAX}"
            )));
        }
        let salt = bytes("salt", &sealed.salt, 16)?;
        let nonce: [u8; 12] = bytes("nonce", &sealed.nonce, 12)?.try_into().expect("12 bytes");
        let ciphertext = bytes("ciphertext", &sealed.ciphertext, 48)?;
        let mut key = [0u8; 16];
        shutong_types::sm::pbkdf2_hmac_sm3(passphrase.as_bytes(), &salt, iterations, &mut key);
        let plain = shutong_types::sm::sm4_gcm_open(&key, &nonce, SM4_AAD, &ciphertext)
            .map_err(|_| KeyFileError::WrongPassphrase { path: path.to_path_buf() })?;
        return plain.try_into().map_err(|_| invalid("the sealed secret is not 32 bytes".into()));
    }
    if sealed.m_cost > M_COST_MAX || sealed.t_cost > T_COST_MAX || sealed.p_cost != 1 {
        return Err(invalid(format!(
            "argon2 costs m={} KiB, t={}, p={} are beyond what a key file may ask (m ≤ {M_COST_MAX}, t ≤ {T_COST_MAX}, p = 1)",
            sealed.m_cost, sealed.t_cost, sealed.p_cost
        )));
    }
    let salt = bytes("salt", &sealed.salt, 16)?;
    let nonce = bytes("nonce", &sealed.nonce, 12)?;
    let ciphertext = bytes("ciphertext", &sealed.ciphertext, 48)?;
    let key = stretch(passphrase, &salt, sealed.m_cost, sealed.t_cost, 1).map_err(invalid)?;
    let cipher = chacha20poly1305::ChaCha20Poly1305::new((&key).into());
    let plain = cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| KeyFileError::WrongPassphrase { path: path.to_path_buf() })?;
    plain.try_into().map_err(|_| invalid("the sealed secret is not 32 bytes".into()))
}

/// A key file is a few hundred bytes; anything much larger is not one.
pub const KEY_FILE_BYTES_MAX: u64 = 4096;

/// Writes `key` to `path` with mode 0600.
pub fn write(path: &Path, key: &Keypair, force: bool) -> Result<(), KeyFileError> {
    let body = KeyFile {
        public_key: key.public(),
        account: key.account(),
        secret_key: Some(hex::encode(key.secret())),
        encrypted: None,
    };
    write_file(path, &body, force)
}

/// Writes `key` to `path` with mode 0600, its secret sealed under `passphrase`.
pub fn write_encrypted(path: &Path, key: &Keypair, passphrase: &str, force: bool) -> Result<(), KeyFileError> {
    write_encrypted_with(path, key, passphrase, force, (M_COST, T_COST), PBKDF2_ITERATIONS)
}

fn write_encrypted_with(
    path: &Path,
    key: &Keypair,
    passphrase: &str,
    force: bool,
    (m, t): (u32, u32),
    iterations: u32,
) -> Result<(), KeyFileError> {
    let sealed = seal(key.suite(), &key.secret(), passphrase, (m, t), iterations);
    let body = KeyFile { public_key: key.public(), account: key.account(), secret_key: None, encrypted: Some(sealed) };
    write_file(path, &body, force)
}

fn write_file(path: &Path, body: &KeyFile, force: bool) -> Result<(), KeyFileError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| KeyFileError::Write { path: path.to_path_buf(), source };
    if path.exists() && !force {
        return Err(KeyFileError::Exists { path: path.to_path_buf() });
    }
    let json = serde_json::to_string_pretty(&body).expect("key file serialises");
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
    file.write_all(json.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}

/// Reads a key file, refusing one that others can read; an encrypted one opens with the
/// passphrase in [`PASSPHRASE_ENV`].
pub fn read(path: &Path) -> Result<Keypair, KeyFileError> {
    read_with(path, std::env::var(PASSPHRASE_ENV).ok().as_deref())
}

/// Reads a key file with `passphrase` for an encrypted one.
pub fn read_with(path: &Path, passphrase: Option<&str>) -> Result<Keypair, KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let read_err = |source| KeyFileError::Read { path: path.to_path_buf(), source };
    let mode = std::fs::metadata(path).map_err(read_err)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { path: path.to_path_buf(), mode });
    }
    let invalid = |reason: String| KeyFileError::Invalid { path: path.to_path_buf(), reason };
    let text = crate::files::read_bounded(path, KEY_FILE_BYTES_MAX)
        .map_err(read_err)?
        .ok_or_else(|| invalid(format!("larger than {KEY_FILE_BYTES_MAX} bytes")))?;
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let secret: [u8; 32] = match (&file.secret_key, &file.encrypted) {
        (Some(hex_secret), None) => {
            let secret = hex::decode(hex_secret).map_err(|e| invalid(format!("secret_key: {e}")))?;
            secret.try_into().map_err(|_| invalid("secret_key is not 32 bytes".into()))?
        }
        (None, Some(sealed)) => {
            let passphrase = passphrase.ok_or_else(|| KeyFileError::NeedsPassphrase { path: path.to_path_buf() })?;
            open(file.public_key.suite(), sealed, passphrase, path)?
        }
        _ => return Err(invalid("it must hold exactly one of secret_key and encrypted".into())),
    };
    let key = Keypair::from_secret(file.public_key.suite(), secret)
        .map_err(|e| invalid(format!("secret_key is no {} key: {e}", file.public_key.suite())))?;
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

    /// Small argon2 costs keep the test fast; the format and checks are the same.
    const TEST_COSTS: (u32, u32) = (1024, 1);

    #[test]
    fn an_encrypted_key_opens_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = Keypair::from_seed("sealed");
        write_encrypted_with(&path, &key, "correct horse", false, TEST_COSTS, 1_000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(key.secret())), "the secret is not in the file");
        assert_eq!(read_with(&path, Some("correct horse")).unwrap().public(), key.public());
        assert!(matches!(read_with(&path, Some("wrong")), Err(KeyFileError::WrongPassphrase { .. })));
        assert!(matches!(read_with(&path, None), Err(KeyFileError::NeedsPassphrase { .. })));

        // A changed ciphertext fails authentication; costs beyond the bounds are refused
        // before any work is done.
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ct = json["encrypted"]["ciphertext"].as_str().unwrap().to_string();
        json["encrypted"]["ciphertext"] = format!("{}{}", if ct.starts_with('0') { "1" } else { "0" }, &ct[1..]).into();
        std::fs::write(&path, json.to_string()).unwrap();
        assert!(matches!(read_with(&path, Some("correct horse")), Err(KeyFileError::WrongPassphrase { .. })));
        json["encrypted"]["ciphertext"] = ct.into();
        json["encrypted"]["m_cost"] = (M_COST_MAX + 1).into();
        std::fs::write(&path, json.to_string()).unwrap();
        let err = read_with(&path, Some("correct horse")).unwrap_err();
        assert!(err.to_string().contains("beyond what a key file may ask"), "{err}");
    }

    #[test]
    fn an_sm2_key_is_sealed_with_sm4_under_pbkdf2_hmac_sm3_and_opens_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sm.json");
        let key = Keypair::from_seed_in(Suite::Sm2Sm3, "sealed");
        write(&path, &key, false).unwrap();
        assert_eq!(read(&path).unwrap().public(), key.public(), "a plain SM2 key file reads back");
        write_encrypted_with(&path, &key, "correct horse", true, TEST_COSTS, 1_000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (json["encrypted"]["kdf"].as_str(), json["encrypted"]["cipher"].as_str()),
            (Some("pbkdf2-hmac-sm3"), Some("sm4-gcm"))
        );
        assert!(!text.contains(&hex::encode(key.secret())), "the secret is not in the file");
        assert_eq!(read_with(&path, Some("correct horse")).unwrap().public(), key.public());
        assert!(matches!(read_with(&path, Some("wrong")), Err(KeyFileError::WrongPassphrase { .. })));

        // An SM2 key sealed the ed25519 way is refused by name, as are hostile costs.
        let mut other = json.clone();
        other["encrypted"]["kdf"] = "argon2id".into();
        std::fs::write(&path, other.to_string()).unwrap();
        let err = read_with(&path, Some("correct horse")).unwrap_err().to_string();
        assert!(err.contains("do not seal an sm2-sm3 key"), "{err}");
        let mut costly = json;
        costly["encrypted"]["iterations"] = (PBKDF2_ITERATIONS_MAX + 1).into();
        std::fs::write(&path, costly.to_string()).unwrap();
        let err = read_with(&path, Some("correct horse")).unwrap_err().to_string();
        assert!(err.contains("PBKDF2 iterations"), "{err}");
    }
}
