//! A fake peer inside the test that speaks chainsim's peer protocol: it listens for links
//! (`GET /p2p` upgraded to length-prefixed JSON frames, see `chainsim_node::wire`), holds a
//! chain of its own that it serves like an honest node, can hold back block downloads on
//! command (to freeze a node mid-sync), and opens links of its own to a real node to send
//! whatever the test wants, claiming whatever listening address the test wants.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chainsim_core::ChainParams;
use chainsim_core::protocol::{Hello, Message, PROTOCOL_VERSION, WireBlock, WireWork};
use chainsim_node::wire::{self, FrameReader, UPGRADE};
use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{Block, BlockHash, Header, MerkleRoot, Transaction, Work};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

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
            signed: serde_json::from_value(t.clone()).ok(),
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

    fn hello(&self, listen: &str) -> Hello {
        // Not inside the struct expression: a lock guard taken there would live to its end.
        let height = (self.chain.lock().unwrap().len() - 1) as u64;
        let work = self.work();
        Hello {
            version: PROTOCOL_VERSION,
            genesis: self.params.genesis_hash(),
            listen: listen.parse().unwrap(),
            height,
            work: WireWork::new(work),
            agent: "fake-peer/0".into(),
            token: None,
        }
    }

    fn serve_blocks(&self, locator: &[BlockHash], limit: u32) -> Message {
        let chain = self.chain.lock().unwrap();
        let index = self.index.lock().unwrap();
        let tip_height = (chain.len() - 1) as u64;
        let Some(fork) = locator.iter().find_map(|h| index.get(h).copied()) else {
            return Message::Blocks {
                blocks: Box::default(),
                tip_height,
            };
        };
        let end = (fork + 1 + limit.min(500) as usize).min(chain.len());
        Message::Blocks {
            blocks: chain[fork + 1..end].iter().map(|b| WireBlock(b.clone())).collect(),
            tip_height,
        }
    }

    /// The honest answers to one message.
    async fn answer(&self, msg: Message) -> Vec<Message> {
        self.received.lock().unwrap().push(msg.kind().to_string());
        match msg {
            Message::Hello(_) => vec![Message::Hello(Box::new(self.hello(&self.listen)))],
            Message::GetAddr => vec![Message::addr(Vec::new())],
            Message::GetBlocks { locator, limit } => {
                let n = self.getblocks.fetch_add(1, Ordering::SeqCst) + 1;
                if n > self.answer_first.load(Ordering::SeqCst) {
                    let mut gate = self.gate.subscribe();
                    let _ = gate.wait_for(|open| *open).await;
                }
                vec![self.serve_blocks(&locator, limit)]
            }
            Message::GetData(items) => {
                let chain = self.chain.lock().unwrap();
                let index = self.index.lock().unwrap();
                items
                    .blocks
                    .iter()
                    .filter_map(|h| index.get(h).map(|i| chain[*i].clone()))
                    .map(|b| Message::Block { block: WireBlock(b) })
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Serves one link honestly until it closes.
async fn serve_link<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S, s: Arc<Shared>) {
    let (mut r, mut w) = tokio::io::split(stream);
    let mut frames = FrameReader::new(wire::frame_budget(0));
    while let Ok(Some(frame)) = frames.read(&mut r).await {
        for reply in s.answer(frame.msg).await {
            if wire::write_frame(&mut w, &reply).await.is_err() {
                return;
            }
        }
    }
}

async fn p2p(State(s): State<Arc<Shared>>, mut req: Request) -> Response {
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            serve_link(hyper_util::rt::TokioIo::new(upgraded), s).await;
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(UPGRADE));
    resp
}

/// A link the fake opened to a real node.
pub struct FakeLink {
    reader: tokio::io::ReadHalf<tokio::net::TcpStream>,
    frames: FrameReader,
    writer: tokio::io::WriteHalf<tokio::net::TcpStream>,
}

impl FakeLink {
    /// Sends one message.
    pub async fn send(&mut self, msg: &Message) {
        let _ = wire::write_frame(&mut self.writer, msg).await;
    }

    /// Sends raw bytes as one frame (length prefix included).
    pub async fn send_frame(&mut self, body: &[u8]) {
        let _ = self.writer.write_all(&(body.len() as u32).to_be_bytes()).await;
        let _ = self.writer.write_all(body).await;
    }

    /// Sends raw bytes as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes).await;
    }

    /// Sends a block.
    pub async fn send_block(&mut self, block: Block) {
        self.send(&Message::Block {
            block: WireBlock(Arc::new(block)),
        })
        .await;
    }

    /// The next message from the node, or `None` once the node closed the link (or
    /// nothing came within the patience).
    pub async fn recv(&mut self) -> Option<Message> {
        match tokio::time::timeout(super::PATIENCE, self.frames.read(&mut self.reader)).await {
            Ok(Ok(m)) => m.map(|f| f.msg),
            _ => None,
        }
    }

    /// Waits until the node closes the link, skipping what it sends meanwhile.
    pub async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.frames.read(&mut self.reader)).await {
                Ok(Ok(Some(_))) => continue,
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// The fake peer. Dropping it stops its server.
pub struct FakePeer {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
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
        let app = Router::new().route("/p2p", get(p2p)).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePeer { shared, server }
    }

    /// `HOST:PORT` the fake listens on (and claims in its hello by default).
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

    /// Its handshake, claiming `listen` as its address.
    pub fn hello_as(&self, listen: &str) -> Message {
        Message::Hello(Box::new(self.shared.hello(listen)))
    }

    /// Its handshake.
    pub fn hello(&self) -> Message {
        self.hello_as(&self.shared.listen)
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

    /// Opens a link to `node` without saying hello.
    pub async fn open(&self, node: &str) -> FakeLink {
        let stream = wire::dial(&node.parse().unwrap(), Duration::from_secs(10))
            .await
            .unwrap();
        let (reader, writer) = tokio::io::split(stream);
        let frames = FrameReader::new(wire::frame_budget(0));
        FakeLink { reader, writer, frames }
    }

    /// Opens a link to `node` and completes the handshake claiming `listen`; returns the
    /// link and the node's hello.
    pub async fn connect_as(&self, node: &str, listen: &str) -> (FakeLink, Message) {
        let mut link = self.open(node).await;
        link.send(&self.hello_as(listen)).await;
        let answer = link.recv().await.expect("the node's hello");
        (link, answer)
    }

    /// Opens a link to `node` as itself and completes the handshake.
    pub async fn connect(&self, node: &str) -> FakeLink {
        let (link, answer) = self.connect_as(node, &self.addr()).await;
        assert!(
            matches!(answer, Message::Hello(_)),
            "expected the node's hello, got {answer:?}"
        );
        link
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.shared.gate.send_replace(true);
        self.server.abort();
    }
}
