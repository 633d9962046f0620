//! Encrypted, authenticated backups of a node's database.
//!
//! A RocksDB checkpoint (a flat directory of regular files) is sealed into a backup
//! directory under a passphrase, following the chain's crypto suite as key files do
//! ([`crate::keyfile`]): argon2id then ChaCha20-Poly1305 on an ed25519 chain,
//! PBKDF2-HMAC-SM3 then SM4-GCM on an SM chain. A backup directory holds:
//!
//! - `backup.json`: the plaintext [`Header`] (format, suite, chain, KDF and its parameters,
//!   salt, cipher, chunk size), so a restore can refuse a newer format or another chain
//!   before any passphrase is tried. Its exact bytes are the associated data of every
//!   sealed chunk, so an edited header makes every chunk fail authentication. It also holds
//!   a passphrase check (the tag of an empty message sealed under the key), which tells a
//!   wrong passphrase from an altered backup.
//! - `manifest.sealed`: the [`Manifest`] (the chain's tip and every file's name, length and
//!   digest), sealed as file 0. It is written last, so an interrupted backup has none and
//!   does not restore.
//! - `files/<i>.sealed` for `i` in `1..=n`: the manifest's `i`-th file.
//!
//! Each file is sealed with the STREAM construction: its plaintext is cut into chunks of
//! `chunk_bytes` and chunk `j` of file `i` is sealed under the nonce
//! `i (u32 BE) ‖ j (u32 BE) ‖ 0 0 0 ‖ last (1 on the file's last chunk, else 0)`; an empty
//! file is one empty last chunk. A truncated file, reordered chunks, a chunk moved from
//! another file or swapped files therefore fail to open, and the error names the file.
//! Files are streamed: at most a chunk of plaintext and a chunk of ciphertext are held at
//! once, whatever the files' sizes.
//!
//! A backup is adversarial input on restore: the header's KDF costs are bounded as a key
//! file's are, the header and manifest are read with bounds, every file name is checked so
//! that no path can leave the target, and the files are unsealed into a temporary sibling
//! of the target that is renamed into place only once every file has checked.

use crate::keyfile::{M_COST, M_COST_MAX, PBKDF2_ITERATIONS, PBKDF2_ITERATIONS_MAX, T_COST, T_COST_MAX};
use serde::{Deserialize, Serialize};
use shutong_types::{FileHasher, Hash, Suite};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The environment variable a backup's passphrase is read from (by the commands that call
/// this module).
pub const PASSPHRASE_ENV: &str = "SHUTONG_BACKUP_PASSPHRASE";

/// The backup format this module writes, and the newest it reads.
pub const FORMAT: u32 = 1;

/// The plaintext bytes per sealed chunk in new backups: 1 MiB.
pub const CHUNK_BYTES: u32 = 1 << 20;

/// The most a header may ask for per chunk, so that a hostile one cannot make a restore
/// allocate without bound.
const CHUNK_BYTES_MAX: u32 = 16 << 20;
/// The largest header and manifest a restore reads.
const HEADER_BYTES_MAX: u64 = 64 * 1024;
const MANIFEST_BYTES_MAX: u64 = 16 << 20;
/// The longest file name a manifest may hold (NAME_MAX on Linux).
const NAME_BYTES_MAX: usize = 255;

const HEADER_FILE: &str = "backup.json";
const MANIFEST_FILE: &str = "manifest.sealed";
const FILES_DIR: &str = "files";
/// The suffix of the temporary sibling a restore unseals into.
const RESTORE_SUFFIX: &str = ".restoring";

/// The AEAD tag's length, the same (16 bytes) for both ciphers.
const TAG_BYTES: usize = 16;
/// The associated data of the header's passphrase check, sealed under a nonce no file uses.
const CHECK_AAD: &[u8] = b"shutong/backup/passphrase-check/v1";

/// Why a backup could not be written, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the backup passphrase is empty: set {PASSPHRASE_ENV} to a passphrase")]
    EmptyPassphrase,
    #[error("{path} exists and is not an empty directory: name a new directory, or empty it first")]
    TargetNotEmpty { path: PathBuf },
    #[error("cannot restore into {path}: {reason}")]
    InvalidTarget { path: PathBuf, reason: String },
    #[error("cannot back up {path}: {reason}; back up a database checkpoint, a directory of plain files")]
    Source { path: PathBuf, reason: String },
    #[error("{file} is missing: the backup is incomplete; restore from a complete copy")]
    Missing { file: PathBuf },
    #[error("backup header {path} is not valid: {reason}")]
    InvalidHeader { path: PathBuf, reason: String },
    #[error(
        "the backup is format {found}, newer than this shutong reads ({supported}): restore it with a newer shutong"
    )]
    NewerFormat { found: u32, supported: u32 },
    #[error(
        "the backup {path} does not open with that passphrase (or its {HEADER_FILE} was changed): check {PASSPHRASE_ENV}"
    )]
    WrongPassphrase { path: PathBuf },
    #[error("the backup's manifest {path} is not valid: {reason}")]
    InvalidManifest { path: PathBuf, reason: String },
    #[error("the backup's manifest names a file {name:?}: {reason}; refusing the whole backup")]
    UnsafeName { name: String, reason: String },
    #[error("{file} ends before its last chunk: the backup was cut short; restore from a complete copy")]
    Truncated { file: PathBuf },
    #[error(
        "{file} fails authentication: it, or the backup's {HEADER_FILE}, was altered or damaged, or files were swapped; restore from another copy"
    )]
    Corrupted { file: PathBuf },
    #[error("{file} has data after its last chunk: it was altered; restore from another copy")]
    TrailingData { file: PathBuf },
    #[error("restored file {name} does not match the manifest: {reason}; the backup is not consistent")]
    FileMismatch { name: String, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_path_buf(), source }
}

/// What the caller knows of the database it backs up; the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub chain_id: String,
    pub suite: Suite,
    pub genesis_hash: Hash,
    /// The tip: height, block hash and state root.
    pub height: u64,
    pub hash: Hash,
    pub state_root: Hash,
}

/// The KDF costs a new backup is sealed with. Production uses [`KdfCosts::default`];
/// tests use small ones. They must lie within the bounds a restore accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCosts {
    /// argon2id memory in KiB (ed25519 chains).
    pub argon2_m_kib: u32,
    /// argon2id passes (ed25519 chains).
    pub argon2_t: u32,
    /// PBKDF2-HMAC-SM3 iterations (SM chains).
    pub pbkdf2_iterations: u32,
}

impl Default for KdfCosts {
    /// argon2id with 64 MiB, 3 passes and 1 lane; PBKDF2-HMAC-SM3 with 600,000 iterations:
    /// as for key files.
    fn default() -> KdfCosts {
        KdfCosts { argon2_m_kib: M_COST, argon2_t: T_COST, pbkdf2_iterations: PBKDF2_ITERATIONS }
    }
}

/// `backup.json`: what a restore needs before the passphrase, in plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub suite: Suite,
    pub chain_id: String,
    /// `argon2id` (ed25519 chains) or `pbkdf2-hmac-sm3` (SM chains).
    pub kdf: String,
    /// argon2id: memory in KiB, passes and lanes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m_cost: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_cost: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_cost: Option<u32>,
    /// PBKDF2: iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u32>,
    /// 16 random bytes, hex.
    pub salt: String,
    /// `chacha20poly1305` (ed25519 chains) or `sm4-gcm` (SM chains).
    pub cipher: String,
    /// Plaintext bytes per sealed chunk.
    pub chunk_bytes: u32,
    /// The tag of the empty message sealed under the key with a nonce no file uses (hex):
    /// tells a wrong passphrase from an altered backup.
    pub passphrase_check: String,
}

/// The manifest: the database's tip and its files, sealed as file 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub chain_id: String,
    pub suite: Suite,
    pub genesis_hash: Hash,
    pub height: u64,
    pub hash: Hash,
    pub state_root: Hash,
    pub created_unix_ms: u64,
    /// The database's files; the `i`-th (from 1) is sealed in `files/<i>.sealed`.
    pub files: Vec<FileEntry>,
}

/// One database file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    /// The plaintext's digest under the chain's suite: BLAKE3, or SM3 on an `sm2-sm3`
    /// chain ([`shutong_types::FileHasher`]).
    pub digest: Hash,
}

/// The key, for the suite's cipher.
enum Cipher {
    ChaCha(chacha20poly1305::ChaCha20Poly1305),
    Sm4([u8; 16]),
}

impl Cipher {
    /// The suite whose cipher this is, and whose hash digests the files.
    fn suite(&self) -> Suite {
        match self {
            Cipher::ChaCha(_) => Suite::Ed25519Blake3,
            Cipher::Sm4(_) => Suite::Sm2Sm3,
        }
    }

    fn seal(&self, nonce: &[u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, Payload};
        match self {
            Cipher::ChaCha(c) => {
                c.encrypt(nonce.into(), Payload { msg: plain, aad }).expect("ChaCha20-Poly1305 seals any chunk")
            }
            Cipher::Sm4(key) => shutong_types::sm::sm4_gcm_seal(key, nonce, aad, plain),
        }
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        use chacha20poly1305::aead::{Aead, Payload};
        match self {
            Cipher::ChaCha(c) => c.decrypt(nonce.into(), Payload { msg: sealed, aad }).ok(),
            Cipher::Sm4(key) => shutong_types::sm::sm4_gcm_open(key, nonce, aad, sealed).ok(),
        }
    }
}

/// The STREAM nonce of chunk `chunk` of file `file`.
fn nonce(file: u32, chunk: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&file.to_be_bytes());
    n[4..8].copy_from_slice(&chunk.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// The passphrase check's nonce: file `u32::MAX` never exists (a backup has fewer files).
fn check_nonce() -> [u8; 12] {
    nonce(u32::MAX, u32::MAX, true)
}

fn suite_algorithms(suite: Suite) -> (&'static str, &'static str) {
    match suite {
        Suite::Ed25519Blake3 => ("argon2id", "chacha20poly1305"),
        Suite::Sm2Sm3 => ("pbkdf2-hmac-sm3", "sm4-gcm"),
    }
}

/// Checks everything in a parsed header that needs no passphrase, naming the field.
fn check_header(header: &Header) -> Result<[u8; 16], String> {
    if header.format != FORMAT {
        return Err(format!("format {} is not one this shutong reads ({FORMAT})", header.format));
    }
    let chain_max = shutong_types::limits::CHAIN_ID_BYTES_MAX as usize;
    if header.chain_id.is_empty() || header.chain_id.len() > chain_max {
        return Err(format!("chain_id must be 1 to {chain_max} bytes"));
    }
    let (kdf, cipher) = suite_algorithms(header.suite);
    if header.kdf != kdf || header.cipher != cipher {
        return Err(format!(
            "kdf {:?} and cipher {:?} do not seal an {} backup: it takes {kdf:?} and {cipher:?}",
            header.kdf, header.cipher, header.suite
        ));
    }
    let bounded = |field: &str, value: Option<u32>, min: u32, max: u32| match value {
        None => Err(format!("{field} is missing: {kdf} needs it")),
        Some(v) if v < min || v > max => Err(format!("{field} is {v}: a backup may ask for {min} to {max}")),
        Some(_) => Ok(()),
    };
    let absent = |field: &str, value: Option<u32>| match value {
        Some(_) => Err(format!("{field} is not a parameter of {kdf}")),
        None => Ok(()),
    };
    match header.suite {
        Suite::Ed25519Blake3 => {
            // argon2 needs at least 8 KiB per lane.
            bounded("m_cost", header.m_cost, 8, M_COST_MAX)?;
            bounded("t_cost", header.t_cost, 1, T_COST_MAX)?;
            bounded("p_cost", header.p_cost, 1, 1)?;
            absent("iterations", header.iterations)?;
        }
        Suite::Sm2Sm3 => {
            bounded("iterations", header.iterations, 1, PBKDF2_ITERATIONS_MAX)?;
            absent("m_cost", header.m_cost)?;
            absent("t_cost", header.t_cost)?;
            absent("p_cost", header.p_cost)?;
        }
    }
    if header.chunk_bytes == 0 || header.chunk_bytes > CHUNK_BYTES_MAX {
        return Err(format!("chunk_bytes is {}: a backup may ask for 1 to {CHUNK_BYTES_MAX}", header.chunk_bytes));
    }
    let check = hex::decode(&header.passphrase_check).map_err(|e| format!("passphrase_check: {e}"))?;
    if check.len() != TAG_BYTES {
        return Err(format!("passphrase_check is {} bytes, not {TAG_BYTES}", check.len()));
    }
    let salt = hex::decode(&header.salt).map_err(|e| format!("salt: {e}"))?;
    salt.try_into().map_err(|s: Vec<u8>| format!("salt is {} bytes, not 16", s.len()))
}

/// Stretches the passphrase with the header's KDF into the header's cipher's key. The
/// header must have passed [`check_header`].
fn derive(header: &Header, salt: &[u8; 16], passphrase: &str) -> Result<Cipher, String> {
    use chacha20poly1305::KeyInit;
    match header.suite {
        Suite::Ed25519Blake3 => {
            let (m, t, p) = (header.m_cost.unwrap_or(0), header.t_cost.unwrap_or(0), header.p_cost.unwrap_or(0));
            let key = crate::keyfile::stretch(passphrase, salt, m, t, p).map_err(|e| format!("argon2id: {e}"))?;
            Ok(Cipher::ChaCha(chacha20poly1305::ChaCha20Poly1305::new((&key).into())))
        }
        Suite::Sm2Sm3 => {
            let mut key = [0u8; 16];
            let iterations = header.iterations.unwrap_or(0);
            shutong_types::sm::pbkdf2_hmac_sm3(passphrase.as_bytes(), salt, iterations, &mut key);
            Ok(Cipher::Sm4(key))
        }
    }
}

/// A header as read: parsed, checked, and its exact bytes (every chunk's associated data).
struct LoadedHeader {
    header: Header,
    bytes: Vec<u8>,
    salt: [u8; 16],
}

fn load_header(dir: &Path) -> Result<LoadedHeader, BackupError> {
    let path = dir.join(HEADER_FILE);
    let invalid = |reason: String| BackupError::InvalidHeader { path: path.clone(), reason };
    let bytes = match crate::files::read_bounded_bytes(&path, HEADER_BYTES_MAX) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(invalid(format!("larger than {HEADER_BYTES_MAX} bytes"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::Missing { file: path }),
        Err(source) => return Err(BackupError::Io { path, source }),
    };
    // The format first, so a newer backup is named as such whatever else it holds.
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let format: Format = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if format.format > FORMAT {
        return Err(BackupError::NewerFormat { found: format.format, supported: FORMAT });
    }
    let header: Header = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    let salt = check_header(&header).map_err(invalid)?;
    Ok(LoadedHeader { header, bytes, salt })
}

/// Reads and checks a backup's header: its format, suite, KDF and bounds. Needs no
/// passphrase; the caller compares `chain_id` and `suite` with its own chain's.
pub fn read_header(dir: &Path) -> Result<Header, BackupError> {
    load_header(dir).map(|loaded| loaded.header)
}

/// A reader with one byte of lookahead, so that it can tell whether it is at its end.
struct Peek<R> {
    inner: R,
    pending: Option<u8>,
}

impl<R: Read> Peek<R> {
    fn new(inner: R) -> Peek<R> {
        Peek { inner, pending: None }
    }

    /// Fills `buf` as far as the input goes: fewer bytes only at the end.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        if let (Some(byte), Some(first)) = (self.pending, buf.first_mut()) {
            *first = byte;
            self.pending = None;
            n = 1;
        }
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn at_end(&mut self) -> std::io::Result<bool> {
        if self.pending.is_some() {
            return Ok(false);
        }
        let mut byte = [0u8; 1];
        loop {
            match self.inner.read(&mut byte) {
                Ok(0) => return Ok(true),
                Ok(_) => {
                    self.pending = Some(byte[0]);
                    return Ok(false);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

enum SealFail {
    Read(std::io::Error),
    Write(std::io::Error),
    TooLarge,
}

/// Seals `input` as file `index` into `output`, chunk by chunk; returns its length and
/// digest.
fn seal_stream(
    cipher: &Cipher,
    aad: &[u8],
    index: u32,
    chunk_bytes: usize,
    input: impl Read,
    output: &mut impl Write,
) -> Result<(u64, Hash), SealFail> {
    let mut input = Peek::new(input);
    let mut buf = vec![0u8; chunk_bytes];
    let mut hasher = FileHasher::new(cipher.suite());
    let mut total = 0u64;
    let mut chunk = 0u32;
    loop {
        let n = input.fill(&mut buf).map_err(SealFail::Read)?;
        let last = n < chunk_bytes || input.at_end().map_err(SealFail::Read)?;
        hasher.update(&buf[..n]);
        total += n as u64;
        output.write_all(&cipher.seal(&nonce(index, chunk, last), aad, &buf[..n])).map_err(SealFail::Write)?;
        if last {
            return Ok((total, hasher.finalize()));
        }
        chunk = chunk.checked_add(1).ok_or(SealFail::TooLarge)?;
    }
}

enum OpenFail {
    Read(std::io::Error),
    Truncated,
    Corrupted,
    Trailing,
    Sink(BackupError),
}

/// The length of a sealed file of `bytes` plaintext bytes.
fn sealed_len(bytes: u64, chunk_bytes: u32) -> u64 {
    let chunks = bytes.div_ceil(u64::from(chunk_bytes)).max(1);
    bytes.saturating_add(chunks.saturating_mul(TAG_BYTES as u64))
}

/// Opens the sealed file `index` from `input`, handing each chunk's plaintext to `sink`.
/// `expected` is the sealed length if known (from the manifest): it tells a chunk cut short
/// from an altered one.
fn open_stream(
    cipher: &Cipher,
    aad: &[u8],
    index: u32,
    chunk_bytes: u32,
    input: impl Read,
    expected: Option<u64>,
    mut sink: impl FnMut(&[u8]) -> Result<(), BackupError>,
) -> Result<(), OpenFail> {
    let full = chunk_bytes as usize + TAG_BYTES;
    let mut input = Peek::new(input);
    let mut buf = vec![0u8; full];
    let mut read = 0u64;
    let mut chunk = 0u32;
    loop {
        let n = input.fill(&mut buf).map_err(OpenFail::Read)?;
        read += n as u64;
        let sealed = &buf[..n];
        let at_end = n < full || input.at_end().map_err(OpenFail::Read)?;
        // A chunk that fails to open: cut short, lengthened or altered? The manifest's
        // length for the file tells.
        let failed = || match expected {
            Some(e) if at_end && read < e => OpenFail::Truncated,
            Some(e) if read > e => OpenFail::Trailing,
            None if at_end && n < TAG_BYTES => OpenFail::Truncated,
            _ => OpenFail::Corrupted,
        };
        if at_end {
            if let Some(plain) = cipher.open(&nonce(index, chunk, true), aad, sealed) {
                return sink(&plain).map_err(OpenFail::Sink);
            }
            if n == full && cipher.open(&nonce(index, chunk, false), aad, sealed).is_some() {
                // A whole chunk that is not the last, then the end: cut at a chunk boundary.
                return Err(OpenFail::Truncated);
            }
            return Err(failed());
        }
        match cipher.open(&nonce(index, chunk, false), aad, sealed) {
            Some(plain) => sink(&plain).map_err(OpenFail::Sink)?,
            // The file's last chunk, with more after it.
            None if cipher.open(&nonce(index, chunk, true), aad, sealed).is_some() => {
                return Err(OpenFail::Trailing);
            }
            None => return Err(failed()),
        }
        chunk = chunk.checked_add(1).ok_or(OpenFail::Trailing)?;
    }
}

fn open_fail(file: &Path, fail: OpenFail) -> BackupError {
    let file = file.to_path_buf();
    match fail {
        OpenFail::Read(source) => BackupError::Io { path: file, source },
        OpenFail::Truncated => BackupError::Truncated { file },
        OpenFail::Corrupted => BackupError::Corrupted { file },
        OpenFail::Trailing => BackupError::TrailingData { file },
        OpenFail::Sink(e) => e,
    }
}

/// Why `name` is not a plain database file name, if it is not: 1 to 255 bytes of ASCII
/// letters, digits, `.`, `-` and `_`, and neither `.` nor `..`. A RocksDB checkpoint's
/// names all are; nothing else can reach outside the target.
fn bad_name(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Some(format!("a file name is 1 to {NAME_BYTES_MAX} bytes"));
    }
    if name == "." || name == ".." || name.contains("..") {
        return Some("a file name may not be or hold \"..\" or be \".\"".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        return Some(format!("a file name holds only ASCII letters, digits, '.', '-' and '_', not {c:?}"));
    }
    None
}

fn fsync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `path` is absent (`Ok(false)`) or an empty directory (`Ok(true)`); anything else
/// is [`BackupError::TargetNotEmpty`].
fn empty_or_absent(path: &Path) -> Result<bool, BackupError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(BackupError::Io { path: path.to_path_buf(), source }),
        Ok(meta) if !meta.is_dir() => Err(BackupError::TargetNotEmpty { path: path.to_path_buf() }),
        Ok(_) => match std::fs::read_dir(path).map_err(io_err(path))?.next() {
            None => Ok(true),
            Some(_) => Err(BackupError::TargetNotEmpty { path: path.to_path_buf() }),
        },
    }
}

/// The source's files, sorted by name, each checked to be a regular file with a plain name.
fn list_source(source: &Path) -> Result<Vec<String>, BackupError> {
    let refuse = |reason: String| BackupError::Source { path: source.to_path_buf(), reason };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(source).map_err(io_err(source))? {
        let entry = entry.map_err(io_err(source))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(refuse(format!("{:?} is not a UTF-8 file name", name)));
        };
        if let Some(reason) = bad_name(name) {
            return Err(refuse(format!("{name:?} is not a plain file name ({reason})")));
        }
        let kind = std::fs::symlink_metadata(entry.path()).map_err(io_err(&entry.path()))?.file_type();
        if !kind.is_file() {
            return Err(refuse(format!("{name:?} is not a regular file (a directory or a link?)")));
        }
        names.push(name.to_string());
    }
    names.sort();
    if names.len() >= u32::MAX as usize {
        return Err(refuse("it holds too many files".into()));
    }
    Ok(names)
}

/// Seals every file of `source` (a database checkpoint) into the new backup directory `to`
/// under `passphrase`, with the KDF costs `costs` ([`KdfCosts::default`] in production).
/// `to` must not exist or be an empty directory. Files and directories are fsynced; the
/// manifest is written last. On error, what was written into `to` is removed.
pub fn write(
    source: &Path,
    to: &Path,
    info: &BackupInfo,
    passphrase: &str,
    costs: KdfCosts,
) -> Result<Manifest, BackupError> {
    write_with(source, to, info, passphrase, costs, CHUNK_BYTES)
}

fn write_with(
    source: &Path,
    to: &Path,
    info: &BackupInfo,
    passphrase: &str,
    costs: KdfCosts,
    chunk_bytes: u32,
) -> Result<Manifest, BackupError> {
    if passphrase.is_empty() {
        return Err(BackupError::EmptyPassphrase);
    }
    let existed = empty_or_absent(to)?;
    let names = list_source(source)?;
    if !existed {
        std::fs::create_dir(to).map_err(io_err(to))?;
    }
    let result = write_into(source, to, &names, info, passphrase, costs, chunk_bytes);
    if result.is_err() {
        if existed {
            let _ = std::fs::remove_file(to.join(HEADER_FILE));
            let _ = std::fs::remove_file(to.join(MANIFEST_FILE));
            let _ = std::fs::remove_dir_all(to.join(FILES_DIR));
        } else {
            let _ = std::fs::remove_dir_all(to);
        }
    } else if !existed {
        fsync_dir(parent_of(to))?;
    }
    result
}

/// Creates `path` (which must not exist) and writes it through `write`, then fsyncs it.
fn create_synced<T>(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(io_err(path))?;
    let value = write(&mut file)?;
    file.sync_all().map_err(io_err(path))?;
    Ok(value)
}

fn write_into(
    source: &Path,
    to: &Path,
    names: &[String],
    info: &BackupInfo,
    passphrase: &str,
    costs: KdfCosts,
    chunk_bytes: u32,
) -> Result<Manifest, BackupError> {
    use rand::RngCore;
    let header_path = to.join(HEADER_FILE);
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let (kdf, cipher_name) = suite_algorithms(info.suite);
    let argon = info.suite == Suite::Ed25519Blake3;
    let mut header = Header {
        format: FORMAT,
        suite: info.suite,
        chain_id: info.chain_id.clone(),
        kdf: kdf.into(),
        m_cost: argon.then_some(costs.argon2_m_kib),
        t_cost: argon.then_some(costs.argon2_t),
        p_cost: argon.then_some(1),
        iterations: (!argon).then_some(costs.pbkdf2_iterations),
        salt: hex::encode(salt),
        cipher: cipher_name.into(),
        chunk_bytes,
        passphrase_check: hex::encode([0u8; TAG_BYTES]),
    };
    // The same checks a restore makes, so that no backup is written that cannot be read.
    let invalid = |reason: String| BackupError::InvalidHeader { path: header_path.clone(), reason };
    check_header(&header).map_err(invalid)?;
    let cipher = derive(&header, &salt, passphrase).map_err(invalid)?;
    header.passphrase_check = hex::encode(cipher.seal(&check_nonce(), CHECK_AAD, &[]));
    let aad = serde_json::to_vec_pretty(&header).expect("a header serialises");
    create_synced(&header_path, |f| f.write_all(&aad).map_err(io_err(&header_path)))?;

    let files_dir = to.join(FILES_DIR);
    std::fs::create_dir(&files_dir).map_err(io_err(&files_dir))?;
    let mut files = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let index = u32::try_from(i + 1).expect("list_source bounds the number of files");
        let from = source.join(name);
        let sealed = files_dir.join(format!("{index}.sealed"));
        let input = std::fs::File::open(&from).map_err(io_err(&from))?;
        let (bytes, digest) = create_synced(&sealed, |out| {
            seal_stream(&cipher, &aad, index, chunk_bytes as usize, input, out).map_err(|fail| match fail {
                SealFail::Read(source) => BackupError::Io { path: from.clone(), source },
                SealFail::Write(source) => BackupError::Io { path: sealed.clone(), source },
                SealFail::TooLarge => {
                    BackupError::Source { path: from.clone(), reason: "the file is too large for one backup".into() }
                }
            })
        })?;
        files.push(FileEntry { name: name.clone(), bytes, digest });
    }
    fsync_dir(&files_dir)?;

    let created_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let manifest = Manifest {
        format: FORMAT,
        chain_id: info.chain_id.clone(),
        suite: info.suite,
        genesis_hash: info.genesis_hash,
        height: info.height,
        hash: info.hash,
        state_root: info.state_root,
        created_unix_ms,
        files,
    };
    let json = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let manifest_path = to.join(MANIFEST_FILE);
    if json.len() as u64 > MANIFEST_BYTES_MAX {
        return Err(BackupError::Source {
            path: source.to_path_buf(),
            reason: format!("its manifest would exceed {MANIFEST_BYTES_MAX} bytes (too many files)"),
        });
    }
    create_synced(&manifest_path, |out| {
        seal_stream(&cipher, &aad, 0, chunk_bytes as usize, json.as_slice(), out).map(|_| ()).map_err(|fail| {
            let source = match fail {
                SealFail::Read(e) | SealFail::Write(e) => e,
                SealFail::TooLarge => std::io::Error::other("manifest too large"),
            };
            BackupError::Io { path: manifest_path.clone(), source }
        })
    })?;
    fsync_dir(to)?;
    Ok(manifest)
}

/// An opened backup: its header (and exact bytes), key and manifest.
struct Opened {
    loaded: LoadedHeader,
    cipher: Cipher,
    manifest: Manifest,
}

fn open(dir: &Path, passphrase: &str) -> Result<Opened, BackupError> {
    let loaded = load_header(dir)?;
    if passphrase.is_empty() {
        return Err(BackupError::EmptyPassphrase);
    }
    let header_path = dir.join(HEADER_FILE);
    let cipher = derive(&loaded.header, &loaded.salt, passphrase)
        .map_err(|reason| BackupError::InvalidHeader { path: header_path, reason })?;
    let check = hex::decode(&loaded.header.passphrase_check).expect("check_header checked the hex");
    if cipher.open(&check_nonce(), CHECK_AAD, &check).is_none() {
        return Err(BackupError::WrongPassphrase { path: dir.to_path_buf() });
    }

    let path = dir.join(MANIFEST_FILE);
    let invalid = |reason: String| BackupError::InvalidManifest { path: path.clone(), reason };
    let input = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::Missing { file: path }),
        Err(source) => return Err(BackupError::Io { path, source }),
    };
    let mut json = Vec::new();
    open_stream(&cipher, &loaded.bytes, 0, loaded.header.chunk_bytes, input, None, |plain| {
        if (json.len() + plain.len()) as u64 > MANIFEST_BYTES_MAX {
            return Err(invalid(format!("larger than {MANIFEST_BYTES_MAX} bytes")));
        }
        json.extend_from_slice(plain);
        Ok(())
    })
    .map_err(|fail| open_fail(&path, fail))?;
    let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| invalid(e.to_string()))?;
    let header = &loaded.header;
    if manifest.format != header.format || manifest.chain_id != header.chain_id || manifest.suite != header.suite {
        return Err(invalid(format!(
            "it is format {} of chain {:?} ({}), but the header says format {} of chain {:?} ({})",
            manifest.format, manifest.chain_id, manifest.suite, header.format, header.chain_id, header.suite
        )));
    }
    if manifest.files.len() >= u32::MAX as usize {
        return Err(invalid("it lists too many files".into()));
    }
    let mut seen = HashSet::new();
    for entry in &manifest.files {
        if let Some(reason) = bad_name(&entry.name) {
            return Err(BackupError::UnsafeName { name: entry.name.clone(), reason });
        }
        if !seen.insert(entry.name.as_str()) {
            return Err(BackupError::UnsafeName { name: entry.name.clone(), reason: "it is listed twice".into() });
        }
    }
    Ok(Opened { loaded, cipher, manifest })
}

/// Reads the header and opens the manifest with `passphrase`: a wrong passphrase is
/// [`BackupError::WrongPassphrase`]. Every file name in the manifest is checked.
pub fn open_manifest(dir: &Path, passphrase: &str) -> Result<(Header, Manifest), BackupError> {
    open(dir, passphrase).map(|opened| (opened.loaded.header, opened.manifest))
}

/// Checks and unseals the backup `dir` into the new database directory `into`, which must
/// not exist or be an empty directory. The files are unsealed into a temporary sibling
/// (`into` + `.restoring`), each checked against the manifest's length and digest, fsynced,
/// and the sibling renamed to `into` only once all have checked; on any error the sibling is
/// removed, so a failed restore leaves nothing behind.
pub fn restore(dir: &Path, passphrase: &str, into: &Path) -> Result<Manifest, BackupError> {
    let target_err = |reason: &str| BackupError::InvalidTarget { path: into.to_path_buf(), reason: reason.into() };
    let Some(name) = into.file_name() else {
        return Err(target_err("it does not end in a directory name"));
    };
    empty_or_absent(into)?;
    let mut temp_name = name.to_os_string();
    temp_name.push(RESTORE_SUFFIX);
    let temp = into.with_file_name(temp_name);
    if std::fs::symlink_metadata(&temp).is_ok() {
        return Err(BackupError::InvalidTarget {
            path: into.to_path_buf(),
            reason: format!("{} exists (left by an interrupted restore?): remove it and retry", temp.display()),
        });
    }
    let opened = open(dir, passphrase)?;
    std::fs::create_dir(&temp).map_err(io_err(&temp))?;
    match unseal_into(dir, &opened, &temp, into) {
        Ok(()) => Ok(opened.manifest),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            Err(e)
        }
    }
}

fn unseal_into(dir: &Path, opened: &Opened, temp: &Path, into: &Path) -> Result<(), BackupError> {
    let chunk_bytes = opened.loaded.header.chunk_bytes;
    for (i, entry) in opened.manifest.files.iter().enumerate() {
        let index = u32::try_from(i + 1).expect("open bounds the number of files");
        let sealed = dir.join(FILES_DIR).join(format!("{index}.sealed"));
        let input = match std::fs::File::open(&sealed) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::Missing { file: sealed }),
            Err(source) => return Err(BackupError::Io { path: sealed, source }),
        };
        let out_path = temp.join(&entry.name);
        let mismatch = |reason: String| BackupError::FileMismatch { name: entry.name.clone(), reason };
        let (bytes, digest) = create_synced(&out_path, |out| {
            let mut hasher = FileHasher::new(opened.cipher.suite());
            let mut bytes = 0u64;
            let expected = Some(sealed_len(entry.bytes, chunk_bytes));
            open_stream(&opened.cipher, &opened.loaded.bytes, index, chunk_bytes, input, expected, |plain| {
                bytes += plain.len() as u64;
                if bytes > entry.bytes {
                    return Err(mismatch(format!("it is longer than the manifest's {} bytes", entry.bytes)));
                }
                hasher.update(plain);
                out.write_all(plain).map_err(io_err(&out_path))
            })
            .map_err(|fail| open_fail(&sealed, fail))?;
            Ok((bytes, hasher.finalize()))
        })?;
        if bytes != entry.bytes {
            return Err(mismatch(format!("it is {bytes} bytes, the manifest says {}", entry.bytes)));
        }
        if digest != entry.digest {
            return Err(mismatch(format!("its digest is {digest}, the manifest says {}", entry.digest)));
        }
    }
    fsync_dir(temp)?;
    std::fs::rename(temp, into).map_err(io_err(into))?;
    fsync_dir(parent_of(into))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap KDF costs and a small chunk keep the tests fast; the format and checks are the
    /// same.
    const TEST_COSTS: KdfCosts = KdfCosts { argon2_m_kib: 1024, argon2_t: 1, pbkdf2_iterations: 1_000 };
    const CHUNK: u32 = 64;
    const FULL: u64 = CHUNK as u64 + TAG_BYTES as u64;
    const PASS: &str = "correct horse";

    fn info(suite: Suite) -> BackupInfo {
        BackupInfo {
            chain_id: "shutong-test".into(),
            suite,
            genesis_hash: Hash([1; 32]),
            height: 42,
            hash: Hash([2; 32]),
            state_root: Hash([3; 32]),
        }
    }

    /// Recognisable plaintext of `len` bytes, different for each `seed`.
    fn content(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| if i % 10 == 9 { seed } else { b"PLAINTEXT"[i % 10] }).collect()
    }

    /// A checkpoint in `root/checkpoint`: files of 0 bytes, 1 byte, exactly one chunk, two
    /// chunks, and three chunks and a partial one.
    fn checkpoint(root: &Path) -> Vec<(String, Vec<u8>)> {
        let db = root.join("checkpoint");
        std::fs::create_dir(&db).unwrap();
        let files = vec![
            ("000010.log".to_string(), Vec::new()),
            ("000012.sst".to_string(), content(1, 3 * CHUNK as usize + 10)),
            ("CURRENT".to_string(), b"\n".to_vec()),
            ("MANIFEST-000005".to_string(), content(2, CHUNK as usize)),
            ("OPTIONS-000007".to_string(), content(3, 2 * CHUNK as usize)),
        ];
        for (name, bytes) in &files {
            std::fs::write(db.join(name), bytes).unwrap();
        }
        files
    }

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    fn write_file(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
    }

    /// A checkpoint and its backup, in a temporary directory.
    struct Fixture {
        root: tempfile::TempDir,
        files: Vec<(String, Vec<u8>)>,
        manifest: Manifest,
    }

    impl Fixture {
        fn new(suite: Suite) -> Fixture {
            let root = tempfile::tempdir().unwrap();
            let files = checkpoint(root.path());
            let (source, backup) = (root.path().join("checkpoint"), root.path().join("backup"));
            let manifest = write_with(&source, &backup, &info(suite), PASS, TEST_COSTS, CHUNK).unwrap();
            Fixture { root, files, manifest }
        }
        fn source(&self) -> PathBuf {
            self.root.path().join("checkpoint")
        }
        fn backup(&self) -> PathBuf {
            self.root.path().join("backup")
        }
        fn target(&self) -> PathBuf {
            self.root.path().join("restored")
        }
        fn temp(&self) -> PathBuf {
            self.root.path().join(format!("restored{RESTORE_SUFFIX}"))
        }
        fn header(&self) -> PathBuf {
            self.backup().join(HEADER_FILE)
        }
        fn index(&self, name: &str) -> usize {
            self.files.iter().position(|(n, _)| n == name).unwrap()
        }
        fn sealed(&self, name: &str) -> PathBuf {
            self.backup().join(FILES_DIR).join(format!("{}.sealed", self.index(name) + 1))
        }
        /// Restores, expecting an error; checks that neither the target nor the temporary
        /// directory is left.
        fn restore_fails(&self, passphrase: &str) -> BackupError {
            let err = restore(&self.backup(), passphrase, &self.target()).unwrap_err();
            assert!(!self.target().exists(), "a failed restore leaves no target ({err})");
            assert!(!self.temp().exists(), "nor its temporary directory ({err})");
            err
        }
        /// Seals an edited copy of the original manifest in its place, as a holder of the
        /// passphrase could.
        fn reseal_manifest(&self, edit: impl FnOnce(&mut serde_json::Value)) {
            let mut json = serde_json::to_value(&self.manifest).unwrap();
            edit(&mut json);
            let bytes = serde_json::to_vec(&json).unwrap();
            let loaded = load_header(&self.backup()).unwrap();
            let cipher = derive(&loaded.header, &loaded.salt, PASS).unwrap();
            let mut out = Vec::new();
            let chunk = loaded.header.chunk_bytes as usize;
            assert!(seal_stream(&cipher, &loaded.bytes, 0, chunk, bytes.as_slice(), &mut out).is_ok());
            write_file(&self.backup().join(MANIFEST_FILE), &out);
        }
        /// Rewrites the header as JSON (its bytes change: key order, spacing).
        fn edit_header(&self, edit: impl FnOnce(&mut serde_json::Value)) {
            let mut json: serde_json::Value = serde_json::from_slice(&read(&self.header())).unwrap();
            edit(&mut json);
            write_file(&self.header(), &serde_json::to_vec_pretty(&json).unwrap());
        }
        /// Replaces `from` by `to` in the header's text, leaving the rest byte for byte.
        fn replace_in_header(&self, from: &str, to: &str) {
            let text = String::from_utf8(read(&self.header())).unwrap();
            assert_eq!(text.matches(from).count(), 1, "{from} in {text}");
            write_file(&self.header(), text.replace(from, to).as_bytes());
        }
    }

    fn round_trip(suite: Suite) {
        let f = Fixture::new(suite);
        let header = read_header(&f.backup()).unwrap();
        let (kdf, cipher) = suite_algorithms(suite);
        assert_eq!((header.suite, header.kdf.as_str(), header.cipher.as_str()), (suite, kdf, cipher));
        assert_eq!((header.format, header.chain_id.as_str(), header.chunk_bytes), (FORMAT, "shutong-test", CHUNK));
        assert_eq!(hex::decode(&header.salt).unwrap().len(), 16);

        // Nothing of the plaintext is in the backup.
        for entry in std::fs::read_dir(f.backup().join(FILES_DIR)).unwrap() {
            let sealed = read(&entry.unwrap().path());
            assert!(!sealed.windows(9).any(|w| w == b"PLAINTEXT"), "the files are encrypted");
        }
        // Sealed lengths are as the manifest predicts: one tag per chunk, one chunk at least.
        for (name, bytes) in &f.files {
            let len = std::fs::metadata(f.sealed(name)).unwrap().len();
            assert_eq!(len, sealed_len(bytes.len() as u64, CHUNK), "{name}");
        }

        let (opened_header, manifest) = open_manifest(&f.backup(), PASS).unwrap();
        assert_eq!((opened_header, &manifest), (header, &f.manifest));
        let restored = restore(&f.backup(), PASS, &f.target()).unwrap();
        assert_eq!(restored, manifest);
        assert_eq!((manifest.height, manifest.hash, manifest.state_root), (42, Hash([2; 32]), Hash([3; 32])));
        assert_eq!(
            (manifest.genesis_hash, manifest.suite, manifest.chain_id.as_str()),
            (Hash([1; 32]), suite, "shutong-test")
        );
        assert!(manifest.created_unix_ms > 0);
        assert_eq!(manifest.files.len(), f.files.len());
        for (entry, (name, bytes)) in manifest.files.iter().zip(&f.files) {
            assert_eq!((&entry.name, entry.bytes), (name, bytes.len() as u64));
            let mut hasher = FileHasher::new(suite);
            hasher.update(bytes);
            assert_eq!(entry.digest, hasher.finalize());
            if suite == Suite::Sm2Sm3 {
                assert_eq!(entry.digest, Hash(shutong_types::sm::sm3(bytes)), "SM3 on an SM chain");
            } else {
                assert_eq!(entry.digest, Hash(*blake3::hash(bytes).as_bytes()));
            }
            assert_eq!(&read(&f.target().join(name)), bytes, "{name} restores");
        }
        assert_eq!(std::fs::read_dir(f.target()).unwrap().count(), f.files.len());
        assert!(!f.temp().exists());
    }

    #[test]
    fn an_ed25519_backup_round_trips() {
        round_trip(Suite::Ed25519Blake3);
    }

    #[test]
    fn an_sm2_backup_round_trips() {
        round_trip(Suite::Sm2Sm3);
    }

    #[test]
    fn a_backup_into_and_a_restore_into_an_empty_directory_succeed() {
        let root = tempfile::tempdir().unwrap();
        checkpoint(root.path());
        let (to, into) = (root.path().join("backup"), root.path().join("db"));
        std::fs::create_dir(&to).unwrap();
        std::fs::create_dir(&into).unwrap();
        write(&root.path().join("checkpoint"), &to, &info(Suite::Ed25519Blake3), PASS, TEST_COSTS).unwrap();
        assert_eq!(read_header(&to).unwrap().chunk_bytes, CHUNK_BYTES);
        restore(&to, PASS, &into).unwrap();
        assert_eq!(read(&into.join("CURRENT")), b"\n");
        assert_eq!(read(&into.join("000012.sst")), content(1, 3 * CHUNK as usize + 10));
    }

    #[test]
    fn a_wrong_or_empty_passphrase_is_refused() {
        for suite in [Suite::Ed25519Blake3, Suite::Sm2Sm3] {
            let f = Fixture::new(suite);
            assert!(matches!(f.restore_fails("wrong"), BackupError::WrongPassphrase { path } if path == f.backup()));
            assert!(matches!(open_manifest(&f.backup(), "wrong"), Err(BackupError::WrongPassphrase { .. })));
            assert!(matches!(f.restore_fails(""), BackupError::EmptyPassphrase));
        }
        let root = tempfile::tempdir().unwrap();
        checkpoint(root.path());
        let to = root.path().join("backup");
        let err = write(&root.path().join("checkpoint"), &to, &info(Suite::Ed25519Blake3), "", TEST_COSTS);
        assert!(matches!(err, Err(BackupError::EmptyPassphrase)));
        assert!(!to.exists());
    }

    fn truncate(path: &Path, len: u64) {
        std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
    }

    #[test]
    fn a_file_cut_at_a_chunk_boundary_or_mid_chunk_is_refused_as_truncated() {
        // 000012.sst is three whole chunks and a partial one (266 bytes sealed),
        // MANIFEST-000005 one whole chunk, 000010.log one empty chunk (its tag).
        for (name, len) in [
            ("000012.sst", FULL),
            ("000012.sst", 3 * FULL),
            ("000012.sst", 2 * FULL + 5),
            ("000012.sst", 3 * FULL + 20),
            ("MANIFEST-000005", FULL - 1),
            ("000010.log", 0),
            ("000010.log", 15),
        ] {
            let f = Fixture::new(Suite::Ed25519Blake3);
            let sealed = f.sealed(name);
            truncate(&sealed, len);
            match f.restore_fails(PASS) {
                BackupError::Truncated { file } => assert_eq!(file, sealed, "{name} cut to {len}"),
                other => panic!("{name} cut to {len}: {other}"),
            }
        }
        // The manifest too.
        let f = Fixture::new(Suite::Sm2Sm3);
        let manifest = f.backup().join(MANIFEST_FILE);
        for len in [FULL, 0] {
            truncate(&manifest, len);
            match f.restore_fails(PASS) {
                BackupError::Truncated { file } => assert_eq!(file, manifest, "cut to {len}"),
                other => panic!("manifest cut to {len}: {other}"),
            }
        }
    }

    #[test]
    fn a_flipped_byte_or_appended_data_is_refused() {
        for suite in [Suite::Ed25519Blake3, Suite::Sm2Sm3] {
            let f = Fixture::new(suite);
            let sealed = f.sealed("000012.sst");
            let original = read(&sealed);
            for at in [0, 100, original.len() - 1] {
                let mut bytes = original.clone();
                bytes[at] ^= 1;
                write_file(&sealed, &bytes);
                match f.restore_fails(PASS) {
                    BackupError::Corrupted { file } => assert_eq!(file, sealed, "byte {at}"),
                    other => panic!("byte {at}: {other}"),
                }
            }
            // Extra data after the last chunk, short or a whole chunk's worth.
            for extra in [1, FULL as usize] {
                let mut bytes = original.clone();
                bytes.extend(std::iter::repeat_n(7u8, extra));
                write_file(&sealed, &bytes);
                match f.restore_fails(PASS) {
                    BackupError::TrailingData { file } => assert_eq!(file, sealed, "{extra} extra"),
                    other => panic!("{extra} extra: {other}"),
                }
            }
            write_file(&sealed, &original);
            // A flipped byte in the manifest.
            let manifest = f.backup().join(MANIFEST_FILE);
            let mut bytes = read(&manifest);
            bytes[3] ^= 0x40;
            write_file(&manifest, &bytes);
            assert!(matches!(f.restore_fails(PASS), BackupError::Corrupted { file } if file == manifest));
        }
    }

    #[test]
    fn reordered_chunks_moved_chunks_and_swapped_files_are_refused() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        // OPTIONS-000007 is two whole chunks; MANIFEST-000005 one.
        let options = f.sealed("OPTIONS-000007");
        let original = read(&options);
        let (first, second) = original.split_at(FULL as usize);
        write_file(&options, &[second, first].concat());
        assert!(matches!(f.restore_fails(PASS), BackupError::Corrupted { file } if file == options));
        let other = read(&f.sealed("MANIFEST-000005"));
        write_file(&options, &[first, &other].concat());
        assert!(matches!(f.restore_fails(PASS), BackupError::Corrupted { file } if file == options));
        write_file(&options, &original);

        // Whole files of different lengths swapped: the first refused, by name.
        let (one, two) = (f.sealed("000010.log"), f.sealed("000012.sst"));
        let (bytes_one, bytes_two) = (read(&one), read(&two));
        write_file(&one, &bytes_two);
        write_file(&two, &bytes_one);
        let err = f.restore_fails(PASS);
        assert!(
            matches!(&err, BackupError::TrailingData { file } | BackupError::Corrupted { file } if *file == one),
            "{err}"
        );
        write_file(&one, &bytes_one);
        write_file(&two, &bytes_two);
        restore(&f.backup(), PASS, &f.target()).unwrap();

        // Files of the same length swapped.
        let root = tempfile::tempdir().unwrap();
        let source = root.path().join("source");
        std::fs::create_dir(&source).unwrap();
        write_file(&source.join("a"), &content(4, 100));
        write_file(&source.join("b"), &content(5, 100));
        let backup = root.path().join("backup");
        write_with(&source, &backup, &info(Suite::Sm2Sm3), PASS, TEST_COSTS, CHUNK).unwrap();
        let (p1, p2) = (backup.join("files/1.sealed"), backup.join("files/2.sealed"));
        let (s1, s2) = (read(&p1), read(&p2));
        write_file(&p1, &s2);
        write_file(&p2, &s1);
        let into = root.path().join("into");
        assert!(matches!(restore(&backup, PASS, &into), Err(BackupError::Corrupted { file }) if file == p1));
        assert!(!into.exists() && !root.path().join("into.restoring").exists());
    }

    #[test]
    fn an_edited_header_fails_authentication() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        f.replace_in_header("\"shutong-test\"", "\"another-chain\"");
        assert_eq!(read_header(&f.backup()).unwrap().chain_id, "another-chain", "the header alone still reads");
        let err = f.restore_fails(PASS);
        assert!(matches!(&err, BackupError::Corrupted { file } if file.ends_with(MANIFEST_FILE)), "{err}");
        assert!(err.to_string().contains(HEADER_FILE), "{err}");
        // Back as it was, byte for byte, it opens again.
        f.replace_in_header("\"another-chain\"", "\"shutong-test\"");
        restore(&f.backup(), PASS, &f.target()).unwrap();

        // A changed KDF parameter changes the key: as a wrong passphrase.
        let f = Fixture::new(Suite::Sm2Sm3);
        let original = read(&f.header());
        f.replace_in_header("\"iterations\": 1000", "\"iterations\": 1001");
        assert!(matches!(f.restore_fails(PASS), BackupError::WrongPassphrase { .. }));
        // Even a byte of white space counts: the exact bytes are authenticated.
        write_file(&f.header(), &[&original[..], b"\n"].concat());
        assert!(matches!(f.restore_fails(PASS), BackupError::Corrupted { .. }));
        write_file(&f.header(), &original);
        restore(&f.backup(), PASS, &f.target()).unwrap();
    }

    #[test]
    fn a_newer_format_is_refused_before_any_passphrase() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        // A newer format may hold fields this one does not know.
        f.edit_header(|h| {
            h["format"] = 2.into();
            h["future"] = true.into();
        });
        let newer = |e: &BackupError| matches!(e, BackupError::NewerFormat { found: 2, supported: FORMAT });
        assert!(newer(&read_header(&f.backup()).unwrap_err()));
        assert!(newer(&f.restore_fails("not even the passphrase")));
        assert!(newer(&f.restore_fails("")));
        assert!(newer(&open_manifest(&f.backup(), "x").unwrap_err()));
        f.edit_header(|h| {
            h["format"] = 0.into();
            h.as_object_mut().unwrap().remove("future");
        });
        let err = read_header(&f.backup()).unwrap_err().to_string();
        assert!(err.contains("format 0"), "{err}");
    }

    #[test]
    fn kdf_parameters_beyond_the_bounds_are_refused_by_name() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        let original = read(&f.header());
        for (field, value) in [
            ("m_cost", serde_json::Value::from(M_COST_MAX + 1)),
            ("m_cost", 7.into()),
            ("m_cost", serde_json::Value::Null),
            ("t_cost", (T_COST_MAX + 1).into()),
            ("t_cost", 0.into()),
            ("p_cost", 2.into()),
            ("chunk_bytes", (CHUNK_BYTES_MAX + 1).into()),
            ("chunk_bytes", 0.into()),
            ("salt", "00".into()),
        ] {
            f.edit_header(|h| h[field] = value.clone());
            let err = read_header(&f.backup()).unwrap_err();
            assert!(matches!(err, BackupError::InvalidHeader { .. }), "{field}={value}: {err}");
            assert!(err.to_string().contains(field), "{field}={value}: {err}");
            assert!(f.restore_fails(PASS).to_string().contains(field));
            write_file(&f.header(), &original);
        }
        let f = Fixture::new(Suite::Sm2Sm3);
        f.edit_header(|h| h["iterations"] = (PBKDF2_ITERATIONS_MAX + 1).into());
        let err = read_header(&f.backup()).unwrap_err().to_string();
        assert!(err.contains("iterations") && err.contains(&PBKDF2_ITERATIONS_MAX.to_string()), "{err}");
        f.edit_header(|h| {
            h["iterations"] = 1_000.into();
            h["m_cost"] = 8.into();
        });
        let err = read_header(&f.backup()).unwrap_err().to_string();
        assert!(err.contains("m_cost is not a parameter"), "{err}");
        f.edit_header(|h| {
            h.as_object_mut().unwrap().remove("m_cost");
            h["kdf"] = "argon2id".into();
        });
        let err = read_header(&f.backup()).unwrap_err().to_string();
        assert!(err.contains("do not seal an sm2-sm3 backup"), "{err}");

        // The writer refuses costs a restore would refuse, and leaves nothing.
        let root = tempfile::tempdir().unwrap();
        checkpoint(root.path());
        let to = root.path().join("backup");
        let costly = KdfCosts { argon2_m_kib: M_COST_MAX + 1, ..TEST_COSTS };
        let err = write(&root.path().join("checkpoint"), &to, &info(Suite::Ed25519Blake3), PASS, costly);
        assert!(matches!(&err, Err(BackupError::InvalidHeader { reason, .. }) if reason.contains("m_cost")), "{err:?}");
        assert!(!to.exists(), "a failed write removes what it made");
    }

    #[test]
    fn a_header_too_large_not_json_or_missing_is_refused() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        write_file(&f.header(), &vec![b' '; HEADER_BYTES_MAX as usize + 1]);
        assert!(read_header(&f.backup()).unwrap_err().to_string().contains("larger than"));
        write_file(&f.header(), b"not json");
        assert!(matches!(f.restore_fails(PASS), BackupError::InvalidHeader { .. }));
        std::fs::remove_file(f.header()).unwrap();
        assert!(matches!(f.restore_fails(PASS), BackupError::Missing { file } if file == f.header()));
    }

    #[test]
    fn a_manifest_naming_a_path_outside_the_target_is_refused() {
        for bad in ["../evil", "a/b", "/tmp/evil", "..", ".", "", "nul\0", "x..y"] {
            let f = Fixture::new(Suite::Ed25519Blake3);
            f.reseal_manifest(|m| m["files"][1]["name"] = bad.into());
            let err = f.restore_fails(PASS);
            assert!(matches!(&err, BackupError::UnsafeName { name, .. } if name == bad), "{bad:?}: {err}");
            assert!(matches!(open_manifest(&f.backup(), PASS), Err(BackupError::UnsafeName { .. })));
            let mut left: Vec<_> = std::fs::read_dir(f.root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            left.sort();
            assert_eq!(left, ["backup", "checkpoint"], "{bad:?}: nothing written outside");
        }
        let f = Fixture::new(Suite::Sm2Sm3);
        f.reseal_manifest(|m| m["files"][1]["name"] = "x".repeat(256).into());
        assert!(matches!(f.restore_fails(PASS), BackupError::UnsafeName { .. }));
        f.reseal_manifest(|m| m["files"][1]["name"] = "CURRENT".into());
        let err = f.restore_fails(PASS);
        assert!(
            matches!(&err, BackupError::UnsafeName { name, reason } if name == "CURRENT" && reason.contains("twice"))
        );
    }

    #[test]
    fn a_manifest_that_disagrees_with_its_files_is_refused() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        let sst = f.index("000012.sst");
        let mismatch = |e: BackupError| matches!(e, BackupError::FileMismatch { name, .. } if name == "000012.sst");
        f.reseal_manifest(|m| m["files"][sst]["digest"] = Hash([9; 32]).to_hex().into());
        assert!(mismatch(f.restore_fails(PASS)));
        // One byte shorter (the file then runs past it) or longer than the file.
        for bytes in [3 * CHUNK + 9, 3 * CHUNK + 11] {
            f.reseal_manifest(|m| m["files"][sst]["bytes"] = bytes.into());
            assert!(mismatch(f.restore_fails(PASS)), "{bytes}");
        }
        // A file the backup does not hold.
        f.reseal_manifest(|m| {
            let extra = serde_json::json!({ "name": "000099.sst", "bytes": 0, "digest": Hash::ZERO });
            m["files"].as_array_mut().unwrap().push(extra);
        });
        let missing = f.backup().join(FILES_DIR).join(format!("{}.sealed", f.files.len() + 1));
        assert!(matches!(f.restore_fails(PASS), BackupError::Missing { file } if file == missing));
        // Another chain's manifest under this header.
        f.reseal_manifest(|m| m["chain_id"] = "other".into());
        assert!(matches!(f.restore_fails(PASS), BackupError::InvalidManifest { .. }));
        f.reseal_manifest(|_| {});
        restore(&f.backup(), PASS, &f.target()).unwrap();
    }

    #[test]
    fn a_missing_sealed_file_or_manifest_is_refused() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        let sealed = f.sealed("CURRENT");
        std::fs::remove_file(&sealed).unwrap();
        assert!(matches!(f.restore_fails(PASS), BackupError::Missing { file } if file == sealed));
        let manifest = f.backup().join(MANIFEST_FILE);
        std::fs::remove_file(&manifest).unwrap();
        assert!(matches!(f.restore_fails(PASS), BackupError::Missing { file } if file == manifest));
    }

    #[test]
    fn a_non_empty_target_is_refused() {
        let f = Fixture::new(Suite::Ed25519Blake3);
        let into = f.target();
        std::fs::create_dir(&into).unwrap();
        write_file(&into.join("keep"), b"mine");
        assert!(matches!(restore(&f.backup(), PASS, &into), Err(BackupError::TargetNotEmpty { path }) if path == into));
        assert_eq!(read(&into.join("keep")), b"mine");
        assert!(!f.temp().exists());
        std::fs::remove_dir_all(&into).unwrap();
        write_file(&into, b"a file");
        assert!(matches!(restore(&f.backup(), PASS, &into), Err(BackupError::TargetNotEmpty { .. })));
        std::fs::remove_file(&into).unwrap();

        // A leftover temporary directory is named, not removed.
        std::fs::create_dir(f.temp()).unwrap();
        let err = restore(&f.backup(), PASS, &into).unwrap_err();
        assert!(matches!(&err, BackupError::InvalidTarget { .. }) && err.to_string().contains("interrupted"), "{err}");
        assert!(f.temp().exists() && !into.exists());
        std::fs::remove_dir(f.temp()).unwrap();

        // A backup over a backup is refused, and leaves it whole.
        let err = write_with(&f.source(), &f.backup(), &info(Suite::Ed25519Blake3), PASS, TEST_COSTS, CHUNK);
        assert!(matches!(err, Err(BackupError::TargetNotEmpty { path }) if path == f.backup()));
        restore(&f.backup(), PASS, &into).unwrap();
    }

    #[test]
    fn a_source_with_a_directory_a_link_or_an_odd_name_is_refused_by_name() {
        for (odd, dir) in [("sub", true), ("we ird", false), ("..x", false)] {
            let root = tempfile::tempdir().unwrap();
            checkpoint(root.path());
            let source = root.path().join("checkpoint");
            if dir {
                std::fs::create_dir(source.join(odd)).unwrap();
            } else {
                write_file(&source.join(odd), b"x");
            }
            let to = root.path().join("backup");
            let err = write(&source, &to, &info(Suite::Ed25519Blake3), PASS, TEST_COSTS).unwrap_err();
            assert!(matches!(&err, BackupError::Source { .. }) && err.to_string().contains(odd), "{odd}: {err}");
            assert!(!to.exists());
        }
        // Into an existing empty directory: refused, and left empty.
        let root = tempfile::tempdir().unwrap();
        checkpoint(root.path());
        let source = root.path().join("checkpoint");
        std::os::unix::fs::symlink(source.join("CURRENT"), source.join("LINK")).unwrap();
        let to = root.path().join("backup");
        std::fs::create_dir(&to).unwrap();
        let err = write(&source, &to, &info(Suite::Ed25519Blake3), PASS, TEST_COSTS).unwrap_err();
        assert!(matches!(&err, BackupError::Source { .. }) && err.to_string().contains("LINK"), "{err}");
        assert_eq!(std::fs::read_dir(&to).unwrap().count(), 0);
    }
}
