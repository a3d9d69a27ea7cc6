//! The node's own HTTP accept loop, with the limits a public server needs against slow
//! clients (see docs/SECURITY.md):
//!
//! - a **header timeout**: a connection that has not delivered a complete request head this
//!   long after it opened (or after its last answer, when kept alive) is closed;
//! - a **body timeout**: a request body that has not fully arrived this long after its head
//!   fails, and the request is answered 408 and its connection closed;
//! - a **connection limit**: at the limit a new connection is still accepted, and the one
//!   that has been waiting longest without a request in progress (a slowloris connection
//!   still sending its head, or an idle keep-alive one) is closed instead. A connection with a
//!   request in progress — including a long response such as `GET /events` or a streamed
//!   `GET /chain` — is never the one closed, and a connection upgraded to a peer link leaves
//!   this table (peer links are bounded by the peer slots). Only when every connection has a
//!   request in progress is the new one refused.
//!
//! Each connection runs on hyper's HTTP/1 server with upgrades enabled (`GET /p2p` takes the
//! connection over for the peer protocol).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tower::ServiceExt;

/// Limits on what HTTP clients may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Longest wait for a complete request head (also how long an idle connection stays).
    pub header_timeout: Duration,
    /// Longest wait for a request body, counted from its head.
    pub body_timeout: Duration,
    /// Most open HTTP connections (peer links not counted).
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            // Well under the usual limit of 1,024 open files, leaving room for peer links,
            // outbound dials and the store's files.
            max_connections: 256,
        }
    }
}

/// The request body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s of its head", .0.as_secs_f64())]
pub struct BodyTimeout(pub Duration);

/// Largest buffer hyper keeps per connection (a request head must fit in it): bounds what a
/// slow connection holds to 64 KiB instead of hyper's default of about 400 KiB.
const MAX_CONNECTION_BUFFER: usize = 64 * 1024;
/// How long connections get to finish their answers at shutdown. Short: the driver stops at
/// the same time, so a request still waiting for it gets 503 anyway, and an `/events` stream
/// never finishes by itself (without this bound it kept a stopping node alive for good).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed accept (e.g. out of file descriptors) so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `stop` turns true (or its sender is gone), then lets
/// open connections finish their answers for a few seconds and closes them.
pub async fn serve(listener: TcpListener, app: Router, limits: ServeLimits, stop: watch::Receiver<bool>) {
    let table = Table::new(limits.max_connections);
    let builder = http1_builder(&limits);
    let mut tasks = JoinSet::new();
    let mut accept_stop = stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = accept_stop.wait_for(|s| *s) => break,
            // Reap finished connections so the set does not grow with every one served.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some((id, evicted)) = table.admit() else {
            tracing::debug!(
                "connection refused: all {} have a request in progress",
                limits.max_connections
            );
            continue;
        };
        let conn = Connection {
            id,
            table: table.clone(),
            app: app.clone(),
            body_timeout: limits.body_timeout,
        };
        tasks.spawn(conn.run(tcp, builder.clone(), evicted, stop.clone()));
    }
    drop(listener);
    drain(tasks).await;
}

/// hyper's HTTP/1 server with the header timeout and the buffer bound.
fn http1_builder(limits: &ServeLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_CONNECTION_BUFFER);
    builder
}

/// Waits for the connections to finish their answers (each has `SHUTDOWN_GRACE` to do so
/// after the stop); whatever is still open then is closed when `tasks` drops.
async fn drain(mut tasks: JoinSet<()>) {
    let drained = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!("{} connections still open at shutdown; closing them", tasks.len());
    }
}

/// One accepted connection.
struct Connection {
    id: u64,
    table: Table,
    app: Router,
    body_timeout: Duration,
}

impl Connection {
    /// Serves the connection until the client is done, it is evicted, or the node stops.
    async fn run(
        self,
        tcp: TcpStream,
        builder: http1::Builder,
        evicted: oneshot::Receiver<()>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Peer links are long-lived connections carrying small frames: without NODELAY,
        // Nagle's algorithm and delayed ACKs hold each announcement back by ~40 ms.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let (id, table) = (self.id, self.table.clone());
        let service = hyper::service::service_fn(move |req| self.answer(req));
        let conn = builder.serve_connection(TokioIo::new(tcp), service).with_upgrades();
        tokio::pin!(conn);
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!("connection ended: {e}");
                }
            }
            // Dropping the connection closes the socket.
            _ = evicted => tracing::debug!("connection closed to make room for a new one"),
            () = stopping => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
            }
        }
        table.remove(id);
    }

    /// Runs one request through the app, marking the connection busy until its answer has
    /// been written in full.
    fn answer(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send + use<> {
        let busy = Busy::start(self.table.clone(), self.id);
        let app = self.app.clone();
        let req = req.map(|body| Body::new(Deadline::new(Body::new(body), self.body_timeout)));
        async move {
            let Ok(resp) = app.oneshot(req).await;
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                busy.upgraded();
            }
            Ok(resp.map(|inner| Body::new(Held { inner, _busy: busy })))
        }
    }
}

/// A request body that fails once its deadline has passed.
struct Deadline {
    inner: Body,
    limit: Duration,
    expires: Pin<Box<Sleep>>,
}

impl Deadline {
    /// `inner`, due within `limit` from now.
    fn new(inner: Body, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            expires: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.expires.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its connection marked busy until hyper drops it (written in
/// full, or the connection closed).
struct Held {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request in progress on a connection; the connection is idle again when it drops.
struct Busy {
    table: Table,
    id: u64,
}

impl Busy {
    fn start(table: Table, id: u64) -> Self {
        table.with(|t| t.request_started(id));
        Self { table, id }
    }

    /// The connection now belongs to the peer protocol: never evict it in the moment between
    /// the 101 answer and hyper handing it over.
    fn upgraded(&self) {
        self.table.with(|t| t.upgraded(self.id));
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.table.with(|t| t.request_finished(self.id));
    }
}

/// The connection table shared by the accept loop and the connections.
#[derive(Clone)]
struct Table(Arc<Mutex<Connections<oneshot::Sender<()>>>>);

impl Table {
    fn new(limit: usize) -> Self {
        Self(Arc::new(Mutex::new(Connections::new(limit))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connections<oneshot::Sender<()>>) -> T) -> T {
        // The table stays consistent even if a holder panicked: every change is one call.
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Admits a new connection, telling the one it replaces (if any) to close; `None` when
    /// the new connection must be refused.
    fn admit(&self) -> Option<(u64, oneshot::Receiver<()>)> {
        let (tx, rx) = oneshot::channel();
        match self.with(|t| t.admit(tx)) {
            Admission::Admitted { id, evicted } => {
                if let Some(victim) = evicted {
                    let _ = victim.send(());
                }
                Some((id, rx))
            }
            Admission::Refused => None,
        }
    }

    fn remove(&self, id: u64) {
        self.with(|t| t.remove(id));
    }
}

/// What happened to a new connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission<T> {
    /// It is in, under this id; `evicted` is the handle of the connection it replaces.
    Admitted {
        /// Its id.
        id: u64,
        /// The connection to close to make room.
        evicted: Option<T>,
    },
    /// Every connection has a request in progress: the new one is closed.
    Refused,
}

/// The eviction policy, apart from sockets so that it can be tested alone: which connections
/// are open, which have a request in progress, and since when the others have been waiting.
#[derive(Debug)]
pub(crate) struct Connections<T> {
    limit: usize,
    next_id: u64,
    /// A logical clock: each connection that becomes idle gets the next tick.
    clock: u64,
    open: BTreeMap<u64, Conn<T>>,
}

#[derive(Debug)]
struct Conn<T> {
    /// Requests in progress (more than one only while a pipelined answer is still written).
    busy: u32,
    /// Taken over by the peer protocol.
    upgraded: bool,
    /// When it last became idle (or opened), in ticks of `clock`.
    idle_since: u64,
    handle: T,
}

impl<T> Conn<T> {
    fn evictable(&self) -> bool {
        self.busy == 0 && !self.upgraded
    }
}

impl<T> Connections<T> {
    /// A table holding at most `limit` connections (at least one).
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            next_id: 0,
            clock: 0,
            open: BTreeMap::new(),
        }
    }

    /// Admits a new connection with `handle`; at the limit, evicts the one idle longest.
    pub(crate) fn admit(&mut self, handle: T) -> Admission<T> {
        let mut evicted = None;
        if self.open.len() >= self.limit {
            let Some(victim) = self.longest_idle() else {
                return Admission::Refused;
            };
            evicted = self.open.remove(&victim).map(|c| c.handle);
        }
        self.next_id += 1;
        let id = self.next_id;
        let idle_since = self.tick();
        self.open.insert(
            id,
            Conn {
                busy: 0,
                upgraded: false,
                idle_since,
                handle,
            },
        );
        Admission::Admitted { id, evicted }
    }

    /// The idle connection that has waited longest.
    fn longest_idle(&self) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, c)| c.evictable())
            .min_by_key(|(_, c)| c.idle_since)
            .map(|(id, _)| *id)
    }

    /// A complete request head arrived on `id`.
    pub(crate) fn request_started(&mut self, id: u64) {
        if let Some(c) = self.open.get_mut(&id) {
            c.busy += 1;
        }
    }

    /// The answer on `id` has been written (or abandoned).
    pub(crate) fn request_finished(&mut self, id: u64) {
        let now = self.tick();
        if let Some(c) = self.open.get_mut(&id) {
            c.busy = c.busy.saturating_sub(1);
            if c.busy == 0 {
                c.idle_since = now;
            }
        }
    }

    /// `id` switched to another protocol.
    pub(crate) fn upgraded(&mut self, id: u64) {
        if let Some(c) = self.open.get_mut(&id) {
            c.upgraded = true;
        }
    }

    /// `id` is closed.
    pub(crate) fn remove(&mut self, id: u64) {
        self.open.remove(&id);
    }

    /// Open connections.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn admit(t: &mut Connections<&'static str>, name: &'static str) -> (u64, Option<&'static str>) {
        match t.admit(name) {
            Admission::Admitted { id, evicted } => (id, evicted),
            Admission::Refused => panic!("{name} refused"),
        }
    }

    #[test]
    fn under_the_limit_nothing_is_evicted() {
        let mut t = Connections::new(3);
        for name in ["a", "b", "c"] {
            assert_eq!(admit(&mut t, name).1, None);
        }
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn at_the_limit_the_oldest_slow_connection_makes_room() {
        let mut t = Connections::new(3);
        admit(&mut t, "slow-1");
        admit(&mut t, "slow-2");
        admit(&mut t, "slow-3");
        // A flood of new connections: each one replaces the oldest still without a request,
        // so the limit holds and the newest (the honest client's) survives the longest.
        assert_eq!(admit(&mut t, "slow-4").1, Some("slow-1"));
        assert_eq!(admit(&mut t, "honest").1, Some("slow-2"));
        assert_eq!(admit(&mut t, "slow-5").1, Some("slow-3"));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_request_in_progress_is_never_evicted() {
        let mut t = Connections::new(2);
        let (streaming, _) = admit(&mut t, "events");
        t.request_started(streaming);
        admit(&mut t, "slow-1");
        assert_eq!(admit(&mut t, "slow-2").1, Some("slow-1"));
        assert_eq!(admit(&mut t, "slow-3").1, Some("slow-2"));
        // Once its answer ends it is idle, and newer in idleness than slow-3: it goes next.
        t.request_finished(streaming);
        assert_eq!(admit(&mut t, "slow-4").1, Some("slow-3"));
        assert_eq!(admit(&mut t, "slow-5").1, Some("events"));
    }

    #[test]
    fn an_upgraded_connection_is_never_evicted() {
        let mut t = Connections::new(2);
        let (link, _) = admit(&mut t, "peer-link");
        t.request_started(link);
        t.upgraded(link);
        t.request_finished(link);
        admit(&mut t, "slow-1");
        assert_eq!(admit(&mut t, "slow-2").1, Some("slow-1"));
        assert_eq!(admit(&mut t, "slow-3").1, Some("slow-2"));
    }

    #[test]
    fn when_every_connection_is_busy_the_new_one_is_refused() {
        let mut t = Connections::new(2);
        for name in ["a", "b"] {
            let (id, _) = admit(&mut t, name);
            t.request_started(id);
        }
        assert_eq!(t.admit("c"), Admission::Refused);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_keep_alive_connection_idle_longest_goes_first() {
        let mut t = Connections::new(2);
        let (first, _) = admit(&mut t, "first");
        let (second, _) = admit(&mut t, "second");
        // The older connection answers a request and is idle again: it is now the fresher.
        t.request_started(first);
        t.request_finished(first);
        assert_eq!(admit(&mut t, "third").1, Some("second"));
        t.remove(first);
        t.remove(second);
        assert_eq!(t.len(), 1);
    }

    /// A request carrying `body` behind a deadline of `limit`.
    fn due(body: Body, limit: Duration) -> axum::extract::Request {
        Request::builder().body(Body::new(Deadline::new(body, limit))).unwrap()
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
        use axum::extract::FromRequest;
        use axum::response::IntoResponse;
        let never = Body::from_stream(tokio_stream::pending::<Result<Bytes, std::io::Error>>());
        let rejection = Bytes::from_request(due(never, Duration::from_millis(20)), &())
            .await
            .unwrap_err();
        let resp = crate::api::ApiError::from(rejection).into_response();
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    }

    #[tokio::test]
    async fn a_body_in_time_passes_unchanged() {
        use axum::extract::FromRequest;
        let body = Bytes::from_request(due(Body::from("{}"), Duration::from_secs(60)), &())
            .await
            .unwrap();
        assert_eq!(&body[..], b"{}");
    }

    #[test]
    fn removing_an_evicted_or_unknown_connection_is_harmless() {
        let mut t: Connections<&str> = Connections::new(0);
        let (a, _) = admit(&mut t, "a");
        assert_eq!(admit(&mut t, "b").1, Some("a"));
        t.remove(a);
        t.request_finished(a);
        t.remove(99);
        assert_eq!(t.len(), 1);
    }
}
