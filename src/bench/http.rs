//! `POST /transactions/new` under 64 keep-alive clients (wrk), against a trivial axum
//! handler on the same machine with the same load tool.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;

/// wrk script: every request a new transaction (distinct sender per thread and counter),
/// so the node does the full work of accepting it, durably.
const SCRIPT: &str = r#"
local thread_no = 0
setup = function(thread)
  thread:set("tid", thread_no)
  thread_no = thread_no + 1
end
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"sender":"wrk' .. tid .. '-' .. counter .. '","recipient":"Bob","amount":10}'
  return wrk.format("POST", "/transactions/new", {["Content-Type"] = "application/json"}, body)
end
"#;

struct WrkResult {
    rps: f64,
    latency: String,
    non_2xx: u64,
}

fn wrk(addr: SocketAddr, script: &std::path::Path, secs: Duration) -> anyhow::Result<WrkResult> {
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{}s", secs.as_secs().max(1)),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}"))
        .output()
        .context("wrk is needed for this benchmark (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unexpected wrk output:\n{text}"))?;
    let latency = text
        .lines()
        .filter(|l| l.trim_start().starts_with("50%") || l.trim_start().starts_with("99%"))
        .map(|l| l.trim().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(WrkResult { rps, latency, non_2xx })
}

pub async fn run(secs: Duration) -> anyhow::Result<()> {
    let secs = secs.max(Duration::from_secs(5));
    println!(
        "== http: POST /transactions/new, wrk -t2 -c64 -d{}s, every request a new transaction",
        secs.as_secs()
    );
    let dir = super::temp_dir("http")?;
    let script = dir.join("post.lua");
    std::fs::write(&script, SCRIPT)?;

    // The trivial baseline: same route, a constant JSON answer, nothing else.
    let baseline = axum::Router::new().route(
        "/transactions/new",
        post(|| async { (StatusCode::CREATED, Json(serde_json::json!({ "message": "ok" }))) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, baseline).await });

    let (tx, rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = chainsim_node::NodeOptions {
        port: 0,
        data_dir: Some(dir.join("node")),
        no_default_peers: true,
        mempool_capacity: 10_000_000,
        mine_threads: Some(1),
        ..Default::default()
    };
    let node = tokio::spawn(chainsim_node::run(
        opts,
        async move {
            let _ = stop_rx.await;
        },
        move |addr| {
            let _ = tx.send(addr);
        },
    ));
    let node_addr = rx.await.context("node did not start")?;
    // The API answers once the (empty) initial sync is over.
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("http://{node_addr}/status")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let b = tokio::task::spawn_blocking({
        let script = script.clone();
        move || wrk(base_addr, &script, secs)
    })
    .await??;
    println!(
        "trivial axum handler:   {:>9.0} requests/s  latency {}",
        b.rps, b.latency
    );
    let n = tokio::task::spawn_blocking(move || wrk(node_addr, &script, secs)).await??;
    println!(
        "chainsim node:          {:>9.0} requests/s  latency {}  (non-2xx: {})",
        n.rps, n.latency, n.non_2xx
    );
    println!("node / trivial: {:.0}%  (target >= 50%)", n.rps / b.rps * 100.0);
    let _ = stop_tx.send(());
    let _ = node.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
