//! Where transactions enter the mempool and blocks enter the chain: validation, fork
//! choice, the mempool's reaction to a new best chain, orphans connecting, and relaying
//! what was accepted.

use std::sync::Arc;

use chainsim_primitives::{BlockHash, Transaction, Txid};

use crate::chain::{CheckedBlock, HashedBlock, InsertError, TipChange, validate_hashed_in_chain};
use crate::event::{Event, EventKind};
use crate::mempool::Source;
use crate::node::{BlockOutcome, BlockRejected, Node, TxOutcome, TxRejected};
use crate::peers::PeerId;
use crate::store::StoreOp;
use crate::time::Time;

/// Where a block or transaction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A local user (API or command line).
    Local,
    /// Our own miner.
    Mined,
    /// A peer, by link.
    Peer(PeerId),
}

impl Origin {
    fn peer(self) -> Option<PeerId> {
        match self {
            Origin::Peer(p) => Some(p),
            _ => None,
        }
    }
}

/// The address link `peer` claims or proved, for events (a function of the peering alone,
/// so that an event's builder borrows it beside the node's outbox).
fn peer_addr(peering: &crate::peering::Peering, peer: Option<PeerId>) -> Option<crate::peers::PeerAddr> {
    peer.and_then(|p| peering.addr_of(p).cloned())
}

impl Node {
    /// Takes a transaction into the mempool (or finds it known), queueing it for relay;
    /// `verified` when its signature was checked before it came in.
    pub(crate) fn accept_tx(
        &mut self,
        tx: Transaction,
        from: Option<PeerId>,
        now: Time,
        verified: bool,
    ) -> Result<TxOutcome, TxRejected> {
        tx.check_well_formed(false)?;
        let txid = tx.compute_txid();
        if self.mempool.contains(&txid) || self.tree.find_tx(&txid).is_some() {
            return Ok(TxOutcome { txid, is_new: false });
        }
        self.ledger_admits(&tx, verified)?;
        let source = match from {
            None => Source::Local,
            Some(id) => Source::Peer {
                id,
                peers: self.peering.links().ready().count(),
            },
        };
        self.mempool.insert(txid, tx.clone(), source)?;
        if let Some(link) = from.and_then(|id| self.peering.links_mut().get_mut(id)) {
            link.last_tx = Some(now);
        }
        self.stats.txs_accepted += 1;
        self.out.store(StoreOp::PutTx(txid, Box::new(tx.clone())));
        self.out.emit(EventKind::Tx, || Event::Tx {
            txid,
            sender: tx.sender,
            recipient: tx.recipient,
            amount: tx.amount,
            from_peer: peer_addr(&self.peering, from),
        });
        self.relay.queue_tx(txid, from);
        Ok(TxOutcome { txid, is_new: true })
    }

    /// Validates and inserts a block, applies fork choice, updates the mempool, relays it
    /// when `relay` (catch-up batches relay only their new tip), then connects any orphans
    /// that were waiting for it.
    pub(crate) fn accept_block(
        &mut self,
        block: HashedBlock,
        origin: Origin,
        relay: bool,
        now: Time,
    ) -> Result<BlockOutcome, BlockRejected> {
        let outcome = self.accept_one(block, origin, relay, now)?;
        self.connect_orphans(outcome.hash, now);
        Ok(outcome)
    }

    fn accept_one(
        &mut self,
        block: HashedBlock,
        origin: Origin,
        relay: bool,
        now: Time,
    ) -> Result<BlockOutcome, BlockRejected> {
        let hash = block.hash();
        if self.tree.contains_header(&hash, &block.block().header) {
            return Err(BlockRejected::Duplicate(hash));
        }
        let prev = block.block().header.prev_hash;
        if !self.tree.contains(&prev) {
            return Err(BlockRejected::UnknownParent(prev));
        }
        // Pending transactions had their signatures checked when they arrived.
        let known_good = |txid: &Txid| self.mempool.contains(txid);
        let checked =
            match validate_hashed_in_chain(&self.params, block, &self.tree, Some(now.as_millis()), &known_good) {
                Ok(c) => c,
                Err(e) => {
                    self.stats.blocks_rejected += 1;
                    if self.rejected.len() >= 1_000 {
                        self.rejected.clear();
                    }
                    self.rejected.insert(hash, e.rule());
                    self.out.emit(EventKind::BlockRejected, || Event::BlockRejected {
                        hash,
                        rule: e.rule(),
                        reason: e.to_string(),
                        from_peer: peer_addr(&self.peering, origin.peer()),
                    });
                    return Err(e.into());
                }
            };
        if let Some(link) = origin.peer().and_then(|id| self.peering.links_mut().get_mut(id)) {
            link.last_block = Some(now);
        }
        // Relayed blocks only: a catch-up batch brings old blocks whose age says nothing
        // about propagation.
        if relay && origin.peer().is_some() {
            let timestamp = checked.block().header.timestamp;
            self.metrics.on_block_relayed(timestamp, now.as_millis());
        }
        self.insert_checked(checked, origin, relay)
    }

    fn insert_checked(
        &mut self,
        checked: CheckedBlock,
        origin: Origin,
        relay: bool,
    ) -> Result<BlockOutcome, BlockRejected> {
        // The block and its txids are read from `checked` throughout, not cloned: each
        // clone of a shared count is a locked instruction, and this runs for every block
        // every node takes.
        let hash = checked.hash();
        let (change, pruned) = self.tree.insert(&checked).map_err(|e| match e {
            InsertError::Duplicate(h) => BlockRejected::Duplicate(h),
            InsertError::UnknownParent(h) => BlockRejected::UnknownParent(h),
        })?;
        self.stats.blocks_accepted += 1;
        let chain_work = self.tree.get(&hash).map(|e| e.chain_work).unwrap_or_default();
        if let Some(l) = origin.peer().and_then(|p| self.peering.links_mut().get_mut(p))
            && chain_work > l.work
        {
            // Sync is not told: it looks for a peer claiming more work than our tip, and a
            // block of our tree never has more (telling it on every block had it walk
            // every link once per block for nothing).
            l.work = chain_work;
        }
        let block = checked.block();
        self.out.store(StoreOp::PutBlock {
            hash,
            block: block.clone(),
            chain_work,
        });
        for p in pruned {
            self.out.store(StoreOp::DeleteBlock(p));
        }
        if origin == Origin::Mined && self.tree.is_active(&hash) {
            self.stats.blocks_mined += 1;
            self.mining.record_mined(block.header.timestamp);
        }
        self.metrics.on_block_inserted(&change);
        self.apply_tip_change(&change, origin, (hash, checked.txids()));
        if relay {
            self.relay_block(hash, checked.block(), origin.peer());
        }
        Ok(BlockOutcome {
            hash,
            height: block.header.height,
            change,
        })
    }

    /// Connects orphans that were waiting for `parent`, and theirs in turn.
    fn connect_orphans(&mut self, parent: BlockHash, now: Time) {
        let mut parents = vec![parent];
        while let Some(p) = parents.pop() {
            for (hash, block, from) in self.orphans.take_children(&p) {
                let origin = from.map_or(Origin::Local, Origin::Peer);
                if self.accept_one(HashedBlock::new(block), origin, true, now).is_ok() {
                    parents.push(hash);
                }
            }
        }
    }

    /// Brings the mempool, the store and the listeners in line with a new best chain:
    /// mined transactions leave the mempool, those of disconnected blocks that the new
    /// branch lacks come back — nothing is lost in a reorg.
    /// `new` is the block just inserted with its txids, computed once by validation.
    fn apply_tip_change(&mut self, change: &TipChange, origin: Origin, new: (BlockHash, &Arc<[Txid]>)) {
        let new_hash = new.0;
        if change.is_unchanged() {
            return;
        }
        let mut returned = Vec::new();
        for hash in &change.disconnected {
            let Some(block) = self.tree.block(hash) else { continue };
            for tx in block.transactions.iter().skip(1) {
                let txid = &tx.compute_txid();
                if self.tree.find_tx(txid).is_none() && self.mempool.insert_unbounded(*txid, tx.clone()) {
                    returned.push(*txid);
                    self.out.store(StoreOp::PutTx(*txid, Box::new(tx.clone())));
                    // Relay it again: peers that were on the winning branch all along never
                    // saw it, and would otherwise never mine it.
                    crate::relay::forget_tx(self.peering.links_mut(), txid);
                    self.relay.queue_tx(*txid, None);
                }
            }
        }
        for hash in &change.connected {
            let Some(entry) = self.tree.get(hash) else { continue };
            let (height, count) = (entry.height(), entry.tx_count as usize);
            // The new block's txids are known; a reorg's other blocks come from their
            // bodies, and only when the mempool holds anything they could remove.
            let txids: Vec<Txid> = if *hash == new_hash {
                new.1.to_vec()
            } else if self.mempool.is_empty() {
                Vec::new()
            } else {
                self.tree.txids(hash).unwrap_or_default()
            };
            for txid in txids.iter().skip(1) {
                if self.mempool.remove(txid).is_some() {
                    self.out.store(StoreOp::DeleteTx(*txid));
                }
            }
            self.out.emit(EventKind::Block, || Event::Block {
                hash: *hash,
                height,
                txs: count,
                mined_here: origin == Origin::Mined && *hash == new_hash,
                from_peer: peer_addr(&self.peering, origin.peer()),
            });
        }
        self.evict_stale_pending();
        let tip = self.tree.tip_hash();
        self.out.store(StoreOp::SetTip(tip));
        if change.is_reorg() {
            self.stats.reorgs += 1;
            let fork_height = self.tree.height() - change.connected.len() as u64;
            self.out.emit(EventKind::Reorg, || Event::Reorg {
                fork_height,
                disconnected: change.disconnected.clone(),
                connected: change.connected.clone(),
                returned,
            });
        }
        self.out.emit(EventKind::Tip, || Event::Tip {
            height: self.tree.height(),
            length: self.tree.height() + 1,
            tip,
            pending: self.mempool.len(),
        });
    }
}

impl Node {
    /// On an accounts network, after the best chain changed: drops the pending transfers
    /// that no longer fit the ledger (the loser of two conflicting transfers, once the
    /// other is confirmed; one whose funds went elsewhere), so every mempool holds only
    /// what can still be mined.
    fn evict_stale_pending(&mut self) {
        let Some(ledger) = self.tree.ledger() else { return };
        for (txid, error) in crate::ledger::stale_pending(ledger, &self.mempool) {
            if self.mempool.remove(&txid).is_some() {
                self.out.store(StoreOp::DeleteTx(txid));
                self.out.emit(EventKind::TxDropped, || Event::TxDropped {
                    txid,
                    rule: error.rule(),
                    reason: error.to_string(),
                });
            }
        }
    }
}
