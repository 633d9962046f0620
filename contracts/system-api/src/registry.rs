//! The organisation registry: `register`, `update` and `get`.

use shutong_codec::{write, Decode, DecodeError, Encode, Reader};

pub const ORG_ID_BYTES_MAX: u32 = 64;
pub const ORG_NAME_BYTES_MAX: u32 = 256;

/// What kind of body an organisation is (domain.md, Entities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgKind {
    Department = 0,
    Enterprise = 1,
    Auditor = 2,
    Operator = 3,
}

impl OrgKind {
    pub const ALL: [OrgKind; 4] = [OrgKind::Department, OrgKind::Enterprise, OrgKind::Auditor, OrgKind::Operator];

    pub fn name(self) -> &'static str {
        match self {
            OrgKind::Department => "department",
            OrgKind::Enterprise => "enterprise",
            OrgKind::Auditor => "auditor",
            OrgKind::Operator => "operator",
        }
    }

    pub fn from_name(name: &str) -> Option<OrgKind> {
        OrgKind::ALL.iter().copied().find(|kind| kind.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgStatus {
    Active = 0,
    Suspended = 1,
}

impl OrgStatus {
    pub fn name(self) -> &'static str {
        match self {
            OrgStatus::Active => "active",
            OrgStatus::Suspended => "suspended",
        }
    }

    pub fn from_name(name: &str) -> Option<OrgStatus> {
        match name {
            "active" => Some(OrgStatus::Active),
            "suspended" => Some(OrgStatus::Suspended),
            _ => None,
        }
    }
}

/// A registered organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
    pub status: OrgStatus,
    /// The account that registered the organisation and may update it.
    pub admin: [u8; 32],
    pub registered_height: u64,
    pub updated_height: u64,
}

/// Arguments of `register`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOrg {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
}

/// Arguments of `update`: each field that is `Some` is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOrg {
    pub id: String,
    pub name: Option<String>,
    pub status: Option<OrgStatus>,
}

/// Arguments of `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOrg {
    pub id: String,
}

fn read_kind(r: &mut Reader<'_>) -> Result<OrgKind, DecodeError> {
    match r.u8()? {
        0 => Ok(OrgKind::Department),
        1 => Ok(OrgKind::Enterprise),
        2 => Ok(OrgKind::Auditor),
        3 => Ok(OrgKind::Operator),
        tag => Err(DecodeError::InvalidTag { what: "org.kind", tag }),
    }
}

fn read_status(r: &mut Reader<'_>) -> Result<OrgStatus, DecodeError> {
    match r.u8()? {
        0 => Ok(OrgStatus::Active),
        1 => Ok(OrgStatus::Suspended),
        tag => Err(DecodeError::InvalidTag { what: "org.status", tag }),
    }
}

impl Encode for Org {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::str(out, &self.name);
        write::u8(out, self.kind as u8);
        write::u8(out, self.status as u8);
        self.admin.encode_to(out);
        write::u64(out, self.registered_height);
        write::u64(out, self.updated_height);
    }
}

impl Decode for Org {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Org {
            id: r.string("org.id", ORG_ID_BYTES_MAX)?,
            name: r.string("org.name", ORG_NAME_BYTES_MAX)?,
            kind: read_kind(r)?,
            status: read_status(r)?,
            admin: r.array()?,
            registered_height: r.u64()?,
            updated_height: r.u64()?,
        })
    }
}

impl Encode for RegisterOrg {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::str(out, &self.name);
        write::u8(out, self.kind as u8);
    }
}

impl Decode for RegisterOrg {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RegisterOrg {
            id: r.string("org.id", ORG_ID_BYTES_MAX)?,
            name: r.string("org.name", ORG_NAME_BYTES_MAX)?,
            kind: read_kind(r)?,
        })
    }
}

impl Encode for UpdateOrg {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::option(out, &self.name, |out, name| write::str(out, name));
        write::option(out, &self.status, |out, status| write::u8(out, *status as u8));
    }
}

impl Decode for UpdateOrg {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(UpdateOrg {
            id: r.string("org.id", ORG_ID_BYTES_MAX)?,
            name: r.option("update.name", |r| r.string("org.name", ORG_NAME_BYTES_MAX))?,
            status: r.option("update.status", read_status)?,
        })
    }
}

impl Encode for GetOrg {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
    }
}

impl Decode for GetOrg {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GetOrg { id: r.string("org.id", ORG_ID_BYTES_MAX)? })
    }
}
