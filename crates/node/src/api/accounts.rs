//! The accounts ledger's routes: balances, signed transfers, and the original's
//! `POST /transactions/new` for the demo accounts (signed here with their public keys).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chainsim_api::{AccountView, AccountsAnswer, NewTxAnswer, SignedTxRequest};
use chainsim_core::{LedgerKind, Node};
use chainsim_primitives::keys::{DEMO_NAMES, demo_key};
use chainsim_primitives::{Address, Transaction};

use super::AppState;
use super::error::{ApiError, parse_json};
use super::original::submit;

/// Most accounts `GET /accounts` lists besides the demo accounts.
const MAX_LISTED: usize = 1_000;

/// A demo account's name, or an address, as the address it names.
fn resolve(id: &str) -> Result<(Address, Option<&'static str>), ApiError> {
    let lower = id.trim().to_lowercase();
    if let Some(name) = DEMO_NAMES.iter().find(|n| **n == lower)
        && let Some(key) = demo_key(name)
    {
        return Ok((key.address(), Some(*name)));
    }
    let address = Address::parse(id.trim()).map_err(|e| {
        ApiError::bad_request(format!(
            "{id:?} is neither a demo account ({}) nor an address: {e}",
            DEMO_NAMES.join(", ")
        ))
    })?;
    let name = DEMO_NAMES
        .iter()
        .find(|n| demo_key(n).is_some_and(|k| k.address() == address))
        .copied();
    Ok((address, name))
}

fn require_accounts(s: &AppState) -> Result<(), ApiError> {
    match s.info.ledger {
        LedgerKind::Accounts => Ok(()),
        LedgerKind::Open => Err(ApiError::not_found(
            "this node runs the open ledger, which has no accounts (start it with --ledger accounts)",
        )),
    }
}

/// What pending transfers pay to each address.
fn pending_receipts(node: &Node) -> HashMap<String, u64> {
    let mut receipts: HashMap<String, u64> = HashMap::new();
    for (_, tx) in node.mempool().iter_oldest() {
        if tx.signed.is_some() {
            let r = receipts.entry(tx.recipient.clone()).or_default();
            *r = r.saturating_add(tx.amount);
        }
    }
    receipts
}

/// An account's view: confirmed state from the ledger, pending from the mempool.
fn view_of(node: &Node, address: &Address, name: Option<&str>, receipts: &HashMap<String, u64>) -> AccountView {
    let account = node.tree().ledger().and_then(|l| l.get(address)).unwrap_or_default();
    let text = address.to_text();
    let (count, spend) = node.mempool().pending_of(&text);
    let incoming = receipts.get(&text).copied().unwrap_or(0);
    AccountView {
        pending_balance: account.balance.saturating_sub(spend).saturating_add(incoming),
        next_nonce: account.nonce + count as u64,
        nonce: account.nonce,
        balance: account.balance,
        name: name.map(str::to_owned),
        address: text,
    }
}

/// `GET /accounts/{name or address}`.
pub async fn account(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<AccountView>, ApiError> {
    require_accounts(&s)?;
    let (address, name) = resolve(&id)?;
    let view = s
        .handle
        .read(move |n| view_of(n, &address, name, &pending_receipts(n)))
        .await?;
    Ok(Json(view))
}

/// `GET /accounts`: the demo accounts, then up to [`MAX_LISTED`] others by address.
pub async fn accounts(State(s): State<AppState>) -> Result<Json<AccountsAnswer>, ApiError> {
    require_accounts(&s)?;
    let answer = s.handle.read(accounts_answer).await?;
    Ok(Json(answer))
}

fn accounts_answer(n: &Node) -> AccountsAnswer {
    let receipts = pending_receipts(n);
    let demo: Vec<(Address, &str)> = DEMO_NAMES
        .iter()
        .filter_map(|name| Some((demo_key(name)?.address(), *name)))
        .collect();
    let mut accounts: Vec<AccountView> = demo
        .iter()
        .map(|(a, name)| view_of(n, a, Some(name), &receipts))
        .collect();
    let mut others: Vec<Address> = n
        .tree()
        .ledger()
        .map(|l| {
            l.accounts()
                .map(|(a, _)| *a)
                .filter(|a| !demo.iter().any(|(d, _)| d == a))
                .collect()
        })
        .unwrap_or_default();
    others.sort();
    others.truncate(MAX_LISTED);
    accounts.extend(others.iter().map(|a| view_of(n, a, None, &receipts)));
    AccountsAnswer {
        accounts,
        ledger: LedgerKind::Accounts.as_str().to_owned(),
        supply: n.tree().ledger().map_or(0, |l| l.supply()),
    }
}

/// `POST /transactions/signed`: a transfer signed elsewhere (`chainsim wallet send`).
pub async fn signed_transaction(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<NewTxAnswer>), ApiError> {
    require_accounts(&s)?;
    let req: SignedTxRequest = parse_json(&body?)?;
    let tx = req.into_transaction();
    tx.check_well_formed(false)
        .map_err(|e| ApiError::bad_request(format!("invalid transaction: {e}")))?;
    submit(&s, tx).await
}

/// How often a demo transfer is signed again when another took its nonce meanwhile.
const NONCE_RETRIES: usize = 5;

/// The original's `POST /transactions/new` on an accounts network: the sender must be a
/// demo account, whose public key the node signs with, at the next nonce counting pending
/// transfers. The same transfer sent again (to this node or, relayed, from another) is
/// found pending and answered "already exists", as in the original.
pub async fn demo_transfer(
    s: &AppState,
    sender: &str,
    recipient: &str,
    amount: u64,
    timestamp: u64,
) -> Result<(StatusCode, Json<NewTxAnswer>), ApiError> {
    let key = demo_key(sender).ok_or_else(|| {
        ApiError::bad_request(format!(
            "this node holds no key for {sender:?}: on an accounts network it signs only for the demo accounts ({}); \
             sign elsewhere (chainsim wallet send) and POST /transactions/signed",
            DEMO_NAMES.join(", ")
        ))
    })?;
    let (to, _) = resolve(recipient)?;
    let from = key.address();
    for _ in 0..NONCE_RETRIES {
        let (from_text, to_text) = (from.to_text(), to.to_text());
        let (nonce, existing) = s
            .handle
            .read(move |n| {
                let same = n.mempool().iter_oldest().find(|(_, t)| {
                    t.sender == from_text && t.recipient == to_text && t.amount == amount && t.timestamp == timestamp
                });
                let next = view_of(n, &from, None, &HashMap::new()).next_nonce;
                (next, same.map(|(id, _)| *id))
            })
            .await?;
        if let Some(txid) = existing {
            let message = "transaction already exists".to_owned();
            return Ok((StatusCode::OK, Json(NewTxAnswer { message, txid })));
        }
        let tx = Transaction::signed(&key, &to, amount, nonce, timestamp);
        match submit(s, tx).await {
            Err(e) if e.status == StatusCode::CONFLICT && e.message.contains("conflict-in-mempool") => continue,
            other => return other,
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        format!("{sender}'s next nonce kept being taken by other transfers; try again"),
    ))
}
