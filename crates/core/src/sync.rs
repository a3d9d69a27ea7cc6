//! Catch-up: finding the fork point with a peer and downloading what we lack, in batches.
//!
//! We sync from one peer at a time: the ready peer with the most work beyond ours, or one
//! that sent a block whose parent we lack. A `GetBlocks` carries a block locator (our last
//! ten hashes, then exponentially sparser back to genesis), so the peer finds the fork point
//! and sends at most [`BATCH`] best-chain blocks (and [`MAX_BLOCKS_MESSAGE_BYTES`]) after
//! it — never the whole chain. A full batch, or one ending below the sender's tip, means
//! there is more: the next request's locator starts with the last block
//! received, so a branch lighter than ours so far still downloads to its end. A peer that
//! does not answer in time, or answers with nothing while claiming more work, is passed over
//! until it announces something new.
//!
//! This part owns the download state; the node feeds it the blocks.

use std::collections::BTreeSet;
use std::time::Duration;

use chainsim_primitives::{BlockHash, Work};

use crate::chain::BlockTree;
use crate::peers::{Link, LinkTable, PeerId};
use crate::protocol::{MAX_BLOCKS_MESSAGE_BYTES, MAX_BLOCKS_PER_MESSAGE, Message, WireBlock};
use crate::time::Time;

/// Blocks asked for per request.
pub const BATCH: u32 = MAX_BLOCKS_PER_MESSAGE as u32;
/// Longest locator accepted from a peer.
pub const MAX_LOCATOR: usize = 128;

/// The download in progress.
#[derive(Debug, Clone)]
pub struct Download {
    /// The peer we download from.
    pub peer: PeerId,
    /// When the outstanding request was sent.
    pub requested_at: Time,
    /// Height the peer announced.
    pub target: u64,
    /// Whether the stall window passed with no other peer to turn to (then only the
    /// whole timeout is left to wait for).
    pub past_stall: bool,
}

/// Catch-up state.
#[derive(Debug)]
pub struct Sync {
    timeout: Duration,
    /// How long the download peer may stay silent while another peer could serve instead.
    stall: Duration,
    download: Option<Download>,
    /// Peers that had nothing more to give: not asked again until they announce more.
    exhausted: BTreeSet<PeerId>,
    /// Peers that sent a block we could not connect: ask them even without a work claim.
    wanted: BTreeSet<PeerId>,
    /// The last look for a peer to sync from found none, and nothing since could have
    /// brought one: see [`Sync::maybe_start`].
    idle: bool,
}

/// A download peer passed over for not answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stalled {
    /// Silent past the stall window while another peer could serve.
    Slow(PeerId),
    /// Silent past the whole timeout.
    TimedOut(PeerId),
}

/// What to do after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Not from the download peer: nothing to do.
    Unrequested,
    /// Ask the same peer for more, after this block.
    More(BlockHash),
    /// This download is over.
    Done,
}

impl Sync {
    /// Catch-up giving a peer `timeout` to answer each request, or only `stall` when
    /// another peer could serve the download instead.
    pub fn new(timeout: Duration, stall: Duration) -> Self {
        Self {
            timeout,
            stall: stall.min(timeout),
            download: None,
            exhausted: BTreeSet::new(),
            wanted: BTreeSet::new(),
            idle: false,
        }
    }

    /// The download in progress.
    pub fn download(&self) -> Option<&Download> {
        self.download.as_ref()
    }

    /// Whether a download is running or due: a ready peer claims more work than ours and
    /// has not been found empty, or a handshake is under way (the live node waits for this
    /// to turn false before serving).
    pub fn is_syncing(&self, links: &LinkTable, our_work: Work) -> bool {
        self.download.is_some()
            || links
                .iter()
                .any(|l| !l.ready || (l.work > our_work && !self.exhausted.contains(&l.id)))
    }

    /// A peer announced more work (or a block): it is worth asking again.
    pub fn refreshed(&mut self, peer: PeerId) {
        self.exhausted.remove(&peer);
        self.idle = false;
    }

    /// A peer sent a block whose parent we lack.
    pub fn want_from(&mut self, peer: PeerId) {
        self.exhausted.remove(&peer);
        self.wanted.insert(peer);
        self.idle = false;
    }

    /// A link became ready or claims more work than before: the next
    /// [`Sync::maybe_start`] looks at every link again.
    pub fn links_changed(&mut self) {
        self.idle = false;
    }

    /// Forgets a closed link; true when it was the download peer.
    pub fn peer_gone(&mut self, peer: PeerId) -> bool {
        self.idle = false;
        self.exhausted.remove(&peer);
        self.wanted.remove(&peer);
        self.download.take_if(|d| d.peer == peer).is_some()
    }

    /// Starts downloading from the best peer when one has more work (or sent an orphan)
    /// and no download runs. Returns the request to send.
    ///
    /// Most calls find nothing to do, after every message, so a look that found no peer is
    /// remembered until something could bring one: a link becoming ready or claiming more
    /// work ([`Sync::links_changed`]), a peer leaving the passed-over set or sending an
    /// orphan. Our own work only grows (the tip changes only to more work), which only
    /// shrinks the set of peers with more than ours, so it needs no new look.
    pub fn maybe_start<'a>(
        &mut self,
        ready: impl Iterator<Item = &'a Link>,
        tree: &BlockTree,
        now: Time,
    ) -> Option<(PeerId, Message)> {
        if self.download.is_some() {
            return None;
        }
        if self.idle {
            debug_assert!(
                self.best(ready, tree.tip_work()).is_none(),
                "a peer to sync from appeared without Sync hearing of it"
            );
            return None;
        }
        let Some((peer, target)) = self.best(ready, tree.tip_work()) else {
            self.idle = true;
            return None;
        };
        Some(self.request(peer, target, None, tree, now))
    }

    /// The peer to sync from among `ready`, with its height: the one with the most work
    /// beyond `our_work`, or one that sent an orphan, not passed over.
    fn best<'a>(&self, ready: impl Iterator<Item = &'a Link>, our_work: Work) -> Option<(PeerId, u64)> {
        ready
            .filter(|l| !self.exhausted.contains(&l.id) && (l.work > our_work || self.wanted.contains(&l.id)))
            .max_by_key(|l| (l.work, l.height, std::cmp::Reverse(l.id)))
            .map(|l| (l.id, l.height))
    }

    fn request(
        &mut self,
        peer: PeerId,
        target: u64,
        after: Option<BlockHash>,
        tree: &BlockTree,
        now: Time,
    ) -> (PeerId, Message) {
        let mut locator = tree.locator();
        if let Some(after) = after {
            locator.insert(0, after);
        }
        self.wanted.remove(&peer);
        self.download = Some(Download {
            peer,
            requested_at: now,
            target,
            past_stall: false,
        });
        (peer, Message::GetBlocks { locator, limit: BATCH })
    }

    /// A batch from `from` was taken: `full` when there is more to ask for, `last` the last
    /// block taken or known, `failed` when a block in it was refused. Returns the next
    /// request, if any, and whether the download ended.
    pub fn on_batch(
        &mut self,
        from: PeerId,
        (full, last, failed): (bool, Option<BlockHash>, bool),
        peer_work: Work,
        tree: &BlockTree,
    ) -> BatchOutcome {
        let Some(d) = self.download.take_if(|d| d.peer == from) else {
            return BatchOutcome::Unrequested;
        };
        match last {
            Some(last) if full && !failed => {
                self.download = Some(d);
                BatchOutcome::More(last)
            }
            _ => {
                // The peer had nothing more; if it still claims more work, pass it over
                // until it announces something new.
                if peer_work > tree.tip_work() {
                    self.exhausted.insert(from);
                }
                BatchOutcome::Done
            }
        }
    }

    /// The request for the next batch after `last` from the download peer.
    pub fn continue_after(&mut self, last: BlockHash, tree: &BlockTree, now: Time) -> Option<(PeerId, Message)> {
        let d = self.download.take()?;
        Some(self.request(d.peer, d.target, Some(last), tree, now))
    }

    /// The target height of the download in progress.
    pub fn target(&self) -> Option<u64> {
        self.download.as_ref().map(|d| d.target)
    }

    /// A download peer that has not answered in time, now passed over: after `timeout`
    /// whatever happens, or after `stall` when another ready peer claims more work than
    /// ours (then the next download starts from it at once).
    pub fn stalled(&mut self, now: Time, links: &LinkTable, our_work: Work) -> Option<Stalled> {
        let d = self.download.as_ref()?;
        let peer = d.peer;
        let stalled = if d.requested_at + self.timeout <= now {
            Stalled::TimedOut(peer)
        } else if d.requested_at + self.stall > now {
            return None;
        } else if self.has_other_source(links, peer, our_work) {
            Stalled::Slow(peer)
        } else {
            if let Some(d) = self.download.as_mut() {
                d.past_stall = true;
            }
            return None;
        };
        self.download = None;
        self.exhausted.insert(peer);
        Some(stalled)
    }

    /// Whether a ready peer besides `peer` could serve the download.
    fn has_other_source(&self, links: &LinkTable, peer: PeerId, our_work: Work) -> bool {
        links
            .ready()
            .any(|l| l.id != peer && !self.exhausted.contains(&l.id) && l.work > our_work)
    }

    /// When the download in progress stalls (another source may then be tried) or times out.
    pub fn next_deadline(&self) -> Option<Time> {
        self.download
            .as_ref()
            .map(|d| d.requested_at + if d.past_stall { self.timeout } else { self.stall })
    }
}

/// Answers a `GetBlocks`: best-chain blocks after the fork point the locator names.
pub fn serve_blocks(tree: &BlockTree, locator: &[BlockHash], limit: u32) -> Message {
    let tip_height = tree.height();
    let Some(fork) = tree.find_fork(locator) else {
        return Message::Blocks {
            blocks: Box::default(),
            tip_height,
        };
    };
    let start = fork.height() + 1;
    let end = (start + u64::from(limit.min(BATCH))).min(tip_height + 1);
    let mut blocks = Vec::new();
    let mut bytes = 0;
    for block in (start..end).filter_map(|h| tree.at_height(h).and_then(|e| tree.block(&e.hash))) {
        // Stop at the byte budget (the first block always goes): the receiver asks again.
        bytes += block.encoded_len();
        if bytes > MAX_BLOCKS_MESSAGE_BYTES && !blocks.is_empty() {
            break;
        }
        blocks.push(WireBlock(block));
    }
    Message::Blocks {
        blocks: blocks.into(),
        tip_height,
    }
}
