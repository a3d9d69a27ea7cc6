//! Links with peers: the handshake, message dispatch, liveness, misbehaviour and bans,
//! and the operator's block list.

use chainsim_primitives::Transaction;

use crate::event::Event;
use crate::node::{BlockRejected, Node, Origin, PeerError, TICK_MS, TxRejected};
use crate::peers::{BAN_MS, BAN_SCORE, DROP_AFTER_FAILURES, Direction, PeerAddr, PeerState, REFUSED_MS, backoff_ms};
use crate::protocol::{
    Hello, MAX_ADDRS_PER_MESSAGE, MAX_BLOCKS_PER_MESSAGE, MAX_TXS_PER_MESSAGE, Message, PROTOCOL_VERSION, WireWork,
};
use crate::sync::MAX_LOCATOR;

/// How often connected peers are pinged, in milliseconds.
pub const PING_INTERVAL_MS: u64 = 5_000;
/// How long a handshake may take before it counts as a failure.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

impl Node {
    /// Our handshake message.
    pub fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            genesis: self.params.genesis_hash(),
            listen: self.config.listen.clone(),
            height: self.tree.height(),
            work: WireWork(self.tree.tip().chain_work),
            agent: self.config.agent.clone(),
        }
    }

    /// Adds a peer to contact (command line, `/nodes/register`). Pinned peers are retried
    /// forever instead of being forgotten after repeated failures.
    pub fn add_peer(&mut self, addr: PeerAddr, pinned: bool, now: u64) -> bool {
        if addr == self.config.listen {
            return false;
        }
        let is_new = self.peers.get(&addr).is_none();
        let p = self.peers.entry(&addr, now);
        p.pinned |= pinned;
        if matches!(p.state, PeerState::Backoff) && pinned {
            // Registering by hand means "try now".
            p.state = PeerState::Idle;
            p.retry_at = now;
        }
        if is_new {
            self.connect_idle_peers(now);
        }
        is_new
    }

    /// Cuts the link with `addr` both ways until [`Node::unblock_peer`].
    pub fn block_peer(&mut self, addr: PeerAddr, now: u64) {
        let p = self.peers.entry(&addr, now);
        p.state = PeerState::Blocked;
        if self.sync.as_ref().is_some_and(|s| s.peer == addr) {
            self.sync = None;
        }
        self.emit(Event::Peer {
            address: addr,
            state: PeerState::Blocked,
            reason: Some("blocked by the operator".into()),
        });
        self.maybe_start_sync(now);
    }

    /// Allows the link with `addr` again and contacts it now. Returns false when the
    /// address was not blocked.
    pub fn unblock_peer(&mut self, addr: &PeerAddr, now: u64) -> bool {
        let Some(p) = self.peers.get_mut(addr) else {
            return false;
        };
        if p.state != PeerState::Blocked {
            return false;
        }
        p.state = PeerState::Idle;
        p.failures = 0;
        p.retry_at = now;
        p.pinned = true;
        self.emit(Event::Peer {
            address: addr.clone(),
            state: PeerState::Idle,
            reason: Some("unblocked by the operator".into()),
        });
        self.connect_idle_peers(now);
        true
    }

    /// Handles one message from `from` and returns the direct replies (carried back in the
    /// same exchange). Refusals come back as errors for the transport to report.
    pub fn handle_message(&mut self, from: &PeerAddr, msg: Message, now: u64) -> Result<Vec<Message>, PeerError> {
        self.stats.messages_in += 1;
        if let Some(p) = self.peers.get(from) {
            match p.state {
                PeerState::Blocked => return Err(PeerError::Blocked(from.clone())),
                PeerState::Banned if now < p.retry_at => return Err(PeerError::Banned(from.clone())),
                _ => {}
            }
        }
        if let Message::Hello(hello) = msg {
            return self.on_hello(from, hello, now);
        }
        // A peer we are saying hello to may answer and start talking before its answer is
        // processed here (the two travel separately): it accepted us, so listen.
        if !self
            .peers
            .get(from)
            .is_some_and(|p| matches!(p.state, PeerState::Connected | PeerState::Connecting))
        {
            return Err(PeerError::NotConnected(from.clone()));
        }
        if let Some(p) = self.peers.get_mut(from) {
            p.last_seen = now;
            p.failures = 0;
        }
        match msg {
            Message::Hello(_) => Ok(Vec::new()),
            Message::Ping { height, work } => {
                if let Some(p) = self.peers.get_mut(from) {
                    if work.0 > p.work {
                        p.sync_failed = false;
                    }
                    p.height = height;
                    p.work = work.0;
                }
                self.maybe_start_sync(now);
                Ok(Vec::new())
            }
            Message::GetAddr => Ok(vec![Message::Addr {
                addrs: self.shareable_addrs(from),
            }]),
            Message::Addr { addrs } => {
                if addrs.len() > MAX_ADDRS_PER_MESSAGE {
                    return Err(self.violation(from, 20, "too many addresses in one message", now));
                }
                for addr in addrs {
                    if self.peers.len() < self.config.peer_limits.max_known {
                        self.add_peer(addr, false, now);
                    }
                }
                Ok(Vec::new())
            }
            Message::Txs { txs } => {
                if txs.len() > MAX_TXS_PER_MESSAGE {
                    return Err(self.violation(from, 20, "too many transactions in one message", now));
                }
                self.on_txs(from, txs, now)
            }
            Message::Block { block } => {
                let block = block.0;
                match self.accept_block(block.clone(), Origin::Peer(from.clone()), true, now) {
                    Ok(_) | Err(BlockRejected::Duplicate(_)) => Ok(Vec::new()),
                    Err(BlockRejected::UnknownParent(_)) => {
                        self.on_orphan(from, block, now);
                        Ok(Vec::new())
                    }
                    Err(BlockRejected::Invalid(e)) => {
                        // A block from the future may become valid: a small penalty only.
                        let points = if e.rule() == "time-too-new" { 10 } else { 50 };
                        let reason = format!("sent an invalid block ({}): {e}", e.rule());
                        Err(self.violation(from, points, &reason, now))
                    }
                }
            }
            Message::GetBlocks { locator, limit } => {
                if locator.len() > MAX_LOCATOR {
                    return Err(self.violation(from, 20, "block locator too long", now));
                }
                Ok(vec![self.serve_blocks(&locator, limit)])
            }
            Message::Blocks { blocks, tip_height } => {
                if blocks.len() > MAX_BLOCKS_PER_MESSAGE {
                    return Err(self.violation(from, 50, "too many blocks in one message", now));
                }
                self.on_blocks(from, blocks.into_iter().map(|b| b.0).collect(), tip_height, now);
                Ok(Vec::new())
            }
        }
    }

    fn on_txs(&mut self, from: &PeerAddr, txs: Vec<Transaction>, now: u64) -> Result<Vec<Message>, PeerError> {
        let origin = Origin::Peer(from.clone());
        let mut malformed = 0;
        for tx in txs {
            match self.accept_tx(tx, &origin) {
                Ok(_) | Err(TxRejected::MempoolFull(_)) => {}
                Err(TxRejected::Malformed(_)) => malformed += 1,
            }
        }
        if malformed > 0 {
            let reason = format!("sent {malformed} malformed transactions");
            return Err(self.violation(from, 10 * malformed.min(10), &reason, now));
        }
        Ok(Vec::new())
    }

    fn on_hello(&mut self, from: &PeerAddr, hello: Hello, now: u64) -> Result<Vec<Message>, PeerError> {
        let refusal = if hello.version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {} is not ours ({PROTOCOL_VERSION})",
                hello.version
            ))
        } else if hello.genesis != self.params.genesis_hash() {
            Some(format!(
                "peer is on another network: genesis {}, ours {}",
                hello.genesis,
                self.params.genesis_hash()
            ))
        } else if &hello.listen != from {
            Some(format!(
                "hello says it listens at {} but came from {from}",
                hello.listen
            ))
        } else if hello.listen == self.config.listen {
            Some("that is this node itself".to_string())
        } else {
            None
        };
        if let Some(reason) = refusal {
            let p = self.peers.entry(from, now);
            p.state = PeerState::Banned;
            p.retry_at = now + REFUSED_MS;
            self.emit(Event::Peer {
                address: from.clone(),
                state: PeerState::Banned,
                reason: Some(reason.clone()),
            });
            if self.sync.as_ref().is_some_and(|s| &s.peer == from) {
                self.sync = None;
            }
            return Err(PeerError::Refused(reason));
        }
        let our_listen = self.config.listen.clone();
        let was = self.peers.get(from).map(|p| (p.state, p.direction));
        // A hello while ours is in flight is their answer (or a simultaneous open): no reply.
        let answering = !matches!(was, Some((PeerState::Connecting, _)));
        if answering
            && !matches!(was, Some((PeerState::Connected, _)))
            && self.peers.count_active(Direction::Inbound) >= self.config.peer_limits.max_inbound
        {
            return Err(PeerError::Refused(format!("{our_listen} has too many inbound peers")));
        }
        let p = self.peers.entry(from, now);
        let newly_connected = p.state != PeerState::Connected;
        if answering && newly_connected {
            p.direction = Direction::Inbound;
        }
        p.state = PeerState::Connected;
        p.height = hello.height;
        if hello.work.0 > p.work {
            p.sync_failed = false;
        }
        p.work = hello.work.0;
        p.last_seen = now;
        p.failures = 0;
        if newly_connected {
            self.emit(Event::Peer {
                address: from.clone(),
                state: PeerState::Connected,
                reason: None,
            });
            self.send(from.clone(), Message::GetAddr);
            self.announce_addr(from);
            // Hand a new (or returning) peer our pending transactions. Relaying happens only
            // when a transaction is first accepted, so without this a relay lost to a failed
            // request, or made while the link was down, would never reach that peer: the
            // link's re-handshake after the failure is what retries it.
            let pending: Vec<Transaction> = self.mempool.iter_oldest().map(|(_, tx)| tx.clone()).collect();
            for chunk in pending.chunks(MAX_TXS_PER_MESSAGE) {
                self.send(from.clone(), Message::Txs { txs: chunk.to_vec() });
            }
        }
        self.maybe_start_sync(now);
        Ok(if answering {
            vec![Message::Hello(self.hello())]
        } else {
            Vec::new()
        })
    }

    /// A message we sent arrived (its replies, if any, come through `handle_message`).
    pub fn handle_delivered(&mut self, to: &PeerAddr, now: u64) {
        if let Some(p) = self.peers.get_mut(to)
            && p.state == PeerState::Connected
        {
            p.failures = 0;
            p.last_seen = now;
        }
    }

    /// A message we sent did not arrive or was refused.
    pub fn handle_send_failed(&mut self, to: &PeerAddr, reason: &str, now: u64) {
        if self.sync.as_ref().is_some_and(|s| &s.peer == to) {
            self.sync = None;
            self.maybe_start_sync(now);
        }
        self.fail_peer(to, reason, now);
    }

    /// The peer answered that it has no handshake with us (it restarted and forgot us):
    /// say hello again at once instead of backing off.
    pub fn handle_handshake_lost(&mut self, to: &PeerAddr, now: u64) {
        let Some(p) = self.peers.get_mut(to) else { return };
        if matches!(p.state, PeerState::Blocked | PeerState::Banned | PeerState::Connecting) {
            return;
        }
        // A peer that keeps forgetting us must not drive a hot loop of hellos: at most one
        // immediate re-handshake a second, ordinary backoff beyond that.
        if p.connecting_since != 0 && now.saturating_sub(p.connecting_since) < 1_000 {
            self.fail_peer(to, "handshake lost again within a second", now);
            return;
        }
        // Re-handshake on the existing link right away, whatever the outbound slots say: it
        // is the same link, not a new one.
        p.state = PeerState::Connecting;
        p.connecting_since = now;
        if self.sync.as_ref().is_some_and(|s| &s.peer == to) {
            self.sync = None;
        }
        self.send(to.clone(), Message::Hello(self.hello()));
    }

    /// Puts a peer into backoff, or forgets it after too many failures.
    pub(crate) fn fail_peer(&mut self, addr: &PeerAddr, reason: &str, now: u64) {
        let Some(p) = self.peers.get_mut(addr) else { return };
        if matches!(p.state, PeerState::Blocked | PeerState::Banned) {
            return;
        }
        let was_connected = p.state == PeerState::Connected;
        p.failures += 1;
        if !p.pinned && p.failures >= DROP_AFTER_FAILURES {
            self.peers.remove(addr);
            self.emit(Event::Peer {
                address: addr.clone(),
                state: PeerState::Idle,
                reason: Some(format!("forgotten after repeated failures: {reason}")),
            });
            return;
        }
        p.state = PeerState::Backoff;
        p.retry_at = now + backoff_ms(p.failures);
        if was_connected {
            self.emit(Event::Peer {
                address: addr.clone(),
                state: PeerState::Backoff,
                reason: Some(reason.to_string()),
            });
        }
        if self.sync.as_ref().is_some_and(|s| &s.peer == addr) {
            self.sync = None;
        }
    }

    /// A peer sent something unacceptable: adds to its score, bans it at [`BAN_SCORE`].
    pub fn misbehave(&mut self, addr: &PeerAddr, points: u32, reason: &str, now: u64) {
        let p = self.peers.entry(addr, now);
        p.score = p.score.saturating_add(points);
        if p.score < BAN_SCORE {
            return;
        }
        p.state = PeerState::Banned;
        p.retry_at = now + BAN_MS;
        p.score = 0;
        if self.sync.as_ref().is_some_and(|s| &s.peer == addr) {
            self.sync = None;
        }
        self.emit(Event::Peer {
            address: addr.clone(),
            state: PeerState::Banned,
            reason: Some(format!("banned: {reason}")),
        });
        self.maybe_start_sync(now);
    }

    fn violation(&mut self, from: &PeerAddr, points: u32, reason: &str, now: u64) -> PeerError {
        self.misbehave(from, points, reason, now);
        PeerError::Invalid(reason.to_string())
    }

    /// Timers: retries, handshake timeouts, pings, ban expiry, sync stalls.
    pub fn handle_timeout(&mut self, now: u64) {
        // Everything below is due-time driven and idempotent, so an early call is harmless
        // and a late one catches up; `next_tick` only tells the caller when to come back.
        self.next_tick = now + TICK_MS;
        let mut expired = Vec::new();
        for p in self.peers.iter_mut() {
            match p.state {
                PeerState::Banned | PeerState::Backoff if now >= p.retry_at => {
                    p.state = PeerState::Idle;
                    p.score = 0;
                }
                PeerState::Connecting if now.saturating_sub(p.connecting_since) > CONNECT_TIMEOUT_MS => {
                    expired.push(p.address.clone());
                }
                _ => {}
            }
        }
        for addr in expired {
            self.fail_peer(&addr, "handshake timed out", now);
        }
        self.connect_idle_peers(now);
        if now >= self.next_ping {
            self.next_ping = now + PING_INTERVAL_MS;
            let ping = Message::Ping {
                height: self.tree.height(),
                work: WireWork(self.tree.tip().chain_work),
            };
            for peer in self.peers.connected() {
                self.send(peer, ping.clone());
            }
        }
        self.check_sync_stall(now);
        self.maybe_start_sync(now);
    }

    /// Opens links to idle peers while outbound slots are free, in a seeded random order.
    pub(crate) fn connect_idle_peers(&mut self, now: u64) {
        let free = self
            .config
            .peer_limits
            .max_outbound
            .saturating_sub(self.peers.count_active(Direction::Outbound));
        if free == 0 {
            return;
        }
        let mut candidates: Vec<PeerAddr> = self
            .peers
            .iter()
            .filter(|p| p.state == PeerState::Idle && p.retry_at <= now)
            .map(|p| p.address.clone())
            .collect();
        self.rng.shuffle(&mut candidates);
        // Configured peers first: they are how the operator expects the node to join.
        candidates.sort_by_key(|a| !self.peers.get(a).is_some_and(|p| p.pinned));
        let hello = Message::Hello(self.hello());
        for addr in candidates.into_iter().take(free) {
            if let Some(p) = self.peers.get_mut(&addr) {
                p.state = PeerState::Connecting;
                p.direction = Direction::Outbound;
                p.connecting_since = now;
            }
            self.send(addr, hello.clone());
        }
    }
}
