//! Messages between nodes, one per frame on a link (docs/NETWORK.md). Carried as JSON; blocks travel as the hex of their canonical
//! encoding so that the receiver hashes exactly the bytes the sender mined.

use std::sync::Arc;

use chainsim_primitives::block::DecodeLimits;
use chainsim_primitives::{Block, BlockHash, Header, Transaction, Txid, Work};
use serde::{Deserialize, Serialize};

use crate::peers::{LinkToken, PeerAddr};

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

/// Most bytes of one encoded block in a message (the default network's limit; a stricter
/// network rejects bigger blocks in validation).
pub const MAX_WIRE_BLOCK_BYTES: usize = 1_000_000;
/// Most bytes of block encodings a `Blocks` answer carries: a server stops adding blocks
/// past it (the first block always goes), so a batch of big blocks comes in several answers.
pub const MAX_BLOCKS_MESSAGE_BYTES: usize = 4 * MAX_WIRE_BLOCK_BYTES;
/// Room a transaction may take in JSON: every name character escaped as `\uXXXX` still fits.
const MAX_TX_JSON: usize = 1_024;
/// Room for a message's field names, separators and numbers besides its lists.
const ENVELOPE: usize = 256;
/// Room one hash takes in a JSON list: 64 hex digits, quotes and a comma.
const HASH_JSON: usize = 67;

/// Most bytes a frame of the message kind `kind` (the `type` tag) may have, or `None` for a
/// kind this protocol does not know. Transports check it against a frame's announced length
/// *before* reading the body, so no peer can make a node buffer or decode more than the
/// biggest honest message of that kind (docs/SECURITY.md).
pub fn max_frame_bytes(kind: &str) -> Option<usize> {
    let list = |count: usize, each: usize| ENVELOPE + count * each;
    Some(match kind {
        "hello" => 4 * 1024,
        "ping" | "get_addr" => ENVELOPE,
        "addr" => list(MAX_ADDRS_PER_MESSAGE, 300),
        "headers" => list(MAX_INV_PER_MESSAGE, 2 * Header::SIZE + 3),
        "inv" | "get_data" | "not_found" => list(MAX_INV_PER_MESSAGE, HASH_JSON),
        "txs" => list(MAX_TXS_PER_MESSAGE, MAX_TX_JSON),
        "block" => list(1, 2 * MAX_WIRE_BLOCK_BYTES + 3),
        "get_blocks" => list(crate::sync::MAX_LOCATOR, HASH_JSON),
        // Hex doubles the bytes; every block adds its quotes and comma.
        "blocks" => list(MAX_BLOCKS_PER_MESSAGE, 3) + 2 * (MAX_BLOCKS_MESSAGE_BYTES + MAX_WIRE_BLOCK_BYTES),
        _ => return None,
    })
}

/// The largest frame of any kind.
pub fn max_frame_any() -> usize {
    Message::KINDS
        .iter()
        .filter_map(|k| max_frame_bytes(k))
        .max()
        .unwrap_or(0)
}

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
        if s.len() > 2 * MAX_WIRE_BLOCK_BYTES {
            return Err(serde::de::Error::custom(format!(
                "a block of {} bytes is over the {MAX_WIRE_BLOCK_BYTES}-byte limit",
                s.len() / 2
            )));
        }
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
///
/// Held as two 64-bit halves rather than a `u128`: a `u128` would align every [`Message`]
/// to 16 bytes and round it up to 64, where messages are moved by the million through a
/// simulator's event queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireWork([u64; 2]);

impl WireWork {
    /// The wire form of `work`.
    pub fn new(work: Work) -> Self {
        Self([work.0 as u64, (work.0 >> 64) as u64])
    }

    /// The work it carries.
    pub fn work(self) -> Work {
        Work(u128::from(self.0[0]) | (u128::from(self.0[1]) << 64))
    }
}

impl Serialize for WireWork {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.work().0.to_string())
    }
}

impl<'de> Deserialize<'de> for WireWork {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse::<u128>()
            .map(|w| Self::new(Work(w)))
            .map_err(serde::de::Error::custom)
    }
}

/// Blocks and transactions named by id: what a [`Message::GetData`] asks for, what a
/// [`Message::NotFound`] says is missing, and what relay wants from one link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Items {
    /// Block hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<BlockHash>,
    /// Transaction ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub txs: Vec<Txid>,
}

impl Items {
    /// Whether it names nothing.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.txs.is_empty()
    }
}

/// The addresses a [`Message::Addr`] carries: on the wire, a list of at most
/// [`MAX_ADDRS_PER_MESSAGE`].
///
/// A node's answer to `GetAddr` is the same list for every peer that asks until its
/// address book changes, less one address, the asker's own; so the list is shared (one
/// allocation per change, not one copy of every address per asker) and the address left
/// out is named beside it. On a simulator's ten thousand nodes the copies were most of the
/// memory, and much of the time, of the network forming.
#[derive(Debug, Clone, Default)]
pub struct AddrList {
    all: Arc<[PeerAddr]>,
    /// Left out wherever it appears in `all`.
    except: Option<PeerAddr>,
    /// How many of the others it holds (the first ones).
    len: usize,
}

impl AddrList {
    /// Up to `max` of `all`, in order, leaving out `except`.
    pub fn shared(all: Arc<[PeerAddr]>, except: Option<PeerAddr>, max: usize) -> Self {
        let kept = all.iter().filter(|a| Some(*a) != except.as_ref()).take(max).count();
        Self { all, except, len: kept }
    }
    /// The addresses, in order.
    pub fn iter(&self) -> impl Iterator<Item = &PeerAddr> {
        let except = self.except.as_ref();
        self.all.iter().filter(move |a| Some(*a) != except).take(self.len)
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl From<Vec<PeerAddr>> for AddrList {
    fn from(addrs: Vec<PeerAddr>) -> Self {
        let len = addrs.len();
        Self {
            all: addrs.into(),
            except: None,
            len,
        }
    }
}

impl PartialEq for AddrList {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for AddrList {}

impl PartialEq<Vec<PeerAddr>> for AddrList {
    fn eq(&self, other: &Vec<PeerAddr>) -> bool {
        self.len == other.len() && self.iter().eq(other.iter())
    }
}

impl Serialize for AddrList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for AddrList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<PeerAddr>::deserialize(deserializer).map(Self::from)
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
    /// be duplicates without trusting any claimed address (see docs/NETWORK.md). On the
    /// wire 32 hex digits; held in binary, so that no hello is encoded to text or decoded
    /// from it in memory. Whatever else a peer sends there is no token (`None`), and
    /// `None` travels as an empty string.
    #[serde(with = "token_hex")]
    pub token: Option<LinkToken>,
}

/// A hello's token as text on the wire (see [`Hello::token`]).
mod token_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::peers::LinkToken;

    pub fn serialize<S: Serializer>(token: &Option<LinkToken>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&token.map(LinkToken::to_hex).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LinkToken>, D::Error> {
        Ok(LinkToken::parse(&String::deserialize(d)?))
    }
}

/// One protocol message. Each travels as one frame on a link; the sender of a message is
/// the link it arrives on, never something the message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Handshake (once per direction per link).
    Hello(Box<Hello>),
    /// Keep-alive carrying the sender's best height and work.
    Ping {
        /// Sender's best height.
        height: u64,
        /// Sender's best work.
        work: WireWork,
    },
    /// Asks for known peer addresses.
    GetAddr,
    /// Known peer addresses (boxed, as `GetData`'s ids: rare outside a network forming,
    /// and inline they would make every message larger; see [`Message::addr`]).
    Addr {
        /// The addresses.
        addrs: Box<AddrList>,
    },
    /// New blocks announced by header, lowest first: the receiver checks the proof of
    /// work, then fetches bodies whose parent it has, or catches up when it lacks the parent.
    Headers {
        /// The headers: shared, as a block's announcement goes to every peer alike (one
        /// allocation, not one per peer).
        headers: Arc<[WireHeader]>,
    },
    /// "I have these": new transactions announced by id.
    Inv {
        /// Transaction ids.
        txs: Vec<Txid>,
    },
    /// "Send me these": the announced items the receiver lacks. Boxed: its two lists
    /// inline made every message 48 bytes, and a simulator moves millions of them through
    /// its queue; one allocation per request costs less (see [`Message::get_data`]).
    GetData(Box<Items>),
    /// Items asked for that the sender no longer has (boxed, as `GetData`).
    NotFound(Box<Items>),
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
        /// The blocks (a boxed slice, not a `Vec`: a word less keeps every message in
        /// 32 bytes).
        blocks: Box<[WireBlock]>,
        /// The sender's best height, so the receiver knows whether to ask again.
        tip_height: u64,
    },
}

impl Message {
    /// An `Addr` message with `addrs`.
    pub fn addr(addrs: impl Into<AddrList>) -> Self {
        Message::Addr {
            addrs: Box::new(addrs.into()),
        }
    }

    /// A `GetData` message asking for `items`.
    pub fn get_data(items: Items) -> Self {
        Message::GetData(Box::new(items))
    }

    /// Every kind's tag, as [`Message::kind`] names it and as it travels in `type`.
    pub const KINDS: [&'static str; 12] = [
        "hello",
        "ping",
        "get_addr",
        "addr",
        "headers",
        "inv",
        "get_data",
        "not_found",
        "txs",
        "block",
        "get_blocks",
        "blocks",
    ];

    /// Short name for logs and metrics: the `type` tag the message travels with.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Ping { .. } => "ping",
            Self::GetAddr => "get_addr",
            Self::Addr { .. } => "addr",
            Self::Headers { .. } => "headers",
            Self::Inv { .. } => "inv",
            Self::GetData(_) => "get_data",
            Self::NotFound { .. } => "not_found",
            Self::Txs { .. } => "txs",
            Self::Block { .. } => "block",
            Self::GetBlocks { .. } => "get_blocks",
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    fn hash(i: usize) -> BlockHash {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        BlockHash(bytes)
    }

    #[test]
    fn a_message_takes_four_words() {
        // A simulator moves millions of them through its event queue (see `WireWork` and
        // `GetData`): with the simulator's event and queue key, one cache line.
        assert_eq!(std::mem::size_of::<Message>(), 32);
    }

    #[test]
    fn a_hello_token_travels_as_hex_and_anything_else_is_no_token() {
        let token = LinkToken([0xab; 16]);
        let hello = |token| Hello {
            version: PROTOCOL_VERSION,
            genesis: hash(1),
            listen: "10.0.0.1:8333".parse().unwrap(),
            height: 7,
            work: WireWork::new(Work(9)),
            agent: "test".into(),
            token,
        };
        let json = serde_json::to_value(Message::Hello(Box::new(hello(Some(token))))).unwrap();
        assert_eq!(json["token"], "ab".repeat(16));
        let back: Message = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, Message::Hello(Box::new(hello(Some(token)))));
        for other in ["", "evil4", &"ab".repeat(15), &"ab".repeat(17), &"zz".repeat(16)] {
            let mut json = json.clone();
            json["token"] = other.into();
            let back: Message = serde_json::from_value(json).unwrap();
            assert_eq!(back, Message::Hello(Box::new(hello(None))), "token {other:?}");
        }
        let none = serde_json::to_value(Message::Hello(Box::new(hello(None)))).unwrap();
        assert_eq!(none["token"], "");
        let mut not_text = json;
        not_text["token"] = 5.into();
        assert!(serde_json::from_value::<Message>(not_text).is_err());
    }

    #[test]
    fn work_survives_the_wire_form() {
        for w in [0, 1, u128::from(u64::MAX), u128::from(u64::MAX) + 1, u128::MAX] {
            assert_eq!(WireWork::new(Work(w)).work(), Work(w));
            let json = serde_json::to_string(&WireWork::new(Work(w))).unwrap();
            assert_eq!(json, format!("\"{w}\""));
        }
    }

    #[test]
    fn requests_and_answers_for_items_keep_their_wire_form() {
        let items = Items {
            blocks: vec![hash(1)],
            txs: Vec::new(),
        };
        let h = hash(1).to_hex();
        let get = serde_json::to_string(&Message::get_data(items.clone())).unwrap();
        assert_eq!(get, format!(r#"{{"type":"get_data","blocks":["{h}"]}}"#));
        let missing = serde_json::to_string(&Message::NotFound(Box::new(items))).unwrap();
        assert_eq!(missing, format!(r#"{{"type":"not_found","blocks":["{h}"]}}"#));
        assert_eq!(
            serde_json::from_str::<Message>(&get).unwrap(),
            Message::get_data(Items {
                blocks: vec![hash(1)],
                txs: Vec::new()
            })
        );
    }

    fn frame_len(msg: &Message) -> usize {
        serde_json::to_vec(msg).unwrap().len()
    }

    fn fits(msg: &Message) {
        let (len, max) = (frame_len(msg), max_frame_bytes(msg.kind()).unwrap());
        assert!(len <= max, "{} of {len} bytes is over its {max}-byte limit", msg.kind());
        let text = serde_json::to_string(msg).unwrap();
        assert!(
            text.starts_with(&format!("{{\"type\":\"{}\"", msg.kind())),
            "{}",
            &text[..40]
        );
    }

    #[test]
    fn a_shared_address_list_travels_as_the_list_it_stands_for() {
        let addr = |i: usize| -> PeerAddr { format!("10.0.0.{i}:8333").parse().unwrap() };
        let all: Arc<[PeerAddr]> = (1..=4).map(addr).collect();
        // The asker's own address left out, at most three kept.
        let answer = AddrList::shared(all.clone(), Some(addr(2)), 3);
        assert_eq!(answer.len(), 3);
        assert_eq!(answer, vec![addr(1), addr(3), addr(4)]);
        let msg = Message::addr(answer);
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "addr", "addrs": ["10.0.0.1:8333", "10.0.0.3:8333", "10.0.0.4:8333"]})
        );
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(
            back, msg,
            "a list read from the wire equals the shared one it came from"
        );
        // An asker not in the list: the first `max`.
        let other = AddrList::shared(all, Some(addr(9)), 3);
        assert_eq!(other, vec![addr(1), addr(2), addr(3)]);
        assert!(AddrList::default().is_empty());
    }

    #[test]
    fn the_biggest_honest_message_of_every_kind_fits_its_limit() {
        let hashes: Vec<_> = (0..MAX_INV_PER_MESSAGE).map(hash).collect();
        let name = "n".repeat(chainsim_primitives::transaction::MAX_NAME_LEN);
        let tx = Transaction::new(&name, &name, u64::MAX, u64::MAX);
        let header = crate::params::ChainParams::testnet().genesis().header;
        let addr: PeerAddr = format!("{}:65535", "h".repeat(253)).parse().unwrap();
        let cases = [
            Message::Inv {
                txs: hashes.iter().map(|h| Txid(h.0)).collect(),
            },
            Message::get_data(Items {
                blocks: hashes.clone(),
                txs: Vec::new(),
            }),
            Message::NotFound(Box::new(Items {
                blocks: hashes.clone(),
                txs: Vec::new(),
            })),
            Message::Headers {
                headers: vec![WireHeader(header); MAX_INV_PER_MESSAGE].into(),
            },
            Message::Txs {
                txs: vec![tx; MAX_TXS_PER_MESSAGE],
            },
            Message::addr(vec![addr; MAX_ADDRS_PER_MESSAGE]),
            Message::GetBlocks {
                locator: hashes[..crate::sync::MAX_LOCATOR].to_vec(),
                limit: u32::MAX,
            },
            Message::Ping {
                height: u64::MAX,
                work: WireWork::new(Work(u128::MAX)),
            },
            Message::GetAddr,
        ];
        for msg in &cases {
            fits(msg);
        }
        assert_eq!(max_frame_any(), max_frame_bytes("blocks").unwrap());
        assert!(max_frame_bytes("nonsense").is_none());
        for kind in Message::KINDS {
            assert!(max_frame_bytes(kind).is_some(), "{kind} has a limit");
        }
    }
}
