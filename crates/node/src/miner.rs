//! Mining worker threads: the nonce search of one block template, split across threads.
//!
//! The search is CPU-bound, so it runs on plain OS threads, never on the async runtime. Each
//! job has a cancel flag; the driver raises it when the tip changes under the job (the work
//! would be wasted) or at shutdown. Threads take nonces in chunks from a shared counter, so
//! no two threads hash the same nonce and a found nonce stops all of them within one chunk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{Block, BlockHash, Header, Target};
use tokio::sync::mpsc;

/// Nonces a thread takes at a time: small enough to react to cancellation within about a
/// millisecond, large enough that the shared counter is not contended.
const CHUNK: u64 = 16_384;

/// A nonce found for job `job_id`.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// Which job.
    pub job_id: u64,
    /// The nonce that meets the target.
    pub nonce: u64,
}

/// A block being mined.
#[derive(Debug)]
pub struct Job {
    /// Identifies the job in [`Found`].
    pub id: u64,
    /// The template; its nonce is filled in when found.
    pub template: Block,
    /// The tip it builds on.
    pub parent: BlockHash,
    cancel: Arc<AtomicBool>,
    /// Hashes tried so far, all threads together.
    pub hashes: Arc<AtomicU64>,
}

impl Job {
    /// Starts `threads` threads searching nonces for `template`; the winner reports to `found`.
    pub fn start(id: u64, template: Block, threads: usize, found: mpsc::UnboundedSender<Found>) -> Self {
        let cancel = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let hashes = Arc::new(AtomicU64::new(0));
        let header = template.header;
        let target = header.bits.to_target();
        for i in 0..threads.max(1) {
            let (cancel, next, hashes, found) = (cancel.clone(), next.clone(), hashes.clone(), found.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("miner-{i}"))
                .spawn(move || search(id, header, target, &cancel, &next, &hashes, &found));
            if let Err(e) = spawned {
                tracing::error!("could not start mining thread {i}: {e}");
            }
        }
        Self {
            id,
            parent: header.prev_hash,
            template,
            cancel,
            hashes,
        }
    }

    /// Stops the threads (they notice within one chunk).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn search(
    job_id: u64,
    header: Header,
    target: Target,
    cancel: &AtomicBool,
    next: &AtomicU64,
    hashes: &AtomicU64,
    found: &mpsc::UnboundedSender<Found>,
) {
    while !cancel.load(Ordering::Relaxed) {
        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
        let hit = search_nonce(&header, &target, start, CHUNK);
        hashes.fetch_add(CHUNK, Ordering::Relaxed);
        if let Some((nonce, _)) = hit {
            cancel.store(true, Ordering::Relaxed);
            let _ = found.send(Found { job_id, nonce });
            return;
        }
    }
}
