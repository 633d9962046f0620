//! Shutong's canonical binary codec: one encoding per value, shared by the node and the contracts.
//!
//! The rules, which every signed or hashed structure in Shutong follows:
//!
//! - Unsigned integers are fixed-width little-endian (`u8`, `u16`, `u32`, `u64`).
//! - `bool` is one byte, `0` or `1`; any other byte is rejected.
//! - Byte strings and UTF-8 strings are a `u32` length followed by the bytes. Every length
//!   has a maximum chosen by the type that reads it; a longer one is rejected before any
//!   allocation, and so is a length larger than the bytes that remain.
//! - Fixed-size byte arrays (hashes, keys, signatures) are their bytes, with no length.
//! - Sequences are a `u32` count followed by the elements, with a maximum count.
//! - `Option<T>` is a tag byte (`0` none, `1` some) followed by the value.
//! - Enums are a `u8` tag followed by the variant's fields.
//! - A value is decoded from a whole buffer: trailing bytes are an error.
//!
//! Since every form has exactly one encoding, `decode(encode(v)) == v` and
//! `encode(decode(b)) == b` for every `b` that decodes. This crate has no dependencies and
//! builds with Rust 1.63 (edition 2021) so that contracts compiled for wasm32 with Debian's
//! toolchain share it by path.

#![forbid(unsafe_code)]

use std::fmt;

/// Why a buffer did not decode. Every variant names the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ended while `needed` more bytes were expected at `offset`.
    UnexpectedEnd { offset: usize, needed: usize },
    /// The value ended at `offset` but the buffer holds `extra` more bytes.
    TrailingBytes { offset: usize, extra: usize },
    /// A length or count of `len` is above the maximum `max` for `what`.
    TooLong { what: &'static str, len: u64, max: u64 },
    /// A tag byte `tag` is not one of the values `what` allows.
    InvalidTag { what: &'static str, tag: u8 },
    /// A string field `what` does not hold valid UTF-8.
    InvalidUtf8 { what: &'static str },
    /// A value decoded but breaks a rule of its type (for example a zero where none is allowed).
    Invalid { what: &'static str, reason: &'static str },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd { offset, needed } => {
                write!(f, "input ends at byte {offset} but {needed} more bytes were expected")
            }
            DecodeError::TrailingBytes { offset, extra } => {
                write!(f, "{extra} trailing bytes after the value, which ends at byte {offset}")
            }
            DecodeError::TooLong { what, len, max } => {
                write!(f, "{what} has length {len}, above the maximum {max}")
            }
            DecodeError::InvalidTag { what, tag } => write!(f, "{what} has invalid tag {tag}"),
            DecodeError::InvalidUtf8 { what } => write!(f, "{what} is not valid utf-8"),
            DecodeError::Invalid { what, reason } => write!(f, "{what} is invalid: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A value with a canonical encoding.
pub trait Encode {
    /// Appends the value's canonical encoding to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The value's canonical encoding.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from `reader`, leaving the reader after it.
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must fill `bytes` exactly.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = Self::decode_from(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// A cursor over a buffer being decoded.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { offset: self.offset, extra: self.remaining() })
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEnd { offset: self.offset, needed: n });
        }
        let slice = &self.bytes[self.offset..self.offset + n];
        self.offset += n;
        Ok(slice)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }

    /// Reads a `u32` length or count and checks it against `max`.
    pub fn len(&mut self, what: &'static str, max: u32) -> Result<usize, DecodeError> {
        let len = self.u32()?;
        if len > max {
            return Err(DecodeError::TooLong { what, len: u64::from(len), max: u64::from(max) });
        }
        Ok(len as usize)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes, borrowing it.
    pub fn bytes(&mut self, what: &'static str, max: u32) -> Result<&'a [u8], DecodeError> {
        let len = self.len(what, max)?;
        self.take(len)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn byte_vec(&mut self, what: &'static str, max: u32) -> Result<Vec<u8>, DecodeError> {
        Ok(self.bytes(what, max)?.to_vec())
    }

    /// Reads a length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string(&mut self, what: &'static str, max: u32) -> Result<String, DecodeError> {
        let bytes = self.bytes(what, max)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8 { what }),
        }
    }

    /// Reads a counted sequence of at most `max` elements. The count is also checked
    /// against the bytes that remain, so a forged count cannot reserve memory.
    pub fn seq<T, F>(&mut self, what: &'static str, max: u32, mut item: F) -> Result<Vec<T>, DecodeError>
    where
        F: FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    {
        let count = self.len(what, max)?;
        if count > self.remaining() {
            return Err(DecodeError::UnexpectedEnd { offset: self.offset, needed: count });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Reads an option tag, then the value if the tag is `1`.
    pub fn option<T, F>(&mut self, what: &'static str, item: F) -> Result<Option<T>, DecodeError>
    where
        F: FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
    {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(item(self)?)),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }
}

/// Writers for the canonical forms. Lengths above `u32::MAX` cannot occur: every field has a
/// maximum far below it, which the encoder asserts.
pub mod write {
    pub fn u8(out: &mut Vec<u8>, v: u8) {
        out.push(v);
    }

    pub fn u16(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bool(out: &mut Vec<u8>, v: bool) {
        out.push(u8::from(v));
    }

    pub fn len(out: &mut Vec<u8>, len: usize) {
        assert!(len <= u32::MAX as usize, "length {len} does not fit the codec's u32 prefix");
        u32(out, len as u32);
    }

    pub fn bytes(out: &mut Vec<u8>, v: &[u8]) {
        len(out, v.len());
        out.extend_from_slice(v);
    }

    pub fn str(out: &mut Vec<u8>, v: &str) {
        bytes(out, v.as_bytes());
    }

    pub fn seq<T, F: FnMut(&mut Vec<u8>, &T)>(out: &mut Vec<u8>, items: &[T], mut item: F) {
        len(out, items.len());
        for v in items {
            item(out, v);
        }
    }

    pub fn option<T, F: FnOnce(&mut Vec<u8>, &T)>(out: &mut Vec<u8>, v: &Option<T>, item: F) {
        match v {
            None => out.push(0),
            Some(inner) => {
                out.push(1);
                item(out, inner);
            }
        }
    }
}

macro_rules! int_codec {
    ($($t:ident),*) => {$(
        impl Encode for $t {
            fn encode_to(&self, out: &mut Vec<u8>) {
                write::$t(out, *self);
            }
        }
        impl Decode for $t {
            fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                reader.$t()
            }
        }
    )*};
}

int_codec!(u8, u16, u32, u64);

impl Encode for bool {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::bool(out, *self);
    }
}

impl Decode for bool {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.bool("bool")
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> Decode for [u8; N] {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.array()
    }
}

/// The longest string or byte string decoded on its own (a contract storage value's limit).
pub const STANDALONE_BYTES_MAX: u32 = 64 * 1024;

impl Encode for String {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, self);
    }
}

impl Decode for String {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.string("string", STANDALONE_BYTES_MAX)
    }
}

/// The most elements a sequence decoded on its own may have.
pub const STANDALONE_ITEMS_MAX: u32 = 64 * 1024;

/// A sequence: a `u32` count, then the elements. For `Vec<u8>` this is exactly
/// [`write::bytes`]'s form.
impl<T: Encode> Encode for Vec<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::len(out, self.len());
        for item in self {
            item.encode_to(out);
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.seq("sequence", STANDALONE_ITEMS_MAX, T::decode_from)
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::option(out, self, |out, v| v.encode_to(out));
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.option("option", T::decode_from)
    }
}

/// Declares a struct whose canonical form is its fields in order, each in its own canonical
/// form. Contracts' argument types use it, so a new type needs no hand-written codec.
///
/// ```
/// shutong_codec::codec_struct! {
///     /// A point.
///     #[derive(Debug, Clone, PartialEq, Eq)]
///     pub struct Point { pub x: u32, pub label: String }
/// }
/// use shutong_codec::{Decode, Encode};
/// let p = Point { x: 1, label: "a".into() };
/// assert_eq!(Point::decode(&p.encode()).unwrap(), p);
/// ```
#[macro_export]
macro_rules! codec_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                $( $crate::Encode::encode_to(&self.$field, out); )*
            }
        }

        impl $crate::Decode for $name {
            fn decode_from(reader: &mut $crate::Reader<'_>) -> Result<Self, $crate::DecodeError> {
                Ok($name { $( $field: <$ty as $crate::Decode>::decode_from(reader)?, )* })
            }
        }
    };
}

/// Declares a field-less enum encoded as one byte, with a name per variant.
///
/// ```
/// shutong_codec::codec_enum! {
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Colour { Red = 0 => "red", Blue = 1 => "blue" }
/// }
/// assert_eq!(Colour::from_name("blue"), Some(Colour::Blue));
/// assert_eq!(Colour::Red.name(), "red");
/// ```
#[macro_export]
macro_rules! codec_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $tag:literal => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        pub enum $name { $($(#[$vmeta])* $variant = $tag),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn from_name(name: &str) -> Option<$name> {
                match name { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl $crate::Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.push(*self as u8);
            }
        }

        impl $crate::Decode for $name {
            fn decode_from(reader: &mut $crate::Reader<'_>) -> Result<Self, $crate::DecodeError> {
                match reader.u8()? {
                    $($tag => Ok($name::$variant),)*
                    tag => Err($crate::DecodeError::InvalidTag { what: stringify!($name), tag }),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_fixed_width_little_endian() {
        assert_eq!(0x0102_0304u32.encode(), vec![4, 3, 2, 1]);
        assert_eq!(u64::decode(&[1, 0, 0, 0, 0, 0, 0, 0]), Ok(1));
        assert_eq!(u64::decode(&[1, 0, 0]), Err(DecodeError::UnexpectedEnd { offset: 0, needed: 8 }));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        assert_eq!(u8::decode(&[7, 0]), Err(DecodeError::TrailingBytes { offset: 1, extra: 1 }));
    }

    #[test]
    fn bool_accepts_only_zero_and_one() {
        assert_eq!(bool::decode(&[1]), Ok(true));
        assert_eq!(bool::decode(&[2]), Err(DecodeError::InvalidTag { what: "bool", tag: 2 }));
    }

    #[test]
    fn lengths_above_the_maximum_are_rejected_before_reading() {
        let mut buf = Vec::new();
        write::bytes(&mut buf, &[9; 10]);
        let mut reader = Reader::new(&buf);
        assert_eq!(reader.bytes("field", 4), Err(DecodeError::TooLong { what: "field", len: 10, max: 4 }));
    }

    #[test]
    fn a_length_beyond_the_input_fails_without_allocating() {
        let buf = u32::MAX.encode();
        let mut reader = Reader::new(&buf);
        let err = reader.seq("items", u32::MAX, |r| r.u8()).unwrap_err();
        assert_eq!(err, DecodeError::UnexpectedEnd { offset: 4, needed: u32::MAX as usize });
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut buf = Vec::new();
        write::bytes(&mut buf, &[0xff, 0xfe]);
        let mut reader = Reader::new(&buf);
        assert_eq!(reader.string("name", 16), Err(DecodeError::InvalidUtf8 { what: "name" }));
    }

    #[test]
    fn option_tags_other_than_zero_and_one_are_rejected() {
        let mut reader = Reader::new(&[3]);
        assert_eq!(reader.option("maybe", |r| r.u8()), Err(DecodeError::InvalidTag { what: "maybe", tag: 3 }));
    }
}
