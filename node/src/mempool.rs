//! The mempool: admission checks and a bounded pool of pending transactions per sender.
//!
//! Admission runs the cheap checks first and the signature check last; a refused
//! transaction gets an [`AdmitError`] naming the problem and changes nothing. Each signature
//! is verified here, once per node, and never again at execution.

use shutong_types::limits::TX_BYTES_MAX;
use shutong_types::{AccountId, Address, Decode, DecodeError, Hash, SignedTransaction, TxAuthError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Bounds of the pool, validated in the node's config.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The most transactions pending in all.
    pub txs_max: usize,
    /// The most transactions pending for one sender; also how far past its committed nonce
    /// a sender's nonce may run.
    pub sender_txs_max: u64,
    /// The farthest ahead of the next height a transaction's expiry may be.
    pub expiry_blocks_max: u64,
    /// The highest gas limit a transaction may ask for.
    pub gas_limit_max: u64,
    /// The most bytes of transactions pending in all.
    #[serde(default = "default_bytes_max")]
    pub bytes_max: usize,
}

fn default_bytes_max() -> usize {
    256 << 20
}

impl Default for Config {
    fn default() -> Self {
        Config {
            txs_max: 50_000,
            sender_txs_max: 1_000,
            expiry_blocks_max: 100_000,
            gas_limit_max: 100_000_000,
            bytes_max: default_bytes_max(),
        }
    }
}

/// Why a transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("transaction is {size} bytes, above the maximum {max}")]
    TooLarge { size: usize, max: usize },
    #[error("transaction does not decode: {0}")]
    Malformed(DecodeError),
    #[error("transaction is for chain {got:?}, this is chain {expected:?}")]
    WrongChain { got: String, expected: String },
    #[error("transaction expired at height {expiry}; the next block is {next_height}")]
    Expired { expiry: u64, next_height: u64 },
    #[error("transaction expiry {expiry} is more than {max} blocks past the next height {next_height}")]
    ExpiryTooFar { expiry: u64, next_height: u64, max: u64 },
    #[error("gas limit {gas_limit} is outside {min}..={max}")]
    GasLimit { gas_limit: u64, min: u64, max: u64 },
    #[error("nonce {nonce} of account {sender} is already used; the next nonce is {expected}")]
    NonceTooLow { sender: AccountId, nonce: u64, expected: u64 },
    #[error("nonce {nonce} of account {sender} is too far ahead of the next nonce {expected} (window {window})")]
    NonceTooHigh { sender: AccountId, nonce: u64, expected: u64, window: u64 },
    #[error("a transaction of account {sender} with nonce {nonce} is already pending")]
    Duplicate { sender: AccountId, nonce: u64 },
    #[error("invalid signature: {0}")]
    BadSignature(TxAuthError),
    #[error("mempool is full ({max} transactions)")]
    Full { max: usize },
    #[error("mempool is full ({max} bytes)")]
    FullBytes { max: usize },
    #[error("no contract at address {0}")]
    UnknownContract(Address),
    #[error("contract {contract} has no method {method:?}")]
    UnknownMethod { contract: Address, method: String },
}

/// What admission needs to know about the chain.
pub trait ChainView {
    fn chain_id(&self) -> &str;
    /// The chain's crypto suite: a transaction signed by a key of the other is refused.
    fn suite(&self) -> shutong_types::Suite;
    /// The height of the next block.
    fn next_height(&self) -> u64;
    /// The account's next nonce in committed state.
    fn committed_nonce(&self, account: &AccountId) -> u64;
    /// Checks that the contract exists and exports the method.
    fn check_call(&self, contract: &Address, method: &str) -> Result<(), AdmitError>;
}

/// Pending transactions, by sender and nonce.
#[derive(Debug, Default)]
pub struct Mempool {
    cfg: Config,
    by_sender: HashMap<AccountId, BTreeMap<u64, Arc<SignedTransaction>>>,
    /// Every pending transaction's id and encoded size.
    ids: HashMap<Hash, usize>,
    bytes: usize,
    /// Transactions clients submitted here that no batch carries yet.
    fresh: Vec<Arc<SignedTransaction>>,
    /// The pending transactions clients submitted here (kept durable by the node until they
    /// leave the pool), with how often [`Mempool::resend_due`] has seen each.
    local: HashMap<Hash, Local>,
}

#[derive(Debug)]
struct Local {
    tx: Arc<SignedTransaction>,
    rounds: u32,
}

/// The least gas a transaction may ask for: what a call costs before it runs.
pub const GAS_LIMIT_MIN: u64 = shutong_vm::gas::V1.call_base;

impl Mempool {
    pub fn new(cfg: Config) -> Mempool {
        Mempool {
            cfg,
            by_sender: HashMap::new(),
            ids: HashMap::new(),
            bytes: 0,
            fresh: Vec::new(),
            local: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &Hash) -> bool {
        self.ids.contains_key(id)
    }

    /// The encoded bytes of every pending transaction.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Checks `bytes` as a transaction a client submitted and adds it to the pool, to be
    /// batched and sent to the other validators; returns its id.
    pub fn admit(&mut self, bytes: &[u8], chain: &dyn ChainView) -> Result<Hash, AdmitError> {
        let tx = self.check_and_add(bytes, chain)?;
        let id = tx.id();
        self.local.insert(id, Local { tx: Arc::clone(&tx), rounds: 0 });
        self.fresh.push(tx);
        Ok(id)
    }

    /// Takes back a transaction [`Mempool::admit`] just added, which the node could not
    /// keep durably and so never acknowledged.
    pub fn withdraw(&mut self, id: &Hash) {
        let Some(at) = self.fresh.iter().rposition(|tx| tx.id() == *id) else { return };
        let tx = self.fresh.remove(at);
        if let Some(size) = self.ids.remove(id) {
            self.bytes -= size;
        }
        self.local.remove(id);
        if let Some(pending) = self.by_sender.get_mut(&tx.tx.sender) {
            pending.remove(&tx.tx.nonce);
            if pending.is_empty() {
                self.by_sender.remove(&tx.tx.sender);
            }
        }
    }

    /// The transactions clients submitted here that are still pending, each handed out again
    /// on the 2nd, 4th, 8th, ... 64th call after it was admitted and every 64th after that:
    /// a batch lost on its way (a connection that broke) would otherwise leave a transaction
    /// only here, committed only when this node leads, and never on a full node or a
    /// validator the committee removed. The cost falls off with a transaction's age. In
    /// sender and nonce order.
    pub fn resend_due(&mut self) -> Vec<Arc<SignedTransaction>> {
        let mut due: Vec<Arc<SignedTransaction>> = self
            .local
            .values_mut()
            .filter_map(|local| {
                local.rounds += 1;
                let r = local.rounds;
                (r >= 2 && ((r <= 64 && r.is_power_of_two()) || r % 64 == 0)).then(|| Arc::clone(&local.tx))
            })
            .collect();
        due.sort_by_key(|tx| (tx.tx.sender, tx.tx.nonce));
        due
    }

    /// Checks a transaction that came in another validator's batch and adds it to the pool.
    pub fn admit_from_peer(&mut self, bytes: &[u8], chain: &dyn ChainView) -> Result<Hash, AdmitError> {
        self.check_and_add(bytes, chain).map(|tx| tx.id())
    }

    /// The first nonce of `sender` at or after its committed one that no pending
    /// transaction holds: where the node's own transactions (evidence reports) go, so one
    /// that lapsed leaves no gap behind it.
    pub fn next_nonce(&self, sender: &AccountId, chain: &dyn ChainView) -> u64 {
        let mut nonce = chain.committed_nonce(sender);
        if let Some(pending) = self.by_sender.get(sender) {
            while pending.contains_key(&nonce) {
                nonce += 1;
            }
        }
        nonce
    }

    /// The transactions clients submitted here since the last call, still pending.
    pub fn take_fresh(&mut self) -> Vec<Arc<SignedTransaction>> {
        let ids = &self.ids;
        let mut fresh = std::mem::take(&mut self.fresh);
        fresh.retain(|tx| ids.contains_key(&tx.id()));
        fresh
    }

    fn check_and_add(&mut self, bytes: &[u8], chain: &dyn ChainView) -> Result<Arc<SignedTransaction>, AdmitError> {
        if bytes.len() > TX_BYTES_MAX {
            return Err(AdmitError::TooLarge { size: bytes.len(), max: TX_BYTES_MAX });
        }
        let signed = SignedTransaction::decode(bytes).map_err(AdmitError::Malformed)?;
        let tx = &signed.tx;
        if tx.chain_id != chain.chain_id() {
            return Err(AdmitError::WrongChain { got: tx.chain_id.clone(), expected: chain.chain_id().to_string() });
        }
        let next_height = chain.next_height();
        if tx.expiry_height < next_height {
            return Err(AdmitError::Expired { expiry: tx.expiry_height, next_height });
        }
        if tx.expiry_height - next_height > self.cfg.expiry_blocks_max {
            return Err(AdmitError::ExpiryTooFar {
                expiry: tx.expiry_height,
                next_height,
                max: self.cfg.expiry_blocks_max,
            });
        }
        if !(GAS_LIMIT_MIN..=self.cfg.gas_limit_max).contains(&tx.gas_limit) {
            return Err(AdmitError::GasLimit {
                gas_limit: tx.gas_limit,
                min: GAS_LIMIT_MIN,
                max: self.cfg.gas_limit_max,
            });
        }
        let expected = chain.committed_nonce(&tx.sender);
        if tx.nonce < expected {
            return Err(AdmitError::NonceTooLow { sender: tx.sender, nonce: tx.nonce, expected });
        }
        if tx.nonce - expected >= self.cfg.sender_txs_max {
            let window = self.cfg.sender_txs_max;
            return Err(AdmitError::NonceTooHigh { sender: tx.sender, nonce: tx.nonce, expected, window });
        }
        if self.by_sender.get(&tx.sender).is_some_and(|pending| pending.contains_key(&tx.nonce)) {
            return Err(AdmitError::Duplicate { sender: tx.sender, nonce: tx.nonce });
        }
        if self.len() >= self.cfg.txs_max {
            return Err(AdmitError::Full { max: self.cfg.txs_max });
        }
        if self.bytes + bytes.len() > self.cfg.bytes_max {
            return Err(AdmitError::FullBytes { max: self.cfg.bytes_max });
        }
        chain.check_call(&tx.call.contract, &tx.call.method)?;
        signed.verify(chain.suite()).map_err(AdmitError::BadSignature)?;
        self.ids.insert(signed.id(), bytes.len());
        self.bytes += bytes.len();
        let signed = Arc::new(signed);
        self.by_sender.entry(signed.tx.sender).or_default().insert(signed.tx.nonce, Arc::clone(&signed));
        Ok(signed)
    }

    /// Up to `max` transactions declaring at most `gas_max` gas in all, for the next block:
    /// for each sender, the run of consecutive nonces that starts at its committed nonce,
    /// interleaved across senders.
    pub fn select(&self, max: usize, gas_max: u64, chain: &dyn ChainView) -> Vec<Arc<SignedTransaction>> {
        let next_height = chain.next_height();
        let mut runs: Vec<Vec<Arc<SignedTransaction>>> = Vec::new();
        for (sender, pending) in &self.by_sender {
            let committed = chain.committed_nonce(sender);
            let run: Vec<Arc<SignedTransaction>> = pending
                .range(committed..)
                .zip(committed..)
                .take_while(|((nonce, tx), expected)| **nonce == *expected && tx.tx.expiry_height >= next_height)
                .take(max)
                .map(|((_, tx), _)| Arc::clone(tx))
                .collect();
            if !run.is_empty() {
                runs.push(run);
            }
        }
        // Deterministic order: by sender, then round-robin so no sender starves the others.
        runs.sort_by_key(|run| run[0].tx.sender);
        let mut out = Vec::new();
        let mut gas = 0u64;
        // A sender whose next transaction does not fit stops there: its later nonces need it.
        let mut blocked = vec![false; runs.len()];
        let mut round = 0;
        while out.len() < max && runs.iter().any(|run| run.len() > round) {
            for (run, blocked) in runs.iter().zip(blocked.iter_mut()) {
                let Some(tx) = run.get(round).filter(|_| !*blocked && out.len() < max) else { continue };
                if gas + tx.tx.gas_limit > gas_max {
                    *blocked = true;
                    continue;
                }
                gas += tx.tx.gas_limit;
                out.push(Arc::clone(tx));
            }
            round += 1;
        }
        out
    }

    /// Drops every transaction whose nonce is below its sender's committed nonce, and every
    /// one that expired before `next_height`.
    /// Drops what can no longer be included: nonces the chain has used, and expired
    /// transactions. Returns the ids of those dropped that clients submitted here.
    pub fn prune(&mut self, chain: &dyn ChainView) -> Vec<Hash> {
        let next_height = chain.next_height();
        let ids = &mut self.ids;
        let bytes = &mut self.bytes;
        let local = &mut self.local;
        let mut dropped = Vec::new();
        self.by_sender.retain(|sender, pending| {
            let committed = chain.committed_nonce(sender);
            pending.retain(|nonce, tx| {
                let keep = *nonce >= committed && tx.tx.expiry_height >= next_height;
                if !keep {
                    let id = tx.id();
                    if let Some(size) = ids.remove(&id) {
                        *bytes -= size;
                    }
                    if local.remove(&id).is_some() {
                        dropped.push(id);
                    }
                }
                keep
            });
            !pending.is_empty()
        });
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_codec::Encode;
    use shutong_types::{Call, Keypair, Transaction};

    struct FakeChain {
        next_height: u64,
        nonces: HashMap<AccountId, u64>,
    }

    const CONTRACT: Address = Address([1; 32]);

    impl ChainView for FakeChain {
        fn chain_id(&self) -> &str {
            "test-chain"
        }
        fn suite(&self) -> shutong_types::Suite {
            shutong_types::Suite::Ed25519Blake3
        }
        fn next_height(&self) -> u64 {
            self.next_height
        }
        fn committed_nonce(&self, account: &AccountId) -> u64 {
            self.nonces.get(account).copied().unwrap_or(0)
        }
        fn check_call(&self, contract: &Address, method: &str) -> Result<(), AdmitError> {
            if *contract != CONTRACT {
                return Err(AdmitError::UnknownContract(*contract));
            }
            if method != "m" {
                return Err(AdmitError::UnknownMethod { contract: *contract, method: method.into() });
            }
            Ok(())
        }
    }

    fn chain() -> FakeChain {
        FakeChain { next_height: 10, nonces: HashMap::new() }
    }

    fn tx(key: &Keypair, nonce: u64) -> Transaction {
        Transaction {
            chain_id: "test-chain".into(),
            sender: key.account(),
            nonce,
            gas_limit: 1_000_000,
            expiry_height: 20,
            call: Call { contract: CONTRACT, method: "m".into(), args: vec![] },
        }
    }

    fn small_pool() -> Mempool {
        Mempool::new(Config {
            txs_max: 3,
            sender_txs_max: 2,
            expiry_blocks_max: 100,
            gas_limit_max: 10_000_000,
            bytes_max: 1 << 20,
        })
    }

    /// Admits `bytes` into a pool that already holds one transaction and checks that a
    /// refusal leaves the pool as it was.
    fn refused(pool: &mut Mempool, bytes: &[u8], chain: &FakeChain) -> AdmitError {
        let before = pool.len();
        let err = pool.admit(bytes, chain).unwrap_err();
        assert_eq!(pool.len(), before, "a refused transaction changed the pool");
        err
    }

    #[test]
    fn each_admission_rule_refuses_with_its_own_error() {
        let key = Keypair::from_seed("a");
        let chain = chain();
        let mut pool = small_pool();
        pool.admit(&tx(&key, 0).sign(&key).encode(), &chain).unwrap();

        let big = vec![0u8; TX_BYTES_MAX + 1];
        assert!(matches!(refused(&mut pool, &big, &chain), AdmitError::TooLarge { .. }));
        assert!(matches!(refused(&mut pool, b"\x01\x02", &chain), AdmitError::Malformed(_)));

        let mut t = tx(&key, 1);
        t.chain_id = "other".into();
        assert!(matches!(refused(&mut pool, &t.sign(&key).encode(), &chain), AdmitError::WrongChain { .. }));

        let mut t = tx(&key, 1);
        t.expiry_height = 9;
        assert_eq!(
            refused(&mut pool, &t.sign(&key).encode(), &chain),
            AdmitError::Expired { expiry: 9, next_height: 10 }
        );

        let mut t = tx(&key, 1);
        t.expiry_height = 1_000;
        assert!(matches!(refused(&mut pool, &t.sign(&key).encode(), &chain), AdmitError::ExpiryTooFar { .. }));

        let mut t = tx(&key, 1);
        t.gas_limit = 1;
        assert!(matches!(
            refused(&mut pool, &t.sign(&key).encode(), &chain),
            AdmitError::GasLimit { gas_limit: 1, .. }
        ));

        assert!(matches!(
            refused(&mut pool, &tx(&key, 0).sign(&key).encode(), &chain),
            AdmitError::Duplicate { nonce: 0, .. }
        ));
        assert!(matches!(
            refused(&mut pool, &tx(&key, 2).sign(&key).encode(), &chain),
            AdmitError::NonceTooHigh { nonce: 2, .. }
        ));

        let mut t = tx(&key, 1);
        t.call.contract = Address([2; 32]);
        assert!(matches!(refused(&mut pool, &t.sign(&key).encode(), &chain), AdmitError::UnknownContract(_)));
        let mut t = tx(&key, 1);
        t.call.method = "other".into();
        assert!(matches!(refused(&mut pool, &t.sign(&key).encode(), &chain), AdmitError::UnknownMethod { .. }));

        let mut signed = tx(&key, 1).sign(&key);
        signed.signature.0[0] ^= 1;
        assert!(matches!(refused(&mut pool, &signed.encode(), &chain), AdmitError::BadSignature(_)));
        let other = Keypair::from_seed("b");
        let mut stolen = tx(&key, 1).sign(&other);
        stolen.tx.sender = key.account();
        assert!(matches!(
            refused(&mut pool, &stolen.encode(), &chain),
            AdmitError::BadSignature(TxAuthError::SignerNotSender { .. })
        ));
    }

    #[test]
    fn a_committed_nonce_is_a_replay() {
        let key = Keypair::from_seed("a");
        let mut chain = chain();
        chain.nonces.insert(key.account(), 5);
        let mut pool = small_pool();
        let err = refused(&mut pool, &tx(&key, 4).sign(&key).encode(), &chain);
        assert_eq!(err, AdmitError::NonceTooLow { sender: key.account(), nonce: 4, expected: 5 });
    }

    #[test]
    fn a_full_pool_refuses_more() {
        let chain = chain();
        let mut pool = small_pool();
        for seed in ["a", "b", "c"] {
            let key = Keypair::from_seed(seed);
            pool.admit(&tx(&key, 0).sign(&key).encode(), &chain).unwrap();
        }
        let key = Keypair::from_seed("d");
        assert_eq!(refused(&mut pool, &tx(&key, 0).sign(&key).encode(), &chain), AdmitError::Full { max: 3 });
    }

    #[test]
    fn selection_takes_consecutive_nonces_and_prune_drops_committed_ones() {
        let mut chain = chain();
        let mut pool = Mempool::new(Config::default());
        let a = Keypair::from_seed("a");
        let b = Keypair::from_seed("b");
        for (key, nonce) in [(&a, 0), (&a, 1), (&a, 3), (&b, 0)] {
            pool.admit(&tx(key, nonce).sign(key).encode(), &chain).unwrap();
        }
        let picked: Vec<(AccountId, u64)> =
            pool.select(10, u64::MAX, &chain).iter().map(|t| (t.tx.sender, t.tx.nonce)).collect();
        assert_eq!(picked.len(), 3, "nonce 3 waits for nonce 2: {picked:?}");
        assert!(!picked.contains(&(a.account(), 3)));
        assert_eq!(pool.select(1, u64::MAX, &chain).len(), 1);
        assert_eq!(pool.select(10, 2_500_000, &chain).len(), 2, "each declares 1,000,000 gas");
        chain.nonces.insert(a.account(), 2);
        pool.prune(&chain);
        assert_eq!(pool.len(), 2);
        chain.next_height = 21;
        pool.prune(&chain);
        assert!(pool.is_empty(), "expired transactions are pruned");
    }

    #[test]
    fn prune_names_the_dropped_transactions_clients_submitted_here() {
        let mut chain = chain();
        let mut pool = Mempool::new(Config::default());
        let (mine, peers) = (Keypair::from_seed("mine"), Keypair::from_seed("peers"));
        let local = pool.admit(&tx(&mine, 0).sign(&mine).encode(), &chain).unwrap();
        let kept = pool.admit(&tx(&mine, 1).sign(&mine).encode(), &chain).unwrap();
        pool.admit_from_peer(&tx(&peers, 0).sign(&peers).encode(), &chain).unwrap();
        // Nonce 0 of both accounts is used on chain: both leave, only the local one is named.
        chain.nonces.insert(mine.account(), 1);
        chain.nonces.insert(peers.account(), 1);
        assert_eq!(pool.prune(&chain), vec![local]);
        chain.next_height = 21;
        assert_eq!(pool.prune(&chain), vec![kept], "expired");
        assert!(pool.is_empty() && pool.prune(&chain).is_empty());
    }

    #[test]
    fn a_pending_local_transaction_is_handed_out_again_less_and_less_often() {
        let mut pool = Mempool::new(Config::default());
        let chain = chain();
        let mine = Keypair::from_seed("resend");
        let id = pool.admit(&tx(&mine, 0).sign(&mine).encode(), &chain).unwrap();
        // From a peer: not this node's to send again.
        let theirs = Keypair::from_seed("peer");
        pool.admit_from_peer(&tx(&theirs, 0).sign(&theirs).encode(), &chain).unwrap();
        let rounds: Vec<u32> = (1..=200).filter(|_| !pool.resend_due().is_empty()).collect();
        assert_eq!(rounds, [2, 4, 8, 16, 32, 64, 128, 192]);
        assert_eq!(pool.resend_due().len(), 0);
        pool.withdraw(&id);
        assert!((0..200).all(|_| pool.resend_due().is_empty()), "a withdrawn transaction is not sent");
    }
}
