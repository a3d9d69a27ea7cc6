//! A deterministic in-memory network of core nodes on a virtual clock, for tests and
//! benchmarks.
//!
//! [`TestNet`] drives many [`Node`]s the way the live node drives one, through the shared
//! glue in [`crate::link`]: it feeds each node its inputs, carries its outputs out and wakes
//! it at its deadline. Links are in-memory connections with a fixed delay per pair of nodes,
//! delivering in order (like TCP); a lost message breaks its link, as a broken connection
//! does. Tests can also open links of their own to a node and speak on them ("external"
//! peers, see [`TestNet::open_external`]).
//!
//! Like the rest of the core it reads no clock, spawns no thread and uses no OS randomness:
//! time is [`TestNet::now`], advanced from one scheduled instant to the next, and everything
//! random (link delays, loss, random graphs) comes from one seeded RNG, so the same seed gives
//! the same history, message for message.
//!
//! What it records is chosen per run: every message sent ([`TestNet::record_sends`], on by
//! default, needed by [`TestNet::block_sends`], [`TestNet::tx_sends`] and
//! [`TestNet::bodies_sent`]), every event per node ([`TestNet::record_events`], on by
//! default), and message counts and sizes by kind ([`TestNet::count_traffic`], off by
//! default). Long runs with many nodes turn the first two off.
//!
//! Cost: each instant pops its events from one binary heap, and node deadlines sit in a
//! second heap (entries that a later deadline made stale are skipped when they surface), so
//! a step never scans all nodes.
//!
//! Methods named `assert_*` panic when the property does not hold: they are for tests.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{BlockHash, Transaction, Txid};
use thiserror::Error;

use crate::event::Event;
use crate::event_queue::EventQueue;
use crate::input::{Command, CommandId, Input};
use crate::link::{Effects, Pairs, drain};
use crate::node::{BlockRejected, Node, NodeConfig, RestoreError, RestoreReport, TxRejected};
use crate::output::Reply;
use crate::params::ChainParams;
use crate::peers::{PeerAddr, PeerId, PeerState};
use crate::protocol::Message;
use crate::store::{ChainStore, MemoryStore, StoreOp};
use crate::time::Time;

/// The virtual clock's start: well after genesis (2023-11-14), in milliseconds.
pub const START_MS: u64 = 1_700_000_000_000;

/// How long a broken link takes to be noticed by its ends, and a failed dial to fail (the
/// live node's connect timeout), in milliseconds.
pub const FAIL_AFTER_MS: u64 = 2_000;

/// Index standing for "a peer driven by the test" in [`SentMsg::to`].
pub const EXTERNAL: usize = usize::MAX;

/// The address of node `i`: `10.a.b.c:5000` with `i = a·65536 + b·256 + c` (so
/// `10.0.0.{i}:5000` for the first 256 nodes).
pub fn addr(i: usize) -> PeerAddr {
    let s = format!("10.{}.{}.{}:5000", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    // Always parses: four numbers and a port.
    s.parse().unwrap_or_else(|_| PeerAddr::loopback(5000))
}

/// The configuration of node `i` in a network seeded with `seed`: listening at [`addr`]`(i)`,
/// paying `miner{i}`, keep-alive off (in-memory links never die silently), its own seed.
pub fn config(i: usize, seed: u64) -> NodeConfig {
    let mut config = NodeConfig::new(addr(i), format!("miner{i}"));
    config.seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
    config.peering.keepalive = None;
    config
}

/// One node of the network: the core, its storage, and what it told the world.
#[derive(Debug)]
pub struct TestNode {
    /// The sans-IO node.
    pub node: Node,
    /// Where it listens.
    pub addr: PeerAddr,
    /// Every `Output::Store` applied, one drain at a time.
    pub store: MemoryStore,
    /// False while the node is down ([`TestNet::take_down`]): dials to it fail, its links
    /// are gone. [`TestNet::restart`] brings it back.
    pub up: bool,
    /// Every event emitted (while [`TestNet::record_events`] is on).
    pub events: Vec<Event>,
    /// When the node wants its next timeout; `None` also once a queued timeout is taken.
    deadline: Option<u64>,
}

/// A message some node sent, for tests to inspect.
#[derive(Debug, Clone)]
pub struct SentMsg {
    /// Virtual time it was sent.
    pub at: u64,
    /// Index of the sender.
    pub from: usize,
    /// Index of the receiver ([`EXTERNAL`] for a test-driven peer).
    pub to: usize,
    /// What it was.
    pub msg: Message,
}

/// Messages and bytes of one kind of message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindTraffic {
    /// Messages sent.
    pub messages: u64,
    /// Their sizes, in bytes, as [`TestNet::count_traffic`] measures them.
    pub bytes: u64,
}

/// What was sent while [`TestNet::count_traffic`] was on: every message a node sent, by
/// kind, with its size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// By [`Message::kind`].
    pub by_kind: BTreeMap<&'static str, KindTraffic>,
    /// Messages in all.
    pub messages: u64,
    /// Bytes in all.
    pub bytes: u64,
    /// Block bodies in all (in `block` and `blocks` messages).
    pub bodies: u64,
}

impl Traffic {
    fn add(&mut self, msg: &Message, bytes: u64) {
        let kind = self.by_kind.entry(msg.kind()).or_default();
        kind.messages += 1;
        kind.bytes += bytes;
        self.messages += 1;
        self.bytes += bytes;
        self.bodies += msg.carries_blocks() as u64;
    }
}

/// How [`TestNet::count_traffic`] sizes a message, in bytes. Benchmarks pass the length of
/// its JSON encoding (`serde_json::to_vec(msg)`), the body of the frame the live node sends.
pub type MessageSize = fn(&Message) -> u64;

/// Why a local action ([`TestNet::mine`], [`TestNet::submit_tx`]) added nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ActionError {
    /// The node refused the block.
    #[error(transparent)]
    Block(#[from] BlockRejected),
    /// The node refused the transaction.
    #[error(transparent)]
    Tx(#[from] TxRejected),
    /// The node answered with another kind of reply.
    #[error("unexpected reply {0:?}")]
    Reply(Box<Reply>),
}

/// Something scheduled on the virtual clock.
#[derive(Debug)]
enum Ev {
    /// A message arrives at `(node, link)`.
    Deliver { node: usize, link: PeerId, msg: Message },
    /// A link end comes up at `node` (`addr` for the dialler).
    Up {
        node: usize,
        link: PeerId,
        addr: Option<PeerAddr>,
    },
    /// A link end goes down at `node`.
    Down { node: usize, link: PeerId, reason: String },
    /// A dial from `node` failed.
    DialFailed {
        node: usize,
        addr: PeerAddr,
        reason: String,
    },
}

/// What one drain of a node asked for, in order.
#[derive(Default)]
struct Batch {
    links: Vec<LinkOp>,
    stores: Vec<StoreOp>,
    events: Vec<Event>,
    replies: Vec<(CommandId, Reply)>,
}

enum LinkOp {
    Connect(PeerAddr),
    Send(PeerId, Message),
    Disconnect(PeerId, String),
}

impl Effects for Batch {
    fn connect(&mut self, addr: PeerAddr) {
        self.links.push(LinkOp::Connect(addr));
    }
    fn send(&mut self, to: PeerId, msg: Message) {
        self.links.push(LinkOp::Send(to, msg));
    }
    fn disconnect(&mut self, peer: PeerId, reason: String) {
        self.links.push(LinkOp::Disconnect(peer, reason));
    }
    fn store(&mut self, op: StoreOp) {
        self.stores.push(op);
    }
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
    fn reply(&mut self, id: CommandId, reply: Reply) {
        self.replies.push((id, reply));
    }
}

/// A deterministic in-memory network of core nodes on a virtual clock, for tests and
/// benchmarks (see the [module documentation](self)).
#[derive(Debug)]
pub struct TestNet {
    /// Virtual time, ms since the Unix epoch. Starts at [`START_MS`]; tests may move it
    /// forward between steps.
    pub now: u64,
    /// The network's RNG (delays, loss, random graphs); tests may draw from it too.
    pub rng: fastrand::Rng,
    /// Consensus parameters shared by every node.
    pub params: Arc<ChainParams>,
    /// The nodes, by index.
    pub nodes: Vec<TestNode>,
    /// Probability that a message is lost, breaking its link.
    pub loss: f64,
    /// Link delays in ms are drawn from this range once per pair.
    pub delay_range: (u64, u64),
    /// Cut pairs (smaller index first).
    pub cut: HashSet<(usize, usize)>,
    /// Messages sent on external links: (sender index, its link, message).
    pub external_inbox: Vec<(usize, PeerId, Message)>,
    /// Every message sent, in order (while [`TestNet::record_sends`] is on).
    pub sent: Vec<SentMsg>,
    /// Whether to record `sent` (on by default; off for long runs).
    pub record_sends: bool,
    /// Whether to record each node's [`TestNode::events`] (on by default; off for long runs).
    pub record_events: bool,
    /// When set, every message sent is counted in [`TestNet::traffic`], sized with this
    /// function (off by default: sizing usually means encoding every message).
    pub count_traffic: Option<MessageSize>,
    /// What was sent while `count_traffic` was on.
    pub traffic: Traffic,
    /// Messages sent in all, counted always.
    pub messages_sent: u64,
    /// Inputs handed to nodes in all (messages, link changes, commands, timeouts).
    pub inputs: u64,
    /// Every txid any node ever accepted (an `Event::Tx`).
    pub accepted_txs: BTreeSet<Txid>,
    /// Messages that arrived at a closed link end: (time, node, link, kind).
    pub dropped: Vec<(u64, usize, PeerId, &'static str)>,
    /// Every `Disconnect` a node asked for: (node, link, reason).
    pub disconnects: Vec<(usize, PeerId, String)>,
    pairs: Pairs,
    /// Link ends whose connection broke: nothing sent on them arrives.
    broken: HashSet<(usize, PeerId)>,
    /// External link ends: (node, link) whose other end is the test.
    externals: HashSet<(usize, PeerId)>,
    delays: HashMap<(usize, usize), u64>,
    index: HashMap<PeerAddr, usize>,
    queue: EventQueue<Ev>,
    /// Node deadlines: (time, node). An entry is live while it equals the node's deadline.
    timers: BinaryHeap<Reverse<(u64, usize)>>,
}

impl TestNet {
    /// A network without nodes, its RNG seeded with `seed`, its clock at [`START_MS`],
    /// on the easy test network ([`ChainParams::testnet`]).
    pub fn empty(seed: u64) -> Self {
        Self::with_params(Arc::new(ChainParams::testnet()), seed)
    }

    /// A network without nodes on the given consensus parameters.
    pub fn with_params(params: Arc<ChainParams>, seed: u64) -> Self {
        Self {
            now: START_MS,
            rng: fastrand::Rng::with_seed(seed),
            params,
            nodes: Vec::new(),
            loss: 0.0,
            delay_range: (5, 50),
            cut: HashSet::new(),
            external_inbox: Vec::new(),
            sent: Vec::new(),
            record_sends: true,
            record_events: true,
            count_traffic: None,
            traffic: Traffic::default(),
            messages_sent: 0,
            inputs: 0,
            accepted_txs: BTreeSet::new(),
            dropped: Vec::new(),
            disconnects: Vec::new(),
            pairs: Pairs::default(),
            broken: HashSet::new(),
            externals: HashSet::new(),
            delays: HashMap::new(),
            index: HashMap::new(),
            queue: EventQueue::default(),
            timers: BinaryHeap::new(),
        }
    }

    /// `n` nodes configured with [`config`]`(i, seed)`, none knowing any other yet.
    pub fn new(n: usize, seed: u64) -> Self {
        Self::with_nodes(n, seed, |_, c| c)
    }

    /// `n` nodes configured with `f(i, config(i, seed))`, none knowing any other yet.
    pub fn with_nodes(n: usize, seed: u64, mut f: impl FnMut(usize, NodeConfig) -> NodeConfig) -> Self {
        let mut net = Self::empty(seed);
        for i in 0..n {
            let node = Node::new(net.params.clone(), f(i, config(i, seed)));
            net.add_node(node);
        }
        net
    }

    /// Adds a node built elsewhere; returns its index.
    pub fn add_node(&mut self, node: Node) -> usize {
        let i = self.nodes.len();
        let addr = node.config().listen().clone();
        self.index.insert(addr.clone(), i);
        self.nodes.push(TestNode {
            node,
            addr,
            store: MemoryStore::default(),
            up: true,
            events: Vec::new(),
            deadline: None,
        });
        self.drain(i);
        i
    }

    /// The node at index `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i].node
    }

    /// Feeds node `i` an input now and carries out its outputs; returns the replies to
    /// commands among them.
    pub fn input(&mut self, i: usize, input: Input) -> Vec<(CommandId, Reply)> {
        self.inputs += 1;
        self.nodes[i].node.handle_input(Time::from_millis(self.now), input);
        self.drain(i)
    }

    /// Runs a command at node `i` now, carries out its effects and returns its reply.
    pub fn command(&mut self, i: usize, command: Command) -> Reply {
        self.inputs += 1;
        let reply = self.nodes[i].node.command(Time::from_millis(self.now), command);
        self.drain(i);
        reply
    }

    /// Node `i` learns of node `j` as a configured (pinned) peer, as `--peer` does, and
    /// dials it.
    pub fn connect(&mut self, i: usize, j: usize) {
        let a = self.nodes[j].addr.clone();
        self.command(i, Command::AddPeers(vec![a]));
    }

    /// Each node learns of `k` distinct other nodes, drawn at random, as [`TestNet::connect`]
    /// does (at most all others).
    pub fn connect_random(&mut self, k: usize) {
        let n = self.nodes.len();
        let k = k.min(n.saturating_sub(1));
        let mut picked = Vec::with_capacity(k);
        for i in 0..n {
            picked.clear();
            while picked.len() < k {
                let j = self.rng.usize(..n);
                if j != i && !picked.contains(&j) {
                    picked.push(j);
                }
            }
            for &j in &picked {
                self.connect(i, j);
            }
        }
    }

    fn key(i: usize, j: usize) -> (usize, usize) {
        (i.min(j), i.max(j))
    }

    /// Cuts the pair `i`–`j`: their links break and new dials fail.
    pub fn cut_link(&mut self, i: usize, j: usize) {
        self.cut.insert(Self::key(i, j));
        for link in self.pairs.links_of(i) {
            if let Some((other, _)) = self.pairs.other(i, link)
                && other == j
            {
                self.break_link(i, link, "connection reset (partition)");
            }
        }
    }

    /// Cuts every pair between the two groups.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &i in a {
            for &j in b {
                self.cut_link(i, j);
            }
        }
    }

    /// Removes every cut (links re-form by the nodes' own retries).
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    fn delay(&mut self, i: usize, j: usize) -> u64 {
        if i == EXTERNAL || j == EXTERNAL {
            return 1;
        }
        let (lo, hi) = self.delay_range;
        let rng = &mut self.rng;
        *self.delays.entry(Self::key(i, j)).or_insert_with(|| rng.u64(lo..=hi))
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.queue.push(at, ev);
    }

    /// Records node `i`'s deadline, queueing a timer entry when it changed.
    fn set_deadline(&mut self, i: usize, deadline: Option<u64>) {
        if self.nodes[i].deadline != deadline {
            self.nodes[i].deadline = deadline;
            if let Some(t) = deadline {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    /// Breaks a link: both ends see it go down after [`FAIL_AFTER_MS`].
    fn break_link(&mut self, node: usize, link: PeerId, reason: &str) {
        let at = self.now + FAIL_AFTER_MS;
        self.broken.insert((node, link));
        let other = self.pairs.other(node, link);
        if let Some(other) = other {
            self.broken.insert(other);
        }
        if self.pairs.is_open(node, link) {
            let reason = reason.into();
            self.schedule(at, Ev::Down { node, link, reason });
        }
        if let Some((other, olink)) = other
            && self.pairs.is_open(other, olink)
        {
            let ev = Ev::Down {
                node: other,
                link: olink,
                reason: reason.into(),
            };
            self.schedule(at, ev);
        }
    }

    /// Carries out everything node `i` queued; returns its replies.
    pub fn drain(&mut self, i: usize) -> Vec<(CommandId, Reply)> {
        let mut batch = Batch::default();
        drain(&mut self.nodes[i].node, &mut batch);
        if !batch.stores.is_empty() {
            match self.nodes[i].store.commit(&batch.stores) {
                Ok(()) => {}
                Err(never) => match never {},
            }
        }
        for ev in batch.events {
            if let Event::Tx { txid, .. } = &ev {
                self.accepted_txs.insert(*txid);
            }
            if self.record_events {
                self.nodes[i].events.push(ev);
            }
        }
        for op in batch.links {
            match op {
                LinkOp::Connect(addr) => self.dial(i, addr),
                LinkOp::Send(link, msg) => self.route(i, link, msg),
                LinkOp::Disconnect(link, reason) => self.hang_up(i, link, reason),
            }
        }
        let deadline = self.nodes[i].node.poll_timeout();
        self.set_deadline(i, deadline.map(Time::as_millis));
        batch.replies
    }

    fn dial(&mut self, from: usize, addr: PeerAddr) {
        let target = self.index.get(&addr).copied();
        let reachable = target.filter(|&j| self.nodes[j].up && !self.cut.contains(&Self::key(from, j)));
        let Some(j) = reachable else {
            let reason = format!("connection to {addr} refused or timed out");
            let ev = Ev::DialFailed {
                node: from,
                addr,
                reason,
            };
            self.schedule(self.now + FAIL_AFTER_MS, ev);
            return;
        };
        let d = self.delay(from, j);
        for up in self.pairs.dial(from, j, addr) {
            let (node, link, addr) = (up.node, up.link, up.addr);
            self.schedule(self.now + d * u64::from(up.delays), Ev::Up { node, link, addr });
        }
    }

    fn route(&mut self, from: usize, link: PeerId, msg: Message) {
        self.messages_sent += 1;
        if let Some(size) = self.count_traffic {
            self.traffic.add(&msg, size(&msg));
        }
        let external = self.externals.contains(&(from, link));
        let other = if external { None } else { self.pairs.other(from, link) };
        if self.record_sends {
            let to = other.map_or(EXTERNAL, |(j, _)| j);
            let msg = msg.clone();
            self.sent.push(SentMsg {
                at: self.now,
                from,
                to,
                msg,
            });
        }
        if external {
            self.external_inbox.push((from, link, msg));
            return;
        }
        let Some((j, olink)) = other else { return };
        if !self.nodes[from].up || self.cut.contains(&Self::key(from, j)) || self.broken.contains(&(from, link)) {
            return; // the link is breaking: nothing more gets through
        }
        let lost = self.loss > 0.0 && self.rng.f64() < self.loss;
        if lost {
            self.break_link(from, link, "connection lost");
            return;
        }
        let d = self.delay(from, j);
        let ev = Ev::Deliver {
            node: j,
            link: olink,
            msg,
        };
        self.schedule(self.now + d, ev);
    }

    fn hang_up(&mut self, node: usize, link: PeerId, reason: String) {
        self.disconnects.push((node, link, reason.clone()));
        if let Some((j, olink)) = self.pairs.other(node, link)
            && j != EXTERNAL
        {
            // After every message already sent on the link (same delay, later sequence).
            let d = self.delay(node, j);
            let ev = Ev::Down {
                node: j,
                link: olink,
                reason: format!("closed by the other side: {reason}"),
            };
            self.schedule(self.now + d, ev);
        }
        self.schedule(self.now, Ev::Down { node, link, reason });
    }

    fn process(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { node, link, msg } => {
                if self.nodes[node].up && self.pairs.is_open(node, link) {
                    self.input(node, Input::Message { from: link, msg });
                } else {
                    self.dropped.push((self.now, node, link, msg.kind()));
                }
            }
            Ev::Up { node, link, addr } => {
                if !self.nodes[node].up {
                    // The node went down while the link was forming: the other end breaks.
                    self.break_link(node, link, "connection reset");
                    return;
                }
                self.pairs.set_open(node, link);
                self.input(node, Input::LinkUp { peer: link, addr });
            }
            Ev::Down { node, link, reason } => {
                if self.pairs.close(node, link) && self.nodes[node].up {
                    self.input(node, Input::LinkDown { peer: link, reason });
                }
            }
            Ev::DialFailed { node, addr, reason } => {
                if self.nodes[node].up {
                    self.input(node, Input::DialFailed { addr, reason });
                }
            }
        }
    }

    /// The earliest live timer, dropping stale entries from the top of the heap.
    fn next_timer(&mut self) -> Option<u64> {
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            let n = &self.nodes[i];
            if n.up && n.deadline == Some(t) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    /// The next instant with something to do, if any.
    pub fn next_time(&mut self) -> Option<u64> {
        let queued = self.queue.peek_time();
        match (queued, self.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether nothing is scheduled: no message or link change in flight and no node
    /// waiting for a deadline.
    pub fn is_idle(&mut self) -> bool {
        self.next_time().is_none()
    }

    /// Advances to the next instant at or before `deadline` with something to do and does
    /// it: first everything scheduled for then, in the order it was scheduled, then the
    /// timeouts of every node whose deadline has come, by index. Returns false (with the
    /// clock at `deadline`) when there was nothing.
    pub fn step(&mut self, deadline: u64) -> bool {
        let Some(t) = self.next_time().filter(|t| *t <= deadline) else {
            self.now = self.now.max(deadline);
            return false;
        };
        self.now = self.now.max(t);
        while self.queue.peek_time().is_some_and(|at| at <= self.now) {
            if let Some((_, ev)) = self.queue.pop() {
                self.process(ev);
            }
        }
        let mut due = Vec::new();
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > self.now {
                break;
            }
            self.timers.pop();
            if self.nodes[i].deadline == Some(t) {
                due.push(i);
            }
        }
        due.sort_unstable();
        due.dedup();
        for i in due {
            let n = &mut self.nodes[i];
            if n.deadline.is_some_and(|d| d <= self.now) {
                // Taken: the drain after the timeout records the next one.
                n.deadline = None;
                if n.up {
                    self.input(i, Input::Timeout);
                }
            }
        }
        true
    }

    /// Runs the network for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let deadline = self.now + ms;
        while self.step(deadline) {}
    }

    /// Runs until `pred` holds (checked before the first step and after every instant) or
    /// `max_ms` pass; returns whether it held.
    pub fn run_until(&mut self, max_ms: u64, pred: impl Fn(&TestNet) -> bool) -> bool {
        let deadline = self.now + max_ms;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(deadline) {
                return pred(self);
            }
        }
    }

    /// Runs until nothing is scheduled ([`TestNet::is_idle`]), for at most `max_ms`; returns
    /// whether the network went idle. Unlike [`TestNet::run_for`], the clock stops at the
    /// last instant that had something to do.
    pub fn run_until_idle(&mut self, max_ms: u64) -> bool {
        let deadline = self.now + max_ms;
        loop {
            match self.next_time() {
                None => return true,
                Some(t) if t > deadline => return false,
                Some(_) => {
                    self.step(deadline);
                }
            }
        }
    }

    // ----- local actions ----------------------------------------------------------------

    /// Node `i` mines one block on its tip from its template, now, and takes it as its
    /// miner's; returns its hash.
    pub fn mine(&mut self, i: usize) -> Result<BlockHash, ActionError> {
        let mut block = self.nodes[i].node.block_template(Time::from_millis(self.now));
        // A nonce always exists on a reachable target; without one the node refuses the
        // block for its proof of work, which is the error returned.
        if let Some((nonce, _)) = search_nonce(&block.header, &self.params.bits.to_target(), 0, u64::MAX) {
            block.header.nonce = nonce;
        }
        match self.command(i, Command::MinedBlock(block)) {
            Reply::Block(r) => Ok(r?.hash),
            other => Err(ActionError::Reply(Box::new(other))),
        }
    }

    /// Submits a transaction at node `i`, now; returns its txid.
    pub fn submit_tx(&mut self, i: usize, tx: Transaction) -> Result<Txid, ActionError> {
        match self.command(i, Command::SubmitTx(tx)) {
            Reply::Tx(r) => Ok(r?.txid),
            other => Err(ActionError::Reply(Box::new(other))),
        }
    }

    /// Opens a link from a test-driven peer to node `to`; returns the link's number at
    /// the node. Messages the node sends on it land in `external_inbox`.
    pub fn open_external(&mut self, to: usize) -> PeerId {
        let (_, at_to) = self.pairs.open(EXTERNAL, to);
        self.externals.insert((to, at_to));
        self.pairs.set_open(to, at_to);
        self.input(
            to,
            Input::LinkUp {
                peer: at_to,
                addr: None,
            },
        );
        at_to
    }

    /// A test-driven peer sends `msg` on its link to node `to`, now.
    pub fn inject(&mut self, link: PeerId, to: usize, msg: Message) {
        if self.external_open(to, link) {
            self.input(to, Input::Message { from: link, msg });
        }
    }

    /// Whether node `to` still holds the external link open (not closed, not closing).
    pub fn external_open(&self, to: usize, link: PeerId) -> bool {
        self.pairs.is_open(to, link) && !self.disconnects.iter().any(|(n, l, _)| *n == to && *l == link)
    }

    /// Takes node `i` down (a crash): its links break, dials to it fail.
    pub fn take_down(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.nodes[i].deadline = None;
        for link in self.pairs.links_of(i) {
            if let Some((j, olink)) = self.pairs.other(i, link)
                && self.pairs.is_open(j, olink)
            {
                let ev = Ev::Down {
                    node: j,
                    link: olink,
                    reason: "connection reset".into(),
                };
                self.schedule(self.now + FAIL_AFTER_MS, ev);
            }
            self.pairs.close(i, link);
        }
    }

    /// Rebuilds node `i` from its store with `Node::restore` (same config) and brings it up.
    pub fn restart(&mut self, i: usize) -> Result<RestoreReport, RestoreError> {
        let stored = match self.nodes[i].store.load() {
            Ok(stored) => stored,
            Err(never) => match never {},
        };
        let config = self.nodes[i].node.config().clone();
        let (node, report) = Node::restore(self.params.clone(), config, stored)?;
        self.nodes[i].node = node;
        self.nodes[i].up = true;
        self.nodes[i].deadline = None;
        self.drain(i);
        Ok(report)
    }

    // ----- observations -----------------------------------------------------------------

    /// Tip hash of node `i`.
    pub fn tip(&self, i: usize) -> BlockHash {
        self.nodes[i].node.tree().tip().hash
    }

    /// Whether every listed node has the same tip.
    pub fn same_tip(&self, nodes: &[usize]) -> bool {
        nodes.windows(2).all(|w| self.tip(w[0]) == self.tip(w[1]))
    }

    /// Whether every node of the network has the same tip.
    pub fn all_same_tip(&self) -> bool {
        let first = self.nodes.first().map(|n| n.node.tree().tip().hash);
        self.nodes.iter().all(|n| Some(n.node.tree().tip().hash) == first)
    }

    /// Whether every listed node holds `txid` in its mempool or best chain.
    pub fn everyone_has_tx(&self, nodes: &[usize], txid: &Txid) -> bool {
        nodes.iter().all(|&i| {
            let n = &self.nodes[i].node;
            n.mempool().contains(txid) || n.tree().find_tx(txid).is_some()
        })
    }

    /// Asserts (panicking otherwise) the same tip everywhere and that every accepted
    /// transaction is, on every node, in the best chain or in the mempool, never both.
    pub fn assert_invariants(&self, nodes: &[usize]) {
        for w in nodes.windows(2) {
            assert_eq!(
                self.tip(w[0]),
                self.tip(w[1]),
                "nodes {} and {} disagree on the tip (heights {} and {})",
                w[0],
                w[1],
                self.node(w[0]).tree().height(),
                self.node(w[1]).tree().height()
            );
        }
        for &i in nodes {
            self.assert_nothing_lost(i);
        }
    }

    /// Asserts (panicking otherwise) that every accepted transaction is in node `i`'s best
    /// chain xor its mempool.
    pub fn assert_nothing_lost(&self, i: usize) {
        let n = &self.nodes[i].node;
        for txid in &self.accepted_txs {
            let in_chain = n.tree().find_tx(txid).is_some();
            let in_pool = n.mempool().contains(txid);
            assert!(in_chain || in_pool, "node {i} lost transaction {txid:?}");
            assert!(
                !(in_chain && in_pool),
                "node {i} holds {txid:?} in both chain and mempool"
            );
        }
    }

    /// How many bodies of block `hash` (in `Block` or `Blocks`) each node sent to each node
    /// (from the recorded sends).
    pub fn block_sends(&self, hash: &BlockHash) -> BTreeMap<(usize, usize), usize> {
        let mut out = BTreeMap::new();
        for s in &self.sent {
            let has = match &s.msg {
                Message::Block { block } => block.0.compute_hash() == *hash,
                Message::Blocks { blocks, .. } => blocks.iter().any(|b| b.0.compute_hash() == *hash),
                _ => false,
            };
            if has {
                *out.entry((s.from, s.to)).or_insert(0) += 1;
            }
        }
        out
    }

    /// Asserts (panicking otherwise) that no block body crossed one link twice in one
    /// direction (from the recorded sends).
    pub fn assert_blocks_relayed_once(&self) {
        let mut seen: HashSet<(usize, usize, BlockHash)> = HashSet::new();
        for s in &self.sent {
            if let Message::Block { block } = &s.msg {
                let key = (s.from, s.to, block.0.compute_hash());
                assert!(
                    seen.insert(key),
                    "node {} sent block {:?} to node {} twice",
                    key.0,
                    key.2,
                    key.1
                );
            }
        }
    }

    /// How many messages carrying transaction `txid` (body) each node sent to each node
    /// (from the recorded sends).
    pub fn tx_sends(&self, txid: &Txid) -> BTreeMap<(usize, usize), usize> {
        let mut out = BTreeMap::new();
        for s in &self.sent {
            if let Message::Txs { txs } = &s.msg
                && txs.iter().any(|t| t.compute_txid() == *txid)
            {
                *out.entry((s.from, s.to)).or_insert(0) += 1;
            }
        }
        out
    }

    /// Number of peers node `i` holds as connected.
    pub fn connected_count(&self, i: usize) -> usize {
        self.nodes[i]
            .node
            .peers()
            .iter()
            .filter(|p| p.state == PeerState::Connected)
            .count()
    }

    /// Ready links in the whole network (each counted once, from both of its ends).
    pub fn link_count(&self) -> usize {
        let ends: usize = self
            .nodes
            .iter()
            .map(|n| n.node.peering().links().ready().count())
            .sum();
        ends / 2
    }

    /// Whether node `i` shows the address of node `j` as connected.
    pub fn is_connected(&self, i: usize, j: usize) -> bool {
        let a = &self.nodes[j].addr;
        self.nodes[i]
            .node
            .peers()
            .iter()
            .any(|p| &p.address == a && p.state == PeerState::Connected)
    }

    /// Whether both ends of every listed pair are connected.
    pub fn links_up(&self, links: &[(usize, usize)]) -> bool {
        links
            .iter()
            .all(|&(i, j)| self.is_connected(i, j) && self.is_connected(j, i))
    }

    /// Block bodies sent in all (in `Block` and `Blocks` messages; from the recorded sends).
    pub fn bodies_sent(&self) -> usize {
        self.sent.iter().map(|s| s.msg.carries_blocks()).sum()
    }
}
