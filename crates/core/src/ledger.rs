//! The accounts ledger: who owns how much, and the rules a signed transfer must meet.
//!
//! The model is accounts with nonces (as Ethereum's), not unspent outputs (as Bitcoin's):
//! the original's transactions already read "sender pays recipient an amount", so an
//! account per address with a balance and a count of sent transactions (the nonce) keeps
//! that shape. A transfer spends only what its signer's account holds; two transfers with
//! the same signer and nonce conflict, and only one of them can ever be confirmed.
//!
//! [`Ledger`] is the state at the best tip (kept by the block tree); a [`View`] is that
//! state with changes on top, used to check a block against its parent's state (undoing
//! and replaying blocks of another branch) without copying the ledger. Every rule has a
//! name ([`LedgerError::rule`]), as the block rules do.

use std::collections::HashMap;

use chainsim_primitives::{Address, Block, Transaction, Txid};
use serde::Serialize;
use thiserror::Error;

use crate::mempool::Mempool;

/// A signed transaction whose signature was checked, by whoever made this value: the way
/// to check signatures off the thread that owns the node ([`crate::Command::SubmitVerifiedTx`]),
/// so that the node does not check them again.
#[derive(Debug, Clone)]
pub struct VerifiedTx(Transaction);

impl VerifiedTx {
    /// Checks the signature; `None` when it does not verify (or the transaction is unsigned).
    pub fn verify(tx: Transaction) -> Option<Self> {
        tx.verify_signature().then_some(Self(tx))
    }

    /// The transaction.
    pub fn into_inner(self) -> Transaction {
        self.0
    }
}

/// Which rules a network's transactions follow: part of the chain parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// The original's rules: unsigned transfers between any names, no balances.
    #[default]
    Open,
    /// Signed transfers between addresses, with balances and nonces.
    Accounts,
}

impl LedgerKind {
    /// The name used on the command line and in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accounts => "accounts",
        }
    }

    /// Reads `open` or `accounts`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "open" => Some(Self::Open),
            "accounts" => Some(Self::Accounts),
            _ => None,
        }
    }
}

/// One account's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Account {
    /// What it holds.
    pub balance: u64,
    /// How many transfers it has sent: the nonce its next transfer must carry.
    pub nonce: u64,
}

/// A rule of the ledger that a transaction breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    /// A transaction of the other ledger kind (unsigned on accounts, signed on open).
    #[error("a {found} transaction on an {network} ledger")]
    WrongKind {
        /// What the transaction is.
        found: &'static str,
        /// The network's ledger.
        network: &'static str,
    },
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// A block reward pays something that is not an address.
    #[error("the block reward must pay an address, not {0:?}")]
    BadAddress(String),
    /// The sender never received anything.
    #[error("account {0} is unknown (it never received anything)")]
    UnknownAccount(Address),
    /// The sender holds less than the amount.
    #[error("account {address} holds {available}, less than the amount {amount}")]
    InsufficientFunds {
        /// The sender.
        address: Address,
        /// What it can spend (confirmed balance less pending spends, for the mempool).
        available: u64,
        /// The amount.
        amount: u64,
    },
    /// The nonce was used by a transaction already confirmed in the chain.
    #[error("nonce {nonce} of {address} is already used in the chain (next is {next})")]
    NonceUsed {
        /// The sender.
        address: Address,
        /// The nonce.
        nonce: u64,
        /// The account's next nonce.
        next: u64,
    },
    /// The nonce skips ahead of the account's next one.
    #[error("nonce {got}, expected {expected}")]
    BadNonce {
        /// The nonce that would fit.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// Two transactions of one block have the same sender and nonce.
    #[error("nonce {nonce} of {address} is spent twice in the block (first by {first})")]
    ConflictInBlock {
        /// The sender.
        address: Address,
        /// The nonce.
        nonce: u64,
        /// The transaction that used it first.
        first: Txid,
    },
    /// A pending transaction has the same sender and nonce (the first seen wins).
    #[error("nonce {nonce} of {address} is taken by pending transaction {existing}")]
    ConflictInMempool {
        /// The sender.
        address: Address,
        /// The nonce.
        nonce: u64,
        /// The pending transaction.
        existing: Txid,
    },
    /// A balance or the total supply would exceed 2^64 - 1.
    #[error("a balance or the supply would overflow")]
    Overflow,
    /// The state the block builds on could not be rebuilt (a body could not be read).
    #[error("the ledger state of the parent could not be rebuilt")]
    Unavailable,
}

impl LedgerError {
    /// The transaction this one conflicts with (the first seen), for the conflict rules.
    pub fn conflicts_with(&self) -> Option<Txid> {
        match self {
            Self::ConflictInMempool { existing, .. } => Some(*existing),
            Self::ConflictInBlock { first, .. } => Some(*first),
            _ => None,
        }
    }

    /// Short, stable name of the broken rule.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::WrongKind { .. } => "wrong-ledger",
            Self::BadSignature => "bad-signature",
            Self::BadAddress(_) => "bad-address",
            Self::UnknownAccount(_) => "unknown-account",
            Self::InsufficientFunds { .. } => "insufficient-funds",
            Self::NonceUsed { .. } => "nonce-conflict-chain",
            Self::BadNonce { .. } => "bad-nonce",
            Self::ConflictInBlock { .. } => "conflict-in-block",
            Self::ConflictInMempool { .. } => "conflict-in-mempool",
            Self::Overflow => "overflow",
            Self::Unavailable => "ledger-unavailable",
        }
    }
}

/// Whether `tx` belongs on a `kind` ledger at all (signed or not); the coinbase is always
/// unsigned.
pub fn check_kind(kind: LedgerKind, tx: &Transaction) -> Result<(), LedgerError> {
    match (kind, tx.signed.is_some()) {
        (LedgerKind::Open, true) => Err(LedgerError::WrongKind {
            found: "signed",
            network: "open",
        }),
        (LedgerKind::Accounts, false) if !tx.is_coinbase() => Err(LedgerError::WrongKind {
            found: "unsigned",
            network: "accounts",
        }),
        _ => Ok(()),
    }
}

/// Every account at the best tip, and the total supply.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    accounts: HashMap<Address, Account>,
    supply: u64,
}

impl Ledger {
    /// The state after `genesis` (whose transactions are all rewards: the funding).
    pub fn from_genesis(genesis: &Block) -> Result<Self, LedgerError> {
        let mut ledger = Self::default();
        let mut view = View::new(&ledger);
        for tx in &genesis.transactions {
            view.credit_reward(tx)?;
        }
        let changes = view.into_changes();
        ledger.commit(changes);
        Ok(ledger)
    }

    /// An account's state; `None` when it never received anything.
    pub fn get(&self, address: &Address) -> Option<Account> {
        self.accounts.get(address).copied()
    }

    /// Every coin there is: genesis funds plus every reward of the best chain.
    pub fn supply(&self) -> u64 {
        self.supply
    }

    /// Every account, in no order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// Makes a view's changes the state.
    pub fn commit(&mut self, changes: Changes) {
        for (address, account) in changes.accounts {
            match account {
                Some(a) => self.accounts.insert(address, a),
                None => self.accounts.remove(&address),
            };
        }
        self.supply = changes.supply;
    }
}

/// What a [`View`] changed, to [`Ledger::commit`].
#[derive(Debug)]
pub struct Changes {
    accounts: HashMap<Address, Option<Account>>,
    supply: u64,
}

/// A ledger with changes on top: blocks applied or undone without touching the ledger.
#[derive(Debug)]
pub struct View<'a> {
    base: &'a Ledger,
    changes: HashMap<Address, Option<Account>>,
    supply: u64,
}

impl<'a> View<'a> {
    /// No changes yet.
    pub fn new(base: &'a Ledger) -> Self {
        Self {
            base,
            changes: HashMap::new(),
            supply: base.supply,
        }
    }

    /// An account as the view sees it.
    pub fn get(&self, address: &Address) -> Option<Account> {
        match self.changes.get(address) {
            Some(changed) => *changed,
            None => self.base.get(address),
        }
    }

    /// The supply as the view sees it.
    pub fn supply(&self) -> u64 {
        self.supply
    }

    fn set(&mut self, address: Address, account: Account) {
        // An account back at nothing is forgotten, so undoing a block restores the map.
        let value = (account != Account::default()).then_some(account);
        self.changes.insert(address, value);
    }

    /// The changes, for [`Ledger::commit`].
    pub fn into_changes(self) -> Changes {
        Changes {
            accounts: self.changes,
            supply: self.supply,
        }
    }

    /// Applies every transaction of `block` in order, or says which one (by position)
    /// breaks which rule; on an error the view is left part-way and should be dropped.
    /// Signatures are not checked here (see [`crate::chain::validation`]).
    pub fn apply_block(&mut self, block: &Block) -> Result<(), (usize, LedgerError)> {
        let mut nonces: HashMap<(&str, u64), Txid> = HashMap::new();
        for (index, tx) in block.transactions.iter().enumerate() {
            if let Some(nonce) = tx.nonce() {
                let txid = tx.compute_txid();
                if let Some(first) = nonces.insert((tx.sender.as_str(), nonce), txid) {
                    let address = sender_address(tx).map_err(|e| (index, e))?;
                    return Err((index, LedgerError::ConflictInBlock { address, nonce, first }));
                }
            }
            self.apply_tx(tx).map_err(|e| (index, e))?;
        }
        Ok(())
    }

    /// Applies one transaction: a reward credits, a transfer moves funds and uses a nonce.
    pub fn apply_tx(&mut self, tx: &Transaction) -> Result<(), LedgerError> {
        if tx.is_coinbase() {
            return self.credit_reward(tx);
        }
        let Some(nonce) = tx.nonce() else {
            return check_kind(LedgerKind::Accounts, tx);
        };
        let from = sender_address(tx)?;
        let to = recipient_address(tx)?;
        let mut sender = self.get(&from).ok_or(LedgerError::UnknownAccount(from))?;
        if nonce < sender.nonce {
            return Err(LedgerError::NonceUsed {
                address: from,
                nonce,
                next: sender.nonce,
            });
        }
        if nonce > sender.nonce {
            return Err(LedgerError::BadNonce {
                expected: sender.nonce,
                got: nonce,
            });
        }
        if sender.balance < tx.amount {
            return Err(LedgerError::InsufficientFunds {
                address: from,
                available: sender.balance,
                amount: tx.amount,
            });
        }
        sender.balance -= tx.amount;
        sender.nonce += 1;
        self.set(from, sender);
        // Read after the write: paying oneself must come out even.
        let mut recipient = self.get(&to).unwrap_or_default();
        recipient.balance = recipient.balance.checked_add(tx.amount).ok_or(LedgerError::Overflow)?;
        self.set(to, recipient);
        Ok(())
    }

    fn credit_reward(&mut self, tx: &Transaction) -> Result<(), LedgerError> {
        let to = recipient_address(tx)?;
        let mut account = self.get(&to).unwrap_or_default();
        account.balance = account.balance.checked_add(tx.amount).ok_or(LedgerError::Overflow)?;
        self.supply = self.supply.checked_add(tx.amount).ok_or(LedgerError::Overflow)?;
        self.set(to, account);
        Ok(())
    }

    /// Undoes a block that was applied (last transaction first). Exact for a block that
    /// applied, so no undo data is kept.
    pub fn undo_block(&mut self, block: &Block) {
        for tx in block.transactions.iter().rev() {
            self.undo_tx(tx);
        }
    }

    fn undo_tx(&mut self, tx: &Transaction) {
        let Ok(to) = recipient_address(tx) else { return };
        let mut recipient = self.get(&to).unwrap_or_default();
        recipient.balance = recipient.balance.saturating_sub(tx.amount);
        self.set(to, recipient);
        if tx.is_coinbase() {
            self.supply = self.supply.saturating_sub(tx.amount);
            return;
        }
        let Ok(from) = sender_address(tx) else { return };
        let mut sender = self.get(&from).unwrap_or_default();
        sender.balance = sender.balance.saturating_add(tx.amount);
        sender.nonce = sender.nonce.saturating_sub(1);
        self.set(from, sender);
    }
}

fn sender_address(tx: &Transaction) -> Result<Address, LedgerError> {
    Address::parse(&tx.sender).map_err(|_| LedgerError::BadAddress(tx.sender.clone()))
}

fn recipient_address(tx: &Transaction) -> Result<Address, LedgerError> {
    Address::parse(&tx.recipient).map_err(|_| LedgerError::BadAddress(tx.recipient.clone()))
}

/// Whether a signed transfer may join the mempool on top of the confirmed `ledger` and what
/// is pending: its nonce must be the sender's next one counting pending transfers (the
/// first seen of two with one nonce wins), and the sender's confirmed balance less its
/// pending spends must cover it (pending receipts do not count: they may never confirm).
/// The signature is the caller's to check, once.
pub fn check_pending(ledger: &Ledger, mempool: &Mempool, tx: &Transaction) -> Result<(), LedgerError> {
    check_kind(LedgerKind::Accounts, tx)?;
    let Some(nonce) = tx.nonce() else { return Ok(()) };
    let address = sender_address(tx)?;
    recipient_address(tx)?;
    let account = ledger.get(&address).ok_or(LedgerError::UnknownAccount(address))?;
    if nonce < account.nonce {
        return Err(LedgerError::NonceUsed {
            address,
            nonce,
            next: account.nonce,
        });
    }
    if let Some(existing) = mempool.pending_nonce(&tx.sender, nonce) {
        return Err(LedgerError::ConflictInMempool {
            address,
            nonce,
            existing,
        });
    }
    let (count, spend) = mempool.pending_of(&tx.sender);
    let expected = account.nonce + count as u64;
    if nonce != expected {
        return Err(LedgerError::BadNonce { expected, got: nonce });
    }
    let available = account.balance.saturating_sub(spend);
    if available < tx.amount {
        return Err(LedgerError::InsufficientFunds {
            address,
            available,
            amount: tx.amount,
        });
    }
    Ok(())
}

/// The pending transfers that no longer fit the confirmed `ledger` (after a new best
/// chain): per sender in nonce order, those whose nonce was used in the chain or no longer
/// follows, or that the balance no longer covers. Each comes with the rule it breaks.
pub fn stale_pending(ledger: &Ledger, mempool: &Mempool) -> Vec<(Txid, LedgerError)> {
    let mut stale = Vec::new();
    for (sender, pending) in mempool.pending_by_sender() {
        let Ok(address) = Address::parse(sender) else { continue };
        let mut account = ledger.get(&address).unwrap_or_default();
        for (&nonce, txid) in pending {
            let amount = mempool.get(txid).map_or(0, |t| t.amount);
            let broken = if nonce < account.nonce {
                Some(LedgerError::NonceUsed {
                    address,
                    nonce,
                    next: account.nonce,
                })
            } else if nonce != account.nonce {
                Some(LedgerError::BadNonce {
                    expected: account.nonce,
                    got: nonce,
                })
            } else if account.balance < amount {
                Some(LedgerError::InsufficientFunds {
                    address,
                    available: account.balance,
                    amount,
                })
            } else {
                None
            };
            match broken {
                Some(e) => stale.push((*txid, e)),
                None => {
                    account.balance -= amount;
                    account.nonce += 1;
                }
            }
        }
    }
    stale
}

/// The mempool's transactions in an order a block can take them: oldest first, except that
/// a sender's transfer waits for its lower nonces (a wallet may date its transactions in
/// any order).
pub fn template_order(mempool: &Mempool) -> Vec<&Transaction> {
    let mut next: HashMap<&str, u64> = HashMap::new();
    let mut waiting: HashMap<(&str, u64), &Transaction> = HashMap::new();
    let mut out = Vec::with_capacity(mempool.len());
    for (_, tx) in mempool.iter_oldest() {
        let Some(nonce) = tx.nonce() else {
            out.push(tx);
            continue;
        };
        let sender = tx.sender.as_str();
        let lowest = mempool.pending_by_sender_of(sender).unwrap_or(nonce);
        let expected = *next.entry(sender).or_insert(lowest);
        if nonce != expected {
            waiting.insert((sender, nonce), tx);
            continue;
        }
        out.push(tx);
        let mut n = nonce + 1;
        while let Some(t) = waiting.remove(&(sender, n)) {
            out.push(t);
            n += 1;
        }
        next.insert(sender, n);
    }
    out
}
