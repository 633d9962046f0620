//! Signed RPC requests: how a principal proves who sends a request, shared by the client that
//! signs and the node that checks (`docs/rpc.md`, "Access control").
//!
//! A signed HTTP request (a JSON-RPC POST, or the GET that opens a WebSocket) carries four
//! headers: the signer's public key, the time it signed (ms since the Unix epoch), a random
//! 16-byte nonce, and a signature (ed25519 or SM2, as the chain's suite) over
//! `H("shutong/rpc-request/v1", chain_id ‖ 0 ‖ timestamp_ms (u64 LE) ‖ nonce ‖ H("shutong/rpc-body/v1", body))`
//! with `H` the suite's tagged hash ([`Hash::of`]).
//! The node refuses a request whose time is outside its window or whose (key, nonce) it has
//! seen within that window, so a captured request cannot be sent again, nor sent to another
//! chain, nor have its body changed.

use shutong_types::{Hash, Keypair, PublicKey, Signature, Suite};

/// The signer's public key, hex.
pub const KEY_HEADER: &str = "x-shutong-key";
/// When the request was signed, in ms since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "x-shutong-timestamp";
/// 16 random bytes, hex: makes each signed request unique.
pub const NONCE_HEADER: &str = "x-shutong-nonce";
/// The ed25519 signature, hex.
pub const SIGNATURE_HEADER: &str = "x-shutong-signature";

/// The signature domain.
pub const TAG: &str = "shutong/rpc-request/v1";
/// The domain of the body's digest inside the signed message.
pub const BODY_TAG: &str = "shutong/rpc-body/v1";

/// What a signed request's headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuth {
    pub key: PublicKey,
    pub timestamp_ms: u64,
    pub nonce: [u8; 16],
    pub signature: Signature,
}

/// The bytes a request's signature covers, on a chain of `suite`.
pub fn signed_message(suite: Suite, chain_id: &str, timestamp_ms: u64, nonce: &[u8; 16], body: &[u8]) -> Hash {
    let body = Hash::of(suite, BODY_TAG, body);
    Hash::of_parts(suite, TAG, &[chain_id.as_bytes(), &[0], &timestamp_ms.to_le_bytes(), nonce, &body.0])
}

impl RequestAuth {
    /// Signs a request with `body` for `chain_id`, now.
    pub fn sign(key: &Keypair, chain_id: &str, body: &[u8]) -> RequestAuth {
        let nonce: [u8; 16] = rand::random();
        let timestamp_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Self::sign_at(key, chain_id, body, timestamp_ms, nonce)
    }

    /// Signs with a given time and nonce: for tests that need a stale or a repeated request.
    pub fn sign_at(key: &Keypair, chain_id: &str, body: &[u8], timestamp_ms: u64, nonce: [u8; 16]) -> RequestAuth {
        let message = signed_message(key.public().suite(), chain_id, timestamp_ms, &nonce, body);
        RequestAuth { key: key.public(), timestamp_ms, nonce, signature: key.sign(&message.0) }
    }

    /// Signs a request with `body` for `chain_id`, now, through `signer` (which may fail: a
    /// key in a token).
    pub fn try_sign(
        signer: &dyn shutong_types::Signer,
        chain_id: &str,
        body: &[u8],
    ) -> Result<RequestAuth, shutong_types::SignerError> {
        let nonce: [u8; 16] = rand::random();
        let timestamp_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let key = signer.public();
        let message = signed_message(key.suite(), chain_id, timestamp_ms, &nonce, body);
        Ok(RequestAuth { key, timestamp_ms, nonce, signature: signer.try_sign(&message.0)? })
    }

    /// Whether the signature covers `body` on `chain_id`.
    pub fn verify(&self, chain_id: &str, body: &[u8]) -> bool {
        let message = signed_message(self.key.suite(), chain_id, self.timestamp_ms, &self.nonce, body);
        self.key.verify(&message.0, &self.signature).is_ok()
    }

    /// The four headers, as (name, value).
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (KEY_HEADER, self.key.to_hex()),
            (TIMESTAMP_HEADER, self.timestamp_ms.to_string()),
            (NONCE_HEADER, hex::encode(self.nonce)),
            (SIGNATURE_HEADER, hex::encode(self.signature.0)),
        ]
    }

    /// Reads the headers through `get`: `Ok(None)` if none of them is there, an error naming
    /// the header if some are missing or malformed.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Option<RequestAuth>, String> {
        let names = [KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER];
        if names.iter().all(|name| get(name).is_none()) {
            return Ok(None);
        }
        let value = |name: &str| get(name).ok_or_else(|| format!("a signed request needs the {name} header"));
        let fixed = |name: &str, len: usize| -> Result<Vec<u8>, String> {
            let text = value(name)?;
            if text.len() != 2 * len {
                return Err(format!("the {name} header must be {len} bytes of hex"));
            }
            hex::decode(text).map_err(|_| format!("the {name} header must be {len} bytes of hex"))
        };
        let key_text = value(KEY_HEADER)?;
        let key: PublicKey = key_text.parse().map_err(|_| {
            format!("the {KEY_HEADER} header must be a public key in hex: 32 bytes (ed25519) or 33 (SM2)")
        })?;
        let timestamp_ms = value(TIMESTAMP_HEADER)?
            .parse::<u64>()
            .map_err(|_| format!("the {TIMESTAMP_HEADER} header must be milliseconds since the Unix epoch"))?;
        let nonce: [u8; 16] = fixed(NONCE_HEADER, 16)?.try_into().map_err(|_| "nonce length".to_string())?;
        let signature = Signature(fixed(SIGNATURE_HEADER, 64)?.try_into().map_err(|_| "signature length".to_string())?);
        Ok(Some(RequestAuth { key, timestamp_ms, nonce, signature }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn parse(headers: &HashMap<&str, String>) -> Result<Option<RequestAuth>, String> {
        RequestAuth::from_headers(|name| headers.get(name).map(String::as_str))
    }

    #[test]
    fn a_signature_covers_chain_time_nonce_and_body() {
        let key = Keypair::from_seed("auth");
        let auth = RequestAuth::sign_at(&key, "c1", b"{}", 1_000, [7; 16]);
        assert!(auth.verify("c1", b"{}"));
        assert!(!auth.verify("c2", b"{}"), "another chain");
        assert!(!auth.verify("c1", b"{ }"), "another body");
        assert!(!RequestAuth { timestamp_ms: 1_001, ..auth.clone() }.verify("c1", b"{}"), "another time");
        assert!(!RequestAuth { nonce: [8; 16], ..auth.clone() }.verify("c1", b"{}"), "another nonce");
        let headers: HashMap<&str, String> = auth.headers().into_iter().collect();
        assert_eq!(parse(&headers).unwrap(), Some(auth));
    }

    #[test]
    fn missing_or_malformed_headers_are_named() {
        assert_eq!(parse(&HashMap::new()).unwrap(), None);
        let key = Keypair::from_seed("auth");
        let good: HashMap<&str, String> = RequestAuth::sign(&key, "c", b"").headers().into_iter().collect();
        for name in [KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER] {
            let mut headers = good.clone();
            headers.remove(name);
            assert!(parse(&headers).unwrap_err().contains(name), "{name} missing");
            headers.insert(name, "zz".into());
            assert!(parse(&headers).unwrap_err().contains(name), "{name} malformed");
        }
    }
}
