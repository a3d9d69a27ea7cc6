//! The dashboard's own HTTP surface: the page and its assets, the page's live event
//! stream, a small JSON API for actions, and the original dashboard's routes.
//!
//! Every state-changing request must come from the page itself: its `Origin` must be the
//! dashboard's own, and it must carry the per-process token that the page received inside
//! its HTML. A page on another site can make a browser send requests here, but it can
//! neither forge `Origin` nor read the token.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chainsim_api::{LinkRequest, MiningRequest, NewTxAnswer, NewTxRequest, SignedTxRequest, TamperRequest, now_ms};
use chainsim_primitives::keys::{DEMO_NAMES, demo_key};
use chainsim_primitives::{Address, PeerAddr, Transaction};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{NodeClient, NodeError};
use crate::demo::{DemoError, Supervisor};
use crate::monitor::{Monitor, Origin};
use crate::{DashboardError, validate};

const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The page's script: native ES modules (`main.js` imports the others), no build step.
/// Each is served at `/assets/{name}` as `text/javascript`, which module scripts require.
const SCRIPTS: &[(&str, &str)] = &[
    ("main.js", include_str!("../assets/main.js")),
    ("state.js", include_str!("../assets/state.js")),
    ("i18n.js", include_str!("../assets/i18n.js")),
    ("dom.js", include_str!("../assets/dom.js")),
    ("api.js", include_str!("../assets/api.js")),
    ("nodes.js", include_str!("../assets/nodes.js")),
    ("txform.js", include_str!("../assets/txform.js")),
    ("graph.js", include_str!("../assets/graph.js")),
    ("heights.js", include_str!("../assets/heights.js")),
    ("activity.js", include_str!("../assets/activity.js")),
    ("forktree.js", include_str!("../assets/forktree.js")),
    ("explorer.js", include_str!("../assets/explorer.js")),
    ("feed.js", include_str!("../assets/feed.js")),
    ("lab.js", include_str!("../assets/lab.js")),
    ("figures.js", include_str!("../assets/figures.js")),
    ("wallets.js", include_str!("../assets/wallets.js")),
];
const APP_CSS: &str = include_str!("../assets/app.css");
const FAVICON: &str = include_str!("../assets/favicon.svg");
/// The header that carries the page's token on every state-changing request.
pub const TOKEN_HEADER: &str = "x-chainsim-token";
const TOKEN_PLACEHOLDER: &str = "__CHAINSIM_TOKEN__";
/// Scripts, styles and connections only from the dashboard itself: even if node data
/// slipped into the page as markup, no script could run.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Shared state of the dashboard's HTTP handlers; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppInner>);

#[derive(Debug)]
struct AppInner {
    monitor: Arc<Monitor>,
    demo: Option<Arc<Supervisor>>,
    token: String,
    host: String,
    port: u16,
    index: String,
}

impl AppState {
    /// State for a dashboard reachable at `host:port` that watches no node yet.
    pub fn new(host: &str, port: u16) -> Result<Self, DashboardError> {
        let client = NodeClient::new().map_err(DashboardError::Client)?;
        Ok(Self::with_parts(Monitor::new(client, false), None, host, port))
    }

    pub(crate) fn with_parts(monitor: Arc<Monitor>, demo: Option<Arc<Supervisor>>, host: &str, port: u16) -> Self {
        let token = random_token();
        let index = INDEX_HTML.replace(TOKEN_PLACEHOLDER, &token);
        Self(Arc::new(AppInner {
            monitor,
            demo,
            token,
            host: host.to_owned(),
            port,
            index,
        }))
    }

    /// The token the page must send in `X-Chainsim-Token`.
    pub fn token(&self) -> &str {
        &self.0.token
    }

    /// The watcher behind this dashboard.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.0.monitor
    }

    /// Whether a `Host` header names this dashboard. Checking it defeats DNS rebinding,
    /// where a foreign name resolves to 127.0.0.1 and so becomes "same origin".
    fn host_allowed(&self, host: &str) -> bool {
        let bind = self.0.host.as_str();
        if matches!(bind, "0.0.0.0" | "::" | "[::]") {
            // Bound to every interface: the dashboard cannot know every name it has.
            return true;
        }
        let port = self.0.port;
        let bind_host = if bind.contains(':') && !bind.starts_with('[') {
            format!("[{bind}]")
        } else {
            bind.to_owned()
        };
        [bind_host.as_str(), "127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|h| host.eq_ignore_ascii_case(&format!("{h}:{port}")))
    }

    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let (Some(host), Some(origin)) = (header_str(headers, "host"), header_str(headers, "origin")) else {
            return false;
        };
        self.host_allowed(host) && origin.eq_ignore_ascii_case(&format!("http://{host}"))
    }

    fn token_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|t| constant_time_eq(t.as_bytes(), self.0.token.as_bytes()))
    }

    fn demo(&self) -> Result<&Arc<Supervisor>, ApiError> {
        self.0.demo.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_demo",
                "only `chainsim demo` can stop, start or add nodes",
            )
        })
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 128 random bits as hex, from the OS.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    #[cfg(unix)]
    let from_os = {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .is_ok()
    };
    #[cfg(not(unix))]
    let from_os = false;
    if !from_os {
        // std's hasher keys are seeded from the OS's randomness.
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos()));
            for (b, v) in chunk.iter_mut().zip(h.finish().to_le_bytes()) {
                *b = v;
            }
        }
    }
    hex::encode(bytes)
}

/// An error answer: `{"error": message, "code": code}` with a 4xx status for anything the
/// caller did wrong, 502/504 when a node failed.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    fn forbidden(message: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    fn unknown_node(address: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "unknown_node", format!("unknown node {address}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message, "code": self.code }))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::Unreachable(_) | NodeError::Dropped(_) => {
                Self::new(StatusCode::BAD_GATEWAY, "unreachable", message)
            }
            NodeError::Timeout(_) => Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message),
            NodeError::Refused { status, .. } => {
                let status = StatusCode::from_u16(status)
                    .ok()
                    .filter(StatusCode::is_client_error)
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                Self::new(status, "refused", message)
            }
            NodeError::BadAnswer(_) | NodeError::TooLarge(_) => {
                Self::new(StatusCode::BAD_GATEWAY, "bad_answer", message)
            }
        }
    }
}

impl From<DemoError> for ApiError {
    fn from(e: DemoError) -> Self {
        let status = match e {
            DemoError::NotManaged(_) => StatusCode::NOT_FOUND,
            DemoError::AlreadyRunning(_) | DemoError::NotRunning(_) | DemoError::Busy(_) => StatusCode::CONFLICT,
            // The machine, not the caller, is at fault; still not worth a 5xx to the page.
            DemoError::NoPort | DemoError::Spawn { .. } => StatusCode::CONFLICT,
        };
        Self::new(status, "demo", e.to_string())
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The dashboard's routes, ready to serve or to call with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/api/events", get(page_events))
        .route("/api/state", get(api_state))
        .route("/api/tx", post(api_tx))
        .route("/api/tx/{txid}", get(api_tx_lookup))
        .route("/api/blocks/{id}", get(api_block))
        .route("/api/nodes", post(api_add_node))
        .route("/api/nodes/{addr}/{action}", post(api_node_action))
        .route("/api/link", post(api_link))
        .route("/api/partition", post(api_partition))
        .route("/api/mining", post(api_mining))
        .route("/api/tamper", post(api_tamper))
        .route("/api/accounts", get(api_accounts))
        .route("/api/double-spend", post(api_double_spend))
        .route("/mine/{port}", get(compat_mine))
        .route("/resolve/{port}", get(compat_resolve))
        .route("/add_transaction", post(compat_add_tx))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method", "method not allowed here")
        })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Refuses requests for a foreign `Host`, and state changes that do not come from the page.
async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if let Some(host) = header_str(headers, "host")
        && !st.host_allowed(host)
    {
        return ApiError::forbidden("unknown Host; open the dashboard by its own address").into_response();
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if !st.same_origin(headers) {
            return ApiError::forbidden("cross-origin request refused").into_response();
        }
        // The original's form route carries the token in a form field instead.
        if req.uri().path() != "/add_transaction" && !st.token_ok(header_str(headers, TOKEN_HEADER)) {
            return ApiError::forbidden("missing or wrong X-Chainsim-Token").into_response();
        }
    }
    next.run(req).await
}

fn page_headers(content_type: &'static str) -> [(header::HeaderName, HeaderValue); 6] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
    ]
}

async fn index(State(st): State<AppState>) -> Response {
    (page_headers("text/html; charset=utf-8"), st.0.index.clone()).into_response()
}

/// `GET /assets/{name}`: a script module, the style sheet or the icon, all built in.
async fn asset(Path(name): Path<String>) -> Response {
    let found = match name.as_str() {
        "app.css" => Some(("text/css; charset=utf-8", APP_CSS)),
        "favicon.svg" => Some(("image/svg+xml", FAVICON)),
        _ => SCRIPTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, body)| ("text/javascript; charset=utf-8", *body)),
    };
    match found {
        Some((content_type, body)) => (page_headers(content_type), body).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset").into_response(),
    }
}

async fn api_state(State(st): State<AppState>) -> Json<Value> {
    Json(st.monitor().snapshot())
}

/// The page's live feed: a full snapshot first (and again if the page fell behind),
/// then every change as it happens.
async fn page_events(State(st): State<AppState>) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let mon = Arc::clone(st.monitor());
    let (tx, rx) = mpsc::channel::<Event>(256);
    let mut sub = mon.subscribe();
    let mut stop = mon.shutdown_signal();
    tokio::spawn(async move {
        let snapshot = |m: &Monitor| Event::default().event("snapshot").data(m.snapshot().to_string());
        if tx.send(snapshot(&mon)).await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                r = sub.recv() => match r {
                    Ok(e) => Event::default().event(e.kind).data(&*e.data),
                    Err(broadcast::error::RecvError::Lagged(_)) => snapshot(&mon),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.wait_for(|s| *s) => return,
                () = tx.closed() => return,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    Sse::new(ReceiverStream::new(rx).map(Ok)).keep_alive(KeepAlive::default())
}

/// Reads the node an action names: a valid address the dashboard watches.
fn known_node(st: &AppState, raw: &str) -> Result<PeerAddr, ApiError> {
    let address = validate::address(raw).map_err(|_| ApiError::unknown_node(raw))?;
    if st.monitor().knows(&address) {
        Ok(address)
    } else {
        Err(ApiError::unknown_node(address.as_str()))
    }
}

fn text_field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{key} is required"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(format!("{key} must be text"))),
    }
}

async fn submit_tx(st: &AppState, node: &PeerAddr, tx: &NewTxRequest) -> Result<Value, ApiError> {
    let answer = st.monitor().client().submit(node, tx).await?;
    st.monitor().poke(node);
    Ok(json!({
        "ok": true,
        "node": node,
        "message": answer.message,
        "txid": answer.txid,
    }))
}

/// `POST /api/tx` `{sender, recipient, amount, node}`: sends the transaction to that one
/// node; the network's gossip does the rest.
async fn api_tx(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::invalid("the request body must be a JSON object"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("the request body must be a JSON object"))?;
    let sender = text_field(obj, "sender")?;
    let recipient = text_field(obj, "recipient")?;
    let amount = validate::amount(obj.get("amount")).map_err(ApiError::invalid)?;
    let tx = validate::transaction(sender, recipient, amount).map_err(ApiError::invalid)?;
    let node = known_node(&st, text_field(obj, "node")?)?;
    Ok(Json(submit_tx(&st, &node, &tx).await?))
}

async fn do_mine(st: &AppState, node: &PeerAddr) -> Result<Value, ApiError> {
    let answer = st.monitor().client().mine(node).await?;
    st.monitor().poke(node);
    Ok(json!({
        "ok": true,
        "node": node,
        "message": answer.message,
        "height": answer.block.height,
        "hash": answer.block.hash,
        "txs": answer.block.transactions.len(),
    }))
}

async fn do_sync(st: &AppState, node: &PeerAddr) -> Result<Value, ApiError> {
    let answer = st.monitor().client().resolve(node).await?;
    st.monitor().poke(node);
    Ok(json!({
        "ok": true,
        "node": node,
        "message": answer.message,
        "replaced": answer.replaced,
        "length": answer.length,
    }))
}

/// `POST /api/nodes/{addr}/{mine|sync|stop|start}`.
async fn api_node_action(State(st): State<AppState>, Path((addr, action)): Path<(String, String)>) -> ApiResult {
    let node = known_node(&st, &addr)?;
    let result = match action.as_str() {
        "mine" => do_mine(&st, &node).await?,
        "sync" => do_sync(&st, &node).await?,
        "stop" | "start" => {
            let sup = st.demo()?;
            let port = node.port();
            if !sup.manages(port).await || node != crate::demo::node_address(port) {
                return Err(DemoError::NotManaged(node.to_string()).into());
            }
            if action == "stop" {
                sup.stop(port).await?;
            } else {
                sup.start(port).await?;
            }
            st.monitor().poke(&node);
            json!({ "ok": true, "node": node })
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("unknown action {action:?}"),
            ));
        }
    };
    Ok(Json(result))
}

/// The body minus the keys the dashboard reads itself, as a node request `T` (whose
/// unknown fields the node's shape refuses).
fn node_request<T: serde::de::DeserializeOwned>(
    mut obj: serde_json::Map<String, Value>,
    own: &[&str],
) -> Result<T, ApiError> {
    for key in own {
        obj.remove(*key);
    }
    serde_json::from_value(Value::Object(obj)).map_err(|e| ApiError::invalid(e.to_string()))
}

fn body_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(ApiError::invalid("the request body must be a JSON object")),
    }
}

/// Sets `change` on both ends of the link between `a` and `b` (a node's conditions apply to
/// what it sends, so a link is slow both ways only when both ends say so).
async fn set_both_ends(st: &AppState, a: &PeerAddr, b: &PeerAddr, change: &LinkRequest) -> Result<Value, ApiError> {
    let client = st.monitor().client();
    let at_a = client.set_link(a, b, change).await?;
    let at_b = client.set_link(b, a, change).await?;
    st.monitor().poke(a);
    st.monitor().poke(b);
    Ok(json!({ "a": at_a.conditions, "b": at_b.conditions }))
}

/// `POST /api/link {"a": "HOST:PORT", "b": "HOST:PORT", "latency_ms"?, "jitter_ms"?, "loss"?,
/// "bandwidth_bps"?, "cut"?}`: the same conditions on both ends of one link.
async fn api_link(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let obj = body_object(&body)?;
    let a = known_node(&st, text_field(&obj, "a")?)?;
    let b = known_node(&st, text_field(&obj, "b")?)?;
    if a == b {
        return Err(ApiError::invalid("a and b must be two different nodes"));
    }
    let change: LinkRequest = node_request(obj, &["a", "b"])?;
    let ends = set_both_ends(&st, &a, &b, &change).await?;
    Ok(Json(json!({ "ok": true, "a": a, "b": b, "conditions": ends })))
}

/// `POST /api/partition {"groups": [[addr...], [addr...]], "cut": true|false}`: cuts (or
/// with `"cut": false` restores) every link between nodes of different groups, both ends.
async fn api_partition(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let obj = body_object(&body)?;
    let cut = match obj.get("cut") {
        None => true,
        Some(Value::Bool(c)) => *c,
        Some(_) => return Err(ApiError::invalid("cut must be true or false")),
    };
    let groups = parse_groups(&st, obj.get("groups"))?;
    let change = LinkRequest {
        cut: Some(cut),
        ..LinkRequest::default()
    };
    let mut links = 0;
    for (i, left) in groups.iter().enumerate() {
        for right in groups.iter().skip(i + 1) {
            for a in left {
                for b in right.iter().filter(|b| *b != a) {
                    set_both_ends(&st, a, b, &change).await?;
                    links += 1;
                }
            }
        }
    }
    Ok(Json(json!({ "ok": true, "cut": cut, "links": links })))
}

/// `groups` as lists of known nodes.
fn parse_groups(st: &AppState, groups: Option<&Value>) -> Result<Vec<Vec<PeerAddr>>, ApiError> {
    let Some(Value::Array(groups)) = groups else {
        return Err(ApiError::invalid("groups must be a list of lists of nodes"));
    };
    groups
        .iter()
        .map(|group| {
            let Value::Array(members) = group else {
                return Err(ApiError::invalid("each group must be a list of nodes"));
            };
            members
                .iter()
                .map(|m| {
                    let raw = m
                        .as_str()
                        .ok_or_else(|| ApiError::invalid("a node must be HOST:PORT text"))?;
                    known_node(st, raw)
                })
                .collect()
        })
        .collect()
}

/// `POST /api/mining {"node": "HOST:PORT", "mode", "block_time_s"?, "share"?}`: a node's
/// mining mode (the node checks the ranges).
async fn api_mining(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let obj = body_object(&body)?;
    let node = known_node(&st, text_field(&obj, "node")?)?;
    let request: MiningRequest = node_request(obj, &["node"])?;
    let view = st.monitor().client().set_mining(&node, &request).await?;
    st.monitor().poke(&node);
    Ok(Json(json!({ "ok": true, "node": node, "mining": view })))
}

/// `POST /api/tamper {"node", "hash"}`: the node's `POST /lab/tamper`; its peers' refusals
/// come back as `block_rejected` events on the live feed.
async fn api_tamper(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let obj = body_object(&body)?;
    let node = known_node(&st, text_field(&obj, "node")?)?;
    let request: TamperRequest = node_request(obj, &["node"])?;
    let answer = st.monitor().client().tamper(&node, &request).await?;
    Ok(Json(json!({ "ok": true, "node": node, "tamper": answer })))
}

/// `GET /api/accounts`: every online node's `GET /accounts`, side by side:
/// `{"ledger", "nodes": {address: {"accounts", "supply"} or {"error"}}}`. `ledger` is
/// `accounts` when a node listed its accounts, `open` when the nodes answered 404 (the open
/// ledger has none), `null` when no node could tell.
async fn api_accounts(State(st): State<AppState>) -> Json<Value> {
    let mut asks = tokio::task::JoinSet::new();
    for node in st.monitor().online_nodes() {
        let client = st.monitor().client().clone();
        asks.spawn(async move {
            let answer = client.accounts(&node).await;
            (node, answer)
        });
    }
    let mut nodes = serde_json::Map::new();
    let (mut accounts, mut open) = (0, 0);
    while let Some(done) = asks.join_next().await {
        let Ok((node, answer)) = done else { continue };
        let view = match answer {
            Ok(a) => {
                accounts += 1;
                json!({ "accounts": a.accounts, "supply": a.supply })
            }
            Err(NodeError::Refused { status: 404, .. }) => {
                open += 1;
                json!({ "error": "this node runs the open ledger" })
            }
            Err(e) => json!({ "error": e.to_string() }),
        };
        nodes.insert(node.to_string(), view);
    }
    let ledger = match (accounts, open) {
        (0, 0) => Value::Null,
        (0, _) => json!("open"),
        _ => json!("accounts"),
    };
    Json(json!({ "ledger": ledger, "nodes": nodes }))
}

/// A field that must hold exactly two texts.
fn two_texts<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Result<[&'a str; 2], ApiError> {
    let wrong = || ApiError::invalid(format!("{key} must be a list of two texts"));
    match obj.get(key) {
        Some(Value::Array(items)) if items.len() == 2 => {
            let a = items[0].as_str().ok_or_else(wrong)?;
            let b = items[1].as_str().ok_or_else(wrong)?;
            Ok([a, b])
        }
        _ => Err(wrong()),
    }
}

/// A demo account's name or an address, as the address it names.
fn account_address(id: &str) -> Result<Address, ApiError> {
    if let Some(key) = demo_key(id) {
        return Ok(key.address());
    }
    Address::parse(id.trim()).map_err(|e| {
        ApiError::invalid(format!(
            "{id:?} is neither a demo account ({}) nor an address: {e}",
            DEMO_NAMES.join(", ")
        ))
    })
}

/// One node's answer to one transfer of the double spend.
fn spend_answer(node: &PeerAddr, answer: Result<NewTxAnswer, NodeError>) -> Value {
    match answer {
        Ok(a) => json!({ "node": node, "accepted": true, "message": a.message }),
        Err(NodeError::Refused { message, rule, .. }) => json!({
            "node": node,
            "accepted": false,
            "rule": rule.as_ref().map(|(r, _)| r),
            "conflicts_with": rule.and_then(|(_, txid)| txid),
            "message": message,
        }),
        Err(e) => json!({ "node": node, "accepted": false, "rule": null, "message": e.to_string() }),
    }
}

/// `POST /api/double-spend {"sender", "amount", "to": [a, b], "nodes": [n1, n2]}`, on an
/// accounts network: two transfers of the same coins, signed with the demo account's
/// (public) key at the same nonce, the first to `a` sent to `n1` and the second to `b` sent
/// to `n2` at the same moment. Then each is offered to the other node too, as a double
/// spender would, so that the answer holds every node's verdict on both: accepted, or
/// refused with the rule's name and the transfer it conflicts with.
async fn api_double_spend(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let obj = body_object(&body)?;
    let sender = text_field(&obj, "sender")?;
    let key = demo_key(sender).ok_or_else(|| {
        ApiError::invalid(format!(
            "the sender must be a demo account ({}): only their keys are known",
            DEMO_NAMES.join(", ")
        ))
    })?;
    let amount = validate::amount(obj.get("amount")).map_err(ApiError::invalid)?;
    let to = two_texts(&obj, "to")?;
    let recipients = [account_address(to[0])?, account_address(to[1])?];
    if recipients[0] == recipients[1] {
        return Err(ApiError::invalid("the two recipients must be different accounts"));
    }
    let named = two_texts(&obj, "nodes")?;
    let nodes = [known_node(&st, named[0])?, known_node(&st, named[1])?];
    if nodes[0] == nodes[1] {
        return Err(ApiError::invalid("the two transfers must go to two different nodes"));
    }
    let from = key.address();
    let client = st.monitor().client();
    let nonce = client.account(&nodes[0], &from.to_text()).await?.next_nonce;
    let now = now_ms();
    let txs = recipients.map(|to| Transaction::signed(&key, &to, amount, nonce, now));
    let [Some(a), Some(b)] = txs.each_ref().map(SignedTxRequest::of) else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a transfer was not signed",
        ));
    };
    let (a_first, b_first) = tokio::join!(client.submit_signed(&nodes[0], &a), client.submit_signed(&nodes[1], &b));
    let (a_cross, b_cross) = tokio::join!(client.submit_signed(&nodes[1], &a), client.submit_signed(&nodes[0], &b));
    for n in &nodes {
        st.monitor().poke(n);
    }
    let transfer = |i: usize, first: Value, cross: Value| {
        json!({
            "txid": txs[i].compute_txid(),
            "to": to[i].trim(),
            "recipient": recipients[i].to_text(),
            "node": nodes[i],
            "answers": [first, cross],
        })
    };
    Ok(Json(json!({
        "ok": true,
        "sender": sender.trim().to_lowercase(),
        "address": from.to_text(),
        "amount": amount,
        "nonce": nonce,
        "transfers": [
            transfer(0, spend_answer(&nodes[0], a_first), spend_answer(&nodes[1], a_cross)),
            transfer(1, spend_answer(&nodes[1], b_first), spend_answer(&nodes[0], b_cross)),
        ],
    })))
}

/// `POST /api/nodes`: in the demo, starts one more node.
async fn api_add_node(State(st): State<AppState>) -> ApiResult {
    let sup = st.demo()?;
    let address = sup.add().await?;
    st.monitor().watch(&address, Origin::Demo);
    Ok(Json(json!({ "ok": true, "node": address })))
}

fn node_param(
    st: &AppState,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Vec<PeerAddr>, ApiError> {
    let query = query.map_err(|_| ApiError::invalid("bad query string"))?;
    match query.get("node") {
        Some(n) => Ok(vec![known_node(st, n)?]),
        None => Ok(st.monitor().online_nodes()),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /api/tx/{txid}?node=`: a transaction's status and Merkle proof from a node.
async fn api_tx_lookup(
    State(st): State<AppState>,
    Path(txid): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    if !is_hex64(&txid) {
        return Err(ApiError::invalid("a txid is 64 hex digits"));
    }
    first_answer(&st, node_param(&st, query)?, |c, n| {
        let txid = txid.clone();
        async move { c.transaction(&n, &txid).await }
    })
    .await
}

/// `GET /api/blocks/{hash or height}?node=`: one block from a node.
async fn api_block(
    State(st): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let is_height = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
    if !is_hex64(&id) && !is_height {
        return Err(ApiError::invalid("a block is named by its hash or its height"));
    }
    first_answer(&st, node_param(&st, query)?, |c, n| {
        let id = id.clone();
        async move { c.block(&n, &id).await }
    })
    .await
}

/// Asks the nodes in turn and passes on the first answer; the last error otherwise.
async fn first_answer<T, F, Fut>(st: &AppState, nodes: Vec<PeerAddr>, ask: F) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Fn(NodeClient, PeerAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T, NodeError>>,
{
    let mut last = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no node is online");
    for n in nodes {
        match ask(st.monitor().client().clone(), n).await {
            Ok(v) => return Ok(Json(v).into_response()),
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// Whether a plain link click or typed URL (not another site) asked for a GET action.
fn same_site_navigation(st: &AppState, headers: &HeaderMap) -> bool {
    match header_str(headers, "sec-fetch-site") {
        Some(site) => matches!(site, "same-origin" | "none"),
        // Browsers without Fetch Metadata: fall back to the Referer.
        None => match (header_str(headers, "host"), header_str(headers, "referer")) {
            (Some(host), Some(referer)) => st.host_allowed(host) && referer.starts_with(&format!("http://{host}/")),
            _ => false,
        },
    }
}

fn flash(code: &str, node: Option<&str>) -> Redirect {
    let mut url = format!("/?flash={code}");
    if let Some(n) = node {
        url.push_str("&node=");
        url.push_str(n);
    }
    Redirect::to(&url)
}

async fn compat_action(st: &AppState, headers: &HeaderMap, port: &str, mine: bool) -> Redirect {
    if !same_site_navigation(st, headers) {
        return flash("blocked", None);
    }
    let Some(node) = port.parse::<u16>().ok().and_then(|p| st.monitor().find_by_port(p)) else {
        return flash("unknown_node", None);
    };
    let (ok, failed) = if mine {
        (do_mine(st, &node).await.is_ok(), "mine_fail")
    } else {
        (do_sync(st, &node).await.is_ok(), "sync_fail")
    };
    match (ok, mine) {
        (true, true) => flash("mine_ok", Some(node.as_str())),
        (true, false) => flash("sync_ok", Some(node.as_str())),
        (false, _) => flash(failed, Some(node.as_str())),
    }
}

/// The original's `GET /mine/<port>`.
async fn compat_mine(State(st): State<AppState>, headers: HeaderMap, Path(port): Path<String>) -> Redirect {
    compat_action(&st, &headers, &port, true).await
}

/// The original's `GET /resolve/<port>` (its "sync" button).
async fn compat_resolve(State(st): State<AppState>, headers: HeaderMap, Path(port): Path<String>) -> Redirect {
    compat_action(&st, &headers, &port, false).await
}

/// The original's `POST /add_transaction` form (`sender`, `recipient`, `amount`, plus the
/// page's `token`, and optionally `node`). Same-origin is already checked by [`guard`].
async fn compat_add_tx(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Redirect, ApiError> {
    let Form(form) = form.map_err(|_| ApiError::invalid("expected an HTML form body"))?;
    let token = header_str(&headers, TOKEN_HEADER).or(form.get("token").map(String::as_str));
    if !st.token_ok(token) {
        return Err(ApiError::forbidden("missing or wrong token"));
    }
    let field = |k: &str| {
        form.get(k)
            .map(String::as_str)
            .ok_or_else(|| ApiError::invalid(format!("{k} is required")))
    };
    let sender = field("sender")?;
    let recipient = field("recipient")?;
    let amount = validate::amount_text(field("amount")?).map_err(ApiError::invalid)?;
    let tx = validate::transaction(sender, recipient, amount).map_err(ApiError::invalid)?;
    let node = match form.get("node").filter(|n| !n.is_empty()) {
        Some(n) => known_node(&st, n)?,
        None => st
            .monitor()
            .online_nodes()
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "unreachable", "no node is online"))?,
    };
    match submit_tx(&st, &node, &tx).await {
        Ok(_) => Ok(flash("tx_ok", Some(node.as_str()))),
        Err(_) => Ok(flash("tx_fail", Some(node.as_str()))),
    }
}
