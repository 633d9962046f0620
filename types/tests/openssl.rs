//! The SM suite's primitives checked against a second implementation: Debian's OpenSSL 3,
//! run as a process. Ours signs and OpenSSL verifies, OpenSSL signs and ours verifies, and
//! both hash, MAC and derive keys alike. A machine without `openssl` fails these tests
//! (`scripts/lib/setup.sh` installs it); they never skip.

use shutong_types::sm::{SM2_SIGNER_ID, Sm2SigningKey, Sm2VerifyingKey, hmac_sm3, pbkdf2_hmac_sm3, sm3};
use std::path::Path;
use std::process::Command;

fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs (scripts/lib/setup.sh installs it)");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Messages of the lengths that matter to SM3's padding (one block, the boundary, several).
fn messages() -> Vec<Vec<u8>> {
    [0usize, 1, 3, 55, 56, 63, 64, 65, 200, 1_000]
        .iter()
        .map(|n| (0..*n).map(|i| (i * 31 + n) as u8).collect())
        .collect()
}

/// DER INTEGER of a big-endian unsigned value.
fn der_integer(value: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
    let mut body = if trimmed.first().is_some_and(|b| b & 0x80 != 0) { vec![0] } else { vec![] };
    body.extend(if trimmed.is_empty() { vec![0] } else { trimmed });
    let mut out = vec![0x02, body.len() as u8];
    out.extend(body);
    out
}

/// r ‖ s as the DER `SEQUENCE { r INTEGER, s INTEGER }` OpenSSL reads.
fn der_signature(signature: &[u8; 64]) -> Vec<u8> {
    let mut body = der_integer(&signature[..32]);
    body.extend(der_integer(&signature[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// OpenSSL's DER signature as r ‖ s.
fn raw_signature(der: &[u8]) -> [u8; 64] {
    assert_eq!(der[0], 0x30, "a DER sequence");
    let mut at = 2;
    let mut out = [0u8; 64];
    for half in 0..2 {
        assert_eq!(der[at], 0x02, "a DER integer");
        let len = der[at + 1] as usize;
        let value = &der[at + 2..at + 2 + len];
        let value = value.strip_prefix(&[0]).unwrap_or(value);
        out[half * 32 + 32 - value.len()..half * 32 + 32].copy_from_slice(value);
        at += 2 + len;
    }
    out
}

/// A SubjectPublicKeyInfo (id-ecPublicKey on curve SM2, 1.2.156.10197.1.301) around a
/// compressed point.
fn spki(compressed: &[u8; 33]) -> Vec<u8> {
    let mut out = hex::decode("3039301306072a8648ce3d020106082a811ccf5501822d032200").expect("hex");
    out.extend_from_slice(compressed);
    out
}

#[test]
fn sm3_hmac_and_pbkdf2_agree_with_openssl() {
    let dir = tempfile::tempdir().expect("temp dir");
    for message in messages() {
        std::fs::write(dir.path().join("m"), &message).expect("write");
        let theirs = openssl(&["dgst", "-sm3", "-binary", "m"], dir.path());
        assert_eq!(theirs, sm3(&message), "SM3 of {} bytes", message.len());
        let key = b"a shared key longer than sixty-four bytes, so HMAC hashes it first.......";
        let theirs = openssl(
            &["dgst", "-sm3", "-binary", "-mac", "HMAC", "-macopt", &format!("hexkey:{}", hex::encode(key)), "m"],
            dir.path(),
        );
        assert_eq!(theirs, hmac_sm3(key, &[&message]), "HMAC-SM3 of {} bytes", message.len());
    }
    // A data subject's keyed digest on an SM chain is HMAC-SM3 over the length-prefixed tag
    // and the reference.
    let tag = shutong_types::hash::tag::SUBJECT_REF;
    let key = [0x5a; 32];
    let framed = [&(tag.len() as u32).to_le_bytes()[..], tag.as_bytes(), b"310101199001011234"].concat();
    std::fs::write(dir.path().join("m"), &framed).expect("write");
    let theirs = openssl(
        &["dgst", "-sm3", "-binary", "-mac", "HMAC", "-macopt", &format!("hexkey:{}", hex::encode(key)), "m"],
        dir.path(),
    );
    let ours = shutong_types::Hash::keyed(shutong_types::Suite::Sm2Sm3, &key, tag, b"310101199001011234");
    assert_eq!(theirs, ours.0, "the subject digest is OpenSSL's HMAC-SM3");
    let mut ours = [0u8; 32];
    pbkdf2_hmac_sm3(b"correct horse", b"salt-0123456789", 2_000, &mut ours);
    let theirs = openssl(
        &[
            "kdf",
            "-keylen",
            "32",
            "-kdfopt",
            "digest:SM3",
            "-kdfopt",
            "pass:correct horse",
            "-kdfopt",
            "salt:salt-0123456789",
            "-kdfopt",
            "iter:2000",
            "PBKDF2",
        ],
        dir.path(),
    );
    let theirs = String::from_utf8(theirs).expect("text").trim().replace(':', "").to_lowercase();
    assert_eq!(theirs, hex::encode(ours));
}

#[test]
fn openssl_verifies_what_the_node_signs() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, message) in messages().into_iter().enumerate() {
        let key = Sm2SigningKey::from_secret(&sm3(&[i as u8])).expect("in range");
        let signature = key.sign(&message);
        std::fs::write(dir.path().join("pub.der"), spki(&key.public_key())).expect("write");
        std::fs::write(dir.path().join("m"), &message).expect("write");
        std::fs::write(dir.path().join("sig.der"), der_signature(&signature)).expect("write");
        let distid = format!("distid:{SM2_SIGNER_ID}");
        let verify = [
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-rawin", "-digest", "sm3",
            "-pkeyopt", &distid, "-in", "m", "-sigfile", "sig.der",
        ];
        let out = openssl(&verify, dir.path());
        assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));

        // The same signature over another message: OpenSSL refuses it too.
        std::fs::write(dir.path().join("m"), [message.as_slice(), b"!"].concat()).expect("write");
        let refused = Command::new("openssl").args(verify).current_dir(dir.path()).output().expect("runs");
        assert!(!refused.status.success(), "OpenSSL accepted a signature over another message");
    }
}

#[test]
fn the_node_verifies_what_openssl_signs() {
    let dir = tempfile::tempdir().expect("temp dir");
    openssl(&["genpkey", "-algorithm", "SM2", "-out", "sk.pem"], dir.path());
    // The secret, to check our key derivation gives OpenSSL's public key.
    let text = String::from_utf8(openssl(&["pkey", "-in", "sk.pem", "-text", "-noout"], dir.path())).expect("text");
    let secret_hex: String = text
        .split("priv:")
        .nth(1)
        .and_then(|rest| rest.split("pub:").next())
        .expect("a priv: section")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let secret = hex::decode(secret_hex).expect("hex");
    let secret: [u8; 32] = secret[secret.len() - 32..].try_into().expect("32 bytes after any leading zero");
    let ours = Sm2SigningKey::from_secret(&secret).expect("OpenSSL's secret is in range");

    let spki_der = openssl(&["pkey", "-in", "sk.pem", "-pubout", "-outform", "DER"], dir.path());
    let point = &spki_der[spki_der.len() - 65..];
    assert_eq!(point[0], 0x04, "OpenSSL writes the uncompressed point");
    let mut compressed = [0u8; 33];
    compressed[0] = 0x02 | (point[64] & 1);
    compressed[1..].copy_from_slice(&point[1..33]);
    assert_eq!(ours.public_key(), compressed, "the same public key from the same secret");
    let public = Sm2VerifyingKey::from_compressed(&compressed).expect("on the curve");

    let distid = format!("distid:{SM2_SIGNER_ID}");
    for message in messages() {
        std::fs::write(dir.path().join("m"), &message).expect("write");
        let der = openssl(
            &["pkeyutl", "-sign", "-inkey", "sk.pem", "-rawin", "-digest", "sm3", "-pkeyopt", &distid, "-in", "m"],
            dir.path(),
        );
        let signature = raw_signature(&der);
        public.verify(&message, &signature).expect("OpenSSL's signature verifies");
        assert!(public.verify(&[message.as_slice(), b"!"].concat(), &signature).is_err());
    }

    // Signed under another signer id, the Z value differs and the signature fails.
    std::fs::write(dir.path().join("m"), b"id-bound").expect("write");
    let der = openssl(
        &["pkeyutl", "-sign", "-inkey", "sk.pem", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:other", "-in", "m"],
        dir.path(),
    );
    assert!(public.verify(b"id-bound", &raw_signature(&der)).is_err());
}
