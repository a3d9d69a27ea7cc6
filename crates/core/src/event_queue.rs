//! An event queue on a virtual clock: everything a driver of many cores (the simulator, the
//! test network) has scheduled, popped in order of time, and among equal times in the order
//! it was scheduled. The sequence number makes ties independent of memory addresses and hash
//! order, which is what makes runs repeatable. Times are plain `u64`s in the driver's unit.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The key of one scheduled item; the item itself waits in a slot, so that the heap moves
/// only these 24 bytes, however large the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    at: u64,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest first. Sequence
    // numbers are unique, so the slot never decides.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A min-queue of events keyed by (time, sequence number).
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            popped: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `at`, after everything already scheduled for that instant.
    pub fn push(&mut self, at: u64, event: E) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Key {
            at,
            seq: self.seq,
            slot,
        });
    }

    /// The earliest event, if any.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        loop {
            let key = self.heap.pop()?;
            self.free.push(key.slot);
            // A slot is filled for as long as its key is in the heap.
            if let Some(event) = self.slots[key.slot as usize].take() {
                self.popped += 1;
                return Some((key.at, event));
            }
        }
    }

    /// When the earliest event is due.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|k| k.at)
    }

    /// Events popped so far.
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
