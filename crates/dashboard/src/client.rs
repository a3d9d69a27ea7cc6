//! The dashboard's side of the node HTTP API (docs/API.md). Every call carries its own
//! timeout so that a dead or hung node turns into a clear error, never a hung page.

use std::time::Duration;

use serde_json::Value;

/// How long a status or peer poll may take; the dashboard polls every second and must
/// notice a dead node quickly.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(700);
/// Reads of blocks and transactions.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Submitting a transaction: the node answers once it has it, before gossip.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Mining answers only when the block is found, which on a slow machine can take a while.
const MINE_TIMEOUT: Duration = Duration::from_secs(180);
/// Synchronising downloads blocks from every peer.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// A refused connection fails at once; this bounds an unanswered SYN.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(600);

/// Why a call to a node failed, phrased for the person at the page.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No TCP connection (refused, unreachable, or the connect timed out).
    #[error("node {0} is not reachable (is it running?)")]
    Unreachable(String),
    /// Connected, but no full answer in time.
    #[error("node {0} did not answer in time")]
    Timeout(String),
    /// The node answered with an error status and, usually, its own message.
    #[error("node {node} refused: {message}")]
    Refused {
        /// The node's address.
        node: String,
        /// The HTTP status the node answered with.
        status: u16,
        /// The node's `error` field, or the status text.
        message: String,
    },
    /// The connection broke during the request (the node may be restarting).
    #[error("node {0} dropped the connection")]
    Dropped(String),
    /// The answer was not the JSON the API promises.
    #[error("node {0} sent an answer the dashboard does not understand")]
    BadAnswer(String),
}

/// A thin, cloneable handle on the HTTP client used for every node.
#[derive(Clone, Debug)]
pub struct NodeClient {
    http: reqwest::Client,
}

impl NodeClient {
    /// Builds the client; proxies are ignored because nodes are addressed directly.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { http })
    }

    fn url(node: &str, path: &str) -> String {
        format!("http://{node}{path}")
    }

    fn map_err(node: &str, e: &reqwest::Error) -> NodeError {
        if e.is_timeout() {
            NodeError::Timeout(node.to_owned())
        } else if e.is_connect() {
            NodeError::Unreachable(node.to_owned())
        } else if e.is_decode() {
            NodeError::BadAnswer(node.to_owned())
        } else {
            NodeError::Dropped(node.to_owned())
        }
    }

    async fn json(&self, node: &str, req: reqwest::RequestBuilder, timeout: Duration) -> Result<Value, NodeError> {
        let resp = req.timeout(timeout).send().await.map_err(|e| Self::map_err(node, &e))?;
        let status = resp.status();
        let body: Value = match resp.json().await {
            Ok(v) => v,
            Err(e) if status.is_success() => return Err(Self::map_err(node, &e)),
            Err(_) => Value::Null,
        };
        if status.is_success() {
            return Ok(body);
        }
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("unknown error").to_owned());
        Err(NodeError::Refused {
            node: node.to_owned(),
            status: status.as_u16(),
            message,
        })
    }

    async fn get(&self, node: &str, path: &str, timeout: Duration) -> Result<Value, NodeError> {
        self.json(node, self.http.get(Self::url(node, path)), timeout).await
    }

    /// `GET /status`.
    pub async fn status(&self, node: &str) -> Result<Value, NodeError> {
        let v = self.get(node, "/status", POLL_TIMEOUT).await?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(NodeError::BadAnswer(node.to_owned()))
        }
    }

    /// `GET /peers`: the `peers` array.
    pub async fn peers(&self, node: &str) -> Result<Vec<Value>, NodeError> {
        let v = self.get(node, "/peers", POLL_TIMEOUT).await?;
        match v.get("peers") {
            Some(Value::Array(a)) => Ok(a.clone()),
            _ => Err(NodeError::BadAnswer(node.to_owned())),
        }
    }

    /// `GET /blocks?from=H&limit=N`: the `blocks` array.
    pub async fn blocks(&self, node: &str, from: u64, limit: u64) -> Result<Vec<Value>, NodeError> {
        let v = self
            .get(node, &format!("/blocks?from={from}&limit={limit}"), READ_TIMEOUT)
            .await?;
        match v.get("blocks") {
            Some(Value::Array(a)) => Ok(a.clone()),
            _ => Err(NodeError::BadAnswer(node.to_owned())),
        }
    }

    /// `GET /blocks/{hash}`.
    pub async fn block(&self, node: &str, hash: &str) -> Result<Value, NodeError> {
        self.get(node, &format!("/blocks/{hash}"), READ_TIMEOUT).await
    }

    /// `GET /transactions/{txid}`: the transaction, its status and its Merkle proof.
    pub async fn transaction(&self, node: &str, txid: &str) -> Result<Value, NodeError> {
        self.get(node, &format!("/transactions/{txid}"), READ_TIMEOUT).await
    }

    /// `POST /transactions/new`.
    pub async fn submit(&self, node: &str, tx: &Value) -> Result<Value, NodeError> {
        let req = self.http.post(Self::url(node, "/transactions/new")).json(tx);
        self.json(node, req, SUBMIT_TIMEOUT).await
    }

    /// `POST /mine`: answers once the block is mined.
    pub async fn mine(&self, node: &str) -> Result<Value, NodeError> {
        let req = self.http.post(Self::url(node, "/mine"));
        self.json(node, req, MINE_TIMEOUT).await
    }

    /// `GET /nodes/resolve`: sync with every peer.
    pub async fn resolve(&self, node: &str) -> Result<Value, NodeError> {
        self.get(node, "/nodes/resolve", SYNC_TIMEOUT).await
    }

    /// Opens `GET /events`; the caller reads the byte stream.
    pub async fn events(&self, node: &str) -> Result<reqwest::Response, NodeError> {
        let resp = self
            .http
            .get(Self::url(node, "/events"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| Self::map_err(node, &e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(NodeError::Refused {
                node: node.to_owned(),
                status: resp.status().as_u16(),
                message: "events stream refused".to_owned(),
            })
        }
    }
}
