//! The chainsim control room: a web page that finds every node of a network, shows each
//! one live (status, chains, forks, propagation), and drives them (transactions, mining,
//! sync, and in the demo stopping and starting nodes).
//!
//! It speaks to nodes only through their public HTTP API (docs/API.md) and to the page
//! through its own small JSON API plus a Server-Sent Events stream. See docs/DASHBOARD.md.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chainsim_api::{DEFAULT_DASHBOARD_PORT, DEFAULT_HOST, DEFAULT_NODE_PORT, DEFAULT_PEERS};
use tokio::net::TcpListener;

pub mod client;
pub mod demo;
mod http;
pub mod monitor;
pub mod sse;
pub mod validate;

pub use http::{AppState, TOKEN_HEADER, app};

use crate::client::NodeClient;
use crate::demo::Supervisor;
use crate::monitor::{Monitor, Origin};

/// How long shutdown waits for in-flight requests (a mine can take long) before leaving.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of `chainsim dashboard`.
#[derive(Clone, Debug)]
pub struct DashboardConfig {
    /// Interface to listen on; `127.0.0.1` keeps the control room private to this machine.
    pub host: String,
    /// Port of the page.
    pub port: u16,
    /// Seed nodes as `HOST:PORT` (read as `PeerAddr`, so `localhost:5000` is
    /// `127.0.0.1:5000`); every other node is found through their peer lists.
    pub nodes: Vec<String>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_DASHBOARD_PORT,
            nodes: DEFAULT_PEERS.map(str::to_owned).to_vec(),
        }
    }
}

/// Settings of `chainsim demo`: a whole network on one machine with its control room.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// How many nodes to start.
    pub nodes: usize,
    /// Port of the first node; the others follow it.
    pub base_port: u16,
    /// Port of the page.
    pub dashboard_port: u16,
    /// Each node keeps its database in `{data_dir}/node-PORT` and its output in
    /// `{data_dir}/node-PORT.log`.
    pub data_dir: PathBuf,
    /// The `chainsim` program, run as `{node_exe} node ...` for each node.
    pub node_exe: PathBuf,
    /// Interface the page listens on (nodes always listen on 127.0.0.1).
    pub host: String,
    /// More flags for every node, e.g. `--latency 300 --mine auto --block-time 10`.
    pub node_args: Vec<String>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            nodes: 2,
            base_port: DEFAULT_NODE_PORT,
            dashboard_port: DEFAULT_DASHBOARD_PORT,
            data_dir: PathBuf::from("data"),
            node_exe: PathBuf::from("chainsim"),
            host: DEFAULT_HOST.to_owned(),
            node_args: Vec::new(),
        }
    }
}

/// Why the dashboard or the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The page's port could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// What was asked for.
        addr: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("dashboard server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The HTTP client for nodes could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A seed address is not `HOST:PORT`.
    #[error("bad node address: {0}")]
    BadAddress(String),
    /// The demo's data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The demo was asked for no nodes, or more than its ports allow.
    #[error("cannot start {0} nodes")]
    NodeCount(usize),
    /// A demo node could not be started.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
}

fn url_host(host: &str) -> String {
    match host {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_owned(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_owned(),
    }
}

async fn bind(host: &str, port: u16) -> Result<(TcpListener, SocketAddr), DashboardError> {
    let addr = format!("{}:{port}", url_host_for_bind(host));
    let listener = TcpListener::bind(&addr).await.map_err(|source| DashboardError::Bind {
        addr: addr.clone(),
        source,
    })?;
    let local = listener
        .local_addr()
        .map_err(|source| DashboardError::Bind { addr, source })?;
    Ok((listener, local))
}

fn url_host_for_bind(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Serves the page until `shutdown` resolves.
async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DashboardError> {
    let monitor = Arc::clone(state.monitor());
    let mut stopped = monitor.shutdown_signal();
    let on_shutdown = {
        let monitor = Arc::clone(&monitor);
        async move {
            shutdown.await;
            // Ends the pages' event streams, which would otherwise hold the server open.
            monitor.begin_shutdown();
        }
    };
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(on_shutdown);
    tokio::select! {
        r = server => r.map_err(DashboardError::Serve),
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("requests still running at shutdown; leaving without them");
            Ok(())
        }
    }
}

/// Runs the control room for an existing network until `shutdown` resolves.
pub async fn run_dashboard(
    cfg: DashboardConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DashboardError> {
    let seeds = cfg
        .nodes
        .iter()
        .map(|n| validate::address(n).map_err(|_| DashboardError::BadAddress(n.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let (listener, local) = bind(&cfg.host, cfg.port).await?;
    let client = NodeClient::new().map_err(DashboardError::Client)?;
    let monitor = Monitor::new(client, false);
    let state = AppState::with_parts(Arc::clone(&monitor), None, &cfg.host, local.port());
    for s in &seeds {
        monitor.watch(s, Origin::Seed);
    }
    monitor.spawn_sampler();
    println!("control room: http://{}:{}", url_host(&cfg.host), local.port());
    serve(listener, state, shutdown).await
}

/// Starts `cfg.nodes` nodes as child processes, serves the control room for them (with
/// Stop, Start and Add node), and stops every node when `shutdown` resolves. Their data
/// stays in `cfg.data_dir`, so the next demo continues the same chains.
pub async fn run_demo(
    cfg: DemoConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DashboardError> {
    // Take the page's port first: failing after the nodes started would orphan them.
    let (listener, local) = bind(&cfg.host, cfg.dashboard_port).await?;
    let client = NodeClient::new().map_err(DashboardError::Client)?;
    let sup = Arc::new(Supervisor::launch(&cfg).await?);
    let monitor = Monitor::new(client, true);
    let state = AppState::with_parts(Arc::clone(&monitor), Some(Arc::clone(&sup)), &cfg.host, local.port());
    for a in sup.addresses().await {
        monitor.watch(&a, Origin::Demo);
    }
    monitor.spawn_sampler();
    println!(
        "started {} node(s) on ports {}..{}; their output goes to {}",
        cfg.nodes,
        cfg.base_port,
        usize::from(cfg.base_port) + cfg.nodes.saturating_sub(1),
        cfg.data_dir.join("node-PORT.log").display()
    );
    println!("control room: http://{}:{}", url_host(&cfg.host), local.port());
    let result = serve(listener, state, shutdown).await;
    println!("stopping the nodes...");
    sup.shutdown().await;
    println!("all nodes stopped; data kept in {}", cfg.data_dir.display());
    result
}
