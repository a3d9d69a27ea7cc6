//! The one error type of the simulator crate.

use thiserror::Error;

/// Why a scenario cannot be run.
#[derive(Debug, Error)]
pub enum SimError {
    /// `--scenario NAME` names no built-in scenario and no file.
    #[error("unknown scenario {name:?}: not a built-in one ({known}) and no such file")]
    UnknownScenario {
        /// What was asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// A scenario file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// A scenario is not valid TOML or has the wrong shape.
    #[error("scenario {name}: {message}")]
    Parse {
        /// The scenario's name or file.
        name: String,
        /// The parser's message, on one line.
        message: String,
    },
    /// A scenario parses but its numbers do not make a network.
    #[error("scenario {name}: {message}")]
    Invalid {
        /// The scenario's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An edge-list file could not be read or has a bad line.
    #[error("edges file {path}: {message}")]
    Edges {
        /// The file.
        path: String,
        /// What is wrong (with the line number).
        message: String,
    },
    /// A results file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("cannot draw the plot: {0}")]
    Plot(String),
}
