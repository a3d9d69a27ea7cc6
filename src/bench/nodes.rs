//! `bench nodes`: how fast one process simulates a large network of core nodes.
//!
//! N core nodes (default 1,000) in the in-memory test network (`chainsim_core::testnet`),
//! each dialling 8 others drawn at random (seeded), keep-alive off, link delays 5–50 ms,
//! nothing recorded but counters. The links form until the network is idle; then B blocks
//! (default 20) are mined at random nodes 10 virtual seconds apart, each after a transaction
//! submitted at a random node; then the network runs until idle again and every node must
//! hold the same tip at height B.
//!
//! Reported: wall time of each phase, inputs handled (messages, link changes, commands,
//! timeouts) per wall second, virtual time simulated, messages sent, and resident memory
//! (`VmRSS` of this process from `/proc/self/status`) before the network is built and after
//! the run, divided by N. In one process the nodes share each block's body (messages carry
//! it by reference), so memory per node counts the node's own state, not a copy of every
//! block.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chainsim_core::testnet::TestNet;
use chainsim_primitives::Transaction;

/// How many others each node dials.
const DIALS: usize = 8;
/// Virtual time between blocks.
const BLOCK_INTERVAL_MS: u64 = 10_000;
/// The graph's seed.
const SEED: u64 = 1;
/// Virtual time allowed for the network to go idle.
const SETTLE_MS: u64 = 600_000;

pub fn run(nodes: usize, blocks: usize) -> anyhow::Result<()> {
    let n = nodes.max(2);
    println!(
        "== nodes: {n} core nodes in one process (in-memory test network, {DIALS} dials per node, \
         keep-alive off), {blocks} blocks {}s apart",
        BLOCK_INTERVAL_MS / 1000
    );
    let rss_before = status_kb("VmRSS").context("no VmRSS in /proc/self/status")?;

    let wall = Instant::now();
    let mut net = TestNet::new(n, SEED);
    net.record_sends = false;
    net.record_events = false;
    let built = wall.elapsed();
    println!();
    println!("| phase | wall | inputs | inputs/s | messages | virtual time |\n|---|---:|---:|---:|---:|---:|");
    println!("| build {n} nodes | {built:.2?} | | | | |");

    // Phase 1: dial, handshake, exchange addresses, until nothing is scheduled.
    let phase = Phase::start(&net);
    net.connect_random(DIALS);
    ensure!(net.run_until_idle(SETTLE_MS), "the links did not settle");
    let connect = phase.end(&net);
    connect.row("connect (until idle)");
    let links = net.link_count();

    // Phase 2: blocks at random nodes, each after a transaction at a random node.
    let phase = Phase::start(&net);
    let mut on_time = 0;
    for b in 0..blocks {
        let payer = net.rng.usize(..n);
        let tx = Transaction::new(format!("payer{b}"), "payee", 1 + b as u64, net.now);
        net.submit_tx(payer, tx).context("submitting a transaction")?;
        let miner = net.rng.usize(..n);
        let hash = net.mine(miner).context("mining a block")?;
        net.run_for(BLOCK_INTERVAL_MS);
        if (0..n).all(|i| net.tip(i) == hash) {
            on_time += 1;
        }
    }
    ensure!(net.run_until_idle(SETTLE_MS), "the network did not settle after mining");
    let mining = phase.end(&net);
    mining.row(&format!("mine {blocks} blocks (until idle)"));
    ensure!(net.all_same_tip(), "the nodes disagree on the tip");
    let height = net.node(0).tree().height();
    ensure!(height == blocks as u64, "the tip is at height {height}, not {blocks}");

    let rss_after = status_kb("VmRSS").context("no VmRSS in /proc/self/status")?;
    let peak = status_kb("VmHWM").unwrap_or(0);
    let total = wall.elapsed();
    let per_node = rss_after.saturating_sub(rss_before) as f64 / n as f64;

    let all = Phase {
        wall: connect.wall + mining.wall,
        inputs: connect.inputs + mining.inputs,
        messages: connect.messages + mining.messages,
        virtual_ms: connect.virtual_ms + mining.virtual_ms,
        ..connect
    };
    all.row("both");
    println!();
    println!(
        "links: {links} ({:.1} per node); blocks on every node within {}s: {on_time} of {blocks}; \
         final height {height} everywhere; total wall {total:.2?}",
        2.0 * links as f64 / n as f64,
        BLOCK_INTERVAL_MS / 1000
    );
    println!(
        "memory: VmRSS {:.1} MB before, {:.1} MB after (peak {:.1} MB): {:.1} KB per node",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        peak as f64 / 1024.0,
        per_node
    );
    Ok(())
}

/// Counters over one phase.
#[derive(Clone, Copy)]
struct Phase {
    started: Option<Instant>,
    wall: Duration,
    inputs: u64,
    messages: u64,
    virtual_ms: u64,
}

impl Phase {
    fn start(net: &TestNet) -> Self {
        Self {
            started: Some(Instant::now()),
            wall: Duration::ZERO,
            inputs: net.inputs,
            messages: net.messages_sent,
            virtual_ms: net.now,
        }
    }

    fn end(self, net: &TestNet) -> Self {
        Self {
            started: None,
            wall: self.started.map_or(Duration::ZERO, |s| s.elapsed()),
            inputs: net.inputs - self.inputs,
            messages: net.messages_sent - self.messages,
            virtual_ms: net.now - self.virtual_ms,
        }
    }

    fn row(&self, what: &str) {
        println!(
            "| {what} | {:.2?} | {} | {:.0} | {} | {:.1} s |",
            self.wall,
            self.inputs,
            self.inputs as f64 / self.wall.as_secs_f64().max(1e-9),
            self.messages,
            self.virtual_ms as f64 / 1000.0
        );
    }
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`).
fn status_kb(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.strip_prefix(key).is_some_and(|rest| rest.starts_with(':')))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
