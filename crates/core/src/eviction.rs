//! Which inbound link gives way when every inbound slot is taken and someone new connects.
//!
//! In the manner of Bitcoin Core's eviction: links that have been useful are protected —
//! those that most recently gave us a new block, those that most recently gave us a new
//! transaction, and the longest-standing half of the others — and of the rest the
//! worst-scored, then the newest, is closed. Filling every slot therefore cannot keep an honest newcomer out, and
//! a peer that relays what it is sent cannot be pushed out by strangers that do not.
//! (Core also protects peers by network group; on a loopback test network every peer
//! shares one, so that rule is not kept.)

use crate::peers::{Direction, Link, LinkTable, PeerId};

/// Inbound links protected for having given us the newest blocks.
pub const PROTECT_BY_BLOCKS: usize = 4;
/// Inbound links protected for having given us the newest transactions.
pub const PROTECT_BY_TXS: usize = 4;

/// The inbound link to close to make room for `newcomer`, or `None` when every other
/// inbound link is protected (then the newcomer is refused).
pub fn candidate(links: &LinkTable, newcomer: PeerId) -> Option<PeerId> {
    let mut left: Vec<&Link> = links
        .iter()
        .filter(|l| l.direction == Direction::Inbound && l.id != newcomer)
        .collect();
    protect(&mut left, PROTECT_BY_BLOCKS, |l| l.last_block);
    protect(&mut left, PROTECT_BY_TXS, |l| l.last_tx);
    // Oldest first: `Reverse` makes the smallest opening time the "best".
    let half = left.len() / 2;
    protect(&mut left, half, |l| Some(std::cmp::Reverse(l.opened)));
    left.into_iter()
        .max_by_key(|l| (l.score, l.opened, l.id.0))
        .map(|l| l.id)
}

/// Removes from `left` the `n` links with the highest `key` (links without one are never
/// protected by it).
fn protect<K: Ord>(left: &mut Vec<&Link>, n: usize, key: impl Fn(&Link) -> Option<K>) {
    let mut keyed: Vec<(K, PeerId)> = left.iter().filter_map(|l| key(l).map(|k| (k, l.id))).collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.0.cmp(&b.1.0)));
    let protected: Vec<PeerId> = keyed.into_iter().take(n).map(|(_, id)| id).collect();
    left.retain(|l| !protected.contains(&l.id));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;
    use crate::time::Time;

    fn table(n: u64, f: impl Fn(&mut Link)) -> LinkTable {
        let mut t = LinkTable::default();
        for i in 0..n {
            let mut l = Link::new(PeerId(i), Direction::Inbound, None, Time::from_millis(1_000 + i));
            f(&mut l);
            t.insert(l);
        }
        t
    }

    #[test]
    fn useless_strangers_give_way_and_useful_peers_stay() {
        // 20 strangers that never gave anything: the oldest half is kept, and the newest
        // (not the newcomer) goes.
        let t = table(21, |_| {});
        assert_eq!(candidate(&t, PeerId(20)), Some(PeerId(19)));
        // A misbehaving one goes first (once the oldest half is set aside).
        let t = table(21, |l| l.score = u32::from(l.id.0 == 12) * 10);
        assert_eq!(candidate(&t, PeerId(20)), Some(PeerId(12)));
        // The newest, but it gave us a block: protected; the next newest goes.
        let t = table(21, |l| {
            if l.id.0 == 19 {
                l.last_block = Some(Time::from_millis(5_000));
            }
        });
        assert_eq!(candidate(&t, PeerId(20)), Some(PeerId(18)));
        // Outbound links are never candidates.
        let mut t = table(2, |_| {});
        t.insert(Link::new(
            PeerId(9),
            Direction::Outbound,
            None,
            Time::from_millis(9_999),
        ));
        assert_eq!(candidate(&t, PeerId(1)), Some(PeerId(0)), "9 is outbound");
    }

    #[test]
    fn when_everyone_is_protected_the_newcomer_is_refused() {
        let t = table(3, |l| l.last_tx = Some(Time::from_millis(l.id.0)));
        assert_eq!(candidate(&t, PeerId(2)), None);
    }
}
