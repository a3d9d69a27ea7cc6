//! Input rules the dashboard checks itself before a request reaches any node, mirroring
//! the node API's rules so that the page gets a precise message instead of a node's error.

use serde_json::Value;

/// The longest name the node API accepts, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// The most nodes the dashboard will watch, so that a misbehaving peer list cannot make
/// it open thousands of connections.
pub const MAX_NODES: usize = 64;

/// Checks a sender or recipient name: 1 to 64 bytes of UTF-8 without control characters.
pub fn name(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is required"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(format!("{field} must be at most {MAX_NAME_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(())
}

/// Checks the whole transaction: both names, and a sender other than the coinbase's `"0"`.
pub fn transaction(sender: &str, recipient: &str) -> Result<(), String> {
    name("sender", sender)?;
    name("recipient", recipient)?;
    if sender == "0" {
        return Err("sender \"0\" is reserved for mining rewards".to_owned());
    }
    Ok(())
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

/// Normalises a node address to `HOST:PORT`: accepts an `http://` prefix and a trailing
/// slash as the original's peer lists had them, rejects anything else.
pub fn address(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let s = s.strip_prefix("http://").unwrap_or(s);
    let s = s.strip_suffix('/').unwrap_or(s);
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{raw:?} is not HOST:PORT"));
    };
    let port_ok = matches!(port.parse::<u16>(), Ok(p) if p > 0);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !port_ok || !host_ok {
        return Err(format!("{raw:?} is not HOST:PORT"));
    }
    Ok(format!("{host}:{port}"))
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
        assert!(transaction("Alice", "Bob").is_ok());
        assert!(transaction("<script>alert(1)</script>", "Bob").is_ok());
        assert!(transaction("", "Bob").is_err());
        assert!(transaction("   ", "Bob").is_err());
        assert!(transaction("Alice", "").is_err());
        assert!(transaction("0", "Bob").is_err());
        assert!(transaction("a\u{7}", "Bob").is_err());
        assert!(transaction(&"x".repeat(65), "Bob").is_err());
        assert!(transaction(&"x".repeat(64), "Bob").is_ok());
    }

    #[test]
    fn addresses() {
        assert_eq!(address("127.0.0.1:5000").as_deref(), Ok("127.0.0.1:5000"));
        assert_eq!(address("http://127.0.0.1:5001/").as_deref(), Ok("127.0.0.1:5001"));
        assert_eq!(address("localhost:80").as_deref(), Ok("localhost:80"));
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
