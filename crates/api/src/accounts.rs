//! The accounts ledger's routes: balances (`/accounts`, `/accounts/{name or address}`) and
//! signed transfers (`/transactions/signed`).

use chainsim_primitives::{PublicKey, SignatureBytes, Signed, Transaction, transaction::TX_VERSION_SIGNED};
use serde::{Deserialize, Serialize};

/// One account as a node sees it (`GET /accounts/{name or address}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The address, `cs1…`.
    pub address: String,
    /// Confirmed balance (the best chain).
    pub balance: u64,
    /// The demo account's name, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The nonce the next transfer must carry, counting pending transfers.
    pub next_nonce: u64,
    /// Confirmed transfers sent: the nonce of the next one once all pending are mined.
    pub nonce: u64,
    /// The balance once every pending transfer from and to it is mined.
    pub pending_balance: u64,
}

/// `GET /accounts`: the demo accounts first, then every other account of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsAnswer {
    /// The accounts.
    pub accounts: Vec<AccountView>,
    /// The network's ledger kind, `accounts`.
    pub ledger: String,
    /// Every coin there is: genesis funds plus every block reward of the best chain.
    pub supply: u64,
}

/// Body of `POST /transactions/signed`: a version-2 transaction as [`crate::TxView`] shows
/// one, without the txid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTxRequest {
    /// How much.
    pub amount: u64,
    /// The signer's nonce for it.
    pub nonce: u64,
    /// The signer's public key, 64 hex digits.
    pub public_key: PublicKey,
    /// The address paid.
    pub recipient: String,
    /// The signer's address.
    pub sender: String,
    /// The signature, 128 hex digits.
    pub signature: SignatureBytes,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
}

impl SignedTxRequest {
    /// The request of a signed transaction.
    pub fn of(tx: &Transaction) -> Option<Self> {
        let s = tx.signed.as_ref()?;
        Some(Self {
            amount: tx.amount,
            nonce: s.nonce,
            public_key: s.public_key,
            recipient: tx.recipient.clone(),
            sender: tx.sender.clone(),
            signature: s.signature,
            timestamp: tx.timestamp,
        })
    }

    /// The transaction it describes (checked by the node).
    pub fn into_transaction(self) -> Transaction {
        Transaction {
            version: TX_VERSION_SIGNED,
            sender: self.sender,
            recipient: self.recipient,
            amount: self.amount,
            timestamp: self.timestamp,
            signed: Some(Signed {
                nonce: self.nonce,
                public_key: self.public_key,
                signature: self.signature,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainsim_primitives::SecretKey;

    #[test]
    fn a_signed_request_round_trips() {
        let key = SecretKey::from_seed([1; 32]);
        let tx = Transaction::signed(&key, &key.address(), 3, 0, 5);
        let req = SignedTxRequest::of(&tx).unwrap();
        let json = serde_json::to_string(&req).unwrap();
        let back: SignedTxRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_transaction(), tx);
    }
}
