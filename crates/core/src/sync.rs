//! Catch-up: finding the fork point with a peer and downloading what we lack, in batches.
//!
//! We sync from one peer at a time: the connected peer with the most work beyond ours, or
//! the one that just sent a block whose parent we lack. A `GetBlocks` carries a block
//! locator (our last ten hashes, then exponentially sparser back to genesis), so the peer
//! finds the fork point and sends at most [`BATCH`] best-chain blocks after it — never the
//! whole chain. A full batch means there is more: the next request's locator starts with
//! the last block received, so a branch lighter than ours so far still downloads to its
//! end. A peer that does not answer in time is dropped and another one used.

use std::sync::Arc;

use chainsim_primitives::{Block, BlockHash};

use crate::event::Event;
use crate::node::{BlockRejected, Node, Origin};
use crate::peers::{PeerAddr, PeerState};
use crate::protocol::{MAX_BLOCKS_PER_MESSAGE, Message, WireBlock};

/// Blocks asked for per request.
pub const BATCH: u32 = MAX_BLOCKS_PER_MESSAGE as u32;
/// How long a sync peer may take to answer, in milliseconds.
pub const SYNC_TIMEOUT_MS: u64 = 15_000;
/// Longest locator accepted from a peer.
pub const MAX_LOCATOR: usize = 128;

/// The download in progress.
#[derive(Debug, Clone)]
pub struct SyncState {
    /// The peer we download from.
    pub peer: PeerAddr,
    /// When the outstanding request was sent.
    pub requested_at: u64,
    /// Height the peer announced.
    pub target: u64,
}

impl Node {
    /// Whether a download is in progress or due: a peer known to have more work than us
    /// is connected (or briefly unreachable after few failures), or a handshake is under
    /// way. The live node waits for this to turn false before it serves (initial block
    /// download).
    pub fn is_syncing(&self) -> bool {
        let our_work = self.tree.tip().chain_work;
        self.sync.is_some()
            || self.peers.iter().any(|p| match p.state {
                PeerState::Connecting => true,
                PeerState::Connected => p.work > our_work && !p.sync_failed,
                PeerState::Idle | PeerState::Backoff => p.work > our_work && !p.sync_failed && p.failures < 3,
                PeerState::Blocked | PeerState::Banned => false,
            })
    }

    /// The peer we download from, if any.
    pub fn sync_peer(&self) -> Option<&SyncState> {
        self.sync.as_ref()
    }

    /// Asks every connected peer for what we lack, now (the original's `/nodes/resolve`).
    pub fn resync(&mut self, now: u64) {
        let locator = self.tree.locator();
        for peer in self.peers.connected() {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.sync_failed = false;
            }
            self.send(
                peer,
                Message::GetBlocks {
                    locator: locator.clone(),
                    limit: BATCH,
                },
            );
        }
        self.maybe_start_sync(now);
    }

    /// Starts downloading from the best peer if one has more work and none is in progress.
    pub(crate) fn maybe_start_sync(&mut self, now: u64) {
        if self.sync.is_some() {
            return;
        }
        let our_work = self.tree.tip().chain_work;
        let best = self
            .peers
            .iter()
            .filter(|p| p.state == PeerState::Connected && !p.sync_failed && (p.work > our_work || p.wants_sync))
            .max_by_key(|p| (p.work, p.height))
            .map(|p| (p.address.clone(), p.height));
        if let Some((peer, target)) = best {
            self.request_blocks(peer, target, None, now);
        }
    }

    fn request_blocks(&mut self, peer: PeerAddr, target: u64, after: Option<BlockHash>, now: u64) {
        let mut locator = self.tree.locator();
        if let Some(after) = after {
            locator.insert(0, after);
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.wants_sync = false;
        }
        self.sync = Some(SyncState {
            peer: peer.clone(),
            requested_at: now,
            target,
        });
        self.send(peer, Message::GetBlocks { locator, limit: BATCH });
    }

    /// Answers a `GetBlocks`: best-chain blocks after the fork point the locator names.
    pub(crate) fn serve_blocks(&self, locator: &[BlockHash], limit: u32) -> Message {
        let tip_height = self.tree.height();
        let Some(fork) = self.tree.find_fork(locator) else {
            return Message::Blocks {
                blocks: Vec::new(),
                tip_height,
            };
        };
        let start = fork.height() + 1;
        let end = (start + u64::from(limit.min(BATCH))).min(tip_height + 1);
        let blocks = (start..end)
            .filter_map(|h| self.tree.at_height(h))
            .map(|e| WireBlock(e.block.clone()))
            .collect();
        Message::Blocks { blocks, tip_height }
    }

    /// Takes a batch of blocks answering our `GetBlocks`.
    pub(crate) fn on_blocks(&mut self, from: &PeerAddr, blocks: Vec<Arc<Block>>, tip_height: u64, now: u64) {
        if let Some(p) = self.peers.get_mut(from) {
            p.height = p.height.max(tip_height);
        }
        let full = blocks.len() >= BATCH as usize;
        let tip_before = self.tree.tip().hash;
        let mut last = None;
        let mut failed = false;
        // Blocks this batch itself brought in (accepted without relaying).
        let mut taken = Vec::new();
        for block in blocks {
            let hash = block.compute_hash();
            match self.accept_block(block, Origin::Peer(from.clone()), false, now) {
                Ok(_) => {
                    taken.push(hash);
                    last = Some(hash);
                }
                Err(BlockRejected::Duplicate(_)) => last = Some(hash),
                Err(BlockRejected::UnknownParent(_)) => {
                    self.misbehave(from, 20, "sent a batch of blocks that does not connect", now);
                    failed = true;
                    break;
                }
                Err(BlockRejected::Invalid(e)) => {
                    let reason = format!("sent an invalid block during sync ({}): {e}", e.rule());
                    self.misbehave(from, 50, &reason, now);
                    failed = true;
                    break;
                }
            }
        }
        // Peers that lack the blocks we just took will fetch them from the new tip.
        // Only when the batch itself brought the tip in: a tip that is an orphan the batch
        // connected was relayed already when it connected, and relaying it again would send
        // it twice over the same links.
        let tip = self.tree.tip();
        if tip.hash != tip_before && taken.contains(&tip.hash) {
            let block = tip.block.clone();
            self.relay_block(&block, Some(from));
        }
        let is_sync_peer = self.sync.as_ref().is_some_and(|s| &s.peer == from);
        if !is_sync_peer {
            return;
        }
        let target = self.sync.as_ref().map(|s| s.target).unwrap_or(0).max(tip_height);
        let done = failed || !full || last.is_none();
        self.emit(Event::Sync {
            height: self.tree.height(),
            target,
            peer: from.clone(),
            done,
        });
        self.sync = None;
        if !done {
            self.request_blocks(from.clone(), target, last, now);
            return;
        }
        // The peer had nothing more; if it still claims more work, do not ask it again
        // until it announces something new.
        let our_work = self.tree.tip().chain_work;
        if let Some(p) = self.peers.get_mut(from)
            && p.work > our_work
        {
            p.sync_failed = true;
        }
        self.maybe_start_sync(now);
    }

    /// Keeps a block whose parent is unknown and asks its sender for what leads to it.
    pub(crate) fn on_orphan(&mut self, from: &PeerAddr, block: Arc<Block>, now: u64) {
        let hash = block.compute_hash();
        if self.orphans.len() >= self.config.max_orphans {
            // Forget the lowest orphan: the highest ones are the likeliest to matter.
            // Ties broken by hash, not by the HashMap's (OS-seeded) order: same inputs, same node.
            if let Some(victim) = self
                .orphans
                .iter()
                .min_by_key(|(h, (b, _))| (b.header.height, **h))
                .map(|(h, _)| *h)
            {
                self.orphans.remove(&victim);
            }
        }
        let height = block.header.height;
        self.orphans.insert(hash, (block, from.clone()));
        if let Some(p) = self.peers.get_mut(from) {
            p.height = p.height.max(height);
            p.wants_sync = true;
            p.sync_failed = false;
        }
        self.maybe_start_sync(now);
    }

    /// Connects orphans that were waiting for `parent`, and theirs in turn.
    pub(crate) fn connect_orphans(&mut self, parent: BlockHash, now: u64) {
        let mut parents = vec![parent];
        while let Some(p) = parents.pop() {
            let mut children: Vec<BlockHash> = self
                .orphans
                .iter()
                .filter(|(_, (b, _))| b.header.prev_hash == p)
                .map(|(h, _)| *h)
                .collect();
            // Connect siblings in a fixed order, not the HashMap's (OS-seeded) one: which of
            // two equal-work siblings is seen first decides the tip, and a node must be
            // deterministic for seeded simulations to replay.
            children.sort();
            for child in children {
                let Some((block, from)) = self.orphans.remove(&child) else {
                    continue;
                };
                if self.accept_one(block, &Origin::Peer(from), true, now).is_ok() {
                    parents.push(child);
                }
            }
        }
    }

    /// Drops a sync peer that stopped answering and tries another.
    pub(crate) fn check_sync_stall(&mut self, now: u64) {
        let Some(s) = &self.sync else { return };
        if now.saturating_sub(s.requested_at) < SYNC_TIMEOUT_MS {
            return;
        }
        let peer = s.peer.clone();
        self.sync = None;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.sync_failed = true;
        }
        self.fail_peer(&peer, "stalled during sync", now);
        self.maybe_start_sync(now);
    }
}
