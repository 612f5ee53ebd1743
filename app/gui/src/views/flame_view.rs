//! The flame graph view: the stacks of a time range as a flame graph (root
//! at the bottom) or an icicle graph (root at the top).
//!
//! Painted directly, one rectangle per frame. Each frame costs about the
//! same whatever the store holds:
//!
//! - the [`FlameGraph`] is rebuilt only when its inputs change (store
//!   generation, range, filters; see `GraphCache`), never just to draw;
//! - frames narrower than a pixel are dropped with everything above them
//!   ([`FlameGraph::visible_frames`]), so 100k unique stacks draw as the
//!   few thousand frames that are visible;
//! - rows scrolled out of view are neither painted nor registered.
//!
//! Every painted frame is a widget with an accessible name such as
//! `vfs_read — 1234 samples (12.3 %)`, so screen readers and tests can find
//! and click it. Clicking zooms; the breadcrumbs above go back.

use crate::command::{Command, CommandQueue};
use crate::theme;
use crate::views::graph_cache::{BuildJob, GraphCache, INLINE_BUILD_MAX_STACKS};
use crate::views::stack_filters::{StackFilters, range_fields_ui};
use egui::accesskit::Role;
use egui::{
    Align2, Color32, FontId, PopupAnchor, Pos2, Rect, ScrollArea, Sense, Stroke, StrokeKind,
    TextEdit, Tooltip, UiBuilder, Vec2, WidgetInfo,
};
use microscope_model::Model;
use microscope_model::{
    BuildOptions, FlameGraph, FoldedWriteError, FrameBox, NodeId, SearchResult,
};
use microscope_model::{StackQuery, StackSlice, StackStore};
use std::path::Path;
use std::time::Instant;

/// Shown while the store holds no stack at all.
pub const NO_STACKS: &str = "No stack samples yet. Stacks come from the CPU profiler, off-CPU \
     tracking and probes that capture stacks: enable one in the probe list.";
/// Shown when the filters leave no sample.
pub const NO_SAMPLES_IN_RANGE: &str =
    "No samples in this range for this probe and process. Widen the range or change the filters.";
/// Accessibility label of the breadcrumbs row.
pub const BREADCRUMBS: &str = "Zoom path";
/// Accessibility label of the frames area.
pub const FRAMES: &str = "Frames";
/// Frames narrower than this many pixels are not drawn.
const MIN_FRAME_PIXELS: f64 = 1.0;
/// Frames narrower than this (points) get no gap, which would hide them.
const MIN_GAP_WIDTH: f32 = 3.0;
/// Fewest characters worth writing in a frame.
const MIN_LABEL_CHARS: usize = 4;
/// Room left and right of a frame's name, in points (both sides together).
const LABEL_PADDING: f32 = 6.0;

/// Root at the bottom (flame) or at the top (icicle).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlameLayout {
    /// Root at the bottom, callees above: the classic flame graph.
    #[default]
    Flame,
    /// Root at the top, callees below.
    Icicle,
}

/// The two time ranges of a differential flame graph, in kernel ns `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffRanges {
    /// The "before" range.
    pub baseline: (u64, u64),
    /// The "after" range, whose shape is drawn.
    pub comparison: (u64, u64),
}

/// The inputs the user chooses: a change rebuilds the graph at once.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    filters: StackFilters,
    by_process: bool,
    diff: Option<DiffRanges>,
    /// Compared with the baseline recording (its whole profile).
    against_baseline: bool,
}

/// The flame graph view and everything it remembers between frames.
pub struct FlameView {
    /// Which samples to show.
    pub filters: StackFilters,
    /// Flame or icicle.
    pub layout: FlameLayout,
    /// Put each process as the first frame under the root.
    pub by_process: bool,
    diff: Option<DiffRanges>,
    /// Compare with the baseline recording, when one is open.
    pub against_baseline: bool,
    search: String,
    /// Names from below the root to the zoomed frame; survives rebuilds.
    zoom: Vec<String>,
    cache: GraphCache<Settings, (StackQuery, Option<StackQuery>), FlameGraph>,
    /// The search text, the graph build it ran on, and its result.
    search_cache: Option<(String, u64, SearchResult)>,
    /// Bumped whenever the search result is recomputed.
    search_version: u64,
    /// The frames to draw, kept between frames.
    frames: FrameCache,
    painted: usize,
    export_dialog: Option<egui_file::FileDialog>,
    export_status: Option<String>,
}

impl Default for FlameView {
    fn default() -> Self {
        Self::new()
    }
}

impl FlameView {
    /// The last 10 s, live, as a flame graph split by process.
    pub fn new() -> Self {
        Self {
            filters: StackFilters::default(),
            layout: FlameLayout::default(),
            by_process: true,
            diff: None,
            against_baseline: true,
            search: String::new(),
            zoom: Vec::new(),
            cache: GraphCache::default(),
            search_cache: None,
            search_version: 0,
            frames: FrameCache::default(),
            painted: 0,
            export_dialog: None,
            export_status: None,
        }
    }

    /// The graph shown, once built.
    pub fn graph(&self) -> Option<&FlameGraph> {
        self.cache.get()
    }

    /// Whether a newer graph is being built (the previous one is shown).
    pub fn is_building(&self) -> bool {
        self.cache.is_building()
    }

    /// How long building the shown graph took.
    pub fn build_time(&self) -> Option<std::time::Duration> {
        self.cache.build_time()
    }

    /// The zoomed frame as names below the root (empty: not zoomed).
    pub fn zoom_path(&self) -> &[String] {
        &self.zoom
    }

    /// Zooms to the frame at `path` (names below the root).
    pub fn zoom_to(&mut self, path: Vec<String>) {
        self.zoom = path;
    }

    /// The search text.
    pub fn search(&self) -> &str {
        &self.search
    }

    /// Highlights frames whose names contain `text`, ignoring case.
    pub fn set_search(&mut self, text: impl Into<String>) {
        self.search = text.into();
    }

    /// The result of the current search on the shown graph, once drawn.
    pub fn search_result(&self) -> Option<&SearchResult> {
        self.search_cache
            .as_ref()
            .filter(|(text, builds, _)| *text == self.search && *builds == self.cache.builds())
            .map(|(_, _, result)| result)
    }

    /// Shows `[start_ns, end_ns)` (kernel ns), e.g. a selection on the
    /// timeline; in diff mode, as the comparison range.
    pub fn set_range(&mut self, start_ns: u64, end_ns: u64) {
        self.filters.set_range(start_ns, end_ns);
        if let Some(diff) = &mut self.diff {
            diff.comparison = (start_ns.min(end_ns), end_ns.max(start_ns));
        }
    }

    /// The ranges compared, in diff mode.
    pub fn diff(&self) -> Option<DiffRanges> {
        self.diff
    }

    /// Compares two ranges (`Some`), or shows one (`None`).
    pub fn set_diff(&mut self, diff: Option<DiffRanges>) {
        self.diff = diff;
    }

    /// Frames painted in the last frame drawn.
    pub fn painted_frames(&self) -> usize {
        self.painted
    }

    /// The sentence about the last export, if any.
    pub fn export_status(&self) -> Option<&str> {
        self.export_status.as_deref()
    }

    /// Writes the shown graph (filtered and sliced, not zoomed) as folded
    /// stacks, and remembers a sentence about how it went for the view.
    pub fn export_folded(&mut self, path: &Path) -> Result<usize, FoldedWriteError> {
        let result = match self.cache.get() {
            Some(graph) => graph.write_folded(path),
            None => FlameGraph::default().write_folded(path),
        };
        self.export_status = Some(match &result {
            Ok(lines) => format!(
                "Wrote {lines} folded stack{} to {}.",
                if *lines == 1 { "" } else { "s" },
                path.display()
            ),
            Err(err) => format!(
                "{}. Choose another file, in a folder you can write to.",
                capitalized(&err.to_string())
            ),
        });
        result
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut egui::Ui, model: &Model, commands: &mut CommandQueue) {
        let store = &model.stacks;
        self.toolbar_ui(ui, model);
        self.export_dialog_ui(ui.ctx(), commands);
        self.painted = 0;
        if store.is_empty() && self.filters.is_live() {
            ui.weak(NO_STACKS);
            return;
        }
        let baseline = model
            .browse
            .baseline
            .as_deref()
            .filter(|_| self.against_baseline && self.diff.is_none());
        self.refresh(ui.ctx(), store, baseline, model.clock().now());
        if let Some(baseline) = baseline {
            ui.weak(format!(
                "Compared with the baseline {}: red frames grew, blue frames shrank, each \
                 recording as a share of its own total.",
                baseline.path.display()
            ));
        }
        self.search_row_ui(ui);
        if self.cache.is_building() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak("Building the flame graph…");
            });
        }
        if let Some(status) = &self.export_status {
            ui.label(status);
        }
        let Self {
            cache,
            search_cache,
            search_version,
            frames,
            layout,
            zoom,
            search,
            painted,
            ..
        } = self;
        let Some(graph) = cache.get() else {
            return;
        };
        if graph.total() == 0 {
            ui.weak(NO_SAMPLES_IN_RANGE);
            return;
        }
        let zoom_node = deepest_existing(graph, zoom);
        ui.scope_builder(UiBuilder::new().accessibility_label(BREADCRUMBS), |ui| {
            if let Some(path) = breadcrumbs_ui(ui, graph, zoom_node) {
                *zoom = path;
            }
        });
        let search = search_cache
            .as_ref()
            .filter(|(text, _, _)| !text.trim().is_empty() && text == search)
            .map(|(_, _, result)| result);
        let clicked = ui
            .scope_builder(UiBuilder::new().accessibility_label(FRAMES), |ui| {
                let versions = (cache.builds(), *search_version);
                frames_ui(
                    ui, graph, versions, zoom_node, *layout, search, frames, painted,
                )
            })
            .inner;
        if let Some(node) = clicked {
            *zoom = graph.path(node);
        }
    }

    /// Rebuilds the graph if its inputs changed, and the search if it or
    /// the graph changed.
    fn refresh(
        &mut self,
        ctx: &egui::Context,
        store: &StackStore,
        against: Option<&microscope_model::Baseline>,
        now: Instant,
    ) {
        let settings = Settings {
            filters: self.filters.settings(),
            by_process: self.by_process,
            diff: self.diff,
            against_baseline: against.is_some(),
        };
        let base = self.filters.query(store);
        let queries = match self.diff {
            Some(diff) => (
                StackQuery::range(diff.comparison.0, diff.comparison.1)
                    .with_probe(base.probe)
                    .with_tgid(base.tgid),
                Some(
                    StackQuery::range(diff.baseline.0, diff.baseline.1)
                        .with_probe(base.probe)
                        .with_tgid(base.tgid),
                ),
            ),
            None => (base, None),
        };
        let options = BuildOptions {
            by_process: self.by_process,
            // Two recordings: the same programs ran with other process ids.
            by_command: against.is_some(),
        };
        self.cache.refresh(
            settings,
            store.generation(),
            queries,
            self.filters.is_live(),
            now,
            ctx,
            || {
                let (comparison, baseline) = queries;
                let comparison = store.slice(comparison);
                let baseline = match against {
                    // The other recording's whole profile.
                    Some(against) => Some(against.stacks.slice(StackQuery::all())),
                    None => baseline.map(|query| store.slice(query)),
                };
                let stacks = comparison.len() + baseline.as_ref().map_or(0, StackSlice::len);
                BuildJob {
                    inline: stacks <= INLINE_BUILD_MAX_STACKS,
                    run: Box::new(move || match baseline {
                        Some(baseline) => {
                            FlameGraph::differential_from_slices(&baseline, &comparison, options)
                        }
                        None => FlameGraph::from_slice(&comparison, options),
                    }),
                }
            },
        );
        let builds = self.cache.builds();
        let stale = self
            .search_cache
            .as_ref()
            .is_none_or(|(text, built, _)| *text != self.search || *built != builds);
        if stale && let Some(graph) = self.cache.get() {
            self.search_cache = Some((self.search.clone(), builds, graph.search(&self.search)));
            self.search_version += 1;
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, model: &Model) {
        let store = &model.stacks;
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.layout, FlameLayout::Flame, "Flame")
                .on_hover_text("Root at the bottom.");
            ui.selectable_value(&mut self.layout, FlameLayout::Icicle, "Icicle")
                .on_hover_text("Root at the top.");
            ui.add_space(theme::ITEM_GAP);
            if self.diff.is_none() {
                self.filters.range_ui(ui, store, "flame");
            }
            self.filters.probe_ui(ui, model, "flame");
            self.filters.process_ui(ui, store, "flame");
            self.filters.live_ui(ui, store);
            ui.checkbox(&mut self.by_process, "Split by process")
                .on_hover_text("Put each process as the first frame above the root.");
            if model.browse.baseline.is_some() && self.diff.is_none() {
                ui.checkbox(&mut self.against_baseline, "Against the baseline")
                    .on_hover_text(
                        "Colour what grew (red) and shrank (blue) since the baseline recording.",
                    );
            }
            let mut diff = self.diff.is_some();
            if ui
                .checkbox(&mut diff, "Diff")
                .on_hover_text(
                    "Compare two ranges: red frames grew, blue frames shrank \
                     (each range as a share of its own total).",
                )
                .changed()
            {
                self.diff = diff.then(|| default_diff(&self.filters, store));
            }
        });
        if let Some(diff) = &mut self.diff {
            ui.horizontal_wrapped(|ui| {
                ui.label("Baseline");
                range_fields_ui(ui, store, &mut diff.baseline.0, &mut diff.baseline.1);
                ui.add_space(theme::ITEM_GAP);
                ui.label("Comparison");
                range_fields_ui(ui, store, &mut diff.comparison.0, &mut diff.comparison.1);
            });
        }
    }

    fn search_row_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Search");
            ui.add(
                TextEdit::singleline(&mut self.search)
                    .hint_text("function name")
                    .desired_width(200.0),
            )
            .labelled_by(label.id);
            if let Some(result) = self.search_result()
                && !self.search.trim().is_empty()
            {
                ui.label(format!("matched: {:.1} %", 100.0 * result.share()))
                    .on_hover_text(format!(
                        "{} frames match; the samples under them (nested matches counted once) \
                         are this share of all samples.",
                        result.count()
                    ));
            }
            ui.add_space(theme::ITEM_GAP);
            if ui
                .add_enabled(
                    self.cache.get().is_some(),
                    egui::Button::new("Export folded…"),
                )
                .on_hover_text(
                    "Save the graph shown (this range and these filters) as folded stacks \
                     for FlameGraph or inferno.",
                )
                .clicked()
            {
                let mut dialog = egui_file::FileDialog::save_file()
                    .title("Export the flame graph as folded stacks")
                    .default_filename("microscope.folded");
                dialog.open();
                self.export_dialog = Some(dialog);
            }
        });
    }

    fn export_dialog_ui(&mut self, ctx: &egui::Context, commands: &mut CommandQueue) {
        let Some(dialog) = &mut self.export_dialog else {
            return;
        };
        if dialog.show(ctx).selected()
            && let Some(path) = dialog.path()
        {
            commands.send(Command::ExportFolded(path.to_owned()));
        }
        if !dialog.visible() {
            self.export_dialog = None;
        }
    }
}

/// The zoomed frame, or its deepest ancestor still in the graph.
fn deepest_existing(graph: &FlameGraph, path: &[String]) -> NodeId {
    let mut node = NodeId::ROOT;
    for name in path {
        match graph
            .children(node)
            .find(|&child| graph.name(child) == name)
        {
            Some(child) => node = child,
            None => break,
        }
    }
    node
}

/// The root and each ancestor of the zoomed frame as buttons; returns the
/// path to zoom to when one is clicked.
fn breadcrumbs_ui(ui: &mut egui::Ui, graph: &FlameGraph, zoom: NodeId) -> Option<Vec<String>> {
    let mut target = None;
    ui.horizontal_wrapped(|ui| {
        if zoom == NodeId::ROOT {
            ui.weak("Click a frame to zoom into it.");
            return;
        }
        for ancestor in graph.ancestors(zoom) {
            if ui
                .small_button(graph.name(ancestor))
                .on_hover_text("Zoom out to this frame.")
                .clicked()
            {
                target = Some(graph.path(ancestor));
            }
            ui.weak("›");
        }
        ui.strong(graph.name(zoom));
    });
    target
}

/// The frames to draw, with their names cut to fit and their colours:
/// kept while the graph, the search, the zoom and the width stay the same,
/// which is almost every frame, so drawing does not walk the graph.
#[derive(Default)]
struct FrameCache {
    key: Option<FrameCacheKey>,
    boxes: Vec<FrameBox>,
    /// Per box, its name cut to fit, if enough of it fits.
    labels: Vec<Option<String>>,
    colors: Vec<Color32>,
    rows: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct FrameCacheKey {
    /// Graph builds and search version.
    versions: (u64, u64),
    zoom: NodeId,
    width: f32,
    pixels_per_point: f32,
    char_width: f32,
}

impl FrameCache {
    fn update(&mut self, graph: &FlameGraph, search: Option<&SearchResult>, key: FrameCacheKey) {
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        graph.visible_frames(
            key.zoom,
            f64::from(key.width),
            MIN_FRAME_PIXELS / f64::from(key.pixels_per_point),
            &mut self.boxes,
        );
        self.rows = self.boxes.iter().map(|b| b.row + 1).max().unwrap_or(0);
        self.labels.clear();
        self.colors.clear();
        for frame in &self.boxes {
            let inner = frame.width as f32 - 1.0 - LABEL_PADDING;
            let fitting = (inner / key.char_width).floor().max(0.0) as usize;
            self.labels.push(
                (fitting >= MIN_LABEL_CHARS).then(|| truncated(graph.name(frame.node), fitting)),
            );
            self.colors.push(frame_color(graph, frame.node, search));
        }
    }
}

/// Paints the frames under `zoom`; returns the frame clicked.
#[expect(
    clippy::too_many_arguments,
    reason = "the view's fields, split so the graph can be borrowed alongside the cache"
)]
fn frames_ui(
    ui: &mut egui::Ui,
    graph: &FlameGraph,
    versions: (u64, u64),
    zoom: NodeId,
    layout: FlameLayout,
    search: Option<&SearchResult>,
    cache: &mut FrameCache,
    painted: &mut usize,
) -> Option<NodeId> {
    let mut clicked = None;
    let scroll = ScrollArea::vertical()
        .id_salt(("flame frames", layout == FlameLayout::Flame))
        .auto_shrink([false, false])
        .stick_to_bottom(layout == FlameLayout::Flame);
    scroll.show(ui, |ui| {
        let font = FontId::monospace(theme::FLAME_FONT_SIZE);
        let char_width = ui
            .painter()
            .fonts_mut(|fonts| fonts.glyph_width(&font, 'x'))
            .max(1.0);
        let width = ui.available_width();
        cache.update(
            graph,
            search,
            FrameCacheKey {
                versions,
                zoom,
                width,
                pixels_per_point: ui.ctx().pixels_per_point(),
                char_width,
            },
        );
        let height = (cache.rows as f32 * theme::FLAME_ROW_HEIGHT).max(ui.available_height());
        let (area, _) = ui.allocate_exact_size(Vec2::new(width, height), Sense::hover());
        let visible = ui.clip_rect().intersect(area);
        let painter = ui.painter_at(area);
        let base_id = ui.scope_id().with("frame");
        let mut hovered = None;
        let frames = cache.boxes.iter().zip(&cache.labels).zip(&cache.colors);
        for ((frame, label), &color) in frames {
            let top = match layout {
                FlameLayout::Icicle => area.top() + frame.row as f32 * theme::FLAME_ROW_HEIGHT,
                FlameLayout::Flame => {
                    area.bottom() - (frame.row + 1) as f32 * theme::FLAME_ROW_HEIGHT
                }
            };
            let left = area.left() + frame.x as f32;
            let frame_width = frame.width as f32;
            let gap = if frame_width >= MIN_GAP_WIDTH {
                1.0
            } else {
                0.0
            };
            let rect = Rect::from_min_max(
                Pos2::new(left, top + 1.0),
                Pos2::new(left + frame_width - gap, top + theme::FLAME_ROW_HEIGHT),
            );
            if !visible.intersects(rect) {
                continue;
            }
            *painted += 1;
            // Square corners: the cheapest rectangle to tessellate.
            painter.rect_filled(rect, 0.0, color);
            if let Some(label) = label {
                painter.text(
                    rect.left_center() + Vec2::new(LABEL_PADDING / 2.0, 0.0),
                    Align2::LEFT_CENTER,
                    label,
                    font.clone(),
                    theme::FLAME_TEXT,
                );
            }
            let response = ui.interact(rect, base_id.with(frame.node), Sense::click());
            response
                .widget_info(|| WidgetInfo::labeled(Role::Button, true, graph.label(frame.node)));
            if response.clicked() {
                clicked = Some(frame.node);
            }
            if response.hovered() {
                hovered = Some((frame.node, rect, response.id));
            }
        }
        if let Some((node, rect, id)) = hovered {
            painter.rect_stroke(
                rect,
                0.0,
                Stroke::new(1.5, theme::SELECTED_SLICE),
                StrokeKind::Inside,
            );
            // At once, not after egui's usual tooltip delay: moving along
            // the frames and reading each is how a flame graph is read.
            Tooltip::always_open(ui.ctx().clone(), ui.layer_id(), id, PopupAnchor::Pointer)
                .show(|ui| details_ui(ui, graph, node, zoom));
        }
    });
    clicked
}

fn frame_color(graph: &FlameGraph, node: NodeId, search: Option<&SearchResult>) -> egui::Color32 {
    if search.is_some_and(|result| result.matches(node)) {
        return theme::FLAME_MATCH;
    }
    if let Some(ratio) = graph.diff_ratio(node) {
        return theme::diff_color(ratio);
    }
    if node == NodeId::ROOT {
        theme::FLAME_ROOT
    } else {
        theme::flame_color(graph.name(node))
    }
}

/// The tooltip of a frame.
fn details_ui(ui: &mut egui::Ui, graph: &FlameGraph, node: NodeId, zoom: NodeId) {
    let details = graph.details(node, zoom);
    let unit = graph.unit();
    ui.strong(&details.name);
    ui.label(format!(
        "total: {} ({:.1} % of all{})",
        unit.format(details.values.total),
        details.percent_of_root,
        if zoom == NodeId::ROOT {
            String::new()
        } else {
            format!(", {:.1} % of the zoomed frame", details.percent_of_zoom)
        }
    ));
    ui.label(format!("self: {}", unit.format(details.values.self_value)));
    if let Some((baseline, percent)) = details.baseline {
        ui.label(format!(
            "baseline: {} ({percent:.1} % of the baseline), self {}",
            unit.format(baseline.total),
            unit.format(baseline.self_value)
        ));
        if let Some(ratio) = graph.diff_ratio(node) {
            let word = if ratio > 0.0 { "grew" } else { "shrank" };
            if ratio != 0.0 {
                ui.label(format!(
                    "its share {word} by {:.0} % of the larger share",
                    100.0 * ratio.abs()
                ));
            }
        }
    }
    ui.weak("Click to zoom in.");
}

/// `name` cut to `chars` characters, with `…` when cut.
fn truncated(name: &str, chars: usize) -> String {
    if name.chars().count() <= chars {
        return name.to_owned();
    }
    let mut out: String = name.chars().take(chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` with its first letter capitalised, to start a sentence.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The first ranges of diff mode: the range shown against the same length
/// just before it, or with no room before it, the older half of the
/// samples against the newer half.
fn default_diff(filters: &StackFilters, store: &StackStore) -> DiffRanges {
    let (first, last) = store.time_span().unwrap_or((0, 0));
    let data_end = last.saturating_add(1);
    let (start, end) = filters.resolved_range(store);
    let (start, end) = (start.clamp(first, data_end), end.clamp(first, data_end));
    let length = end - start;
    if length > 0 && start >= first.saturating_add(length) {
        DiffRanges {
            baseline: (start - length, start),
            comparison: (start, end),
        }
    } else {
        let middle = first + (data_end - first) / 2;
        DiffRanges {
            baseline: (first, middle),
            comparison: (middle, data_end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::stack_filters::TimeRange;

    #[test]
    fn names_are_cut_to_fit() {
        assert_eq!(truncated("vfs_read", 8), "vfs_read");
        assert_eq!(truncated("vfs_read", 5), "vfs_…");
        assert_eq!(truncated("é_long_name", 3), "é_…");
        assert_eq!(capitalized("could not"), "Could not");
        assert_eq!(capitalized(""), "");
    }

    #[test]
    fn diff_mode_starts_with_the_range_before_or_the_two_halves() {
        let mut store = StackStore::new();
        for t in [100, 200, 300, 400, 499] {
            store.add(t, 1, 1, "a", &[1], 1);
        }
        let mut filters = StackFilters::default();
        filters.set_range(300, 400);
        assert_eq!(
            default_diff(&filters, &store),
            DiffRanges {
                baseline: (200, 300),
                comparison: (300, 400)
            }
        );
        filters.range = TimeRange::All;
        assert_eq!(
            default_diff(&filters, &store),
            DiffRanges {
                baseline: (100, 300),
                comparison: (300, 500)
            }
        );
    }
}
