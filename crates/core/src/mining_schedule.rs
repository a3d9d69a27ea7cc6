//! When a node starts mining by itself: the decision, not the work. `manual` never does
//! (blocks come from `/mine`), `interval` every S seconds, `auto` as a Poisson process: with
//! a network-wide expected block interval T and this node's share s of the hash power, the
//! gaps between its starts are exponential with mean T/s, so the network as a whole finds a
//! block every T on average and each node a share s of them.
//!
//! The schedule is a small state machine on [`Time`] with its own seeded RNG: its deadline
//! joins the node's [`crate::Node::poll_timeout`], and when it passes the node asks its
//! driver to mine ([`crate::Output::StartMining`]). The live node then runs the real
//! proof-of-work search; a simulator may draw the search's duration instead.

use std::collections::VecDeque;
use std::time::Duration;

use thiserror::Error;

use crate::time::Time;

/// Longest interval accepted (a day).
pub const MAX_BLOCK_TIME: Duration = Duration::from_secs(86_400);
/// Mined blocks remembered for the observed interval.
const RECENT_BLOCKS: usize = 32;

/// How a node decides to mine.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum MiningMode {
    /// Only when asked (`/mine`), as the original.
    #[default]
    Manual,
    /// One block every `every`.
    Interval {
        /// Time between starts.
        every: Duration,
    },
    /// Blocks as a Poisson process with mean gap `network_interval / share`.
    Auto {
        /// Expected time between blocks of the whole network.
        network_interval: Duration,
        /// This node's share of the network's hash power, in (0, 1].
        share: f64,
    },
}

/// Why a mining mode was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MiningModeError {
    /// A block time of zero or above [`MAX_BLOCK_TIME`].
    #[error("block time must be above 0 and at most a day (86,400 s), got {0:?}")]
    BlockTime(Duration),
    /// A share outside (0, 1].
    #[error("share must be a fraction above 0 and at most 1, got {0}")]
    Share(f64),
}

impl MiningMode {
    /// Checks the block time and share are in range.
    pub fn validate(&self) -> Result<(), MiningModeError> {
        let (time, share) = match *self {
            MiningMode::Manual => return Ok(()),
            MiningMode::Interval { every } => (every, 1.0),
            MiningMode::Auto {
                network_interval,
                share,
            } => (network_interval, share),
        };
        if time.is_zero() || time > MAX_BLOCK_TIME {
            return Err(MiningModeError::BlockTime(time));
        }
        if !(share > 0.0 && share <= 1.0) {
            return Err(MiningModeError::Share(share));
        }
        Ok(())
    }

    /// The mode's name: `manual`, `interval` or `auto`.
    pub fn name(&self) -> &'static str {
        match self {
            MiningMode::Manual => "manual",
            MiningMode::Interval { .. } => "interval",
            MiningMode::Auto { .. } => "auto",
        }
    }

    /// Expected time between this node's starts (none for manual).
    pub fn mean_gap(&self) -> Option<Duration> {
        match *self {
            MiningMode::Manual => None,
            MiningMode::Interval { every } => Some(every),
            MiningMode::Auto {
                network_interval,
                share,
            } => Some(network_interval.div_f64(share.max(1e-9))),
        }
    }
}

/// The schedule of one node's self-started mining.
#[derive(Debug, Clone)]
pub struct MiningSchedule {
    mode: MiningMode,
    /// The next start; `None` until the schedule has seen the time once (or for manual).
    next: Option<Time>,
    rng: fastrand::Rng,
    /// Timestamps of the node's latest mined blocks, oldest first.
    recent: VecDeque<u64>,
}

impl MiningSchedule {
    /// A schedule in `mode` whose draws come from `seed`. It arms itself at the first
    /// [`MiningSchedule::on_timeout`], which its deadline asks for at once.
    pub fn new(mode: MiningMode, seed: u64) -> Self {
        Self {
            mode,
            next: None,
            rng: fastrand::Rng::with_seed(seed),
            recent: VecDeque::new(),
        }
    }

    /// The current mode.
    pub fn mode(&self) -> MiningMode {
        self.mode
    }

    /// Switches mode at `now`; the first start of the new mode is drawn from `now`.
    pub fn set_mode(&mut self, mode: MiningMode, now: Time) {
        self.mode = mode;
        self.next = None;
        self.arm(now);
    }

    /// When the schedule next wants the time: the next start, or at once when it has not
    /// seen the time yet; none in manual mode.
    pub fn deadline(&self) -> Option<Time> {
        match self.mode {
            MiningMode::Manual => None,
            _ => Some(self.next.unwrap_or(Time::ZERO)),
        }
    }

    /// The time passed: true when the node should start mining now (the next start is then
    /// drawn from `now`).
    pub fn on_timeout(&mut self, now: Time) -> bool {
        match self.next {
            None => {
                self.arm(now);
                false
            }
            Some(at) if now >= at => {
                self.next = self.draw().map(|gap| now + gap);
                true
            }
            Some(_) => false,
        }
    }

    fn arm(&mut self, now: Time) {
        self.next = self.draw().map(|gap| now + gap);
    }

    /// The next gap: fixed for interval, exponential for auto (at least 1 ms).
    fn draw(&mut self) -> Option<Duration> {
        let mean = self.mode.mean_gap()?;
        Some(match self.mode {
            MiningMode::Auto { .. } => {
                // Inverse transform: -ln(1 - u) is exponential with mean 1 for u in [0, 1).
                let unit = -(1.0 - self.rng.f64()).ln();
                mean.mul_f64(unit).max(Duration::from_millis(1))
            }
            _ => mean,
        })
    }

    /// Remembers that the node mined a block with timestamp `timestamp_ms`.
    pub fn record_mined(&mut self, timestamp_ms: u64) {
        if self.recent.len() == RECENT_BLOCKS {
            self.recent.pop_front();
        }
        self.recent.push_back(timestamp_ms);
    }

    /// The mean time between the node's latest mined blocks (up to 32), once it has two.
    pub fn observed_interval(&self) -> Option<Duration> {
        let (first, last) = (self.recent.front()?, self.recent.back()?);
        let gaps = self.recent.len().checked_sub(1).filter(|n| *n > 0)?;
        Some(Duration::from_millis(last.saturating_sub(*first) / gaps as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(mode: MiningMode, seed: u64, until_ms: u64) -> Vec<u64> {
        let mut s = MiningSchedule::new(mode, seed);
        assert_eq!(s.deadline(), Some(Time::ZERO), "asks for the time at once");
        assert!(!s.on_timeout(Time::ZERO), "arming never starts a block");
        let mut out = Vec::new();
        while let Some(at) = s.deadline().filter(|t| t.as_millis() <= until_ms) {
            if s.on_timeout(at) {
                out.push(at.as_millis());
            }
        }
        out
    }

    fn auto(secs: u64, share: f64) -> MiningMode {
        MiningMode::Auto {
            network_interval: Duration::from_secs(secs),
            share,
        }
    }

    #[test]
    fn manual_never_starts() {
        let mut s = MiningSchedule::new(MiningMode::Manual, 1);
        assert_eq!(s.deadline(), None);
        assert!(!s.on_timeout(Time::from_millis(1_000_000)));
    }

    #[test]
    fn interval_starts_every_period() {
        let every = Duration::from_secs(2);
        assert_eq!(
            starts(MiningMode::Interval { every }, 1, 10_000),
            vec![2_000, 4_000, 6_000, 8_000, 10_000]
        );
    }

    #[test]
    fn an_early_timeout_starts_nothing() {
        let mut s = MiningSchedule::new(
            MiningMode::Interval {
                every: Duration::from_secs(5),
            },
            1,
        );
        s.set_mode(
            MiningMode::Interval {
                every: Duration::from_secs(5),
            },
            Time::from_millis(100),
        );
        assert!(!s.on_timeout(Time::from_millis(5_099)));
        assert!(s.on_timeout(Time::from_millis(5_100)));
        assert_eq!(s.deadline(), Some(Time::from_millis(10_100)));
    }

    #[test]
    fn auto_is_the_same_for_one_seed_and_differs_between_seeds() {
        assert_eq!(
            starts(auto(10, 0.5), 42, 1_000_000),
            starts(auto(10, 0.5), 42, 1_000_000)
        );
        assert_ne!(
            starts(auto(10, 0.5), 42, 1_000_000),
            starts(auto(10, 0.5), 43, 1_000_000)
        );
    }

    /// Over 20,000 expected starts the mean gap is within 3% of T/s (its standard error is
    /// under 1%), and the gaps look exponential: about e^-1 of them exceed the mean.
    #[test]
    fn auto_gaps_have_mean_interval_over_share() {
        for (t, share) in [(10, 1.0), (10, 0.25), (600, 0.1)] {
            let mean_ms = t as f64 * 1_000.0 / share;
            let horizon = (mean_ms * 20_000.0) as u64;
            let s = starts(auto(t, share), 7, horizon);
            let gaps: Vec<f64> = s.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            assert!(
                (mean / mean_ms - 1.0).abs() < 0.03,
                "mean gap {mean} for expected {mean_ms}"
            );
            let long = gaps.iter().filter(|g| **g > mean_ms).count() as f64 / gaps.len() as f64;
            assert!((long - (-1.0f64).exp()).abs() < 0.02, "{long} of gaps exceed the mean");
        }
    }

    #[test]
    fn validation_bounds_time_and_share() {
        assert!(auto(10, 0.0).validate().is_err());
        assert!(auto(10, 1.5).validate().is_err());
        assert!(auto(10, f64::NAN).validate().is_err());
        assert!(auto(0, 0.5).validate().is_err());
        assert!(
            MiningMode::Interval {
                every: MAX_BLOCK_TIME * 2
            }
            .validate()
            .is_err()
        );
        assert!(auto(10, 1.0).validate().is_ok());
        assert!(MiningMode::Manual.validate().is_ok());
    }

    #[test]
    fn observed_interval_is_the_mean_of_recent_gaps() {
        let mut s = MiningSchedule::new(MiningMode::Manual, 1);
        assert_eq!(s.observed_interval(), None);
        s.record_mined(1_000);
        assert_eq!(s.observed_interval(), None);
        for t in [3_000, 5_000, 7_000] {
            s.record_mined(t);
        }
        assert_eq!(s.observed_interval(), Some(Duration::from_secs(2)));
    }
}
