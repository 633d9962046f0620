//! The authorisation story (`common/story.rs`) on a one-machine chain: the real VM, the
//! five system contracts calling each other, RocksDB.

#![allow(clippy::unwrap_used)]

mod common;

use common::chain::Chain;
use common::story;

#[test]
fn the_authorisation_story_holds_on_one_machine() {
    common::story::authorisation_story(&mut Chain::new());
}

/// Consent as the legal basis: its withdrawal suspends the grant resting on it. A
/// verification attestation (a yes/no answer instead of data) counts as a `verify` use.
#[test]
fn consent_withdrawal_suspends_and_attestations_are_recorded() {
    use common::story::{GAS, aborted, ok, read, setup};
    use shutong_codec::Decode;
    use shutong_sdk::builder::{access, audit_trail};
    use shutong_sdk::system_api::audit::{Attest, AttestationRecord};
    use shutong_sdk::system_api::authz::{Decision, LegalBasis, RecordConsent, RequestAccess, Use, duty};
    use shutong_sdk::system_api::catalog::method;

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
    use common::story::{GAS, aborted, ok, setup};
    use shutong_codec::Decode;
    use shutong_sdk::builder::{self, access, audit_trail};
    use shutong_sdk::system_api::audit::{AccessEvent, EventRecord};
    use shutong_sdk::system_api::authz::{LegalBasis, duty};
    use shutong_sdk::system_api::catalog::method;
    use shutong_sdk::system_api::registry::{PrincipalKind, PrincipalStatus, role};
    use shutong_types::Keypair;

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
    use common::story::{GAS, aborted, ok, setup};
    use shutong_codec::Decode;
    use shutong_sdk::builder::{self, access};
    use shutong_sdk::system_api::authz::{LegalBasis, duty};
    use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
    use shutong_sdk::system_api::registry::role;

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
