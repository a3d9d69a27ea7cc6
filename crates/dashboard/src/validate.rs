//! Input rules the dashboard checks itself before a request reaches any node, so that the
//! page gets a precise message instead of a node's error. The rules are the node's own:
//! names go through `Transaction::transfer` and addresses through `PeerAddr`, both from
//! chainsim-primitives.

use chainsim_api::{NewTxRequest, now_ms};
use chainsim_primitives::{AddrError, PeerAddr, Transaction};
use serde_json::Value;

/// The most nodes the dashboard will watch, so that a misbehaving peer list cannot make
/// it open thousands of connections.
pub const MAX_NODES: usize = 64;

/// Checks a transfer by the same rules as the node (names trimmed, then 1 to 64 bytes
/// without control characters; the sender not the coinbase's `"0"`; amount at least 1)
/// and returns the request to send, stamped with the current time.
pub fn transaction(sender: &str, recipient: &str, amount: u64) -> Result<NewTxRequest, String> {
    let tx = Transaction::transfer(sender, recipient, amount, now_ms()).map_err(|e| e.to_string())?;
    Ok(NewTxRequest {
        amount: tx.amount,
        recipient: tx.recipient,
        sender: tx.sender,
        time: Some(tx.timestamp as f64 / 1000.0),
    })
}

/// Reads an amount from JSON: a positive integer, given as a number or as a string of
/// digits (what an HTML form field holds).
pub fn amount(value: Option<&Value>) -> Result<u64, String> {
    const RULE: &str = "amount must be a whole number of at least 1";
    match value {
        None | Some(Value::Null) => Err("amount is required".to_owned()),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) | None => Err(RULE.to_owned()),
            Some(a) => Ok(a),
        },
        Some(Value::String(s)) => amount_text(s),
        Some(_) => Err(RULE.to_owned()),
    }
}

/// Reads an amount typed as text: digits only (no sign, no decimal point), at least 1.
pub fn amount_text(s: &str) -> Result<u64, String> {
    const RULE: &str = "amount must be a whole number of at least 1";
    let s = s.trim();
    if s.is_empty() {
        return Err("amount is required".to_owned());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RULE.to_owned());
    }
    match s.parse::<u64>() {
        Ok(0) => Err(RULE.to_owned()),
        Ok(a) => Ok(a),
        Err(_) => Err("amount is too large".to_owned()),
    }
}

/// Reads a node address (`HOST:PORT`, `http://HOST:PORT/`, `localhost:PORT`) into the one
/// form every node has, so that two spellings of one node are one node.
pub fn address(raw: &str) -> Result<PeerAddr, String> {
    raw.parse().map_err(|e: AddrError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts() {
        assert_eq!(amount(Some(&json!(10))), Ok(10));
        assert_eq!(amount(Some(&json!("10"))), Ok(10));
        assert_eq!(amount(Some(&json!(" 7 "))), Ok(7));
        for bad in [
            json!(0),
            json!(-5),
            json!(1.5),
            json!("1.5"),
            json!("abc"),
            json!("-5"),
            json!("+5"),
            json!(""),
            json!(true),
            json!([1]),
            json!("99999999999999999999999"),
        ] {
            assert!(amount(Some(&bad)).is_err(), "{bad} accepted");
        }
        assert!(amount(None).is_err());
        assert!(amount(Some(&Value::Null)).is_err());
    }

    #[test]
    fn names() {
        let t = |s: &str, r: &str| transaction(s, r, 10);
        let walkthrough = t("Alice", "Bob").expect("the original's walkthrough");
        assert_eq!(
            (walkthrough.sender.as_str(), walkthrough.recipient.as_str()),
            ("Alice", "Bob")
        );
        assert_eq!(walkthrough.amount, 10);
        assert!(t("<script>alert(1)</script>", "Bob").is_ok());
        assert!(t("", "Bob").is_err());
        assert!(t("   ", "Bob").is_err());
        assert!(t("Alice", "").is_err());
        assert!(t("0", "Bob").is_err());
        assert!(t(" 0 ", "Bob").is_err());
        assert!(t("a\u{7}", "Bob").is_err());
        assert!(t(&"x".repeat(65), "Bob").is_err());
        assert!(t(&"x".repeat(64), "Bob").is_ok());
        let padded = t("  Alice ", "Bob\t").expect("trimmed like the node does");
        assert_eq!((padded.sender.as_str(), padded.recipient.as_str()), ("Alice", "Bob"));
    }

    #[test]
    fn addresses() {
        let ok = |a: &str| address(a).map(|a| a.to_string());
        assert_eq!(ok("127.0.0.1:5000").as_deref(), Ok("127.0.0.1:5000"));
        assert_eq!(ok("http://127.0.0.1:5001/").as_deref(), Ok("127.0.0.1:5001"));
        assert_eq!(ok("localhost:80").as_deref(), Ok("127.0.0.1:80"));
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            ":5000",
            "a b:1",
            "x/y:1",
        ] {
            assert!(address(bad).is_err(), "{bad} accepted");
        }
    }
}
