//! Synthetic transaction load: transactions submitted to random nodes as a Poisson process
//! while blocks are mined, each through the node's local submission (`Command::SubmitTx`),
//! as a user of a live node submits one. From there the cores do everything: relay it to
//! their peers, keep it in their mempools, put it in the blocks they mine, and take it back
//! into the mempool when a reorganisation disconnects its block. At the end, [`TxResults`]
//! says how many are confirmed in the best chain, how long that took, and whether any was
//! lost (neither in the best chain nor in any mempool), which must never happen.

use std::collections::HashMap;

use chainsim_core::{BlockTree, Node};
use chainsim_primitives::{BlockHash, Transaction, Txid};
use serde::Serialize;

use crate::queue::Micros;
use crate::results::Distribution;
use crate::scenario::TxSpec;

/// The load generator and what it submitted.
#[derive(Debug)]
pub struct TxLoad {
    interval_us: f64,
    nodes: usize,
    rng: fastrand::Rng,
    /// Each accepted transaction and when it was submitted.
    submitted: Vec<(Txid, Micros)>,
    /// Submissions the node refused (its mempool full).
    refused: u64,
}

impl TxLoad {
    /// Load at the scenario's rate over `nodes` nodes; `seed` drives times and nodes.
    pub fn new(spec: &TxSpec, nodes: usize, seed: u64) -> Self {
        Self {
            interval_us: 1e6 / spec.rate_per_s,
            nodes,
            rng: fastrand::Rng::with_seed(seed),
            submitted: Vec::new(),
            refused: 0,
        }
    }

    /// When the next transaction after `now` is submitted, and to which node.
    pub fn next(&mut self, now: Micros) -> (Micros, usize) {
        let u = 1.0 - self.rng.f64(); // in (0, 1]
        let wait = (-u.ln() * self.interval_us).round() as Micros;
        (now + wait.max(1), self.rng.usize(..self.nodes))
    }

    /// A new transaction made at `time_ms` (core time): a sender numbered by the count of
    /// submissions, so that no two are alike.
    pub fn make(&mut self, time_ms: u64) -> Transaction {
        let k = self.submitted.len() as u64 + self.refused;
        let recipient = self.rng.u64(..1_000);
        Transaction::new(
            format!("sim-user-{k}"),
            format!("sim-user-r{recipient}"),
            1 + k % 100,
            time_ms,
        )
    }

    /// A node took `txid` at `at`.
    pub fn accepted(&mut self, txid: Txid, at: Micros) {
        self.submitted.push((txid, at));
    }

    /// A node refused a submission.
    pub fn refused(&mut self) {
        self.refused += 1;
    }

    /// Where every submitted transaction ended: `best` holds the final best chain, `mined_at`
    /// gives each block's mining time, `nodes` are all the cores (for their mempools).
    pub fn tally<'a>(
        &self,
        best: &BlockTree,
        mined_at: &HashMap<BlockHash, Micros>,
        nodes: impl Iterator<Item = &'a Node> + Clone,
    ) -> TxResults {
        let mut confirm = Vec::new();
        let (mut pending, mut lost) = (0, 0);
        for (txid, at) in &self.submitted {
            match best.find_tx(txid) {
                Some((entry, _)) => {
                    let mined = mined_at.get(&entry.hash).copied().unwrap_or(*at);
                    confirm.push(mined.saturating_sub(*at));
                }
                None if nodes.clone().any(|n| n.mempool().contains(txid)) => pending += 1,
                None => lost += 1,
            }
        }
        TxResults {
            submitted: self.submitted.len() as u64,
            refused: self.refused,
            confirmed: confirm.len() as u64,
            pending,
            lost,
            confirmation_ms: Distribution::of(&mut confirm),
        }
    }

    /// The transactions submitted so far and when.
    pub fn submitted(&self) -> &[(Txid, Micros)] {
        &self.submitted
    }
}

/// What became of the synthetic transactions (in `--json` as `transactions`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TxResults {
    /// Transactions a node accepted.
    pub submitted: u64,
    /// Submissions a node refused (its mempool full).
    pub refused: u64,
    /// Submitted transactions in the final best chain.
    pub confirmed: u64,
    /// Submitted transactions not in the best chain but in some node's mempool.
    pub pending: u64,
    /// Submitted transactions in neither: must be 0.
    pub lost: u64,
    /// Time from submission to the mining of the best-chain block holding it.
    pub confirmation_ms: Distribution,
}
