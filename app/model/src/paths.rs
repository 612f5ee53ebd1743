//! The paths view's model: the stacks seen at a probe merged into a call
//! graph of functions.
//!
//! Where a flame graph keeps every calling context apart (the same function
//! reached two ways is two frames), the call graph has one node per
//! function and one edge per caller → callee pair, so the paths into a probe
//! converge on it. A node's total is the value of the stacks it appears in
//! (once per stack, however deep it recurses), an edge's the value of the
//! stacks that make that call.
//!
//! The graph is a `petgraph` [`DiGraph`]. The view shows a part of it:
//! [`CallGraph::layout`] lays out the nodes reachable from the roots through
//! *expanded* nodes, one layer per call depth (breadth first, so a node sits
//! at its shortest depth from a root). [`CallGraph::default_expanded`]
//! starts with the first layers and the heaviest path open.

use crate::flame::{FoldedError, folded_lines};
use crate::stacks::{StackQuery, StackSlice, StackStore, ValueUnit};
use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef as _;
use rustc_hash::FxHashMap;
use std::collections::{BTreeSet, VecDeque};

/// Layers shown before the user expands anything: nodes shallower than
/// this are expanded, so this many layers are visible.
pub const DEFAULT_VISIBLE_DEPTH: usize = 3;
/// Nodes lighter than this share of all samples are not expanded
/// automatically (the heaviest path excepted), so the first view stays
/// readable on a busy machine.
pub const AUTO_EXPAND_MIN_SHARE: f64 = 0.05;
/// Longest heaviest path opened at first (stacks are rarely deeper).
const MAX_HEAVIEST_PATH: usize = 64;
/// An expanded function shows at most this many callees, the heaviest: a
/// dispatcher such as `x64_sys_call` calls hundreds of functions, and a
/// row of hundreds of boxes says less than the flame graph's search.
pub const MAX_CALLEES_SHOWN: usize = 10;

/// A function in the call graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallNode {
    /// Function name.
    pub name: String,
    /// Value of the stacks it appears in.
    pub total: u64,
    /// Value of the stacks it is the leaf of.
    pub self_value: u64,
    /// Value of the stacks it is the root of.
    pub root_value: u64,
}

/// A caller → callee edge to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VisibleEdge {
    /// The caller.
    pub from: NodeIndex,
    /// The callee.
    pub to: NodeIndex,
    /// Value of the stacks that make this call.
    pub value: u64,
}

/// The visible part of a call graph: nodes by layer and the edges between them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathsLayout {
    /// Layer 0 holds the roots; each node is in one layer.
    pub layers: Vec<Vec<NodeIndex>>,
    /// Edges out of expanded nodes, heaviest first per caller.
    pub edges: Vec<VisibleEdge>,
}

impl PathsLayout {
    /// Number of nodes shown.
    pub fn node_count(&self) -> usize {
        self.layers.iter().map(Vec::len).sum()
    }

    /// Whether `node` is shown.
    pub fn contains(&self, node: NodeIndex) -> bool {
        self.layers.iter().any(|layer| layer.contains(&node))
    }
}

/// Functions and calls of a set of stacks. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct CallGraph {
    graph: DiGraph<CallNode, u64>,
    by_name: FxHashMap<Box<str>, NodeIndex>,
    edge_ids: FxHashMap<(NodeIndex, NodeIndex), EdgeIndex>,
    /// Per node and per edge, the last stack that counted it, so recursion
    /// counts once per stack.
    node_stamps: Vec<u64>,
    edge_stamps: Vec<u64>,
    stacks_added: u64,
    total: u64,
    unit: ValueUnit,
}

impl CallGraph {
    /// Builds from the samples `query` selects.
    pub fn from_store(store: &StackStore, query: StackQuery) -> Self {
        Self::from_slice(&store.slice(query))
    }

    /// Builds from a slice taken from the store (possibly on another thread).
    pub fn from_slice(slice: &StackSlice) -> Self {
        let mut graph = Self {
            unit: slice.unit(),
            ..Self::default()
        };
        let mut frame_nodes: FxHashMap<u32, NodeIndex> = FxHashMap::default();
        let mut path = Vec::new();
        for stack in slice.iter() {
            path.clear();
            for &frame in stack.frames {
                let node = match frame_nodes.get(&frame) {
                    Some(&node) => node,
                    None => {
                        let node = graph.node_for(&slice.frame_name(frame));
                        frame_nodes.insert(frame, node);
                        node
                    }
                };
                path.push(node);
            }
            graph.add_path(&path, stack.value);
        }
        graph
    }

    /// Parses folded lines (`root;…;leaf count`), as
    /// [`FlameGraph::from_folded`](crate::FlameGraph::from_folded) does.
    pub fn from_folded(text: &str) -> Result<Self, FoldedError> {
        let mut graph = Self::default();
        let mut path = Vec::new();
        for line in folded_lines(text) {
            let (stack, count) = line?;
            path.clear();
            for frame in stack.split(';') {
                path.push(graph.node_for(frame));
            }
            graph.add_path(&path, count);
        }
        Ok(graph)
    }

    /// The underlying graph: nodes are functions, edge weights the value of
    /// the calls.
    pub fn graph(&self) -> &DiGraph<CallNode, u64> {
        &self.graph
    }

    /// Value of all stacks.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// What the values count.
    pub fn unit(&self) -> ValueUnit {
        self.unit
    }

    /// Whether no stack was added.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The function called `name`.
    pub fn find(&self, name: &str) -> Option<NodeIndex> {
        self.by_name.get(name).copied()
    }

    /// A function's name and values.
    pub fn node(&self, node: NodeIndex) -> Option<&CallNode> {
        self.graph.node_weight(node)
    }

    /// The function's name; empty for an index of another graph.
    pub fn name(&self, node: NodeIndex) -> &str {
        self.node(node).map_or("", |n| n.name.as_str())
    }

    /// Functions at the root of some stack, heaviest first (then by name).
    pub fn roots(&self) -> Vec<NodeIndex> {
        let mut roots: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&n| self.node(n).is_some_and(|n| n.root_value > 0))
            .collect();
        self.sort_heaviest_first(&mut roots, |n| self.node(n).map_or(0, |n| n.root_value));
        roots
    }

    /// The functions `node` calls, with the calls' value, heaviest first.
    pub fn callees(&self, node: NodeIndex) -> Vec<(NodeIndex, u64)> {
        let mut callees: Vec<(NodeIndex, u64)> = self
            .graph
            .edges_directed(node, Direction::Outgoing)
            .map(|edge| (edge.target(), *edge.weight()))
            .collect();
        callees.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| self.name(a.0).cmp(self.name(b.0)))
        });
        callees
    }

    /// How many functions `node` calls.
    pub fn callee_count(&self, node: NodeIndex) -> usize {
        self.graph.edges_directed(node, Direction::Outgoing).count()
    }

    /// The accessible name of a node: `vfs_read — 1234 samples (12.3 %)`.
    pub fn label(&self, node: NodeIndex) -> String {
        let total = self.node(node).map_or(0, |n| n.total);
        let percent = if self.total == 0 {
            0.0
        } else {
            100.0 * total as f64 / self.total as f64
        };
        format!(
            "{} — {} ({percent:.1} %)",
            self.name(node),
            self.unit.format(total)
        )
    }

    /// The nodes reachable from the roots through nodes whose names are in
    /// `expanded`, one layer per depth; each expanded node shows its
    /// [`MAX_CALLEES_SHOWN`] heaviest callees. See the module documentation.
    pub fn layout(&self, expanded: &BTreeSet<String>) -> PathsLayout {
        self.layout_with(|node| expanded.contains(self.name(node)))
    }

    /// What to expand first: every node shallower than
    /// [`DEFAULT_VISIBLE_DEPTH`] - 1 that holds at least
    /// [`AUTO_EXPAND_MIN_SHARE`] of the samples, and every node along the
    /// heaviest path (from the heaviest root, the heaviest call each time,
    /// as long as that call holds that share too).
    pub fn default_expanded(&self) -> BTreeSet<String> {
        let min_total = (self.total as f64 * AUTO_EXPAND_MIN_SHARE).ceil() as u64;
        let full = self.layout_with(|_| true);
        let mut expanded = BTreeSet::new();
        for layer in full
            .layers
            .iter()
            .take(DEFAULT_VISIBLE_DEPTH.saturating_sub(1))
        {
            for &node in layer {
                if self.node(node).is_some_and(|n| n.total >= min_total) {
                    expanded.insert(self.name(node).to_owned());
                }
            }
        }
        // The heaviest path, while its calls carry at least the share
        // above: merged contexts can otherwise lead a walk through light
        // calls across the whole graph.
        let mut on_path = BTreeSet::new();
        let mut current = self.roots().first().copied();
        while let Some(node) = current {
            if !on_path.insert(node) || on_path.len() > MAX_HEAVIEST_PATH {
                break;
            }
            let next = self
                .callees(node)
                .into_iter()
                .find(|(callee, _)| !on_path.contains(callee))
                .filter(|&(_, value)| value >= min_total);
            if next.is_some() {
                expanded.insert(self.name(node).to_owned());
            }
            current = next.map(|(callee, _)| callee);
        }
        expanded
    }

    fn layout_with(&self, is_expanded: impl Fn(NodeIndex) -> bool) -> PathsLayout {
        let mut layout = PathsLayout::default();
        let mut layer_of: FxHashMap<NodeIndex, usize> = FxHashMap::default();
        let mut queue = VecDeque::new();
        let roots = self.roots();
        if !roots.is_empty() {
            for &root in &roots {
                layer_of.insert(root, 0);
                queue.push_back(root);
            }
            layout.layers.push(roots);
        }
        while let Some(node) = queue.pop_front() {
            if !is_expanded(node) {
                continue;
            }
            let layer = layer_of.get(&node).copied().unwrap_or(0);
            for (callee, value) in self.callees(node).into_iter().take(MAX_CALLEES_SHOWN) {
                layout.edges.push(VisibleEdge {
                    from: node,
                    to: callee,
                    value,
                });
                if layer_of.contains_key(&callee) {
                    continue;
                }
                layer_of.insert(callee, layer + 1);
                queue.push_back(callee);
                if layout.layers.len() <= layer + 1 {
                    layout.layers.push(Vec::new());
                }
                if let Some(next) = layout.layers.get_mut(layer + 1) {
                    next.push(callee);
                }
            }
        }
        layout
    }

    fn sort_heaviest_first(&self, nodes: &mut [NodeIndex], weight: impl Fn(NodeIndex) -> u64) {
        nodes.sort_by(|&a, &b| {
            weight(b)
                .cmp(&weight(a))
                .then_with(|| self.name(a).cmp(self.name(b)))
        });
    }

    fn node_for(&mut self, name: &str) -> NodeIndex {
        if let Some(&node) = self.by_name.get(name) {
            return node;
        }
        let node = self.graph.add_node(CallNode {
            name: name.to_owned(),
            total: 0,
            self_value: 0,
            root_value: 0,
        });
        self.by_name.insert(name.into(), node);
        self.node_stamps.push(0);
        node
    }

    /// Adds one stack (nodes root first) of `value`.
    fn add_path(&mut self, path: &[NodeIndex], value: u64) {
        self.stacks_added += 1;
        let stamp = self.stacks_added;
        self.total = self.total.saturating_add(value);
        if let Some(root) = path.first().and_then(|&n| self.graph.node_weight_mut(n)) {
            root.root_value = root.root_value.saturating_add(value);
        }
        if let Some(leaf) = path.last().and_then(|&n| self.graph.node_weight_mut(n)) {
            leaf.self_value = leaf.self_value.saturating_add(value);
        }
        for &node in path {
            if let Some(seen) = self.node_stamps.get_mut(node.index())
                && *seen != stamp
            {
                *seen = stamp;
                if let Some(weight) = self.graph.node_weight_mut(node) {
                    weight.total = weight.total.saturating_add(value);
                }
            }
        }
        for pair in path.windows(2) {
            let [caller, callee] = *pair else {
                continue;
            };
            let edge = match self.edge_ids.get(&(caller, callee)) {
                Some(&edge) => edge,
                None => {
                    let edge = self.graph.add_edge(caller, callee, 0);
                    self.edge_ids.insert((caller, callee), edge);
                    self.edge_stamps.push(0);
                    edge
                }
            };
            if let Some(seen) = self.edge_stamps.get_mut(edge.index())
                && *seen != stamp
            {
                *seen = stamp;
                if let Some(weight) = self.graph.edge_weight_mut(edge) {
                    *weight = weight.saturating_add(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three ways into `submit_bio`, one of them heavy, and a recursion.
    const FOLDED: &str = "\
entry;sys_read;vfs_read;ext4_read;submit_bio 50
entry;sys_write;vfs_write;ext4_write;submit_bio 30
entry;sys_fsync;ext4_sync;submit_bio 10
entry;sys_read;walk;walk;walk 10
";

    fn names(graph: &CallGraph, nodes: &[NodeIndex]) -> Vec<String> {
        nodes.iter().map(|&n| graph.name(n).to_owned()).collect()
    }

    #[test]
    fn functions_and_calls_are_counted_once_per_stack() {
        let g = CallGraph::from_folded(FOLDED).unwrap();
        assert_eq!(g.total(), 100);
        let node = |name| g.node(g.find(name).unwrap()).unwrap().clone();
        assert_eq!(node("submit_bio").total, 90);
        assert_eq!(node("submit_bio").self_value, 90);
        assert_eq!(node("entry").root_value, 100);
        // `walk` recurses: one stack of 10, counted once.
        assert_eq!(node("walk").total, 10);
        let walk = g.find("walk").unwrap();
        let self_call = g.graph().find_edge(walk, walk).unwrap();
        assert_eq!(g.graph()[self_call], 10);
        let callees = g.callees(g.find("entry").unwrap());
        assert_eq!(
            names(&g, &callees.iter().map(|c| c.0).collect::<Vec<_>>()),
            ["sys_read", "sys_write", "sys_fsync"]
        );
        assert_eq!(
            callees.iter().map(|c| c.1).collect::<Vec<_>>(),
            [60, 30, 10]
        );
        assert_eq!(
            g.label(g.find("submit_bio").unwrap()),
            "submit_bio — 90 samples (90.0 %)"
        );
    }

    #[test]
    fn layers_are_the_shortest_depth_through_expanded_nodes() {
        let g = CallGraph::from_folded(FOLDED).unwrap();
        let expand = |names: &[&str]| -> BTreeSet<String> {
            names.iter().map(|n| (*n).to_owned()).collect()
        };
        let layout = g.layout(&BTreeSet::new());
        assert_eq!(layout.layers.len(), 1);
        assert!(layout.edges.is_empty());

        let layout = g.layout(&expand(&["entry", "sys_fsync", "ext4_sync"]));
        let layers: Vec<Vec<String>> = layout.layers.iter().map(|l| names(&g, l)).collect();
        assert_eq!(
            layers,
            [
                vec!["entry"],
                vec!["sys_read", "sys_write", "sys_fsync"],
                vec!["ext4_sync"],
                vec!["submit_bio"],
            ]
        );
        assert_eq!(layout.edges.len(), 5);
        assert!(layout.contains(g.find("submit_bio").unwrap()));
        assert!(!layout.contains(g.find("vfs_read").unwrap()));
        assert_eq!(layout.node_count(), 6);
    }

    #[test]
    fn the_first_view_opens_the_first_layers_and_the_heaviest_path() {
        let g = CallGraph::from_folded(FOLDED).unwrap();
        let expanded = g.default_expanded();
        // Depth 0 and 1 are open, and the heaviest path entry → sys_read →
        // vfs_read → ext4_read → submit_bio (a leaf: nothing to open).
        let expected: BTreeSet<String> = [
            "entry",
            "sys_read",
            "sys_write",
            "sys_fsync",
            "vfs_read",
            "ext4_read",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(expanded, expected);
        let layout = g.layout(&expanded);
        assert!(layout.contains(g.find("submit_bio").unwrap()));
        assert!(layout.contains(g.find("ext4_sync").unwrap()));
        // `walk` (depth 2) is shown, closed.
        assert!(layout.contains(g.find("walk").unwrap()));
        assert!(!expanded.contains("walk"));
    }

    #[test]
    fn an_expanded_function_shows_its_heaviest_callees_only() {
        let folded: String = (1..=15)
            .map(|i| format!("dispatch;f{i:02} {i}\n"))
            .collect();
        let g = CallGraph::from_folded(&folded).unwrap();
        let expanded: BTreeSet<String> = ["dispatch".to_owned()].into();
        let layout = g.layout(&expanded);
        let shown = names(&g, &layout.layers[1]);
        assert_eq!(shown.len(), MAX_CALLEES_SHOWN);
        assert_eq!(shown.first().map(String::as_str), Some("f15"));
        assert_eq!(shown.last().map(String::as_str), Some("f06"));
        assert_eq!(g.callee_count(g.find("dispatch").unwrap()), 15);
    }

    #[test]
    fn an_empty_graph_lays_out_nothing() {
        let g = CallGraph::from_folded("").unwrap();
        assert!(g.is_empty());
        assert!(g.roots().is_empty());
        assert_eq!(g.layout(&BTreeSet::new()), PathsLayout::default());
        assert!(g.default_expanded().is_empty());
        assert!(CallGraph::from_folded("a;b").is_err());
    }

    #[test]
    fn a_store_slice_becomes_a_call_graph() {
        let mut store = StackStore::new();
        store.intern_frame(1, "entry".into(), false);
        store.intern_frame(2, "vfs_read".into(), false);
        store.add(5, 7, 100, "cat", &[1, 2], 4);
        store.add(6, 7, 200, "dd", &[1, 2], 6);
        store.add(7, 8, 200, "dd", &[1, 3], 6);
        let g = CallGraph::from_store(&store, StackQuery::all().with_probe(Some(7)));
        assert_eq!(g.total(), 10);
        let read = g.find("vfs_read").unwrap();
        assert_eq!(g.node(read).unwrap().total, 10);
        assert_eq!(g.find("[unknown frame #3]"), None);
        let all = CallGraph::from_store(&store, StackQuery::all());
        assert!(all.find("[unknown frame #3]").is_some());
    }
}
