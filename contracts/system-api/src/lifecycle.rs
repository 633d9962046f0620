//! The contract lifecycle: upload code, instantiate it, migrate an instance to new code,
//! freeze and unfreeze. The node implements these natively at the address
//! `Address::system(names::LIFECYCLE)`; this module is the shared form of their arguments
//! and of the code and contract metadata they record.
//!
//! Rules (the node enforces them; `docs/contracts.md` lists each refusal):
//! - upload: the code passes the VM's checks; under the `governance` upload policy its hash
//!   must first be approved by a governance admin (`governance.approve_code`);
//! - instantiate: of uploaded code, under a label unique to the creator; the address is
//!   derived from (creator, label); an `init` method, if the code has one, runs with the
//!   given arguments and the instance exists only if it succeeds;
//! - migrate: by the instance's admin only, to uploaded code, not while frozen; a `migrate`
//!   method of the new code, if any, runs and the migration stands only if it succeeds;
//! - freeze / unfreeze: by the instance's admin only; calls to a frozen contract fail;
//! - set_admin: by the instance's admin only, to another account;
//! - the acting account is the immediate caller: the transaction's signer, or the governance
//!   contract when the node carries out a committee decision. The system contracts'
//!   admin is the governance contract, so only committee decisions touch them; the committee
//!   may also freeze and unfreeze any other contract, and a contract it froze stays frozen
//!   until it unfreezes it.

use shutong_codec::{write, Decode, DecodeError, Encode, Reader};

/// The longest label an instance may have.
pub const LABEL_BYTES_MAX: u32 = 64;
/// The most methods recorded for one code.
pub const METHODS_MAX: u32 = 1024;
pub const METHOD_BYTES_MAX: u32 = 64;
/// The largest argument list handed to `init` or `migrate`.
pub const INIT_ARGS_BYTES_MAX: u32 = 64 * 1024;
/// The largest code.
pub const CODE_BYTES_MAX: u32 = 512 * 1024;

/// Methods of the lifecycle.
pub mod methods {
    pub const UPLOAD: &str = "upload";
    pub const INSTANTIATE: &str = "instantiate";
    pub const MIGRATE: &str = "migrate";
    pub const FREEZE: &str = "freeze";
    pub const UNFREEZE: &str = "unfreeze";
    pub const SET_ADMIN: &str = "set_admin";
    pub const ALL: [&str; 6] = [UPLOAD, INSTANTIATE, MIGRATE, FREEZE, UNFREEZE, SET_ADMIN];
}

/// Who may upload code.
pub mod policy {
    /// A governance admin must approve the code hash first (the production setting).
    pub const GOVERNANCE: &str = "governance";
    /// Anyone may upload (development chains).
    pub const OPEN: &str = "open";
}

/// Arguments of `upload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadCode {
    pub code: Vec<u8>,
}

/// Arguments of `instantiate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instantiate {
    pub code_hash: [u8; 32],
    pub label: String,
    /// The account that may migrate, freeze and unfreeze the instance.
    pub admin: [u8; 32],
    /// Handed to the code's `init` method, if it has one.
    pub args: Vec<u8>,
}

/// Arguments of `migrate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrate {
    pub contract: [u8; 32],
    pub code_hash: [u8; 32],
    /// Handed to the new code's `migrate` method, if it has one.
    pub args: Vec<u8>,
}

/// Arguments of `freeze` and `unfreeze`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractRef {
    pub contract: [u8; 32],
}

shutong_codec::codec_struct! {
    /// Arguments of `set_admin`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SetAdmin {
        pub contract: [u8; 32],
        pub admin: [u8; 32],
    }
}

/// What the chain records about uploaded code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInfo {
    pub code_hash: [u8; 32],
    pub uploader: [u8; 32],
    pub height: u64,
    pub size: u32,
    pub methods: Vec<String>,
}

/// What the chain records about an instance beyond its code and admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractInfo {
    pub creator: [u8; 32],
    pub label: String,
    pub created_height: u64,
    /// The height of the last migration (the creation height if none).
    pub code_height: u64,
}

impl Encode for UploadCode {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::bytes(out, &self.code);
    }
}

impl Decode for UploadCode {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(UploadCode { code: r.byte_vec("upload.code", CODE_BYTES_MAX)? })
    }
}

impl Encode for Instantiate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.code_hash.encode_to(out);
        write::str(out, &self.label);
        self.admin.encode_to(out);
        write::bytes(out, &self.args);
    }
}

impl Decode for Instantiate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Instantiate {
            code_hash: r.array()?,
            label: r.string("instantiate.label", LABEL_BYTES_MAX)?,
            admin: r.array()?,
            args: r.byte_vec("instantiate.args", INIT_ARGS_BYTES_MAX)?,
        })
    }
}

impl Encode for Migrate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.contract.encode_to(out);
        self.code_hash.encode_to(out);
        write::bytes(out, &self.args);
    }
}

impl Decode for Migrate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Migrate {
            contract: r.array()?,
            code_hash: r.array()?,
            args: r.byte_vec("migrate.args", INIT_ARGS_BYTES_MAX)?,
        })
    }
}

impl Encode for ContractRef {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.contract.encode_to(out);
    }
}

impl Decode for ContractRef {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ContractRef { contract: r.array()? })
    }
}

impl Encode for CodeInfo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.code_hash.encode_to(out);
        self.uploader.encode_to(out);
        write::u64(out, self.height);
        write::u32(out, self.size);
        write::seq(out, &self.methods, |out, m| write::str(out, m));
    }
}

impl Decode for CodeInfo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CodeInfo {
            code_hash: r.array()?,
            uploader: r.array()?,
            height: r.u64()?,
            size: r.u32()?,
            methods: r.seq("code_info.methods", METHODS_MAX, |r| r.string("code_info.method", METHOD_BYTES_MAX))?,
        })
    }
}

impl Encode for ContractInfo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.creator.encode_to(out);
        write::str(out, &self.label);
        write::u64(out, self.created_height);
        write::u64(out, self.code_height);
    }
}

impl Decode for ContractInfo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ContractInfo {
            creator: r.array()?,
            label: r.string("contract_info.label", LABEL_BYTES_MAX)?,
            created_height: r.u64()?,
            code_height: r.u64()?,
        })
    }
}
