//! An enterprise deploying its own contract: the certificate-verification contract
//! (证明电子化, `contracts/cert-verify`). A licence issuer certifies a document's hash; a
//! bank later asks whether the document it was shown is the certified one, off the record
//! (a query) or on the record (a transaction whose question and answer become an audit-log
//! leaf).
//!
//! Under the `governance` upload policy the committee approves the code hash first; on a
//! testnet the genesis admin key can do that ([`approve_code`]); on a production chain the
//! committee votes (`shutong gov propose approve-code`).

use anyhow::Context;
use shutong_sdk::builder::{self, cert};
use shutong_sdk::{Signer, reads};
use shutong_types::{Address, Hash};

/// Joins the chain as an enterprise: registers organisation `org` with the signer as its
/// admin and a principal with the `deployer` role. Only registered principals may send
/// transactions (`docs/rpc.md`, "Access control"); a key that is not one yet may send its
/// own registration. Does nothing if the organisation is already there.
pub async fn join_enterprise(signer: &Signer, org: &str, name: &str) -> anyhow::Result<()> {
    use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
    if signer.client().read(reads::org(org)).await.is_ok() {
        return Ok(());
    }
    signer.execute(builder::register_org(org, name, OrgKind::Enterprise)).await?;
    let roles = role::ADMIN | role::DEPLOYER;
    let me = signer.account();
    signer.execute(builder::set_principal(org, &me, PrincipalKind::Person, roles, PrincipalStatus::Active)).await?;
    Ok(())
}

/// Approves `code` for upload, as the governance committee (seats of as many departments as
/// its threshold asks).
pub async fn approve_code(committee: &[Signer], code: &[u8]) -> anyhow::Result<Hash> {
    let seat = committee.first().context("a committee of no one approves nothing")?;
    let hash = builder::code_hash(seat.client().status().await?.suite, code);
    crate::decide(committee, shutong_sdk::system_api::governance::Action::ApproveCode { code_hash: hash.0 }).await?;
    Ok(hash)
}

/// Uploads `code` and instantiates it under `label`, the deployer being its admin (who may
/// migrate and freeze it) and, through `init`, its first issuer. Returns its address.
pub async fn deploy(deployer: &Signer, code: &[u8], label: &str) -> anyhow::Result<Address> {
    let uploader = deployer.clone().with_gas_limit(builder::upload_gas_limit(code.len()));
    let uploaded: [u8; 32] = uploader.execute_as(builder::upload_code(code)).await?;
    let suite = deployer.client().status().await?.suite;
    anyhow::ensure!(Hash(uploaded) == builder::code_hash(suite, code), "the chain named the code differently");
    let address = builder::instance_address(suite, &deployer.account(), label);
    let made: [u8; 32] =
        deployer.execute_as(builder::instantiate(&Hash(uploaded), label, &deployer.account(), &[])).await?;
    anyhow::ensure!(Address(made) == address, "the instance is not where its label puts it");
    let info = deployer.client().contract(&address).await?.context("the new contract is not on chain")?;
    anyhow::ensure!(info.admin == deployer.account(), "the deployer is not the contract's admin");
    Ok(address)
}

/// What the bank learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The certified document, asked off the record.
    pub genuine: bool,
    /// A forged document, asked off the record, and why it is refused.
    pub forged: (bool, String),
    /// The certified document asked on the record: the answer and its audit-log leaf.
    pub on_record: (bool, u64),
}

/// The issuer certifies `document` for `holder`; the bank checks it and a forgery.
pub async fn certify_and_check(
    issuer: &Signer,
    bank: &Signer,
    contract: &Address,
    holder: &str,
    document: &[u8],
) -> anyhow::Result<Checked> {
    let (holder_hash, digest) = (cert::digest(holder.as_bytes()), cert::digest(document));
    let valid_until = issuer.client().status().await?.timestamp_ms + 365 * 86_400_000;
    issuer.execute(cert::issue(contract, "lic-2026-001", "business-licence", holder_hash, digest, valid_until)).await?;

    let client = bank.client();
    let genuine = client.read(reads::certified(contract, "lic-2026-001", holder_hash, digest)).await?;
    let forged_digest = cert::digest(b"a forged licence");
    let forged = client.read(reads::certified(contract, "lic-2026-001", holder_hash, forged_digest)).await?;
    let recorded: cert::Answer = bank.execute_as(cert::verify(contract, "lic-2026-001", holder_hash, digest)).await?;
    Ok(Checked {
        genuine: genuine.valid,
        forged: (forged.valid, forged.reason),
        on_record: (recorded.valid, recorded.audit_index),
    })
}
