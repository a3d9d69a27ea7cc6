//! Asking the processor to start loading memory before it is read.
//!
//! Every event of a large run goes to a node whose state nobody touched for thousands of
//! events, so its first reads wait on main memory, one after another. The loop knows which
//! nodes the next few events are for while it handles the current one; fetching their state
//! meanwhile overlaps the waits (see docs/BENCHMARKS.md). A hint only: it changes nothing
//! but timing.

/// Where a prefetch puts what it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// The first-level cache: for what is read next.
    First,
    /// The second-level cache only: for what is read a little later, leaving the
    /// first-level cache, and its few fill buffers, to what comes sooner.
    Second,
}

/// Starts loading every cache line of `value` into the first-level cache.
pub fn prefetch<T>(value: &T) {
    prefetch_into(Cache::First, value);
}

/// Starts loading every cache line of `value` into the second-level cache.
pub fn prefetch_l2<T>(value: &T) {
    prefetch_into(Cache::Second, value);
}

/// Starts loading every cache line of `value` into `cache`.
pub fn prefetch_into<T>(cache: Cache, value: &T) {
    const LINE: usize = 64;
    let start = std::ptr::from_ref(value).cast::<u8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(LINE) {
        prefetch_line(cache, start.wrapping_add(offset));
    }
}

/// Starts loading the cache line holding `line` into `cache`.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline]
pub fn prefetch_line(cache: Cache, line: *const u8) {
    use std::arch::x86_64::{_MM_HINT_T0, _MM_HINT_T1, _mm_prefetch};
    let line = line.cast::<i8>();
    // SAFETY: a prefetch never faults and never changes memory, whatever the address;
    // it is `unsafe` only because it needs SSE, which every x86-64 processor has.
    unsafe {
        match cache {
            Cache::First => _mm_prefetch::<_MM_HINT_T0>(line),
            Cache::Second => _mm_prefetch::<_MM_HINT_T1>(line),
        }
    }
}

/// Does nothing where no prefetch instruction is wired up.
#[cfg(not(target_arch = "x86_64"))]
pub fn prefetch_line(_cache: Cache, _line: *const u8) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_leaves_the_value_as_it_was() {
        let big = [7u8; 1000];
        prefetch(&big);
        prefetch_l2(&big);
        prefetch(&0u64);
        prefetch_into(Cache::Second, &());
        prefetch_line(Cache::First, std::ptr::null());
        assert!(big.iter().all(|&b| b == 7));
    }
}
