//! Links: one per pair of nodes, identity proven by the link, deadlines instead of ticks.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chainsim_core::peers::PeerState;
use chainsim_core::protocol::Message;
use chainsim_core::{ChainParams, Input, Node};
use chainsim_primitives::{CompactTarget, Work};
use support::{Sim, addr, at, hello_from, sim_config};

/// The state node `i` shows for the address of node `j`.
fn state(sim: &Sim, i: usize, j: usize) -> Option<PeerState> {
    let a = addr(j);
    sim.node(i)
        .peers()
        .into_iter()
        .find(|p| p.address == a)
        .map(|p| p.state)
}

fn connected_pair(seed: u64) -> Sim {
    let mut sim = Sim::new(2, seed);
    sim.connect(0, 1);
    assert!(sim.run_until(5_000, |s| s.links_up(&[(0, 1)])));
    sim
}

#[test]
fn simultaneous_dials_leave_one_link_per_pair() {
    for seed in 0..20 {
        let mut sim = Sim::new(2, seed);
        sim.connect(0, 1);
        sim.connect(1, 0);
        sim.run_for(20_000);
        assert!(sim.links_up(&[(0, 1)]), "seed {seed}");
        for i in 0..2 {
            let links = sim.node(i).peering().links();
            assert_eq!(links.len(), 1, "seed {seed}: node {i} holds {} links", links.len());
            assert!(links.iter().all(|l| l.ready && l.verified), "seed {seed}");
        }
        assert!(
            sim.disconnects.iter().all(|(_, _, r)| r.contains("duplicate")),
            "{:?}",
            sim.disconnects
        );
    }
}

#[test]
fn an_impostor_cannot_get_a_peer_banned() {
    let mut sim = connected_pair(1);
    let b = addr(1);
    // A stranger reaches node 0 claiming to be node 1, then misbehaves.
    let evil = sim.open_external(0);
    let hello = hello_from(sim.node(0), &b, 0, Work(0));
    sim.inject(evil, 0, hello);
    for _ in 0..3 {
        sim.input(
            0,
            Input::Garbage {
                from: evil,
                reason: "not json".into(),
            },
        );
    }
    sim.inject(evil, 0, Message::GetAddr);
    sim.run_for(5_000);
    assert!(!sim.external_open(0, evil), "the impostor's own link is closed");
    assert_eq!(
        state(&sim, 0, 1),
        Some(PeerState::Connected),
        "the real node 1 is untouched"
    );
    let real = sim
        .node(0)
        .peering()
        .links()
        .iter()
        .find(|l| l.verified || l.addr == Some(b.clone()))
        .unwrap();
    assert_eq!(real.score, 0, "the real link carries no blame");
    assert!(sim.links_up(&[(0, 1)]));
}

#[test]
fn an_impostor_on_another_network_bans_nothing() {
    let mut sim = connected_pair(2);
    let other = Node::new(
        std::sync::Arc::new(ChainParams::with_bits(
            "other",
            CompactTarget::from_leading_zero_bits(9),
        )),
        sim_config(9, 0),
    );
    let evil = sim.open_external(0);
    sim.inject(evil, 0, hello_from(&other, &addr(1), 0, Work(0)));
    sim.run_for(1_000);
    assert!(!sim.external_open(0, evil));
    assert_eq!(state(&sim, 0, 1), Some(PeerState::Connected));
    sim.run_for(60_000);
    assert!(sim.links_up(&[(0, 1)]), "node 1 is still welcome");
}

#[test]
fn speaking_before_the_hello_closes_the_link() {
    let mut sim = Sim::new(1, 3);
    let evil = sim.open_external(0);
    sim.inject(evil, 0, Message::GetAddr);
    assert!(!sim.external_open(0, evil));
    assert!(sim.external_inbox.is_empty(), "nothing is answered before a hello");
}

#[test]
fn a_second_hello_is_scored_not_obeyed() {
    let mut sim = Sim::new(1, 4);
    let link = sim.open_external(0);
    sim.inject(link, 0, hello_from(sim.node(0), &addr(5), 3, Work(7)));
    let hello = hello_from(sim.node(0), &addr(6), 9, Work(99));
    sim.inject(link, 0, hello);
    let l = sim.node(0).peering().links().get(link).unwrap();
    assert_eq!(l.addr, Some(addr(5)), "the first hello's claim stays");
    assert!(l.score > 0);
    assert!(matches!(sim.external_inbox.first(), Some((0, _, Message::Hello(_)))));
}

#[test]
fn an_idle_network_without_keepalive_sleeps() {
    let mut sim = connected_pair(5);
    sim.run_for(60_000);
    for i in 0..2 {
        assert_eq!(sim.node(i).poll_timeout(), None, "node {i} wants no timer");
    }
    // Ten idle minutes are a handful of steps, not a tick every 250 ms.
    let sent = sim.sent.len();
    sim.run_for(600_000);
    assert_eq!(sim.sent.len(), sent, "nothing is sent on an idle network");
}

#[test]
fn keepalive_pings_quiet_links_and_closes_silent_ones() {
    let params = support::params();
    let mut config = sim_config(0, 6);
    config.peering.keepalive = Some(Duration::from_secs(30));
    let mut node = Node::new(params, config);
    let t0 = support::T0;
    let peer = support::link_in(&mut node, 1, &addr(1), 0, Work(0), t0);
    support::sends(&mut node);
    let next = node.poll_timeout().unwrap();
    assert_eq!(next, at(t0 + 30_000), "the next deadline is the keep-alive");
    node.handle_input(next, Input::Timeout);
    let pings = support::sends(&mut node);
    assert!(
        matches!(pings.as_slice(), [(p, Message::Ping { .. })] if *p == peer),
        "{pings:?}"
    );
    // Still silent at three keep-alive intervals: the link is closed.
    node.handle_input(at(t0 + 90_000), Input::Timeout);
    let closed = std::iter::from_fn(|| node.poll_output())
        .any(|o| matches!(o, chainsim_core::Output::Disconnect { peer: p, .. } if p == peer));
    assert!(closed);
}

/// Blocks whose parent is unknown are checked for what needs no parent (limits, target,
/// proof of work) before they are held, and one sender holds at most its share of the pool.
#[test]
fn orphans_are_checked_before_they_are_held_and_bounded_per_sender() {
    let mut sim = Sim::new(1, 8);
    let params = sim.params.clone();
    let per_peer = (sim_config(0, 8).max_orphans / 4).max(1);
    let link = sim.open_external(0);
    sim.inject(link, 0, hello_from(sim.node(0), &addr(7), 0, Work(0)));
    // A chain nobody else has: every block of it is an orphan at node 0.
    let mut parent = support::child(&params, params.genesis(), "far", support::T0, vec![]);
    let mut sent = 0;
    for i in 0..(per_peer * 2) as u64 {
        let block = support::child(&params, &parent, "far", support::T0 + 10 + i, vec![]);
        sim.inject(
            link,
            0,
            Message::Block {
                block: chainsim_core::protocol::WireBlock(block.clone().into()),
            },
        );
        sent += 1;
        parent = block;
    }
    assert_eq!(sent, per_peer * 2);
    assert_eq!(
        sim.node(0).orphan_count(),
        per_peer,
        "one sender holds its share, no more"
    );
    // One whose proof of work fails is not held at all, and costs the sender.
    let mut bad = support::child(&params, &parent, "far", support::T0 + 999, vec![]);
    let target = params.bits.to_target();
    while target.is_met_by(&bad.compute_hash()) {
        bad.header.nonce += 1;
    }
    sim.inject(
        link,
        0,
        Message::Block {
            block: chainsim_core::protocol::WireBlock(bad.into()),
        },
    );
    assert_eq!(sim.node(0).orphan_count(), per_peer);
    assert!(sim.node(0).peering().links().get(link).unwrap().score >= 50);
}

/// However many strangers connect claiming made-up addresses, the links stay within the
/// inbound limit and the address book within its bound.
#[test]
fn the_peer_table_is_bounded_whatever_strangers_claim() {
    let mut sim = Sim::new(1, 9);
    let config = sim_config(0, 9);
    for i in 0..3_000u32 {
        let link = sim.open_external(0);
        let claim: chainsim_core::PeerAddr = format!("10.{}.{}.{}:5000", i / 65_536, (i / 256) % 256, i % 256)
            .parse()
            .unwrap();
        sim.inject(link, 0, hello_from(sim.node(0), &claim, 0, Work(0)));
    }
    sim.run_for(10_000);
    let node = sim.node(0);
    assert!(node.peering().links().len() <= config.peering.limits.max_inbound + config.peering.limits.max_outbound);
    assert!(
        node.peering().book().len() <= config.peering.limits.max_known,
        "{}",
        node.peering().book().len()
    );
}

/// The drivers' glue takes a node's outputs a queue at a time (`Node::drain_outputs`):
/// it must hand over exactly what `poll_output` gives one by one, in the same order,
/// including the transactions a node announces only once its queue has emptied.
#[test]
fn draining_outputs_gives_what_polling_them_gives() {
    let t0 = support::T0;
    let script = |node: &mut Node| {
        support::link_in(node, 1, &addr(1), 0, Work(0), t0);
        support::link_in(node, 2, &addr(2), 0, Work(0), t0);
        for n in 0..3 {
            support::submit_tx(node, support::tx(n), t0 + 10).unwrap();
        }
    };
    let (mut polled, mut drained) = (
        Node::new(support::params(), sim_config(0, 4)),
        Node::new(support::params(), sim_config(0, 4)),
    );
    script(&mut polled);
    script(&mut drained);
    let by_poll: Vec<String> = std::iter::from_fn(|| polled.poll_output())
        .map(|o| format!("{o:?}"))
        .collect();
    let mut by_drain = Vec::new();
    drained.drain_outputs(|o| by_drain.push(format!("{o:?}")));
    assert_eq!(by_drain, by_poll);
    let relayed = |outputs: &[String]| outputs.iter().filter(|o| o.contains("Inv")).count();
    assert_eq!(
        relayed(&by_poll),
        2,
        "the transactions are announced on both links: {by_poll:#?}"
    );
    let mut more = 0;
    drained.drain_outputs(|_| more += 1);
    assert_eq!(more, 0, "nothing is left to drain");
}

/// `--peer` given for a node that was down at start: gossip fills the outbound slots
/// meanwhile, and once the configured peer is back its link still comes, a learned one
/// giving way so that the limit holds.
#[test]
fn a_configured_peer_down_at_start_gets_its_link_once_back() {
    let mut sim = Sim(chainsim_core::testnet::TestNet::with_nodes(4, 11, |_, mut c| {
        // One outbound link each: only node 0 dials what it learns.
        c.peering.limits.max_outbound = 1;
        c
    }));
    sim.take_down(2);
    sim.connect(0, 2); // node 0's configured peer: down
    sim.connect(1, 0); // node 1 links to node 0 ...
    assert!(sim.run_until(30_000, |s| s.is_connected(0, 1)));
    sim.connect(3, 1); // ... and tells it of node 3, which node 0 then dials
    let outbound = |s: &chainsim_core::testnet::TestNet, to: usize| {
        let links = s.node(0).peering().links();
        let out = links
            .iter()
            .filter(|l| l.direction == chainsim_core::peers::Direction::Outbound && l.is_usable());
        out.filter(|l| l.addr.as_ref() == Some(&addr(to))).count()
    };
    assert!(
        sim.run_until(30_000, |s| outbound(s, 3) == 1),
        "the slot filled from gossip"
    );
    sim.restart(2);
    assert!(
        sim.run_until(120_000, |s| s.is_connected(0, 2)),
        "the configured peer is back"
    );
    sim.run_for(10_000);
    assert!(sim.is_connected(0, 2));
    assert_eq!(
        (outbound(&sim, 2), outbound(&sim, 3)),
        (1, 0),
        "the learned link gave way"
    );
    sim.assert_invariants(&[0, 1, 2, 3]);
}
