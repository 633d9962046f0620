//! The crypto suite a chain runs, chosen once at genesis (`docs/adr/013-crypto-suites.md`):
//! `ed25519-blake3`, or `sm2-sm3` (SM2 signatures, SM3 hashes, SM4 key files; see
//! [`crate::sm`]). Every hash takes the suite as an argument ([`crate::Hash::of`]) and every
//! key names its own ([`crate::PublicKey::suite`]), so one process can check chains of both
//! suites and never mixes them.

shutong_codec::codec_enum! {
    /// A chain's crypto suite, chosen once at genesis and named by every header
    /// (`docs/adr/013-crypto-suites.md`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum Suite {
        #[default]
        Ed25519Blake3 = 0 => "ed25519-blake3",
        Sm2Sm3 = 1 => "sm2-sm3",
    }
}

impl serde::Serialize for Suite {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Suite {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Suite, D::Error> {
        let name = String::deserialize(deserializer)?;
        let names: Vec<&str> = Suite::ALL.iter().map(|s| s.name()).collect();
        Suite::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown crypto suite {name:?}; one of {}", names.join(", ")))
        })
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
