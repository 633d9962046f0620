//! The authorisation contracts through the VM, on a node's RocksDB: a gateway's grant check
//! (`authz.check`: the grant, plus the registry asked who the user is) and an access-event
//! record (`audit.record`: the grant, the registry, the use counted by `authz.consume`, the
//! event stored and an audit-log leaf appended), and a batch anchor (a gateway's Merkle root
//! over many events). Each call runs on committed state with its
//! writes dropped, so every iteration does the same work.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shutong_codec::{Decode, Encode};
use shutong_node::devchain::DevChain;
use shutong_sdk::builder::{self, access};
use shutong_sdk::system_api::audit::AccessEvent;
use shutong_sdk::system_api::authz::{Decision, LegalBasis, RequestAccess, Use};
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
use shutong_sdk::system_api::governance::{Action, basis};
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_types::{Address, Keypair};
use shutong_vm::CallContext;
use shutong_vm::state::{Overlay, StateReader};
use std::sync::Arc;

const GAS: u64 = 10_000_000;

struct Story {
    _dir: tempfile::TempDir,
    chain: DevChain,
    grant: u64,
    analyst: Keypair,
    gateway: Keypair,
}

fn story() -> Story {
    let dir = tempfile::tempdir().unwrap();
    let admin = Keypair::from_seed("bench-admin");
    let mut chain = DevChain::open(dir.path(), &admin.account(), "governance").unwrap();
    let market = Keypair::from_seed("bench-market");
    let acme = Keypair::from_seed("bench-acme");
    let analyst = Keypair::from_seed("bench-analyst");
    let gateway = Keypair::from_seed("bench-gateway");
    let mut run = |key: &Keypair, call| assert!(chain.run(key, call, GAS).unwrap().status.is_success());
    let purpose =
        Action::DefinePurpose { code: "licensing".into(), legal_bases: basis::ALL, description: String::new() };
    run(&admin, builder::propose(purpose));
    run(&market, builder::register_org("market", "Market", OrgKind::Department));
    run(&admin, builder::propose(Action::ApproveOrg { id: "market".into() }));
    run(&acme, builder::register_org("acme", "Acme", OrgKind::Enterprise));
    let set = |org: &str, key: &Keypair, kind, roles| {
        builder::set_principal(org, &key.account(), kind, roles, PrincipalStatus::Active)
    };
    run(&market, set("market", &market, PrincipalKind::Person, role::DATA_PROVIDER | role::ADMIN));
    run(&market, set("market", &gateway, PrincipalKind::Gateway, role::DATA_PROVIDER));
    run(&acme, set("acme", &analyst, PrincipalKind::Person, role::DATA_CONSUMER));
    let field = |name: &str| Field {
        name: name.into(),
        data_type: "string".into(),
        classification: Classification::General,
        masking: String::new(),
        element: None,
    };
    let resource = Publish {
        code: "market/licence".into(),
        provider_org: "market".into(),
        source_system: "db".into(),
        classification: Classification::General,
        personal_data: false,
        share_type: ShareType::Unconditional,
        conditions: String::new(),
        methods: method::QUERY,
        fields: vec![field("uscc"), field("name")],
        metadata_hash: [0; 32],
    };
    run(&market, builder::publish_resource(&resource));
    let ask = RequestAccess {
        resource: "market/licence".into(),
        fields: vec!["uscc".into(), "name".into()],
        methods: method::QUERY,
        purpose: "licensing".into(),
        legal_basis: LegalBasis::Statute,
        legal_doc_hash: [0; 32],
        matter_code: String::new(),
        valid_until_ms: u64::MAX / 2,
        max_uses: u64::MAX / 2,
        justification_hash: [0; 32],
        consent: None,
    };
    let receipt = chain.run(&analyst, access::request(&ask), GAS).unwrap();
    assert!(receipt.status.is_success(), "{receipt:?}");
    // Unconditional: the request was granted at once; it is grant 1.
    Story { _dir: dir, chain, grant: 1, analyst, gateway }
}

/// What a call's outcome must show.
type Expect = fn(&shutong_vm::CallOutcome) -> bool;
/// A bench: its name, who calls, the contract, the method, the arguments, the expectation.
type Case<'a> = (&'a str, &'a Keypair, Address, &'a str, Vec<u8>, Expect);

fn bench(c: &mut Criterion) {
    let s = story();
    let base: Arc<dyn StateReader> = s.chain.storage.clone();
    let ctx = |origin: &Keypair, contract: Address| CallContext {
        origin: origin.account(),
        contract,
        height: s.chain.tip.height,
        time_ms: s.chain.tip.timestamp_ms,
    };
    let use_ = Use {
        grant: s.grant,
        account: s.analyst.account().0,
        fields: vec!["uscc".into()],
        method: method::QUERY,
        purpose: "licensing.renewal".into(),
        count: 1,
    };
    let event = AccessEvent {
        grant: s.grant,
        consumer: s.analyst.account().0,
        fields: vec!["uscc".into()],
        method: method::QUERY,
        purpose: "licensing.renewal".into(),
        business_ref_hash: [1; 32],
        subject_ref_hmac: [2; 32],
        query_hash: [3; 32],
        result_hash: [4; 32],
        record_count: 1,
        consumer_signature: None,
    };
    let anchor = shutong_sdk::system_api::audit::AnchorBatch {
        grant: s.grant,
        seq: 1,
        period_start_ms: 0,
        period_end_ms: 60_000,
        groups: vec![shutong_sdk::system_api::audit::BatchGroup {
            consumer: s.analyst.account().0,
            fields: vec!["uscc".into()],
            method: method::QUERY,
            purpose: "licensing.renewal".into(),
            count: 10_000,
        }],
        merkle_root: [5; 32],
    };
    // (name, who calls, contract, method, args, what the output must show)
    let permit: Expect = |out| Decision::decode(&out.output).is_ok_and(|d| d.permit);
    let success: Expect = |out| out.status.is_success();
    let cases: [Case<'_>; 3] = [
        ("check/permit", &s.analyst, builder::authz(), "check", use_.encode(), permit),
        ("audit_record/permit", &s.gateway, builder::audit(), "record", event.encode(), success),
        ("audit_anchor/batch", &s.gateway, builder::audit(), "anchor", anchor.encode(), success),
    ];
    // What each call stores: its state writes (keys and values, new or changed), and of them
    // the audit-log leaves.
    for (name, origin, contract, method, args, expect) in &cases {
        let overlay = Overlay::new(Arc::clone(&base));
        let out = s.chain.vm.call(ctx(origin, *contract), method, args.clone(), GAS, overlay).unwrap();
        assert!(expect(&out), "{name}: {:?}", out.status);
        let writes = out.block.writes();
        let bytes = |leaves: bool| -> usize {
            let leaf = |k: &[u8]| k.first() == Some(&shutong_types::keyspace::AUDIT_LEAF);
            writes
                .iter()
                .filter(|(k, _)| leaf(k) == leaves)
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                .sum()
        };
        eprintln!(
            "authz/{name}: writes {} keys, {} B of audit leaves, {} B of other state",
            writes.len(),
            bytes(true),
            bytes(false)
        );
    }
    let mut group = c.benchmark_group("authz");
    group.throughput(Throughput::Elements(1));
    for (name, origin, contract, method, args, expect) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let overlay = Overlay::new(Arc::clone(&base));
                let out = s.chain.vm.call(ctx(origin, contract), method, args.clone(), GAS, overlay).unwrap();
                assert!(expect(&out), "{name}: {:?}", out.status);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
