//! Asking the processor to start loading memory before it is read.
//!
//! Every event of a large run goes to a node whose state nobody touched for thousands of
//! events, so its first reads wait on main memory, one after another. The loop knows which
//! node the next event is for while it handles the current one; fetching that node's state
//! meanwhile overlaps the two waits (about a tenth less time at 10,000 nodes; see
//! docs/BENCHMARKS.md). A hint only: it changes nothing but timing.

/// Starts loading every cache line of `value` into the processor's caches.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub fn prefetch<T>(value: &T) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    const LINE: usize = 64;
    let start = std::ptr::from_ref(value).cast::<i8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(LINE) {
        // SAFETY: a prefetch never faults and never changes memory, whatever the address;
        // it is `unsafe` only because it needs SSE, which every x86-64 processor has.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
    }
}

/// [`prefetch`] into the second-level cache only, for state wanted a little later: it
/// leaves the first-level cache, and its few fill buffers, to what is wanted next.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub fn prefetch_l2<T>(value: &T) {
    use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
    const LINE: usize = 64;
    let start = std::ptr::from_ref(value).cast::<i8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(LINE) {
        // SAFETY: as in `prefetch`: a prefetch never faults and never changes memory.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(start.wrapping_add(offset)) };
    }
}

/// Does nothing where no prefetch instruction is wired up.
#[cfg(not(target_arch = "x86_64"))]
pub fn prefetch_l2<T>(_value: &T) {}

/// Does nothing where no prefetch instruction is wired up.
#[cfg(not(target_arch = "x86_64"))]
pub fn prefetch<T>(_value: &T) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_leaves_the_value_as_it_was() {
        let big = [7u8; 1000];
        prefetch(&big);
        prefetch(&0u64);
        prefetch(&());
        assert!(big.iter().all(|&b| b == 7));
    }
}
