//! A web page's requests against a real node process on loopback: what a browser would send
//! for a cross-site form, `fetch`, `<img>` or a DNS-rebinding page is refused and changes
//! nothing, while the original's script-style requests keep working.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::TestNode;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_cannot_drive_a_real_node() {
    let node = TestNode::start("target", &[]).await;
    let http = common::client();
    let url = |path: &str| node.url(path);
    let tx = r#"{"sender":"Alice","recipient":"Bob","amount":10}"#;

    // A plain HTML form, enctype="text/plain", from another site.
    let r = http
        .post(url("/transactions/new"))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body(tx)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("web pages"), "{body}");
    // No Origin, but not JSON either.
    let r = http
        .post(url("/transactions/new"))
        .header("content-type", "text/plain")
        .body(tx)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // <img src="http://127.0.0.1:P/mine">.
    let r = http
        .get(url("/mine"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "no-cors")
        .header("sec-fetch-dest", "image")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A DNS-rebinding page: its requests name its own domain.
    let r = http
        .get(url("/chain"))
        .header("host", format!("rebind.evil.example:{}", node.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(node.length().await, 1, "nothing was mined");
    assert!(node.pending().await.is_empty(), "no transaction was created");

    // The original's walkthrough still works, GET /mine included.
    let txid = node.send_tx("Alice", "Bob", 10).await;
    assert_eq!(node.pending().await, vec![txid]);
    let r = http.get(url("/mine")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(node.length().await, 2);
}
