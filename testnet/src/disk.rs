//! Disks that fail, for the failing-disk tests: a size-limited tmpfs that fills up, and an
//! `LD_PRELOAD` shim whose fsync returns EIO on demand (`testnet/shim/eio.c`).

use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size (a disk that fills up), unmounted when dropped. Mounting needs
/// root (CAP_SYS_ADMIN).
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(mib: u64) -> anyhow::Result<Tmpfs> {
        let dir = tempfile::tempdir()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "shutong-test"])
            .arg(dir.path())
            .status()
            .context("cannot run mount")?;
        if !status.success() {
            bail!("mount -t tmpfs exited with {status}: mounting a tmpfs needs root (CAP_SYS_ADMIN)");
        }
        Ok(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` until the disk has no room left; returns the bytes written.
    pub fn fill(&self, name: &str) -> anyhow::Result<u64> {
        let mut file = std::fs::File::create(self.path().join(name))?;
        let (mut written, mut chunk) = (0u64, 1usize << 20);
        let bytes = vec![0xA5u8; chunk];
        while chunk >= 512 {
            match file.write(&bytes[..chunk]) {
                Ok(n) => written += n as u64,
                Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => chunk /= 2,
                Err(err) => return Err(err).context("filling the tmpfs"),
            }
        }
        Ok(written)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Compiles the EIO shim into `dir` with the system C compiler; returns the library's path.
/// Preload it with `SHUTONG_EIO_WHEN=<file>`: fsync and fdatasync fail while the file exists.
pub fn eio_shim(dir: &Path) -> anyhow::Result<PathBuf> {
    let source = dir.join("eio.c");
    std::fs::write(&source, include_str!("../shim/eio.c"))?;
    let library = dir.join("libshutong-eio.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .context("cannot run cc")?;
    if !status.success() {
        bail!("cc could not build {}: {status}", source.display());
    }
    Ok(library)
}
