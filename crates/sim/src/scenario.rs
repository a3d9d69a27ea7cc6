//! What a run simulates: a [`Scenario`], read from TOML (a file, or one of the scenarios
//! built into the binary from `scenarios/`), then adjusted by [`Overrides`] from flags.
//!
//! Every number in the built-in scenarios carries a comment naming the published
//! measurement it comes from (see `docs/SIMULATION.md`). Unknown fields are refused, so a
//! misspelt field is an error rather than a silently ignored setting.

use std::path::{Path, PathBuf};

use chainsim_core::LinkConditions;
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// The scenarios built into the binary: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("classroom", include_str!("../../../scenarios/classroom.toml")),
    ("bitcoin-2015", include_str!("../../../scenarios/bitcoin-2015.toml")),
    ("bitcoin-2019", include_str!("../../../scenarios/bitcoin-2019.toml")),
    ("litecoin", include_str!("../../../scenarios/litecoin.toml")),
    ("dogecoin", include_str!("../../../scenarios/dogecoin.toml")),
    ("ethereum-like", include_str!("../../../scenarios/ethereum-like.toml")),
];

/// How blocks travel between nodes (the core's [`chainsim_core::RelayMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    /// Header first, body fetched by those who lack it (the core's default).
    #[default]
    Announce,
    /// Whole blocks pushed to every peer.
    Push,
}

impl Relay {
    /// The core's setting.
    pub fn mode(self) -> chainsim_core::RelayMode {
        match self {
            Relay::Announce => chainsim_core::RelayMode::Announce,
            Relay::Push => chainsim_core::RelayMode::Push,
        }
    }
    /// The name used in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            Relay::Announce => "announce",
            Relay::Push => "push",
        }
    }
}

/// One simulation's setting, as in a scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in results.
    pub name: String,
    /// One line about what it models.
    #[serde(default)]
    pub description: String,
    /// Number of nodes.
    pub nodes: usize,
    /// The run ends when a block at this height is mined (then the quiet period follows).
    pub blocks: u64,
    /// Seed of every random choice of the run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Relay mode of every node.
    #[serde(default)]
    pub relay: Relay,
    /// Virtual seconds the links get to form before mining starts (at most).
    #[serde(default = "default_warmup_s")]
    pub warmup_s: f64,
    /// Virtual seconds the last block gets to spread after mining stops (at most).
    #[serde(default = "default_quiet_s")]
    pub quiet_s: f64,
    /// Addresses each node's address book keeps (the core's limit).
    #[serde(default = "default_known_addrs")]
    pub known_addrs: usize,
    /// Blocks below the tip whose full entries each node keeps; deeper ones are pruned, and
    /// a fork deeper than this is refused (as by a pruned Bitcoin node). None (only from
    /// code) keeps everything.
    #[serde(default = "default_keep_depth", skip_serializing_if = "Option::is_none")]
    pub keep_depth: Option<u64>,
    /// The Internet between the nodes.
    pub network: NetworkSpec,
    /// Who dials whom.
    pub topology: TopologySpec,
    /// Who mines, how often, how big the blocks are.
    pub mining: MiningSpec,
    /// Partitions at given times (none by default).
    #[serde(default)]
    pub partitions: Vec<PartitionSpec>,
    /// Changes to some links' conditions at given times (none by default).
    #[serde(default)]
    pub link_changes: Vec<LinkChangeSpec>,
    /// Nodes leaving and rejoining at given times (none by default).
    #[serde(default)]
    pub churn: Vec<ChurnSpec>,
    /// Synthetic transaction load (none by default: blocks hold only their coinbase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TxSpec>,
}

/// A change to the conditions of some links from a given time, optionally until a later
/// one. It applies to the link between two nodes (`nodes = [a, b]`), to every link touching
/// a region (`regions = ["asia"]`) or to every link between two regions (`regions = ["asia",
/// "europe"]`). Its effects add to the network model's: `latency_ms` more one-way delay,
/// `loss` a further chance that a message is lost (breaking its link, as network loss
/// does), `bandwidth_mbps` a cap on what the link carries, `cut` nothing crossing at all (as
/// in a partition: messages are lost, dials fail, links stay up).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkChangeSpec {
    /// When it starts, virtual seconds after mining starts.
    pub at_s: f64,
    /// When the links are restored, virtual seconds after mining starts (never when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_s: Option<f64>,
    /// The two ends of one link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<usize>,
    /// One region (every link touching it) or two (every link between them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// One-way delay added to every message, milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability that a message is lost (its link breaks).
    #[serde(default)]
    pub loss: f64,
    /// Most the link carries, Mbit/s, when below the nodes' own bandwidth; 0: no cap.
    #[serde(default)]
    pub bandwidth_mbps: f64,
    /// Nothing crosses the link.
    #[serde(default)]
    pub cut: bool,
}

/// Nodes that leave the network at a given time and, optionally, rejoin later. A node that
/// leaves loses every link (both ends notice after 2 s, as with a broken connection) and
/// can neither reach nor be reached — its process keeps running, keeps its chain and keeps
/// mining, as a node whose connection dropped. When it rejoins, it and its peers redial by
/// their own rules and it catches up through the core's sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    /// The nodes that leave.
    pub nodes: Vec<usize>,
    /// When they leave, virtual seconds after mining starts.
    pub leave_s: f64,
    /// When they rejoin, virtual seconds after mining starts (never when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_s: Option<f64>,
}

/// Synthetic transactions: submitted to random nodes as a Poisson process, each through the
/// node's local submission (`Command::SubmitTx`), as a user of a live node submits one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxSpec {
    /// Transactions submitted per virtual second, network-wide, while blocks are mined.
    pub rate_per_s: f64,
}

/// A partition at a given time: the nodes split in two and nothing crosses between the
/// halves — messages in flight or sent are lost and dials fail — until it heals. Links stay
/// up, as TCP connections survive a short outage; the cores recover by their own timeouts
/// and catch-up once messages get through again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// When it starts, virtual seconds after mining starts.
    pub at_s: f64,
    /// When it heals, virtual seconds after mining starts.
    pub heal_s: f64,
    /// The share of the nodes on one side: those numbered below `share × nodes`.
    pub share: f64,
}

/// Regions, latency, bandwidth, processing, loss.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Region names.
    pub regions: Vec<String>,
    /// Fraction of nodes in each region (normalised).
    pub region_share: Vec<f64>,
    /// Mean one-way latency from region i to region j, milliseconds.
    pub latency_ms: Vec<Vec<f64>>,
    /// Spread of a link's latency: a Pareto distribution with shape `this × mean` (ms) and
    /// the given mean (SimBlock's model uses 0.2); 0 gives every link exactly the mean.
    #[serde(default)]
    pub latency_shape_per_ms: f64,
    /// Upload bandwidth of a node in each region, Mbit/s; empty means unlimited.
    #[serde(default)]
    pub upload_mbps: Vec<f64>,
    /// Download bandwidth of a node in each region, Mbit/s; empty means unlimited.
    #[serde(default)]
    pub download_mbps: Vec<f64>,
    /// Time a node spends validating each block it receives, ms (one block at a time).
    #[serde(default)]
    pub processing_ms: f64,
    /// Probability that a message is lost; a lost message breaks its link, as a broken
    /// TCP connection does, and the nodes redial by their own rules.
    #[serde(default)]
    pub loss: f64,
}

/// The peer graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// Links each node dials (when `degree_cdf` is empty).
    #[serde(default = "default_outbound")]
    pub outbound: usize,
    /// Cumulative distribution of the number of links a node dials: entry k is the
    /// probability of dialling at most k + 1.
    #[serde(default)]
    pub degree_cdf: Vec<f64>,
    /// Most links others may open to one node.
    pub max_inbound: usize,
    /// Links each mining pool's node dials, when pools are listed (`mining.pool_shares`):
    /// pools keep many more connections than ordinary nodes to hear of blocks sooner.
    /// 0 (the default) gives pools the same links as every other node.
    #[serde(default)]
    pub pool_outbound: usize,
    /// An explicit graph instead of a random one: (dialler, dialled) node indices.
    #[serde(default)]
    pub edges: Vec<(usize, usize)>,
    /// The explicit graph read from a file instead (one `a b` pair a line, `#` comments),
    /// its path relative to the scenario file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges_file: Option<String>,
}

/// Block production.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiningSpec {
    /// Expected seconds between blocks (network-wide).
    pub interval_s: f64,
    /// Nominal size of a block in bytes, charged by the bandwidth model.
    pub block_bytes: u64,
    /// Spread of block sizes in bytes: each block's size is drawn from a normal
    /// distribution around `block_bytes` with this standard deviation, cut at 1 byte and
    /// at twice `block_bytes`; 0 (the default) makes every block exactly `block_bytes`.
    #[serde(default)]
    pub block_bytes_sd: f64,
    /// Hash-power shares of mining pools, each run by one node (normalised). When empty,
    /// every node mines with a power drawn from `power_mean`/`power_sd`.
    #[serde(default)]
    pub pool_shares: Vec<f64>,
    /// The nodes running the pools, in order; random distinct nodes when empty.
    #[serde(default)]
    pub pool_nodes: Vec<usize>,
    /// Mean of every node's mining power when all nodes mine (arbitrary unit).
    #[serde(default = "default_power_mean")]
    pub power_mean: f64,
    /// Standard deviation of it (a normal distribution, cut at 1% of the mean).
    #[serde(default)]
    pub power_sd: f64,
}

fn default_seed() -> u64 {
    1
}
fn default_warmup_s() -> f64 {
    60.0
}
fn default_quiet_s() -> f64 {
    600.0
}
fn default_known_addrs() -> usize {
    chainsim_core::peers::PeerLimits::default().max_known
}
/// Bitcoin Core's pruned nodes keep the last 288 blocks (`MIN_BLOCKS_TO_KEEP`, two days),
/// far deeper than any reorganisation of its history; and the memory of a 10,000-node run
/// grows with it (a few hundred bytes a block a node).
fn default_keep_depth() -> Option<u64> {
    Some(288)
}
fn default_outbound() -> usize {
    8
}
fn default_power_mean() -> f64 {
    1.0
}

/// Values from flags that replace the scenario's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--nodes`.
    pub nodes: Option<usize>,
    /// `--blocks`.
    pub blocks: Option<u64>,
    /// `--interval` (seconds).
    pub interval_s: Option<f64>,
    /// `--block-size` (bytes).
    pub block_bytes: Option<u64>,
    /// `--block-size-sd` (bytes).
    pub block_bytes_sd: Option<f64>,
    /// `--relay`.
    pub relay: Option<Relay>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--edges FILE`: the explicit graph from this file (relative to the working folder).
    pub edges_file: Option<PathBuf>,
    /// `--tx-rate` (transactions per second; 0 turns the load off).
    pub tx_rate: Option<f64>,
    /// `--set PATH=VALUE`: any field by its path in the scenario file, applied in order
    /// before the named flags above.
    pub set: Vec<crate::fields::FieldValue>,
}

impl Scenario {
    /// A built-in scenario by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Self, SimError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(name_or_path, text);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            return Err(SimError::UnknownScenario {
                name: name_or_path.to_string(),
                known: Self::builtin_names().join(", "),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: name_or_path.to_string(),
            source,
        })?;
        Self::parse_in(name_or_path, &text, path.parent())
    }

    /// The names of the built-in scenarios.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Parses and checks TOML text; `origin` names it in errors. An `edges_file` is read
    /// relative to the working folder.
    pub fn parse(origin: &str, text: &str) -> Result<Self, SimError> {
        Self::parse_in(origin, text, None)
    }

    /// [`Scenario::parse`], reading an `edges_file` relative to `folder` (the scenario
    /// file's) when given.
    pub fn parse_in(origin: &str, text: &str, folder: Option<&Path>) -> Result<Self, SimError> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| SimError::Parse {
            name: origin.to_string(),
            message: one_line_toml_error(&e, text),
        })?;
        scenario.read_edges_file(folder)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads the graph an `edges_file` names (relative to `folder` when given, else to the
    /// working folder) into `topology.edges`.
    pub(crate) fn read_edges_file(&mut self, folder: Option<&Path>) -> Result<(), SimError> {
        let Some(file) = self.topology.edges_file.take() else {
            return Ok(());
        };
        if !self.topology.edges.is_empty() {
            return Err(self.invalid("topology: give edges or edges_file, not both"));
        }
        let path = folder.map_or_else(|| PathBuf::from(&file), |f| f.join(&file));
        self.topology.edges = crate::edges::read(&path)?;
        Ok(())
    }

    /// Applies flag values, then checks the result.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), SimError> {
        if !o.set.is_empty() {
            *self = crate::fields::set_fields(self, &o.set)?;
        }
        if let Some(v) = o.nodes {
            self.nodes = v;
        }
        if let Some(v) = o.blocks {
            self.blocks = v;
        }
        if let Some(v) = o.interval_s {
            self.mining.interval_s = v;
        }
        if let Some(v) = o.block_bytes_sd {
            self.mining.block_bytes_sd = v;
        }
        if let Some(v) = o.block_bytes {
            self.mining.block_bytes = v;
        }
        if let Some(v) = o.relay {
            self.relay = v;
        }
        if let Some(v) = o.seed {
            self.seed = v;
        }
        if let Some(path) = &o.edges_file {
            self.topology.edges = crate::edges::read(path)?;
        }
        if let Some(rate) = o.tx_rate {
            self.transactions = (rate != 0.0).then_some(TxSpec { rate_per_s: rate });
        }
        self.validate()
    }

    fn invalid(&self, message: impl Into<String>) -> SimError {
        SimError::Invalid {
            name: self.name.clone(),
            message: message.into(),
        }
    }

    /// Checks that the numbers make a network.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.nodes < 2 {
            return Err(self.invalid("needs at least 2 nodes"));
        }
        if self.nodes > u32::MAX as usize / 2 {
            return Err(self.invalid("too many nodes"));
        }
        if self.blocks == 0 {
            return Err(self.invalid("blocks must be at least 1"));
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if !positive(self.mining.interval_s) {
            return Err(self.invalid("mining.interval_s must be a positive number"));
        }
        if ![self.warmup_s, self.quiet_s].into_iter().all(non_negative) {
            return Err(self.invalid("warmup_s and quiet_s must be non-negative"));
        }
        for p in &self.partitions {
            let ok = non_negative(p.at_s) && p.heal_s.is_finite() && p.heal_s > p.at_s;
            if !(ok && p.share > 0.0 && p.share < 1.0) {
                return Err(self.invalid("a partition needs 0 <= at_s < heal_s and 0 < share < 1"));
            }
        }
        for (k, c) in self.link_changes.iter().enumerate() {
            c.validate(self.nodes, &self.network.regions)
                .map_err(|m| self.invalid(format!("link_changes[{k}]: {m}")))?;
        }
        for (k, c) in self.churn.iter().enumerate() {
            let back_after = c.return_s.is_none_or(|r| r.is_finite() && r > c.leave_s);
            if !(non_negative(c.leave_s) && back_after) {
                return Err(self.invalid(format!("churn[{k}]: needs 0 <= leave_s < return_s")));
            }
            if c.nodes.is_empty() || c.nodes.iter().any(|&n| n >= self.nodes) {
                let n = self.nodes;
                return Err(self.invalid(format!("churn[{k}]: nodes must list nodes below {n}")));
            }
        }
        if let Some(t) = &self.transactions
            && !positive(t.rate_per_s)
        {
            return Err(self.invalid("transactions.rate_per_s must be a positive number"));
        }
        self.network.validate().map_err(|m| self.invalid(m))?;
        self.topology.validate(self.nodes).map_err(|m| self.invalid(m))?;
        self.mining.validate(self.nodes).map_err(|m| self.invalid(m))
    }
}

impl LinkChangeSpec {
    fn validate(&self, nodes: usize, regions: &[String]) -> Result<(), String> {
        let restored_after = self.until_s.is_none_or(|u| u.is_finite() && u > self.at_s);
        if !(self.at_s.is_finite() && self.at_s >= 0.0 && restored_after) {
            return Err("needs 0 <= at_s < until_s".into());
        }
        match (self.nodes.as_slice(), self.regions.len()) {
            ([a, b], 0) if a != b && *a < nodes && *b < nodes => {}
            ([_, _], 0) => return Err(format!("nodes must be two different nodes below {nodes}")),
            ([], 1 | 2) => {
                if let Some(r) = self.regions.iter().find(|r| !regions.contains(r)) {
                    return Err(format!("unknown region {r:?} (known: {})", regions.join(", ")));
                }
            }
            _ => return Err("give either nodes = [a, b] or regions = [one] or [one, two]".into()),
        }
        let c = self.conditions();
        if !(self.bandwidth_mbps.is_finite() && self.bandwidth_mbps >= 0.0)
            || (self.bandwidth_mbps > 0.0 && c.bandwidth_bps == 0)
        {
            return Err("bandwidth_mbps must be 0 (no cap) or at least 0.000008".into());
        }
        c.validate().map_err(|e| e.to_string())?;
        if c.is_perfect() {
            return Err("changes nothing: give latency_ms, loss, bandwidth_mbps or cut".into());
        }
        Ok(())
    }

    /// The change as the live node's link conditions (no jitter: a simulated link keeps
    /// one delay, so that it delivers in order); the bandwidth cap in bytes per second.
    pub fn conditions(&self) -> LinkConditions {
        LinkConditions {
            latency_ms: self.latency_ms,
            jitter_ms: 0,
            loss: self.loss,
            bandwidth_bps: (self.bandwidth_mbps * 125_000.0).round() as u64,
            cut: self.cut,
        }
    }
}

impl NetworkSpec {
    fn validate(&self) -> Result<(), String> {
        let r = self.regions.len();
        if r == 0 {
            return Err("network.regions is empty".into());
        }
        if self.region_share.len() != r
            || self.latency_ms.len() != r
            || self.latency_ms.iter().any(|row| row.len() != r)
        {
            return Err(format!(
                "network: region_share needs {r} entries and latency_ms {r} rows of {r}"
            ));
        }
        for (name, v) in [
            ("upload_mbps", &self.upload_mbps),
            ("download_mbps", &self.download_mbps),
        ] {
            if !v.is_empty() && v.len() != r {
                return Err(format!("network.{name} needs {r} entries (or none for unlimited)"));
            }
            if v.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(format!("network.{name} must be positive"));
            }
        }
        let all = self.region_share.iter().chain(self.latency_ms.iter().flatten());
        if all.into_iter().any(|x| !(x.is_finite() && *x >= 0.0)) || self.region_share.iter().sum::<f64>() <= 0.0 {
            return Err("network: shares and latencies must be non-negative, shares not all zero".into());
        }
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !ok(self.latency_shape_per_ms) || !ok(self.processing_ms) || !(0.0..1.0).contains(&self.loss) {
            return Err("network: latency_shape_per_ms and processing_ms >= 0, loss in [0, 1)".into());
        }
        Ok(())
    }
}

impl TopologySpec {
    fn validate(&self, nodes: usize) -> Result<(), String> {
        if let Some((a, b)) = self.edges.iter().find(|&&(a, b)| a >= nodes || b >= nodes || a == b) {
            return Err(format!(
                "topology.edges: ({a}, {b}) does not join two different nodes below {nodes}"
            ));
        }
        if self.edges.is_empty() && self.degree_cdf.is_empty() && self.outbound == 0 {
            return Err("topology.outbound must be at least 1".into());
        }
        let monotone = self.degree_cdf.windows(2).all(|w| w[0] <= w[1]);
        if !self.degree_cdf.is_empty() && (!monotone || self.degree_cdf.last().is_none_or(|&l| l < 1.0 - 1e-9)) {
            return Err("topology.degree_cdf must rise to 1".into());
        }
        if self.max_inbound == 0 {
            return Err("topology.max_inbound must be at least 1".into());
        }
        Ok(())
    }
}

impl MiningSpec {
    fn validate(&self, nodes: usize) -> Result<(), String> {
        if !(self.block_bytes_sd.is_finite() && self.block_bytes_sd >= 0.0) {
            return Err("mining.block_bytes_sd must be a number of at least 0".into());
        }
        if !self.pool_shares.is_empty() {
            if self.pool_shares.iter().any(|s| !(s.is_finite() && *s >= 0.0))
                || self.pool_shares.iter().sum::<f64>() <= 0.0
            {
                return Err("mining.pool_shares must be non-negative and not all zero".into());
            }
            if self.pool_shares.len() > nodes {
                return Err(format!(
                    "mining: {} pools but only {nodes} nodes",
                    self.pool_shares.len()
                ));
            }
            if !self.pool_nodes.is_empty()
                && (self.pool_nodes.len() != self.pool_shares.len() || self.pool_nodes.iter().any(|&n| n >= nodes))
            {
                return Err("mining.pool_nodes needs one node below the node count per pool".into());
            }
        }
        if !(self.power_mean.is_finite() && self.power_mean > 0.0 && self.power_sd.is_finite() && self.power_sd >= 0.0)
        {
            return Err("mining.power_mean must be positive and power_sd non-negative".into());
        }
        Ok(())
    }
}

/// A TOML error on one line, with the line number it points at.
fn one_line_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", message.trim())
        }
        None => message.trim().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_parses() {
        for name in Scenario::builtin_names() {
            let s = Scenario::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name);
        }
    }

    #[test]
    fn bad_input_gives_one_readable_line() {
        let e = Scenario::load("no-such-scenario").unwrap_err().to_string();
        assert!(e.contains("unknown scenario") && e.contains("bitcoin-2019"), "{e}");
        let e = Scenario::parse("x", "name = 3").unwrap_err().to_string();
        assert!(!e.contains('\n') && e.contains("line 1"), "{e}");
        let mut s = Scenario::load("classroom").unwrap();
        let e = s.apply(&Overrides {
            interval_s: Some(0.0),
            ..Default::default()
        });
        assert!(e.unwrap_err().to_string().contains("interval_s"));
        let mut s = Scenario::load("classroom").unwrap();
        for (at_s, heal_s, share) in [
            (10.0, 5.0, 0.5),
            (0.0, 5.0, 1.0),
            (-1.0, 5.0, 0.5),
            (0.0, f64::NAN, 0.5),
        ] {
            s.partitions = vec![PartitionSpec { at_s, heal_s, share }];
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains("partition") && !e.contains('\n'), "{e}");
        }
    }

    fn with_change(extra: &str) -> Result<Scenario, SimError> {
        let base = include_str!("../../../scenarios/classroom.toml");
        Scenario::parse("c", &format!("{base}\n[[link_changes]]\n{extra}\n"))
    }

    #[test]
    fn link_changes_are_checked_with_one_line_each() {
        let ok = with_change("at_s = 1.0\nuntil_s = 2.0\nnodes = [0, 29]\nlatency_ms = 100").unwrap();
        assert_eq!(ok.link_changes[0].conditions().latency_ms, 100);
        let capped = with_change("at_s = 0.0\nregions = [\"campus\"]\nbandwidth_mbps = 8.0").unwrap();
        assert_eq!(capped.link_changes[0].conditions().bandwidth_bps, 1_000_000);
        for (extra, says) in [
            (
                "at_s = 5.0\nuntil_s = 1.0\nnodes = [0, 1]\ncut = true",
                "at_s < until_s",
            ),
            (
                "at_s = 0.0\nnodes = [0, 30]\ncut = true",
                "two different nodes below 30",
            ),
            ("at_s = 0.0\nnodes = [3, 3]\ncut = true", "two different nodes"),
            ("at_s = 0.0\nnodes = [0]\ncut = true", "either nodes = [a, b]"),
            (
                "at_s = 0.0\nnodes = [0, 1]\nregions = [\"campus\"]\ncut = true",
                "either",
            ),
            (
                "at_s = 0.0\nregions = [\"moon\"]\ncut = true",
                "unknown region \"moon\"",
            ),
            ("at_s = 0.0\nnodes = [0, 1]", "changes nothing"),
            ("at_s = 0.0\nnodes = [0, 1]\nloss = 1.5", "loss must be a fraction"),
            ("at_s = 0.0\nnodes = [0, 1]\nlatency_ms = 90000", "at most 60000 ms"),
            ("at_s = 0.0\nnodes = [0, 1]\nbandwidth_mbps = -1.0", "bandwidth_mbps"),
            ("at_s = 0.0\nnodes = [0, 1]\njitter_ms = 5", "unknown field"),
        ] {
            let e = with_change(extra).unwrap_err().to_string();
            assert!(e.contains(says) && !e.contains('\n'), "{extra}: {e}");
        }
    }

    #[test]
    fn churn_is_checked_with_one_line() {
        let base = include_str!("../../../scenarios/classroom.toml");
        let ok = format!("{base}\n[[churn]]\nnodes = [3, 4]\nleave_s = 10.0\nreturn_s = 20.0\n");
        assert_eq!(Scenario::parse("c", &ok).unwrap().churn[0].nodes, vec![3, 4]);
        for (extra, says) in [
            ("nodes = [3]\nleave_s = 10.0\nreturn_s = 5.0", "leave_s < return_s"),
            ("nodes = [30]\nleave_s = 1.0", "nodes below 30"),
            ("nodes = []\nleave_s = 1.0", "nodes below 30"),
            ("nodes = [1]\nleave_s = -1.0", "churn[0]"),
        ] {
            let e = Scenario::parse("c", &format!("{base}\n[[churn]]\n{extra}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says) && !e.contains('\n'), "{extra}: {e}");
        }
    }

    #[test]
    fn edges_come_from_a_list_or_a_file_not_both_and_tx_rate_zero_turns_load_off() {
        let base = include_str!("../../../scenarios/classroom.toml");
        let both = base.replace("\n[topology]", "\n[topology]\nedges = [[0, 1]]\nedges_file = \"e.txt\"");
        let e = Scenario::parse("c", &both).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let missing = base.replace("\n[topology]", "\n[topology]\nedges_file = \"no-such-edges.txt\"");
        let e = Scenario::parse("c", &missing).unwrap_err().to_string();
        assert!(e.starts_with("edges file no-such-edges.txt:"), "{e}");
        let mut s = Scenario::load("classroom").unwrap();
        s.apply(&Overrides {
            tx_rate: Some(3.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.transactions.as_ref().map(|t| t.rate_per_s), Some(3.0));
        s.apply(&Overrides {
            tx_rate: Some(0.0),
            ..Default::default()
        })
        .unwrap();
        assert!(s.transactions.is_none());
    }
}
