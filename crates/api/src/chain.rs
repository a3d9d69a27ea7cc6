//! Transactions and blocks: the original's routes (`/transactions/*`, `/mine`, `/chain`)
//! and chainsim's block explorer (`/blocks`, `/transactions/{txid}`).

use chainsim_primitives::{Block, BlockHash, Hash256, MerkleProof, MerkleRoot, Signed, Transaction, Txid};
use serde::{Deserialize, Serialize};

/// A transaction as the API shows it (docs/API.md, "Tx").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    /// How much.
    pub amount: u64,
    /// Who is paid.
    pub recipient: String,
    /// Who pays (`"0"` for the coinbase).
    pub sender: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Its id.
    pub txid: Txid,
    /// Encoding version.
    pub version: u8,
    /// Version 2 (accounts ledger) only: `nonce`, `public_key`, `signature`.
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub signed: Option<Signed>,
}

impl TxView {
    /// The view of `tx`, whose id is `txid`.
    pub fn new(txid: Txid, tx: &Transaction) -> Self {
        Self {
            amount: tx.amount,
            recipient: tx.recipient.clone(),
            sender: tx.sender.clone(),
            timestamp: tx.timestamp,
            txid,
            version: tx.version,
            signed: tx.signed.clone(),
        }
    }
}

/// A block as the API shows it (docs/API.md, "Block"), with the original's 1-based `index`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// The compact target as 8 hex digits.
    pub bits: String,
    /// Header hash.
    pub hash: BlockHash,
    /// Height (genesis 0).
    pub height: u64,
    /// The original's index: height + 1.
    pub index: u64,
    /// Merkle root of the txids.
    pub merkle_root: MerkleRoot,
    /// The proof-of-work nonce.
    pub nonce: u64,
    /// Parent hash.
    pub previous_hash: BlockHash,
    /// Encoded size in bytes.
    pub size: u64,
    /// The full target as 64 hex digits.
    pub target: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Transactions, coinbase first.
    pub transactions: Vec<TxView>,
    /// Header version.
    pub version: u32,
}

impl BlockView {
    /// The view of `block`, whose hash is `hash` and whose txids are `txids` (in order).
    pub fn new(hash: BlockHash, block: &Block, txids: &[Txid]) -> Self {
        let h = &block.header;
        Self {
            bits: h.bits.to_string(),
            hash,
            height: h.height,
            index: h.height + 1,
            merkle_root: h.merkle_root,
            nonce: h.nonce,
            previous_hash: h.prev_hash,
            size: block.encoded_len() as u64,
            target: h.bits.to_target().to_hex(),
            timestamp: h.timestamp,
            transactions: block
                .transactions
                .iter()
                .zip(txids)
                .map(|(tx, id)| TxView::new(*id, tx))
                .collect(),
            version: h.version,
        }
    }
}

/// `GET /chain`: the whole best chain, genesis first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainAnswer {
    /// The blocks, genesis first.
    pub chain: Vec<BlockView>,
    /// How many blocks, genesis included (the original's count).
    pub length: u64,
}

impl ChainAnswer {
    /// What a streamed answer starts with; the blocks follow, separated by commas.
    pub const STREAM_HEAD: &'static [u8] = b"{\"chain\":[";

    /// What a streamed answer of `length` blocks ends with.
    pub fn stream_tail(length: u64) -> String {
        format!("],\"length\":{length}}}")
    }
}

/// `GET /blocks?from=H&limit=N`: a page of the best chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocksPage {
    /// The blocks, lowest first.
    pub blocks: Vec<BlockView>,
}

/// `GET|POST /mine`: the block just mined and stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MineAnswer {
    /// The new block.
    pub block: BlockView,
    /// `"new block mined"`.
    pub message: String,
}

/// `GET /transactions/pending`: the mempool, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAnswer {
    /// `"N pending transactions"`.
    pub message: String,
    /// The pending transactions, oldest first.
    pub transactions: Vec<TxView>,
}

/// The body of `POST /transactions/new` as a well-behaved client sends it. (The node reads
/// the body more leniently, as the original's clients sent it: numeric strings, floats.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTxRequest {
    /// How much, at least 1.
    pub amount: u64,
    /// Who is paid.
    pub recipient: String,
    /// Who pays.
    pub sender: String,
    /// The original's float seconds since the epoch; absent means now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
}

/// `POST /transactions/new`: accepted (201) or already known (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTxAnswer {
    /// What happened, for people.
    pub message: String,
    /// The transaction's id.
    pub txid: Txid,
}

/// Where a transaction of `GET /transactions/{txid}` stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxStatus {
    /// In the mempool.
    Pending,
    /// In a block of the best chain.
    Confirmed,
}

/// A Merkle proof that a txid is in a block (docs/API.md, "MerkleProof").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofView {
    /// Position of the transaction in its block.
    pub index: u32,
    /// The block's Merkle root, which the proof leads to.
    pub root: MerkleRoot,
    /// Sibling hashes from the leaf level up.
    pub siblings: Vec<Hash256>,
}

impl ProofView {
    /// The view of `proof`, which leads to `root`.
    pub fn new(proof: MerkleProof, root: MerkleRoot) -> Self {
        Self {
            index: proof.index,
            root,
            siblings: proof.siblings,
        }
    }
}

/// Where a confirmed transaction is: the part of [`TxLookup`] only confirmed ones have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The block holding it.
    pub block_hash: BlockHash,
    /// Blocks on top of it, its own included.
    pub confirmations: u64,
    /// The block's height.
    pub height: u64,
    /// Its Merkle proof.
    pub proof: ProofView,
}

/// `GET /transactions/{txid}`: pending, or confirmed with its block and Merkle proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLookup {
    /// Present exactly when `status` is confirmed; its fields sit at the top level.
    #[serde(flatten)]
    pub confirmed: Option<Confirmation>,
    /// Pending or confirmed.
    pub status: TxStatus,
    /// The transaction.
    pub transaction: TxView,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use chainsim_primitives::genesis_block;

    use super::*;

    fn block() -> BlockView {
        let mut b = genesis_block(chainsim_primitives::CompactTarget(0x2000_ffff));
        b.transactions.push(Transaction::new("Alice", "Bob", 10, 5));
        let txids: Vec<Txid> = b.transactions.iter().map(Transaction::compute_txid).collect();
        BlockView::new(b.header.compute_hash(), &b, &txids)
    }

    #[test]
    fn block_fields_are_written_sorted() {
        let text = serde_json::to_string(&block()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // serde_json's own map is sorted: the same text means the same order.
        assert_eq!(text, v.to_string());
        assert_eq!(serde_json::from_str::<BlockView>(&text).unwrap(), block());
    }

    #[test]
    fn streamed_chain_pieces_match_the_struct() {
        let blocks = vec![block(), block()];
        let whole = serde_json::to_vec(&ChainAnswer {
            chain: blocks.clone(),
            length: 2,
        })
        .unwrap();
        let mut pieces = ChainAnswer::STREAM_HEAD.to_vec();
        for (i, b) in blocks.iter().enumerate() {
            if i > 0 {
                pieces.push(b',');
            }
            serde_json::to_writer(&mut pieces, b).unwrap();
        }
        pieces.extend_from_slice(ChainAnswer::stream_tail(2).as_bytes());
        assert_eq!(String::from_utf8(pieces).unwrap(), String::from_utf8(whole).unwrap());
        let empty = [ChainAnswer::STREAM_HEAD, ChainAnswer::stream_tail(0).as_bytes()].concat();
        assert_eq!(
            serde_json::from_slice::<ChainAnswer>(&empty).unwrap(),
            ChainAnswer {
                chain: vec![],
                length: 0
            }
        );
    }

    #[test]
    fn tx_lookup_has_the_proof_only_when_confirmed() {
        let tx = block().transactions[0].clone();
        let pending = TxLookup {
            confirmed: None,
            status: TxStatus::Pending,
            transaction: tx.clone(),
        };
        let text = serde_json::to_string(&pending).unwrap();
        assert!(
            text.starts_with(r#"{"status":"pending","transaction":{"amount":10,"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<TxLookup>(&text).unwrap(), pending);

        let confirmed = TxLookup {
            confirmed: Some(Confirmation {
                block_hash: BlockHash::ZERO,
                confirmations: 1,
                height: 0,
                proof: ProofView {
                    index: 1,
                    root: MerkleRoot::ZERO,
                    siblings: vec![Hash256::ZERO],
                },
            }),
            status: TxStatus::Confirmed,
            transaction: tx,
        };
        let text = serde_json::to_string(&confirmed).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, v.to_string(), "fields sorted, the proof's part first");
        assert_eq!(serde_json::from_str::<TxLookup>(&text).unwrap(), confirmed);
    }
}
