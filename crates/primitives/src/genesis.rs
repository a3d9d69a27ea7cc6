//! The hard-coded genesis block every chainsim chain starts from.

use crate::block::Block;
use crate::hash::{BlockHash, MerkleRoot};
use crate::header::{HEADER_VERSION, Header};
use crate::keys::{DEMO_BALANCE, DEMO_NAMES, demo_key};
use crate::merkle::compute_merkle_root;
use crate::pow::CompactTarget;
use crate::transaction::Transaction;

/// Genesis timestamp: the original's `1500000000` seconds, in milliseconds.
pub const GENESIS_TIMESTAMP_MS: u64 = 1_500_000_000_000;

/// The genesis block of a network mining at `bits`. It has no transactions (as in the
/// original) and a nonce of 100 (the original's genesis proof). Its hash is not required
/// to meet the target: it is trusted because it is compiled in, not because of its work.
pub fn genesis_block(bits: CompactTarget) -> Block {
    Block {
        header: Header {
            version: HEADER_VERSION,
            height: 0,
            prev_hash: BlockHash::ZERO,
            merkle_root: MerkleRoot::ZERO,
            timestamp: GENESIS_TIMESTAMP_MS,
            bits,
            nonce: 100,
        },
        transactions: Vec::new(),
    }
}

/// The genesis block of an accounts network mining at `bits`: the open genesis plus one
/// funding transaction per demo account (coinbase-shaped, version 1, paying
/// [`DEMO_BALANCE`] to the account's address), so its hash differs from the open network's.
pub fn accounts_genesis_block(bits: CompactTarget) -> Block {
    let mut block = genesis_block(bits);
    block.transactions = DEMO_NAMES
        .iter()
        .filter_map(|name| demo_key(name))
        .map(|key| Transaction::coinbase(key.address().to_text(), DEMO_BALANCE, GENESIS_TIMESTAMP_MS))
        .collect();
    let txids: Vec<_> = block.transactions.iter().map(Transaction::compute_txid).collect();
    block.header.merkle_root = compute_merkle_root(&txids).0;
    block
}
