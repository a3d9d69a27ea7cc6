//! Many runs at once: one scenario with one parameter swept over values
//! (`--sweep interval=600,60,10`) and each value repeated over seeds (`--seeds N`). Runs are
//! independent and each is single-threaded and deterministic, so they go in parallel on
//! all cores and give the same results in any order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::SimError;
use crate::fields::FieldValue;
use crate::results::Summary;
use crate::run::simulate;
use crate::scenario::{Overrides, Relay, Scenario};

/// Parameters a sweep can vary by the names of the flags that override them; any other
/// field by its path in the scenario file (`network.processing_ms`, `topology.outbound`).
pub const PARAMS: &[&str] = &["nodes", "blocks", "interval", "block-size", "relay"];

/// One parameter and its values, as `--sweep NAME=v1,v2,...` gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The parameter's name (one of [`PARAMS`], or a field's path).
    pub param: String,
    /// Its values, in the order given.
    pub values: Vec<String>,
}

impl std::str::FromStr for Sweep {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, SimError> {
        let bad = |message: String| SimError::Invalid {
            name: "--sweep".into(),
            message,
        };
        let (param, values) = s
            .split_once('=')
            .ok_or_else(|| bad(format!("{s:?} is not NAME=v1,v2,...")))?;
        if !PARAMS.contains(&param) && crate::fields::keys(param).is_err() {
            let named = PARAMS.join(", ");
            return Err(bad(format!(
                "cannot sweep {param:?}: one of {named}, or a field's path such as network.processing_ms"
            )));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(bad(format!("an empty value in {s:?}")));
        }
        Ok(Self {
            param: param.to_string(),
            values,
        })
    }
}

/// The override that sets `param` to `value`.
fn override_for(param: &str, value: &str) -> Result<Overrides, SimError> {
    let bad = || SimError::Invalid {
        name: "--sweep".into(),
        message: format!("{value:?} is not a valid {param}"),
    };
    let mut o = Overrides::default();
    match param {
        "nodes" => o.nodes = Some(value.parse().map_err(|_| bad())?),
        "blocks" => o.blocks = Some(value.parse().map_err(|_| bad())?),
        "interval" => o.interval_s = Some(value.parse().map_err(|_| bad())?),
        "block-size" => o.block_bytes = Some(value.parse().map_err(|_| bad())?),
        "relay" => {
            o.relay = Some(match value {
                "announce" => Relay::Announce,
                "push" => Relay::Push,
                _ => return Err(bad()),
            })
        }
        path => o.set = vec![FieldValue::new(path, value)?],
    }
    Ok(o)
}

/// Every scenario of a sweep: each value (or the base alone), then each of `seeds` seeds
/// counted up from the base's.
pub fn plan(base: &Scenario, sweep: Option<&Sweep>, seeds: u64) -> Result<Vec<Scenario>, SimError> {
    let variants = match sweep {
        None => vec![base.clone()],
        Some(sw) => sw
            .values
            .iter()
            .map(|v| {
                let mut s = base.clone();
                s.apply(&override_for(&sw.param, v)?)?;
                Ok(s)
            })
            .collect::<Result<_, SimError>>()?,
    };
    let mut out = Vec::new();
    for s in variants {
        for k in 0..seeds.max(1) {
            let mut run = s.clone();
            run.seed = s.seed.wrapping_add(k);
            out.push(run);
        }
    }
    Ok(out)
}

/// Runs every scenario on up to `threads` threads; summaries in the order of `runs`.
pub fn run_all(runs: Vec<Scenario>, threads: usize) -> Vec<Summary> {
    run_all_with(runs, threads, &|_| {})
}

/// Where one run of a sweep is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunProgress {
    /// The run's place in the sweep's list.
    pub run: usize,
    /// Blocks mined so far.
    pub mined: u64,
    /// The height the run mines to.
    pub target: u64,
    /// Whether the run has finished (quiet period and results included).
    pub done: bool,
}

/// [`run_all`], calling `progress` from the worker threads after every block a run mines
/// and when a run finishes.
pub fn run_all_with(runs: Vec<Scenario>, threads: usize, progress: &(dyn Fn(RunProgress) + Sync)) -> Vec<Summary> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Summary>>> = runs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, runs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scenario) = runs.get(i) else { break };
                    let at = |mined, target, done| RunProgress {
                        run: i,
                        mined,
                        target,
                        done,
                    };
                    let (summary, _) = simulate(scenario.clone(), |mined, target| progress(at(mined, target, false)));
                    progress(at(summary.results.blocks_mined, scenario.blocks, true));
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(summary);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_plans_every_value_and_seed_and_runs_them_in_order() {
        let mut base = Scenario::load("classroom").unwrap();
        base.blocks = 3;
        let sweep: Sweep = "interval=30,5".parse().unwrap();
        let runs = plan(&base, Some(&sweep), 2).unwrap();
        let keys: Vec<(f64, u64)> = runs.iter().map(|s| (s.mining.interval_s, s.seed)).collect();
        assert_eq!(keys, vec![(30.0, 1), (30.0, 2), (5.0, 1), (5.0, 2)]);
        let seen = Mutex::new(Vec::new());
        let parallel = run_all_with(runs.clone(), 2, &|p| seen.lock().unwrap().push(p));
        let seen = seen.into_inner().unwrap();
        for run in 0..runs.len() {
            let of_run: Vec<&RunProgress> = seen.iter().filter(|p| p.run == run).collect();
            let last = of_run.last().unwrap();
            assert!(last.done && last.mined >= 3 && last.target == 3, "{last:?}");
            assert_eq!(of_run.iter().filter(|p| p.done).count(), 1, "done once, last");
            assert!(
                of_run.windows(2).all(|w| w[0].mined <= w[1].mined),
                "blocks only add up"
            );
        }
        let serial = run_all(runs, 1);
        let strip = |v: &[Summary]| v.iter().map(|s| s.results.clone()).collect::<Vec<_>>();
        assert_eq!(strip(&parallel), strip(&serial));
        assert!("colour-of=red".parse::<Sweep>().is_err());
        assert!(plan(&base, Some(&"interval=x".parse().unwrap()), 1).is_err());
        // A name that is no flag's is a field's path, refused when no such field exists.
        let err = plan(&base, Some(&"colour=red".parse().unwrap()), 1).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn any_field_can_be_swept_by_its_path() {
        let base = Scenario::load("classroom").unwrap();
        let sweep: Sweep = "network.processing_ms=1,5".parse().unwrap();
        let runs = plan(&base, Some(&sweep), 1).unwrap();
        let got: Vec<f64> = runs.iter().map(|s| s.network.processing_ms).collect();
        assert_eq!(got, vec![1.0, 5.0]);
        let sweep: Sweep = "topology.outbound=2,3".parse().unwrap();
        let runs = plan(&base, Some(&sweep), 1).unwrap();
        assert_eq!(runs.iter().map(|s| s.topology.outbound).collect::<Vec<_>>(), vec![2, 3]);
        assert!(plan(&base, Some(&"topology.outbound=-1".parse().unwrap()), 1).is_err());
    }
}
