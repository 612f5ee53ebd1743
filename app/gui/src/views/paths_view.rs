//! The paths view: how code reaches a probe, as a call graph of functions
//! laid out in layers by call depth (roots at the top).
//!
//! It starts with the first layers and the heaviest path open
//! ([`CallGraph::default_expanded`]); clicking a function shows or hides
//! its callees. Each function is a widget with an accessible name such as
//! `vfs_read — 1234 samples (12.3 %)`. Edges are caller → callee with the
//! value of the stacks that make the call.

use crate::theme;
use crate::views::flame_view::NO_STACKS;
use crate::views::graph_cache::{BuildJob, GraphCache, INLINE_BUILD_MAX_STACKS};
use crate::views::stack_filters::StackFilters;
use egui::accesskit::Role;
use egui::epaint::CubicBezierShape;
use egui::{
    Align2, FontId, Pos2, Rect, ScrollArea, Sense, Shape, Stroke, StrokeKind, UiBuilder, Vec2,
    WidgetInfo,
};
use microscope_model::Model;
use microscope_model::{CallGraph, MAX_CALLEES_SHOWN, PathsLayout};
use microscope_model::{StackQuery, StackStore};
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Accessibility label of the call graph area.
pub const CALL_GRAPH: &str = "Call graph";
/// Shown when the filters leave no sample.
const NO_SAMPLES: &str =
    "No stacks in this range for this probe and process. Widen the range or change the filters.";

/// The paths view and everything it remembers between frames.
pub struct PathsView {
    /// Which samples to show.
    pub filters: StackFilters,
    /// Names of the functions whose callees are shown; `None` until the
    /// first graph is built, then its default.
    expanded: Option<BTreeSet<String>>,
    /// The probe `expanded` was chosen for: another probe starts over.
    expanded_for: Option<Option<u16>>,
    /// Bumped on every change of `expanded`, to know when to lay out again.
    expanded_version: u64,
    cache: GraphCache<StackFilters, StackQuery, CallGraph>,
    /// (graph build, expanded version) → layout.
    layout: Option<((u64, u64), PathsLayout)>,
}

impl Default for PathsView {
    fn default() -> Self {
        Self::new()
    }
}

impl PathsView {
    /// The last 10 s, live, with the default expansion.
    pub fn new() -> Self {
        Self {
            filters: StackFilters::default(),
            expanded: None,
            expanded_for: None,
            expanded_version: 0,
            cache: GraphCache::default(),
            layout: None,
        }
    }

    /// The call graph shown, once built.
    pub fn graph(&self) -> Option<&CallGraph> {
        self.cache.get()
    }

    /// The functions whose callees are shown, once the graph is built.
    pub fn expanded(&self) -> Option<&BTreeSet<String>> {
        self.expanded.as_ref()
    }

    /// The layout drawn last, if any.
    pub fn layout(&self) -> Option<&PathsLayout> {
        self.layout.as_ref().map(|(_, layout)| layout)
    }

    /// Shows or hides the callees of the function `name`.
    pub fn toggle(&mut self, name: &str) {
        let expanded = self.expanded.get_or_insert_with(BTreeSet::new);
        if !expanded.remove(name) {
            expanded.insert(name.to_owned());
        }
        self.expanded_version += 1;
    }

    /// Shows `[start_ns, end_ns)` (kernel ns), e.g. a selection on the timeline.
    pub fn set_range(&mut self, start_ns: u64, end_ns: u64) {
        self.filters.set_range(start_ns, end_ns);
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut egui::Ui, model: &Model) {
        let store = &model.stacks;
        ui.horizontal_wrapped(|ui| {
            self.filters.range_ui(ui, store, "paths");
            self.filters.probe_ui(ui, model, "paths");
            self.filters.process_ui(ui, store, "paths");
            self.filters.live_ui(ui, store);
            if ui
                .button("Reset")
                .on_hover_text("Show the first layers and the heaviest path again.")
                .clicked()
            {
                self.expanded = None;
            }
        });
        ui.weak("Functions by call depth; click one to show or hide what it calls.");
        if store.is_empty() && self.filters.is_live() {
            ui.weak(NO_STACKS);
            return;
        }
        self.refresh(ui.ctx(), store, model.clock().now());
        if self.cache.is_building() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak("Building the call graph…");
            });
        }
        let Some(graph) = self.cache.get() else {
            return;
        };
        if graph.is_empty() {
            ui.weak(NO_SAMPLES);
            return;
        }
        let clicked = ui
            .scope_builder(UiBuilder::new().accessibility_label(CALL_GRAPH), |ui| {
                let layout = match &self.layout {
                    Some((_, layout)) => layout,
                    None => return None,
                };
                let expanded = self.expanded.as_ref();
                graph_ui(ui, graph, layout, expanded)
            })
            .inner;
        if let Some(name) = clicked {
            self.toggle(&name);
        }
    }

    fn refresh(&mut self, ctx: &egui::Context, store: &StackStore, now: Instant) {
        let query = self.filters.query(store);
        self.cache.refresh(
            self.filters.settings(),
            store.generation(),
            query,
            self.filters.is_live(),
            now,
            ctx,
            || {
                let slice = store.slice(query);
                BuildJob {
                    inline: slice.len() <= INLINE_BUILD_MAX_STACKS,
                    run: Box::new(move || CallGraph::from_slice(&slice)),
                }
            },
        );
        let Some(graph) = self.cache.get() else {
            return;
        };
        if self.expanded.is_none() || self.expanded_for != Some(query.probe) {
            self.expanded = Some(graph.default_expanded());
            self.expanded_for = Some(query.probe);
            self.expanded_version += 1;
        }
        let key = (self.cache.builds(), self.expanded_version);
        if self.layout.as_ref().is_none_or(|(built, _)| *built != key) {
            let empty = BTreeSet::new();
            let layout = graph.layout(self.expanded.as_ref().unwrap_or(&empty));
            self.layout = Some((key, layout));
        }
    }
}

/// Draws the call graph; returns the name of the function clicked.
fn graph_ui(
    ui: &mut egui::Ui,
    graph: &CallGraph,
    layout: &PathsLayout,
    expanded: Option<&BTreeSet<String>>,
) -> Option<String> {
    let node_size = theme::PATHS_NODE_SIZE;
    let widest = layout.layers.iter().map(Vec::len).max().unwrap_or(0) as f32;
    let content = Vec2::new(
        widest * (node_size.x + theme::PATHS_NODE_GAP) + theme::PATHS_NODE_GAP,
        layout.layers.len() as f32 * (node_size.y + theme::PATHS_LAYER_GAP),
    );
    let mut clicked = None;
    ScrollArea::both()
        .id_salt("call graph")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let size = Vec2::new(
                content.x.max(ui.available_width()),
                content.y.max(ui.available_height()),
            );
            let viewport_width = ui.available_width();
            let (area, _) = ui.allocate_exact_size(size, Sense::hover());
            let painter = ui.painter_at(area);
            let rects = node_rects(layout, area, viewport_width);
            for edge in &layout.edges {
                if let (Some(&from), Some(&to)) = (rects.get(&edge.from), rects.get(&edge.to)) {
                    paint_edge(&painter, graph, from, to, edge.value);
                }
            }
            let visible = ui.clip_rect();
            let base_id = ui.scope_id().with("function");
            for (&node, &rect) in &rects {
                if !visible.intersects(rect) {
                    continue;
                }
                let name = graph.name(node);
                let is_expanded = expanded.is_some_and(|e| e.contains(name));
                let callees = graph.callee_count(node);
                paint_node(&painter, graph, node, rect, is_expanded, callees);
                let response = ui.interact(rect, base_id.with(node.index()), Sense::click());
                response.widget_info(|| WidgetInfo::labeled(Role::Button, true, graph.label(node)));
                if response.clicked() && callees > 0 {
                    clicked = Some(name.to_owned());
                }
                response.on_hover_ui_at_pointer(|ui| {
                    ui.strong(name);
                    if let Some(function) = graph.node(node) {
                        let unit = graph.unit();
                        ui.label(format!("in stacks worth {}", unit.format(function.total)));
                        ui.label(format!("as the leaf: {}", unit.format(function.self_value)));
                    }
                    ui.weak(match (callees, is_expanded) {
                        (0, _) => "Calls nothing in these stacks.".to_owned(),
                        (n, true) if n > MAX_CALLEES_SHOWN => format!(
                            "Shows the {MAX_CALLEES_SHOWN} heaviest of its {n} callees (search \
                             the flame graph for the others). Click to hide them."
                        ),
                        (n, true) => format!("Click to hide its {n} callee(s)."),
                        (n, false) => format!("Click to show its {n} callee(s)."),
                    });
                });
            }
        });
    clicked
}

/// Where each shown function is drawn: layers top to bottom, each centred
/// in the visible width (a layer wider than that starts at the left edge,
/// so no layer starts out of sight).
fn node_rects(layout: &PathsLayout, area: Rect, viewport_width: f32) -> BTreeMap<NodeIndex, Rect> {
    let node_size = theme::PATHS_NODE_SIZE;
    let step = node_size.x + theme::PATHS_NODE_GAP;
    let mut rects = BTreeMap::new();
    for (depth, layer) in layout.layers.iter().enumerate() {
        let top = area.top() + depth as f32 * (node_size.y + theme::PATHS_LAYER_GAP) + 4.0;
        let row_width = layer.len() as f32 * step - theme::PATHS_NODE_GAP;
        let left = area.left() + ((viewport_width - row_width) / 2.0).max(theme::PATHS_NODE_GAP);
        for (position, &node) in layer.iter().enumerate() {
            let min = Pos2::new(left + position as f32 * step, top);
            rects.insert(node, Rect::from_min_size(min, node_size));
        }
    }
    rects
}

fn paint_node(
    painter: &egui::Painter,
    graph: &CallGraph,
    node: NodeIndex,
    rect: Rect,
    expanded: bool,
    callees: usize,
) {
    let name = graph.name(node);
    painter.rect_filled(rect, 4.0, theme::flame_color(name));
    let outline = if expanded && callees > 0 {
        Stroke::new(2.0, theme::PATHS_EXPANDED)
    } else {
        Stroke::new(1.0, theme::PATHS_COLLAPSED)
    };
    painter.rect_stroke(rect, 4.0, outline, StrokeKind::Inside);
    let clipped = painter.with_clip_rect(rect.shrink(2.0));
    clipped.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        Align2::LEFT_TOP,
        name,
        FontId::monospace(theme::FLAME_FONT_SIZE),
        theme::FLAME_TEXT,
    );
    let total = graph.node(node).map_or(0, |n| n.total);
    let percent = if graph.total() == 0 {
        0.0
    } else {
        100.0 * total as f64 / graph.total() as f64
    };
    let mut second = format!("{} · {percent:.1} %", graph.unit().format_short(total));
    if !expanded && callees > 0 {
        let plural = if callees == 1 { "" } else { "s" };
        second.push_str(&format!(" · +{callees} callee{plural}"));
    } else if expanded && callees > MAX_CALLEES_SHOWN {
        second.push_str(&format!(" · {} more", callees - MAX_CALLEES_SHOWN));
    }
    clipped.text(
        rect.left_bottom() + Vec2::new(6.0, -4.0),
        Align2::LEFT_BOTTOM,
        second,
        FontId::proportional(11.0),
        theme::FLAME_TEXT,
    );
}

/// A caller → callee curve, as thick as the call is heavy, with its value.
fn paint_edge(painter: &egui::Painter, graph: &CallGraph, from: Rect, to: Rect, value: u64) {
    let share = if graph.total() == 0 {
        0.0
    } else {
        value as f32 / graph.total() as f32
    };
    let stroke = Stroke::new(1.0 + 4.0 * share.sqrt(), theme::PATHS_EDGE);
    let (start, end, bend) = if to.top() > from.bottom() {
        // Down to a deeper layer.
        let start = from.center_bottom();
        let end = to.center_top();
        (start, end, Vec2::new(0.0, (end.y - start.y) / 2.0))
    } else if from == to {
        // Recursion: a loop on the right side.
        (
            from.right_center() - Vec2::new(0.0, 6.0),
            from.right_center() + Vec2::new(0.0, 6.0),
            Vec2::new(28.0, 0.0),
        )
    } else {
        // Back up to a shallower (or the same) layer: around the sides.
        (from.right_center(), to.right_center(), Vec2::new(40.0, 0.0))
    };
    let (control_a, control_b) = if to.top() > from.bottom() {
        (start + bend, end - bend)
    } else {
        (start + bend, end + bend)
    };
    painter.add(Shape::CubicBezier(CubicBezierShape::from_points_stroke(
        [start, control_a, control_b, end],
        false,
        egui::Color32::TRANSPARENT,
        stroke,
    )));
    let middle = Pos2::new(
        (start.x + 3.0 * control_a.x + 3.0 * control_b.x + end.x) / 8.0,
        (start.y + 3.0 * control_a.y + 3.0 * control_b.y + end.y) / 8.0,
    );
    painter.text(
        middle + Vec2::new(4.0, 0.0),
        Align2::LEFT_CENTER,
        graph.unit().format_short(value),
        FontId::proportional(10.0),
        theme::PATHS_EDGE_TEXT,
    );
}
