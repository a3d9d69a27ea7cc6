//! Items asked for and not yet arrived, each with the link asked and the other links that
//! announced it, to ask in turn if that one fails.
//!
//! Looked up on every announcement of an item in flight. A node has one or two blocks in
//! flight at a time, so the first requests are held in the table itself, beside the node's
//! other state, and only more of them go to a hash table (transactions can be many). The
//! time of the oldest request is kept beside them so that the node's next deadline (asked
//! after every input) costs nothing. Nothing sent depends on where a request is held:
//! every list taken from the table is sorted by id first.

use std::hash::Hash;
use std::time::Duration;

use smallvec::SmallVec;

use crate::keyed_hash::{KeyedHash, KeyedMap};
use crate::peers::PeerId;
use crate::time::Time;

/// Requests held in the table itself.
const INLINE: usize = 2;

/// An item we asked a link for.
#[derive(Debug, Clone)]
struct Fetch {
    from: PeerId,
    at: Time,
    /// Other links that announced it, asked in turn if `from` fails. Room for a dozen in
    /// place: a block takes long enough to download that most of a node's links announce
    /// it meanwhile, and room for four sent the list to the heap for most blocks at most
    /// nodes (an allocation per block and node; 2-3% of a simulation's mining time).
    others: SmallVec<[PeerId; 12]>,
}

/// The requests of one kind of item (blocks, or transactions).
#[derive(Debug)]
pub(super) struct Fetches<K> {
    /// The first requests; a slot is free when `None`.
    inline: [Option<(K, Fetch)>; INLINE],
    /// The others.
    map: KeyedMap<K, Fetch>,
    /// The earliest `at` of all requests; `None` when there are none.
    oldest: Option<Time>,
}

impl<K: Copy + Ord + Hash> Fetches<K> {
    /// No requests; `keyed` hashes the ids.
    pub(super) fn new(keyed: KeyedHash) -> Self {
        Self {
            inline: std::array::from_fn(|_| None),
            map: KeyedMap::with_hasher(keyed),
            oldest: None,
        }
    }

    /// The hashing its ids are looked up with.
    pub(super) fn hasher(&self) -> KeyedHash {
        *self.map.hasher()
    }

    /// The request for `id`, if any.
    fn get_mut(&mut self, id: &K) -> Option<&mut Fetch> {
        let inline = self.inline.iter_mut().flatten().find(|(k, _)| k == id);
        match inline {
            Some((_, f)) => Some(f),
            None if self.map.is_empty() => None,
            None => self.map.get_mut(id),
        }
    }

    /// Adds the request for `id` (not held yet).
    fn insert(&mut self, id: K, fetch: Fetch) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some((id, fetch)),
            None => {
                self.map.insert(id, fetch);
            }
        }
    }

    /// Takes the request for `id` out, if any.
    fn remove(&mut self, id: &K) -> Option<Fetch> {
        for slot in &mut self.inline {
            if slot.as_ref().is_some_and(|(k, _)| k == id) {
                return slot.take().map(|(_, f)| f);
            }
        }
        if self.map.is_empty() { None } else { self.map.remove(id) }
    }

    /// Every request, in no order.
    fn iter(&self) -> impl Iterator<Item = (&K, &Fetch)> {
        let inline = self.inline.iter().flatten().map(|(k, f)| (k, f));
        inline.chain(self.map.iter())
    }

    /// Every request, mutable, in no order.
    fn values_mut(&mut self) -> impl Iterator<Item = &mut Fetch> {
        let inline = self.inline.iter_mut().flatten().map(|(_, f)| f);
        inline.chain(self.map.values_mut())
    }

    /// Records `from` as a source of `id`; true when it should be asked now (nobody else
    /// is).
    pub(super) fn want(&mut self, id: K, from: PeerId, now: Time) -> bool {
        if let Some(f) = self.get_mut(&id) {
            if f.from != from && !f.others.contains(&from) {
                f.others.push(from);
            }
            return false;
        }
        let others = SmallVec::new();
        self.insert(id, Fetch { from, at: now, others });
        self.oldest = Some(self.oldest.map_or(now, |t| t.min(now)));
        true
    }

    /// `id` arrived: no longer wanted.
    pub(super) fn arrived(&mut self, id: &K) {
        if let Some(f) = self.remove(id) {
            self.replaced(f.at);
        }
    }

    /// Moves the request for `id` on from `failed` to its next announcer, or forgets it
    /// when none is left. Returns the link to ask now; none when `failed` was not the one
    /// asked.
    pub(super) fn next_source(&mut self, id: K, failed: PeerId, now: Time) -> Option<PeerId> {
        let f = self.get_mut(&id)?;
        if f.from != failed {
            return None;
        }
        let was = f.at;
        let next = if f.others.is_empty() {
            self.remove(&id);
            None
        } else {
            f.from = f.others.remove(0);
            f.at = now;
            Some(f.from)
        };
        self.replaced(was);
        next
    }

    /// A request made at `at` was answered or moved: finds the oldest again if it was
    /// the oldest.
    fn replaced(&mut self, at: Time) {
        if self.oldest == Some(at) {
            self.oldest = self.iter().map(|(_, f)| f.at).min();
        }
    }

    /// The ids asked of `peer`, in id order.
    pub(super) fn owed_by(&self, peer: PeerId) -> Vec<K> {
        self.sorted(|f| f.from == peer).into_iter().map(|(id, _)| id).collect()
    }

    /// Requests made `timeout` or longer before `now`, with the link asked, in id order.
    pub(super) fn late(&self, now: Time, timeout: Duration) -> Vec<(K, PeerId)> {
        if self.deadline(timeout).is_none_or(|d| d > now) {
            return Vec::new();
        }
        self.sorted(|f| f.at + timeout <= now)
    }

    /// The requests matching `pred` with the link asked, in id order.
    fn sorted(&self, pred: impl Fn(&Fetch) -> bool) -> Vec<(K, PeerId)> {
        let mut ids: Vec<(K, PeerId)> = self
            .iter()
            .filter(|(_, f)| pred(f))
            .map(|(k, f)| (*k, f.from))
            .collect();
        ids.sort_unstable_by_key(|(k, _)| *k);
        ids
    }

    /// Forgets `peer` as a fallback source of every request.
    pub(super) fn drop_announcer(&mut self, peer: PeerId) {
        for f in self.values_mut() {
            f.others.retain(|p| *p != peer);
        }
    }

    /// When the oldest request times out.
    pub(super) fn deadline(&self, timeout: Duration) -> Option<Time> {
        debug_assert_eq!(self.oldest, self.iter().map(|(_, f)| f.at).min());
        self.oldest.map(|t| t + timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn t(s: u64) -> Time {
        Time::from_millis(s * 1_000)
    }

    fn fetches() -> Fetches<u32> {
        Fetches::new(KeyedHash::new(5))
    }

    #[test]
    fn the_first_announcer_is_asked_and_the_others_wait_in_turn() {
        let mut f = fetches();
        assert!(f.want(1, PeerId(7), t(0)));
        assert!(!f.want(1, PeerId(8), t(1)));
        assert!(!f.want(1, PeerId(9), t(1)));
        assert!(!f.want(1, PeerId(8), t(1)), "an announcer is remembered once");
        assert_eq!(f.next_source(1, PeerId(8), t(2)), None, "only the link asked can fail");
        assert_eq!(f.next_source(1, PeerId(7), t(2)), Some(PeerId(8)));
        assert_eq!(f.next_source(1, PeerId(8), t(3)), Some(PeerId(9)));
        assert_eq!(f.next_source(1, PeerId(9), t(4)), None);
        assert!(f.want(1, PeerId(7), t(5)), "forgotten once nobody is left");
    }

    #[test]
    fn the_deadline_follows_the_oldest_request() {
        let mut f = fetches();
        assert_eq!(f.deadline(TIMEOUT), None);
        f.want(3, PeerId(1), t(1));
        f.want(2, PeerId(1), t(2));
        f.want(1, PeerId(2), t(3));
        assert_eq!(f.deadline(TIMEOUT), Some(t(11)));
        f.arrived(&2);
        assert_eq!(f.deadline(TIMEOUT), Some(t(11)), "a younger one left");
        f.arrived(&3);
        assert_eq!(f.deadline(TIMEOUT), Some(t(13)), "the oldest left");
        f.want(4, PeerId(3), t(4));
        f.want(4, PeerId(4), t(4));
        assert_eq!(f.next_source(1, PeerId(2), t(5)), None);
        assert_eq!(f.deadline(TIMEOUT), Some(t(14)));
        assert_eq!(f.next_source(4, PeerId(3), t(6)), Some(PeerId(4)));
        assert_eq!(f.deadline(TIMEOUT), Some(t(16)), "moved on, asked again now");
        f.arrived(&4);
        assert_eq!(f.deadline(TIMEOUT), None);
    }

    #[test]
    fn lists_come_in_id_order() {
        let mut f = fetches();
        for id in [9, 3, 7, 1, 5] {
            f.want(id, PeerId(u64::from(id % 2)), t(u64::from(id)));
        }
        assert_eq!(f.owed_by(PeerId(1)), vec![1, 3, 5, 7, 9]);
        let late = f.late(t(15), TIMEOUT);
        assert_eq!(late, vec![(1, PeerId(1)), (3, PeerId(1)), (5, PeerId(1))]);
        assert!(f.late(t(10), TIMEOUT).is_empty());
    }

    #[test]
    fn requests_beyond_those_held_inline_behave_the_same() {
        let mut f = fetches();
        for id in 1..=5 {
            assert!(f.want(id, PeerId(1), t(u64::from(id))));
        }
        f.arrived(&1);
        f.arrived(&2); // both inline slots free again; 3, 4, 5 are in the hash table
        assert!(!f.want(4, PeerId(2), t(6)), "found where it is held");
        assert!(f.want(6, PeerId(3), t(6)), "a new one takes a free inline slot");
        assert_eq!(f.next_source(4, PeerId(1), t(7)), Some(PeerId(2)));
        assert_eq!(f.owed_by(PeerId(1)), vec![3, 5]);
        assert_eq!(f.deadline(TIMEOUT), Some(t(13)));
        for id in [3, 4, 5, 6] {
            f.arrived(&id);
        }
        assert_eq!(f.deadline(TIMEOUT), None);
        assert!(f.owed_by(PeerId(1)).is_empty());
    }

    #[test]
    fn a_gone_announcer_is_not_asked() {
        let mut f = fetches();
        f.want(1, PeerId(1), t(0));
        f.want(1, PeerId(2), t(0));
        f.want(1, PeerId(3), t(0));
        f.drop_announcer(PeerId(2));
        assert_eq!(f.next_source(1, PeerId(1), t(1)), Some(PeerId(3)));
    }
}
