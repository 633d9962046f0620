//! The simulated runtime: an event queue in virtual time, the network, and one host per
//! simulated process around a real consensus engine.

use super::wire::{SimBlock, SimMessage};
use super::{DELTA_MS, Fault, Report, Rng, Scenario, Violation};
use shutong_consensus::{Config, Effect, Engine, Finalized, Input, Message, Proposal, SignedVote, Timer, Verifier};
use shutong_types::{Certificate, Decode, Encode, Hash, Keypair, PublicKey, Signature, VoteKind, VoteSubject};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Every signature is checked once per run, however many simulated validators see it: the
/// check is real ed25519, its result shared.
#[derive(Debug, Default)]
pub struct SignatureCache(Mutex<HashMap<[u8; 32], bool>>);

impl Verifier for SignatureCache {
    fn verify(&self, key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        let id =
            *blake3::Hasher::new().update(&key.encode()).update(&signature.0).update(message).finalize().as_bytes();
        let mut cache = self.0.lock().expect("signature cache lock");
        *cache.entry(id).or_insert_with(|| key.verify(message, signature).is_ok())
    }
}

/// Proposals parked while their parent block is fetched, per process.
const PARKED_MAX: usize = 16;

#[derive(Debug)]
enum Event {
    Deliver { to: usize, from: usize, bytes: Vec<u8> },
    Timer { process: usize, incarnation: u64, view: u64, timer: Timer },
    Build { process: usize, incarnation: u64, view: u64, block: SimBlock },
    Crash { process: usize },
    Restart { process: usize },
}

#[derive(Debug)]
struct Process {
    validator: u32,
    fault: Option<Fault>,
    key: Keypair,
    /// For twins: the validators this process talks to.
    reach: Option<Vec<bool>>,
    engine: Option<Engine<Arc<SignatureCache>>>,
    incarnation: u64,
    crash_pending: bool,
    // Durable across crashes (the node keeps these in RocksDB).
    blocks: HashMap<Hash, SimBlock>,
    wal: Vec<SignedVote>,
    /// Finalized digests by height; `chain[0]` is genesis.
    chain: Vec<Hash>,
    finalized: Finalized,
    /// Views of the finalized blocks committed after GST, to measure views between them.
    finalized_views_after_gst: Vec<u64>,
    // Lost on a crash.
    parked: Vec<(SimBlock, SignedVote, usize)>,
    pending_final: Option<(u64, Hash, Certificate)>,
    parked_build: Option<(u64, Hash, u64)>,
}

impl Process {
    fn honest(&self) -> bool {
        self.fault.is_none()
    }

    fn height(&self) -> u64 {
        self.chain.len() as u64 - 1
    }
}

struct Sim {
    scenario: Scenario,
    config: Config,
    keys: Vec<Keypair>,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    net: Rng,
    faults: Rng,
    processes: Vec<Process>,
    cache: Arc<SignatureCache>,
    finalized_at: HashMap<u64, (Hash, u32)>,
    heights_at_gst: Vec<u64>,
    trace: blake3::Hasher,
    report: Report,
    /// The highest honest view when validators are settled after GST.
    settle_view: Option<u64>,
    /// `SHUTONG_SIM_LOG=1`: print what each process does.
    log: bool,
}

/// Runs one scenario to the end: until every honest validator has finalized the required
/// blocks after GST, or the liveness deadline passes.
pub fn run(scenario: &Scenario) -> Result<Report, Violation> {
    let mut sim = Sim::new(scenario.clone());
    sim.start();
    let deadline = scenario.gst_ms + scenario.liveness_deadline_ms();
    let mut gst_done = false;
    let settle_at = scenario.gst_ms + scenario.settle_ms();
    while let Some(((time, _), event)) = sim.queue.pop_first() {
        if !gst_done && time >= scenario.gst_ms {
            gst_done = true;
            sim.heights_at_gst = sim.processes.iter().map(Process::height).collect();
        }
        if sim.settle_view.is_none() && time >= settle_at {
            let views = sim.processes.iter().filter(|p| p.honest()).filter_map(|p| p.engine.as_ref().map(Engine::view));
            sim.settle_view = Some(views.max().unwrap_or(0));
        }
        if time > deadline {
            break;
        }
        sim.now = time;
        sim.handle(event)?;
        if gst_done && sim.live_enough() {
            sim.report.liveness_ms = sim.now - scenario.gst_ms;
            return check_views(scenario, sim.finish());
        }
    }
    if !gst_done {
        sim.heights_at_gst = sim.processes.iter().map(Process::height).collect();
    }
    let required = scenario.blocks_after_gst;
    let stalled = !sim.live_enough();
    for (i, p) in sim.processes.iter().enumerate() {
        if p.honest() && (p.height() < sim.heights_at_gst[i] + required || stalled) {
            let state = sim
                .processes
                .iter()
                .map(|q| {
                    let view = q.engine.as_ref().map(Engine::view);
                    format!(
                        "v{} view {view:?} height {} pending {}",
                        q.validator,
                        q.height(),
                        q.pending_final.is_some()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Violation::Stalled {
                validator: p.validator,
                new_blocks: p.height() - sim.heights_at_gst[i],
                required,
                deadline_ms: scenario.liveness_deadline_ms(),
                state,
            });
        }
    }
    sim.report.liveness_ms = sim.now.saturating_sub(scenario.gst_ms);
    check_views(scenario, sim.finish())
}

/// Checks the view bound on a finished run: after GST, consecutive finalized blocks are at
/// most [`Scenario::views_between_finalizations_max`] views apart.
fn check_views(scenario: &Scenario, report: Report) -> Result<Report, Violation> {
    let bound = scenario.views_between_finalizations_max();
    if report.views_between_finalizations_max > bound {
        let views = report.views_between_finalizations_max;
        return Err(Violation::TooManyViews { views, bound, finalized_views: report.finalized_views });
    }
    Ok(report)
}

impl Sim {
    fn new(scenario: Scenario) -> Sim {
        let mut rng = Rng::new(scenario.seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let keys: Vec<Keypair> =
            (0..scenario.validators).map(|i| Keypair::from_seed(&format!("sim-{}-{i}", scenario.seed))).collect();
        let config = Config {
            chain_id: "sim".into(),
            epoch: 0,
            validators: keys.iter().map(Keypair::public).collect(),
            timeouts: scenario.timeouts,
        };
        let mut processes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let fault = scenario.faults.iter().find(|(v, _)| *v as usize == i).map(|(_, f)| *f);
            let twins = if fault == Some(Fault::Twins) { 2 } else { 1 };
            for twin in 0..twins {
                let reach = (twins == 2).then(|| (0..scenario.validators).map(|j| j % 2 == twin || j == i).collect());
                processes.push(Process {
                    validator: i as u32,
                    fault,
                    key: key.clone(),
                    reach,
                    engine: None,
                    incarnation: 0,
                    crash_pending: false,
                    blocks: HashMap::new(),
                    wal: Vec::new(),
                    chain: vec![Hash::ZERO],
                    finalized: Finalized { view: 0, digest: Hash::ZERO, certificate: None },
                    finalized_views_after_gst: Vec::new(),
                    parked: Vec::new(),
                    pending_final: None,
                    parked_build: None,
                });
            }
        }
        Sim {
            net: rng.fork(),
            faults: rng.fork(),
            scenario,
            config,
            keys,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            processes,
            cache: Arc::new(SignatureCache::default()),
            finalized_at: HashMap::new(),
            heights_at_gst: Vec::new(),
            trace: blake3::Hasher::new(),
            settle_view: None,
            log: std::env::var_os("SHUTONG_SIM_LOG").is_some(),
            report: Report {
                trace: [0; 32],
                height_min: 0,
                view_max: 0,
                liveness_ms: 0,
                views_between_finalizations_max: 0,
                finalized_views: Vec::new(),
                messages: 0,
                refused: 0,
                undecodable: 0,
                evidence: 0,
            },
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn start(&mut self) {
        for p in 0..self.processes.len() {
            if self.processes[p].fault != Some(Fault::Silent) {
                self.boot(p);
            }
        }
        for crash in self.scenario.crashes.clone() {
            for p in 0..self.processes.len() {
                if self.processes[p].validator == crash.validator && self.processes[p].honest() {
                    self.schedule(crash.at_ms, Event::Crash { process: p });
                    self.schedule(crash.restart_ms, Event::Restart { process: p });
                }
            }
        }
    }

    /// Starts (or restarts) a process's engine from its durable state.
    fn boot(&mut self, p: usize) {
        let process = &mut self.processes[p];
        let engine = Engine::new(self.config.clone(), process.key.clone().into(), self.cache.clone())
            .expect("every simulated key is a validator");
        process.engine = Some(engine);
        process.incarnation += 1;
        let input =
            Input::Start { finalized: process.finalized.clone(), own_votes: process.wal.clone(), vote_floor: 0 };
        self.step(p, input);
    }

    fn crash(&mut self, p: usize) {
        let process = &mut self.processes[p];
        process.engine = None;
        process.crash_pending = false;
        process.incarnation += 1;
        process.parked.clear();
        process.pending_final = None;
        process.parked_build = None;
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Deliver { to, from, bytes } => {
                self.trace.update(&[0]).update(&self.now.to_le_bytes()).update(&(to as u64).to_le_bytes());
                self.trace.update(&bytes);
                self.report.messages += 1;
                if self.processes[to].engine.is_none() {
                    return Ok(());
                }
                match SimMessage::decode(&bytes) {
                    Ok(message) => self.receive(to, from, message),
                    Err(_) => {
                        self.report.undecodable += 1;
                        Ok(())
                    }
                }
            }
            Event::Timer { process, incarnation, view, timer } => {
                self.trace.update(&[1]).update(&self.now.to_le_bytes()).update(&(process as u64).to_le_bytes());
                if self.processes[process].incarnation == incarnation {
                    self.step_checked(process, Input::Timeout { view, timer })?;
                }
                Ok(())
            }
            Event::Build { process, incarnation, view, block } => {
                if self.processes[process].incarnation == incarnation {
                    let digest = block.digest();
                    self.processes[process].blocks.insert(digest, block);
                    self.step_checked(process, Input::Propose { view, digest })?;
                }
                Ok(())
            }
            Event::Crash { process } => {
                self.trace.update(&[2]).update(&self.now.to_le_bytes());
                // Half the time the crash cuts the process's next step short, between
                // effects: after a vote is persisted, before it is sent.
                if self.faults.chance(500) {
                    self.processes[process].crash_pending = true;
                } else {
                    self.crash(process);
                }
                Ok(())
            }
            Event::Restart { process } => {
                self.trace.update(&[3]).update(&self.now.to_le_bytes());
                if self.processes[process].crash_pending || self.processes[process].engine.is_some() {
                    self.crash(process);
                }
                self.boot(process);
                Ok(())
            }
        }
    }

    fn receive(&mut self, p: usize, from: usize, message: SimMessage) -> Result<(), Violation> {
        match message {
            SimMessage::Consensus(Message::Vote(vote)) => self.step_checked(p, Input::Vote(vote)),
            SimMessage::Consensus(Message::Certificate(certificate)) => {
                self.step_checked(p, Input::Certificate(certificate))
            }
            SimMessage::Consensus(Message::CertificateRequest { views }) => {
                let engine = self.processes[p].engine.as_ref().expect("receive needs a running engine");
                let mut answers: Vec<Certificate> = Vec::new();
                for view in views {
                    for certificate in engine.certificates(view) {
                        if !answers.contains(&certificate) {
                            answers.push(certificate);
                        }
                    }
                }
                for certificate in answers {
                    self.send_to_process(p, from, &SimMessage::Consensus(Message::Certificate(certificate)));
                }
                Ok(())
            }
            SimMessage::Proposal { block, vote } => self.on_proposal(p, from, block, vote),
            SimMessage::BlockRequest(digest) => {
                if let Some(block) = self.processes[p].blocks.get(&digest).copied() {
                    self.send_to_process(p, from, &SimMessage::BlockResponse(block));
                }
                Ok(())
            }
            SimMessage::BlockResponse(block) => {
                self.processes[p].blocks.entry(block.digest()).or_insert(block);
                self.retry_parked(p)
            }
        }
    }

    /// The host's part of rule 6, then the engine's.
    fn on_proposal(&mut self, p: usize, from: usize, block: SimBlock, vote: SignedVote) -> Result<(), Violation> {
        let digest = block.digest();
        if vote.subject.digest != digest || vote.subject.view != block.view || vote.signer != block.proposer {
            self.report.refused += 1;
            return Ok(());
        }
        let process = &mut self.processes[p];
        let parent_height = if block.parent == Hash::ZERO && block.parent_view == 0 {
            Some((0, 0))
        } else {
            process.blocks.get(&block.parent).map(|b| (b.height, b.view))
        };
        match parent_height {
            None => {
                if self.log {
                    eprintln!(
                        "{:>6} p{p}: parked proposal of view {} for parent {}",
                        self.now, block.view, block.parent
                    );
                }
                if process.parked.len() < PARKED_MAX {
                    process.parked.push((block, vote, from));
                }
                let parent = block.parent;
                self.send_to_process(p, from, &SimMessage::BlockRequest(parent));
                Ok(())
            }
            Some((height, view)) if height + 1 == block.height && view == block.parent_view => {
                process.blocks.entry(digest).or_insert(block);
                let proposal =
                    Proposal { view: block.view, digest, parent: block.parent, parent_view: block.parent_view };
                self.step_checked(p, Input::Proposal { proposal, vote })
            }
            Some(_) => {
                self.report.refused += 1;
                Ok(())
            }
        }
    }

    fn retry_parked(&mut self, p: usize) -> Result<(), Violation> {
        let parked = std::mem::take(&mut self.processes[p].parked);
        for (block, vote, from) in parked {
            if self.processes[p].blocks.contains_key(&block.parent) {
                self.on_proposal(p, from, block, vote)?;
            } else {
                self.processes[p].parked.push((block, vote, from));
            }
        }
        if let Some((view, parent, parent_view)) = self.processes[p].parked_build.take() {
            self.build(p, view, parent, parent_view);
        }
        self.try_commit(p)
    }

    fn step_checked(&mut self, p: usize, input: Input) -> Result<(), Violation> {
        match self.step(p, input) {
            Some(result) => result,
            None => Ok(()),
        }
    }

    /// Feeds one input to a process's engine and carries out the effects, in order.
    fn step(&mut self, p: usize, input: Input) -> Option<Result<(), Violation>> {
        let engine = self.processes[p].engine.as_mut()?;
        let effects = match engine.step(input) {
            Ok(effects) => effects,
            Err(err) => {
                if self.log {
                    eprintln!("{:>6} p{p}: refused: {err}", self.now);
                }
                self.report.refused += 1;
                return Some(Ok(()));
            }
        };
        let view = engine.view();
        self.report.view_max = self.report.view_max.max(if self.processes[p].honest() { view } else { 0 });
        let cut = if self.processes[p].crash_pending {
            self.faults.below(effects.len() as u64 + 1) as usize
        } else {
            effects.len()
        };
        for effect in effects.into_iter().take(cut) {
            if let Err(violation) = self.apply(p, effect) {
                return Some(Err(violation));
            }
        }
        if self.processes[p].crash_pending {
            self.crash(p);
        }
        Some(Ok(()))
    }

    fn apply(&mut self, p: usize, effect: Effect) -> Result<(), Violation> {
        let validator = self.processes[p].validator;
        if self.log {
            let line = match &effect {
                Effect::PersistVote(v) => {
                    Some(format!("vote {:?} {} {}", v.subject.kind, v.subject.view, v.subject.digest))
                }
                Effect::BroadcastCertificate(c) => Some(format!("cert {:?} {}", c.subject.kind, c.subject.view)),
                Effect::ScheduleTimer { view, timer: Timer::Leader, after_ms } => {
                    Some(format!("enter {view} t_l {after_ms}"))
                }
                Effect::RequestCertificates { views } => Some(format!("request {views:?}")),
                Effect::Finalized { view, .. } => Some(format!("finalized {view}")),
                _ => None,
            };
            if let Some(line) = line {
                eprintln!("{:>6} p{p} v{validator}: {line}", self.now);
            }
        }
        match effect {
            Effect::PersistVote(vote) => {
                if self.processes[p].honest() {
                    check_conflicts(validator, &self.processes[p].wal, &vote)?;
                }
                self.processes[p].wal.push(vote);
            }
            Effect::BroadcastVote(vote) => {
                self.check_persisted(p, &vote)?;
                self.broadcast(p, &SimMessage::Consensus(Message::Vote(vote.clone())));
                if self.processes[p].fault == Some(Fault::DoubleVoter) {
                    self.double_vote(p, &vote);
                }
            }
            Effect::BroadcastProposal(vote) => {
                self.check_persisted(p, &vote)?;
                let Some(block) = self.processes[p].blocks.get(&vote.subject.digest).copied() else {
                    panic!("validator {validator} proposed a block it does not hold")
                };
                if self.processes[p].fault == Some(Fault::Equivocator) {
                    self.equivocate(p, block, vote);
                } else {
                    self.broadcast(p, &SimMessage::Proposal { block, vote });
                }
            }
            Effect::BroadcastCertificate(certificate) => {
                self.broadcast(p, &SimMessage::Consensus(Message::Certificate(certificate)));
            }
            Effect::ScheduleTimer { view, timer, after_ms } => {
                let incarnation = self.processes[p].incarnation;
                self.schedule(self.now + after_ms, Event::Timer { process: p, incarnation, view, timer });
            }
            Effect::RequestProposal { view, parent, parent_view } => self.build(p, view, parent, parent_view),
            Effect::RequestCertificates { views } => {
                self.broadcast(p, &SimMessage::Consensus(Message::CertificateRequest { views }));
            }
            Effect::Finalized { view, digest, certificate } => {
                self.processes[p].pending_final = Some((view, digest, certificate));
                self.try_commit(p)?;
            }
            Effect::Evidence(evidence) => {
                self.report.evidence += 1;
                let accused = evidence.first.signer;
                let honest = self.processes.iter().filter(|q| q.validator == accused).all(Process::honest);
                if honest {
                    return Err(Violation::FalseEvidence { validator: accused, view: evidence.first.subject.view });
                }
            }
            // Simulated keys are in memory and always sign; a skipped vote would only make
            // the validator silent, which the scenarios' faults cover already.
            Effect::SigningFailed { .. } => {}
        }
        Ok(())
    }

    fn check_persisted(&self, p: usize, vote: &SignedVote) -> Result<(), Violation> {
        let process = &self.processes[p];
        if process.honest() && !process.wal.contains(vote) {
            return Err(Violation::SentUnpersisted { validator: process.validator, view: vote.subject.view });
        }
        Ok(())
    }

    /// The host builds a block on the parent the engine chose, 1 ms later.
    fn build(&mut self, p: usize, view: u64, parent: Hash, parent_view: u64) {
        let process = &mut self.processes[p];
        let parent_height = if parent == Hash::ZERO && parent_view == 0 {
            Some(0)
        } else {
            process.blocks.get(&parent).map(|b| b.height)
        };
        let Some(parent_height) = parent_height else {
            process.parked_build = Some((view, parent, parent_view));
            self.broadcast(p, &SimMessage::BlockRequest(parent));
            return;
        };
        let block = SimBlock {
            view,
            height: parent_height + 1,
            parent,
            parent_view,
            proposer: process.validator,
            payload: self.faults.next_u64(),
        };
        let incarnation = process.incarnation;
        self.schedule(self.now + 1, Event::Build { process: p, incarnation, view, block });
    }

    /// Commits a finalized block and its uncommitted ancestors in height order, fetching
    /// missing ones first.
    fn try_commit(&mut self, p: usize) -> Result<(), Violation> {
        let Some((view, digest, certificate)) = self.processes[p].pending_final.clone() else { return Ok(()) };
        let process = &self.processes[p];
        let tip = *process.chain.last().expect("the chain holds genesis");
        let mut path = Vec::new();
        let mut cursor = digest;
        while cursor != tip {
            let Some(block) = process.blocks.get(&cursor) else {
                self.broadcast(p, &SimMessage::BlockRequest(cursor));
                return Ok(());
            };
            if block.height <= process.height() {
                // Finalized a block that does not descend from this validator's finalized tip.
                let existing = process.chain[block.height as usize];
                return Err(self.fork(block.height, existing, process.validator, cursor, process.validator));
            }
            path.push((block.height, cursor, block.view));
            cursor = block.parent;
        }
        let after_gst = self.now >= self.scenario.gst_ms;
        for (height, digest, block_view) in path.into_iter().rev() {
            let process = &mut self.processes[p];
            process.chain.push(digest);
            if after_gst {
                process.finalized_views_after_gst.push(block_view);
            }
            if process.honest() {
                let validator = process.validator;
                match self.finalized_at.get(&height) {
                    Some((other, other_validator)) if *other != digest => {
                        return Err(self.fork(height, *other, *other_validator, digest, validator));
                    }
                    Some(_) => {}
                    None => {
                        self.finalized_at.insert(height, (digest, validator));
                    }
                }
            }
        }
        let process = &mut self.processes[p];
        process.finalized = Finalized { view, digest, certificate: Some(certificate) };
        process.pending_final = None;
        Ok(())
    }

    fn fork(&self, height: u64, first: Hash, first_validator: u32, second: Hash, second_validator: u32) -> Violation {
        Violation::Fork {
            height,
            first: first.to_string(),
            first_validator,
            second: second.to_string(),
            second_validator,
        }
    }

    /// Every honest validator has its new blocks, and once settled has finalized blocks
    /// spanning a full cycle of leaders (so the view bound was tested against every
    /// faulty leader).
    fn live_enough(&self) -> bool {
        let required = self.scenario.blocks_after_gst;
        let Some(settle_view) = self.settle_view else { return false };
        let cycle = self.scenario.validators as u64;
        self.processes.iter().enumerate().all(|(i, p)| {
            let settled = p.finalized_views_after_gst.iter().filter(|v| **v >= settle_view);
            let span = settled.clone().max().zip(settled.min()).map_or(0, |(last, first)| last - first);
            !p.honest() || (p.height() >= self.heights_at_gst[i] + required && span >= cycle)
        })
    }

    fn finish(mut self) -> Report {
        let honest = || self.processes.iter().filter(|p| p.honest());
        self.report.height_min = honest().map(Process::height).min().unwrap_or(0);
        // Blocks of views from the one validators are in once settled after GST.
        let settle_view = self.settle_view.unwrap_or(u64::MAX);
        let settled = |p: &Process| -> Vec<u64> {
            p.finalized_views_after_gst.iter().copied().filter(|v| *v >= settle_view).collect()
        };
        let gap = |views: &Vec<u64>| views.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let worst = honest().map(settled).max_by_key(gap).unwrap_or_default();
        self.report.views_between_finalizations_max = gap(&worst);
        self.report.finalized_views = worst;
        self.report.trace = *self.trace.finalize().as_bytes();
        self.report
    }

    // ---- the network ----

    fn broadcast(&mut self, p: usize, message: &SimMessage) {
        let bytes = message.encode();
        for q in 0..self.processes.len() {
            if self.processes[q].validator != self.processes[p].validator {
                self.transmit(p, q, bytes.clone());
            }
        }
        if self.processes[p].fault == Some(Fault::Malformed) {
            self.send_garbage(p, message);
        }
    }

    fn send_to_process(&mut self, p: usize, q: usize, message: &SimMessage) {
        self.transmit(p, q, message.encode());
    }

    /// One message on one link: partitions and twins' halves cut it; before GST it may be
    /// lost, duplicated or delayed up to the scenario's latency; after GST it arrives
    /// within [`DELTA_MS`].
    fn transmit(&mut self, p: usize, q: usize, bytes: Vec<u8>) {
        let (from, to) = (self.processes[p].validator as usize, self.processes[q].validator as usize);
        let reaches = |process: &Process, other: usize| process.reach.as_ref().is_none_or(|r| r[other]);
        if !reaches(&self.processes[p], to) || !reaches(&self.processes[q], from) {
            return;
        }
        let now = self.now;
        let before_gst = now < self.scenario.gst_ms;
        let partitioned =
            self.scenario.partitions.iter().any(|c| c.from_ms <= now && now < c.to_ms && c.side[from] != c.side[to]);
        if partitioned {
            return;
        }
        let links = self.scenario.links;
        let copies = if before_gst && self.net.chance(links.duplicate_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            if before_gst && self.net.chance(links.loss_per_mille) {
                continue;
            }
            let latency_max = if before_gst { links.latency_ms_max } else { DELTA_MS };
            let delay = self.net.between(1, latency_max);
            self.schedule(now + delay, Event::Deliver { to: q, from: p, bytes: bytes.clone() });
        }
    }

    // ---- Byzantine behaviour ----

    fn sign_as(&self, p: usize, subject: VoteSubject) -> SignedVote {
        let process = &self.processes[p];
        SignedVote { subject, signer: process.validator, signature: subject.sign(&self.config.chain_id, &process.key) }
    }

    /// Two blocks for one view, each half of the validators getting one.
    fn equivocate(&mut self, p: usize, block: SimBlock, vote: SignedVote) {
        let other = SimBlock { payload: block.payload ^ 0xdead_beef, ..block };
        let other_digest = other.digest();
        self.processes[p].blocks.insert(other_digest, other);
        let other_vote = self.sign_as(p, VoteSubject { digest: other_digest, ..vote.subject });
        let first = SimMessage::Proposal { block, vote }.encode();
        let second = SimMessage::Proposal { block: other, vote: other_vote }.encode();
        for q in 0..self.processes.len() {
            if self.processes[q].validator == self.processes[p].validator {
                continue;
            }
            let bytes = if self.processes[q].validator.is_multiple_of(2) { first.clone() } else { second.clone() };
            self.transmit(p, q, bytes);
        }
    }

    /// A conflicting vote next to every vote.
    fn double_vote(&mut self, p: usize, vote: &SignedVote) {
        let subject = vote.subject;
        let conflicting = match subject.kind {
            VoteKind::Notarize => VoteSubject {
                digest: Hash::of(shutong_types::Suite::Ed25519Blake3, "sim/conflict", &subject.digest.0),
                ..subject
            },
            VoteKind::Finalize => VoteSubject { kind: VoteKind::Nullify, digest: Hash::ZERO, ..subject },
            VoteKind::Nullify => VoteSubject {
                kind: VoteKind::Finalize,
                digest: Hash::of(shutong_types::Suite::Ed25519Blake3, "sim/conflict", &[1]),
                ..subject
            },
        };
        let second = self.sign_as(p, conflicting);
        let bytes = SimMessage::Consensus(Message::Vote(second)).encode();
        for q in 0..self.processes.len() {
            if self.processes[q].validator != self.processes[p].validator && self.faults.chance(500) {
                self.transmit(p, q, bytes.clone());
            }
        }
    }

    /// Malformed variants of a message a faulty validator is sending anyway.
    fn send_garbage(&mut self, p: usize, message: &SimMessage) {
        let n = self.keys.len() as u32;
        let bytes = message.encode();
        let garbage = match self.faults.below(8) {
            0 => (0..self.faults.between(0, 300)).map(|_| self.faults.next_u64() as u8).collect(),
            1 => bytes[..self.faults.below(bytes.len() as u64) as usize].to_vec(),
            2 => {
                let mut flipped = bytes.clone();
                let at = self.faults.below(flipped.len() as u64) as usize;
                flipped[at] ^= 1 << self.faults.below(8);
                flipped
            }
            3 => match message {
                SimMessage::Consensus(Message::Vote(vote)) => {
                    let mut bad = vote.clone();
                    bad.signer = n + self.faults.below(1000) as u32;
                    SimMessage::Consensus(Message::Vote(bad)).encode()
                }
                _ => bytes,
            },
            4 => match message {
                SimMessage::Consensus(Message::Certificate(certificate)) => {
                    let mut bad = certificate.clone();
                    bad.signers.push(0xff);
                    SimMessage::Consensus(Message::Certificate(bad)).encode()
                }
                _ => bytes,
            },
            5 => match message {
                SimMessage::Proposal { block, vote } => {
                    let other = SimBlock { height: block.height + 7, ..*block };
                    SimMessage::Proposal { block: other, vote: vote.clone() }.encode()
                }
                _ => bytes,
            },
            6 => {
                // A vote "from" another validator, signed with this one's key.
                let victim = self.faults.below(n as u64) as u32;
                let subject = VoteSubject {
                    kind: VoteKind::Nullify,
                    epoch: 0,
                    view: self.faults.between(1, 50),
                    digest: Hash::ZERO,
                };
                let mut forged = self.sign_as(p, subject);
                forged.signer = victim;
                SimMessage::Consensus(Message::Vote(forged)).encode()
            }
            _ => {
                let mut huge = vec![0u8, 2];
                huge.extend_from_slice(&u32::MAX.to_le_bytes());
                huge
            }
        };
        for q in 0..self.processes.len() {
            if self.processes[q].validator != self.processes[p].validator {
                self.transmit(p, q, garbage.clone());
            }
        }
    }
}

/// What an honest validator never does (consensus.md): two notarizes or two finalizes for
/// different digests in one view, or a nullify and a finalize in one view.
fn check_conflicts(validator: u32, wal: &[SignedVote], vote: &SignedVote) -> Result<(), Violation> {
    let subject = vote.subject;
    for earlier in wal.iter().filter(|e| e.subject.view == subject.view && e.subject != subject) {
        let kinds = (earlier.subject.kind, subject.kind);
        let conflict = matches!(
            kinds,
            (VoteKind::Notarize, VoteKind::Notarize)
                | (VoteKind::Finalize, VoteKind::Finalize)
                | (VoteKind::Nullify, VoteKind::Finalize)
                | (VoteKind::Finalize, VoteKind::Nullify)
        );
        if conflict {
            return Err(Violation::ConflictingVotes {
                validator,
                view: subject.view,
                detail: format!("{:?} then {:?}", earlier.subject, subject),
            });
        }
    }
    Ok(())
}
