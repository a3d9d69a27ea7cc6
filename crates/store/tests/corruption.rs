//! A damaged file gives an error naming it, never a panic.

mod common;

use std::path::Path;
use std::sync::Arc;

use chainsim_core::store::{ChainStore, StoreOp};
use chainsim_primitives::{BlockHash, Transaction, Work};
use chainsim_store::{RedbStore, StoreError};
use common::{TempDir, block, tx};

/// A store with enough data to span many pages, closed cleanly.
fn populated(dir: &Path) {
    let mut store = RedbStore::open(dir).expect("open");
    let mut prev = BlockHash::ZERO;
    for h in 0..200 {
        let b = block(h, prev, 20, h);
        prev = b.compute_hash();
        let mut ops = vec![
            StoreOp::PutBlock {
                hash: prev,
                block: Arc::new(b),
                chain_work: Work(u128::from(h)),
            },
            StoreOp::SetTip(prev),
        ];
        let t: Transaction = tx(h);
        ops.push(StoreOp::PutTx(t.compute_txid(), Box::new(t)));
        store.commit(&ops).expect("commit");
    }
    store.close().expect("close");
}

/// Opens and loads, and checks that a failure is a one-line error naming the file.
fn open_and_load(dir: &Path) -> Result<usize, StoreError> {
    let result = RedbStore::open(dir).and_then(|s| s.load()).map(|s| s.blocks.len());
    if let Err(e) = &result {
        let line = e.to_string();
        assert!(line.contains(&dir.join("chain.redb").display().to_string()), "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert!(e.is_corruption(), "{line}");
    }
    result
}

#[test]
fn truncated_file_is_reported() {
    let dir = TempDir::new("truncated");
    populated(dir.path());
    let file = dir.path().join("chain.redb");
    let len = std::fs::metadata(&file).expect("metadata").len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).expect("open file");
    f.set_len(len / 2).expect("truncate");
    drop(f);
    let e = open_and_load(dir.path()).expect_err("a half file must not load");
    eprintln!("{e}");
}

#[test]
fn overwritten_middle_is_reported() {
    let dir = TempDir::new("overwritten");
    populated(dir.path());
    let file = dir.path().join("chain.redb");
    let mut bytes = std::fs::read(&file).expect("read");
    let mid = bytes.len() / 2;
    let end = (mid + 64 * 1024).min(bytes.len());
    bytes[mid..end].fill(0xAA);
    std::fs::write(&file, &bytes).expect("write");
    let e = open_and_load(dir.path()).expect_err("an overwritten file must not load");
    eprintln!("{e}");
}

#[test]
fn garbage_file_is_reported() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.path().join("chain.redb"), vec![0xAA; 10_000]).expect("write");
    let e = open_and_load(dir.path()).expect_err("garbage must not load");
    eprintln!("{e}");
}

#[test]
fn every_small_overwrite_is_reported_or_harmless() {
    // Damage at many offsets: each must either load the full chain (the bytes were unused)
    // or fail with a corruption error, never panic.
    let dir = TempDir::new("sweep");
    populated(dir.path());
    let file = dir.path().join("chain.redb");
    let pristine = std::fs::read(&file).expect("read");
    let step = (pristine.len() / 24).max(1);
    for offset in (0..pristine.len()).step_by(step) {
        let mut bytes = pristine.clone();
        let end = (offset + 512).min(bytes.len());
        bytes[offset..end].fill(0xAA);
        std::fs::write(&file, &bytes).expect("write");
        match open_and_load(dir.path()) {
            Ok(n) => assert_eq!(n, 200, "damage at {offset} lost blocks silently"),
            Err(e) => eprintln!("offset {offset}: {e}"),
        }
    }
}
