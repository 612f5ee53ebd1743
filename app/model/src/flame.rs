//! Flame graphs: stacks merged into a tree of frames, each as wide as the
//! samples under it.
//!
//! A [`FlameGraph`] is built from a slice of a [`StackStore`] (a time range,
//! optionally one probe and one process) or from folded lines
//! (`a;b;c 12`, the format of Brendan Gregg's FlameGraph and of inferno).
//! Its nodes live in one flat arena in a canonical order: depth first,
//! children sorted by name. So:
//!
//! - a node's subtree is the contiguous range `[node, end)`: skipping a
//!   subtree, which search and drawing do all the time, is one jump;
//! - a node's children are `node + 1`, then each child's `end`, and so on;
//! - two graphs of the same stacks are equal whatever order the stacks came
//!   in (`from_folded(to_folded(g)) == g` once names are folded-safe: see
//!   [`crate::folded`]).
//!
//! Children sorted by name (as FlameGraph does) rather than by weight keep
//! frames in place while live data changes their widths.
//!
//! A differential graph is built from two slices, a baseline and a
//! comparison. It has the comparison's shape (widths), and each node also
//! carries the baseline's values; [`FlameGraph::diff_ratio`] says how much a
//! frame grew or shrank, each side normalised by its own total.

use crate::folded::{KERNEL_SUFFIX, sanitize_frame};
use crate::stacks::{StackQuery, StackSlice, StackStore, ValueUnit};
use rustc_hash::FxHashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the root frame, which spans every sample.
pub const ROOT_NAME: &str = "all";

/// Marks "no parent" (the root).
const NO_NODE: u32 = u32::MAX;

/// A frame of a [`FlameGraph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u32);

impl NodeId {
    /// The root frame, [`ROOT_NAME`].
    pub const ROOT: Self = Self(0);

    /// The index of the node in depth-first order.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The values of a frame on one side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Values {
    /// Samples in the frame and everything it called.
    pub total: u64,
    /// Samples in the frame itself (it was the leaf).
    pub self_value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Node {
    parent: u32,
    name: u32,
    /// One past the last node of the subtree.
    end: u32,
    depth: u32,
    values: Values,
}

/// Options for building from a [`StackStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BuildOptions {
    /// Put each process (`comm (tgid)`) as the first frame under the root,
    /// as `perf script | stackcollapse` does.
    pub by_process: bool,
    /// With `by_process`, name a process by its command only (`comm`):
    /// for comparing two recordings, where the same program runs with
    /// other process ids (else every process frame would read as new).
    pub by_command: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            by_process: true,
            by_command: false,
        }
    }
}

/// A folded line that is not `frames count`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} is not `frame;frame;… count`: {text:?}")]
pub struct FoldedError {
    /// Line number, from 1.
    pub line: usize,
    /// The line.
    pub text: String,
}

/// The folded stacks could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write the folded stacks to {}: {source}", path.display())]
pub struct FoldedWriteError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// What hovering a frame shows.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameDetails {
    /// The frame's name.
    pub name: String,
    /// Its values (the comparison's, in a differential graph).
    pub values: Values,
    /// Its total as a percentage of the root's.
    pub percent_of_root: f64,
    /// Its total as a percentage of the zoomed frame's.
    pub percent_of_zoom: f64,
    /// In a differential graph, the baseline's values and percentage.
    pub baseline: Option<(Values, f64)>,
}

/// Which frames match a search, and how much they weigh.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    matched: Vec<bool>,
    count: usize,
    matched_total: u64,
    share: f64,
}

impl SearchResult {
    /// Whether `node` matched.
    pub fn matches(&self, node: NodeId) -> bool {
        self.matched.get(node.index()).copied().unwrap_or(false)
    }

    /// The matching frames, in depth-first order.
    pub fn matched_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.matched
            .iter()
            .enumerate()
            .filter(|(_, matched)| **matched)
            .filter_map(|(index, _)| u32::try_from(index).ok().map(NodeId))
    }

    /// Number of matching frames.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Samples under matching frames, each counted once even when matches
    /// nest (recursion).
    pub fn matched_total(&self) -> u64 {
        self.matched_total
    }

    /// [`Self::matched_total`] as a fraction of all samples, 0 to 1.
    pub fn share(&self) -> f64 {
        self.share
    }
}

/// A frame to draw, from [`FlameGraph::visible_frames`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameBox {
    /// The frame.
    pub node: NodeId,
    /// Left edge, in the units of the width given (from 0).
    pub x: f64,
    /// Width, in the same units.
    pub width: f64,
    /// Rows from the zoomed frame (row 0).
    pub row: u32,
}

/// A flame graph. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlameGraph {
    /// Depth first, children by name; `nodes[0]` is the root.
    nodes: Vec<Node>,
    /// Name id → folded name (kernel functions end in
    /// [`KERNEL_SUFFIX`]), sorted.
    names: Vec<Box<str>>,
    /// Per node, the baseline's values; empty unless differential.
    baseline: Vec<Values>,
    unit: ValueUnit,
}

impl Default for FlameGraph {
    fn default() -> Self {
        Builder::new().finish(false, ValueUnit::Samples)
    }
}

impl FlameGraph {
    /// Builds from the samples `query` selects.
    pub fn from_store(store: &StackStore, query: StackQuery, options: BuildOptions) -> Self {
        Self::from_slice(&store.slice(query), options)
    }

    /// Builds from a slice taken from the store (possibly on another thread).
    pub fn from_slice(slice: &StackSlice, options: BuildOptions) -> Self {
        let mut builder = Builder::new();
        builder.add_slice(slice, options, Side::Main);
        builder.finish(false, slice.unit())
    }

    /// Builds a differential graph: the shape of `comparison`, with the
    /// values of `baseline` alongside.
    pub fn differential_from_store(
        store: &StackStore,
        baseline: StackQuery,
        comparison: StackQuery,
        options: BuildOptions,
    ) -> Self {
        Self::differential_from_slices(&store.slice(baseline), &store.slice(comparison), options)
    }

    /// [`Self::differential_from_store`] from two slices.
    pub fn differential_from_slices(
        baseline: &StackSlice,
        comparison: &StackSlice,
        options: BuildOptions,
    ) -> Self {
        let mut builder = Builder::new();
        builder.add_slice(baseline, options, Side::Base);
        builder.add_slice(comparison, options, Side::Main);
        builder.finish(true, comparison.unit())
    }

    /// Parses folded lines (`frame;frame;frame count`, root first); blank
    /// lines are skipped and repeated stacks add up. A frame ending in
    /// `_[k]` is a kernel function.
    pub fn from_folded(text: &str) -> Result<Self, FoldedError> {
        let mut builder = Builder::new();
        builder.add_folded(text, Side::Main)?;
        Ok(builder.finish(false, ValueUnit::Samples))
    }

    /// A differential graph from two folded texts.
    pub fn differential_from_folded(baseline: &str, comparison: &str) -> Result<Self, FoldedError> {
        let mut builder = Builder::new();
        builder.add_folded(baseline, Side::Base)?;
        builder.add_folded(comparison, Side::Main)?;
        Ok(builder.finish(true, ValueUnit::Samples))
    }

    /// The same graph with values counting `unit`.
    pub fn with_unit(self, unit: ValueUnit) -> Self {
        Self { unit, ..self }
    }

    /// What the values count.
    pub fn unit(&self) -> ValueUnit {
        self.unit
    }

    /// Whether the graph compares two slices.
    pub fn is_differential(&self) -> bool {
        !self.baseline.is_empty()
    }

    /// Number of frames, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph holds no sample.
    pub fn is_empty(&self) -> bool {
        self.total() == 0 && self.baseline_total() == 0
    }

    /// All samples (the comparison's, in a differential graph).
    pub fn total(&self) -> u64 {
        self.values(NodeId::ROOT).total
    }

    /// All samples of the baseline; 0 unless differential.
    pub fn baseline_total(&self) -> u64 {
        self.baseline(NodeId::ROOT).map_or(0, |v| v.total)
    }

    /// The deepest frame's depth (the root's is 0).
    pub fn max_depth(&self) -> u32 {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// The frame's function name; empty for an id of another graph.
    pub fn name(&self, node: NodeId) -> &str {
        display_name(self.folded_name(node))
    }

    /// Whether the frame is a kernel function.
    pub fn is_kernel(&self, node: NodeId) -> bool {
        self.folded_name(node).ends_with(KERNEL_SUFFIX)
    }

    /// The name as the graph keeps it: a kernel function's ends in
    /// [`KERNEL_SUFFIX`], so a kernel and a user function of the same name
    /// are two frames.
    fn folded_name(&self, node: NodeId) -> &str {
        self.node(node)
            .and_then(|n| self.names.get(n.name as usize))
            .map_or("", |name| name)
    }

    /// The frame's values (the comparison's, in a differential graph).
    pub fn values(&self, node: NodeId) -> Values {
        self.node(node).map(|n| n.values).unwrap_or_default()
    }

    /// The baseline's values, in a differential graph.
    pub fn baseline(&self, node: NodeId) -> Option<Values> {
        self.baseline.get(node.index()).copied()
    }

    /// The frame's depth: 0 for the root.
    pub fn depth(&self, node: NodeId) -> u32 {
        self.node(node).map_or(0, |n| n.depth)
    }

    /// The frame's caller; `None` for the root.
    pub fn parent(&self, node: NodeId) -> Option<NodeId> {
        self.node(node)
            .map(|n| n.parent)
            .filter(|&p| p != NO_NODE)
            .map(NodeId)
    }

    /// The frames it called, by name.
    pub fn children(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let end = self.node(node).map_or(0, |n| n.end);
        let mut next = node.0.saturating_add(1);
        std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let child = NodeId(next);
            next = self.node(child).map_or(end, |n| n.end);
            Some(child)
        })
    }

    /// The root, then each caller down to the frame's parent.
    pub fn ancestors(&self, node: NodeId) -> Vec<NodeId> {
        let mut ancestors = Vec::new();
        let mut current = self.parent(node);
        while let Some(ancestor) = current {
            ancestors.push(ancestor);
            current = self.parent(ancestor);
        }
        ancestors.reverse();
        ancestors
    }

    /// The names from below the root down to the frame: empty for the root.
    /// Survives rebuilding the graph, unlike a [`NodeId`].
    pub fn path(&self, node: NodeId) -> Vec<String> {
        let mut path: Vec<String> = self
            .ancestors(node)
            .into_iter()
            .skip(1)
            .map(|n| self.name(n).to_owned())
            .collect();
        if node != NodeId::ROOT {
            path.push(self.name(node).to_owned());
        }
        path
    }

    /// The frame at `path` (names below the root), if the graph has it.
    pub fn find_path<S: AsRef<str>>(&self, path: &[S]) -> Option<NodeId> {
        let mut node = NodeId::ROOT;
        for name in path {
            node = self
                .children(node)
                .find(|&child| self.name(child) == name.as_ref())?;
        }
        Some(node)
    }

    /// The frames under `zoom` (which spans `width`) at least `min_width`
    /// wide, depth first, left to right. Narrower frames are dropped with
    /// everything above them: they would be less than a pixel, and drawing
    /// them would cost as much as the rest.
    pub fn visible_frames(
        &self,
        zoom: NodeId,
        width: f64,
        min_width: f64,
        out: &mut Vec<FrameBox>,
    ) {
        out.clear();
        let Some(zoom_node) = self.node(zoom) else {
            return;
        };
        if zoom_node.values.total == 0 || width <= 0.0 {
            return;
        }
        let scale = width / zoom_node.values.total as f64;
        let mut pending = vec![(zoom, 0.0f64)];
        let mut children = Vec::new();
        while let Some((node, x)) = pending.pop() {
            let Some(n) = self.node(node) else {
                continue;
            };
            let node_width = n.values.total as f64 * scale;
            if node_width < min_width || n.values.total == 0 {
                continue;
            }
            out.push(FrameBox {
                node,
                x,
                width: node_width,
                row: n.depth - zoom_node.depth,
            });
            children.clear();
            let mut child_x = x;
            for child in self.children(node) {
                children.push((child, child_x));
                child_x += self.values(child).total as f64 * scale;
            }
            pending.extend(children.iter().rev());
        }
    }

    /// What hovering `node` shows, with `zoom` the zoomed frame.
    pub fn details(&self, node: NodeId, zoom: NodeId) -> FrameDetails {
        let values = self.values(node);
        FrameDetails {
            name: self.name(node).to_owned(),
            values,
            percent_of_root: percent(values.total, self.total()),
            percent_of_zoom: percent(values.total, self.values(zoom).total),
            baseline: self
                .baseline(node)
                .map(|base| (base, percent(base.total, self.baseline_total()))),
        }
    }

    /// The accessible name of a frame: `vfs_read — 1234 samples (12.3 %)`.
    pub fn label(&self, node: NodeId) -> String {
        let total = self.values(node).total;
        format!(
            "{} — {} ({:.1} %)",
            self.name(node),
            self.unit.format(total),
            percent(total, self.total())
        )
    }

    /// Frames whose name contains `query`, ignoring case. The root never
    /// matches; an empty query matches nothing.
    pub fn search(&self, query: &str) -> SearchResult {
        let query = query.trim().to_lowercase();
        let mut matched = vec![false; self.nodes.len()];
        if query.is_empty() {
            return SearchResult {
                matched,
                count: 0,
                matched_total: 0,
                share: 0.0,
            };
        }
        let name_matches: Vec<bool> = self
            .names
            .iter()
            .map(|name| display_name(name).to_lowercase().contains(&query))
            .collect();
        let is_match = |node: &Node| name_matches.get(node.name as usize).copied() == Some(true);
        let mut count = 0;
        for (slot, node) in matched.iter_mut().zip(&self.nodes).skip(1) {
            *slot = is_match(node);
            count += usize::from(*slot);
        }
        // Sum the outermost matches only: a match's subtree already holds
        // every nested one.
        let mut matched_total: u64 = 0;
        let mut index = 1;
        while let Some(node) = self.nodes.get(index) {
            if is_match(node) {
                matched_total = matched_total.saturating_add(node.values.total);
                index = node.end as usize;
            } else {
                index += 1;
            }
        }
        SearchResult {
            matched,
            count,
            matched_total,
            share: fraction(matched_total, self.total()),
        }
    }

    /// How much the frame grew (up to 1) or shrank (down to -1) from the
    /// baseline to the comparison, each side as a share of its own total;
    /// `None` unless differential.
    pub fn diff_ratio(&self, node: NodeId) -> Option<f64> {
        let base = self.baseline(node)?;
        let before = fraction(base.total, self.baseline_total());
        let after = fraction(self.values(node).total, self.total());
        let larger = before.max(after);
        Some(if larger > 0.0 {
            (after - before) / larger
        } else {
            0.0
        })
    }

    /// The graph as folded lines (`frame;frame count`, sorted), which
    /// FlameGraph and inferno read. A differential graph writes its
    /// comparison. Each frame is written as [`crate::folded`] names it
    /// everywhere: `;` becomes `:`, white space `_`, kernel functions end
    /// in `_[k]`.
    pub fn to_folded(&self) -> String {
        let mut out = String::new();
        let mut path: Vec<String> = Vec::new();
        for node in self.nodes.iter().skip(1) {
            path.truncate(node.depth.saturating_sub(1) as usize);
            path.push(
                self.names
                    .get(node.name as usize)
                    .map_or_else(String::new, |name| sanitize_frame(name).into_owned()),
            );
            if node.values.self_value > 0 {
                // Writing to a String cannot fail.
                let _ = writeln!(out, "{} {}", path.join(";"), node.values.self_value);
            }
        }
        out
    }

    /// Writes [`Self::to_folded`] to `path`; returns the lines written.
    pub fn write_folded(&self, path: &Path) -> Result<usize, FoldedWriteError> {
        let text = self.to_folded();
        std::fs::write(path, &text).map_err(|source| FoldedWriteError {
            path: path.to_owned(),
            source,
        })?;
        Ok(text.lines().count())
    }

    fn node(&self, node: NodeId) -> Option<&Node> {
        self.nodes.get(node.index())
    }
}

/// The `(stack, count)` of each non-blank folded line; `stack` is the
/// frames joined by `;`, root first. The count follows the last space, so
/// frame names may hold spaces.
pub(crate) fn folded_lines(
    text: &str,
) -> impl Iterator<Item = Result<(&str, u64), FoldedError>> + '_ {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            let malformed = || FoldedError {
                line: index + 1,
                text: line.to_owned(),
            };
            let (stack, count) = line
                .rsplit_once(|c: char| c.is_ascii_whitespace())
                .ok_or_else(malformed)?;
            let count: u64 = count.parse().map_err(|_| malformed())?;
            let stack = stack.trim_end();
            if stack.is_empty() {
                return Err(malformed());
            }
            Ok((stack, count))
        })
}

/// A folded name without its kernel suffix.
fn display_name(folded: &str) -> &str {
    folded.strip_suffix(KERNEL_SUFFIX).unwrap_or(folded)
}

fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * fraction(part, whole)
}

/// Which values a stack adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Main,
    Base,
}

/// A stack waiting to be merged: where its names are in the path buffer.
#[derive(Clone, Copy, Debug)]
struct PendingPath {
    start: usize,
    len: usize,
    side: Side,
    value: u64,
}

/// Collects stacks as paths of names, then merges them in one pass.
///
/// Merging sorts the paths by their names first: in that order each path
/// shares its prefix with the one before, so its nodes are found by
/// comparing with the previous path rather than by looking children up,
/// and every node is created in the graph's canonical order (depth first,
/// children by name). No hash map lookup per frame, and no reordering
/// afterwards.
struct Builder {
    names: Vec<Box<str>>,
    name_ids: FxHashMap<Box<str>, u32>,
    /// The name ids of every path, one after the other.
    buffer: Vec<u32>,
    paths: Vec<PendingPath>,
}

impl Builder {
    fn new() -> Self {
        let mut builder = Self {
            names: Vec::new(),
            name_ids: FxHashMap::default(),
            buffer: Vec::new(),
            paths: Vec::new(),
        };
        builder.name_id(ROOT_NAME);
        builder
    }

    fn name_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        // Names are far fewer than the four billion a u32 counts.
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.name_ids.insert(name.into(), id);
        id
    }

    /// Ends the path whose names were pushed onto the buffer since `start`.
    fn end_path(&mut self, start: usize, value: u64, side: Side) {
        self.paths.push(PendingPath {
            start,
            len: self.buffer.len() - start,
            side,
            value,
        });
    }

    fn add_folded(&mut self, text: &str, side: Side) -> Result<(), FoldedError> {
        for line in folded_lines(text) {
            let (stack, count) = line?;
            let start = self.buffer.len();
            for frame in stack.split(';') {
                let name = self.name_id(frame);
                self.buffer.push(name);
            }
            self.end_path(start, count, side);
        }
        Ok(())
    }

    fn add_slice(&mut self, slice: &StackSlice, options: BuildOptions, side: Side) {
        let mut frame_names: FxHashMap<u32, u32> = FxHashMap::default();
        let mut process_names: FxHashMap<(u32, &str), u32> = FxHashMap::default();
        for stack in slice.iter() {
            let start = self.buffer.len();
            if options.by_process {
                let tgid = if options.by_command { 0 } else { stack.tgid };
                let name = match process_names.get(&(tgid, stack.comm)) {
                    Some(&name) => name,
                    None => {
                        let name = if options.by_command {
                            self.name_id(stack.comm)
                        } else {
                            self.name_id(&format!("{} ({})", stack.comm, stack.tgid))
                        };
                        process_names.insert((tgid, stack.comm), name);
                        name
                    }
                };
                self.buffer.push(name);
            }
            for &frame in stack.frames {
                let name = match frame_names.get(&frame) {
                    Some(&name) => name,
                    None => {
                        let name = slice.frame_name(frame);
                        let name = if slice.is_kernel_frame(frame) {
                            self.name_id(&format!("{name}{KERNEL_SUFFIX}"))
                        } else {
                            self.name_id(&name)
                        };
                        frame_names.insert(frame, name);
                        name
                    }
                };
                self.buffer.push(name);
            }
            self.end_path(start, stack.value, side);
        }
    }

    /// Merges the paths into the graph. Names are numbered in sorted
    /// order, so equal trees have equal name tables too.
    fn finish(self, differential: bool, unit: ValueUnit) -> FlameGraph {
        let Self {
            names,
            mut buffer,
            mut paths,
            ..
        } = self;

        // Name ids become ranks in sorted order, so comparing ids compares names.
        let mut by_text: Vec<usize> = (0..names.len()).collect();
        by_text.sort_unstable_by(|&a, &b| names.get(a).cmp(&names.get(b)));
        let mut rank = vec![0u32; names.len()];
        for (position, &id) in by_text.iter().enumerate() {
            if let Some(slot) = rank.get_mut(id) {
                *slot = u32::try_from(position).unwrap_or(u32::MAX);
            }
        }
        for name in &mut buffer {
            *name = rank.get(*name as usize).copied().unwrap_or(u32::MAX);
        }
        // The root's name was interned first.
        let root_name = rank.first().copied().unwrap_or(0);
        let sorted_names: Vec<Box<str>> = by_text
            .iter()
            .filter_map(|&id| names.get(id).cloned())
            .collect();

        let path_of =
            |path: &PendingPath| buffer.get(path.start..path.start + path.len).unwrap_or(&[]);
        paths.sort_unstable_by(|a, b| path_of(a).cmp(path_of(b)));

        let mut nodes = vec![Node {
            parent: NO_NODE,
            name: root_name,
            end: 0,
            depth: 0,
            values: Values::default(),
        }];
        let mut baseline = if differential {
            vec![Values::default()]
        } else {
            Vec::new()
        };
        // The nodes along the previous path, below the root.
        let mut chain: Vec<u32> = Vec::new();
        let mut previous: &[u32] = &[];
        for pending in &paths {
            let path = path_of(pending);
            let common = previous
                .iter()
                .zip(path)
                .take_while(|(a, b)| a == b)
                .count();
            chain.truncate(common);
            for &name in path.get(common..).unwrap_or(&[]) {
                let parent = chain.last().copied().unwrap_or(0);
                let id = u32::try_from(nodes.len()).unwrap_or(NO_NODE);
                nodes.push(Node {
                    parent,
                    name,
                    end: 0,
                    depth: u32::try_from(chain.len() + 1).unwrap_or(u32::MAX),
                    values: Values::default(),
                });
                if differential {
                    baseline.push(Values::default());
                }
                chain.push(id);
            }
            for &index in std::iter::once(&0).chain(&chain) {
                if let Some(values) = side_values(&mut nodes, &mut baseline, pending.side, index) {
                    values.total = values.total.saturating_add(pending.value);
                }
            }
            let leaf = chain.last().copied().unwrap_or(0);
            if let Some(values) = side_values(&mut nodes, &mut baseline, pending.side, leaf) {
                values.self_value = values.self_value.saturating_add(pending.value);
            }
            previous = path;
        }

        // Subtree ends: created depth first, so a subtree is contiguous and
        // parents come before their children.
        let count = nodes.len();
        let mut size = vec![1u32; count];
        for index in (1..count).rev() {
            let (Some(&own), Some(parent)) = (size.get(index), nodes.get(index).map(|n| n.parent))
            else {
                continue;
            };
            if let Some(parent_size) = size.get_mut(parent as usize) {
                *parent_size += own;
            }
        }
        for (index, (node, size)) in nodes.iter_mut().zip(&size).enumerate() {
            node.end = u32::try_from(index)
                .unwrap_or(NO_NODE)
                .saturating_add(*size);
        }
        FlameGraph {
            nodes,
            names: sorted_names,
            baseline,
            unit,
        }
    }
}

/// The values of node `index` on `side`.
fn side_values<'a>(
    nodes: &'a mut [Node],
    baseline: &'a mut [Values],
    side: Side,
    index: u32,
) -> Option<&'a mut Values> {
    match side {
        Side::Main => nodes.get_mut(index as usize).map(|n| &mut n.values),
        Side::Base => baseline.get_mut(index as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDED: &str = "\
main;read;vfs_read;ext4_read 30
main;read;vfs_read 10
main;write;vfs_write 40
main;compute 15
idle 5
";

    fn graph() -> FlameGraph {
        FlameGraph::from_folded(FOLDED).unwrap()
    }

    fn node(graph: &FlameGraph, path: &[&str]) -> NodeId {
        graph.find_path(path).unwrap()
    }

    #[test]
    fn folded_lines_merge_into_a_tree() {
        let g = graph();
        assert_eq!(g.total(), 100);
        let vfs_read = node(&g, &["main", "read", "vfs_read"]);
        assert_eq!(
            g.values(vfs_read),
            Values {
                total: 40,
                self_value: 10
            }
        );
        assert_eq!(g.depth(vfs_read), 3);
        assert_eq!(g.max_depth(), 4);
        let main = node(&g, &["main"]);
        let names: Vec<&str> = g.children(main).map(|c| g.name(c)).collect();
        assert_eq!(names, ["compute", "read", "write"]);
        assert_eq!(g.path(vfs_read), ["main", "read", "vfs_read"]);
        assert_eq!(g.ancestors(vfs_read).len(), 3);
        assert_eq!(g.parent(NodeId::ROOT), None);
    }

    #[test]
    fn many_stacks_merge_consistently() {
        let store = crate::synthetic::synthetic_store(2000, 3);
        let g = FlameGraph::from_store(&store, StackQuery::all(), BuildOptions::default());
        let all: u64 = store.samples().iter().map(|s| s.value).sum();
        assert_eq!(g.total(), all);
        for index in 0..g.len() {
            let node = NodeId(u32::try_from(index).unwrap());
            let children: Vec<NodeId> = g.children(node).collect();
            let below: u64 = children.iter().map(|&c| g.values(c).total).sum();
            assert_eq!(g.values(node).total, g.values(node).self_value + below);
            assert!(children.windows(2).all(|w| g.name(w[0]) < g.name(w[1])));
            assert!(children.iter().all(|&c| g.parent(c) == Some(node)));
        }
        // Function names are folded-safe, so without the `comm (pid)`
        // frames the folded text is the graph.
        let plain = FlameGraph::from_store(
            &store,
            StackQuery::all(),
            BuildOptions {
                by_process: false,
                ..BuildOptions::default()
            },
        );
        assert_eq!(FlameGraph::from_folded(&plain.to_folded()).unwrap(), plain);
    }

    #[test]
    fn frame_ids_with_the_same_name_are_one_frame() {
        let mut store = StackStore::new();
        store.intern_frame(1, "vfs_read".into(), false);
        store.intern_frame(2, "vfs_read".into(), false);
        store.add(1, 1, 1, "a", &[1], 2);
        store.add(2, 1, 1, "a", &[2], 3);
        let g = FlameGraph::from_store(
            &store,
            StackQuery::all(),
            BuildOptions {
                by_process: false,
                ..BuildOptions::default()
            },
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g.to_folded(), "vfs_read 5\n");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let err = FlameGraph::from_folded("a;b 1\n\na;c x\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(FlameGraph::from_folded("nocount").is_err());
        assert!(FlameGraph::from_folded(" 12").is_err());
        assert_eq!(FlameGraph::from_folded("").unwrap().total(), 0);
        assert!(FlameGraph::from_folded("\n\n").unwrap().is_empty());
    }

    #[test]
    fn folded_export_round_trips() {
        let g = graph();
        let again = FlameGraph::from_folded(&g.to_folded()).unwrap();
        assert_eq!(again, g);
        // Input order does not matter: the layout is canonical.
        let shuffled: String = FOLDED.lines().rev().map(|l| format!("{l}\n")).collect();
        assert_eq!(FlameGraph::from_folded(&shuffled).unwrap(), g);
        // Names with spaces are read (the count is after the last one) and
        // written folded-safe, as every folded writer writes them; from
        // then on the round trip is exact.
        let spaced = FlameGraph::from_folded("bash (12);[unknown frame #7] 3\n").unwrap();
        assert_eq!(spaced.to_folded(), "bash_(12);[unknown_frame_#7] 3\n");
        let safe = FlameGraph::from_folded(&spaced.to_folded()).unwrap();
        assert_eq!(FlameGraph::from_folded(&safe.to_folded()).unwrap(), safe);
    }

    #[test]
    fn kernel_frames_keep_their_suffix_and_show_their_name() {
        let mut store = StackStore::new();
        store.intern_frame(1, "main".into(), false);
        store.intern_frame(2, "vfs_read".into(), true);
        store.intern_frame(3, "vfs_read".into(), false);
        store.add(10, 1, 42, "cat", &[1, 2], 2);
        store.add(11, 1, 42, "cat", &[1, 3], 1);
        let options = BuildOptions {
            by_process: false,
            ..BuildOptions::default()
        };
        let g = FlameGraph::from_store(&store, StackQuery::all(), options);
        assert_eq!(g.to_folded(), "main;vfs_read 1\nmain;vfs_read_[k] 2\n");
        let main = g.find_path(&["main"]).unwrap();
        let children: Vec<(&str, bool)> = g
            .children(main)
            .map(|c| (g.name(c), g.is_kernel(c)))
            .collect();
        assert_eq!(children, [("vfs_read", false), ("vfs_read", true)]);
        assert_eq!(FlameGraph::from_folded(&g.to_folded()).unwrap(), g);
        // Search looks at the function name, not the suffix.
        assert_eq!(g.search("[k]").count(), 0);
    }

    #[test]
    fn two_recordings_compare_a_program_by_its_command_not_its_pid() {
        // The same program, run once per recording: another pid each time.
        let store = |pid: u32, hot: u64| {
            let mut store = StackStore::new();
            store.intern_frame(1, "main".into(), false);
            store.intern_frame(2, "hot".into(), false);
            store.intern_frame(3, "cold".into(), false);
            store.add(10, 1, pid, "burn", &[1, 2], hot);
            store.add(11, 1, pid, "burn", &[1, 3], 300 - hot);
            store
        };
        let (before, after) = (store(100, 100), store(200, 200));
        let all = StackQuery::all();
        let by_command = BuildOptions {
            by_command: true,
            ..BuildOptions::default()
        };
        let g =
            FlameGraph::differential_from_slices(&before.slice(all), &after.slice(all), by_command);
        let hot = g.find_path(&["burn", "main", "hot"]).expect("one burn");
        assert_eq!(g.baseline(hot).map(|v| v.total), Some(100));
        assert_eq!(g.values(hot).total, 200);
        assert!(g.diff_ratio(hot).is_some_and(|r| r > 0.0), "hot grew");
        let cold = g.find_path(&["burn", "main", "cold"]).unwrap();
        assert!(g.diff_ratio(cold).is_some_and(|r| r < 0.0), "cold shrank");
        // By pid, the two runs are two processes: all new, all gone.
        let by_pid = FlameGraph::differential_from_slices(
            &before.slice(all),
            &after.slice(all),
            BuildOptions::default(),
        );
        assert!(by_pid.find_path(&["burn (200)", "main", "hot"]).is_some());
        assert!(by_pid.find_path(&["burn", "main"]).is_none());
    }

    #[test]
    fn a_different_graph_is_not_equal() {
        let other = FlameGraph::from_folded(&FOLDED.replace("idle 5", "idle 6")).unwrap();
        assert_ne!(other, graph());
    }

    #[test]
    fn search_counts_nested_matches_once() {
        // `vfs` matches vfs_read (40) and vfs_write (40); `read` matches
        // `read` (40) and, nested inside it, vfs_read and ext4_read.
        let g = graph();
        let vfs = g.search("VFS");
        assert_eq!(vfs.count(), 2);
        assert_eq!(vfs.matched_total(), 80);
        assert!((vfs.share() - 0.8).abs() < 1e-12);
        let read = g.search("read");
        assert_eq!(read.count(), 3);
        assert_eq!(read.matched_total(), 40);
        assert!(read.matches(node(&g, &["main", "read", "vfs_read", "ext4_read"])));
        assert!(!read.matches(node(&g, &["main", "write"])));
        let matched: Vec<&str> = read.matched_nodes().map(|n| g.name(n)).collect();
        assert_eq!(matched, ["read", "vfs_read", "ext4_read"]);
        assert_eq!(g.search("").count(), 0);
        assert_eq!(g.search("all").count(), 0, "the root never matches");
        assert_eq!(g.search("nothing").share(), 0.0);
    }

    #[test]
    fn details_give_percent_of_root_and_of_zoom() {
        let g = graph();
        let read = node(&g, &["main", "read"]);
        let ext4 = node(&g, &["main", "read", "vfs_read", "ext4_read"]);
        let details = g.details(ext4, read);
        assert_eq!(details.name, "ext4_read");
        assert_eq!(details.values.self_value, 30);
        assert!((details.percent_of_root - 30.0).abs() < 1e-9);
        assert!((details.percent_of_zoom - 75.0).abs() < 1e-9);
        assert_eq!(details.baseline, None);
        assert_eq!(g.label(ext4), "ext4_read — 30 samples (30.0 %)");
    }

    #[test]
    fn visible_frames_drop_narrow_frames_and_follow_the_zoom() {
        let g = graph();
        let mut boxes = Vec::new();
        g.visible_frames(NodeId::ROOT, 1000.0, 1.0, &mut boxes);
        assert_eq!(boxes.len(), g.len());
        assert_eq!(boxes[0].node, NodeId::ROOT);
        // Children by name: idle (5 of 100), then main (95).
        let idle = boxes.iter().find(|b| g.name(b.node) == "idle").unwrap();
        assert!(idle.x.abs() < 1e-9 && (idle.width - 50.0).abs() < 1e-9);
        let main = boxes.iter().find(|b| g.name(b.node) == "main").unwrap();
        assert!((main.x - 50.0).abs() < 1e-9 && (main.width - 950.0).abs() < 1e-9);
        assert_eq!((main.row, idle.row), (1, 1));
        // At 100 units wide, idle is 5 wide; at 10, 0.5: dropped.
        g.visible_frames(NodeId::ROOT, 10.0, 1.0, &mut boxes);
        assert!(boxes.iter().all(|b| g.name(b.node) != "idle"));
        // Zoomed: the frame spans the whole width at row 0.
        let read = node(&g, &["main", "read"]);
        g.visible_frames(read, 1000.0, 1.0, &mut boxes);
        assert_eq!(boxes.len(), 3);
        assert_eq!((boxes[0].node, boxes[0].row), (read, 0));
        assert!((boxes[0].width - 1000.0).abs() < 1e-9);
        let ext4 = boxes
            .iter()
            .find(|b| g.name(b.node) == "ext4_read")
            .unwrap();
        assert_eq!(ext4.row, 2);
        assert!((ext4.width - 750.0).abs() < 1e-9);
    }

    #[test]
    fn diff_ratio_is_positive_for_growth_and_negative_for_shrinkage() {
        // The baseline has 100 samples, the comparison 200: each side is
        // normalised, so `b` doubling its count but keeping its share is
        // no change.
        let baseline = "m;a 50\nm;b 25\nm;c 25\n";
        let comparison = "m;a 40\nm;b 50\nm;c 110\n";
        let g = FlameGraph::differential_from_folded(baseline, comparison).unwrap();
        assert!(g.is_differential());
        assert_eq!((g.baseline_total(), g.total()), (100, 200));
        let ratio = |name| g.diff_ratio(node(&g, &["m", name])).unwrap();
        assert!(ratio("a") < -0.5, "a went from 50 % to 20 %");
        assert!(ratio("b").abs() < 1e-12, "b stayed at 25 %");
        assert!(ratio("c") > 0.5, "c went from 25 % to 55 %");
        assert_eq!(g.diff_ratio(NodeId::ROOT), Some(0.0));
        let details = g.details(node(&g, &["m", "a"]), NodeId::ROOT);
        assert_eq!(details.baseline.map(|(v, _)| v.total), Some(50));
        assert_eq!(graph().diff_ratio(NodeId::ROOT), None);
    }

    #[test]
    fn frames_only_in_the_baseline_are_kept_with_no_width() {
        let g = FlameGraph::differential_from_folded("m;gone 10\nm;x 10\n", "m;x 10\n").unwrap();
        let gone = node(&g, &["m", "gone"]);
        assert_eq!(g.values(gone).total, 0);
        assert_eq!(g.diff_ratio(gone), Some(-1.0));
        let mut boxes = Vec::new();
        g.visible_frames(NodeId::ROOT, 100.0, 1.0, &mut boxes);
        assert!(boxes.iter().all(|b| b.node != gone));
        assert_eq!(g.to_folded(), "m;x 10\n");
    }

    #[test]
    fn a_store_slice_becomes_a_graph_with_process_frames() {
        let mut store = StackStore::new();
        store.intern_frame(1, "entry".into(), false);
        store.intern_frame(2, "vfs_read".into(), false);
        store.add(10, 1, 100, "cat", &[1, 2], 3);
        store.add(20, 1, 100, "cat", &[1, 2, 9], 2);
        store.add(30, 1, 200, "dd", &[1], 4);
        store.add(40, 2, 100, "cat", &[1], 100);
        let query = StackQuery::range(0, 35).with_probe(Some(1));
        let g = FlameGraph::from_store(&store, query, BuildOptions::default());
        assert_eq!(
            g.to_folded(),
            "cat_(100);entry;vfs_read 3\n\
             cat_(100);entry;vfs_read;[unknown_frame_#9] 2\n\
             dd_(200);entry 4\n"
        );
        let flat = FlameGraph::from_store(
            &store,
            query,
            BuildOptions {
                by_process: false,
                ..BuildOptions::default()
            },
        );
        assert_eq!(flat.values(node(&flat, &["entry"])).total, 9);
        let only_dd =
            FlameGraph::from_store(&store, query.with_tgid(Some(200)), BuildOptions::default());
        assert_eq!(only_dd.total(), 4);
        // The time slice excludes t = 40.
        let everything = FlameGraph::from_store(&store, StackQuery::all(), BuildOptions::default());
        assert_eq!(everything.total(), 109);
    }

    #[test]
    fn store_units_carry_over() {
        let mut store = StackStore::new();
        store.set_unit(3, ValueUnit::Nanoseconds);
        store.add(1, 3, 1, "a", &[], 2_500_000);
        let g = FlameGraph::from_store(&store, StackQuery::all(), BuildOptions::default());
        assert_eq!(g.unit(), ValueUnit::Nanoseconds);
        assert_eq!(g.label(NodeId::ROOT), "all — 2.50 ms (100.0 %)");
    }

    #[test]
    fn writing_to_a_missing_folder_fails_with_the_path() {
        let err = graph()
            .write_folded(Path::new("/nonexistent-dir/x.folded"))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not write the folded stacks to /nonexistent-dir/x.folded: ")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.folded");
        assert_eq!(graph().write_folded(&file).unwrap(), 5);
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(FlameGraph::from_folded(&text).unwrap(), graph());
    }
}
