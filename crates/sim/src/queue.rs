//! Where the simulator schedules: the core's [`EventQueue`] (shared with the test network),
//! on a clock of virtual microseconds.

pub use chainsim_core::event_queue::EventQueue;

/// Virtual time in microseconds since the simulation started.
pub type Micros = u64;
