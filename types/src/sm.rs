//! The SM (国密) primitives of the `sm2-sm3` suite, in the one encoding the chain uses:
//! SM2 signatures (GB/T 32918.2), SM3 (GB/T 32905), HMAC-SM3 and PBKDF2-HMAC-SM3, and SM4
//! (GB/T 32907) in GCM mode (the construction of RFC 8998).
//!
//! All curve and cipher arithmetic is RustCrypto's (`sm2`, `sm3`, `sm4`, `aes-gcm`'s generic
//! GCM); this module fixes the encodings and names every refusal. `tests/openssl.rs` checks
//! it against a second implementation, Debian's OpenSSL 3.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hmac::Mac;
use sm2::dsa::signature::{Signer as _, Verifier as _};
use sm3::Digest as _;

/// The signer's distinguishing id in SM2's Z value: one constant for the whole chain, the
/// default of GM/T 0009 (`1234567812345678`), which OpenSSL and the cipher machines use too.
pub const SM2_SIGNER_ID: &str = "1234567812345678";

/// Bytes of a compressed SEC1 SM2 public key, the one encoding the chain accepts.
pub const SM2_PUBLIC_KEY_BYTES: usize = 33;

/// The order n of the SM2 curve's base point (GB/T 32918.5), big-endian.
const ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x72, 0x03, 0xDF,
    0x6B, 0x21, 0xC6, 0x05, 0x2B, 0x53, 0xBB, 0xF4, 0x09, 0x39, 0xD5, 0x41, 0x23,
];

/// Why SM2 bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Sm2Error {
    #[error("an SM2 secret must be in 1..n-1 (GB/T 32918.1 6.1)")]
    SecretOutOfRange,
    #[error("an SM2 public key must be compressed SEC1 (33 bytes starting 02 or 03), found first byte {0:#04x}")]
    NotCompressed(u8),
    #[error("the SM2 public key is not a point of the curve")]
    NotOnCurve,
    #[error("SM2 signature's r is not in 1..n-1")]
    ROutOfRange,
    #[error("SM2 signature's s is not in 1..n-1")]
    SOutOfRange,
    #[error("SM2 signature's r + s is n")]
    RPlusSIsOrder,
    #[error("the SM2 signature does not verify")]
    BadSignature,
}

/// Whether big-endian `value` is in 1..n-1.
fn in_scalar_range(value: &[u8]) -> bool {
    value.iter().any(|b| *b != 0) && value < ORDER.as_slice()
}

/// An SM2 signing key, with its verifying key (and so its Z value) computed once.
#[derive(Clone)]
pub struct Sm2SigningKey {
    inner: sm2::dsa::SigningKey,
}

impl std::fmt::Debug for Sm2SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sm2SigningKey({})", hex::encode(self.public_key()))
    }
}

impl Sm2SigningKey {
    /// The key of secret `d`, which must be in 1..n-2 (1 + d must be invertible).
    pub fn from_secret(secret: &[u8; 32]) -> Result<Sm2SigningKey, Sm2Error> {
        let mut order_less_one = ORDER;
        order_less_one[31] -= 1;
        if !in_scalar_range(secret) || *secret == order_less_one {
            return Err(Sm2Error::SecretOutOfRange);
        }
        let inner = sm2::dsa::SigningKey::from_slice(SM2_SIGNER_ID, secret).map_err(|_| Sm2Error::SecretOutOfRange)?;
        Ok(Sm2SigningKey { inner })
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Sm2SigningKey {
        use rand::RngCore;
        loop {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            if let Ok(key) = Sm2SigningKey::from_secret(&secret) {
                return key;
            }
        }
    }

    pub fn secret(&self) -> [u8; 32] {
        self.inner.to_bytes().into()
    }

    /// The public key, compressed SEC1.
    pub fn public_key(&self) -> [u8; SM2_PUBLIC_KEY_BYTES] {
        use sm2::elliptic_curve::sec1::ToSec1Point as _;
        let point = self.inner.verifying_key().as_affine().to_sec1_point(true);
        point.as_bytes().try_into().expect("a compressed SEC1 point of a 256-bit curve is 33 bytes")
    }

    /// SM2DSA over SM3(Z ‖ message), r ‖ s; the nonce is derived as in RFC 6979, so the
    /// same key and message always give the same signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let signature: sm2::dsa::Signature = self.inner.sign(message);
        signature.to_bytes().into()
    }
}

/// An SM2 public key checked to be on the curve, with its Z value computed.
#[derive(Clone)]
pub struct Sm2VerifyingKey {
    inner: sm2::dsa::VerifyingKey,
}

impl std::fmt::Debug for Sm2VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm2VerifyingKey")
    }
}

impl Sm2VerifyingKey {
    /// Decodes a compressed SEC1 key; the uncompressed and hybrid forms are refused so that
    /// each key has one encoding (and one account id). The identity has no 33-byte form.
    pub fn from_compressed(bytes: &[u8; SM2_PUBLIC_KEY_BYTES]) -> Result<Sm2VerifyingKey, Sm2Error> {
        if bytes[0] != 0x02 && bytes[0] != 0x03 {
            return Err(Sm2Error::NotCompressed(bytes[0]));
        }
        let inner = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_SIGNER_ID, bytes).map_err(|_| Sm2Error::NotOnCurve)?;
        Ok(Sm2VerifyingKey { inner })
    }

    /// Verifies r ‖ s over `message` per GB/T 32918.2 7.1, after checking the encoding:
    /// r and s in 1..n-1 and r + s ≠ n, each refused by name.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), Sm2Error> {
        let parsed = check_signature(signature)?;
        self.inner.verify(message, &parsed).map_err(|_| Sm2Error::BadSignature)
    }
}

/// Checks the fixed encoding of an SM2 signature: r ‖ s, each in 1..n-1, r + s ≠ n.
pub fn check_signature(signature: &[u8; 64]) -> Result<sm2::dsa::Signature, Sm2Error> {
    let (r, s) = signature.split_at(32);
    if !in_scalar_range(r) {
        return Err(Sm2Error::ROutOfRange);
    }
    if !in_scalar_range(s) {
        return Err(Sm2Error::SOutOfRange);
    }
    let parsed = sm2::dsa::Signature::from_slice(signature).map_err(|_| Sm2Error::ROutOfRange)?;
    if bool::from((*parsed.r() + *parsed.s()).is_zero()) {
        return Err(Sm2Error::RPlusSIsOrder);
    }
    Ok(parsed)
}

/// SM3 of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    sm3::Sm3::digest(data).into()
}

/// SM3 of the concatenation of `parts`.
pub fn sm3_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = sm3::Sm3::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HMAC-SM3 (RFC 2104 over SM3's 64-byte block) of the concatenation of `parts`.
pub fn hmac_sm3(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <hmac::Hmac<sm3::Sm3> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// PBKDF2 (RFC 8018) with HMAC-SM3, filling `out`.
pub fn pbkdf2_hmac_sm3(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sm3::Sm3>(password, salt, rounds, out);
}

/// SM4 in GCM mode with a 96-bit nonce and a 128-bit tag (RFC 8998's SM4-GCM).
type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, U12>;

/// Why SM4-GCM refused to open a sealed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SM4-GCM: the tag does not match (wrong key, or the data or its context was altered)")]
pub struct Sm4Error;

/// Encrypts and authenticates `plaintext`, binding `aad`; the output ends with the tag.
pub fn sm4_gcm_seal(key: &[u8; 16], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Sm4Gcm::new(key.into());
    cipher.encrypt(nonce.into(), Payload { msg: plaintext, aad }).expect("SM4-GCM seals any message under 64 GiB")
}

/// Checks the tag and decrypts what [`sm4_gcm_seal`] made.
pub fn sm4_gcm_open(key: &[u8; 16], nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Sm4Error> {
    let cipher = Sm4Gcm::new(key.into());
    cipher.decrypt(nonce.into(), Payload { msg: sealed, aad }).map_err(|_| Sm4Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(text: &str) -> [u8; N] {
        hex::decode(text).expect("hex").try_into().expect("length")
    }

    #[test]
    fn sm3_matches_the_standard_examples() {
        // GB/T 32905-2016 Appendix A, examples 1 and 2.
        assert_eq!(hex::encode(sm3(b"abc")), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        assert_eq!(
            hex::encode(sm3(&b"abcd".repeat(16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
        assert_eq!(sm3_parts(&[b"ab", b"", b"c"]), sm3(b"abc"));
    }

    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        // RFC 8998 Appendix A.1.
        let key: [u8; 16] = unhex("0123456789abcdeffedcba9876543210");
        let nonce: [u8; 12] = unhex("00001234567800000000abcd");
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").expect("hex");
        let plaintext = hex::decode(
            "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd\
             eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
        )
        .expect("hex");
        let sealed = sm4_gcm_seal(&key, &nonce, &aad, &plaintext);
        assert_eq!(
            hex::encode(&sealed),
            "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735\
             d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d\
             83de3541e4c2b58177e065a9bf7b62ec"
        );
        assert_eq!(sm4_gcm_open(&key, &nonce, &aad, &sealed), Ok(plaintext));
        let mut altered = sealed.clone();
        altered[0] ^= 1;
        assert_eq!(sm4_gcm_open(&key, &nonce, &aad, &altered), Err(Sm4Error));
        assert_eq!(sm4_gcm_open(&key, &nonce, b"other context", &sealed), Err(Sm4Error));
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_message() {
        let key = Sm2SigningKey::from_secret(&[7; 32]).expect("in range");
        let public = Sm2VerifyingKey::from_compressed(&key.public_key()).expect("on the curve");
        let signature = key.sign(b"message");
        assert_eq!(signature, key.sign(b"message"), "RFC 6979 nonces: deterministic");
        public.verify(b"message", &signature).expect("verifies");
        assert_eq!(public.verify(b"messagf", &signature), Err(Sm2Error::BadSignature));
        let other = Sm2SigningKey::from_secret(&[8; 32]).expect("in range");
        let other = Sm2VerifyingKey::from_compressed(&other.public_key()).expect("on the curve");
        assert_eq!(other.verify(b"message", &signature), Err(Sm2Error::BadSignature));
    }

    #[test]
    fn non_canonical_signatures_are_refused_by_name() {
        let key = Sm2SigningKey::from_secret(&[7; 32]).expect("in range");
        let public = Sm2VerifyingKey::from_compressed(&key.public_key()).expect("on the curve");
        let signature = key.sign(b"message");
        let with = |r: [u8; 32], s: [u8; 32]| {
            let mut out = [0u8; 64];
            out[..32].copy_from_slice(&r);
            out[32..].copy_from_slice(&s);
            out
        };
        let r: [u8; 32] = signature[..32].try_into().expect("32");
        let s: [u8; 32] = signature[32..].try_into().expect("32");
        assert_eq!(public.verify(b"message", &with([0; 32], s)), Err(Sm2Error::ROutOfRange));
        assert_eq!(public.verify(b"message", &with(ORDER, s)), Err(Sm2Error::ROutOfRange));
        assert_eq!(public.verify(b"message", &with(r, [0; 32])), Err(Sm2Error::SOutOfRange));
        assert_eq!(public.verify(b"message", &with(r, [0xff; 32])), Err(Sm2Error::SOutOfRange));
        // s = n - r, so r + s = n: in range each, refused together (GB/T 32918.2 7.1 B5).
        let mut n_minus_r = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = ORDER[i] as i16 - r[i] as i16 - borrow;
            n_minus_r[i] = d.rem_euclid(256) as u8;
            borrow = i16::from(d < 0);
        }
        assert_eq!(public.verify(b"message", &with(r, n_minus_r)), Err(Sm2Error::RPlusSIsOrder));
        // r + n is the same residue as r but not the one encoding: refused, not reduced.
        assert_eq!(public.verify(b"message", &with([0xff; 32], s)), Err(Sm2Error::ROutOfRange));
    }

    #[test]
    fn keys_have_one_encoding() {
        let key = Sm2SigningKey::from_secret(&[7; 32]).expect("in range");
        let compressed = key.public_key();
        assert!(compressed[0] == 2 || compressed[0] == 3);
        let mut hybrid = compressed;
        hybrid[0] = 0x06;
        assert_eq!(Sm2VerifyingKey::from_compressed(&hybrid).err(), Some(Sm2Error::NotCompressed(6)));
        let mut zero = [0u8; 33];
        assert_eq!(Sm2VerifyingKey::from_compressed(&zero).err(), Some(Sm2Error::NotCompressed(0)));
        // x = 0 has no point with a square y on SM2's curve? Either way: search an x off it.
        zero[0] = 2;
        let off = (0u8..=255)
            .map(|b| {
                let mut candidate = zero;
                candidate[32] = b;
                candidate
            })
            .find(|candidate| Sm2VerifyingKey::from_compressed(candidate).is_err())
            .expect("about half of all x have no point");
        assert_eq!(Sm2VerifyingKey::from_compressed(&off).err(), Some(Sm2Error::NotOnCurve));
    }

    #[test]
    fn secrets_outside_1_to_n_minus_2_are_refused() {
        let mut n_less_one = ORDER;
        n_less_one[31] -= 1;
        for bad in [[0u8; 32], ORDER, n_less_one, [0xff; 32]] {
            assert_eq!(Sm2SigningKey::from_secret(&bad).err(), Some(Sm2Error::SecretOutOfRange));
        }
        let mut n_less_two = ORDER;
        n_less_two[31] -= 2;
        let key = Sm2SigningKey::from_secret(&n_less_two).expect("n - 2 is the largest secret");
        assert_eq!(key.secret(), n_less_two);
        let public = Sm2VerifyingKey::from_compressed(&key.public_key()).expect("on the curve");
        public.verify(b"m", &key.sign(b"m")).expect("verifies");
    }
}
