//! RPC access control (`docs/rpc.md`, "Access control"; `docs/security.md`).
//!
//! Anyone may read the chain's status, headers and proofs: an auditor checks every answer
//! against finalized headers, so these reveal nothing a validator set did not sign. Every
//! other method needs a request signed by a registered principal ([`shutong_api::auth`]):
//! an acting principal of an active organisation, an organisation's admin, or a member of
//! the governance committee, read from committed state at the time of the request. Audit
//! queries need a principal with the `auditor` role. A key that is not registered may send
//! one thing: its own transaction registering an organisation, the way a new organisation
//! joins a chain whose registration is open (and, for that, read its own nonce and its
//! receipt).
//!
//! The HTTP side ([`Gate::authenticate`]) checks the signature over the exact body, the
//! time window and the nonce, and leaves its verdict in the request's extensions; the
//! JSON-RPC side ([`GuardLayer`]) checks each call's method against it, counts the call
//! against the per-address and per-principal rates, and bounds its time, answering a
//! refusal as a JSON-RPC error with a code of its own.

use crate::config::{AccessMode, RpcConfig};
use jsonrpsee::MethodResponse;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification};
use jsonrpsee::server::middleware::rpc::RpcServiceT;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Request};
use shutong_api::auth::RequestAuth;
use shutong_api::rpc::{code, method};
use shutong_codec::Decode;
use shutong_storage::Storage;
use shutong_system_api::{governance, names, registry};
use shutong_types::keyspace;
use shutong_types::rate::TokenBucket;
use shutong_types::{AccountId, Address, PublicKey};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash as StdHash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many (key, nonce) pairs the replay cache holds at most; past that, signed requests
/// are refused until old ones leave the window (the cache never grows without bound).
pub const REPLAY_ENTRIES_MAX: usize = 1 << 20;
/// How many addresses or principals the rate limiters track at most.
pub const LIMITED_KEYS_MAX: usize = 1 << 16;

/// The peer's address, put in each request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Remote(pub SocketAddr);

/// Who a signed request comes from, as committed state says at the time of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// An acting principal of an active organisation, with its `role` bits.
    Principal { org: String, roles: u32 },
    /// The admin of an active organisation (the account that registered it, or the one the
    /// committee named).
    OrgAdmin { org: String },
    /// A member of the governance committee.
    Committee,
    /// A valid signature by a key the chain does not know (or whose principal or
    /// organisation is suspended, or whose key was rotated away).
    Unregistered,
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub account: AccountId,
    pub standing: Standing,
}

/// The HTTP side's verdict on a request, in its extensions.
#[derive(Debug, Clone)]
pub enum Auth {
    /// The node's access mode is `open`: every method is public.
    Open,
    /// No signature headers.
    Anonymous,
    /// A valid, fresh, first-seen signature.
    Signed(Caller),
    /// Signature headers that do not pass, and why.
    Refused(String),
}

/// Which callers a method admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Status, headers and proofs.
    Public,
    /// A registered principal.
    Principal,
    /// A principal with the `auditor` role.
    Auditor,
}

/// The class of a method; an unknown method is left to the server, which answers that it
/// does not exist, to a caller that is at least registered.
pub fn class(name: &str) -> Class {
    match name {
        method::STATUS
        | method::GET_HEADER
        | method::GET_FINALIZED
        | method::GET_EPOCH
        | method::GET_STATE_PROOF
        | method::GET_AUDIT_PROOF
        | method::GET_CONSISTENCY_PROOF => Class::Public,
        method::AUDIT_QUERY => Class::Auditor,
        _ => Class::Principal,
    }
}

/// The standing of `account` in the committed state of `storage`.
pub fn standing(storage: &Storage, account: &AccountId) -> Standing {
    let registry = Address::system(names::REGISTRY);
    let get = |key: &[u8]| storage.state_get(&keyspace::contract_storage(&registry, key));
    if let Ok(Some(member)) = registry::Member::read(&account.0, get) {
        if member.acting {
            return Standing::Principal { org: member.principal.org, roles: member.principal.roles };
        }
        return Standing::Unregistered;
    }
    if let Some(org) = get(&registry::admin_key(&account.0)).and_then(|id| String::from_utf8(id).ok())
        && let Some(found) = get(&registry::org_key(&org)).and_then(|bytes| registry::Org::decode(&bytes).ok())
        && found.status == registry::OrgStatus::Active
        && found.admin == account.0
    {
        return Standing::OrgAdmin { org };
    }
    let committee = storage
        .state_get(&shutong_execution::epochs::committee_key())
        .and_then(|bytes| governance::Committee::decode(&bytes).ok());
    if committee.is_some_and(|committee| committee.org_of(&account.0).is_some()) {
        return Standing::Committee;
    }
    Standing::Unregistered
}

/// A token bucket per key: `per_second` sustained, `burst` at once.
#[derive(Debug)]
struct Limiter<K> {
    per_second: f64,
    burst: f64,
    buckets: HashMap<K, TokenBucket>,
    /// When idle buckets were last forgotten: at most once a second, so that a flood of new
    /// keys into a full map cannot make every request scan it.
    purged: Option<Instant>,
}

impl<K: StdHash + Eq + Clone> Limiter<K> {
    fn new(per_second: u32, burst: u32) -> Self {
        Limiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
            purged: None,
        }
    }

    /// Takes one token for `key`; false if it has none left (or too many keys are tracked
    /// and none of them is idle).
    fn take(&mut self, key: &K, now: Instant) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= LIMITED_KEYS_MAX {
            if self.purged.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
                return false;
            }
            // Forget the keys whose buckets have refilled: they are as good as new.
            self.purged = Some(now);
            let (rate, burst) = (self.per_second, self.burst);
            self.buckets.retain(|_, bucket| bucket.level(rate, burst, now) < burst);
            if self.buckets.len() >= LIMITED_KEYS_MAX {
                return false;
            }
        }
        let (rate, burst) = (self.per_second, self.burst);
        self.buckets.entry(key.clone()).or_insert_with(|| TokenBucket::full(burst, now)).take(1.0, rate, burst, now)
    }
}

/// The (key, nonce) pairs seen within the time window, oldest first.
#[derive(Debug, Default)]
struct Replays {
    seen: std::collections::HashSet<(PublicKey, [u8; 16])>,
    order: VecDeque<(u64, PublicKey, [u8; 16])>,
}

impl Replays {
    /// Records the pair; false if it was seen already (or the cache is full).
    fn first_time(&mut self, key: PublicKey, nonce: [u8; 16], expires_ms: u64, now_ms: u64) -> Result<(), String> {
        while let Some(&(expiry, k, n)) = self.order.front() {
            if expiry > now_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&(k, n));
        }
        if self.seen.contains(&(key, nonce)) {
            return Err("the request was sent before (its key and nonce were seen): sign each request anew".into());
        }
        if self.seen.len() >= REPLAY_ENTRIES_MAX {
            return Err("too many signed requests in the time window: try again shortly".into());
        }
        self.seen.insert((key, nonce));
        self.order.push_back((expires_ms, key, nonce));
        Ok(())
    }
}

/// The access control of one node's RPC.
#[derive(Debug)]
pub struct Gate {
    mode: AccessMode,
    chain_id: String,
    storage: Arc<Storage>,
    window_ms: u64,
    call_timeout: Duration,
    body_bytes_max: usize,
    replays: Mutex<Replays>,
    by_address: Mutex<Limiter<IpAddr>>,
    by_principal: Mutex<Limiter<AccountId>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn refusal(code: i32, message: String) -> ErrorObjectOwned {
    ErrorObject::owned(code, message, None::<()>)
}

impl Gate {
    pub fn new(cfg: &RpcConfig, chain_id: &str, storage: Arc<Storage>) -> Gate {
        Gate {
            mode: cfg.access,
            chain_id: chain_id.to_string(),
            storage,
            window_ms: cfg.auth_window_ms,
            call_timeout: Duration::from_millis(cfg.call_timeout_ms),
            body_bytes_max: cfg.request_bytes_max as usize,
            replays: Mutex::new(Replays::default()),
            by_address: Mutex::new(Limiter::new(cfg.rate.per_address_per_second, cfg.rate.per_address_burst)),
            by_principal: Mutex::new(Limiter::new(cfg.rate.per_principal_per_second, cfg.rate.per_principal_burst)),
        }
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Reads a request's signature headers and, if there are any, its body (at most the
    /// server's request limit), and returns the request with its verdict in its extensions.
    /// An oversized body is answered here, with 413.
    pub async fn authenticate<B>(
        &self,
        request: http::Request<B>,
    ) -> Result<http::Request<jsonrpsee::server::HttpBody>, jsonrpsee::server::HttpResponse>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<jsonrpsee::core::BoxError>,
    {
        use http_body_util::BodyExt;
        if self.mode == AccessMode::Open {
            let mut request = request.map(jsonrpsee::server::HttpBody::new);
            request.extensions_mut().insert(Auth::Open);
            return Ok(request);
        }
        let headers = request.headers();
        let parsed = RequestAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()));
        let auth = match parsed {
            Ok(None) => {
                let mut request = request.map(jsonrpsee::server::HttpBody::new);
                request.extensions_mut().insert(Auth::Anonymous);
                return Ok(request);
            }
            Ok(Some(auth)) => Ok(auth),
            Err(why) => Err(why),
        };
        let (mut parts, body) = request.into_parts();
        let limited = http_body_util::Limited::new(body, self.body_bytes_max);
        let body = match tokio::time::timeout(self.call_timeout, limited.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(_)) => {
                return Err(crate::rpc::plain(
                    413,
                    "text/plain",
                    format!("request body over the limit of {} bytes", self.body_bytes_max),
                ));
            }
            Err(_) => return Err(crate::rpc::plain(408, "text/plain", "request body not received in time".into())),
        };
        let verdict = match auth {
            Ok(auth) => self.check(&auth, &body),
            Err(why) => Auth::Refused(why),
        };
        parts.extensions.insert(verdict);
        Ok(http::Request::from_parts(parts, jsonrpsee::server::HttpBody::from(body.to_vec())))
    }

    fn check(&self, auth: &RequestAuth, body: &[u8]) -> Auth {
        let now = now_ms();
        let skew = now.abs_diff(auth.timestamp_ms);
        if skew > self.window_ms {
            return Auth::Refused(format!(
                "the request was signed {skew} ms from this node's clock; at most {} ms are allowed (check the clock)",
                self.window_ms
            ));
        }
        let suite = self.storage.suite();
        if let Err(wrong) = auth.key.check_suite(suite) {
            return Auth::Refused(format!("the request's signing key is refused: {wrong}"));
        }
        if !auth.verify(&self.chain_id, body) {
            return Auth::Refused(format!(
                "the request's signature does not verify for key {} on chain {}",
                auth.key, self.chain_id
            ));
        }
        let expires = auth.timestamp_ms.saturating_add(self.window_ms).saturating_add(1);
        if let Err(why) =
            self.replays.lock().expect("replay lock poisoned").first_time(auth.key, auth.nonce, expires, now)
        {
            return Auth::Refused(why);
        }
        let account = AccountId::from_public_key(&auth.key);
        Auth::Signed(Caller { standing: standing(&self.storage, &account), account })
    }

    /// Whether the call may go on: its rate, then its class against the caller.
    pub fn admit(&self, request: &Request<'_>) -> Result<(), ErrorObjectOwned> {
        let extensions = request.extensions();
        let now = Instant::now();
        if let Some(Remote(address)) = extensions.get::<Remote>()
            && !self.by_address.lock().expect("limiter lock poisoned").take(&address.ip(), now)
        {
            return Err(refusal(
                code::RATE_LIMITED,
                format!("too many requests from {}: slow down and retry", address.ip()),
            ));
        }
        let auth = extensions.get::<Auth>().cloned().unwrap_or(Auth::Anonymous);
        let name = request.method_name();
        if let Auth::Signed(caller) = &auth
            && !self.by_principal.lock().expect("limiter lock poisoned").take(&caller.account, now)
        {
            return Err(refusal(
                code::RATE_LIMITED,
                format!("too many requests from account {}: slow down and retry", caller.account),
            ));
        }
        let class = class(name);
        if class == Class::Public {
            return Ok(());
        }
        let caller = match auth {
            Auth::Open => return Ok(()),
            Auth::Anonymous => {
                return Err(refusal(
                    code::UNAUTHENTICATED,
                    format!(
                        "{name} needs a request signed by a registered principal (headers {}, {}, {}, {}); \
                         anonymous callers may read status, headers and proofs only",
                        shutong_api::auth::KEY_HEADER,
                        shutong_api::auth::TIMESTAMP_HEADER,
                        shutong_api::auth::NONCE_HEADER,
                        shutong_api::auth::SIGNATURE_HEADER
                    ),
                ));
            }
            Auth::Refused(why) => return Err(refusal(code::AUTH_INVALID, why)),
            Auth::Signed(caller) => caller,
        };
        match (&caller.standing, class) {
            (Standing::Principal { roles, .. }, Class::Auditor) if roles & registry::role::AUDITOR != 0 => Ok(()),
            (_, Class::Auditor) => Err(refusal(
                code::FORBIDDEN,
                format!("{name} needs a principal with the auditor role; account {} has none", caller.account),
            )),
            // What a new organisation needs to join: its own nonce, its own registration (the
            // handlers check both are its own), and the receipt.
            (Standing::Unregistered, Class::Principal)
                if matches!(name, method::SUBMIT_TX | method::GET_NONCE | method::GET_RECEIPT) =>
            {
                Ok(())
            }
            (Standing::Unregistered, _) => Err(refusal(
                code::FORBIDDEN,
                format!(
                    "account {} is not a registered principal of an active organisation on this chain",
                    caller.account
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// May `auth` submit `tx`? A registered caller may submit any transaction (a gateway
/// relays others'); an unregistered one only its own registration of an organisation.
pub fn may_submit(auth: Option<&Auth>, tx: &shutong_types::SignedTransaction) -> Result<(), ErrorObjectOwned> {
    let Some(Auth::Signed(Caller { account, standing: Standing::Unregistered })) = auth else {
        return Ok(());
    };
    let registry = Address::system(names::REGISTRY);
    if tx.tx.sender == *account && tx.tx.call.contract == registry && tx.tx.call.method == "register" {
        return Ok(());
    }
    Err(refusal(
        code::FORBIDDEN,
        format!(
            "account {account} is not a registered principal: it may submit only its own registration of an \
             organisation (registry.register)"
        ),
    ))
}

/// May `auth` read `account`'s nonce? Anyone registered may; an unregistered key its own.
pub fn may_read_nonce(auth: Option<&Auth>, account: &AccountId) -> Result<(), ErrorObjectOwned> {
    match auth {
        Some(Auth::Signed(Caller { account: caller, standing: Standing::Unregistered })) if caller != account => {
            Err(refusal(
                code::FORBIDDEN,
                format!("account {caller} is not a registered principal: it may read its own nonce only"),
            ))
        }
        _ => Ok(()),
    }
}

/// The JSON-RPC middleware that applies a [`Gate`] to every call.
#[derive(Debug, Clone)]
pub struct GuardLayer(pub Arc<Gate>);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, service: S) -> Guard<S> {
        Guard { service, gate: Arc::clone(&self.0) }
    }
}

#[derive(Debug, Clone)]
pub struct Guard<S> {
    service: S,
    gate: Arc<Gate>,
}

impl<S> RpcServiceT for Guard<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse, BatchResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let gate = Arc::clone(&self.gate);
        async move {
            let id = request.id().into_owned();
            if let Err(err) = gate.admit(&request) {
                return MethodResponse::error(id, err);
            }
            let name = request.method_name().to_string();
            match tokio::time::timeout(gate.call_timeout(), service.call(request)).await {
                Ok(response) => response,
                Err(_) => MethodResponse::error(
                    id,
                    refusal(
                        code::TIMEOUT,
                        format!("{name} ran over the node's limit of {} ms", gate.call_timeout().as_millis()),
                    ),
                ),
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            if let Ok(BatchEntry::Call(request)) = entry
                && let Err(err) = self.gate.admit(request)
            {
                *entry = Err(BatchEntryErr::new(request.id().into_owned(), err));
            }
        }
        self.service.batch(batch)
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut limiter = Limiter::new(10, 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.take(&1u8, t0)));
        assert!(!limiter.take(&1u8, t0), "the burst is spent");
        assert!(limiter.take(&2u8, t0), "another key has its own bucket");
        assert!(limiter.take(&1u8, t0 + Duration::from_millis(100)), "a tenth of a second refills one token");
        assert!(!limiter.take(&1u8, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn a_nonce_is_accepted_once_within_the_window_and_forgotten_after() {
        let mut replays = Replays::default();
        assert!(replays.first_time(PublicKey::Ed25519([1; 32]), [2; 16], 1_000, 0).is_ok());
        assert!(
            replays.first_time(PublicKey::Ed25519([1; 32]), [2; 16], 1_000, 500).unwrap_err().contains("sent before")
        );
        assert!(
            replays.first_time(PublicKey::Ed25519([9; 32]), [2; 16], 1_000, 500).is_ok(),
            "another key, same nonce"
        );
        // After the window the entry is gone; the time check refuses such an old request anyway.
        assert!(replays.first_time(PublicKey::Ed25519([1; 32]), [2; 16], 3_000, 1_500).is_ok());
        assert_eq!(replays.seen.len(), 1, "both older entries left with their window");
    }

    #[test]
    fn status_and_proofs_are_public_writes_and_reads_are_not() {
        assert_eq!(class(method::STATUS), Class::Public);
        assert_eq!(class(method::GET_STATE_PROOF), Class::Public);
        assert_eq!(class(method::SUBMIT_TX), Class::Principal);
        assert_eq!(class(method::QUERY), Class::Principal);
        assert_eq!(class(method::GET_BLOCK), Class::Principal);
        assert_eq!(class(method::SUBSCRIBE_EVENTS), Class::Principal);
        assert_eq!(class(method::AUDIT_QUERY), Class::Auditor);
        assert_eq!(class("shutong_noSuchMethod"), Class::Principal);
    }
}
