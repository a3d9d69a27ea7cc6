//! Merkle trees over txids, Bitcoin-style: pairs are hashed level by level and an odd last
//! node is paired with itself.
//!
//! Two guards close the known holes of that scheme:
//! - CVE-2012-2459: duplicating the last node means `[a, b, c]` and `[a, b, c, c]` have the
//!   same root. [`compute_merkle_root`] reports a *mutated* tree whenever two sibling nodes
//!   are equal where a real pair was hashed, and block validation rejects duplicate txids,
//!   so a block can never be swapped for its mutated twin.
//! - Inner nodes hash `0xff || left || right`. No transaction encoding starts with `0xff`
//!   (it is not a valid version), so an inner node can never be passed off as a transaction.

use serde::{Deserialize, Serialize};

use crate::hash::{Hash256, MerkleRoot, Txid, sha256};

/// Prefix byte of inner-node preimages; an invalid transaction version.
pub const INNER_NODE_TAG: u8 = 0xff;

fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 65];
    buf[0] = INNER_NODE_TAG;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sha256(&buf)
}

/// The Merkle root of `txids` and whether the tree is mutated (two equal siblings that
/// were both real nodes). The root of an empty list is all zeros.
pub fn compute_merkle_root(txids: &[Txid]) -> (MerkleRoot, bool) {
    match txids {
        [] => return (MerkleRoot::ZERO, false),
        // A block with only its coinbase (every block of a simulation that charges block
        // sizes without materialising transactions): the root is that txid, no list needed.
        [only] => return (MerkleRoot(only.0), false),
        _ => {}
    }
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.0).collect();
    let mut mutated = false;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let (left, right) = match pair {
                [l, r] => {
                    mutated |= l == r;
                    (l, r)
                }
                [l] => (l, l),
                _ => unreachable!("chunks(2) yields one or two items"),
            };
            next.push(hash_pair(left, right));
        }
        level = next;
    }
    (MerkleRoot(level[0]), mutated)
}

/// Proof that a txid is the leaf at `index` of a tree with a given root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf among the block's transactions.
    pub index: u32,
    /// Sibling hashes from the leaf level up to just below the root.
    pub siblings: Vec<Hash256>,
}

impl MerkleProof {
    /// Builds the proof for the leaf at `index`, or `None` when out of range.
    pub fn build(txids: &[Txid], index: usize) -> Option<Self> {
        if index >= txids.len() {
            return None;
        }
        let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.0).collect();
        let mut pos = index;
        let mut siblings = Vec::new();
        while level.len() > 1 {
            let sib = if pos.is_multiple_of(2) {
                *level.get(pos + 1).unwrap_or(&level[pos])
            } else {
                level[pos - 1]
            };
            siblings.push(Hash256(sib));
            level = level
                .chunks(2)
                .map(|p| hash_pair(&p[0], p.get(1).unwrap_or(&p[0])))
                .collect();
            pos /= 2;
        }
        Some(Self {
            index: u32::try_from(index).ok()?,
            siblings,
        })
    }

    /// Recomputes the root from `txid` and the siblings and compares it with `root`.
    pub fn verify(&self, txid: &Txid, root: &MerkleRoot) -> bool {
        let mut h = txid.0;
        let mut pos = self.index;
        for sib in &self.siblings {
            h = if pos.is_multiple_of(2) {
                hash_pair(&h, &sib.0)
            } else {
                hash_pair(&sib.0, &h)
            };
            pos /= 2;
        }
        pos == 0 && h == root.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> Vec<Txid> {
        (0..n).map(|i| Txid(sha256(&(i as u64).to_le_bytes()))).collect()
    }

    /// An independent verifier written from the documented rule (docs/API.md), not from
    /// `MerkleProof::verify`, so that a bug shared by builder and verifier is caught.
    fn verify_independently(txid: &Txid, index: u32, siblings: &[Hash256], root: &MerkleRoot) -> bool {
        use sha2::{Digest, Sha256};
        let mut h = txid.0.to_vec();
        let mut idx = index;
        for s in siblings {
            let mut hasher = Sha256::new();
            hasher.update([0xffu8]);
            if idx & 1 == 0 {
                hasher.update(&h);
                hasher.update(s.0);
            } else {
                hasher.update(s.0);
                hasher.update(&h);
            }
            h = hasher.finalize().to_vec();
            idx >>= 1;
        }
        h == root.0
    }

    #[test]
    fn small_trees_by_hand() {
        let t = ids(3);
        assert_eq!(compute_merkle_root(&t[..1]).0.0, t[0].0);
        let ab = hash_pair(&t[0].0, &t[1].0);
        assert_eq!(compute_merkle_root(&t[..2]).0.0, ab);
        let cc = hash_pair(&t[2].0, &t[2].0);
        assert_eq!(compute_merkle_root(&t).0.0, hash_pair(&ab, &cc));
        assert_eq!(compute_merkle_root(&[]), (MerkleRoot::ZERO, false));
    }

    #[test]
    fn duplicate_last_leaf_is_detected_as_mutation() {
        let t = ids(3);
        let mut dup = t.clone();
        dup.push(t[2]);
        let (root, mutated) = compute_merkle_root(&t);
        let (root_dup, mutated_dup) = compute_merkle_root(&dup);
        assert_eq!(root, root_dup, "the CVE-2012-2459 collision exists");
        assert!(!mutated);
        assert!(mutated_dup, "and is flagged");
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_only_for_its_leaf(n in 1usize..70, pick in any::<prop::sample::Index>()) {
            let t = ids(n);
            let (root, mutated) = compute_merkle_root(&t);
            prop_assert!(!mutated);
            let i = pick.index(n);
            let proof = MerkleProof::build(&t, i).unwrap();
            prop_assert!(proof.verify(&t[i], &root));
            prop_assert!(verify_independently(&t[i], proof.index, &proof.siblings, &root));
            let other = Txid(sha256(b"not in the tree"));
            prop_assert!(!proof.verify(&other, &root));
            if n > 1 {
                let j = (i + 1) % n;
                prop_assert!(!verify_independently(&t[j], proof.index, &proof.siblings, &root));
            }
        }
    }
}
