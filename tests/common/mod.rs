//! Helpers shared by the integration tests that run real `chainsim node` processes on
//! ephemeral loopback ports: start, stop (SIGTERM), kill (SIGKILL), restart on the same
//! data, JSON calls, and polling with generous deadlines (CI is a noisy 2-core machine, so
//! nothing here asserts how long anything takes).
//!
//! Each test file includes this with `mod common;` and uses a different subset of it.
#![allow(dead_code, clippy::unwrap_used)]

pub mod peer;

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::Value;

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_chainsim");

/// Longest wait for anything that should happen "soon" (a node starting, gossip arriving).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A fresh directory under the system temp dir; removed on drop unless a test failed, so
/// that a failure leaves the data and logs to look at.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chainsim-it-{name}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A port nothing listens on right now: bind port 0, read it, let it go.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A random number without a random-number crate (the hasher's keys are random per process
/// and per `RandomState`).
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// An HTTP client for the tests: a timeout on every call so one stuck node fails the test
/// instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Polls `check` until it returns true; panics naming `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One `chainsim node` process and its data directory, which outlives restarts. The
/// process is killed on drop, so no test leaks processes even when it fails; on failure
/// the tail of its log is printed.
pub struct TestNode {
    pub name: String,
    pub port: u16,
    pub dir: TempDir,
    /// `--peer` arguments (HOST:PORT).
    pub peers: Vec<String>,
    /// More arguments for the next start (e.g. `--resync`).
    pub extra: Vec<String>,
    /// `RUST_LOG` for the next start (`info` unless a test needs more).
    pub log_filter: String,
    child: Option<Child>,
    log: PathBuf,
    /// Length of the log when the current process started.
    log_start: u64,
    starts: u32,
    /// The first `/status` answer of the current process.
    pub first_status: Value,
    /// How the last process that exited by itself ended.
    pub last_exit: Option<ExitStatus>,
    pub http: reqwest::Client,
}

impl TestNode {
    /// Starts a node on a free port with the given peers and waits until it serves.
    pub async fn start(name: &str, peers: &[&TestNode]) -> TestNode {
        let addrs: Vec<String> = peers.iter().map(|p| p.addr()).collect();
        Self::start_with(name, free_port(), addrs, Vec::new()).await
    }

    /// A node that is configured but not started (so that others can name its port).
    pub fn configure(name: &str, port: u16, peers: Vec<String>, extra: Vec<String>) -> TestNode {
        let dir = TempDir::new(name);
        let log = dir.path().join("node.log");
        TestNode {
            name: name.to_string(),
            port,
            dir,
            peers,
            extra,
            log_filter: "info".into(),
            child: None,
            log,
            log_start: 0,
            starts: 0,
            first_status: Value::Null,
            last_exit: None,
            http: client(),
        }
    }

    /// Starts a node on `port` and waits until it serves.
    pub async fn start_with(name: &str, port: u16, peers: Vec<String>, extra: Vec<String>) -> TestNode {
        let mut node = Self::configure(name, port, peers, extra);
        node.spawn();
        if let Some(first) = node.wait_serving_or_exit().await {
            node.first_status = first;
            return node;
        }
        // Someone may have taken the free port between our probe and the node's bind: move
        // to another port, once (nobody was told this one yet).
        assert!(
            node.log_since_start().contains("cannot listen"),
            "{} exited instead of serving:\n{}",
            node.name,
            node.log_tail()
        );
        node.port = free_port();
        node.restart().await;
        node
    }

    /// `HOST:PORT` of the node.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The command line of the next start.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "node".into(),
            "--port".into(),
            self.port.to_string(),
            "--data-dir".into(),
            self.dir.path().join("data").display().to_string(),
            "--no-default-peers".into(),
            "--mine-threads".into(),
            "1".into(),
        ];
        for p in &self.peers {
            args.push("--peer".into());
            args.push(p.clone());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Where the store lives.
    pub fn store_file(&self) -> PathBuf {
        self.dir.path().join("data").join("chain.redb")
    }

    /// Spawns the process without waiting for it.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        writeln!(
            log,
            "===== test harness: start #{} of {} on port {}: {} {}",
            self.starts,
            self.name,
            self.port,
            EXE,
            self.args().join(" ")
        )
        .unwrap();
        self.log_start = log.metadata().unwrap().len();
        let err = log.try_clone().unwrap();
        let child = Command::new(EXE)
            .args(self.args())
            // A proxy nobody answers at: peer links are plain TCP between nodes and must never
            // go through a proxy, so every network test here also checks that.
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .env("RUST_LOG", &self.log_filter)
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Polls `GET /status` until it answers (the public API opens only after the initial
    /// sync) and returns that first answer, or `None` if the process exited.
    async fn wait_serving_or_exit(&mut self) -> Option<Value> {
        let deadline = Instant::now() + PATIENCE;
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.last_exit = Some(status);
                self.child = None;
                return None;
            }
            if let Ok(resp) = probe.get(self.url("/status")).send().await
                && resp.status().is_success()
                && let Ok(v) = resp.json::<Value>().await
            {
                return Some(v);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start serving:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the process and waits until it either serves (`Ok`, its first `/status`) or
    /// exits (`Err`, its exit status; its output is in [`Self::log_since_start`]).
    pub async fn start_or_exit(&mut self) -> Result<Value, ExitStatus> {
        self.spawn();
        if let Some(v) = self.wait_serving_or_exit().await {
            self.first_status = v.clone();
            return Ok(v);
        }
        Err(self.last_exit.unwrap())
    }

    /// Waits until the node serves; returns its first `/status` answer.
    pub async fn wait_serving(&mut self) -> Value {
        match self.wait_serving_or_exit().await {
            Some(v) => {
                self.first_status = v.clone();
                v
            }
            None => panic!("{} exited instead of serving:\n{}", self.name, self.log_tail()),
        }
    }

    /// Starts the process again on the same port and data; returns the first `/status`.
    pub async fn restart(&mut self) -> Value {
        self.spawn();
        self.wait_serving().await
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// SIGTERM (what Ctrl+C's sibling sends), then waits for a clean exit.
    pub async fn stop(&mut self) -> ExitStatus {
        let pid = self.child.as_ref().unwrap().id();
        let sent = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM failed");
        self.wait_for_exit("did not stop on SIGTERM").await
    }

    /// Waits for a process expected to exit by itself (e.g. on a corrupted store).
    pub async fn wait_exit(&mut self) -> ExitStatus {
        self.wait_for_exit("did not exit").await
    }

    /// Waits for the process to end; kills it and fails the test after `PATIENCE`.
    async fn wait_for_exit(&mut self, complaint: &str) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} {complaint}:\n{}", self.name, self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the node expecting it to exit by itself (e.g. on a damaged store), with stderr
    /// kept apart from stdout; returns the exit status and stderr.
    pub async fn run_to_exit(&mut self) -> (ExitStatus, String) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.starts += 1;
        let out = self.dir.path().join(format!("run-{}.stdout", self.starts));
        let err = self.dir.path().join(format!("run-{}.stderr", self.starts));
        let child = Command::new(EXE)
            .args(self.args())
            // A proxy nobody answers at: peer links are plain TCP between nodes and must never
            // go through a proxy, so every network test here also checks that.
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .env("RUST_LOG", &self.log_filter)
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let status = self.wait_exit().await;
        (status, std::fs::read_to_string(&err).unwrap_or_default())
    }

    /// The whole log of every start.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The log of the current (or last) process only.
    pub fn log_since_start(&self) -> String {
        let all = std::fs::read(&self.log).unwrap_or_default();
        let from = usize::try_from(self.log_start).unwrap_or(0).min(all.len());
        String::from_utf8_lossy(&all[from..]).into_owned()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let all = self.log();
        let lines: Vec<&str> = all.lines().collect();
        let from = lines.len().saturating_sub(80);
        format!(
            "----- {} log ({}) -----\n{}\n----- end of {} log -----",
            self.name,
            self.log.display(),
            lines[from..].join("\n"),
            self.name
        )
    }

    /// Waits until the current process's log contains `text`.
    pub async fn wait_log(&self, text: &str) {
        eventually(&format!("{} to log {text:?}", self.name), PATIENCE, || async {
            self.log_since_start().contains(text)
        })
        .await;
    }

    // ----- HTTP ----------------------------------------------------------------------

    /// Any request; the status and the JSON body (or the text as a JSON string).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!("{} {method} {path} failed: {e}\n{}", self.name, self.log_tail()),
        };
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    /// GET that must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{} GET {path}: {v}", self.name);
        v
    }

    /// GET that may fail (the node may be down); `None` on any error.
    pub async fn try_get(&self, path: &str) -> Option<Value> {
        let resp = self.http.get(self.url(path)).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `POST /transactions/new`; must be accepted (201, or 200 when known); returns the txid.
    pub async fn send_tx(&self, sender: &str, recipient: &str, amount: u64) -> String {
        let body = serde_json::json!({"sender": sender, "recipient": recipient, "amount": amount});
        let (status, v) = self.post("/transactions/new", &body).await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{}: transaction refused: {status} {v}",
            self.name
        );
        v["txid"].as_str().unwrap().to_string()
    }

    /// `POST /mine`; returns the block.
    pub async fn mine(&self) -> Value {
        let (status, v) = self.call(reqwest::Method::POST, "/mine", None).await;
        assert_eq!(status, StatusCode::OK, "{} /mine: {v}", self.name);
        v["block"].clone()
    }

    pub async fn status(&self) -> Value {
        self.get("/status").await
    }

    /// `GET /chain`'s length.
    pub async fn length(&self) -> u64 {
        self.get("/chain").await["length"].as_u64().unwrap()
    }

    /// The hashes of the best chain, genesis first.
    pub async fn chain_hashes(&self) -> Vec<String> {
        self.field_of_each("/chain", "chain", "hash").await
    }

    /// Txids of the pending transactions.
    pub async fn pending(&self) -> Vec<String> {
        self.field_of_each("/transactions/pending", "transactions", "txid")
            .await
    }

    /// `field` of every item of the list `list` in `GET path`'s answer.
    async fn field_of_each(&self, path: &str, list: &str, field: &str) -> Vec<String> {
        self.get(path).await[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item[field].as_str().unwrap().to_string())
            .collect()
    }

    /// `GET /peers`' list.
    pub async fn peers(&self) -> Vec<Value> {
        self.get("/peers").await["peers"].as_array().unwrap().clone()
    }

    /// The state of one peer as this node sees it.
    pub async fn peer_state(&self, addr: &str) -> Option<String> {
        self.peers()
            .await
            .iter()
            .find(|p| p["address"] == addr)
            .and_then(|p| p["state"].as_str().map(str::to_string))
    }

    /// Waits until this node has a handshake with `other`.
    pub async fn wait_connected(&self, other: &str) {
        eventually(&format!("{} to connect to {other}", self.name), PATIENCE, || async {
            self.peer_state(other).await.as_deref() == Some("connected")
        })
        .await;
    }

    /// Waits until the best tip is `tip`.
    pub async fn wait_tip(&self, tip: &str) {
        eventually(&format!("{} to reach tip {tip}", self.name), PATIENCE, || async {
            self.try_get("/status").await.is_some_and(|s| s["tip"] == tip)
        })
        .await;
    }

    /// Waits until the chain is `length` long.
    pub async fn wait_length(&self, length: u64) {
        eventually(&format!("{} to reach length {length}", self.name), PATIENCE, || async {
            self.try_get("/status")
                .await
                .is_some_and(|s| s["length"].as_u64() == Some(length))
        })
        .await;
    }

    /// Waits until `txid` is pending here.
    pub async fn wait_pending(&self, txid: &str) {
        eventually(&format!("{} to hold {txid} pending", self.name), PATIENCE, || async {
            self.try_get("/transactions/pending").await.is_some_and(|v| {
                v["transactions"]
                    .as_array()
                    .is_some_and(|txs| txs.iter().any(|t| t["txid"] == txid))
            })
        })
        .await;
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        self.kill9();
    }
}

/// Writes `bytes` at `offset` of `path` (to damage a store on purpose).
pub fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom};
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// Size of a file, 0 when it does not exist.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Opens a file for appending (kept for tests that write their own notes next to logs).
pub fn append(path: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(path).unwrap()
}

/// Resident memory of a process, in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    rss_kib(pid) as f64 / 1024.0
}

/// A `chainsim dashboard` process on a free port following `node`, killed on drop. Like
/// the test nodes it runs with an unreachable HTTP proxy, so nothing it fetches may use one.
pub struct DashboardProcess {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl DashboardProcess {
    /// Starts it (without waiting until it serves).
    pub fn start(node: &str) -> Self {
        let port = free_port();
        let child = Command::new(EXE)
            .args(["dashboard", "--port", &port.to_string(), "--node", node])
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, port }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for DashboardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
