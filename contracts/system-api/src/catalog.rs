//! The data catalog (编目): resources published by their providing departments, in
//! versions, with fields, classification, share type and methods; and the
//! one-authoritative-source rule (一数一源): each data element is provided by exactly one
//! resource.
//!
//! Rules (the catalog contract enforces them, each with its own error):
//! - `publish` is for an acting principal of the provider organisation with the
//!   `data_provider` role; the organisation must be a department;
//! - a resource's classification is at least that of each of its fields; core data is never
//!   shared (share type `not_shared`); a shared resource offers at least one method;
//! - 1 to 256 fields with distinct names;
//! - a data element (a field's `element` code) has one authoritative source, a department
//!   the governance committee assigned it to (`assign_source_by_governance`, never whoever
//!   publishes first): a resource of any other organisation claiming it is refused, naming
//!   the assigned source; within that department it belongs to one resource only;
//! - the committee may reassign an element; the old source's resource then no longer
//!   provides it, and the assignment records the organisation it came from;
//! - publishing an existing code is a new version, by the same provider only; the previous
//!   version becomes `deprecated`; a withdrawn resource cannot be published again;
//! - `withdraw` (same principals) ends the resource and releases its elements.

use crate::registry::ORG_ID_BYTES_MAX;

pub const CODE_BYTES_MAX: u32 = 64;
pub const FIELDS_MAX: u32 = 256;

/// Share methods, as bits.
pub mod method {
    pub const QUERY: u8 = 1 << 0;
    pub const VERIFY: u8 = 1 << 1;
    pub const BATCH: u8 = 1 << 2;
    pub const NAMES: [(u8, &str); 3] = [(QUERY, "query"), (VERIFY, "verify"), (BATCH, "batch")];
    pub const ALL: u8 = QUERY | VERIFY | BATCH;

    pub fn from_name(name: &str) -> Option<u8> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(bit, _)| *bit)
    }
}

shutong_codec::codec_enum! {
    /// Data classification (数据安全法, GB/T 43697), in increasing order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Classification { General = 0 => "general", Important = 1 => "important", Core = 2 => "core" }
}

shutong_codec::codec_enum! {
    /// Share type (政务数据共享条例).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ShareType { Unconditional = 0 => "unconditional", Conditional = 1 => "conditional", NotShared = 2 => "not_shared" }
}

shutong_codec::codec_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ResourceStatus { Published = 0 => "published", Deprecated = 1 => "deprecated", Withdrawn = 2 => "withdrawn" }
}

shutong_codec::codec_struct! {
    /// One field of a resource.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Field {
        pub name: String,
        pub data_type: String,
        pub classification: Classification,
        /// How the field is masked when shared ("" for none).
        pub masking: String,
        /// The data element this field is the authoritative source of, if any.
        pub element: Option<String>,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `publish`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Publish {
        pub code: String,
        pub provider_org: String,
        pub source_system: String,
        pub classification: Classification,
        pub personal_data: bool,
        pub share_type: ShareType,
        /// The conditions of a conditional share (text; "" otherwise).
        pub conditions: String,
        /// `method` bits.
        pub methods: u8,
        pub fields: Vec<Field>,
        /// The hash of the full metadata document, kept off chain.
        pub metadata_hash: [u8; 32],
    }
}

shutong_codec::codec_struct! {
    /// A catalog entry, one version of a resource.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Resource {
        pub code: String,
        pub version: u32,
        pub provider_org: String,
        pub source_system: String,
        pub classification: Classification,
        pub personal_data: bool,
        pub share_type: ShareType,
        pub conditions: String,
        pub methods: u8,
        pub fields: Vec<Field>,
        pub metadata_hash: [u8; 32],
        pub status: ResourceStatus,
        pub publisher: [u8; 32],
        pub published_height: u64,
        pub updated_height: u64,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `get` (the latest version if `version` is `None`) and `withdraw` (which
    /// ignores `version`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ResourceRef {
        pub code: String,
        pub version: Option<u32>,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `element`: which resource is the authoritative source of a data element.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ElementRef {
        pub element: String,
    }
}

shutong_codec::codec_struct! {
    /// The answer of `element`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ElementSource {
        pub element: String,
        pub resource: String,
        pub provider_org: String,
    }
}

shutong_codec::codec_struct! {
    /// The committee's assignment of a data element to its authoritative source.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SourceAssignment {
        pub element: String,
        pub org: String,
        /// The organisation it was assigned to before, if it was reassigned.
        pub previous_org: Option<String>,
        pub assigned_height: u64,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `assign_source_by_governance`, which only the governance contract calls.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AssignSource {
        pub element: String,
        pub org: String,
    }
}

/// Checks a resource or element code: 1 to 64 of `a-z 0-9 - _ . /`.
pub fn valid_code(code: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_./".contains(c);
    !code.is_empty() && code.len() <= CODE_BYTES_MAX as usize && code.chars().all(ok)
}

/// The longest organisation id, re-exported for the catalog's checks.
pub const PROVIDER_BYTES_MAX: u32 = ORG_ID_BYTES_MAX;
