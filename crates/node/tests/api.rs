//! The HTTP API's handlers, driven in-process without sockets: every route's happy path and
//! shape (docs/API.md), and every kind of bad input answering a clear 4xx JSON error that
//! changes nothing (issue 2 §4).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chainsim_core::{ChainParams, MemoryStore, Node, NodeConfig};
use chainsim_node::api::{AppState, NodeInfo, app};
use chainsim_node::driver::{self, DriverConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tower::ServiceExt;

/// A node with an in-memory store behind the real router. Dropping it stops the driver.
struct TestApi {
    app: Router,
    _stop: watch::Sender<bool>,
}

impl TestApi {
    fn new() -> Self {
        Self::with_config(|_| {})
    }

    fn with_config(tweak: impl FnOnce(&mut NodeConfig)) -> Self {
        Self::build(ChainParams::default_network(), tweak)
    }

    /// On the easy test network, where mining a block takes about 256 hashes.
    fn testnet() -> Self {
        Self::build(ChainParams::testnet(), |_| {})
    }

    fn build(params: ChainParams, tweak: impl FnOnce(&mut NodeConfig)) -> Self {
        let mut config = NodeConfig::new("127.0.0.1:1".parse().unwrap(), "tester");
        tweak(&mut config);
        let node = Node::new(Arc::new(params), config);
        let (stop, stop_rx) = watch::channel(false);
        let (handle, _task) = driver::spawn(
            node,
            MemoryStore::default(),
            DriverConfig {
                mine_threads: 1,
                port: 1,
                link_defaults: chainsim_core::LinkConditions::PERFECT,
            },
            stop_rx,
        );
        // No peers and no initial sync here: open the public API at once.
        handle.shared.ready.send_replace(true);
        let app = app(AppState {
            handle,
            info: Arc::new(NodeInfo::new("127.0.0.1", 1, &[])),
        });
        Self { app, _stop: stop }
    }

    /// Sends one request and returns the status and the body (JSON when it parses, else a
    /// JSON string holding the text).
    async fn call(&self, method: Method, uri: &str, body: Option<Vec<u8>>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Sends one request with extra headers (what a browser adds); returns the status and
    /// the JSON body.
    async fn call_with(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = if body.is_empty() {
            Body::empty()
        } else {
            Body::from(body.to_vec())
        };
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// GET that answers the body's pieces as they were sent, and the content type.
    async fn get_chunks(&self, uri: &str) -> (StatusCode, Option<String>, Vec<Vec<u8>>) {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let mut chunks = Vec::new();
        let mut stream = resp.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk.unwrap().to_vec());
        }
        (status, content_type, chunks)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(body.to_string().into_bytes())).await
    }

    async fn post_raw(&self, uri: &str, body: &[u8]) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(body.to_vec())).await
    }

    /// GET that must answer 200; returns the JSON.
    async fn ok(&self, uri: &str) -> Value {
        let (status, v) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "GET {uri}: {v}");
        v
    }

    async fn pending(&self) -> Vec<Value> {
        self.ok("/transactions/pending").await["transactions"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn length(&self) -> u64 {
        self.ok("/chain").await["length"].as_u64().unwrap()
    }

    async fn new_tx(&self, body: Value) -> (StatusCode, Value) {
        self.post("/transactions/new", body).await
    }

    async fn mine(&self) -> Value {
        let (status, v) = self.call(Method::POST, "/mine", None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["block"].clone()
    }
}

/// Asserts a 4xx with a JSON body `{"error": "<non-empty text>"}`.
#[track_caller]
fn assert_client_error(what: &str, status: StatusCode, body: &Value) {
    assert!(status.is_client_error(), "{what}: expected a 4xx, got {status} {body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        !msg.is_empty(),
        "{what}: error body must be {{\"error\": ...}}, got {body}"
    );
}

fn is_hex64(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn unhex32(s: &str) -> [u8; 32] {
    assert_eq!(s.len(), 64, "{s}");
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Verifies a Merkle proof exactly as docs/API.md tells a client to, with plain SHA-256
/// and none of chainsim's code.
fn verify_proof(txid: &str, proof: &Value) -> bool {
    let mut h = unhex32(txid);
    let mut index = proof["index"].as_u64().unwrap();
    for s in proof["siblings"].as_array().unwrap() {
        let s = unhex32(s.as_str().unwrap());
        let mut hasher = Sha256::new();
        hasher.update([0xffu8]);
        if index.is_multiple_of(2) {
            hasher.update(h);
            hasher.update(s);
        } else {
            hasher.update(s);
            hasher.update(h);
        }
        h = hasher.finalize().into();
        index /= 2;
    }
    h == unhex32(proof["root"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_transaction_then_duplicate_answers_201_then_200() {
    let api = TestApi::new();
    let body = json!({"sender": "Alice", "recipient": "Bob", "amount": 10, "time": 1_700_000_000.25});
    let (status, first) = api.new_tx(body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(is_hex64(&first["txid"]), "{first}");
    assert!(first["message"].is_string());

    let (status, again) = api.new_tx(body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["txid"], first["txid"]);
    assert!(again["message"].as_str().unwrap().contains("already exists"), "{again}");

    // The original's `time` in float seconds becomes milliseconds.
    let pending = api.pending().await;
    assert_eq!(pending.len(), 1);
    let tx = &pending[0];
    assert_eq!(tx["txid"], first["txid"]);
    assert_eq!(tx["sender"], "Alice");
    assert_eq!(tx["recipient"], "Bob");
    assert_eq!(tx["amount"], 10);
    assert_eq!(tx["timestamp"], 1_700_000_000_250u64);
    assert_eq!(tx["version"], 1);

    // Without `time` the node sets it; a different time is a different transaction.
    let (status, v) = api
        .new_tx(json!({"sender": "Alice", "recipient": "Bob", "amount": 10}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_ne!(v["txid"], first["txid"]);
    assert!(api.pending().await[1]["timestamp"].as_u64().unwrap() > 1_700_000_000_000);

    // Old clients: an amount as a whole float or as a numeric string is accepted.
    for amount in [json!(7.0), json!("8")] {
        let (status, v) = api
            .new_tx(json!({"sender": "Carol", "recipient": "Dave", "amount": amount, "time": 1_700_000_001}))
            .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{amount}: {status} {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_answer_4xx_and_change_nothing() {
    let api = TestApi::new();
    // One good transaction first, so "unchanged" is checked against a non-empty mempool.
    let (status, v) = api
        .new_tx(json!({"sender": "Alice", "recipient": "Bob", "amount": 1, "time": 1_700_000_000}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let pending_before = api.pending().await;
    let length_before = api.length().await;

    let long = "x".repeat(65);
    // 33 two-byte characters: 33 characters but 66 bytes, over the 64-byte limit.
    let long_utf8 = "é".repeat(33);
    let ok = |f: &dyn Fn(&mut Value)| {
        let mut v = json!({"sender": "Alice", "recipient": "Bob", "amount": 5, "time": 1_700_000_000});
        f(&mut v);
        v.to_string().into_bytes()
    };
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", b"".to_vec()),
        ("whitespace body", b"  \n ".to_vec()),
        ("malformed JSON", br#"{"sender": "Alice", "recipient""#.to_vec()),
        ("not JSON", b"sender=Alice&recipient=Bob&amount=10".to_vec()),
        (
            "invalid UTF-8",
            b"{\"sender\": \"\xff\xfe\", \"recipient\": \"Bob\", \"amount\": 1}".to_vec(),
        ),
        ("JSON array", b"[1, 2, 3]".to_vec()),
        // serde would fill the fields by position from an array: must still be refused.
        ("fields as an array", br#"["Mallory", "Bob", 10, 1700000000]"#.to_vec()),
        ("JSON null", b"null".to_vec()),
        ("JSON string", b"\"Alice\"".to_vec()),
        ("deeply nested", deep.into_bytes()),
        (
            "missing sender",
            ok(&|v| {
                v.as_object_mut().unwrap().remove("sender");
            }),
        ),
        (
            "missing recipient",
            ok(&|v| {
                v.as_object_mut().unwrap().remove("recipient");
            }),
        ),
        (
            "missing amount",
            ok(&|v| {
                v.as_object_mut().unwrap().remove("amount");
            }),
        ),
        ("null sender", ok(&|v| v["sender"] = Value::Null)),
        ("numeric sender", ok(&|v| v["sender"] = json!(5))),
        ("boolean recipient", ok(&|v| v["recipient"] = json!(true))),
        ("object recipient", ok(&|v| v["recipient"] = json!({"name": "Bob"}))),
        ("text amount", ok(&|v| v["amount"] = json!("ten"))),
        ("array amount", ok(&|v| v["amount"] = json!([10]))),
        ("object amount", ok(&|v| v["amount"] = json!({"value": 10}))),
        ("boolean amount", ok(&|v| v["amount"] = json!(true))),
        ("zero amount", ok(&|v| v["amount"] = json!(0))),
        ("zero amount as text", ok(&|v| v["amount"] = json!("0"))),
        ("negative amount", ok(&|v| v["amount"] = json!(-5))),
        ("negative float amount", ok(&|v| v["amount"] = json!(-0.5))),
        ("fractional amount", ok(&|v| v["amount"] = json!(1.5))),
        ("tiny fractional amount", ok(&|v| v["amount"] = json!(0.0001))),
        ("huge amount 1e30", ok(&|v| v["amount"] = json!(1e30))),
        (
            "amount 2^64",
            b"{\"sender\":\"Alice\",\"recipient\":\"Bob\",\"amount\":18446744073709551616}".to_vec(),
        ),
        (
            "amount -2^63",
            b"{\"sender\":\"Alice\",\"recipient\":\"Bob\",\"amount\":-9223372036854775808}".to_vec(),
        ),
        ("empty sender", ok(&|v| v["sender"] = json!(""))),
        ("blank recipient", ok(&|v| v["recipient"] = json!("   "))),
        ("over-long sender", ok(&|v| v["sender"] = json!(long))),
        (
            "over-long recipient in bytes",
            ok(&|v| v["recipient"] = json!(long_utf8)),
        ),
        ("control character", ok(&|v| v["sender"] = json!("Al\nice"))),
        ("NUL character", ok(&|v| v["recipient"] = json!("Bo\u{0}b"))),
        ("coinbase sender", ok(&|v| v["sender"] = json!("0"))),
        ("text time", ok(&|v| v["time"] = json!("yesterday"))),
        ("negative time", ok(&|v| v["time"] = json!(-1))),
        ("absurd time", ok(&|v| v["time"] = json!(1e300))),
    ];
    for (what, body) in cases {
        let (status, v) = api.post_raw("/transactions/new", &body).await;
        assert_client_error(what, status, &v);
    }

    // Above 1 MiB: 413, also as JSON.
    let big = format!(
        r#"{{"sender": "Alice", "recipient": "Bob", "amount": 1, "pad": "{}"}}"#,
        "a".repeat(1024 * 1024 + 10)
    );
    let (status, v) = api.post_raw("/transactions/new", big.as_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_client_error("oversized body", status, &v);

    assert_eq!(api.pending().await, pending_before, "bad input changed the mempool");
    assert_eq!(api.length().await, length_before, "bad input changed the chain");
}

/// Names are trimmed by the one rule in primitives (`Transaction::transfer`), so a padded
/// name is the same transaction as the plain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_trimmed_before_they_become_a_transaction() {
    let api = TestApi::new();
    let (s, padded) = api
        .new_tx(json!({"sender": "  Alice ", "recipient": "Bob\t", "amount": 10, "time": 1_700_000_000}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{padded}");
    let pending = api.pending().await;
    assert_eq!(
        (pending[0]["sender"].as_str(), pending[0]["recipient"].as_str()),
        (Some("Alice"), Some("Bob"))
    );
    let (s, plain) = api
        .new_tx(json!({"sender": "Alice", "recipient": "Bob", "amount": 10, "time": 1_700_000_000}))
        .await;
    assert_eq!(s, StatusCode::OK, "the same transaction: {plain}");
    assert_eq!(plain["txid"], padded["txid"]);
}

/// A request a page could make: method, route, headers, body, and the expected refusal.
type Case<'a> = (Method, &'a str, Vec<(&'a str, &'a str)>, &'a [u8], StatusCode);

/// What a web page can make a browser send to a node is refused, and changes nothing; what
/// scripts send (no `Origin`, JSON bodies, the original's `GET /mine`) still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_cannot_drive_a_node() {
    let api = TestApi::new();
    let tx = br#"{"sender":"Alice","recipient":"Bob","amount":10}"#;
    let json = ("content-type", "application/json");
    let evil = ("origin", "http://evil.example");
    let refused: Vec<Case> = vec![
        // A plain HTML form (`enctype="text/plain"`), cross-site.
        (
            Method::POST,
            "/transactions/new",
            vec![("content-type", "text/plain"), evil],
            tx,
            StatusCode::FORBIDDEN,
        ),
        // The same without Origin: still not JSON.
        (
            Method::POST,
            "/transactions/new",
            vec![("content-type", "text/plain")],
            tx,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        // fetch() from another site with a JSON body.
        (
            Method::POST,
            "/transactions/new",
            vec![json, evil],
            tx,
            StatusCode::FORBIDDEN,
        ),
        // <img src="http://127.0.0.1:5000/mine">.
        (
            Method::GET,
            "/mine",
            vec![("sec-fetch-site", "cross-site"), ("sec-fetch-dest", "image")],
            b"",
            StatusCode::FORBIDDEN,
        ),
        (Method::POST, "/mine", vec![evil], b"", StatusCode::FORBIDDEN),
        (
            Method::POST,
            "/peers/block",
            vec![json, evil],
            br#"{"peer":"127.0.0.1:5001"}"#,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            "/nodes/register",
            vec![json, ("origin", "null")],
            br#"{"nodes":["127.0.0.1:7"]}"#,
            StatusCode::FORBIDDEN,
        ),
        // DNS rebinding: a page on evil.example resolving to 127.0.0.1 reads answers too.
        (
            Method::GET,
            "/chain",
            vec![("host", "evil.example:5000")],
            b"",
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            "/status",
            vec![("host", "rebind.evil.example")],
            b"",
            StatusCode::FORBIDDEN,
        ),
    ];
    for (method, uri, headers, body, want) in refused {
        let (status, v) = api.call_with(method.clone(), uri, &headers, body).await;
        assert_eq!(status, want, "{method} {uri} {headers:?}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    assert!(api.pending().await.is_empty(), "no transaction was created");
    assert_eq!(api.length().await, 1, "nothing was mined");
    // Scripts still work: the original's clients send no Origin.
    let (status, v) = api
        .call_with(
            Method::POST,
            "/transactions/new",
            &[json, ("host", "localhost:5000")],
            tx,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = api
        .call_with(Method::GET, "/mine", &[("host", "127.0.0.1:5000")], b"")
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _) = api
        .call_with(
            Method::GET,
            "/status",
            &[("host", "[::1]:5000"), ("sec-fetch-site", "cross-site")],
            b"",
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "reading is allowed cross-site when the Host is the node's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_path_rejections_answer_json() {
    let api = TestApi::new();
    for uri in [
        "/blocks?from=1&from=2",
        "/blocks?limit=%FF",
        "/blocks/%FF%FE",
        "/transactions/%C0%AF",
    ] {
        let (status, v) = api.call(Method::GET, uri, None).await;
        assert!(status.is_client_error(), "{uri}: {status} {v}");
        assert_client_error(uri, status, &v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_invisible_or_direction_changing_characters_are_refused() {
    let api = TestApi::new();
    for (sender, code) in [
        ("ali\u{202E}ecila", "U+202E"),
        ("\u{200B}Alice", "U+200B"),
        ("Alice\u{FEFF}", "U+FEFF"),
    ] {
        let (s, v) = api
            .new_tx(json!({"sender": sender, "recipient": "Bob", "amount": 10}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(code) && error.contains("sender"), "{error}");
    }
    assert!(api.pending().await.is_empty(), "nothing was taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_ids_on_other_routes_answer_4xx() {
    let api = TestApi::new();
    let mined = api.mine().await;
    let chain_before = api.ok("/chain").await;
    let peers_before = api.ok("/peers").await;

    let hundred_and_one: Vec<String> = (1..=101).map(|i| format!("127.0.0.1:{}", 20_000 + i)).collect();
    let register: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("malformed", b"{\"nodes\": [".to_vec()),
        ("no nodes", b"{}".to_vec()),
        ("nodes not a list", br#"{"nodes": "127.0.0.1:5001"}"#.to_vec()),
        ("empty list", br#"{"nodes": []}"#.to_vec()),
        ("number in list", br#"{"nodes": [5001]}"#.to_vec()),
        ("not an address", br#"{"nodes": ["nonsense"]}"#.to_vec()),
        ("port zero", br#"{"nodes": ["127.0.0.1:0"]}"#.to_vec()),
        ("port too big", br#"{"nodes": ["127.0.0.1:70000"]}"#.to_vec()),
        ("bad host", br#"{"nodes": ["exa mple:80"]}"#.to_vec()),
        ("one bad among good", br#"{"nodes": ["127.0.0.1:5001", "x"]}"#.to_vec()),
        ("over 100", json!({ "nodes": hundred_and_one }).to_string().into_bytes()),
    ];
    for (what, body) in register {
        let (status, v) = api.post_raw("/nodes/register", &body).await;
        assert_client_error(&format!("/nodes/register {what}"), status, &v);
    }

    for route in ["/peers/block", "/peers/unblock"] {
        let bodies: Vec<(&str, &[u8])> = vec![
            ("empty", b""),
            ("malformed", b"{\"peer\""),
            ("no peer", b"{}"),
            ("numeric peer", br#"{"peer": 5001}"#),
            ("not an address", br#"{"peer": "nowhere"}"#),
            ("list", br#"["127.0.0.1:5001"]"#),
        ];
        for (what, body) in bodies {
            let (status, v) = api.post_raw(route, body).await;
            assert_client_error(&format!("{route} {what}"), status, &v);
        }
    }

    // Blocks handed in by hand: shape errors, then well-formed blocks that break rules.
    let mut bad_pow = mined.clone();
    bad_pow["nonce"] = json!(mined["nonce"].as_u64().unwrap() ^ 0x5555);
    bad_pow["height"] = json!(1);
    let mut bad_bits = mined.clone();
    bad_bits["bits"] = json!("zz");
    let mut bad_hash = mined.clone();
    bad_hash["previous_hash"] = json!("xyz");
    let mut orphan = mined.clone();
    orphan["previous_hash"] = json!("11".repeat(32));
    let mut wrong_types = mined.clone();
    wrong_types["transactions"] = json!("none");
    let receive: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("malformed", b"{\"hash\": ".to_vec()),
        ("empty object", b"{}".to_vec()),
        ("wrong types", wrong_types.to_string().into_bytes()),
        ("bad bits", bad_bits.to_string().into_bytes()),
        ("bad previous hash", bad_hash.to_string().into_bytes()),
        ("bad proof of work", bad_pow.to_string().into_bytes()),
        ("unknown parent", orphan.to_string().into_bytes()),
    ];
    for (what, body) in receive {
        let (status, v) = api.post_raw("/blocks/receive", &body).await;
        assert_client_error(&format!("/blocks/receive {what}"), status, &v);
    }
    let (status, v) = api.post("/blocks/receive", mined.clone()).await;
    assert_eq!(status, StatusCode::OK, "a known block is not an error: {v}");

    for (uri, want) in [
        ("/blocks/xyz", StatusCode::BAD_REQUEST),
        ("/blocks/-1", StatusCode::BAD_REQUEST),
        ("/blocks/1.5", StatusCode::BAD_REQUEST),
        ("/blocks/99999999999999999999999", StatusCode::BAD_REQUEST),
        (&format!("/blocks/{}", "zz".repeat(32)), StatusCode::BAD_REQUEST),
        (&format!("/blocks/{}", "ab".repeat(32)), StatusCode::NOT_FOUND),
        ("/blocks/999", StatusCode::NOT_FOUND),
        ("/transactions/abc", StatusCode::BAD_REQUEST),
        (&format!("/transactions/{}", "g".repeat(64)), StatusCode::BAD_REQUEST),
        (&format!("/transactions/{}", "cd".repeat(32)), StatusCode::NOT_FOUND),
        ("/blocks?from=x", StatusCode::BAD_REQUEST),
        ("/blocks?from=-1", StatusCode::BAD_REQUEST),
        ("/blocks?limit=ten", StatusCode::BAD_REQUEST),
        ("/blocks?from=1.5", StatusCode::BAD_REQUEST),
    ] {
        let (status, v) = api.get(uri).await;
        assert_eq!(status, want, "GET {uri}: {v}");
        assert_client_error(uri, status, &v);
    }

    assert_eq!(api.ok("/chain").await, chain_before, "bad input changed the chain");
    assert_eq!(api.ok("/peers").await, peers_before, "bad input changed the peers");
    assert!(api.pending().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mine_answers_the_block_and_chain_counts_genesis() {
    let api = TestApi::new();
    let status = api.ok("/status").await;
    let genesis = status["genesis"].clone();
    let chain = api.ok("/chain").await;
    assert_eq!(chain["length"], 1, "a new node holds genesis only: {chain}");
    assert_eq!(chain["chain"][0]["hash"], genesis);
    assert_eq!(chain["chain"][0]["index"], 1, "genesis has the original's index 1");

    let (s, v) = api
        .new_tx(json!({"sender": "Alice", "recipient": "Bob", "amount": 10}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let txid = v["txid"].clone();

    // The original's verb first, then chainsim's POST.
    let (s, first) = api.get("/mine").await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert!(first["message"].is_string(), "{first}");
    let b1 = &first["block"];
    for field in [
        "hash",
        "height",
        "index",
        "previous_hash",
        "merkle_root",
        "timestamp",
        "nonce",
        "target",
        "transactions",
    ] {
        assert!(!b1[field].is_null(), "block lacks {field}: {b1}");
    }
    assert!(is_hex64(&b1["hash"]) && is_hex64(&b1["merkle_root"]) && is_hex64(&b1["target"]));
    assert_eq!(b1["height"], 1);
    assert_eq!(b1["index"], 2);
    assert_eq!(b1["previous_hash"], genesis);
    // The proof of work: the hash is at most the target (both big-endian hex).
    assert!(b1["hash"].as_str().unwrap() <= b1["target"].as_str().unwrap(), "{b1}");
    let txs = b1["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 2, "coinbase plus Alice's transaction: {b1}");
    assert_eq!(txs[0]["sender"], "0", "the coinbase comes first");
    assert_eq!(txs[0]["recipient"], "tester");
    assert_eq!(txs[1]["txid"], txid);
    assert_eq!(api.length().await, 2, "one mined block makes length 2");
    assert!(api.pending().await.is_empty(), "mined transactions leave the mempool");

    let (s, second) = api.call(Method::POST, "/mine", None).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_eq!(second["block"]["previous_hash"], b1["hash"]);
    assert_eq!(second["block"]["index"], 3);

    let chain = api.ok("/chain").await;
    assert_eq!(chain["length"], 3);
    let blocks = chain["chain"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    for pair in blocks.windows(2) {
        assert_eq!(pair[1]["previous_hash"], pair[0]["hash"], "the chain links");
        assert_eq!(pair[1]["index"], pair[1]["height"].as_u64().unwrap() + 1);
    }

    // Block lookups by height and by hash, and a page of the chain.
    assert_eq!(api.ok("/blocks/1").await["hash"], b1["hash"]);
    let by_hash = api.ok(&format!("/blocks/{}", b1["hash"].as_str().unwrap())).await;
    assert_eq!(by_hash["height"], 1);
    let page = api.ok("/blocks?from=1&limit=5").await;
    let page = page["blocks"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["hash"], b1["hash"]);
    assert_eq!(api.ok("/blocks").await["blocks"].as_array().unwrap().len(), 3);
    assert!(api.ok("/blocks?from=50").await["blocks"].as_array().unwrap().is_empty());
}

/// `GET /chain` is streamed in batches of blocks, yet its bytes are exactly what the whole
/// answer built in memory used to be: `{"chain":[...],"length":N}` with sorted keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_is_streamed_in_pieces_with_the_old_bytes() {
    let api = TestApi::testnet();
    for i in 0..120u64 {
        if i % 10 == 0 {
            for j in 0..3 {
                let (s, v) = api
                    .new_tx(json!({"sender": format!("s{i}"), "recipient": format!("r{j}"), "amount": j + 1}))
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{v}");
            }
        }
        api.mine().await;
    }
    let (status, content_type, chunks) = api.get_chunks("/chain").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert!(
        chunks.len() >= 4,
        "head, three batches of blocks, tail: got {} pieces",
        chunks.len()
    );
    let body = chunks.concat();

    // The old answer: every block of the best chain in one JSON value, serialised whole.
    let mut blocks = Vec::new();
    loop {
        let page = api.ok(&format!("/blocks?from={}&limit=50", blocks.len())).await;
        let page = page["blocks"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        blocks.extend(page);
    }
    assert_eq!(blocks.len(), 121);
    let old = json!({ "chain": blocks, "length": 121 }).to_string();
    assert_eq!(String::from_utf8(body.clone()).unwrap(), old);

    let parsed: chainsim_api::ChainAnswer = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed.length, 121);
    assert_eq!(parsed.chain[120].height, 120);
    assert_eq!(parsed.chain[101].transactions.len(), 4, "coinbase plus three");
    for pair in parsed.chain.windows(2) {
        assert_eq!(pair[1].previous_hash, pair[0].hash, "the chain links");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_lookup_pending_then_confirmed_with_merkle_proof() {
    let api = TestApi::new();
    // Five leaves (coinbase + 4): odd levels exercise the duplicated last node.
    let mut txids = Vec::new();
    for i in 0..4 {
        let (s, v) = api
            .new_tx(
                json!({"sender": format!("sender{i}"), "recipient": "Bob", "amount": i + 1, "time": 1_700_000_000 + i}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        txids.push(v["txid"].as_str().unwrap().to_string());
    }
    let pending = api.ok(&format!("/transactions/{}", txids[0])).await;
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["transaction"]["txid"], txids[0].as_str());
    assert_eq!(pending["transaction"]["sender"], "sender0");

    let block = api.mine().await;
    let coinbase = block["transactions"][0]["txid"].as_str().unwrap().to_string();
    for txid in txids.iter().chain(std::iter::once(&coinbase)) {
        let v = api.ok(&format!("/transactions/{txid}")).await;
        assert_eq!(v["status"], "confirmed", "{v}");
        assert_eq!(v["block_hash"], block["hash"]);
        assert_eq!(v["height"], 1);
        assert_eq!(v["transaction"]["txid"], txid.as_str());
        let proof = &v["proof"];
        assert_eq!(proof["root"], block["merkle_root"], "{v}");
        assert_eq!(
            proof["siblings"].as_array().unwrap().len(),
            3,
            "five leaves, three levels"
        );
        assert!(verify_proof(txid, proof), "proof of {txid} does not verify: {proof}");
        // The same proof must not prove another transaction.
        assert!(!verify_proof(
            &txids[(txids.iter().position(|t| t == txid).unwrap_or(0) + 1) % 4],
            proof
        ));
    }

    // A transaction already mined is "already exists" too.
    let (s, v) = api
        .new_tx(json!({"sender": "sender0", "recipient": "Bob", "amount": 1, "time": 1_700_000_000}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["txid"], txids[0].as_str());
    assert!(api.pending().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_and_peers_have_their_shapes() {
    let api = TestApi::new();
    let s = api.ok("/status").await;
    for field in [
        "port",
        "host",
        "address",
        "height",
        "length",
        "tip",
        "pending",
        "peers",
        "mining",
        "genesis",
        "version",
        "miner",
        "work",
        "tip_time",
        "blocks_mined",
        "reorgs",
    ] {
        assert!(!s[field].is_null(), "status lacks {field}: {s}");
    }
    assert_eq!(s["port"], 1);
    assert_eq!(s["height"], 0);
    assert_eq!(s["length"], 1);
    assert_eq!(s["tip"], s["genesis"]);
    assert_eq!(s["pending"], 0);
    assert_eq!(s["peers"], 0);
    assert_eq!(s["mining"], false);
    assert_eq!(s["miner"], "tester");
    assert_eq!(s["genesis"], ChainParams::default_network().genesis_hash().to_hex());

    api.new_tx(json!({"sender": "Alice", "recipient": "Bob", "amount": 3}))
        .await;
    let s = api.ok("/status").await;
    assert_eq!(s["pending"], 1);
    api.mine().await;
    let s = api.ok("/status").await;
    assert_eq!((s["height"].as_u64(), s["length"].as_u64()), (Some(1), Some(2)));
    assert_eq!(s["blocks_mined"], 1);
    assert_eq!(s["pending"], 0);

    let (status, text) = api.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for line in [
        "chainsim_height 1",
        "chainsim_mempool_size 0",
        "chainsim_blocks_mined_total 1",
        "chainsim_reorgs_total 0",
        "# TYPE chainsim_http_requests_total counter",
    ] {
        assert!(text.contains(line), "metrics lack {line:?}:\n{text}");
    }

    let peers = api.ok("/peers").await;
    assert_eq!(peers, json!({"peers": []}));
    let (status, v) = api
        .post(
            "/nodes/register",
            json!({"nodes": ["http://127.0.0.1:45001", "127.0.0.1:45002/"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let total: Vec<&str> = v["total_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        total.contains(&"127.0.0.1:45001") && total.contains(&"127.0.0.1:45002"),
        "{v}"
    );
    let peers = api.ok("/peers").await;
    let list = peers["peers"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{peers}");
    for p in list {
        for field in ["address", "state", "direction", "height", "score"] {
            assert!(!p[field].is_null(), "peer lacks {field}: {p}");
        }
        assert_eq!(p["direction"], "outbound");
    }

    // Blocking and unblocking a peer is reflected in its state.
    let (status, v) = api.post("/peers/block", json!({"peer": "127.0.0.1:45001"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let peers = api.ok("/peers").await;
    let blocked = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"] == "127.0.0.1:45001")
        .cloned()
        .unwrap();
    assert_eq!(blocked["state"], "blocked", "{peers}");
    let (status, v) = api.post("/peers/unblock", json!({"peer": "127.0.0.1:45001"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["was_blocked"], true);
    let (status, v) = api.post("/peers/unblock", json!({"peer": "127.0.0.1:45001"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["was_blocked"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json() {
    let api = TestApi::new();
    for (method, uri, want) in [
        (Method::GET, "/nope", StatusCode::NOT_FOUND),
        (Method::GET, "/transactions", StatusCode::NOT_FOUND),
        (Method::POST, "/chain/extra", StatusCode::NOT_FOUND),
        (Method::DELETE, "/chain", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/transactions/new", StatusCode::METHOD_NOT_ALLOWED),
        (Method::PUT, "/mine", StatusCode::METHOD_NOT_ALLOWED),
        (Method::POST, "/status", StatusCode::METHOD_NOT_ALLOWED),
        (Method::POST, "/p2p", StatusCode::METHOD_NOT_ALLOWED),
        // The peer route only opens links: without the upgrade it says how.
        (Method::GET, "/p2p", StatusCode::BAD_REQUEST),
    ] {
        let (status, v) = api.call(method.clone(), uri, None).await;
        assert_eq!(status, want, "{method} {uri}: {v}");
        assert_client_error(&format!("{method} {uri}"), status, &v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mempool_answers_503_json() {
    let api = TestApi::with_config(|c| c.mempool_capacity = 2);
    let tx = |i: u64| json!({"sender": "Alice", "recipient": "Bob", "amount": i, "time": 1_700_000_000});
    for i in 1..=2 {
        let (s, v) = api.new_tx(tx(i)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = api.new_tx(tx(3)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("full"), "{v}");
    assert_eq!(api.pending().await.len(), 2);
    // A transaction it already holds is still answered as such.
    let (s, v) = api.new_tx(tx(1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Mining frees room.
    api.mine().await;
    let (s, v) = api.new_tx(tx(3)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// `PUT /peers/{addr}/link` takes any subset of the conditions, keeps the rest, shows them
/// in `GET /peers`, refuses bad values with a 4xx `{"error"}` that changes nothing, and
/// passes the cross-site guard like every state-changing route.
#[tokio::test]
async fn link_conditions_are_set_validated_and_shown() {
    let api = TestApi::new();
    let put = |body: Value| {
        let api = &api;
        async move {
            api.call(
                Method::PUT,
                "/peers/127.0.0.1:5999/link",
                Some(body.to_string().into_bytes()),
            )
            .await
        }
    };
    let (status, v) = put(json!({"latency_ms": 200, "jitter_ms": 20})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["conditions"]["latency_ms"], 200);
    let (status, v) = put(json!({"loss": 0.25, "bandwidth_bps": 10000})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["conditions"],
        json!({"bandwidth_bps": 10000, "cut": false, "jitter_ms": 20, "latency_ms": 200, "loss": 0.25})
    );
    for bad in [
        json!({"loss": 1.5}),
        json!({"loss": -1}),
        json!({"latency_ms": 3_600_000}),
        json!({"latency_ms": -5}),
        json!({"delay": 5}),
        json!({"cut": "yes"}),
    ] {
        let (status, v) = put(bad.clone()).await;
        assert!(status.is_client_error(), "{bad} answered {status}");
        assert!(v["error"].is_string(), "{bad}: {v}");
    }
    let (status, _) = api
        .call(Method::PUT, "/peers/not-an-address/link", Some(b"{}".to_vec()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let peers = api.ok("/peers").await;
    let entry = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"] == "127.0.0.1:5999");
    // Not a known peer: the conditions wait for a link to it; cutting makes it known.
    assert!(entry.is_none(), "{peers}");
    let (status, v) = put(json!({"cut": true})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let peers = api.ok("/peers").await;
    let entry = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"] == "127.0.0.1:5999")
        .cloned()
        .unwrap();
    assert_eq!(entry["state"], "blocked");
    assert_eq!(entry["link"]["cut"], true);
    assert_eq!(entry["link"]["latency_ms"], 200, "other conditions kept: {entry}");
    // /peers/unblock is the same as restoring.
    let (status, _) = api.post("/peers/unblock", json!({"peer": "127.0.0.1:5999"})).await;
    assert_eq!(status, StatusCode::OK);
    let peers = api.ok("/peers").await;
    assert!(peers.to_string().contains(r#""cut":false"#), "{peers}");
    // A web page may not change a link.
    let (status, _) = api
        .call_with(
            Method::PUT,
            "/peers/127.0.0.1:5999/link",
            &[("content-type", "application/json"), ("origin", "http://evil.example")],
            br#"{"cut": true}"#,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .call_with(
            Method::PUT,
            "/peers/127.0.0.1:5999/link",
            &[("content-type", "text/plain")],
            br#"{"cut": true}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// `POST /mining` switches modes, answers and shows the schedule in `/status`, refuses bad
/// settings with 400 and leaves the mode as it was.
#[tokio::test]
async fn mining_modes_are_set_validated_and_shown() {
    let api = TestApi::new();
    let s = api.ok("/status").await;
    assert_eq!(s["mining_schedule"]["mode"], "manual", "{s}");
    let (status, v) = api
        .post("/mining", json!({"mode": "auto", "block_time_s": 600, "share": 0.25}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["mode"], "auto");
    assert_eq!(v["share"], 0.25);
    for bad in [
        json!({"mode": "auto", "block_time_s": 10, "share": 0}),
        json!({"mode": "auto", "block_time_s": 10, "share": 2}),
        json!({"mode": "interval"}),
        json!({"mode": "interval", "block_time_s": 0}),
        json!({"mode": "interval", "block_time_s": -1}),
        json!({"mode": "interval", "block_time_s": 1e12}),
        json!({"mode": "sometimes"}),
        json!({"mode": "auto", "block_time_s": 10, "extra": 1}),
    ] {
        let (status, v) = api.post("/mining", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["error"].is_string(), "{bad}: {v}");
    }
    let s = api.ok("/status").await;
    assert_eq!(s["mining_schedule"]["mode"], "auto");
    assert_eq!(s["mining_schedule"]["block_time_s"], 600.0);
    let (status, _) = api.post("/mining", json!({"mode": "manual"})).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = api.get_chunks("/metrics").await.2.concat();
    let text = String::from_utf8(metrics).unwrap();
    for name in [
        "chainsim_stale_blocks_total 0",
        "chainsim_reorg_depth_blocks_bucket{le=\"+Inf\"} 0",
        "chainsim_block_propagation_ms_count 0",
    ] {
        assert!(text.contains(name), "metrics lack {name}");
    }
}
