//! The HTTP API: the original's routes, chainsim's own, the peer protocol, events and
//! metrics. Handlers stay thin: parse, send one command to the driver, format the answer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::driver::NodeHandle;

pub mod accounts;
pub mod error;
pub mod events;
pub mod explorer;
pub mod guard;
pub mod lab;
pub mod original;
pub mod p2p;
pub mod views;

pub use error::ApiError;

/// Largest body of a public request.
pub const MAX_BODY: usize = 1024 * 1024;

/// Static facts about the node for the handlers.
#[derive(Debug)]
pub struct NodeInfo {
    /// Listening host.
    pub host: String,
    /// Listening port.
    pub port: u16,
    /// Names a request's `Host` may give (see [`guard`]).
    pub allowed_hosts: Vec<String>,
    /// The network's ledger: which rules `/transactions/new` follows.
    pub ledger: chainsim_core::LedgerKind,
}

impl NodeInfo {
    /// A node listening on `host:port` that also answers to the names in `extra`.
    pub fn new(host: &str, port: u16, extra: &[String]) -> Self {
        Self {
            host: host.to_string(),
            port,
            allowed_hosts: guard::allowed_hosts(host, extra),
            ledger: chainsim_core::LedgerKind::Open,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The way to the driver.
    pub handle: NodeHandle,
    /// Static facts.
    pub info: Arc<NodeInfo>,
}

/// The whole router. Public routes wait for the initial sync to finish before answering
/// (as the original synced before serving); the peer protocol's link opens at once, so that the
/// initial sync itself can run.
pub fn app(state: AppState) -> Router {
    let public = Router::new()
        .route("/transactions/new", post(original::new_transaction))
        .route("/transactions/pending", get(original::pending))
        .route("/transactions/signed", post(accounts::signed_transaction))
        .route("/accounts", get(accounts::accounts))
        .route("/accounts/{id}", get(accounts::account))
        .route("/transactions/{txid}", get(explorer::transaction))
        .route("/mine", get(original::mine).post(original::mine))
        .route("/chain", get(original::chain))
        .route("/nodes/register", post(original::register))
        .route("/nodes/resolve", get(original::resolve))
        .route("/blocks/receive", post(original::receive_block))
        .route("/blocks", get(explorer::blocks))
        .route("/blocks/{id}", get(explorer::block))
        .route("/status", get(explorer::status))
        .route("/peers", get(explorer::peers))
        .route("/peers/block", post(explorer::block_peer))
        .route("/peers/unblock", post(explorer::unblock_peer))
        .route("/peers/{addr}/link", put(lab::set_link))
        .route("/mining", post(lab::set_mining))
        .route("/lab/tamper", post(lab::tamper))
        .route("/events", get(events::events))
        .route("/metrics", get(events::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .route_layer(middleware::from_fn_with_state(state.clone(), wait_until_ready));
    let p2p = Router::new().route("/p2p", get(p2p::open_link));
    public
        .merge(p2p)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

async fn wait_until_ready(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if *s.handle.shared.ready.borrow() {
        return next.run(req).await;
    }
    let mut ready = s.handle.shared.ready.subscribe();
    if ready.wait_for(|r| *r).await.is_err() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down").into_response();
    }
    next.run(req).await
}

/// Every error answer is `{"error": ...}`: rejections that the framework writes as plain
/// text (a query with a duplicate key, a path that is not UTF-8, ...) are rewrapped here, the
/// one place that knows the error shape besides [`ApiError`].
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let text = match axum::body::to_bytes(resp.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    ApiError::new(status, message).into_response()
}

async fn count_requests(State(s): State<AppState>, req: Request, next: Next) -> Response {
    s.handle.shared.http_requests.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        s.handle.shared.http_errors.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}; see docs/API.md",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}
