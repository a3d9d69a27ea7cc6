//! Links: who we are connected to right now, each known by a [`PeerId`].
//!
//! A link is one connection, opened by us (outbound, to an address we dialled, so that
//! address is proven) or by the other side (inbound, whose listening address is only a claim
//! until proven). A message's sender is the link it came on: nothing a message says can make
//! it count as another peer's, so misbehaviour scores live on the link. Addresses and what we
//! know of them (backoff, bans, the operator's blocks) live in [`crate::addrbook`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chainsim_primitives::Work;
use serde::Serialize;

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
#[derive(Debug, Clone)]
pub struct Link {
    /// The link's number.
    pub id: PeerId,
    /// Who opened it.
    pub direction: Direction,
    /// The peer's listening address: the dialled one (outbound), or what its hello claims
    /// (inbound; `None` before the hello).
    pub addr: Option<PeerAddr>,
    /// Whether `addr` is proven: we dialled it, or a link we dialled carries the same token.
    pub verified: bool,
    /// Whether both hellos are done.
    pub ready: bool,
    /// The token its hello carried (duplicate links between one pair carry the same one).
    pub token: String,
    /// Best height it announced or sent.
    pub height: u64,
    /// Best chain work it announced or sent.
    pub work: Work,
    /// Misbehaviour score.
    pub score: u32,
    /// When the link came up.
    pub opened: Time,
    /// When we last heard from it.
    pub last_heard: Time,
    /// When we last sent it something.
    pub last_sent: Time,
    /// Software it announced.
    pub agent: String,
    /// When it last gave us a block we did not have (protects it from eviction).
    pub last_block: Option<Time>,
    /// When it last gave us a transaction we did not have (protects it from eviction).
    pub last_tx: Option<Time>,
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
            token: String::new(),
            height: 0,
            work: Work(0),
            score: 0,
            opened: now,
            last_heard: now,
            last_sent: now,
            agent: String::new(),
            last_block: None,
            last_tx: None,
        }
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
#[derive(Debug, Default)]
pub struct LinkTable {
    links: BTreeMap<PeerId, Link>,
}

impl LinkTable {
    /// A link.
    pub fn get(&self, id: PeerId) -> Option<&Link> {
        self.links.get(&id)
    }
    /// A link, mutable.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Link> {
        self.links.get_mut(&id)
    }
    /// Adds a link.
    pub fn insert(&mut self, link: Link) {
        self.links.insert(link.id, link);
    }
    /// Removes a link.
    pub fn remove(&mut self, id: PeerId) -> Option<Link> {
        self.links.remove(&id)
    }
    /// Every link.
    pub fn iter(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }
    /// Links whose handshake is done.
    pub fn ready(&self) -> impl Iterator<Item = &Link> {
        self.links.values().filter(|l| l.ready)
    }
    /// Whether `id` is up with its handshake done.
    pub fn is_ready(&self, id: PeerId) -> bool {
        self.links.get(&id).is_some_and(|l| l.ready)
    }
    /// Number of open links in one direction.
    pub fn count(&self, direction: Direction) -> usize {
        self.links.values().filter(|l| l.direction == direction).count()
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
        for l in self.links.values().filter(|l| l.addr.as_ref() == Some(addr)) {
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
mod tests {
    use super::*;

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
