//! Shared helpers for the core's integration tests: block building and mining on the easy
//! test network, and `Sim`, a deterministic in-memory network of `Node`s on a virtual clock.
//!
//! Every test file includes this with `mod support;` and uses a different subset of it.
#![allow(dead_code, clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use chainsim_core::peers::PeerState;
use chainsim_core::protocol::Message;
use chainsim_core::{ChainParams, ChainStore, Event, MemoryStore, Node, NodeConfig, Output, PeerAddr, PeerError};
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

/// The address of simulated node `i`: `10.0.0.{i}:5000`.
pub fn addr(i: usize) -> PeerAddr {
    format!("10.0.0.{i}:5000").parse().unwrap()
}

// ----- the simulated network ----------------------------------------------------------

/// How long a sender waits before it reports a message as failed (the HTTP client's
/// timeout in the live node).
pub const FAIL_AFTER_MS: u64 = 2_000;

/// One simulated node: the core, its storage, and what it told the world.
pub struct SimNode {
    /// The sans-IO node.
    pub node: Node,
    /// Where it "listens".
    pub addr: PeerAddr,
    /// Every `Output::Store` applied, one op at a time.
    pub store: MemoryStore,
    /// False while the node is down: messages to it fail.
    pub up: bool,
    /// Bumped on restart so that in-flight exchanges of the old instance are dropped.
    pub epoch: u32,
    /// Every event emitted.
    pub events: Vec<Event>,
}

/// Something scheduled on the virtual clock.
enum Ev {
    /// A request from `from` arrives at node `to`.
    Deliver {
        from: usize,
        from_epoch: u32,
        to: usize,
        msg: Message,
    },
    /// The answer to a request of node `to` (sent to `peer`) comes back.
    Answer {
        to: usize,
        epoch: u32,
        peer: PeerAddr,
        replies: Vec<Message>,
    },
    /// A request of node `to` (sent to `peer`) failed.
    Failed {
        to: usize,
        epoch: u32,
        peer: PeerAddr,
        reason: String,
    },
    /// `peer` answered a request of node `to` with "no handshake with you".
    HandshakeLost { to: usize, epoch: u32, peer: PeerAddr },
}

/// A message some node sent (an `Output::Send`), for the tests to inspect.
#[derive(Clone)]
pub struct SentMsg {
    /// Virtual time it was sent.
    pub at: u64,
    /// Index of the sender.
    pub from: usize,
    /// Where it went.
    pub to: PeerAddr,
    /// What it was.
    pub msg: Message,
}

/// A deterministic network of nodes: a virtual clock, a priority queue of in-flight
/// messages with a fixed delay per link (so each link is FIFO, like one TCP connection),
/// optional loss, cut links, and addresses that no simulated node answers for (driven by
/// hand from the test). Everything random comes from one seeded RNG.
pub struct Sim {
    /// Virtual time, ms.
    pub now: u64,
    /// The network's RNG (delays, loss).
    pub rng: fastrand::Rng,
    /// Consensus parameters shared by every node.
    pub params: Arc<ChainParams>,
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    /// Probability that a request is lost (the sender then sees a failure).
    pub loss: f64,
    /// Link delays are drawn from this range once per link.
    pub delay_range: (u64, u64),
    /// Cut links, as unordered pairs (smaller index first).
    pub cut: HashSet<(usize, usize)>,
    /// Addresses driven by the test: messages to them land in `external_inbox` and count
    /// as delivered.
    pub external: HashSet<PeerAddr>,
    /// Messages sent to external addresses: (sender index, to, message).
    pub external_inbox: Vec<(usize, PeerAddr, Message)>,
    /// Every `Output::Send`, in order.
    pub sent: Vec<SentMsg>,
    /// Whether to record `sent` (off for very long runs).
    pub record_sends: bool,
    /// Every txid any node ever accepted (an `Event::Tx`).
    pub accepted_txs: BTreeSet<Txid>,
    /// Errors returned by `handle_message` for requests, (receiver, sender, error).
    pub refusals: Vec<(usize, PeerAddr, PeerError)>,
    delays: HashMap<(usize, usize), u64>,
    index: HashMap<PeerAddr, usize>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, Ev>,
    seq: u64,
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
            external: HashSet::new(),
            external_inbox: Vec::new(),
            sent: Vec::new(),
            record_sends: true,
            accepted_txs: BTreeSet::new(),
            refusals: Vec::new(),
            delays: HashMap::new(),
            index: HashMap::new(),
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
        };
        for i in 0..n {
            let mut config = NodeConfig::new(addr(i), format!("miner{i}"));
            config.seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            sim.add_node(Node::new(params.clone(), config));
        }
        sim
    }

    /// Adds a node built elsewhere; returns its index.
    pub fn add_node(&mut self, node: Node) -> usize {
        let i = self.nodes.len();
        let addr = node.config().listen.clone();
        self.index.insert(addr.clone(), i);
        self.nodes.push(SimNode {
            node,
            addr,
            store: MemoryStore::default(),
            up: true,
            epoch: 0,
            events: Vec::new(),
        });
        self.drain(i);
        i
    }

    /// The node at index `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i].node
    }

    /// Node `i` learns of node `j` as a configured (pinned) peer, as `--peer` does.
    pub fn connect(&mut self, i: usize, j: usize) {
        let a = self.nodes[j].addr.clone();
        let now = self.now;
        self.nodes[i].node.add_peer(a, true, now);
        self.drain(i);
    }

    fn key(i: usize, j: usize) -> (usize, usize) {
        (i.min(j), i.max(j))
    }

    /// Cuts the link between `i` and `j` (both directions).
    pub fn cut_link(&mut self, i: usize, j: usize) {
        self.cut.insert(Self::key(i, j));
    }

    /// Cuts every link between the two groups.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &i in a {
            for &j in b {
                self.cut_link(i, j);
            }
        }
    }

    /// Removes every cut.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    fn delay(&mut self, i: usize, j: usize) -> u64 {
        let (lo, hi) = self.delay_range;
        let rng = &mut self.rng;
        *self.delays.entry(Self::key(i, j)).or_insert_with(|| rng.u64(lo..=hi))
    }

    /// Reports to node `from` (in its `epoch`) that its message to `peer` failed, after the
    /// transport's timeout, as the live node's peer client would.
    fn fail_later(&mut self, from: usize, epoch: u32, peer: PeerAddr, reason: String) {
        self.schedule(
            self.now + FAIL_AFTER_MS,
            Ev::Failed {
                to: from,
                epoch,
                peer,
                reason,
            },
        );
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, ev);
    }

    /// Carries out everything node `i` queued: storage, events, messages.
    pub fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].node.poll_output() {
            match out {
                Output::Store(op) => {
                    self.nodes[i].store.commit(std::slice::from_ref(&op)).unwrap();
                }
                Output::Event(ev) => {
                    if let Event::Tx { txid, .. } = &ev {
                        self.accepted_txs.insert(*txid);
                    }
                    self.nodes[i].events.push(ev);
                }
                Output::Send { to, msg } => self.route(i, to, msg),
            }
        }
    }

    fn route(&mut self, from: usize, to: PeerAddr, msg: Message) {
        if self.record_sends {
            self.sent.push(SentMsg {
                at: self.now,
                from,
                to: to.clone(),
                msg: msg.clone(),
            });
        }
        let epoch = self.nodes[from].epoch;
        if self.external.contains(&to) {
            self.external_inbox.push((from, to.clone(), msg));
            let now = self.now;
            self.nodes[from].node.handle_delivered(&to, now);
            return;
        }
        let Some(&j) = self.index.get(&to) else {
            let reason = format!("connection to {to} refused");
            self.fail_later(from, epoch, to, reason);
            return;
        };
        let lost = self.loss > 0.0 && self.rng.f64() < self.loss;
        if lost || self.cut.contains(&Self::key(from, j)) || !self.nodes[j].up {
            let reason = format!("request to {to} timed out");
            self.fail_later(from, epoch, to, reason);
            return;
        }
        let at = self.now + self.delay(from, j);
        self.schedule(
            at,
            Ev::Deliver {
                from,
                from_epoch: epoch,
                to: j,
                msg,
            },
        );
    }

    fn process(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Deliver {
                from,
                from_epoch,
                to,
                msg,
            } => {
                let from_addr = self.nodes[from].addr.clone();
                let to_addr = self.nodes[to].addr.clone();
                if !self.nodes[to].up || self.cut.contains(&Self::key(from, to)) {
                    let reason = format!("request to {to_addr} timed out");
                    let at = now + FAIL_AFTER_MS;
                    self.schedule(
                        at,
                        Ev::Failed {
                            to: from,
                            epoch: from_epoch,
                            peer: to_addr,
                            reason,
                        },
                    );
                    return;
                }
                let result = self.nodes[to].node.handle_message(&from_addr, msg, now);
                // The answer goes back first: in the live node it rides on the same HTTP
                // exchange, ahead of anything the receiver sends on its own afterwards.
                let back = now + self.delay(from, to);
                match result {
                    Ok(replies) => self.schedule(
                        back,
                        Ev::Answer {
                            to: from,
                            epoch: from_epoch,
                            peer: to_addr,
                            replies,
                        },
                    ),
                    Err(e) => {
                        // As the live transport does: "no handshake with you" (the receiver
                        // restarted and forgot us) means say hello again; anything else is a
                        // failed request.
                        let ev = if matches!(e, PeerError::NotConnected(_)) {
                            Ev::HandshakeLost {
                                to: from,
                                epoch: from_epoch,
                                peer: to_addr,
                            }
                        } else {
                            Ev::Failed {
                                to: from,
                                epoch: from_epoch,
                                peer: to_addr,
                                reason: e.to_string(),
                            }
                        };
                        self.refusals.push((to, from_addr, e));
                        self.schedule(back, ev);
                    }
                }
                self.drain(to);
            }
            Ev::Answer {
                to,
                epoch,
                peer,
                replies,
            } => {
                if self.nodes[to].epoch != epoch || !self.nodes[to].up {
                    return;
                }
                self.nodes[to].node.handle_delivered(&peer, now);
                for reply in replies {
                    // Replies to replies go out as new requests, through the outputs.
                    let _ = self.nodes[to].node.handle_message(&peer, reply, now);
                }
                self.drain(to);
            }
            Ev::Failed {
                to,
                epoch,
                peer,
                reason,
            } => {
                if self.nodes[to].epoch != epoch || !self.nodes[to].up {
                    return;
                }
                self.nodes[to].node.handle_send_failed(&peer, &reason, now);
                self.drain(to);
            }
            Ev::HandshakeLost { to, epoch, peer } => {
                if self.nodes[to].epoch != epoch || !self.nodes[to].up {
                    return;
                }
                self.nodes[to].node.handle_handshake_lost(&peer, now);
                self.drain(to);
            }
        }
    }

    fn next_time(&self) -> Option<u64> {
        let q = self.queue.peek().map(|Reverse((t, _))| *t);
        let timers = self.nodes.iter().filter(|n| n.up).map(|n| n.node.poll_timeout()).min();
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
            if self.nodes[i].up && self.nodes[i].node.poll_timeout() <= self.now {
                let now = self.now;
                self.nodes[i].node.handle_timeout(now);
                self.drain(i);
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
        let now = self.now;
        let mut block = self.nodes[i].node.block_template(now);
        solve(&self.params, &mut block);
        let outcome = self.nodes[i].node.submit_mined_block(block, now).unwrap();
        self.drain(i);
        outcome.hash
    }

    /// Submits a transaction at node `i`; returns its txid.
    pub fn submit_tx(&mut self, i: usize, tx: Transaction) -> Txid {
        let now = self.now;
        let outcome = self.nodes[i].node.submit_transaction(tx, now).unwrap();
        self.drain(i);
        outcome.txid
    }

    /// A test-driven peer at `from` sends `msg` to node `to`, now.
    pub fn inject(&mut self, from: &PeerAddr, to: usize, msg: Message) -> Result<Vec<Message>, PeerError> {
        let now = self.now;
        let r = self.nodes[to].node.handle_message(from, msg, now);
        self.drain(to);
        r
    }

    /// Takes node `i` down: messages to it fail, its timers stop, in-flight answers to it
    /// are dropped.
    pub fn take_down(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.nodes[i].epoch += 1;
    }

    /// Rebuilds node `i` from its store with `Node::restore` (same config) and brings it up.
    pub fn restart(&mut self, i: usize) -> chainsim_core::RestoreReport {
        let stored = self.nodes[i].store.load().unwrap();
        let config = self.nodes[i].node.config().clone();
        let (node, report) = Node::restore(self.params.clone(), config, stored).unwrap();
        self.nodes[i].node = node;
        self.nodes[i].up = true;
        self.nodes[i].epoch += 1;
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

    /// How many `Message::Block` carrying `hash` each node sent to each address.
    pub fn block_sends(&self, hash: &BlockHash) -> BTreeMap<(usize, PeerAddr), usize> {
        let mut out = BTreeMap::new();
        for s in &self.sent {
            if let Message::Block { block } = &s.msg
                && block.0.compute_hash() == *hash
            {
                *out.entry((s.from, s.to.clone())).or_insert(0) += 1;
            }
        }
        out
    }

    /// Asserts that no block was sent (as `Message::Block`) twice by one node to one
    /// address: a node relays a block only when it first accepts it.
    pub fn assert_blocks_relayed_once(&self) {
        let mut seen: HashSet<(usize, PeerAddr, BlockHash)> = HashSet::new();
        for s in &self.sent {
            if let Message::Block { block } = &s.msg {
                let key = (s.from, s.to.clone(), block.0.compute_hash());
                assert!(
                    seen.insert(key.clone()),
                    "node {} sent block {:?} to {} twice",
                    key.0,
                    key.2,
                    key.1
                );
            }
        }
    }

    /// How many `Message::Txs` containing `txid` each node sent to each address.
    pub fn tx_sends(&self, txid: &Txid) -> BTreeMap<(usize, PeerAddr), usize> {
        let mut out = BTreeMap::new();
        for s in &self.sent {
            if let Message::Txs { txs } = &s.msg
                && txs.iter().any(|t| t.compute_txid() == *txid)
            {
                *out.entry((s.from, s.to.clone())).or_insert(0) += 1;
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

    /// Whether every node in `nodes` is connected to every link of `links`.
    pub fn links_up(&self, links: &[(usize, usize)]) -> bool {
        links.iter().all(|&(i, j)| {
            self.nodes[i].node.peers().is_connected(&self.nodes[j].addr)
                && self.nodes[j].node.peers().is_connected(&self.nodes[i].addr)
        })
    }
}
