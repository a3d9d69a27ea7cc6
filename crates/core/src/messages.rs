//! What the node does with each peer message, and with links coming and going: the
//! dispatch between peering, sync, relay and acceptance.

use std::sync::Arc;

use smallvec::SmallVec;

use chainsim_primitives::{Block, BlockHash, Transaction, Txid};

use crate::accept::Origin;
use crate::chain::{HashedBlock, check_proof_of_work, check_standalone_hashed};
use crate::event::{Event, EventKind};
use crate::node::{BlockRejected, Node, TxRejected};
use crate::peering::HelloOutcome;
use crate::peers::PeerId;
use crate::protocol::{
    Items, MAX_ADDRS_PER_MESSAGE, MAX_BLOCKS_PER_MESSAGE, MAX_INV_PER_MESSAGE, MAX_TXS_PER_MESSAGE, Message, WireBlock,
    WireHeader,
};
use crate::sync::{BATCH, BatchOutcome, MAX_LOCATOR, serve_blocks};
use crate::time::Time;

/// How many announced blocks an announcement's list holds before it moves to the heap:
/// a block announced alone is the common case, a short branch the next.
const LACKING_INLINE: usize = 4;

impl Node {
    /// One message on link `from`.
    pub(crate) fn on_message(&mut self, from: PeerId, msg: Message, now: Time) {
        self.stats.messages_in += 1;
        let Some(ready) = self.peering.heard(from, now) else {
            return; // a late message on a link closed or closing
        };
        if let Message::Hello(hello) = msg {
            let tip = self.tip_info();
            if self.peering.on_hello(from, *hello, tip, now, &mut self.out) == HelloOutcome::Ready {
                self.on_ready(from, now);
            }
            return;
        }
        if !ready {
            self.peering
                .misbehave(from, 100, "spoke before its hello", now, &mut self.out);
            return;
        }
        match msg {
            Message::Hello(_) => {}
            Message::Ping { height, work } => self.on_tip_claim(from, height, work.work(), now),
            Message::GetAddr => {
                let addrs = self.peering.shareable_addrs(from);
                self.peering.send(from, Message::addr(addrs), now, &mut self.out);
            }
            Message::Addr { addrs } => {
                if addrs.len() > MAX_ADDRS_PER_MESSAGE {
                    return self.violation(from, 20, "too many addresses in one message", now);
                }
                self.peering.add_shared(&addrs, now, &mut self.out);
            }
            Message::Headers { headers } => self.on_headers(from, &headers, now),
            Message::Inv { txs } => self.on_inv(from, txs, now),
            Message::GetData(items) => {
                let Items { blocks, txs } = *items;
                self.on_getdata(from, blocks, txs, now);
            }
            Message::NotFound(missing) => {
                for (peer, wanted) in self.relay.not_found(from, &missing.blocks, &missing.txs, now) {
                    self.ask(peer, wanted, now);
                }
            }
            Message::Txs { txs } => self.on_txs(from, txs, now),
            Message::Block { block } => self.on_block(from, block.0, now),
            Message::GetBlocks { locator, limit } => {
                if locator.len() > MAX_LOCATOR {
                    return self.violation(from, 20, "block locator too long", now);
                }
                let answer = serve_blocks(&self.tree, &locator, limit);
                self.peering.send(from, answer, now, &mut self.out);
            }
            Message::Blocks { blocks, tip_height } => {
                if blocks.len() > MAX_BLOCKS_PER_MESSAGE {
                    return self.violation(from, 50, "too many blocks in one message", now);
                }
                self.on_blocks(from, blocks.into_iter().map(|b| b.0).collect(), tip_height, now);
            }
        }
    }

    fn violation(&mut self, from: PeerId, points: u32, reason: &str, now: Time) {
        self.peering.misbehave(from, points, reason, now, &mut self.out);
    }

    /// A link finished its handshake: hand it our pending transactions (by id in announce
    /// mode) and see whether it has blocks we lack.
    fn on_ready(&mut self, peer: PeerId, now: Time) {
        self.sync.links_changed();
        let pending: Vec<Txid> = self.mempool.iter_oldest().map(|(id, _)| *id).collect();
        for txid in &pending {
            crate::relay::mark_tx(self.peering.links_mut(), peer, txid);
        }
        self.send_txs(peer, &pending);
        self.maybe_start_sync(now);
    }

    /// Tells `peer` of transactions the way the relay mode says: their ids, or the
    /// transactions themselves, in messages of the protocol's size.
    fn send_txs(&mut self, peer: PeerId, txids: &[Txid]) {
        match self.relay.mode() {
            crate::relay::RelayMode::Announce => {
                for chunk in txids.chunks(MAX_INV_PER_MESSAGE) {
                    self.out.send(peer, Message::Inv { txs: chunk.to_vec() });
                }
            }
            crate::relay::RelayMode::Push => {
                let txs: Vec<Transaction> = txids.iter().filter_map(|t| self.mempool.get(t).cloned()).collect();
                for chunk in txs.chunks(MAX_TXS_PER_MESSAGE) {
                    self.out.send(peer, Message::Txs { txs: chunk.to_vec() });
                }
            }
        }
    }

    /// A link closed: every part forgets it.
    pub(crate) fn on_link_down(&mut self, peer: PeerId, reason: &str, now: Time) {
        if self.peering.on_link_down(peer, reason, now, &mut self.out).is_none() {
            return;
        }
        for (next, wanted) in self.relay.peer_gone(peer, now) {
            self.ask(next, wanted, now);
        }
        self.sync.peer_gone(peer);
        self.maybe_start_sync(now);
    }

    /// A peer told us its tip (ping): it may be worth syncing from.
    fn on_tip_claim(&mut self, from: PeerId, height: u64, work: chainsim_primitives::Work, now: Time) {
        if let Some(l) = self.peering.links_mut().get_mut(from) {
            if work > l.work {
                self.sync.refreshed(from);
            }
            l.height = height;
            l.work = work;
        }
        self.maybe_start_sync(now);
    }

    /// Block announcements: fetch what connects, catch up on what does not.
    fn on_headers(&mut self, from: PeerId, headers: &[WireHeader], now: Time) {
        if headers.len() > MAX_INV_PER_MESSAGE {
            return self.violation(from, 20, "too many headers in one announcement", now);
        }
        // On the stack: nearly every announcement is of one header, and a list kept in
        // the node between uses sat on a heap line of its own, cold at every announcement
        // of a simulation of thousands of nodes (a cache miss each).
        let mut lacking: SmallVec<[BlockHash; LACKING_INLINE]> = SmallVec::new();
        for &WireHeader(header) in headers {
            let checked = match self.relay.known_header(&header) {
                Some(hash) => Ok(hash),
                None => {
                    check_proof_of_work(&self.params, &header).inspect(|hash| self.relay.note_header(header, *hash))
                }
            };
            let hash = match checked {
                Ok(hash) => hash,
                Err(e) => {
                    let reason = format!("announced a header that breaks {}: {e}", e.rule());
                    return self.violation(from, 50, &reason, now);
                }
            };
            if let Some(l) = self.peering.links_mut().get_mut(from) {
                l.height = l.height.max(header.height);
            }
            if self.tree.contains_child(&hash, &header.prev_hash) {
                // Most announcements: relayed when it was inserted, never again, so noting
                // that `from` has it would only push ids that still matter out of its ring.
                continue;
            }
            crate::relay::mark_block(self.peering.links_mut(), from, &hash);
            if self.orphans.contains(&hash) || self.rejected.contains_key(&hash) {
                continue;
            }
            if self.tree.contains(&header.prev_hash) || lacking.contains(&header.prev_hash) {
                lacking.push(hash);
            } else {
                // A gap: download the branch from this peer (its bodies come in the batch).
                self.sync.want_from(from);
            }
        }
        if !lacking.is_empty() {
            if headers.len() > 1 {
                // Marked again: in a long announcement the later ids may have pushed the
                // first ones out of the link's ring, and `from` surely has them. A single
                // header was marked just above, with nothing noted on the link since.
                for hash in &lacking {
                    crate::relay::mark_block(self.peering.links_mut(), from, hash);
                }
            }
            let blocks = self.relay.want_blocks(from, &lacking, now);
            let txs = Vec::new();
            self.ask(from, Items { blocks, txs }, now);
        }
        self.maybe_start_sync(now);
    }

    fn on_inv(&mut self, from: PeerId, txids: Vec<chainsim_primitives::Txid>, now: Time) {
        if txids.len() > MAX_INV_PER_MESSAGE {
            return self.violation(from, 20, "too many ids in one announcement", now);
        }
        let mut lacking_txs = Vec::new();
        for txid in txids {
            crate::relay::mark_tx(self.peering.links_mut(), from, &txid);
            if !self.mempool.contains(&txid) && self.tree.find_tx(&txid).is_none() {
                lacking_txs.push(txid);
            }
        }
        let txs = self.relay.want_txs(self.peering.links_mut(), from, lacking_txs, now);
        self.ask(
            from,
            Items {
                blocks: Vec::new(),
                txs,
            },
            now,
        );
    }

    /// Sends a `GetData` for what is wanted from `peer`.
    pub(crate) fn ask(&mut self, peer: PeerId, wanted: Items, now: Time) {
        if wanted.is_empty() {
            return;
        }
        self.peering.send(peer, Message::get_data(wanted), now, &mut self.out);
    }

    fn on_getdata(&mut self, from: PeerId, blocks: Vec<BlockHash>, txids: Vec<chainsim_primitives::Txid>, now: Time) {
        if blocks.len() + txids.len() > MAX_INV_PER_MESSAGE {
            return self.violation(from, 20, "too many ids in one request", now);
        }
        let (mut missing_blocks, mut missing_txs) = (Vec::new(), Vec::new());
        for hash in blocks {
            match self.tree.block(&hash) {
                Some(block) => {
                    let msg = Message::Block {
                        block: WireBlock(block),
                    };
                    crate::relay::mark_block(self.peering.links_mut(), from, &hash);
                    self.peering.send(from, msg, now, &mut self.out);
                }
                None => missing_blocks.push(hash),
            }
        }
        let mut txs = Vec::new();
        for txid in txids {
            match self.mempool.get(&txid) {
                Some(tx) => txs.push(tx.clone()),
                None => missing_txs.push(txid),
            }
        }
        for chunk in txs.chunks(MAX_TXS_PER_MESSAGE) {
            let msg = Message::Txs { txs: chunk.to_vec() };
            self.peering.send(from, msg, now, &mut self.out);
        }
        if !missing_blocks.is_empty() || !missing_txs.is_empty() {
            let msg = Message::NotFound(Box::new(Items {
                blocks: missing_blocks,
                txs: missing_txs,
            }));
            self.peering.send(from, msg, now, &mut self.out);
        }
    }

    fn on_txs(&mut self, from: PeerId, txs: Vec<Transaction>, now: Time) {
        if txs.len() > MAX_TXS_PER_MESSAGE {
            return self.violation(from, 20, "too many transactions in one message", now);
        }
        let mut malformed = 0;
        for tx in txs {
            let txid = tx.compute_txid();
            self.relay.tx_arrived(&txid);
            crate::relay::mark_tx(self.peering.links_mut(), from, &txid);
            match self.accept_tx(tx, Some(from), now, false) {
                Err(TxRejected::Malformed(_)) => malformed += 1,
                // A forged signature or a transaction of the other ledger is the sender's
                // fault; a conflict or a spent balance can happen to any honest relay.
                Err(TxRejected::Ledger(e)) if matches!(e.rule(), "bad-signature" | "wrong-ledger") => malformed += 1,
                Ok(_) | Err(TxRejected::MempoolFull(_) | TxRejected::Ledger(_)) => {}
            }
        }
        if malformed > 0 {
            let reason = format!("sent {malformed} malformed transactions");
            self.violation(from, 10 * malformed.min(10), &reason, now);
        }
    }

    fn on_block(&mut self, from: PeerId, block: Arc<Block>, now: Time) {
        // A block nearly always comes after its announcement, whose header was hashed then
        // and is still the last one noted unless another block was announced meanwhile.
        let block = match self.relay.known_header(&block.header) {
            Some(hash) => HashedBlock::with_hash_of_equal_header(block, hash),
            None => HashedBlock::new(block),
        };
        let hash = block.hash();
        self.relay.block_arrived(&hash);
        crate::relay::mark_block(self.peering.links_mut(), from, &hash);
        self.note_peer_block(from, block.block());
        match self.accept_block(block.clone(), Origin::Peer(from), true, now) {
            Ok(_) | Err(BlockRejected::Duplicate(_)) => {}
            Err(BlockRejected::UnknownParent(_)) => {
                // Held before its parent is known: only after the checks that need no parent.
                if let Err(e) = check_standalone_hashed(&self.params, &block) {
                    let reason = format!("sent a block whose parent is unknown and that breaks {}: {e}", e.rule());
                    return self.violation(from, 50, &reason, now);
                }
                self.orphans.insert(hash, block.into_block(), Some(from));
                self.sync.want_from(from);
                self.maybe_start_sync(now);
            }
            Err(BlockRejected::Invalid(e)) => {
                if let Some(points) = invalid_block_points(&e) {
                    let reason = format!("sent an invalid block ({}): {e}", e.rule());
                    self.violation(from, points, &reason, now);
                }
            }
        }
    }

    /// A peer sent a block: it has at least that height.
    fn note_peer_block(&mut self, from: PeerId, block: &Block) {
        if let Some(l) = self.peering.links_mut().get_mut(from) {
            l.height = l.height.max(block.header.height);
        }
    }

    /// Takes a batch of blocks answering our `GetBlocks`.
    fn on_blocks(&mut self, from: PeerId, blocks: Vec<Arc<Block>>, tip_height: u64, now: Time) {
        if let Some(l) = self.peering.links_mut().get_mut(from) {
            l.height = l.height.max(tip_height);
        }
        // More to come: a whole batch, or one the byte budget cut short of the sender's tip.
        let full = blocks.len() >= BATCH as usize || blocks.last().is_some_and(|b| b.header.height < tip_height);
        let tip_before = self.tree.tip_hash();
        let (mut last, mut failed, mut taken) = (None, false, Vec::new());
        for block in blocks {
            let block = HashedBlock::new(block);
            let hash = block.hash();
            self.relay.block_arrived(&hash);
            crate::relay::mark_block(self.peering.links_mut(), from, &hash);
            match self.accept_block(block, Origin::Peer(from), false, now) {
                Ok(_) => {
                    taken.push(hash);
                    last = Some(hash);
                }
                Err(BlockRejected::Duplicate(_)) => last = Some(hash),
                Err(BlockRejected::UnknownParent(_)) => {
                    self.violation(from, 20, "sent a batch of blocks that does not connect", now);
                    failed = true;
                    break;
                }
                Err(BlockRejected::Invalid(e)) => {
                    if let Some(points) = invalid_block_points(&e) {
                        let reason = format!("sent an invalid block during sync ({}): {e}", e.rule());
                        self.violation(from, points, &reason, now);
                    }
                    failed = true;
                    break;
                }
            }
        }
        // Peers that lack the blocks just taken fetch them from the new tip. Only when the
        // batch itself brought the tip in: an orphan the batch connected was relayed when
        // it connected.
        let tip = self.tree.tip_hash();
        if tip != tip_before
            && taken.contains(&tip)
            && let Some(block) = self.tree.block(&tip)
        {
            self.relay_block(tip, &block, Some(from));
        }
        let peer_work = self.peering.links().get(from).map(|l| l.work).unwrap_or_default();
        let outcome = self.sync.on_batch(from, (full, last, failed), peer_work, &self.tree);
        if outcome == BatchOutcome::Unrequested {
            return;
        }
        let target = self.sync.target().unwrap_or(0).max(tip_height);
        let done = outcome == BatchOutcome::Done;
        if let Some(peer) = self.peering.addr_of(from) {
            self.out.emit(EventKind::Sync, || Event::Sync {
                height: self.tree.height(),
                target,
                peer: peer.clone(),
                done,
            });
        }
        if let BatchOutcome::More(last) = outcome {
            if let Some((peer, msg)) = self.sync.continue_after(last, &self.tree, now) {
                self.peering.send(peer, msg, now, &mut self.out);
            }
            return;
        }
        // An honest peer's whole branch, fully taken, gives us at least the work it claimed;
        // a peer that stops short of its claim without a refused block (already scored)
        // claimed work it does not have. The download moved on already; the score says so.
        if !failed && peer_work > self.tree.tip_work() {
            self.violation(from, 20, "claimed more chain work than it delivered", now);
        }
        self.maybe_start_sync(now);
    }

    /// Starts a download when a peer has more than us.
    pub(crate) fn maybe_start_sync(&mut self, now: Time) {
        let ready = self.peering.ready_links();
        if let Some((peer, msg)) = self.sync.maybe_start(ready, &self.tree, now) {
            self.peering.send(peer, msg, now, &mut self.out);
        }
    }

    /// Asks every ready peer for what we lack, now (the original's `/nodes/resolve`).
    pub(crate) fn resync(&mut self, now: Time) {
        let locator = self.tree.locator();
        for peer in self.peering.ready_ids() {
            self.sync.refreshed(peer);
            let msg = Message::GetBlocks {
                locator: locator.clone(),
                limit: BATCH,
            };
            self.peering.send(peer, msg, now, &mut self.out);
        }
        self.maybe_start_sync(now);
    }

    /// Announces (or pushes) a block to every ready peer not known to have it.
    pub(crate) fn relay_block(&mut self, hash: BlockHash, block: &Arc<Block>, from: Option<PeerId>) {
        if let Some(from) = from {
            crate::relay::mark_block(self.peering.links_mut(), from, &hash);
        }
        // One announcement, shared by every peer it goes to; room for all of them at once,
        // rather than the queue doubling its way up to a few dozen (one block, every node).
        let mut announcement = None;
        self.out.reserve(self.peering.links().len());
        // Whether a link has the block first, from the first line of its entry: most
        // links announced it to us while it downloaded, and are passed over without
        // reading the line that says whether the link is usable.
        for link in self.peering.links_mut().iter_mut() {
            if link.known.has_block(&hash) || !link.is_usable() {
                continue;
            }
            link.known.insert_block(&hash);
            let msg = announcement.get_or_insert_with(|| self.relay.announcement(block));
            self.out.send(link.id, msg.clone());
        }
    }

    /// Sends the transactions accepted since the last drain, one batch per peer, leaving
    /// out the ones a peer has. Batching happens naturally under load.
    pub(crate) fn flush_tx_relay(&mut self) {
        for (peer, txids) in self.relay.take_pending_txs(self.peering.links_mut()) {
            self.send_txs(peer, &txids);
        }
    }
}

/// Misbehaviour points for a peer that sent a block we refused, by the rule it broke; `None`
/// when refusing it is no fault of the sender's. A block from the future may become valid
/// (a small penalty only); a fork deeper than a pruning node keeps (`fork-too-deep`) is
/// refused because of what this node forgot, and an honest peer on an old branch sends it.
pub(crate) fn invalid_block_points(e: &crate::chain::ValidationError) -> Option<u32> {
    match e.rule() {
        "fork-too-deep" => None,
        "time-too-new" => Some(10),
        _ => Some(50),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ValidationError;

    #[test]
    fn a_refused_block_costs_its_sender_by_the_rule_it_broke() {
        let future = ValidationError::TimeTooNew { got: 9, now: 1 };
        let forged = ValidationError::TargetNotMet(chainsim_primitives::BlockHash::ZERO);
        let too_deep = ValidationError::ForkTooDeep {
            fork_height: 10,
            depth: 288,
        };
        assert_eq!(invalid_block_points(&future), Some(10), "may become valid");
        assert_eq!(invalid_block_points(&forged), Some(50));
        assert_eq!(
            invalid_block_points(&too_deep),
            None,
            "our pruning, not the peer's fault"
        );
    }
}
