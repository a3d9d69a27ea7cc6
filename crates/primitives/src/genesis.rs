//! The hard-coded genesis block every chainsim chain starts from.

use crate::block::Block;
use crate::hash::{BlockHash, MerkleRoot};
use crate::header::{HEADER_VERSION, Header};
use crate::pow::CompactTarget;

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
