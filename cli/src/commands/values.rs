//! What the story's command groups share: value parsers for their flags, and how a
//! call's result or an audit event reads to a person.

use crate::context::list;
use shutong_codec::Decode;
use shutong_sdk::builder::{self};
use shutong_sdk::system_api::audit::EventRecord;
use shutong_sdk::system_api::authz::{Grant, LegalBasis};
use shutong_sdk::system_api::catalog::{Classification, Field, ShareType, method};
use shutong_sdk::system_api::registry::{OrgKind, OrgStatus, PrincipalKind, PrincipalStatus, role};
use shutong_types::Call;

pub(crate) const DAY_MS: u64 = 24 * 3600 * 1000;

pub(crate) fn roles(text: &str) -> Result<u32, String> {
    list(text).iter().try_fold(0, |acc, name| {
        role::from_name(name).map(|bit| acc | bit).ok_or_else(|| {
            let all: Vec<&str> = role::NAMES.iter().map(|(_, n)| *n).collect();
            format!("{name:?} is not a role; roles are {}", all.join(", "))
        })
    })
}

pub fn methods(text: &str) -> Result<u8, String> {
    list(text).iter().try_fold(0, |acc, name| {
        method::from_name(name).map(|bit| acc | bit).ok_or_else(|| format!("{name:?} is not query, verify or batch"))
    })
}

pub(crate) fn named<T: Copy>(all: &[T], name: fn(T) -> &'static str, text: &str, what: &str) -> Result<T, String> {
    all.iter().copied().find(|v| name(*v) == text).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        format!("{text:?} is not a {what}; use one of {}", names.join(", "))
    })
}

pub(crate) fn org_kind(text: &str) -> Result<OrgKind, String> {
    OrgKind::from_name(text).ok_or_else(|| format!("{text:?} is not department, enterprise, auditor or operator"))
}

pub(crate) fn kind(text: &str) -> Result<PrincipalKind, String> {
    named(PrincipalKind::ALL, PrincipalKind::name, text, "principal kind")
}

pub(crate) fn status(text: &str) -> Result<PrincipalStatus, String> {
    named(&[PrincipalStatus::Active, PrincipalStatus::Suspended], PrincipalStatus::name, text, "status")
}

pub(crate) fn classification(text: &str) -> Result<Classification, String> {
    named(Classification::ALL, Classification::name, text, "classification")
}

pub(crate) fn share(text: &str) -> Result<ShareType, String> {
    named(ShareType::ALL, ShareType::name, text, "share type")
}

pub(crate) fn basis(text: &str) -> Result<LegalBasis, String> {
    named(LegalBasis::ALL, LegalBasis::name, text, "legal basis")
}

/// `NAME:TYPE:CLASSIFICATION[:ELEMENT]`.
pub(crate) fn field(text: &str) -> Result<Field, String> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(3..=4).contains(&parts.len()) {
        return Err(format!("{text:?} is not NAME:TYPE:CLASSIFICATION[:ELEMENT]"));
    }
    Ok(Field {
        name: parts[0].to_string(),
        data_type: parts[1].to_string(),
        classification: classification(parts[2])?,
        masking: String::new(),
        element: parts.get(3).map(|e| e.to_string()),
    })
}

pub(crate) fn org_status(text: &str) -> Result<OrgStatus, String> {
    OrgStatus::from_name(text)
        .filter(|s| *s != OrgStatus::Pending)
        .ok_or_else(|| format!("{text:?} is not active or suspended"))
}

/// Comma-separated legal bases, as `basis` bits.
pub(crate) fn bases(text: &str) -> Result<u8, String> {
    let names = list(text);
    if names.is_empty() {
        return Err("name at least one legal basis".into());
    }
    names.iter().try_fold(0u8, |acc, name| basis(name).map(|b| acc | (1 << b as u8)))
}

pub(crate) fn role_names(bits: u32) -> String {
    let names: Vec<&str> = role::NAMES.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, n)| *n).collect();
    if names.is_empty() { "none".into() } else { names.join(",") }
}

// --- what a call returned ---------------------------------------------------------------------

/// What a successful story call returned, for a person.
pub fn result_text(call: &Call, output: &[u8]) -> Option<String> {
    let method = call.method.as_str();
    if call.contract == builder::authz() {
        return match method {
            "request" => u64::decode(output).ok().map(|id| format!("request {id}")),
            "approve" => Option::<u64>::decode(output).ok().map(|grant| match grant {
                Some(id) => format!("approved: grant {id} issued"),
                None => "approval recorded; the route needs more approvers".to_string(),
            }),
            "amend" | "delegate" => u64::decode(output).ok().map(|id| format!("grant {id} issued")),
            _ => None,
        };
    }
    if call.contract == builder::governance() && method == "propose" {
        return u64::decode(output).ok().map(|id| format!("proposal {id}"));
    }
    if call.contract == builder::governance() && method == "vote" {
        return bool::decode(output).ok().map(|done| if done { "carried out".into() } else { "vote recorded".into() });
    }
    if call.contract == builder::catalog() && method == "publish" {
        return u32::decode(output).ok().map(|v| format!("published version {v}"));
    }
    if call.contract == builder::audit() && method == "record" {
        return EventRecord::decode(output).ok().map(|r| event_text(&r));
    }
    None
}

pub fn event_text(r: &EventRecord) -> String {
    let decision = if r.permit { "PERMITTED".to_string() } else { format!("DENIED ({})", r.reason) };
    let violation = r.violation.map(|v| format!("  violation {v} opened")).unwrap_or_default();
    format!(
        "event {}  grant {}  {} -> {}  {}  fields {}  purpose {}  audit leaf {}  {decision}{violation}",
        r.id,
        r.event.grant,
        r.provider_org,
        r.consumer_org,
        r.resource,
        r.event.fields.join(","),
        r.event.purpose,
        r.leaf
    )
}

pub(crate) fn grant_json(g: &Grant) -> serde_json::Value {
    serde_json::json!({
        "id": g.id, "request": g.request, "grantor": g.grantor_org, "grantee": g.grantee_org,
        "resource": g.resource, "fields": g.terms.fields, "purposes": g.terms.purposes,
        "not_after_ms": g.terms.not_after_ms, "max_uses": g.terms.max_uses, "uses": g.uses,
        "status": g.status.name(), "reason": g.reason, "parent": g.parent, "delegations": g.children,
    })
}

pub fn event_json(r: &EventRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "grant": r.event.grant, "provider": r.provider_org, "consumer": r.consumer_org,
        "resource": r.resource, "fields": r.event.fields, "purpose": r.event.purpose,
        "permit": r.permit, "reason": r.reason, "violation": r.violation, "height": r.height,
        "time_ms": r.time_ms, "leaf": r.leaf,
    })
}
