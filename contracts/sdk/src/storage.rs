//! Typed storage: single items and maps, stored in the codec's canonical encoding.
//!
//! ```ignore
//! const OWNER: Item<[u8; 32]> = Item::new(b"owner");
//! const CERTS: Map<String, Cert> = Map::new(b"cert/");
//! OWNER.save(&contract::caller());
//! let cert = CERTS.load(&id)?.ok_or_else(|| Error::new("no such certificate"))?;
//! ```
//!
//! A value that is stored but does not decode is reported as an error naming the key, never
//! silently treated as absent.

use crate::{storage_get, storage_remove, storage_scan, storage_set, Error};
use shutong_codec::{Decode, Encode};
use std::marker::PhantomData;

/// One value under a fixed key.
pub struct Item<T> {
    key: &'static [u8],
    marker: PhantomData<fn() -> T>,
}

impl<T> Item<T> {
    pub const fn new(key: &'static [u8]) -> Item<T> {
        Item { key, marker: PhantomData }
    }
}

impl<T: Encode + Decode> Item<T> {
    pub fn load(&self) -> Result<Option<T>, Error> {
        decode_stored(self.key, storage_get(self.key))
    }

    pub fn save(&self, value: &T) {
        storage_set(self.key, &value.encode())
    }

    pub fn remove(&self) {
        storage_remove(self.key)
    }

    pub fn exists(&self) -> bool {
        storage_get(self.key).is_some()
    }
}

/// How a map key becomes storage-key bytes. Fixed-size keys and strings sort as their bytes;
/// integers are big-endian so they sort by value.
pub trait MapKey {
    fn key_bytes(&self) -> Vec<u8>;
}

impl MapKey for String {
    fn key_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl MapKey for &str {
    fn key_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl MapKey for [u8; 32] {
    fn key_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl MapKey for u64 {
    fn key_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
}

impl MapKey for Vec<u8> {
    fn key_bytes(&self) -> Vec<u8> {
        self.clone()
    }
}

/// Values under a prefix, one per key.
pub struct Map<K, V> {
    prefix: &'static [u8],
    marker: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Map<K, V> {
    pub const fn new(prefix: &'static [u8]) -> Map<K, V> {
        Map { prefix, marker: PhantomData }
    }
}

impl<K: MapKey, V: Encode + Decode> Map<K, V> {
    fn full_key(&self, key: &K) -> Vec<u8> {
        let mut full = self.prefix.to_vec();
        full.extend_from_slice(&key.key_bytes());
        full
    }

    pub fn load(&self, key: &K) -> Result<Option<V>, Error> {
        let full = self.full_key(key);
        decode_stored(&full, storage_get(&full))
    }

    pub fn save(&self, key: &K, value: &V) {
        storage_set(&self.full_key(key), &value.encode())
    }

    pub fn remove(&self, key: &K) {
        storage_remove(&self.full_key(key))
    }

    pub fn has(&self, key: &K) -> bool {
        storage_get(&self.full_key(key)).is_some()
    }

    /// Up to `limit` (at most 256) entries after the key bytes `after`, in key order, each
    /// with its key bytes (without the map's prefix). Page with the last key returned.
    pub fn page(&self, after: Option<&[u8]>, limit: u32) -> Result<Vec<(Vec<u8>, V)>, Error> {
        let after_full = after.map(|a| {
            let mut full = self.prefix.to_vec();
            full.extend_from_slice(a);
            full
        });
        let entries = storage_scan(self.prefix, after_full.as_deref(), limit)?;
        let mut out = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let decoded = decode_stored(&key, Some(value))?.expect("a value was given");
            out.push((key[self.prefix.len()..].to_vec(), decoded));
        }
        Ok(out)
    }
}

fn decode_stored<T: Decode>(key: &[u8], bytes: Option<Vec<u8>>) -> Result<Option<T>, Error> {
    match bytes {
        None => Ok(None),
        Some(bytes) => T::decode(&bytes)
            .map(Some)
            .map_err(|e| Error(format!("stored value under {:?} is corrupt: {}", String::from_utf8_lossy(key), e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const COUNT: Item<u64> = Item::new(b"count");
    const NAMES: Map<u64, String> = Map::new(b"name/");

    #[test]
    fn items_and_maps_round_trip_and_page_in_key_order() {
        testing::reset();
        assert_eq!(COUNT.load(), Ok(None));
        COUNT.save(&7);
        assert_eq!(COUNT.load(), Ok(Some(7)));
        for i in [3u64, 1, 2, 300] {
            NAMES.save(&i, &format!("n{}", i));
        }
        crate::storage_set(b"other/1", b"x");
        let first = NAMES.page(None, 2).unwrap();
        assert_eq!(first.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(), vec!["n1", "n2"]);
        let after = first[1].0.clone();
        let rest = NAMES.page(Some(&after), 10).unwrap();
        assert_eq!(rest.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(), vec!["n3", "n300"]);
        NAMES.remove(&2);
        assert!(!NAMES.has(&2));
        COUNT.remove();
        assert!(!COUNT.exists());
    }

    #[test]
    fn a_corrupt_value_is_an_error_naming_its_key() {
        testing::reset();
        crate::storage_set(b"count", b"\x01");
        let err = COUNT.load().unwrap_err();
        assert!(err.0.contains("count") && err.0.contains("corrupt"), "{}", err.0);
    }
}
