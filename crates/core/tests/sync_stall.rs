//! A sync peer that stops answering is passed over, scored, and another peer is used: after
//! the short stall window when another peer could serve, after the whole timeout otherwise.
#![allow(clippy::unwrap_used)]

mod support;

use chainsim_core::{Input, Message, Node, NodeConfig, PeerId};
use chainsim_primitives::Work;
use support::{T0, addr, at, child, deliver, link_in, params, sends, submit_block};

/// `server` answers `request` arriving on link `from`; returns what it sends.
fn serve(server: &mut Node, from: PeerId, request: Message, now: u64) -> Vec<Message> {
    deliver(server, from, request, now);
    sends(server).into_iter().map(|(_, m)| m).collect()
}

#[test]
fn a_stalled_sync_peer_is_passed_over_and_another_used() {
    let p = params();
    // B is honest and holds three blocks.
    let mut b = Node::new(p.clone(), NodeConfig::new(addr(2), "b"));
    let mut parent = p.genesis().as_ref().clone();
    for i in 1..=3 {
        let blk = child(&p, &parent, "b", T0 + i * 1_000, vec![]);
        submit_block(&mut b, blk.clone(), T0 + i * 1_000).unwrap();
        parent = blk;
    }
    sends(&mut b);
    let b_work = b.tree().tip().chain_work;

    let config = NodeConfig::new(addr(3), "c");
    // B can serve too, so A gets only the stall window, not the whole timeout.
    let timeout = config.sync_stall.as_millis() as u64;
    assert!(config.sync_stall < config.sync_timeout);
    let mut c = Node::new(p.clone(), config);
    // A claims the most work, so C downloads from A first; A will never answer.
    let a_link = link_in(&mut c, 1, &addr(1), 9, Work(b_work.0 * 3), T0);
    let b_link = link_in(&mut c, 2, &addr(2), 3, b_work, T0);
    assert_eq!(c.sync().download().map(|d| d.peer), Some(a_link));
    let asked: Vec<_> = sends(&mut c)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::GetBlocks { .. }))
        .collect();
    assert!(asked.iter().all(|(to, _)| *to == a_link), "{asked:?}");
    assert_eq!(
        c.poll_timeout(),
        Some(at(T0 + timeout)),
        "the sync deadline is the next one"
    );

    // Not yet: the timeout has not passed.
    c.handle_input(at(T0 + timeout - 1), Input::Timeout);
    assert_eq!(c.sync().download().map(|d| d.peer), Some(a_link));
    // Past it: A is passed over with a score, and B asked instead.
    c.handle_input(at(T0 + timeout), Input::Timeout);
    assert_eq!(c.sync().download().map(|d| d.peer), Some(b_link));
    assert!(
        c.peering().links().get(a_link).unwrap().score > 0,
        "the stall is scored"
    );
    let (_, request) = sends(&mut c)
        .into_iter()
        .find(|(to, m)| *to == b_link && matches!(m, Message::GetBlocks { .. }))
        .expect("a GetBlocks to B");

    // B answers on its own end of the link; C catches up to B's tip.
    let now = T0 + timeout + 2;
    let c_at_b = link_in(&mut b, 7, &addr(3), 0, Work(0), now);
    sends(&mut b);
    for reply in serve(&mut b, c_at_b, request, now) {
        deliver(&mut c, b_link, reply, now);
    }
    assert_eq!(c.tree().tip().hash, b.tree().tip().hash);
    assert!(c.sync().download().is_none());
    assert!(!c.is_syncing());
}

/// A peer that claims far more work than it has, and answers a download with nothing, is
/// passed over at once (not after the timeout) and its score says why.
#[test]
fn a_peer_claiming_work_it_lacks_is_passed_over_at_once_and_scored() {
    let p = params();
    let mut b = Node::new(p.clone(), NodeConfig::new(addr(2), "b"));
    let blk = child(&p, p.genesis(), "b", T0 + 1_000, vec![]);
    submit_block(&mut b, blk, T0 + 1_000).unwrap();
    let b_work = b.tree().tip().chain_work;

    let mut c = Node::new(p.clone(), NodeConfig::new(addr(3), "c"));
    let liar = link_in(&mut c, 1, &addr(1), 1_000_000, Work(b_work.0 * 1_000), T0);
    let honest = link_in(&mut c, 2, &addr(2), 1, b_work, T0);
    assert_eq!(c.sync().download().map(|d| d.peer), Some(liar));
    sends(&mut c);
    // The liar answers at once: nothing after genesis.
    let empty = Message::Blocks {
        blocks: Box::default(),
        tip_height: 1_000_000,
    };
    c.handle_input(at(T0 + 100), Input::Message { from: liar, msg: empty });
    assert_eq!(
        c.sync().download().map(|d| d.peer),
        Some(honest),
        "moved on without waiting"
    );
    assert!(
        c.peering().links().get(liar).unwrap().score > 0,
        "the false claim is scored"
    );
    assert_eq!(c.peering().links().get(honest).unwrap().score, 0);
}

/// Big blocks come in several answers, each within the byte budget of one message, and
/// the downloader keeps asking until it holds the server's tip.
#[test]
fn big_blocks_come_in_answers_within_the_byte_budget() {
    use chainsim_core::protocol::{MAX_BLOCKS_MESSAGE_BYTES, max_frame_bytes};
    use chainsim_primitives::Transaction;
    let p = params();
    let mut b = Node::new(p.clone(), NodeConfig::new(addr(2), "b"));
    let mut parent = p.genesis().as_ref().clone();
    let name = "x".repeat(60);
    // Five blocks of about 900 kB: four fill one answer's budget.
    for i in 0..5u64 {
        let txs = (0..6_000u64)
            .map(|n| Transaction::new(&name, &name, 1 + n, T0 + i * 100_000 + n))
            .collect();
        let blk = child(&p, &parent, "b", T0 + (i + 1) * 1_000, txs);
        submit_block(&mut b, blk.clone(), T0 + (i + 1) * 1_000).unwrap();
        parent = blk;
    }
    sends(&mut b);
    let b_work = b.tree().tip().chain_work;
    let mut c = Node::new(p.clone(), NodeConfig::new(addr(3), "c"));
    let b_link = link_in(&mut c, 2, &addr(2), 5, b_work, T0);
    let now = T0 + 10_000;
    let c_at_b = link_in(&mut b, 7, &addr(3), 0, Work(0), now);
    sends(&mut b);
    let mut answers = Vec::new();
    for _ in 0..4 {
        let requests: Vec<_> = sends(&mut c)
            .into_iter()
            .filter(|(to, m)| *to == b_link && matches!(m, Message::GetBlocks { .. }))
            .collect();
        let Some((_, request)) = requests.into_iter().next() else {
            break;
        };
        for reply in serve(&mut b, c_at_b, request, now) {
            if let Message::Blocks { blocks, .. } = &reply {
                let bytes: usize = blocks.iter().map(|w| w.0.encoded_len()).sum();
                let frame = serde_json::to_vec(&reply).unwrap().len();
                assert!(
                    blocks.len() == 1 || bytes <= MAX_BLOCKS_MESSAGE_BYTES,
                    "{bytes} bytes in one answer"
                );
                assert!(frame <= max_frame_bytes("blocks").unwrap(), "{frame}-byte frame");
                answers.push(blocks.len());
            }
            deliver(&mut c, b_link, reply, now);
        }
    }
    assert_eq!(answers, vec![4, 1], "the budget splits the batch");
    assert_eq!(c.tree().tip().hash, b.tree().tip().hash);
    assert!(!c.is_syncing());
}

/// With no other peer to turn to, a silent sync peer is given the whole timeout, and the
/// deadline moves on from the stall window to it (no busy wake-ups in between).
#[test]
fn a_silent_sync_peer_with_no_alternative_gets_the_whole_timeout() {
    let p = params();
    let config = NodeConfig::new(addr(3), "c");
    let (stall, timeout) = (
        config.sync_stall.as_millis() as u64,
        config.sync_timeout.as_millis() as u64,
    );
    let mut c = Node::new(p.clone(), config);
    let a_link = link_in(&mut c, 1, &addr(1), 9, Work(1 << 40), T0);
    sends(&mut c);
    assert_eq!(c.poll_timeout(), Some(at(T0 + stall)));
    c.handle_input(at(T0 + stall), Input::Timeout);
    assert_eq!(c.sync().download().map(|d| d.peer), Some(a_link), "no one else to ask");
    assert_eq!(
        c.poll_timeout(),
        Some(at(T0 + timeout)),
        "the next wake-up is the timeout"
    );
    c.handle_input(at(T0 + timeout), Input::Timeout);
    assert!(c.sync().download().is_none());
    assert!(
        c.peering().links().get(a_link).unwrap().score > 0,
        "the silence is scored"
    );
}
