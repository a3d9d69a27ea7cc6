//! chainsim's sans-IO core: validation, the block tree and fork choice, the mempool, and
//! the node's protocol state machine. It reads no clock, opens no socket and spawns no
//! task: callers pass the time in and carry the outputs out (see [`node`]).

pub mod chain;
pub mod event;
pub mod gossip;
pub mod mempool;
pub mod node;
pub mod params;
pub mod peering;
pub mod peers;
pub mod protocol;
pub mod store;
pub mod sync;

pub use chain::{BlockTree, CheckedBlock, TipChange, ValidationError};
pub use event::Event;
pub use mempool::Mempool;
pub use node::{
    BlockOutcome, BlockRejected, Node, NodeConfig, Origin, Output, PeerError, RestoreError, RestoreReport, TxOutcome,
    TxRejected,
};
pub use params::ChainParams;
pub use peers::{PeerAddr, PeerState};
pub use protocol::Message;
pub use store::{ChainStore, MemoryStore, StoreOp, StoredState};
