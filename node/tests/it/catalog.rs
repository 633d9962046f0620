//! The membership registry and the data catalog through the real VM and RocksDB: the
//! catalog asks the registry who may publish (a cross-contract call), enforces one
//! authoritative source per data element, and keeps versions.

use crate::common::chain::Chain;
use shutong_codec::Decode;
use shutong_sdk::builder;
use shutong_sdk::system_api::catalog::{
    Classification, ElementRef, ElementSource, Field, Publish, Resource, ResourceRef, ResourceStatus, ShareType, method,
};
use shutong_sdk::system_api::governance::Action;
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_types::{Call, Encode, ExecStatus, Keypair, Receipt};

fn aborted(receipt: &Receipt) -> &str {
    match &receipt.status {
        ExecStatus::Aborted(message) => message,
        other => panic!("expected an abort, got {other:?}"),
    }
}

fn ok(receipt: Receipt) -> Receipt {
    assert!(receipt.status.is_success(), "{receipt:?}");
    receipt
}

fn resource(code: &str, org: &str, element: &str) -> Publish {
    Publish {
        code: code.into(),
        provider_org: org.into(),
        source_system: "db".into(),
        classification: Classification::Important,
        personal_data: true,
        share_type: ShareType::Conditional,
        conditions: "licensing matters only".into(),
        methods: method::QUERY | method::VERIFY,
        fields: vec![
            Field {
                name: "uscc".into(),
                data_type: "string".into(),
                classification: Classification::General,
                masking: String::new(),
                element: Some(element.into()),
            },
            Field {
                name: "legal_rep_id".into(),
                data_type: "string".into(),
                classification: Classification::Important,
                masking: "hmac".into(),
                element: None,
            },
        ],
        metadata_hash: [4; 32],
    }
}

fn query(chain: &mut Chain, who: &Keypair, method: &str, args: Vec<u8>) -> Receipt {
    chain.run(who, Call { contract: builder::catalog(), method: method.into(), args }, 5_000_000)
}

#[test]
fn departments_publish_with_one_authoritative_source_per_element() {
    let mut chain = Chain::new();
    let market_admin = Keypair::from_seed("market-admin");
    let market_provider = Keypair::from_seed("market-provider");
    let tax_admin = Keypair::from_seed("tax-admin");
    let tax_provider = Keypair::from_seed("tax-provider");
    let enterprise_admin = Keypair::from_seed("acme-admin");
    let gas = 5_000_000;

    // Organisations and their principals.
    ok(chain.run(&market_admin, builder::register_org("market", "Market Regulation Bureau", OrgKind::Department), gas));
    ok(chain.run(&tax_admin, builder::register_org("tax", "Tax Bureau", OrgKind::Department), gas));
    ok(chain.run(&enterprise_admin, builder::register_org("acme", "Acme Ltd", OrgKind::Enterprise), gas));
    // Departments wait for the committee; it also names each element's authoritative source.
    let committee = crate::common::chain::admin();
    for id in ["market", "tax"] {
        ok(chain.run(&committee, builder::propose(Action::ApproveOrg { id: id.into() }), gas));
    }
    let assign = |org: &str| Action::AssignSource { element: "enterprise.uscc".into(), org: org.into() };
    ok(chain.run(&committee, builder::propose(assign("market")), gas));
    let person = PrincipalKind::Person;
    let active = PrincipalStatus::Active;
    let set = |org: &str, key: &Keypair, roles| builder::set_principal(org, &key.account(), person, roles, active);
    ok(chain.run(&market_admin, set("market", &market_provider, role::DATA_PROVIDER), gas));
    ok(chain.run(&tax_admin, set("tax", &tax_provider, role::DATA_PROVIDER), gas));
    ok(chain.run(&enterprise_admin, set("acme", &enterprise_admin, role::DATA_PROVIDER | role::ADMIN), gas));

    // The market bureau's provider publishes; its admin, without the role, may not.
    let licence = resource("market/licence", "market", "enterprise.uscc");
    let refused = chain.run(&market_admin, builder::publish_resource(&licence), gas);
    assert_eq!(aborted(&refused), "only an acting data provider of organisation market may do this");
    let published = ok(chain.run(&market_provider, builder::publish_resource(&licence), gas));
    assert_eq!(published.output, 1u32.encode());
    assert_eq!(published.events.last().unwrap().topic, "resource.published");

    // 一数一源: the tax bureau cannot also be the source of the same element.
    let duplicate =
        chain.run(&tax_provider, builder::publish_resource(&resource("tax/reg", "tax", "enterprise.uscc")), gas);
    assert_eq!(aborted(&duplicate), "the authoritative source of data element enterprise.uscc is market, not tax");
    // An enterprise is not a data-providing department.
    let enterprise =
        chain.run(&enterprise_admin, builder::publish_resource(&resource("acme/x", "acme", "acme.x")), gas);
    assert_eq!(aborted(&enterprise), "organisation acme is not a department and cannot provide data");

    // A second version deprecates the first; anyone reads both and the element's source.
    ok(chain.run(&market_provider, builder::publish_resource(&licence), gas));
    let reader = Keypair::from_seed("reader");
    let v1 =
        ok(query(&mut chain, &reader, "get", ResourceRef { code: "market/licence".into(), version: Some(1) }.encode()));
    assert_eq!(Resource::decode(&v1.output).unwrap().status, ResourceStatus::Deprecated);
    let latest =
        ok(query(&mut chain, &reader, "get", ResourceRef { code: "market/licence".into(), version: None }.encode()));
    let latest = Resource::decode(&latest.output).unwrap();
    assert_eq!(
        (latest.version, latest.status, latest.publisher),
        (2, ResourceStatus::Published, market_provider.account().0)
    );
    let source = ok(query(&mut chain, &reader, "element", ElementRef { element: "enterprise.uscc".into() }.encode()));
    assert_eq!(ElementSource::decode(&source.output).unwrap().provider_org, "market");

    // A provider whose key was rotated acts only through the new key.
    let new_key = Keypair::from_seed("market-provider-2");
    ok(chain.run(&market_provider, builder::rotate_key(&new_key.account()), gas));
    let old = chain.run(&market_provider, builder::withdraw_resource("market/licence"), gas);
    assert_eq!(aborted(&old), "only an acting data provider of organisation market may do this");
    ok(chain.run(&new_key, builder::withdraw_resource("market/licence"), gas));

    // Withdrawal released the element, but the source stays the committee's choice: the tax
    // bureau provides it only once the committee moves it there.
    let tax_reg = resource("tax/reg", "tax", "enterprise.uscc");
    let before = chain.run(&tax_provider, builder::publish_resource(&tax_reg), gas);
    assert_eq!(aborted(&before), "the authoritative source of data element enterprise.uscc is market, not tax");
    let moved = ok(chain.run(&committee, builder::propose(assign("tax")), gas));
    assert!(moved.events.iter().any(|e| e.topic == "source.reassigned"), "{:?}", moved.events);
    ok(chain.run(&tax_provider, builder::publish_resource(&tax_reg), gas));
}

/// A committee of three departments deciding by two: an unknown key's department
/// registration stays pending (its principals cannot act, its admin cannot activate it) until
/// two departments approve it; the first department to publish a data element is not its
/// source, the committee's assignment is, so a squatter cannot claim it.
#[test]
fn a_department_waits_for_the_committee_and_a_squatter_cannot_claim_an_element() {
    use shutong_node::devchain::DevChain;
    use shutong_sdk::system_api::registry::{Org, OrgStatus};
    let seats: Vec<Keypair> = (0..3).map(|i| Keypair::from_seed(&format!("committee-{i}"))).collect();
    let accounts: Vec<_> = seats.iter().map(Keypair::account).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut chain = DevChain::open_with(dir.path(), &accounts, 2, "governance").unwrap();
    let gas = 5_000_000;
    let mut run = |key: &Keypair, call| chain.run(key, call, gas).unwrap();
    let reader = Keypair::from_seed("reader");
    let status = |run: &mut dyn FnMut(&Keypair, Call) -> Receipt, id: &str| {
        let got = ok(run(
            &reader,
            Call {
                contract: builder::registry(),
                method: "get".into(),
                args: shutong_sdk::system_api::registry::GetOrg { id: id.into() }.encode(),
            },
        ));
        Org::decode(&got.output).unwrap().status
    };

    // A fresh key registers a department: it is pending, not active.
    let squatter = Keypair::from_seed("squatter");
    let squatter_provider = Keypair::from_seed("squatter-provider");
    let registered = ok(run(&squatter, builder::register_org("squat", "Squat Bureau", OrgKind::Department)));
    assert!(registered.events.iter().any(|e| e.topic == "org.pending"), "{:?}", registered.events);
    assert_eq!(status(&mut run, "squat"), OrgStatus::Pending);
    let activate = builder::update_org("squat", None, Some(OrgStatus::Active));
    assert_eq!(aborted(&run(&squatter, activate)), "organisation squat is pending the committee's approval");
    let set = |org: &str, key: &Keypair| {
        builder::set_principal(org, &key.account(), PrincipalKind::Person, role::DATA_PROVIDER, PrincipalStatus::Active)
    };
    ok(run(&squatter, set("squat", &squatter_provider)));
    let licence = resource("squat/licence", "squat", "enterprise.uscc");
    let pending = run(&squatter_provider, builder::publish_resource(&licence));
    assert_eq!(aborted(&pending), "only an acting data provider of organisation squat may do this");

    // One department's proposal alone does not approve it; the second's vote does.
    let proposed = ok(run(&seats[0], builder::propose(Action::ApproveOrg { id: "squat".into() })));
    assert_eq!(status(&mut run, "squat"), OrgStatus::Pending);
    let approved = ok(run(&seats[1], builder::vote(u64::decode(&proposed.output).unwrap())));
    assert!(approved.events.iter().any(|e| e.topic == "org.approved"), "{:?}", approved.events);
    assert_eq!(status(&mut run, "squat"), OrgStatus::Active);

    // Active now, it still cannot claim an element nobody assigned it: publishing first
    // makes no one the source.
    let claimed = run(&squatter_provider, builder::publish_resource(&licence));
    assert_eq!(
        aborted(&claimed),
        "data element enterprise.uscc has no authoritative source: the governance committee assigns one"
    );
    // The committee assigns it to the market bureau (a genesis department); the squatter is
    // refused, naming the source.
    let assign = Action::AssignSource { element: "enterprise.uscc".into(), org: "committee-1".into() };
    let proposed = ok(run(&seats[2], builder::propose(assign)));
    ok(run(&seats[0], builder::vote(u64::decode(&proposed.output).unwrap())));
    let claimed = run(&squatter_provider, builder::publish_resource(&licence));
    assert_eq!(aborted(&claimed), "the authoritative source of data element enterprise.uscc is committee-1, not squat");
    // Only the governance contract reaches the catalog's assignment door.
    let sneaky = Call {
        contract: builder::catalog(),
        method: "assign_source_by_governance".into(),
        args: shutong_sdk::system_api::catalog::AssignSource { element: "enterprise.uscc".into(), org: "squat".into() }
            .encode(),
    };
    assert_eq!(aborted(&run(&squatter, sneaky)), "only the governance contract may do this");
}

/// A governance committee of three deciding by two votes: direct decisions are refused,
/// code is approved and an organisation suspended only once two admins voted, and a
/// suspended department's providers cannot publish.
#[test]
fn the_committee_decides_by_threshold() {
    use shutong_node::devchain::DevChain;
    use shutong_sdk::system_api::governance::Action;
    let admins: Vec<Keypair> = (0..3).map(|i| Keypair::from_seed(&format!("committee-{i}"))).collect();
    let accounts: Vec<_> = admins.iter().map(Keypair::account).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut chain = DevChain::open_with(dir.path(), &accounts, 2, "governance").unwrap();
    let gas = 5_000_000;
    let mut run = |key: &Keypair, call| chain.run(key, call, gas).unwrap();

    let code = shutong_vm::Vm::code_hash(shutong_types::Suite::Ed25519Blake3, b"some code");
    let direct = run(&admins[0], builder::approve_code(&code));
    assert_eq!(aborted(&direct), "the committee needs the votes of 2 organisations: propose and vote instead");
    let proposed = ok(run(&admins[0], builder::propose(Action::ApproveCode { code_hash: code.0 })));
    let id = u64::decode(&proposed.output).unwrap();
    let outsider = run(&Keypair::from_seed("outsider"), builder::vote(id));
    assert_eq!(aborted(&outsider), "only a member of the governance committee may vote");
    let carried = ok(run(&admins[2], builder::vote(id)));
    assert!(carried.events.iter().any(|e| e.topic == "proposal.executed"), "{:?}", carried.events);
    assert!(carried.events.iter().any(|e| e.topic == "code.approved"));

    // Suspending an organisation stops its providers.
    let bureau = Keypair::from_seed("bureau");
    let provider = Keypair::from_seed("bureau-provider");
    ok(run(&bureau, builder::register_org("bureau", "Bureau", OrgKind::Department)));
    let approve = ok(run(&admins[2], builder::propose(Action::ApproveOrg { id: "bureau".into() })));
    ok(run(&admins[1], builder::vote(u64::decode(&approve.output).unwrap())));
    let set = builder::set_principal(
        "bureau",
        &provider.account(),
        PrincipalKind::Person,
        role::DATA_PROVIDER,
        PrincipalStatus::Active,
    );
    ok(run(&bureau, set));
    let proposal = ok(run(&admins[1], builder::propose(Action::SuspendOrg { id: "bureau".into() })));
    let id = u64::decode(&proposal.output).unwrap();
    ok(run(&admins[0], builder::vote(id)));
    let refused = run(&provider, builder::publish_resource(&resource("bureau/x", "bureau", "bureau.x")));
    assert_eq!(aborted(&refused), "only an acting data provider of organisation bureau may do this");
    // Nobody but governance may use the registry's governance door.
    let sneaky = Call {
        contract: builder::registry(),
        method: "set_status_by_governance".into(),
        args: shutong_sdk::system_api::registry::GovernanceOrgStatus {
            id: "bureau".into(),
            status: shutong_sdk::system_api::registry::OrgStatus::Active,
        }
        .encode(),
    };
    assert_eq!(aborted(&run(&bureau, sneaky)), "only the governance contract may do this");

    // The committee closes self-registration and adds organisations itself.
    let close = Action::SetParam { name: "registration".into(), value: "governance".into() };
    let id = u64::decode(&ok(run(&admins[0], builder::propose(close))).output).unwrap();
    ok(run(&admins[2], builder::vote(id)));
    let self_registered =
        run(&Keypair::from_seed("newcomer"), builder::register_org("newcomer", "New Co", OrgKind::Enterprise));
    assert_eq!(aborted(&self_registered), "organisations are added by the governance committee on this chain");
    let newcomer = Keypair::from_seed("newcomer");
    let add = Action::AddOrg {
        id: "newcomer".into(),
        name: "New Co".into(),
        kind: OrgKind::Enterprise,
        admin: newcomer.account().0,
    };
    let id = u64::decode(&ok(run(&admins[1], builder::propose(add))).output).unwrap();
    let added = ok(run(&admins[0], builder::vote(id)));
    assert!(added.events.iter().any(|e| e.topic == "org.registered"), "{:?}", added.events);
    // The added organisation's admin administers it.
    let set = builder::set_principal(
        "newcomer",
        &newcomer.account(),
        PrincipalKind::Person,
        role::DATA_CONSUMER,
        PrincipalStatus::Active,
    );
    ok(run(&newcomer, set));

    // A parameter: the committee opens uploads; unapproved code then uploads.
    let code = b"\0asm\x01\0\0\0".to_vec();
    let uploader = Keypair::from_seed("uploader");
    let refused = run(&uploader, builder::upload_code(&code));
    assert!(aborted(&refused).contains("is not approved by governance"));
    let open = Action::SetParam { name: "upload_policy".into(), value: "open".into() };
    let id = u64::decode(&ok(run(&admins[0], builder::propose(open))).output).unwrap();
    ok(run(&admins[1], builder::vote(id)));
    ok(run(&uploader, builder::upload_code(&code)));
}
