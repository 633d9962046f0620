//! Transaction bytes, as a client or a peer sends them: decoding never panics or
//! over-allocates, and whatever decodes is canonical (it encodes back to exactly the bytes it
//! came from, so one transaction has one id and one signed message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_types::{Decode, Encode, SignedTransaction, Transaction};

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = SignedTransaction::decode(data) {
        assert_eq!(tx.encode(), data, "a signed transaction decoded from non-canonical bytes");
        // Checking the signature of hostile bytes is part of admission: it must only say no,
        // under either suite (an SM2 key's point and signature ranges are checked too).
        for suite in shutong_types::Suite::ALL {
            let _ = tx.verify(*suite);
        }
    }
    if let Ok(tx) = Transaction::decode(data) {
        assert_eq!(tx.encode(), data, "a transaction decoded from non-canonical bytes");
    }
});
