//! The write-ahead log's record format: encoding a batch of ops, and scanning a log back.
//!
//! A record is `payload length u32 | checksum [u8; 8] | payload`, the checksum being the first
//! 8 bytes of the SHA-256 of the payload. The payload is the record's sequence number (u64)
//! followed by its ops, each a tag byte then its fields (all integers little-endian):
//! - `PutBlock`: hash, chain work u128, block length u32, canonical block bytes
//! - `DeleteBlock`, `SetTip`, `DeleteTx`: the hash
//! - `PutTx`: txid, transaction length u32, canonical transaction bytes
//! - `PutMeta`: key length u32, UTF-8 key, value length u32, value

use std::sync::Arc;

use chainsim_core::store::StoreOp;
use chainsim_primitives::block::DecodeLimits;
use chainsim_primitives::{Block, BlockHash, Transaction, Txid, Work, sha256};

/// Bytes before a record's payload: its length and checksum.
pub(crate) const HEADER_LEN: usize = 4 + 8;

const TAG_PUT_BLOCK: u8 = 1;
const TAG_DELETE_BLOCK: u8 = 2;
const TAG_SET_TIP: u8 = 3;
const TAG_PUT_TX: u8 = 4;
const TAG_DELETE_TX: u8 = 5;
const TAG_PUT_META: u8 = 6;

/// One valid record read back from the log.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) ops: Vec<StoreOp>,
}

pub(crate) fn checksum(payload: &[u8]) -> [u8; 8] {
    let digest = sha256(payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The whole record for `ops`, ready for a single write; None if the payload would not fit
/// its u32 length (a batch of over 4 GiB).
pub(crate) fn encode_record(seq: u64, ops: &[StoreOp]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + ops.len() * 96);
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(&seq.to_le_bytes());
    for op in ops {
        match op {
            StoreOp::PutBlock {
                hash,
                block,
                chain_work,
            } => {
                out.push(TAG_PUT_BLOCK);
                out.extend_from_slice(&hash.0);
                out.extend_from_slice(&chain_work.0.to_le_bytes());
                put_bytes(&mut out, &block.encode())?;
            }
            StoreOp::DeleteBlock(hash) => {
                out.push(TAG_DELETE_BLOCK);
                out.extend_from_slice(&hash.0);
            }
            StoreOp::SetTip(hash) => {
                out.push(TAG_SET_TIP);
                out.extend_from_slice(&hash.0);
            }
            StoreOp::PutTx(txid, tx) => {
                out.push(TAG_PUT_TX);
                out.extend_from_slice(&txid.0);
                put_bytes(&mut out, &tx.encode())?;
            }
            StoreOp::DeleteTx(txid) => {
                out.push(TAG_DELETE_TX);
                out.extend_from_slice(&txid.0);
            }
            StoreOp::PutMeta(key, value) => {
                out.push(TAG_PUT_META);
                put_bytes(&mut out, key.as_bytes())?;
                put_bytes(&mut out, value)?;
            }
        }
    }
    let len = u32::try_from(out.len() - HEADER_LEN).ok()?;
    let sum = checksum(&out[HEADER_LEN..]);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..HEADER_LEN].copy_from_slice(&sum);
    Some(out)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.extend_from_slice(&u32::try_from(bytes.len()).ok()?.to_le_bytes());
    out.extend_from_slice(bytes);
    Some(())
}

/// Reads the intact records at the start of `log`, stopping at the first one that is cut off
/// or fails its checksum: each commit returns only after its record is synced, so such a record
/// was being written during a crash and never acknowledged, and nothing after it can have been
/// acknowledged either. A record that passes its checksum but does not decode was written
/// wrong, not torn: that is an error (the detail of a corruption).
pub(crate) fn scan(log: &[u8]) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = log.get(pos..pos + HEADER_LEN) {
        let (len, sum) = header.split_at(4);
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(payload) = log.get(pos + HEADER_LEN..pos + HEADER_LEN + len) else {
            break;
        };
        if checksum(payload) != sum {
            // A crash tears only the last record. An intact record after this one means the
            // damage is in the middle: acknowledged batches follow, so refuse, never drop them.
            if let Some(at) = find_intact_record(log, pos + 1, records.last().map(|r: &Record| r.seq)) {
                return Err(format!(
                    "record at byte {pos} fails its checksum but an intact record follows at byte {at}"
                ));
            }
            break;
        }
        let record =
            decode_payload(payload).map_err(|e| format!("record at byte {pos} passes its checksum but {e}"))?;
        records.push(record);
        pos += HEADER_LEN + len;
    }
    Ok(records)
}

/// The offset of the first intact record (plausible header, matching checksum) at or after
/// `from`. The sequence number leading each payload filters out almost every offset before
/// any hashing, so the search stays cheap even over a large log.
fn find_intact_record(log: &[u8], from: usize, last_good_seq: Option<u64>) -> Option<usize> {
    let min_seq = last_good_seq.map_or(0, |s| s + 1);
    (from..log.len().saturating_sub(HEADER_LEN + 8)).find(|&at| {
        let len = u32::from_le_bytes([log[at], log[at + 1], log[at + 2], log[at + 3]]) as usize;
        let start = at + HEADER_LEN;
        let Some(payload) = log.get(start..start + len).filter(|p| p.len() >= 8) else {
            return false;
        };
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&payload[..8]);
        let seq = u64::from_le_bytes(seq);
        (min_seq..min_seq.saturating_add(1_000_000)).contains(&seq)
            && checksum(payload) == log[at + 4..start]
            && decode_payload(payload).is_ok()
    })
}

/// A cursor over a payload whose errors say what was being read.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or_else(|| format!("ends in the middle of {what}"))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn sized(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = u32::from_le_bytes(self.array(what)?) as usize;
        self.take(len, what)
    }
}

fn decode_payload(payload: &[u8]) -> Result<Record, String> {
    let mut c = Cursor(payload);
    let seq = u64::from_le_bytes(c.array("the sequence number")?);
    let mut ops = Vec::new();
    while let Some((&tag, rest)) = c.0.split_first() {
        c.0 = rest;
        let op = match tag {
            TAG_PUT_BLOCK => {
                let hash = BlockHash(c.array("a block hash")?);
                let chain_work = Work(u128::from_le_bytes(c.array("a chain work")?));
                // Our own bytes, so the count of transactions is not bounded here; the core
                // re-validates every block after loading.
                let limits = DecodeLimits { max_txs: usize::MAX };
                let block = Block::decode(c.sized("a block")?, limits)
                    .map_err(|e| format!("block {} does not decode: {e}", crate::short(&hash)))?;
                if block.compute_hash() != hash {
                    return Err(format!("block {} is logged under another hash", crate::short(&hash)));
                }
                StoreOp::PutBlock {
                    hash,
                    block: Arc::new(block),
                    chain_work,
                }
            }
            TAG_DELETE_BLOCK => StoreOp::DeleteBlock(BlockHash(c.array("a block hash")?)),
            TAG_SET_TIP => StoreOp::SetTip(BlockHash(c.array("the tip")?)),
            TAG_PUT_TX => {
                let txid = Txid(c.array("a txid")?);
                let tx = Transaction::decode(c.sized("a transaction")?)
                    .map_err(|e| format!("transaction {} does not decode: {e}", crate::short(&txid)))?;
                if tx.compute_txid() != txid {
                    return Err(format!(
                        "transaction {} is logged under another txid",
                        crate::short(&txid)
                    ));
                }
                StoreOp::PutTx(txid, Box::new(tx))
            }
            TAG_DELETE_TX => StoreOp::DeleteTx(Txid(c.array("a txid")?)),
            TAG_PUT_META => {
                let key = std::str::from_utf8(c.sized("a meta key")?)
                    .map_err(|_| "a meta key is not UTF-8".to_owned())?
                    .to_owned();
                StoreOp::PutMeta(key, c.sized("a meta value")?.to_vec())
            }
            other => return Err(format!("has an unknown op tag {other}")),
        };
        ops.push(op);
    }
    Ok(Record { seq, ops })
}
