//! Fault injection under load on four validator processes: SIGKILL and restart, a
//! partition that halts the chain and heals, a minority cut off, a validator slowed by
//! stopping its process, stalls, one-way cuts and delay spikes on links (through the
//! testnet's link proxy). After each run every transaction a node accepted is in exactly one
//! block, and every validator holds the same blocks, state and audit log.
//! (`scripts/soak.sh` runs the same for as long as asked, with random faults.)

use shutong_sdk::Client;
use shutong_testnet::Cluster;
use shutong_testnet::faults::{self, Fault, Schedule};
use shutong_testnet::load::{self, Shape, World};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const RATE: f64 = 40.0;

async fn cluster() -> (Cluster, Vec<Client>, World) {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.unwrap();
    let clients: Vec<Client> = (0..4).map(|i| cluster.client(i).unwrap()).collect();
    let shape = Shape {
        providers: 2,
        gateways_per_provider: 4,
        consumers: 2,
        analysts_per_consumer: 2,
        spare_grants: 20,
        pending_requests: 20,
    };
    let world = World::build(&clients, &cluster.committee, shape).await.unwrap();
    (cluster, clients, world)
}

/// Offers `seconds` of load while `schedule` runs, then checks the chain.
async fn under_load(cluster: &mut Cluster, clients: &[Client], world: &mut World, seconds: u64, schedule: Schedule) {
    let from = clients[0].status().await.unwrap().height;
    let txs = world.sign(RATE as u64 * seconds, from);
    let (report, injected) = tokio::join!(
        load::run(clients, &clients[0], &[], txs, RATE, Duration::from_secs(60)),
        faults::inject(cluster, &schedule)
    );
    let (report, injected) = (report.unwrap(), injected.unwrap());
    assert_eq!(injected.len(), schedule.len(), "{injected:?}");
    let tally = faults::check(cluster, &report.accepted_ids, from, Duration::from_secs(90)).await.unwrap();
    let summary =
        (report.sent, report.accepted, report.committed, report.failed, &report.refused, report.p50_ms, report.p99_ms);
    eprintln!(
        "faults {injected:?}\nload (sent, accepted, committed, failed, refused, p50, p99) {summary:?}\nchain {tally:?}"
    );
    assert!(tally.accepted >= report.sent * 9 / 10, "most offered transactions are accepted: {report:?}");
    assert_eq!((tally.lost, tally.duplicated), (0, 0), "{tally:?}");
    assert_eq!(tally.committed, tally.accepted);
    assert_eq!(tally.validators_agreeing, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_validators_restart_under_load_and_nothing_is_lost() {
    let (mut cluster, clients, mut world) = cluster().await;
    let schedule = vec![
        (Duration::from_secs(3), Fault::Kill { node: 2, down: Duration::from_secs(4) }),
        (Duration::from_secs(10), Fault::Kill { node: 3, down: Duration::from_secs(3) }),
    ];
    under_load(&mut cluster, &clients, &mut world, 18, schedule).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_halts_the_chain_and_healing_resumes_it_with_nothing_lost() {
    let (mut cluster, clients, mut world) = cluster().await;
    // Two against two: neither side has a quorum, so nothing is finalized until it heals.
    cluster.partition(&[0, 1], &[2, 3]);
    // A block already on its way may still finalize: by the time two timers have fired in
    // views that did not end, it has. After that, through three more, nothing does.
    let wait = Duration::from_secs(60);
    cluster.wait_timeouts(0, 2, wait).await.unwrap();
    let halted = clients[0].status().await.unwrap().height;
    cluster.wait_timeouts(0, 3, wait).await.unwrap();
    assert_eq!(clients[0].status().await.unwrap().height, halted, "a 2|2 partition finalized blocks");
    cluster.heal();
    cluster.wait_height(&[0, 1, 2, 3], halted + 3, Duration::from_secs(60)).await.unwrap();

    // Under load: a 2|2 split, then one validator cut off from the other three.
    let schedule = vec![
        (Duration::from_secs(2), Fault::Partition { a: vec![0, 1], b: vec![2, 3], lasting: Duration::from_secs(4) }),
        (Duration::from_secs(9), Fault::Partition { a: vec![0, 1, 2], b: vec![3], lasting: Duration::from_secs(4) }),
    ];
    under_load(&mut cluster, &clients, &mut world, 16, schedule).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stalls_one_way_cuts_and_delay_spikes_on_links_lose_nothing() {
    let (mut cluster, clients, mut world) = cluster().await;
    let lasting = Duration::from_secs(3);
    let schedule = vec![
        // 1 cannot be heard by 2: bytes held in the proxy, none lost.
        (Duration::from_secs(1), Fault::Stall { from: 1, to: 2, lasting }),
        // 3's connections to 0 reset whenever 3 sends, and 3 cannot dial 0 again.
        (Duration::from_secs(5), Fault::OneWayCut { from: 3, to: 0, reset: true, lasting }),
        // 2 across a slow WAN: 300 ms each way, jittered.
        (Duration::from_secs(9), Fault::DelaySpike { node: 2, delay: Duration::from_millis(300), lasting }),
    ];
    under_load(&mut cluster, &clients, &mut world, 14, schedule).await;
    assert!(cluster.links().stats(3, 0).resets >= 1, "the reset cut reset a connection");
    assert!(cluster.links().stats(1, 2).written > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_validator_does_not_lose_or_fork_anything() {
    let (mut cluster, clients, mut world) = cluster().await;
    let slow = Fault::Slow {
        node: 1,
        stopped: Duration::from_millis(400),
        running: Duration::from_millis(200),
        lasting: Duration::from_secs(10),
    };
    under_load(&mut cluster, &clients, &mut world, 14, vec![(Duration::from_secs(1), slow)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_accepted_just_before_a_crash_is_committed_after_the_restart() {
    use shutong_sdk::system_api::registry::OrgKind;
    let mut cluster = Cluster::init(Path::new(BIN), 1, 500).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0], 2, Duration::from_secs(60)).await.unwrap();
    let client = cluster.client(0).unwrap();
    let key = shutong_types::Keypair::generate(shutong_types::Suite::Ed25519Blake3);
    let height = client.status().await.unwrap().height;
    let txb = shutong_sdk::TxBuilder::new(&cluster.chain_id, key);
    let txs: Vec<_> = (0..20)
        .map(|i| {
            txb.call(
                shutong_sdk::builder::register_org(&format!("crash-{i}"), "X", OrgKind::Enterprise),
                i,
                height + 1000,
            )
            .unwrap()
        })
        .collect();
    // Accepted, then SIGKILL at once: blocks come every 500 ms, so most are not in one yet.
    for tx in &txs {
        client.submit(tx).await.unwrap();
    }
    cluster.kill(0);
    cluster.start(0).await.unwrap();
    for tx in &txs {
        let receipt = client.wait_for_receipt(&tx.id(), Duration::from_secs(30)).await.unwrap();
        assert!(receipt.status.is_success(), "{receipt:?}");
    }
}

/// The established TCP connections whose local end is one of `addrs`, as (local, remote),
/// from the kernel's table (`/proc/net/tcp`, IPv4).
fn connections_into(addrs: &[std::net::SocketAddr]) -> Vec<(std::net::SocketAddr, std::net::SocketAddr)> {
    let parse = |field: &str| -> Option<std::net::SocketAddr> {
        let (ip, port) = field.split_once(':')?;
        let ip = u32::from_str_radix(ip, 16).ok()?.to_le_bytes();
        Some(std::net::SocketAddr::from((ip, u16::from_str_radix(port, 16).ok()?)))
    };
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // State 01 is ESTABLISHED.
            let (local, remote) = (parse(fields.get(1)?)?, parse(fields.get(2)?)?);
            (fields.get(3) == Some(&"01") && addrs.contains(&local)).then_some((local, remote))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn validators_reach_each_other_only_through_the_link_proxy() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(90)).await.unwrap();
    // Every ordered pair's bytes crossed the proxy.
    for from in 0..4 {
        for to in (0..4).filter(|to| *to != from) {
            let stats = cluster.links().stats(from, to);
            assert!(stats.written > 0, "nothing crossed {from} -> {to}: {stats:?}");
        }
    }
    // Each validator listens on an address of its own, and every connection into one came
    // from the proxy's address: none was opened directly by another validator. (Every pair
    // talks, above, so every pair talks through the proxy.)
    let listening: Vec<std::net::SocketAddr> = cluster.members.iter().map(|m| m.p2p).collect();
    assert_eq!(listening.iter().map(|a| a.ip()).collect::<std::collections::HashSet<_>>().len(), 4);
    let inbound = connections_into(&listening);
    // Six pairs, each with a connection dialled by either side (libp2p may keep just one),
    // so not every validator need have one coming in, but there are six at least.
    assert!(inbound.len() >= 6, "{inbound:?}");
    for (local, remote) in &inbound {
        assert_eq!(remote.ip(), shutong_testnet::proxy::SOURCE, "{remote} reached {local} without the proxy");
    }
}
