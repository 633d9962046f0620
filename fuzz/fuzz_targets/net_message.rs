//! Everything a peer can send over the consensus protocol (votes, certificates, proposals,
//! blocks, sync requests and answers, batches, state snapshots): decoding never panics or
//! over-allocates, whatever decodes is canonical, and checking a snapshot's manifest or
//! chunk never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_consensus::Message;
use shutong_consensus::wire::NetMessage;
use shutong_types::{Decode, Encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = NetMessage::decode(data) {
        assert_eq!(message.encode(), data, "a network message decoded from non-canonical bytes");
        match &message {
            NetMessage::Batch(batch) => {
                let _ = batch.digest();
            }
            NetMessage::SnapshotOffer { manifest, .. } => {
                let suite = shutong_types::Suite::Ed25519Blake3;
                let _ = shutong_types::snapshot::verify_manifest(suite, &shutong_types::Hash::ZERO, manifest);
                let entries = vec![(b"key".to_vec(), b"value".to_vec())];
                let _ = shutong_types::snapshot::verify_chunk(suite, manifest, 0, &entries);
            }
            _ => {}
        }
    }
    if let Ok(message) = Message::decode(data) {
        assert_eq!(message.encode(), data, "a consensus message decoded from non-canonical bytes");
    }
});
