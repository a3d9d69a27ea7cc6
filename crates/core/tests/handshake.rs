//! Handshake races that once made links flap (found by the propagation benchmark).
#![allow(clippy::unwrap_used)]

mod support;

use chainsim_core::{Message, Node, NodeConfig, Output, PeerState};
use support::{T0, addr, params};

fn sends(node: &mut Node) -> Vec<(chainsim_core::PeerAddr, Message)> {
    let mut out = Vec::new();
    while let Some(o) = node.poll_output() {
        if let Output::Send { to, msg } = o {
            out.push((to, msg));
        }
    }
    out
}

/// B accepts A's hello and starts talking at once; B's first message can reach A before A
/// has processed B's answer. A must listen, not answer "no handshake".
#[test]
fn messages_racing_the_hello_answer_are_accepted() {
    let mut a = Node::new(params(), NodeConfig::new(addr(1), "a"));
    let mut b = Node::new(params(), NodeConfig::new(addr(2), "b"));
    a.add_peer(addr(2), true, T0);
    let (to, hello) = sends(&mut a)
        .into_iter()
        .find(|(_, m)| matches!(m, Message::Hello(_)))
        .unwrap();
    assert_eq!(to, addr(2));
    assert_eq!(a.peers().get(&addr(2)).unwrap().state, PeerState::Connecting);
    let answer = b.handle_message(&addr(1), hello, T0).unwrap();
    // B's follow-up (getaddr) overtakes its answer.
    let follow_up = sends(&mut b).into_iter().find(|(to, _)| *to == addr(1)).unwrap().1;
    assert!(a.handle_message(&addr(2), follow_up, T0).is_ok());
    for m in answer {
        a.handle_message(&addr(2), m, T0).unwrap();
    }
    assert_eq!(a.peers().get(&addr(2)).unwrap().state, PeerState::Connected);
}

/// A peer that says it lost our handshake gets a new hello at once, even when every
/// outbound slot is taken (it is the same link).
#[test]
fn lost_handshake_is_redone_at_once_even_with_full_outbound_slots() {
    let mut config = NodeConfig::new(addr(1), "a");
    config.peer_limits.max_outbound = 0;
    let mut a = Node::new(params(), config);
    let mut b = Node::new(params(), NodeConfig::new(addr(2), "b"));
    b.add_peer(addr(1), true, T0);
    let (_, hello) = sends(&mut b)
        .into_iter()
        .find(|(_, m)| matches!(m, Message::Hello(_)))
        .unwrap();
    a.handle_message(&addr(2), hello, T0).unwrap();
    sends(&mut a);
    a.handle_handshake_lost(&addr(2), T0 + 1);
    assert!(
        sends(&mut a)
            .iter()
            .any(|(to, m)| *to == addr(2) && matches!(m, Message::Hello(_)))
    );
}
