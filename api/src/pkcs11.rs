//! A signer whose key lives in a PKCS#11 token (a hardware security module, a smart card,
//! SoftHSM2): the node, the CLI and the SDK sign through it as through a key file, and the
//! secret never leaves the token.
//!
//! The key is named by a PKCS#11 URI (RFC 7512), as p11-kit and OpenSSL name keys:
//!
//! ```text
//! pkcs11:token=dept-a;object=validator?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:SHUTONG_PKCS11_PIN
//! ```
//!
//! `token` is the token's label, `object` the key's label, `module-path` the module to
//! load, and `pin-source` where the user PIN is read: `env:NAME` (an environment variable)
//! or `file:/path` (the first line of a file). A PIN written into the URI itself
//! (`pin-value`) is refused: the URI goes into config files and shell histories.
//!
//! Ed25519 keys only: `CKM_EDDSA` (pure, single-part). PKCS#11 has no standard SM2
//! mechanism; ADR 013 says how a module's vendor mechanism or an SDF (GM/T 0018) cipher
//! machine plugs in behind the same [`Signer`] trait.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use shutong_types::{PublicKey, Signature, Signer, SignerError};
use std::path::PathBuf;
use std::sync::Mutex;

/// The longest URI accepted (a config value or a CLI argument).
pub const URI_BYTES_MAX: usize = 2048;
/// The longest PIN read from its source.
const PIN_BYTES_MAX: usize = 256;
/// DER of the ed25519 curve's object identifier, 1.3.101.112: `CKA_EC_PARAMS` of its keys.
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// What the signer signs once when it opens, to check the token's key is the one it reads.
const OPEN_CHECK: &[u8] = b"shutong/pkcs11-open-check/v1";

/// Where a PIN is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    Env(String),
    File(PathBuf),
}

/// A key in a token, as a PKCS#11 URI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub module: PathBuf,
    pub token: String,
    pub object: String,
    pub pin: PinSource,
}

/// Why a PKCS#11 key cannot be used. Each names the token, key or module concerned.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    #[error("not a PKCS#11 URI: {0}")]
    Uri(String),
    #[error("the PIN for token {token} cannot be read from {source_name}: {reason}")]
    Pin { token: String, source_name: String, reason: String },
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    Module { module: PathBuf, reason: String },
    #[error("no token labelled {token} in module {module} (tokens present: {present})")]
    NoToken { token: String, module: PathBuf, present: String },
    #[error("token {token} refused the PIN from {source_name}: {reason}")]
    Login { token: String, source_name: String, reason: String },
    #[error("token {token} has no {class} labelled {object}")]
    NoKey { token: String, object: String, class: &'static str },
    #[error("token {token} has {count} keys labelled {object}: the label must name one")]
    AmbiguousKey { token: String, object: String, count: usize },
    #[error("key {object} in token {token} is not an ed25519 key: {reason}")]
    NotEd25519 { token: String, object: String, reason: String },
    #[error("token {token} already has a key labelled {object}")]
    KeyExists { token: String, object: String },
    #[error("key {object} in token {token} signed, but the signature does not verify under its public key {key}")]
    Mismatch { token: String, object: String, key: PublicKey },
    #[error("token {token}: {operation} failed: {reason}")]
    Token { token: String, operation: &'static str, reason: String },
    #[error("token {token} now holds key {now} under label {object}, not {was}")]
    KeyChanged { token: String, object: String, was: PublicKey, now: PublicKey },
}

impl PinSource {
    fn name(&self) -> String {
        match self {
            PinSource::Env(name) => format!("environment variable {name}"),
            PinSource::File(path) => format!("file {}", path.display()),
        }
    }

    fn read(&self, token: &str) -> Result<AuthPin, Pkcs11Error> {
        let fail = |reason: String| Pkcs11Error::Pin { token: token.into(), source_name: self.name(), reason };
        let pin = match self {
            PinSource::Env(name) => std::env::var(name).map_err(|e| fail(e.to_string()))?,
            PinSource::File(path) => {
                let text = crate::files::read_bounded(path, PIN_BYTES_MAX as u64)
                    .map_err(|e| fail(e.to_string()))?
                    .ok_or_else(|| fail(format!("over {PIN_BYTES_MAX} bytes")))?;
                text.lines().next().unwrap_or_default().to_string()
            }
        };
        if pin.is_empty() || pin.len() > PIN_BYTES_MAX {
            return Err(fail(format!("a PIN has 1 to {PIN_BYTES_MAX} bytes")));
        }
        Ok(AuthPin::from(pin))
    }
}

/// Decodes RFC 3986 percent-encoding (`%2F`), refusing a malformed escape.
fn percent_decode(text: &str) -> Result<String, Pkcs11Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = byte else {
                return Err(Pkcs11Error::Uri(format!("a bad percent escape in {text:?}")));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Pkcs11Error::Uri(format!("{text:?} does not decode to UTF-8")))
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = Pkcs11Error;

    fn from_str(uri: &str) -> Result<Pkcs11Uri, Pkcs11Error> {
        if uri.len() > URI_BYTES_MAX {
            return Err(Pkcs11Error::Uri(format!("{} bytes, over the {URI_BYTES_MAX} allowed", uri.len())));
        }
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| Pkcs11Error::Uri(format!("{uri:?} does not start with \"pkcs11:\"")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut module, mut pin) = (None, None, None, None);
        let attributes = path.split(';').map(|a| (a, ';')).chain(query.split('&').map(|a| (a, '&')));
        for (attribute, _) in attributes.filter(|(a, _)| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| Pkcs11Error::Uri(format!("attribute {attribute:?} has no value")))?;
            let value = percent_decode(value)?;
            let slot = match name {
                "token" => &mut token,
                "object" => &mut object,
                "module-path" => &mut module,
                "pin-source" => &mut pin,
                "pin-value" => {
                    return Err(Pkcs11Error::Uri(
                        "pin-value puts the PIN in the URI: use pin-source=env:NAME or pin-source=file:/path".into(),
                    ));
                }
                other => {
                    return Err(Pkcs11Error::Uri(format!(
                        "unknown attribute {other:?} (known: token, object, module-path, pin-source)"
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(Pkcs11Error::Uri(format!("attribute {name} given twice")));
            }
        }
        let need = |value: Option<String>, name: &str| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| Pkcs11Error::Uri(format!("{uri:?} names no {name}")))
        };
        let pin = need(pin, "pin-source")?;
        let pin = if let Some(name) = pin.strip_prefix("env:") {
            PinSource::Env(name.to_string())
        } else if let Some(path) = pin.strip_prefix("file:") {
            PinSource::File(PathBuf::from(path))
        } else {
            return Err(Pkcs11Error::Uri(format!("pin-source {pin:?} is neither env:NAME nor file:/path")));
        };
        Ok(Pkcs11Uri {
            module: PathBuf::from(need(module, "module-path")?),
            token: need(token, "token")?,
            object: need(object, "object")?,
            pin,
        })
    }
}

impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pin = match &self.pin {
            PinSource::Env(name) => format!("env:{name}"),
            PinSource::File(path) => format!("file:{}", path.display()),
        };
        let encode = |s: &str| s.replace('%', "%25").replace(';', "%3B").replace('&', "%26").replace('?', "%3F");
        write!(
            f,
            "pkcs11:token={};object={}?module-path={}&pin-source={}",
            encode(&self.token),
            encode(&self.object),
            encode(&self.module.to_string_lossy()),
            encode(&pin)
        )
    }
}

/// A logged-in session with the token `uri` names.
fn login(uri: &Pkcs11Uri, read_write: bool) -> Result<(Pkcs11, Session), Pkcs11Error> {
    let pin = uri.pin.read(&uri.token)?;
    let module_error = |e: CkError| Pkcs11Error::Module { module: uri.module.clone(), reason: e.to_string() };
    let context = Pkcs11::new(&uri.module).map_err(module_error)?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(module_error(e)),
    }
    let slot = token_slot(&context, uri)?;
    let token_error = |operation: &'static str| {
        move |e: CkError| Pkcs11Error::Token { token: uri.token.clone(), operation, reason: e.to_string() }
    };
    let session = if read_write { context.open_rw_session(slot) } else { context.open_ro_session(slot) }
        .map_err(token_error("opening a session"))?;
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => {
            return Err(Pkcs11Error::Login {
                token: uri.token.clone(),
                source_name: uri.pin.name(),
                reason: e.to_string(),
            });
        }
    }
    Ok((context, session))
}

fn token_slot(context: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, Pkcs11Error> {
    let slots = context
        .get_slots_with_token()
        .map_err(|e| Pkcs11Error::Module { module: uri.module.clone(), reason: e.to_string() })?;
    let mut present = Vec::new();
    for slot in slots {
        let Ok(info) = context.get_token_info(slot) else { continue };
        let label = info.label().trim_end().to_string();
        if label == uri.token {
            return Ok(slot);
        }
        present.push(label);
    }
    Err(Pkcs11Error::NoToken {
        token: uri.token.clone(),
        module: uri.module.clone(),
        present: if present.is_empty() { "none".into() } else { present.join(", ") },
    })
}

/// The one object of `class` labelled `uri.object`.
fn find(session: &Session, uri: &Pkcs11Uri, class: ObjectClass) -> Result<Option<ObjectHandle>, Pkcs11Error> {
    let template = [Attribute::Class(class), Attribute::Label(uri.object.as_bytes().to_vec())];
    let found = session.find_objects(&template).map_err(|e| Pkcs11Error::Token {
        token: uri.token.clone(),
        operation: "finding keys",
        reason: e.to_string(),
    })?;
    match found[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => {
            Err(Pkcs11Error::AmbiguousKey { token: uri.token.clone(), object: uri.object.clone(), count: found.len() })
        }
    }
}

/// The ed25519 public key of the public-key object `handle`: `CKA_EC_POINT` holds the 32
/// bytes raw or as a DER OCTET STRING (`04 20 ‖ key`), as modules differ.
fn ed25519_public(session: &Session, uri: &Pkcs11Uri, handle: ObjectHandle) -> Result<PublicKey, Pkcs11Error> {
    let not_ed25519 =
        |reason: String| Pkcs11Error::NotEd25519 { token: uri.token.clone(), object: uri.object.clone(), reason };
    let attributes = session
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcPoint])
        .map_err(|e| not_ed25519(format!("its key type and point cannot be read: {e}")))?;
    let mut point = None;
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(kind) if kind != KeyType::EC_EDWARDS => {
                return Err(not_ed25519(format!("its key type is {kind}; the PKCS#11 signer holds ed25519 keys")));
            }
            Attribute::EcPoint(bytes) => point = Some(bytes),
            _ => {}
        }
    }
    let point = point.ok_or_else(|| not_ed25519("it has no CKA_EC_POINT".into()))?;
    let raw: [u8; 32] = match point.as_slice() {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().unwrap_or([0; 32]),
        raw if raw.len() == 32 => raw.try_into().unwrap_or([0; 32]),
        other => return Err(not_ed25519(format!("its CKA_EC_POINT has {} bytes, not an ed25519 point", other.len()))),
    };
    let key = PublicKey::Ed25519(raw);
    if !key.is_point() {
        return Err(not_ed25519("its CKA_EC_POINT is not a point on edwards25519".into()));
    }
    Ok(key)
}

/// A logged-in session and the private key's handle in it.
struct Open {
    session: Session,
    private: ObjectHandle,
    /// Keeps the module loaded as long as the session lives.
    _context: Pkcs11,
}

/// Whether the signer's session can sign.
enum State {
    Open(Open),
    /// The session was lost (the token reset, removed and put back, logged out): the next
    /// signature logs in again.
    Lost,
    /// Logging in again was refused (a changed PIN, a locked token, another key under the
    /// label): not tried again, so that a wrong PIN cannot use up the token's retry count
    /// one skipped vote at a time. The process must be restarted once it is fixed.
    Refused(String),
}

/// A validator's or a principal's ed25519 key in a PKCS#11 token.
pub struct Pkcs11Signer {
    uri: Pkcs11Uri,
    public: PublicKey,
    /// A session is not `Sync`: one signature at a time, as a token serves them anyway.
    state: Mutex<State>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Signer({}, key {} in token {})", self.public, self.uri.object, self.uri.token)
    }
}

/// Logs in and finds the key pair labelled `uri.object`: the private key's handle and the
/// public key.
fn open_key(uri: &Pkcs11Uri) -> Result<(Open, PublicKey), Pkcs11Error> {
    let (context, session) = login(uri, false)?;
    let no_key = |class| Pkcs11Error::NoKey { token: uri.token.clone(), object: uri.object.clone(), class };
    let private = find(&session, uri, ObjectClass::PRIVATE_KEY)?.ok_or_else(|| no_key("private key"))?;
    let public_handle = find(&session, uri, ObjectClass::PUBLIC_KEY)?.ok_or_else(|| no_key("public key"))?;
    let public = ed25519_public(&session, uri, public_handle)?;
    Ok((Open { session, private, _context: context }, public))
}

fn sign_in(open: &Open, message: &[u8]) -> Result<Vec<u8>, CkError> {
    let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    open.session.sign(&mechanism, open.private, message)
}

/// Whether a failed call means the session is gone, so that logging in again may help.
fn session_lost(err: &CkError) -> bool {
    matches!(
        err,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}

impl Pkcs11Signer {
    /// Logs in to the token and finds the key; signs once and checks the signature under
    /// the key's public key, so a wrong or broken key is found now, not at the first vote.
    pub fn open(uri: &Pkcs11Uri) -> Result<Pkcs11Signer, Pkcs11Error> {
        let (open, public) = open_key(uri)?;
        let signer = Pkcs11Signer { uri: uri.clone(), public, state: Mutex::new(State::Open(open)) };
        let signature = signer.try_sign(OPEN_CHECK).map_err(|e| Pkcs11Error::Token {
            token: uri.token.clone(),
            operation: "signing",
            reason: e.reason,
        })?;
        if public.verify(OPEN_CHECK, &signature).is_err() {
            return Err(Pkcs11Error::Mismatch { token: uri.token.clone(), object: uri.object.clone(), key: public });
        }
        Ok(signer)
    }

    /// Makes a new ed25519 key pair in the token, labelled `uri.object`: the secret is
    /// generated inside the token, sensitive and never extractable. Refused if a key of
    /// that label exists. Returns the public key.
    pub fn generate(uri: &Pkcs11Uri) -> Result<PublicKey, Pkcs11Error> {
        let (_context, session) = login(uri, true)?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if find(&session, uri, class)?.is_some() {
                return Err(Pkcs11Error::KeyExists { token: uri.token.clone(), object: uri.object.clone() });
            }
        }
        let label = Attribute::Label(uri.object.as_bytes().to_vec());
        let public_template =
            [Attribute::Token(true), Attribute::Verify(true), Attribute::EcParams(ED25519_OID.to_vec()), label.clone()];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            label,
        ];
        let (public, _) = session
            .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public_template, &private_template)
            .map_err(|e| Pkcs11Error::Token {
                token: uri.token.clone(),
                operation: "generating an ed25519 key pair",
                reason: e.to_string(),
            })?;
        ed25519_public(&session, uri, public)
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// Logs in again after the session was lost; the key under the label must be the same.
    fn reopen(&self) -> Result<Open, Pkcs11Error> {
        let (open, public) = open_key(&self.uri)?;
        if public != self.public {
            return Err(Pkcs11Error::KeyChanged {
                token: self.uri.token.clone(),
                object: self.uri.object.clone(),
                was: self.public,
                now: public,
            });
        }
        Ok(open)
    }
}

impl Signer for Pkcs11Signer {
    fn public(&self) -> PublicKey {
        self.public
    }

    fn try_sign(&self, message: &[u8]) -> Result<Signature, SignerError> {
        let fail = |reason: String| SignerError { key: self.public, reason };
        let mut state = self.state.lock().map_err(|_| fail("the session lock is poisoned".into()))?;
        let bytes = match &*state {
            State::Refused(reason) => {
                return Err(fail(format!("{reason}; not retried: restart once the token is fixed")));
            }
            State::Open(open) => match sign_in(open, message) {
                Ok(bytes) => Some(bytes),
                Err(err) if session_lost(&err) => None,
                Err(err) => return Err(fail(format!("token {}: {err}", self.uri.token))),
            },
            State::Lost => None,
        };
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => {
                // The session is gone: log in again, once per signature asked for.
                *state = State::Lost;
                let open = match self.reopen() {
                    Ok(open) => open,
                    // What another try would meet again, at the cost of a PIN attempt.
                    Err(
                        err @ (Pkcs11Error::Login { .. }
                        | Pkcs11Error::KeyChanged { .. }
                        | Pkcs11Error::NoKey { .. }
                        | Pkcs11Error::AmbiguousKey { .. }
                        | Pkcs11Error::NotEd25519 { .. }),
                    ) => {
                        *state = State::Refused(err.to_string());
                        return Err(fail(err.to_string()));
                    }
                    Err(err) => return Err(fail(err.to_string())),
                };
                let signed = sign_in(&open, message).map_err(|e| fail(format!("token {}: {e}", self.uri.token)));
                *state = State::Open(open);
                signed?
            }
        };
        let bytes: [u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| fail(format!("token {} gave a {}-byte signature, not 64", self.uri.token, bytes.len())))?;
        Ok(Signature(bytes))
    }
}

/// A signer named on a command line or in a config: a `pkcs11:` URI, else a key file's path.
pub fn open_signer(spec: &str) -> Result<std::sync::Arc<dyn Signer>, SpecError> {
    if spec.starts_with("pkcs11:") {
        let uri: Pkcs11Uri = spec.parse()?;
        Ok(std::sync::Arc::new(Pkcs11Signer::open(&uri)?))
    } else {
        Ok(std::sync::Arc::new(crate::keyfile::read(std::path::Path::new(spec))?))
    }
}

/// Why a signer named by a key file's path or a `pkcs11:` URI cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Pkcs11(#[from] Pkcs11Error),
    #[error(transparent)]
    KeyFile(#[from] crate::keyfile::KeyFileError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_uri_names_module_token_key_and_pin_source_and_round_trips() {
        let text =
            "pkcs11:token=dept%20a;object=validator?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PIN";
        let uri: Pkcs11Uri = text.parse().unwrap();
        assert_eq!(uri.token, "dept a");
        assert_eq!(uri.object, "validator");
        assert_eq!(uri.module, PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
        assert_eq!(uri.pin, PinSource::Env("PIN".into()));
        assert_eq!(uri.to_string().parse::<Pkcs11Uri>().unwrap(), uri);
        let file: Pkcs11Uri = "pkcs11:token=t;object=o?module-path=/m.so&pin-source=file:/etc/pin".parse().unwrap();
        assert_eq!(file.pin, PinSource::File("/etc/pin".into()));
    }

    #[test]
    fn a_bad_uri_is_refused_by_name() {
        let refused = |uri: &str| uri.parse::<Pkcs11Uri>().unwrap_err().to_string();
        assert!(refused("token=t").contains("does not start with \"pkcs11:\""));
        assert!(refused("pkcs11:token=t;object=o?module-path=/m.so&pin-value=1234").contains("pin-value puts the PIN"));
        assert!(refused("pkcs11:token=t;object=o?module-path=/m.so").contains("names no pin-source"));
        assert!(refused("pkcs11:object=o?module-path=/m.so&pin-source=env:P").contains("names no token"));
        assert!(refused("pkcs11:token=t;token=u;object=o?module-path=/m&pin-source=env:P").contains("given twice"));
        assert!(
            refused("pkcs11:token=t;serial=1;object=o?module-path=/m&pin-source=env:P").contains("unknown attribute")
        );
        assert!(refused("pkcs11:token=%zz;object=o?module-path=/m&pin-source=env:P").contains("bad percent escape"));
        assert!(refused("pkcs11:token=t;object=o?module-path=/m&pin-source=stdin").contains("neither env:NAME"));
        assert!(refused(&format!("pkcs11:token={}", "a".repeat(URI_BYTES_MAX))).contains("over the"));
    }

    #[test]
    fn a_module_that_is_not_there_is_named() {
        let uri: Pkcs11Uri =
            "pkcs11:token=t;object=o?module-path=/nonexistent/libnone.so&pin-source=env:SHUTONG_TEST_PIN_UNSET_NONE"
                .parse()
                .unwrap();
        // The PIN is read first: an unset variable is named.
        let err = Pkcs11Signer::open(&uri).unwrap_err().to_string();
        assert!(err.contains("environment variable SHUTONG_TEST_PIN_UNSET_NONE"), "{err}");
        let pin = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pin.path(), "1234\n").unwrap();
        let uri = Pkcs11Uri { pin: PinSource::File(pin.path().to_path_buf()), ..uri };
        let err = Pkcs11Signer::open(&uri).unwrap_err().to_string();
        assert!(err.starts_with("cannot load the PKCS#11 module /nonexistent/libnone.so"), "{err}");
    }

    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
    /// Set in the child process that runs a token test's body: the token's directory.
    const CHILD_DIR: &str = "SHUTONG_PKCS11_TEST_DIR";

    /// SoftHSM2 finds its tokens through `SOFTHSM2_CONF`, read when the module initialises.
    /// A test cannot set it in its own process (tests run side by side in threads), so it
    /// runs `test` again in a child process of the test binary, with a fresh token and the
    /// variable set. Returns the token's directory in the child; `None` in the parent, once
    /// the child passed.
    fn in_token_process(test: &str) -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os(CHILD_DIR) {
            return Some(dir.into());
        }
        assert!(std::path::Path::new(MODULE).exists(), "{MODULE} is missing: scripts/lib/setup.sh installs softhsm2");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().join("tokens").display()
        );
        std::fs::write(&conf, text).unwrap();
        std::fs::write(dir.path().join("pin"), "1234\n").unwrap();
        let init = std::process::Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", "unit", "--so-pin", "5678", "--pin", "1234"])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util runs (scripts/lib/setup.sh installs softhsm2)");
        assert!(init.status.success(), "softhsm2-util: {}", String::from_utf8_lossy(&init.stderr));
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env("SOFTHSM2_CONF", &conf)
            .env(CHILD_DIR, dir.path())
            .output()
            .unwrap();
        let out = format!("{}{}", String::from_utf8_lossy(&child.stdout), String::from_utf8_lossy(&child.stderr));
        assert!(child.status.success() && out.contains("1 passed"), "the token test failed in its process:\n{out}");
        None
    }

    fn token_uri(dir: &std::path::Path, object: &str) -> Pkcs11Uri {
        Pkcs11Uri {
            module: MODULE.into(),
            token: "unit".into(),
            object: object.into(),
            pin: PinSource::File(dir.join("pin")),
        }
    }

    #[test]
    fn a_key_made_inside_the_token_signs_what_the_node_verifies() {
        let Some(dir) = in_token_process("pkcs11::tests::a_key_made_inside_the_token_signs_what_the_node_verifies")
        else {
            return;
        };
        let uri = token_uri(&dir, "validator");
        let key = Pkcs11Signer::generate(&uri).unwrap();
        let signer = Pkcs11Signer::open(&uri).unwrap();
        assert_eq!(signer.public(), key);
        for message in [&b""[..], b"a vote", &[7u8; 4096][..]] {
            let signature = signer.try_sign(message).unwrap();
            key.verify(message, &signature).unwrap();
            assert!(key.verify(b"another message", &signature).is_err());
        }
        // Ed25519 is deterministic (RFC 8032): the token signs one message one way.
        assert_eq!(signer.try_sign(b"m").unwrap(), signer.try_sign(b"m").unwrap());
        // The secret never leaves the token: the private key is sensitive and not extractable.
        let (_context, session) = login(&uri, false).unwrap();
        let private = find(&session, &uri, ObjectClass::PRIVATE_KEY).unwrap().unwrap();
        let flags = session.get_attributes(private, &[AttributeType::Sensitive, AttributeType::Extractable]).unwrap();
        assert!(flags.contains(&Attribute::Sensitive(true)) && flags.contains(&Attribute::Extractable(false)));
    }

    #[test]
    fn a_lost_session_logs_in_again_and_a_refused_pin_is_not_tried_again() {
        let Some(dir) =
            in_token_process("pkcs11::tests::a_lost_session_logs_in_again_and_a_refused_pin_is_not_tried_again")
        else {
            return;
        };
        let uri = token_uri(&dir, "validator");
        Pkcs11Signer::generate(&uri).unwrap();
        let signer = Pkcs11Signer::open(&uri).unwrap();
        // Another session of the process logs it out of the token, as a token reset does:
        // the signer's session can no longer use the private key, so it logs in again.
        let (_context, other) = login(&uri, false).unwrap();
        other.logout().unwrap();
        let signature = signer.try_sign(b"after the logout").unwrap();
        signer.public().verify(b"after the logout", &signature).unwrap();

        // The PIN it reads changed: the login after the next loss is refused, and the
        // signer does not try again (each try would spend one of the token's PIN attempts).
        std::fs::write(dir.join("pin"), "9999\n").unwrap();
        other.logout().unwrap();
        let refused = signer.try_sign(b"m").unwrap_err();
        assert!(refused.reason.contains("token unit refused the PIN from file"), "{refused}");
        let again = signer.try_sign(b"m").unwrap_err();
        assert!(again.reason.contains("not retried: restart once the token is fixed"), "{again}");
    }
}
