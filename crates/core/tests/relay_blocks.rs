//! A block arriving from a peer is taken under its own hash whether the last header
//! announced to the node was its own (whose hash the node reuses) or another block's.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use chainsim_core::protocol::{WireBlock, WireHeader};
use chainsim_core::{Message, Node, NodeConfig, PeerId};
use chainsim_primitives::{Block, Work};
use support::{T0, addr, child, deliver, link_in, params, sends};

fn announce(node: &mut Node, from: PeerId, block: &Block, now: u64) {
    let headers: Arc<[WireHeader]> = Arc::from(vec![WireHeader(block.header)]);
    deliver(node, from, Message::Headers { headers }, now);
}

fn send_block(node: &mut Node, from: PeerId, block: &Block, now: u64) {
    let block = WireBlock(Arc::new(block.clone()));
    deliver(node, from, Message::Block { block }, now);
}

#[test]
fn a_block_is_taken_under_its_own_hash_after_any_announcement() {
    let p = params();
    let genesis = p.genesis().as_ref().clone();
    let mut node = Node::new(p.clone(), NodeConfig::new(addr(0), "me"));
    let peer = link_in(&mut node, 1, &addr(1), 1, Work(2), T0);
    sends(&mut node);
    // Two children of genesis: `first` announced and sent in turn; `second` announced
    // between `first`'s announcement and its body, so `first` arrives after another header.
    let first = child(&p, &genesis, "a", T0 + 1_000, vec![]);
    let second = child(&p, &genesis, "b", T0 + 2_000, vec![]);
    let (first_hash, second_hash) = (first.compute_hash(), second.compute_hash());

    announce(&mut node, peer, &first, T0 + 3_000);
    announce(&mut node, peer, &second, T0 + 3_001);
    send_block(&mut node, peer, &first, T0 + 3_002);
    assert!(node.tree().contains(&first_hash), "taken after another block's header");
    assert_eq!(node.tree().tip_hash(), first_hash);

    // `second` comes right after its own announcement is the last noted: its hash is reused.
    announce(&mut node, peer, &second, T0 + 3_003);
    send_block(&mut node, peer, &second, T0 + 3_004);
    assert!(node.tree().contains(&second_hash), "taken after its own header");
    assert_eq!(
        node.tree().tip_hash(),
        first_hash,
        "the first of equal work stays the tip"
    );

    // And a third block, on `second`, announced then sent: it becomes the tip by its hash.
    let third = child(&p, &second, "c", T0 + 4_000, vec![]);
    announce(&mut node, peer, &third, T0 + 4_001);
    send_block(&mut node, peer, &third, T0 + 4_002);
    assert_eq!(node.tree().tip_hash(), third.compute_hash());
    assert_eq!(node.tree().height(), 2);
}
