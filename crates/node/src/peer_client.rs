//! Carrying protocol messages to peers over HTTP.
//!
//! Each peer gets one worker task and a bounded queue, so messages to one peer keep their
//! order (a block is never overtaken by its child) and one slow or dead peer only ever
//! holds up its own queue. Every exchange has a timeout; its outcome goes back to the
//! driver as a command.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chainsim_core::{Message, PeerAddr};
use tokio::sync::mpsc;

use crate::driver::{Command, Shared};

/// Header naming the sender's listening address on peer messages.
pub const FROM_HEADER: &str = "x-chainsim-from";
/// Messages waiting for one peer before further ones count as failures.
const QUEUE: usize = 1_024;
/// Longest exchange with a peer (a batch of 500 blocks included).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a TCP connection on loopback or a LAN.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends messages to peers.
pub struct PeerClient {
    http: reqwest::Client,
    from: PeerAddr,
    queues: HashMap<PeerAddr, mpsc::Sender<Message>>,
    driver: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    /// The main runtime: peer exchanges run there, not on the driver's thread.
    runtime: tokio::runtime::Handle,
}

impl PeerClient {
    /// A client sending as `from`, reporting outcomes to `driver`.
    pub fn new(
        from: PeerAddr,
        driver: mpsc::Sender<Command>,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(EXCHANGE_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            from,
            queues: HashMap::new(),
            driver,
            shared,
            runtime,
        }
    }

    /// Queues `msg` for `to`. Fails at once when that peer's queue is full.
    pub fn send(&mut self, to: PeerAddr, msg: Message) -> Result<(), String> {
        let queue = self.queues.entry(to.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            self.runtime.spawn(worker(
                self.http.clone(),
                self.from.clone(),
                to.clone(),
                rx,
                self.driver.clone(),
            ));
            tx
        });
        match queue.try_send(msg) {
            Ok(()) => {
                self.shared.inflight.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err("outbound queue full".into()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queues.remove(&to);
                Err("peer worker stopped".into())
            }
        }
    }
}

async fn worker(
    http: reqwest::Client,
    from: PeerAddr,
    to: PeerAddr,
    mut rx: mpsc::Receiver<Message>,
    driver: mpsc::Sender<Command>,
) {
    let url = format!("http://{to}/p2p");
    while let Some(msg) = rx.recv().await {
        let outcome = exchange(&http, &url, &from, &msg).await;
        let cmd = match outcome {
            Ok(replies) => Command::Delivered {
                to: to.clone(),
                replies,
            },
            Err(Failure::Garbage(reason)) => {
                let _ = driver
                    .send(Command::PeerGarbage {
                        from: to.clone(),
                        reason: reason.clone(),
                    })
                    .await;
                Command::SendFailed { to: to.clone(), reason }
            }
            Err(Failure::Failed(reason)) => Command::SendFailed { to: to.clone(), reason },
            Err(Failure::NeedsHello) => Command::HandshakeLost { to: to.clone() },
        };
        if driver.send(cmd).await.is_err() {
            return; // the node is shutting down
        }
    }
}

enum Failure {
    Failed(String),
    /// The peer has no handshake with us (409): it restarted and forgot us.
    NeedsHello,
    Garbage(String),
}

async fn exchange(http: &reqwest::Client, url: &str, from: &PeerAddr, msg: &Message) -> Result<Vec<Message>, Failure> {
    let resp = http
        .post(url)
        .header(FROM_HEADER, from.as_str())
        .json(msg)
        .send()
        .await
        .map_err(|e| Failure::Failed(describe(&e)))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| Failure::Failed(describe(&e)))?;
    if status == reqwest::StatusCode::CONFLICT && !matches!(msg, Message::Hello(_)) {
        return Err(Failure::NeedsHello);
    }
    if !status.is_success() {
        let text = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        return Err(Failure::Failed(format!("HTTP {}: {text}", status.as_u16())));
    }
    serde_json::from_slice(&body).map_err(|e| Failure::Garbage(format!("unreadable reply to {}: {e}", msg.kind())))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        e.to_string()
    }
}
