//! How many bytes a message costs on the simulated wire.
//!
//! The scenarios' bandwidths are measurements of Bitcoin's network, so messages are charged
//! at the size of Bitcoin's binary encoding of the same content (a 24-byte message header,
//! 36 bytes per inventory entry, a block at its nominal size), not the size of the JSON
//! frames chainsim's live nodes exchange. Block bodies are charged at the scenario's nominal
//! block size: the simulated blocks hold only their coinbase, so that thousands of nodes do
//! not validate thousands of synthetic transactions.

use chainsim_core::Message;
use chainsim_primitives::{Block, Header};

/// Bitcoin's message header: magic, command, length, checksum.
const ENVELOPE: u64 = 24;
/// One inventory entry: a type and a hash.
const INV_ENTRY: u64 = 36;
/// One address entry: time, services, IP, port.
const ADDR_ENTRY: u64 = 30;
/// A version message's payload, about.
const HELLO: u64 = 110;

/// Bytes of `msg` on the wire, with each block body counted at `block_bytes(block)`.
pub fn message_bytes(msg: &Message, block_bytes: impl Fn(&Block) -> u64) -> u64 {
    let n = |len: usize| len as u64;
    ENVELOPE
        + match msg {
            Message::Hello(_) => HELLO,
            Message::Ping { .. } => 8,
            Message::GetAddr => 0,
            Message::Addr { addrs } => 1 + ADDR_ENTRY * n(addrs.len()),
            Message::Headers { headers } => 1 + (Header::SIZE as u64 + 1) * n(headers.len()),
            Message::Inv { txs } => 1 + INV_ENTRY * n(txs.len()),
            Message::GetData(items) => 1 + INV_ENTRY * n(items.blocks.len() + items.txs.len()),
            Message::NotFound(items) => 1 + INV_ENTRY * n(items.blocks.len() + items.txs.len()),
            Message::Txs { txs } => txs.iter().map(|t| t.encoded_len() as u64).sum(),
            Message::Block { block } => block_bytes(&block.0),
            Message::GetBlocks { locator, .. } => 4 + 1 + 32 * n(locator.len()) + 32,
            Message::Blocks { blocks, .. } => blocks.iter().map(|b| block_bytes(&b.0)).sum(),
        }
}
