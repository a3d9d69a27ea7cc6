//! Proof of work: the compact target carried in headers, the full 256-bit target, the work
//! a target represents, and the nonce search.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::hash::BlockHash;
use crate::header::Header;

/// A 256-bit target in Bitcoin's compact "bits" form: one exponent byte (the target's
/// length in bytes) and a 3-byte mantissa.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct CompactTarget(pub u32);

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget({:08x})", self.0)
    }
}

impl fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A full 256-bit target, big-endian; a block hash, read as a big-endian number, must not
/// exceed it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Target(pub [u8; 32]);

/// Expected number of hashes to meet a target; chains are compared by the sum of it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Work(pub u128);

impl Work {
    /// Adds without overflowing (a sum at `u128::MAX` is beyond any real chain).
    pub fn saturating_add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }
}

impl CompactTarget {
    /// Expands to the full target. A negative or overflowing compact value (impossible for
    /// the targets this code produces) expands to zero, which no hash meets.
    pub fn to_target(self) -> Target {
        let exp = (self.0 >> 24) as usize;
        let mantissa = self.0 & 0x007f_ffff;
        let mut out = [0u8; 32];
        if self.0 & 0x0080_0000 != 0 || exp > 32 || mantissa == 0 {
            return Target(out);
        }
        let m = mantissa.to_be_bytes(); // m[0] == 0
        for (i, byte) in m[1..].iter().enumerate() {
            // Byte i of the mantissa lands at position 32 - exp + i, if inside the number.
            let pos = 32 + i;
            if pos >= exp {
                let idx = pos - exp;
                if idx < 32 {
                    out[idx] = *byte;
                }
            }
        }
        Target(out)
    }

    /// The expected number of hashes to meet this target, `2^256 / (target + 1)`, computed
    /// from the compact form (exact for the mantissa, deterministic on every platform).
    pub fn work(self) -> Work {
        let exp = self.0 >> 24;
        let mantissa = u128::from(self.0 & 0x007f_ffff);
        if self.0 & 0x0080_0000 != 0 || mantissa == 0 || exp > 32 {
            return Work(0);
        }
        // target = mantissa * 2^(8 * (exp - 3)), so work = 2^(256 - 8 * (exp - 3)) / mantissa.
        let shift = 256i32 - 8 * (exp as i32 - 3);
        if shift <= 0 {
            return Work(1);
        }
        if shift < 127 {
            return Work(((1u128 << shift) / mantissa).max(1));
        }
        let base = (1u128 << 126) / mantissa;
        let extra = (shift - 126) as u32;
        Work(
            base.checked_shl(extra)
                .filter(|v| v >> extra == base)
                .unwrap_or(u128::MAX),
        )
    }

    /// The compact form of a target with `zero_bits` leading zero bits followed by ones:
    /// expected work is about `2^zero_bits` hashes. Handy for test and demo networks.
    pub fn from_leading_zero_bits(zero_bits: u32) -> CompactTarget {
        let zero_bits = zero_bits.clamp(1, 230);
        let byte_len = 32 - zero_bits / 8; // bytes from the first non-zero one
        let rem = zero_bits % 8;
        // A mantissa of 0x7fffff style ones, shifted so the first byte holds 8 - rem ones;
        // keep bit 23 clear (it is the sign bit of the compact form).
        let first = 0xffu32 >> rem;
        let (exp, mantissa) = if first & 0x80 != 0 {
            // A leading 0xff would set the sign bit: shift in a zero byte instead.
            (byte_len + 1, 0x00ffff)
        } else {
            (byte_len, (first << 16) | 0xffff)
        };
        CompactTarget((exp << 24) | (mantissa & 0x007f_ffff))
    }
}

impl Target {
    /// Whether `hash` meets this target.
    pub fn is_met_by(&self, hash: &BlockHash) -> bool {
        hash.0 <= self.0
    }

    /// Lower-case hex of the 32 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Searches nonces `start..start + count` of `header` for a hash meeting `target`.
///
/// The first 64 bytes of the encoded header do not depend on the nonce, so their SHA-256
/// state is computed once and each nonce costs one compression of the last 32 bytes.
pub fn search_nonce(header: &Header, target: &Target, start: u64, count: u64) -> Option<(u64, BlockHash)> {
    let bytes = header.encode();
    let mut midstate = Sha256::new();
    midstate.update(&bytes[..64]);
    let mut tail = [0u8; Header::SIZE - 64];
    tail.copy_from_slice(&bytes[64..]);
    let nonce_at = tail.len() - 8;
    for nonce in start..start.saturating_add(count) {
        tail[nonce_at..].copy_from_slice(&nonce.to_le_bytes());
        let mut h = midstate.clone();
        h.update(tail);
        let hash = BlockHash(h.finalize().into());
        if target.is_met_by(&hash) {
            return Some((nonce, hash));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_expands_like_bitcoin() {
        // Bitcoin's genesis bits 0x1d00ffff: 0x00000000ffff0000...
        let t = CompactTarget(0x1d00_ffff).to_target();
        assert_eq!(&t.0[..6], &[0, 0, 0, 0, 0xff, 0xff]);
        assert!(t.0[6..].iter().all(|b| *b == 0));
        // Work of 0x1d00ffff is 2^256 / 0xffff * 2^-208 = 2^48 / 0xffff.
        assert_eq!(CompactTarget(0x1d00_ffff).work(), Work((1u128 << 48) / 0xffff));
    }

    #[test]
    fn leading_zero_bits_give_expected_work() {
        for bits in [8u32, 12, 16, 18, 20, 24, 31, 40] {
            let c = CompactTarget::from_leading_zero_bits(bits);
            let t = c.to_target();
            let leading: u32 =
                t.0.iter()
                    .scan(true, |all_zero, b| {
                        if !*all_zero {
                            return Some(0);
                        }
                        if *b == 0 {
                            Some(8)
                        } else {
                            *all_zero = false;
                            Some(b.leading_zeros())
                        }
                    })
                    .sum();
            assert_eq!(leading, bits, "bits {bits} compact {c}");
            let w = c.work().0;
            let expected = 1u128 << bits;
            assert!(
                w >= expected && w <= expected + expected / 1000,
                "bits {bits}: work {w}"
            );
        }
    }

    #[test]
    fn malformed_compact_is_unmeetable() {
        assert_eq!(CompactTarget(0x2180_0000).to_target(), Target([0; 32]));
        assert_eq!(CompactTarget(0x1d00_0000).work(), Work(0));
    }
}
