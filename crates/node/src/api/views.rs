//! JSON shapes of blocks and transactions (see docs/API.md).

use std::sync::Arc;

use chainsim_core::chain::BlockEntry;
use chainsim_primitives::{Block, BlockHash, Transaction, Txid};
use serde::Serialize;

/// A transaction as the API shows it.
#[derive(Debug, Serialize)]
pub struct TxView {
    /// Its id.
    pub txid: Txid,
    /// Encoding version.
    pub version: u8,
    /// Who pays (`"0"` for the coinbase).
    pub sender: String,
    /// Who is paid.
    pub recipient: String,
    /// How much.
    pub amount: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
}

impl TxView {
    /// The view of `tx` with id `txid`.
    pub fn new(txid: Txid, tx: &Transaction) -> Self {
        Self {
            txid,
            version: tx.version,
            sender: tx.sender.clone(),
            recipient: tx.recipient.clone(),
            amount: tx.amount,
            timestamp: tx.timestamp,
        }
    }
}

/// A block as the API shows it, with the original's `index` (height + 1).
#[derive(Debug, Serialize)]
pub struct BlockView {
    /// Header hash.
    pub hash: BlockHash,
    /// Height (genesis 0).
    pub height: u64,
    /// The original's 1-based index.
    pub index: u64,
    /// Header version.
    pub version: u32,
    /// Parent hash.
    pub previous_hash: BlockHash,
    /// Merkle root of the txids.
    pub merkle_root: chainsim_primitives::MerkleRoot,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The full target as 64 hex digits.
    pub target: String,
    /// The compact target.
    pub bits: String,
    /// The proof-of-work nonce.
    pub nonce: u64,
    /// Encoded size in bytes.
    pub size: usize,
    /// Transactions, coinbase first.
    pub transactions: Vec<TxView>,
}

/// A block with its cached hash and txids, cheap to clone out of the driver.
#[derive(Debug, Clone)]
pub struct BlockRef {
    /// Its hash.
    pub hash: BlockHash,
    /// The block.
    pub block: Arc<Block>,
    /// Its txids.
    pub txids: Arc<[Txid]>,
}

impl From<&BlockEntry> for BlockRef {
    fn from(e: &BlockEntry) -> Self {
        Self {
            hash: e.hash,
            block: e.block.clone(),
            txids: e.txids.clone(),
        }
    }
}

impl BlockView {
    /// The view of a block.
    pub fn new(b: &BlockRef) -> Self {
        let h = &b.block.header;
        Self {
            hash: b.hash,
            height: h.height,
            index: h.height + 1,
            version: h.version,
            previous_hash: h.prev_hash,
            merkle_root: h.merkle_root,
            timestamp: h.timestamp,
            target: h.bits.to_target().to_hex(),
            bits: h.bits.to_string(),
            nonce: h.nonce,
            size: b.block.encoded_len(),
            transactions: b
                .block
                .transactions
                .iter()
                .zip(b.txids.iter())
                .map(|(tx, id)| TxView::new(*id, tx))
                .collect(),
        }
    }
}
