//! A block: a header and its transactions, coinbase first.
//!
//! This type is *unchecked*: anything can be in it. The core's validation turns it into a
//! checked block; only those enter the chain.

use crate::encode::{DecodeError, Reader, Writer};
use crate::hash::{BlockHash, MerkleRoot, Txid};
use crate::header::Header;
use crate::merkle::compute_merkle_root;
use crate::transaction::{MAX_TX_SIZE, Transaction};

/// A header and its transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The header, which the proof of work covers.
    pub header: Header,
    /// The transactions; the first must be the coinbase.
    pub transactions: Vec<Transaction>,
}

/// Bounds applied while decoding, so that a hostile peer cannot make us allocate much.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Most transactions a block may hold.
    pub max_txs: usize,
}

impl Block {
    /// The block's hash (its header's).
    pub fn compute_hash(&self) -> BlockHash {
        self.header.compute_hash()
    }

    /// The txids of the transactions, in order.
    pub fn compute_txids(&self) -> Vec<Txid> {
        self.transactions.iter().map(Transaction::compute_txid).collect()
    }

    /// The Merkle root the transactions commit to, and whether the tree is mutated.
    pub fn compute_merkle_root(&self) -> (MerkleRoot, bool) {
        compute_merkle_root(&self.compute_txids())
    }

    /// Length of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        Header::SIZE + 4 + self.transactions.iter().map(Transaction::encoded_len).sum::<usize>()
    }

    /// The canonical encoding: header, u32 transaction count, transactions.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.header.encode_to(&mut w);
        w.u32(u32::try_from(self.transactions.len()).unwrap_or(u32::MAX));
        for tx in &self.transactions {
            tx.encode_to(&mut w);
        }
        w.into_inner()
    }

    /// Decodes exactly one block from `bytes`.
    pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let header = Header::decode_from(&mut r)?;
        let count = r.u32()? as usize;
        if count > limits.max_txs {
            return Err(DecodeError::TooLong {
                what: "transaction count",
                len: count,
                max: limits.max_txs,
            });
        }
        // Never trust the count for allocation beyond what the bytes could hold.
        let plausible = r.remaining() / (MAX_TX_SIZE.min(23));
        let mut transactions = Vec::with_capacity(count.min(plausible));
        for _ in 0..count {
            transactions.push(Transaction::decode_from(&mut r)?);
        }
        r.finish()?;
        Ok(Self { header, transactions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pow::CompactTarget;
    use proptest::prelude::*;

    const LIMITS: DecodeLimits = DecodeLimits { max_txs: 10_000 };

    fn block(n: usize) -> Block {
        let transactions: Vec<_> = (0..n)
            .map(|i| Transaction::new(format!("s{i}"), "r", i as u64 + 1, 7))
            .collect();
        let mut b = Block {
            header: Header {
                version: 1,
                height: 3,
                prev_hash: BlockHash([1; 32]),
                merkle_root: MerkleRoot::ZERO,
                timestamp: 9,
                bits: CompactTarget(0x1f00_ffff),
                nonce: 5,
            },
            transactions,
        };
        b.header.merkle_root = b.compute_merkle_root().0;
        b
    }

    #[test]
    fn block_round_trips_and_limits() {
        let b = block(5);
        let bytes = b.encode();
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(Block::decode(&bytes, LIMITS), Ok(b));
        assert!(matches!(
            Block::decode(&bytes, DecodeLimits { max_txs: 4 }),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn huge_count_with_few_bytes_fails_without_allocating() {
        let mut bytes = block(0).encode();
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let r = Block::decode(&bytes, DecodeLimits { max_txs: usize::MAX });
        assert_eq!(r, Err(DecodeError::UnexpectedEnd));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Block::decode(&bytes, LIMITS);
        }

        #[test]
        fn round_trip_any_size(n in 0usize..40) {
            let b = block(n);
            prop_assert_eq!(Block::decode(&b.encode(), LIMITS), Ok(b));
        }
    }
}
