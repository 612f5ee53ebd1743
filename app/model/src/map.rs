//! The map of kernel subsystems: a `petgraph` graph built from the probe
//! catalogue (nodes are subsystems, edges the paths data takes between
//! them), laid out in layers from user space at the top to the hardware at
//! the bottom.
//!
//! Layout: each subsystem sits in its catalogue layer (a row). Within a row,
//! nodes are ordered by the mean position of their neighbours in the rows
//! above and below (the barycentre heuristic of layered graph drawing,
//! a few sweeps down and up), which keeps most edges short and uncrossed.
//! Positions are in a unit square; the view scales them to its rectangle.

use microscope_catalogue::{Catalogue, Subsystem};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;

/// One subsystem on the map.
#[derive(Clone, Debug)]
pub struct MapNode {
    /// Catalogue id (`block`).
    pub id: String,
    /// Display name (`Block I/O`).
    pub name: String,
    /// Row, 0 = user space.
    pub layer: u32,
    /// Where it is drawn, in `[0, 1]²` (x across, y down).
    pub pos: [f32; 2],
}

/// A path between two subsystems.
#[derive(Clone, Debug)]
pub struct MapEdge {
    /// What flows along it (`read/write/open enter the VFS`).
    pub label: String,
}

/// The subsystem graph and its layout.
pub struct SubsystemMap {
    graph: DiGraph<MapNode, MapEdge>,
    by_id: HashMap<String, NodeIndex>,
    layers: Vec<(u32, String)>,
    catalogue: Catalogue,
}

/// Sweeps of the barycentre ordering; a handful settles small graphs.
const ORDER_SWEEPS: usize = 6;

impl SubsystemMap {
    /// The map of the built-in pack.
    pub fn builtin() -> Self {
        Self::new(Catalogue::builtin())
    }

    /// The map of `catalogue`.
    pub fn new(catalogue: Catalogue) -> Self {
        let mut graph = DiGraph::new();
        let mut by_id = HashMap::new();
        for s in catalogue.subsystems() {
            let index = graph.add_node(MapNode {
                id: s.id.clone(),
                name: s.name.clone(),
                layer: s.layer,
                pos: [0.5, 0.5],
            });
            by_id.insert(s.id.clone(), index);
        }
        for e in catalogue.edges() {
            if let (Some(&from), Some(&to)) = (by_id.get(&e.from), by_id.get(&e.to)) {
                graph.add_edge(
                    from,
                    to,
                    MapEdge {
                        label: e.label.clone(),
                    },
                );
            }
        }
        let layers = catalogue
            .layers()
            .iter()
            .map(|l| (l.index, l.name.clone()))
            .collect();
        let mut map = Self {
            graph,
            by_id,
            layers,
            catalogue,
        };
        map.layout();
        map
    }

    fn layout(&mut self) {
        let mut rows: Vec<u32> = self.graph.node_weights().map(|n| n.layer).collect();
        rows.sort_unstable();
        rows.dedup();
        let row_of = |layer: u32| rows.iter().position(|&r| r == layer).unwrap_or(0);
        let mut members: Vec<Vec<NodeIndex>> = vec![Vec::new(); rows.len()];
        for index in self.graph.node_indices() {
            members[row_of(self.graph[index].layer)].push(index);
        }
        // Start from catalogue order (stable), then sweep.
        let mut order: HashMap<NodeIndex, f32> = HashMap::new();
        let place = |members: &[Vec<NodeIndex>], order: &mut HashMap<NodeIndex, f32>| {
            for row in members {
                for (i, index) in row.iter().enumerate() {
                    order.insert(*index, (i as f32 + 0.5) / row.len() as f32);
                }
            }
        };
        place(&members, &mut order);
        for sweep in 0..ORDER_SWEEPS {
            let rows_in_order: Vec<usize> = if sweep % 2 == 0 {
                (1..members.len()).collect()
            } else {
                (0..members.len().saturating_sub(1)).rev().collect()
            };
            for r in rows_in_order {
                let mut keyed: Vec<(f32, NodeIndex)> = members[r]
                    .iter()
                    .map(|&index| {
                        let neighbours: Vec<f32> = self
                            .graph
                            .neighbors_undirected(index)
                            .filter(|n| row_of(self.graph[*n].layer) != r)
                            .filter_map(|n| order.get(&n).copied())
                            .collect();
                        let own = order.get(&index).copied().unwrap_or(0.5);
                        let key = if neighbours.is_empty() {
                            own
                        } else {
                            neighbours.iter().sum::<f32>() / neighbours.len() as f32
                        };
                        (key, index)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                members[r] = keyed.into_iter().map(|(_, index)| index).collect();
                place(&members, &mut order);
            }
        }
        let row_count = rows.len().max(1) as f32;
        for (r, row) in members.iter().enumerate() {
            for index in row {
                let x = order.get(index).copied().unwrap_or(0.5);
                let y = (r as f32 + 0.5) / row_count;
                self.graph[*index].pos = [x, y];
            }
        }
    }

    /// The graph, for drawing.
    pub fn graph(&self) -> &DiGraph<MapNode, MapEdge> {
        &self.graph
    }

    /// The node of subsystem `id`.
    pub fn node(&self, id: &str) -> Option<NodeIndex> {
        self.by_id.get(id).copied()
    }

    /// The rows: catalogue layer index and name, top to bottom.
    pub fn layers(&self) -> &[(u32, String)] {
        &self.layers
    }

    /// Everything the catalogue says about subsystem `id`.
    pub fn subsystem(&self, id: &str) -> Option<&Subsystem> {
        self.catalogue.subsystem(id)
    }

    /// The catalogue the map was drawn from.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Subsystems and probes whose id or name contains `query`
    /// (case-insensitive): `(subsystem id, probe id if a probe matched)`.
    pub fn search(&self, query: &str, probe_ids: &[&str]) -> Vec<(String, Option<String>)> {
        let query = query.trim().to_lowercase();
        if query.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<(String, Option<String>)> = self
            .catalogue
            .subsystems()
            .iter()
            .filter(|s| {
                s.id.to_lowercase().contains(&query) || s.name.to_lowercase().contains(&query)
            })
            .map(|s| (s.id.clone(), None))
            .collect();
        for probe in self.catalogue.probes() {
            if probe.id.to_lowercase().contains(&query)
                || probe.summary.to_lowercase().contains(&query)
            {
                hits.push((probe.subsystem.clone(), Some(probe.id.clone())));
            }
        }
        // Probes the helper created on demand are found by id too.
        for id in probe_ids {
            if id.to_lowercase().contains(&query)
                && self.catalogue.probe(id).is_none()
                && let Some((category, _)) = id.split_once(':')
            {
                hits.push((
                    microscope_catalogue::subsystem_of_category(category).to_owned(),
                    Some((*id).to_owned()),
                ));
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subsystem_is_placed_in_its_row_inside_the_square() {
        let map = SubsystemMap::builtin();
        assert!(map.graph().node_count() >= 10);
        assert!(map.graph().edge_count() >= 10);
        for node in map.graph().node_weights() {
            let [x, y] = node.pos;
            assert!(
                (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y),
                "{node:?}"
            );
        }
        // A lower layer is drawn lower.
        let y = |id: &str| map.graph()[map.node(id).unwrap()].pos[1];
        assert!(y("syscalls") < y("vfs"));
        assert!(y("vfs") < y("block"));
        // No two nodes on the same spot.
        let mut spots: Vec<(i32, i32)> = map
            .graph()
            .node_weights()
            .map(|n| ((n.pos[0] * 1000.0) as i32, (n.pos[1] * 1000.0) as i32))
            .collect();
        spots.sort_unstable();
        let before = spots.len();
        spots.dedup();
        assert_eq!(spots.len(), before);
    }

    #[test]
    fn search_finds_subsystems_probes_and_on_demand_tracepoints() {
        let map = SubsystemMap::builtin();
        let hits = map.search("block_rq_issue", &["irq:softirq_raise"]);
        assert!(hits.contains(&("block".into(), Some("block:block_rq_issue".into()))));
        let hits = map.search("Block I/O", &[]);
        assert!(hits.contains(&("block".into(), None)));
        let hits = map.search("softirq_raise", &["irq:softirq_raise"]);
        assert!(
            hits.iter().any(|(s, p)| s == "irq" && p.is_some()),
            "{hits:?}"
        );
        assert!(map.search("  ", &[]).is_empty());
    }
}
