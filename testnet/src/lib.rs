//! Shutong's local testnet: launches real node processes on loopback for demos and end-to-end tests.
//!
//! [`NodeProcess`] runs the `shutong` binary as a child process with its own home directory
//! and log file, and kills it (SIGKILL) when dropped, so a failing test leaves no process
//! behind. [`Cluster`] lays out N validators with `shutong testnet init` (free ports on
//! 127.0.0.1, a temporary directory) and runs each as a `NodeProcess`.

use anyhow::{Context, bail};
use layout::{Layout, LayoutNode};
use shutong_sdk::{Client, keyfile};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `shutong init` for a single-validator chain whose RPC listens on `port`.
pub fn init(binary: &Path, home: &Path, chain_id: &str, port: u16, block_interval_ms: u64) -> anyhow::Result<()> {
    let status = Command::new(binary)
        .args(["init", "--chain-id", chain_id, "--block-interval-ms", &block_interval_ms.to_string()])
        .arg("--home")
        .arg(home)
        .args(["--rpc-listen", &format!("127.0.0.1:{port}"), "--p2p-listen", "127.0.0.1:0"])
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
        NodeProcess::spawn_at(binary, home, format!("http://127.0.0.1:{port}"))
    }

    /// Starts `shutong node run` on `home` whose RPC answers at `rpc_url`.
    pub fn spawn_at(binary: &Path, home: &Path, rpc_url: String) -> anyhow::Result<NodeProcess> {
        NodeProcess::spawn_with_env(binary, home, rpc_url, &[])
    }

    /// The same with `env` added to the node's environment (an `LD_PRELOAD` fault shim, say).
    pub fn spawn_with_env(
        binary: &Path,
        home: &Path,
        rpc_url: String,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<NodeProcess> {
        let log = home.join("node.log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let child = Command::new(binary)
            .args(["node", "run", "--home"])
            .arg(home)
            .envs(env.iter().copied())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start shutong node run")?;
        Ok(NodeProcess { child, home: home.to_path_buf(), rpc_url, log })
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

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
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

/// A testnet's governance committee: its seats' keys (one department each) and threshold.
#[derive(Debug, Clone)]
pub struct Committee {
    pub keys: Vec<shutong_types::Keypair>,
    pub threshold: u32,
}

impl Committee {
    /// The committee of the testnet laid out in `dir` (its `testnet.json`).
    pub fn load(dir: &Path) -> anyhow::Result<Committee> {
        Committee::from_layout(&Layout::load(dir)?)
    }

    fn from_layout(layout: &Layout) -> anyhow::Result<Committee> {
        let keys = layout
            .committee_keys
            .iter()
            .map(|path| keyfile::read(path).with_context(|| format!("committee key {}", path.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Committee { keys, threshold: layout.committee_threshold })
    }

    /// Carries `actions` as the committee: the first seat proposes each, the next seats vote
    /// until the threshold is met. Returns, per action, the receipt of the transaction that
    /// carried it (whose events are the action's).
    pub async fn decide(
        &self,
        clients: &[Client],
        actions: Vec<shutong_sdk::system_api::governance::Action>,
    ) -> anyhow::Result<Vec<shutong_types::Receipt>> {
        use shutong_types::Decode;
        let chain_id = clients[0].status().await?.chain_id;
        let height = clients[0].status().await?.height;
        let mut nonces = std::collections::HashMap::new();
        for key in self.keys.iter().take(self.threshold as usize) {
            nonces.insert(key.account(), clients[0].nonce(&key.account()).await?);
        }
        let mut sign = |key: &shutong_types::Keypair, call| {
            let nonce = nonces.get_mut(&key.account()).expect("every voter's nonce was read");
            let mut builder = shutong_sdk::TxBuilder::new(&chain_id, key.clone());
            builder.gas_limit = shutong_sdk::builder::GAS_LIMIT_DEFAULT;
            let tx = builder.call(call, *nonce, height + load::EXPIRY_BLOCKS).expect("a key in memory signs");
            *nonce += 1;
            tx
        };
        let proposals: Vec<_> =
            actions.into_iter().map(|action| sign(&self.keys[0], shutong_sdk::builder::propose(action))).collect();
        let mut carried = load::submit_all(clients, proposals).await?;
        let ids: Vec<u64> = carried
            .iter()
            .map(|r| u64::decode(&r.output).context("a proposal's output is its id"))
            .collect::<anyhow::Result<_>>()?;
        for voter in self.keys.iter().take(self.threshold as usize).skip(1) {
            let votes: Vec<_> = ids.iter().map(|id| sign(voter, shutong_sdk::builder::vote(*id))).collect();
            carried = load::submit_all(clients, votes).await?;
        }
        Ok(carried)
    }
}

/// N validators on 127.0.0.1, each a child process; all are killed when the cluster drops,
/// and the temporary directory with their data is removed.
#[derive(Debug)]
pub struct Cluster {
    binary: PathBuf,
    pub chain_id: String,
    pub admin_key: PathBuf,
    /// The first seat of the governance committee: the clients sign as it.
    pub admin: shutong_types::Keypair,
    pub committee: Committee,
    pub members: Vec<LayoutNode>,
    processes: Vec<Option<NodeProcess>>,
    /// Every byte between the members crosses it; dropped after the processes.
    proxy: proxy::ProxyThread,
    // Dropped last: the processes go before their directories.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Lays out `validators` validators with `shutong testnet init` and starts none of them.
    pub fn init(binary: &Path, validators: usize, block_interval_ms: u64) -> anyhow::Result<Cluster> {
        Cluster::init_with_full_nodes(binary, validators, 0, block_interval_ms)
    }

    /// The same with `full_nodes` full nodes after the validators (members `validators..`).
    pub fn init_with_full_nodes(
        binary: &Path,
        validators: usize,
        full_nodes: usize,
        block_interval_ms: u64,
    ) -> anyhow::Result<Cluster> {
        Cluster::lay_out(
            binary,
            shutong_types::Suite::Ed25519Blake3,
            validators,
            full_nodes,
            block_interval_ms,
            false,
            None,
        )
    }

    /// The same on a chain of `suite`.
    pub fn init_in(
        binary: &Path,
        suite: shutong_types::Suite,
        validators: usize,
        full_nodes: usize,
        block_interval_ms: u64,
    ) -> anyhow::Result<Cluster> {
        Cluster::lay_out(binary, suite, validators, full_nodes, block_interval_ms, false, None)
    }

    /// Nodes of a chain of `suite` that dial each other directly, without the link proxy
    /// (whose faults then do nothing): for the end-to-end benchmark, whose figures compare
    /// across builds, and to calibrate the proxy against.
    pub fn init_direct(
        binary: &Path,
        suite: shutong_types::Suite,
        validators: usize,
        full_nodes: usize,
        block_interval_ms: u64,
    ) -> anyhow::Result<Cluster> {
        Cluster::lay_out(binary, suite, validators, full_nodes, block_interval_ms, true, None)
    }

    /// A chain whose nodes prune what is older than `retention_secs` (a test chain: its
    /// genesis lowers the legal minimum to that).
    pub fn init_pruning(
        binary: &Path,
        validators: usize,
        full_nodes: usize,
        block_interval_ms: u64,
        retention_secs: u64,
    ) -> anyhow::Result<Cluster> {
        let suite = shutong_types::Suite::Ed25519Blake3;
        Cluster::lay_out(binary, suite, validators, full_nodes, block_interval_ms, false, Some(retention_secs))
    }

    fn lay_out(
        binary: &Path,
        suite: shutong_types::Suite,
        validators: usize,
        full_nodes: usize,
        block_interval_ms: u64,
        direct: bool,
        retention_secs: Option<u64>,
    ) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let retention = retention_secs.map(|s| s.to_string());
        let status = Command::new(binary)
            .args(["testnet", "init", "--base-port", "0", "--chain-id", "shutong-cluster"])
            .args(["--validators", &validators.to_string(), "--block-interval-ms", &block_interval_ms.to_string()])
            .args(["--full-nodes", &full_nodes.to_string(), "--suite", suite.name()])
            .args(direct.then_some("--direct"))
            .args(retention.as_deref().map(|r| ["--retention-secs", r]).into_iter().flatten())
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()
            .context("cannot run shutong testnet init")?;
        if !status.success() {
            bail!("shutong testnet init failed with {status}");
        }
        let layout = Layout::load(dir.path())?;
        let admin = keyfile::read(&layout.admin_key).context("the testnet's admin key")?;
        let committee = Committee::from_layout(&layout)?;
        let proxy = proxy::ProxyThread::start(layout.links.clone(), proxy::Links::new(0))
            .context("cannot start the link proxy")?;
        Ok(Cluster {
            binary: binary.to_path_buf(),
            chain_id: layout.chain_id,
            admin_key: layout.admin_key,
            admin,
            committee,
            processes: layout.nodes.iter().map(|_| None).collect(),
            members: layout.nodes,
            proxy,
            _dir: dir,
        })
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A client of member `i`, signing its requests as the genesis admin (every method but
    /// status and proofs needs a registered principal's signature).
    pub fn client(&self, i: usize) -> anyhow::Result<Client> {
        Ok(Client::new(&format!("http://{}", self.members[i].rpc))?.signed_for(&self.chain_id, self.admin.clone()))
    }

    /// Starts validator `i` and waits until it answers RPC.
    pub async fn start(&mut self, i: usize) -> anyhow::Result<Client> {
        self.start_with_env(i, &[]).await
    }

    /// Starts member `i` with `env` added to its environment, and waits until it answers.
    pub async fn start_with_env(&mut self, i: usize, env: &[(&str, &std::ffi::OsStr)]) -> anyhow::Result<Client> {
        let member = &self.members[i];
        let mut process =
            NodeProcess::spawn_with_env(&self.binary, &member.home, format!("http://{}", member.rpc), env)?;
        let client = process.wait_ready(Duration::from_secs(60)).await?;
        self.processes[i] = Some(process);
        Ok(client.signed_for(&self.chain_id, self.admin.clone()))
    }

    /// Waits up to `timeout` for member `i`'s process to exit by itself, and returns its
    /// status; the member then counts as not running.
    pub async fn wait_exit(&mut self, i: usize, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let process = self.processes[i].as_mut().context("the member is not running")?;
            if let Some(status) = process.try_wait()? {
                self.processes[i] = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("member {i} still runs after {timeout:?}; log:\n{}", process.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.len() {
            self.start(i).await?;
        }
        Ok(())
    }

    /// The process id of validator `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.processes[i].as_ref().map(|p| p.child.id())
    }

    /// Whether validator `i`'s process runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.processes[i].is_some()
    }

    /// The faults of the links between the members, through the link proxy (`proxy.rs`).
    pub fn links(&self) -> &proxy::Links {
        self.proxy.links()
    }

    /// The link proxy's routes, with the addresses it listens on.
    pub fn routes(&self) -> &[proxy::Route] {
        self.proxy.routes()
    }

    /// The CPU time the link proxy has used so far.
    pub fn proxy_cpu_time(&self) -> Option<Duration> {
        self.proxy.cpu_time()
    }

    /// Cuts validator `i` off from the members in `from`, both ways, as a blackhole: no byte
    /// and no connection's end crosses until [`Cluster::heal`], and none is lost.
    pub fn isolate(&self, i: usize, from: &[usize]) {
        self.links().cut(&[i], from, proxy::LinkState::Held);
    }

    /// Splits the members into two groups that cannot hear each other.
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        self.links().cut(a, b, proxy::LinkState::Held);
    }

    /// Heals every link: no delay, no cut.
    pub fn heal(&self) {
        self.links().heal();
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) validator `i`: a stopped process neither runs
    /// nor answers, as a validator stalled by its machine.
    pub fn pause(&self, i: usize, stopped: bool) {
        if let Some(process) = &self.processes[i] {
            #[allow(unsafe_code)]
            // SAFETY: sending a signal to our own child process has no memory-safety effects.
            unsafe {
                libc::kill(process.child.id() as i32, if stopped { libc::SIGSTOP } else { libc::SIGCONT });
            }
        }
    }

    /// SIGKILL validator `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.processes[i].take() {
            process.kill();
        }
    }

    /// The last lines of validator `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let log = self.members[i].home.join("node.log");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// How many consensus timers member `i` has seen fire (`shutong_consensus_timeouts_total`,
    /// every timer): a clock that moves only while views fail to end.
    pub async fn timeouts(&self, i: usize) -> anyhow::Result<u64> {
        let metrics = self.client(i)?.metrics().await?;
        Ok(metrics
            .iter()
            .filter(|(name, _)| name.starts_with("shutong_consensus_timeouts_total{"))
            .map(|(_, v)| *v as u64)
            .sum())
    }

    /// Waits until member `i` has seen `more` consensus timers fire after this call: time
    /// passing on the node's own clock, in views that did not end. A test that asserts a
    /// stalled chain stays stalled waits on this rather than on a fixed sleep, so a slow
    /// machine gives the node as many chances to (wrongly) finalize as a fast one.
    pub async fn wait_timeouts(&self, i: usize, more: u64, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        let target = self.timeouts(i).await? + more;
        loop {
            let now = self.timeouts(i).await?;
            if now >= target {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("{} saw {now} of {target} timeouts after {timeout:?}", self.members[i].name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until member `i` reports exactly `peers` connected peers.
    pub async fn wait_peers(&self, i: usize, peers: u64, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        let client = self.client(i)?;
        loop {
            let now = client.status().await.map(|s| s.peers);
            if now.as_ref().is_ok_and(|n| *n == peers) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("{} has {now:?} peers, not {peers}, after {timeout:?}", self.members[i].name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every validator in `nodes` has committed `height`.
    pub async fn wait_height(&self, nodes: &[usize], height: u64, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        for &i in nodes {
            let client = self.client(i)?;
            loop {
                if client.status().await.is_ok_and(|s| s.height >= height) {
                    break;
                }
                if start.elapsed() > timeout {
                    let at = client.status().await.map(|s| s.height.to_string()).unwrap_or_else(|e| e.to_string());
                    bail!(
                        "{} is at {at}, not {height}, after {timeout:?}; log:\n{}",
                        self.members[i].name,
                        self.log_tail(i)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

pub mod bench;
pub mod disk;
pub mod faults;
pub mod layout;
pub mod load;
pub mod loadgen;
pub mod proxy;
pub mod sim;
pub mod soak;
pub mod wan;
