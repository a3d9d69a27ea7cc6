//! Shared helpers for the core's integration tests: block building and mining on the easy
//! test network, and `Sim`, the library's in-memory network (`chainsim_core::testnet`) with
//! helpers that panic instead of returning errors.
//!
//! Every test file includes this with `mod support;` and uses a different subset of it.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use chainsim_core::node::{BlockOutcome, BlockRejected, TxOutcome, TxRejected};
use chainsim_core::protocol::Message;
use chainsim_core::testnet::TestNet;
use chainsim_core::{ChainParams, Command, Input, Node, PeerAddr, PeerId, RestoreReport, Time};
use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{Block, BlockHash, Header, Transaction, Txid};

pub use chainsim_core::testnet::{
    EXTERNAL, FAIL_AFTER_MS, START_MS as T0, SentMsg, TestNode as SimNode, addr, config as sim_config,
};

/// The easy test network (about 256 hashes a block).
pub fn params() -> Arc<ChainParams> {
    Arc::new(ChainParams::testnet())
}

/// Sets the header's Merkle root from the transactions.
pub fn fix_merkle(block: &mut Block) {
    block.header.merkle_root = block.compute_merkle_root().0;
}

/// Finds a nonce meeting the network target (the only thing left to change once every
/// other field is final).
pub fn solve(params: &ChainParams, block: &mut Block) {
    let (nonce, _) = search_nonce(&block.header, &params.bits.to_target(), 0, u64::MAX).unwrap();
    block.header.nonce = nonce;
}

/// Recomputes the Merkle root, then mines.
pub fn seal(params: &ChainParams, block: &mut Block) {
    fix_merkle(block);
    solve(params, block);
}

/// A valid, mined child of `parent` paying `miner`, at `timestamp`, carrying `txs` after
/// the coinbase.
pub fn child(params: &ChainParams, parent: &Block, miner: &str, timestamp: u64, txs: Vec<Transaction>) -> Block {
    let mut transactions = vec![Transaction::coinbase(miner, params.reward, timestamp)];
    transactions.extend(txs);
    let mut block = Block {
        header: Header {
            version: chainsim_primitives::header::HEADER_VERSION,
            height: parent.header.height + 1,
            prev_hash: parent.compute_hash(),
            merkle_root: Default::default(),
            timestamp,
            bits: params.bits,
            nonce: 0,
        },
        transactions,
    };
    seal(params, &mut block);
    block
}

/// A well-formed transaction, different for every `n`.
pub fn tx(n: u64) -> Transaction {
    Transaction::new(format!("alice{n}"), "bob", n + 1, T0 + n)
}

/// `ms` as a [`Time`].
pub fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

/// Submits a transaction at `node`, returning the answer at once.
pub fn submit_tx(node: &mut Node, tx: Transaction, now: u64) -> Result<TxOutcome, TxRejected> {
    node.command(at(now), Command::SubmitTx(tx)).into_tx().unwrap()
}

/// Hands `node` a block as a user would.
pub fn submit_block(node: &mut Node, block: Block, now: u64) -> Result<BlockOutcome, BlockRejected> {
    node.command(at(now), Command::SubmitBlock(block)).into_block().unwrap()
}

/// Hands `node` a block its miner found.
pub fn submit_mined(node: &mut Node, block: Block, now: u64) -> Result<BlockOutcome, BlockRejected> {
    node.command(at(now), Command::MinedBlock(block)).into_block().unwrap()
}

/// `msg` arrives at `node` on link `from`.
pub fn deliver(node: &mut Node, from: PeerId, msg: Message, now: u64) {
    node.handle_input(at(now), Input::Message { from, msg });
}

/// Every message `node` queued, with its link (other outputs are dropped).
pub fn sends(node: &mut Node) -> Vec<(PeerId, Message)> {
    let mut out = Vec::new();
    while let Some(o) = node.poll_output() {
        if let chainsim_core::Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    out
}

/// A hello as a peer listening at `from` would send it, claiming `height` and `work`.
pub fn hello_from(node: &Node, from: &PeerAddr, height: u64, work: chainsim_primitives::Work) -> Message {
    Message::Hello(Box::new(chainsim_core::protocol::Hello {
        version: chainsim_core::protocol::PROTOCOL_VERSION,
        genesis: node.params().genesis_hash(),
        listen: from.clone(),
        height,
        work: chainsim_core::protocol::WireWork::new(work),
        agent: "test".into(),
        // As a node makes it (a peer's secret, here fixed): the same on every link from
        // this peer, another for every other peer.
        token: Some(chainsim_core::peers::LinkToken::new(&[0; 16], Some(from))),
    }))
}

/// Opens an inbound link `link` at `node` from a peer at `from` and completes its
/// handshake; the node's answer is dropped.
pub fn link_in(
    node: &mut Node,
    link: u64,
    from: &PeerAddr,
    height: u64,
    work: chainsim_primitives::Work,
    now: u64,
) -> PeerId {
    let peer = PeerId(link);
    node.handle_input(at(now), Input::LinkUp { peer, addr: None });
    let hello = hello_from(node, from, height, work);
    node.handle_input(at(now), Input::Message { from: peer, msg: hello });
    peer
}

// ----- the simulated network ----------------------------------------------------------

/// [`TestNet`] for tests: its local actions panic on failure instead of returning errors.
/// Everything else is `TestNet`'s own (through `Deref`).
pub struct Sim(pub TestNet);

impl Sim {
    /// `n` nodes at `10.0.0.{i}:5000` paying `miner{i}`, none knowing any other yet.
    pub fn new(n: usize, seed: u64) -> Self {
        Self(TestNet::new(n, seed))
    }

    /// Node `i` mines one block on its tip from its template, now; returns its hash.
    pub fn mine(&mut self, i: usize) -> BlockHash {
        self.0.mine(i).unwrap()
    }

    /// Submits a transaction at node `i`; returns its txid.
    pub fn submit_tx(&mut self, i: usize, tx: Transaction) -> Txid {
        self.0.submit_tx(i, tx).unwrap()
    }

    /// A test-driven peer sends `msg` on its link to node `to`, now (here rather than
    /// through `Deref` so that `msg` may be built from `sim` in the call).
    pub fn inject(&mut self, link: PeerId, to: usize, msg: Message) {
        self.0.inject(link, to, msg);
    }

    /// Rebuilds node `i` from its store and brings it up.
    pub fn restart(&mut self, i: usize) -> RestoreReport {
        self.0.restart(i).unwrap()
    }
}

impl Deref for Sim {
    type Target = TestNet;
    fn deref(&self) -> &TestNet {
        &self.0
    }
}

impl DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut TestNet {
        &mut self.0
    }
}
