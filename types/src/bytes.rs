//! Fixed-size byte newtypes: canonical codec (raw bytes), hex display and hex serde.

/// Why a hex string is not a valid fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("not hex: {0}")]
    NotHex(String),
    #[error("expected {expected} bytes, got {actual}")]
    WrongLength { expected: usize, actual: usize },
}

#[doc(hidden)]
pub fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(text).map_err(|e| HexError::NotHex(e.to_string()))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| HexError::WrongLength { expected: N, actual: bytes.len() })
}

/// Implements codec, hex `Display`/`Debug`/`FromStr` and hex serde for a `[u8; N]` newtype.
#[macro_export]
macro_rules! bytes_newtype {
    ($name:ident, $n:expr) => {
        impl $name {
            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }
        impl shutong_codec::Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
        }
        impl shutong_codec::Decode for $name {
            fn decode_from(reader: &mut shutong_codec::Reader<'_>) -> Result<Self, shutong_codec::DecodeError> {
                Ok($name(reader.array()?))
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::HexError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::bytes::parse_hex::<$n>(text).map($name)
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
