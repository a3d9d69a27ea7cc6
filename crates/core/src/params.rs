//! Consensus parameters: everything two nodes must agree on, in one value.

use std::sync::Arc;

use chainsim_primitives::block::DecodeLimits;
use chainsim_primitives::{Block, BlockHash, CompactTarget, accounts_genesis_block, genesis_block};

use crate::ledger::LedgerKind;

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
    /// Which rules transactions follow; each kind has its own genesis.
    pub ledger: LedgerKind,
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
        Self::with_ledger(name, bits, LedgerKind::Open)
    }

    /// A network of ledger `kind` with its own target. An accounts network's genesis funds
    /// the demo accounts, so its hash differs from the open network's of the same target.
    pub fn with_ledger(name: &'static str, bits: CompactTarget, ledger: LedgerKind) -> Self {
        let genesis = match ledger {
            LedgerKind::Open => genesis_block(bits),
            LedgerKind::Accounts => accounts_genesis_block(bits),
        };
        let genesis_hash = genesis.compute_hash();
        Self {
            name,
            bits,
            reward: 50,
            max_block_txs: 10_000,
            max_block_bytes: 1_000_000,
            max_future_ms: 2 * 60 * 60 * 1000,
            ledger,
            genesis: Arc::new(genesis),
            genesis_hash,
        }
    }

    /// An easy network (about 256 hashes a block) for tests that mine many blocks.
    pub fn testnet() -> Self {
        Self::with_bits("chainsim-test", CompactTarget::from_leading_zero_bits(8))
    }

    /// The default network's target with the accounts ledger (`--ledger accounts`).
    pub fn accounts_network() -> Self {
        let bits = CompactTarget::from_leading_zero_bits(DEFAULT_ZERO_BITS);
        Self::with_ledger("chainsim-accounts", bits, LedgerKind::Accounts)
    }

    /// The default network of ledger `kind`.
    pub fn network_of(kind: LedgerKind) -> Self {
        match kind {
            LedgerKind::Open => Self::default_network(),
            LedgerKind::Accounts => Self::accounts_network(),
        }
    }

    /// The easy test network with the accounts ledger.
    pub fn testnet_accounts() -> Self {
        Self::with_ledger(
            "chainsim-test-accounts",
            CompactTarget::from_leading_zero_bits(8),
            LedgerKind::Accounts,
        )
    }

    /// The name of a well-known network by its genesis hash, to say plainly why a peer of
    /// another network is refused.
    pub fn known_network(genesis: &BlockHash) -> Option<String> {
        // Computed once: a peer sending wrong hellos must not make us derive keys each time.
        static KNOWN: std::sync::OnceLock<Vec<(BlockHash, String)>> = std::sync::OnceLock::new();
        let known = KNOWN.get_or_init(|| {
            [
                Self::default_network(),
                Self::accounts_network(),
                Self::testnet(),
                Self::testnet_accounts(),
            ]
            .into_iter()
            .map(|p| (p.genesis_hash(), format!("{}, {} ledger", p.name, p.ledger.as_str())))
            .collect()
        });
        known.iter().find(|(h, _)| h == genesis).map(|(_, n)| n.clone())
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
        assert_eq!(p.ledger, LedgerKind::Open);
    }

    /// Pins the accounts genesis, and that it is another network than the open one.
    #[test]
    fn accounts_genesis_hash_is_pinned_and_differs() {
        let p = ChainParams::accounts_network();
        assert_eq!(p.genesis().transactions.len(), 10);
        assert_ne!(p.genesis_hash(), ChainParams::default_network().genesis_hash());
        assert_eq!(
            p.genesis_hash().to_hex(),
            "2fea02fcc314fb168c74abb71b9432d23dbc77fa0f11b49a7c2d0ecbe15518de"
        );
        assert_eq!(
            ChainParams::known_network(&p.genesis_hash()).as_deref(),
            Some("chainsim-accounts, accounts ledger")
        );
    }
}
