//! The operator's control socket: `admin.sock` in the node's home directory, a Unix socket
//! only its owner may open (mode 0600, in a home the systemd unit keeps private), so that
//! whoever may run commands as the node's user may ask, and nobody over the network.
//!
//! One request per connection, one JSON line each way. The only request today is a
//! checkpoint of the database, which `shutong node backup` seals into a backup: RocksDB
//! allows one process per database, so the running node must take the copy itself.

use serde::{Deserialize, Serialize};
use shutong_storage::Storage;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The socket's file name in the home directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// The longest request line read, and the longest answer.
const LINE_BYTES_MAX: u64 = 4096;
/// How long a connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client waits for a checkpoint (it flushes memory tables, and may copy files
/// when the database is on another file system than its checkpoint).
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// A checkpoint of the database, into a new directory beside it.
    Checkpoint,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// The checkpoint's directory: the caller removes it when done.
    Checkpoint {
        dir: PathBuf,
    },
    Error {
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the node's admin socket {path}: {source}")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("the node's admin socket {path} did not answer: {reason}")]
    Answer { path: PathBuf, reason: String },
    #[error("the node refused: {0}")]
    Refused(String),
}

/// Where the checkpoint of the database at `data_dir` taken at `unix_ms` goes: beside it,
/// so that on the same file system its table files are hard links.
pub fn checkpoint_dir(data_dir: &Path, unix_ms: u64) -> PathBuf {
    let name = data_dir.file_name().map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    data_dir.with_file_name(format!("{name}.checkpoint-{unix_ms}"))
}

/// Listens on `path` (a socket left by a node that did not stop cleanly is replaced) and
/// serves requests until the task is aborted.
pub fn serve(path: &Path, storage: Arc<Storage>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!(socket = %path.display(), "removed a stale admin socket"),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    tracing::info!(socket = %path.display(), "admin socket listening");
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "admin socket: cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(answer(stream, Arc::clone(&storage)));
        }
    }))
}

async fn answer(stream: tokio::net::UnixStream, storage: Arc<Storage>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, LINE_BYTES_MAX));
    let read = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    let response = match read {
        Err(_) => Response::Error { error: format!("no request within {REQUEST_TIMEOUT:?}") },
        Ok(Err(err)) => Response::Error { error: format!("cannot read the request: {err}") },
        Ok(Ok(_)) if !line.ends_with('\n') => {
            Response::Error { error: format!("the request is not one line of at most {LINE_BYTES_MAX} bytes") }
        }
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Err(err) => Response::Error { error: format!("not a request: {err}") },
            Ok(Request::Checkpoint) => checkpoint(storage).await,
        },
    };
    let mut body = serde_json::to_vec(&response).unwrap_or_default();
    body.push(b'\n');
    if let Err(err) = write.write_all(&body).await {
        tracing::debug!(%err, "admin socket: the client left before the answer");
    }
}

async fn checkpoint(storage: Arc<Storage>) -> Response {
    let unix_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let dir = checkpoint_dir(storage.path(), unix_ms);
    let into = dir.clone();
    let taken = tokio::task::spawn_blocking(move || storage.checkpoint(&into)).await;
    match taken {
        Ok(Ok(())) => {
            tracing::info!(checkpoint = %dir.display(), "database checkpoint taken for a backup");
            Response::Checkpoint { dir }
        }
        Ok(Err(err)) => Response::Error { error: err.to_string() },
        Err(err) => Response::Error { error: format!("the checkpoint task failed: {err}") },
    }
}

/// Asks the node whose admin socket is `path` for a checkpoint; returns its directory.
pub fn request_checkpoint(path: &Path) -> Result<PathBuf, AdminError> {
    let connect = |source| AdminError::Connect { path: path.to_path_buf(), source };
    let answer = |reason: String| AdminError::Answer { path: path.to_path_buf(), reason };
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(connect)?;
    stream.set_read_timeout(Some(CHECKPOINT_TIMEOUT)).map_err(connect)?;
    let mut request = serde_json::to_vec(&Request::Checkpoint).map_err(|e| answer(e.to_string()))?;
    request.push(b'\n');
    stream.write_all(&request).map_err(|e| answer(e.to_string()))?;
    let mut line = String::new();
    std::io::BufReader::new(std::io::Read::take(&stream, LINE_BYTES_MAX))
        .read_line(&mut line)
        .map_err(|e| answer(e.to_string()))?;
    match serde_json::from_str::<Response>(&line).map_err(|e| answer(format!("{e}: {line:?}")))? {
        Response::Checkpoint { dir } => Ok(dir),
        Response::Error { error } => Err(AdminError::Refused(error)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn a_checkpoint_is_a_database_of_its_own_and_garbage_gets_an_answer() {
        let home = tempfile::tempdir().unwrap();
        let data = home.path().join("data");
        let storage = Arc::new(Storage::open(&data, shutong_types::Suite::Ed25519Blake3).unwrap());
        let socket = home.path().join(ADMIN_SOCKET);
        let server = serve(&socket, Arc::clone(&storage)).unwrap();
        assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
        let path = socket.clone();
        let dir = tokio::task::spawn_blocking(move || request_checkpoint(&path)).await.unwrap().unwrap();
        assert_eq!(dir.parent(), data.parent());
        assert!(dir.file_name().unwrap().to_string_lossy().starts_with("data.checkpoint-"));
        Storage::open(&dir, shutong_types::Suite::Ed25519Blake3).unwrap();
        // A request that is not one, and one that never ends its line, are answered and
        // change nothing.
        for garbage in [&b"{\"op\":\"drop_everything\"}\n"[..], &[b'x'; 5000][..]] {
            let path = socket.clone();
            let garbage = garbage.to_vec();
            let answer = tokio::task::spawn_blocking(move || {
                let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
                stream.write_all(&garbage).unwrap();
                let mut line = String::new();
                std::io::BufReader::new(&stream).read_line(&mut line).unwrap();
                line
            })
            .await
            .unwrap();
            assert!(answer.contains("\"error\""), "{answer}");
        }
        server.abort();
    }
}
