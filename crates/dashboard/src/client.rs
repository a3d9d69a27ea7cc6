//! The dashboard's side of the node HTTP API (docs/API.md), read into the shapes of
//! [`chainsim_api`]. Every call carries its own timeout so that a dead or hung node turns
//! into a clear error, never a hung page.

use std::time::Duration;

use chainsim_api::{
    AccountView, AccountsAnswer, BlockView, BlocksPage, ErrorAnswer, LinkAnswer, LinkRequest, MineAnswer,
    MiningRequest, MiningView, NewTxAnswer, NewTxRequest, PeerView, PeersAnswer, ResolveAnswer, SignedTxRequest,
    StatusView, TamperAnswer, TamperRequest, TxLookup,
};
use chainsim_primitives::{PeerAddr, Txid};
use serde::de::DeserializeOwned;

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

/// Largest answer read from a node (a page of 1,000 blocks fits many times over): a node
/// that sends more is not read further, so no node can make the dashboard hold more.
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

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
        /// The ledger rule the node named, and the transaction a conflict is with.
        rule: Option<(String, Option<Txid>)>,
    },
    /// The connection broke during the request (the node may be restarting).
    #[error("node {0} dropped the connection")]
    Dropped(String),
    /// The answer was not the JSON the API promises.
    #[error("node {0} sent an answer the dashboard does not understand")]
    BadAnswer(String),
    /// The answer was larger than [`MAX_ANSWER`]; it was not read further.
    #[error("node {0} sent an answer over the {MAX_ANSWER}-byte limit")]
    TooLarge(String),
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

    fn url(node: &PeerAddr, path: &str) -> String {
        format!("http://{node}{path}")
    }

    fn map_err(node: &PeerAddr, e: &reqwest::Error) -> NodeError {
        let node = node.to_string();
        if e.is_timeout() {
            NodeError::Timeout(node)
        } else if e.is_connect() {
            NodeError::Unreachable(node)
        } else if e.is_decode() {
            NodeError::BadAnswer(node)
        } else {
            NodeError::Dropped(node)
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        node: &PeerAddr,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        let resp = req.timeout(timeout).send().await.map_err(|e| Self::map_err(node, &e))?;
        let status = resp.status();
        let body = match read_bounded(resp).await {
            Ok(b) => b,
            Err(None) => return Err(NodeError::TooLarge(node.to_string())),
            Err(Some(e)) if status.is_success() => return Err(Self::map_err(node, &e)),
            Err(Some(_)) => Vec::new(),
        };
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| NodeError::BadAnswer(node.to_string()));
        }
        let answer = serde_json::from_slice::<ErrorAnswer>(&body)
            .unwrap_or_else(|_| ErrorAnswer::new(status.canonical_reason().unwrap_or("unknown error")));
        Err(NodeError::Refused {
            node: node.to_string(),
            status: status.as_u16(),
            message: answer.error,
            rule: answer.rule.map(|r| (r, answer.conflicts_with)),
        })
    }

    async fn get<T: DeserializeOwned>(&self, node: &PeerAddr, path: &str, timeout: Duration) -> Result<T, NodeError> {
        self.json(node, self.http.get(Self::url(node, path)), timeout).await
    }

    /// `GET /status`.
    pub async fn status(&self, node: &PeerAddr) -> Result<StatusView, NodeError> {
        self.get(node, "/status", POLL_TIMEOUT).await
    }

    /// `GET /peers`: the node's peers.
    pub async fn peers(&self, node: &PeerAddr) -> Result<Vec<PeerView>, NodeError> {
        let answer: PeersAnswer = self.get(node, "/peers", POLL_TIMEOUT).await?;
        Ok(answer.peers)
    }

    /// `GET /blocks?from=H&limit=N`: a page of the best chain.
    pub async fn blocks(&self, node: &PeerAddr, from: u64, limit: u64) -> Result<Vec<BlockView>, NodeError> {
        let page: BlocksPage = self
            .get(node, &format!("/blocks?from={from}&limit={limit}"), READ_TIMEOUT)
            .await?;
        Ok(page.blocks)
    }

    /// `GET /blocks/{hash or height}`.
    pub async fn block(&self, node: &PeerAddr, id: &str) -> Result<BlockView, NodeError> {
        self.get(node, &format!("/blocks/{id}"), READ_TIMEOUT).await
    }

    /// `GET /transactions/{txid}`: the transaction, its status and its Merkle proof.
    pub async fn transaction(&self, node: &PeerAddr, txid: &str) -> Result<TxLookup, NodeError> {
        self.get(node, &format!("/transactions/{txid}"), READ_TIMEOUT).await
    }

    /// `POST /transactions/new`.
    pub async fn submit(&self, node: &PeerAddr, tx: &NewTxRequest) -> Result<NewTxAnswer, NodeError> {
        let req = self.http.post(Self::url(node, "/transactions/new")).json(tx);
        self.json(node, req, SUBMIT_TIMEOUT).await
    }

    /// `GET /accounts`: every account's balances (a 404 when the node runs the open ledger).
    pub async fn accounts(&self, node: &PeerAddr) -> Result<AccountsAnswer, NodeError> {
        self.get(node, "/accounts", READ_TIMEOUT).await
    }

    /// `GET /accounts/{name or address}`: one account's balances and next nonce.
    pub async fn account(&self, node: &PeerAddr, id: &str) -> Result<AccountView, NodeError> {
        self.get(node, &format!("/accounts/{id}"), READ_TIMEOUT).await
    }

    /// `POST /transactions/signed`: a transfer signed elsewhere.
    pub async fn submit_signed(&self, node: &PeerAddr, tx: &SignedTxRequest) -> Result<NewTxAnswer, NodeError> {
        let req = self.http.post(Self::url(node, "/transactions/signed")).json(tx);
        self.json(node, req, SUBMIT_TIMEOUT).await
    }

    /// `POST /mine`: answers once the block is mined.
    pub async fn mine(&self, node: &PeerAddr) -> Result<MineAnswer, NodeError> {
        let req = self.http.post(Self::url(node, "/mine"));
        self.json(node, req, MINE_TIMEOUT).await
    }

    /// `PUT /peers/{peer}/link`: the conditions of `node`'s side of its link to `peer`.
    pub async fn set_link(
        &self,
        node: &PeerAddr,
        peer: &PeerAddr,
        change: &LinkRequest,
    ) -> Result<LinkAnswer, NodeError> {
        let req = self
            .http
            .put(Self::url(node, &format!("/peers/{peer}/link")))
            .json(change);
        self.json(node, req, SUBMIT_TIMEOUT).await
    }

    /// `POST /mining`: when `node` mines by itself.
    pub async fn set_mining(&self, node: &PeerAddr, mode: &MiningRequest) -> Result<MiningView, NodeError> {
        let req = self.http.post(Self::url(node, "/mining")).json(mode);
        self.json(node, req, SUBMIT_TIMEOUT).await
    }

    /// `POST /lab/tamper`: `node` offers its peers an altered copy of a block.
    pub async fn tamper(&self, node: &PeerAddr, request: &TamperRequest) -> Result<TamperAnswer, NodeError> {
        let req = self.http.post(Self::url(node, "/lab/tamper")).json(request);
        self.json(node, req, SUBMIT_TIMEOUT).await
    }

    /// `GET /nodes/resolve`: sync with every peer.
    pub async fn resolve(&self, node: &PeerAddr) -> Result<ResolveAnswer, NodeError> {
        self.get(node, "/nodes/resolve", SYNC_TIMEOUT).await
    }

    /// Opens `GET /events`; the caller reads the byte stream.
    pub async fn events(&self, node: &PeerAddr) -> Result<reqwest::Response, NodeError> {
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
                node: node.to_string(),
                status: resp.status().as_u16(),
                message: "events stream refused".to_owned(),
                rule: None,
            })
        }
    }
}

/// The body of `resp`, read chunk by chunk up to [`MAX_ANSWER`]; `Err(None)` when it is larger
/// (a declared length over the limit is refused before anything is read).
async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, Option<reqwest::Error>> {
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Some)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
