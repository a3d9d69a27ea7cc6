#![allow(clippy::unwrap_used, missing_docs)]
use std::sync::Arc;
use axum::body::Body;
use axum::http::{Method, Request};
use chainsim_core::{ChainParams, MemoryStore, Node, NodeConfig};
use chainsim_node::api::{AppState, NodeInfo, app};
use chainsim_node::driver::{self, DriverConfig};
use tokio::sync::watch;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump() {
    let out = std::env::var("DUMP_DIR").unwrap_or_else(|_| "/tmp/baseline".into());
    let config = NodeConfig::new("127.0.0.1:1".parse().unwrap(), "tester");
    let node = Node::new(Arc::new(ChainParams::testnet()), config);
    let (_stop, stop_rx) = watch::channel(false);
    let (handle, _task) = driver::spawn(node, MemoryStore::default(), DriverConfig { mine_threads: 1, port: 1 }, stop_rx);
    handle.shared.ready.send_replace(true);
    let app = app(AppState { handle, info: Arc::new(NodeInfo { host: "127.0.0.1".into(), port: 1 }) });
    let call = |m: Method, uri: String, body: Option<String>| {
        let app = app.clone();
        async move {
            let mut req = Request::builder().method(m).uri(uri);
            if body.is_some() { req = req.header("content-type", "application/json"); }
            let resp = app.oneshot(req.body(body.map_or_else(Body::empty, Body::from)).unwrap()).await.unwrap();
            let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            let b = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (ct, String::from_utf8(b.to_vec()).unwrap())
        }
    };
    let mut n = 0;
    let mut save = |name: &str, (ct, body): (Option<String>, String)| {
        n += 1;
        std::fs::write(format!("{out}/{n:02}-{name}.json"), format!("{ct:?}\n{body}")).unwrap();
        body
    };
    let tx1 = save("new_tx", call(Method::POST, "/transactions/new".into(), Some(r#"{"sender":"Alice","recipient":"Bob","amount":10}"#.into())).await);
    let txid1 = serde_json::from_str::<serde_json::Value>(&tx1).unwrap()["txid"].as_str().unwrap().to_owned();
    save("pending", call(Method::GET, "/transactions/pending".into(), None).await);
    save("tx_pending", call(Method::GET, format!("/transactions/{txid1}"), None).await);
    save("mine", call(Method::POST, "/mine".into(), None).await);
    save("tx_confirmed", call(Method::GET, format!("/transactions/{txid1}"), None).await);
    save("mine2", call(Method::GET, "/mine".into(), None).await);
    save("chain", call(Method::GET, "/chain".into(), None).await);
    save("blocks", call(Method::GET, "/blocks?from=0&limit=10".into(), None).await);
    save("block1", call(Method::GET, "/blocks/1".into(), None).await);
    save("status", call(Method::GET, "/status".into(), None).await);
    save("register", call(Method::POST, "/nodes/register".into(), Some(r#"{"nodes":["127.0.0.1:45001"]}"#.into())).await);
    save("peers", call(Method::GET, "/peers".into(), None).await);
    save("resolve", call(Method::GET, "/nodes/resolve".into(), None).await);
    save("bad_tx", call(Method::POST, "/transactions/new".into(), Some(r#"{"sender":" ","recipient":"Bob","amount":10}"#.into())).await);
}
