//! An event queue on a virtual clock: everything a driver of many cores (the simulator, the
//! test network) has scheduled, popped in order of time, and among equal times in the order
//! it was scheduled. The sequence number makes ties independent of memory addresses and hash
//! order, which is what makes runs repeatable. Times are plain `u64`s in the driver's unit.
//!
//! It is a radix heap: a driver never schedules before the time it last popped (the clock
//! only moves forward), so an event is filed in the bucket of the highest bit in which its
//! time differs from the queue's base time, and only the lowest non-empty bucket (found
//! from a bit mask, not a scan) is ever sorted out. A large lowest bucket is split by the
//! same rule around its earliest time; a small one ([`SORT_AT_ONCE`] events or fewer) is
//! sorted whole into the run of events popped next, which spares its events the last
//! several moves down. Each event moves down a few buckets in all, through vectors read in
//! order, where a binary heap of a simulation's hundreds of thousands of pending events
//! takes a cache miss at most levels of every pop. The events travel with their keys:
//! moving a small event a few times through vectors read in order costs less than reading
//! it back from a slot of its own, which a pop would find long gone from the caches.
//! Events scheduled before the base time (inside the sorted run's span, or in the past,
//! which the drivers do not do but may) wait in a small binary heap, compared with the
//! run's first event at each pop.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// When an item is due, and its place among items due at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: u64,
    seq: u64,
}

/// One scheduled item.
#[derive(Debug)]
struct Entry<E> {
    key: Key,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest first. Sequence
    // numbers are unique, so keys never tie.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// Buckets 1..=64: bucket `b` holds times whose highest bit differing from `last` is `b - 1`.
const BUCKETS: usize = 65;

/// A lowest bucket this small is sorted whole instead of split further: sorting a few
/// dozen events costs less than moving each down its remaining buckets one at a time.
const SORT_AT_ONCE: usize = 32;

/// A min-queue of events keyed by (time, sequence number).
#[derive(Debug)]
pub struct EventQueue<E> {
    /// The events popped next, sorted by key; none is later than `last`.
    run: VecDeque<Entry<E>>,
    /// Events later than `last`, by radix bucket (index 0 unused).
    buckets: Vec<Vec<Entry<E>>>,
    /// Bit `b - 1` is set while bucket `b` holds events.
    filled: u64,
    /// Events scheduled before `last`, while the run lasts (or in the past).
    late: BinaryHeap<Entry<E>>,
    /// The base time: no bucketed event is earlier or equal, no event in the run later.
    last: u64,
    len: usize,
    seq: u64,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            run: VecDeque::new(),
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            filled: 0,
            late: BinaryHeap::new(),
            last: 0,
            len: 0,
            seq: 0,
            popped: 0,
        }
    }
}

/// The bucket of time `at` relative to `last` (0: equal).
fn bucket(at: u64, last: u64) -> usize {
    (u64::BITS - (at ^ last).leading_zeros()) as usize
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `at`, after everything already scheduled for that instant.
    pub fn push(&mut self, at: u64, event: E) {
        self.seq += 1;
        let entry = Entry {
            key: Key { at, seq: self.seq },
            event,
        };
        self.len += 1;
        match at.cmp(&self.last) {
            Ordering::Less => self.late.push(entry),
            // Not earlier than anything in the run, and scheduled after all of it.
            Ordering::Equal => self.run.push_back(entry),
            Ordering::Greater => self.file(entry),
        }
    }

    /// Puts a later event in its bucket. Inlined: it runs about five times per event (once
    /// when scheduled, then at each split on its way down), and a call copied the event
    /// once more on the way in.
    #[inline(always)]
    fn file(&mut self, entry: Entry<E>) {
        let b = bucket(entry.key.at, self.last);
        self.buckets[b].push(entry);
        self.filled |= 1 << (b - 1);
    }

    /// The earliest event, if any.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let entry = if self.late_first() {
            self.late.pop()?
        } else {
            self.sort_out();
            self.run.pop_front()?
        };
        self.len -= 1;
        self.popped += 1;
        Some((entry.key.at, entry.event))
    }

    /// Whether the earliest event waits in `late`: it holds one, and it comes before the
    /// run's first (an empty run is refilled only with events later than all of `late`).
    fn late_first(&self) -> bool {
        match (self.late.peek(), self.run.front()) {
            (Some(l), Some(r)) => l.key < r.key,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// When the run is empty, refills it from the lowest non-empty bucket.
    fn sort_out(&mut self) {
        if self.run.is_empty() {
            self.extend_run();
        }
    }

    /// Appends the lowest non-empty bucket's earliest events to the run: the bucket sorted
    /// whole when small, else split around its earliest time (the events due then join
    /// the run, in scheduling order; the others drop into lower buckets). Every event of
    /// the run is earlier than every bucketed one, so the run stays in order.
    fn extend_run(&mut self) {
        if self.filled == 0 {
            return;
        }
        let b = self.filled.trailing_zeros() as usize + 1;
        self.filled &= !(1 << (b - 1));
        let mut entries = std::mem::take(&mut self.buckets[b]);
        if entries.len() <= SORT_AT_ONCE {
            entries.sort_unstable_by_key(|e| e.key);
            // Every other bucket is later than this one's latest (it was the lowest) and
            // keeps its place relative to it.
            self.last = entries.last().map_or(self.last, |e| e.key.at);
            self.run.extend(entries.drain(..));
        } else {
            self.last = entries.iter().map(|e| e.key.at).min().unwrap_or(self.last);
            let start = self.run.len();
            for entry in entries.drain(..) {
                if entry.key.at == self.last {
                    self.run.push_back(entry);
                } else {
                    self.file(entry);
                }
            }
            // The events just found due, all at one time: in scheduling order.
            self.run.make_contiguous()[start..].sort_unstable_by_key(|e| e.key.seq);
        }
        // Keep the emptied bucket's allocation for the events that will fill it again.
        self.buckets[b] = entries;
    }

    /// Sorts out events until at least `n` wait in the run (or none is left to sort
    /// out), so that [`EventQueue::peek_nth`] can name the next `n` for a driver loading
    /// ahead what they read. The order of events is unchanged: only work the pops would
    /// do comes earlier. (An event pushed later but due before the run's last one waits
    /// apart, as any pushed into a run's span does.)
    pub fn fill_run(&mut self, n: usize) {
        while self.run.len() < n && self.filled != 0 {
            self.extend_run();
        }
    }

    /// The earliest entry, if any, left in place.
    fn first(&mut self) -> Option<&Entry<E>> {
        if self.late_first() {
            return self.late.peek();
        }
        self.sort_out();
        self.run.front()
    }

    /// When the earliest event is due.
    pub fn peek_time(&mut self) -> Option<u64> {
        self.first().map(|e| e.key.at)
    }

    /// The earliest event, if any, without taking it (a driver may prepare for it while
    /// it handles the current one).
    pub fn peek(&mut self) -> Option<&E> {
        self.first().map(|e| &e.event)
    }

    /// The event `n` places after the earliest, when the queue knows it without sorting
    /// anything out (a hint for a driver preparing events ahead; `None` says nothing).
    /// [`EventQueue::fill_run`] first makes it know the next few.
    pub fn peek_nth(&self, n: usize) -> Option<&E> {
        let entry = self.run.get(n)?;
        // Events waiting apart come first only if one is earlier than this one.
        match self.late.peek() {
            Some(late) if late.key < entry.key => None,
            _ => Some(&entry.event),
        }
    }

    /// Every event waiting, in no particular order (for a look at what is left, not for
    /// running them).
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        let run = self.run.iter();
        let buckets = self.buckets.iter().flatten();
        run.chain(buckets).chain(self.late.iter()).map(|e| &e.event)
    }

    /// Events popped so far.
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn earliest_first_then_in_scheduling_order() {
        let mut q = EventQueue::default();
        q.push(5, "b");
        q.push(3, "a");
        q.push(5, "c");
        q.push(1, "z");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(1, "z"), (3, "a"), (5, "b"), (5, "c")]);
        assert_eq!(q.popped(), 4);
        assert!(q.is_empty());
    }

    #[test]
    fn iter_sees_every_event_still_waiting() {
        let mut q = EventQueue::default();
        for (at, e) in [(5, 'b'), (3, 'a'), (1 << 30, 'x'), (4, 'c')] {
            q.push(at, e);
        }
        assert_eq!(q.pop(), Some((3, 'a')));
        q.push(2, 'p'); // in the past of the last popped: the late heap
        let mut left: Vec<char> = q.iter().copied().collect();
        left.sort_unstable();
        assert_eq!(left, ['b', 'c', 'p', 'x']);
        assert_eq!(q.iter().count(), q.len());
    }

    #[test]
    fn an_event_scheduled_in_the_past_comes_out_first() {
        let mut q = EventQueue::default();
        q.push(10, 'a');
        q.push(20, 'b');
        assert_eq!(q.pop(), Some((10, 'a')));
        q.push(4, 'c');
        q.push(10, 'd');
        assert_eq!(q.peek_time(), Some(4));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(4, 'c'), (10, 'd'), (20, 'b')]);
    }

    #[test]
    fn an_event_scheduled_inside_a_sorted_run_comes_out_in_its_place() {
        let mut q = EventQueue::default();
        // 300, 400 and 350 share a bucket (256..512): a small one, sorted at once, so the
        // run reaches 400 after the first pop.
        for at in [300, 400, 350] {
            q.push(at, at);
        }
        assert_eq!(q.pop(), Some((300, 300)));
        q.push(375, 375);
        q.push(400, 401);
        q.push(320, 320);
        q.push(1000, 1000);
        assert_eq!(q.peek_time(), Some(320));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, v)| v).collect();
        assert_eq!(order, vec![320, 350, 375, 400, 401, 1000]);
    }

    #[test]
    fn a_peek_further_ahead_names_the_event_that_comes_then_or_nothing() {
        let mut q = EventQueue::default();
        for at in [300, 400, 350, 5000] {
            q.push(at, at);
        }
        assert_eq!(q.pop(), Some((300, 300)));
        // The run holds 350 and 400; the queue does not sort further to answer.
        assert_eq!(q.peek_nth(1), Some(&400));
        assert_eq!(q.peek_nth(2), None);
        q.push(320, 320);
        assert_eq!(q.peek_nth(1), None, "an event outside the run, due before it");
        assert_eq!(q.pop(), Some((320, 320)));
        q.push(390, 390);
        assert_eq!(q.peek_nth(0), Some(&350), "the event apart, 390, is not before it");
        assert_eq!(q.peek_nth(1), None, "but before 400");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, v)| v).collect();
        assert_eq!(order, vec![350, 390, 400, 5000]);
    }

    #[test]
    fn a_filled_run_names_events_a_split_bucket_held_back() {
        let mut q = EventQueue::default();
        // One bucket (1024..2048) of more than SORT_AT_ONCE events: split, it gives the run
        // only its earliest, and a look further ahead says nothing until the run is filled.
        for i in 0..100u64 {
            q.push(1024 + (i * 37) % 1000, i);
        }
        assert_eq!(q.pop(), Some((1024, 0)));
        assert_eq!(q.peek_nth(1), None);
        q.fill_run(3);
        let ahead: Vec<u64> = (0..3).filter_map(|k| q.peek_nth(k).copied()).collect();
        let mut expected: Vec<(u64, u64)> = (1..100u64).map(|i| (1024 + (i * 37) % 1000, i)).collect();
        expected.sort();
        assert_eq!(ahead, expected[..3].iter().map(|e| e.1).collect::<Vec<_>>());
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn a_large_bucket_is_split_and_still_pops_in_order() {
        let mut q = EventQueue::default();
        let times: Vec<u64> = (0..500u64).map(|i| 1 + (i * 7919) % 1000).collect();
        for (i, &at) in times.iter().enumerate() {
            q.push(at, i);
        }
        let mut expected: Vec<(u64, usize)> = times.iter().copied().zip(0..).collect();
        expected.sort();
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, expected);
    }

    /// What the queue must do: a plain sort by (time, sequence number).
    #[derive(Default)]
    struct Reference {
        items: Vec<(u64, u64, u32)>,
        seq: u64,
    }

    impl Reference {
        fn push(&mut self, at: u64, v: u32) {
            self.seq += 1;
            self.items.push((at, self.seq, v));
        }
        fn pop(&mut self) -> Option<(u64, u32)> {
            let i = (0..self.items.len()).min_by_key(|&i| (self.items[i].0, self.items[i].1))?;
            let (at, _, v) = self.items.remove(i);
            Some((at, v))
        }
    }

    /// Plays `ops` on a queue and on the reference: a pop, a peek, a look further ahead
    /// after filling the run, or a push `delta` ahead
    /// of the clock, spread over `2^(delta % spread)` (or, when `past`, sometimes behind it);
    /// both must agree throughout and drain alike.
    fn check_against_reference(ops: Vec<(u8, u64, bool)>, spread: u64) -> Result<(), TestCaseError> {
        let mut q = EventQueue::default();
        let mut r = Reference::default();
        let mut clock = 0;
        for (i, (op, delta, past)) in ops.into_iter().enumerate() {
            if op == 0 {
                let got = q.pop();
                prop_assert_eq!(got, r.pop());
                if let Some((at, _)) = got {
                    clock = at;
                }
            } else if op == 1 {
                let next = r.items.iter().map(|x| (x.0, x.1, x.2)).min();
                prop_assert_eq!(q.peek_time(), next.map(|x| x.0));
                prop_assert_eq!(q.peek().copied(), next.map(|x| x.2));
            } else if op == 2 {
                // Looking ahead, as the simulator does: what the queue names is what comes.
                let n = 1 + (delta % 4) as usize;
                q.fill_run(n);
                let mut sorted = r.items.clone();
                sorted.sort_unstable();
                for k in 0..n {
                    if let Some(&v) = q.peek_nth(k) {
                        prop_assert_eq!(Some(v), sorted.get(k).map(|x| x.2));
                    }
                }
                let apart = q.late.peek().map(|e| e.key);
                if q.run.len() >= n && apart.is_none_or(|k| k > q.run[n - 1].key) {
                    prop_assert!(q.peek_nth(n - 1).is_some(), "a filled run names the next {}", n);
                }
            } else {
                let at = if past && delta % 7 == 0 {
                    clock.saturating_sub(delta % 50)
                } else {
                    clock + delta % (1 << (delta % spread))
                };
                q.push(at, i as u32);
                r.push(at, i as u32);
            }
            prop_assert_eq!(q.len(), r.items.len());
        }
        while let Some(next) = r.pop() {
            prop_assert_eq!(q.peek_time(), Some(next.0));
            prop_assert_eq!(q.pop(), Some(next));
        }
        prop_assert_eq!(q.pop(), None);
        Ok(())
    }

    proptest! {
        /// Any mix of pushes (mostly at or after the clock, as drivers do, sometimes
        /// before it), peeks and pops comes out as a sort by time, then scheduling order.
        #[test]
        fn pops_as_a_sort_by_time_then_sequence(ops in proptest::collection::vec((0u8..6, 0u64..5000, any::<bool>()), 1..400)) {
            check_against_reference(ops, 13)?;
        }

        /// The same over times up to 2^27 ahead, as a simulator's are (a message's few
        /// milliseconds to a request deadline's seconds, in microseconds): large buckets
        /// split several times on their way down.
        #[test]
        fn pops_in_order_over_a_wide_range_of_times(ops in proptest::collection::vec((0u8..6, 0u64..(1 << 40), any::<bool>()), 1..400)) {
            check_against_reference(ops, 28)?;
        }
    }
}
