//! `bench floor`: what a simulation's events cost with next to nothing behind them, beside
//! what they cost with the core's nodes behind them, in one process.
//!
//! The floor model is the simulator's own graph, network model, miners and event queue
//! (`chainsim_sim::{topology, network, mining}`, `chainsim_core::event_queue`), built from
//! the same scenario and seeds, carrying the same exchange the core's announce-then-fetch
//! relay makes of a block: a header to every peer not known to have it, a `get_data` back to
//! the first peer that announced it, the block over the sender's uplink, the receiver's
//! validation delay, then the header onwards. What it leaves out is everything a node is:
//! a node here is two bits per block and a bit per link for the block it last heard of, so
//! its state for 10,000 nodes fits the caches; there are no forks (every block found
//! counts), no link handshakes, no deadlines. Its time per event is therefore a floor for
//! this event pattern on this queue and network model: no core, however lean, handles the
//! same events in less.
//!
//! Reported for each: events of the mining phase (blocks found until the quiet period ends),
//! their wall time and time per event; for the floor, also the receptions and their mean
//! time, to show it carries the blocks as the simulator does. Not a path of the simulator:
//! nothing here feeds `chainsim sim`'s results.

use std::time::Instant;

use std::sync::Arc;

use chainsim_core::Message;
use chainsim_core::event_queue::EventQueue;
use chainsim_core::protocol::{Items, WireBlock, WireHeader};
use chainsim_primitives::genesis::genesis_block;
use chainsim_sim::mining::Miners;
use chainsim_sim::network::Network;
use chainsim_sim::queue::Micros;
use chainsim_sim::run::{SIM_BITS, sub_seed};
use chainsim_sim::size::message_bytes;
use chainsim_sim::{Overrides, Scenario, Simulation, topology};

/// One event of the floor model.
#[derive(Debug, Clone, Copy)]
enum Ev {
    /// Node `node` finds the next block.
    Mine { node: usize },
    /// A message arrives on link `link` (an index into the adjacency arrays) at its far
    /// end; `processed` once it has waited out the receiver's validation queue.
    Msg {
        kind: Kind,
        link: u32,
        block: u32,
        processed: bool,
    },
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Header,
    GetData,
    Block,
}

/// The graph as adjacency arrays: node `i`'s links are `start[i]..start[i + 1]`; link `l`
/// goes from `from[l]` to `to[l]`, its reverse is `back[l]`, its one-way latency `latency[l]`.
struct Links {
    start: Vec<u32>,
    from: Vec<u32>,
    to: Vec<u32>,
    back: Vec<u32>,
    latency: Vec<Micros>,
}

impl Links {
    fn new(graph: &topology::Graph, net: &mut Network) -> Self {
        let n = graph.len();
        let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, peers) in graph.iter().enumerate() {
            for &j in peers {
                adj[i].push(j as u32);
                adj[j].push(i as u32);
            }
        }
        let mut start = Vec::with_capacity(n + 1);
        let (mut from, mut to) = (Vec::new(), Vec::new());
        for (i, peers) in adj.iter().enumerate() {
            start.push(from.len() as u32);
            for &j in peers {
                from.push(i as u32);
                to.push(j);
            }
        }
        start.push(from.len() as u32);
        let back = (0..from.len())
            .map(|l| {
                let (a, b) = (from[l], to[l]);
                let range = start[b as usize] as usize..start[b as usize + 1] as usize;
                range.clone().find(|&k| to[k] == a).unwrap_or(range.start) as u32
            })
            .collect();
        let latency = from
            .iter()
            .zip(&to)
            .map(|(&a, &b)| net.latency(a as usize, b as usize))
            .collect();
        Self {
            start,
            from,
            to,
            back,
            latency,
        }
    }

    fn of(&self, node: usize) -> std::ops::Range<usize> {
        self.start[node] as usize..self.start[node + 1] as usize
    }
}

/// The wire sizes of the three messages, as the simulator charges them
/// ([`message_bytes`]), for a block of `block_bytes`.
struct WireSizes {
    header: u64,
    get_data: u64,
    block: u64,
}

impl WireSizes {
    fn of(block_bytes: u64) -> Self {
        let block = Arc::new(genesis_block(SIM_BITS));
        let size = |msg: &Message| message_bytes(msg, |_| block_bytes);
        let items = Items {
            blocks: vec![block.compute_hash()],
            txs: Vec::new(),
        };
        Self {
            header: size(&Message::Headers {
                headers: Arc::new([WireHeader(block.header)]),
            }),
            get_data: size(&Message::get_data(items)),
            block: size(&Message::Block {
                block: WireBlock(block),
            }),
        }
    }
}

/// A bit per (node, block), a row of words per node.
struct BitRows {
    words: usize,
    bits: Vec<u64>,
}

impl BitRows {
    fn new(nodes: usize, blocks: usize) -> Self {
        let words = blocks.div_ceil(64).max(1);
        Self {
            words,
            bits: vec![0; nodes * words],
        }
    }

    fn get(&self, node: usize, block: u32) -> bool {
        self.bits[node * self.words + block as usize / 64] & (1 << (block % 64)) != 0
    }

    fn set(&mut self, node: usize, block: u32) {
        self.bits[node * self.words + block as usize / 64] |= 1 << (block % 64);
    }
}

/// What the floor model measured.
struct FloorRun {
    events: u64,
    wall_s: f64,
    receptions: u64,
    mean_reception_ms: f64,
}

/// The floor model's nodes and the world around them.
struct Floor {
    links: Links,
    net: Network,
    miners: Miners,
    queue: EventQueue<Ev>,
    /// Wire bytes of a `headers` of one header, a `getdata` of one block and a block.
    bytes: WireSizes,
    /// Per node, a bit per block: has it (validated) / has asked for it.
    have: BitRows,
    asked: BitRows,
    /// Per node: the block it last heard announced, and by which of its links (bit `k` for
    /// its `k`-th link; links past 128 are never marked, so they are always announced to).
    heard_block: Vec<u32>,
    heard: Vec<u128>,
    mined_at: Vec<Micros>,
    receptions: u64,
    reception_us: u128,
}

impl Floor {
    fn new(scenario: &Scenario, blocks: usize) -> Self {
        let n = scenario.nodes;
        let seed = scenario.seed;
        // The simulator's streams: the graph from 1, the network from 2, the miners from 3.
        let miners = Miners::new(&scenario.mining, n, sub_seed(seed, 3));
        let mut rng = fastrand::Rng::with_seed(sub_seed(seed, 1));
        let graph = topology::build(&scenario.topology, n, miners.pool_nodes(), &mut rng);
        let mut net = Network::new(&scenario.network, n, sub_seed(seed, 2));
        let links = Links::new(&graph, &mut net);
        Self {
            links,
            net,
            miners,
            queue: EventQueue::default(),
            bytes: WireSizes::of(scenario.mining.block_bytes),
            have: BitRows::new(n, blocks),
            asked: BitRows::new(n, blocks),
            heard_block: vec![u32::MAX; n],
            heard: vec![0; n],
            mined_at: Vec::with_capacity(blocks),
            receptions: 0,
            reception_us: 0,
        }
    }

    /// Sends a message on link `l` at `now` through the network model.
    fn send(&mut self, now: Micros, l: usize, kind: Kind, block: u32) {
        let bytes = match kind {
            Kind::Header => self.bytes.header,
            Kind::GetData => self.bytes.get_data,
            Kind::Block => self.bytes.block,
        };
        let (a, b) = (self.links.from[l] as usize, self.links.to[l] as usize);
        let at = self.net.transmit_over(now, a, b, bytes, self.links.latency[l]);
        let (link, processed) = (l as u32, false);
        self.queue.push(
            at,
            Ev::Msg {
                kind,
                link,
                block,
                processed,
            },
        );
    }

    /// `node` has `block`: announces it on every link not known to have it.
    fn relay(&mut self, now: Micros, node: usize, block: u32) {
        self.have.set(node, block);
        let heard = if self.heard_block[node] == block {
            self.heard[node]
        } else {
            0
        };
        for (k, l) in self.links.of(node).enumerate() {
            if k >= 128 || heard & (1 << k) == 0 {
                self.send(now, l, Kind::Header, block);
            }
        }
    }

    fn mine(&mut self, now: Micros, node: usize, blocks: usize) {
        let block = self.mined_at.len() as u32;
        self.mined_at.push(now);
        self.asked.set(node, block);
        self.relay(now, node, block);
        if self.mined_at.len() < blocks {
            let (at, next) = self.miners.next_block(now);
            self.queue.push(at, Ev::Mine { node: next });
        }
    }

    fn arrive(&mut self, now: Micros, kind: Kind, link: u32, block: u32, processed: bool) {
        let l = link as usize;
        let node = self.links.to[l] as usize;
        if !processed {
            let blocks = usize::from(kind == Kind::Block);
            if let Some(done) = self.net.process(now, node, blocks) {
                let processed = true;
                self.queue.push(
                    done,
                    Ev::Msg {
                        kind,
                        link,
                        block,
                        processed,
                    },
                );
                return;
            }
        }
        let back = self.links.back[l] as usize;
        match kind {
            Kind::Header => {
                if self.heard_block[node] != block {
                    self.heard_block[node] = block;
                    self.heard[node] = 0;
                }
                let k = back - self.links.start[node] as usize;
                if k < 128 {
                    self.heard[node] |= 1 << k;
                }
                if !self.asked.get(node, block) {
                    self.asked.set(node, block);
                    self.send(now, back, Kind::GetData, block);
                }
            }
            Kind::GetData => self.send(now, back, Kind::Block, block),
            Kind::Block => {
                self.receptions += 1;
                self.reception_us += u128::from(now - self.mined_at[block as usize]);
                self.relay(now, node, block);
            }
        }
    }

    fn run(mut self, blocks: usize) -> FloorRun {
        let started = Instant::now();
        let (first, node) = self.miners.next_block(0);
        self.queue.push(first, Ev::Mine { node });
        let mut events = 0u64;
        while let Some((now, ev)) = self.queue.pop() {
            events += 1;
            match ev {
                Ev::Mine { node } => self.mine(now, node, blocks),
                Ev::Msg {
                    kind,
                    link,
                    block,
                    processed,
                } => self.arrive(now, kind, link, block, processed),
            }
        }
        let receptions = self.receptions.max(1);
        FloorRun {
            events,
            wall_s: started.elapsed().as_secs_f64(),
            receptions: self.receptions,
            mean_reception_ms: self.reception_us as f64 / receptions as f64 / 1000.0,
        }
    }
}

/// The simulator's mining phase on the same scenario: events and wall time after warm-up.
fn simulator(scenario: Scenario) -> (u64, f64, f64) {
    let mut sim = Simulation::new(scenario);
    sim.warm_up();
    let before = sim.events();
    let started = Instant::now();
    sim.mine_blocks();
    sim.quiet();
    let wall_s = started.elapsed().as_secs_f64();
    let events = sim.events() - before;
    let mean_ms = sim.results().reception_ms.mean;
    (events, wall_s, mean_ms)
}

pub fn run(scenario: &str, nodes: usize, blocks: usize) -> anyhow::Result<()> {
    let mut s = Scenario::load(scenario)?;
    let overrides = Overrides {
        nodes: Some(nodes),
        blocks: Some(blocks as u64),
        ..Overrides::default()
    };
    s.apply(&overrides)?;
    println!(
        "== floor: scenario {} at {nodes} nodes x {blocks} blocks, seed {}: the floor model \
         (graph, network model, miners and event queue, no node state) beside the simulator",
        s.name, s.seed
    );
    let floor = Floor::new(&s, blocks).run(blocks);
    let ns = |wall: f64, events: u64| wall * 1e9 / events.max(1) as f64;
    println!(
        "floor model   {:>12} events  {:>8.3} s  {:>7.1} ns/event  ({} receptions, mean {:.1} ms)",
        floor.events,
        floor.wall_s,
        ns(floor.wall_s, floor.events),
        floor.receptions,
        floor.mean_reception_ms
    );
    let (events, wall_s, mean_ms) = simulator(s);
    println!(
        "chainsim sim  {:>12} events  {:>8.3} s  {:>7.1} ns/event  (mining phase; reception mean {mean_ms:.1} ms)",
        events,
        wall_s,
        ns(wall_s, events)
    );
    println!(
        "per event, simulator / floor: {:.2}; wall, simulator / floor: {:.2}",
        ns(wall_s, events) / ns(floor.wall_s, floor.events),
        wall_s / floor.wall_s.max(1e-9)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(nodes: usize, blocks: u64) -> Scenario {
        let mut s = Scenario::load("bitcoin-2019").expect("a built-in scenario");
        let overrides = Overrides {
            nodes: Some(nodes),
            blocks: Some(blocks),
            ..Overrides::default()
        };
        s.apply(&overrides).expect("valid overrides");
        s
    }

    #[test]
    fn the_floor_model_brings_every_block_to_every_node_once_and_repeats_exactly() {
        let s = scenario(200, 4);
        let (a, b) = (Floor::new(&s, 4).run(4), Floor::new(&s, 4).run(4));
        assert_eq!(a.receptions, 199 * 4);
        assert_eq!((a.events, a.receptions), (b.events, b.receptions));
        assert_eq!(a.mean_reception_ms.to_bits(), b.mean_reception_ms.to_bits());
    }

    #[test]
    fn the_floor_model_carries_blocks_as_the_simulator_does_in_fewer_events() {
        // Same graph, latencies, bandwidths and validation delay: the blocks take about as
        // long to arrive (the simulator's graph loses a link here and there to its peers'
        // own choices, the floor's never), and the floor handles a subset of the events.
        let s = scenario(300, 5);
        let floor = Floor::new(&s, 5).run(5);
        let (events, _, mean_ms) = simulator(s);
        let off = (floor.mean_reception_ms - mean_ms).abs() / mean_ms;
        assert!(
            off < 0.03,
            "floor {:.1} ms against the simulator's {mean_ms:.1} ms",
            floor.mean_reception_ms
        );
        assert!(
            floor.events < events,
            "floor {} events, simulator {events}",
            floor.events
        );
        assert!(
            floor.events > events / 2,
            "floor {} events, simulator {events}",
            floor.events
        );
    }
}
