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

mod host;
pub use host::testing;

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

/// Reads the value stored under `key` in this contract's storage.
pub fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
    host::storage_get(key)
}

/// Stores `value` under `key` in this contract's storage.
pub fn storage_set(key: &[u8], value: &[u8]) {
    host::storage_set(key, value)
}

/// Removes `key` from this contract's storage.
pub fn storage_remove(key: &[u8]) {
    host::storage_remove(key)
}

/// The account that called this method.
pub fn caller() -> [u8; 32] {
    host::caller()
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
