//! In-process benchmarks: mining, validation, mempool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsim_core::chain::{ParentInfo, validate_block};
use chainsim_core::{ChainParams, Node, NodeConfig};
use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{Block, Header, Target, Transaction, compute_merkle_root};

/// Nonces hashed by `threads` threads for `secs`, with a target no hash meets.
fn hash_rate(threads: usize, secs: Duration) -> f64 {
    let header = ChainParams::default_network().genesis().header;
    let never = Target([0; 32]);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut nonce = (t as u64) << 48;
                while start.elapsed() < secs {
                    let _ = search_nonce(&header, &never, nonce, 1 << 18);
                    nonce += 1 << 18;
                    n += 1 << 18;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// SHA-256 of 96-byte messages per second according to `openssl speed`, if available.
fn openssl_rate() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-evp", "sha256", "-bytes", "96", "-seconds", "3"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with("sha256"))?;
    let kbytes: f64 = line.split_whitespace().nth(1)?.trim_end_matches('k').parse().ok()?;
    Some(kbytes * 1000.0 / 96.0)
}

pub fn mining(secs: Duration) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("== mining: nonce search over the 96-byte header (SHA-256 midstate, one compression per nonce)");
    let one = hash_rate(1, secs);
    let all = hash_rate(cores, secs);
    println!("miner, 1 thread:        {:>8.2} M hashes/s", one / 1e6);
    println!("miner, {cores} threads:       {:>8.2} M hashes/s", all / 1e6);
    match openssl_rate() {
        Some(ssl) => {
            println!(
                "openssl speed -evp sha256 -bytes 96 (1 core): {:>8.2} M hashes/s",
                ssl / 1e6
            );
            println!("miner per core / openssl: {:.0}%  (target >= 70%)", one / ssl * 100.0);
        }
        None => println!("openssl not found: no comparison"),
    }
    Ok(())
}

/// A chain of `count` blocks of `txs` transactions each (coinbase included), mined on the
/// easy test network (validation costs the same whatever the target).
pub fn build_chain(params: &ChainParams, count: usize, txs: usize, seed: u64) -> Vec<Arc<Block>> {
    let mut out = Vec::with_capacity(count);
    let mut parent = params.genesis().header;
    let mut parent_hash = params.genesis_hash();
    let target = params.bits.to_target();
    for i in 0..count {
        let timestamp = parent.timestamp + 1_000;
        let mut transactions = vec![Transaction::coinbase("bench-miner", params.reward, timestamp)];
        for j in 1..txs {
            transactions.push(Transaction::new(
                format!("sender-{seed}-{i}-{j}"),
                "recipient",
                (j as u64) + 1,
                timestamp - 1,
            ));
        }
        let txids: Vec<_> = transactions.iter().map(Transaction::compute_txid).collect();
        let mut header = Header {
            version: 1,
            height: parent.height + 1,
            prev_hash: parent_hash,
            merkle_root: compute_merkle_root(&txids).0,
            timestamp,
            bits: params.bits,
            nonce: 0,
        };
        if let Some((nonce, hash)) = search_nonce(&header, &target, 0, u64::MAX) {
            header.nonce = nonce;
            parent_hash = hash;
        }
        parent = header;
        out.push(Arc::new(Block { header, transactions }));
    }
    out
}

pub fn validation(secs: Duration) -> anyhow::Result<()> {
    println!("== validation: validate_block (size, header, proof of work, txids, duplicates, Merkle root), one core");
    let params = ChainParams::testnet();
    for txs in [100usize, 1_000] {
        let count = if txs == 100 { 200 } else { 40 };
        let blocks = build_chain(&params, count, txs, 1);
        let mut parents = Vec::with_capacity(count);
        let mut prev = ParentInfo {
            hash: params.genesis_hash(),
            height: 0,
            timestamp: params.genesis().header.timestamp,
        };
        for b in &blocks {
            parents.push(prev);
            prev = ParentInfo {
                hash: b.compute_hash(),
                height: b.header.height,
                timestamp: b.header.timestamp,
            };
        }
        let now = Some(u64::MAX / 2);
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < secs {
            for (b, p) in blocks.iter().zip(&parents) {
                validate_block(&params, b.clone(), p, now).map_err(|e| anyhow::anyhow!("bench block invalid: {e}"))?;
                n += 1;
            }
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        // Where the time goes: the two hashing passes alone.
        let t = Instant::now();
        let mut k = 0u64;
        while t.elapsed() < secs / 4 {
            for b in &blocks {
                std::hint::black_box(b.compute_txids());
                k += 1;
            }
        }
        let txid_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
        let txids: Vec<Vec<_>> = blocks.iter().map(|b| b.compute_txids()).collect();
        let t = Instant::now();
        let mut k = 0u64;
        while t.elapsed() < secs / 4 {
            for ids in &txids {
                std::hint::black_box(compute_merkle_root(ids));
                k += 1;
            }
        }
        let merkle_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;
        println!(
            "  per block: {:.1} us in all, of which txids {txid_us:.1} us, Merkle root {merkle_us:.1} us",
            1e6 / rate
        );
        println!(
            "blocks of {txs:>5} transactions: {:>9.0} blocks/s  ({:.2} M transactions/s){}",
            rate,
            rate * txs as f64 / 1e6,
            if txs == 100 {
                "  (target >= 20,000 blocks/s)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub fn mempool() -> anyhow::Result<()> {
    println!("== mempool: inserts of distinct transactions");
    let n = 500_000usize;
    let txs: Vec<Transaction> = (0..n)
        .map(|i| Transaction::new(format!("s{i}"), "Bob", 10, 1_700_000_000_000 + i as u64))
        .collect();
    let ids: Vec<_> = txs.iter().map(Transaction::compute_txid).collect();
    let mut pool = chainsim_core::Mempool::new(n);
    let start = Instant::now();
    for (id, tx) in ids.iter().zip(txs.iter()) {
        pool.insert(*id, tx.clone(), chainsim_core::mempool::Source::Local)?;
    }
    let bare = n as f64 / start.elapsed().as_secs_f64();
    println!("Mempool::insert (txid precomputed):           {:>10.0} inserts/s", bare);

    let mut config = NodeConfig::new("127.0.0.1:1".parse()?, "bench");
    config.mempool_capacity = n;
    let mut node = Node::new(Arc::new(ChainParams::default_network()), config);
    let start = Instant::now();
    for tx in txs {
        let id = chainsim_core::CommandId(0);
        node.handle_input(
            chainsim_core::Time::ZERO,
            chainsim_core::Input::Command {
                id,
                command: chainsim_core::Command::SubmitTx(tx),
            },
        );
        while node.poll_output().is_some() {}
    }
    let full = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "Node::handle_input(SubmitTx) (checks, txid, store op, event, reply): {:>10.0} inserts/s",
        full
    );
    Ok(())
}
