//! Benchmarks with real node processes on loopback: propagation, catch-up, memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chainsim_core::store::{ChainStore, StoreOp};
use chainsim_core::{ChainParams, Node, NodeConfig};
use chainsim_primitives::Work;
use tokio::sync::mpsc;

/// A node process that is killed when dropped.
pub(super) struct Proc {
    pub(super) child: Child,
    pub(super) port: u16,
    pub(super) log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(super) fn spawn_node(dir: &Path, port: u16, peers: &[u16], extra: &[&str]) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe()?;
    let log = dir.join(format!("node-{port}.log"));
    let out = std::fs::File::create(&log)?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .args([
            "--port",
            &port.to_string(),
            "--mine-threads",
            "1",
            "--test-network",
            "--no-default-peers",
        ])
        .arg("--data-dir")
        .arg(dir.join(format!("node-{port}")))
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out);
    for p in peers {
        cmd.args(["--peer", &format!("127.0.0.1:{p}")]);
    }
    Ok(Proc {
        child: cmd.spawn()?,
        port,
        log,
    })
}

pub(super) async fn status(client: &reqwest::Client, port: u16) -> Option<serde_json::Value> {
    let resp = client
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

pub(super) async fn wait_until(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("timed out waiting for {what}")
}

/// One event seen at a node: (node index, event name, id, when).
type Seen = (usize, String, String, Instant);

/// Follows `/events` of a node and reports tx and block arrivals with their arrival time.
fn watch_events(client: reqwest::Client, idx: usize, port: u16, out: mpsc::UnboundedSender<Seen>) {
    tokio::spawn(async move {
        let Ok(resp) = client.get(format!("http://127.0.0.1:{port}/events")).send().await else {
            return;
        };
        let mut resp = resp;
        let mut buf = String::new();
        let mut event = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let now = Instant::now();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(pos) = buf.find('\n') {
                let line: String = buf.drain(..=pos).collect();
                let line = line.trim_end();
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_string();
                } else if let Some(data) = line.strip_prefix("data:") {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                        continue;
                    };
                    let id = match event.as_str() {
                        "tx" => v["txid"].as_str(),
                        "block" => v["hash"].as_str(),
                        _ => None,
                    };
                    if let Some(id) = id {
                        let _ = out.send((idx, event.clone(), id.to_string(), now));
                    }
                }
            }
        }
    });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(
    name: &str,
    links: &[Vec<u16>],
    max_outbound: usize,
    rounds: usize,
    relay: &str,
) -> anyhow::Result<()> {
    let dir = super::temp_dir("prop")?;
    let n = links.len();
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect::<Result<_, _>>()?;
    let mut procs = Vec::new();
    let outbound = max_outbound.to_string();
    let client = reqwest::Client::new();
    // One at a time, each serving before the next starts: a node's peers all come before
    // it, so its dials find them listening. Started all at once, a node dialled a peer not
    // yet up, gossip filled its outbound slots meanwhile, and the graph measured was not
    // the one given (the line split in two, and a transaction never reached its far half).
    for (i, peers) in links.iter().enumerate() {
        let peer_ports: Vec<u16> = peers.iter().map(|&j| ports[j as usize]).collect();
        let extra = ["--max-outbound", &outbound, "--relay", relay];
        procs.push(spawn_node(&dir, ports[i], &peer_ports, &extra)?);
        let port = ports[i];
        wait_until("nodes to serve", Duration::from_secs(60), async || {
            status(&client, port).await.is_some()
        })
        .await?;
    }
    for (p, peers) in procs.iter().zip(links) {
        let (port, want) = (p.port, peers.len().max(1) as u64);
        wait_until("nodes to connect", Duration::from_secs(60), async || {
            status(&client, port)
                .await
                .is_some_and(|s| s["peers"].as_u64().unwrap_or(0) >= want)
        })
        .await?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (i, p) in procs.iter().enumerate() {
        watch_events(client.clone(), i, p.port, tx.clone());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tx_times = Vec::new();
    let mut block_times = Vec::new();
    for round in 0..rounds {
        // A transaction submitted at node 0: from the moment node 0 accepted it.
        let body = serde_json::json!({"sender": format!("prop-{round}"), "recipient": "Bob", "amount": 1});
        let resp: serde_json::Value = client
            .post(format!("http://127.0.0.1:{}/transactions/new", ports[0]))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let txid = resp["txid"].as_str().context("no txid")?.to_string();
        tx_times.push(spread_time(&mut rx, "tx", &txid, n).await?);
        // A block mined at node 0: from the moment node 0 stored it.
        let resp: serde_json::Value = client
            .post(format!("http://127.0.0.1:{}/mine", ports[0]))
            .send()
            .await?
            .json()
            .await?;
        let hash = resp["block"]["hash"].as_str().context("no block hash")?.to_string();
        block_times.push(spread_time(&mut rx, "block", &hash, n).await?);
    }
    for (what, times) in [("transaction", &mut tx_times), ("block", &mut block_times)] {
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: {what} to the last node: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} rounds)",
            percentile(times, 0.5),
            percentile(times, 0.99),
            times.last().copied().unwrap_or(f64::NAN),
            times.len()
        );
    }
    drop(procs);
    remove_unless_kept(&dir);
    Ok(())
}

/// Deletes a benchmark's directory unless CHAINSIM_BENCH_KEEP is set (to read node logs).
pub(super) fn remove_unless_kept(dir: &Path) {
    if std::env::var_os("CHAINSIM_BENCH_KEEP").is_some() {
        println!("(kept {})", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Milliseconds from the first node seeing `id` to the last of `n` nodes seeing it.
async fn spread_time(rx: &mut mpsc::UnboundedReceiver<Seen>, kind: &str, id: &str, n: usize) -> anyhow::Result<f64> {
    let mut seen: HashMap<usize, Instant> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < n {
        let item = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .with_context(|| format!("{kind} {id} reached only {} of {n} nodes", seen.len()))?;
        let Some((idx, name, got, at)) = item else {
            bail!("event streams closed")
        };
        if name == kind && got == id {
            seen.entry(idx).or_insert(at);
        }
    }
    let first = seen.values().min().copied().context("no arrivals")?;
    let last = seen.values().max().copied().context("no arrivals")?;
    Ok((last - first).as_secs_f64() * 1e3)
}

pub async fn propagation(rounds: usize) -> anyhow::Result<()> {
    println!("== propagation: time from the first node having an item to the last node having it (SSE arrival times)");
    let line: Vec<Vec<u16>> = (0..10)
        .map(|i| if i == 0 { vec![] } else { vec![i as u16 - 1] })
        .collect();
    for relay in ["announce", "push"] {
        measure(&format!("10-node line, {relay}"), &line, 1, rounds, relay).await?;
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let graph: Vec<Vec<u16>> = (0..20)
        .map(|i: u16| {
            let mut peers: Vec<u16> = (0..i).collect();
            rng.shuffle(&mut peers);
            peers.truncate(3);
            peers
        })
        .collect();
    for relay in ["announce", "push"] {
        measure(
            &format!("20-node random graph (3 links each), {relay}"),
            &graph,
            3,
            rounds,
            relay,
        )
        .await?;
    }
    Ok(())
}

pub(super) fn rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub async fn catchup(blocks: usize) -> anyhow::Result<()> {
    println!("== catch-up and memory: {blocks} blocks of 100 transactions, test network");
    let dir = super::temp_dir("catchup")?;
    let client = reqwest::Client::new();

    // Idle node: fresh store, no peers.
    let idle_port = free_port()?;
    let idle = spawn_node(&dir, idle_port, &[], &[])?;
    wait_until("idle node", Duration::from_secs(30), async || {
        status(&client, idle_port).await.is_some()
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kb(idle.child.id()).unwrap_or(0);
    println!(
        "memory: idle node resident size {:.1} MB  (target < 15 MB)",
        idle_rss as f64 / 1024.0
    );
    drop(idle);

    // Node A holds the chain, written straight into its store.
    let params = ChainParams::testnet();
    let t = Instant::now();
    let chain = super::micro::build_chain(&params, blocks, 100, 42);
    println!("(built {blocks} blocks in {:.1?})", t.elapsed());
    let a_port = free_port()?;
    write_store(&dir.join(format!("node-{a_port}")), &params, &chain)?;
    let t = Instant::now();
    let a = spawn_node(&dir, a_port, &[], &[])?;
    wait_until("node A", Duration::from_secs(120), async || {
        status(&client, a_port).await.is_some()
    })
    .await?;
    println!(
        "node A start-up, verifying {blocks} stored blocks from genesis: {:.2?}",
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a_rss = rss_kb(a.child.id()).unwrap_or(0);
    println!(
        "memory: node holding {blocks} blocks resident size {:.1} MB",
        a_rss as f64 / 1024.0
    );

    // Node B starts empty with A as its only peer and serves once caught up.
    let b_port = free_port()?;
    let t = Instant::now();
    let b = spawn_node(&dir, b_port, &[a_port], &[])?;
    let want = blocks as u64 + 1;
    wait_until("node B to catch up", Duration::from_secs(300), async || {
        status(&client, b_port)
            .await
            .is_some_and(|s| s["length"].as_u64() == Some(want))
    })
    .await?;
    let total = t.elapsed();
    let log = std::fs::read_to_string(&b.log).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("caught up"))
        .unwrap_or("(no catch-up line in the log)");
    println!(
        "node B from process start to serving at length {want}: {total:.2?} ({:.0} blocks/s)",
        blocks as f64 / total.as_secs_f64()
    );
    println!("node B log: {}", line.split("] ").nth(1).unwrap_or(line));
    if let Some(secs) = parse_download_secs(line) {
        println!(
            "download rate from B's log: {:.0} blocks/s  (target >= 5,000 blocks/s)",
            blocks as f64 / secs
        );
    }
    drop(b);
    drop(a);
    remove_unless_kept(&dir);
    Ok(())
}

/// Seconds out of "... downloaded in 1.23s)" (Debug format of a Duration).
fn parse_download_secs(line: &str) -> Option<f64> {
    let tail = line.split("downloaded in ").nth(1)?.trim_end_matches(')');
    if let Some(ms) = tail.strip_suffix("ms") {
        return ms.parse::<f64>().ok().map(|v| v / 1e3);
    }
    tail.strip_suffix('s')?.parse().ok()
}

pub(super) fn write_store(
    dir: &Path,
    params: &ChainParams,
    chain: &[Arc<chainsim_primitives::Block>],
) -> anyhow::Result<()> {
    let mut store = chainsim_store::RedbStore::open(dir)?;
    let mut ops = vec![StoreOp::PutBlock {
        hash: params.genesis_hash(),
        block: params.genesis().clone(),
        chain_work: params.bits.work(),
    }];
    let mut work = params.bits.work();
    for b in chain {
        work = Work(work.0 + params.bits.work().0);
        ops.push(StoreOp::PutBlock {
            hash: b.compute_hash(),
            block: b.clone(),
            chain_work: work,
        });
        if ops.len() >= 1_000 {
            store.commit(&ops)?;
            ops.clear();
        }
    }
    if let Some(last) = chain.last() {
        ops.push(StoreOp::SetTip(last.compute_hash()));
    }
    ops.push(StoreOp::PutMeta("miner".into(), b"bench-a".to_vec()));
    store.commit(&ops)?;
    // Sanity: the core accepts what was written.
    let state = store.load()?;
    Node::restore(
        Arc::new(params.clone()),
        NodeConfig::new("127.0.0.1:1".parse()?, "x"),
        state,
    )
    .map_err(|e| anyhow::anyhow!("bench chain invalid: {e}"))?;
    Ok(())
}
