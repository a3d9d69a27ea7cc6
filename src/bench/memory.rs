//! `bench memory`: the resident size of one real node process holding a long chain.
//!
//! Two nodes on the easy test network, each a child process of this binary:
//! - one whose store is written directly (valid mined blocks of 100 transactions) before it
//!   starts: its resident size once it serves, and how long its start-up verification of the
//!   stored chain took, from its own log line;
//! - one that is sent blocks of 500 transactions through the public API (`POST
//!   /transactions/new`, then `POST /mine`): its resident size after a restart, and after it
//!   answered `GET /chain` once.
//!
//! Resident size is `VmRSS` from `/proc/PID/status`, read one second after the node serves
//! (or answered), so that start-up work has settled.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chainsim_core::ChainParams;
use tokio::task::JoinSet;

use super::network::{Proc, free_port, remove_unless_kept, rss_kb, spawn_node, status, wait_until, write_store};

/// Blocks sent through the API, and transactions in each besides the coinbase.
const API_BLOCKS: usize = 400;
const API_TXS: usize = 500;
/// Requests in flight while sending transactions.
const CLIENTS: usize = 64;

/// One row of the result table.
struct Row {
    what: String,
    target: String,
    measured: String,
    met: bool,
}

impl Row {
    /// A resident size of `kb` against a limit of `limit_mb`.
    fn resident(what: String, limit_mb: u64, kb: u64) -> Self {
        Self {
            what,
            target: format!("< {limit_mb} MB"),
            measured: mb(kb),
            met: kb < limit_mb * 1024,
        }
    }
}

pub async fn run(blocks: usize) -> anyhow::Result<()> {
    println!(
        "== memory of one node: VmRSS of a `chainsim node` process (test network, {}s after it serves)",
        SETTLE.as_secs()
    );
    let dir = super::temp_dir("memory")?;
    let client = reqwest::Client::new();
    let mut rows = Vec::new();

    // (a) A store holding `blocks` blocks of 100 transactions, written directly.
    let params = ChainParams::testnet();
    let t = Instant::now();
    let chain = super::micro::build_chain(&params, blocks, 100, 42);
    let port = free_port()?;
    write_store(&dir.join(format!("node-{port}")), &params, &chain)?;
    drop(chain);
    println!(
        "(built and stored {blocks} blocks of 100 transactions in {:.1?})",
        t.elapsed()
    );
    let node = spawn_node(&dir, port, &[], &[])?;
    serving(&client, &node, blocks + 1).await?;
    let verified = verification_time(&node.log)?;
    let rss = settled_rss(&node).await?;
    drop(node);
    println!(
        "node holding {blocks} blocks: {} resident; verified at start in {verified:.2?}",
        mb(rss)
    );
    rows.push(Row::resident(
        format!("node holding {blocks} blocks of 100 transactions, resident"),
        50,
        rss,
    ));
    rows.push(Row {
        what: format!("start-up verification of {blocks} stored blocks from genesis"),
        target: "<= 0.77 s".into(),
        measured: format!("{:.2} s", verified.as_secs_f64()),
        met: verified.as_secs_f64() <= 0.77,
    });

    // (b) Blocks of 500 transactions sent through the public API.
    let port = free_port()?;
    let node = spawn_node(&dir, port, &[], &[])?;
    serving(&client, &node, 1).await?;
    let t = Instant::now();
    for b in 0..API_BLOCKS {
        submit(&client, port, b).await?;
        let resp: serde_json::Value = client
            .post(format!("http://127.0.0.1:{port}/mine"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let txs = resp["block"]["transactions"].as_array().map_or(0, Vec::len);
        ensure!(
            txs == API_TXS + 1,
            "block {b} holds {txs} transactions, not {}",
            API_TXS + 1
        );
    }
    let sent = API_BLOCKS * API_TXS;
    println!(
        "(sent {sent} transactions in {API_BLOCKS} blocks through the API in {:.1?})",
        t.elapsed()
    );
    let before = settled_rss(&node).await?;
    println!(
        "node sent {API_BLOCKS} blocks, before a restart: {} resident",
        mb(before)
    );
    stop(node).await?;
    let node = spawn_node(&dir, port, &[], &[])?;
    serving(&client, &node, API_BLOCKS + 1).await?;
    let restarted = settled_rss(&node).await?;
    let verified = verification_time(&node.log)?;
    let body = client
        .get(format!("http://127.0.0.1:{port}/chain"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let after_chain = settled_rss(&node).await?;
    drop(node);
    println!(
        "after a restart: {} resident (verified at start in {verified:.2?}); after one GET /chain ({:.1} MB of JSON): {}",
        mb(restarted),
        body.len() as f64 / 1e6,
        mb(after_chain)
    );
    let what = format!("node sent {API_BLOCKS} blocks of {API_TXS} transactions ({sent}) through the API, resident");
    rows.push(Row::resident(format!("{what} after a restart"), 25, restarted));
    rows.push(Row::resident(format!("{what} after one GET /chain"), 40, after_chain));

    println!();
    println!("| what | target | measured | |");
    println!("|---|---|---|---|");
    for r in &rows {
        let met = if r.met { "met" } else { "**not met**" };
        println!("| {} | {} | {} | {met} |", r.what, r.target, r.measured);
    }
    remove_unless_kept(&dir);
    Ok(())
}

/// How long after serving the resident size is read.
const SETTLE: Duration = Duration::from_secs(1);

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// Waits until `node` serves `/status` at chain length `length`.
async fn serving(client: &reqwest::Client, node: &Proc, length: usize) -> anyhow::Result<()> {
    let port = node.port;
    wait_until("the node to serve", Duration::from_secs(300), async || {
        status(client, port)
            .await
            .is_some_and(|s| s["length"].as_u64() == Some(length as u64))
    })
    .await
    .with_context(|| format!("node log: {}", node.log.display()))
}

async fn settled_rss(node: &Proc) -> anyhow::Result<u64> {
    tokio::time::sleep(SETTLE).await;
    rss_kb(node.child.id()).context("no VmRSS in /proc/PID/status")
}

/// The time of the node's "N blocks verified from genesis in X" log line.
fn verification_time(log: &Path) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(log)?;
    let line = text
        .lines()
        .find(|l| l.contains("blocks verified from genesis in "))
        .with_context(|| format!("no verification line in {}", log.display()))?;
    let tail = line
        .split("blocks verified from genesis in ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .context("verification line without a time")?;
    parse_debug_duration(tail).with_context(|| format!("cannot read the time {tail:?}"))
}

/// A `Duration` printed with `{:?}`: "1.23s", "768.87ms", "950.00µs", "12ns".
fn parse_debug_duration(text: &str) -> Option<Duration> {
    let (number, scale) = [("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)]
        .into_iter()
        .find_map(|(unit, scale)| Some((text.strip_suffix(unit)?, scale)))?;
    Some(Duration::from_secs_f64(number.parse::<f64>().ok()? * scale))
}

/// Sends the `API_TXS` transactions of block `b` from `CLIENTS` concurrent clients.
async fn submit(client: &reqwest::Client, port: u16, b: usize) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        tasks.spawn(async move {
            for i in (c..API_TXS).step_by(CLIENTS) {
                let body = serde_json::json!({
                    "sender": format!("memory-{b}-{i}"),
                    "recipient": "Bob",
                    "amount": i + 1,
                });
                let resp = client
                    .post(format!("http://127.0.0.1:{port}/transactions/new"))
                    .json(&body)
                    .send()
                    .await?;
                if resp.status() != reqwest::StatusCode::CREATED {
                    bail!("POST /transactions/new answered {}", resp.status());
                }
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Stops the node as Ctrl+C would (SIGTERM: finish writes, close the store), waiting for it.
async fn stop(mut node: Proc) -> anyhow::Result<()> {
    let pid = node.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
    ensure!(sent.success(), "kill -TERM {pid} failed");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if node.child.try_wait()?.is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the node did not stop within 30 s of SIGTERM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debug_durations() {
        let secs = |t: &str| parse_debug_duration(t).map(|d| d.as_secs_f64());
        let near = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-9);
        assert!(near(secs("768.87ms"), 0.76887));
        assert!(near(secs("1.50s"), 1.5));
        assert!(near(secs("950.00µs"), 0.00095));
        assert_eq!(secs("fast"), None);
        let line = format!(
            "store x opened: 3 blocks verified from genesis in {:.2?} (length 4)",
            Duration::from_millis(1234)
        );
        assert!(near(
            line.split("genesis in ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(secs),
            1.23
        ));
    }
}
