//! Arguments and results of Shutong's system contracts, shared by the contracts and the node.
//!
//! Both sides encode and decode these with [`shutong_codec`], so a contract and the client
//! that calls it cannot disagree about the bytes.

#![forbid(unsafe_code)]

pub mod governance;
pub mod lifecycle;
pub mod registry;

/// The well-known names of the system contracts; the node derives each one's address from
/// its name (`Address::system(name)`).
pub mod names {
    pub const REGISTRY: &str = "system/registry";
    pub const GOVERNANCE: &str = "system/governance";
    /// The contract lifecycle; native to the node, not a wasm contract.
    pub const LIFECYCLE: &str = "system/lifecycle";
    /// The wasm system contracts, which genesis deploys.
    pub const ALL: [&str; 2] = [REGISTRY, GOVERNANCE];
}
