//! The command groups, one module each; `main.rs` dispatches to each module's `run`.

pub mod audit;
pub mod catalog;
pub mod cert;
pub mod contract;
pub mod genesis;
pub mod gov;
pub mod grant;
pub mod keys;
pub mod node;
pub mod org;
pub mod request;
pub mod status;
pub mod testnet;
pub mod tx;
pub mod values;
