//! The hashes of the last blocks a tree took, kept in the tree itself.
//!
//! Most block announcements a node hears are of the block it took last (every peer that has
//! it tells of it), and most blocks announced build on it. Answering "do we have it?" for
//! those from a few hashes stored in the tree, beside the node's other state, spares a read
//! of the tree's hash table, which on a simulator's ten thousand nodes is a wait on main
//! memory for almost every announcement. Their children are counted too: a block whose
//! parent is a recent block without children cannot be in the tree, which answers the
//! other common announcement, that of a block still on its way.

use chainsim_primitives::BlockHash;

/// How many of the last blocks taken are kept.
const RECENT: usize = 4;

/// The hashes of the last [`RECENT`] blocks inserted; each is in the tree while it is here
/// (the tree forgets a hash here when it drops the block).
#[derive(Debug, Clone, Default)]
pub(super) struct Recent {
    /// `BlockHash::ZERO` marks an empty slot.
    hashes: [BlockHash; RECENT],
    /// How many children each has in the tree, or more (never fewer: a count the tree
    /// lowers without saying so only makes [`Recent::childless`] answer no).
    children: [u32; RECENT],
    /// The slot the next hash goes to: the oldest.
    next: usize,
}

impl Recent {
    /// Whether `hash` is one of the last blocks taken (false says nothing either way).
    pub(super) fn contains(&self, hash: &BlockHash) -> bool {
        self.slot(hash).is_some()
    }

    /// Notes a block just taken (it has no children yet), in place of the oldest.
    pub(super) fn push(&mut self, hash: BlockHash) {
        self.hashes[self.next] = hash;
        self.children[self.next] = 0;
        self.next = (self.next + 1) % RECENT;
    }

    /// Whether `parent` is one of the last blocks taken and has no child in the tree (false
    /// says nothing either way).
    pub(super) fn childless(&self, parent: &BlockHash) -> bool {
        self.slot(parent).is_some_and(|i| self.children[i] == 0)
    }

    /// Counts a child of `parent` taken.
    pub(super) fn child_added(&mut self, parent: &BlockHash) {
        if let Some(i) = self.slot(parent) {
            self.children[i] += 1;
        }
    }

    /// Counts a child of `parent` dropped.
    pub(super) fn child_removed(&mut self, parent: &BlockHash) {
        if let Some(i) = self.slot(parent) {
            self.children[i] = self.children[i].saturating_sub(1);
        }
    }

    /// Forgets a block the tree dropped.
    pub(super) fn forget(&mut self, hash: &BlockHash) {
        if let Some(i) = self.slot(hash) {
            self.hashes[i] = BlockHash::ZERO;
        }
    }

    /// Where `hash` is kept (each block is pushed once, so at most one slot holds it).
    fn slot(&self, hash: &BlockHash) -> Option<usize> {
        (*hash != BlockHash::ZERO).then(|| self.hashes.iter().position(|h| h == hash))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> BlockHash {
        BlockHash([n; 32])
    }

    #[test]
    fn keeps_the_last_few_and_forgets_what_it_is_told_to() {
        let mut recent = Recent::default();
        assert!(!recent.contains(&BlockHash::ZERO), "an empty slot is not a block");
        for n in 1..=6 {
            recent.push(h(n));
        }
        assert!(
            !recent.contains(&h(1)) && !recent.contains(&h(2)),
            "the oldest made room"
        );
        assert!((3..=6).all(|n| recent.contains(&h(n))));
        recent.forget(&h(5));
        assert!(!recent.contains(&h(5)));
        assert!(recent.contains(&h(6)));
    }

    #[test]
    fn counts_children_of_recent_blocks_only() {
        let mut recent = Recent::default();
        recent.push(h(1));
        assert!(recent.childless(&h(1)));
        assert!(!recent.childless(&h(2)), "not a recent block: unknown");
        recent.child_added(&h(1));
        recent.child_added(&h(2));
        assert!(!recent.childless(&h(1)));
        recent.child_removed(&h(1));
        assert!(recent.childless(&h(1)));
        recent.child_removed(&h(1));
        assert!(recent.childless(&h(1)), "never below zero");
    }
}
