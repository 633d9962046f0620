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
            pub fn storage_get_of(addr_ptr: *const u8, key_ptr: *const u8, key_len: u32) -> i64;
            pub fn result_read(ptr: *mut u8);
            pub fn storage_set(key_ptr: *const u8, key_len: u32, value_ptr: *const u8, value_len: u32);
            pub fn storage_remove(key_ptr: *const u8, key_len: u32);
            pub fn caller(ptr: *mut u8);
            pub fn block_height() -> u64;
            pub fn emit_event(topic_ptr: *const u8, topic_len: u32, data_ptr: *const u8, data_len: u32);
            pub fn abort(ptr: *const u8, len: u32) -> !;
            pub fn origin(ptr: *mut u8);
            pub fn self_address(ptr: *mut u8);
            pub fn block_time_ms() -> u64;
            pub fn result_len() -> u32;
            pub fn storage_scan(
                prefix_ptr: *const u8,
                prefix_len: u32,
                after_ptr: *const u8,
                after_len: u32,
                limit: u32,
            ) -> u32;
            pub fn audit_append(ptr: *const u8, len: u32) -> u64;
            pub fn blake3(ptr: *const u8, len: u32, out_ptr: *mut u8);
            pub fn ed25519_verify(key_ptr: *const u8, sig_ptr: *const u8, msg_ptr: *const u8, msg_len: u32) -> u32;
            pub fn account_of(key_ptr: *const u8, out_ptr: *mut u8);
            pub fn hash(ptr: *const u8, len: u32, out_ptr: *mut u8);
            pub fn verify_signature(
                key_ptr: *const u8,
                key_len: u32,
                sig_ptr: *const u8,
                msg_ptr: *const u8,
                msg_len: u32,
            ) -> u32;
            pub fn account_of_key(key_ptr: *const u8, key_len: u32, out_ptr: *mut u8) -> u32;
            pub fn call_contract(
                addr_ptr: *const u8,
                method_ptr: *const u8,
                method_len: u32,
                args_ptr: *const u8,
                args_len: u32,
                gas: u64,
            ) -> i64;
        }
    }

    fn result() -> Vec<u8> {
        // SAFETY: the host writes exactly `result_len()` bytes at the pointer.
        unsafe {
            let mut buf = vec![0u8; sys::result_len() as usize];
            sys::result_read(buf.as_mut_ptr());
            buf
        }
    }

    fn account(read: unsafe extern "C" fn(*mut u8)) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: the host writes 32 bytes into `out`.
        unsafe { read(out.as_mut_ptr()) };
        out
    }

    pub fn origin() -> [u8; 32] {
        account(sys::origin)
    }

    pub fn self_address() -> [u8; 32] {
        account(sys::self_address)
    }

    pub fn block_time_ms() -> u64 {
        // SAFETY: no memory is passed.
        unsafe { sys::block_time_ms() }
    }

    pub fn storage_scan(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<u8> {
        let (after_ptr, after_len) = match after {
            Some(after) => (after.as_ptr(), after.len() as u32),
            None => (prefix.as_ptr(), u32::MAX),
        };
        // SAFETY: the host reads the live slices; `u32::MAX` means no `after` and is not read.
        unsafe { sys::storage_scan(prefix.as_ptr(), prefix.len() as u32, after_ptr, after_len, limit) };
        result()
    }

    pub fn audit_append(leaf: &[u8]) -> u64 {
        // SAFETY: the host reads the live slice.
        unsafe { sys::audit_append(leaf.as_ptr(), leaf.len() as u32) }
    }

    pub fn blake3(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: the host reads the live slice and writes 32 bytes into `out`.
        unsafe { sys::blake3(data.as_ptr(), data.len() as u32, out.as_mut_ptr()) };
        out
    }

    pub fn ed25519_verify(key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> bool {
        // SAFETY: the host reads the live arrays and slice.
        unsafe { sys::ed25519_verify(key.as_ptr(), signature.as_ptr(), message.as_ptr(), message.len() as u32) == 1 }
    }

    pub fn account_of(key: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: the host reads 32 bytes of `key` and writes 32 bytes into `out`.
        unsafe { sys::account_of(key.as_ptr(), out.as_mut_ptr()) };
        out
    }

    pub fn hash(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: the host reads the live slice and writes 32 bytes into `out`.
        unsafe { sys::hash(data.as_ptr(), data.len() as u32, out.as_mut_ptr()) };
        out
    }

    pub fn verify_signature(key: &[u8], signature: &[u8; 64], message: &[u8]) -> bool {
        // SAFETY: the host reads the live slices and array.
        unsafe {
            sys::verify_signature(
                key.as_ptr(),
                key.len() as u32,
                signature.as_ptr(),
                message.as_ptr(),
                message.len() as u32,
            ) == 1
        }
    }

    pub fn account_of_key(key: &[u8]) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        // SAFETY: the host reads the live slice and writes 32 bytes into `out` when it returns 1.
        let known = unsafe { sys::account_of_key(key.as_ptr(), key.len() as u32, out.as_mut_ptr()) };
        if known == 1 {
            Some(out)
        } else {
            None
        }
    }

    pub fn call_contract(address: &[u8; 32], method: &str, args: &[u8], gas: u64) -> (i64, Vec<u8>) {
        // SAFETY: the host reads the live array and slices.
        let code = unsafe {
            sys::call_contract(
                address.as_ptr(),
                method.as_ptr(),
                method.len() as u32,
                args.as_ptr(),
                args.len() as u32,
                gas,
            )
        };
        (code, result())
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

    pub fn storage_get_of(address: &[u8; 32], key: &[u8]) -> Option<Vec<u8>> {
        // SAFETY: the host reads the address and key, then writes exactly the returned length.
        unsafe {
            let len = sys::storage_get_of(address.as_ptr(), key.as_ptr(), key.len() as u32);
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

    pub fn storage_get_of(address: &[u8; 32], key: &[u8]) -> Option<Vec<u8>> {
        let handler = HOST.with(|h| h.borrow().read_handler);
        match handler {
            Some(handler) => handler(address, key),
            None => panic!("the native test host has no other contracts' storage: set testing::Host::read_handler"),
        }
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

    pub fn origin() -> [u8; 32] {
        HOST.with(|h| h.borrow().origin)
    }

    pub fn self_address() -> [u8; 32] {
        HOST.with(|h| h.borrow().address)
    }

    pub fn block_time_ms() -> u64 {
        HOST.with(|h| h.borrow().time_ms)
    }

    pub fn storage_scan(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<u8> {
        HOST.with(|h| {
            let h = h.borrow();
            let mut entries: Vec<(&Vec<u8>, &Vec<u8>)> = h
                .storage
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| after.map_or(true, |a| k.as_slice() > a))
                .take(limit as usize)
                .collect();
            let mut out = Vec::new();
            shutong_codec::write::u32(&mut out, entries.len() as u32);
            for (k, v) in entries.drain(..) {
                shutong_codec::write::bytes(&mut out, k);
                shutong_codec::write::bytes(&mut out, v);
            }
            out
        })
    }

    pub fn audit_append(leaf: &[u8]) -> u64 {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            h.audit.push(leaf.to_vec());
            h.audit.len() as u64 - 1
        })
    }

    pub fn blake3(data: &[u8]) -> [u8; 32] {
        let hash = HOST.with(|h| h.borrow().blake3);
        match hash {
            Some(hash) => hash(data),
            None => panic!("the native test host has no blake3: set testing::Host::blake3, or test in the VM"),
        }
    }

    pub fn ed25519_verify(key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> bool {
        let verify = HOST.with(|h| h.borrow().ed25519_verify);
        match verify {
            Some(verify) => verify(key, signature, message),
            None => panic!("the native test host has no ed25519: set testing::Host::ed25519_verify, or test in the VM"),
        }
    }

    pub fn account_of(key: &[u8; 32]) -> [u8; 32] {
        let derive = HOST.with(|h| h.borrow().account_of);
        match derive {
            Some(derive) => derive(key),
            None => panic!(
                "the native test host has no account derivation: set testing::Host::account_of, or test in the VM"
            ),
        }
    }

    pub fn hash(data: &[u8]) -> [u8; 32] {
        let hash = HOST.with(|h| h.borrow().hash);
        match hash {
            Some(hash) => hash(data),
            None => panic!("the native test host has no hash: set testing::Host::hash, or test in the VM"),
        }
    }

    pub fn verify_signature(key: &[u8], signature: &[u8; 64], message: &[u8]) -> bool {
        let verify = HOST.with(|h| h.borrow().verify_signature);
        match verify {
            Some(verify) => verify(key, signature, message),
            None => {
                panic!("the native test host has no signatures: set testing::Host::verify_signature, or test in the VM")
            }
        }
    }

    pub fn account_of_key(key: &[u8]) -> Option<[u8; 32]> {
        let derive = HOST.with(|h| h.borrow().account_of_key);
        match derive {
            Some(derive) => derive(key),
            None => panic!(
                "the native test host has no account derivation: set testing::Host::account_of_key, or test in the VM"
            ),
        }
    }

    pub fn call_contract(address: &[u8; 32], method: &str, args: &[u8], _gas: u64) -> (i64, Vec<u8>) {
        let handler = HOST.with(|h| h.borrow().call_handler);
        match handler {
            Some(handler) => handler(address, method, args),
            None => panic!("the native test host has no other contracts: set testing::Host::call_handler"),
        }
    }
}

pub use imp::*;

/// The in-memory host used off wasm32: set the caller and height, call a method function
/// directly, then inspect storage and events.
pub mod testing {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A cross-contract call's stand-in: (address, method, args) to the host's return code
    /// and result, as `call_contract` gives them.
    pub type CallHandler = fn(&[u8; 32], &str, &[u8]) -> (i64, Vec<u8>);

    /// Another contract's storage, for `storage_get_of`: (address, key) to the value.
    pub type ReadHandler = fn(&[u8; 32], &[u8]) -> Option<Vec<u8>>;

    #[derive(Default)]
    pub struct Host {
        pub storage: BTreeMap<Vec<u8>, Vec<u8>>,
        pub events: Vec<(String, Vec<u8>)>,
        pub audit: Vec<Vec<u8>>,
        pub caller: [u8; 32],
        pub origin: [u8; 32],
        pub address: [u8; 32],
        pub height: u64,
        pub time_ms: u64,
        pub input: Vec<u8>,
        pub output: Vec<u8>,
        /// The contracts' toolchain cannot fetch crates, so the native host has no crypto of
        /// its own: a test that needs it plugs in an implementation.
        pub blake3: Option<fn(&[u8]) -> [u8; 32]>,
        pub ed25519_verify: Option<fn(&[u8; 32], &[u8; 64], &[u8]) -> bool>,
        pub account_of: Option<fn(&[u8; 32]) -> [u8; 32]>,
        pub hash: Option<fn(&[u8]) -> [u8; 32]>,
        pub verify_signature: Option<fn(&[u8], &[u8; 64], &[u8]) -> bool>,
        pub account_of_key: Option<fn(&[u8]) -> Option<[u8; 32]>>,
        pub call_handler: Option<CallHandler>,
        pub read_handler: Option<ReadHandler>,
    }

    impl std::fmt::Debug for Host {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Host")
                .field("storage", &self.storage.len())
                .field("events", &self.events.len())
                .field("audit", &self.audit.len())
                .field("height", &self.height)
                .finish()
        }
    }

    thread_local! {
        pub static HOST: RefCell<Host> = RefCell::new(Host::default());
    }

    /// Sets the caller (also the origin) and block height seen by the next calls.
    pub fn set_context(caller: [u8; 32], height: u64) {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            h.caller = caller;
            h.origin = caller;
            h.height = height;
        })
    }

    /// Sets the consensus time seen by the next calls.
    pub fn set_time_ms(time_ms: u64) {
        HOST.with(|h| h.borrow_mut().time_ms = time_ms)
    }

    /// Changes the host in place (crypto stand-ins, call handler, addresses).
    pub fn with_host<R>(f: impl FnOnce(&mut Host) -> R) -> R {
        HOST.with(|h| f(&mut h.borrow_mut()))
    }

    /// Clears storage, events and audit leaves, keeping the context.
    pub fn reset() {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            h.storage.clear();
            h.events.clear();
            h.audit.clear();
        })
    }

    /// Takes the audit leaves appended so far.
    pub fn take_audit() -> Vec<Vec<u8>> {
        HOST.with(|h| std::mem::take(&mut h.borrow_mut().audit))
    }

    /// Takes the events emitted so far.
    pub fn take_events() -> Vec<(String, Vec<u8>)> {
        HOST.with(|h| std::mem::take(&mut h.borrow_mut().events))
    }
}
