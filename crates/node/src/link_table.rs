//! Which conditions each link is under: the defaults from the command line
//! (`--latency`, `--jitter`, `--loss`, `--bandwidth`) and what `PUT /peers/{addr}/link`,
//! `POST /peers/block` and `/peers/unblock` set for one peer address. The driver changes
//! it; `GET /peers` reads it; each link's writer gets its entry through [`crate::links`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chainsim_core::{LinkConditions, PeerAddr};

/// The conditions of every link, by peer address.
#[derive(Debug, Default)]
pub struct LinkTable {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    defaults: LinkConditions,
    by_addr: HashMap<PeerAddr, LinkConditions>,
}

impl LinkTable {
    /// Every link under `defaults` until told otherwise.
    pub fn new(defaults: LinkConditions) -> Self {
        Self {
            inner: Mutex::new(Table {
                defaults,
                by_addr: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere while holding the lock leaves plain data behind: use it.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The conditions for a link to `addr` (the defaults for a link whose address is not
    /// known yet).
    pub fn get(&self, addr: Option<&PeerAddr>) -> LinkConditions {
        let t = self.lock();
        addr.and_then(|a| t.by_addr.get(a)).copied().unwrap_or(t.defaults)
    }

    /// Sets the conditions for links to `addr`.
    pub fn set(&self, addr: PeerAddr, conditions: LinkConditions) {
        self.lock().by_addr.insert(addr, conditions);
    }

    /// Changes only whether links to `addr` are cut.
    pub fn set_cut(&self, addr: PeerAddr, cut: bool) {
        let mut t = self.lock();
        let defaults = t.defaults;
        t.by_addr.entry(addr).or_insert(defaults).cut = cut;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_addresses_get_the_defaults() {
        let defaults = LinkConditions {
            latency_ms: 300,
            ..LinkConditions::PERFECT
        };
        let table = LinkTable::new(defaults);
        let a: PeerAddr = "127.0.0.1:5001".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(table.get(None), defaults);
        assert_eq!(table.get(Some(&a)), defaults);
        table.set_cut(a.clone(), true);
        assert_eq!(table.get(Some(&a)), LinkConditions { cut: true, ..defaults });
    }
}
