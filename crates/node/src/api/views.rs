//! From the core's values to the API's shapes ([`chainsim_api`], docs/API.md).

use std::sync::Arc;
use std::time::Duration;

use chainsim_api::{BlockView, LinkConditionsView, LinkRequest, MiningModeName, MiningRequest, MiningView};
use chainsim_core::{BlockTree, LinkConditions, MiningMode, MiningSchedule};
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

/// Conditions as the API shows them.
pub fn link_view(c: &LinkConditions) -> LinkConditionsView {
    LinkConditionsView {
        bandwidth_bps: c.bandwidth_bps,
        cut: c.cut,
        jitter_ms: c.jitter_ms,
        latency_ms: c.latency_ms,
        loss: c.loss,
    }
}

/// `before` with the fields `change` names replaced (ranges are checked afterwards, by
/// [`LinkConditions::validate`]).
pub fn apply_link_change(before: LinkConditions, change: &LinkRequest) -> LinkConditions {
    LinkConditions {
        latency_ms: change.latency_ms.unwrap_or(before.latency_ms),
        jitter_ms: change.jitter_ms.unwrap_or(before.jitter_ms),
        loss: change.loss.unwrap_or(before.loss),
        bandwidth_bps: change.bandwidth_bps.unwrap_or(before.bandwidth_bps),
        cut: change.cut.unwrap_or(before.cut),
    }
}

/// The mining mode a `POST /mining` asks for (ranges are checked by
/// [`MiningMode::validate`]); a missing block time is refused here.
pub fn mining_mode(req: &MiningRequest) -> Result<MiningMode, String> {
    let block_time = || {
        let secs = req
            .block_time_s
            .ok_or_else(|| format!("mode {:?} needs block_time_s", req.mode))?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("block_time_s must be a positive number of seconds, got {secs}"))
    };
    Ok(match req.mode {
        MiningModeName::Manual => MiningMode::Manual,
        MiningModeName::Interval => MiningMode::Interval { every: block_time()? },
        MiningModeName::Auto => MiningMode::Auto {
            network_interval: block_time()?,
            share: req.share.unwrap_or(1.0),
        },
    })
}

/// The mining schedule as the API shows it.
pub fn mining_view(s: &MiningSchedule) -> MiningView {
    let (mode, block_time, share) = match s.mode() {
        MiningMode::Manual => (MiningModeName::Manual, None, None),
        MiningMode::Interval { every } => (MiningModeName::Interval, Some(every), None),
        MiningMode::Auto {
            network_interval,
            share,
        } => (MiningModeName::Auto, Some(network_interval), Some(share)),
    };
    MiningView {
        block_time_s: block_time.map(|d| d.as_secs_f64()),
        mode,
        observed_interval_s: s.observed_interval().map(|d| d.as_secs_f64()),
        share,
    }
}
