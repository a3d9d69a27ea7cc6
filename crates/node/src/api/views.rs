//! From the core's values to the API's shapes ([`chainsim_api`], docs/API.md).

use std::sync::Arc;

use chainsim_api::BlockView;
use chainsim_core::BlockTree;
use chainsim_primitives::{Block, BlockHash, Txid};

/// A block with its hash, cheap to clone out of the driver (the body is shared).
#[derive(Debug, Clone)]
pub struct BlockRef {
    /// Its hash.
    pub hash: BlockHash,
    /// The block.
    pub block: Arc<Block>,
}

impl BlockRef {
    /// The block `hash` of `tree`, its body read from memory or the store.
    pub fn of(tree: &BlockTree, hash: &BlockHash) -> Option<Self> {
        Some(Self {
            hash: *hash,
            block: tree.block(hash)?,
        })
    }

    /// The block as the API shows it (txids are computed here, outside the driver).
    pub fn view(&self) -> BlockView {
        let txids: Vec<Txid> = self.block.compute_txids();
        BlockView::new(self.hash, &self.block, &txids)
    }
}
