//! The authorisation story (`common/story.rs`) on a one-machine chain: the real VM, the
//! five system contracts calling each other, RocksDB.

#![allow(clippy::unwrap_used)]

mod common;

use common::chain::Chain;
use common::story::{self, GAS, aborted, ok, read, setup};
use shutong_codec::Decode;
use shutong_sdk::builder::{self, access, audit_trail};
use shutong_sdk::system_api::audit::{AccessEvent, AnchorBatch, Attest, AttestationRecord, EventRecord};
use shutong_sdk::system_api::authz::{Decision, LegalBasis, RecordConsent, RequestAccess, Use, duty};
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
use shutong_sdk::system_api::governance::Action;
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_types::{Keypair, Receipt};

#[test]
fn the_authorisation_story_holds_on_one_machine() {
    common::story::authorisation_story(&mut Chain::new());
}

/// Consent as the legal basis: its withdrawal suspends the grant resting on it. A
/// verification attestation (a yes/no answer instead of data) counts as a `verify` use.
#[test]
fn consent_withdrawal_suspends_and_attestations_are_recorded() {
    let mut chain = Chain::new();
    let p = setup(&mut chain);
    let now = chain.tip.timestamp_ms;
    let consent = RecordConsent {
        id: "consent-2026-0001".into(),
        subject_ref_hmac: [9; 32],
        resource: "market/licence".into(),
        purpose: "licensing".into(),
        evidence_hash: [8; 32],
    };
    ok(chain.run(&p.analyst, access::record_consent(&consent), GAS));
    let ask = RequestAccess {
        consent: Some("consent-2026-0001".into()),
        ..story::ask(
            "market/licence",
            &["uscc"],
            method::QUERY | method::VERIFY,
            "licensing.renewal",
            LegalBasis::Consent,
            now,
            10,
        )
    };
    let request = u64::decode(&ok(chain.run(&p.analyst, access::request(&ask), GAS)).output).unwrap();
    let terms =
        story::grant_terms(&["uscc"], method::QUERY | method::VERIFY, "licensing.renewal", now, 10, duty::LOG_USAGE);
    ok(chain.run(&p.cdo, access::approve(request, &terms), GAS));
    let second = ok(chain.run(&p.security, access::approve(request, &terms), GAS));
    let grant = Option::<u64>::decode(&second.output).unwrap().unwrap();

    // The gateway answers "yes, this licence is valid" instead of sending the record.
    let attest = Attest {
        grant,
        consumer: p.analyst.account().0,
        question_hash: [7; 32],
        subject_ref_hmac: [9; 32],
        answer: true,
    };
    let not_gateway = chain.run(&p.provider, audit_trail::attest(&attest), GAS);
    assert_eq!(aborted(&not_gateway), "only an acting gateway of organisation market may record its accesses");
    let given = ok(chain.run(&p.gateway, audit_trail::attest(&attest), GAS));
    let given = AttestationRecord::decode(&given.output).unwrap();
    assert!(given.permit && given.attest.answer, "{given:?}");

    // The data subject withdraws consent: the grant is suspended, uses and attestations denied.
    ok(chain.run(&p.analyst, access::withdraw_consent("consent-2026-0001"), GAS));
    let check = Use {
        grant,
        account: p.analyst.account().0,
        fields: vec!["uscc".into()],
        method: method::QUERY,
        purpose: "licensing.renewal".into(),
        count: 1,
    };
    let decision: Decision = read(&mut chain, &p.analyst, "check", access::check_args(&check));
    assert_eq!(decision.reason, format!("grant {grant} is suspended"));
    let refused = ok(chain.run(&p.gateway, audit_trail::attest(&attest), GAS));
    let refused = AttestationRecord::decode(&refused.output).unwrap();
    assert!(!refused.permit && refused.reason.contains("suspended"));
    let again = chain.run(&p.analyst, access::request(&ask), GAS);
    assert_eq!(aborted(&again), "consent consent-2026-0001 was withdrawn");
}

/// Both gateways sign: under a grant with the `COSIGNED_EVENTS` duty, an event needs the
/// consumer gateway's signature too; a forged one, or one by a key that is not the grantee's
/// gateway, is refused.
#[test]
fn cosigned_events_need_the_consumer_gateways_signature() {
    let mut chain = Chain::new();
    let p = setup(&mut chain);
    let now = chain.tip.timestamp_ms;
    let acme_gateway = Keypair::from_seed("acme-gateway");
    let set = builder::set_principal(
        "acme",
        &acme_gateway.account(),
        PrincipalKind::Gateway,
        role::DATA_CONSUMER,
        PrincipalStatus::Active,
    );
    ok(chain.run(&p.acme_admin, set, GAS));
    let ask = story::ask("market/licence", &["uscc"], method::QUERY, "licensing", LegalBasis::Statute, now, 10);
    let request = u64::decode(&ok(chain.run(&p.analyst, access::request(&ask), GAS)).output).unwrap();
    let terms =
        story::grant_terms(&["uscc"], method::QUERY, "licensing", now, 10, duty::LOG_USAGE | duty::COSIGNED_EVENTS);
    ok(chain.run(&p.cdo, access::approve(request, &terms), GAS));
    let grant = Option::<u64>::decode(&ok(chain.run(&p.security, access::approve(request, &terms), GAS)).output)
        .unwrap()
        .unwrap();
    let mut event = AccessEvent {
        grant,
        consumer: p.analyst.account().0,
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
    let unsigned = chain.run(&p.gateway, audit_trail::record(&event), GAS);
    assert_eq!(aborted(&unsigned), format!("grant {grant} requires the consumer gateway's signature on each event"));

    let mut forged = audit_trail::cosign(&event, &acme_gateway);
    forged.signature[0] ^= 1;
    event.consumer_signature = Some(forged);
    assert_eq!(
        aborted(&chain.run(&p.gateway, audit_trail::record(&event), GAS)),
        "the consumer gateway's signature does not verify"
    );

    let stranger = Keypair::from_seed("not-a-gateway");
    event.consumer_signature = Some(audit_trail::cosign(&event, &stranger));
    assert_eq!(
        aborted(&chain.run(&p.gateway, audit_trail::record(&event), GAS)),
        "the signing key is not an acting gateway of grantee acme"
    );

    event.consumer_signature = Some(audit_trail::cosign(&event, &acme_gateway));
    let recorded = EventRecord::decode(&ok(chain.run(&p.gateway, audit_trail::record(&event), GAS)).output).unwrap();
    assert!(recorded.permit && recorded.event.consumer_signature.is_some());
}

/// A department sets its own approval policy: for its general data, two distinct approvers,
/// a data provider and the CDO (instead of the built-in one of either).
#[test]
fn an_organisations_own_policy_sets_the_approval_route() {
    let mut chain = Chain::new();
    let p = setup(&mut chain);
    let now = chain.tip.timestamp_ms;
    let hours = Publish {
        code: "market/opening-hours".into(),
        provider_org: "market".into(),
        source_system: "db".into(),
        classification: Classification::General,
        personal_data: false,
        share_type: ShareType::Conditional,
        conditions: "any public service".into(),
        methods: method::QUERY,
        fields: vec![Field {
            name: "hours".into(),
            data_type: "string".into(),
            classification: Classification::General,
            masking: String::new(),
            element: None,
        }],
        metadata_hash: [0; 32],
    };
    ok(chain.run(&p.provider, builder::publish_resource(&hours), GAS));
    let policy = builder::set_policy("market", Classification::General, &[role::DATA_PROVIDER, role::CDO]);
    assert_eq!(
        aborted(&chain.run(&p.provider, policy.clone(), GAS)),
        "only an admin of organisation market may set its policies"
    );
    ok(chain.run(&p.market_admin, policy, GAS));

    let ask = story::ask("market/opening-hours", &["hours"], method::QUERY, "licensing", LegalBasis::Statute, now, 5);
    let request = u64::decode(&ok(chain.run(&p.analyst, access::request(&ask), GAS)).output).unwrap();
    let terms = story::grant_terms(&["hours"], method::QUERY, "licensing", now, 5, duty::LOG_USAGE);
    // Under the built-in route one data provider would have been enough; the policy wants the CDO too.
    let first = ok(chain.run(&p.provider, access::approve(request, &terms), GAS));
    assert_eq!(Option::<u64>::decode(&first.output).unwrap(), None);
    let second = ok(chain.run(&p.cdo, access::approve(request, &terms), GAS));
    assert!(Option::<u64>::decode(&second.output).unwrap().is_some());
}

/// Every state change of the system contracts emits an event, so gateways and auditors can
/// react at once: each operation below is checked for its topic.
#[test]
fn every_state_change_emits_its_event() {
    fn emits(receipt: Receipt, topic: &str) -> Receipt {
        let receipt = ok(receipt);
        assert!(receipt.events.iter().any(|e| e.topic == topic), "no {topic} in {:?}", receipt.events);
        receipt
    }

    let mut chain = Chain::new();
    let p = setup(&mut chain);
    let now = chain.tip.timestamp_ms;
    let admin = common::chain::admin();
    // Registry.
    let other = Keypair::from_seed("other-admin");
    emits(chain.run(&other, builder::register_org("other", "Other", OrgKind::Department), GAS), "org.registered");
    let approve = shutong_sdk::system_api::governance::Action::ApproveOrg { id: "other".into() };
    emits(chain.run(&admin, builder::propose(approve), GAS), "org.approved");
    let set = builder::set_principal(
        "other",
        &other.account(),
        PrincipalKind::Person,
        role::DATA_PROVIDER,
        PrincipalStatus::Active,
    );
    emits(chain.run(&other, set, GAS), "principal.set");
    emits(chain.run(&p.market_admin, builder::update_org("market", Some("Market Bureau"), None), GAS), "org.updated");
    emits(
        chain.run(&p.market_admin, builder::set_policy("market", Classification::General, &[role::CDO]), GAS),
        "policy.set",
    );
    let newer = Keypair::from_seed("analyst-2");
    emits(chain.run(&p.analyst, builder::rotate_key(&newer.account()), GAS), "principal.rotated");
    let analyst = newer;
    // Catalog.
    let mut extra =
        common::story::ask("market/licence", &["uscc"], method::QUERY, "licensing", LegalBasis::Statute, now, 5);
    let hours = Publish {
        code: "other/hours".into(),
        provider_org: "other".into(),
        source_system: String::new(),
        classification: Classification::General,
        personal_data: false,
        share_type: ShareType::Unconditional,
        conditions: String::new(),
        methods: method::QUERY,
        fields: vec![Field {
            name: "hours".into(),
            data_type: "string".into(),
            classification: Classification::General,
            masking: String::new(),
            element: None,
        }],
        metadata_hash: [0; 32],
    };
    emits(chain.run(&other, builder::publish_resource(&hours), GAS), "resource.published");
    emits(chain.run(&other, builder::withdraw_resource("other/hours"), GAS), "resource.withdrawn");
    let purpose = Action::DefinePurpose { code: "licensing.events".into(), legal_bases: 1, description: String::new() };
    emits(chain.run(&admin, builder::propose(purpose), GAS), "purpose.defined");
    // Authz: request, approvals, refusals and the grant's life.
    let request = |chain: &mut Chain, ask: &RequestAccess| {
        let r = emits(chain.run(&analyst, access::request(ask), GAS), "request.submitted");
        u64::decode(&r.output).unwrap()
    };
    let terms = common::story::grant_terms(&["uscc"], method::QUERY, "licensing", now, 5, duty::LOG_USAGE);
    let id = request(&mut chain, &extra);
    emits(chain.run(&p.cdo, access::approve(id, &terms), GAS), "request.approved");
    let r = emits(chain.run(&p.security, access::approve(id, &terms), GAS), "grant.issued");
    let grant = Option::<u64>::decode(&r.output).unwrap().unwrap();
    emits(chain.run(&p.cdo, access::suspend(grant, "review"), GAS), "grant.suspended");
    emits(chain.run(&p.cdo, access::resume(grant), GAS), "grant.resumed");
    emits(chain.run(&p.cdo, access::amend(grant, &terms), GAS), "grant.superseded");
    let rejected = request(&mut chain, &extra);
    emits(chain.run(&p.cdo, access::reject(rejected, "not needed"), GAS), "request.rejected");
    emits(chain.run(&analyst, access::dispute(rejected, "it is"), GAS), "request.disputed");
    let withdrawn = request(&mut chain, &extra);
    emits(chain.run(&analyst, access::withdraw(withdrawn, "no longer"), GAS), "request.withdrawn");
    let consent = RecordConsent {
        id: "c-events".into(),
        subject_ref_hmac: [1; 32],
        resource: "market/licence".into(),
        purpose: "licensing".into(),
        evidence_hash: [2; 32],
    };
    emits(chain.run(&analyst, access::record_consent(&consent), GAS), "consent.recorded");
    emits(chain.run(&analyst, access::withdraw_consent("c-events"), GAS), "consent.withdrawn");
    extra.max_uses = 5;
    let id = request(&mut chain, &extra);
    let mut bound = terms.clone();
    bound.case_ref = Some([7; 32]);
    bound.delegable = true;
    ok(chain.run(&p.cdo, access::approve(id, &bound), GAS));
    let r = ok(chain.run(&p.security, access::approve(id, &bound), GAS));
    let bound_grant = Option::<u64>::decode(&r.output).unwrap().unwrap();
    let sub = shutong_sdk::system_api::authz::Terms { max_uses: 1, delegable: false, ..bound.clone() };
    emits(chain.run(&analyst, access::delegate(bound_grant, "partner", &sub), GAS), "grant.delegated");
    // Audit: a permitted use, an attestation, a batch, a violation.
    let event = AccessEvent {
        grant: bound_grant,
        consumer: analyst.account().0,
        fields: vec!["uscc".into()],
        method: method::QUERY,
        purpose: "licensing".into(),
        business_ref_hash: [0; 32],
        subject_ref_hmac: [0; 32],
        query_hash: [0; 32],
        result_hash: [0; 32],
        record_count: 1,
        consumer_signature: None,
    };
    emits(chain.run(&p.gateway, audit_trail::record(&event), GAS), "access.permitted");
    let outside = AccessEvent { purpose: "marketing".into(), ..event.clone() };
    emits(chain.run(&p.gateway, audit_trail::record(&outside), GAS), "violation.opened");
    let attest = Attest {
        grant: bound_grant,
        consumer: analyst.account().0,
        question_hash: [0; 32],
        subject_ref_hmac: [0; 32],
        answer: true,
    };
    emits(chain.run(&p.gateway, audit_trail::attest(&attest), GAS), "attestation.denied");
    let batch =
        AnchorBatch { grant: bound_grant, period_start_ms: 0, period_end_ms: 1, count: 3, merkle_root: [9; 32] };
    emits(chain.run(&p.gateway, audit_trail::anchor(&batch), GAS), "batch.anchored");
    emits(chain.run(&analyst, access::close_case([7; 32], &[bound_grant]), GAS), "grant.closed");
    emits(chain.run(&p.cdo, access::revoke(grant + 1, "done"), GAS), "grant.revoked");
    // Governance.
    let suspend = Action::SuspendOrg { id: "partner".into() };
    let r = emits(chain.run(&admin, builder::propose(suspend), GAS), "proposal.executed");
    assert!(r.events.iter().any(|e| e.topic == "org.updated"));
    let param = Action::SetParam { name: "upload_policy".into(), value: "open".into() };
    emits(chain.run(&admin, builder::propose(param), GAS), "param.set");
}
