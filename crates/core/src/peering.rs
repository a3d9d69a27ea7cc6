//! Peering: the life of every link (dial, handshake, keep-alive, close), the address book,
//! misbehaviour and bans, the operator's blocks, and peer exchange. It owns the links and
//! the address book; the node asks it who is ready and tells it what peers did.
//!
//! Identity is the link: the sender of a message is the link it arrived on. An outbound
//! link's address is proven (we dialled it); an inbound link's address is what its hello
//! claims. Bans and blocks of an address act on proven addresses, so a stranger claiming to
//! be peer B gets its own link closed, never B's. Two links between the same two nodes
//! (both dialled at once) carry the same hello token; the one dialled by the node with the
//! smaller address stays, on both sides, and the other closes without blame.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use chainsim_primitives::{BlockHash, Work, sha256};

use crate::addrbook::{AddrBook, AddrState, RetryPolicy};
use crate::event::{Event, EventKind};
use crate::eviction;
use crate::keyed_hash::KeyedBytesHash;
use crate::output::Outbox;
use crate::peers::{
    BAN_SCORE, Direction, Link, LinkTable, LinkToken, PeerAddr, PeerId, PeerInfo, PeerLimits, PeerState,
};
use crate::protocol::{AddrList, Hello, MAX_ADDRS_PER_MESSAGE, Message, PROTOCOL_VERSION, WireWork};
use crate::time::Time;

/// How many other peers hear of a newly connected peer's address: two, as Bitcoin Core
/// relays an address. They keep it in their books and hand it on in answers to GetAddr.
/// Telling every ready peer made a forming network's messages mostly `addr`: each node's
/// k links cost it about k²/2 of them (120 of 170 messages a node at 16 links).
pub const ADDR_RELAY_PEERS: usize = 2;

/// Settings of peering.
#[derive(Debug, Clone)]
pub struct PeeringConfig {
    /// Where this node listens, as peers should reach it.
    pub listen: PeerAddr,
    /// Software name and version sent in the handshake.
    pub agent: String,
    /// Link and address book limits.
    pub limits: PeerLimits,
    /// Retry delays after failures.
    pub retry: RetryPolicy,
    /// Ping a link that has been quiet this long, and close one silent for three times
    /// as long. `None` turns keep-alive off (a simulator's links never die silently).
    pub keepalive: Option<Duration>,
    /// Longest wait for the other side's hello once a link is up.
    pub handshake_timeout: Duration,
    /// Longest dial (the transport normally reports sooner).
    pub dial_timeout: Duration,
    /// How long a misbehaving address stays banned.
    pub ban: Duration,
    /// How long an incompatible address (other genesis or version) is left alone.
    pub refused: Duration,
}

impl PeeringConfig {
    /// Defaults for a node listening at `listen`.
    pub fn new(listen: PeerAddr) -> Self {
        Self {
            listen,
            agent: concat!("chainsim/", env!("CARGO_PKG_VERSION")).to_string(),
            limits: PeerLimits::default(),
            retry: RetryPolicy::default(),
            keepalive: Some(Duration::from_secs(30)),
            handshake_timeout: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(10),
            ban: Duration::from_secs(10 * 60),
            refused: Duration::from_secs(60 * 60),
        }
    }
}

/// What the node's tip looks like, for hellos and pings.
#[derive(Debug, Clone, Copy)]
pub struct TipInfo {
    /// Best height.
    pub height: u64,
    /// Best chain work.
    pub work: Work,
}

/// How a hello ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloOutcome {
    /// The link is ready for the first time.
    Ready,
    /// Refused or a duplicate: the link is closing.
    Closed,
    /// Nothing new (a second hello, scored as misbehaviour).
    Ignored,
}

/// The answer to GetAddr, kept for reuse as Bitcoin Core keeps its own: building one scans
/// the ready links and the book, and every new link asks for one, so that in a network's
/// first minute building answers cost more than anything else the nodes did.
///
/// Unlike Core's, it is never out of date: what an answer says decides which addresses
/// nodes learn and dial, and the answers must be those of a node that builds each one
/// afresh. The commonest changes are applied to it as they happen (a link becoming ready,
/// an address added to the end of the book); any other (a ready link going down, a link's
/// address proven, an entry changing whether it is shareable) has it rebuilt when next
/// asked for.
#[derive(Debug, Default)]
struct AddrCache {
    /// Whether it can be used (it has been built and nothing it cannot follow happened).
    valid: bool,
    /// Shareable addresses as [`Peering::fresh_addrs`] lists them for an asker without an
    /// address, one more than a message holds, so that the answer to an asker whose own
    /// address is among them (it is left out at send time) is still full.
    addrs: Vec<PeerAddr>,
    /// `addrs` as the answers share it, made at the first answer since `addrs` changed.
    shared: Option<Arc<[PeerAddr]>>,
    /// The links whose addresses lead `addrs` (the first ready link of each address, in
    /// link order): `ready[i]` is the link of `addrs[i]`.
    ready: Vec<PeerId>,
    /// The book's change count it follows.
    book_changes: u64,
    /// Book entries taken into account: later ones were added since.
    book_seen: usize,
}

/// The most addresses [`AddrCache`] holds.
const ADDR_CACHE_LEN: usize = MAX_ADDRS_PER_MESSAGE + 1;

impl AddrCache {
    /// Follows a link `id` to `addr` becoming ready: `addr` moves to (or joins) the ready
    /// addresses at the link's place, and the list is cut to its length again.
    fn link_ready(&mut self, id: PeerId, addr: &PeerAddr) {
        if !self.valid || self.ready.len() >= ADDR_CACHE_LEN {
            // The ready addresses alone fill the list: which ones are in it is not known.
            self.valid = false;
            return;
        }
        if let Some(i) = self.addrs.iter().position(|a| a == addr) {
            if self.ready.get(i).is_some_and(|&r| r < id) {
                return; // an earlier link to the same address stands for it already
            }
            self.addrs.remove(i);
            if i < self.ready.len() {
                self.ready.remove(i);
            }
        }
        self.shared = None;
        // Link ids only grow, so a newly ready link usually goes last.
        let at = self.ready.partition_point(|&r| r < id);
        self.ready.insert(at, id);
        self.addrs.insert(at, addr.clone());
        self.addrs.truncate(ADDR_CACHE_LEN);
    }
}

/// Links, the address book and the rules between them.
#[derive(Debug)]
pub struct Peering {
    config: PeeringConfig,
    genesis: BlockHash,
    secret: [u8; 16],
    links: LinkTable,
    book: AddrBook,
    /// The token a hello from this node to itself would carry: a hello bearing it comes
    /// from this node (made once, not for every hello received).
    own_token: LinkToken,
    /// The cached answer to GetAddr.
    addr_cache: AddrCache,
}

impl Peering {
    /// Peering for a node on the network of `genesis`; `secret` makes its hello tokens.
    pub fn new(config: PeeringConfig, genesis: BlockHash, secret: [u8; 16]) -> Self {
        Self {
            book: AddrBook::new(hash_seed(&secret), config.limits.max_known),
            own_token: LinkToken::new(&secret, Some(&config.listen)),
            config,
            genesis,
            secret,
            links: LinkTable::default(),
            addr_cache: AddrCache::default(),
        }
    }

    /// Settings.
    pub fn config(&self) -> &PeeringConfig {
        &self.config
    }
    /// Open links.
    pub fn links(&self) -> &LinkTable {
        &self.links
    }
    /// Open links, mutable (height and work updates).
    pub fn links_mut(&mut self) -> &mut LinkTable {
        &mut self.links
    }
    /// Known addresses.
    pub fn book(&self) -> &AddrBook {
        &self.book
    }
    /// Ready links not closing ([`Link::is_usable`]).
    pub fn ready_links(&self) -> impl Iterator<Item = &Link> {
        self.links.usable()
    }

    /// The ids of [`Peering::ready_links`].
    pub fn ready_ids(&self) -> Vec<PeerId> {
        self.ready_links().map(|l| l.id).collect()
    }
    /// Whether messages from `id` are acted on (handshake done, not closing).
    pub fn is_ready(&self, id: PeerId) -> bool {
        self.links.get(id).is_some_and(Link::is_usable)
    }
    /// The address of a link, proven or claimed.
    pub fn addr_of(&self, id: PeerId) -> Option<&PeerAddr> {
        self.links.get(id).and_then(|l| l.addr.as_ref())
    }

    /// Our hello for a link to `to` (its address, proven or claimed).
    pub fn hello(&self, to: Option<&PeerAddr>, tip: TipInfo) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            genesis: self.genesis,
            listen: self.config.listen.clone(),
            height: tip.height,
            work: WireWork::new(tip.work),
            agent: self.config.agent.clone(),
            token: Some(LinkToken::new(&self.secret, to)),
        }
    }

    // ----- the operator and the address book ----------------------------------------

    /// Remembers addresses given by a user (pinned) and dials what it can.
    pub fn add_pinned(&mut self, addrs: Vec<PeerAddr>, now: Time, out: &mut Outbox) {
        for addr in addrs {
            if addr == self.config.listen {
                continue;
            }
            if self.book.add(&addr, true, usize::MAX, now)
                && let Some(e) = self.book.get_mut(&addr)
                && e.state == AddrState::Backoff
            {
                // Registering by hand means "try now".
                e.state = AddrState::Idle;
                e.retry_at = now;
            }
        }
        self.connect_more(now, out);
    }

    /// Takes addresses a peer shared (bounded by the book's limit).
    pub fn add_shared(&mut self, addrs: &AddrList, now: Time, out: &mut Outbox) {
        let max = self.config.limits.max_known;
        for addr in addrs.iter() {
            // A full book takes no new address, and one it knows needs nothing (it is not
            // pinned by being shared): once full, no lookup at all.
            if self.book.len() >= max {
                break;
            }
            if *addr != self.config.listen {
                self.book.add(addr, false, max, now);
            }
        }
        self.connect_more(now, out);
    }

    /// Cuts every link with `addr` and refuses it until unblocked.
    pub fn block(&mut self, addr: PeerAddr, now: Time, out: &mut Outbox) {
        if self.book.add(&addr, true, usize::MAX, now)
            && let Some(e) = self.book.get_mut(&addr)
        {
            e.state = AddrState::Blocked;
        }
        let ids: Vec<PeerId> = self
            .links
            .iter()
            .filter(|l| l.addr.as_ref() == Some(&addr))
            .map(|l| l.id)
            .collect();
        for id in ids {
            self.close(id, "blocked by the operator", out);
        }
        out.emit(EventKind::Peer, || Event::Peer {
            address: addr,
            state: PeerState::Blocked,
            reason: Some("blocked by the operator".into()),
        });
    }

    /// Allows `addr` again and dials it now. False when it was not blocked.
    pub fn unblock(&mut self, addr: &PeerAddr, now: Time, out: &mut Outbox) -> bool {
        let Some(e) = self.book.get_mut(addr).filter(|e| e.state == AddrState::Blocked) else {
            return false;
        };
        e.state = AddrState::Idle;
        e.failures = 0;
        e.retry_at = now;
        e.pinned = true;
        out.emit(EventKind::Peer, || Event::Peer {
            address: addr.clone(),
            state: PeerState::Idle,
            reason: Some("unblocked by the operator".into()),
        });
        self.connect_more(now, out);
        true
    }

    /// Dials due addresses while outbound slots are free, in a seeded random order,
    /// configured addresses first.
    pub fn connect_more(&mut self, now: Time, out: &mut Outbox) {
        if self.links.count(Direction::Outbound) >= self.config.limits.max_outbound {
            return; // the common case once a node is connected: no scan of the book
        }
        let used = self.links.count(Direction::Outbound) + self.book.dialing();
        let free = self.config.limits.max_outbound.saturating_sub(used);
        if free == 0 {
            return;
        }
        let mut candidates: Vec<PeerAddr> = self
            .book
            .due(now)
            .into_iter()
            .filter(|a| self.links.by_addr(a).is_none())
            .collect();
        // A stable shuffle keyed by the secret: deterministic per node, different between
        // nodes, so that a network does not all dial the same addresses.
        candidates.sort_by_cached_key(|a| (!self.book.is_pinned(a), LinkToken::new(&self.secret, Some(a))));
        for addr in candidates.into_iter().take(free) {
            self.dial(addr, now, out);
        }
    }

    /// Dials `addr`, noting it in the book as being dialled.
    fn dial(&mut self, addr: PeerAddr, now: Time, out: &mut Outbox) {
        let dialing = AddrState::Dialing(now);
        self.book.set_state(&addr, dialing, self.config.dial_timeout);
        out.connect(addr);
    }

    /// A dial failed.
    pub fn on_dial_failed(&mut self, addr: &PeerAddr, reason: &str, now: Time, out: &mut Outbox) {
        if self
            .book
            .get(addr)
            .is_some_and(|e| matches!(e.state, AddrState::Dialing(_)))
        {
            self.fail_addr(addr, reason, now, out);
        }
        self.connect_more(now, out);
    }

    fn fail_addr(&mut self, addr: &PeerAddr, reason: &str, now: Time, out: &mut Outbox) {
        let was_known = self.book.get(addr).is_some();
        if self
            .book
            .failed(addr, &self.config.retry, now, self.config.dial_timeout)
            && was_known
        {
            out.emit(EventKind::Peer, || Event::Peer {
                address: addr.clone(),
                state: PeerState::Idle,
                reason: Some(format!("forgotten after repeated failures: {reason}")),
            });
        }
    }

    // ----- links ----------------------------------------------------------------------

    /// A link came up. Outbound: say hello. Inbound: wait for theirs, if a slot is free.
    pub fn on_link_up(&mut self, id: PeerId, addr: Option<PeerAddr>, tip: TipInfo, now: Time, out: &mut Outbox) {
        let direction = if addr.is_some() {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        self.links.insert(Link::new(id, direction, addr.clone(), now));
        match addr {
            Some(addr) => {
                let refused = self
                    .book
                    .get(&addr)
                    .is_some_and(|e| matches!(e.state, AddrState::Blocked | AddrState::Banned));
                if refused {
                    self.close(id, "address blocked or banned", out);
                    return;
                }
                if self
                    .book
                    .get(&addr)
                    .is_some_and(|e| matches!(e.state, AddrState::Dialing(_)))
                {
                    self.book.set_state(&addr, AddrState::Idle, self.config.dial_timeout);
                }
                let hello = self.hello(Some(&addr), tip);
                self.send(id, Message::Hello(Box::new(hello)), now, out);
            }
            None if self.links.count(Direction::Inbound) > self.config.limits.max_inbound => {
                match eviction::candidate(&self.links, id) {
                    Some(evicted) => self.close(evicted, "evicted to make room for a new inbound peer", out),
                    None => {
                        let reason = format!("{} has too many inbound peers", self.config.listen);
                        self.close(id, &reason, out);
                    }
                }
            }
            None => {}
        }
    }

    /// A link closed. Returns it, so that the other parts can forget it.
    pub fn on_link_down(&mut self, id: PeerId, reason: &str, now: Time, out: &mut Outbox) -> Option<Link> {
        let link = self.links.remove(id)?;
        let deliberate = link.is_closing();
        // Its address may now belong among the book's, at a place only a rebuild finds.
        self.addr_cache.valid &= !link.ready;
        if let Some(addr) = &link.addr {
            if link.verified {
                // While linked, the link's own `last_heard` is shown; the book takes it now.
                self.book.seen(addr, link.last_heard);
            }
            if !deliberate && link.verified {
                self.fail_addr(addr, reason, now, out);
            }
            let reconnected = self.links.by_addr(addr).is_some_and(|l| l.ready);
            if link.ready && !reconnected {
                let state = match self.book.get(addr).map(|e| e.state) {
                    Some(AddrState::Blocked) => PeerState::Blocked,
                    Some(AddrState::Banned) => PeerState::Banned,
                    Some(AddrState::Backoff) => PeerState::Backoff,
                    _ => PeerState::Idle,
                };
                out.emit(EventKind::Peer, || Event::Peer {
                    address: addr.clone(),
                    state,
                    reason: Some(format!("link closed: {reason}")),
                });
            }
        }
        self.connect_more(now, out);
        Some(link)
    }

    /// Handles a hello on link `id`.
    pub fn on_hello(&mut self, id: PeerId, hello: Hello, tip: TipInfo, now: Time, out: &mut Outbox) -> HelloOutcome {
        let Some(link) = self.links.get(id) else {
            return HelloOutcome::Ignored;
        };
        if link.ready {
            self.misbehave(id, 10, "sent a second hello on one link", now, out);
            return HelloOutcome::Ignored;
        }
        let (direction, dialled) = (link.direction, link.addr.clone());
        if let Some(reason) = self.refusal(&hello, direction) {
            if let Some(addr) = dialled.filter(|_| direction == Direction::Outbound) {
                // Proven address, incompatible node: leave it alone for a long while.
                self.book.ban(&addr, now + self.config.refused, now);
                out.emit(EventKind::Peer, || Event::Peer {
                    address: addr,
                    state: PeerState::Banned,
                    reason: Some(reason.clone()),
                });
            }
            self.close(id, &format!("handshake refused: {reason}"), out);
            return HelloOutcome::Closed;
        }
        let addr = dialled.unwrap_or_else(|| hello.listen.clone());
        if direction == Direction::Inbound {
            let answer = self.hello(Some(&addr), tip);
            self.send(id, Message::Hello(Box::new(answer)), now, out);
            self.book.add(&addr, false, self.config.limits.max_known, now);
        }
        self.addr_cache.link_ready(id, &addr);
        if let Some(l) = self.links.set_ready(id) {
            l.addr = Some(addr.clone());
            l.token = hello.token;
            l.height = hello.height;
            l.work = hello.work.work();
            l.agent = hello.agent;
            l.last_heard = now;
        }
        if !self.resolve_duplicate(id, out) {
            return HelloOutcome::Closed;
        }
        let addr = self.addr_of(id).cloned().unwrap_or(addr);
        if self.links.get(id).is_some_and(|l| l.verified) {
            self.book.succeeded(&addr, now, self.config.dial_timeout);
        }
        out.emit(EventKind::Peer, || Event::Peer {
            address: addr.clone(),
            state: PeerState::Connected,
            reason: None,
        });
        if direction == Direction::Outbound {
            // As Bitcoin Core: ask the peers we chose, not those who chose us (both ends
            // asking made every link carry two full answers while a network forms).
            self.send(id, Message::GetAddr, now, out);
            self.make_room_for_pinned(&addr, out);
        }
        // Tell others about the newcomer, so that knowing one node is enough to join.
        for other in self.addr_relay_targets(&addr, id) {
            self.send(other, Message::addr(vec![addr.clone()]), now, out);
        }
        HelloOutcome::Ready
    }

    /// The ready links (other than `except`) that hear of `addr`: [`ADDR_RELAY_PEERS`] of
    /// them, ranked by a hash of the address and the link keyed with this node's secret, so
    /// the same links always get the same address and a peer can neither predict nor steer
    /// who hears what.
    fn addr_relay_targets(&self, addr: &PeerAddr, except: PeerId) -> Vec<PeerId> {
        let keyed = self.book.hasher();
        let mut ranked: Vec<(u64, PeerId)> = self
            .ready_links()
            .filter(|l| l.id != except)
            .map(|l| (keyed.hash_one((addr.as_str(), l.id.0)), l.id))
            .collect();
        ranked.sort_unstable();
        ranked.into_iter().take(ADDR_RELAY_PEERS).map(|(_, id)| id).collect()
    }

    /// Why a hello is refused, if it is.
    fn refusal(&self, hello: &Hello, direction: Direction) -> Option<String> {
        if hello.version != PROTOCOL_VERSION {
            return Some(format!(
                "protocol version {} is not ours ({PROTOCOL_VERSION})",
                hello.version
            ));
        }
        if hello.genesis != self.genesis {
            let name = |g| crate::params::ChainParams::known_network(g).map_or(String::new(), |n| format!(" ({n})"));
            return Some(format!(
                "peer is on another network: genesis {}{}, ours {}{}",
                hello.genesis,
                name(&hello.genesis),
                self.genesis,
                name(&self.genesis)
            ));
        }
        if hello.listen == self.config.listen || hello.token == Some(self.own_token) {
            return Some("that is this node itself".to_string());
        }
        let claimed = self.book.get(&hello.listen).map(|e| e.state);
        if direction == Direction::Inbound && matches!(claimed, Some(AddrState::Blocked | AddrState::Banned)) {
            return Some(format!("{} is blocked or banned here", hello.listen));
        }
        None
    }

    /// When the ready link `id` duplicates another ready link to the same node (same
    /// token), keeps the one dialled by the node with the smaller address and closes the
    /// other. Returns false when `id` itself was closed.
    fn resolve_duplicate(&mut self, id: PeerId, out: &mut Outbox) -> bool {
        let Some(link) = self.links.get(id) else { return false };
        // The token first: it rules out nearly every link from the one line of the entry
        // that holds it, where asking whether the link is ready first read two lines of
        // every link for every hello.
        let Some(token) = link.token else { return true };
        let twin = self
            .links
            .iter()
            .find(|l| l.token == Some(token) && l.id != id && l.ready && !l.is_closing())
            .map(|l| l.id);
        let Some(twin) = twin else { return true };
        let dialler = |l: &Link| match l.direction {
            Direction::Outbound => self.config.listen.clone(),
            Direction::Inbound => l.addr.clone().unwrap_or_else(|| self.config.listen.clone()),
        };
        let (a, b) = match (self.links.get(id), self.links.get(twin)) {
            (Some(a), Some(b)) => (a, b),
            _ => return true,
        };
        let keep_new = (dialler(a), a.id.0 > b.id.0) < (dialler(b), b.id.0 > a.id.0);
        let (keep, drop) = if keep_new { (id, twin) } else { (twin, id) };
        let proven = self.links.get(drop).filter(|l| l.verified).and_then(|l| l.addr.clone());
        if let (Some(addr), Some(k)) = (proven, self.links.get_mut(keep)) {
            self.addr_cache.valid = false;
            k.addr = Some(addr);
            k.verified = true;
        }
        self.close(drop, "duplicate link to the same node", out);
        keep == id
    }

    /// A message arrived on `id`: records that it spoke (liveness) and says what becomes of
    /// the message: `None` on a link unknown or closing (a late message, ignored), else
    /// whether the link's handshake is done. One lookup of the link for all three, as this
    /// runs for every message.
    pub fn heard(&mut self, id: PeerId, now: Time) -> Option<bool> {
        let l = self.links.get_mut(id).filter(|l| !l.is_closing())?;
        l.last_heard = now;
        // The book's `last_seen` is brought up to date when the link closes: no address
        // lookup on every message.
        Some(l.ready)
    }

    /// Sends on a link and notes when (keep-alive).
    pub fn send(&mut self, id: PeerId, msg: Message, now: Time, out: &mut Outbox) {
        if let Some(l) = self.links.get_mut(id) {
            l.last_sent = now;
        }
        out.send(id, msg);
    }

    /// Closes a link (the transport reports it down later).
    pub fn close(&mut self, id: PeerId, reason: &str, out: &mut Outbox) {
        let Some(link) = self.links.get(id) else { return };
        let who = link
            .addr
            .as_ref()
            .map_or_else(|| "unknown".to_string(), PeerAddr::to_string);
        if self.links.set_closing(id) {
            out.disconnect(id, format!("{who}: {reason} (link {id})"));
        }
    }

    /// A link sent something unacceptable: adds to its score; at [`BAN_SCORE`] the link
    /// closes and, when its address is proven, the address is banned. Returns true when
    /// the link closes.
    pub fn misbehave(&mut self, id: PeerId, points: u32, reason: &str, now: Time, out: &mut Outbox) -> bool {
        let Some(l) = self.links.get_mut(id) else { return false };
        l.score = l.score.saturating_add(points);
        if l.score < BAN_SCORE {
            return false;
        }
        if let Some(addr) = l.addr.clone().filter(|_| l.verified) {
            self.book.ban(&addr, now + self.config.ban, now);
            out.emit(EventKind::Peer, || Event::Peer {
                address: addr,
                state: PeerState::Banned,
                reason: Some(format!("banned: {reason}")),
            });
        }
        self.close(id, &format!("misbehaved: {reason}"), out);
        true
    }

    /// Addresses worth sharing with `asker`: ready peers first, then others known good,
    /// never `asker`'s own; from [`AddrCache`], brought up to date first.
    pub fn shareable_addrs(&mut self, asker: PeerId) -> AddrList {
        self.refresh_addr_cache();
        let except = self.addr_of(asker).cloned();
        let cache = &mut self.addr_cache;
        let all = cache.shared.get_or_insert_with(|| cache.addrs.as_slice().into());
        AddrList::shared(all.clone(), except, MAX_ADDRS_PER_MESSAGE)
    }

    /// Brings [`AddrCache`] up to date: rebuilt after a change it cannot follow, else
    /// extended by the addresses added to the book since (they go last).
    fn refresh_addr_cache(&mut self) {
        let cache = &self.addr_cache;
        if !cache.valid || cache.book_changes != self.book.changes() || cache.book_seen > self.book.len() {
            let (addrs, ready) = self.build_addrs(None, ADDR_CACHE_LEN);
            self.addr_cache = AddrCache {
                valid: true,
                shared: None,
                addrs,
                ready,
                book_changes: self.book.changes(),
                book_seen: self.book.len(),
            };
            return;
        }
        let cache = &mut self.addr_cache;
        while let Some((addr, e)) = self.book.get_index(cache.book_seen) {
            cache.book_seen += 1;
            let full = cache.addrs.len() >= ADDR_CACHE_LEN;
            let mut ready = cache.addrs.iter().take(cache.ready.len());
            if !full && e.is_shareable() && !ready.any(|a| a == addr) {
                cache.addrs.push(addr.clone());
                cache.shared = None;
            }
        }
    }

    /// Up to `limit` addresses worth sharing as they are now, except `except`: ready peers
    /// in link order, then idle or dialling addresses that never failed, in book order.
    pub fn fresh_addrs(&self, except: Option<&PeerAddr>, limit: usize) -> Vec<PeerAddr> {
        self.build_addrs(except, limit).0
    }

    /// [`Peering::fresh_addrs`], with the links of the leading ready peers' addresses.
    fn build_addrs(&self, except: Option<&PeerAddr>, limit: usize) -> (Vec<PeerAddr>, Vec<PeerId>) {
        // The book holds each address once; only ready links need a set to skip in it.
        let mut ready: HashSet<&PeerAddr, KeyedBytesHash> = HashSet::with_hasher(self.book.hasher());
        let (mut out, mut ids) = (Vec::new(), Vec::new());
        for l in self.links.ready() {
            let Some(addr) = l.addr.as_ref() else { continue };
            if Some(addr) != except && ready.insert(addr) {
                out.push(addr.clone());
                ids.push(l.id);
            }
        }
        let good = self
            .book
            .iter()
            .filter(|(_, e)| e.is_shareable())
            .map(|(a, _)| a)
            .filter(|a| Some(*a) != except && !ready.contains(a));
        out.extend(good.take(limit.saturating_sub(out.len())).cloned());
        out.truncate(limit);
        ids.truncate(limit);
        (out, ids)
    }

    // ----- time -----------------------------------------------------------------------

    /// Due work: expired bans and backoffs, stale dials, handshake and silence timeouts,
    /// keep-alive pings, and new dials.
    pub fn on_timeout(&mut self, tip: TipInfo, now: Time, out: &mut Outbox) {
        let pinned_woke = self.book.expire(now);
        for addr in self.book.stale_dials(self.config.dial_timeout, now) {
            self.fail_addr(&addr, "dial timed out", now, out);
        }
        let (to_close, to_ping) = self.due_links(now);
        for (id, reason) in to_close {
            self.close(id, &reason, out);
        }
        for id in to_ping {
            let ping = Message::Ping {
                height: tip.height,
                work: WireWork::new(tip.work),
            };
            self.send(id, ping, now, out);
        }
        self.connect_more(now, out);
        if pinned_woke {
            self.dial_pinned_over_limit(now, out);
        }
    }

    /// While every outbound slot is taken, dials the pinned addresses that are due and
    /// unlinked, as many as there are outbound links to learned addresses to give way to
    /// them ([`Peering::make_room_for_pinned`] closes one as each comes up). An address the
    /// user gave that was down when gossip filled the slots gets its link once it is back,
    /// instead of waiting for a learned link to drop; a dial that fails costs no link. Asked
    /// when a pinned address's back-off ends, the only way one becomes due while the slots
    /// are full (a pinned link that closes frees its own slot, which `connect_more` fills
    /// with pinned addresses first).
    fn dial_pinned_over_limit(&mut self, now: Time, out: &mut Outbox) {
        if self.links.count(Direction::Outbound) < self.config.limits.max_outbound {
            return; // `connect_more` dials pinned addresses first
        }
        let due: Vec<PeerAddr> = self
            .book
            .pinned_due(now)
            .filter(|a| self.links.by_addr(a).is_none())
            .cloned()
            .collect();
        if due.is_empty() {
            return;
        }
        let room = self.learned_outbound().count().saturating_sub(self.book.dialing());
        for addr in due.into_iter().take(room) {
            self.dial(addr, now, out);
        }
    }

    /// Outbound links that are open (not closing): the table still counts a closing link
    /// until it is down.
    fn open_outbound(&self) -> impl Iterator<Item = &Link> {
        self.links
            .iter()
            .filter(|l| l.direction == Direction::Outbound && !l.is_closing())
    }

    /// Open outbound links to addresses that were learned, not pinned.
    fn learned_outbound(&self) -> impl Iterator<Item = &Link> {
        self.open_outbound()
            .filter(|l| !l.addr.as_ref().is_some_and(|a| self.book.is_pinned(a)))
    }

    /// A link to pinned address `addr` is up beyond the outbound limit: the newest outbound
    /// link to a learned address gives way (see [`Peering::dial_pinned_over_limit`]).
    fn make_room_for_pinned(&mut self, addr: &PeerAddr, out: &mut Outbox) {
        if !self.book.is_pinned(addr) || self.open_outbound().count() <= self.config.limits.max_outbound {
            return;
        }
        let newest = self.learned_outbound().map(|l| (l.opened, l.id)).max();
        if let Some((_, id)) = newest {
            self.close(id, &format!("giving way to configured peer {addr}"), out);
        }
    }

    /// Links to close (handshake or silence timed out) and links to ping, at `now`.
    fn due_links(&self, now: Time) -> (Vec<(PeerId, String)>, Vec<PeerId>) {
        let mut to_close = Vec::new();
        let mut to_ping = Vec::new();
        if !self.links_have_deadlines() {
            return (to_close, to_ping);
        }
        for l in self.links.iter().filter(|l| !l.is_closing()) {
            if !l.ready && l.opened + self.config.handshake_timeout <= now {
                to_close.push((l.id, "handshake timed out".to_string()));
            } else if let Some(k) = self.config.keepalive.filter(|_| l.ready) {
                if l.last_heard + k * 3 <= now {
                    to_close.push((l.id, format!("silent for {:?}", now.since(l.last_heard))));
                } else if l.last_sent + k <= now {
                    to_ping.push(l.id);
                }
            }
        }
        (to_close, to_ping)
    }

    /// The next time [`Peering::on_timeout`] has something to do.
    pub fn next_deadline(&self) -> Option<Time> {
        let book = self.book.next_due(self.config.dial_timeout);
        if !self.links_have_deadlines() {
            return book; // asked after every input: no walk over the links then
        }
        if self.config.keepalive.is_none() {
            // Only handshakes time out, and the table knows its oldest without a walk.
            let handshake = self
                .links
                .earliest_handshake()
                .map(|t| t + self.config.handshake_timeout);
            return book.into_iter().chain(handshake).min();
        }
        let links = self.links.iter().filter(|l| !l.is_closing()).filter_map(|l| {
            if !l.ready {
                return Some(l.opened + self.config.handshake_timeout);
            }
            let k = self.config.keepalive?;
            Some((l.last_sent + k).min(l.last_heard + k * 3))
        });
        book.into_iter().chain(links).min()
    }

    /// Whether any link may have a deadline: one in its handshake, or any with keep-alive
    /// on. Without keep-alive (a simulator's links never die silently) a connected node
    /// then has no link deadline at all, and nothing needs to walk its links for one.
    fn links_have_deadlines(&self) -> bool {
        debug_assert_eq!(
            self.links.handshaking(),
            self.links.iter().filter(|l| !l.ready && !l.is_closing()).count(),
            "the table's count of links in their handshake"
        );
        self.config.keepalive.is_some() || self.links.handshaking() > 0
    }

    // ----- views ----------------------------------------------------------------------

    /// Every known peer with its state, for `/peers`: addresses in the book, and links
    /// whose address is not in it.
    pub fn view(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self
            .book
            .iter()
            .map(|(addr, e)| {
                let link = self.links.by_addr(addr).filter(|l| !l.is_closing());
                let state = match (link, e.state) {
                    (Some(l), _) if l.ready => PeerState::Connected,
                    (Some(_), _) | (None, AddrState::Dialing(_)) => PeerState::Connecting,
                    (None, AddrState::Idle) => PeerState::Idle,
                    (None, AddrState::Backoff) => PeerState::Backoff,
                    (None, AddrState::Blocked) => PeerState::Blocked,
                    (None, AddrState::Banned) => PeerState::Banned,
                };
                PeerInfo {
                    address: addr.clone(),
                    state,
                    direction: link.map_or(Direction::Outbound, |l| l.direction),
                    height: link.map_or(0, |l| l.height),
                    work: link.map_or(Work(0), |l| l.work),
                    score: link.map_or(0, |l| l.score),
                    failures: e.failures,
                    pinned: e.pinned,
                    last_seen: link.map_or(e.last_seen, |l| l.last_heard).as_millis(),
                    link: link.map(|l| l.id),
                }
            })
            .collect();
        for l in self.ready_links() {
            let Some(addr) = &l.addr else { continue };
            if self.book.get(addr).is_none() {
                out.push(PeerInfo {
                    address: addr.clone(),
                    state: PeerState::Connected,
                    direction: l.direction,
                    height: l.height,
                    work: l.work,
                    score: l.score,
                    failures: 0,
                    pinned: false,
                    last_seen: l.last_heard.as_millis(),
                    link: Some(l.id),
                });
            }
        }
        out
    }
}

/// The address book's hash seed: derived from the node's secret, so as secret, but not
/// the secret itself (nothing learnt of one tells the other).
fn hash_seed(secret: &[u8; 16]) -> u64 {
    let mut data = secret.to_vec();
    data.extend_from_slice(b"address book");
    let digest = sha256(&data);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(seed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    fn a(s: &str) -> PeerAddr {
        s.parse().unwrap()
    }

    /// Peer `i`'s hello token (32 hex digits, as every node sends).
    fn tok(i: u64) -> String {
        format!("{i:032x}")
    }

    const TIP: TipInfo = TipInfo {
        height: 0,
        work: Work(0),
    };

    /// A node at 10.0.0.1:1 with `known` addresses 10.0.2.x:1 in its book.
    fn peering(known: u64) -> Peering {
        let mut p = Peering::new(PeeringConfig::new(a("10.0.0.1:1")), BlockHash::ZERO, [7; 16]);
        for i in 1..=known {
            p.book.add(&a(&format!("10.0.2.{i}:1")), false, usize::MAX, Time::ZERO);
        }
        p
    }

    /// Brings link `id` up and through its handshake with a peer listening at `addr`
    /// (dialled by us when `outbound`), whose hello carries `token`.
    fn ready(p: &mut Peering, id: u64, addr: &PeerAddr, outbound: bool, token: &str) {
        let dialled = outbound.then(|| addr.clone());
        p.on_link_up(PeerId(id), dialled, TIP, Time::ZERO, &mut Outbox::default());
        hello(p, id, addr, token);
    }

    /// The hello on link `id` of a peer listening at `addr`, carrying `token`.
    fn hello(p: &mut Peering, id: u64, addr: &PeerAddr, token: &str) {
        hello_sends(p, id, addr, token);
    }

    /// [`hello`], returning the messages it has the node send, with their links.
    fn hello_sends(p: &mut Peering, id: u64, addr: &PeerAddr, token: &str) -> Vec<(PeerId, Message)> {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            genesis: BlockHash::ZERO,
            listen: addr.clone(),
            height: 0,
            work: WireWork::new(Work(0)),
            agent: String::new(),
            token: LinkToken::parse(token),
        };
        let mut out = Outbox::default();
        p.on_hello(PeerId(id), hello, TIP, Time::ZERO, &mut out);
        std::iter::from_fn(|| out.pop())
            .filter_map(|o| match o {
                crate::output::Output::Send { to, msg } => Some((to, msg)),
                _ => None,
            })
            .collect()
    }

    /// Asserts that every link gets the answer a node building it afresh would give.
    fn assert_answers_fresh(p: &mut Peering) {
        let ids: Vec<PeerId> = p.links.iter().map(|l| l.id).chain([PeerId(u64::MAX)]).collect();
        for id in ids {
            let fresh = p.fresh_addrs(p.addr_of(id), MAX_ADDRS_PER_MESSAGE);
            assert_eq!(p.shareable_addrs(id), fresh, "answer to {id}");
        }
    }

    /// The links an `addr` message goes to while link `id` becomes ready with a peer at `addr`.
    fn addr_relayed_to(p: &mut Peering, id: u64, addr: &PeerAddr) -> Vec<PeerId> {
        p.on_link_up(PeerId(id), None, TIP, Time::ZERO, &mut Outbox::default());
        let sends = hello_sends(p, id, addr, &tok(id));
        let relayed = sends.into_iter().filter_map(|(to, msg)| match msg {
            Message::Addr { addrs } => Some((to, addrs)),
            _ => None,
        });
        relayed
            .map(|(to, addrs)| {
                assert_eq!(*addrs, vec![addr.clone()]);
                to
            })
            .collect()
    }

    /// The addresses `out` dials and the links it closes, in order.
    fn dials_and_closes(out: &mut Outbox) -> (Vec<PeerAddr>, Vec<PeerId>) {
        let (mut dials, mut closes) = (Vec::new(), Vec::new());
        while let Some(o) = out.pop() {
            match o {
                crate::output::Output::Connect { addr } => dials.push(addr),
                crate::output::Output::Disconnect { peer, .. } => closes.push(peer),
                _ => {}
            }
        }
        (dials, closes)
    }

    /// A node with room for two outbound links, pinned to `pinned`, which was down when it
    /// started (its dial failed), whose slots then filled with two learned addresses
    /// (links 1 and 2).
    fn slots_taken_while_pinned_was_down(pinned: &PeerAddr) -> Peering {
        let mut p = peering(0);
        p.config.limits.max_outbound = 2;
        let mut out = Outbox::default();
        p.add_pinned(vec![pinned.clone()], Time::ZERO, &mut out);
        assert_eq!(dials_and_closes(&mut out).0, vec![pinned.clone()]);
        p.on_dial_failed(pinned, "nobody listens", Time::ZERO, &mut out);
        p.add_shared(&vec![a("10.0.2.1:1"), a("10.0.2.2:1")].into(), Time::ZERO, &mut out);
        assert_eq!(dials_and_closes(&mut out).0, vec![a("10.0.2.1:1"), a("10.0.2.2:1")]);
        ready(&mut p, 1, &a("10.0.2.1:1"), true, &tok(1));
        ready(&mut p, 2, &a("10.0.2.2:1"), true, &tok(2));
        assert_eq!(p.links.count(Direction::Outbound), 2);
        p
    }

    #[test]
    fn a_pinned_address_back_up_takes_a_learned_links_slot() {
        let pinned = a("10.0.9.1:1");
        let mut p = slots_taken_while_pinned_was_down(&pinned);
        // Its retry comes due with every slot taken: it is dialled all the same.
        let retry = p.next_deadline().expect("the pinned address's retry");
        let mut out = Outbox::default();
        p.on_timeout(TIP, retry, &mut out);
        assert_eq!(dials_and_closes(&mut out).0, vec![pinned.clone()]);
        // Once its link is up, the newest learned link gives way: two outbound links again.
        p.on_link_up(PeerId(3), Some(pinned.clone()), TIP, retry, &mut out);
        let sends = hello_sends(&mut p, 3, &pinned, &tok(3));
        assert!(
            sends
                .iter()
                .any(|(to, m)| *to == PeerId(3) && matches!(m, Message::GetAddr))
        );
        let closed: Vec<PeerId> = p.links.iter().filter(|l| l.is_closing()).map(|l| l.id).collect();
        assert_eq!(closed, vec![PeerId(2)]);
        p.on_link_down(PeerId(2), "closed", retry, &mut out);
        assert_eq!(p.links.count(Direction::Outbound), 2);
        assert!(p.links.by_addr(&pinned).is_some_and(|l| l.is_usable()));
        // Nothing more to dial while the pinned link stands.
        p.on_timeout(TIP, retry + Duration::from_secs(60), &mut out);
        let (dials, _) = dials_and_closes(&mut out);
        assert!(dials.is_empty(), "{dials:?}");
    }

    #[test]
    fn a_pinned_address_still_down_costs_no_learned_link() {
        let pinned = a("10.0.9.1:1");
        let mut p = slots_taken_while_pinned_was_down(&pinned);
        let mut now = Time::ZERO;
        for _ in 0..5 {
            now = p
                .book
                .get(&pinned)
                .map(|e| e.retry_at)
                .expect("pinned addresses are kept");
            let mut out = Outbox::default();
            p.on_timeout(TIP, now, &mut out);
            let (dials, closes) = dials_and_closes(&mut out);
            assert_eq!((dials, closes), (vec![pinned.clone()], vec![]));
            p.on_dial_failed(&pinned, "nobody listens", now, &mut out);
            assert_eq!(dials_and_closes(&mut out), (vec![], vec![]));
        }
        assert!(now > Time::ZERO, "retried with back-off");
        assert_eq!(p.links.count(Direction::Outbound), 2);
        assert!(p.links.iter().all(|l| l.is_usable()));
    }

    #[test]
    fn pinned_links_alone_never_exceed_the_outbound_limit() {
        let mut p = peering(0);
        p.config.limits.max_outbound = 2;
        let pinned: Vec<PeerAddr> = (1..=3).map(|i| a(&format!("10.0.9.{i}:1"))).collect();
        let mut out = Outbox::default();
        p.add_pinned(pinned.clone(), Time::ZERO, &mut out);
        let dialled = dials_and_closes(&mut out).0;
        assert_eq!(dialled.len(), 2);
        for (i, addr) in dialled.iter().enumerate() {
            ready(&mut p, i as u64 + 1, addr, true, &tok(i as u64 + 1));
        }
        // The third is due, but no learned link can give way to it.
        p.on_timeout(TIP, Time::from_millis(60_000), &mut out);
        assert_eq!(dials_and_closes(&mut out), (vec![], vec![]));
        assert_eq!(p.links.count(Direction::Outbound), 2);
    }

    #[test]
    fn only_the_dialling_end_asks_for_addresses() {
        let asks = |outbound: bool| {
            let mut p = peering(0);
            let addr = a("10.0.1.1:1");
            let dialled = outbound.then(|| addr.clone());
            p.on_link_up(PeerId(1), dialled, TIP, Time::ZERO, &mut Outbox::default());
            let sends = hello_sends(&mut p, 1, &addr, &tok(1));
            sends.iter().filter(|(_, m)| matches!(m, Message::GetAddr)).count()
        };
        assert_eq!(asks(true), 1, "a link we dialled");
        assert_eq!(asks(false), 0, "a link dialled to us");
    }

    #[test]
    fn a_newcomer_is_announced_to_two_other_peers_the_same_two_for_its_address() {
        let mut p = peering(0);
        assert!(addr_relayed_to(&mut p, 1, &a("10.0.1.1:1")).is_empty(), "nobody else");
        assert_eq!(addr_relayed_to(&mut p, 2, &a("10.0.1.2:1")), vec![PeerId(1)]);
        for i in 3..=9 {
            ready(&mut p, i, &a(&format!("10.0.1.{i}:1")), false, &tok(i));
        }
        let newcomer = a("10.0.3.1:1");
        let to = addr_relayed_to(&mut p, 10, &newcomer);
        assert_eq!(to.len(), ADDR_RELAY_PEERS);
        assert!(!to.contains(&PeerId(10)), "not back to the newcomer");
        // Had it come on another link, the same two would hear of it.
        p.on_link_down(PeerId(10), "test", Time::ZERO, &mut Outbox::default());
        assert_eq!(addr_relayed_to(&mut p, 11, &newcomer), to);
        // Another address goes to its own two (which two is a keyed hash of the address).
        let others: std::collections::BTreeSet<Vec<PeerId>> = (2..40)
            .map(|i| addr_relayed_to(&mut p, 10 + i, &a(&format!("10.0.3.{i}:1"))))
            .collect();
        assert!(others.len() > 1, "every address went to the same peers: {others:?}");
    }

    #[test]
    fn without_keepalive_only_handshakes_give_links_deadlines() {
        let mut p = peering(0);
        p.config.keepalive = None;
        let opened = Time::from_millis(5);
        p.on_link_up(PeerId(1), None, TIP, opened, &mut Outbox::default());
        assert_eq!(p.next_deadline(), Some(opened + p.config.handshake_timeout));
        hello(&mut p, 1, &a("10.0.1.1:1"), &tok(1));
        assert_eq!(p.next_deadline(), None, "ready, and no keep-alive");
        p.config.keepalive = Some(Duration::from_secs(30));
        assert_eq!(p.next_deadline(), Some(Time::ZERO + Duration::from_secs(30)));
        // A link closing has no deadline either.
        p.config.keepalive = None;
        p.on_link_up(PeerId(2), None, TIP, opened, &mut Outbox::default());
        p.close(PeerId(2), "test", &mut Outbox::default());
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn shared_addresses_fill_the_book_to_its_limit_but_never_with_our_own() {
        let mut p = peering(0);
        p.config.limits.max_known = 3;
        let shared = |from: u64, to: u64| (from..to).map(|i| a(&format!("10.0.4.{i}:1"))).collect();
        let mut own: Vec<PeerAddr> = vec![a("10.0.0.1:1")];
        own.extend::<Vec<PeerAddr>>(shared(0, 2));
        p.add_shared(&own.into(), Time::ZERO, &mut Outbox::default());
        assert_eq!(p.book.len(), 2, "our own address left out");
        let more: Vec<PeerAddr> = shared(1, 9);
        p.add_shared(&more.into(), Time::ZERO, &mut Outbox::default());
        let known: Vec<String> = p.book.iter().map(|(a, _)| a.to_string()).collect();
        assert_eq!(known, ["10.0.4.0:1", "10.0.4.1:1", "10.0.4.2:1"]);
    }

    #[test]
    fn the_asker_is_left_out_and_the_answer_stays_full() {
        let mut p = peering(200);
        for i in 1..=3 {
            ready(&mut p, i, &a(&format!("10.0.1.{i}:1")), true, &tok(i));
        }
        let answer: Vec<PeerAddr> = p.shareable_addrs(PeerId(2)).iter().cloned().collect();
        assert_eq!(answer.len(), MAX_ADDRS_PER_MESSAGE);
        assert!(!answer.contains(&a("10.0.1.2:1")), "the asker's own address");
        assert_eq!(answer[..2], [a("10.0.1.1:1"), a("10.0.1.3:1")], "ready peers first");
        // Another asker, from the same cache (one list shared by both answers): the first
        // one's address is in its answer.
        let other_list = p.shareable_addrs(PeerId(1));
        let other: Vec<PeerAddr> = other_list.iter().cloned().collect();
        assert_eq!(other[..2], [a("10.0.1.2:1"), a("10.0.1.3:1")]);
        assert_eq!(other_list.len(), MAX_ADDRS_PER_MESSAGE);
        assert_answers_fresh(&mut p);
    }

    #[test]
    fn a_second_link_to_a_node_is_closed_and_a_malformed_token_matches_nothing() {
        let mut p = peering(0);
        ready(&mut p, 1, &a("10.0.3.1:1"), true, &tok(1));
        ready(&mut p, 2, &a("10.0.3.1:1"), false, &tok(1));
        assert_eq!(p.ready_ids().len(), 1, "the twin is closed");
        ready(&mut p, 3, &a("10.0.3.2:1"), true, "not a token");
        ready(&mut p, 4, &a("10.0.3.2:1"), false, "not a token");
        assert_eq!(p.ready_ids().len(), 3, "no token, no twin");
        let own = LinkToken::new(&[7; 16], Some(&a("10.0.0.1:1"))).to_hex();
        ready(&mut p, 5, &a("10.0.3.3:1"), false, &own);
        assert!(
            !p.is_ready(PeerId(5)),
            "a hello with this node's own token is from itself"
        );
    }

    #[test]
    fn the_cache_follows_what_it_can_and_is_rebuilt_after_the_rest() {
        let mut p = peering(5);
        ready(&mut p, 1, &a("10.0.2.3:1"), true, &tok(1));
        assert_answers_fresh(&mut p);
        let built = p.book.changes();
        // Followed without a rebuild: new addresses, new ready links (one of them an
        // address the book shares already, one a second link to a ready peer).
        for i in 6..=50 {
            p.book.add(&a(&format!("10.0.2.{i}:1")), false, usize::MAX, Time::ZERO);
        }
        ready(&mut p, 2, &a("10.0.2.40:1"), false, &tok(2));
        ready(&mut p, 3, &a("10.0.9.9:1"), false, &tok(3));
        ready(&mut p, 4, &a("10.0.2.3:1"), false, &tok(4));
        assert!(
            p.addr_cache.valid && p.book.changes() == built,
            "nothing forced a rebuild"
        );
        assert_answers_fresh(&mut p);
        // Rebuilt: a failure, a ready link going down.
        p.book.failed(
            &a("10.0.2.7:1"),
            &RetryPolicy::default(),
            Time::ZERO,
            Duration::from_secs(10),
        );
        assert_answers_fresh(&mut p);
        p.on_link_down(PeerId(1), "test", Time::ZERO, &mut Outbox::default());
        assert!(!p.addr_cache.valid);
        assert_answers_fresh(&mut p);
    }

    #[test]
    fn the_cache_answers_as_afresh_whatever_happens() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut p = peering(0);
        let mut next_id = 1;
        for _ in 0..20_000 {
            let addr = a(&format!("10.0.{}.{}:1", rng.u8(1..3), rng.u8(1..120)));
            match rng.u8(0..20) {
                0..=5 => {
                    p.book.add(&addr, false, 150, Time::ZERO);
                }
                6..=9 => {
                    let dialled = rng.bool().then(|| addr.clone());
                    p.on_link_up(PeerId(next_id), dialled, TIP, Time::ZERO, &mut Outbox::default());
                    next_id += 1;
                }
                10..=13 => {
                    // A handshake ends, on any link up: not necessarily in link order.
                    let waiting: Vec<PeerId> = p.links.iter().filter(|l| !l.ready).map(|l| l.id).collect();
                    if let Some(&id) = waiting.get(rng.usize(..waiting.len().max(1))) {
                        // Claims from few addresses: many links to one peer.
                        let claim = a(&format!("10.0.1.{}:1", rng.u8(1..12)));
                        hello(&mut p, id.0, &claim, &tok(u64::from(rng.u8(..60))));
                    }
                }
                14 => {
                    let ids: Vec<PeerId> = p.links.iter().map(|l| l.id).collect();
                    if let Some(&id) = ids.get(rng.usize(..ids.len().max(1))) {
                        p.on_link_down(id, "test", Time::ZERO, &mut Outbox::default());
                    }
                }
                15 => {
                    p.book
                        .failed(&addr, &RetryPolicy::default(), Time::ZERO, Duration::from_secs(10));
                }
                _ => {
                    let ids: Vec<PeerId> = p.links.iter().map(|l| l.id).collect();
                    let asker = ids.get(rng.usize(..ids.len().max(1))).copied().unwrap_or(PeerId(0));
                    let fresh = p.fresh_addrs(p.addr_of(asker), MAX_ADDRS_PER_MESSAGE);
                    assert_eq!(p.shareable_addrs(asker), fresh);
                }
            }
        }
        assert_answers_fresh(&mut p);
    }
}
