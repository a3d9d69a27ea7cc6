//! Links: who we are connected to right now, each known by a [`PeerId`].
//!
//! A link is one connection, opened by us (outbound, to an address we dialled, so that
//! address is proven) or by the other side (inbound, whose listening address is only a claim
//! until proven). A message's sender is the link it came on: nothing a message says can make
//! it count as another peer's, so misbehaviour scores live on the link. Addresses and what we
//! know of them (backoff, bans, the operator's blocks) live in [`crate::addrbook`].

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use chainsim_primitives::{Work, sha256_parts};
use serde::Serialize;
use smallvec::SmallVec;

pub use chainsim_primitives::addr::{AddrError, Direction, PeerAddr, PeerState};

use crate::time::Time;

/// Misbehaviour score at which a link is closed and, when its address is proven, the
/// address banned.
pub const BAN_SCORE: u32 = 100;

/// A link, numbered by the transport that carries it: small, copyable, never reused within
/// one run of a node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PeerId(pub u64);

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One open link.
///
/// Laid out by hand, on cache lines of its own: relaying a block reads every link's known
/// blocks, number and state, and handling a message its height and times, so those come
/// first, in the first two of its four lines (in the compiler's order, at a stride of 304
/// bytes, they spread over four or five).
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Link {
    /// What relay knows the peer has (see [`crate::relay`]).
    pub(crate) known: crate::relay::Known,
    /// The link's number.
    pub id: PeerId,
    /// Whether both hellos are done. Set through [`LinkTable::set_ready`], which keeps
    /// count of the links still in their handshake.
    pub ready: bool,
    /// Whether we asked the transport to close it (see [`LinkTable::set_closing`]).
    closing: bool,
    /// Who opened it.
    pub direction: Direction,
    /// Whether `addr` is proven: we dialled it, or a link we dialled carries the same token.
    pub verified: bool,
    /// Misbehaviour score.
    pub score: u32,
    /// Best height it announced or sent.
    pub height: u64,
    /// When we last heard from it.
    pub last_heard: Time,
    /// When we last sent it something.
    pub last_sent: Time,
    /// Best chain work it announced or sent.
    pub work: Work,
    /// When the link came up.
    pub opened: Time,
    /// When it last gave us a block we did not have (protects it from eviction).
    pub last_block: Option<Time>,
    /// When it last gave us a transaction we did not have (protects it from eviction).
    pub last_tx: Option<Time>,
    /// The peer's listening address: the dialled one (outbound), or what its hello claims
    /// (inbound; `None` before the hello).
    pub addr: Option<PeerAddr>,
    /// The token its hello carried (duplicate links between one pair carry the same one);
    /// `None` before the hello, or when it was not a token (see [`LinkToken::parse`]).
    pub token: Option<LinkToken>,
    /// Software it announced.
    pub agent: String,
}

/// The token a node puts in its hellos to one peer (see `Peering::hello`): 16 bytes, as 32
/// hex digits on the wire. Held in binary on the link, so that finding a link's twin
/// compares 16 bytes in the link's entry instead of following every link's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkToken(pub [u8; 16]);

impl LinkToken {
    /// The token a node with `secret` puts in every hello to `to`: a hash of the secret and
    /// the receiver's address, so it is the same on every link between the two and no third
    /// node can produce it.
    pub fn new(secret: &[u8; 16], to: Option<&PeerAddr>) -> Self {
        let to = to.map(PeerAddr::as_str).unwrap_or("").as_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&sha256_parts(&[secret, to])[..16]);
        Self(bytes)
    }

    /// The token a hello carries, or `None` when it is not 32 hex digits: a peer that
    /// sends something else is never taken for the twin of another link.
    pub fn parse(hex_digits: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(hex_digits, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// As it travels in a hello.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl Link {
    /// A link that just came up.
    pub fn new(id: PeerId, direction: Direction, addr: Option<PeerAddr>, now: Time) -> Self {
        Self {
            id,
            direction,
            verified: addr.is_some() && direction == Direction::Outbound,
            addr,
            ready: false,
            token: None,
            height: 0,
            work: Work(0),
            score: 0,
            opened: now,
            last_heard: now,
            last_sent: now,
            agent: String::new(),
            last_block: None,
            last_tx: None,
            closing: false,
            known: crate::relay::Known::default(),
        }
    }

    /// What relaying a block to this link reads (the ids it is known to have, then whether
    /// it is usable: the entry's first two cache lines), for a driver that wants it loaded
    /// ahead of a block's arrival (a prefetch hint).
    pub fn relay_part(&self) -> &impl Sized {
        // The ids lead the entry and reach into its second line, where the flags are.
        &self.known
    }

    /// Whether we asked the transport to close it: what still arrives on it is ignored,
    /// and its going down is no failure.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Whether its handshake is done and it is not closing: what arrives on it is acted on,
    /// and it hears of new blocks and transactions.
    pub fn is_usable(&self) -> bool {
        self.ready && !self.closing
    }

    /// Whether it waits for a handshake to end (and may time out doing so).
    fn is_handshaking(&self) -> bool {
        !self.ready && !self.closing
    }
}

/// Limits of the peer table.
#[derive(Debug, Clone, Copy)]
pub struct PeerLimits {
    /// Links we open ourselves.
    pub max_outbound: usize,
    /// Links others open to us.
    pub max_inbound: usize,
    /// Addresses remembered in all.
    pub max_known: usize,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            max_outbound: 8,
            max_inbound: 32,
            max_known: 1_000,
        }
    }
}

/// Open links by id, in id order so that iteration is deterministic.
///
/// A sorted vector of ids beside a vector of links rather than a tree: a node has a few
/// dozen links, looks one up for every message it handles and walks them all for every
/// deadline, and contiguous memory makes both cheap. Ids only grow, so a new link goes last.
///
/// Laid out by hand: a lookup reads the length of the ids (which `SmallVec` keeps after
/// them), where the last link was and where the links are, so those three sit together, on
/// one cache line with the last ids (in the compiler's order the place of the last link
/// came a line further, and each lookup read three lines of the table instead of two).
#[derive(Debug, Default)]
#[repr(C)]
pub struct LinkTable {
    /// The links' ids, increasing; `links[i]` is the link of `ids[i]`. Held in the table
    /// itself up to a typical node's links: finding a message's link then reads no memory
    /// of its own before the link.
    ids: SmallVec<[PeerId; INLINE_IDS]>,
    /// Where the last link looked up was: a message's handling asks for its link several
    /// times, and each search would walk the ids again. Checked against `ids` before use, so
    /// a table changed since only costs a search.
    last: Cell<usize>,
    links: Vec<Link>,
    /// Counts kept as links come, change and go, so that no question needs a walk.
    counts: Counts,
    /// When the oldest link still in its handshake opened (`Some(None)`: none is), or
    /// `None` until a walk finds it again. Asked after every input while links form,
    /// which walked every link each time; it only moves when a link enters or leaves its
    /// handshake.
    handshake_start: Cell<Option<Option<Time>>>,
}

/// Link ids a [`LinkTable`] holds in itself: Bitcoin's eight outbound links and up to
/// twice as many inbound ones. On a random graph of eight outbound links per node the
/// inbound count is close to a Poisson count of mean eight: room for 16 ids would leave
/// about four nodes in ten with theirs on the heap (one more wait on memory for each
/// message's link), room for 24 about one in 250.
const INLINE_IDS: usize = 24;

/// What [`LinkTable`] counts.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    outbound: usize,
    inbound: usize,
    /// Links neither ready nor closing.
    handshaking: usize,
}

impl Counts {
    /// Counts `link` in (`into`) or out (`!into`).
    fn tally(&mut self, link: &Link, into: bool) {
        let step = |n: &mut usize| *n = if into { *n + 1 } else { n.saturating_sub(1) };
        match link.direction {
            Direction::Outbound => step(&mut self.outbound),
            Direction::Inbound => step(&mut self.inbound),
        }
        if link.is_handshaking() {
            step(&mut self.handshaking);
        }
    }
}

impl LinkTable {
    /// Where link `id` is in `ids` and `links`.
    fn index(&self, id: PeerId) -> Option<usize> {
        let last = self.last.get();
        if self.ids.get(last) == Some(&id) {
            return Some(last);
        }
        let i = self.ids.binary_search(&id).ok()?;
        self.last.set(i);
        Some(i)
    }
    /// A link.
    pub fn get(&self, id: PeerId) -> Option<&Link> {
        self.index(id).and_then(|i| self.links.get(i))
    }
    /// A link, mutable. Its readiness and closing change through [`LinkTable::set_ready`]
    /// and [`LinkTable::set_closing`], which keep the counts.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Link> {
        self.index(id).and_then(|i| self.links.get_mut(i))
    }
    /// Adds a link (replacing one with the same id).
    pub fn insert(&mut self, link: Link) {
        if self.links.capacity() == 0 {
            // Room for a typical node's links at once: growing by doubling from one left
            // copies behind (a link takes four cache lines) and ended with room for 32.
            self.links.reserve_exact(INLINE_IDS);
        }
        self.counts.tally(&link, true);
        self.handshake_joined(&link);
        // Ids only grow: the common case appends.
        if self.ids.last().is_none_or(|&last| last < link.id) {
            self.ids.push(link.id);
            self.links.push(link);
            return;
        }
        match self.ids.binary_search(&link.id) {
            Ok(i) => {
                if let Some(slot) = self.links.get_mut(i) {
                    let old = std::mem::replace(slot, link);
                    self.counts.tally(&old, false);
                    self.handshake_left(&old);
                }
            }
            Err(i) => {
                self.ids.insert(i, link.id);
                self.links.insert(i, link);
            }
        }
    }
    /// Removes a link.
    pub fn remove(&mut self, id: PeerId) -> Option<Link> {
        let i = self.index(id)?;
        self.ids.remove(i);
        let link = self.links.remove(i);
        self.counts.tally(&link, false);
        self.handshake_left(&link);
        Some(link)
    }
    /// Marks a link's handshake done; returns it to fill in what the hello said.
    pub fn set_ready(&mut self, id: PeerId) -> Option<&mut Link> {
        let i = self.index(id)?;
        let link = self.links.get_mut(i)?;
        self.counts.tally(link, false);
        if link.is_handshaking() {
            self.handshake_start.set(None);
        }
        link.ready = true;
        self.counts.tally(link, true);
        Some(link)
    }
    /// Marks a link as closing; true when it was not already (and is open).
    pub fn set_closing(&mut self, id: PeerId) -> bool {
        let Some(link) = self.index(id).and_then(|i| self.links.get_mut(i)) else {
            return false;
        };
        if link.closing {
            return false;
        }
        self.counts.tally(link, false);
        if link.is_handshaking() {
            self.handshake_start.set(None);
        }
        link.closing = true;
        self.counts.tally(link, true);
        true
    }
    /// Every link.
    pub fn iter(&self) -> impl Iterator<Item = &Link> {
        self.links.iter()
    }
    /// Every link, mutable (for what the counts do not cover).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.links.iter_mut()
    }
    /// The usable links ([`Link::is_usable`]).
    pub fn usable(&self) -> impl Iterator<Item = &Link> {
        self.links.iter().filter(|l| l.is_usable())
    }
    /// The usable links, mutable (for what the counts do not cover).
    pub(crate) fn usable_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.links.iter_mut().filter(|l| l.is_usable())
    }
    /// Links whose handshake is done.
    pub fn ready(&self) -> impl Iterator<Item = &Link> {
        self.links.iter().filter(|l| l.ready)
    }
    /// Whether `id` is up with its handshake done.
    pub fn is_ready(&self, id: PeerId) -> bool {
        self.get(id).is_some_and(|l| l.ready)
    }
    /// Number of open links in one direction.
    pub fn count(&self, direction: Direction) -> usize {
        match direction {
            Direction::Outbound => self.counts.outbound,
            Direction::Inbound => self.counts.inbound,
        }
    }
    /// Number of links in their handshake (neither ready nor closing).
    pub fn handshaking(&self) -> usize {
        self.counts.handshaking
    }
    /// When the oldest link in its handshake opened; `None` when no link is in one.
    pub fn earliest_handshake(&self) -> Option<Time> {
        if let Some(known) = self.handshake_start.get() {
            return known;
        }
        let found = self.links.iter().filter(|l| l.is_handshaking()).map(|l| l.opened).min();
        self.handshake_start.set(Some(found));
        found
    }
    /// `link` joined the table: a handshake it is in may start earlier than any known.
    fn handshake_joined(&self, link: &Link) {
        if let (Some(known), true) = (self.handshake_start.get(), link.is_handshaking()) {
            let earliest = known.map_or(link.opened, |t| t.min(link.opened));
            self.handshake_start.set(Some(Some(earliest)));
        }
    }
    /// `link` left the table: if it was in its handshake, the earliest needs a new walk.
    fn handshake_left(&self, link: &Link) {
        if link.is_handshaking() {
            self.handshake_start.set(None);
        }
    }
    /// Number of open links.
    pub fn len(&self) -> usize {
        self.links.len()
    }
    /// Whether no link is open.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
    /// The open link to or from `addr`, preferring a proven one.
    pub fn by_addr(&self, addr: &PeerAddr) -> Option<&Link> {
        let mut found = None;
        for l in self.links.iter().filter(|l| l.addr.as_ref() == Some(addr)) {
            if l.verified {
                return Some(l);
            }
            found.get_or_insert(l);
        }
        found
    }
}

/// What `/peers` shows of one peer: an address we know, with its open link if any.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Its listening address.
    pub address: PeerAddr,
    /// Where it stands.
    pub state: PeerState,
    /// Who opened the link (or would: outbound for an address we only know).
    pub direction: Direction,
    /// Best height it announced.
    pub height: u64,
    /// Best work it announced.
    #[serde(skip)]
    pub work: Work,
    /// Misbehaviour score of its link.
    pub score: u32,
    /// Consecutive failures to reach it.
    pub failures: u32,
    /// Configured or registered by hand: never forgotten.
    pub pinned: bool,
    /// When we last heard from it (ms since the epoch; 0 never).
    pub last_seen: u64,
    /// Its link, when one is open.
    #[serde(skip)]
    pub link: Option<PeerId>,
}

/// The first delay after a failure; doubles with each further failure up to `max`.
pub fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(max)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn a_token_is_32_hex_digits_and_reads_back_as_sent() {
        let t = LinkToken([0xab; 16]);
        assert_eq!(LinkToken::parse(&t.to_hex()), Some(t));
        assert_eq!(LinkToken::parse(&"AB".repeat(16)), Some(t), "either case");
        for bad in ["", "t1", &"ab".repeat(15), &"ab".repeat(17), &"zz".repeat(16)] {
            assert_eq!(LinkToken::parse(bad), None, "{bad:?}");
        }
    }

    fn link(id: u64, direction: Direction) -> Link {
        Link::new(PeerId(id), direction, None, Time::ZERO)
    }

    #[test]
    fn a_link_keeps_what_relay_reads_in_its_first_two_cache_lines() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!((size_of::<Link>(), align_of::<Link>()), (256, 64));
        assert_eq!(offset_of!(Link, known), 0);
        let relay_part = size_of::<crate::relay::Known>();
        assert!(relay_part > 64 && relay_part <= 128, "the relay part spans two lines");
        assert!(offset_of!(Link, ready) < 128 && offset_of!(Link, closing) < 128);
        for end in [
            offset_of!(Link, id) + size_of::<PeerId>(),
            offset_of!(Link, closing) + 1,
            offset_of!(Link, height) + 8,
            offset_of!(Link, last_sent) + size_of::<Time>(),
        ] {
            assert!(end <= 128, "a hot field ends at byte {end}");
        }
    }

    fn ids(t: &LinkTable) -> Vec<u64> {
        t.iter().map(|l| l.id.0).collect()
    }

    #[test]
    fn links_are_kept_in_id_order_whatever_the_order_they_come_in() {
        let mut t = LinkTable::default();
        for id in [5, 9, 2, 7, 11, 1] {
            t.insert(link(id, Direction::Inbound));
        }
        assert_eq!(ids(&t), [1, 2, 5, 7, 9, 11]);
        assert_eq!(t.remove(PeerId(7)).unwrap().id, PeerId(7));
        assert!(t.remove(PeerId(7)).is_none() && t.get(PeerId(7)).is_none());
        t.insert(link(12, Direction::Outbound));
        assert_eq!(ids(&t), [1, 2, 5, 9, 11, 12]);
        assert!(
            [1, 2, 5, 9, 11, 12]
                .iter()
                .all(|&i| t.get(PeerId(i)).unwrap().id == PeerId(i))
        );
        assert!(t.get(PeerId(3)).is_none() && t.get_mut(PeerId(13)).is_none());
        // The same id again replaces the link.
        t.insert(link(5, Direction::Outbound));
        assert_eq!(
            (t.len(), t.count(Direction::Outbound), t.count(Direction::Inbound)),
            (6, 2, 4)
        );
    }

    #[test]
    fn closing_and_readiness_are_kept_on_the_link_and_counted() {
        let mut t = LinkTable::default();
        for id in 1..=4 {
            t.insert(link(id, Direction::Outbound));
        }
        assert_eq!(t.handshaking(), 4);
        assert!(t.set_ready(PeerId(1)).is_some());
        assert!(t.set_closing(PeerId(2)));
        assert!(!t.set_closing(PeerId(2)), "already closing");
        assert!(!t.set_closing(PeerId(9)), "not open");
        assert!(t.set_ready(PeerId(9)).is_none());
        assert!(t.get(PeerId(2)).unwrap().is_closing() && !t.get(PeerId(1)).unwrap().is_closing());
        assert_eq!(t.handshaking(), 2, "links 3 and 4");
        // A ready link closing was not in its handshake; removing a waiting one counts it out.
        t.set_closing(PeerId(1));
        t.remove(PeerId(3));
        assert_eq!(t.handshaking(), 1);
        let ready: Vec<u64> = t.ready().map(|l| l.id.0).collect();
        assert_eq!(ready, [1]);
        t.remove(PeerId(1));
        t.remove(PeerId(2));
        t.remove(PeerId(4));
        assert_eq!((t.handshaking(), t.count(Direction::Outbound)), (0, 0));
        assert!(t.is_empty());
    }

    proptest::proptest! {
        /// The oldest handshake the table keeps is the one a walk over its links finds,
        /// whatever links come, finish their handshake, close and go, in any order.
        #[test]
        fn the_oldest_handshake_is_what_a_walk_finds(ops in proptest::collection::vec((0u8..5, 1u64..12, 0u64..50), 1..60)) {
            let mut t = LinkTable::default();
            for (op, id, at) in ops {
                let id = PeerId(id);
                match op {
                    0 | 1 => t.insert(Link::new(id, Direction::Inbound, None, Time::from_millis(at))),
                    2 => _ = t.set_ready(id),
                    3 => _ = t.set_closing(id),
                    _ => _ = t.remove(id),
                }
                let walked = t.iter().filter(|l| !l.ready && !l.is_closing()).map(|l| l.opened).min();
                proptest::prop_assert_eq!(t.earliest_handshake(), walked);
            }
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let (b, m) = (Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(backoff(1, b, m), Duration::from_secs(1));
        assert_eq!(backoff(2, b, m), Duration::from_secs(2));
        assert_eq!(backoff(5, b, m), Duration::from_secs(16));
        assert_eq!(backoff(6, b, m), m);
        assert_eq!(backoff(60, b, m), m);
    }
}

/// Every known peer with its state, as `/peers` lists them.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct PeerList(pub Vec<PeerInfo>);

impl PeerList {
    /// Every entry.
    pub fn iter(&self) -> std::slice::Iter<'_, PeerInfo> {
        self.0.iter()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The entry for `addr`.
    pub fn get(&self, addr: &PeerAddr) -> Option<&PeerInfo> {
        self.0.iter().find(|p| &p.address == addr)
    }
    /// Addresses of connected peers.
    pub fn connected(&self) -> Vec<PeerAddr> {
        self.0
            .iter()
            .filter(|p| p.state == PeerState::Connected)
            .map(|p| p.address.clone())
            .collect()
    }
    /// Whether `addr` is connected.
    pub fn is_connected(&self, addr: &PeerAddr) -> bool {
        self.get(addr).is_some_and(|p| p.state == PeerState::Connected)
    }
}

impl IntoIterator for PeerList {
    type Item = PeerInfo;
    type IntoIter = std::vec::IntoIter<PeerInfo>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
