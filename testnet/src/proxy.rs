//! The link proxy: the network between a testnet's validators, in user space on loopback.
//!
//! Each validator reaches each other validator through a listener of its own here, one per
//! ordered pair (from, to), which forwards to the other's p2p address. Every byte between two
//! validators therefore crosses the proxy, and each direction of each pair can be given, at
//! any moment, the faults of a real network (this kernel has no `netem`):
//! - a one-way **delay** and **jitter**: each chunk is due at its read time plus the delay plus
//!   a draw up to the jitter, never before the chunk ahead of it (bytes are not reordered);
//! - a **bandwidth**: the proxy reads at the emulated rate, and holds at most
//!   [`QUEUED_BYTES_MAX`] per direction of a connection, so back-pressure reaches the sender
//!   through TCP as it would on a slow link;
//! - **held**, a stall or a blackhole cut: bytes, and a connection's end (no FIN crosses), wait
//!   in the proxy until the direction is up again, and a new connection is not opened onward;
//!   nothing is dropped, since Noise resets a connection that loses a byte;
//! - **reset**, a cut as an RST: every connection carrying bytes that way is reset at both
//!   ends, and so is each new one, until the direction is up again.
//!
//! A connection a validator dials through the listener (from, to) carries from→to bytes one
//! way and to→from bytes the other; each uses its own direction's faults, so a one-way cut
//! holds the same bytes whichever side dialled.

use crate::sim::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The address the proxy connects onward from, and no node does: a connection into a
/// node's p2p port from anywhere else did not cross the proxy.
pub const SOURCE: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 254));

/// The most one read takes from a socket.
const CHUNK_BYTES: usize = 16 << 10;
/// Chunks waiting between a direction's reader and its writer.
const QUEUED_CHUNKS: usize = 30;
/// The most a direction of one connection holds in the proxy (the queue, the chunk its
/// writer holds and the one its reader holds): past it the proxy stops reading and the
/// sender's TCP window closes.
pub const QUEUED_BYTES_MAX: usize = CHUNK_BYTES * (QUEUED_CHUNKS + 2);

/// A direction of a link: bytes from validator `.0` to validator `.1`.
pub type Direction = (usize, usize);

/// Whether a direction passes bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    #[default]
    Up,
    /// A stall or a blackhole cut: bytes wait in the proxy until the direction is up.
    Held,
    /// A cut as an RST: connections carrying bytes this way are reset, new ones too.
    Reset,
}

/// What one direction of a link does to the bytes that cross it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinkFaults {
    /// Added to every chunk's crossing.
    #[serde(default, with = "millis")]
    pub delay: Duration,
    /// Up to this much more per chunk, drawn uniformly; never reorders.
    #[serde(default, with = "millis")]
    pub jitter: Duration,
    /// Bytes per second; `None` is as fast as loopback.
    #[serde(default)]
    pub bandwidth: Option<u64>,
    #[serde(default)]
    pub state: LinkState,
}

impl LinkFaults {
    /// A direction with a fixed one-way delay and nothing else.
    pub fn delayed(delay: Duration) -> LinkFaults {
        LinkFaults { delay, ..LinkFaults::default() }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// What crossed one direction, for tests and the proxy's own figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectionStats {
    /// Bytes read from the sender.
    pub read: u64,
    /// Bytes written to the receiver.
    pub written: u64,
    /// Times a reader found its queue full and waited for the writer (back-pressure).
    pub backpressured: u64,
    /// Connections reset because of this direction's state.
    pub resets: u64,
}

#[derive(Debug, Default)]
struct Table {
    faults: HashMap<Direction, LinkFaults>,
    stats: HashMap<Direction, DirectionStats>,
}

#[derive(Debug)]
struct Shared {
    table: Mutex<Table>,
    /// Bumped on every change of faults, so held and waiting pumps look again.
    changed: watch::Sender<u64>,
    rng: Mutex<Rng>,
}

/// The faults of every link, shared by the proxy's connections; cloning shares them.
#[derive(Debug, Clone)]
pub struct Links(Arc<Shared>);

impl Links {
    pub fn new(seed: u64) -> Links {
        Links(Arc::new(Shared {
            table: Mutex::new(Table::default()),
            changed: watch::channel(0).0,
            rng: Mutex::new(Rng::new(seed)),
        }))
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding this lock leaves plain data; the next reader may use it.
        self.0.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The faults of `from` → `to`.
    pub fn get(&self, from: usize, to: usize) -> LinkFaults {
        self.table().faults.get(&(from, to)).copied().unwrap_or_default()
    }

    /// Sets the faults of `from` → `to`; connections already open obey them at once.
    pub fn set(&self, from: usize, to: usize, faults: LinkFaults) {
        self.table().faults.insert((from, to), faults);
        self.0.changed.send_modify(|n| *n += 1);
    }

    /// Sets the state of `from` → `to`, keeping its delay, jitter and bandwidth.
    pub fn set_state(&self, from: usize, to: usize, state: LinkState) {
        let faults = LinkFaults { state, ..self.get(from, to) };
        self.set(from, to, faults);
    }

    /// Sets the same faults on every direction between distinct members of `0..n`.
    pub fn set_all(&self, n: usize, faults: LinkFaults) {
        {
            let mut table = self.table();
            for from in 0..n {
                for to in (0..n).filter(|to| *to != from) {
                    table.faults.insert((from, to), faults);
                }
            }
        }
        self.0.changed.send_modify(|n| *n += 1);
    }

    /// Sets `state` on both directions between each member of `a` and each member of `b`.
    pub fn cut(&self, a: &[usize], b: &[usize], state: LinkState) {
        for &x in a {
            for &y in b {
                self.set_state(x, y, state);
                self.set_state(y, x, state);
            }
        }
    }

    /// Replaces every direction's faults at once (those not named have none).
    pub fn replace(&self, faults: impl IntoIterator<Item = (Direction, LinkFaults)>) {
        self.table().faults = faults.into_iter().collect();
        self.0.changed.send_modify(|n| *n += 1);
    }

    /// Every direction back to no faults at all.
    pub fn heal(&self) {
        self.table().faults.clear();
        self.0.changed.send_modify(|n| *n += 1);
    }

    /// What has crossed `from` → `to` so far.
    pub fn stats(&self, from: usize, to: usize) -> DirectionStats {
        self.table().stats.get(&(from, to)).copied().unwrap_or_default()
    }

    fn count(&self, direction: Direction, add: impl FnOnce(&mut DirectionStats)) {
        add(self.table().stats.entry(direction).or_default());
    }

    fn state(&self, direction: Direction) -> LinkState {
        self.get(direction.0, direction.1).state
    }

    /// Returns once `direction` is up, or `Err` as soon as it is reset.
    async fn passable(&self, direction: Direction) -> Result<(), Reset> {
        let mut changed = self.0.changed.subscribe();
        loop {
            match self.state(direction) {
                LinkState::Up => return Ok(()),
                LinkState::Reset => return Err(Reset),
                LinkState::Held => {}
            }
            // The sender lives in `self`, so this never fails while we wait.
            let _ = changed.changed().await;
        }
    }

    /// Returns, once either direction between `a` and `b` is reset, the one that is.
    async fn reset_between(&self, a: usize, b: usize) -> Direction {
        let mut changed = self.0.changed.subscribe();
        loop {
            for direction in [(a, b), (b, a)] {
                if self.state(direction) == LinkState::Reset {
                    return direction;
                }
            }
            let _ = changed.changed().await;
        }
    }

    fn jitter_rng(&self) -> Rng {
        self.0.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).fork()
    }
}

/// A direction was reset, so is the connection.
#[derive(Debug)]
struct Reset;

/// One ordered pair's listener: validator `from` dials `listen` to reach `to` at `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub from: usize,
    pub to: usize,
    pub listen: SocketAddr,
    pub target: SocketAddr,
}

/// The running proxy. Dropping it closes its listeners and every connection through it.
#[derive(Debug)]
pub struct Proxy {
    links: Links,
    routes: Vec<Route>,
    tasks: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// Binds every route's listener, then forwards what arrives. A listen port of 0 is given
    /// a free one, which [`Proxy::routes`] reports.
    pub async fn start(routes: &[Route], links: Links) -> std::io::Result<Proxy> {
        let mut bound = Vec::with_capacity(routes.len());
        let mut listeners = Vec::with_capacity(routes.len());
        for route in routes {
            let listener = TcpListener::bind(route.listen).await.map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!("proxy {} -> {} on {}: {err}", route.from, route.to, route.listen),
                )
            })?;
            bound.push(Route { listen: listener.local_addr()?, ..*route });
            listeners.push(listener);
        }
        let tasks = bound
            .iter()
            .zip(listeners)
            .map(|(route, listener)| tokio::spawn(serve(listener, *route, links.clone())))
            .collect();
        Ok(Proxy { links, routes: bound, tasks })
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    /// The routes with their bound listen addresses.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Where `from` dials to reach `to`.
    pub fn addr(&self, from: usize, to: usize) -> Option<SocketAddr> {
        self.routes.iter().find(|r| r.from == from && r.to == to).map(|r| r.listen)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Accepts on one route's listener for as long as the proxy lives; aborting this task drops
/// its connections with it.
async fn serve(listener: TcpListener, route: Route, links: Links) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => {
                    connections.spawn(connection(inbound, route, links.clone()));
                }
                Err(err) => tracing::warn!(from = route.from, to = route.to, %err, "proxy accept failed"),
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// One connection dialled by `route.from`: opened onward once `from` → `to` passes, then its
/// two directions pumped until both end, or reset.
async fn connection(mut inbound: TcpStream, route: Route, links: Links) {
    let (from, to) = (route.from, route.to);
    let _ = inbound.set_nodelay(true);
    // A held way opens nothing onward (a blackhole answers no SYN); a reset way resets.
    let opened = tokio::select! {
        biased;
        cause = links.reset_between(from, to) => Err(cause),
        passable = links.passable((from, to)) => passable.map_err(|Reset| (from, to)),
    };
    if let Err(cause) = opened {
        links.count(cause, |s| s.resets += 1);
        return reset(&inbound, None);
    }
    let mut outbound = match connect_from_source(route.target).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(from, to, %err, "proxy cannot reach its target");
            return reset(&inbound, None);
        }
    };
    let _ = outbound.set_nodelay(true);
    let ended = {
        let (in_read, in_write) = inbound.split();
        let (out_read, out_write) = outbound.split();
        let forward = direction(in_read, out_write, (from, to), &links);
        let backward = direction(out_read, in_write, (to, from), &links);
        tokio::select! {
            biased;
            cause = links.reset_between(from, to) => {
                links.count(cause, |s| s.resets += 1);
                Err(())
            }
            pumped = async { tokio::try_join!(forward, backward) } => pumped.map(|_| ()).map_err(|Reset| ()),
        }
    };
    if ended.is_err() {
        reset(&inbound, Some(&outbound));
    }
}

async fn connect_from_source(target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(SOURCE, 0))?;
    socket.connect(target).await
}

/// Closes both sockets with an RST rather than a FIN (SO_LINGER of zero, then close).
fn reset(a: &TcpStream, b: Option<&TcpStream>) {
    for stream in std::iter::once(a).chain(b) {
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        #[allow(unsafe_code)]
        // SAFETY: the descriptor is a live socket we own (borrowed for the call), and the
        // option value is a `linger` of the size passed.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    // The caller drops the streams, which closes them with the RST.
}

enum Chunk {
    Data { due: Instant, bytes: Vec<u8> },
    End { due: Instant },
}

/// One direction of a connection: a reader that paces and stamps chunks into a bounded
/// queue, and a writer that delivers each when due and the direction passes.
async fn direction<R, W>(mut src: R, mut dst: W, dir: Direction, links: &Links) -> Result<(), Reset>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (queue, mut due) = mpsc::channel::<Chunk>(QUEUED_CHUNKS);
    let reader = async {
        let mut rng = links.jitter_rng();
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut next_read = Instant::now();
        let mut last_due = Instant::now();
        loop {
            tokio::time::sleep_until(next_read).await;
            let n = src.read(&mut buf).await.map_err(|_| Reset)?;
            let faults = links.get(dir.0, dir.1);
            let now = Instant::now();
            let jitter = match faults.jitter.as_micros() as u64 {
                0 => Duration::ZERO,
                max => Duration::from_micros(rng.between(0, max)),
            };
            last_due = last_due.max(now + faults.delay + jitter);
            let chunk = if n == 0 {
                Chunk::End { due: last_due }
            } else {
                links.count(dir, |s| s.read += n as u64);
                if let Some(rate) = faults.bandwidth.filter(|r| *r > 0) {
                    next_read = next_read.max(now) + Duration::from_secs_f64(n as f64 / rate as f64);
                }
                Chunk::Data { due: last_due, bytes: buf[..n].to_vec() }
            };
            let end = matches!(chunk, Chunk::End { .. });
            let chunk = match queue.try_send(chunk) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(chunk)) => Some(chunk),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Reset),
            };
            if let Some(chunk) = chunk {
                links.count(dir, |s| s.backpressured += 1);
                queue.send(chunk).await.map_err(|_| Reset)?;
            }
            if end {
                return Ok(());
            }
        }
    };
    let writer = async {
        while let Some(chunk) = due.recv().await {
            let at = match &chunk {
                Chunk::Data { due, .. } | Chunk::End { due } => *due,
            };
            tokio::time::sleep_until(at).await;
            links.passable(dir).await?;
            match chunk {
                Chunk::Data { bytes, .. } => {
                    dst.write_all(&bytes).await.map_err(|_| Reset)?;
                    links.count(dir, |s| s.written += bytes.len() as u64);
                }
                Chunk::End { .. } => {
                    let _ = dst.shutdown().await;
                    return Ok(());
                }
            }
        }
        Ok(())
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

/// A [`Proxy`] on a thread and runtime of its own, so that it forwards whatever its owner is
/// doing (a test blocking its thread, a CLI waiting for a signal). Dropping it stops the
/// proxy and joins the thread.
#[derive(Debug)]
pub struct ProxyThread {
    links: Links,
    routes: Vec<Route>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProxyThread {
    /// Binds every route (an error names the one that failed) and starts forwarding.
    pub fn start(routes: Vec<Route>, links: Links) -> std::io::Result<ProxyThread> {
        let (started, bound) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = links.clone();
        let thread = std::thread::Builder::new().name("link-proxy".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = started.send(Err(err));
                    return;
                }
            };
            runtime.block_on(async move {
                match Proxy::start(&routes, shared).await {
                    Ok(proxy) => {
                        let _ = started.send(Ok(proxy.routes().to_vec()));
                        let _ = stopped.await;
                        drop(proxy);
                    }
                    Err(err) => {
                        let _ = started.send(Err(err));
                    }
                }
            });
        })?;
        let routes = bound.recv().map_err(|_| std::io::Error::other("the proxy thread ended before it started"))??;
        Ok(ProxyThread { links, routes, stop: Some(stop), thread: Some(thread) })
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The CPU time the proxy's thread has used so far: its own cost, to subtract from or set
    /// beside the nodes' figures.
    pub fn cpu_time(&self) -> Option<Duration> {
        use std::os::unix::thread::JoinHandleExt;
        let thread = self.thread.as_ref()?.as_pthread_t();
        let mut clock: libc::clockid_t = 0;
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        #[allow(unsafe_code)]
        // SAFETY: the thread is alive (joined only on drop), and both out-pointers are to
        // locals of the right types.
        let ok = unsafe {
            libc::pthread_getcpuclockid(thread, &mut clock) == 0 && libc::clock_gettime(clock, &mut now) == 0
        };
        ok.then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
    }
}

impl Drop for ProxyThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `DIR/links.json`: the faults that `shutong testnet link` asks of the running
/// `shutong testnet proxy` of the testnet in `DIR`, which reads it five times a second.
pub const LINK_FILE: &str = "links.json";
/// The largest link file read.
const LINK_FILE_BYTES_MAX: u64 = 1 << 20;
/// The longest delay, or jitter, a link file may give a direction (`testnet link` allows the same).
pub const LINK_DELAY_MAX: Duration = Duration::from_secs(60);

/// One direction's faults in the link file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub from: usize,
    pub to: usize,
    #[serde(flatten)]
    pub faults: LinkFaults,
}

/// The link file's contents: the directions that have faults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFile {
    pub links: Vec<LinkEntry>,
}

impl LinkFile {
    /// The link file in `dir`; none yet is no faults.
    pub fn load(dir: &std::path::Path) -> anyhow::Result<LinkFile> {
        use anyhow::Context;
        let path = dir.join(LINK_FILE);
        let file: LinkFile = match shutong_api::files::read_bounded(&path, LINK_FILE_BYTES_MAX) {
            Ok(Some(text)) => {
                serde_json::from_str(&text).with_context(|| format!("{} is not a link file", path.display()))?
            }
            Ok(None) => anyhow::bail!("{} is over {LINK_FILE_BYTES_MAX} bytes", path.display()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => LinkFile::default(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        // A delay past any deadline would overflow the proxy's clock arithmetic.
        for e in &file.links {
            if e.faults.delay > LINK_DELAY_MAX || e.faults.jitter > LINK_DELAY_MAX {
                anyhow::bail!(
                    "{}: {} -> {}: delay and jitter are at most {LINK_DELAY_MAX:?}",
                    path.display(),
                    e.from,
                    e.to
                );
            }
        }
        Ok(file)
    }

    /// Writes it whole (a reader never sees half a file).
    pub fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        let path = dir.join(LINK_FILE);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Sets `from` → `to` (replacing what it had); faults of none remove the entry.
    pub fn set(&mut self, from: usize, to: usize, faults: LinkFaults) {
        self.links.retain(|e| (e.from, e.to) != (from, to));
        if faults != LinkFaults::default() {
            self.links.push(LinkEntry { from, to, faults });
        }
    }
}

/// `shutong testnet proxy`: runs the link proxy of the testnet in `dir` until SIGTERM or
/// Ctrl-C, applying its link file whenever it changes. A malformed file is reported in the
/// proxy's log and the faults in force stay.
pub async fn run_for(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let layout = crate::layout::Layout::load(dir)?;
    if layout.links.is_empty() {
        anyhow::bail!("the testnet in {} was laid out before the link proxy: it has no links", dir.display());
    }
    let proxy = ProxyThread::start(layout.links.clone(), Links::new(0)).context("cannot start the link proxy")?;
    eprintln!("link proxy: {} routes", proxy.routes().len());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut applied: Option<LinkFile> = None;
    loop {
        match LinkFile::load(dir) {
            Ok(file) if applied.as_ref() != Some(&file) => {
                let faults = file.links.iter().map(|e| ((e.from, e.to), e.faults));
                proxy.links().replace(faults);
                eprintln!("link proxy: {} directions with faults", file.links.len());
                applied = Some(file);
            }
            Ok(_) => {}
            Err(err) => eprintln!("link proxy: {err:#}; the faults in force stay"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    eprintln!("link proxy: stopped; CPU used {:?}", proxy.cpu_time());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// Every wait in these tests is bounded by this, far beyond what a slow machine needs.
    const PATIENCE: Duration = Duration::from_secs(20);

    /// A proxy for validators 0 and 1 in front of two listeners standing in for their p2p
    /// ports; returns it with the listeners.
    async fn pair(links: Links) -> (Proxy, [TcpListener; 2]) {
        let targets = [TcpListener::bind((LOCAL, 0)).await.unwrap(), TcpListener::bind((LOCAL, 0)).await.unwrap()];
        let routes: Vec<Route> = [(0, 1), (1, 0)]
            .into_iter()
            .map(|(from, to)| Route {
                from,
                to,
                listen: SocketAddr::new(LOCAL, 0),
                target: targets[to].local_addr().unwrap(),
            })
            .collect();
        (Proxy::start(&routes, links).await.unwrap(), targets)
    }

    /// Validator 0 dials validator 1 through the proxy; returns (0's end, 1's end).
    async fn dial(proxy: &Proxy, targets: &[TcpListener; 2]) -> (TcpStream, TcpStream) {
        let dialler = TcpStream::connect(proxy.addr(0, 1).unwrap()).await.unwrap();
        let (accepted, from) = tokio::time::timeout(PATIENCE, targets[1].accept()).await.unwrap().unwrap();
        assert_eq!(from.ip(), SOURCE, "the proxy connects onward from its own address");
        (dialler, accepted)
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        tokio::time::timeout(PATIENCE, async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"));
    }

    #[tokio::test]
    async fn delayed_and_jittered_bytes_arrive_whole_in_order_and_no_sooner_than_the_delay() {
        let links = Links::new(7);
        let delay = Duration::from_millis(40);
        links.set(0, 1, LinkFaults { delay, jitter: Duration::from_millis(30), ..LinkFaults::default() });
        let (proxy, targets) = pair(links).await;
        let (mut a, mut b) = dial(&proxy, &targets).await;
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            for piece in sent.chunks(1_000) {
                a.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            a.shutdown().await.unwrap();
            (sent, a)
        });
        let mut first = [0u8; 1];
        b.read_exact(&mut first).await.unwrap();
        assert!(started.elapsed() >= delay, "the first byte crossed in {:?}", started.elapsed());
        let mut received = first.to_vec();
        b.read_to_end(&mut received).await.unwrap();
        let (sent, _a) = writer.await.unwrap();
        assert_eq!(received, sent, "every byte, once, in order, and the end after them");
        assert_eq!(proxy.links().stats(0, 1).written, 200_000);
    }

    #[tokio::test]
    async fn a_held_direction_keeps_every_byte_until_it_is_up_while_the_other_way_flows() {
        let links = Links::new(1);
        let (proxy, targets) = pair(links.clone()).await;
        let (mut a, mut b) = dial(&proxy, &targets).await;
        links.set_state(0, 1, LinkState::Held);
        a.write_all(&[7u8; 50_000]).await.unwrap();
        until("the proxy has read what 0 sent", || links.stats(0, 1).read == 50_000).await;
        assert_eq!(links.stats(0, 1).written, 0, "held bytes stay in the proxy");
        // One way only: 1 → 0 still flows while 0 → 1 is held.
        b.write_all(b"pong").await.unwrap();
        let mut pong = [0u8; 4];
        a.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"pong");
        let mut probe = [0u8; 1];
        assert!(
            matches!(b.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "nothing reached 1 while held"
        );
        links.set_state(0, 1, LinkState::Up);
        let mut got = vec![0u8; 50_000];
        b.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|x| *x == 7), "nothing was dropped");
    }

    #[test]
    fn a_link_file_with_a_delay_past_the_limit_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = LinkFile::default();
        file.set(0, 1, LinkFaults::delayed(LINK_DELAY_MAX));
        file.save(dir.path()).unwrap();
        assert_eq!(LinkFile::load(dir.path()).unwrap(), file);
        std::fs::write(dir.path().join(LINK_FILE), r#"{"links":[{"from":0,"to":1,"delay":18446744073709551615}]}"#)
            .unwrap();
        let err = LinkFile::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("0 -> 1") && err.contains("at most"), "{err}");
    }

    #[tokio::test]
    async fn a_reset_cut_resets_open_connections_and_new_ones_until_it_is_up() {
        let links = Links::new(2);
        let (proxy, targets) = pair(links.clone()).await;
        let (mut a, mut b) = dial(&proxy, &targets).await;
        // A one-way reset: 1 → 0 only, and yet the connection 0 dialled is reset at both ends.
        links.set_state(1, 0, LinkState::Reset);
        let mut buf = [0u8; 8];
        let at_a = tokio::time::timeout(PATIENCE, a.read(&mut buf)).await.unwrap();
        let at_b = tokio::time::timeout(PATIENCE, b.read(&mut buf)).await.unwrap();
        for (end, read) in [("0", at_a), ("1", at_b)] {
            assert!(
                matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
                "{end}'s end was not reset: {read:?}"
            );
        }
        // A new connection is reset too.
        let mut again = TcpStream::connect(proxy.addr(0, 1).unwrap()).await.unwrap();
        let read = tokio::time::timeout(PATIENCE, again.read(&mut buf)).await.unwrap();
        assert!(matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset), "{read:?}");
        assert_eq!(links.stats(1, 0).resets, 2);
        // Up again: connections go through.
        links.heal();
        let (mut a, mut b) = dial(&proxy, &targets).await;
        a.write_all(b"back").await.unwrap();
        b.read_exact(&mut buf[..4]).await.unwrap();
        assert_eq!(&buf[..4], b"back");
    }

    #[tokio::test]
    async fn a_slow_link_paces_its_reads_and_pushes_back_on_the_sender() {
        let links = Links::new(3);
        let rate = 1 << 20;
        links.set(0, 1, LinkFaults { bandwidth: Some(rate), ..LinkFaults::default() });
        let (proxy, targets) = pair(links.clone()).await;
        let (mut a, mut b) = dial(&proxy, &targets).await;
        // Paced: half a MiB at 1 MiB/s takes at least the 0.5 s less the first chunk's read.
        let started = Instant::now();
        let sender = tokio::spawn(async move {
            a.write_all(&vec![1u8; 512 << 10]).await.unwrap();
            a
        });
        let mut got = vec![0u8; 512 << 10];
        b.read_exact(&mut got).await.unwrap();
        let floor = Duration::from_secs_f64(((512 << 10) - CHUNK_BYTES) as f64 / rate as f64);
        assert!(started.elapsed() >= floor, "512 KiB crossed in {:?}", started.elapsed());
        let mut a = sender.await.unwrap();
        // Back-pressure: with 1 not reading and the way held, the proxy fills its bounded
        // queue and then stops reading, so the sender's writes block instead of piling up here.
        links.set(0, 1, LinkFaults { state: LinkState::Held, ..LinkFaults::default() });
        let before = links.stats(0, 1).read;
        let sender = tokio::spawn(async move {
            let block = vec![2u8; 1 << 20];
            loop {
                if a.write_all(&block).await.is_err() {
                    return;
                }
            }
        });
        until("the reader found its queue full", || links.stats(0, 1).backpressured > 0).await;
        let queued = links.stats(0, 1).read - before;
        assert!(queued as usize <= QUEUED_BYTES_MAX, "the proxy holds {queued} bytes");
        sender.abort();
        drop(b);
    }
}
