//! A fake peer: a small HTTP server inside the test that speaks chainsim's peer protocol
//! (`POST /p2p`, JSON messages tagged by `type`, blocks as hex of their canonical encoding).
//! It holds a chain of its own that it serves like an honest node, can hold back block
//! downloads on command (to freeze a node mid-sync), and sends whatever the test wants to a
//! real node, from its own listening address.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use chainsim_core::ChainParams;
use chainsim_core::protocol::{Hello, Message, PROTOCOL_VERSION, WireBlock, WireWork};
use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{Block, BlockHash, Header, MerkleRoot, Transaction, Work};
use serde_json::Value;
use tokio::sync::watch;

/// Header naming the sender's listening address.
pub const FROM_HEADER: &str = "x-chainsim-from";

pub use chainsim_api::now_ms;

/// Finds a nonce meeting the network's target.
pub fn solve(params: &ChainParams, block: &mut Block) {
    let (nonce, _) = search_nonce(&block.header, &params.bits.to_target(), 0, u64::MAX).unwrap();
    block.header.nonce = nonce;
}

/// A valid child of `parent` paying `miner`, with `txs` after the coinbase, mined.
pub fn child(params: &ChainParams, parent: &Block, miner: &str, timestamp: u64, txs: Vec<Transaction>) -> Block {
    let mut block = unsealed_child(params, parent, miner, timestamp, txs);
    seal(params, &mut block);
    block
}

/// A child of `parent` with the right Merkle root but no proof of work yet.
pub fn unsealed_child(
    params: &ChainParams,
    parent: &Block,
    miner: &str,
    timestamp: u64,
    txs: Vec<Transaction>,
) -> Block {
    let mut transactions = vec![Transaction::coinbase(miner, params.reward, timestamp)];
    transactions.extend(txs);
    Block {
        header: Header {
            version: chainsim_primitives::header::HEADER_VERSION,
            height: parent.header.height + 1,
            prev_hash: parent.compute_hash(),
            merkle_root: MerkleRoot::ZERO,
            timestamp,
            bits: params.bits,
            nonce: 0,
        },
        transactions,
    }
}

/// Sets the Merkle root from the transactions and mines.
pub fn seal(params: &ChainParams, block: &mut Block) {
    block.header.merkle_root = block.compute_merkle_root().0;
    solve(params, block);
}

/// Rebuilds a block from the API's JSON shape (docs/API.md), checking that it hashes to
/// the `hash` the API gave.
pub fn block_from_json(v: &Value) -> Block {
    let transactions = v["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Transaction {
            version: u8::try_from(t["version"].as_u64().unwrap()).unwrap(),
            sender: t["sender"].as_str().unwrap().to_string(),
            recipient: t["recipient"].as_str().unwrap().to_string(),
            amount: t["amount"].as_u64().unwrap(),
            timestamp: t["timestamp"].as_u64().unwrap(),
        })
        .collect();
    let block = Block {
        header: Header {
            version: u32::try_from(v["version"].as_u64().unwrap()).unwrap(),
            height: v["height"].as_u64().unwrap(),
            prev_hash: v["previous_hash"].as_str().unwrap().parse().unwrap(),
            merkle_root: v["merkle_root"].as_str().unwrap().parse().unwrap(),
            timestamp: v["timestamp"].as_u64().unwrap(),
            bits: chainsim_primitives::CompactTarget(u32::from_str_radix(v["bits"].as_str().unwrap(), 16).unwrap()),
            nonce: v["nonce"].as_u64().unwrap(),
        },
        transactions,
    };
    assert_eq!(
        block.compute_hash().to_hex(),
        v["hash"].as_str().unwrap(),
        "JSON block does not rebuild"
    );
    block
}

struct Shared {
    params: Arc<ChainParams>,
    listen: String,
    chain: Mutex<Vec<Arc<Block>>>,
    index: Mutex<HashMap<BlockHash, usize>>,
    /// Kinds of the messages received, in order.
    received: Mutex<Vec<String>>,
    getblocks: AtomicUsize,
    /// `GetBlocks` answered at once; later ones wait for `gate` to open.
    answer_first: AtomicUsize,
    gate: watch::Sender<bool>,
}

impl Shared {
    fn work(&self) -> Work {
        let chain = self.chain.lock().unwrap();
        chain
            .iter()
            .fold(Work(0), |w, b| w.saturating_add(b.header.bits.work()))
    }

    fn hello(&self) -> Hello {
        // Not inside the struct expression: a lock guard taken there would live to its end.
        let height = (self.chain.lock().unwrap().len() - 1) as u64;
        let work = self.work();
        Hello {
            version: PROTOCOL_VERSION,
            genesis: self.params.genesis_hash(),
            listen: self.listen.parse().unwrap(),
            height,
            work: WireWork(work),
            agent: "fake-peer/0".into(),
        }
    }

    fn serve_blocks(&self, locator: &[BlockHash], limit: u32) -> Message {
        let chain = self.chain.lock().unwrap();
        let index = self.index.lock().unwrap();
        let tip_height = (chain.len() - 1) as u64;
        let Some(fork) = locator.iter().find_map(|h| index.get(h).copied()) else {
            return Message::Blocks {
                blocks: Vec::new(),
                tip_height,
            };
        };
        let end = (fork + 1 + limit.min(500) as usize).min(chain.len());
        Message::Blocks {
            blocks: chain[fork + 1..end].iter().map(|b| WireBlock(b.clone())).collect(),
            tip_height,
        }
    }
}

async fn p2p(State(s): State<Arc<Shared>>, body: Bytes) -> impl IntoResponse {
    let Ok(msg) = serde_json::from_slice::<Message>(&body) else {
        return (StatusCode::BAD_REQUEST, "unreadable message".to_string());
    };
    s.received.lock().unwrap().push(msg.kind().to_string());
    let replies = match msg {
        Message::Hello(_) => vec![Message::Hello(s.hello())],
        Message::GetAddr => vec![Message::Addr { addrs: Vec::new() }],
        Message::GetBlocks { locator, limit } => {
            let n = s.getblocks.fetch_add(1, Ordering::SeqCst) + 1;
            if n > s.answer_first.load(Ordering::SeqCst) {
                let mut gate = s.gate.subscribe();
                let _ = gate.wait_for(|open| *open).await;
            }
            vec![s.serve_blocks(&locator, limit)]
        }
        _ => Vec::new(),
    };
    (StatusCode::OK, serde_json::to_string(&replies).unwrap())
}

/// The fake peer. Dropping it stops its server.
pub struct FakePeer {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl FakePeer {
    /// Starts a fake peer on a free loopback port, holding only genesis.
    pub async fn start(params: ChainParams) -> FakePeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let genesis = params.genesis().clone();
        let (gate, _) = watch::channel(true);
        let shared = Arc::new(Shared {
            params: Arc::new(params),
            listen,
            index: Mutex::new(HashMap::from([(genesis.compute_hash(), 0)])),
            chain: Mutex::new(vec![genesis]),
            received: Mutex::new(Vec::new()),
            getblocks: AtomicUsize::new(0),
            answer_first: AtomicUsize::new(usize::MAX),
            gate,
        });
        let app = Router::new()
            .route("/p2p", post(p2p))
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        // A fresh connection per message: after refusing an oversized upload the node
        // closes that connection, and a pooled client could pick it for the next message.
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        FakePeer { shared, server, http }
    }

    /// `HOST:PORT` the fake listens on (and claims in its hello).
    pub fn addr(&self) -> String {
        self.shared.listen.clone()
    }

    pub fn params(&self) -> &ChainParams {
        &self.shared.params
    }

    /// Mines `n` valid blocks on its own tip, a millisecond apart, ending about now.
    pub fn extend(&self, n: usize) {
        let params = self.shared.params.clone();
        let mut tip = self.tip();
        let start = now_ms().saturating_sub(n as u64 + 1).max(tip.header.timestamp + 1);
        for i in 0..n {
            let block = Arc::new(child(&params, &tip, "fake-peer", start + i as u64, Vec::new()));
            let mut chain = self.shared.chain.lock().unwrap();
            self.shared
                .index
                .lock()
                .unwrap()
                .insert(block.compute_hash(), chain.len());
            chain.push(block.clone());
            tip = block;
        }
    }

    pub fn tip(&self) -> Arc<Block> {
        self.shared.chain.lock().unwrap().last().unwrap().clone()
    }

    pub fn height(&self) -> u64 {
        (self.shared.chain.lock().unwrap().len() - 1) as u64
    }

    /// Its handshake.
    pub fn hello(&self) -> Message {
        Message::Hello(self.shared.hello())
    }

    /// Answer the next `n` block downloads, then hold further ones until [`Self::release`].
    pub fn hold_after(&self, n: usize) {
        self.shared.gate.send_replace(false);
        let seen = self.shared.getblocks.load(Ordering::SeqCst);
        self.shared.answer_first.store(seen + n, Ordering::SeqCst);
    }

    /// Answers held and future downloads.
    pub fn release(&self) {
        self.shared.answer_first.store(usize::MAX, Ordering::SeqCst);
        self.shared.gate.send_replace(true);
    }

    /// `GetBlocks` requests received so far.
    pub fn getblocks_seen(&self) -> usize {
        self.shared.getblocks.load(Ordering::SeqCst)
    }

    /// Kinds of the messages received so far.
    pub fn received(&self) -> Vec<String> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Posts raw bytes to `node`'s `/p2p` as this peer. Returns the status (0 when the
    /// exchange itself failed, e.g. the node cut an oversized upload short) and the body.
    pub async fn send_raw(&self, node: &str, body: Vec<u8>) -> (u16, String) {
        let resp = self
            .http
            .post(format!("http://{node}/p2p"))
            .header(FROM_HEADER, self.addr())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match resp {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    }

    /// Sends one message to `node` as this peer.
    pub async fn send(&self, node: &str, msg: &Message) -> (u16, String) {
        self.send_raw(node, serde_json::to_vec(msg).unwrap()).await
    }

    /// Sends a block to `node`.
    pub async fn send_block(&self, node: &str, block: Block) -> (u16, String) {
        self.send(
            node,
            &Message::Block {
                block: WireBlock(Arc::new(block)),
            },
        )
        .await
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.shared.gate.send_replace(true);
        self.server.abort();
    }
}
