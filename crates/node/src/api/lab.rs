//! The lab's controls: `PUT /peers/{addr}/link` (a link's delay, jitter, loss, bandwidth,
//! cut), `POST /mining` (manual, interval or auto mining) and `POST /lab/tamper` (offer the
//! peers an altered copy of a block). All change state, so all pass the cross-site guard
//! like every `POST`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chainsim_api::{LinkAnswer, LinkRequest, MiningRequest, TamperAnswer, TamperRequest};
use chainsim_core::PeerAddr;

use super::AppState;
use super::error::{ApiError, parse_json};
use super::views::{link_view, mining_mode, mining_view};
use crate::driver::Command;

/// `PUT /peers/{addr}/link` with any of `latency_ms`, `jitter_ms`, `loss`, `bandwidth_bps`, `cut`.
pub async fn set_link(
    State(s): State<AppState>,
    Path(addr): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let addr: PeerAddr = addr
        .parse()
        .map_err(|e: chainsim_core::peers::AddrError| ApiError::bad_request(e.to_string()))?;
    let change: LinkRequest = parse_json(&body?)?;
    let peer = addr.clone();
    let conditions = s
        .handle
        .request(|reply| Command::SetLink { addr, change, reply })
        .await?
        .map_err(ApiError::bad_request)?;
    Ok(Json(LinkAnswer {
        conditions: link_view(&conditions),
        message: format!("link to {peer} updated"),
        peer,
    }))
}

/// `POST /mining {"mode": "manual" | "interval" | "auto", "block_time_s"?, "share"?}`.
pub async fn set_mining(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request: MiningRequest = parse_json(&body?)?;
    let mode = mining_mode(&request).map_err(ApiError::bad_request)?;
    s.handle
        .request(|reply| Command::SetMining { mode, reply })
        .await?
        .map_err(ApiError::bad_request)?;
    Ok(Json(s.handle.read(|n| mining_view(n.mining_schedule())).await?))
}

/// Nonces the tamper lesson may try for the altered copy: thousands of times what a block
/// of the default network needs, and still a bounded wait on an unusually hard target.
const TAMPER_TRIES: u64 = 1 << 30;

/// `POST /lab/tamper {"hash"}`: a copy of that block with one transaction's amount changed
/// (and a fresh nonce, so its hash is new) goes to every peer as a normal block message.
/// This node's own chain is not touched; each peer refuses the copy by its own validation.
pub async fn tamper(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let TamperRequest { hash } = parse_json(&body?)?;
    let (params, block) = s
        .handle
        .read(move |n| (n.params().clone(), n.tree().block(&hash)))
        .await?;
    let block = block.ok_or_else(|| ApiError::not_found(format!("no block {hash}")))?;
    if block.header.height == 0 {
        return Err(ApiError::bad_request(
            "the genesis block cannot be offered: every node has its own copy",
        ));
    }
    let t = tokio::task::spawn_blocking(move || chainsim_core::tamper::tamper(&params, &block, TAMPER_TRIES))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no nonce found for the altered copy"))?;
    let tampered = t.block.compute_hash();
    let sent_to = s
        .handle
        .request(|reply| Command::Offer { block: t.block, reply })
        .await?;
    Ok(Json(TamperAnswer {
        amount_after: t.amount_after,
        amount_before: t.amount_before,
        message: format!(
            "offered {} peer(s) a copy of block {hash} whose transaction {} pays {} instead of {}",
            sent_to.len(),
            t.index,
            t.amount_after,
            t.amount_before
        ),
        original: hash,
        sent_to,
        tampered,
        tx_index: t.index as u64,
    }))
}
