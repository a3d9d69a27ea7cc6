//! `chainsim wallet`: a key file, a signed transfer, a balance, talking to a node's HTTP API
//! (`GET /accounts/{address}`, `POST /transactions/signed`). Keys never leave this process:
//! the transfer is signed here and only the signed transaction is sent.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use chainsim_api::{AccountView, NewTxAnswer, SignedTxRequest};
use chainsim_primitives::keys::demo_key;
use chainsim_primitives::{Address, SecretKey, Transaction};

/// The wallet's commands.
#[derive(clap::Subcommand, Debug)]
pub enum WalletCommand {
    /// Make a new key from the operating system's randomness and write it to a file.
    New {
        /// Where to write the key (refuses to overwrite).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign a transfer here and submit it to a node.
    Send {
        /// The key file (from `wallet new`), or a demo account's name (alice ... judy).
        #[arg(long, value_name = "FILE|NAME")]
        key: String,
        /// The address paid (or a demo account's name).
        #[arg(long, value_name = "ADDRESS")]
        to: String,
        /// How much.
        #[arg(long)]
        amount: u64,
        /// The node, as HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:5000", value_name = "HOST:PORT")]
        node: String,
    },
    /// Show an account's confirmed and pending balance at a node.
    Balance {
        /// The address (or a demo account's name).
        address: String,
        /// The node, as HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:5000", value_name = "HOST:PORT")]
        node: String,
    },
}

/// Runs one wallet command, printing its result on stdout.
pub async fn run(command: WalletCommand) -> anyhow::Result<()> {
    match command {
        WalletCommand::New { out } => new_key(&out),
        WalletCommand::Send { key, to, amount, node } => send(&key, &to, amount, &node).await,
        WalletCommand::Balance { address, node } => balance(&address, &node).await,
    }
}

fn new_key(out: &PathBuf) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} exists already; not overwriting a key", out.display());
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness from the operating system: {e}"))?;
    let key = SecretKey::from_seed(seed);
    std::fs::write(out, format!("{}\n", key.to_hex())).with_context(|| format!("cannot write {}", out.display()))?;
    println!("address {}", key.address());
    println!(
        "key written to {} (keep it secret: it spends the address's funds)",
        out.display()
    );
    Ok(())
}

fn load_key(key: &str) -> anyhow::Result<SecretKey> {
    if let Some(k) = demo_key(key) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(key).with_context(|| format!("cannot read key file {key}"))?;
    SecretKey::from_hex(&text).map_err(|e| anyhow!("{key} is not a key file: {e}"))
}

fn address_of(text: &str) -> anyhow::Result<Address> {
    if let Some(k) = demo_key(text) {
        return Ok(k.address());
    }
    Address::parse(text.trim()).map_err(|e| anyhow!("{text:?} is not an address: {e}"))
}

/// The body of an error answer, `{"error": ...}`, or the status.
async fn error_of(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    match body["error"].as_str() {
        Some(e) => anyhow!("the node answered {}: {e}", status.as_u16()),
        None => anyhow!("the node answered {status}"),
    }
}

/// Sends `request` to `node` and decodes its answer as `T`; an error answer becomes its
/// `{"error": ...}` text, and an answer that is not a `T` says it is not `what`.
async fn call<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    node: &str,
    what: &str,
) -> anyhow::Result<T> {
    let resp = request.send().await.with_context(|| format!("cannot reach {node}"))?;
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    resp.json()
        .await
        .with_context(|| format!("{node} answered something that is not {what}"))
}

async fn account(client: &reqwest::Client, node: &str, address: &Address) -> anyhow::Result<AccountView> {
    call(
        client.get(format!("http://{node}/accounts/{address}")),
        node,
        "an account",
    )
    .await
}

async fn send(key: &str, to: &str, amount: u64, node: &str) -> anyhow::Result<()> {
    let key = load_key(key)?;
    let to = address_of(to)?;
    if amount == 0 {
        bail!("--amount must be at least 1");
    }
    let client = reqwest::Client::new();
    let from = account(&client, node, &key.address()).await?;
    let tx = Transaction::signed(&key, &to, amount, from.next_nonce, chainsim_api::now_ms());
    let body = SignedTxRequest::of(&tx).ok_or_else(|| anyhow!("the transfer is not signed"))?;
    let request = client.post(format!("http://{node}/transactions/signed")).json(&body);
    let answer: NewTxAnswer = call(request, node, "a transaction answer").await?;
    println!(
        "sent {amount} from {} to {to} (nonce {}): txid {}",
        key.address(),
        from.next_nonce,
        answer.txid
    );
    Ok(())
}

async fn balance(address: &str, node: &str) -> anyhow::Result<()> {
    let address = address_of(address)?;
    let client = reqwest::Client::new();
    let a = account(&client, node, &address).await?;
    println!(
        "{}{}: balance {} (with pending {}), nonce {} (next {})",
        a.address,
        a.name.map(|n| format!(" ({n})")).unwrap_or_default(),
        a.balance,
        a.pending_balance,
        a.nonce,
        a.next_nonce
    );
    Ok(())
}
