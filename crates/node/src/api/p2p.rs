//! `POST /p2p`: the peer protocol's one route. The body is one message; the answer is the
//! list of direct replies. Where the message is refused, the status says why (403 blocked,
//! banned or refused, 409 no handshake yet, 400 protocol violation).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chainsim_core::node::PeerError;
use chainsim_core::{Message, PeerAddr};

use super::AppState;
use super::error::ApiError;
use crate::driver::Command;
use crate::peer_client::FROM_HEADER;

/// `POST /p2p`.
pub async fn message(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let from: PeerAddr = headers
        .get(FROM_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request(format!("missing {FROM_HEADER} header")))?
        .parse()
        .map_err(|e: chainsim_core::peers::AddrError| ApiError::bad_request(e.to_string()))?;
    let body = body?;
    let msg: Message = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            let reason = format!("unreadable message: {e}");
            s.handle
                .send(Command::PeerGarbage {
                    from,
                    reason: reason.clone(),
                })
                .await?;
            return Err(ApiError::bad_request(reason));
        }
    };
    let replies = s.handle.request(|reply| Command::Peer { from, msg, reply }).await?;
    match replies {
        Ok(replies) => Ok(Json::<Vec<Message>>(replies)),
        Err(e) => {
            let status = match e {
                PeerError::Blocked(_) | PeerError::Banned(_) | PeerError::Refused(_) => StatusCode::FORBIDDEN,
                PeerError::NotConnected(_) => StatusCode::CONFLICT,
                PeerError::Invalid(_) => StatusCode::BAD_REQUEST,
            };
            Err(ApiError::new(status, e.to_string()))
        }
    }
}
