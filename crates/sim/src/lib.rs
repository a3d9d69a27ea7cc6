//! `chainsim sim`: a deterministic discrete-event simulator that drives thousands of
//! [`chainsim_core::Node`] values — the very state machine the live nodes run — on one
//! virtual clock, through the core's one interface (`handle_input`, `poll_output`,
//! `poll_timeout`) and the transport glue shared with every driver ([`chainsim_core::link`]).
//!
//! Where to look:
//! - [`scenario`]: what a run simulates (TOML files, built-in ones, flag overrides);
//!   [`fields`]: any of its fields set by path (`--set network.processing_ms=5`);
//! - [`queue`]: the event queue, ordered by (virtual time, sequence number);
//! - [`network`]: regions, latency, bandwidth, processing delay, loss;
//! - [`size`]: how many bytes each message costs on the simulated wire;
//! - [`topology`]: who dials whom; [`edges`]: an explicit graph read from a file;
//! - [`changes`]: link conditions changed at given times;
//! - [`txload`]: synthetic transactions submitted to the nodes, and what became of them;
//! - [`mining`]: who finds the next block, and when;
//! - [`blocks`]: the one block store the nodes share;
//! - [`run`]: the loop that ties them to the nodes; [`prefetch`]: loading the next
//!   event's node early;
//! - [`results`]: what a run measured (stale rate, reception times, traffic);
//! - [`report`]: plots of a run, as SVG;
//! - [`sweep`]: many runs over a parameter's values and seeds, in parallel.
//!
//! Everything random comes from RNGs seeded by the scenario's seed, and every tie is broken
//! by the order things were scheduled, so a scenario and a seed give the same results, byte
//! for byte. Nothing here reads a clock except [`run::simulate`]'s wall-time measurement,
//! which is reported apart from the deterministic results.

pub mod blocks;
pub mod changes;
pub mod edges;
pub mod error;
pub mod fields;
pub mod mining;
pub mod network;
pub mod prefetch;
pub mod queue;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod size;
pub mod sweep;
pub mod topology;
pub mod txload;

pub use error::SimError;
pub use results::{Results, Summary};
pub use run::{Simulation, simulate};
pub use scenario::{Overrides, Scenario};
