//! `chainsim demo`: the dashboard's own small network of node child processes, which the
//! page may stop, start again and grow.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chainsim_primitives::PeerAddr;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::{DashboardError, DemoConfig};

/// How long a node may take to shut down cleanly before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Ports tried when adding a node before giving up.
const PORT_TRIES: u16 = 200;

/// Why a demo action failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The port does not belong to a node of this demo.
    #[error("node {0} is not part of this demo")]
    NotManaged(String),
    /// Start on a running node.
    #[error("node {0} is already running")]
    AlreadyRunning(String),
    /// Stop on a stopped node.
    #[error("node {0} is not running")]
    NotRunning(String),
    /// A stop of the same node is still in progress.
    #[error("node {0} is still stopping")]
    Busy(String),
    /// No free port near the demo's ports.
    #[error("no free port found for a new node")]
    NoPort,
    /// The node program could not be started.
    #[error("could not start {exe}: {source}")]
    Spawn {
        /// The program.
        exe: String,
        /// Why.
        source: std::io::Error,
    },
}

struct Managed {
    peers: Vec<PeerAddr>,
    child: Option<Child>,
    stopping: bool,
}

impl Managed {
    /// A node just started with `peers`.
    fn running(peers: Vec<PeerAddr>, child: Child) -> Self {
        Self {
            peers,
            child: Some(child),
            stopping: false,
        }
    }
}

/// Owns the demo's node processes.
pub struct Supervisor {
    exe: PathBuf,
    data_dir: PathBuf,
    /// Flags every node gets (link conditions, mining mode).
    node_args: Vec<String>,
    nodes: Mutex<BTreeMap<u16, Managed>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("exe", &self.exe)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// The address of a demo node: they always listen on loopback.
pub fn node_address(port: u16) -> PeerAddr {
    PeerAddr::loopback(port)
}

impl Supervisor {
    /// Starts `cfg.nodes` nodes on consecutive ports from `cfg.base_port`.
    pub async fn launch(cfg: &DemoConfig) -> Result<Self, DashboardError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| DashboardError::DataDir {
            path: cfg.data_dir.clone(),
            source,
        })?;
        let count = u16::try_from(cfg.nodes)
            .ok()
            .filter(|n| *n >= 1 && cfg.base_port.checked_add(*n - 1).is_some())
            .ok_or(DashboardError::NodeCount(cfg.nodes))?;
        let sup = Self {
            exe: cfg.node_exe.clone(),
            data_dir: cfg.data_dir.clone(),
            node_args: cfg.node_args.clone(),
            nodes: Mutex::new(BTreeMap::new()),
        };
        {
            let mut nodes = sup.nodes.lock().await;
            for i in 0..count {
                let port = cfg.base_port + i;
                // Everyone dials the first node; the first dials the second. Gossip and
                // peer exchange do the rest, as on a real network.
                let peers = if i == 0 {
                    if count > 1 {
                        vec![node_address(cfg.base_port + 1)]
                    } else {
                        Vec::new()
                    }
                } else {
                    vec![node_address(cfg.base_port)]
                };
                let child = match sup.spawn(port, &peers) {
                    Ok(c) => c,
                    Err(e) => {
                        drop(nodes);
                        sup.shutdown().await;
                        return Err(e.into());
                    }
                };
                nodes.insert(port, Managed::running(peers, child));
            }
        }
        Ok(sup)
    }

    /// Where a node's output goes.
    pub fn log_path(&self, port: u16) -> PathBuf {
        self.data_dir.join(format!("node-{port}.log"))
    }

    fn spawn(&self, port: u16, peers: &[PeerAddr]) -> Result<Child, DemoError> {
        let spawn_err = |source| DemoError::Spawn {
            exe: self.exe.display().to_string(),
            source,
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(port))
            .map_err(spawn_err)?;
        let log2 = log.try_clone().map_err(spawn_err)?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("node")
            .arg("--port")
            .arg(port.to_string())
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--data-dir")
            .arg(node_dir(&self.data_dir, port))
            .arg("--mine-threads")
            .arg("1");
        if peers.is_empty() {
            cmd.arg("--no-default-peers");
        }
        for p in peers {
            cmd.arg("--peer").arg(p.as_str());
        }
        cmd.args(&self.node_args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            // If the demo itself dies, its nodes must not outlive it holding their ports.
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(spawn_err)?;
        tracing::info!(port, pid = child.id(), "started node");
        Ok(child)
    }

    /// Whether `port` is one of this demo's nodes.
    pub async fn manages(&self, port: u16) -> bool {
        self.nodes.lock().await.contains_key(&port)
    }

    /// Stops one node cleanly (SIGTERM, then a kill after a grace period).
    pub async fn stop(&self, port: u16) -> Result<(), DemoError> {
        let child = {
            let mut nodes = self.nodes.lock().await;
            let m = nodes
                .get_mut(&port)
                .ok_or_else(|| DemoError::NotManaged(node_address(port).to_string()))?;
            if m.stopping {
                return Err(DemoError::Busy(node_address(port).to_string()));
            }
            let mut child = m
                .child
                .take()
                .ok_or_else(|| DemoError::NotRunning(node_address(port).to_string()))?;
            if matches!(child.try_wait(), Ok(Some(_))) {
                return Err(DemoError::NotRunning(node_address(port).to_string()));
            }
            m.stopping = true;
            child
        };
        stop_child(child).await;
        if let Some(m) = self.nodes.lock().await.get_mut(&port) {
            m.stopping = false;
        }
        Ok(())
    }

    /// Starts a stopped node again with its data directory and peers as before.
    pub async fn start(&self, port: u16) -> Result<(), DemoError> {
        let mut nodes = self.nodes.lock().await;
        let m = nodes
            .get_mut(&port)
            .ok_or_else(|| DemoError::NotManaged(node_address(port).to_string()))?;
        if m.stopping {
            return Err(DemoError::Busy(node_address(port).to_string()));
        }
        if let Some(child) = &mut m.child
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(DemoError::AlreadyRunning(node_address(port).to_string()));
        }
        let peers = m.peers.clone();
        m.child = Some(self.spawn(port, &peers)?);
        Ok(())
    }

    /// Starts one more node on the next free port, dialling every demo node.
    pub async fn add(&self) -> Result<PeerAddr, DemoError> {
        let mut nodes = self.nodes.lock().await;
        let first = nodes
            .keys()
            .next_back()
            .and_then(|p| p.checked_add(1))
            .ok_or(DemoError::NoPort)?;
        let port = (0..PORT_TRIES)
            .filter_map(|i| first.checked_add(i))
            .find(|p| !nodes.contains_key(p) && port_is_free(*p))
            .ok_or(DemoError::NoPort)?;
        let peers: Vec<PeerAddr> = nodes.keys().map(|p| node_address(*p)).collect();
        let child = self.spawn(port, &peers)?;
        nodes.insert(port, Managed::running(peers, child));
        Ok(node_address(port))
    }

    /// Addresses of all demo nodes, running or not.
    pub async fn addresses(&self) -> Vec<PeerAddr> {
        self.nodes.lock().await.keys().map(|p| node_address(*p)).collect()
    }

    /// Stops every node, all at once, and waits for them.
    pub async fn shutdown(&self) {
        let children: Vec<Child> = {
            let mut nodes = self.nodes.lock().await;
            nodes.values_mut().filter_map(|m| m.child.take()).collect()
        };
        let mut waits = tokio::task::JoinSet::new();
        for c in children {
            waits.spawn(stop_child(c));
        }
        while waits.join_next().await.is_some() {}
    }
}

/// `{data_dir}/node-P`: each node's own database directory.
pub fn node_dir(data_dir: &Path, port: u16) -> PathBuf {
    data_dir.join(format!("node-{port}"))
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

async fn stop_child(mut child: Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // A Ctrl+C in the demo's terminal reaches the nodes too (same process group); give
    // them a moment to finish on their own before signalling them a second time.
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), child.wait()).await {
        return;
    }
    terminate(&mut child).await;
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        tracing::warn!(pid = child.id(), "node did not stop in time; killing it");
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

#[cfg(unix)]
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SIGTERM lets the node close its database; std offers only SIGKILL.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

#[cfg(not(unix))]
async fn terminate(child: &mut Child) {
    let _ = child.start_kill();
}
