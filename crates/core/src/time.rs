//! Time as the core sees it: a [`Time`] is milliseconds since the Unix epoch, handed in by
//! the caller with every input. The core never reads a clock; a live node passes the wall
//! clock, a simulator its virtual clock. Milliseconds match block timestamps, which are
//! milliseconds too, so a block's time and a node's time compare directly.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An instant: milliseconds since the Unix epoch.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Time(u64);

impl Time {
    /// The epoch itself: "never" for a last-seen time.
    pub const ZERO: Time = Time(0);
    /// Later than any real instant: "no deadline".
    pub const NEVER: Time = Time(u64::MAX);

    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }
    /// Milliseconds since the epoch (the unit of block timestamps).
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// How long after `earlier` this is (zero when it is not after).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Time({}ms)", self.0)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_millis(1_000);
        assert_eq!((t + Duration::from_secs(2)).as_millis(), 3_000);
        assert_eq!((t - Duration::from_secs(2)), Time::ZERO);
        assert_eq!(Time::NEVER + Duration::from_secs(1), Time::NEVER);
        assert_eq!(t.since(Time::ZERO), Duration::from_secs(1));
        assert_eq!(Time::ZERO.since(t), Duration::ZERO);
    }
}
