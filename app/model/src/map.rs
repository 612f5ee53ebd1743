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
//!
//! Probes of subsystems the catalogue does not know (a recording made with
//! another pack, a tracepoint created on demand) still light the map: such a
//! probe goes to the subsystem its tracepoint category belongs to, else to a
//! node of its own category in an extra bottom row, "Elsewhere in the
//! kernel" ([`SubsystemMap::place_probes`]).

use crate::update::Probe;
use microscope_catalogue::{Catalogue, Subsystem};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef as _;
use std::collections::{BTreeSet, HashMap};

/// Name of the bottom row that holds probes outside the catalogue.
pub const ELSEWHERE_LAYER: &str = "Elsewhere in the kernel: probes outside this map";

/// Node ids of tracepoint categories outside the catalogue start with this.
const ELSEWHERE_PREFIX: &str = "elsewhere:";

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

/// Nodes and edges a guide wants to stand out on the map: the step of a
/// tour, the path of one followed operation. The map draws them bold and
/// dims the rest; an empty highlight leaves the map as it is.
///
/// Ids are subsystem ids (`vfs`, `pagecache`); an edge is `(from, to)` as
/// the pack draws it. Ids the map does not have are ignored when drawing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapHighlight {
    /// Subsystems to stand out.
    pub nodes: BTreeSet<String>,
    /// Paths to stand out, `(from, to)`.
    pub edges: BTreeSet<(String, String)>,
    /// A line shown on the map saying what the highlight is
    /// (`Step 2 of 7: the VFS finds the page cache`), if any.
    pub caption: Option<String>,
}

impl MapHighlight {
    /// A highlight of these nodes and edges, without a caption.
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = &'a str>,
        edges: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Self {
            nodes: nodes.into_iter().map(str::to_owned).collect(),
            edges: edges
                .into_iter()
                .map(|(from, to)| (from.to_owned(), to.to_owned()))
                .collect(),
            caption: None,
        }
    }

    /// The same highlight with a caption.
    #[must_use]
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// Whether nothing is highlighted.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.edges.is_empty()
    }

    /// Whether subsystem `id` stands out.
    pub fn has_node(&self, id: &str) -> bool {
        self.nodes.contains(id)
    }

    /// Whether the path `from → to` stands out.
    pub fn has_edge(&self, from: &str, to: &str) -> bool {
        self.edges
            .iter()
            .any(|(f, t)| f.as_str() == from && t.as_str() == to)
    }

    /// The ids in this highlight that `map` has no node or edge for (a tour
    /// written for another pack): what a tour check reports.
    pub fn unknown_ids(&self, map: &SubsystemMap) -> Vec<String> {
        let mut unknown: Vec<String> = self
            .nodes
            .iter()
            .filter(|id| map.node(id).is_none())
            .cloned()
            .collect();
        for (from, to) in &self.edges {
            let present = match (map.node(from), map.node(to)) {
                (Some(a), Some(b)) => map.graph().find_edge(a, b).is_some(),
                _ => false,
            };
            if !present {
                unknown.push(format!("{from}->{to}"));
            }
        }
        unknown
    }
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
    /// Tracepoint categories placed in the bottom row, outside the catalogue.
    elsewhere: BTreeSet<String>,
    /// The rows and what sits in them, left to right.
    rows: Vec<MapRow>,
}

/// Sweeps of the barycentre ordering; a handful settles small graphs.
const ORDER_SWEEPS: usize = 6;

/// One row of the map, top to bottom: a catalogue layer.
#[derive(Clone, Debug)]
pub struct MapRow {
    /// Catalogue layer index.
    pub layer: u32,
    /// The layer's name (`User space`).
    pub name: String,
    /// What sits in the row, left to right.
    pub slots: Vec<MapSlot>,
}

/// A place in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapSlot {
    /// A subsystem.
    Node(NodeIndex),
    /// A narrow lane where an edge between rows above and below passes
    /// this row without touching its nodes.
    Pass(EdgeIndex),
}

/// Orders each row's slots: by the mean position of their neighbours in
/// the other rows (the barycentre heuristic, sweeping down and up), then by
/// swapping neighbours while that makes edges shorter, so that partners in
/// one row end up side by side.
fn order_rows(graph: &DiGraph<MapNode, MapEdge>, rows: &mut [Vec<MapSlot>]) {
    for sweep in 0..ORDER_SWEEPS {
        let order: Vec<usize> = if sweep % 2 == 0 {
            (0..rows.len()).collect()
        } else {
            (0..rows.len()).rev().collect()
        };
        for r in order {
            let positions = slot_positions(rows);
            let mut keyed: Vec<(f32, usize, MapSlot)> = rows[r]
                .iter()
                .enumerate()
                .map(|(i, &slot)| {
                    let others: Vec<f32> = slot_neighbours(graph, slot)
                        .into_iter()
                        .filter_map(|n| positions.get(&n).copied())
                        .filter(|&(row, _)| row != r)
                        .map(|(_, x)| x)
                        .collect();
                    let own = positions.get(&slot).map_or(0.5, |&(_, x)| x);
                    let key = if others.is_empty() {
                        own
                    } else {
                        others.iter().sum::<f32>() / others.len() as f32
                    };
                    (key, i, slot)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[r] = keyed.into_iter().map(|(_, _, slot)| slot).collect();
        }
    }
    // Local improvement: swap neighbours while the total edge length falls.
    for _ in 0..ORDER_SWEEPS * 4 {
        let mut improved = false;
        for r in 0..rows.len() {
            for i in 0..rows[r].len().saturating_sub(1) {
                let before = edge_length(graph, rows);
                rows[r].swap(i, i + 1);
                if edge_length(graph, rows) + 1e-6 < before {
                    improved = true;
                } else {
                    rows[r].swap(i, i + 1);
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// Row and relative position (in `(0, 1)`) of every slot.
fn slot_positions(rows: &[Vec<MapSlot>]) -> HashMap<MapSlot, (usize, f32)> {
    let mut positions = HashMap::new();
    for (r, row) in rows.iter().enumerate() {
        for (i, slot) in row.iter().enumerate() {
            positions.insert(*slot, (r, (i as f32 + 0.5) / row.len() as f32));
        }
    }
    positions
}

/// The slots a slot connects to: a node's edges' ends (or their pass
/// slots), a pass slot's two ends (or the passes next to it).
fn slot_neighbours(graph: &DiGraph<MapNode, MapEdge>, slot: MapSlot) -> Vec<MapSlot> {
    match slot {
        MapSlot::Node(index) => graph
            .edges_directed(index, petgraph::Direction::Outgoing)
            .chain(graph.edges_directed(index, petgraph::Direction::Incoming))
            .flat_map(|e| {
                [
                    MapSlot::Pass(e.id()),
                    MapSlot::Node(e.source()),
                    MapSlot::Node(e.target()),
                ]
            })
            .filter(|&s| s != slot)
            .collect(),
        MapSlot::Pass(edge) => graph
            .edge_endpoints(edge)
            .map(|(a, b)| vec![MapSlot::Node(a), MapSlot::Node(b)])
            .unwrap_or_default(),
    }
}

/// Place of `slot` among the nodes of `row` (passes not counted).
fn node_order(row: &[MapSlot], slot: MapSlot) -> Option<usize> {
    row.iter()
        .filter(|s| matches!(s, MapSlot::Node(_)))
        .position(|s| *s == slot)
}

/// How long the edges are when drawn through their pass slots, in row
/// widths; edges inside one row count extra, so that partners sit side by
/// side.
fn edge_length(graph: &DiGraph<MapNode, MapEdge>, rows: &[Vec<MapSlot>]) -> f32 {
    let positions = slot_positions(rows);
    let mut total = 0.0;
    for edge in graph.edge_references() {
        let mut chain: Vec<(usize, f32)> = Vec::new();
        let ends = [MapSlot::Node(edge.source()), MapSlot::Node(edge.target())];
        chain.extend(positions.get(&ends[0]).copied());
        let mut passes: Vec<(usize, f32)> = positions
            .iter()
            .filter(|(slot, _)| **slot == MapSlot::Pass(edge.id()))
            .map(|(_, &p)| p)
            .collect();
        passes.sort_by_key(|&(row, _)| row);
        chain.extend(passes);
        chain.extend(positions.get(&ends[1]).copied());
        for pair in chain.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.0 == b.0 {
                // Same row: side by side (passes between do not count, the
                // edge crosses them) costs nothing; each node between costs.
                let between = node_order(&rows[a.0], ends[0])
                    .zip(node_order(&rows[a.0], ends[1]))
                    .map_or(0, |(x, y)| x.abs_diff(y).saturating_sub(1));
                total += 0.5 * between as f32;
            } else {
                total += (a.1 - b.1).abs();
            }
        }
    }
    total
}

impl SubsystemMap {
    /// The map of the built-in pack.
    pub fn builtin() -> Self {
        Self::new(Catalogue::builtin())
    }

    /// The map of `catalogue`.
    pub fn new(catalogue: Catalogue) -> Self {
        Self::with_elsewhere(catalogue, BTreeSet::new())
    }

    /// The map of `catalogue`, plus a bottom row with a node for each
    /// tracepoint category in `elsewhere`.
    fn with_elsewhere(catalogue: Catalogue, elsewhere: BTreeSet<String>) -> Self {
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
        let mut layers: Vec<(u32, String)> = catalogue
            .layers()
            .iter()
            .map(|l| (l.index, l.name.clone()))
            .collect();
        if !elsewhere.is_empty() {
            let bottom = catalogue
                .subsystems()
                .iter()
                .map(|s| s.layer)
                .chain(layers.iter().map(|(index, _)| *index))
                .max()
                .map_or(0, |layer| layer.saturating_add(1));
            layers.push((bottom, ELSEWHERE_LAYER.to_owned()));
            for category in &elsewhere {
                let id = format!("{ELSEWHERE_PREFIX}{category}");
                let index = graph.add_node(MapNode {
                    id: id.clone(),
                    name: category.clone(),
                    layer: bottom,
                    pos: [0.5, 0.5],
                });
                by_id.insert(id, index);
            }
        }
        let mut map = Self {
            graph,
            by_id,
            layers,
            catalogue,
            elsewhere,
            rows: Vec::new(),
        };
        map.layout();
        map
    }

    fn layout(&mut self) {
        let mut layers: Vec<u32> = self.graph.node_weights().map(|n| n.layer).collect();
        layers.sort_unstable();
        layers.dedup();
        let row_of = |layer: u32| layers.iter().position(|&r| r == layer).unwrap_or(0);
        let mut rows: Vec<Vec<MapSlot>> = vec![Vec::new(); layers.len()];
        for index in self.graph.node_indices() {
            rows[row_of(self.graph[index].layer)].push(MapSlot::Node(index));
        }
        // An edge across several rows passes each row in between through a
        // slot of its own, so the drawing can route it between the nodes.
        for edge in self.graph.edge_indices() {
            let Some((from, to)) = self.graph.edge_endpoints(edge) else {
                continue;
            };
            let (a, b) = (row_of(self.graph[from].layer), row_of(self.graph[to].layer));
            for row in rows.iter_mut().take(a.max(b)).skip(a.min(b) + 1) {
                row.push(MapSlot::Pass(edge));
            }
        }
        order_rows(&self.graph, &mut rows);
        for row in &rows {
            for (i, slot) in row.iter().enumerate() {
                if let MapSlot::Node(index) = slot {
                    let x = (i as f32 + 0.5) / row.len() as f32;
                    let y = (row_of(self.graph[*index].layer) as f32 + 0.5) / layers.len() as f32;
                    self.graph[*index].pos = [x, y];
                }
            }
        }
        self.rows = layers
            .iter()
            .zip(rows)
            .map(|(&layer, slots)| MapRow {
                name: self
                    .layers
                    .iter()
                    .find(|(index, _)| *index == layer)
                    .map_or_else(|| format!("Layer {layer}"), |(_, name)| name.clone()),
                layer,
                slots,
            })
            .collect();
    }

    /// The node whose rate a probe's events add to: its subsystem's; else,
    /// for a subsystem the catalogue does not know, the subsystem of its
    /// tracepoint category (`sched:…` → the scheduler); else its category's
    /// node in the bottom row, once [`place_probes`](Self::place_probes) put
    /// one there.
    pub fn node_of_probe(&self, probe: &Probe) -> Option<NodeIndex> {
        if let Some(&index) = self.by_id.get(&probe.subsystem) {
            return Some(index);
        }
        let category = category_of(&probe.id);
        self.by_id
            .get(category)
            .or_else(|| {
                self.by_id
                    .get(microscope_catalogue::subsystem_of_category(category))
            })
            .or_else(|| self.by_id.get(&format!("{ELSEWHERE_PREFIX}{category}")))
            .copied()
    }

    /// Makes room for `probes` (those with data to show): a probe no
    /// catalogue subsystem takes gets a node for its tracepoint category in
    /// the bottom row, so its events show where they go instead of leaving
    /// the map dark. Lays the map out again when the set of such categories
    /// changes; returns whether it did.
    pub fn place_probes<'a>(&mut self, probes: impl IntoIterator<Item = &'a Probe>) -> bool {
        let needed: BTreeSet<String> = probes
            .into_iter()
            .filter(|probe| {
                let category = category_of(&probe.id);
                !self.by_id.contains_key(&probe.subsystem)
                    && !self.by_id.contains_key(category)
                    && !self
                        .by_id
                        .contains_key(microscope_catalogue::subsystem_of_category(category))
            })
            .map(|probe| category_of(&probe.id).to_owned())
            .collect();
        if needed == self.elsewhere {
            return false;
        }
        *self = Self::with_elsewhere(self.catalogue.clone(), needed);
        true
    }

    /// For a node of the bottom row: the tracepoint category it holds.
    pub fn elsewhere_category<'a>(&self, id: &'a str) -> Option<&'a str> {
        id.strip_prefix(ELSEWHERE_PREFIX)
    }

    /// The graph, for drawing.
    pub fn graph(&self) -> &DiGraph<MapNode, MapEdge> {
        &self.graph
    }

    /// The node of subsystem `id`.
    pub fn node(&self, id: &str) -> Option<NodeIndex> {
        self.by_id.get(id).copied()
    }

    /// The rows with their nodes and pass slots, top to bottom: what the
    /// view lays out.
    pub fn rows(&self) -> &[MapRow] {
        &self.rows
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

/// `sched` of `sched:sched_switch`; a probe id without a colon is its own
/// category.
fn category_of(probe_id: &str) -> &str {
    probe_id
        .split_once(':')
        .map_or(probe_id, |(category, _)| category)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::ProbeKind;

    fn probe(id: &str, subsystem: &str) -> Probe {
        Probe {
            id: id.into(),
            key: 1,
            subsystem: subsystem.into(),
            description: String::new(),
            kind: ProbeKind::Stream,
            unavailable_reason: None,
            enabled: true,
            fields: Vec::new(),
        }
    }

    #[test]
    fn probes_outside_the_catalogue_are_placed_by_their_category() {
        let mut map = SubsystemMap::builtin();
        let known_rows = map.layers().len();
        let gpu = probe("i915:i915_request_add", "Graphics");
        let kvm = probe("kvm:kvm_exit", "Virtualisation");
        let sched = probe("sched:sched_stat_runtime", "Scheduler");
        let block = probe("block:block_rq_issue", "block");
        // Known subsystems and known categories need no new node.
        assert_eq!(map.node_of_probe(&block), map.node("block"));
        assert_eq!(map.node_of_probe(&sched), map.node("sched"));
        assert!(!map.place_probes([&sched, &block]));
        assert_eq!(map.node_of_probe(&gpu), None);
        // Unknown ones get a node each in a new bottom row.
        assert!(map.place_probes([&gpu, &kvm, &sched, &gpu]));
        assert!(!map.place_probes([&kvm, &gpu]), "same set, same map");
        assert_eq!(map.layers().len(), known_rows + 1);
        assert_eq!(map.layers().last().unwrap().1, ELSEWHERE_LAYER);
        let node = map.node_of_probe(&gpu).expect("a node for i915");
        assert_eq!(map.graph()[node].name, "i915");
        assert_eq!(map.elsewhere_category(&map.graph()[node].id), Some("i915"));
        assert_ne!(map.node_of_probe(&kvm), Some(node));
        assert_eq!(map.node_of_probe(&sched), map.node("sched"));
        let y = |index: NodeIndex| map.graph()[index].pos[1];
        assert!(map.graph().node_indices().all(|n| y(n) <= y(node)));
        assert!(y(map.node("block").unwrap()) < y(node));
        // The whole map still fits its square, no two nodes on one spot.
        let mut spots: Vec<(i32, i32)> = map
            .graph()
            .node_weights()
            .map(|n| ((n.pos[0] * 1000.0) as i32, (n.pos[1] * 1000.0) as i32))
            .collect();
        assert!(
            spots
                .iter()
                .all(|&(x, y)| (0..=1000).contains(&x) && (0..=1000).contains(&y))
        );
        spots.sort_unstable();
        let before = spots.len();
        spots.dedup();
        assert_eq!(spots.len(), before);
        // When they go, the row goes.
        assert!(map.place_probes([&block]));
        assert_eq!(map.layers().len(), known_rows);
        assert_eq!(map.node_of_probe(&gpu), None);
    }

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
    fn highlights_name_what_the_map_has_and_report_the_rest() {
        let map = SubsystemMap::builtin();
        let highlight = MapHighlight::new(
            ["vfs", "pagecache", "gpu"],
            [("vfs", "pagecache"), ("block", "vfs")],
        )
        .with_caption("a read");
        assert!(highlight.has_node("vfs") && !highlight.has_node("block"));
        assert!(highlight.has_edge("vfs", "pagecache"));
        assert!(
            !highlight.has_edge("pagecache", "vfs"),
            "edges have a direction"
        );
        assert_eq!(
            highlight.unknown_ids(&map),
            vec!["gpu".to_owned(), "block->vfs".to_owned()]
        );
        assert!(MapHighlight::default().is_empty());
        assert!(!highlight.is_empty());
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
