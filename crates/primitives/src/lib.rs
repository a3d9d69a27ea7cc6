//! chainsim's consensus primitives: plain types with one canonical binary encoding.
//!
//! Everything that is hashed is hashed from its canonical encoding (see [`encode`]), never
//! from JSON, so two nodes that agree on the bytes agree on every hash. Hashing is a single
//! SHA-256 (not Bitcoin's double SHA-256): one compression per nonce makes mining and
//! benchmarks easy to reason about, and length-extension does not matter for fixed-size headers.

pub mod addr;
pub mod block;
pub mod encode;
pub mod genesis;
pub mod hash;
pub mod header;
pub mod keys;
pub mod merkle;
pub mod pow;
pub mod transaction;

pub use addr::{AddrError, PeerAddr};
pub use block::Block;
pub use encode::DecodeError;
pub use genesis::{accounts_genesis_block, genesis_block};
pub use hash::{BlockHash, Hash256, MerkleRoot, Txid, sha256, sha256_parts};
pub use header::Header;
pub use keys::{Address, KeyError, PublicKey, SecretKey, SignatureBytes};
pub use merkle::{MerkleProof, compute_merkle_root};
pub use pow::{CompactTarget, Target, Work};
pub use transaction::{Signed, Transaction, TxError};
