//! Messages between nodes, one per frame on a link (docs/NETWORK.md). Carried as JSON; blocks travel as the hex of their canonical
//! encoding so that the receiver hashes exactly the bytes the sender mined.

use std::sync::Arc;

use chainsim_primitives::block::DecodeLimits;
use chainsim_primitives::{Block, BlockHash, Header, Transaction, Txid, Work};
use serde::{Deserialize, Serialize};

use crate::peers::PeerAddr;

/// Version of this protocol; peers on another version are refused.
pub const PROTOCOL_VERSION: u32 = 2;
/// Most blocks one `Blocks` message may carry.
pub const MAX_BLOCKS_PER_MESSAGE: usize = 500;
/// Most transactions one `Txs` message may carry.
pub const MAX_TXS_PER_MESSAGE: usize = 5_000;
/// Most ids one `Inv`, `GetData` or `NotFound` message may carry.
pub const MAX_INV_PER_MESSAGE: usize = 5_000;
/// Most addresses one `Addr` message may carry.
pub const MAX_ADDRS_PER_MESSAGE: usize = 100;
/// Most transactions a block decoded from a message may hold (the default network's limit;
/// a stricter network rejects bigger blocks in validation).
pub const MAX_WIRE_BLOCK_TXS: usize = 10_000;

/// A block as it travels: the hex of its canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireBlock(pub Arc<Block>);

impl Serialize for WireBlock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0.encode()))
    }
}

impl<'de> Deserialize<'de> for WireBlock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = hex::decode(s.as_bytes()).map_err(serde::de::Error::custom)?;
        let block = Block::decode(
            &bytes,
            DecodeLimits {
                max_txs: MAX_WIRE_BLOCK_TXS,
            },
        )
        .map_err(serde::de::Error::custom)?;
        Ok(Self(Arc::new(block)))
    }
}

/// A header as it travels: the hex of its 96 canonical bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireHeader(pub Header);

impl Serialize for WireHeader {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0.encode()))
    }
}

impl<'de> Deserialize<'de> for WireHeader {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = hex::decode(s.as_bytes()).map_err(serde::de::Error::custom)?;
        let mut r = chainsim_primitives::encode::Reader::new(&bytes);
        let header = Header::decode_from(&mut r).map_err(serde::de::Error::custom)?;
        r.finish().map_err(serde::de::Error::custom)?;
        Ok(Self(header))
    }
}

/// Cumulative work as a decimal string (JSON numbers lose precision past 2^53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireWork(pub Work);

impl Serialize for WireWork {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.0.to_string())
    }
}

impl<'de> Deserialize<'de> for WireWork {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse::<u128>()
            .map(|w| Self(Work(w)))
            .map_err(serde::de::Error::custom)
    }
}

/// The handshake: the first message on every link, sent by the side that opened it and
/// answered with the other side's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The sender's genesis hash; must equal ours.
    pub genesis: BlockHash,
    /// Where the sender listens (a claim: proven only for the side that dialled it).
    pub listen: PeerAddr,
    /// The sender's best height.
    pub height: u64,
    /// The sender's best chain work.
    pub work: WireWork,
    /// Software name and version, for logs.
    pub agent: String,
    /// The sender's link token for the receiver: the same on every link between the same
    /// two nodes and unguessable by anyone else, so two links between one pair are seen to
    /// be duplicates without trusting any claimed address (see docs/NETWORK.md).
    pub token: String,
}

/// One protocol message. Each travels as one frame on a link; the sender of a message is
/// the link it arrives on, never something the message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Handshake (once per direction per link).
    Hello(Hello),
    /// Keep-alive carrying the sender's best height and work.
    Ping {
        /// Sender's best height.
        height: u64,
        /// Sender's best work.
        work: WireWork,
    },
    /// Asks for known peer addresses.
    GetAddr,
    /// Known peer addresses.
    Addr {
        /// The addresses.
        addrs: Vec<PeerAddr>,
    },
    /// New blocks announced by header, lowest first: the receiver checks the proof of
    /// work, then fetches bodies whose parent it has, or catches up when it lacks the parent.
    Headers {
        /// The headers.
        headers: Vec<WireHeader>,
    },
    /// "I have these": new transactions announced by id.
    Inv {
        /// Transaction ids.
        txs: Vec<Txid>,
    },
    /// "Send me these": the announced items the receiver lacks.
    GetData {
        /// Block hashes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<BlockHash>,
        /// Transaction ids.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        txs: Vec<Txid>,
    },
    /// Items asked for that the sender no longer has.
    NotFound {
        /// Block hashes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<BlockHash>,
        /// Transaction ids.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        txs: Vec<Txid>,
    },
    /// Transactions: asked for, or pushed in push relay mode.
    Txs {
        /// The transactions.
        txs: Vec<Transaction>,
    },
    /// One block: asked for, or pushed in push relay mode.
    Block {
        /// The block.
        block: WireBlock,
    },
    /// Asks for best-chain blocks after the first locator hash the receiver knows.
    GetBlocks {
        /// Recent hashes then exponentially sparser, ending at genesis.
        locator: Vec<BlockHash>,
        /// How many blocks at most.
        limit: u32,
    },
    /// Blocks answering `GetBlocks`, lowest first.
    Blocks {
        /// The blocks.
        blocks: Vec<WireBlock>,
        /// The sender's best height, so the receiver knows whether to ask again.
        tip_height: u64,
    },
}

impl Message {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Ping { .. } => "ping",
            Self::GetAddr => "getaddr",
            Self::Addr { .. } => "addr",
            Self::Headers { .. } => "headers",
            Self::Inv { .. } => "inv",
            Self::GetData { .. } => "getdata",
            Self::NotFound { .. } => "notfound",
            Self::Txs { .. } => "txs",
            Self::Block { .. } => "block",
            Self::GetBlocks { .. } => "getblocks",
            Self::Blocks { .. } => "blocks",
        }
    }

    /// Whether the message carries block bodies (for counting what crosses a link).
    pub fn carries_blocks(&self) -> usize {
        match self {
            Self::Block { .. } => 1,
            Self::Blocks { blocks, .. } => blocks.len(),
            _ => 0,
        }
    }
}
