//! Consensus parameters: everything two nodes must agree on, in one value.

use std::sync::Arc;

use chainsim_primitives::block::DecodeLimits;
use chainsim_primitives::{Block, BlockHash, CompactTarget, genesis_block};

/// Consensus rules and limits of one network.
#[derive(Clone, Debug)]
pub struct ChainParams {
    /// Human name of the network, shown in status.
    pub name: &'static str,
    /// The target every block must meet, in compact form.
    pub bits: CompactTarget,
    /// The coinbase amount of every block.
    pub reward: u64,
    /// Most transactions in one block, coinbase included.
    pub max_block_txs: usize,
    /// Most bytes of one encoded block.
    pub max_block_bytes: usize,
    /// How far a block's timestamp may be ahead of the local clock, in milliseconds.
    pub max_future_ms: u64,
    genesis: Arc<Block>,
    genesis_hash: BlockHash,
}

/// Leading zero bits of the default network's target: about 2^18 hashes a block, a few
/// hundredths of a second on one core.
pub const DEFAULT_ZERO_BITS: u32 = 18;

impl ChainParams {
    /// The network every `chainsim node` joins unless told otherwise.
    pub fn default_network() -> Self {
        Self::with_bits("chainsim", CompactTarget::from_leading_zero_bits(DEFAULT_ZERO_BITS))
    }

    /// A network with its own target (and so its own genesis), e.g. an easy one for tests.
    pub fn with_bits(name: &'static str, bits: CompactTarget) -> Self {
        let genesis = genesis_block(bits);
        let genesis_hash = genesis.compute_hash();
        Self {
            name,
            bits,
            reward: 50,
            max_block_txs: 10_000,
            max_block_bytes: 1_000_000,
            max_future_ms: 2 * 60 * 60 * 1000,
            genesis: Arc::new(genesis),
            genesis_hash,
        }
    }

    /// An easy network (about 256 hashes a block) for tests that mine many blocks.
    pub fn testnet() -> Self {
        Self::with_bits("chainsim-test", CompactTarget::from_leading_zero_bits(8))
    }

    /// The hard-coded first block.
    pub fn genesis(&self) -> &Arc<Block> {
        &self.genesis
    }

    /// Hash of the first block.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// Limits for decoding a block from bytes.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_txs: self.max_block_txs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the default genesis: changing any consensus byte must be a deliberate act.
    #[test]
    fn default_genesis_hash_is_pinned() {
        let p = ChainParams::default_network();
        assert_eq!(p.bits, CompactTarget(0x1e3f_ffff));
        assert_eq!(
            p.genesis_hash().to_hex(),
            "0d0afab6df9628d7b6c2bb91e63be13f6565a337aebb1e410223ec4e919bb926"
        );
    }
}
