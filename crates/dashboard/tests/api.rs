//! Handler tests of the dashboard's own HTTP API, without a socket.

use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use chainsim_api::{
    AccountView, AccountsAnswer, PeerDirection, PeerState, PeerView, PeersAnswer, SignedTxRequest, StatusView,
};
use chainsim_dashboard::monitor::Origin;
use chainsim_dashboard::{AppState, DashboardConfig, TOKEN_HEADER, app, run_dashboard};
use chainsim_primitives::keys::demo_key;
use chainsim_primitives::{BlockHash, PeerAddr};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:8123";
const ORIGIN: &str = "http://127.0.0.1:8123";

fn state() -> AppState {
    AppState::new("127.0.0.1", 8123).expect("state")
}

/// Port 1 on loopback: nothing listens, the connection is refused.
fn dead_node() -> PeerAddr {
    PeerAddr::loopback(1)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    /// An error answer must be JSON with a textual `error`.
    fn error(&self) -> String {
        let ct = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(ct.starts_with("application/json"), "content type {ct}");
        self.json()["error"].as_str().expect("error field is text").to_owned()
    }
}

async fn send(st: &AppState, req: Request<Body>) -> Answer {
    let resp = app(st.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), 1 << 20).await.expect("body").to_vec();
    Answer { status, headers, body }
}

/// A request as the page sends it: right Host, Origin and token.
/// A plain `GET` as the page sends it (right `Host`, no body).
fn page_get(uri: impl AsRef<str>) -> Request<Body> {
    Request::get(uri.as_ref())
        .header(header::HOST, HOST)
        .body(Body::empty())
        .expect("request")
}

fn page_post(st: &AppState, uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(TOKEN_HEADER, st.token())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

#[tokio::test]
async fn index_embeds_the_token_and_forbids_foreign_scripts() {
    let st = state();
    let a = send(&st, page_get("/")).await;
    assert_eq!(a.status, StatusCode::OK);
    let html = String::from_utf8(a.body.clone()).expect("utf8");
    assert!(html.contains(st.token()));
    assert!(!html.contains("__CHAINSIM_TOKEN__"));
    let csp = a
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("csp");
    assert!(csp.contains("script-src 'self'"));
}

/// The page loads `main.js` as a module; every module any script imports is served, as
/// `text/javascript` (browsers refuse a module of another type), and unknown names are 404.
#[tokio::test]
async fn every_imported_module_is_served_as_javascript() {
    let st = state();
    let html = String::from_utf8(send(&st, page_get("/")).await.body).expect("utf8");
    assert!(html.contains(r#"<script type="module" src="/assets/main.js">"#));
    let mut todo = vec!["main.js".to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let a = send(&st, page_get(format!("/assets/{name}"))).await;
        assert_eq!(a.status, StatusCode::OK, "{name}");
        let ct = a
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(ct.starts_with("text/javascript"), "{name}: {ct}");
        let text = String::from_utf8(a.body).expect("utf8");
        for part in text.split("from './").skip(1).chain(text.split("import './").skip(1)) {
            if let Some(end) = part.find('\'') {
                todo.push(part[..end].to_owned());
            }
        }
    }
    assert!(seen.len() >= 10, "{seen:?}");
    assert_eq!(
        send(&st, page_get("/assets/nope.js")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(send(&st, page_get("/assets/app.css")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_differ_between_processes_states() {
    assert_ne!(state().token(), state().token());
    assert_eq!(state().token().len(), 32);
}

#[tokio::test]
async fn foreign_host_is_refused() {
    // DNS rebinding: a foreign name that resolves to 127.0.0.1.
    let st = state();
    let a = send(
        &st,
        Request::get("/")
            .header(header::HOST, "evil.example:8123")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    a.error();
}

#[tokio::test]
async fn localhost_is_the_same_dashboard() {
    let st = state();
    let req = Request::post("/api/tx")
        .header(header::HOST, "localhost:8123")
        .header(header::ORIGIN, "http://localhost:8123")
        .header(TOKEN_HEADER, st.token())
        .body(Body::from("{}"))
        .expect("request");
    // Past the guard: the body is what is wrong now.
    assert_eq!(send(&st, req).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn state_changes_need_same_origin_and_token() {
    let st = state();
    let body = r#"{"sender":"Alice","recipient":"Bob","amount":10,"node":"127.0.0.1:5000"}"#;
    let cases = [
        ("no origin, no token", None, None),
        ("no origin", None, Some(st.token().to_owned())),
        (
            "foreign origin",
            Some("http://evil.example"),
            Some(st.token().to_owned()),
        ),
        ("other port", Some("http://127.0.0.1:9999"), Some(st.token().to_owned())),
        ("null origin", Some("null"), Some(st.token().to_owned())),
        ("no token", Some(ORIGIN), None),
        ("wrong token", Some(ORIGIN), Some("0".repeat(32))),
        ("empty token", Some(ORIGIN), Some(String::new())),
    ];
    for uri in [
        "/api/tx",
        "/api/nodes",
        "/api/nodes/127.0.0.1:5000/mine",
        "/api/nodes/127.0.0.1:5000/sync",
        "/api/nodes/127.0.0.1:5000/stop",
        "/api/nodes/127.0.0.1:5000/start",
        "/api/link",
        "/api/partition",
        "/api/mining",
    ] {
        for (what, origin, token) in &cases {
            let mut req = Request::post(uri).header(header::HOST, HOST);
            if let Some(o) = origin {
                req = req.header(header::ORIGIN, *o);
            }
            if let Some(t) = token {
                req = req.header(TOKEN_HEADER, t.as_str());
            }
            let a = send(&st, req.body(Body::from(body)).expect("request")).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{uri}: {what}");
            a.error();
        }
    }
}

#[tokio::test]
async fn bad_transactions_answer_400_json() {
    let st = state();
    st.monitor().watch(&dead_node(), Origin::Seed);
    let good = json!({"sender": "Alice", "recipient": "Bob", "amount": 10, "node": "127.0.0.1:1"});
    let mut cases: Vec<(String, String)> = Vec::new();
    for (field, value) in [
        ("sender", json!("")),
        ("sender", json!("   ")),
        ("sender", json!(null)),
        ("sender", json!(5)),
        ("sender", json!("0")),
        ("sender", json!("x".repeat(65))),
        ("sender", json!("tab\there")),
        ("recipient", json!("")),
        ("amount", json!(0)),
        ("amount", json!(-5)),
        ("amount", json!(1.5)),
        ("amount", json!("abc")),
        ("amount", json!("1.5")),
        ("amount", json!("")),
        ("amount", json!(null)),
        ("amount", json!([10])),
        ("amount", json!("100000000000000000000")),
    ] {
        let mut v = good.clone();
        v[field] = value.clone();
        cases.push((format!("{field}={value}"), v.to_string()));
    }
    for field in ["sender", "recipient", "amount", "node"] {
        let mut v = good.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove(field);
        }
        cases.push((format!("missing {field}"), v.to_string()));
    }
    cases.push(("not JSON".into(), "sender=Alice".into()));
    cases.push(("empty body".into(), String::new()));
    cases.push(("array".into(), "[1,2]".into()));
    for (what, body) in cases {
        let a = send(&st, page_post(&st, "/api/tx", &body)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}");
        assert!(!a.error().is_empty(), "{what}");
    }
}

/// `/api/tamper` checks its input before asking any node: a missing or unknown node, a
/// malformed hash or an unknown field answer 4xx JSON.
#[tokio::test]
async fn bad_tamper_requests_answer_4xx_json() {
    let st = state();
    st.monitor().watch(&dead_node(), Origin::Seed);
    let hash = "ab".repeat(32);
    let cases = [
        (format!(r#"{{"hash":"{hash}"}}"#), StatusCode::BAD_REQUEST),
        (
            format!(r#"{{"node":"127.0.0.1:5999","hash":"{hash}"}}"#),
            StatusCode::NOT_FOUND,
        ),
        (
            format!(r#"{{"node":"{}","hash":"xyz"}}"#, dead_node()),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(r#"{{"node":"{}","hash":"{hash}","amount":1}}"#, dead_node()),
            StatusCode::BAD_REQUEST,
        ),
        ("[]".to_owned(), StatusCode::BAD_REQUEST),
    ];
    for (body, want) in cases {
        let a = send(&st, page_post(&st, "/api/tamper", &body)).await;
        assert_eq!(a.status, want, "{body}");
        assert!(!a.error().is_empty(), "{body}");
    }
}

#[tokio::test]
async fn unknown_node_answers_404_json() {
    let st = state();
    let body = r#"{"sender":"Alice","recipient":"Bob","amount":10,"node":"127.0.0.1:5999"}"#;
    let a = send(&st, page_post(&st, "/api/tx", body)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.error().contains("127.0.0.1:5999"));
    for uri in [
        "/api/nodes/127.0.0.1:5999/mine",
        "/api/nodes/127.0.0.1:5999/sync",
        "/api/nodes/not-an-address/mine",
        "/api/nodes/%3Cscript%3E/mine",
    ] {
        let a = send(&st, page_post(&st, uri, "")).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        a.error();
    }
}

#[tokio::test]
async fn a_dead_node_fails_fast_with_a_clear_message() {
    let st = state();
    // Port 1 on loopback: nothing listens, the connection is refused.
    st.monitor().watch(&dead_node(), Origin::Seed);
    let started = Instant::now();
    let body = r#"{"sender":"Alice","recipient":"Bob","amount":10,"node":"127.0.0.1:1"}"#;
    let a = send(&st, page_post(&st, "/api/tx", body)).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    assert!(a.error().contains("not reachable"));
    assert_eq!(a.json()["code"], "unreachable");
    let a = send(&st, page_post(&st, "/api/nodes/127.0.0.1:1/mine", "")).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    a.error();
    // Generous: only proves that nothing waits for the long mining timeout.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn demo_actions_outside_the_demo_answer_409() {
    let st = state();
    st.monitor().watch(&dead_node(), Origin::Seed);
    for uri in [
        "/api/nodes",
        "/api/nodes/127.0.0.1:1/stop",
        "/api/nodes/127.0.0.1:1/start",
    ] {
        let a = send(&st, page_post(&st, uri, "")).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{uri}");
        a.error();
    }
    let a = send(&st, page_post(&st, "/api/nodes/127.0.0.1:1/explode", "")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let st = state();
    let a = send(&st, page_get("/nope")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    a.error();
    let a = send(&st, page_get("/api/tx")).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    a.error();
    let a = send(&st, page_get("/api/tx/xyz")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    a.error();
}

#[tokio::test]
async fn original_get_routes_do_nothing_for_other_sites() {
    let st = state();
    st.monitor().watch(&dead_node(), Origin::Seed);
    for uri in ["/mine/1", "/resolve/1"] {
        let a = send(
            &st,
            Request::get(uri)
                .header(header::HOST, HOST)
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert!(a.status.is_redirection(), "{uri}");
        let to = a.headers.get(header::LOCATION).and_then(|v| v.to_str().ok());
        assert_eq!(to, Some("/?flash=blocked"), "{uri}");
    }
    // Same origin: it acts (and reports that the dead node failed).
    let a = send(
        &st,
        Request::get("/mine/1")
            .header(header::HOST, HOST)
            .header("sec-fetch-site", "same-origin")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    let to = a.headers.get(header::LOCATION).and_then(|v| v.to_str().ok());
    assert_eq!(to, Some("/?flash=mine_fail&node=127.0.0.1:1"));
}

#[tokio::test]
async fn original_form_route_needs_same_origin_and_token() {
    let st = state();
    let form = "sender=Alice&recipient=Bob&amount=10";
    let post = |origin: Option<&str>, body: String| {
        let mut r = Request::post("/add_transaction")
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(Body::from(body)).expect("request")
    };
    let a = send(&st, post(Some("http://evil.example"), form.to_owned())).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(&st, post(None, format!("{form}&token={}", st.token()))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(&st, post(Some(ORIGIN), form.to_owned())).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    a.error();
    for bad in [
        "sender=&recipient=Bob&amount=10",
        "sender=Alice&recipient=Bob&amount=abc",
        "sender=Alice&recipient=Bob&amount=0",
        "sender=Alice&recipient=Bob",
    ] {
        let a = send(&st, post(Some(ORIGIN), format!("{bad}&token={}", st.token()))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        a.error();
    }
}

#[tokio::test]
async fn state_is_json_with_the_watched_nodes() {
    let st = state();
    st.monitor().watch(&dead_node(), Origin::Seed);
    let a = send(&st, page_get("/api/state")).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["demo"], false);
    assert_eq!(v["nodes"][0]["address"], "127.0.0.1:1");
    assert_eq!(v["nodes"][0]["online"], false);
}

/// A stand-in node answering `GET /status` and `GET /peers` (connected to `peers`) in the
/// API's shapes; every other route is a 404, which the dashboard survives.
async fn fake_node(listener: TcpListener, peers: Vec<u16>) {
    fake_node_with(listener, peers, Router::new()).await;
}

/// [`fake_node`] plus the routes of `more`.
async fn fake_node_with(listener: TcpListener, peers: Vec<u16>, more: Router) {
    let port = listener.local_addr().expect("address").port();
    let status = StatusView {
        address: PeerAddr::loopback(port),
        blocks_mined: 0,
        deepest_reorg: 0,
        genesis: BlockHash::ZERO,
        height: 0,
        host: "127.0.0.1".into(),
        known_peers: peers.len() as u64,
        length: 1,
        miner: "fake".into(),
        mining: false,
        mining_schedule: Default::default(),
        network: "fake".into(),
        orphans: 0,
        peers: peers.len() as u64,
        pending: 0,
        port,
        propagation_median_ms: None,
        reorgs: 0,
        side_blocks: 0,
        stale_blocks: 0,
        syncing: false,
        tip: BlockHash::ZERO,
        tip_time: 0,
        version: "0".into(),
        work: "1".into(),
    };
    let peers = PeersAnswer {
        peers: peers
            .into_iter()
            .map(|p| PeerView {
                address: PeerAddr::loopback(p),
                direction: PeerDirection::Outbound,
                failures: 0,
                height: 0,
                last_seen: 0,
                link: Default::default(),
                pinned: false,
                score: 0,
                state: PeerState::Connected,
            })
            .collect(),
    };
    let app = Router::new()
        .route("/status", get(move || async move { Json(status.clone()) }))
        .route("/peers", get(move || async move { Json(peers.clone()) }))
        .merge(more);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// `chainsim dashboard --node localhost:P` watches node P once: its peers name it
/// `127.0.0.1:P`, and both spellings parse to the same `PeerAddr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_named_localhost_is_listed_once() {
    let a = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let b = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (pa, pb) = (a.local_addr().expect("a").port(), b.local_addr().expect("b").port());
    fake_node(a, vec![pb]).await;
    fake_node(b, vec![pa]).await;

    // A free port for the control room (taken, then released for it).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let cfg = DashboardConfig {
        port,
        nodes: vec![format!("localhost:{pa}")],
        ..DashboardConfig::default()
    };
    let dashboard = tokio::spawn(run_dashboard(cfg, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let url = format!("http://127.0.0.1:{port}/api/state");
    let addresses = |state: &Value| -> Vec<String> {
        state["nodes"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter_map(|n| n["address"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let b_name = format!("127.0.0.1:{pb}");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait until B is watched and its peer list, naming A as 127.0.0.1, has been read.
    loop {
        assert!(Instant::now() < deadline, "node B was not discovered through A");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(resp) = client.get(&url).send().await else {
            continue;
        };
        let state: Value = resp.json().await.expect("state is JSON");
        let b_read = state["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["address"] == b_name.as_str() && n["peers"].as_array().is_some_and(|p| !p.is_empty()));
        if b_read {
            break;
        }
    }
    // One more poll round for a duplicate to show up, if there were one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let state: Value = client
        .get(&url)
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("JSON");
    let mut want = vec![format!("127.0.0.1:{pa}"), b_name];
    want.sort();
    assert_eq!(addresses(&state), want, "{state}");

    let _ = stop.send(());
    dashboard.await.expect("dashboard task").expect("dashboard ran");
}

/// A node that answers far more than any real answer: the dashboard reads no further than
/// its limit, whether the node declares the length or streams without one, and says so.
#[tokio::test]
async fn oversized_node_answers_are_not_read() {
    use chainsim_dashboard::client::{MAX_ANSWER, NodeClient, NodeError};
    let huge = MAX_ANSWER + 1024;
    let app = Router::new()
        .route("/status", get(move || async move { vec![b' '; huge] }))
        .route(
            "/peers",
            get(move || async move {
                let chunks = (0..(huge / 65_536 + 1)).map(|_| Ok::<_, std::io::Error>(vec![b' '; 65_536]));
                Body::from_stream(tokio_stream::iter(chunks))
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = PeerAddr::loopback(listener.local_addr().unwrap().port());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = NodeClient::new().unwrap();
    let declared = client.status(&addr).await.unwrap_err();
    assert!(matches!(declared, NodeError::TooLarge(_)), "{declared}");
    let streamed = client.peers(&addr).await.unwrap_err();
    assert!(matches!(streamed, NodeError::TooLarge(_)), "{streamed}");
    assert!(streamed.to_string().contains("limit"), "{streamed}");
    server.abort();
}

#[tokio::test]
async fn bad_double_spends_answer_4xx_json() {
    let st = state();
    st.monitor().watch(&dead_node(), Origin::Seed);
    st.monitor().watch(&PeerAddr::loopback(2), Origin::Seed);
    let nodes = r#"["127.0.0.1:1", "127.0.0.1:2"]"#;
    let cases = [
        (
            format!(r#"{{"amount": 5, "to": ["bob", "carol"], "nodes": {nodes}}}"#),
            400,
        ),
        (
            format!(r#"{{"sender": "mallory", "amount": 5, "to": ["bob", "carol"], "nodes": {nodes}}}"#),
            400,
        ),
        (
            format!(r#"{{"sender": "alice", "amount": 0, "to": ["bob", "carol"], "nodes": {nodes}}}"#),
            400,
        ),
        (
            format!(r#"{{"sender": "alice", "amount": 5, "to": ["bob"], "nodes": {nodes}}}"#),
            400,
        ),
        (
            format!(r#"{{"sender": "alice", "amount": 5, "to": ["bob", "Bob"], "nodes": {nodes}}}"#),
            400,
        ),
        (
            format!(r#"{{"sender": "alice", "amount": 5, "to": ["bob", "cs1nope"], "nodes": {nodes}}}"#),
            400,
        ),
        (
            r#"{"sender": "alice", "amount": 5, "to": ["bob", "carol"], "nodes": "127.0.0.1:1"}"#.to_owned(),
            400,
        ),
        (
            r#"{"sender": "alice", "amount": 5, "to": ["bob", "carol"], "nodes": ["127.0.0.1:1", "127.0.0.1:1"]}"#
                .to_owned(),
            400,
        ),
        (
            r#"{"sender": "alice", "amount": 5, "to": ["bob", "carol"], "nodes": ["127.0.0.1:1", "127.0.0.1:9"]}"#
                .to_owned(),
            404,
        ),
        ("[1, 2]".to_owned(), 400),
    ];
    for (body, want) in cases {
        let a = send(&st, page_post(&st, "/api/double-spend", &body)).await;
        assert_eq!(a.status.as_u16(), want, "{body}: {}", String::from_utf8_lossy(&a.body));
        a.error();
    }
}

/// A stand-in accounts node: alice's next nonce is 3, and of the signed transfers it is
/// offered the first is taken and every later one refused as a conflict with it.
fn accounts_routes(seen: std::sync::Arc<std::sync::Mutex<Vec<SignedTxRequest>>>) -> Router {
    use axum::routing::post;
    let view = |name: &str| {
        let key = demo_key(name).expect("demo account");
        AccountView {
            address: key.address().to_text(),
            balance: 1_000,
            name: Some(name.to_owned()),
            next_nonce: 3,
            nonce: 3,
            pending_balance: 1_000,
        }
    };
    let one = view("alice");
    let all = AccountsAnswer {
        accounts: vec![view("alice"), view("bob")],
        ledger: "accounts".into(),
        supply: 2_000,
    };
    Router::new()
        .route("/accounts", get(move || async move { Json(all.clone()) }))
        .route("/accounts/{id}", get(move || async move { Json(one.clone()) }))
        .route(
            "/transactions/signed",
            post(move |Json(req): Json<SignedTxRequest>| async move {
                let txid = req.clone().into_transaction().compute_txid();
                let mut seen = seen.lock().expect("lock");
                let first = seen.first().map(|f| f.clone().into_transaction().compute_txid());
                seen.push(req);
                match first {
                    None => (
                        StatusCode::CREATED,
                        Json(json!({ "message": "transaction accepted and sent to the network", "txid": txid })),
                    ),
                    Some(existing) => (
                        StatusCode::CONFLICT,
                        Json(json!({
                            "error": format!("refused (conflict-in-mempool): nonce 3 of cs1x is taken by pending transaction {existing}"),
                            "rule": "conflict-in-mempool",
                            "conflicts_with": existing,
                        })),
                    ),
                }
            }),
        )
}

/// The double spend signs two transfers of one sender at one nonce, sends each to its own
/// node, offers each to the other node too, and reports every verdict with the rule named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_spend_sends_two_transfers_at_one_nonce() {
    let mut logs = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("address").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        fake_node_with(l, vec![], accounts_routes(seen.clone())).await;
        logs.push(seen);
        addrs.push(PeerAddr::loopback(port));
    }
    let st = state();
    for a in &addrs {
        st.monitor().watch(a, Origin::Seed);
    }
    let body = json!({ "sender": "alice", "amount": 40, "to": ["bob", "carol"], "nodes": [addrs[0], addrs[1]] });
    let a = send(&st, page_post(&st, "/api/double-spend", &body.to_string())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    let v = a.json();
    assert_eq!(v["nonce"], 3);
    let alice = demo_key("alice").expect("alice").address().to_text();
    assert_eq!(v["address"], alice.as_str());
    let transfers = v["transfers"].as_array().expect("transfers");
    assert_eq!(transfers.len(), 2);
    for (i, t) in transfers.iter().enumerate() {
        let other = &transfers[1 - i];
        assert_eq!(t["node"], addrs[i].as_str());
        assert_eq!(t["answers"][0]["accepted"], true, "{t}");
        assert_eq!(t["answers"][1]["accepted"], false, "{t}");
        assert_eq!(t["answers"][1]["node"], addrs[1 - i].as_str());
        assert_eq!(t["answers"][1]["rule"], "conflict-in-mempool");
        assert_eq!(t["answers"][1]["conflicts_with"], other["txid"]);
    }
    // Each node saw its own transfer first, then the other: same sender and nonce, signed.
    for (i, log) in logs.iter().enumerate() {
        let seen = log.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].recipient,
            transfers[i]["recipient"].as_str().expect("recipient")
        );
        for req in seen {
            assert_eq!(req.sender, alice);
            assert_eq!(req.nonce, 3);
            assert_eq!(req.amount, 40);
            assert!(req.into_transaction().verify_signature());
        }
    }

    // GET /api/accounts lists both nodes' accounts once the monitor has seen them online.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the nodes never came online");
        if st.monitor().online_nodes().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = send(&st, page_get("/api/accounts")).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["ledger"], "accounts");
    for addr in &addrs {
        assert_eq!(v["nodes"][addr.as_str()]["accounts"][0]["name"], "alice", "{v}");
        assert_eq!(v["nodes"][addr.as_str()]["accounts"][0]["balance"], 1_000);
    }
}

/// Nodes of the open ledger answer `/accounts` with 404: the page hides its Wallets panel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_of_an_open_network_say_open() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = PeerAddr::loopback(l.local_addr().expect("address").port());
    fake_node(l, vec![]).await;
    let st = state();
    st.monitor().watch(&addr, Origin::Seed);
    let deadline = Instant::now() + Duration::from_secs(20);
    while st.monitor().online_nodes().is_empty() {
        assert!(Instant::now() < deadline, "the node never came online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = send(&st, page_get("/api/accounts")).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["ledger"], "open", "{v}");
    assert!(v["nodes"][addr.as_str()]["error"].is_string(), "{v}");
}
