//! `GET /events` (Server-Sent Events) and `GET /metrics` (Prometheus text).

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use chainsim_core::metrics::Histogram;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

use super::AppState;
use super::error::ApiError;
use super::explorer::status_view;

/// `GET /events`: a `hello` event with the status, then every event as it happens.
pub async fn events(State(s): State<AppState>) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading the status so nothing falls between the two.
    let rx = s.handle.subscribe();
    let st = s.clone();
    let hello = s.handle.read(move |n| status_view(n, &st)).await?;
    let hello = Event::default()
        .event("hello")
        .json_data(hello)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let first = tokio_stream::once(Ok(hello));
    // A client too slow to keep up skips what it missed rather than stalling the node.
    let rest = BroadcastStream::new(rx).filter_map(|item| {
        item.ok()
            .map(|e| Ok(Event::default().event(e.name).data(e.data.as_str())))
    });
    Ok(Sse::new(first.chain(rest)).keep_alive(KeepAlive::default()))
}

/// Writes a Prometheus histogram: a `le` bucket per bound, `+Inf`, sum and count.
fn histogram<const N: usize>(out: &mut String, name: &str, help: &str, h: &Histogram<N>) {
    let _ = writeln!(out, "# HELP chainsim_{name} {help}\n# TYPE chainsim_{name} histogram");
    for (bound, count) in h.cumulative() {
        let _ = writeln!(out, "chainsim_{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "chainsim_{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "chainsim_{name}_sum {}\nchainsim_{name}_count {}", h.sum, h.count);
}

/// `GET /metrics`.
pub async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let shared = s.handle.shared.clone();
    let text = s
        .handle
        .read(move |n| {
            let st = n.stats();
            let mut out = String::new();
            let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
                let _ = writeln!(
                    out,
                    "# HELP chainsim_{name} {help}\n# TYPE chainsim_{name} {kind}\nchainsim_{name} {value}"
                );
            };
            gauge("height", "Height of the best tip.", "gauge", n.tree().height());
            gauge(
                "mempool_size",
                "Pending transactions.",
                "gauge",
                n.mempool().len() as u64,
            );
            gauge(
                "peers_connected",
                "Connected peers.",
                "gauge",
                n.peers().connected().len() as u64,
            );
            gauge(
                "side_blocks",
                "Blocks kept off the best chain.",
                "gauge",
                n.tree().side_count() as u64,
            );
            gauge(
                "orphan_blocks",
                "Blocks waiting for their parent.",
                "gauge",
                n.orphan_count() as u64,
            );
            gauge(
                "blocks_mined_total",
                "Blocks this node mined.",
                "counter",
                st.blocks_mined,
            );
            gauge(
                "blocks_accepted_total",
                "Blocks accepted.",
                "counter",
                st.blocks_accepted,
            );
            gauge(
                "blocks_rejected_total",
                "Blocks refused as invalid.",
                "counter",
                st.blocks_rejected,
            );
            gauge("reorgs_total", "Chain reorganisations.", "counter", st.reorgs);
            gauge(
                "store_read_errors_total",
                "Block bodies the store failed to give back (a damaged store; see --resync).",
                "counter",
                st.body_read_errors,
            );
            gauge(
                "transactions_accepted_total",
                "Transactions accepted into the mempool.",
                "counter",
                st.txs_accepted,
            );
            gauge(
                "peer_messages_in_total",
                "Messages handled from peers.",
                "counter",
                st.messages_in,
            );
            gauge(
                "peer_messages_out_total",
                "Messages sent to peers.",
                "counter",
                st.messages_out,
            );
            gauge(
                "http_requests_total",
                "HTTP requests served.",
                "counter",
                shared.http_requests.load(Ordering::Relaxed),
            );
            gauge(
                "http_errors_total",
                "HTTP requests answered with an error.",
                "counter",
                shared.http_errors.load(Ordering::Relaxed),
            );
            gauge(
                "hashes_total",
                "Hashes tried by finished mining jobs.",
                "counter",
                shared.hashes.load(Ordering::Relaxed),
            );
            gauge(
                "mining",
                "1 while a block is being mined.",
                "gauge",
                u64::from(shared.mining.load(Ordering::Relaxed)),
            );
            let m = n.metrics();
            gauge(
                "stale_blocks_total",
                "Blocks that left the best chain or never joined it.",
                "counter",
                m.stale_blocks,
            );
            histogram(
                &mut out,
                "reorg_depth_blocks",
                "Blocks disconnected by each reorganisation.",
                &m.reorg_depth,
            );
            histogram(
                &mut out,
                "block_propagation_ms",
                "Milliseconds from a relayed block's timestamp to its arrival here.",
                &m.propagation_ms,
            );
            out
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
