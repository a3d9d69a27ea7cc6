//! `GET /p2p`: where a peer opens its link. The request asks to upgrade the connection to
//! the peer protocol (`Upgrade: chainsim-p2p/2`); once switched, the connection carries
//! length-prefixed frames both ways (see [`crate::wire`]) and belongs to the driver. A
//! request without the upgrade gets a 400 saying how to connect.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

use super::AppState;
use super::error::ApiError;
use crate::driver::Command;
use crate::wire::UPGRADE;

/// `GET /p2p`.
pub async fn open_link(State(s): State<AppState>, mut req: Request) -> Result<Response, ApiError> {
    let wants = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(UPGRADE));
    if !wants {
        return Err(ApiError::bad_request(format!(
            "the peer protocol needs a connection upgrade: send `Connection: Upgrade` and `Upgrade: {UPGRADE}` (docs/NETWORK.md)"
        )));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let handle = s.handle.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let _ = handle.send(Command::Accept(TokioIo::new(upgraded))).await;
            }
            Err(e) => tracing::debug!("peer connection upgrade failed: {e}"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(UPGRADE));
    Ok(resp)
}
