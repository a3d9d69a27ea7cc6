//! Shared helpers for the core's integration tests: block building and mining on the easy
//! test network, and `Sim`, a deterministic in-memory network of `Node`s on a virtual clock.
//!
//! Every test file includes this with `mod support;` and uses a different subset of it.
#![allow(dead_code, clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use chainsim_core::link::{Effects, Pairs, drain};
use chainsim_core::node::{BlockOutcome, BlockRejected, TxOutcome, TxRejected};
use chainsim_core::peers::PeerState;
use chainsim_core::protocol::Message;
use chainsim_core::{
    ChainParams, ChainStore, Command, CommandId, Event, Input, MemoryStore, Node, NodeConfig, PeerAddr, PeerId, Reply,
    StoreOp, Time,
};
use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{Block, BlockHash, Header, Transaction, Txid};

/// A virtual "now" well after genesis (2023-11-14), in milliseconds.
pub const T0: u64 = 1_700_000_000_000;

/// The easy test network (about 256 hashes a block).
pub fn params() -> Arc<ChainParams> {
    Arc::new(ChainParams::testnet())
}

/// Sets the header's Merkle root from the transactions.
pub fn fix_merkle(block: &mut Block) {
    block.header.merkle_root = block.compute_merkle_root().0;
}

/// Finds a nonce meeting the network target (the only thing left to change once every
/// other field is final).
pub fn solve(params: &ChainParams, block: &mut Block) {
    let (nonce, _) = search_nonce(&block.header, &params.bits.to_target(), 0, u64::MAX).unwrap();
    block.header.nonce = nonce;
}

/// Recomputes the Merkle root, then mines.
pub fn seal(params: &ChainParams, block: &mut Block) {
    fix_merkle(block);
    solve(params, block);
}

/// A valid, mined child of `parent` paying `miner`, at `timestamp`, carrying `txs` after
/// the coinbase.
pub fn child(params: &ChainParams, parent: &Block, miner: &str, timestamp: u64, txs: Vec<Transaction>) -> Block {
    let mut transactions = vec![Transaction::coinbase(miner, params.reward, timestamp)];
    transactions.extend(txs);
    let mut block = Block {
        header: Header {
            version: chainsim_primitives::header::HEADER_VERSION,
            height: parent.header.height + 1,
            prev_hash: parent.compute_hash(),
            merkle_root: Default::default(),
            timestamp,
            bits: params.bits,
            nonce: 0,
        },
        transactions,
    };
    seal(params, &mut block);
    block
}

/// A well-formed transaction, different for every `n`.
pub fn tx(n: u64) -> Transaction {
    Transaction::new(format!("alice{n}"), "bob", n + 1, T0 + n)
}

/// `ms` as a [`Time`].
pub fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

/// Submits a transaction at `node`, returning the answer at once.
pub fn submit_tx(node: &mut Node, tx: Transaction, now: u64) -> Result<TxOutcome, TxRejected> {
    node.command(at(now), Command::SubmitTx(tx)).into_tx().unwrap()
}

/// Hands `node` a block as a user would.
pub fn submit_block(node: &mut Node, block: Block, now: u64) -> Result<BlockOutcome, BlockRejected> {
    node.command(at(now), Command::SubmitBlock(block)).into_block().unwrap()
}

/// Hands `node` a block its miner found.
pub fn submit_mined(node: &mut Node, block: Block, now: u64) -> Result<BlockOutcome, BlockRejected> {
    node.command(at(now), Command::MinedBlock(block)).into_block().unwrap()
}

/// Every message `node` queued, with its link (other outputs are dropped).
pub fn sends(node: &mut Node) -> Vec<(PeerId, Message)> {
    let mut out = Vec::new();
    while let Some(o) = node.poll_output() {
        if let chainsim_core::Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    out
}

/// A hello as a peer listening at `from` would send it, claiming `height` and `work`.
pub fn hello_from(node: &Node, from: &PeerAddr, height: u64, work: chainsim_primitives::Work) -> Message {
    Message::Hello(chainsim_core::protocol::Hello {
        version: chainsim_core::protocol::PROTOCOL_VERSION,
        genesis: node.params().genesis_hash(),
        listen: from.clone(),
        height,
        work: chainsim_core::protocol::WireWork(work),
        agent: "test".into(),
        token: format!("token-of-{from}"),
    })
}

/// Opens an inbound link `link` at `node` from a peer at `from` and completes its
/// handshake; the node's answer is dropped.
pub fn link_in(
    node: &mut Node,
    link: u64,
    from: &PeerAddr,
    height: u64,
    work: chainsim_primitives::Work,
    now: u64,
) -> PeerId {
    let peer = PeerId(link);
    node.handle_input(at(now), Input::LinkUp { peer, addr: None });
    let hello = hello_from(node, from, height, work);
    node.handle_input(at(now), Input::Message { from: peer, msg: hello });
    peer
}

/// The address of simulated node `i`: `10.0.0.{i}:5000`.
pub fn addr(i: usize) -> PeerAddr {
    format!("10.0.0.{i}:5000").parse().unwrap()
}

// ----- the simulated network ----------------------------------------------------------

/// How long a broken link takes to be noticed by its ends, and a failed dial to fail (the
/// live node's connect timeout).
pub const FAIL_AFTER_MS: u64 = 2_000;

/// Index standing for "a peer driven by the test" in [`SentMsg::to`].
pub const EXTERNAL: usize = usize::MAX;

/// One simulated node: the core, its storage, and what it told the world.
pub struct SimNode {
    /// The sans-IO node.
    pub node: Node,
    /// Where it listens.
    pub addr: PeerAddr,
    /// Every `Output::Store` applied, one op at a time.
    pub store: MemoryStore,
    /// False while the node is down: dials to it fail, its links are gone.
    pub up: bool,
    /// Every event emitted.
    pub events: Vec<Event>,
    /// When the node wants its next timeout.
    deadline: Option<u64>,
}

/// Something scheduled on the virtual clock.
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

/// A message some node sent, for the tests to inspect.
#[derive(Clone)]
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

/// A deterministic network of nodes on a virtual clock. Links are in-memory connections
/// with a fixed delay per pair of nodes, in order (like TCP); a lost message breaks its
/// link, as a broken connection does. Cut pairs cannot connect and lose their links. Test
/// code can open links of its own to a node and speak on them ("external" peers). Everything
/// random comes from one seeded RNG.
pub struct Sim {
    /// Virtual time, ms.
    pub now: u64,
    /// The network's RNG (delays, loss).
    pub rng: fastrand::Rng,
    /// Consensus parameters shared by every node.
    pub params: Arc<ChainParams>,
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    /// Probability that a message is lost, breaking its link.
    pub loss: f64,
    /// Link delays are drawn from this range once per pair.
    pub delay_range: (u64, u64),
    /// Cut pairs (smaller index first).
    pub cut: HashSet<(usize, usize)>,
    /// Messages sent on external links: (sender index, its link, message).
    pub external_inbox: Vec<(usize, PeerId, Message)>,
    /// Every message sent, in order.
    pub sent: Vec<SentMsg>,
    /// Whether to record `sent` (off for very long runs).
    pub record_sends: bool,
    /// Every txid any node ever accepted (an `Event::Tx`).
    pub accepted_txs: BTreeSet<Txid>,
    /// Messages that arrived at a closed link end: (time, node, link, kind).
    pub dropped: Vec<(u64, usize, PeerId, &'static str)>,
    /// Every `Disconnect` a node asked for: (node, link, reason).
    pub disconnects: Vec<(usize, PeerId, String)>,
    pairs: Pairs,
    /// Link ends that are open: (node, link).
    open: HashSet<(usize, PeerId)>,
    /// Link ends whose connection broke: nothing sent on them arrives.
    broken: HashSet<(usize, PeerId)>,
    /// External link ends: (node, link) whose other end is the test.
    externals: HashSet<(usize, PeerId)>,
    delays: HashMap<(usize, usize), u64>,
    index: HashMap<PeerAddr, usize>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, Ev>,
    seq: u64,
    next_command: u64,
}

impl Sim {
    /// `n` nodes at `10.0.0.{i}:5000` paying `miner{i}`, none knowing any other yet.
    pub fn new(n: usize, seed: u64) -> Self {
        let params = params();
        let mut sim = Self {
            now: T0,
            rng: fastrand::Rng::with_seed(seed),
            params: params.clone(),
            nodes: Vec::new(),
            loss: 0.0,
            delay_range: (5, 50),
            cut: HashSet::new(),
            external_inbox: Vec::new(),
            sent: Vec::new(),
            record_sends: true,
            accepted_txs: BTreeSet::new(),
            disconnects: Vec::new(),
            dropped: Vec::new(),
            pairs: Pairs::default(),
            open: HashSet::new(),
            broken: HashSet::new(),
            externals: HashSet::new(),
            delays: HashMap::new(),
            index: HashMap::new(),
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            next_command: 0,
        };
        for i in 0..n {
            sim.add_node(Node::new(params.clone(), sim_config(i, seed)));
        }
        sim
    }

    /// Adds a node built elsewhere; returns its index.
    pub fn add_node(&mut self, node: Node) -> usize {
        let i = self.nodes.len();
        let addr = node.config().listen().clone();
        self.index.insert(addr.clone(), i);
        self.nodes.push(SimNode {
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

    /// Feeds node `i` an input now and carries out its outputs.
    pub fn input(&mut self, i: usize, input: Input) -> Vec<(CommandId, Reply)> {
        let now = at(self.now);
        self.nodes[i].node.handle_input(now, input);
        self.drain(i)
    }

    /// Runs a command at node `i` now and returns its reply.
    pub fn command(&mut self, i: usize, command: Command) -> Reply {
        self.next_command += 1;
        let id = CommandId(self.next_command);
        let replies = self.input(i, Input::Command { id, command });
        replies.into_iter().find(|(r, _)| *r == id).map(|(_, r)| r).unwrap()
    }

    /// Node `i` learns of node `j` as a configured (pinned) peer, as `--peer` does.
    pub fn connect(&mut self, i: usize, j: usize) {
        let a = self.nodes[j].addr.clone();
        self.command(i, Command::AddPeers(vec![a]));
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
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, ev);
    }

    /// Breaks a link: both ends see it go down after [`FAIL_AFTER_MS`].
    fn break_link(&mut self, node: usize, link: PeerId, reason: &str) {
        let at = self.now + FAIL_AFTER_MS;
        self.broken.insert((node, link));
        if let Some(other) = self.pairs.other(node, link) {
            self.broken.insert(other);
        }
        if self.open.contains(&(node, link)) {
            let ev = Ev::Down {
                node,
                link,
                reason: reason.into(),
            };
            self.schedule(at, ev);
        }
        if let Some((other, olink)) = self.pairs.other(node, link)
            && self.open.contains(&(other, olink))
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
        self.nodes[i].store.commit(&batch.stores).unwrap();
        for ev in batch.events {
            if let Event::Tx { txid, .. } = &ev {
                self.accepted_txs.insert(*txid);
            }
            self.nodes[i].events.push(ev);
        }
        for op in batch.links {
            match op {
                LinkOp::Connect(addr) => self.dial(i, addr),
                LinkOp::Send(link, msg) => self.route(i, link, msg),
                LinkOp::Disconnect(link, reason) => self.hang_up(i, link, reason),
            }
        }
        self.nodes[i].deadline = self.nodes[i].node.poll_timeout(at(self.now)).map(Time::as_millis);
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
        let (at_from, at_j) = self.pairs.open(from, j);
        self.schedule(
            self.now + d,
            Ev::Up {
                node: j,
                link: at_j,
                addr: None,
            },
        );
        self.schedule(
            self.now + 2 * d,
            Ev::Up {
                node: from,
                link: at_from,
                addr: Some(addr),
            },
        );
    }

    fn route(&mut self, from: usize, link: PeerId, msg: Message) {
        let other = self.pairs.other(from, link);
        if self.record_sends {
            let to = if self.externals.contains(&(from, link)) {
                EXTERNAL
            } else {
                other.map_or(EXTERNAL, |(j, _)| j)
            };
            self.sent.push(SentMsg {
                at: self.now,
                from,
                to,
                msg: msg.clone(),
            });
        }
        if self.externals.contains(&(from, link)) {
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
        self.schedule(
            self.now + d,
            Ev::Deliver {
                node: j,
                link: olink,
                msg,
            },
        );
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
        let ev = Ev::Down { node, link, reason };
        self.schedule(self.now, ev);
    }

    fn process(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { node, link, msg } => {
                if self.nodes[node].up && self.open.contains(&(node, link)) {
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
                self.open.insert((node, link));
                self.input(node, Input::LinkUp { peer: link, addr });
            }
            Ev::Down { node, link, reason } => {
                if self.open.remove(&(node, link)) && self.nodes[node].up {
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

    fn next_time(&self) -> Option<u64> {
        let q = self.queue.peek().map(|Reverse((t, _))| *t);
        let timers = self.nodes.iter().filter(|n| n.up).filter_map(|n| n.deadline).min();
        match (q, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances to the next instant at or before `deadline` with something to do and does
    /// it. Returns false (with the clock at `deadline`) when there was nothing.
    pub fn step(&mut self, deadline: u64) -> bool {
        let Some(t) = self.next_time().filter(|t| *t <= deadline) else {
            self.now = self.now.max(deadline);
            return false;
        };
        self.now = self.now.max(t);
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > self.now {
                break;
            }
            self.queue.pop();
            if let Some(ev) = self.pending.remove(&seq) {
                self.process(ev);
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].up && self.nodes[i].deadline.is_some_and(|d| d <= self.now) {
                self.input(i, Input::Timeout);
            }
        }
        true
    }

    /// Runs the network for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let deadline = self.now + ms;
        while self.step(deadline) {}
    }

    /// Runs until `pred` holds (checked after every instant) or `max_ms` pass; returns
    /// whether it held.
    pub fn run_until(&mut self, max_ms: u64, pred: impl Fn(&Sim) -> bool) -> bool {
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

    // ----- local actions ----------------------------------------------------------------

    /// Node `i` mines one block on its tip from its template, now; returns its hash.
    pub fn mine(&mut self, i: usize) -> BlockHash {
        let mut block = self.nodes[i].node.block_template(at(self.now));
        solve(&self.params, &mut block);
        let reply = self.command(i, Command::MinedBlock(block));
        reply.into_block().unwrap().unwrap().hash
    }

    /// Submits a transaction at node `i`; returns its txid.
    pub fn submit_tx(&mut self, i: usize, tx: Transaction) -> Txid {
        let reply = self.command(i, Command::SubmitTx(tx));
        reply.into_tx().unwrap().unwrap().txid
    }

    /// Opens a link from a test-driven peer to node `to`; returns the link's number at
    /// the node. Messages the node sends on it land in `external_inbox`.
    pub fn open_external(&mut self, to: usize) -> PeerId {
        let (_, at_to) = self.pairs.open(EXTERNAL, to);
        self.externals.insert((to, at_to));
        self.open.insert((to, at_to));
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
        self.open.contains(&(to, link)) && !self.disconnects.iter().any(|(n, l, _)| *n == to && *l == link)
    }

    /// Takes node `i` down (a crash): its links break, dials to it fail.
    pub fn take_down(&mut self, i: usize) {
        self.nodes[i].up = false;
        for link in self.pairs.links_of(i) {
            if let Some((j, olink)) = self.pairs.other(i, link)
                && self.open.contains(&(j, olink))
            {
                let ev = Ev::Down {
                    node: j,
                    link: olink,
                    reason: "connection reset".into(),
                };
                self.schedule(self.now + FAIL_AFTER_MS, ev);
            }
            self.open.remove(&(i, link));
        }
    }

    /// Rebuilds node `i` from its store with `Node::restore` (same config) and brings it up.
    pub fn restart(&mut self, i: usize) -> chainsim_core::RestoreReport {
        let stored = self.nodes[i].store.load().unwrap();
        let config = self.nodes[i].node.config().clone();
        let (node, report) = Node::restore(self.params.clone(), config, stored).unwrap();
        self.nodes[i].node = node;
        self.nodes[i].up = true;
        self.drain(i);
        report
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

    /// Whether every node holds `txid` in its mempool or best chain.
    pub fn everyone_has_tx(&self, nodes: &[usize], txid: &Txid) -> bool {
        nodes.iter().all(|&i| {
            let n = &self.nodes[i].node;
            n.mempool().contains(txid) || n.tree().find_tx(txid).is_some()
        })
    }

    /// Asserts the same tip everywhere and that every accepted transaction is, on every
    /// node, in the best chain or in the mempool, never both.
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

    /// Every accepted transaction is in node `i`'s best chain xor its mempool.
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

    /// How many bodies of block `hash` (in `Block` or `Blocks`) each node sent to each node.
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

    /// Asserts that no block body crossed one link twice in one direction.
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

    /// How many messages carrying transaction `txid` (body) each node sent to each node.
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

    /// Block bodies sent in all (in `Block` and `Blocks` messages).
    pub fn bodies_sent(&self) -> usize {
        self.sent.iter().map(|s| s.msg.carries_blocks()).sum()
    }
}

/// The configuration of simulated node `i`: keep-alive off (in-memory links never die
/// silently), seeded per node.
pub fn sim_config(i: usize, seed: u64) -> NodeConfig {
    let mut config = NodeConfig::new(addr(i), format!("miner{i}"));
    config.seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
    config.peering.keepalive = None;
    config
}
