//! A sync peer that stops answering is dropped and another peer is used.
#![allow(clippy::unwrap_used)]

mod support;

use chainsim_core::protocol::{Hello, Message, PROTOCOL_VERSION, WireWork};
use chainsim_core::sync::SYNC_TIMEOUT_MS;
use chainsim_core::{Node, NodeConfig, Output, PeerAddr, PeerState};
use chainsim_primitives::Work;
use support::{T0, addr, child, params};

fn sends(node: &mut Node) -> Vec<(PeerAddr, Message)> {
    let mut out = Vec::new();
    while let Some(o) = node.poll_output() {
        if let Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    out
}

fn hello_from(node: &Node, from: &PeerAddr, height: u64, work: Work) -> Message {
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        genesis: node.params().genesis_hash(),
        listen: from.clone(),
        height,
        work: WireWork(work),
        agent: "test".into(),
    })
}

#[test]
fn a_stalled_sync_peer_is_dropped_and_another_used() {
    let p = params();
    // B is honest and holds three blocks.
    let mut b = Node::new(p.clone(), NodeConfig::new(addr(2), "b"));
    let mut parent = p.genesis().as_ref().clone();
    for i in 1..=3 {
        let blk = child(&p, &parent, "b", T0 + i * 1_000, vec![]);
        b.submit_block(blk.clone(), T0 + i * 1_000).unwrap();
        parent = blk;
    }
    sends(&mut b);
    let b_work = b.tree().tip().chain_work;

    let mut c = Node::new(p.clone(), NodeConfig::new(addr(3), "c"));
    // A claims the most work, so C downloads from A first; A will never answer.
    for (peer, height, work) in [(addr(1), 9, Work(b_work.0 * 3)), (addr(2), 3, b_work)] {
        c.add_peer(peer.clone(), true, T0);
        sends(&mut c);
        let hello = hello_from(&c, &peer, height, work);
        c.handle_message(&peer, hello, T0).unwrap();
    }
    assert_eq!(c.sync_peer().map(|s| s.peer.clone()), Some(addr(1)));
    let asked: Vec<_> = sends(&mut c)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::GetBlocks { .. }))
        .collect();
    assert!(asked.iter().all(|(to, _)| *to == addr(1)), "{asked:?}");

    // Not yet: the timeout has not passed.
    c.handle_timeout(T0 + SYNC_TIMEOUT_MS - 1);
    assert_eq!(c.sync_peer().map(|s| s.peer.clone()), Some(addr(1)));
    // Past it: A is dropped and B asked instead.
    c.handle_timeout(T0 + SYNC_TIMEOUT_MS + 1);
    assert_ne!(c.peers().get(&addr(1)).unwrap().state, PeerState::Connected);
    assert_eq!(c.sync_peer().map(|s| s.peer.clone()), Some(addr(2)));
    let (_, request) = sends(&mut c)
        .into_iter()
        .find(|(to, m)| *to == addr(2) && matches!(m, Message::GetBlocks { .. }))
        .expect("a GetBlocks to B");

    // B answers; C catches up to B's tip.
    let now = T0 + SYNC_TIMEOUT_MS + 2;
    let hello_c = hello_from(&b, &addr(3), 0, Work(0));
    b.handle_message(&addr(3), hello_c, now).unwrap();
    for reply in b.handle_message(&addr(3), request, now).unwrap() {
        c.handle_message(&addr(2), reply, now).unwrap();
    }
    assert_eq!(c.tree().tip().hash, b.tree().tip().hash);
    assert!(c.sync_peer().is_none());
}
