//! The live chainsim node: the sans-IO core wrapped with a redb store, mining threads, an
//! axum HTTP API and an HTTP peer client.
//!
//! Start-up follows the original: open and verify the store, register neighbours, sync with
//! the network, then serve. See [`run`].

pub mod api;
pub mod driver;
pub mod link_table;
pub mod links;
pub mod miner;
pub mod serve;
pub mod wire;

use std::net::SocketAddr;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsim_core::node::RestoreError;
use chainsim_core::peers::{AddrError, PeerLimits};
use chainsim_core::store::{ChainStore, StoreOp};
use chainsim_core::{ChainParams, Node, NodeConfig, PeerAddr};
use chainsim_store::{RedbStore, StoreError};
use thiserror::Error;
use tokio::sync::watch;

use crate::api::{AppState, NodeInfo};
use crate::driver::{DriverConfig, NodeHandle};
use crate::serve::ServeLimits;

/// The original's neighbours, tried when no `--peer` is given.
pub use chainsim_api::DEFAULT_PEERS;
/// Meta key of the miner's name in the store.
const MINER_KEY: &str = "miner";

/// Everything `chainsim node` can be told.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    /// Where the store lives; default `./data/node-PORT`.
    pub data_dir: Option<PathBuf>,
    /// Peers to contact first.
    pub peers: Vec<String>,
    /// Do not fall back to the original's neighbours.
    pub no_default_peers: bool,
    /// Name the block reward is paid to; default kept in the store.
    pub miner: Option<String>,
    /// Mining threads; default all cores.
    pub mine_threads: Option<usize>,
    /// Move the store aside and rebuild from peers.
    pub resync: bool,
    /// Outbound peer links.
    pub max_outbound: usize,
    /// Inbound peer links.
    pub max_inbound: usize,
    /// Mempool capacity.
    pub mempool_capacity: usize,
    /// Longest initial sync without progress before serving anyway.
    pub sync_patience: Duration,
    /// Which network: the default one, or the easy test network (benchmarks, experiments).
    pub test_network: bool,
    /// Which ledger: the original's open one, or signed accounts (`--ledger`).
    pub ledger: chainsim_core::LedgerKind,
    /// Ping a quiet peer link this often (and drop one silent three times as long).
    pub keepalive: Duration,
    /// How new blocks and transactions travel: announced then fetched, or pushed whole.
    pub relay: chainsim_core::RelayMode,
    /// Names besides loopback and `host` that requests may give in `Host`.
    pub allow_hosts: Vec<String>,
    /// Timeouts and the connection limit of the HTTP server.
    pub http: ServeLimits,
    /// Conditions of every link until set per peer (`--latency`, `--jitter`, `--loss`, `--bandwidth`).
    pub link_defaults: chainsim_core::LinkConditions,
    /// When the node mines by itself (`--mine`, `--block-time`, `--share`).
    pub mining: chainsim_core::MiningMode,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            host: chainsim_api::DEFAULT_HOST.into(),
            port: chainsim_api::DEFAULT_NODE_PORT,
            data_dir: None,
            peers: Vec::new(),
            no_default_peers: false,
            miner: None,
            mine_threads: None,
            resync: false,
            max_outbound: 8,
            max_inbound: 32,
            mempool_capacity: chainsim_core::mempool::DEFAULT_MEMPOOL_CAPACITY,
            sync_patience: Duration::from_secs(30),
            test_network: false,
            ledger: chainsim_core::LedgerKind::Open,
            keepalive: Duration::from_secs(30),
            relay: chainsim_core::RelayMode::Announce,
            allow_hosts: Vec::new(),
            http: ServeLimits::default(),
            link_defaults: chainsim_core::LinkConditions::PERFECT,
            mining: chainsim_core::MiningMode::Manual,
        }
    }
}

/// Why the node could not run.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The store could not be opened or read.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The stored chain does not validate.
    #[error(
        "stored chain in {dir} is not valid: {source}; start with --resync to move it aside and rebuild from peers"
    )]
    InvalidStore {
        /// The data directory.
        dir: String,
        /// What failed.
        source: RestoreError,
    },
    /// A link condition or mining setting is out of range.
    #[error("{0}")]
    Setting(String),
    /// A peer address is malformed.
    #[error(transparent)]
    Addr(#[from] AddrError),
    /// The miner name cannot be paid.
    #[error("invalid miner name: {0}")]
    Miner(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// A write to the store failed while running (a full disk, a failing device): nothing
    /// more could be acknowledged, so the node stopped.
    #[error("storage failure, the node stopped: {0}")]
    StorageFailed(StoreError),
}

impl NodeError {
    /// Whether the way out is `--resync`.
    pub fn suggests_resync(&self) -> bool {
        matches!(self, NodeError::InvalidStore { .. })
            || matches!(self, NodeError::Store(e) | NodeError::StorageFailed(e) if e.is_corruption())
    }
}

/// Runs a node until `shutdown` resolves: opens and verifies the store, registers
/// neighbours, syncs, then serves. `on_listening` gets the bound address (for tests that
/// use port 0).
pub async fn run(
    opts: NodeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr) + Send,
) -> Result<(), NodeError> {
    // Refuse bad settings before anything is created on disk or the network.
    let mut bootstrap = Vec::new();
    for peer in &opts.peers {
        bootstrap.push(peer.parse::<PeerAddr>()?);
    }
    opts.link_defaults
        .validate()
        .map_err(|e| NodeError::Setting(e.to_string()))?;
    opts.mining.validate().map_err(|e| NodeError::Setting(e.to_string()))?;
    if let Some(name) = &opts.miner {
        chainsim_primitives::transaction::check_name("--miner", name).map_err(|e| NodeError::Miner(e.to_string()))?;
    }
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .map_err(|source| NodeError::Bind {
            addr: format!("{}:{}", opts.host, opts.port),
            source,
        })?;
    let local = listener.local_addr().map_err(NodeError::Serve)?;
    let port = local.port();
    let p = port;
    let listen: PeerAddr = format!("{}:{port}", opts.host).parse()?;
    // An accounts node keeps its own store: the two ledgers' chains never mix.
    let suffix = match opts.ledger {
        chainsim_core::LedgerKind::Open => "",
        chainsim_core::LedgerKind::Accounts => "-accounts",
    };
    let data_dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("./data/node-{port}{suffix}")));
    if opts.resync {
        chainsim_store::wipe(&data_dir)?;
        tracing::info!("[{p}] --resync: moved the old store aside; rebuilding from peers");
    }

    let started = Instant::now();
    let mut store = RedbStore::open(&data_dir)?;
    let stored = store.load_meta()?;
    let miner = opts
        .miner
        .clone()
        .or_else(|| {
            stored
                .meta
                .get(MINER_KEY)
                .and_then(|v| String::from_utf8(v.clone()).ok())
        })
        .unwrap_or_else(|| format!("miner-{:08x}", fastrand::u32(..)));
    let miner = miner_for_ledger(opts.ledger, opts.miner.is_some(), miner).map_err(NodeError::Miner)?;
    store.commit(&[StoreOp::PutMeta(MINER_KEY.into(), miner.clone().into_bytes())])?;
    let mut config = NodeConfig::new(listen.clone(), miner.clone());
    config.seed = fastrand::u64(..);
    config.peering.limits = PeerLimits {
        max_outbound: opts.max_outbound,
        max_inbound: opts.max_inbound,
        ..PeerLimits::default()
    };
    config.peering.keepalive = Some(opts.keepalive);
    config.relay = opts.relay;
    config.mempool_capacity = opts.mempool_capacity;
    config.mining = opts.mining;
    let params = Arc::new(match (opts.test_network, opts.ledger) {
        (true, chainsim_core::LedgerKind::Open) => ChainParams::testnet(),
        (true, chainsim_core::LedgerKind::Accounts) => ChainParams::testnet_accounts(),
        (false, kind) => ChainParams::network_of(kind),
    });
    // Stored blocks stream through validation one at a time; afterwards bodies are read
    // back from the store on demand instead of living in memory.
    let (mut node, report) = Node::open(params, config, &store)?.map_err(|source| NodeError::InvalidStore {
        dir: data_dir.display().to_string(),
        source,
    })?;
    tracing::info!(
        "[{p}] store {} opened: {} blocks verified from genesis in {:.2?} (length {}), {} pending transactions; miner {miner}",
        data_dir.join("chain.redb").display(),
        report.blocks_verified,
        started.elapsed(),
        report.height + 1,
        report.mempool
    );

    if bootstrap.is_empty() && !opts.no_default_peers {
        bootstrap = DEFAULT_PEERS.iter().filter_map(|a| a.parse().ok()).collect();
    }
    let neighbours: Vec<PeerAddr> = bootstrap.into_iter().filter(|peer| *peer != listen).collect();
    for peer in &neighbours {
        tracing::info!("[{p}] registering neighbour {peer}");
    }
    node.command(driver::now(), chainsim_core::Command::AddPeers(neighbours));

    let (stop_tx, stop_rx) = watch::channel(false);
    let threads = opts
        .mine_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
        .max(1);
    let (handle, driver_task) = driver::spawn(
        node,
        store,
        DriverConfig {
            mine_threads: threads,
            port,
            link_defaults: opts.link_defaults,
        },
        stop_rx,
    );
    let state = AppState {
        handle: handle.clone(),
        info: Arc::new(NodeInfo {
            ledger: opts.ledger,
            ..NodeInfo::new(&opts.host, port, &opts.allow_hosts)
        }),
    };
    let app = api::app(state);
    let server = tokio::spawn(serve::serve(listener, app, opts.http, stop_tx.subscribe()));
    on_listening(local);

    let shutdown_tx = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("[{port}] shutting down");
        let _ = shutdown_tx.send(true);
    });

    initial_sync(&handle, port, opts.sync_patience, stop_tx.subscribe()).await;
    handle.shared.ready.send_replace(true);
    tracing::info!("[{p}] serving at http://{listen}");

    finish(server, driver_task, &stop_tx).await
}

/// Waits for the server and the driver, whichever ends first, stops the other, and says why
/// the node ended. The driver ends first after a storage failure: the server must then stop
/// too, or the process would linger answering 503 to everything.
async fn finish(
    mut server: tokio::task::JoinHandle<()>,
    mut driver: tokio::task::JoinHandle<Result<(), StoreError>>,
    stop: &watch::Sender<bool>,
) -> Result<(), NodeError> {
    let (served, driven) = tokio::select! {
        served = &mut server => {
            let _ = stop.send(true);
            (served, driver.await)
        }
        driven = &mut driver => {
            let _ = stop.send(true);
            (server.await, driven)
        }
    };
    match driven {
        Ok(Err(e)) => return Err(NodeError::StorageFailed(e)),
        Err(e) => {
            return Err(NodeError::Serve(std::io::Error::other(format!(
                "the node's driver failed: {e}"
            ))));
        }
        Ok(Ok(())) => {}
    }
    served.map_err(|e| NodeError::Serve(std::io::Error::other(e.to_string())))
}

/// Waits until the node has caught up with its peers, logging progress every few seconds.
/// Gives up waiting (and serves) when nothing moves for `patience`.
async fn initial_sync(handle: &NodeHandle, port: u16, patience: Duration, mut stop: watch::Receiver<bool>) {
    tracing::info!("[{port}] syncing with the network before serving...");
    let start = Instant::now();
    let start_height = handle.read(|n| n.tree().height()).await.unwrap_or(0);
    let mut last_height = start_height;
    let mut last_progress = Instant::now();
    let mut last_log = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Ok((syncing, height, target)) = handle
            .read(|n| (n.is_syncing(), n.tree().height(), n.sync_peer().map(|s| s.target)))
            .await
        else {
            return;
        };
        if height != last_height {
            last_height = height;
            last_progress = Instant::now();
        }
        if !syncing {
            if height == start_height {
                tracing::info!("[{port}] already have the newest chain (length {})", height + 1);
            } else {
                tracing::info!(
                    "[{port}] caught up: length {} ({} blocks downloaded in {:.2?})",
                    height + 1,
                    height - start_height,
                    start.elapsed()
                );
            }
            return;
        }
        if last_log.elapsed() > Duration::from_secs(3) {
            last_log = Instant::now();
            let rate = (height - start_height) as f64 / start.elapsed().as_secs_f64();
            tracing::info!(
                "[{port}] syncing: height {height} / {} ({rate:.0} blocks/s)",
                target.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
            );
        }
        if last_progress.elapsed() > patience {
            tracing::warn!(
                "[{port}] no sync progress for {patience:?}; serving at height {height} and syncing in the background"
            );
            return;
        }
    }
}

/// The miner on an accounts network must be an address (a block reward to a name breaks
/// the `bad-address` rule): a demo account's name stands for its address; an address is
/// kept; a name given with `--miner` is refused; a stored or made-up name is replaced by a
/// demo account's address, drawn at random.
fn miner_for_ledger(ledger: chainsim_core::LedgerKind, given: bool, miner: String) -> Result<String, String> {
    use chainsim_primitives::keys::{DEMO_NAMES, demo_key};
    if ledger == chainsim_core::LedgerKind::Open || chainsim_primitives::Address::parse(&miner).is_ok() {
        return Ok(miner);
    }
    if let Some(key) = demo_key(&miner) {
        return Ok(key.address().to_text());
    }
    if given {
        return Err(format!(
            "{miner:?}: on an accounts network --miner must be an address (cs1...) or a demo account ({})",
            DEMO_NAMES.join(", ")
        ));
    }
    let name = DEMO_NAMES[fastrand::usize(..DEMO_NAMES.len())];
    Ok(demo_key(name).map_or(miner, |k| k.address().to_text()))
}
