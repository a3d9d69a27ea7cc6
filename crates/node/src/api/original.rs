//! The original's routes, with its shapes, so existing scripts keep working.

use std::io;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chainsim_api::{ChainAnswer, MineAnswer, NewTxAnswer, PendingAnswer, ResolveAnswer, TxView, now_ms};
use chainsim_core::PeerAddr;
use chainsim_core::node::{BlockRejected, TxRejected};
use chainsim_primitives::{Block, BlockHash, CompactTarget, Header, MerkleRoot, Signed, Transaction};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use super::AppState;
use super::error::{ApiError, parse_json};
use super::views::BlockRef;
use crate::driver::{Command, NodeHandle};

/// Largest amount a JSON float can carry exactly.
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

#[derive(Deserialize)]
struct NewTx {
    sender: Option<Value>,
    recipient: Option<Value>,
    amount: Option<Value>,
    time: Option<Value>,
}

/// A name field as text; its rules (and the trimming) are
/// [`Transaction::transfer`]'s, the same everywhere.
fn name(field: &str, v: Option<Value>) -> Result<String, ApiError> {
    match v {
        None | Some(Value::Null) => Err(ApiError::bad_request(format!("missing field: {field}"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be a string"))),
    }
}

/// An amount: a positive whole number that fits in 64 bits. Whole-valued floats (`10.0`)
/// and numeric strings (`"10"`, as HTML forms send) are accepted for old clients.
fn amount(v: Option<Value>) -> Result<u64, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("amount {why}"));
    let n = match v {
        None | Some(Value::Null) => return Err(ApiError::bad_request("missing field: amount")),
        Some(Value::Number(n)) => n,
        Some(Value::String(s)) => match s.trim().parse::<serde_json::Number>() {
            Ok(n) => n,
            Err(_) => return Err(bad("must be a number")),
        },
        Some(_) => return Err(bad("must be a number")),
    };
    if let Some(u) = n.as_u64() {
        return if u == 0 { Err(bad("must be at least 1")) } else { Ok(u) };
    }
    if n.as_i64().is_some() {
        return Err(bad("must be at least 1"));
    }
    match n.as_f64() {
        Some(f) if f.fract() != 0.0 => Err(bad("must be a whole number")),
        Some(f) if f < 1.0 => Err(bad("must be at least 1")),
        Some(f) if f <= MAX_EXACT_FLOAT => Ok(f as u64),
        _ => Err(bad("is too large (at most 18446744073709551615)")),
    }
}

/// The original's `time`: float seconds since the epoch. Absent means now.
fn timestamp(v: Option<Value>) -> Result<u64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(now_ms()),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(secs) if (0.0..1e13).contains(&secs) => Ok((secs * 1000.0).round() as u64),
            _ => Err(ApiError::bad_request(
                "time must be seconds since 1970 (a number from 0 to 10^13)",
            )),
        },
        Some(_) => Err(ApiError::bad_request("time must be a number of seconds")),
    }
}

/// `POST /transactions/new`.
pub async fn new_transaction(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: NewTx = parse_json(&body?)?;
    let (sender, recipient) = (name("sender", req.sender)?, name("recipient", req.recipient)?);
    let (amount, time) = (amount(req.amount)?, timestamp(req.time)?);
    let tx =
        Transaction::transfer(&sender, &recipient, amount, time).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if s.info.ledger == chainsim_core::LedgerKind::Accounts {
        return super::accounts::demo_transfer(&s, &tx.sender, &tx.recipient, amount, time).await;
    }
    submit(&s, tx).await
}

/// Hands a transaction to the node and answers as the original did: 201 when new, 200 when
/// known; refusals as `{"error": ...}` (409 for a conflict with a pending or confirmed
/// transaction, 400 for other rules, 503 when the mempool is full).
pub(crate) async fn submit(s: &AppState, tx: Transaction) -> Result<(StatusCode, Json<NewTxAnswer>), ApiError> {
    // A signature is checked here, on the server's threads, not on the node's one thread.
    let outcome = if tx.signed.is_some() {
        let tx = chainsim_core::ledger::VerifiedTx::verify(tx)
            .ok_or_else(|| ApiError::bad_request("refused (bad-signature): the signature does not verify"))?;
        s.handle
            .request(|reply| Command::SubmitVerifiedTx { tx, reply })
            .await?
    } else {
        s.handle.request(|reply| Command::SubmitTx { tx, reply }).await?
    };
    match outcome {
        Ok(o) if o.is_new => Ok((
            StatusCode::CREATED,
            Json(NewTxAnswer {
                message: "transaction accepted and sent to the network".to_owned(),
                txid: o.txid,
            }),
        )),
        Ok(o) => Ok((
            StatusCode::OK,
            Json(NewTxAnswer {
                message: "transaction already exists".to_owned(),
                txid: o.txid,
            }),
        )),
        Err(TxRejected::Malformed(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(TxRejected::MempoolFull(e)) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        Err(TxRejected::Ledger(le)) => {
            let status = if matches!(le.rule(), "conflict-in-mempool" | "nonce-conflict-chain") {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            let (rule, conflicts_with) = (le.rule(), le.conflicts_with());
            Err(ApiError::new(status, TxRejected::Ledger(le).to_string()).with_rule(rule, conflicts_with))
        }
    }
}

/// `GET /transactions/pending`.
pub async fn pending(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let txs: Vec<TxView> = s
        .handle
        .read(|n| n.mempool().iter_oldest().map(|(id, tx)| TxView::new(*id, tx)).collect())
        .await?;
    Ok(Json(PendingAnswer {
        message: format!("{} pending transactions", txs.len()),
        transactions: txs,
    }))
}

/// `GET|POST /mine`: mines one block and answers it once stored.
pub async fn mine(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    // Shutting down or a storage failure: either way the node cannot mine now.
    let entry = s
        .handle
        .request(|reply| Command::Mine { reply })
        .await?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(MineAnswer {
        block: entry.view(),
        message: "new block mined".to_owned(),
    }))
}

/// Blocks written per chunk of `GET /chain`.
const CHAIN_BATCH: usize = 50;

/// `GET /chain`: the whole best chain, `{"chain": [...], "length": N}`. The body is
/// streamed [`CHAIN_BATCH`] blocks at a time, so a long chain of full blocks never sits in
/// memory as one document; the bytes are the same as [`ChainAnswer`]'s serialisation.
pub async fn chain(State(s): State<AppState>) -> Result<Response, ApiError> {
    // The chain as it is now. Later batches look its blocks up by hash, so a reorganisation
    // while the answer streams cannot mix two branches into one answer.
    let hashes: Vec<BlockHash> = s.handle.read(|n| n.tree().active_hashes().to_vec()).await?;
    let length = hashes.len() as u64;
    let batches: Vec<Vec<BlockHash>> = hashes.chunks(CHAIN_BATCH).map(<[BlockHash]>::to_vec).collect();
    let handle = s.handle.clone();
    let blocks = tokio_stream::iter(batches.into_iter().enumerate()).then(move |(i, batch)| {
        let handle = handle.clone();
        async move { chain_chunk(&handle, i == 0, batch).await }
    });
    let head = tokio_stream::once(Ok(Bytes::from_static(ChainAnswer::STREAM_HEAD)));
    let tail = tokio_stream::once(Ok(Bytes::from(ChainAnswer::stream_tail(length))));
    let body = Body::from_stream(head.chain(blocks).chain(tail));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// One chunk of `GET /chain`: the blocks `batch` names, comma-separated (`first`: the
/// chunk that opens the list). A block gone from the tree meanwhile ends the answer with
/// an error rather than with a chain that does not link.
async fn chain_chunk(handle: &NodeHandle, first: bool, batch: Vec<BlockHash>) -> Result<Bytes, io::Error> {
    let refs = handle
        .read(move |n| {
            batch
                .iter()
                .map(|h| BlockRef::of(n.tree(), h))
                .collect::<Option<Vec<_>>>()
        })
        .await
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other("a block of the chain left the tree while it was being sent"))?;
    let mut out = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if !first || i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &r.view()).map_err(io::Error::other)?;
    }
    Ok(Bytes::from(out))
}

#[derive(Deserialize)]
struct Register {
    nodes: Option<Value>,
}

/// `POST /nodes/register`: `{"nodes": ["http://127.0.0.1:5001", "127.0.0.1:5002"]}`.
pub async fn register(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: Register = parse_json(&body?)?;
    let Some(Value::Array(items)) = req.nodes else {
        return Err(ApiError::bad_request(
            "Please supply a valid list of nodes: {\"nodes\": [\"HOST:PORT\", ...]}",
        ));
    };
    if items.is_empty() || items.len() > 100 {
        return Err(ApiError::bad_request("nodes must list 1 to 100 addresses"));
    }
    let mut addrs = Vec::new();
    for item in items {
        let Value::String(text) = item else {
            return Err(ApiError::bad_request(
                "each node must be a string like \"127.0.0.1:5001\"",
            ));
        };
        addrs.push(
            text.parse::<PeerAddr>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        );
    }
    let all = s.handle.request(|reply| Command::AddPeers { addrs, reply }).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "message": "New nodes have been added", "total_nodes": all })),
    ))
}

/// `GET /nodes/resolve`: syncs with every peer now and says whether the chain changed.
pub async fn resolve(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let before = s.handle.read(|n| n.tree().tip().hash).await?;
    s.handle.request(|reply| Command::Resync { reply }).await?;
    // Wait until the answers are in: nothing in flight and no download going on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let syncing = s.handle.read(|n| n.is_syncing()).await?;
        let inflight = s.handle.shared.inflight.load(std::sync::atomic::Ordering::Relaxed);
        if (!syncing && inflight == 0) || tokio::time::Instant::now() > deadline {
            break;
        }
    }
    let (after, length) = s.handle.read(|n| (n.tree().tip().hash, n.tree().height() + 1)).await?;
    let replaced = after != before;
    let message = if replaced {
        "Our chain was replaced"
    } else {
        "Our chain is authoritative"
    };
    Ok(Json(ResolveAnswer {
        length,
        message: message.to_owned(),
        replaced,
    }))
}

#[derive(Deserialize)]
struct TxInput {
    #[serde(default = "one")]
    version: u8,
    sender: String,
    recipient: String,
    amount: u64,
    timestamp: u64,
    #[serde(default, flatten)]
    signed: Option<Signed>,
}

fn one() -> u8 {
    1
}

#[derive(Deserialize)]
struct BlockInput {
    #[serde(default = "one_u32")]
    version: u32,
    height: u64,
    previous_hash: BlockHash,
    merkle_root: MerkleRoot,
    timestamp: u64,
    bits: String,
    nonce: u64,
    transactions: Vec<TxInput>,
}

fn one_u32() -> u32 {
    1
}

/// `POST /blocks/receive`: a block in the API's JSON shape, validated like a peer's.
pub async fn receive_block(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let b: BlockInput = parse_json(&body?)?;
    let bits = u32::from_str_radix(&b.bits, 16).map_err(|_| ApiError::bad_request("bits must be 8 hex digits"))?;
    let block = Block {
        header: Header {
            version: b.version,
            height: b.height,
            prev_hash: b.previous_hash,
            merkle_root: b.merkle_root,
            timestamp: b.timestamp,
            bits: CompactTarget(bits),
            nonce: b.nonce,
        },
        transactions: b
            .transactions
            .into_iter()
            .map(|t| Transaction {
                version: t.version,
                sender: t.sender,
                recipient: t.recipient,
                amount: t.amount,
                timestamp: t.timestamp,
                signed: t.signed,
            })
            .collect(),
    };
    match s.handle.request(|reply| Command::SubmitBlock { block, reply }).await? {
        Ok(o) => Ok(Json(
            json!({ "message": "block accepted", "hash": o.hash, "height": o.height }),
        )),
        Err(BlockRejected::Duplicate(h)) => Ok(Json(json!({ "message": "block already known", "hash": h }))),
        Err(e @ BlockRejected::UnknownParent(_)) => {
            Err(ApiError::new(StatusCode::CONFLICT, format!("{e}; needs full sync")))
        }
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        let ok = |v: Value| amount(Some(v)).unwrap();
        let err = |v: Value| amount(Some(v)).unwrap_err().message;
        assert_eq!(ok(json!(10)), 10);
        assert_eq!(ok(json!(10.0)), 10);
        assert_eq!(ok(json!("10")), 10);
        assert_eq!(ok(json!(u64::MAX)), u64::MAX);
        assert!(err(json!(0)).contains("at least 1"));
        assert!(err(json!(-5)).contains("at least 1"));
        assert!(err(json!(1.5)).contains("whole"));
        assert!(err(json!("abc")).contains("number"));
        assert!(err(json!(1e30)).contains("too large"));
        assert!(err(json!([1])).contains("number"));
        assert!(amount(None).unwrap_err().message.contains("missing"));
    }

    #[test]
    fn times() {
        assert_eq!(timestamp(Some(json!(1700000000.5))).unwrap(), 1_700_000_000_500);
        assert!(timestamp(Some(json!(-1))).is_err());
        assert!(timestamp(Some(json!("x"))).is_err());
        assert!(timestamp(None).unwrap() > 1_700_000_000_000);
    }
}
