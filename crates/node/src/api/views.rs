//! From the core's values to the API's shapes ([`chainsim_api`], docs/API.md).

use std::sync::Arc;

use chainsim_api::BlockView;
use chainsim_core::chain::BlockEntry;
use chainsim_primitives::{Block, BlockHash, Txid};

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

impl BlockRef {
    /// The block as the API shows it.
    pub fn view(&self) -> BlockView {
        BlockView::new(self.hash, &self.block, &self.txids)
    }
}
