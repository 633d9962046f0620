//! The host calls. On wasm32 they are imports from the `shutong` module, whose semantics are
//! in `docs/host-abi.md`; elsewhere they go to an in-memory host for native unit tests.

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod imp {
    mod sys {
        #[link(wasm_import_module = "shutong")]
        extern "C" {
            pub fn input_len() -> u32;
            pub fn input_read(ptr: *mut u8);
            pub fn output_set(ptr: *const u8, len: u32);
            pub fn storage_get(key_ptr: *const u8, key_len: u32) -> i64;
            pub fn result_read(ptr: *mut u8);
            pub fn storage_set(key_ptr: *const u8, key_len: u32, value_ptr: *const u8, value_len: u32);
            pub fn storage_remove(key_ptr: *const u8, key_len: u32);
            pub fn caller(ptr: *mut u8);
            pub fn block_height() -> u64;
            pub fn emit_event(topic_ptr: *const u8, topic_len: u32, data_ptr: *const u8, data_len: u32);
            pub fn abort(ptr: *const u8, len: u32) -> !;
        }
    }

    pub fn input() -> Vec<u8> {
        // SAFETY: the host writes exactly `input_len()` bytes at the pointer.
        unsafe {
            let mut buf = vec![0u8; sys::input_len() as usize];
            sys::input_read(buf.as_mut_ptr());
            buf
        }
    }

    pub fn set_output(data: &[u8]) {
        // SAFETY: the host reads `len` bytes from a live slice.
        unsafe { sys::output_set(data.as_ptr(), data.len() as u32) }
    }

    pub fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
        // SAFETY: the host reads the key slice, then writes exactly the returned length.
        unsafe {
            let len = sys::storage_get(key.as_ptr(), key.len() as u32);
            if len < 0 {
                return None;
            }
            let mut buf = vec![0u8; len as usize];
            sys::result_read(buf.as_mut_ptr());
            Some(buf)
        }
    }

    pub fn storage_set(key: &[u8], value: &[u8]) {
        // SAFETY: the host reads both live slices.
        unsafe { sys::storage_set(key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32) }
    }

    pub fn storage_remove(key: &[u8]) {
        // SAFETY: the host reads the live slice.
        unsafe { sys::storage_remove(key.as_ptr(), key.len() as u32) }
    }

    pub fn caller() -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: the host writes 32 bytes into `out`.
        unsafe { sys::caller(out.as_mut_ptr()) };
        out
    }

    pub fn block_height() -> u64 {
        // SAFETY: no memory is passed.
        unsafe { sys::block_height() }
    }

    pub fn emit_event(topic: &str, data: &[u8]) {
        // SAFETY: the host reads both live slices.
        unsafe { sys::emit_event(topic.as_ptr(), topic.len() as u32, data.as_ptr(), data.len() as u32) }
    }

    pub fn abort(message: &str) -> ! {
        // SAFETY: the host reads the live slice and never returns.
        unsafe { sys::abort(message.as_ptr(), message.len() as u32) }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::testing::HOST;

    pub fn input() -> Vec<u8> {
        HOST.with(|h| h.borrow().input.clone())
    }

    pub fn set_output(data: &[u8]) {
        HOST.with(|h| h.borrow_mut().output = data.to_vec())
    }

    pub fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
        HOST.with(|h| h.borrow().storage.get(key).cloned())
    }

    pub fn storage_set(key: &[u8], value: &[u8]) {
        HOST.with(|h| {
            h.borrow_mut().storage.insert(key.to_vec(), value.to_vec());
        })
    }

    pub fn storage_remove(key: &[u8]) {
        HOST.with(|h| {
            h.borrow_mut().storage.remove(key);
        })
    }

    pub fn caller() -> [u8; 32] {
        HOST.with(|h| h.borrow().caller)
    }

    pub fn block_height() -> u64 {
        HOST.with(|h| h.borrow().height)
    }

    pub fn emit_event(topic: &str, data: &[u8]) {
        HOST.with(|h| h.borrow_mut().events.push((topic.to_string(), data.to_vec())))
    }

    pub fn abort(message: &str) -> ! {
        panic!("contract aborted: {}", message)
    }
}

pub use imp::*;

/// The in-memory host used off wasm32: set the caller and height, call a method function
/// directly, then inspect storage and events.
pub mod testing {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Debug, Default)]
    pub struct Host {
        pub storage: BTreeMap<Vec<u8>, Vec<u8>>,
        pub events: Vec<(String, Vec<u8>)>,
        pub caller: [u8; 32],
        pub height: u64,
        pub input: Vec<u8>,
        pub output: Vec<u8>,
    }

    thread_local! {
        pub static HOST: RefCell<Host> = RefCell::new(Host::default());
    }

    /// Sets the caller and block height seen by the next calls.
    pub fn set_context(caller: [u8; 32], height: u64) {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            h.caller = caller;
            h.height = height;
        })
    }

    /// Takes the events emitted so far.
    pub fn take_events() -> Vec<(String, Vec<u8>)> {
        HOST.with(|h| std::mem::take(&mut h.borrow_mut().events))
    }
}
