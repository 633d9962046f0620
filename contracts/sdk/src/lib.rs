//! Shutong's guest-side contract SDK: host calls, entry points and errors for wasm contracts.
//!
//! A contract exports one function per method, each taking and returning nothing; the
//! [`entrypoints!`] macro writes those exports. Arguments arrive as canonical bytes
//! ([`input`]), results leave through [`set_output`], and a method that returns an
//! [`Error`] aborts the transaction with the error's message, which rolls back its writes.
//!
//! Off wasm32 the host calls go to an in-memory host ([`testing`]), so a contract's logic can
//! be unit-tested natively.

#![deny(unsafe_code)]

use std::fmt;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod alloc;
mod host;
pub mod storage;

/// Every contract built with this SDK allocates with [`alloc::Bump`] on wasm32.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: alloc::Bump = alloc::Bump::new();
pub use host::testing;
pub use storage::{Item, Map, MapKey};

/// Why a method refused. Its message becomes the receipt's abort message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn new<M: Into<String>>(message: M) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<shutong_codec::DecodeError> for Error {
    fn from(err: shutong_codec::DecodeError) -> Error {
        Error(format!("invalid arguments: {}", err))
    }
}

/// A method's result: its canonical output bytes, or a refusal.
pub type MethodResult = Result<Vec<u8>, Error>;

/// Lower-case hexadecimal of `bytes`, for error messages and event data.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

/// Reads the value stored under `key` in this contract's storage.
pub fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
    host::storage_get(key)
}

/// Reads the value stored under `key` in the storage of the contract at `address`, without
/// calling it (read-only; the caller must know that contract's storage layout).
pub fn storage_get_of(address: &[u8; 32], key: &[u8]) -> Option<Vec<u8>> {
    host::storage_get_of(address, key)
}

/// Stores `value` under `key` in this contract's storage.
pub fn storage_set(key: &[u8], value: &[u8]) {
    host::storage_set(key, value)
}

/// Removes `key` from this contract's storage.
pub fn storage_remove(key: &[u8]) {
    host::storage_remove(key)
}

/// Who called this method: the signing account for a transaction's own call, or the
/// calling contract's address when another contract called.
pub fn caller() -> [u8; 32] {
    host::caller()
}

/// The account that signed the transaction, however deep the call.
pub fn origin() -> [u8; 32] {
    host::origin()
}

/// This contract's own address.
pub fn self_address() -> [u8; 32] {
    host::self_address()
}

/// The consensus timestamp of the block being executed, in milliseconds.
pub fn block_time_ms() -> u64 {
    host::block_time_ms()
}

/// Up to `limit` (at most 256) entries of this contract's storage whose keys start with
/// `prefix` and sort after `after`, in key order. Gas is charged for the whole page.
pub fn storage_scan(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Error> {
    let bytes = host::storage_scan(prefix, after, limit);
    let mut r = shutong_codec::Reader::new(&bytes);
    let entries = r.seq("scan", 256, |r| Ok((r.byte_vec("scan.key", 1024)?, r.byte_vec("scan.value", 64 * 1024)?)))?;
    Ok(entries)
}

/// Appends `leaf` (at most 4 KiB) to the chain's audit log; returns its sequence number.
pub fn audit_append(leaf: &[u8]) -> u64 {
    host::audit_append(leaf)
}

/// The blake3 hash of `data`.
pub fn blake3(data: &[u8]) -> [u8; 32] {
    host::blake3(data)
}

/// Whether `signature` by `key` over `message` is a valid (strict) ed25519 signature.
pub fn ed25519_verify(key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> bool {
    host::ed25519_verify(key, signature, message)
}

/// The account id of an ed25519 public key (how every account is named).
pub fn account_of(key: &[u8; 32]) -> [u8; 32] {
    host::account_of(key)
}

/// The hash of `data` in the chain's suite (BLAKE3, or SM3 on an `sm2-sm3` chain), so one
/// contract artifact serves chains of both suites.
pub fn hash(data: &[u8]) -> [u8; 32] {
    host::hash(data)
}

/// Whether `signature` over `message` is valid under `key`, a public key in its canonical
/// encoding (suite byte, then the key) of the chain's suite; the node's own rules apply.
pub fn verify_signature(key: &[u8], signature: &[u8; 64], message: &[u8]) -> bool {
    host::verify_signature(key, signature, message)
}

/// The account id of a public key in its canonical encoding, or `None` if the bytes are no
/// key of the chain's suite.
pub fn account_of_key(key: &[u8]) -> Option<[u8; 32]> {
    host::account_of_key(key)
}

/// Why a call to another contract did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The host's code: -1 aborted, -2 out of gas, -3 trapped, -4 no such contract, -5 no
    /// such method, -6 frozen, -7 re-entrant (the callee is already on the call stack), -8
    /// calls nested too deep.
    pub code: i64,
    pub message: String,
}

impl From<CallError> for Error {
    fn from(err: CallError) -> Error {
        Error(format!("call failed ({}): {}", err.code, err.message))
    }
}

/// Calls `method` of the contract at `address` with `args`, forwarding at most `gas` (all
/// that is left if 0). The callee's writes stand only if it succeeds; the gas it used is
/// charged either way.
pub fn call(address: &[u8; 32], method: &str, args: &[u8], gas: u64) -> Result<Vec<u8>, CallError> {
    let (code, result) = host::call_contract(address, method, args, gas);
    if code >= 0 {
        Ok(result)
    } else {
        Err(CallError { code, message: String::from_utf8_lossy(&result).into_owned() })
    }
}

/// The height of the block being executed.
pub fn block_height() -> u64 {
    host::block_height()
}

/// Emits an event with `topic` and `data`.
pub fn emit_event(topic: &str, data: &[u8]) {
    host::emit_event(topic, data)
}

/// The method's argument bytes.
pub fn input() -> Vec<u8> {
    host::input()
}

/// Sets the method's output bytes.
pub fn set_output(data: &[u8]) {
    host::set_output(data)
}

/// Stops the transaction with `message`; its writes are rolled back.
pub fn abort(message: &str) -> ! {
    host::abort(message)
}

/// Runs a method: reads the input, calls `method`, and sets its output or aborts with its error.
pub fn dispatch(method: fn(&[u8]) -> MethodResult) {
    let args = input();
    match method(&args) {
        Ok(output) => set_output(&output),
        Err(err) => abort(&err.0),
    }
}

/// Exports each named function as a contract method: `entrypoints!(register, get);` exports
/// `register` and `get`, which dispatch to the functions of those names in the calling module.
#[macro_export]
macro_rules! entrypoints {
    ($($name:ident),* $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        mod __shutong_exports {
            $(
                #[export_name = stringify!($name)]
                pub extern "C" fn $name() {
                    $crate::dispatch(super::$name)
                }
            )*
        }
    };
}
