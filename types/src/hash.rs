//! Hashing with a domain-separation tag for every structure, under the chain's suite (BLAKE3
//! or SM3), and binary Merkle roots.

use crate::bytes_newtype;
use crate::suite::Suite;

/// A 32-byte digest: BLAKE3 or SM3, as the chain's suite says.
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
    /// A data subject's reference, digested under an organisation's secret key.
    pub const SUBJECT_REF: &str = "shutong/subject-ref/v1";
}

/// The plain digest of a stream of bytes under the suite's hash, with no domain tag: BLAKE3,
/// or SM3 (so that an SM chain's files are digested with SM algorithms only).
#[derive(Clone)]
pub enum FileHasher {
    Blake3(Box<blake3::Hasher>),
    Sm3(sm3::Sm3),
}

impl std::fmt::Debug for FileHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileHasher::Blake3(_) => "FileHasher(BLAKE3)",
            FileHasher::Sm3(_) => "FileHasher(SM3)",
        })
    }
}

impl FileHasher {
    pub fn new(suite: Suite) -> FileHasher {
        match suite {
            Suite::Ed25519Blake3 => FileHasher::Blake3(Box::default()),
            Suite::Sm2Sm3 => FileHasher::Sm3(<sm3::Sm3 as sm3::Digest>::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            FileHasher::Blake3(hasher) => {
                hasher.update(data);
            }
            FileHasher::Sm3(hasher) => sm3::Digest::update(hasher, data),
        }
    }

    pub fn finalize(self) -> Hash {
        match self {
            FileHasher::Blake3(hasher) => Hash(*hasher.finalize().as_bytes()),
            FileHasher::Sm3(hasher) => Hash(sm3::Digest::finalize(hasher).into()),
        }
    }
}

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// Hashes `data` under the domain `tag` with the suite's hash: BLAKE3 in its
    /// key-derivation mode (whose context string is exactly a domain separator), or
    /// SM3(`tag` as the codec writes a string ‖ `data`), whose length prefix keeps every
    /// (tag, data) pair apart.
    pub fn of(suite: Suite, tag: &str, data: &[u8]) -> Hash {
        Hash::of_parts(suite, tag, &[data])
    }

    /// Hashes the concatenation of `parts` under `tag`.
    pub fn of_parts(suite: Suite, tag: &str, parts: &[&[u8]]) -> Hash {
        match suite {
            Suite::Ed25519Blake3 => {
                let mut hasher = blake3::Hasher::new_derive_key(tag);
                for part in parts {
                    hasher.update(part);
                }
                Hash(*hasher.finalize().as_bytes())
            }
            Suite::Sm2Sm3 => {
                let prefix = (tag.len() as u32).to_le_bytes();
                let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 2);
                all.push(&prefix);
                all.push(tag.as_bytes());
                all.extend_from_slice(parts);
                Hash(crate::sm::sm3_parts(&all))
            }
        }
    }
}

impl Hash {
    /// A keyed digest of `data` under `tag`: what may go on chain in place of a guessable
    /// value, such as a data subject's identity number (`docs/domain.md`: keyed digests of
    /// subject references only). BLAKE3's keyed mode, or HMAC-SM3, over the length-prefixed
    /// tag and the data; without `key` nobody can test a guess against it.
    pub fn keyed(suite: Suite, key: &[u8; 32], tag: &str, data: &[u8]) -> Hash {
        let prefix = (tag.len() as u32).to_le_bytes();
        match suite {
            Suite::Ed25519Blake3 => {
                let mut hasher = blake3::Hasher::new_keyed(key);
                hasher.update(&prefix).update(tag.as_bytes()).update(data);
                Hash(*hasher.finalize().as_bytes())
            }
            Suite::Sm2Sm3 => Hash(crate::sm::hmac_sm3(key, &[&prefix, tag.as_bytes(), data])),
        }
    }
}

/// The root of a binary Merkle tree over `leaves` in the manner of RFC 9162: leaves and inner
/// nodes are hashed under different tags, and an odd node is promoted, not duplicated, so no
/// two lists share a root. The empty list has its own tagged root.
pub fn merkle_root<T: AsRef<[u8]>>(suite: Suite, leaves: &[T]) -> Hash {
    if leaves.is_empty() {
        return Hash::of(suite, tag::MERKLE_EMPTY, &[]);
    }
    let mut level: Vec<Hash> = leaves.iter().map(|leaf| Hash::of(suite, tag::MERKLE_LEAF, leaf.as_ref())).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => Hash::of_parts(suite, tag::MERKLE_NODE, &[&left.0, &right.0]),
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
    fn tags_and_suites_separate_domains() {
        for &suite in Suite::ALL {
            assert_ne!(Hash::of(suite, tag::TX, b"x"), Hash::of(suite, tag::BLOCK_HEADER, b"x"));
            // The tag's length prefix: moving a byte between tag and data changes the hash.
            assert_ne!(Hash::of(suite, "ab", b"c"), Hash::of(suite, "a", b"bc"));
            assert_eq!(Hash::of_parts(suite, tag::TX, &[b"a", b"", b"bc"]), Hash::of(suite, tag::TX, b"abc"));
        }
        assert_ne!(Hash::of(Suite::Ed25519Blake3, tag::TX, b"x"), Hash::of(Suite::Sm2Sm3, tag::TX, b"x"));
    }

    #[test]
    fn keyed_digests_depend_on_the_key_and_follow_the_suite() {
        let digest = |suite, key: u8, data: &[u8]| Hash::keyed(suite, &[key; 32], tag::SUBJECT_REF, data);
        for &suite in Suite::ALL {
            assert_ne!(digest(suite, 1, b"310101199001011234"), digest(suite, 2, b"310101199001011234"));
            assert_ne!(digest(suite, 1, b"310101199001011234"), digest(suite, 1, b"310101199001011235"));
        }
        let expected = crate::sm::hmac_sm3(&[1; 32], &[&22u32.to_le_bytes(), tag::SUBJECT_REF.as_bytes(), b"x"]);
        assert_eq!(digest(Suite::Sm2Sm3, 1, b"x").0, expected);
        assert_ne!(digest(Suite::Sm2Sm3, 1, b"x"), digest(Suite::Ed25519Blake3, 1, b"x"));
    }

    #[test]
    fn the_sm3_domain_is_sm3_of_the_encoded_tag_and_the_data() {
        let expected = crate::sm::sm3(&[&4u32.to_le_bytes()[..], b"test", b"data"].concat());
        assert_eq!(Hash::of(Suite::Sm2Sm3, "test", b"data").0, expected);
    }

    #[test]
    fn merkle_root_depends_on_order_and_count() {
        for &suite in Suite::ALL {
            let a = merkle_root(suite, &[b"a".as_slice(), b"b"]);
            let b = merkle_root(suite, &[b"b".as_slice(), b"a"]);
            let c = merkle_root(suite, &[b"a".as_slice(), b"b", b"b"]);
            assert_ne!(a, b);
            assert_ne!(a, c);
            assert_ne!(merkle_root::<&[u8]>(suite, &[]), merkle_root(suite, &[b"".as_slice()]));
        }
    }
}
