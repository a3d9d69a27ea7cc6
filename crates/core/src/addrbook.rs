//! The address book: every peer address we know, whether we may dial it now, and what it
//! did before. Bans and the operator's blocks attach to addresses only when those are
//! proven (we dialled them), so a stranger claiming to be someone cannot get them banned.

use std::time::Duration;

use indexmap::IndexMap;

use crate::keyed_hash::KeyedBytesHash;
use crate::peers::{PeerAddr, backoff};
use crate::time::Time;

/// What may be done with an address now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrState {
    /// May be dialled from `retry_at` on.
    Idle,
    /// A dial is under way since the given time.
    Dialing(Time),
    /// Failed recently; becomes idle at `retry_at`.
    Backoff,
    /// Cut by the operator until unblocked.
    Blocked,
    /// Misbehaved or incompatible; ignored until `retry_at`.
    Banned,
}

/// Most addresses a new book makes room for (see [`AddrBook::new`]).
pub const MAX_RESERVED_ADDRS: usize = 1_000;

/// What is known of one address (the book's key, not repeated here: on a simulator's ten
/// thousand nodes the copy took 16 MB).
#[derive(Debug, Clone)]
pub struct AddrEntry {
    /// Its state.
    pub state: AddrState,
    /// Consecutive failures to reach it.
    pub failures: u32,
    /// When a retry or the end of a ban is due.
    pub retry_at: Time,
    /// Configured or registered by hand: retried forever instead of forgotten.
    pub pinned: bool,
    /// When a link to it last carried a message.
    pub last_seen: Time,
}

/// When an entry in `state` with retry time `retry_at` next needs attention: its backoff or
/// ban ends, or its dial times out after `dial_timeout` (idle addresses are dialled when a
/// slot frees, not on a timer).
fn deadline(state: AddrState, retry_at: Time, dial_timeout: Duration) -> Option<Time> {
    match state {
        AddrState::Backoff | AddrState::Banned => Some(retry_at),
        AddrState::Dialing(since) => Some(since + dial_timeout),
        AddrState::Idle | AddrState::Blocked => None,
    }
}

impl AddrEntry {
    /// Whether it is worth telling others about: not failing, banned or blocked.
    pub fn is_shareable(&self) -> bool {
        matches!(self.state, AddrState::Idle | AddrState::Dialing(_)) && self.failures == 0
    }
}

/// Retry settings of the address book.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First retry delay after a failure; doubles with each further failure.
    pub base: Duration,
    /// Longest retry delay.
    pub max: Duration,
    /// Failures after which an address that was not configured is forgotten.
    pub forget_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            forget_after: 8,
        }
    }
}

/// All known addresses, in the order they were learnt, so that iteration is deterministic.
/// A hash index rather than an ordered tree: gossip looks up hundreds of addresses per
/// message, and comparing address strings along a tree's path dominated the cost; hashed
/// with [`KeyedBytesHash`], as SipHash then did.
#[derive(Debug, Default)]
pub struct AddrBook {
    entries: IndexMap<PeerAddr, AddrEntry, KeyedBytesHash>,
    /// The next retry, ban end or dial timeout, once computed; a change forgets it (but a
    /// dial starting, succeeding or failing updates it, see [`AddrBook::set_state`]), so a
    /// node that handles many inputs does not scan a large book after each one.
    next: std::cell::Cell<Option<Option<Time>>>,
    /// How many addresses are being dialled, once counted; forgotten with `next` (every
    /// change of state that can move it forgets that too). A node asks after every `addr`
    /// message while its outbound slots are not all taken, as they are not while a network
    /// forms, and counting afresh scanned the whole book each time.
    dialing: std::cell::Cell<Option<usize>>,
    /// How many times an entry was removed or may have become shareable or unshareable (see
    /// [`AddrEntry::is_shareable`]). Additions are not counted: they go to the end, so a
    /// reader that kept something derived from the book (the cached answer to GetAddr) and
    /// the book's length then sees both what changed and what was added, without a scan.
    changes: u64,
}

impl AddrBook {
    /// An empty book whose index is hashed with `seed` (secret to the node, see
    /// [`KeyedBytesHash`]), with room for `expected` addresses (up to
    /// [`MAX_RESERVED_ADDRS`]): a book that fills up grows in one step instead of by
    /// doubling, which on a simulator's ten thousand nodes left a fifth of the memory its
    /// network formed in behind as copies, each page of it zeroed first by the system.
    pub fn new(seed: u64, expected: usize) -> Self {
        let room = expected.min(MAX_RESERVED_ADDRS);
        Self {
            entries: IndexMap::with_capacity_and_hasher(room, KeyedBytesHash::new(seed)),
            ..Self::default()
        }
    }
    /// The book's hashing, for sets of addresses beside it.
    pub fn hasher(&self) -> KeyedBytesHash {
        *self.entries.hasher()
    }
    /// An address's entry.
    pub fn get(&self, addr: &PeerAddr) -> Option<&AddrEntry> {
        self.entries.get(addr)
    }
    /// An address's entry, mutable.
    pub fn get_mut(&mut self, addr: &PeerAddr) -> Option<&mut AddrEntry> {
        self.changed();
        self.entries.get_mut(addr)
    }
    /// How many times an entry was removed or may have changed whether it is shareable, so
    /// far; only the difference between two readings means anything.
    pub fn changes(&self) -> u64 {
        self.changes
    }
    /// Something may have changed: the cached deadline is forgotten, the change counted.
    fn changed(&mut self) {
        self.forget_cached();
        self.changes += 1;
    }
    /// Forgets what was computed from the entries' states.
    fn forget_cached(&self) {
        self.next.set(None);
        self.dialing.set(None);
    }
    /// How many addresses are being dialled.
    pub fn dialing(&self) -> usize {
        if let Some(n) = self.dialing.get() {
            return n;
        }
        let n = self
            .entries
            .values()
            .filter(|e| matches!(e.state, AddrState::Dialing(_)))
            .count();
        self.dialing.set(Some(n));
        n
    }
    /// The address and entry at `index` in the order addresses were learnt.
    pub fn get_index(&self, index: usize) -> Option<(&PeerAddr, &AddrEntry)> {
        self.entries.get_index(index)
    }
    /// Every address with its entry, in the order they were learnt.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerAddr, &AddrEntry)> {
        self.entries.iter()
    }
    /// Number of known addresses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `addr`'s state to `state` (an address not known is left alone), counted as a
    /// change like [`AddrBook::get_mut`]. The cached next deadline (for this
    /// `dial_timeout`, the one [`AddrBook::next_due`] is asked with) and count of dials
    /// follow the change instead of being forgotten: a network forming starts and ends
    /// thousands of dials, and after each one the next deadline was found again by a walk
    /// over the whole book.
    pub fn set_state(&mut self, addr: &PeerAddr, state: AddrState, dial_timeout: Duration) {
        let Some(e) = self.entries.get_mut(addr) else { return };
        self.changes += 1;
        let (was, retry_at) = (e.state, e.retry_at);
        e.state = state;
        self.follow((was, retry_at), (state, retry_at), dial_timeout);
    }

    /// Brings the cached next deadline and count of dials in line with one entry going
    /// from state and retry time `was` to `is` (an entry removed goes to idle: it has no
    /// deadline and is not dialled).
    fn follow(&self, was: (AddrState, Time), is: (AddrState, Time), dial_timeout: Duration) {
        let (old, new) = (deadline(was.0, was.1, dial_timeout), deadline(is.0, is.1, dial_timeout));
        let (was, state) = (was.0, is.0);
        if let Some(next) = self.next.get() {
            // The earliest deadline going away leaves the next one unknown without a walk.
            let lost_earliest = old.is_some() && old == next && new != old;
            let next = [next, new].into_iter().flatten().min();
            self.next.set((!lost_earliest).then_some(next));
        }
        if let Some(n) = self.dialing.get() {
            let is_dialing = |s: AddrState| usize::from(matches!(s, AddrState::Dialing(_)));
            self.dialing.set((n + is_dialing(state)).checked_sub(is_dialing(was)));
        }
    }

    /// Notes when a proven peer was last heard from (its link closing). Not a change to
    /// any deadline, so the cached next one stands.
    pub fn seen(&mut self, addr: &PeerAddr, now: Time) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.last_seen = now;
        }
    }

    /// Adds an address (idle, dialable now) unless known or the book holds `max` already;
    /// pinned addresses are always taken. Returns whether it is there afterwards. An idle
    /// entry has no deadline, so the cached next one stands.
    pub fn add(&mut self, addr: &PeerAddr, pinned: bool, max: usize, now: Time) -> bool {
        // One lookup for the common case of gossip: an address known already.
        if let Some(e) = self.entries.get_mut(addr) {
            // Written only to pin: most addresses gossip brings are known and stay as
            // they are, and their entries are left unwritten.
            if pinned {
                e.pinned = true;
            }
            return true;
        }
        if !pinned && self.entries.len() >= max {
            return false;
        }
        let entry = AddrEntry {
            state: AddrState::Idle,
            failures: 0,
            retry_at: now,
            pinned,
            last_seen: Time::ZERO,
        };
        self.entries.insert(addr.clone(), entry);
        true
    }

    /// Idle addresses due for a dial, in the order they were learnt.
    pub fn due(&self, now: Time) -> Vec<PeerAddr> {
        self.entries
            .iter()
            .filter(|(_, e)| e.state == AddrState::Idle && e.retry_at <= now)
            .map(|(addr, _)| addr.clone())
            .collect()
    }

    /// Whether `addr` is known and pinned.
    pub fn is_pinned(&self, addr: &PeerAddr) -> bool {
        self.entries.get(addr).is_some_and(|e| e.pinned)
    }

    /// Pinned addresses that are idle and due for a dial, in the order they were learnt.
    pub fn pinned_due(&self, now: Time) -> impl Iterator<Item = &PeerAddr> {
        self.entries
            .iter()
            .filter(move |(_, e)| e.pinned && e.state == AddrState::Idle && e.retry_at <= now)
            .map(|(addr, _)| addr)
    }

    /// A link to `addr` came up and completed its handshake: failures are forgotten. The
    /// cached deadline and count of dials follow (see [`AddrBook::set_state`]).
    pub fn succeeded(&mut self, addr: &PeerAddr, now: Time, dial_timeout: Duration) {
        let Some(e) = self.entries.get_mut(addr) else { return };
        // Most links that succeed were dialled and never failed: nothing shareable changes.
        self.changes += u64::from(e.failures != 0 || e.state == AddrState::Backoff);
        e.failures = 0;
        e.last_seen = now;
        let (was, retry_at) = (e.state, e.retry_at);
        if matches!(was, AddrState::Dialing(_) | AddrState::Backoff) {
            e.state = AddrState::Idle;
        }
        let state = e.state;
        self.follow((was, retry_at), (state, retry_at), dial_timeout);
    }

    /// A dial or a link to `addr` failed: back off, or forget an unpinned address after
    /// too many failures. Returns true when the address was forgotten. The cached deadline
    /// and count of dials follow (see [`AddrBook::set_state`]): a node whose dials keep
    /// failing walked its whole book after each failure.
    pub fn failed(&mut self, addr: &PeerAddr, policy: &RetryPolicy, now: Time, dial_timeout: Duration) -> bool {
        self.changes += 1;
        let Some(e) = self.entries.get_mut(addr) else {
            return false;
        };
        if matches!(e.state, AddrState::Blocked | AddrState::Banned) {
            return false;
        }
        let was = (e.state, e.retry_at);
        e.failures += 1;
        if !e.pinned && e.failures >= policy.forget_after {
            // Keeps the others in the order they were learnt.
            self.entries.shift_remove(addr);
            self.follow(was, (AddrState::Idle, was.1), dial_timeout);
            return true;
        }
        e.state = AddrState::Backoff;
        e.retry_at = now + backoff(e.failures, policy.base, policy.max);
        let state = (e.state, e.retry_at);
        self.follow(was, state, dial_timeout);
        false
    }

    /// Bans a proven address until `until`.
    pub fn ban(&mut self, addr: &PeerAddr, until: Time, now: Time) {
        if self.add(addr, false, usize::MAX, now)
            && let Some(e) = self.get_mut(addr)
            && e.state != AddrState::Blocked
        {
            e.state = AddrState::Banned;
            e.retry_at = until;
        }
    }

    /// Wakes addresses whose backoff or ban is over; returns whether a pinned one woke.
    pub fn expire(&mut self, now: Time) -> bool {
        // Nothing can have expired before the cached next deadline.
        if let Some(next) = self.next.get()
            && next.is_none_or(|t| t > now)
        {
            return false;
        }
        self.forget_cached();
        let mut pinned = false;
        for e in self.entries.values_mut() {
            if matches!(e.state, AddrState::Backoff | AddrState::Banned) && e.retry_at <= now {
                e.state = AddrState::Idle;
                self.changes += 1;
                pinned |= e.pinned;
            }
        }
        pinned
    }

    /// The next time a backoff or ban ends or a dial times out, if any (idle addresses
    /// are dialled whenever a slot frees, not on a timer).
    pub fn next_due(&self, dial_timeout: Duration) -> Option<Time> {
        if let Some(next) = self.next.get() {
            return next;
        }
        let next = self
            .entries
            .values()
            .filter_map(|e| deadline(e.state, e.retry_at, dial_timeout))
            .min();
        self.next.set(Some(next));
        next
    }

    /// Dials under way for longer than `timeout`.
    pub fn stale_dials(&self, timeout: Duration, now: Time) -> Vec<PeerAddr> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e.state, AddrState::Dialing(since) if since + timeout <= now))
            .map(|(addr, _)| addr.clone())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    /// The dial timeout the tests' books are asked with.
    const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

    fn a(s: &str) -> PeerAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_back_off_then_forget_unpinned() {
        let mut book = AddrBook::default();
        let policy = RetryPolicy::default();
        let t = Time::from_millis(10_000);
        book.add(&a("10.0.0.1:1"), false, 10, t);
        book.add(&a("10.0.0.2:1"), true, 10, t);
        assert_eq!(book.due(t).len(), 2);
        assert!(!book.failed(&a("10.0.0.1:1"), &policy, t, DIAL_TIMEOUT));
        assert_eq!(book.get(&a("10.0.0.1:1")).unwrap().retry_at, t + Duration::from_secs(1));
        assert_eq!(book.due(t), vec![a("10.0.0.2:1")]);
        for _ in 1..policy.forget_after {
            book.failed(&a("10.0.0.1:1"), &policy, t, DIAL_TIMEOUT);
            book.failed(&a("10.0.0.2:1"), &policy, t, DIAL_TIMEOUT);
        }
        assert!(book.get(&a("10.0.0.1:1")).is_none(), "unpinned address forgotten");
        assert!(book.get(&a("10.0.0.2:1")).is_some(), "pinned address kept");
    }

    #[test]
    fn the_dialling_count_follows_every_change_of_state() {
        let mut book = AddrBook::default();
        let policy = RetryPolicy::default();
        let t = Time::from_millis(1_000);
        let scan = |b: &AddrBook| {
            b.iter()
                .filter(|(_, e)| matches!(e.state, AddrState::Dialing(_)))
                .count()
        };
        for i in 1..=4 {
            book.add(&a(&format!("10.0.0.{i}:1")), false, 10, t);
        }
        assert_eq!(book.dialing(), 0);
        for i in 1..=3 {
            book.get_mut(&a(&format!("10.0.0.{i}:1"))).unwrap().state = AddrState::Dialing(t);
            assert_eq!(book.dialing(), scan(&book));
        }
        assert_eq!(book.dialing(), 3);
        book.add(&a("10.0.0.9:1"), false, 10, t);
        assert_eq!(book.dialing(), 3, "an address learnt is idle");
        book.succeeded(&a("10.0.0.1:1"), t, DIAL_TIMEOUT);
        assert_eq!(book.dialing(), 2);
        book.failed(&a("10.0.0.2:1"), &policy, t, DIAL_TIMEOUT);
        assert_eq!(book.dialing(), 1);
        book.ban(&a("10.0.0.3:1"), t + Duration::from_secs(60), t);
        assert_eq!(book.dialing(), 0);
        book.expire(t + Duration::from_secs(61));
        assert_eq!((book.dialing(), scan(&book)), (0, 0));
    }

    #[test]
    fn the_book_is_bounded_except_for_pinned_addresses() {
        let mut book = AddrBook::default();
        let t = Time::ZERO;
        assert!(book.add(&a("10.0.0.1:1"), false, 1, t));
        assert!(!book.add(&a("10.0.0.2:1"), false, 1, t));
        assert!(book.add(&a("10.0.0.3:1"), true, 1, t));
        assert_eq!(book.len(), 2);
    }

    /// The next deadline and dial count as a book that kept nothing would find them.
    fn scanned(book: &AddrBook, dial_timeout: Duration) -> (Option<Time>, usize) {
        let next = book
            .iter()
            .filter_map(|(_, e)| deadline(e.state, e.retry_at, dial_timeout))
            .min();
        let dialing = book
            .iter()
            .filter(|(_, e)| matches!(e.state, AddrState::Dialing(_)))
            .count();
        (next, dialing)
    }

    proptest::proptest! {
        #[test]
        fn the_kept_deadline_and_dial_count_follow_any_changes_of_state(
            ops in proptest::collection::vec((0u8..7, 0usize..5, 0u64..50), 1..60)
        ) {
            let timeout = DIAL_TIMEOUT;
            // Two failures forget an unpinned address, so that forgetting is met as often
            // as backing off (and a forgotten one comes back with the next addition).
            let policy = RetryPolicy { forget_after: 2, ..RetryPolicy::default() };
            let mut book = AddrBook::default();
            for i in 0..4 {
                book.add(&a(&format!("10.0.0.{i}:1")), i == 0, 10, Time::ZERO);
            }
            for (op, i, secs) in ops {
                let (addr, t) = (a(&format!("10.0.0.{i}:1")), Time::from_millis(secs * 1_000));
                // Read the kept values first, so that every change below meets kept ones.
                let _ = (book.next_due(timeout), book.dialing());
                match op {
                    0 => book.set_state(&addr, AddrState::Dialing(t), timeout),
                    1 => book.set_state(&addr, AddrState::Idle, timeout),
                    2 => _ = book.failed(&addr, &policy, t, timeout),
                    3 => book.succeeded(&addr, t, timeout),
                    4 => book.ban(&addr, t + Duration::from_secs(30), t),
                    5 => _ = book.expire(t),
                    _ => _ = book.add(&addr, i == 0, 10, t),
                }
                let kept = (book.next_due(timeout), book.dialing());
                proptest::prop_assert_eq!(kept, scanned(&book, timeout));
            }
        }
    }
}
