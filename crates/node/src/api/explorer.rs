//! chainsim's own read routes and peer controls: status, blocks, transactions, peers.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chainsim_api::{
    BlocksPage, Confirmation, PeerView, PeersAnswer, ProofView, StatusView, TxLookup, TxStatus, TxView,
};
use chainsim_core::peers::PeerInfo;
use chainsim_core::{LinkConditions, Node, PeerAddr};
use chainsim_primitives::{BlockHash, MerkleProof, Txid};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, parse_json};
use super::views::{BlockRef, link_view, mining_view};
use crate::driver::Command;

/// Most blocks one `GET /blocks` answers.
const MAX_BLOCKS_PAGE: u64 = 1_000;

/// The status, shared by `GET /status` and the first SSE event.
pub fn status_view(n: &Node, s: &AppState) -> StatusView {
    let tip = n.tree().tip();
    StatusView {
        address: n.config().listen().clone(),
        blocks_mined: n.stats().blocks_mined,
        deepest_reorg: n.metrics().deepest_reorg,
        genesis: n.params().genesis_hash(),
        height: n.tree().height(),
        host: s.info.host.clone(),
        known_peers: n.peers().len() as u64,
        length: n.tree().height() + 1,
        miner: n.config().miner.clone(),
        mining: s.handle.shared.mining.load(Ordering::Relaxed),
        mining_schedule: mining_view(n.mining_schedule()),
        network: n.params().name.to_owned(),
        orphans: n.orphan_count() as u64,
        peers: n.peers().connected().len() as u64,
        pending: n.mempool().len() as u64,
        port: s.info.port,
        propagation_median_ms: n.metrics().median_propagation_ms(),
        reorgs: n.stats().reorgs,
        side_blocks: n.tree().side_count() as u64,
        stale_blocks: n.metrics().stale_blocks,
        syncing: n.sync_peer().is_some(),
        tip: tip.hash,
        tip_time: tip.header().timestamp,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        work: tip.chain_work.0.to_string(),
    }
}

/// A peer as `GET /peers` shows it, with the conditions of its link: the one place that
/// reads the core's peer record.
pub fn peer_view(p: &PeerInfo, link: &LinkConditions) -> PeerView {
    PeerView {
        address: p.address.clone(),
        direction: p.direction,
        failures: p.failures,
        height: p.height,
        last_seen: p.last_seen,
        link: link_view(link),
        pinned: p.pinned,
        score: p.score,
        state: p.state,
    }
}

/// `GET /status`.
pub async fn status(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let st = s.clone();
    Ok(Json(s.handle.read(move |n| status_view(n, &st)).await?))
}

/// `GET /blocks/{hash or height}`.
pub async fn block(State(s): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let found = if id.len() == 64 {
        let hash: BlockHash = id
            .parse()
            .map_err(|_| ApiError::bad_request("block hash must be 64 hex digits"))?;
        s.handle.read(move |n| BlockRef::of(n.tree(), &hash)).await?
    } else {
        let height: u64 = id
            .parse()
            .map_err(|_| ApiError::bad_request("expected a block height or a 64-hex-digit block hash"))?;
        s.handle
            .read(move |n| n.tree().at_height(height).and_then(|e| BlockRef::of(n.tree(), &e.hash)))
            .await?
    };
    let b = found.ok_or_else(|| ApiError::not_found(format!("no block {id}")))?;
    Ok(Json(b.view()))
}

/// Query of `GET /blocks`; numbers are parsed by hand for clear errors.
#[derive(Deserialize)]
pub struct Page {
    from: Option<String>,
    limit: Option<String>,
}

fn number(name: &str, v: Option<String>, default: u64) -> Result<u64, ApiError> {
    v.map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| ApiError::bad_request(format!("{name} must be a whole number ≥ 0")))
    })
}

/// `GET /blocks?from=H&limit=N`: a page of the best chain.
pub async fn blocks(State(s): State<AppState>, Query(p): Query<Page>) -> Result<impl IntoResponse, ApiError> {
    let from = number("from", p.from, 0)?;
    let limit = number("limit", p.limit, 100)?.min(MAX_BLOCKS_PAGE);
    let refs: Vec<BlockRef> = s
        .handle
        .read(move |n| {
            (from..from.saturating_add(limit))
                .map_while(|h| n.tree().at_height(h).and_then(|e| BlockRef::of(n.tree(), &e.hash)))
                .collect()
        })
        .await?;
    Ok(Json(BlocksPage {
        blocks: refs.iter().map(BlockRef::view).collect(),
    }))
}

/// `GET /transactions/{txid}`: pending, or confirmed with its block and Merkle proof.
pub async fn transaction(State(s): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let txid: Txid = id
        .parse()
        .map_err(|_| ApiError::bad_request("txid must be 64 hex digits"))?;
    let found = s
        .handle
        .read(move |n| {
            if let Some(tx) = n.mempool().get(&txid) {
                return Some(TxLookup {
                    confirmed: None,
                    status: TxStatus::Pending,
                    transaction: TxView::new(txid, tx),
                });
            }
            let (entry, index) = n.tree().find_tx(&txid)?;
            let block = n.tree().block(&entry.hash)?;
            let tx = block.transactions.get(index as usize)?;
            let proof = MerkleProof::build(&block.compute_txids(), index as usize)?;
            Some(TxLookup {
                confirmed: Some(Confirmation {
                    block_hash: entry.hash,
                    confirmations: n.tree().height() - entry.height() + 1,
                    height: entry.height(),
                    proof: ProofView::new(proof, entry.header().merkle_root),
                }),
                status: TxStatus::Confirmed,
                transaction: TxView::new(txid, tx),
            })
        })
        .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no transaction {id}")))
}

/// `GET /peers`.
pub async fn peers(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let infos = s.handle.read(|n| n.peers()).await?;
    let table = &s.handle.shared.links;
    let peers = infos
        .iter()
        .map(|p| peer_view(p, &table.get(Some(&p.address))))
        .collect();
    Ok(Json(PeersAnswer { peers }))
}

#[derive(Deserialize)]
struct PeerBody {
    peer: Option<Value>,
}

fn peer_from(body: &[u8]) -> Result<PeerAddr, ApiError> {
    let b: PeerBody = parse_json(body)?;
    match b.peer {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|e: chainsim_core::peers::AddrError| ApiError::bad_request(e.to_string())),
        _ => Err(ApiError::bad_request("expected {\"peer\": \"HOST:PORT\"}")),
    }
}

/// `POST /peers/block {"peer": "HOST:PORT"}`.
pub async fn block_peer(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let addr = peer_from(&body?)?;
    let shown = addr.to_string();
    s.handle.request(|reply| Command::BlockPeer { addr, reply }).await?;
    Ok(Json(
        json!({ "message": format!("peer {shown} blocked"), "peer": shown }),
    ))
}

/// `POST /peers/unblock {"peer": "HOST:PORT"}`.
pub async fn unblock_peer(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let addr = peer_from(&body?)?;
    let shown = addr.to_string();
    let was = s.handle.request(|reply| Command::UnblockPeer { addr, reply }).await?;
    let message = if was {
        format!("peer {shown} unblocked")
    } else {
        format!("peer {shown} was not blocked")
    };
    Ok(Json(json!({ "message": message, "peer": shown, "was_blocked": was })))
}
