//! Everything a peer can send over the consensus protocol (votes, certificates, proposals,
//! blocks, sync requests and answers, batches): decoding never panics or over-allocates,
//! and whatever decodes is canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_consensus::Message;
use shutong_consensus::wire::NetMessage;
use shutong_types::{Decode, Encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = NetMessage::decode(data) {
        assert_eq!(message.encode(), data, "a network message decoded from non-canonical bytes");
        if let NetMessage::Batch(batch) = &message {
            let _ = batch.digest();
        }
    }
    if let Ok(message) = Message::decode(data) {
        assert_eq!(message.encode(), data, "a consensus message decoded from non-canonical bytes");
    }
});
