//! `chainsim bench`: the speed and memory measurements behind docs/BENCHMARKS.md.
//!
//! Each benchmark prints what it measured and how. They run real code paths (the same
//! functions the node uses) on this machine; numbers vary with load, so runs are timed
//! over seconds, not single iterations.

mod floor;
mod http;
mod ledger;
mod memory;
mod micro;
mod network;
mod nodes;
mod relay;

use std::time::Duration;

/// Which benchmark to run.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub what: Which,
    /// Seconds per timed section.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Rounds for the propagation benchmark (default 50) and the relay benchmark (default 20).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Blocks for the catch-up benchmark and the stored chain of the memory benchmark.
    #[arg(long, default_value_t = 10_000)]
    pub blocks: usize,
    /// Nodes of the nodes benchmark.
    #[arg(long, default_value_t = 1_000)]
    pub nodes: usize,
    /// Blocks mined in the nodes and floor benchmarks.
    #[arg(long, default_value_t = 20)]
    pub net_blocks: usize,
    /// Scenario of the floor benchmark (a built-in name or a TOML file).
    #[arg(long, default_value = "bitcoin-2019")]
    pub scenario: String,
}

/// A benchmark.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Which {
    /// Miner hashes/s on one thread and on all, against `openssl speed -evp sha256`.
    Mining,
    /// Full validation of blocks of 100 and 1,000 transactions on one core.
    Validation,
    /// Mempool inserts/s, bare and through the node's submit path.
    Mempool,
    /// POST /transactions/new with 64 keep-alive clients (wrk), against a trivial handler.
    Http,
    /// Block and transaction propagation on a 10-node line and a 20-node random graph.
    Propagation,
    /// A node far behind catching up from one peer; memory of idle and loaded nodes.
    Catchup,
    /// Resident size of one node holding a long chain: stored directly, and sent through the
    /// API (after a restart, and after one GET /chain); its start-up verification time.
    Memory,
    /// Bytes, messages and block bodies per block relayed on a 20-node random graph:
    /// announce then fetch against push, in the in-memory test network.
    Relay,
    /// Speed and memory of 1,000 (`--nodes`) core nodes in one process, in the in-memory
    /// test network: connect, then mine `--net-blocks` blocks.
    Nodes,
    /// The accounts ledger: validation of blocks of 1,000 signed transfers, and signed
    /// ingest with 64 keep-alive clients against the open ledger's in the same run.
    Ledger,
    /// Time per event of `chainsim sim`'s mining phase (`--scenario`, `--nodes`,
    /// `--net-blocks`) beside a floor model of the same graph, network and event queue with
    /// no node state behind the events.
    Floor,
    /// Everything above but the floor, one after the other.
    All,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let secs = Duration::from_secs_f64(args.seconds.max(0.1));
    match args.what {
        Which::Mining => micro::mining(secs),
        Which::Validation => micro::validation(secs),
        Which::Mempool => micro::mempool(),
        Which::Http => http::run(secs).await,
        Which::Propagation => network::propagation(args.rounds.unwrap_or(50)).await,
        Which::Catchup => network::catchup(args.blocks).await,
        Which::Memory => memory::run(args.blocks).await,
        Which::Relay => relay::run(args.rounds.unwrap_or(20)),
        Which::Nodes => nodes::run(args.nodes, args.net_blocks),
        Which::Ledger => ledger::run(secs).await,
        Which::Floor => floor::run(&args.scenario, args.nodes, args.net_blocks),
        Which::All => {
            micro::mining(secs)?;
            micro::validation(secs)?;
            micro::mempool()?;
            http::run(secs).await?;
            network::propagation(args.rounds.unwrap_or(50)).await?;
            network::catchup(args.blocks).await?;
            memory::run(args.blocks).await?;
            relay::run(args.rounds.unwrap_or(20))?;
            ledger::run(secs).await?;
            nodes::run(args.nodes, args.net_blocks)
        }
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "chainsim-bench-{tag}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
