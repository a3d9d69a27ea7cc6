//! Watching the network: which nodes exist, whether they answer, what their chains look
//! like, and what happens on them. Everything the page shows comes from here, pushed to
//! every open page as [`PageEvent`]s.
//!
//! Each watched node gets two tasks: a poller (`GET /status` every second with a short
//! timeout, `GET /peers` for discovery, `GET /blocks` when the tip moves) and a listener
//! on the node's `GET /events` stream. The listener reacts within milliseconds; the
//! poller is what notices a node that died without saying goodbye.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use chainsim_api::now_ms;
use chainsim_api::{BlockEvent, BlockView, PeerState, PeerView, ReorgEvent, StatusView, TxEvent};
use chainsim_primitives::{BlockHash, PeerAddr};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

use crate::client::{NodeClient, NodeError};
use crate::sse::{SseMessage, SseParser};
use crate::validate;

/// How many of each node's latest blocks the dashboard keeps (explorer and fork tree).
pub const RECENT_BLOCKS: u64 = 12;
const POLL_EVERY: Duration = Duration::from_secs(1);
const HEIGHT_SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// At least 15 minutes of height history (a sample every 2 s, and one at each change).
const HEIGHT_SAMPLES: usize = 600;
const ARRIVALS_KEPT: usize = 24;
const REORGS_KEPT: usize = 20;
/// Blocks this far below the best height leave the fork tree.
const TREE_DEPTH: u64 = 40;
const SSE_BACKOFF_MIN: Duration = Duration::from_millis(250);
const SSE_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A node found only through a peer list that never answered is dropped after this many
/// failed polls: peer lists can hold stale or unreachable addresses.
const DROP_NEVER_SEEN_AFTER: u32 = 3;

/// One message for the page's `GET /api/events` stream, serialised once for every page.
#[derive(Clone, Debug)]
pub struct PageEvent {
    /// The SSE `event:` name.
    pub kind: &'static str,
    /// The JSON `data:`.
    pub data: Arc<str>,
}

/// How the dashboard came to know a node; it decides whether an unreachable node stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Given on the command line: always shown, Offline if it does not answer.
    Seed,
    /// Found in another node's peer list.
    Discovered,
    /// A child process of `chainsim demo`, which the page may stop and start.
    Demo,
}

struct NodeEntry {
    origin: Origin,
    online: bool,
    ever_online: bool,
    failures: u32,
    status: Option<StatusView>,
    peers: Vec<PeerView>,
    blocks: Vec<BlockView>,
    blocks_tip: Option<BlockHash>,
    error: Option<String>,
    poke: Arc<Notify>,
    wake_events: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl NodeEntry {
    fn view(&self, address: &PeerAddr) -> Value {
        json!({
            "address": address,
            "online": self.online,
            "seen": self.ever_online,
            "managed": self.origin == Origin::Demo,
            "origin": match self.origin {
                Origin::Seed => "seed",
                Origin::Discovered => "peer",
                Origin::Demo => "demo",
            },
            "status": self.status,
            "peers": self.peers,
            "error": self.error,
        })
    }
}

/// A block of the fork tree, as the page draws it.
#[derive(Clone, Debug, Serialize)]
struct TreeBlock {
    hash: BlockHash,
    height: u64,
    previous_hash: BlockHash,
    timestamp: u64,
    txs: usize,
    /// Who the coinbase pays: the page counts each node's share of the best chain by it.
    miner: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Keyed by the parsed address, so `localhost:5000` and `127.0.0.1:5000` are one node.
    nodes: BTreeMap<PeerAddr, NodeEntry>,
    /// Block summaries by hash: the union of every node's recent blocks, for the fork tree.
    tree: HashMap<BlockHash, TreeBlock>,
    heights: VecDeque<Value>,
    arrivals: VecDeque<Value>,
    reorgs: VecDeque<Value>,
    reorg_seq: u64,
}

/// The shared state of one dashboard process.
pub struct Monitor {
    inner: Mutex<Inner>,
    events: broadcast::Sender<PageEvent>,
    client: NodeClient,
    shutdown: watch::Sender<bool>,
    demo: bool,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("demo", &self.demo).finish()
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic elsewhere must not take the whole dashboard down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn u64_field(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An event's data in its API shape; `None` (and a note in the log) when it is not.
fn event_data<T: DeserializeOwned>(address: &PeerAddr, msg: &SseMessage, data: &Value) -> Option<T> {
    let parsed = T::deserialize(data);
    if parsed.is_err() {
        tracing::debug!(node = %address, event = %msg.event, "event data not in the API's shape");
    }
    parsed.ok()
}

impl Monitor {
    /// A monitor watching nothing yet; `demo` tells the page to offer Stop/Start/Add.
    pub fn new(client: NodeClient, demo: bool) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            events,
            client,
            shutdown,
            demo,
        })
    }

    /// The HTTP client for nodes, shared with the action handlers.
    pub fn client(&self) -> &NodeClient {
        &self.client
    }

    /// Whether this dashboard runs inside `chainsim demo`.
    pub fn is_demo(&self) -> bool {
        self.demo
    }

    /// A receiver that turns `true` when the dashboard shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops every task and ends every page's event stream.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        let mut inner = lock(&self.inner);
        for node in inner.nodes.values_mut() {
            for t in node.tasks.drain(..) {
                t.abort();
            }
        }
    }

    /// Subscribes a page to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<PageEvent> {
        self.events.subscribe()
    }

    fn emit(&self, kind: &'static str, data: &Value) {
        // No page listening is the normal state between page loads.
        let _ = self.events.send(PageEvent {
            kind,
            data: Arc::from(data.to_string()),
        });
    }

    /// Whether `address` is watched.
    pub fn knows(&self, address: &PeerAddr) -> bool {
        lock(&self.inner).nodes.contains_key(address)
    }

    /// Every watched address, in order.
    pub fn addresses(&self) -> Vec<PeerAddr> {
        lock(&self.inner).nodes.keys().cloned().collect()
    }

    /// The watched node listening on `port`, for the original's `/mine/<port>` routes.
    pub fn find_by_port(&self, port: u16) -> Option<PeerAddr> {
        lock(&self.inner).nodes.keys().find(|a| a.port() == port).cloned()
    }

    /// Addresses of the nodes that answered their last poll.
    pub fn online_nodes(&self) -> Vec<PeerAddr> {
        lock(&self.inner)
            .nodes
            .iter()
            .filter(|(_, n)| n.online)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Asks the node's tasks to look again now (after an action changed something).
    pub fn poke(&self, address: &PeerAddr) {
        if let Some(n) = lock(&self.inner).nodes.get(address) {
            n.poke.notify_one();
            n.wake_events.notify_one();
        }
    }

    /// Everything a page needs to draw itself from scratch.
    pub fn snapshot(&self) -> Value {
        let inner = lock(&self.inner);
        let nodes: Vec<Value> = inner.nodes.iter().map(|(a, n)| n.view(a)).collect();
        let chains: Map<String, Value> = inner
            .nodes
            .iter()
            .map(|(a, n)| (a.to_string(), json!(n.blocks)))
            .collect();
        json!({
            "now": now_ms(),
            "demo": self.demo,
            "nodes": nodes,
            "chains": chains,
            "tree": inner.tree.values().collect::<Vec<_>>(),
            "heights": inner.heights,
            "arrivals": inner.arrivals,
            "reorgs": inner.reorgs,
        })
    }

    /// Starts watching `address` unless it is already watched; returns whether it was new.
    pub fn watch(self: &Arc<Self>, address: &PeerAddr, origin: Origin) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        let view = {
            let mut inner = lock(&self.inner);
            if let Some(existing) = inner.nodes.get_mut(address) {
                // A demo child that a peer list mentioned first is still the demo's.
                if origin != Origin::Discovered && existing.origin == Origin::Discovered {
                    existing.origin = origin;
                }
                return false;
            }
            if inner.nodes.len() >= validate::MAX_NODES {
                return false;
            }
            let poke = Arc::new(Notify::new());
            let wake_events = Arc::new(Notify::new());
            let tasks = vec![
                tokio::spawn(poll_loop(Arc::clone(self), address.clone(), Arc::clone(&poke))),
                tokio::spawn(events_loop(Arc::clone(self), address.clone(), Arc::clone(&wake_events))),
            ];
            let entry = NodeEntry {
                origin,
                online: false,
                ever_online: false,
                failures: 0,
                status: None,
                peers: Vec::new(),
                blocks: Vec::new(),
                blocks_tip: None,
                error: None,
                poke,
                wake_events,
                tasks,
            };
            let view = entry.view(address);
            inner.nodes.insert(address.clone(), entry);
            view
        };
        tracing::info!(node = %address, ?origin, "watching node");
        self.emit("node", &view);
        true
    }

    fn forget(&self, address: &PeerAddr) {
        let removed = lock(&self.inner).nodes.remove(address);
        if let Some(mut n) = removed {
            tracing::info!(node = %address, "forgetting a peer address that never answered");
            for t in n.tasks.drain(..) {
                t.abort();
            }
            self.emit("removed", &json!({ "address": address }));
        }
    }

    /// Records a poll result; returns `Some(height)` when the tip moved and the recent
    /// blocks must be fetched again.
    fn apply_status(&self, address: &PeerAddr, result: Result<StatusView, NodeError>) -> PollOutcome {
        let mut inner = lock(&self.inner);
        let Some(n) = inner.nodes.get_mut(address) else {
            return PollOutcome::Gone;
        };
        let before = n.view(address);
        let mut outcome = PollOutcome::Same;
        match result {
            Ok(status) => {
                let came_back = !n.online;
                n.online = true;
                n.ever_online = true;
                n.failures = 0;
                n.error = None;
                if n.blocks_tip != Some(status.tip) {
                    outcome = PollOutcome::TipMoved(status.height);
                }
                n.status = Some(status);
                if came_back {
                    n.wake_events.notify_one();
                }
            }
            Err(e) => {
                n.failures = n.failures.saturating_add(1);
                // A refused connection is certain; a slow answer on a busy machine, or a
                // kept-alive connection closed just as it was reused, is not: those need a
                // second failure in a row before the node is called Offline.
                let certain = matches!(e, NodeError::Unreachable(_));
                if certain || n.failures >= 2 {
                    n.online = false;
                    n.error = Some(e.to_string());
                }
                if n.origin == Origin::Discovered && !n.ever_online && n.failures >= DROP_NEVER_SEEN_AFTER {
                    outcome = PollOutcome::Forget;
                }
            }
        }
        let after = n.view(address);
        drop(inner);
        if before != after {
            self.emit("node", &after);
            let height = |v: &Value| (v["online"].clone(), v["status"]["height"].clone());
            if height(&before) != height(&after) {
                // A sample at each change, not only on the timer: a node that is stopped
                // a second after a block must still show that block on the chart.
                self.sample_heights();
            }
        }
        outcome
    }

    /// Records a node's peer list and starts watching every connected peer not yet known.
    fn apply_peers(self: &Arc<Self>, address: &PeerAddr, peers: Vec<PeerView>) {
        // Addresses arrive parsed (`PeerAddr`), so they compare equal to the seeds.
        let found: Vec<PeerAddr> = peers
            .iter()
            .filter(|p| p.state == PeerState::Connected)
            .map(|p| p.address.clone())
            .collect();
        let view = {
            let mut inner = lock(&self.inner);
            let Some(n) = inner.nodes.get_mut(address) else {
                return;
            };
            if n.peers == peers {
                None
            } else {
                n.peers = peers;
                Some(n.view(address))
            }
        };
        if let Some(v) = view {
            self.emit("node", &v);
        }
        for a in found {
            self.watch(&a, Origin::Discovered);
        }
    }

    fn apply_blocks(&self, address: &PeerAddr, tip: Option<BlockHash>, blocks: Vec<BlockView>) {
        let mut inner = lock(&self.inner);
        let Some(n) = inner.nodes.get_mut(address) else {
            return;
        };
        n.blocks_tip = tip;
        n.blocks = blocks.clone();
        for b in &blocks {
            let summary = TreeBlock {
                hash: b.hash,
                height: b.height,
                previous_hash: b.previous_hash,
                timestamp: b.timestamp,
                txs: b.transactions.len(),
                miner: b
                    .transactions
                    .first()
                    .filter(|t| t.sender == "0")
                    .map(|t| t.recipient.clone()),
            };
            inner.tree.insert(b.hash, summary);
        }
        let best = inner.tree.values().map(|b| b.height).max().unwrap_or(0);
        let floor = best.saturating_sub(TREE_DEPTH);
        inner.tree.retain(|_, b| b.height >= floor);
        drop(inner);
        self.emit("chain", &json!({ "node": address, "blocks": blocks }));
    }

    fn on_node_event(&self, address: &PeerAddr, msg: &SseMessage) {
        let Ok(data) = serde_json::from_str::<Value>(&msg.data) else {
            tracing::debug!(node = %address, event = %msg.event, "unparsable event data");
            return;
        };
        let at = now_ms();
        match msg.event.as_str() {
            "hello" => {
                if let Some(status) = event_data::<StatusView>(address, msg, &data) {
                    self.apply_status(address, Ok(status));
                }
                return;
            }
            "tx" => {
                let Some(tx) = event_data::<TxEvent>(address, msg, &data) else {
                    return;
                };
                let info = json!({ "sender": tx.sender, "recipient": tx.recipient, "amount": tx.amount });
                self.arrival("tx", &tx.txid.to_hex(), info, address, at);
            }
            "block" => {
                let Some(b) = event_data::<BlockEvent>(address, msg, &data) else {
                    return;
                };
                let info = json!({ "height": b.height, "txs": b.txs });
                self.arrival("block", &b.hash.to_hex(), info, address, at);
            }
            "reorg" => {
                let Some(r) = event_data::<ReorgEvent>(address, msg, &data) else {
                    return;
                };
                let record = {
                    let mut inner = lock(&self.inner);
                    inner.reorg_seq += 1;
                    let record = json!({
                        "id": inner.reorg_seq,
                        "node": address,
                        "at": at,
                        "fork_height": r.fork_height,
                        "disconnected": r.disconnected,
                        "connected": r.connected,
                        "returned": r.returned,
                    });
                    inner.reorgs.push_back(record.clone());
                    while inner.reorgs.len() > REORGS_KEPT {
                        inner.reorgs.pop_front();
                    }
                    record
                };
                self.emit("reorg", &record);
            }
            _ => {}
        }
        self.emit(
            "nodeevent",
            &json!({ "node": address, "kind": msg.event, "data": data, "at": at }),
        );
        self.poke(address);
    }

    /// Notes when a block or transaction reached a node, to show propagation delays.
    fn arrival(&self, kind: &str, id: &str, info: Value, address: &PeerAddr, at: u64) {
        let record = {
            let mut inner = lock(&self.inner);
            let pos = inner
                .arrivals
                .iter()
                .position(|r| str_field(r, "kind") == Some(kind) && str_field(r, "id") == Some(id));
            match pos {
                Some(i) => {
                    let Some(r) = inner.arrivals.get_mut(i) else {
                        return;
                    };
                    if let Some(Value::Object(seen)) = r.get_mut("at") {
                        if seen.contains_key(address.as_str()) {
                            return;
                        }
                        seen.insert(address.to_string(), json!(at));
                    }
                    if u64_field(r, "first_at").is_some_and(|f| at < f) {
                        r["first_at"] = json!(at);
                        r["first_node"] = json!(address);
                    }
                    r.clone()
                }
                None => {
                    let r = json!({
                        "kind": kind,
                        "id": id,
                        "info": info,
                        "first_at": at,
                        "first_node": address,
                        "at": { address.as_str(): at },
                    });
                    inner.arrivals.push_back(r.clone());
                    while inner.arrivals.len() > ARRIVALS_KEPT {
                        inner.arrivals.pop_front();
                    }
                    r
                }
            }
        };
        self.emit("arrival", &record);
    }

    fn sample_heights(&self) {
        let sample = {
            let mut inner = lock(&self.inner);
            let heights: Map<String, Value> = inner
                .nodes
                .iter()
                .map(|(a, n)| {
                    let h = n.status.as_ref().filter(|_| n.online).map(|s| s.height);
                    (a.to_string(), json!(h))
                })
                .collect();
            let sample = json!({ "t": now_ms(), "h": heights });
            inner.heights.push_back(sample.clone());
            while inner.heights.len() > HEIGHT_SAMPLES {
                inner.heights.pop_front();
            }
            sample
        };
        self.emit("heights", &sample);
    }

    /// Samples every node's height on a timer for the height chart.
    pub fn spawn_sampler(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let mut stop = self.shutdown_signal();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEIGHT_SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => me.sample_heights(),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }
}

enum PollOutcome {
    Same,
    TipMoved(u64),
    Forget,
    Gone,
}

async fn poll_loop(mon: Arc<Monitor>, address: PeerAddr, poke: Arc<Notify>) {
    let mut stop = mon.shutdown_signal();
    let mut round: u64 = 0;
    loop {
        let result = mon.client.status(&address).await;
        let online = result.is_ok();
        match mon.apply_status(&address, result) {
            PollOutcome::Gone => return,
            PollOutcome::Forget => {
                mon.forget(&address);
                return;
            }
            PollOutcome::TipMoved(height) => {
                let from = height.saturating_sub(RECENT_BLOCKS - 1);
                if let Ok(blocks) = mon.client.blocks(&address, from, RECENT_BLOCKS).await {
                    let tip = blocks.last().map(|b| b.hash);
                    mon.apply_blocks(&address, tip, blocks);
                }
            }
            PollOutcome::Same => {}
        }
        if online
            && round.is_multiple_of(2)
            && let Ok(peers) = mon.client.peers(&address).await
        {
            mon.apply_peers(&address, peers);
        }
        round = round.wrapping_add(1);
        let poked = tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => false,
            _ = poke.notified() => true,
            _ = stop.wait_for(|s| *s) => return,
        };
        if poked {
            // Events come in bursts (a block brings tip, block and tx removals): one
            // poll after the burst is enough.
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
    }
}

async fn events_loop(mon: Arc<Monitor>, address: PeerAddr, wake: Arc<Notify>) {
    let mut stop = mon.shutdown_signal();
    let mut backoff = SSE_BACKOFF_MIN;
    loop {
        if let Ok(resp) = mon.client.events(&address).await {
            backoff = SSE_BACKOFF_MIN;
            let mut parser = SseParser::new();
            let mut stream = resp.bytes_stream();
            loop {
                tokio::select! {
                    chunk = stream.next() => match chunk {
                        Some(Ok(bytes)) => {
                            for msg in parser.feed(&bytes) {
                                mon.on_node_event(&address, &msg);
                            }
                        }
                        _ => break,
                    },
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            // The stream ending usually means the node stopped: check at once.
            mon.poke(&address);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            // The poller saw the node come back: reconnect without waiting out the backoff.
            _ = wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(SSE_BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Arc<Monitor> {
        Monitor::new(NodeClient::new().expect("client"), false)
    }

    fn msg(event: &str, data: &str) -> SseMessage {
        SseMessage {
            event: event.into(),
            data: data.into(),
        }
    }

    fn addr(a: &str) -> PeerAddr {
        a.parse().expect("address")
    }

    /// A 64-hex-digit hash made of `byte`.
    fn h(byte: &str) -> String {
        byte.repeat(32)
    }

    #[tokio::test]
    async fn arrivals_record_first_seen_and_each_node_once() {
        let mon = monitor();
        let mut rx = mon.subscribe();
        let block = |mined_here: bool| {
            let data = json!({"kind": "block", "hash": h("ab"), "height": 1, "txs": 2, "mined_here": mined_here, "from_peer": null});
            msg("block", &data.to_string())
        };
        mon.on_node_event(&addr("127.0.0.1:1"), &block(true));
        // The same node named another way is the same node.
        mon.on_node_event(&addr("localhost:2"), &block(false));
        mon.on_node_event(&addr("127.0.0.1:2"), &block(false));
        let snap = mon.snapshot();
        let arrivals = snap["arrivals"].as_array().expect("array");
        assert_eq!(arrivals.len(), 1);
        assert_eq!(arrivals[0]["first_node"], "127.0.0.1:1");
        assert_eq!(arrivals[0]["at"].as_object().map(Map::len), Some(2));
        let mut kinds = Vec::new();
        while let Ok(e) = rx.try_recv() {
            kinds.push(e.kind);
        }
        assert_eq!(kinds, ["arrival", "nodeevent", "arrival", "nodeevent", "nodeevent"]);
    }

    #[tokio::test]
    async fn reorgs_are_kept_with_their_node() {
        let mon = monitor();
        let data = json!({"kind": "reorg", "fork_height": 2, "disconnected": [h("0a")], "connected": [h("0b"), h("0c")], "returned": [h("71")]});
        mon.on_node_event(&addr("127.0.0.1:1"), &msg("reorg", &data.to_string()));
        let snap = mon.snapshot();
        assert_eq!(snap["reorgs"][0]["node"], "127.0.0.1:1");
        assert_eq!(snap["reorgs"][0]["fork_height"], 2);
        assert_eq!(snap["reorgs"][0]["returned"][0], h("71"));
    }

    #[tokio::test]
    async fn garbage_events_are_ignored() {
        let mon = monitor();
        mon.on_node_event(&addr("127.0.0.1:1"), &msg("block", "not json"));
        mon.on_node_event(&addr("127.0.0.1:1"), &msg("block", r#"{"no_hash":1}"#));
        mon.on_node_event(&addr("127.0.0.1:1"), &msg("block", r#"{"hash":"ab","height":1}"#));
        assert_eq!(mon.snapshot()["arrivals"].as_array().map(Vec::len), Some(0));
    }
}
