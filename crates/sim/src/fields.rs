//! Any field of a scenario set from the command line by its path in the scenario file:
//! `--set quiet_s=5000`, `--set network.processing_ms=5`, `--set topology.outbound=16`,
//! `--set network.region_share=[0.5,0.5]`. The scenario goes to its TOML form, the value is
//! put at the path, and the result is read back exactly as a file is, so a field gets the
//! same checks (its type, unknown names, the scenario's own rules) whichever way it comes.

use crate::error::SimError;
use crate::scenario::Scenario;

/// One `PATH=VALUE`: a dotted path into the scenario file, and a TOML value (a number, a
/// boolean, an array, a quoted string; anything else is taken as a bare string).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue {
    /// The path's keys, e.g. `["network", "processing_ms"]`.
    pub path: Vec<String>,
    /// The value to put there.
    pub value: toml::Value,
}

impl FieldValue {
    /// `PATH=VALUE` from its two halves.
    pub fn new(path: &str, value: &str) -> Result<Self, SimError> {
        Ok(Self {
            path: keys(path)?,
            value: parse_value(value),
        })
    }

    /// The path as written.
    pub fn path(&self) -> String {
        self.path.join(".")
    }
}

impl std::str::FromStr for FieldValue {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, SimError> {
        let (path, value) = s
            .split_once('=')
            .ok_or_else(|| bad(format!("{s:?} is not PATH=VALUE, e.g. quiet_s=5000")))?;
        Self::new(path.trim(), value.trim())
    }
}

/// The keys of a dotted path, each a bare TOML key (letters, digits, `_`).
pub fn keys(path: &str) -> Result<Vec<String>, SimError> {
    let bare = |k: &&str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !path.split('.').all(|k| bare(&k)) {
        return Err(bad(format!(
            "{path:?} is not a field path such as network.processing_ms"
        )));
    }
    Ok(path.split('.').map(str::to_string).collect())
}

fn bad(message: String) -> SimError {
    SimError::Invalid {
        name: "--set".into(),
        message,
    }
}

/// A value as TOML reads it after `key = `, or the text itself as a string.
fn parse_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// `scenario` with every value of `sets` put in place, in order; the result is not yet
/// checked against the scenario's rules ([`Scenario::validate`] is the caller's).
pub fn set_fields(scenario: &Scenario, sets: &[FieldValue]) -> Result<Scenario, SimError> {
    let invalid = |message: String| SimError::Invalid {
        name: scenario.name.clone(),
        message,
    };
    let mut doc = toml::Value::try_from(scenario).map_err(|e| invalid(format!("cannot set fields: {e}")))?;
    for set in sets {
        put(&mut doc, &set.path, set.value.clone()).map_err(|m| invalid(format!("{}: {m}", set.path())))?;
    }
    let mut out: Scenario = doc.try_into().map_err(|e: toml::de::Error| {
        let what = sets.iter().map(FieldValue::path).collect::<Vec<_>>().join(", ");
        invalid(format!("{what}: {}", first_line(&e.to_string())))
    })?;
    out.read_edges_file(None)?;
    Ok(out)
}

/// Puts `value` at `path` in `doc`, making the tables on the way that are not there yet
/// (a section a scenario may leave out, such as `transactions`).
fn put(doc: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, tables)) = path.split_last() else {
        return Err("an empty path".into());
    };
    let mut at = doc;
    for key in tables {
        let toml::Value::Table(table) = at else {
            return Err(format!("{key:?} is inside a value that is not a table"));
        };
        at = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    match at {
        toml::Value::Table(table) => {
            table.insert(last.clone(), value);
            Ok(())
        }
        _ => Err(format!("{last:?} is inside a value that is not a table")),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Scenario {
        Scenario::load("classroom").expect("built-in")
    }

    fn set(text: &str) -> FieldValue {
        text.parse().expect("a PATH=VALUE")
    }

    #[test]
    fn top_level_nested_and_array_fields_are_set_as_a_file_would_set_them() {
        let sets = [
            set("quiet_s=5000"),
            set("network.processing_ms=5.5"),
            set("topology.outbound=6"),
            set("network.upload_mbps=[10]"),
            set("relay=push"),
            set("description=\"a class, slower\""),
        ];
        let s = set_fields(&base(), &sets).expect("valid fields");
        assert_eq!(s.quiet_s, 5000.0);
        assert_eq!(s.network.processing_ms, 5.5);
        assert_eq!(s.topology.outbound, 6);
        assert_eq!(s.network.upload_mbps, vec![10.0]);
        assert_eq!(s.relay, crate::scenario::Relay::Push);
        assert_eq!(s.description, "a class, slower");
        // Everything else as it was.
        let b = base();
        assert_eq!((s.nodes, s.blocks, s.seed), (b.nodes, b.blocks, b.seed));
        assert_eq!(s.network.latency_ms, b.network.latency_ms);
    }

    #[test]
    fn a_section_the_scenario_leaves_out_is_made() {
        let s = set_fields(&base(), &[set("transactions.rate_per_s=2.5")]).expect("valid");
        assert_eq!(s.transactions.map(|t| t.rate_per_s), Some(2.5));
    }

    #[test]
    fn unknown_fields_wrong_types_and_bad_paths_are_refused_in_one_line() {
        let err = |sets: &[FieldValue]| set_fields(&base(), sets).expect_err("refused").to_string();
        let e = err(&[set("quiet=1")]);
        assert!(e.contains("unknown field") && e.contains("quiet"), "{e}");
        let e = err(&[set("network.nope=1")]);
        assert!(e.contains("unknown field") && e.contains("nope"), "{e}");
        let e = err(&[set("quiet_s=soon")]);
        assert!(e.contains("quiet_s"), "{e}");
        let e = err(&[set("nodes.inner=3")]);
        assert!(e.contains("not a table"), "{e}");
        for e in [err(&[set("quiet=1")]), err(&[set("quiet_s=soon")])] {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        for text in ["quiet_s", "=3", "a..b=1", "net work=1", "x-y=1"] {
            assert!(text.parse::<FieldValue>().is_err(), "{text}");
        }
    }

    #[test]
    fn values_are_read_as_toml_and_bare_words_as_strings() {
        assert_eq!(parse_value("3"), toml::Value::Integer(3));
        assert_eq!(parse_value("0.25"), toml::Value::Float(0.25));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("push"), toml::Value::String("push".into()));
        assert_eq!(parse_value("\"a b\""), toml::Value::String("a b".into()));
        let arr = parse_value("[1, 2]");
        assert_eq!(arr.as_array().map(Vec::len), Some(2));
    }
}
