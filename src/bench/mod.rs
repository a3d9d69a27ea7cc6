//! `chainsim bench`: speed and memory measurements (results in docs/BENCHMARKS.md).

/// Which benchmark to run.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// mining, validation, mempool, http, propagation, catchup or memory.
    pub what: String,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("unknown benchmark {:?}", args.what)
}
