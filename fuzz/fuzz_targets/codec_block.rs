//! Blocks, headers and certificates from peers: decoding never panics or over-allocates,
//! and whatever decodes is canonical, so a block's hash names one encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_types::{Block, BlockHeader, Certificate, Decode, Encode, PublicKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data) {
        assert_eq!(block.encode(), data, "a block decoded from non-canonical bytes");
        let _ = block.header.hash();
        let _ = Block::txs_root(shutong_types::Suite::Ed25519Blake3, &block.txs);
    }
    if let Ok(header) = BlockHeader::decode(data) {
        assert_eq!(header.encode(), data, "a header decoded from non-canonical bytes");
    }
    if let Ok(certificate) = Certificate::decode(data) {
        assert_eq!(certificate.encode(), data, "a certificate decoded from non-canonical bytes");
        // Verifying a hostile certificate against a set of four must refuse it, not panic.
        let validators: Vec<PublicKey> = (0u8..4).map(|i| PublicKey::Ed25519([i; 32])).collect();
        assert!(certificate.verify("fuzz", &validators, 3).is_err());
    }
});
