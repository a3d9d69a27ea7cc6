//! What the simulator does to save memory changes no result: the shared block store, the
//! nodes' pruned block trees and the compact recorder give the numbers the simulator gave
//! when every node kept everything.

#![allow(clippy::unwrap_used)]

use chainsim_sim::{Scenario, Simulation};

/// Bitcoin 2019 on 30 nodes, 60 blocks, keeping `keep_depth` blocks of entries.
fn bitcoin(keep_depth: Option<u64>) -> Scenario {
    let mut s = Scenario::load("bitcoin-2019").unwrap();
    s.nodes = 30;
    s.blocks = 60;
    s.keep_depth = keep_depth;
    s
}

/// The run of [`bitcoin`] as the simulator gave it before bodies were shared, trees pruned
/// and receptions stored compactly (the `--json` of `sim --scenario bitcoin-2019 --nodes 30
/// --blocks 60`, wall time and memory aside). Only the message counts have changed since,
/// while the links form: a newcomer's address is relayed to two peers instead of all (2,824
/// fewer `addr` messages), and only the dialling end of a link asks for addresses (480 fewer
/// `get_addr` and `addr`); every reception time is the same.
#[test]
fn results_are_those_of_a_simulator_keeping_everything() {
    let r = Simulation::new(bitcoin(Some(5))).run();
    assert_eq!((r.links, r.blocks_mined, r.height, r.stale_blocks), (240, 60, 60, 0));
    assert_eq!(
        (r.messages, r.bytes, r.events, r.inputs),
        (20_172, 933_148_584, 24_401, 20_742)
    );
    let d = &r.reception_ms;
    assert_eq!(
        (d.count, d.p50, d.mean, d.p90, d.p99, d.max),
        (1740, 1516.268, 1736.789, 3236.222, 4270.128, 4605.013)
    );
    let (r50, r90) = (&r.reach_50_ms, &r.reach_90_ms);
    assert_eq!(
        (r50.count, r50.p50, r50.mean, r50.p90),
        (60, 1341.565, 1453.813, 2029.655)
    );
    assert_eq!(
        (r90.count, r90.p50, r90.mean, r90.max),
        (60, 3143.996, 3082.518, 3969.892)
    );
    assert_eq!((r.missed_receptions, r.virtual_s, r.tips_at_end), (0, 39268.127, 1));
}

#[test]
fn pruning_changes_no_result_and_nodes_hold_no_bodies() {
    let mut pruned = Simulation::new(bitcoin(Some(5)));
    let got = pruned.run();
    let want = Simulation::new(bitcoin(None)).run();
    assert_eq!(got, want);
    for node in pruned.nodes() {
        let tree = node.tree();
        // Genesis only: every other body is read back from the shared store.
        assert_eq!(tree.bodies_held(), 1);
        assert!(tree.entries_held() < 5 + 10, "{} entries held", tree.entries_held());
        assert_eq!(tree.len(), 61 + tree.side_count());
    }
}

#[test]
fn a_run_asked_for_more_blocks_than_memory_holds_still_starts() {
    // Each node makes room for the blocks it expects; a mistaken count must not take that
    // memory up front (it is capped) nor overflow working it out.
    let mut s = bitcoin(Some(u64::MAX));
    s.blocks = u64::MAX;
    let sim = Simulation::new(s);
    let most = 2 * chainsim_core::chain::tree::MAX_RESERVED_BLOCKS;
    for node in sim.nodes() {
        let (entries, chain) = node.tree().room();
        assert!(
            entries <= most && chain <= most,
            "room: {entries} entries, {chain} hashes"
        );
    }
}
