//! `chainsim`: one binary for the node, the control room, the demo and the benchmarks.

mod bench;
mod sim;
mod wallet;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chainsim_api::{DEFAULT_DASHBOARD_PORT, DEFAULT_HOST, DEFAULT_NODE_PORT};
use chainsim_node::serve::ServeLimits;
use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: a simulation makes and frees millions of small
/// messages, and the system's allocator took a sixth of its time (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, mimalloc.h; the Rust
/// binding names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tunes the allocator for one large in-process run, from now on: memory backed by huge
/// pages (transparent huge pages on Linux), and freed memory kept rather than handed back to
/// the system. A simulation of thousands of nodes touches a few bytes here and there in
/// gigabytes of state, so with 4 kB pages most of its memory accesses missed the
/// address-translation cache (huge pages: a fifth less time at 10,000 nodes); and memory
/// handed back is faulted in and zeroed again a moment later (keeping it: 50 times fewer page
/// faults, a tenth less time, 3% more memory). Not for a live node, whose small heap would
/// only grow.
#[allow(unsafe_code)]
fn tune_allocator_for_simulation() {
    // SAFETY: mi_option_set stores an integer option (an atomic store); it has no
    // preconditions on memory and may be called at any time, from any thread.
    unsafe {
        libmimalloc_sys::mi_option_set(libmimalloc_sys::mi_option_large_os_pages, 1);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

/// A peer-to-peer proof-of-work blockchain simulator with a live control room.
#[derive(Parser, Debug)]
#[command(name = "chainsim", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node: HTTP API, mining, storage and the peer protocol.
    Node(NodeArgs),
    /// Run the control room for a running network.
    Dashboard(DashboardArgs),
    /// Run N nodes as child processes plus the control room (the quickest start).
    Demo(DemoArgs),
    /// Measure speed and memory (see docs/BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Simulate thousands of nodes on one virtual clock (see docs/SIMULATION.md).
    Sim(sim::SimArgs),
    /// Keys, signed transfers and balances on an accounts network.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
}

/// Which ledger a node keeps (`--ledger`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
enum LedgerArg {
    /// The original's rules: unsigned transfers between any names.
    #[default]
    Open,
    /// Signed transfers between addresses, with balances and nonces.
    Accounts,
}

impl LedgerArg {
    fn kind(self) -> chainsim_core::LedgerKind {
        match self {
            Self::Open => chainsim_core::LedgerKind::Open,
            Self::Accounts => chainsim_core::LedgerKind::Accounts,
        }
    }
}

#[derive(clap::Args, Debug)]
struct NodeArgs {
    /// Port of the HTTP API and peer protocol (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_NODE_PORT)]
    port: u16,
    /// Interface to listen on; other machines can reach the node only if this is not 127.0.0.1.
    #[arg(long, default_value = DEFAULT_HOST)]
    host: String,
    /// Directory of the node's database [default: ./data/node-PORT].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A node to connect to first, as HOST:PORT (repeat for more). Without it the node
    /// tries the original's neighbours 127.0.0.1:5000 and 127.0.0.1:5001.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    peers: Vec<String>,
    /// Do not try the default neighbours (an isolated node unless --peer is given).
    #[arg(long)]
    no_default_peers: bool,
    /// Name the block reward is paid to [default: a random name kept with the data].
    #[arg(long, value_name = "NAME")]
    miner: Option<String>,
    /// Threads mining each block [default: all cores].
    #[arg(long, value_name = "N")]
    mine_threads: Option<usize>,
    /// Move the stored chain aside (never deleted) and rebuild it from peers.
    #[arg(long)]
    resync: bool,
    /// Most peer links this node opens.
    #[arg(long, default_value_t = chainsim_node::NodeOptions::default().max_outbound, value_name = "N")]
    max_outbound: usize,
    /// Most peer links others open to this node.
    #[arg(long, default_value_t = chainsim_node::NodeOptions::default().max_inbound, value_name = "N")]
    max_inbound: usize,
    /// Most pending transactions.
    #[arg(long, default_value_t = chainsim_node::NodeOptions::default().mempool_capacity, value_name = "N")]
    mempool_capacity: usize,
    /// Join the easy test network (its own genesis; about 256 hashes a block).
    #[arg(long, hide = true)]
    test_network: bool,
    /// The ledger: `open` (the original's unsigned transfers) or `accounts` (signed
    /// transfers, balances; its own genesis funding the demo accounts).
    #[arg(long, value_enum, default_value_t = LedgerArg::Open)]
    ledger: LedgerArg,
    /// Ping a quiet peer link after this many seconds (and drop one silent three times as long).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    keepalive_secs: u64,
    /// How new blocks and transactions travel: `announce` (ids and headers, then fetched by
    /// those who lack them) or `push` (whole, to every peer).
    #[arg(long, value_enum, default_value_t = Relay::Announce)]
    relay: Relay,
    /// A name (besides loopback and --host) that clients may use to reach this node, e.g.
    /// the machine's LAN name; requests naming anything else in `Host` are refused.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// Close a connection that has not sent a complete request head within this many
    /// seconds of opening (or of its last answer, when kept alive).
    #[arg(long, default_value_t = ServeLimits::default().header_timeout.as_secs(), value_name = "SECS")]
    header_timeout_secs: u64,
    /// Answer 408 and close the connection when a request body has not fully arrived this
    /// many seconds after its head (long answers such as /events are not limited).
    #[arg(long, default_value_t = ServeLimits::default().body_timeout.as_secs(), value_name = "SECS")]
    body_timeout_secs: u64,
    /// Most open HTTP connections, peer links not counted (they have --max-inbound and
    /// --max-outbound). At the limit a new connection replaces the one waiting longest
    /// without a request in progress; a request in progress is never cut.
    #[arg(long, default_value_t = ServeLimits::default().max_connections, value_name = "N")]
    max_connections: usize,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    mining: MiningArgs,
}

/// Conditions every peer link starts with (each can be changed with `PUT /peers/{addr}/link`).
#[derive(clap::Args, Debug, Clone, Default)]
struct LinkArgs {
    /// One-way delay added to every message this node sends, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency: u64,
    /// Up to this many milliseconds more, drawn per message.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    jitter: u64,
    /// Fraction of messages dropped, 0 to 1.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    loss: f64,
    /// Bytes per second each link carries (0: unlimited).
    #[arg(long, default_value_t = 0, value_name = "BPS")]
    bandwidth: u64,
}

impl LinkArgs {
    fn conditions(&self) -> chainsim_core::LinkConditions {
        chainsim_core::LinkConditions {
            latency_ms: self.latency,
            jitter_ms: self.jitter,
            loss: self.loss,
            bandwidth_bps: self.bandwidth,
            cut: false,
        }
    }

    /// The same flags for a child `chainsim node`.
    fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (flag, value, zero) in [
            ("--latency", self.latency.to_string(), self.latency == 0),
            ("--jitter", self.jitter.to_string(), self.jitter == 0),
            ("--loss", self.loss.to_string(), self.loss == 0.0),
            ("--bandwidth", self.bandwidth.to_string(), self.bandwidth == 0),
        ] {
            if !zero {
                v.extend([flag.to_string(), value]);
            }
        }
        v
    }
}

/// `--mine`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
enum MineMode {
    /// Only when asked (`/mine`), as the original.
    #[default]
    Manual,
    /// One block every --block-time seconds.
    Interval,
    /// Blocks as a Poisson process: expected time between this node's blocks is
    /// --block-time / --share.
    Auto,
}

/// When a node mines by itself (changeable with `POST /mining`).
#[derive(clap::Args, Debug, Clone, Default)]
struct MiningArgs {
    /// manual (only on /mine), interval (every --block-time s) or auto (Poisson).
    #[arg(long, value_enum, default_value_t = MineMode::Manual)]
    mine: MineMode,
    /// Seconds between blocks (interval), or the whole network's expected block interval (auto).
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    block_time: f64,
    /// This node's share of the network's hash power, above 0 and at most 1 (auto).
    #[arg(long, value_name = "F")]
    share: Option<f64>,
}

impl MiningArgs {
    fn mode(&self) -> anyhow::Result<chainsim_core::MiningMode> {
        let time = std::time::Duration::try_from_secs_f64(self.block_time)
            .map_err(|_| anyhow::anyhow!("--block-time must be a positive number of seconds"))?;
        Ok(match self.mine {
            MineMode::Manual => chainsim_core::MiningMode::Manual,
            MineMode::Interval => chainsim_core::MiningMode::Interval { every: time },
            MineMode::Auto => chainsim_core::MiningMode::Auto {
                network_interval: time,
                share: self.share.unwrap_or(1.0),
            },
        })
    }

    /// The same flags for the demo's `nodes` children: in auto mode without --share, the
    /// hash power is split evenly.
    fn to_args(&self, nodes: u16) -> Vec<String> {
        let name = match self.mine {
            MineMode::Manual => return Vec::new(),
            MineMode::Interval => "interval",
            MineMode::Auto => "auto",
        };
        let share = self.share.unwrap_or(1.0 / f64::from(nodes.max(1)));
        vec![
            "--mine".into(),
            name.into(),
            "--block-time".into(),
            self.block_time.to_string(),
            "--share".into(),
            share.to_string(),
        ]
    }
}

/// `--relay`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Relay {
    /// Announce, then fetch.
    Announce,
    /// Push whole items.
    Push,
}

#[derive(clap::Args, Debug)]
struct DashboardArgs {
    /// Port of the page.
    #[arg(long, default_value_t = DEFAULT_DASHBOARD_PORT)]
    port: u16,
    /// Interface to listen on.
    #[arg(long, default_value = DEFAULT_HOST)]
    host: String,
    /// A node to start discovering from, as HOST:PORT (repeat for more)
    /// [default: 127.0.0.1:5000 and 127.0.0.1:5001].
    #[arg(long = "node", value_name = "HOST:PORT")]
    nodes: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// How many nodes to start.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    nodes: u16,
    /// Port of the first node; the others take the next ports.
    #[arg(long, default_value_t = DEFAULT_NODE_PORT)]
    base_port: u16,
    /// Port of the control room.
    #[arg(long, default_value_t = DEFAULT_DASHBOARD_PORT)]
    dashboard_port: u16,
    /// Where the nodes keep their data and logs.
    #[arg(long, default_value = "./data", value_name = "DIR")]
    data_dir: PathBuf,
    /// The lab preset: every node mines by itself (auto, a block every 10 s across the
    /// network, hash power split evenly) over 300 ms links, so forks come on their own.
    /// Explicit --mine, --block-time and --latency flags win.
    #[arg(long)]
    lab: bool,
    /// The nodes' ledger; `accounts` prints the demo accounts and their (public) keys.
    #[arg(long, value_enum, default_value_t = LedgerArg::Open)]
    ledger: LedgerArg,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    mining: MiningArgs,
}

impl DemoArgs {
    /// Flags for every node: the link and mining flags, with the --lab preset filling in.
    fn node_args(&self) -> Vec<String> {
        let (mut link, mut mining) = (self.link.clone(), self.mining.clone());
        if self.lab {
            if link.latency == 0 {
                link.latency = 300;
            }
            if mining.mine == MineMode::Manual {
                mining.mine = MineMode::Auto;
            }
        }
        let mut args = link.to_args();
        args.extend(mining.to_args(self.nodes));
        if self.ledger == LedgerArg::Accounts {
            args.extend(["--ledger".to_owned(), "accounts".to_owned()]);
        }
        args
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable line, never a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Node(a) => {
            let opts = chainsim_node::NodeOptions {
                host: a.host,
                port: a.port,
                data_dir: a.data_dir,
                peers: a.peers,
                no_default_peers: a.no_default_peers,
                miner: a.miner,
                mine_threads: a.mine_threads,
                resync: a.resync,
                max_outbound: a.max_outbound,
                max_inbound: a.max_inbound,
                mempool_capacity: a.mempool_capacity,
                sync_patience: chainsim_node::NodeOptions::default().sync_patience,
                test_network: a.test_network,
                ledger: a.ledger.kind(),
                keepalive: Duration::from_secs(a.keepalive_secs.max(1)),
                allow_hosts: a.allow_hosts,
                http: ServeLimits {
                    header_timeout: Duration::from_secs(a.header_timeout_secs.max(1)),
                    body_timeout: Duration::from_secs(a.body_timeout_secs.max(1)),
                    max_connections: a.max_connections.max(1),
                },
                relay: match a.relay {
                    Relay::Announce => chainsim_core::RelayMode::Announce,
                    Relay::Push => chainsim_core::RelayMode::Push,
                },
                link_defaults: a.link.conditions(),
                mining: a.mining.mode()?,
            };
            chainsim_node::run(opts, shutdown_signal(), |_| {}).await.map_err(|e| {
                if e.suggests_resync() && !e.to_string().contains("--resync") {
                    anyhow::anyhow!("{e}; start with --resync to move it aside and rebuild from peers")
                } else {
                    anyhow::anyhow!("{e}")
                }
            })
        }
        Command::Dashboard(a) => {
            let mut cfg = chainsim_dashboard::DashboardConfig {
                host: a.host,
                port: a.port,
                ..Default::default()
            };
            if !a.nodes.is_empty() {
                cfg.nodes = a.nodes;
            }
            chainsim_dashboard::run_dashboard(cfg, shutdown_signal()).await?;
            Ok(())
        }
        Command::Demo(a) => {
            let node_args = a.node_args();
            let mut data_dir = a.data_dir.clone();
            if a.ledger == LedgerArg::Accounts {
                print_demo_accounts();
                // Apart from open-ledger demo data, which an accounts node would refuse.
                data_dir = data_dir.join("accounts");
            }
            let cfg = chainsim_dashboard::DemoConfig {
                node_args,
                nodes: usize::from(a.nodes),
                base_port: a.base_port,
                dashboard_port: a.dashboard_port,
                data_dir,
                node_exe: std::env::current_exe()?,
                ..Default::default()
            };
            chainsim_dashboard::run_demo(cfg, shutdown_signal()).await?;
            Ok(())
        }
        Command::Bench(a) => bench::run(a).await,
        Command::Sim(a) => {
            tune_allocator_for_simulation();
            sim::run(a)
        }
        Command::Wallet(c) => wallet::run(c).await,
    }
}

/// Like a local test chain's banner: the demo accounts with their keys and balances, and
/// a plain warning that those keys are public.
fn print_demo_accounts() {
    use chainsim_primitives::keys::{DEMO_BALANCE, DEMO_NAMES, demo_key};
    println!("Demo accounts (funded with {DEMO_BALANCE} each in the accounts genesis):");
    println!();
    for (i, name) in DEMO_NAMES.iter().enumerate() {
        let Some(key) = demo_key(name) else { continue };
        println!("({i}) {name:<6} {}  balance {DEMO_BALANCE}", key.address());
        println!("    private key {}", key.to_hex());
    }
    println!();
    println!("WARNING: these private keys are public (SHA-256 of \"chainsim demo <name>\").");
    println!("They are for demos only: never send anything of value to these addresses.");
    println!();
}

/// Resolves on Ctrl+C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
