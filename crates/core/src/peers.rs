//! The peer table: who we know, who we talk to, and how much we trust them.
//!
//! A peer is known by the address it listens on (`HOST:PORT`), whichever side opened the
//! link, so each pair of nodes has one record on each side. Failures back off
//! exponentially; misbehaviour adds to a score and a peer that reaches [`BAN_SCORE`] is
//! banned for [`BAN_MS`]. Blocking (`/peers/block`) is sticky until unblocked: a blocked
//! address is neither contacted nor listened to, and peer exchange cannot bring it back.

use std::collections::BTreeMap;
use chainsim_primitives::Work;
use serde::Serialize;

pub use chainsim_primitives::addr::{AddrError, PeerAddr};

/// Misbehaviour score at which a peer is banned.
pub const BAN_SCORE: u32 = 100;
/// How long a ban lasts, in milliseconds.
pub const BAN_MS: u64 = 10 * 60 * 1000;
/// First retry delay after a failure; doubles with each further failure.
pub const BACKOFF_BASE_MS: u64 = 1_000;
/// Longest retry delay.
pub const BACKOFF_MAX_MS: u64 = 30_000;
/// Failures after which a peer that was not configured is forgotten.
pub const DROP_AFTER_FAILURES: u32 = 8;
/// How long a refused peer (other genesis or version) is left alone.
pub const REFUSED_MS: u64 = 60 * 60 * 1000;

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Known, will be contacted when a slot is free and its retry time has come.
    Idle,
    /// Our hello is on its way.
    Connecting,
    /// Handshake done; messages flow.
    Connected,
    /// Failed recently; retried later.
    Backoff,
    /// Cut by the operator until unblocked.
    Blocked,
    /// Misbehaved or incompatible; ignored for a while.
    Banned,
}

/// Who opened the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We contacted them.
    Outbound,
    /// They contacted us.
    Inbound,
}

/// What we know of one peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Its listening address.
    pub address: PeerAddr,
    /// Link state.
    pub state: PeerState,
    /// Who opened the link.
    pub direction: Direction,
    /// Best height it announced.
    pub height: u64,
    /// Best work it announced.
    #[serde(skip)]
    pub work: Work,
    /// Misbehaviour score.
    pub score: u32,
    /// Consecutive failures.
    pub failures: u32,
    /// Configured on the command line or registered by hand: never forgotten.
    pub pinned: bool,
    /// When a retry or the end of a ban is due (ms).
    #[serde(skip)]
    pub retry_at: u64,
    /// When we last heard from it (ms).
    pub last_seen: u64,
    /// When our last hello to it was sent (ms): handshake timeouts and the re-handshake limit.
    #[serde(skip)]
    pub connecting_since: u64,
    /// It sent a block we could not connect: download from it even without a work claim.
    #[serde(skip)]
    pub wants_sync: bool,
    /// It had nothing more to give during its last sync: do not pick it again until it
    /// announces something new.
    #[serde(skip)]
    pub sync_failed: bool,
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

/// All known peers, ordered by address so that iteration is deterministic.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<PeerAddr, PeerInfo>,
}

impl PeerTable {
    /// A peer's record.
    pub fn get(&self, addr: &PeerAddr) -> Option<&PeerInfo> {
        self.peers.get(addr)
    }
    /// A peer's record, mutable.
    pub fn get_mut(&mut self, addr: &PeerAddr) -> Option<&mut PeerInfo> {
        self.peers.get_mut(addr)
    }
    /// Every record.
    pub fn iter(&self) -> impl Iterator<Item = &PeerInfo> {
        self.peers.values()
    }
    /// Every record, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut PeerInfo> {
        self.peers.values_mut()
    }
    /// Addresses of connected peers.
    pub fn connected(&self) -> Vec<PeerAddr> {
        self.peers
            .values()
            .filter(|p| p.state == PeerState::Connected)
            .map(|p| p.address.clone())
            .collect()
    }
    /// Whether `addr` is connected.
    pub fn is_connected(&self, addr: &PeerAddr) -> bool {
        self.peers.get(addr).is_some_and(|p| p.state == PeerState::Connected)
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.peers.len()
    }
    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
    /// Links in a given direction that are up or being opened.
    pub fn count_active(&self, direction: Direction) -> usize {
        self.peers
            .values()
            .filter(|p| p.direction == direction && matches!(p.state, PeerState::Connected | PeerState::Connecting))
            .count()
    }
    /// Adds a record if absent; returns the record.
    pub fn entry(&mut self, addr: &PeerAddr, now: u64) -> &mut PeerInfo {
        self.peers.entry(addr.clone()).or_insert_with(|| PeerInfo {
            address: addr.clone(),
            state: PeerState::Idle,
            direction: Direction::Outbound,
            height: 0,
            work: Work(0),
            score: 0,
            failures: 0,
            pinned: false,
            retry_at: now,
            last_seen: 0,
            connecting_since: 0,
            wants_sync: false,
            sync_failed: false,
        })
    }
    /// Forgets a record.
    pub fn remove(&mut self, addr: &PeerAddr) -> Option<PeerInfo> {
        self.peers.remove(addr)
    }
}

/// Delay before retry number `failures` (1-based).
pub fn backoff_ms(failures: u32) -> u64 {
    BACKOFF_BASE_MS
        .saturating_mul(1u64 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX_MS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(6), BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(60), BACKOFF_MAX_MS);
    }
}
