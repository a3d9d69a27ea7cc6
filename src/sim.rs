//! `chainsim sim`: the command-line edge of the simulator (`crates/sim`): flags to a
//! scenario, the run, and its results as a table, one JSON object, or files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chainsim_sim::fields::FieldValue;
use chainsim_sim::report::{reception_cdf_svg, report_html, stale_rate_svg};
use chainsim_sim::results::blocks_csv;
use chainsim_sim::scenario::Relay;
use chainsim_sim::sweep::{RunProgress, Sweep, plan, run_all_with};
use chainsim_sim::{Overrides, Scenario, Summary, simulate};

/// `chainsim sim` flags.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// A built-in scenario (classroom, bitcoin-2015, bitcoin-2019, litecoin, dogecoin,
    /// ethereum-like) or a scenario file (see scenarios/ and docs/SIMULATION.md).
    #[arg(long, default_value = "classroom", value_name = "NAME|FILE.toml")]
    scenario: String,
    /// Number of nodes.
    #[arg(long, value_name = "N")]
    nodes: Option<usize>,
    /// End when a block at this height is mined.
    #[arg(long, value_name = "B")]
    blocks: Option<u64>,
    /// Expected seconds between blocks.
    #[arg(long, value_name = "SECS")]
    interval: Option<f64>,
    /// Nominal block size in bytes.
    #[arg(long, value_name = "BYTES")]
    block_size: Option<u64>,
    /// Spread of block sizes (a normal standard deviation, bytes; 0 = every block nominal).
    #[arg(long, value_name = "BYTES")]
    block_size_sd: Option<f64>,
    /// How blocks travel: `announce` (header, then fetched) or `push` (whole, to every peer).
    #[arg(long, value_enum)]
    relay: Option<RelayArg>,
    /// Any scenario field by its path in the scenario file, e.g. `--set quiet_s=5000`,
    /// `--set network.processing_ms=5`, `--set topology.outbound=16` (repeatable; applied
    /// first, so `--nodes`, `--blocks` and the other named flags win over it).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<FieldValue>,
    /// Seed of every random choice.
    #[arg(long)]
    seed: Option<u64>,
    /// The peer graph from a file: one `a b` pair of node numbers a line (a dials b), `#`
    /// comments.
    #[arg(long, value_name = "FILE")]
    edges: Option<PathBuf>,
    /// Synthetic transactions submitted per second to random nodes (0: none).
    #[arg(long, value_name = "PER_S", allow_negative_numbers = true)]
    tx_rate: Option<f64>,
    /// Run once per value of a parameter (nodes, blocks, interval, block-size, relay, or any
    /// field's path as for `--set`), in parallel, e.g. `--sweep interval=600,60,10,1`,
    /// `--sweep network.processing_ms=1,2,5`.
    #[arg(long, value_name = "PARAM=V1,V2,...")]
    sweep: Option<Sweep>,
    /// Repeat each run with this many seeds (the scenario's seed counted up).
    #[arg(long, default_value_t = 1, value_name = "N")]
    seeds: u64,
    /// Print exactly one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write summary.json, blocks.csv and reception_cdf.svg into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `--relay`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RelayArg {
    /// Announce, then fetch.
    Announce,
    /// Push whole blocks.
    Push,
}

/// Runs `chainsim sim`.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let mut scenario = Scenario::load(&args.scenario)?;
    let overrides = Overrides {
        nodes: args.nodes,
        blocks: args.blocks,
        interval_s: args.interval,
        block_bytes: args.block_size,
        block_bytes_sd: args.block_size_sd,
        relay: args.relay.map(|r| match r {
            RelayArg::Announce => Relay::Announce,
            RelayArg::Push => Relay::Push,
        }),
        seed: args.seed,
        edges_file: args.edges.clone(),
        tx_rate: args.tx_rate,
        set: args.set.clone(),
    };
    scenario.apply(&overrides)?;
    if args.sweep.is_some() || args.seeds > 1 {
        return run_sweep(&args, &scenario);
    }
    let show = !args.json && std::io::stderr().is_terminal();
    let (summary, sim) = simulate(scenario, |mined, target| {
        if show {
            eprint!("\r  mining: {mined} blocks, height target {target} ");
        }
    });
    if show {
        eprintln!();
    }
    if let Some(dir) = &args.out {
        let csv = blocks_csv(sim.recorder());
        let svg = reception_cdf_svg(sim.recorder(), &summary.results)?;
        let title = format!("chainsim sim --scenario {}", summary.results.scenario);
        let html = report_html(&title, &[("run".to_string(), &summary)], &[&svg]);
        write_out(dir, &summary, &csv, &svg, &html)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_table(&summary);
    }
    warn_if_cut_short(std::slice::from_ref(&summary), None);
    Ok(())
}

/// Says on stderr which runs ended with the quiet period run out before the last blocks
/// spread (`quiet_cut_short`), and how to give them longer; `labels` name the runs of a
/// sweep.
fn warn_if_cut_short(summaries: &[Summary], labels: Option<&[String]>) {
    for (i, s) in summaries.iter().enumerate() {
        if !s.results.quiet_cut_short {
            continue;
        }
        let which = labels
            .and_then(|l| l.get(i))
            .map_or(String::new(), |l| format!("run {l}: "));
        eprintln!(
            "note: {which}the quiet period ran out with {} tips and messages still on their way; \
             --set quiet_s=SECONDS lets the last blocks spread (docs/SIMULATION.md, \"End\")",
            s.results.tips_at_end
        );
    }
}

fn write_out(dir: &Path, summary: &Summary, csv: &str, svg: &str, html: &str) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(summary)?;
    write_files(
        dir,
        &[
            ("summary.json", json.as_str()),
            ("blocks.csv", csv),
            ("reception_cdf.svg", svg),
            ("report.html", html),
        ],
    )
}

/// Writes each `(name, text)` into `dir`, creating it.
fn write_files(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn print_table(s: &Summary) {
    let r = &s.results;
    println!(
        "scenario {} (seed {}, {} relay): {} nodes, {} links, interval {} s, blocks of {} bytes",
        r.scenario, r.seed, r.relay, r.nodes, r.links, r.interval_s, r.block_bytes
    );
    let row = |k: &str, v: String| println!("  {k:<24} {v}");
    row(
        "blocks mined",
        format!("{} (best chain height {})", r.blocks_mined, r.height),
    );
    row(
        "stale blocks",
        format!("{} ({:.2}%)", r.stale_blocks, r.stale_rate * 100.0),
    );
    let d = &r.reception_ms;
    row(
        "block reception (ms)",
        format!("median {} · mean {} · p90 {} · p99 {}", d.p50, d.mean, d.p90, d.p99),
    );
    row(
        "to 50% / 90% of nodes",
        format!(
            "{} ms / {} ms (medians over blocks)",
            r.reach_50_ms.p50, r.reach_90_ms.p50
        ),
    );
    if let Some(t) = &r.transactions {
        row(
            "transactions",
            format!(
                "{} submitted, {} confirmed (median {} ms to a block), {} pending, {} lost",
                t.submitted, t.confirmed, t.confirmation_ms.p50, t.pending, t.lost
            ),
        );
    }
    row("tips at the end", r.tips_at_end.to_string());
    row(
        "events simulated",
        format!(
            "{} ({:.0}/s), {} core inputs, {:.0} s virtual",
            r.events, s.events_per_s, r.inputs, r.virtual_s
        ),
    );
    row("wall time", format!("{:.2} s, {:.0} MB resident", s.wall_s, s.rss_mb));
}

/// `--sweep` / `--seeds`: every run in parallel, then one row (or JSON entry) per run.
fn run_sweep(args: &SimArgs, base: &Scenario) -> anyhow::Result<()> {
    let runs = plan(base, args.sweep.as_ref(), args.seeds)?;
    let param = args.sweep.as_ref().map(|s| s.param.clone());
    let values: Vec<String> = match &args.sweep {
        Some(sw) => sw
            .values
            .iter()
            .flat_map(|v| std::iter::repeat_n(v.clone(), args.seeds.max(1) as usize))
            .collect(),
        None => vec![String::new(); runs.len()],
    };
    let labels = run_labels(param.as_deref(), &values, &runs);
    let show = !args.json && std::io::stderr().is_terminal();
    let summaries = run_showing_progress(runs, labels.clone(), show);
    let doc = serde_json::json!({ "sweep": param, "values": values, "runs": summaries });
    let name = param.as_deref().unwrap_or("run");
    if let Some(dir) = &args.out {
        let json = serde_json::to_string_pretty(&doc)?;
        let rows: Vec<(String, &Summary)> = values.iter().cloned().zip(&summaries).collect();
        let svg = stale_rate_svg(name, &values, &summaries)?;
        let title = format!("chainsim sim --scenario {} --sweep {name}", base.name);
        let html = report_html(&title, &rows, &[&svg]);
        let files = [
            ("summary.json", json.as_str()),
            ("stale_rate.svg", &svg),
            ("report.html", &html),
        ];
        write_files(dir, &files)?;
    }
    warn_if_cut_short(&summaries, Some(&labels));
    if args.json {
        println!("{doc}");
    } else {
        print_sweep_table(name, &values, &summaries);
    }
    Ok(())
}

/// What names each run of a sweep in notes and the progress line: the swept value (if
/// any) and the seed.
fn run_labels(param: Option<&str>, values: &[String], runs: &[Scenario]) -> Vec<String> {
    let label = |(v, run): (&String, &Scenario)| match param {
        Some(p) => format!("{p}={v} (seed {})", run.seed),
        None => format!("seed {}", run.seed),
    };
    values.iter().zip(runs).map(label).collect()
}

/// Runs a sweep on every core, with its progress line on stderr when `show`.
fn run_showing_progress(runs: Vec<Scenario>, labels: Vec<String>, show: bool) -> Vec<Summary> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = SweepProgress::new(labels);
    let summaries = run_all_with(runs, threads, &|p| {
        if show {
            progress.update(p);
        }
    });
    if show {
        eprintln!();
    }
    summaries
}

/// A sweep's table: one row per run.
fn print_sweep_table(name: &str, values: &[String], summaries: &[Summary]) {
    println!("| {name} | seed | blocks | stale | stale rate | reception p50 ms | p90 ms | wall s |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (v, s) in values.iter().zip(summaries) {
        let r = &s.results;
        println!(
            "| {v} | {} | {} | {} | {:.2}% | {} | {} | {:.2} |",
            r.seed,
            r.blocks_mined,
            r.stale_blocks,
            r.stale_rate * 100.0,
            r.reception_ms.p50,
            r.reception_ms.p90,
            s.wall_s
        );
    }
}

/// The progress line of a sweep on a terminal: how many runs are done, and where the ones
/// running are. Runs report from their worker threads; the line is redrawn at most a few
/// times a second.
struct SweepProgress {
    labels: Vec<String>,
    state: std::sync::Mutex<(Vec<Option<RunProgress>>, Option<std::time::Instant>)>,
}

impl SweepProgress {
    fn new(labels: Vec<String>) -> Self {
        let runs = vec![None; labels.len()];
        Self {
            labels,
            state: std::sync::Mutex::new((runs, None)),
        }
    }

    /// Takes a run's report and redraws the line if it is time to (always for a run done).
    fn update(&self, p: RunProgress) {
        let Ok(mut state) = self.state.lock() else { return };
        let (runs, drawn) = &mut *state;
        if let Some(slot) = runs.get_mut(p.run) {
            *slot = Some(p);
        }
        let due = drawn.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(200));
        if due || p.done {
            *drawn = Some(std::time::Instant::now());
            eprint!("\r{}\x1b[K", progress_line(&self.labels, runs));
        }
    }
}

/// `runs: D of N done · LABEL: M/T blocks · ...` for the runs started and not done.
fn progress_line(labels: &[String], runs: &[Option<RunProgress>]) -> String {
    let done = runs.iter().flatten().filter(|p| p.done).count();
    let mut line = format!("  runs: {done} of {} done", runs.len());
    for p in runs.iter().flatten().filter(|p| !p.done) {
        let label = labels.get(p.run).map_or("?", String::as_str);
        line.push_str(&format!(" · {label}: {}/{} blocks", p.mined, p.target));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweeps_progress_line_counts_runs_done_and_shows_the_running_ones() {
        let labels: Vec<String> = ["interval=60 (seed 1)", "interval=1 (seed 1)", "interval=10 (seed 1)"]
            .map(String::from)
            .to_vec();
        let at = |run, mined, done| {
            Some(RunProgress {
                run,
                mined,
                target: 20,
                done,
            })
        };
        let runs = [at(0, 20, true), at(1, 5, false), None];
        assert_eq!(
            progress_line(&labels, &runs),
            "  runs: 1 of 3 done · interval=1 (seed 1): 5/20 blocks"
        );
        assert_eq!(progress_line(&labels, &[None, None, None]), "  runs: 0 of 3 done");
    }
}
