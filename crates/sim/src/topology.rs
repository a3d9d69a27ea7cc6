//! Who dials whom: a random graph in the manner of Bitcoin Core (each node dials a few
//! peers drawn at random among those with a free inbound slot), or an explicit edge list.
//! The simulator tells each node its peers as configured addresses and the node dials them
//! itself, through its own core, exactly as `--peer` does on a live node.

use std::collections::HashSet;

use crate::scenario::TopologySpec;

/// Outbound peers of every node: `graph[i]` lists the nodes node `i` dials.
pub type Graph = Vec<Vec<usize>>;

/// Builds the scenario's graph over `n` nodes, `pools` (the mining pools' nodes) dialling
/// `pool_outbound` peers each when that is set.
pub fn build(spec: &TopologySpec, n: usize, pools: &[usize], rng: &mut fastrand::Rng) -> Graph {
    if !spec.edges.is_empty() {
        let mut graph = vec![Vec::new(); n];
        for &(a, b) in &spec.edges {
            graph[a].push(b);
        }
        return graph;
    }
    let mut degrees: Vec<usize> = (0..n).map(|_| outbound_degree(spec, rng)).collect();
    if spec.pool_outbound > 0 {
        for &p in pools.iter().filter(|&&p| p < n) {
            degrees[p] = spec.pool_outbound;
        }
    }
    random_graph(&degrees, spec.max_inbound, rng)
}

/// How many peers one node dials: fixed, or drawn from the degree distribution.
fn outbound_degree(spec: &TopologySpec, rng: &mut fastrand::Rng) -> usize {
    if spec.degree_cdf.is_empty() {
        return spec.outbound;
    }
    let u = rng.f64();
    spec.degree_cdf
        .iter()
        .position(|&c| u < c)
        .unwrap_or(spec.degree_cdf.len() - 1)
        + 1
}

/// Each node `i` dials `degrees[i]` distinct others at random, never one whose inbound
/// slots are full and never one that already dials it (one link per pair). A node that
/// finds too few candidates after many tries keeps fewer links.
pub fn random_graph(degrees: &[usize], max_inbound: usize, rng: &mut fastrand::Rng) -> Graph {
    let n = degrees.len();
    let mut inbound = vec![0usize; n];
    let mut pairs: HashSet<(usize, usize)> = HashSet::new();
    let mut graph = vec![Vec::new(); n];
    for i in 0..n {
        let want = degrees[i].min(n - 1);
        let mut tries = 0;
        while graph[i].len() < want && tries < 64 * want.max(1) {
            tries += 1;
            let j = rng.usize(..n);
            let key = (i.min(j), i.max(j));
            if j == i || inbound[j] >= max_inbound || pairs.contains(&key) {
                continue;
            }
            pairs.insert(key);
            inbound[j] += 1;
            graph[i].push(j);
        }
    }
    graph
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrees_and_inbound_cap_hold() {
        let mut rng = fastrand::Rng::with_seed(3);
        let g = random_graph(&vec![8; 500], 20, &mut rng);
        let mut inbound = vec![0; 500];
        for (i, out) in g.iter().enumerate() {
            assert_eq!(out.len(), 8);
            assert!(!out.contains(&i));
            for &j in out {
                inbound[j] += 1;
                assert!(!g[j].contains(&i), "one link per pair");
            }
        }
        assert!(inbound.iter().all(|&k| k <= 20));
    }

    #[test]
    fn pools_dial_their_own_number_of_peers() {
        let spec = TopologySpec {
            outbound: 8,
            degree_cdf: vec![],
            max_inbound: 125,
            pool_outbound: 60,
            edges: vec![],
            edges_file: None,
        };
        let mut rng = fastrand::Rng::with_seed(9);
        let g = build(&spec, 300, &[3, 7], &mut rng);
        assert_eq!((g[3].len(), g[7].len()), (60, 60));
        assert!(
            g.iter()
                .enumerate()
                .all(|(i, out)| [3, 7].contains(&i) || out.len() == 8)
        );
        let plain = TopologySpec {
            pool_outbound: 0,
            ..spec
        };
        let g = build(&plain, 300, &[3, 7], &mut fastrand::Rng::with_seed(9));
        assert_eq!(g[3].len(), 8, "without pool_outbound a pool is an ordinary node");
    }
}
