//! chainsim's sans-IO core: validation, the block tree and fork choice, the mempool, and
//! the node's protocol state machine. It reads no clock, opens no socket and spawns no
//! task: callers pass the time in and carry the outputs out (see [`node`]), through the
//! one piece of transport glue in [`link`].

pub mod accept;
pub mod addrbook;
pub mod chain;
pub mod conditions;
pub mod event;
pub mod event_queue;
pub mod eviction;
pub mod input;
pub mod keyed_hash;
pub mod ledger;
pub mod link;
pub mod mempool;
mod messages;
pub mod metrics;
pub mod mining_schedule;
pub mod node;
pub mod orphans;
pub mod output;
pub mod params;
pub mod peering;
pub mod peers;
pub mod protocol;
pub mod relay;
pub mod store;
pub mod sync;
pub mod tamper;
pub mod testnet;
pub mod time;

pub use chain::{BlockTree, CheckedBlock, TipChange, ValidationError};
pub use conditions::{LinkConditions, LinkQueue};
pub use event::{Event, EventKind, EventKinds};
pub use input::{Command, CommandId, Input};
pub use ledger::{Account, Ledger, LedgerError, LedgerKind};
pub use link::{Effects, LinkTag, PeerIds, drain};
pub use mempool::Mempool;
pub use metrics::ChainMetrics;
pub use mining_schedule::{MiningMode, MiningSchedule};
pub use node::{
    BlockOutcome, BlockRejected, Node, NodeConfig, Origin, RestoreError, RestoreReport, TxOutcome, TxRejected,
};
pub use output::{Output, Reply};
pub use params::ChainParams;
pub use peers::{PeerAddr, PeerId, PeerState};
pub use protocol::Message;
pub use relay::RelayMode;
pub use store::{ChainStore, MemoryStore, StoreOp, StoredState};
pub use time::Time;
