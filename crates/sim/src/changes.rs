//! Link conditions changed at given times (`[[link_changes]]` in a scenario): more delay,
//! loss, a bandwidth cap or a cut on one link, on every link touching a region, or on every
//! link between two regions, from one time until another.
//!
//! A change is held as the live node's [`LinkConditions`] and adds to the network model:
//! the delay to the pair's latency, the cap to the narrower of the two nodes' pipes, the
//! loss as a further chance that a message is lost (its link breaks, as with network loss),
//! and a cut drops everything as a partition does. While no change is active and none has
//! left messages in flight, the simulator never consults this module, so runs without
//! changes go exactly as before.

use std::collections::HashMap;

use chainsim_core::LinkConditions;
use chainsim_core::conditions::transmit_us;

use crate::network::Network;
use crate::queue::Micros;
use crate::scenario::LinkChangeSpec;

/// Which links a change applies to.
#[derive(Debug, Clone, Copy)]
enum Links {
    /// The link between two nodes.
    Pair(usize, usize),
    /// Every link with an end in this region.
    Touching(usize),
    /// Every link between these two regions.
    Between(usize, usize),
}

impl Links {
    fn matches(self, a: usize, b: usize, net: &Network) -> bool {
        match self {
            Links::Pair(x, y) => (a, b) == (x, y) || (a, b) == (y, x),
            Links::Touching(r) => net.region(a) == r || net.region(b) == r,
            Links::Between(r, s) => {
                let (ra, rb) = (net.region(a), net.region(b));
                (ra, rb) == (r, s) || (ra, rb) == (s, r)
            }
        }
    }
}

/// The scenario's link changes and which are in force.
#[derive(Debug)]
pub struct LinkChanges {
    rules: Vec<(Links, LinkConditions)>,
    active: Vec<bool>,
    active_count: usize,
    /// Per directed pair, the latest arrival scheduled while a change delayed it: a message
    /// sent later never arrives before it (a link is an ordered stream).
    last_arrival: HashMap<(usize, usize), Micros>,
    /// The latest of `last_arrival`: past it, the map says nothing and is cleared.
    hold_until: Micros,
    rng: fastrand::Rng,
}

impl LinkChanges {
    /// The changes of a scenario (`regions`: its region names); `seed` drives their loss.
    pub fn new(specs: &[LinkChangeSpec], regions: &[String], seed: u64) -> Self {
        let region = |name: &String| regions.iter().position(|r| r == name).unwrap_or(usize::MAX);
        let rules = specs
            .iter()
            .map(|c| {
                let links = match (c.nodes.as_slice(), c.regions.as_slice()) {
                    (&[a, b], _) => Links::Pair(a, b),
                    (_, [r, s]) => Links::Between(region(r), region(s)),
                    (_, [r]) => Links::Touching(region(r)),
                    // Refused by the scenario's validation; matches no link.
                    _ => Links::Pair(usize::MAX, usize::MAX),
                };
                (links, c.conditions())
            })
            .collect();
        Self {
            rules,
            active: vec![false; specs.len()],
            active_count: 0,
            last_arrival: HashMap::new(),
            hold_until: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Puts change `k` in force (`on`) or restores its links.
    pub fn set(&mut self, k: usize, on: bool) {
        if let Some(a) = self.active.get_mut(k)
            && *a != on
        {
            *a = on;
            self.active_count = if on {
                self.active_count + 1
            } else {
                self.active_count - 1
            };
        }
    }

    /// Whether nothing is in force and nothing delayed by a change is still in flight at
    /// `now`: the plain network model applies.
    pub fn idle(&mut self, now: Micros) -> bool {
        if self.active_count > 0 {
            return false;
        }
        if !self.last_arrival.is_empty() && now >= self.hold_until {
            self.last_arrival.clear();
        }
        self.last_arrival.is_empty()
    }

    /// The conditions in force between `a` and `b`: every active change that applies, added
    /// up (delays add, losses compound, the narrowest cap wins, any cut cuts).
    pub fn between(&self, a: usize, b: usize, net: &Network) -> LinkConditions {
        let mut c = LinkConditions::PERFECT;
        if self.active_count == 0 {
            return c;
        }
        for ((links, r), on) in self.rules.iter().zip(&self.active) {
            if !*on || !links.matches(a, b, net) {
                continue;
            }
            c.latency_ms += r.latency_ms;
            c.loss = 1.0 - (1.0 - c.loss) * (1.0 - r.loss);
            c.cut |= r.cut;
            if r.bandwidth_bps > 0 && (c.bandwidth_bps == 0 || r.bandwidth_bps < c.bandwidth_bps) {
                c.bandwidth_bps = r.bandwidth_bps;
            }
        }
        c
    }

    /// Whether no link change is in force.
    pub fn none_active(&self) -> bool {
        self.active_count == 0
    }

    /// Whether a change cuts `a` from `b` now.
    pub fn cut(&self, a: usize, b: usize, net: &Network) -> bool {
        self.active_count > 0 && self.between(a, b, net).cut
    }

    /// Sends `bytes` from `from` to `to` at `now` under the changes in force: `None` when
    /// the message is lost, else when it arrives (never before one sent earlier).
    pub fn transmit(&mut self, net: &mut Network, now: Micros, from: usize, to: usize, bytes: u64) -> Option<Micros> {
        let c = self.between(from, to, net);
        if c.loss > 0.0 && self.rng.f64() < c.loss {
            return None;
        }
        let at = if c.is_perfect() {
            net.transmit(now, from, to, bytes)
        } else {
            let cap = transmit_us(usize::try_from(bytes).unwrap_or(usize::MAX), c.bandwidth_bps);
            net.transmit_at_least(now, from, to, bytes, cap) + c.latency_ms * 1000
        };
        Some(self.in_order(from, to, at, !c.is_perfect()))
    }

    /// `at`, or later if a message sent earlier on the same link arrives later; remembered
    /// when a change `delayed` it.
    fn in_order(&mut self, from: usize, to: usize, at: Micros, delayed: bool) -> Micros {
        let at = match self.last_arrival.get(&(from, to)) {
            Some(&last) if last > at => last,
            _ => at,
        };
        if delayed {
            self.last_arrival.insert((from, to), at);
            self.hold_until = self.hold_until.max(at);
        }
        at
    }

    /// Extra one-way delay between `a` and `b` now, in microseconds (for a link coming up).
    pub fn extra_delay(&self, a: usize, b: usize, net: &Network) -> Micros {
        self.between(a, b, net).latency_ms * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::NetworkSpec;

    fn net() -> Network {
        let spec = NetworkSpec {
            regions: vec!["a".into(), "b".into()],
            region_share: vec![1.0, 1.0],
            latency_ms: vec![vec![10.0, 10.0], vec![10.0, 10.0]],
            latency_shape_per_ms: 0.0,
            upload_mbps: vec![],
            download_mbps: vec![],
            processing_ms: 0.0,
            loss: 0.0,
        };
        Network::new(&spec, 40, 1)
    }

    fn spec(nodes: Vec<usize>, regions: &[&str], latency_ms: u64) -> LinkChangeSpec {
        LinkChangeSpec {
            at_s: 0.0,
            until_s: None,
            nodes,
            regions: regions.iter().map(|r| r.to_string()).collect(),
            latency_ms,
            loss: 0.5,
            bandwidth_mbps: 8.0,
            cut: false,
        }
    }

    #[test]
    fn changes_apply_to_their_links_only_while_in_force_and_add_up() {
        let net = net();
        let names = ["a".to_string(), "b".to_string()];
        let specs = [
            spec(vec![0, 1], &[], 100),
            spec(vec![], &["a"], 20),
            spec(vec![], &["a", "b"], 3),
        ];
        let mut ch = LinkChanges::new(&specs, &names, 1);
        assert!(ch.idle(0) && ch.between(0, 1, &net).is_perfect());
        for k in 0..3 {
            ch.set(k, true);
        }
        let in_a: Vec<usize> = (2..40).filter(|&i| net.region(i) == 0).collect();
        let in_b: Vec<usize> = (2..40).filter(|&i| net.region(i) == 1).collect();
        let (a, b) = (in_a[0], in_b[0]);
        // Touching a: yes; between a and b: yes; the pair: only 0–1 (not among these).
        assert_eq!(ch.between(a, b, &net).latency_ms, 23);
        assert_eq!(ch.between(b, a, &net).latency_ms, 23);
        assert_eq!(ch.between(in_b[0], in_b[1], &net).latency_ms, 0);
        assert_eq!(ch.between(in_a[0], in_a[1], &net).latency_ms, 20);
        let both = ch.between(a, b, &net);
        assert!((both.loss - 0.75).abs() < 1e-12, "losses compound");
        assert_eq!(both.bandwidth_bps, 1_000_000);
        assert!(ch.between(1, 0, &net).latency_ms >= 100, "the pair, either way");
        ch.set(1, false);
        ch.set(2, false);
        assert_eq!(ch.between(a, b, &net).latency_ms, 0);
        ch.set(0, false);
        assert!(ch.idle(0));
    }

    #[test]
    fn a_message_never_overtakes_one_a_change_delayed() {
        let mut net = net();
        let specs = [LinkChangeSpec {
            loss: 0.0,
            bandwidth_mbps: 0.0,
            ..spec(vec![0, 1], &[], 500)
        }];
        let mut ch = LinkChanges::new(&specs, &["a".into(), "b".into()], 1);
        ch.set(0, true);
        assert_eq!(ch.transmit(&mut net, 0, 0, 1, 0), Some(510_000));
        ch.set(0, false);
        assert!(!ch.idle(1_000), "a delayed message is still in flight");
        assert_eq!(ch.transmit(&mut net, 1_000, 0, 1, 0), Some(510_000), "waits behind it");
        assert_eq!(
            ch.transmit(&mut net, 1_000, 1, 0, 0),
            Some(11_000),
            "the other direction is free"
        );
        assert!(ch.idle(510_000));
    }
}
