//! Arguments and results of Shutong's system contracts, shared by the contracts and the node.
//!
//! Both sides encode and decode these with [`shutong_codec`], so a contract and the client
//! that calls it cannot disagree about the bytes.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod governance;
pub mod lifecycle;
pub mod registry;

/// The well-known names of the system contracts; the node derives each one's address from
/// its name (`Address::system(name)`).
pub mod names {
    pub const REGISTRY: &str = "system/registry";
    pub const GOVERNANCE: &str = "system/governance";
    pub const CATALOG: &str = "system/catalog";
    /// The contract lifecycle; native to the node, not a wasm contract.
    pub const LIFECYCLE: &str = "system/lifecycle";
    /// The wasm system contracts, which genesis deploys.
    pub const ALL: [&str; 3] = [REGISTRY, GOVERNANCE, CATALOG];

    /// `Address::system(REGISTRY)`, for contracts that call the registry (they cannot derive
    /// it: that needs blake3's key derivation, which the host does not offer). The node checks
    /// the constant against the derivation in a test.
    pub const REGISTRY_ADDRESS: [u8; 32] = [
        0x3d, 0xbd, 0x6c, 0xe2, 0x3d, 0xab, 0x81, 0x56, 0x40, 0x28, 0x91, 0x76, 0x0a, 0x22, 0xc2, 0x1d, 0x05, 0x12,
        0xda, 0xb2, 0x13, 0x3e, 0xf2, 0x34, 0x72, 0x88, 0x0b, 0x4f, 0xc5, 0x19, 0xe7, 0xc8,
    ];
}
