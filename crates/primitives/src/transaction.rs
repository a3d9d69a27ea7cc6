//! Transactions: a transfer of an amount from a sender name to a recipient name.
//!
//! Version 1 is the original's account-less model (no balances, no signatures), used by
//! the open ledger and by every coinbase. Version 2 is a signed transfer of the accounts
//! ledger: the sender is the address of the signing key, and a nonce, the public key and
//! an Ed25519 signature follow the version-1 fields. Version-1 bytes are unchanged.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::encode::{DecodeError, Reader, Writer};
use crate::hash::{Txid, sha256};
use crate::keys::{Address, PublicKey, SecretKey, SignatureBytes};

/// The version of an unsigned transaction (the open ledger, and every coinbase).
pub const TX_VERSION: u8 = 1;
/// The version of a signed transfer (the accounts ledger).
pub const TX_VERSION_SIGNED: u8 = 2;
/// What a signature covers before the transaction's bytes, so a signature made for
/// something else can never pass as a transaction's.
pub const SIGNING_DOMAIN: &[u8] = b"chainsim signed transaction\n";
/// Longest sender or recipient name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;
/// The sender name of a coinbase transaction, as in the original.
pub const COINBASE_SENDER: &str = "0";
/// Most bytes a transaction can take once encoded.
pub const MAX_TX_SIZE: usize = 1 + 2 * (2 + MAX_NAME_LEN) + 8 + 8 + SIGNED_PART_SIZE;
/// Bytes of the signed part of a version-2 transaction: nonce, public key, signature.
pub const SIGNED_PART_SIZE: usize = 8 + 32 + 64;

/// What a version-2 transaction adds: who signs, which of the signer's transactions it is,
/// and the signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signed {
    /// The signer's count of earlier transactions: 0 for the first, then 1, 2, ...
    pub nonce: u64,
    /// The signer's public key; the sender must be its address.
    pub public_key: PublicKey,
    /// Ed25519 signature of [`SIGNING_DOMAIN`] followed by the transaction's bytes up to
    /// and including the public key.
    pub signature: SignatureBytes,
}

/// A transfer of `amount` from `sender` to `recipient`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    /// Encoding version, [`TX_VERSION`].
    pub version: u8,
    /// Who pays; `"0"` marks the coinbase.
    pub sender: String,
    /// Who is paid.
    pub recipient: String,
    /// How much, always at least 1.
    pub amount: u64,
    /// When it was made, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Version 2 only: the nonce, key and signature (absent from version 1's JSON).
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub signed: Option<Signed>,
}

/// Why a transaction is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxError {
    /// The version byte is not one this code knows.
    #[error("unknown transaction version {0}")]
    UnknownVersion(u8),
    /// A name is empty.
    #[error("{0} must not be empty")]
    EmptyName(&'static str),
    /// A name is longer than [`MAX_NAME_LEN`].
    #[error("{0} is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong(&'static str),
    /// A name contains a control character.
    #[error("{0} contains a control character")]
    ControlCharacter(&'static str),
    /// A name holds an invisible or direction-changing character (zero-width spaces, byte
    /// order marks, bidirectional overrides), which would make it look like another name.
    #[error("{0} contains the invisible or direction-changing character U+{1:04X}")]
    InvisibleCharacter(&'static str, u32),
    /// A name begins or ends with whitespace (people's input is trimmed before it becomes
    /// a transaction; see [`normalize_name`]).
    #[error("{0} must not begin or end with whitespace")]
    Whitespace(&'static str),
    /// The amount is zero.
    #[error("amount must be at least 1")]
    ZeroAmount,
    /// A non-coinbase transaction uses the coinbase sender.
    #[error("sender \"0\" is reserved for the block reward")]
    ReservedSender,
    /// The version and the signed part disagree: version 2 needs one, version 1 has none.
    #[error("version {0} transactions {1} a nonce, public key and signature")]
    SignedPart(u8, &'static str),
    /// A signed transaction's sender is not the address of its public key.
    #[error("sender is not the address of the signing key")]
    SenderNotSigner,
    /// A signed transaction's recipient is not an address.
    #[error("recipient is not an address: {0}")]
    BadRecipient(crate::keys::KeyError),
}

impl Transaction {
    /// A version-1 transaction.
    pub fn new(sender: impl Into<String>, recipient: impl Into<String>, amount: u64, timestamp: u64) -> Self {
        Self {
            version: TX_VERSION,
            sender: sender.into(),
            recipient: recipient.into(),
            amount,
            timestamp,
            signed: None,
        }
    }

    /// A signed transfer of `amount` from `key`'s address to `to`, as its `nonce`-th
    /// transaction.
    pub fn signed(key: &SecretKey, to: &Address, amount: u64, nonce: u64, timestamp: u64) -> Self {
        let public_key = key.public();
        let mut tx = Self {
            version: TX_VERSION_SIGNED,
            sender: key.address().to_text(),
            recipient: to.to_text(),
            amount,
            timestamp,
            signed: Some(Signed {
                nonce,
                public_key,
                signature: SignatureBytes([0; 64]),
            }),
        };
        let signature = key.sign(&tx.signing_message());
        if let Some(s) = tx.signed.as_mut() {
            s.signature = signature;
        }
        tx
    }

    /// What the signature covers: [`SIGNING_DOMAIN`], then the encoding without the
    /// signature.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(SIGNING_DOMAIN.len() + self.encoded_len());
        w.bytes(SIGNING_DOMAIN);
        self.encode_unsigned_to(&mut w);
        w.into_inner()
    }

    /// Whether the signature is valid (false for an unsigned transaction). Costly: callers
    /// remember what they verified.
    pub fn verify_signature(&self) -> bool {
        self.signed
            .as_ref()
            .is_some_and(|s| crate::keys::verify(&s.public_key, &self.signing_message(), &s.signature))
    }

    /// The nonce of a signed transaction.
    pub fn nonce(&self) -> Option<u64> {
        self.signed.as_ref().map(|s| s.nonce)
    }

    /// The block reward paid to `miner`; its timestamp is the block's, which makes each
    /// chain's coinbase txids unique because block timestamps strictly increase.
    pub fn coinbase(miner: impl Into<String>, reward: u64, timestamp: u64) -> Self {
        Self::new(COINBASE_SENDER, miner, reward, timestamp)
    }

    /// A transfer as a person asked for it (the node's HTTP API, the dashboard's form):
    /// both names go through [`normalize_name`], then the whole transaction must pass
    /// [`Transaction::check_well_formed`] as a non-coinbase transaction. The one way from
    /// people's input to a transaction, so every entry point agrees with the consensus rule.
    pub fn transfer(sender: &str, recipient: &str, amount: u64, timestamp: u64) -> Result<Self, TxError> {
        let tx = Self::new(
            normalize_name("sender", sender)?,
            normalize_name("recipient", recipient)?,
            amount,
            timestamp,
        );
        tx.check_well_formed(false)?;
        Ok(tx)
    }

    /// Whether this is a block reward.
    pub fn is_coinbase(&self) -> bool {
        self.sender == COINBASE_SENDER
    }

    /// Checks the rules any transaction must meet on its own (the coinbase rules are the
    /// block's business, so a coinbase passes here when `allow_coinbase`).
    pub fn check_well_formed(&self, allow_coinbase: bool) -> Result<(), TxError> {
        match (self.version, &self.signed) {
            (TX_VERSION, None) | (TX_VERSION_SIGNED, Some(_)) => {}
            (TX_VERSION, Some(_)) => return Err(TxError::SignedPart(TX_VERSION, "have no")),
            (TX_VERSION_SIGNED, None) => return Err(TxError::SignedPart(TX_VERSION_SIGNED, "need")),
            (v, _) => return Err(TxError::UnknownVersion(v)),
        }
        check_name("sender", &self.sender)?;
        check_name("recipient", &self.recipient)?;
        if self.amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        if self.is_coinbase() && !allow_coinbase {
            return Err(TxError::ReservedSender);
        }
        self.check_signed_part()
    }

    /// A signed transaction's sender is its key's address and its recipient an address.
    fn check_signed_part(&self) -> Result<(), TxError> {
        let Some(signed) = &self.signed else { return Ok(()) };
        if self.sender != Address::of(&signed.public_key).to_text() {
            return Err(TxError::SenderNotSigner);
        }
        Address::parse(&self.recipient).map_err(TxError::BadRecipient)?;
        Ok(())
    }

    /// Appends the canonical encoding.
    pub fn encode_to(&self, w: &mut Writer) {
        self.encode_unsigned_to(w);
        if let Some(s) = &self.signed {
            w.bytes(&s.signature.0);
        }
    }

    /// The encoding without the signature (for version 1, the whole encoding).
    fn encode_unsigned_to(&self, w: &mut Writer) {
        w.u8(self.version);
        w.str(&self.sender);
        w.str(&self.recipient);
        w.u64(self.amount);
        w.u64(self.timestamp);
        if let Some(s) = &self.signed {
            w.u64(s.nonce);
            w.bytes(&s.public_key.0);
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.encode_to(&mut w);
        w.into_inner()
    }

    /// Length of the canonical encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        let signed = if self.signed.is_some() { SIGNED_PART_SIZE } else { 0 };
        1 + 2 + self.sender.len() + 2 + self.recipient.len() + 8 + 8 + signed
    }

    /// Reads one transaction; the names' length limit is enforced while decoding.
    /// Version 2 reads the signed part too; any other version is read as version 1's
    /// fields (and refused later as an unknown version).
    pub fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        let mut tx = Self {
            version,
            sender: r.str("sender", MAX_NAME_LEN)?,
            recipient: r.str("recipient", MAX_NAME_LEN)?,
            amount: r.u64()?,
            timestamp: r.u64()?,
            signed: None,
        };
        if version == TX_VERSION_SIGNED {
            let nonce = r.u64()?;
            let public_key = PublicKey(r.array::<32>()?);
            let signature = SignatureBytes(r.array::<64>()?);
            tx.signed = Some(Signed {
                nonce,
                public_key,
                signature,
            });
        }
        Ok(tx)
    }

    /// Decodes exactly one transaction from `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let tx = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(tx)
    }

    /// SHA-256 of the canonical encoding.
    pub fn compute_txid(&self) -> Txid {
        // Names are at most 64 bytes, so a stack buffer avoids an allocation per txid,
        // which matters when validating thousands of transactions a second.
        let mut buf = [0u8; MAX_TX_SIZE];
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            let end = (n + bytes.len()).min(MAX_TX_SIZE);
            buf[n..end].copy_from_slice(&bytes[..end - n]);
            n = end;
        };
        put(&[self.version]);
        for name in [&self.sender, &self.recipient] {
            let len = name.len().min(MAX_NAME_LEN);
            put(&(len as u16).to_le_bytes());
            put(&name.as_bytes()[..len]);
        }
        put(&self.amount.to_le_bytes());
        put(&self.timestamp.to_le_bytes());
        if let Some(s) = &self.signed {
            put(&s.nonce.to_le_bytes());
            put(&s.public_key.0);
            put(&s.signature.0);
        }
        if self.sender.len() > MAX_NAME_LEN || self.recipient.len() > MAX_NAME_LEN {
            // Not well formed, never valid; hash the real encoding so the id is still honest.
            return Txid(sha256(&self.encode()));
        }
        Txid(sha256(&buf[..n]))
    }
}

/// Characters that draw nothing or reorder what follows: a name holding one can look like
/// another name (U+202E turns "alice\u{202E}bob" around on screen).
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFEFF | 0xFFA0
        | 0xFFF0..=0xFFF8 | 0x1D173..=0x1D17A | 0xE0000..=0xE007F)
}

/// The rule for a sender or recipient name, and its one home: 1 to [`MAX_NAME_LEN`] bytes
/// of UTF-8, no control character, no invisible or direction-changing character, no
/// whitespace at either end. `field` names the name in
/// the error. Consensus applies it to every transaction ([`Transaction::check_well_formed`]);
/// input from people is trimmed first with [`normalize_name`].
pub fn check_name(field: &'static str, name: &str) -> Result<(), TxError> {
    if name.is_empty() {
        return Err(TxError::EmptyName(field));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(TxError::NameTooLong(field));
    }
    // Printable ASCII, nearly every name, holds no control or invisible character and no
    // whitespace but the space: one pass over the bytes. (Every receiver of a block checks
    // its transactions' names: a simulation does it millions of times.)
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        if name.starts_with(' ') || name.ends_with(' ') {
            return Err(TxError::Whitespace(field));
        }
        return Ok(());
    }
    check_name_chars(field, name)
}

/// [`check_name`]'s rule, character by character, for a name within the length limits.
fn check_name_chars(field: &'static str, name: &str) -> Result<(), TxError> {
    if name.chars().any(char::is_control) {
        return Err(TxError::ControlCharacter(field));
    }
    if let Some(c) = name.chars().find(|c| is_invisible(*c)) {
        return Err(TxError::InvisibleCharacter(field, c as u32));
    }
    if name.trim() != name {
        return Err(TxError::Whitespace(field));
    }
    Ok(())
}

/// A name as a person typed it (a JSON body, a form field), made ready for a transaction:
/// whitespace around it removed, then [`check_name`]. The node's HTTP API and the
/// dashboard both go through it (via [`Transaction::transfer`]), so they agree with each
/// other and with consensus. (`--miner` is checked as given, with [`check_name`].)
pub fn normalize_name<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, TxError> {
    let name = raw.trim();
    check_name(field, name)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn invisible_and_direction_changing_characters_are_refused() {
        for c in ['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2066}', '\u{00AD}', '\u{E0041}'] {
            let name = format!("ali{c}ce");
            assert_eq!(
                check_name("sender", &name),
                Err(TxError::InvisibleCharacter("sender", c as u32)),
                "U+{:04X}",
                c as u32
            );
        }
        let err = check_name("recipient", "bob\u{202E}").unwrap_err().to_string();
        assert_eq!(
            err,
            "recipient contains the invisible or direction-changing character U+202E"
        );
        // Letters of every script still pass.
        for ok in ["Alice", "김철수", "Ωμέγα", "محمد", "😀 party"] {
            assert_eq!(check_name("sender", ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn txid_matches_hash_of_encoding() {
        let tx = Transaction::new("Alice", "Bob", 10, 1_700_000_000_000);
        assert_eq!(tx.compute_txid(), Txid(sha256(&tx.encode())));
        assert_eq!(tx.encode().len(), tx.encoded_len());
    }

    #[test]
    fn well_formed_rules() {
        let ok = Transaction::new("Alice", "Bob", 1, 0);
        assert_eq!(ok.check_well_formed(false), Ok(()));
        let mut t = ok.clone();
        t.amount = 0;
        assert_eq!(t.check_well_formed(false), Err(TxError::ZeroAmount));
        let mut t = ok.clone();
        t.sender = String::new();
        assert_eq!(t.check_well_formed(false), Err(TxError::EmptyName("sender")));
        let mut t = ok.clone();
        t.recipient = "x".repeat(65);
        assert_eq!(t.check_well_formed(false), Err(TxError::NameTooLong("recipient")));
        let mut t = ok.clone();
        t.sender = "a\nb".into();
        assert_eq!(t.check_well_formed(false), Err(TxError::ControlCharacter("sender")));
        let mut t = ok.clone();
        t.version = 3;
        assert_eq!(t.check_well_formed(false), Err(TxError::UnknownVersion(3)));
        let mut t = ok.clone();
        t.version = 2;
        assert_eq!(t.check_well_formed(false), Err(TxError::SignedPart(2, "need")));
        let cb = Transaction::coinbase("miner", 50, 0);
        assert_eq!(cb.check_well_formed(false), Err(TxError::ReservedSender));
        assert_eq!(cb.check_well_formed(true), Ok(()));
    }

    #[test]
    fn one_test_per_name_rule() {
        // Empty.
        assert_eq!(check_name("sender", ""), Err(TxError::EmptyName("sender")));
        assert_eq!(normalize_name("sender", "  \t "), Err(TxError::EmptyName("sender")));
        // Longer than 64 bytes of UTF-8 (not characters), after trimming.
        assert_eq!(check_name("sender", &"x".repeat(64)), Ok(()));
        assert_eq!(
            check_name("sender", &"é".repeat(33)),
            Err(TxError::NameTooLong("sender"))
        );
        assert_eq!(
            normalize_name("sender", &format!("  {}  ", "x".repeat(64))).map(str::len),
            Ok(64)
        );
        // Control characters, also inside.
        assert_eq!(
            check_name("recipient", "Bo\u{0}b"),
            Err(TxError::ControlCharacter("recipient"))
        );
        assert_eq!(
            normalize_name("recipient", "Al\nice"),
            Err(TxError::ControlCharacter("recipient"))
        );
        // Whitespace at either end: refused by consensus, trimmed from people's input.
        assert_eq!(check_name("sender", " Alice"), Err(TxError::Whitespace("sender")));
        assert_eq!(check_name("sender", "Alice\u{a0}"), Err(TxError::Whitespace("sender")));
        assert_eq!(normalize_name("sender", " Alice "), Ok("Alice"));
        assert_eq!(check_name("sender", "Alice Smith"), Ok(()), "inner spaces are fine");
        let mut t = Transaction::new("Alice", "Bob", 1, 0);
        t.recipient = "Bob ".into();
        assert_eq!(t.check_well_formed(false), Err(TxError::Whitespace("recipient")));
    }

    #[test]
    fn transfers_from_people_are_normalised_then_checked() {
        // The original's walkthrough.
        let tx = Transaction::transfer("Alice", "Bob", 10, 7).unwrap();
        assert_eq!(tx, Transaction::new("Alice", "Bob", 10, 7));
        assert_eq!(Transaction::transfer(" Alice\t", " Bob ", 10, 7), Ok(tx));
        assert_eq!(Transaction::transfer("0", "Bob", 1, 0), Err(TxError::ReservedSender));
        assert_eq!(Transaction::transfer(" 0 ", "Bob", 1, 0), Err(TxError::ReservedSender));
        assert_eq!(Transaction::transfer("Alice", "Bob", 0, 0), Err(TxError::ZeroAmount));
        assert_eq!(
            Transaction::transfer("", "Bob", 1, 0),
            Err(TxError::EmptyName("sender"))
        );
        assert_eq!(
            Transaction::transfer("Alice", " ", 1, 0),
            Err(TxError::EmptyName("recipient"))
        );
    }

    #[test]
    fn decode_rejects_trailing_and_truncated() {
        let bytes = Transaction::new("Alice", "Bob", 10, 5).encode();
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Transaction::decode(&longer), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(
            Transaction::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::UnexpectedEnd)
        );
    }

    #[test]
    fn signed_transactions_round_trip_and_verify() {
        let key = SecretKey::from_seed([3; 32]);
        let to = SecretKey::from_seed([4; 32]).address();
        let tx = Transaction::signed(&key, &to, 5, 7, 1_000);
        assert_eq!(tx.check_well_formed(false), Ok(()));
        assert!(tx.verify_signature());
        let bytes = tx.encode();
        assert_eq!(bytes.len(), tx.encoded_len());
        assert_eq!(Transaction::decode(&bytes), Ok(tx.clone()));
        assert_eq!(tx.compute_txid(), Txid(sha256(&bytes)));
        // Any changed field breaks the signature.
        let mut t = tx.clone();
        t.amount = 6;
        assert!(!t.verify_signature());
        let mut t = tx.clone();
        if let Some(s) = t.signed.as_mut() {
            s.nonce = 8;
        }
        assert!(!t.verify_signature());
        // The sender must be the key's address, the recipient an address.
        let mut t = tx.clone();
        t.sender = to.to_text();
        assert_eq!(t.check_well_formed(false), Err(TxError::SenderNotSigner));
        let mut t = tx.clone();
        t.recipient = "Bob".into();
        assert!(matches!(t.check_well_formed(false), Err(TxError::BadRecipient(_))));
        // JSON: version 1 keeps its shape; version 2 adds the signed part.
        let json = serde_json::to_value(&tx).unwrap();
        assert_eq!(json["nonce"], 7);
        assert_eq!(serde_json::from_value::<Transaction>(json).unwrap(), tx);
        let v1 = serde_json::to_value(Transaction::new("a", "b", 1, 2)).unwrap();
        assert_eq!(v1.as_object().unwrap().len(), 5);
    }

    proptest! {
        #[test]
        fn encoding_round_trips(sender in "\\PC{1,16}", recipient in "\\PC{1,16}", amount in 1u64.., ts: u64) {
            prop_assume!(sender.len() <= MAX_NAME_LEN && recipient.len() <= MAX_NAME_LEN);
            let tx = Transaction::new(sender, recipient, amount, ts);
            let bytes = tx.encode();
            prop_assert_eq!(Transaction::decode(&bytes), Ok(tx.clone()));
            prop_assert_eq!(tx.compute_txid(), Txid(sha256(&bytes)));
        }

        /// The printable-ASCII shortcut answers as the rule read character by character,
        /// for names of printable ASCII, of ASCII with control characters, and of anything.
        #[test]
        fn the_ascii_shortcut_agrees_with_the_rule(
            ascii in "[ -~]{1,20}",
            mixed in r"[ -~\t\n\x0b\x0c\r\x7f\x00]{1,20}",
            any_name in r"[\x00-\x{10FFFF}]{1,12}",
            spaced in r"[ a\x{202E}\x{200B}\x{A0}\x{3000}]{1,6}",
        ) {
            for name in [&ascii, &mixed, &any_name, &spaced] {
                prop_assume!(name.len() <= MAX_NAME_LEN);
                prop_assert_eq!(check_name("sender", name), check_name_chars("sender", name), "{:?}", name);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Transaction::decode(&bytes);
        }
    }
}
