//! Link conditions: one-way delay, jitter, loss, bandwidth and a cut, as one value that the
//! live node's sender and the simulator's links both understand, and the pure arithmetic of
//! when a frame sent on such a link leaves and arrives.
//!
//! A [`LinkQueue`] is one direction of one link: frames leave one after another at the
//! link's bandwidth (a frame queues behind the ones before it), then travel for the delay
//! plus a jitter drawn from the caller's seeded RNG. Arrivals never overtake each other,
//! because links are ordered streams (TCP in the live node): a frame whose jitter would make
//! it arrive before its predecessor arrives just after it instead. Nothing here reads a
//! clock; times come in as [`Time`].

use thiserror::Error;

use crate::time::Time;

/// Longest delay or jitter accepted, in milliseconds (one minute: longer is a cut).
pub const MAX_DELAY_MS: u64 = 60_000;

/// How the messages one node sends on one link are treated.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkConditions {
    /// One-way delay added to every frame, in milliseconds.
    pub latency_ms: u64,
    /// Up to this many milliseconds more, drawn uniformly per frame.
    pub jitter_ms: u64,
    /// Fraction of frames dropped, from 0 (none) to 1 (all).
    pub loss: f64,
    /// Bytes per second the link carries; 0 means unlimited.
    pub bandwidth_bps: u64,
    /// Nothing is sent at all.
    pub cut: bool,
}

/// Why conditions were refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConditionsError {
    /// A delay or jitter above [`MAX_DELAY_MS`].
    #[error("{field} must be at most {MAX_DELAY_MS} ms, got {value}")]
    DelayTooLong {
        /// Which setting.
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// A loss outside 0..=1 (or not a number).
    #[error("loss must be a fraction from 0 to 1, got {0}")]
    Loss(f64),
}

impl LinkConditions {
    /// A perfect link: no delay, no loss, unlimited bandwidth.
    pub const PERFECT: LinkConditions = LinkConditions {
        latency_ms: 0,
        jitter_ms: 0,
        loss: 0.0,
        bandwidth_bps: 0,
        cut: false,
    };

    /// Checks every field is within its range.
    pub fn validate(&self) -> Result<(), ConditionsError> {
        for (field, value) in [("latency_ms", self.latency_ms), ("jitter_ms", self.jitter_ms)] {
            if value > MAX_DELAY_MS {
                return Err(ConditionsError::DelayTooLong { field, value });
            }
        }
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(ConditionsError::Loss(self.loss));
        }
        Ok(())
    }

    /// Whether frames pass untouched (the sender can skip the queue arithmetic).
    pub fn is_perfect(&self) -> bool {
        *self == Self::PERFECT
    }
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It is lost (loss, or the link is cut).
    Dropped,
    /// It leaves the sender when its last byte is out, and reaches the other end later.
    At {
        /// When its last byte has left the sender (after the frames queued before it).
        leaves: Time,
        /// When it reaches the other end.
        arrives: Time,
    },
}

/// One direction of one link: when the sender is free again and when the last frame
/// arrives. Microseconds inside, so that many small frames on a fast link add up right.
#[derive(Debug, Clone, Default)]
pub struct LinkQueue {
    busy_until_us: u64,
    last_arrival_ms: u64,
}

impl LinkQueue {
    /// An idle link.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans a frame of `bytes` handed to the link at `now` under `cond`; the loss and
    /// jitter draws come from `rng`, so a seed decides them all.
    pub fn send(&mut self, now: Time, bytes: usize, cond: &LinkConditions, rng: &mut fastrand::Rng) -> Delivery {
        // The loss draw happens on every frame, so one seed gives one sequence of draws
        // whatever the loss setting.
        let lost = rng.f64() < cond.loss;
        let jitter = if cond.jitter_ms > 0 {
            rng.u64(0..=cond.jitter_ms)
        } else {
            0
        };
        if cond.cut || lost {
            return Delivery::Dropped;
        }
        let start_us = self.busy_until_us.max(now.as_millis().saturating_mul(1_000));
        self.busy_until_us = start_us.saturating_add(transmit_us(bytes, cond.bandwidth_bps));
        let leaves = self.busy_until_us.div_ceil(1_000);
        let arrives = leaves
            .saturating_add(cond.latency_ms)
            .saturating_add(jitter)
            .max(self.last_arrival_ms);
        self.last_arrival_ms = arrives;
        Delivery::At {
            leaves: Time::from_millis(leaves),
            arrives: Time::from_millis(arrives),
        }
    }
}

/// Microseconds `bytes` take at `bandwidth_bps` bytes per second (0: unlimited).
pub fn transmit_us(bytes: usize, bandwidth_bps: u64) -> u64 {
    if bandwidth_bps == 0 {
        return 0;
    }
    let us = (bytes as u128 * 1_000_000).div_ceil(u128::from(bandwidth_bps));
    u64::try_from(us).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    fn arrival(d: Delivery) -> u64 {
        match d {
            Delivery::At { arrives, .. } => arrives.as_millis(),
            Delivery::Dropped => panic!("dropped"),
        }
    }

    #[test]
    fn a_perfect_link_delivers_at_once() {
        let mut q = LinkQueue::new();
        let mut rng = fastrand::Rng::with_seed(1);
        let d = q.send(at(1_000), 5_000, &LinkConditions::PERFECT, &mut rng);
        assert_eq!(
            d,
            Delivery::At {
                leaves: at(1_000),
                arrives: at(1_000)
            }
        );
    }

    #[test]
    fn latency_delays_each_frame_without_adding_up() {
        let c = LinkConditions {
            latency_ms: 200,
            ..LinkConditions::PERFECT
        };
        let mut q = LinkQueue::new();
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(arrival(q.send(at(1_000), 100, &c, &mut rng)), 1_200);
        // Sent 1 ms later: arrives 1 ms later, not 200 ms later (delay is pipelined).
        assert_eq!(arrival(q.send(at(1_001), 100, &c, &mut rng)), 1_201);
    }

    #[test]
    fn frames_queue_behind_each_other_at_the_bandwidth() {
        let c = LinkConditions {
            bandwidth_bps: 1_000,
            latency_ms: 10,
            ..LinkConditions::PERFECT
        };
        let mut q = LinkQueue::new();
        let mut rng = fastrand::Rng::with_seed(1);
        // 500 bytes at 1,000 B/s: half a second each; the second waits for the first.
        let first = q.send(at(0), 500, &c, &mut rng);
        let second = q.send(at(0), 500, &c, &mut rng);
        assert_eq!(
            first,
            Delivery::At {
                leaves: at(500),
                arrives: at(510)
            }
        );
        assert_eq!(
            second,
            Delivery::At {
                leaves: at(1_000),
                arrives: at(1_010)
            }
        );
        // A frame handed in after the queue emptied starts at once.
        assert_eq!(arrival(q.send(at(5_000), 1, &c, &mut rng)), 5_011);
    }

    #[test]
    fn small_frames_on_a_fast_link_add_up_exactly() {
        let c = LinkConditions {
            bandwidth_bps: 1_000_000,
            ..LinkConditions::PERFECT
        };
        let mut q = LinkQueue::new();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut last = 0;
        for _ in 0..1_000 {
            last = arrival(q.send(at(0), 100, &c, &mut rng));
        }
        assert_eq!(last, 100, "1,000 × 100 B at 1 MB/s take 100 ms");
    }

    #[test]
    fn a_cut_link_and_full_loss_drop_everything() {
        let mut q = LinkQueue::new();
        let mut rng = fastrand::Rng::with_seed(1);
        let cut = LinkConditions {
            cut: true,
            ..LinkConditions::PERFECT
        };
        let lossy = LinkConditions {
            loss: 1.0,
            ..LinkConditions::PERFECT
        };
        assert_eq!(q.send(at(0), 1, &cut, &mut rng), Delivery::Dropped);
        assert_eq!(q.send(at(0), 1, &lossy, &mut rng), Delivery::Dropped);
    }

    #[test]
    fn validation_names_the_bad_field() {
        let long = LinkConditions {
            jitter_ms: MAX_DELAY_MS + 1,
            ..LinkConditions::PERFECT
        };
        assert!(matches!(
            long.validate(),
            Err(ConditionsError::DelayTooLong { field: "jitter_ms", .. })
        ));
        for loss in [-0.1, 1.1, f64::NAN] {
            let c = LinkConditions {
                loss,
                ..LinkConditions::PERFECT
            };
            assert!(c.validate().is_err(), "{loss}");
        }
        assert!(
            LinkConditions {
                loss: 1.0,
                latency_ms: MAX_DELAY_MS,
                ..LinkConditions::PERFECT
            }
            .validate()
            .is_ok()
        );
    }

    proptest! {
        /// Whatever the conditions and sending times: a frame never arrives before it was
        /// sent plus the latency, arrivals keep their order, the loss rate stays near its
        /// setting, and one seed always gives the same plan.
        #[test]
        fn plans_respect_latency_order_and_seed(
            latency in 0u64..500, jitter in 0u64..500, bw in 0u64..100_000,
            gaps in proptest::collection::vec((0u64..50, 1usize..5_000), 1..100), seed in any::<u64>(),
        ) {
            let c = LinkConditions { latency_ms: latency, jitter_ms: jitter, bandwidth_bps: bw, ..LinkConditions::PERFECT };
            let plan = |seed| {
                let (mut q, mut rng, mut t) = (LinkQueue::new(), fastrand::Rng::with_seed(seed), 0);
                gaps.iter().map(|(gap, bytes)| {
                    t += gap;
                    (t, q.send(at(t), *bytes, &c, &mut rng))
                }).collect::<Vec<_>>()
            };
            let first = plan(seed);
            prop_assert_eq!(&first, &plan(seed));
            let mut last = 0;
            for (sent, d) in first {
                let a = arrival(d);
                prop_assert!(a >= sent + latency);
                prop_assert!(a >= last);
                last = a;
            }
        }
    }

    #[test]
    fn loss_drops_about_its_fraction() {
        let c = LinkConditions {
            loss: 0.3,
            ..LinkConditions::PERFECT
        };
        let (mut q, mut rng) = (LinkQueue::new(), fastrand::Rng::with_seed(7));
        let dropped = (0..10_000)
            .filter(|_| q.send(at(0), 1, &c, &mut rng) == Delivery::Dropped)
            .count();
        assert!((2_700..3_300).contains(&dropped), "{dropped} of 10,000 dropped at 30%");
    }
}
