//! Genesis: the chain id, the validators, the governance committee and the system
//! contracts, and the state and block at height 0 that follow from them.
//!
//! No key has power of its own after block 0: the system contracts are administered by the
//! governance contract's address (which no key signs for), so they are frozen, migrated or
//! handed over only by a carried committee decision. The committee's organisations are
//! registered at genesis as active departments, each administered by its seat's account.

use serde::{Deserialize, Serialize};
use shutong_codec::{Encode, write};
use shutong_system_api::governance::{Committee, Seat};
use shutong_system_api::lifecycle::{CodeInfo, ContractInfo, policy};
use shutong_system_api::{names, registry};
use shutong_types::hash::tag;
use shutong_types::keyspace::params;
use shutong_types::keyspace::{self, Instance};
use shutong_types::limits::CHAIN_ID_BYTES_MAX;
use shutong_types::transport::{Member, Transport};
use shutong_types::{AccountId, Address, Block, BlockHeader, Hash, PublicKey, merkle_root, validator_set_hash};
use shutong_vm::Vm;
use shutong_vm::state::Writes;
use std::path::Path;

/// The system contracts this binary carries, built from `contracts/` and committed with
/// checksums in `contracts/artifacts/`.
pub const SYSTEM_CONTRACTS: &[(&str, &[u8])] = &[
    (names::REGISTRY, include_bytes!("../../contracts/artifacts/registry.wasm")),
    (names::GOVERNANCE, include_bytes!("../../contracts/artifacts/governance.wasm")),
    (names::CATALOG, include_bytes!("../../contracts/artifacts/catalog.wasm")),
    (names::AUTHZ, include_bytes!("../../contracts/artifacts/authz.wasm")),
    (names::AUDIT, include_bytes!("../../contracts/artifacts/audit.wasm")),
];

/// The methods a system contract's code exports, read from its export section: no VM is
/// needed, and the list is the same on every node.
fn system_methods(code: &[u8]) -> Vec<String> {
    let mut methods = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(code) {
        if let Ok(wasmparser::Payload::ExportSection(exports)) = payload {
            for export in exports.into_iter().flatten() {
                if export.kind == wasmparser::ExternalKind::Func && !export.name.starts_with("__") {
                    methods.push(export.name.to_string());
                }
            }
        }
    }
    methods.sort();
    methods
}

/// The largest genesis file read.
pub const GENESIS_BYTES_MAX: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    pub name: String,
    pub public_key: PublicKey,
    /// The validator's ed25519 transport key (its p2p identity) and the binding its key
    /// signed (`shutong_types::transport`): required on `sm2-sm3`; on `ed25519-blake3` only
    /// for a key the node cannot hand to libp2p (one in a PKCS#11 token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

impl GenesisValidator {
    /// A validator whose key is its own transport key (an `ed25519-blake3` key in a file).
    pub fn new(name: &str, public_key: PublicKey) -> GenesisValidator {
        GenesisValidator { name: name.to_string(), public_key, transport: None }
    }
}

/// One seat of the governance committee: an account voting for a department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeMember {
    /// The department's organisation id, registered at genesis.
    pub org: String,
    /// Its name, as the registry shows it.
    pub name: String,
    pub account: AccountId,
}

impl CommitteeMember {
    pub fn new(org: &str, name: &str, account: AccountId) -> CommitteeMember {
        CommitteeMember { org: org.to_string(), name: name.to_string(), account }
    }

    /// A committee of `accounts`, each the seat of a department of its own: `committee-0`,
    /// `committee-1`, ...
    pub fn departments(accounts: &[AccountId]) -> Vec<CommitteeMember> {
        let seat = |(i, account): (usize, &AccountId)| {
            CommitteeMember::new(&format!("committee-{i}"), &format!("Committee department {i}"), *account)
        };
        accounts.iter().enumerate().map(seat).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisContract {
    pub name: String,
    pub code_hash: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    pub genesis_time_ms: u64,
    pub validators: Vec<GenesisValidator>,
    /// The governance committee's seats; its organisations are registered at genesis.
    pub committee: Vec<CommitteeMember>,
    pub contracts: Vec<GenesisContract>,
    /// Who may upload contract code: `governance` (an admin approves each code hash first)
    /// or `open`.
    #[serde(default = "default_upload_policy")]
    pub upload_policy: String,
    /// The VM's gas schedule version.
    #[serde(default = "default_gas_schedule")]
    pub gas_schedule: u32,
    /// How many of the committee's distinct organisations must vote for a proposal.
    pub governance_threshold: u32,
    /// How enterprises register: `open` (active at once) or `approved` (pending until the
    /// committee approves them). Departments, auditors and operators are always pending
    /// until then.
    #[serde(default = "default_registration")]
    pub registration: String,
    /// Blocks between a carried lifecycle decision and its execution.
    #[serde(default = "default_lifecycle_delay")]
    pub lifecycle_delay_blocks: u64,
    /// The chain's crypto suite: `ed25519-blake3` (the default) or `sm2-sm3`.
    #[serde(default)]
    pub suite: shutong_types::Suite,
    /// The shortest retention window any node of this chain may prune to, in seconds: the
    /// departments' legal obligation, agreed at genesis. The default is 180 days, the
    /// Cybersecurity Law's six months; only a test chain sets less.
    #[serde(default = "default_retention_min_secs", skip_serializing_if = "is_default_retention")]
    pub retention_min_secs: u64,
}

/// The Cybersecurity Law's six months of logs (网络安全法 第二十一条), as 180 days.
pub const RETENTION_MIN_SECS_DEFAULT: u64 = 180 * 86_400;

fn default_retention_min_secs() -> u64 {
    RETENTION_MIN_SECS_DEFAULT
}

fn is_default_retention(secs: &u64) -> bool {
    *secs == RETENTION_MIN_SECS_DEFAULT
}

fn default_registration() -> String {
    "open".to_string()
}

fn default_lifecycle_delay() -> u64 {
    shutong_system_api::governance::LIFECYCLE_DELAY_BLOCKS_DEFAULT
}

fn default_upload_policy() -> String {
    policy::GOVERNANCE.to_string()
}

fn default_gas_schedule() -> u32 {
    shutong_vm::gas::CURRENT
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("cannot read genesis file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("genesis field {field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GenesisError {
    GenesisError::Invalid { field, reason: reason.into() }
}

impl Genesis {
    /// A genesis with the system contracts this binary carries, and a committee deciding by
    /// a majority of its organisations, on the suite of the validators' keys.
    pub fn new(
        chain_id: &str,
        genesis_time_ms: u64,
        validators: Vec<GenesisValidator>,
        committee: Vec<CommitteeMember>,
    ) -> Genesis {
        let suite = validators.first().map(|v| v.public_key.suite()).unwrap_or_default();
        let contracts = SYSTEM_CONTRACTS
            .iter()
            .map(|(name, code)| GenesisContract { name: name.to_string(), code_hash: Vm::code_hash(suite, code) })
            .collect();
        let mut genesis = Genesis {
            chain_id: chain_id.to_string(),
            genesis_time_ms,
            validators,
            committee,
            contracts,
            upload_policy: default_upload_policy(),
            gas_schedule: default_gas_schedule(),
            governance_threshold: 1,
            registration: default_registration(),
            lifecycle_delay_blocks: default_lifecycle_delay(),
            suite,
            retention_min_secs: RETENTION_MIN_SECS_DEFAULT,
        };
        genesis.governance_threshold = (genesis.committee_record().orgs() / 2 + 1) as u32;
        genesis
    }

    /// The committee as the governance contract keeps it.
    pub fn committee_record(&self) -> Committee {
        Committee {
            seats: self.committee.iter().map(|m| Seat { account: m.account.0, org: m.org.clone() }).collect(),
            threshold: self.governance_threshold,
        }
    }

    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let read = |reason: String| GenesisError::Read { path: path.display().to_string(), reason };
        let text = shutong_api::files::read_bounded(path, GENESIS_BYTES_MAX)
            .map_err(|e| read(e.to_string()))?
            .ok_or_else(|| read(format!("larger than {GENESIS_BYTES_MAX} bytes")))?;
        let genesis: Genesis = serde_json::from_str(&text).map_err(|e| read(e.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    pub fn validate(&self) -> Result<(), GenesisError> {
        let id = &self.chain_id;
        let id_ok = !id.is_empty()
            && id.len() <= CHAIN_ID_BYTES_MAX as usize
            && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !id_ok {
            return Err(invalid("chain_id", format!("{id:?} must be 1 to 64 of a-z A-Z 0-9 - _ .")));
        }
        if self.validators.is_empty() || self.validators.len() > shutong_types::limits::VALIDATORS_MAX as usize {
            let max = shutong_types::limits::VALIDATORS_MAX;
            return Err(invalid("validators", format!("{} validators; 1 to {max} are allowed", self.validators.len())));
        }
        let mut keys: Vec<PublicKey> = self.validators.iter().map(|v| v.public_key).collect();
        keys.sort();
        keys.dedup();
        if keys.len() != self.validators.len() {
            return Err(invalid("validators", "a public key appears twice"));
        }
        let committee = self.committee_record();
        if let Err(reason) = committee.check() {
            let field = if reason.starts_with("a threshold") { "governance_threshold" } else { "committee" };
            return Err(invalid(field, reason));
        }
        for member in &self.committee {
            let conflicting = self.committee.iter().find(|other| other.org == member.org && other.name != member.name);
            if let Some(other) = conflicting {
                return Err(invalid(
                    "committee",
                    format!("organisation {} is named both {:?} and {:?}", member.org, member.name, other.name),
                ));
            }
            if member.name.trim().is_empty() || member.name.len() > registry::ORG_NAME_BYTES_MAX as usize {
                return Err(invalid("committee", format!("organisation {}'s name must be 1 to 256 bytes", member.org)));
            }
        }
        if !["open", "approved"].contains(&self.registration.as_str()) {
            return Err(invalid("registration", format!("{:?} is not open or approved", self.registration)));
        }
        let (low, high) = shutong_system_api::governance::LIFECYCLE_DELAY_BLOCKS;
        if !(low..=high).contains(&self.lifecycle_delay_blocks) {
            return Err(invalid(
                "lifecycle_delay_blocks",
                format!("{} blocks; {low} to {high} are allowed", self.lifecycle_delay_blocks),
            ));
        }
        if let Some(v) = self.validators.iter().find(|v| v.public_key.suite() != self.suite) {
            return Err(invalid(
                "validators",
                format!("{} is an {} key, but the chain's suite is {}", v.public_key, v.public_key.suite(), self.suite),
            ));
        }
        if let Some(v) = self.validators.iter().find(|v| !v.public_key.is_point()) {
            return Err(invalid("validators", format!("{} is not an {} public key", v.public_key, self.suite)));
        }
        for v in &self.validators {
            let member = Member { key: v.public_key, transport: v.transport };
            member.peer_key(&self.chain_id).map_err(|e| invalid("validators", format!("{}: {e}", v.name)))?;
        }
        let mut transports: Vec<PublicKey> =
            self.validators.iter().filter_map(|v| v.transport.map(|t| t.key)).collect();
        transports.sort();
        transports.dedup();
        if transports.len() != self.validators.iter().filter(|v| v.transport.is_some()).count() {
            return Err(invalid("validators", "a transport key is bound to two validators"));
        }
        if ![policy::GOVERNANCE, policy::OPEN].contains(&self.upload_policy.as_str()) {
            return Err(invalid("upload_policy", format!("{:?} is not governance or open", self.upload_policy)));
        }
        if shutong_vm::gas::schedule(self.gas_schedule).is_none() {
            return Err(invalid("gas_schedule", format!("version {} is not known to this binary", self.gas_schedule)));
        }
        if !names::ALL.iter().all(|name| self.contracts.iter().any(|c| c.name == *name)) {
            return Err(invalid("contracts", format!("every system contract must be present: {:?}", names::ALL)));
        }
        for contract in &self.contracts {
            let Some((_, code)) = SYSTEM_CONTRACTS.iter().find(|(name, _)| *name == contract.name) else {
                return Err(invalid(
                    "contracts",
                    format!("this binary carries no system contract {:?}", contract.name),
                ));
            };
            let carried = Vm::code_hash(self.suite, code);
            if carried != contract.code_hash {
                return Err(invalid(
                    "contracts",
                    format!(
                        "genesis names {} code {} but this binary carries {carried}",
                        contract.name, contract.code_hash
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn validator_keys(&self) -> Vec<PublicKey> {
        self.validators.iter().map(|v| v.public_key).collect()
    }

    /// The hash of the canonical form of this genesis; block 0's parent.
    pub fn hash(&self) -> Hash {
        let mut out = Vec::new();
        write::str(&mut out, &self.chain_id);
        write::u64(&mut out, self.genesis_time_ms);
        write::seq(&mut out, &self.validators, |out, v| {
            write::str(out, &v.name);
            v.public_key.encode_to(out);
            write::option(out, &v.transport, |out, t| {
                t.key.encode_to(out);
                t.binding.encode_to(out);
            });
        });
        write::seq(&mut out, &self.committee, |out, m| {
            write::str(out, &m.org);
            write::str(out, &m.name);
            m.account.encode_to(out);
        });
        write::seq(&mut out, &self.contracts, |out, c| {
            write::str(out, &c.name);
            c.code_hash.encode_to(out);
        });
        write::str(&mut out, &self.upload_policy);
        write::u32(&mut out, self.gas_schedule);
        write::u32(&mut out, self.governance_threshold);
        write::str(&mut out, &self.registration);
        write::u64(&mut out, self.lifecycle_delay_blocks);
        self.suite.encode_to(&mut out);
        // Appended only when it is not the default, so that every chain made before the
        // field keeps its genesis hash.
        if self.retention_min_secs != RETENTION_MIN_SECS_DEFAULT {
            write::u64(&mut out, self.retention_min_secs);
        }
        Hash::of(self.suite, tag::GENESIS, &out)
    }

    /// The state at genesis: each system contract's code and instance, administered by the
    /// governance contract; the committee and the first validator set; the committee's
    /// departments in the registry; the registration policy and the lifecycle delay.
    pub fn state(&self) -> Writes {
        let mut writes = Writes::new();
        let governance = AccountId(Address::system(names::GOVERNANCE).0);
        for contract in &self.contracts {
            let (_, code) = SYSTEM_CONTRACTS.iter().find(|(name, _)| *name == contract.name).expect("validated");
            writes.insert(keyspace::code(&contract.code_hash), Some(code.to_vec()));
            let instance = Instance { code_hash: contract.code_hash, admin: governance, frozen: false };
            let address = Address::system(&contract.name);
            writes.insert(keyspace::instance(&address), Some(instance.encode()));
            let methods = system_methods(code);
            let code_info = CodeInfo {
                code_hash: contract.code_hash.0,
                uploader: [0; 32],
                height: 0,
                size: code.len() as u32,
                methods,
            };
            writes.insert(keyspace::code_info(&contract.code_hash), Some(code_info.encode()));
            let info =
                ContractInfo { creator: [0; 32], label: contract.name.clone(), created_height: 0, code_height: 0 };
            writes.insert(keyspace::contract_info(&address), Some(info.encode()));
        }
        writes.insert(keyspace::param(params::UPLOAD_POLICY), Some(self.upload_policy.clone().into_bytes()));
        writes.insert(keyspace::param(params::GAS_SCHEDULE), Some(self.gas_schedule.encode()));
        let transports = self.validators.iter().map(|v| v.transport.and_then(|t| t.to_record())).collect();
        crate::epochs::genesis_state(
            &mut writes,
            &self.chain_id,
            &self.committee_record(),
            &self.validator_keys(),
            transports,
        );
        let registry = Address::system(names::REGISTRY);
        for member in &self.committee {
            let org = registry::Org {
                id: member.org.clone(),
                name: member.name.clone(),
                kind: registry::OrgKind::Department,
                status: registry::OrgStatus::Active,
                admin: member.account.0,
                registered_height: 0,
                updated_height: 0,
            };
            writes.insert(keyspace::contract_storage(&registry, &registry::org_key(&member.org)), Some(org.encode()));
            let admin = keyspace::contract_storage(&registry, &registry::admin_key(&member.account.0));
            writes.entry(admin).or_insert_with(|| Some(member.org.clone().into_bytes()));
        }
        let policy = keyspace::contract_storage(&registry, registry::REGISTRATION_KEY);
        writes.insert(policy, Some(self.registration.clone().into_bytes()));
        let delay = keyspace::contract_storage(
            &Address::system(names::GOVERNANCE),
            &shutong_system_api::governance::param_key(shutong_system_api::governance::LIFECYCLE_DELAY_PARAM),
        );
        writes.insert(delay, Some(self.lifecycle_delay_blocks.to_string().into_bytes()));
        writes
    }

    /// Block 0.
    pub fn block(&self) -> Block {
        let header = BlockHeader {
            chain_id: self.chain_id.clone(),
            protocol_version: shutong_types::PROTOCOL_VERSION,
            suite: self.suite,
            height: 0,
            view: 0,
            parent: self.hash(),
            proposer: PublicKey::Ed25519([0; 32]),
            timestamp_ms: self.genesis_time_ms,
            txs_root: merkle_root::<[u8; 32]>(self.suite, &[]),
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            audit_root: Hash::ZERO,
            audit_size: 0,
            validator_set: validator_set_hash(self.suite, &self.validator_keys()),
        };
        Block { header, txs: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_types::Keypair;

    fn genesis() -> Genesis {
        let v = Keypair::from_seed("v").public();
        let committee = vec![CommitteeMember::new("office", "District Office", AccountId([1; 32]))];
        Genesis::new("test", 1, vec![GenesisValidator::new("v", v)], committee)
    }

    #[test]
    fn a_lowered_retention_minimum_is_part_of_the_genesis_hash_and_the_default_is_not_written() {
        let default = genesis();
        let json = serde_json::to_string(&default).unwrap();
        assert!(!json.contains("retention_min_secs"), "older genesis files stay as they were");
        let read: Genesis = serde_json::from_str(&json).unwrap();
        assert_eq!(read.retention_min_secs, RETENTION_MIN_SECS_DEFAULT);
        assert_eq!(read.hash(), default.hash());
        let test_chain = Genesis { retention_min_secs: 60, ..default.clone() };
        assert_ne!(test_chain.hash(), default.hash(), "an edited minimum is another chain");
        let read: Genesis = serde_json::from_str(&serde_json::to_string(&test_chain).unwrap()).unwrap();
        assert_eq!(read.retention_min_secs, 60);
    }

    #[test]
    fn the_suite_is_named_in_genesis_and_every_header() {
        let g = genesis();
        assert_eq!(g.block().header.suite, shutong_types::Suite::Ed25519Blake3);
        assert_eq!(g.block().header.protocol_version, shutong_types::PROTOCOL_VERSION);
        // A genesis file written before the field means ed25519-blake3.
        let mut json = serde_json::to_value(&g).unwrap();
        json.as_object_mut().unwrap().remove("suite");
        assert_eq!(serde_json::from_value::<Genesis>(json.clone()).unwrap(), g);
        json["suite"] = "sm2-sm3".into();
        let sm: Genesis = serde_json::from_value(json.clone()).unwrap();
        assert_ne!(sm.hash(), g.hash(), "the suite is part of the genesis hash");
        let err = sm.validate().unwrap_err().to_string();
        assert!(err.contains("is an ed25519-blake3 key, but the chain's suite is sm2-sm3"), "{err}");
        json["suite"] = "rsa".into();
        let err = serde_json::from_value::<Genesis>(json).unwrap_err().to_string();
        assert!(err.contains("unknown crypto suite \"rsa\"; one of ed25519-blake3, sm2-sm3"), "{err}");
        // A header naming a suite this codec does not know does not decode.
        let mut bytes = g.block().header.encode();
        let at = 4 + g.chain_id.len() + 4;
        bytes[at] = 9;
        assert!(<BlockHeader as shutong_types::Decode>::decode(&bytes).is_err());
    }

    #[test]
    fn an_sm_validator_enters_genesis_only_with_a_bound_transport_key() {
        use shutong_types::Suite;
        let keys: Vec<Keypair> = (0..2).map(|i| Keypair::from_seed_in(Suite::Sm2Sm3, &format!("sm-v{i}"))).collect();
        let transports: Vec<Keypair> = (0..2).map(|i| Keypair::from_seed(&format!("sm-t{i}"))).collect();
        let committee = vec![CommitteeMember::new("office", "District Office", AccountId([1; 32]))];
        let validators = |chain: &str, t: [usize; 2]| -> Vec<GenesisValidator> {
            keys.iter()
                .zip(t)
                .enumerate()
                .map(|(i, (k, t))| GenesisValidator {
                    name: format!("v{i}"),
                    public_key: k.public(),
                    transport: Some(Transport::bind(chain, k, &transports[t].public())),
                })
                .collect()
        };
        let g = Genesis::new("sm-chain", 1, validators("sm-chain", [0, 1]), committee.clone());
        assert_eq!(g.suite, Suite::Sm2Sm3);
        g.validate().unwrap();
        // The set at genesis carries the transport keys, in the keys' order.
        let state = shutong_vm::state::MemoryState(g.state().into_iter().filter_map(|(k, v)| Some((k, v?))).collect());
        let epoch = crate::epochs::validators_for(&state, 1).unwrap();
        let peers: Vec<PublicKey> = epoch.members().iter().map(|m| m.peer_key("sm-chain").unwrap()).collect();
        assert_eq!(peers, transports.iter().map(Keypair::public).collect::<Vec<_>>());
        // Without one, with a binding of another chain, or one key bound twice: refused.
        let mut unbound = g.clone();
        unbound.validators[1].transport = None;
        let err = unbound.validate().unwrap_err().to_string();
        assert!(err.contains("v1: validator key") && err.contains("has no transport key bound to it"), "{err}");
        let other = Genesis::new("sm-chain", 1, validators("other-chain", [0, 1]), committee.clone());
        let err = other.validate().unwrap_err().to_string();
        assert!(err.contains("is not bound to validator key"), "{err}");
        let twice = Genesis::new("sm-chain", 1, validators("sm-chain", [0, 0]), committee);
        let err = twice.validate().unwrap_err().to_string();
        assert!(err.contains("a transport key is bound to two validators"), "{err}");
        // Carried in the file and in the genesis hash.
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Genesis>(&json).unwrap(), g);
        assert_ne!(unbound.hash(), g.hash());
    }

    #[test]
    fn the_registry_address_contracts_carry_is_the_derived_one() {
        assert_eq!(Address::system(names::REGISTRY).0, names::REGISTRY_ADDRESS);
        assert_eq!(Address::system(names::GOVERNANCE).0, names::GOVERNANCE_ADDRESS);
        assert_eq!(Address::system(names::CATALOG).0, names::CATALOG_ADDRESS);
        assert_eq!(Address::system(names::AUTHZ).0, names::AUTHZ_ADDRESS);
        assert_eq!(Address::system(names::AUDIT).0, names::AUDIT_ADDRESS);
    }

    #[test]
    fn a_valid_genesis_passes_and_each_bad_field_is_named() {
        genesis().validate().unwrap();
        let mut g = genesis();
        g.chain_id = "bad id!".into();
        assert!(g.validate().unwrap_err().to_string().contains("chain_id"));
        let mut g = genesis();
        g.validators.push(g.validators[0].clone());
        assert!(g.validate().unwrap_err().to_string().contains("appears twice"));
        let mut g = genesis();
        g.committee.clear();
        assert!(g.validate().unwrap_err().to_string().contains("committee"));
        let mut g = genesis();
        g.governance_threshold = 2;
        assert!(g.validate().unwrap_err().to_string().contains("governance_threshold"));
        let mut g = genesis();
        g.committee.push(CommitteeMember::new("office", "Another Name", AccountId([2; 32])));
        assert!(g.validate().unwrap_err().to_string().contains("named both"));
        let mut g = genesis();
        g.registration = "anyone".into();
        assert!(g.validate().unwrap_err().to_string().contains("registration"));
        let mut g = genesis();
        g.contracts[0].code_hash = Hash::ZERO;
        assert!(g.validate().unwrap_err().to_string().contains("this binary carries"));
    }

    #[test]
    fn an_oversized_or_malformed_genesis_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("shutong-genesis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("genesis.json");
        std::fs::write(&path, vec![b' '; GENESIS_BYTES_MAX as usize + 1]).unwrap();
        assert!(Genesis::load(&path).unwrap_err().to_string().contains("larger than"));
        std::fs::write(&path, "{\"chain_id\": 5}").unwrap();
        assert!(matches!(Genesis::load(&path), Err(GenesisError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
