//! The simulation loop: the nodes' cores, the event queue, the network model and the
//! miners, tied together through the core's transport glue ([`chainsim_core::link`]).
//!
//! A run has three phases on one virtual clock: **warm-up** (every node dials its peers
//! from the topology, through its own core, until nothing is scheduled or `warmup_s`
//! passes), **mining** (Poisson block times; each block built by its finder's core and
//! handed in as a live miner's is; ends when a block at height `blocks` is mined), and a
//! **quiet period** (until nothing is scheduled or `quiet_s` passes) so the last blocks
//! spread before results are taken.
//!
//! The simulator keeps one block store in memory that all nodes share ([`SharedBlocks`]): each
//! body is held once, and every node reads bodies back from it as a live node reads its
//! database. It has no keep-alive (simulated links never die silently), as the in-memory
//! test network; everything else is the live node's code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chainsim_core::input::CommandId;
use chainsim_core::keyed_hash::KeyedHash;
use chainsim_core::link::{Effects, LinkTag, Pairs, drain};
use chainsim_core::store::StoreOp;
use chainsim_core::testnet::{FAIL_AFTER_MS, START_MS, config};
use chainsim_core::{
    ChainParams, Command, Event, EventKind, EventKinds, Input, Message, Node, PeerAddr, PeerId, Reply, Time,
};
use chainsim_primitives::CompactTarget;
use chainsim_primitives::pow::search_nonce;

use crate::blocks::SharedBlocks;
use crate::changes::LinkChanges;
use crate::mining::{BlockSizes, Miners};
use crate::network::Network;
use crate::prefetch::{Cache, prefetch, prefetch_into, prefetch_l2};
use crate::queue::{EventQueue, Micros};
use crate::results::{Recorder, Results, Summary, Tally};
use crate::scenario::Scenario;
use crate::size::message_bytes;
use crate::topology;
use crate::txload::TxLoad;

/// A set of link ends, looked up for every message: hashed with one multiply, not SipHash.
type KeyedSet<T> = HashSet<T, KeyedHash>;

/// The simulation network's target: Bitcoin regtest's `0x207fffff`, the largest a compact
/// target can express, met by about half of all hashes (so a nonce takes ~2 tries).
pub const SIM_BITS: CompactTarget = CompactTarget(0x207f_ffff);

/// Something scheduled on the virtual clock.
#[derive(Debug)]
enum Ev {
    /// `node` finds a block.
    Mine { node: usize },
    /// A message on its way into `(node, link)`: arriving from another node, to be
    /// processed now or after what the node is busy validating, or processed and handed to
    /// the node's core. One variant for both, with node indices as `u32` (a scenario has
    /// fewer than 2^31 nodes): with the core's 32-byte message it takes 48 bytes, and an
    /// event with its queue key one cache line, where two variants holding a message took
    /// 56 (messages are most of what the queue moves).
    Msg {
        node: u32,
        link: PeerId,
        stage: Stage,
        msg: Message,
    },
    /// A link end comes up (`addr` for the dialler). The rare events hold their larger
    /// parts boxed: the others share the room `Msg` leaves beside its message's tag, 24
    /// bytes, and one larger made every event 56 bytes.
    Up {
        node: usize,
        link: PeerId,
        addr: Option<Box<PeerAddr>>,
    },
    /// A link end goes down.
    Down(Box<LinkDown>),
    /// A dial failed.
    DialFailed { node: usize, addr: PeerAddr },
    /// A node's deadline, due `at` (live while that is still the node's deadline in
    /// [`World::deadlines`]; a deadline cleared or moved leaves its event behind).
    Timer { node: usize, at: Micros },
    /// Nodes below `split` and the others can no longer reach each other.
    Partition { split: usize },
    /// The partition ends.
    Heal,
    /// Link change `change` comes into force (`on`) or its links are restored.
    LinkChange { change: usize, on: bool },
    /// A synthetic transaction is submitted to `node`.
    Tx { node: usize },
    /// `node` leaves the network (`away`) or rejoins it.
    Churn { node: usize, away: bool },
}

/// A link end going down: node `node`'s link `link`, and why.
#[derive(Debug)]
struct LinkDown {
    node: usize,
    link: PeerId,
    reason: String,
}

/// Where a message in an [`Ev::Msg`] is: just arrived from a node (its index), or processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stage(u32);

impl Stage {
    /// Processed: due to the core.
    const PROCESSED: Stage = Stage(u32::MAX);

    /// Arriving from node `from`.
    fn arriving(from: usize) -> Self {
        Stage(from as u32)
    }

    /// The sending node, while the message has yet to be processed.
    fn sender(self) -> Option<usize> {
        (self != Self::PROCESSED).then_some(self.0 as usize)
    }

    /// Whether a message at this stage goes to its receiver's core when its event comes:
    /// once processed, or as it arrives when it has nothing to validate (a hint for loading
    /// ahead: a message that finds its node busy validating waits too, but telling so would
    /// read the node's busy time, itself a load to wait for).
    fn reaches_core(self, net: &Network, msg: &Message) -> bool {
        self == Self::PROCESSED || !net.validates(msg.carries_blocks())
    }
}

/// No deadline, in [`World::deadlines`].
const NO_DEADLINE: Micros = Micros::MAX;

/// Everything but the nodes: what a node's outputs act on.
#[derive(Debug)]
struct World {
    now: Micros,
    /// Each node's deadline ([`NO_DEADLINE`] for none), apart from the nodes: one event in
    /// thirteen is a timer whose deadline was cleared before it came due, and telling so
    /// from here reads no node's state (nor loads it ahead).
    deadlines: Vec<Micros>,
    queue: EventQueue<Ev>,
    net: Network,
    pairs: Pairs,
    /// Link ends whose connection broke (loss): nothing more gets through.
    broken: KeyedSet<(usize, PeerId)>,
    index: HashMap<PeerAddr, usize>,
    recorder: Recorder,
    sizes: BlockSizes,
    /// While a partition lasts: nodes below this number are cut off from the others.
    partition: Option<usize>,
    /// Link conditions changed at given times.
    changes: LinkChanges,
    /// Nodes that have left the network (churn): nothing reaches them or leaves them.
    away: HashSet<usize>,
    /// Size of the block being mined, for the recorder.
    mined_bytes: u64,
    /// The blocks, once for all nodes.
    blocks: SharedBlocks,
    /// The node being drained put a block: tell it the store has it.
    stored: bool,
    messages: u64,
    bytes: u64,
    inputs: u64,
    dropped: u64,
    /// The reply to the command just handed in.
    reply: Option<Reply>,
}

/// Carries one node's outputs into the world (the simulator's [`Effects`]).
struct Carrier<'a> {
    node: usize,
    w: &'a mut World,
}

impl Effects for Carrier<'_> {
    fn connect(&mut self, addr: PeerAddr) {
        self.w.dial(self.node, addr);
    }
    fn send(&mut self, to: PeerId, msg: Message) {
        self.w.route(self.node, to, msg);
    }
    fn disconnect(&mut self, peer: PeerId, reason: String) {
        self.w.hang_up(self.node, peer, reason);
    }
    fn store(&mut self, op: StoreOp) {
        // Only blocks are shared: nothing else a node stores is read back during a run.
        if let StoreOp::PutBlock { hash, block, .. } = op {
            self.w.blocks.put(hash, &block);
            self.w.stored = true;
        }
    }
    fn event(&mut self, event: Event) {
        let now = self.w.now;
        match event {
            Event::Block {
                hash,
                height,
                mined_here: true,
                ..
            } => {
                let bytes = self.w.mined_bytes;
                self.w.recorder.mined(hash, height, self.node, now, bytes);
            }
            Event::Block { hash, .. } => self.w.recorder.received(&hash, now),
            Event::Reorg { disconnected, .. } => self.w.recorder.reorg(disconnected.len()),
            _ => {}
        }
    }
    fn reply(&mut self, _id: CommandId, reply: Reply) {
        // One command is in flight at a time: its reply is picked up right after the drain.
        self.w.reply = Some(reply);
    }
}

impl World {
    fn schedule(&mut self, at: Micros, ev: Ev) {
        self.queue.push(at.max(self.now), ev);
    }

    /// The node whose core `ev` goes to, for the events that go to one core: a timer only
    /// while it is live, a message only once it is processed or when it will be as it
    /// arrives (a block arriving waits for its validation first; loading its node's state
    /// ahead for that would load it, and every link's entry, twice per block).
    fn target(&self, ev: &Ev) -> Option<usize> {
        match *ev {
            Ev::Msg {
                node, stage, ref msg, ..
            } => stage.reaches_core(&self.net, msg).then_some(node as usize),
            Ev::Timer { node, at } => self.timer_live(node, at).then_some(node),
            _ => None,
        }
    }

    /// Whether node `node`'s timer event due `at` is still its deadline.
    fn timer_live(&self, node: usize, at: Micros) -> bool {
        self.deadlines.get(node) == Some(&at)
    }

    /// Whether a partition, a cut link or a node that has left now keeps `a` and `b` apart.
    /// Asked for every message: while none of the three is in force, as in most runs, their
    /// fields answer without a call.
    #[inline]
    fn apart(&self, a: usize, b: usize) -> bool {
        let none = self.partition.is_none() && self.changes.none_active() && self.away.is_empty();
        !none && self.kept_apart(a, b)
    }

    /// [`World::apart`] while something may keep nodes apart.
    fn kept_apart(&self, a: usize, b: usize) -> bool {
        self.partition.is_some_and(|split| (a < split) != (b < split))
            || self.changes.cut(a, b, &self.net)
            || (!self.away.is_empty() && (self.away.contains(&a) || self.away.contains(&b)))
    }

    /// `node` leaves: every link it has breaks (both ends notice after the connect
    /// timeout), and until it rejoins nothing reaches it or leaves it.
    fn leave(&mut self, node: usize) {
        self.away.insert(node);
        for link in self.pairs.links_of(node) {
            if self.pairs.is_open(node, link) {
                self.break_link(node, link);
            }
        }
    }

    fn dial(&mut self, from: usize, addr: PeerAddr) {
        let reachable = self.index.get(&addr).copied().filter(|&to| !self.apart(from, to));
        let Some(to) = reachable else {
            self.schedule(self.now + FAIL_AFTER_MS * 1000, Ev::DialFailed { node: from, addr });
            return;
        };
        let latency = self.net.latency(from, to);
        let d = latency + self.changes.extra_delay(from, to, &self.net);
        // Every message on the link reads its latency and its pipe with the other end (0 and
        // u16::MAX: look them up).
        let delay = u32::try_from(latency).unwrap_or(0);
        for up in self.pairs.dial(from, to, addr) {
            let (node, link, addr) = (up.node, up.link, up.addr);
            let other = if node == from { to } else { from };
            let route = u16::try_from(self.net.pipe_of(node, other)).unwrap_or(u16::MAX);
            self.pairs.set_tag(node, link, LinkTag { delay, route });
            let addr = addr.map(Box::new);
            self.schedule(self.now + d * Micros::from(up.delays), Ev::Up { node, link, addr });
        }
    }

    fn route(&mut self, from: usize, link: PeerId, msg: Message) {
        let sizes = &self.sizes;
        let bytes = message_bytes(&msg, |b| sizes.of(b));
        self.messages += 1;
        self.bytes += bytes;
        let Some((to, olink, tag)) = self.pairs.other_tagged(from, link) else {
            return;
        };
        if self.apart(from, to) {
            self.dropped += 1;
            return;
        }
        if !self.broken.is_empty() && self.broken.contains(&(from, link)) {
            return;
        }
        if self.net.lost() {
            self.break_link(from, link);
            return;
        }
        let at = if self.changes.idle(self.now) {
            // What the link keeps, or (unknown) looked up as `Network::transmit` would.
            let latency = match tag.delay {
                0 => self.net.latency(from, to),
                delay => Micros::from(delay),
            };
            let pipe = match tag.route {
                u16::MAX => self.net.pipe_of(from, to),
                route => usize::from(route),
            };
            self.net.transmit_through(self.now, from, pipe, bytes, latency)
        } else {
            match self.changes.transmit(&mut self.net, self.now, from, to, bytes) {
                Some(at) => at,
                None => return self.break_link(from, link),
            }
        };
        self.schedule(
            at,
            Ev::Msg {
                node: to as u32,
                link: olink,
                stage: Stage::arriving(from),
                msg,
            },
        );
    }

    /// Closes a link: the other end hears of it after everything already sent on it.
    fn hang_up(&mut self, node: usize, link: PeerId, reason: String) {
        if let Some((other, olink)) = self.pairs.other(node, link) {
            let at = self.net.transmit(self.now, node, other, 0);
            let ev = Ev::Down(Box::new(LinkDown {
                node: other,
                link: olink,
                reason: format!("closed by the other side: {reason}"),
            }));
            self.schedule(at, ev);
        }
        self.schedule(self.now, Ev::Down(Box::new(LinkDown { node, link, reason })));
    }

    /// A lost message breaks its link: both ends notice after the connect timeout.
    fn break_link(&mut self, node: usize, link: PeerId) {
        let at = self.now + FAIL_AFTER_MS * 1000;
        let mut ends = vec![(node, link)];
        ends.extend(self.pairs.other(node, link));
        for (n, l) in ends {
            if self.broken.insert((n, l)) {
                let reason = "connection lost".to_string();
                self.schedule(
                    at,
                    Ev::Down(Box::new(LinkDown {
                        node: n,
                        link: l,
                        reason,
                    })),
                );
            }
        }
    }
}

/// The core's time at virtual time `us`.
fn core_time(us: Micros) -> Time {
    Time::from_millis(START_MS + us / 1000)
}

/// Virtual microseconds in `s` seconds.
fn seconds(s: f64) -> Micros {
    (s * 1e6).round() as Micros
}

/// Virtual time of a core deadline.
fn virtual_time(t: Time) -> Micros {
    t.as_millis().saturating_sub(START_MS).saturating_mul(1000)
}

/// One simulation: build it with [`Simulation::new`], run it with [`Simulation::run`].
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    nodes: Vec<Node>,
    world: World,
    miners: Miners,
    mining: bool,
    links_at_start: u64,
    /// Virtual time mining started at (link changes and partitions count from it).
    mining_start: Micros,
    /// The synthetic transaction load, when the scenario has one.
    txs: Option<TxLoad>,
}

/// Seeds of the run's independent random streams, derived from the scenario's seed
/// (stream 1 the graph, 2 the network, 3 the miners, 4 block sizes, 5 link changes, 6
/// transactions).
pub fn sub_seed(seed: u64, stream: u64) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(stream)
}

/// One core per node, configured as the in-memory test network configures its nodes, with
/// the scenario's relay mode and link limits; and the address book of the network.
fn build_nodes(
    scenario: &Scenario,
    graph: &topology::Graph,
    blocks: &SharedBlocks,
) -> (Vec<Node>, HashMap<PeerAddr, usize>) {
    let params = Arc::new(ChainParams::with_bits("chainsim-sim", SIM_BITS));
    let mut nodes = Vec::with_capacity(graph.len());
    let mut index = HashMap::with_capacity(graph.len());
    for (i, peers) in graph.iter().enumerate() {
        let mut cfg = config(i, scenario.seed);
        cfg.relay = scenario.relay.mode();
        // Exactly its topology: a node never dials addresses learned by peer exchange while
        // its configured links stay up (nor at all when the topology gives it none).
        cfg.peering.limits.max_outbound = peers.len();
        cfg.peering.limits.max_inbound = scenario.topology.max_inbound;
        cfg.peering.limits.max_known = scenario.known_addrs;
        cfg.keep_entries_depth = scenario.keep_depth;
        // Every block the run mines, and room for a few stale ones besides.
        let mined = usize::try_from(scenario.blocks).unwrap_or(usize::MAX);
        cfg.expected_blocks = mined.saturating_add(mined / 16 + 4);
        // What the carrier reads (`Carrier::event`): the rest would be built for nothing.
        cfg.events = EventKinds::only(&[EventKind::Block, EventKind::Reorg]);
        index.insert(cfg.listen().clone(), i);
        nodes.push(open_node(&params, cfg, blocks));
    }
    (nodes, index)
}

/// A node reading its bodies back from the shared store. Opening on an empty store replays
/// nothing and cannot fail; were it to, a node keeping its own bodies gives the same results.
fn open_node(params: &Arc<ChainParams>, cfg: chainsim_core::NodeConfig, blocks: &SharedBlocks) -> Node {
    match Node::open(params.clone(), cfg.clone(), blocks) {
        Ok(Ok((node, _))) => node,
        _ => Node::new(params.clone(), cfg),
    }
}

impl Simulation {
    /// Builds the nodes, the network and the miners of `scenario` (nothing runs yet).
    pub fn new(scenario: Scenario) -> Self {
        let n = scenario.nodes;
        let seed = scenario.seed;
        let mut rng = fastrand::Rng::with_seed(sub_seed(seed, 1));
        let miners = Miners::new(&scenario.mining, n, sub_seed(seed, 3));
        let graph = topology::build(&scenario.topology, n, miners.pool_nodes(), &mut rng);
        let blocks = SharedBlocks::default();
        let (nodes, index) = build_nodes(&scenario, &graph, &blocks);
        let world = World {
            now: 0,
            deadlines: vec![NO_DEADLINE; n],
            queue: EventQueue::default(),
            net: Network::new(&scenario.network, n, sub_seed(seed, 2)),
            pairs: Pairs::default(),
            broken: KeyedSet::default(),
            index,
            recorder: Recorder::new(n),
            sizes: BlockSizes::new(&scenario.mining, sub_seed(seed, 4)),
            partition: None,
            changes: LinkChanges::new(&scenario.link_changes, &scenario.network.regions, sub_seed(seed, 5)),
            away: HashSet::new(),
            mined_bytes: 0,
            blocks,
            stored: false,
            messages: 0,
            bytes: 0,
            inputs: 0,
            dropped: 0,
            reply: None,
        };
        let txs = scenario
            .transactions
            .as_ref()
            .map(|t| TxLoad::new(t, n, sub_seed(seed, 6)));
        let mut sim = Self {
            scenario,
            nodes,
            world,
            miners,
            mining: false,
            links_at_start: 0,
            mining_start: 0,
            txs,
        };
        for (i, peers) in graph.into_iter().enumerate() {
            if !peers.is_empty() {
                // The nodes' own addresses, shared: an address compared with itself is equal
                // at once, without comparing its text.
                let addrs = peers.into_iter().map(|j| sim.nodes[j].config().listen().clone());
                sim.command(i, Command::AddPeers(addrs.collect()));
            }
        }
        sim
    }

    /// Runs warm-up, mining and the quiet period; returns the results.
    pub fn run(&mut self) -> Results {
        self.warm_up();
        self.mine_blocks();
        self.quiet();
        self.results()
    }

    /// Phase 1: the links form (until nothing is scheduled, at most `warmup_s`).
    pub fn warm_up(&mut self) {
        self.run_until_idle(seconds(self.scenario.warmup_s));
        self.links_at_start = self.link_count();
    }

    /// Phase 2: blocks are found until one reaches the scenario's height.
    pub fn mine_blocks(&mut self) {
        self.mine_blocks_with(|_, _| {});
    }

    /// [`Simulation::mine_blocks`], calling `progress(blocks mined, target height)` after
    /// every block (for a progress display).
    pub fn mine_blocks_with(&mut self, mut progress: impl FnMut(u64, u64)) {
        self.mining = true;
        self.schedule_next_block();
        let now = self.world.now;
        for p in &self.scenario.partitions {
            let split = ((p.share * self.nodes.len() as f64).round() as usize).clamp(1, self.nodes.len() - 1);
            self.world.queue.push(now + seconds(p.at_s), Ev::Partition { split });
            self.world.queue.push(now + seconds(p.heal_s), Ev::Heal);
        }
        self.mining_start = now;
        self.schedule_changes_and_load();
        let mut seen = 0;
        while self.mining && self.step() {
            let mined = self.world.recorder.blocks.len();
            if mined != seen {
                seen = mined;
                progress(mined as u64, self.scenario.blocks);
            }
        }
    }

    /// Phase 3: the last blocks spread (until nothing is scheduled, at most `quiet_s`).
    pub fn quiet(&mut self) {
        self.run_until_idle(seconds(self.scenario.quiet_s));
    }

    /// Steps until nothing is scheduled or `span` of virtual time has passed.
    fn run_until_idle(&mut self, span: Micros) {
        let limit = self.world.now.saturating_add(span);
        while self.world.queue.peek_time().is_some_and(|t| t <= limit) {
            self.step();
        }
    }

    /// Handles the earliest event; false when there is none.
    fn step(&mut self) -> bool {
        let Some((at, ev)) = self.world.queue.pop() else {
            return false;
        };
        self.world.now = at;
        self.prefetch_next();
        match ev {
            Ev::Mine { node } => self.mine(node),
            Ev::Msg { node, link, stage, msg } => match stage.sender() {
                Some(from) => self.arrive(node as usize, link, from, msg),
                None if self.world.pairs.is_open(node as usize, link) => {
                    self.input(node as usize, Input::Message { from: link, msg });
                }
                None => {}
            },
            Ev::Up { node, link, addr } => {
                self.world.pairs.set_open(node, link);
                let addr = addr.map(|a| *a);
                self.input(node, Input::LinkUp { peer: link, addr });
            }
            Ev::Down(down) => {
                let LinkDown { node, link, reason } = *down;
                if self.world.pairs.close(node, link) {
                    self.input(node, Input::LinkDown { peer: link, reason });
                }
            }
            Ev::DialFailed { node, addr } => {
                let reason = format!("no node listens at {addr}");
                self.input(node, Input::DialFailed { addr, reason });
            }
            Ev::Partition { split } => self.world.partition = Some(split),
            Ev::Heal => self.world.partition = None,
            Ev::LinkChange { change, on } => self.world.changes.set(change, on),
            Ev::Tx { node } => self.submit_tx(node),
            Ev::Churn { node, away: true } => self.world.leave(node),
            Ev::Churn { node, away: false } => _ = self.world.away.remove(&node),
            Ev::Timer { node, at } => {
                if self.world.timer_live(node, at) {
                    self.world.deadlines[node] = NO_DEADLINE;
                    self.input(node, Input::Timeout);
                }
            }
        }
        true
    }

    /// Starts loading, while this event is handled, what the next three will read first
    /// (see [`prefetch`]), each a step further along as it comes closer: for the event after
    /// next but one, its node's state (into the second-level cache: the first-level one, and
    /// its few fill buffers, are kept for what comes sooner); for the event after next, the
    /// entry of the link its message comes on and the headers it announces (its node's
    /// state, asked for one event ago, tells where the link is); and for the next event, all
    /// of that into the first-level cache (its node's state too, every line of it: 3 to
    /// 5% less time mining at 10,000 nodes than leaving it in the second-level cache, see
    /// docs/BENCHMARKS.md), with its link ends here and, for a block, the first two lines of
    /// every link entry (what relaying the block on each reads), the node's metrics and the
    /// shared count of the sender's address (what taking the block writes), and the link ends its
    /// answer goes out on (every one for a block, else the one the message came on; their
    /// table was asked for an event earlier). A live deadline's node is loaded into the
    /// first-level cache only when the queue cannot tell the events after it (else it is in
    /// the second-level one already). A message arriving with something to validate first
    /// (a block) does not reach its core yet: its node's state is loaded for the event that
    /// hands it over, not twice.
    fn prefetch_next(&mut self) {
        // The queue names the next events only once sorted out: sorting them out now, not
        // at their pops, lets every event be loaded ahead, where a run cut short (a large
        // bucket split gives it one event) left the next few to wait on memory.
        self.world.queue.fill_run(3);
        let third = self.world.queue.peek_nth(2).and_then(|ev| self.world.target(ev));
        let second = self.world.queue.peek_nth(1);
        if let Some(n) = third.or(second.and_then(|ev| self.world.target(ev))) {
            prefetch_l2(&self.nodes[n]);
        }
        if let Some(&Ev::Msg {
            node,
            link,
            stage,
            ref msg,
        }) = second
            && stage.reaches_core(&self.world.net, msg)
        {
            let node = node as usize;
            prefetch_message(&self.nodes, Cache::Second, (node, link), msg);
            if let Some(ends) = self.world.pairs.ends_of(node) {
                prefetch_l2(ends);
            }
        }
        let next_only = second.is_none();
        match self.world.queue.peek() {
            Some(&Ev::Msg {
                node,
                link,
                stage,
                ref msg,
            }) if stage.reaches_core(&self.world.net, msg) => {
                let node = node as usize;
                prefetch(&self.nodes[node]);
                // Read after its input, to schedule its next deadline.
                if let Some(deadline) = self.world.deadlines.get(node) {
                    prefetch(deadline);
                }
                if let Some(ends) = self.world.pairs.ends_of(node) {
                    prefetch(ends);
                }
                if msg.carries_blocks() > 0 {
                    let links = self.nodes[node].peering().links().iter();
                    links.for_each(|l| prefetch(l.relay_part()));
                    prefetch(self.nodes[node].metrics());
                    // Its block event names the sender's address: a clone, whose count is
                    // far from the caches at a simulator's ten thousand nodes.
                    if let Some(addr) = self.nodes[node].peering().addr_of(link) {
                        prefetch(addr.shared_part());
                    }
                    self.world.pairs.link_ends_of(node).iter().for_each(prefetch);
                } else if let Some(end) = self.world.pairs.end_of(node, link) {
                    // A request or an answer goes back on the link it came on.
                    prefetch(end);
                }
                prefetch_message(&self.nodes, Cache::First, (node, link), msg);
            }
            Some(&Ev::Msg { node, .. }) => {
                // Arriving to wait for validation: of what is loaded ahead, its arrival reads
                // only whether its link is open.
                if let Some(ends) = self.world.pairs.ends_of(node as usize) {
                    prefetch(ends);
                }
            }
            // `timer_live`, read field by field: the queue's peek holds `world` borrowed.
            Some(&Ev::Timer { node, at }) if next_only && self.world.deadlines[node] == at => {
                prefetch(&self.nodes[node])
            }
            _ => {}
        }
    }

    fn arrive(&mut self, node: usize, link: PeerId, from: usize, msg: Message) {
        if self.world.apart(from, node) || !self.world.pairs.is_open(node, link) {
            self.world.dropped += 1;
            return;
        }
        match self.world.net.process(self.world.now, node, msg.carries_blocks()) {
            None => self.input(node, Input::Message { from: link, msg }),
            Some(done) => {
                let (node, stage) = (node as u32, Stage::PROCESSED);
                self.world.schedule(done, Ev::Msg { node, link, stage, msg });
            }
        }
    }

    /// `node` finds a block: its core builds it on its tip, a nonce meeting the (trivial)
    /// target is found, and the block goes in as the node's miner's.
    fn mine(&mut self, node: usize) {
        let now = core_time(self.world.now);
        let mut block = self.nodes[node].block_template(now);
        let target = SIM_BITS.to_target();
        if let Some((nonce, _)) = search_nonce(&block.header, &target, 0, u64::MAX) {
            block.header.nonce = nonce;
        }
        self.world.mined_bytes = self.world.sizes.draw(&block);
        match self.command(node, Command::MinedBlock(block)) {
            Reply::Block(Ok(outcome)) if outcome.height >= self.scenario.blocks => self.mining = false,
            Reply::Block(Ok(_)) => {}
            _ => self.world.recorder.mine_failures += 1,
        }
        if self.mining {
            self.schedule_next_block();
        }
    }

    /// Puts the scenario's link changes, churn and first synthetic transaction on the queue.
    fn schedule_changes_and_load(&mut self) {
        let now = self.world.now;
        for (change, c) in self.scenario.link_changes.iter().enumerate() {
            let on = Ev::LinkChange { change, on: true };
            self.world.queue.push(now + seconds(c.at_s), on);
            if let Some(until) = c.until_s {
                let off = Ev::LinkChange { change, on: false };
                self.world.queue.push(now + seconds(until), off);
            }
        }
        for c in &self.scenario.churn {
            for &node in &c.nodes {
                self.world
                    .queue
                    .push(now + seconds(c.leave_s), Ev::Churn { node, away: true });
                if let Some(back) = c.return_s {
                    self.world
                        .queue
                        .push(now + seconds(back), Ev::Churn { node, away: false });
                }
            }
        }
        if let Some(load) = &mut self.txs {
            let (at, node) = load.next(now);
            self.world.schedule(at, Ev::Tx { node });
        }
    }

    /// A user submits a new transaction to `node`, through its local submission command;
    /// the next one is scheduled while blocks are mined.
    fn submit_tx(&mut self, node: usize) {
        let Some(load) = &mut self.txs else { return };
        if !self.mining {
            return;
        }
        let tx = load.make(core_time(self.world.now).as_millis());
        let reply = self.command(node, Command::SubmitTx(tx));
        let Some(load) = &mut self.txs else { return };
        match reply {
            Reply::Tx(Ok(outcome)) => load.accepted(outcome.txid, self.world.now),
            _ => load.refused(),
        }
        let (at, next) = load.next(self.world.now);
        self.world.schedule(at, Ev::Tx { node: next });
    }

    fn schedule_next_block(&mut self) {
        let (at, node) = self.miners.next_block(self.world.now);
        self.world.schedule(at, Ev::Mine { node });
    }

    /// Hands node `i` a local command, through `handle_input` like every other input, and
    /// returns its reply (`Done` if it gave none).
    fn command(&mut self, i: usize, command: Command) -> Reply {
        let id = CommandId(self.world.inputs);
        self.input(i, Input::Command { id, command });
        self.world.reply.take().unwrap_or(Reply::Done)
    }

    fn input(&mut self, i: usize, input: Input) {
        self.world.inputs += 1;
        self.nodes[i].handle_input(core_time(self.world.now), input);
        self.drain(i);
    }

    /// Carries out node `i`'s outputs and schedules its next deadline if it changed.
    fn drain(&mut self, i: usize) {
        let mut carrier = Carrier {
            node: i,
            w: &mut self.world,
        };
        drain(&mut self.nodes[i], &mut carrier);
        if std::mem::take(&mut self.world.stored) {
            // The store has every block just put: the node drops the bodies it held until
            // then. Not an input of the run (the live driver's bookkeeping, not an event).
            self.nodes[i].handle_input(core_time(self.world.now), Input::Committed);
        }
        let deadline = self.nodes[i]
            .poll_timeout()
            .map_or(NO_DEADLINE, |t| virtual_time(t).max(self.world.now));
        if deadline != self.world.deadlines[i] {
            self.world.deadlines[i] = deadline;
            if deadline != NO_DEADLINE {
                self.world.schedule(deadline, Ev::Timer { node: i, at: deadline });
            }
        }
    }

    /// Events handled so far.
    pub fn events(&self) -> u64 {
        self.world.queue.popped()
    }

    /// Ready links in the network, each counted once.
    fn link_count(&self) -> u64 {
        let ends: usize = self.nodes.iter().map(|n| n.peering().links().ready().count()).sum();
        (ends / 2) as u64
    }

    /// The node cores, by index.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// What the run recorded so far.
    pub fn recorder(&self) -> &Recorder {
        &self.world.recorder
    }

    /// The region each node was placed in.
    pub fn region(&self, node: usize) -> usize {
        self.world.net.region(node)
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Virtual time mining started at (0 before it has).
    pub fn mining_start(&self) -> Micros {
        self.mining_start
    }

    /// The synthetic transaction load, when the scenario has one.
    pub fn tx_load(&self) -> Option<&TxLoad> {
        self.txs.as_ref()
    }

    /// How many distinct tips the nodes hold, and the first node on the most common one.
    fn tips(&self) -> (usize, usize) {
        let mut tips: BTreeMap<_, (usize, usize)> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            tips.entry(n.tree().tip().hash).or_insert((0, i)).0 += 1;
        }
        let best = tips.values().max_by_key(|(count, i)| (*count, std::cmp::Reverse(*i)));
        (tips.len(), best.map_or(0, |v| v.1))
    }

    /// The results, computed from what the run recorded and the nodes' final trees.
    pub fn results(&mut self) -> Results {
        let (tips, best_node) = self.tips();
        let s = &self.scenario;
        let base = Results {
            scenario: s.name.clone(),
            seed: s.seed,
            relay: s.relay.name().to_string(),
            nodes: s.nodes,
            interval_s: s.mining.interval_s,
            block_bytes: s.mining.block_bytes,
            links: self.links_at_start,
            blocks_mined: 0,
            height: 0,
            stale_blocks: 0,
            stale_rate: 0.0,
            reception_ms: Default::default(),
            reach_50_ms: Default::default(),
            reach_90_ms: Default::default(),
            missed_receptions: 0,
            reorg_depths: BTreeMap::new(),
            messages: self.world.messages,
            bytes: self.world.bytes,
            events: self.world.queue.popped(),
            inputs: self.world.inputs,
            virtual_s: self.world.now as f64 / 1e6,
            tips_at_end: tips,
            // Messages left after the quiet period: it ran out, not the work.
            quiet_cut_short: tips > 1 && self.world.queue.iter().any(|ev| matches!(ev, Ev::Msg { .. })),
            transactions: None,
        };
        let transactions = self.txs.as_ref().map(|load| {
            let mined_at = self
                .world
                .recorder
                .blocks
                .iter()
                .map(|b| (b.hash, b.mined_at))
                .collect();
            let nodes = self.nodes.iter();
            load.tally(self.nodes[best_node].tree(), &mined_at, nodes)
        });
        let tally = Tally {
            recorder: &mut self.world.recorder,
            best: self.nodes[best_node].tree(),
            nodes: s.nodes,
            tips,
        };
        Results {
            transactions,
            ..Results::compute(tally, base)
        }
    }
}

/// Loads into `cache` what a message to `(node, link)` reads first: the entry of its link,
/// and the headers it announces (written by their sender long ago).
fn prefetch_message(nodes: &[Node], cache: Cache, (node, link): (usize, PeerId), msg: &Message) {
    if let Some(l) = nodes[node].peering().links().get(link) {
        prefetch_into(cache, l);
    }
    if let Message::Headers { headers } = msg {
        headers.iter().take(2).for_each(|h| prefetch_into(cache, h));
    }
}

/// Runs `scenario` and measures wall time and memory around it, calling `progress` as
/// [`Simulation::mine_blocks_with`] does; also returns the simulation, for `blocks.csv`
/// and inspection.
pub fn simulate(scenario: Scenario, progress: impl FnMut(u64, u64)) -> (Summary, Simulation) {
    let started = Instant::now();
    let mut sim = Simulation::new(scenario);
    sim.warm_up();
    let warmup_wall_s = started.elapsed().as_secs_f64();
    sim.mine_blocks_with(progress);
    sim.quiet();
    let results = sim.results();
    let wall_s = started.elapsed().as_secs_f64();
    let summary = Summary {
        warmup_wall_s: (warmup_wall_s * 1000.0).round() / 1000.0,
        events_per_s: (results.events as f64 / wall_s.max(1e-9)).round(),
        wall_s: (wall_s * 1000.0).round() / 1000.0,
        rss_mb: rss_mb(),
        results,
    };
    (summary, sim)
}

/// Resident memory of this process in MB, from `/proc/self/status` (0 where unavailable).
pub fn rss_mb() -> f64 {
    let kb = std::fs::read_to_string("/proc/self/status").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    });
    kb.map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_with_its_queue_key_fills_one_cache_line() {
        // The key is a time and a sequence number, 16 bytes; see `Ev::Msg`.
        assert_eq!(std::mem::size_of::<Ev>(), 48);
    }

    #[test]
    fn a_stage_names_the_sender_until_the_message_is_processed() {
        assert_eq!(Stage::arriving(0).sender(), Some(0));
        assert_eq!(Stage::arriving(7).sender(), Some(7));
        assert_eq!(Stage::PROCESSED.sender(), None);
    }
}
