//! blake3 hashing with a domain-separation tag for every structure, and binary Merkle roots.

use crate::bytes_newtype;

/// A 32-byte blake3 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

bytes_newtype!(Hash, 32);

/// Domain-separation tags. Changing one is a format change: every hash of that structure
/// changes, and so do the golden vectors.
pub mod tag {
    pub const TX: &str = "shutong/tx/v1";
    pub const BLOCK_HEADER: &str = "shutong/block-header/v1";
    pub const ACCOUNT: &str = "shutong/account/v1";
    pub const CONTRACT_ADDRESS: &str = "shutong/contract-address/v1";
    pub const CONTRACT_INSTANCE: &str = "shutong/contract-instance/v1";
    pub const CODE: &str = "shutong/code/v1";
    pub const RECEIPT: &str = "shutong/receipt/v1";
    pub const MERKLE_LEAF: &str = "shutong/merkle-leaf/v1";
    pub const MERKLE_NODE: &str = "shutong/merkle-node/v1";
    pub const MERKLE_EMPTY: &str = "shutong/merkle-empty/v1";
    pub const STATE_WRITE: &str = "shutong/state-write/v1";
    pub const STATE_ROOT: &str = "shutong/state-root/v1";
    pub const VALIDATOR_SET: &str = "shutong/validator-set/v1";
    pub const GENESIS: &str = "shutong/genesis/v1";
    pub const BATCH: &str = "shutong/batch/v1";
}

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// Hashes `data` under the domain `tag` (blake3's key-derivation mode, whose context
    /// string is exactly a domain separator).
    pub fn of(tag: &str, data: &[u8]) -> Hash {
        let mut hasher = blake3::Hasher::new_derive_key(tag);
        hasher.update(data);
        Hash(*hasher.finalize().as_bytes())
    }

    /// Hashes the concatenation of `parts` under `tag`.
    pub fn of_parts(tag: &str, parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new_derive_key(tag);
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }
}

/// The root of a binary Merkle tree over `leaves` in the manner of RFC 9162: leaves and inner
/// nodes are hashed under different tags, and an odd node is promoted, not duplicated, so no
/// two lists share a root. The empty list has its own tagged root.
pub fn merkle_root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
    if leaves.is_empty() {
        return Hash::of(tag::MERKLE_EMPTY, &[]);
    }
    let mut level: Vec<Hash> = leaves.iter().map(|leaf| Hash::of(tag::MERKLE_LEAF, leaf.as_ref())).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => Hash::of_parts(tag::MERKLE_NODE, &[&left.0, &right.0]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_separate_domains() {
        assert_ne!(Hash::of(tag::TX, b"x"), Hash::of(tag::BLOCK_HEADER, b"x"));
    }

    #[test]
    fn merkle_root_depends_on_order_and_count() {
        let a = merkle_root(&[b"a".as_slice(), b"b"]);
        let b = merkle_root(&[b"b".as_slice(), b"a"]);
        let c = merkle_root(&[b"a".as_slice(), b"b", b"b"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(merkle_root::<&[u8]>(&[]), merkle_root(&[b"".as_slice()]));
    }
}
