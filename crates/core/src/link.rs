//! The transport glue, written once: every driver of a [`Node`] — the live node over TCP,
//! the in-memory test network, the simulator — numbers links with [`PeerIds`], carries the
//! node's outputs out through an [`Effects`] implementation with [`drain`] after feeding
//! inputs. A transport only moves messages; the life of a link (dial, handshake,
//! keep-alive, failure) is decided inside the core. In-process transports also share
//! [`Pairs`], which remembers which end of a link is which.

use crate::event::Event;
use crate::input::CommandId;
use crate::node::Node;
use crate::output::{Output, Reply};
use crate::peers::{PeerAddr, PeerId};
use crate::protocol::Message;
use crate::store::StoreOp;

/// Numbers links for one node: never the same number twice.
#[derive(Debug, Default, Clone)]
pub struct PeerIds {
    next: u64,
}

impl PeerIds {
    /// A fresh link number.
    pub fn next_id(&mut self) -> PeerId {
        self.next += 1;
        PeerId(self.next)
    }
}

/// What a driver does with each kind of output.
pub trait Effects {
    /// Dial `addr`, then feed [`Input::LinkUp`] or [`Input::DialFailed`].
    fn connect(&mut self, addr: PeerAddr);
    /// Send on a link, in order.
    fn send(&mut self, to: PeerId, msg: Message);
    /// Close a link after what is queued on it, then feed [`Input::LinkDown`].
    fn disconnect(&mut self, peer: PeerId, reason: String);
    /// Persist (the driver commits all ops of one drain together).
    fn store(&mut self, op: StoreOp);
    /// Publish an event.
    fn event(&mut self, event: Event);
    /// Answer a command.
    fn reply(&mut self, id: CommandId, reply: Reply);
    /// Start mining a block on the best tip (the node's mining schedule says so). Drivers
    /// without miners ignore it.
    fn start_mining(&mut self) {}
}

/// Carries every queued output out, in order.
pub fn drain(node: &mut Node, fx: &mut impl Effects) {
    node.drain_outputs(|out| match out {
        Output::Connect { addr } => fx.connect(addr),
        Output::Send { to, msg } => fx.send(to, msg),
        Output::Disconnect { peer, reason } => fx.disconnect(peer, reason),
        Output::Store(op) => fx.store(op),
        Output::Event(e) => fx.event(*e),
        Output::Reply { id, reply } => fx.reply(id, *reply),
        Output::StartMining => fx.start_mining(),
    });
}

/// A link coming up at one end of an in-process dial (see [`Pairs::dial`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkUpNotice {
    /// The node that hears of it.
    pub node: usize,
    /// The link's number at that node.
    pub link: PeerId,
    /// The address dialled, for the dialler's end ([`Input::LinkUp`]'s `addr`).
    pub addr: Option<PeerAddr>,
    /// How many one-way delays after the dial.
    pub delays: u32,
}

/// Both ends of in-process links between numbered nodes: which node and link number the
/// other end of `(node, link)` is, and whether that end is open (its core was told the
/// link is up and not yet that it went down).
///
/// Looked up for every message a simulator carries, so it is a direct index rather than a
/// map: a node's links are numbered 1, 2, 3, ... in the order they open and never reused.
#[derive(Debug, Default, Clone)]
pub struct Pairs {
    /// By slot (see [`Pairs::slot`]).
    nodes: Vec<NodeEnds>,
}

/// The link ends of one node.
#[derive(Debug, Default, Clone)]
struct NodeEnds {
    /// By link number − 1.
    ends: Vec<End>,
    /// How many of `ends` are not open: while none is, [`Pairs::is_open`] answers from
    /// here without reading the end itself (a cache miss on every message otherwise).
    not_open: u32,
}

/// One end of a link.
#[derive(Debug, Clone, Copy)]
struct End {
    /// The other end: its node and link number.
    other: (usize, PeerId),
    /// Whether this end's core holds the link as up.
    open: bool,
    /// What the driver keeps with the link ([`LinkTag`]'s two numbers, held apart so that
    /// `open` shares their padding: an end takes 24 bytes, not 32), read with the other
    /// end in one lookup.
    delay: u32,
    route: u16,
}

/// Numbers a driver keeps with a link end (see [`Pairs::set_tag`]): in the room an end
/// has beside the other end's numbers, so they cost no lookup of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTag {
    /// A delay (the simulator: the link's one-way latency in microseconds; 0 for unknown).
    pub delay: u32,
    /// A route class (the simulator: which pipe between two regions the link's messages
    /// go through; `u16::MAX` for unknown).
    pub route: u16,
}

impl Default for LinkTag {
    /// Nothing known: delay 0, route `u16::MAX`.
    fn default() -> Self {
        Self {
            delay: 0,
            route: u16::MAX,
        }
    }
}

impl Pairs {
    /// Where node `n`'s links are kept: node numbers shifted by one, so that the test
    /// network's external peer (`usize::MAX`) takes slot 0 instead of a huge index.
    fn slot(n: usize) -> usize {
        n.wrapping_add(1)
    }

    fn node_mut(&mut self, n: usize) -> &mut NodeEnds {
        let slot = Self::slot(n);
        if self.nodes.len() <= slot {
            self.nodes.resize_with(slot + 1, NodeEnds::default);
        }
        &mut self.nodes[slot]
    }

    /// Adds a closed end at node `n`, whose other end is `other`.
    fn push_end(&mut self, n: usize, other: (usize, PeerId)) {
        let node = self.node_mut(n);
        node.not_open += 1;
        let unset = LinkTag::default();
        node.ends.push(End {
            other,
            open: false,
            delay: unset.delay,
            route: unset.route,
        });
    }

    /// Opens a link from node `a` to node `b`: returns the link's number at `a` and at `b`.
    pub fn open(&mut self, a: usize, b: usize) -> (PeerId, PeerId) {
        let at_a = PeerId(self.node_mut(a).ends.len() as u64 + 1);
        let at_b = PeerId(self.node_mut(b).ends.len() as u64 + 1 + u64::from(a == b));
        self.push_end(a, (b, at_b));
        self.push_end(b, (a, at_a));
        (at_a, at_b)
    }
    /// Dials from node `a` to node `b` (listening at `addr`): opens the link and returns
    /// the two `LinkUp` notices with how many one-way delays after the dial each is due.
    /// The side dialled sees the connection after one delay; the dialler learns it is up
    /// after a round trip, as a TCP handshake goes.
    pub fn dial(&mut self, a: usize, b: usize, addr: PeerAddr) -> [LinkUpNotice; 2] {
        let (at_a, at_b) = self.open(a, b);
        [
            LinkUpNotice {
                node: b,
                link: at_b,
                addr: None,
                delays: 1,
            },
            LinkUpNotice {
                node: a,
                link: at_a,
                addr: Some(addr),
                delays: 2,
            },
        ]
    }

    /// Where link `link` is among its node's ends.
    fn index(link: PeerId) -> Option<usize> {
        usize::try_from(link.0).ok()?.checked_sub(1)
    }

    fn end(&self, node: usize, link: PeerId) -> Option<&End> {
        self.nodes.get(Self::slot(node))?.ends.get(Self::index(link)?)
    }

    /// The other end of `(node, link)`.
    pub fn other(&self, node: usize, link: PeerId) -> Option<(usize, PeerId)> {
        self.end(node, link).map(|e| e.other)
    }

    /// The other end of `(node, link)` and the link's tag (see [`Pairs::set_tag`]).
    pub fn other_tagged(&self, node: usize, link: PeerId) -> Option<(usize, PeerId, LinkTag)> {
        self.end(node, link).map(|e| {
            let tag = LinkTag {
                delay: e.delay,
                route: e.route,
            };
            (e.other.0, e.other.1, tag)
        })
    }

    /// Keeps `tag` with the end `(node, link)` (until set: [`LinkTag::default`], nothing known).
    pub fn set_tag(&mut self, node: usize, link: PeerId, tag: LinkTag) {
        if let Some(e) = self.end_mut(node, link) {
            (e.delay, e.route) = (tag.delay, tag.route);
        }
    }

    /// What [`Pairs::is_open`] and [`Pairs::other_tagged`] read first for node `n`, for a
    /// driver that wants it loaded ahead (a prefetch hint; `None` for a node with no links).
    pub fn ends_of(&self, n: usize) -> Option<&impl Sized> {
        self.nodes.get(Self::slot(n))
    }

    /// The ends of node `n`'s links, which [`Pairs::other_tagged`] reads for each message
    /// `n` sends, for a driver that wants them loaded ahead (a prefetch hint).
    pub fn link_ends_of(&self, n: usize) -> &[impl Sized] {
        self.nodes.get(Self::slot(n)).map_or(&[], |e| &e.ends[..])
    }

    /// The end `(node, link)`, for a driver that wants it loaded ahead (a prefetch hint).
    pub fn end_of(&self, node: usize, link: PeerId) -> Option<&impl Sized> {
        self.end(node, link)
    }

    /// Whether `(node, link)` is open: messages on it reach its core.
    pub fn is_open(&self, node: usize, link: PeerId) -> bool {
        let Some((ends, i)) = self.nodes.get(Self::slot(node)).zip(Self::index(link)) else {
            return false;
        };
        i < ends.ends.len() && (ends.not_open == 0 || ends.ends[i].open)
    }

    /// Marks `(node, link)` open (its core is being told [`Input::LinkUp`]).
    ///
    /// [`Input::LinkUp`]: crate::input::Input::LinkUp
    pub fn set_open(&mut self, node: usize, link: PeerId) {
        self.set_state(node, link, true);
    }

    /// Marks `(node, link)` closed; returns whether it was open (so its core is to be told
    /// [`Input::LinkDown`] once, however many reasons to close it arrive).
    ///
    /// [`Input::LinkDown`]: crate::input::Input::LinkDown
    pub fn close(&mut self, node: usize, link: PeerId) -> bool {
        self.set_state(node, link, false)
    }

    /// Sets whether `(node, link)` is open; returns whether it was, keeping count of the
    /// node's ends not open.
    fn set_state(&mut self, node: usize, link: PeerId, open: bool) -> bool {
        let Some((ends, i)) = self.nodes.get_mut(Self::slot(node)).zip(Self::index(link)) else {
            return false;
        };
        let Some(end) = ends.ends.get_mut(i) else {
            return false;
        };
        let was = std::mem::replace(&mut end.open, open);
        match (was, open) {
            (false, true) => ends.not_open -= 1,
            (true, false) => ends.not_open += 1,
            _ => {}
        }
        was
    }

    fn end_mut(&mut self, node: usize, link: PeerId) -> Option<&mut End> {
        let i = Self::index(link)?;
        self.nodes.get_mut(Self::slot(node))?.ends.get_mut(i)
    }

    /// Every link end at `node`.
    pub fn links_of(&self, node: usize) -> Vec<PeerId> {
        let count = self.nodes.get(Self::slot(node)).map_or(0, |n| n.ends.len());
        (1..=count as u64).map(PeerId).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// However ends open and close, `is_open` says what each end was last set to (the
        /// count that lets it skip reading the end stays right).
        #[test]
        fn is_open_follows_every_open_and_close(ops in proptest::collection::vec((0u8..4, 0usize..4, 1u64..8), 1..200)) {
            let mut pairs = Pairs::default();
            let mut truth = std::collections::HashMap::<(usize, u64), bool>::new();
            for (op, node, link) in ops {
                match op {
                    0 => {
                        let other = (node + 1) % 4;
                        let (a, b) = pairs.open(node, other);
                        truth.insert((node, a.0), false);
                        truth.insert((other, b.0), false);
                    }
                    1 => {
                        pairs.set_open(node, PeerId(link));
                        if let Some(t) = truth.get_mut(&(node, link)) {
                            *t = true;
                        }
                    }
                    _ => {
                        let was = truth.get(&(node, link)).copied().unwrap_or(false);
                        prop_assert_eq!(pairs.close(node, PeerId(link)), was);
                        if let Some(t) = truth.get_mut(&(node, link)) {
                            *t = false;
                        }
                    }
                }
                for n in 0..4 {
                    for l in 0..9 {
                        let want = truth.get(&(n, l)).copied().unwrap_or(false);
                        prop_assert_eq!(pairs.is_open(n, PeerId(l)), want, "node {} link {}", n, l);
                    }
                }
            }
        }
    }

    #[test]
    fn an_end_takes_three_words() {
        // Every message a simulator carries reads its sender's end, loaded ahead by node.
        assert_eq!(std::mem::size_of::<End>(), 24);
    }

    #[test]
    fn a_tag_is_kept_per_end_and_read_with_the_other_end() {
        let mut pairs = Pairs::default();
        let (at_a, at_b) = pairs.open(3, 7);
        let unset = LinkTag::default();
        assert_eq!(pairs.other_tagged(3, at_a), Some((7, at_b, unset)), "nothing until set");
        assert_eq!((unset.delay, unset.route), (0, u16::MAX));
        let (ab, ba) = (
            LinkTag {
                delay: 250_000,
                route: 3,
            },
            LinkTag { delay: 9, route: 0 },
        );
        pairs.set_tag(3, at_a, ab);
        pairs.set_tag(7, at_b, ba);
        assert_eq!(pairs.other_tagged(3, at_a), Some((7, at_b, ab)));
        assert_eq!(pairs.other_tagged(7, at_b), Some((3, at_a, ba)));
        pairs.set_tag(3, PeerId(99), ab); // no such link: nothing happens
        assert_eq!(pairs.other_tagged(3, PeerId(99)), None);
    }
}
