//! The block header: everything the proof of work commits to.

use crate::encode::{DecodeError, Reader, Writer};
use crate::hash::{BlockHash, MerkleRoot, sha256};
use crate::pow::CompactTarget;

/// The only header version this code writes and accepts.
pub const HEADER_VERSION: u32 = 1;

/// A block header. Its hash is the SHA-256 of its 96-byte encoding, and the proof of work
/// is on that hash, so it covers the transactions through the Merkle root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Encoding version, [`HEADER_VERSION`].
    pub version: u32,
    /// Distance from genesis (genesis is 0).
    pub height: u64,
    /// Hash of the parent block.
    pub prev_hash: BlockHash,
    /// Root of the Merkle tree of the block's txids.
    pub merkle_root: MerkleRoot,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The target the hash must meet, in compact form.
    pub bits: CompactTarget,
    /// Varied by miners to meet the target. Last in the encoding so that the first
    /// 64-byte SHA-256 block is the same for every nonce (see `pow::search_nonce`).
    pub nonce: u64,
}

impl Header {
    /// Length of the encoding: 4 + 8 + 32 + 32 + 8 + 4 + 8.
    pub const SIZE: usize = 96;

    /// The canonical encoding, fields in declaration order, integers little-endian. Written
    /// in place: every header a node hears of is hashed, and a buffer on the heap cost an
    /// allocation each time.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let fields: [&[u8]; 7] = [
            &self.version.to_le_bytes(),
            &self.height.to_le_bytes(),
            &self.prev_hash.0,
            &self.merkle_root.0,
            &self.timestamp.to_le_bytes(),
            &self.bits.0.to_le_bytes(),
            &self.nonce.to_le_bytes(),
        ];
        let mut out = [0u8; Self::SIZE];
        let mut at = 0;
        for field in fields {
            out[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        out
    }

    /// Appends the canonical encoding.
    pub fn encode_to(&self, w: &mut Writer) {
        w.bytes(&self.encode());
    }

    /// Reads a header.
    pub fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.u32()?,
            height: r.u64()?,
            prev_hash: BlockHash(r.hash()?),
            merkle_root: MerkleRoot(r.hash()?),
            timestamp: r.u64()?,
            bits: CompactTarget(r.u32()?),
            nonce: r.u64()?,
        })
    }

    /// SHA-256 of the encoding.
    pub fn compute_hash(&self) -> BlockHash {
        BlockHash(sha256(&self.encode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_round_trips(height: u64, prev: [u8; 32], root: [u8; 32], ts: u64, bits: u32, nonce: u64) {
            let h = Header { version: HEADER_VERSION, height, prev_hash: BlockHash(prev), merkle_root: MerkleRoot(root), timestamp: ts, bits: CompactTarget(bits), nonce };
            let bytes = h.encode();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(Header::decode_from(&mut r), Ok(h));
            prop_assert_eq!(r.remaining(), 0);
            // The nonce is the last 8 bytes: the midstate trick depends on it.
            prop_assert_eq!(&bytes[88..], &nonce.to_le_bytes()[..]);
        }
    }
}
