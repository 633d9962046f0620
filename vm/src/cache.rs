//! Compiled code on disk, by (code hash, VM version), so a restarted node does not compile
//! every contract again.
//!
//! A file holds a magic line, the blake3 hash of the artifact and the artifact wasmtime
//! serialised. It is loaded only if the hash matches, and wasmtime itself refuses an artifact
//! from another engine configuration or version; a file that fails either check is removed
//! and the code compiled again. Files are written to a temporary name and renamed, so a
//! crash never leaves half a file under the real name.
//!
//! The directory belongs to the node, like its database: anyone who can write to it can
//! make the node run arbitrary machine code, which is why it lives in the data directory,
//! created with mode 0700.

use shutong_types::Hash;
use std::io::Read;
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 16] = b"shutong-cwasm-1\n";
/// The largest artifact loaded; anything larger is treated as corrupt.
const ARTIFACT_BYTES_MAX: u64 = 256 << 20;

/// A directory of compiled modules for one VM version.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// Opens (creating) the cache for `vm_version` under `root`.
    pub fn open(root: &Path, vm_version: &str) -> Result<DiskCache, crate::VmError> {
        let version = Hash::of(shutong_types::Suite::Ed25519Blake3, "shutong/vm-version/v1", vm_version.as_bytes());
        let dir = root.join(hex(&version.0[..8]));
        fn failed(path: &Path) -> impl FnOnce(std::io::Error) -> crate::VmError + '_ {
            move |source| crate::VmError::CodeCache { path: path.to_path_buf(), source }
        }
        std::fs::create_dir_all(&dir).map_err(failed(&dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [root, dir.as_path()] {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(failed(path))?;
            }
        }
        Ok(DiskCache { dir })
    }

    fn path(&self, code_hash: &Hash) -> PathBuf {
        self.dir.join(format!("{}.cwasm", hex(&code_hash.0)))
    }

    /// The compiled module for `code_hash`, if a sound one is on disk.
    pub fn load(&self, engine: &Engine, code_hash: &Hash) -> Option<Module> {
        let path = self.path(code_hash);
        let bytes = match read_bounded(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "unreadable compiled code; compiling again");
                return None;
            }
        };
        let artifact = bytes
            .strip_prefix(MAGIC.as_slice())
            .and_then(|rest| rest.split_at_checked(32))
            .filter(|(digest, artifact)| blake3::hash(artifact).as_bytes() == *digest)
            .map(|(_, artifact)| artifact);
        let Some(artifact) = artifact else {
            tracing::warn!(path = %path.display(), "compiled code fails its checksum; compiling again");
            let _ = std::fs::remove_file(&path);
            return None;
        };
        match deserialize(engine, artifact) {
            Ok(module) => Some(module),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "compiled code does not fit this engine; compiling again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes `module` for `code_hash`. A failure only costs a compile later, so it is logged.
    pub fn store(&self, code_hash: &Hash, module: &Module) {
        let path = self.path(code_hash);
        let written = module.serialize().map_err(|e| e.to_string()).and_then(|artifact| {
            let mut file = Vec::with_capacity(MAGIC.len() + 32 + artifact.len());
            file.extend_from_slice(MAGIC);
            file.extend_from_slice(blake3::hash(&artifact).as_bytes());
            file.extend_from_slice(&artifact);
            let temp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&temp, &file).and_then(|()| std::fs::rename(&temp, &path)).map_err(|e| e.to_string())
        });
        if let Err(err) = written {
            tracing::warn!(path = %path.display(), %err, "compiled code could not be cached");
        }
    }
}

fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let mut bytes = Vec::new();
    file.take(ARTIFACT_BYTES_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > ARTIFACT_BYTES_MAX {
        return Err(std::io::Error::other("larger than any artifact"));
    }
    Ok(Some(bytes))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: wasmtime requires that the bytes come from `Module::serialize` of a trusted
    // engine. They do: this cache wrote them (`store`), in a directory only the node's user
    // can write, and the blake3 checksum above matched, so they are the bytes written.
    // wasmtime checks the engine configuration and version recorded in the artifact itself.
    unsafe { Module::deserialize(engine, artifact) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
