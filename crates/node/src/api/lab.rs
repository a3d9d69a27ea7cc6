//! The lab's controls: `PUT /peers/{addr}/link` (a link's delay, jitter, loss, bandwidth,
//! cut) and `POST /mining` (manual, interval or auto mining). Both change state, so both
//! pass the cross-site guard like every `POST`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use chainsim_api::{LinkAnswer, LinkRequest, MiningRequest};
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
