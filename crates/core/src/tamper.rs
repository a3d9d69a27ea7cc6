//! The tamper lesson: a copy of a block with one transaction's amount changed, which every
//! honest peer must refuse by its normal validation.
//!
//! The header is kept, Merkle root included, so the header no longer commits to the
//! transactions. Only the nonce is searched again: a block whose hash a peer already knows
//! is dropped as a duplicate without a look, so the altered block gets a hash of its own
//! that still meets the target. What gives it away is then the Merkle root (`merkle-root`),
//! or for a block holding only its coinbase, the reward (`coinbase-reward`).
//!
//! Pure: the caller decides where the search runs and sends the result with
//! [`crate::Command::Offer`], which leaves the node's own chain untouched.

use chainsim_primitives::Block;
use chainsim_primitives::pow::search_nonce;

use crate::params::ChainParams;

/// What [`tamper`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampered {
    /// The altered copy, with a nonce that meets the target.
    pub block: Block,
    /// Which transaction was changed (0 is the coinbase).
    pub index: usize,
    /// Its amount before.
    pub amount_before: u64,
    /// Its amount in the altered copy.
    pub amount_after: u64,
}

/// Alters the last transaction's amount of a copy of `block` (ten times as much, or one
/// less when that would overflow) and searches up to `max_tries` nonces after the block's
/// own for one that meets the target. `None` when the block has no transaction or no
/// nonce was found in the budget.
pub fn tamper(params: &ChainParams, block: &Block, max_tries: u64) -> Option<Tampered> {
    let mut copy = block.clone();
    let index = copy.transactions.len().checked_sub(1)?;
    let tx = copy.transactions.get_mut(index)?;
    let amount_before = tx.amount;
    // Always a different amount: ten times as much, or one less at the top of the range.
    let amount_after = amount_before
        .checked_mul(10)
        .unwrap_or(amount_before.saturating_sub(1))
        .max(1);
    tx.amount = amount_after;
    let start = copy.header.nonce.wrapping_add(1);
    let (nonce, _) = search_nonce(&copy.header, &params.bits.to_target(), start, max_tries)?;
    copy.header.nonce = nonce;
    Some(Tampered {
        block: copy,
        index,
        amount_before,
        amount_after,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use chainsim_primitives::Transaction;

    use super::*;
    use crate::event::Event;
    use crate::input::Command;
    use crate::output::Reply;
    use crate::testnet::{TestNet, addr};

    fn tx(amount: u64) -> Transaction {
        Transaction::new("Alice", "Bob", amount, crate::testnet::START_MS)
    }

    /// Three nodes share a block with a transaction; node 0 offers a tampered copy: each
    /// other node refuses it by its Merkle root and names node 0; no chain takes it.
    #[test]
    fn a_tampered_block_is_refused_by_every_peer_with_its_rule() {
        let mut net = TestNet::new(3, 7);
        net.connect(0, 1);
        net.connect(0, 2);
        net.run_for(5_000);
        net.submit_tx(0, tx(10)).unwrap();
        net.run_for(2_000);
        let hash = net.mine(0).unwrap();
        net.run_for(5_000);
        assert!(net.same_tip(&[0, 1, 2]));
        let block = net.node(0).tree().block(&hash).unwrap();
        let t = tamper(net.node(0).params(), &block, u64::MAX).unwrap();
        assert_eq!((t.index, t.amount_before, t.amount_after), (1, 10, 100));
        let bad = t.block.compute_hash();
        assert_ne!(bad, hash);

        let Reply::Peers(mut sent_to) = net.command(0, Command::Offer(t.block)) else {
            panic!("Offer answers with the peers it was sent to");
        };
        sent_to.sort();
        assert_eq!(sent_to, vec![addr(1), addr(2)]);
        net.run_for(2_000);

        for i in [1, 2] {
            let rejected: Vec<_> = net.nodes[i]
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::BlockRejected {
                        hash, rule, from_peer, ..
                    } => Some((*hash, *rule, from_peer.clone())),
                    _ => None,
                })
                .collect();
            assert_eq!(rejected, vec![(bad, "merkle-root", Some(addr(0)))], "node {i}");
            assert!(!net.node(i).tree().contains(&bad));
        }
        assert_eq!(net.tip(0), hash, "the tamperer's own chain is untouched");
        assert!(!net.node(0).tree().contains(&bad));
        assert!(net.same_tip(&[0, 1, 2]));
    }

    #[test]
    fn a_coinbase_only_block_breaks_the_reward_rule() {
        let mut net = TestNet::new(2, 3);
        net.connect(0, 1);
        net.run_for(5_000);
        let hash = net.mine(0).unwrap();
        net.run_for(2_000);
        let block = net.node(0).tree().block(&hash).unwrap();
        let t = tamper(net.node(0).params(), &block, u64::MAX).unwrap();
        assert_eq!(t.index, 0);
        net.command(0, Command::Offer(t.block));
        net.run_for(2_000);
        assert!(net.nodes[1].events.iter().any(|e| matches!(
            e,
            Event::BlockRejected {
                rule: "coinbase-reward",
                ..
            }
        )));
    }
}
