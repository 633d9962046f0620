//! Shutong's data catalog system contract (编目, 一数一源). The rules are in
//! `shutong_system_api::catalog`; each refusal has its own error.
//!
//! Who may publish is read from the registry's storage (`Member::read`), so the catalog never
//! keeps its own copy of who belongs to which organisation. Which department is the
//! authoritative source of a data element is the governance committee's decision
//! (`assign_source_by_governance`), never the first publisher's.

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::{self as contract, Error, Map, MethodResult};
use shutong_system_api::catalog::{
    method, valid_code, AssignSource, Classification, ElementRef, ElementSource, Publish, Resource, ResourceRef,
    ResourceStatus, ShareType, SourceAssignment, FIELDS_MAX,
};
use shutong_system_api::names::{GOVERNANCE_ADDRESS, REGISTRY_ADDRESS};
use shutong_system_api::registry::{org_key, role, Member, Org, OrgKind};

contract::entrypoints!(publish, withdraw, get, element, assign_source_by_governance);

const LATEST: Map<String, u32> = Map::new(b"latest/");
const VERSIONS: Map<Vec<u8>, Resource> = Map::new(b"version/");
/// Element → the resource that provides it now (of the assigned source).
const ELEMENTS: Map<String, ElementSource> = Map::new(b"element/");
/// Element → the committee's assignment of its authoritative source.
const SOURCES: Map<String, SourceAssignment> = Map::new(b"source/");

/// Assigns a data element to its authoritative source, or moves it (the committee's
/// `AssignSource` decision; the governance contract only).
pub fn assign_source_by_governance(args: &[u8]) -> MethodResult {
    if contract::caller() != GOVERNANCE_ADDRESS {
        return Err(Error::new("only the governance contract may do this"));
    }
    let req = AssignSource::decode(args)?;
    if !valid_code(&req.element) {
        return Err(Error(format!("invalid data element code {:?}", req.element)));
    }
    let org = contract::storage_get_of(&REGISTRY_ADDRESS, &org_key(&req.org))
        .ok_or_else(|| Error(format!("organisation {} not found", req.org)))?;
    let org =
        Org::decode(&org).map_err(|e| Error(format!("the registry's record of {} is corrupt: {}", req.org, e)))?;
    if org.kind != OrgKind::Department {
        return Err(Error(format!("organisation {} is not a department and cannot be a data source", org.id)));
    }
    let previous = SOURCES.load(&req.element)?;
    if previous.as_ref().map(|p| p.org.as_str()) == Some(req.org.as_str()) {
        return Err(Error(format!("{} is already the source of data element {}", req.org, req.element)));
    }
    // The old source's resource no longer provides the element.
    ELEMENTS.remove(&req.element);
    let assignment = SourceAssignment {
        element: req.element.clone(),
        org: req.org.clone(),
        previous_org: previous.map(|p| p.org),
        assigned_height: contract::block_height(),
    };
    SOURCES.save(&req.element, &assignment);
    let topic = if assignment.previous_org.is_some() { "source.reassigned" } else { "source.assigned" };
    contract::emit_event(topic, format!("{}={}", req.element, req.org).as_bytes());
    Ok(Vec::new())
}

fn version_key(code: &str, version: u32) -> Vec<u8> {
    let mut key = code.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The caller, if it may act as a data provider for `org`.
fn provider(org: &str) -> Result<[u8; 32], Error> {
    let caller = contract::caller();
    let refuse = || Error(format!("only an acting data provider of organisation {} may do this", org));
    let member = Member::read(&caller, |key| contract::storage_get_of(&REGISTRY_ADDRESS, key))
        .map_err(|e| Error(format!("the registry's record of the caller is corrupt: {}", e)))?
        .ok_or_else(refuse)?;
    if member.principal.org != org || !member.acting || member.principal.roles & role::DATA_PROVIDER == 0 {
        return Err(refuse());
    }
    if member.org_kind != OrgKind::Department {
        return Err(Error(format!("organisation {} is not a department and cannot provide data", org)));
    }
    Ok(caller)
}

fn check(req: &Publish) -> Result<(), Error> {
    if !valid_code(&req.code) {
        return Err(Error(format!("invalid resource code {:?}: use 1 to 64 of a-z 0-9 - _ . /", req.code)));
    }
    if req.fields.is_empty() || req.fields.len() > FIELDS_MAX as usize {
        return Err(Error(format!("a resource has 1 to {} fields", FIELDS_MAX)));
    }
    let mut names: Vec<&str> = req.fields.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::new("two fields have the same name"));
    }
    if let Some(field) = req.fields.iter().find(|f| f.classification > req.classification) {
        return Err(Error(format!(
            "field {} is classified {}, above the resource's {}",
            field.name,
            field.classification.name(),
            req.classification.name()
        )));
    }
    if req.classification == Classification::Core && req.share_type != ShareType::NotShared {
        return Err(Error::new("core data cannot be shared: its share type must be not_shared"));
    }
    if req.share_type != ShareType::NotShared && req.methods == 0 {
        return Err(Error::new("a shared resource offers at least one method"));
    }
    if req.methods & !method::ALL != 0 {
        return Err(Error(format!("unknown method bits {:#x}", req.methods & !method::ALL)));
    }
    if req.share_type == ShareType::Conditional && req.conditions.trim().is_empty() {
        return Err(Error::new("a conditional share needs its conditions"));
    }
    let mut elements: Vec<&str> = req.fields.iter().filter_map(|f| f.element.as_deref()).collect();
    if let Some(bad) = elements.iter().find(|e| !valid_code(e)) {
        return Err(Error(format!("invalid data element code {:?}", bad)));
    }
    elements.sort_unstable();
    if elements.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::new("two fields claim the same data element"));
    }
    Ok(())
}

pub fn publish(args: &[u8]) -> MethodResult {
    let req = Publish::decode(args)?;
    check(&req)?;
    let publisher = provider(&req.provider_org)?;
    let height = contract::block_height();
    let mut version = 1;
    if let Some(latest) = LATEST.load(&req.code)? {
        let mut previous = VERSIONS
            .load(&version_key(&req.code, latest))?
            .ok_or_else(|| Error(format!("resource {} version {} is missing", req.code, latest)))?;
        if previous.provider_org != req.provider_org {
            return Err(Error(format!("resource {} belongs to organisation {}", req.code, previous.provider_org)));
        }
        if previous.status == ResourceStatus::Withdrawn {
            return Err(Error(format!("resource {} was withdrawn and cannot be published again", req.code)));
        }
        for element in previous.fields.iter().filter_map(|f| f.element.as_ref()) {
            let still_claimed = req.fields.iter().any(|f| f.element.as_ref() == Some(element));
            if !still_claimed && ELEMENTS.load(element)?.map_or(false, |s| s.resource == req.code) {
                ELEMENTS.remove(element);
            }
        }
        previous.status = ResourceStatus::Deprecated;
        previous.updated_height = height;
        VERSIONS.save(&version_key(&req.code, latest), &previous);
        version = latest + 1;
    }
    for element in req.fields.iter().filter_map(|f| f.element.as_ref()) {
        match SOURCES.load(element)? {
            None => {
                return Err(Error(format!(
                    "data element {} has no authoritative source: the governance committee assigns one",
                    element
                )))
            }
            Some(assigned) if assigned.org != req.provider_org => {
                return Err(Error(format!(
                    "the authoritative source of data element {} is {}, not {}",
                    element, assigned.org, req.provider_org
                )))
            }
            Some(_) => {}
        }
        if let Some(source) = ELEMENTS.load(element)? {
            if source.resource != req.code {
                return Err(Error(format!(
                    "duplicate authoritative source: data element {} is already provided by resource {} of {}",
                    element, source.resource, source.provider_org
                )));
            }
        }
        let source = ElementSource {
            element: element.clone(),
            resource: req.code.clone(),
            provider_org: req.provider_org.clone(),
        };
        ELEMENTS.save(element, &source);
    }
    let resource = Resource {
        code: req.code.clone(),
        version,
        provider_org: req.provider_org,
        source_system: req.source_system,
        classification: req.classification,
        personal_data: req.personal_data,
        share_type: req.share_type,
        conditions: req.conditions,
        methods: req.methods,
        fields: req.fields,
        metadata_hash: req.metadata_hash,
        status: ResourceStatus::Published,
        publisher,
        published_height: height,
        updated_height: height,
    };
    VERSIONS.save(&version_key(&req.code, version), &resource);
    LATEST.save(&req.code, &version);
    contract::emit_event("resource.published", format!("{}@{}", req.code, version).as_bytes());
    Ok(version.encode())
}

fn latest(code: &str) -> Result<Resource, Error> {
    let version =
        LATEST.load(&code.to_string())?.ok_or_else(|| Error(format!("no resource {} in the catalog", code)))?;
    VERSIONS
        .load(&version_key(code, version))?
        .ok_or_else(|| Error(format!("resource {} version {} is missing", code, version)))
}

pub fn withdraw(args: &[u8]) -> MethodResult {
    let req = ResourceRef::decode(args)?;
    let mut resource = latest(&req.code)?;
    provider(&resource.provider_org)?;
    if resource.status == ResourceStatus::Withdrawn {
        return Err(Error(format!("resource {} is already withdrawn", req.code)));
    }
    for element in resource.fields.iter().filter_map(|f| f.element.as_ref()) {
        if ELEMENTS.load(element)?.map_or(false, |s| s.resource == req.code) {
            ELEMENTS.remove(element);
        }
    }
    resource.status = ResourceStatus::Withdrawn;
    resource.updated_height = contract::block_height();
    VERSIONS.save(&version_key(&req.code, resource.version), &resource);
    contract::emit_event("resource.withdrawn", req.code.as_bytes());
    Ok(Vec::new())
}

pub fn get(args: &[u8]) -> MethodResult {
    let req = ResourceRef::decode(args)?;
    let resource = match req.version {
        None => latest(&req.code)?,
        Some(version) => VERSIONS
            .load(&version_key(&req.code, version))?
            .ok_or_else(|| Error(format!("no version {} of resource {}", version, req.code)))?,
    };
    Ok(resource.encode())
}

/// The authoritative source of a data element: its assigned department, and the resource of
/// it that provides the element now (empty while none does).
pub fn element(args: &[u8]) -> MethodResult {
    let req = ElementRef::decode(args)?;
    let assigned = SOURCES
        .load(&req.element)?
        .ok_or_else(|| Error(format!("data element {} has no authoritative source", req.element)))?;
    let resource = ELEMENTS.load(&req.element)?.map(|s| s.resource).unwrap_or_default();
    Ok(ElementSource { element: req.element, resource, provider_org: assigned.org }.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_contract::testing;
    use shutong_system_api::catalog::Field;
    use shutong_system_api::registry::{Org, OrgStatus, Principal, PrincipalKind, PrincipalStatus};

    const PROVIDER: [u8; 32] = [1; 32];
    const CONSUMER: [u8; 32] = [2; 32];
    const OTHER_DEPT: [u8; 32] = [3; 32];

    /// The registry's storage, for the native host: [1] provides for `market`, [2] is a
    /// consumer of an enterprise, [3] provides for `tax`.
    fn registry(address: &[u8; 32], key: &[u8]) -> Option<Vec<u8>> {
        assert_eq!(*address, REGISTRY_ADDRESS);
        if let Some(id) = key.strip_prefix(b"org/".as_slice()) {
            let id = std::str::from_utf8(id).unwrap();
            let kind = if id == "acme" { OrgKind::Enterprise } else { OrgKind::Department };
            let org = Org {
                id: id.into(),
                name: id.into(),
                kind,
                status: OrgStatus::Active,
                admin: [0; 32],
                registered_height: 1,
                updated_height: 1,
            };
            return Some(org.encode());
        }
        let account: [u8; 32] = key.strip_prefix(b"principal/".as_slice())?.try_into().unwrap();
        let (org, roles) = match account {
            PROVIDER => ("market", role::DATA_PROVIDER),
            CONSUMER => ("acme", role::DATA_CONSUMER | role::DATA_PROVIDER),
            OTHER_DEPT => ("tax", role::DATA_PROVIDER),
            _ => return None,
        };
        let principal = Principal {
            account,
            org: org.into(),
            kind: PrincipalKind::Person,
            roles,
            status: PrincipalStatus::Active,
            rotated_to: None,
            updated_height: 1,
        };
        Some(principal.encode())
    }

    fn field(name: &str, classification: Classification, element: Option<&str>) -> Field {
        Field {
            name: name.into(),
            data_type: "string".into(),
            classification,
            masking: String::new(),
            element: element.map(String::from),
        }
    }

    fn licence(org: &str, fields: Vec<Field>) -> Publish {
        Publish {
            code: "market/business-licence".into(),
            provider_org: org.into(),
            source_system: "licence-db".into(),
            classification: Classification::Important,
            personal_data: false,
            share_type: ShareType::Conditional,
            conditions: "for licensing and tax matters".into(),
            methods: method::QUERY | method::VERIFY,
            fields,
            metadata_hash: [9; 32],
        }
    }

    fn setup(caller: [u8; 32]) {
        testing::reset();
        testing::set_context(caller, 10);
        testing::with_host(|h| h.read_handler = Some(registry));
    }

    /// The committee assigns `element` to `org`, as the governance contract.
    fn assign(element: &str, org: &str) -> Result<Vec<u8>, Error> {
        let caller = testing::with_host(|h| h.caller);
        testing::with_host(|h| h.caller = GOVERNANCE_ADDRESS);
        let result = assign_source_by_governance(&AssignSource { element: element.into(), org: org.into() }.encode());
        testing::with_host(|h| h.caller = caller);
        result
    }

    #[test]
    fn only_the_committee_assigns_sources_and_a_squatter_cannot_claim_an_element() {
        setup(OTHER_DEPT);
        let squat = |code: &str| {
            let mut p = licence("tax", vec![field("uscc", Classification::General, Some("enterprise.uscc"))]);
            p.code = code.into();
            p
        };
        // Nobody is the source before the committee says so: the first publisher is not.
        assert_eq!(
            publish(&squat("tax/a").encode()),
            Err(Error::new(
                "data element enterprise.uscc has no authoritative source: the governance committee assigns one"
            ))
        );
        assert_eq!(
            assign_source_by_governance(
                &AssignSource { element: "enterprise.uscc".into(), org: "tax".into() }.encode()
            ),
            Err(Error::new("only the governance contract may do this"))
        );
        assign("enterprise.uscc", "market").unwrap();
        assert_eq!(
            publish(&squat("tax/a").encode()),
            Err(Error::new("the authoritative source of data element enterprise.uscc is market, not tax"))
        );
        assert_eq!(
            assign("enterprise.uscc", "acme"),
            Err(Error::new("organisation acme is not a department and cannot be a data source"))
        );
        assert_eq!(
            assign("enterprise.uscc", "market"),
            Err(Error::new("market is already the source of data element enterprise.uscc"))
        );
        // The market bureau publishes it; a reassignment to tax releases it, and is recorded.
        testing::set_context(PROVIDER, 11);
        let fields = vec![field("uscc", Classification::General, Some("enterprise.uscc"))];
        publish(&licence("market", fields).encode()).unwrap();
        assign("enterprise.uscc", "tax").unwrap();
        let source =
            ElementSource::decode(&element(&ElementRef { element: "enterprise.uscc".into() }.encode()).unwrap())
                .unwrap();
        assert_eq!((source.provider_org.as_str(), source.resource.as_str()), ("tax", ""));
        assert_eq!(SOURCES.load(&"enterprise.uscc".to_string()).unwrap().unwrap().previous_org, Some("market".into()));
        testing::set_context(OTHER_DEPT, 12);
        publish(&squat("tax/a").encode()).unwrap();
        let events = testing::take_events();
        assert!(events.iter().any(|(t, d)| t == "source.reassigned" && d == b"enterprise.uscc=tax"), "{:?}", events);
    }

    #[test]
    fn a_provider_publishes_versions_and_elements_have_one_source() {
        setup(PROVIDER);
        assign("enterprise.uscc", "market").unwrap();
        assign("enterprise.legal-rep", "market").unwrap();
        let fields = vec![
            field("uscc", Classification::General, Some("enterprise.uscc")),
            field("legal_rep", Classification::Important, Some("enterprise.legal-rep")),
        ];
        assert_eq!(publish(&licence("market", fields.clone()).encode()), Ok(1u32.encode()));
        let source =
            ElementSource::decode(&element(&ElementRef { element: "enterprise.uscc".into() }.encode()).unwrap())
                .unwrap();
        assert_eq!(source.resource, "market/business-licence");
        // A second version drops an element: it is released.
        assert_eq!(publish(&licence("market", fields[..1].to_vec()).encode()), Ok(2u32.encode()));
        let v1 = Resource::decode(
            &get(&ResourceRef { code: "market/business-licence".into(), version: Some(1) }.encode()).unwrap(),
        )
        .unwrap();
        assert_eq!(v1.status, ResourceStatus::Deprecated);
        let released =
            ElementSource::decode(&element(&ElementRef { element: "enterprise.legal-rep".into() }.encode()).unwrap())
                .unwrap();
        assert_eq!(released.resource, "");
        // A second resource of the source claiming an element already provided is refused.
        let mut second = licence("market", vec![field("uscc", Classification::General, Some("enterprise.uscc"))]);
        second.code = "market/other".into();
        assert_eq!(
            publish(&second.encode()),
            Err(Error::new("duplicate authoritative source: data element enterprise.uscc is already provided by resource market/business-licence of market"))
        );
        // Another department claiming it is refused.
        testing::set_context(OTHER_DEPT, 11);
        let mut tax = licence("tax", vec![field("uscc", Classification::General, Some("enterprise.uscc"))]);
        tax.code = "tax/registration".into();
        assert_eq!(
            publish(&tax.encode()),
            Err(Error::new("the authoritative source of data element enterprise.uscc is market, not tax"))
        );
        // Nor may it publish a version of another's resource.
        assert_eq!(
            publish(&licence("tax", fields.clone()).encode()),
            Err(Error::new("resource market/business-licence belongs to organisation market"))
        );
        // Withdrawal releases the elements and ends the resource: another resource of the
        // source may provide them.
        testing::set_context(PROVIDER, 12);
        withdraw(&ResourceRef { code: "market/business-licence".into(), version: None }.encode()).unwrap();
        assert_eq!(publish(&second.encode()), Ok(1u32.encode()));
        testing::set_context(PROVIDER, 14);
        assert_eq!(
            publish(&licence("market", fields).encode()),
            Err(Error::new("resource market/business-licence was withdrawn and cannot be published again"))
        );
    }

    #[test]
    fn each_publishing_refusal_has_its_own_error() {
        setup(CONSUMER);
        let ok_fields = vec![field("a", Classification::General, None)];
        assert_eq!(
            publish(&licence("acme", ok_fields.clone()).encode()),
            Err(Error::new("organisation acme is not a department and cannot provide data"))
        );
        assert_eq!(
            publish(&licence("market", ok_fields.clone()).encode()),
            Err(Error::new("only an acting data provider of organisation market may do this"))
        );
        testing::set_context([7; 32], 10);
        assert_eq!(
            publish(&licence("market", ok_fields.clone()).encode()),
            Err(Error::new("only an acting data provider of organisation market may do this"))
        );
        testing::set_context(PROVIDER, 10);
        let mut bad = licence("market", ok_fields.clone());
        bad.code = "Bad Code".into();
        assert!(publish(&bad.encode()).unwrap_err().0.starts_with("invalid resource code"));
        assert_eq!(publish(&licence("market", vec![]).encode()), Err(Error::new("a resource has 1 to 256 fields")));
        let twice = vec![field("a", Classification::General, None), field("a", Classification::General, None)];
        assert_eq!(publish(&licence("market", twice).encode()), Err(Error::new("two fields have the same name")));
        let above = vec![field("secret", Classification::Core, None)];
        assert_eq!(
            publish(&licence("market", above).encode()),
            Err(Error::new("field secret is classified core, above the resource's important"))
        );
        let mut core = licence("market", vec![field("x", Classification::Core, None)]);
        core.classification = Classification::Core;
        assert_eq!(
            publish(&core.encode()),
            Err(Error::new("core data cannot be shared: its share type must be not_shared"))
        );
        let mut no_methods = licence("market", ok_fields.clone());
        no_methods.methods = 0;
        assert_eq!(publish(&no_methods.encode()), Err(Error::new("a shared resource offers at least one method")));
        let mut no_conditions = licence("market", ok_fields.clone());
        no_conditions.conditions = " ".into();
        assert_eq!(publish(&no_conditions.encode()), Err(Error::new("a conditional share needs its conditions")));
        let same_element =
            vec![field("a", Classification::General, Some("e.x")), field("b", Classification::General, Some("e.x"))];
        assert_eq!(
            publish(&licence("market", same_element).encode()),
            Err(Error::new("two fields claim the same data element"))
        );
        assert_eq!(
            withdraw(&ResourceRef { code: "nothing".into(), version: None }.encode()),
            Err(Error::new("no resource nothing in the catalog"))
        );
    }
}
