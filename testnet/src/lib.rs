//! Shutong's local testnet: launches real node processes on loopback for demos and end-to-end tests.
//!
//! [`NodeProcess`] runs the `shutong` binary as a child process with its own home directory
//! and log file, and kills it (SIGKILL) when dropped, so a failing test leaves no process
//! behind. Multi-validator launching comes with multi-validator consensus.

use anyhow::{Context, bail};
use shutong_sdk::Client;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1, as the OS hands one out.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `shutong init` for a single-validator chain whose RPC listens on `port`.
pub fn init(binary: &Path, home: &Path, chain_id: &str, port: u16, block_interval_ms: u64) -> anyhow::Result<()> {
    let status = Command::new(binary)
        .args(["init", "--chain-id", chain_id, "--block-interval-ms", &block_interval_ms.to_string()])
        .arg("--home")
        .arg(home)
        .args(["--rpc-listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .status()
        .context("cannot run shutong init")?;
    if !status.success() {
        bail!("shutong init failed with {status}");
    }
    Ok(())
}

/// A node running as a child process.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    pub home: PathBuf,
    pub rpc_url: String,
    pub log: PathBuf,
}

impl NodeProcess {
    /// Starts `shutong node run` on `home`, appending its output to `home/node.log`.
    pub fn spawn(binary: &Path, home: &Path, port: u16) -> anyhow::Result<NodeProcess> {
        let log = home.join("node.log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let child = Command::new(binary)
            .args(["node", "run", "--home"])
            .arg(home)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start shutong node run")?;
        Ok(NodeProcess { child, home: home.to_path_buf(), rpc_url: format!("http://127.0.0.1:{port}"), log })
    }

    /// Waits until the node answers `status`, or fails after `timeout` with its log's tail.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Client> {
        let client = Client::new(&self.rpc_url)?;
        let start = Instant::now();
        loop {
            if client.status().await.is_ok() {
                return Ok(client);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("node exited with {status} before it was ready; log:\n{}", self.log_tail());
            }
            if start.elapsed() > timeout {
                bail!("node not ready after {timeout:?}; log:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGKILL: no chance to flush or clean up, as in a power cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit before SIGKILL.
    pub fn terminate(&mut self, timeout: Duration) {
        let pid = self.child.id() as i32;
        #[allow(unsafe_code)]
        // SAFETY: sending a signal to our own child process has no memory-safety effects.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub mod sim;
