//! The authorisation story, told against any [`Runner`]: a one-machine chain
//! (`node/tests/it/authz.rs`) or four validator processes (`cli/tests/it/cluster.rs`). A
//! department publishes a resource of important data; an enterprise asks for three fields for
//! a purpose; the provider's CDO and security officer approve two; the grant permits uses in
//! its scope and denies the rest (a purpose outside it is a violation candidate); a
//! delegation wider than its grant is refused; revocation ends the grant and its delegation.
//! The provider's gateway records each use with the audit contract: three uses consume the
//! grant, a fourth is denied and recorded, a use for a purpose outside the grant is denied
//! and opens a violation, a use after revocation is denied, and the grant's history returns
//! every event in order.

use shutong_codec::Decode;
use shutong_sdk::builder::{self, access, audit_trail};
use shutong_sdk::system_api::audit::{AccessEvent, EventRecord, Violation};
use shutong_sdk::system_api::authz::{
    AccessRequest, Decision, Grant, GrantStatus, LegalBasis, RequestAccess, RequestState, Terms, Use, duty,
};
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
use shutong_sdk::system_api::governance::{Action, basis};
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_types::{Call, ExecStatus, Keypair, Receipt};

/// Something that runs a signed call in a block and returns its receipt.
pub trait Runner {
    fn run(&mut self, key: &Keypair, call: Call, gas: u64) -> Receipt;
    /// The consensus time of the latest block.
    fn now_ms(&mut self) -> u64;
    /// The committee's first seat.
    fn admin(&self) -> Keypair;
    /// The seats that vote after the first one proposes, until the threshold (none for a
    /// committee of one).
    fn voters(&self) -> Vec<Keypair> {
        Vec::new()
    }
    /// The chain's crypto suite: the story's people have keys of it.
    fn suite(&self) -> shutong_types::Suite {
        shutong_types::Suite::Ed25519Blake3
    }
}

/// Carries `action` as the committee: the first seat proposes, the others vote.
pub fn decide(chain: &mut dyn Runner, action: Action) {
    let proposed = ok(chain.run(&chain.admin(), builder::propose(action), GAS));
    let id = u64::decode(&proposed.output).unwrap();
    for voter in chain.voters() {
        ok(chain.run(&voter, builder::vote(id), GAS));
    }
}

pub const GAS: u64 = 10_000_000;
pub const DAY: u64 = 24 * 3600 * 1000;

pub fn ok(receipt: Receipt) -> Receipt {
    assert!(receipt.status.is_success(), "{receipt:?}");
    receipt
}

pub fn aborted(receipt: &Receipt) -> &str {
    match &receipt.status {
        ExecStatus::Aborted(message) => message,
        other => panic!("expected an abort, got {other:?}"),
    }
}

fn field(name: &str, classification: Classification) -> Field {
    Field { name: name.into(), data_type: "string".into(), classification, masking: String::new(), element: None }
}

pub struct People {
    pub market_admin: Keypair,
    pub provider: Keypair,
    pub cdo: Keypair,
    pub security: Keypair,
    pub acme_admin: Keypair,
    pub analyst: Keypair,
    pub partner_admin: Keypair,
    pub gateway: Keypair,
}

/// A request for `fields` of `resource` by `methods` for `purpose`, valid 90 days from `now`.
pub fn ask(
    resource: &str,
    fields: &[&str],
    methods: u8,
    purpose: &str,
    basis: LegalBasis,
    now: u64,
    max_uses: u64,
) -> RequestAccess {
    RequestAccess {
        resource: resource.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        methods,
        purpose: purpose.into(),
        legal_basis: basis,
        legal_doc_hash: [0; 32],
        matter_code: String::new(),
        valid_until_ms: now + 90 * DAY,
        max_uses,
        justification_hash: [0; 32],
        consent: None,
    }
}

/// Terms granting `fields` by `methods` for `purpose` for 30 days from `now`.
pub fn grant_terms(fields: &[&str], methods: u8, purpose: &str, now: u64, max_uses: u64, duties: u32) -> Terms {
    Terms {
        fields: fields.iter().map(|f| f.to_string()).collect(),
        methods,
        purposes: vec![purpose.into()],
        not_before_ms: now,
        not_after_ms: now + 30 * DAY,
        max_uses,
        rate_per_day: 0,
        case_ref: None,
        duties,
        delegable: false,
        policy_hash: [0; 32],
    }
}

/// The organisations, their principals and the published resource of the story.
pub fn setup(chain: &mut dyn Runner) -> People {
    let suite = chain.suite();
    let p = People {
        market_admin: Keypair::from_seed_in(suite, "market-admin"),
        provider: Keypair::from_seed_in(suite, "market-provider"),
        cdo: Keypair::from_seed_in(suite, "market-cdo"),
        security: Keypair::from_seed_in(suite, "market-security"),
        acme_admin: Keypair::from_seed_in(suite, "acme-admin"),
        analyst: Keypair::from_seed_in(suite, "acme-analyst"),
        partner_admin: Keypair::from_seed_in(suite, "partner-admin"),
        gateway: Keypair::from_seed_in(suite, "market-gateway"),
    };
    // The committee (of one) defines the purpose hierarchy's root for the story.
    let licensing = Action::DefinePurpose {
        code: "licensing".into(),
        legal_bases: basis::ALL,
        description: "business licensing and its renewal".into(),
    };
    decide(chain, licensing);
    ok(chain.run(&p.market_admin, builder::register_org("market", "Market Regulation", OrgKind::Department), GAS));
    // A department is pending until the committee approves it.
    decide(chain, Action::ApproveOrg { id: "market".into() });
    ok(chain.run(&p.acme_admin, builder::register_org("acme", "Acme Ltd", OrgKind::Enterprise), GAS));
    ok(chain.run(&p.partner_admin, builder::register_org("partner", "Partner Ltd", OrgKind::Enterprise), GAS));
    let set = |org: &str, key: &Keypair, roles| {
        builder::set_principal(org, &key.account(), PrincipalKind::Person, roles, PrincipalStatus::Active)
    };
    ok(chain.run(&p.market_admin, set("market", &p.provider, role::DATA_PROVIDER), GAS));
    ok(chain.run(&p.market_admin, set("market", &p.cdo, role::CDO), GAS));
    ok(chain.run(&p.market_admin, set("market", &p.security, role::SECURITY_OFFICER), GAS));
    ok(chain.run(&p.acme_admin, set("acme", &p.analyst, role::DATA_CONSUMER), GAS));
    let gateway = builder::set_principal(
        "market",
        &p.gateway.account(),
        PrincipalKind::Gateway,
        role::DATA_PROVIDER,
        PrincipalStatus::Active,
    );
    ok(chain.run(&p.market_admin, gateway, GAS));
    ok(chain.run(&p.partner_admin, set("partner", &p.partner_admin, role::DATA_CONSUMER | role::ADMIN), GAS));
    let resource = Publish {
        code: "market/licence".into(),
        provider_org: "market".into(),
        source_system: "licence-db".into(),
        classification: Classification::Important,
        personal_data: true,
        share_type: ShareType::Conditional,
        conditions: "licensing matters".into(),
        methods: method::QUERY | method::VERIFY,
        fields: vec![
            field("uscc", Classification::General),
            field("name", Classification::General),
            field("legal_rep_id", Classification::Important),
        ],
        metadata_hash: [1; 32],
    };
    ok(chain.run(&p.provider, builder::publish_resource(&resource), GAS));
    p
}

pub fn read<T: Decode>(chain: &mut dyn Runner, who: &Keypair, method: &str, args: Vec<u8>) -> T {
    let receipt = ok(chain.run(who, Call { contract: builder::authz(), method: method.into(), args }, GAS));
    T::decode(&receipt.output).unwrap()
}

fn use_of(grant: u64, who: &Keypair, fields: &[&str], purpose: &str) -> Use {
    Use {
        grant,
        account: who.account().0,
        fields: fields.iter().map(|f| f.to_string()).collect(),
        method: method::QUERY,
        purpose: purpose.into(),
        count: 1,
    }
}

/// Tells the whole story on `chain`, asserting each step.
pub fn authorisation_story(chain: &mut dyn Runner) {
    let p = setup(chain);
    let now = chain.now_ms();

    // The enterprise asks for three fields; a stranger without the consumer role may not.
    let ask = RequestAccess {
        resource: "market/licence".into(),
        fields: vec!["uscc".into(), "name".into(), "legal_rep_id".into()],
        methods: method::QUERY,
        purpose: "licensing.renewal".into(),
        legal_basis: LegalBasis::DutyMandate,
        legal_doc_hash: [2; 32],
        matter_code: "310106-licence-renewal".into(),
        valid_until_ms: now + 90 * DAY,
        max_uses: 3,
        justification_hash: [3; 32],
        consent: None,
    };
    let refused = chain.run(&p.acme_admin, access::request(&ask), GAS);
    assert_eq!(aborted(&refused), "only an acting data_consumer of an organisation may request access");
    let submitted = ok(chain.run(&p.analyst, access::request(&ask), GAS));
    let request_id = u64::decode(&submitted.output).unwrap();

    // Important data: the CDO and the security officer both approve the same two fields.
    let terms = Terms {
        fields: vec!["uscc".into(), "name".into()],
        methods: method::QUERY,
        purposes: vec!["licensing.renewal".into()],
        not_before_ms: now,
        not_after_ms: now + 30 * DAY,
        max_uses: 3,
        rate_per_day: 0,
        case_ref: None,
        duties: duty::LOG_USAGE | duty::NO_ONWARD_TRANSFER,
        delegable: true,
        policy_hash: [4; 32],
    };
    let by_provider = chain.run(&p.provider, access::approve(request_id, &terms), GAS);
    assert!(aborted(&by_provider).starts_with("only an acting cdo or security_officer of organisation market"));
    let first = ok(chain.run(&p.cdo, access::approve(request_id, &terms), GAS));
    assert_eq!(Option::<u64>::decode(&first.output).unwrap(), None, "one approval of two");
    let second = ok(chain.run(&p.security, access::approve(request_id, &terms), GAS));
    let grant_id = Option::<u64>::decode(&second.output).unwrap().unwrap();
    let request: AccessRequest = read(chain, &p.analyst, "get_request", access::id_args(request_id));
    assert_eq!((request.state, request.grant), (RequestState::PartiallyApproved, Some(grant_id)));

    // The gateway's check: in scope is permitted, a sub-purpose too; out of scope is denied.
    let yes: Decision = read(
        chain,
        &p.analyst,
        "check",
        access::check_args(&use_of(grant_id, &p.analyst, &["uscc"], "licensing.renewal.online")),
    );
    assert!(yes.permit, "{yes:?}");
    let field: Decision = read(
        chain,
        &p.analyst,
        "check",
        access::check_args(&use_of(grant_id, &p.analyst, &["legal_rep_id"], "licensing.renewal")),
    );
    assert!(!field.permit && field.violation && field.reason == "field legal_rep_id is not granted");
    let purpose: Decision =
        read(chain, &p.analyst, "check", access::check_args(&use_of(grant_id, &p.analyst, &["uscc"], "marketing")));
    assert!(!purpose.permit && purpose.violation);
    let other_org: Decision = read(
        chain,
        &p.analyst,
        "check",
        access::check_args(&use_of(grant_id, &p.partner_admin, &["uscc"], "licensing.renewal")),
    );
    assert!(!other_org.permit);

    // Only the audit contract counts uses.
    let consume = Call {
        contract: builder::authz(),
        method: "consume".into(),
        args: access::check_args(&use_of(grant_id, &p.analyst, &["uscc"], "licensing.renewal")),
    };
    assert_eq!(aborted(&chain.run(&p.analyst, consume, GAS)), "only the audit contract records uses");

    // Delegation: wider than the grant is refused; a subset is made.
    let wider = Terms { fields: vec!["uscc".into(), "legal_rep_id".into()], ..terms.clone() };
    let refused = chain.run(&p.analyst, access::delegate(grant_id, "partner", &wider), GAS);
    assert_eq!(aborted(&refused), format!("a delegation must be a subset of grant {grant_id}"));
    let narrower = Terms { fields: vec!["uscc".into()], max_uses: 1, ..terms.clone() };
    let delegated = ok(chain.run(&p.analyst, access::delegate(grant_id, "partner", &narrower), GAS));
    let child = u64::decode(&delegated.output).unwrap();
    let partner_use: Decision = read(
        chain,
        &p.partner_admin,
        "check",
        access::check_args(&use_of(child, &p.partner_admin, &["uscc"], "licensing.renewal")),
    );
    assert!(partner_use.permit, "{partner_use:?}");

    // The gateway records uses: three are permitted and consume the grant.
    let event = |fields: &[&str], purpose: &str| AccessEvent {
        grant: grant_id,
        consumer: p.analyst.account().0,
        fields: fields.iter().map(|f| f.to_string()).collect(),
        method: method::QUERY,
        purpose: purpose.into(),
        business_ref_hash: [5; 32],
        subject_ref_hmac: [6; 32],
        query_hash: [7; 32],
        result_hash: [8; 32],
        record_count: 1,
        consumer_signature: None,
    };
    let not_gateway = chain.run(&p.provider, audit_trail::record(&event(&["uscc"], "licensing.renewal")), GAS);
    assert_eq!(aborted(&not_gateway), "only an acting gateway of organisation market may record its accesses");
    let mut records = Vec::new();
    for _ in 0..3 {
        let r = ok(chain.run(&p.gateway, audit_trail::record(&event(&["uscc", "name"], "licensing.renewal")), GAS));
        records.push(EventRecord::decode(&r.output).unwrap());
    }
    assert!(records.iter().all(|r| r.permit && r.consumer_org == "acme" && r.resource == "market/licence"));
    // A fourth use is beyond max uses: denied, and recorded.
    let fourth = ok(chain.run(&p.gateway, audit_trail::record(&event(&["uscc"], "licensing.renewal")), GAS));
    let fourth = EventRecord::decode(&fourth.output).unwrap();
    assert!(!fourth.permit && fourth.violation.is_none());
    assert_eq!(fourth.reason, format!("grant {grant_id} is exhausted (3 of 3 uses)"));
    // A use for a purpose outside the grant is denied and opens a violation.
    let outside = ok(chain.run(&p.gateway, audit_trail::record(&event(&["uscc"], "marketing")), GAS));
    assert_eq!(
        outside.events.iter().map(|e| e.topic.as_str()).collect::<Vec<_>>(),
        ["violation.opened", "access.denied"]
    );
    let outside = EventRecord::decode(&outside.output).unwrap();
    let violation_id = outside.violation.unwrap();
    let audit_call = |method: &str, args: Vec<u8>| Call { contract: builder::audit(), method: method.into(), args };
    let violation = ok(chain.run(&p.analyst, audit_call("get_violation", audit_trail::id_args(violation_id)), GAS));
    let violation = Violation::decode(&violation.output).unwrap();
    assert_eq!((violation.grant, violation.consumer_org.as_str()), (grant_id, "acme"));
    assert!(violation.reason.contains("outside the granted purposes"));

    // Revocation by the provider ends the grant and its delegation at once.
    let no_reason = chain.run(&p.cdo, access::revoke(grant_id, ""), GAS);
    assert_eq!(aborted(&no_reason), "a reason of 1 to 256 bytes is required");
    let revoked = ok(chain.run(&p.cdo, access::revoke(grant_id, "licence bureau audit"), GAS));
    assert!(revoked.events.iter().filter(|e| e.topic == "grant.revoked").count() == 2, "{:?}", revoked.events);
    let after: Decision = read(
        chain,
        &p.analyst,
        "check",
        access::check_args(&use_of(grant_id, &p.analyst, &["uscc"], "licensing.renewal")),
    );
    assert_eq!(after.reason, format!("grant {grant_id} is revoked"));
    let grant: Grant = read(chain, &p.analyst, "get_grant", access::id_args(child));
    assert_eq!((grant.status, grant.reason.as_str()), (GrantStatus::Revoked, "licence bureau audit"));
    let late = ok(chain.run(&p.gateway, audit_trail::record(&event(&["uscc"], "licensing.renewal")), GAS));
    let late = EventRecord::decode(&late.output).unwrap();
    assert_eq!((late.permit, late.reason.clone()), (false, format!("grant {grant_id} is revoked")));

    // The auditor reads the grant's full history, page by page, in order, each event with
    // its audit-log leaf.
    let auditor = Keypair::from_seed_in(chain.suite(), "auditor");
    let mut history: Vec<EventRecord> = Vec::new();
    let mut after = None;
    loop {
        let page = ok(chain.run(&auditor, audit_call("history", audit_trail::history_args(grant_id, after, 2)), GAS));
        let page = Vec::<EventRecord>::decode(&page.output).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| r.id);
        history.extend(page);
    }
    let outcome: Vec<bool> = history.iter().map(|r| r.permit).collect();
    assert_eq!(outcome, [true, true, true, false, false, false]);
    let leaves: Vec<u64> = history.iter().map(|r| r.leaf).collect();
    assert!(leaves.windows(2).all(|w| w[0] < w[1]), "{leaves:?}");
    let grant: Grant = read(chain, &p.analyst, "get_grant", access::id_args(grant_id));
    assert_eq!(grant.uses, 3);
}
