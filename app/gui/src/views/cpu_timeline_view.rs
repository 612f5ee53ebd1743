//! The CPU timeline: one lane per CPU, one rectangle per task's stay on it.
//!
//! Painted directly (not with `egui_plot`) because a busy machine makes
//! thousands of slices per second per CPU. Each frame costs about the same
//! whatever is kept in memory:
//!
//! - each lane finds its visible slices with two binary searches;
//! - when a lane has more visible slices than twice its width in pixels, it
//!   is drawn per pixel column instead (the slice under each column's centre,
//!   equal neighbours merged), so the cost is bounded by the width;
//! - otherwise each visible slice is one rectangle, and those at least
//!   [`MIN_INTERACTIVE_WIDTH`] wide become widgets (so tests and screen
//!   readers can find and click them), at most [`MAX_INTERACTIVE_SLICES`] per
//!   frame. Narrower slices are still clickable: a click on the lane picks the
//!   slice under the pointer by time.

use crate::command::{Command, CommandQueue};
use crate::theme;
use crate::views::region;
use egui::accesskit::Role;
use egui::{
    Align2, FontId, PopupAnchor, Pos2, Rect, Sense, Stroke, StrokeKind, Tooltip, UiBuilder, Vec2,
    WidgetInfo,
};
use microscope_model::{CpuTimeline, CpuWindow, RecordingOverview, Slice, SliceKey};
use microscope_model::{Model, SCHED_SWITCH, format_count, format_duration_ns};
use microscope_sources::BrowseRequest;
use std::time::Instant;

/// Seconds in view while following live data, until the user zooms.
pub const LIVE_SPAN_SECS: f64 = 10.0;
/// Narrowest span the user can zoom to (10 µs).
const MIN_SPAN_SECS: f64 = 1e-5;
/// Widest span the user can zoom to.
const MAX_SPAN_SECS: f64 = 600.0;
/// Slices at least this wide (points) are widgets of their own.
pub const MIN_INTERACTIVE_WIDTH: f32 = 4.0;
/// At most this many slice widgets per frame; registering a widget costs far
/// more than painting a rectangle.
pub const MAX_INTERACTIVE_SLICES: usize = 600;
/// Slices at least this wide (points) show their command name.
const MIN_LABEL_WIDTH: f32 = 36.0;
/// Height kept for the details under the lanes, in points.
const DETAILS_HEIGHT: f32 = 120.0;
/// A replayed recording's slices are read from the file when the view
/// holds at most this many switches (over all CPUs); wider views draw the
/// recording's overview.
pub const WINDOW_SWITCHES: u64 = 500_000;
/// Sensitivity of mouse-wheel zoom (per point scrolled).
const WHEEL_ZOOM_PER_POINT: f64 = 0.005;

/// What the CPU timeline remembers between frames: the time in view and the
/// selected slice. It is the view's own state, like a scroll position, so the
/// view changes it directly; only requests for the rest of the app go
/// through [`Command`]s.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTimelineState {
    /// Keep the newest data at the right edge.
    pub follow_live: bool,
    /// Width of the view, in seconds.
    pub span_secs: f64,
    /// Right edge while not following, in seconds since the model's epoch.
    pub end_secs: f64,
    /// The slice whose details are shown.
    pub selected: Option<SliceKey>,
    /// The range of slices last asked of the recording's browser (kernel ns).
    pub requested: Option<(u64, u64)>,
}

impl Default for CpuTimelineState {
    fn default() -> Self {
        Self {
            follow_live: true,
            span_secs: LIVE_SPAN_SECS,
            end_secs: 0.0,
            selected: None,
            requested: None,
        }
    }
}

/// The accessible name of a slice, e.g. `cpu 1: bash 1234 (2.10 ms)`.
pub fn slice_label(cpu: &CpuTimeline, key: SliceKey, slice: &Slice) -> String {
    let duration = format_duration_ns(slice.duration_ns());
    if slice.is_idle() {
        format!("cpu {}: idle ({duration})", key.cpu)
    } else {
        format!(
            "cpu {}: {} {} ({duration})",
            key.cpu,
            cpu.comm(slice.comm),
            slice.pid
        )
    }
}

/// Draws the CPU timeline.
pub fn cpu_timeline_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &mut CpuTimelineState,
    now: Instant,
    commands: &mut CommandQueue,
) {
    ui.horizontal(|ui| {
        ui.strong("Tasks on each CPU");
        ui.add_space(theme::ITEM_GAP);
        ui.checkbox(&mut state.follow_live, "Follow live")
            .on_hover_text("Keep the newest switches in view; untick, drag or scroll to explore.");
        ui.add_space(theme::ITEM_GAP);
        ui.weak("Scroll to zoom, drag to pan, click a slice for details.");
    });
    enable_hint_ui(ui, model, commands);
    let cpu = &model.cpu;
    // A replayed recording is browsed from its file once its overview is
    // read: every moment of it, not only what playing kept in memory.
    let overview = model
        .browse
        .overview
        .as_deref()
        .filter(|o| model.is_replay() && o.anchor.is_some());
    if model.is_replay() && overview.is_none() && model.browse.error.is_none() {
        ui.weak(format!(
            "Reading the recording to browse all of it: {:.0} %. Meanwhile this shows what \
             was played.",
            model.browse.progress * 100.0
        ));
    }
    if cpu.is_empty() && overview.is_none() {
        ui.weak("No context switches yet.");
        return;
    }
    // Following keeps the newest event at the right edge rather than the
    // clock: batches arrive up to ~50 ms late, which would leave an empty
    // strip at the edge, wide when zoomed in.
    let live_edge_secs = cpu
        .secs_of(cpu.latest_ns())
        .or_else(|| overview.and_then(|o| o.secs_of(o.start_ns)))
        .unwrap_or_else(|| model.timeline.secs_since_epoch(now));
    if state.follow_live {
        state.end_secs = live_edge_secs;
    }
    let shown = match overview {
        Some(overview) => {
            browse_hint_ui(ui, overview, model.browse.cpu_window.as_deref(), state);
            let source = Source::Recording {
                overview,
                window: model.browse.cpu_window.as_deref(),
            };
            lanes_ui(ui, source, state, live_edge_secs, commands)
        }
        None => lanes_ui(ui, Source::Memory(cpu), state, live_edge_secs, commands),
    };
    ui.add_space(theme::SECTION_GAP);
    ui.scope_builder(
        UiBuilder::new().accessibility_label(region::SLICE_DETAILS),
        |ui| details_ui(ui, model, shown.unwrap_or(cpu), state),
    );
}

/// Where the lanes' slices come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// What live data (or playing a recording) kept in memory.
    Memory(&'a CpuTimeline),
    /// A recording read from its file: the overview, and the slices of the
    /// range last read.
    Recording {
        overview: &'a RecordingOverview,
        window: Option<&'a CpuWindow>,
    },
}

/// One line on what a browsed recording's lanes show.
fn browse_hint_ui(
    ui: &mut egui::Ui,
    overview: &RecordingOverview,
    window: Option<&CpuWindow>,
    state: &CpuTimelineState,
) {
    let (Some(from_ns), Some(to_ns)) = (
        overview.ns_at(state.end_secs - state.span_secs),
        overview.ns_at(state.end_secs),
    ) else {
        return;
    };
    let switches = overview.switches_between(from_ns, to_ns);
    let text = if window.is_some_and(|w| w.covers(from_ns, to_ns)) {
        format!(
            "Every slice of the {} switches in view, read from the recording.",
            format_count(switches)
        )
    } else if switches <= WINDOW_SWITCHES {
        "Reading the slices in view from the recording…".to_owned()
    } else {
        format!(
            "Overview of the recording: {} switches in view; each column shows how busy the \
             CPU was and the task with the longest stay. Zoom in to see every slice.",
            format_count(switches)
        )
    };
    ui.weak(text);
}

/// Says how to get data when `sched:sched_switch` is off, with a button that
/// enables it.
fn enable_hint_ui(ui: &mut egui::Ui, model: &Model, commands: &mut CommandQueue) {
    let probe = model.probe(SCHED_SWITCH);
    if probe.is_some_and(|p| p.enabled) {
        return;
    }
    match probe {
        None if model.probes.is_empty() => {
            ui.weak("The CPU timeline appears once the helper is connected.");
        }
        None => {
            ui.weak(format!(
                "This helper offers no `{SCHED_SWITCH}` probe, which the CPU timeline is built from."
            ));
        }
        Some(probe) => match &probe.unavailable_reason {
            Some(reason) => {
                ui.weak(format!(
                    "`{SCHED_SWITCH}` is unavailable on this kernel, so there is no CPU timeline: {reason}"
                ));
            }
            None if model.wanted.contains(SCHED_SWITCH) => {
                ui.weak(format!(
                    "Waiting for the helper to enable `{SCHED_SWITCH}`…"
                ));
            }
            None => {
                ui.horizontal_wrapped(|ui| {
                    ui.label(format!(
                        "The CPU timeline is built from context switches: enable `{SCHED_SWITCH}` \
                         to see which task runs on each CPU."
                    ));
                    if ui.button(format!("Enable {SCHED_SWITCH}")).clicked() {
                        commands.send(Command::SetProbeEnabled {
                            probe: SCHED_SWITCH.to_owned(),
                            enabled: true,
                        });
                    }
                });
            }
        },
    }
}

/// Maps between seconds and x for the lanes.
#[derive(Clone, Copy)]
struct TimeAxis {
    start_secs: f64,
    span_secs: f64,
    left: f32,
    width: f32,
}

impl TimeAxis {
    fn x_of(self, secs: f64) -> f32 {
        self.left + ((secs - self.start_secs) / self.span_secs) as f32 * self.width
    }

    fn secs_at(self, x: f32) -> f64 {
        self.start_secs + f64::from((x - self.left) / self.width) * self.span_secs
    }
}

/// Where the lanes are: the whole area, the plot right of the CPU labels,
/// and one lane per CPU.
struct Lanes {
    rect: Rect,
    plot: Rect,
    lane_height: f32,
    cpus: Vec<u32>,
}

impl Lanes {
    /// The lane of the CPU in `row`.
    fn lane(&self, row: usize) -> Rect {
        let top = self.plot.top() + row as f32 * (self.lane_height + theme::CPU_LANE_GAP);
        Rect::from_min_max(
            Pos2::new(self.plot.left(), top),
            Pos2::new(self.plot.right(), top + self.lane_height),
        )
    }
}

/// Draws one lane per CPU with its slices, the time axis, and the tooltip
/// and selection of the slice under the pointer.
fn lanes_ui<'a>(
    ui: &mut egui::Ui,
    source: Source<'a>,
    state: &mut CpuTimelineState,
    live_edge_secs: f64,
    commands: &mut CommandQueue,
) -> Option<&'a CpuTimeline> {
    let cpus: Vec<u32> = match source {
        Source::Memory(cpu) => cpu.cpus().collect(),
        Source::Recording { overview, .. } => overview.cpus().collect(),
    };
    let (lanes, background) = allocate_lanes(ui, cpus)?;
    pan_and_zoom(
        ui,
        &background,
        lanes.rect,
        lanes.plot,
        state,
        live_edge_secs,
    );
    let axis = TimeAxis {
        start_secs: state.end_secs - state.span_secs,
        span_secs: state.span_secs,
        left: lanes.plot.left(),
        width: lanes.plot.width(),
    };
    let painter = ui.painter_at(lanes.rect);
    let cpu = match source {
        Source::Memory(cpu) => Some(cpu),
        Source::Recording { overview, window } => {
            recording_slices(overview, window, axis, state, commands)
        }
    };
    let Some(cpu) = cpu else {
        // Zoomed out over a recording: its overview, column by column.
        if let Source::Recording { overview, .. } = source {
            for (row, &cpu_id) in lanes.cpus.iter().enumerate() {
                let lane = lanes.lane(row);
                paint_lane_background(&painter, lanes.rect, lane, cpu_id);
                paint_overview(&painter, overview, cpu_id, lane, axis);
            }
            time_axis_ui(&painter, lanes.plot, lanes.rect.bottom(), axis);
            overview_pointer_ui(ui, &background, &lanes, overview, axis);
        }
        return None;
    };
    let mut interactive = 0;
    for (row, &cpu_id) in lanes.cpus.iter().enumerate() {
        let lane = lanes.lane(row);
        paint_lane_background(&painter, lanes.rect, lane, cpu_id);
        let (Some(from_ns), Some(to_ns)) = (
            cpu.ns_at(axis.start_secs),
            cpu.ns_at(axis.start_secs + axis.span_secs),
        ) else {
            continue;
        };
        if cpu.count_overlapping(cpu_id, from_ns, to_ns) as f32 > 2.0 * lanes.plot.width() {
            paint_columns(&painter, cpu, cpu_id, lane, axis);
        } else {
            let visible = VisibleSlices {
                cpu_id,
                from_ns,
                to_ns,
                lane,
                axis,
            };
            slices_ui(
                ui,
                &painter,
                &lanes,
                &background,
                cpu,
                visible,
                &mut interactive,
                state,
            );
        }
        paint_selection(&painter, cpu, state, cpu_id, lane, axis);
    }
    time_axis_ui(&painter, lanes.plot, lanes.rect.bottom(), axis);
    pointer_ui(ui, &background, &lanes, cpu, axis, state);
    Some(cpu)
}

/// The slices to draw of a recording: those read from the file when they
/// cover the view; `None` (draw the overview) otherwise, after asking the
/// browser for them when the view is narrow enough.
fn recording_slices<'a>(
    overview: &RecordingOverview,
    window: Option<&'a CpuWindow>,
    axis: TimeAxis,
    state: &mut CpuTimelineState,
    commands: &mut CommandQueue,
) -> Option<&'a CpuTimeline> {
    let from_ns = overview.ns_at(axis.start_secs)?;
    let to_ns = overview.ns_at(axis.start_secs + axis.span_secs)?;
    if let Some(window) = window.filter(|w| w.covers(from_ns, to_ns)) {
        return Some(&window.timeline);
    }
    if overview.switches_between(from_ns, to_ns) > WINDOW_SWITCHES {
        return None;
    }
    let asked = state
        .requested
        .is_some_and(|(from, to)| from <= from_ns && to_ns <= to);
    if !asked {
        // Half a view more on each side, so a little panning reads nothing.
        let margin = (to_ns - from_ns) / 2;
        let wide = (from_ns.saturating_sub(margin), to_ns.saturating_add(margin));
        let range = if overview.switches_between(wide.0, wide.1) <= 2 * WINDOW_SWITCHES {
            wide
        } else {
            (from_ns, to_ns)
        };
        state.requested = Some(range);
        commands.send(Command::Browse(BrowseRequest::CpuWindow {
            from_ns: range.0,
            to_ns: range.1,
        }));
    }
    None
}

/// Draws a lane of a recording's overview: per pixel column, a bar as high
/// as the CPU was busy, in the colour of the task with the longest stay.
fn paint_overview(
    painter: &egui::Painter,
    overview: &RecordingOverview,
    cpu_id: u32,
    lane: Rect,
    axis: TimeAxis,
) {
    let pixels_per_point = painter.pixels_per_point();
    let columns = (lane.width() * pixels_per_point).ceil() as usize;
    let column_width = 1.0 / pixels_per_point;
    let height = lane.height() - 2.0;
    let mut run: Option<(f32, f32, egui::Color32)> = None;
    let flush = |run: Option<(f32, f32, egui::Color32)>, x_end: f32| {
        if let Some((x_start, top, color)) = run {
            painter.rect_filled(
                Rect::from_min_max(
                    Pos2::new(x_start, top),
                    Pos2::new(x_end, lane.bottom() - 1.0),
                ),
                0.0,
                color,
            );
        }
    };
    for column in 0..columns {
        let x = lane.left() + column as f32 * column_width;
        let bar = overview
            .ns_at(axis.secs_at(x))
            .zip(overview.ns_at(axis.secs_at(x + column_width)))
            .and_then(|(from, to)| overview.column(cpu_id, from, to.max(from + 1)))
            .filter(|c| c.busy > 0.0)
            .map(|c| {
                // Whole pixels, so equal neighbours merge.
                let bar = (c.busy * height * pixels_per_point).round().max(1.0) / pixels_per_point;
                let color = if c.pid == 0 {
                    theme::IDLE_SLICE
                } else {
                    theme::process_color(c.tgid)
                };
                (lane.bottom() - 1.0 - bar, color)
            });
        match (run, bar) {
            (Some((_, top, color)), Some(bar)) if (top, color) == bar => {}
            (_, bar) => {
                flush(run, x);
                run = bar.map(|(top, color)| (x, top, color));
            }
        }
    }
    flush(run, lane.right());
}

/// The tooltip over a recording's overview: the column under the pointer.
fn overview_pointer_ui(
    ui: &egui::Ui,
    background: &egui::Response,
    lanes: &Lanes,
    overview: &RecordingOverview,
    axis: TimeAxis,
) {
    if background.dragged() || !ui.rect_contains_pointer(lanes.plot) {
        return;
    }
    let Some(pos) = ui.ctx().pointer_hover_pos() else {
        return;
    };
    let Some(row) = (0..lanes.cpus.len()).find(|&row| lanes.lane(row).contains(pos)) else {
        return;
    };
    let Some(&cpu_id) = lanes.cpus.get(row) else {
        return;
    };
    let pixel = 1.0 / ui.ctx().pixels_per_point();
    let column = overview
        .ns_at(axis.secs_at(pos.x))
        .zip(overview.ns_at(axis.secs_at(pos.x + pixel)))
        .and_then(|(from, to)| overview.column(cpu_id, from, to.max(from + 1)));
    let Some(column) = column else {
        return;
    };
    Tooltip::always_open(
        ui.ctx().clone(),
        ui.layer_id(),
        background.id,
        PopupAnchor::Pointer,
    )
    .show(|ui| {
        ui.label(format!(
            "cpu {cpu_id} at {:.3} s: busy {:.0} %, {} switches",
            axis.secs_at(pos.x),
            column.busy * 100.0,
            format_count(column.switches)
        ));
        if column.pid != 0 {
            ui.label(format!(
                "longest stay: {} {}",
                overview.comm_of(column.pid),
                column.pid
            ));
        }
        ui.weak("Zoom in to see every slice.");
    });
}

/// Allocates room for one lane per CPU and the time axis; `None` when too
/// narrow to draw.
fn allocate_lanes(ui: &mut egui::Ui, cpus: Vec<u32>) -> Option<(Lanes, egui::Response)> {
    let rows = cpus.len().max(1) as f32;
    let room = (ui.available_height() - DETAILS_HEIGHT - theme::TIME_AXIS_HEIGHT).max(rows * 8.0);
    let lane_height = (room / rows - theme::CPU_LANE_GAP).clamp(6.0, theme::CPU_LANE_HEIGHT);
    let height = rows * (lane_height + theme::CPU_LANE_GAP) + theme::TIME_AXIS_HEIGHT;
    let (rect, background) = ui.allocate_exact_size(
        Vec2::new(ui.available_width(), height),
        Sense::click_and_drag(),
    );
    let plot = Rect::from_min_max(
        Pos2::new(rect.left() + theme::CPU_LANE_LABEL_WIDTH, rect.top()),
        Pos2::new(rect.right(), rect.bottom() - theme::TIME_AXIS_HEIGHT),
    );
    (plot.width() >= 1.0).then_some((
        Lanes {
            rect,
            plot,
            lane_height,
            cpus,
        },
        background,
    ))
}

/// The lane's fill and its `CPU n` label.
fn paint_lane_background(painter: &egui::Painter, area: Rect, lane: Rect, cpu_id: u32) {
    painter.rect_filled(lane, 0.0, theme::CPU_LANE_FILL);
    painter.text(
        Pos2::new(area.left() + 4.0, lane.center().y),
        Align2::LEFT_CENTER,
        format!("CPU {cpu_id}"),
        FontId::proportional(12.0),
        theme::AXIS_TEXT,
    );
}

/// The slices of one CPU in view, and where they are drawn.
#[derive(Clone, Copy)]
struct VisibleSlices {
    cpu_id: u32,
    from_ns: u64,
    to_ns: u64,
    lane: Rect,
    axis: TimeAxis,
}

/// Paints each slice in view with its task name when wide enough, and
/// makes the wide ones clickable widgets (at most
/// [`MAX_INTERACTIVE_SLICES`] per frame, counted in `interactive`).
#[expect(
    clippy::too_many_arguments,
    reason = "the drawing context of one lane; a struct would only rename them"
)]
fn slices_ui(
    ui: &mut egui::Ui,
    painter: &egui::Painter,
    lanes: &Lanes,
    background: &egui::Response,
    cpu: &CpuTimeline,
    visible: VisibleSlices,
    interactive: &mut usize,
    state: &mut CpuTimelineState,
) {
    let VisibleSlices {
        cpu_id,
        from_ns,
        to_ns,
        lane,
        axis,
    } = visible;
    for slice in cpu.overlapping(cpu_id, from_ns, to_ns) {
        let key = SliceKey {
            cpu: cpu_id,
            start_ns: slice.start_ns,
        };
        let Some(slice_rect) = slice_rect(cpu, &slice, lane, axis) else {
            continue;
        };
        painter.rect_filled(slice_rect, 0.0, slice_color(&slice));
        if slice_rect.width() >= MIN_LABEL_WIDTH {
            painter
                .with_clip_rect(slice_rect.intersect(lanes.rect))
                .text(
                    slice_rect.left_center() + Vec2::new(3.0, 0.0),
                    Align2::LEFT_CENTER,
                    cpu.task_name(&slice),
                    FontId::proportional(11.0),
                    if slice.is_idle() {
                        theme::IDLE_SLICE_TEXT
                    } else {
                        theme::SLICE_TEXT
                    },
                );
        }
        if slice_rect.width() >= MIN_INTERACTIVE_WIDTH && *interactive < MAX_INTERACTIVE_SLICES {
            *interactive += 1;
            let id = background.id.with((key.cpu, key.start_ns));
            let response = ui.interact(slice_rect, id, Sense::click());
            response.widget_info(|| {
                WidgetInfo::labeled(Role::Button, true, slice_label(cpu, key, &slice))
            });
            if response.clicked() {
                state.selected = Some(key);
            }
        }
    }
}

/// Outlines the selected slice if it is on this CPU.
fn paint_selection(
    painter: &egui::Painter,
    cpu: &CpuTimeline,
    state: &CpuTimelineState,
    cpu_id: u32,
    lane: Rect,
    axis: TimeAxis,
) {
    if let Some(key) = state.selected.filter(|key| key.cpu == cpu_id)
        && let Some(slice) = cpu.find(key)
        && let Some(selected) = slice_rect(cpu, &slice, lane, axis)
    {
        painter.rect_stroke(
            selected.expand(1.0),
            0.0,
            Stroke::new(2.0, theme::SELECTED_SLICE),
            StrokeKind::Outside,
        );
    }
}

/// Clicks between widgets (narrow slices) select, and hovering anywhere
/// shows, the slice under the pointer, found by time.
fn pointer_ui(
    ui: &egui::Ui,
    background: &egui::Response,
    lanes: &Lanes,
    cpu: &CpuTimeline,
    axis: TimeAxis,
    state: &mut CpuTimelineState,
) {
    let slice_under = |pos: Pos2| slice_under(lanes, cpu, axis, pos);
    if background.clicked() {
        state.selected = background
            .interact_pointer_pos()
            .and_then(slice_under)
            .map(|(key, _)| key);
    }
    if !background.dragged()
        && let Some(pos) = ui.ctx().pointer_hover_pos()
        && ui.rect_contains_pointer(lanes.plot)
        && let Some((key, slice)) = slice_under(pos)
    {
        Tooltip::always_open(
            ui.ctx().clone(),
            ui.layer_id(),
            background.id,
            PopupAnchor::Pointer,
        )
        .show(|ui| {
            ui.label(slice_label(cpu, key, &slice));
            ui.weak(format!("left: {}", slice.left.word()));
        });
    }
}

/// The slice at `pos`, by lane and time.
fn slice_under(
    lanes: &Lanes,
    cpu: &CpuTimeline,
    axis: TimeAxis,
    pos: Pos2,
) -> Option<(SliceKey, Slice)> {
    let row = (0..lanes.cpus.len()).find(|&row| lanes.lane(row).contains(pos))?;
    let cpu_id = *lanes.cpus.get(row)?;
    let slice = cpu.slice_at(cpu_id, cpu.ns_at(axis.secs_at(pos.x))?)?;
    Some((
        SliceKey {
            cpu: cpu_id,
            start_ns: slice.start_ns,
        },
        slice,
    ))
}

/// Scroll or pinch zooms (around the pointer; at the right edge while
/// following), drag and horizontal scroll pan.
fn pan_and_zoom(
    ui: &mut egui::Ui,
    background: &egui::Response,
    rect: Rect,
    plot: Rect,
    state: &mut CpuTimelineState,
    live_edge_secs: f64,
) {
    let seconds_per_point = state.span_secs / f64::from(plot.width());
    if background.dragged() {
        let dx = f64::from(background.drag_delta().x);
        if dx != 0.0 {
            state.follow_live = false;
            state.end_secs -= dx * seconds_per_point;
        }
    }
    if !ui.rect_contains_pointer(rect) {
        return;
    }
    let (scroll, pinch, pointer) = ui.input_mut(|input| {
        let scroll = input.smooth_scroll_delta;
        // Ours: nothing around the timeline should scroll too.
        input.smooth_scroll_delta = Vec2::ZERO;
        (scroll, input.zoom_delta(), input.pointer.hover_pos())
    });
    if scroll.x != 0.0 {
        state.follow_live = false;
        state.end_secs -= f64::from(scroll.x) * seconds_per_point;
    }
    let factor = f64::from(pinch) * (f64::from(scroll.y) * WHEEL_ZOOM_PER_POINT).exp();
    if factor != 1.0 && factor.is_finite() && factor > 0.0 {
        let span = (state.span_secs / factor).clamp(MIN_SPAN_SECS, MAX_SPAN_SECS);
        if !state.follow_live
            && let Some(pointer) = pointer
        {
            // Keep the time under the pointer where it is.
            let fraction = f64::from(((pointer.x - plot.left()) / plot.width()).clamp(0.0, 1.0));
            let at = state.end_secs - state.span_secs * (1.0 - fraction);
            state.end_secs = at + span * (1.0 - fraction);
        }
        state.span_secs = span;
    }
    if state.follow_live {
        state.end_secs = live_edge_secs;
    }
}

fn slice_color(slice: &Slice) -> egui::Color32 {
    if slice.is_idle() {
        theme::IDLE_SLICE
    } else {
        theme::process_color(slice.tgid)
    }
}

/// Where a slice is drawn in `lane`: clipped to it, at least one point wide;
/// `None` when it is out of view.
fn slice_rect(cpu: &CpuTimeline, slice: &Slice, lane: Rect, axis: TimeAxis) -> Option<Rect> {
    let left = axis.x_of(cpu.secs_of(slice.start_ns)?).max(lane.left());
    let right = axis.x_of(cpu.secs_of(slice.end_ns)?).min(lane.right());
    if right < lane.left() || left > lane.right() {
        return None;
    }
    // A one-point gap between wide slices, so two threads of one process
    // (one colour) read as two slices.
    let right = if right - left >= 4.0 {
        right - 1.0
    } else {
        right.max(left + 1.0)
    };
    Some(Rect::from_min_max(
        Pos2::new(left, lane.top() + 1.0),
        Pos2::new(right, lane.bottom() - 1.0),
    ))
}

/// Draws a lane too dense for one rectangle per slice: per pixel column, the
/// slice under the column's centre, equal neighbours merged.
fn paint_columns(
    painter: &egui::Painter,
    cpu: &CpuTimeline,
    cpu_id: u32,
    lane: Rect,
    axis: TimeAxis,
) {
    let pixels_per_point = painter.pixels_per_point();
    let columns = (lane.width() * pixels_per_point).ceil() as usize;
    let column_width = 1.0 / pixels_per_point;
    let mut run: Option<(f32, egui::Color32)> = None;
    let flush = |run: Option<(f32, egui::Color32)>, x_end: f32| {
        if let Some((x_start, color)) = run {
            painter.rect_filled(
                Rect::from_min_max(
                    Pos2::new(x_start, lane.top() + 1.0),
                    Pos2::new(x_end, lane.bottom() - 1.0),
                ),
                0.0,
                color,
            );
        }
    };
    for column in 0..columns {
        let x = lane.left() + column as f32 * column_width;
        let color = cpu
            .ns_at(axis.secs_at(x + column_width / 2.0))
            .and_then(|ns| cpu.slice_at(cpu_id, ns))
            .map(|slice| slice_color(&slice));
        match (run, color) {
            (Some((_, run_color)), Some(color)) if run_color == color => {}
            (_, color) => {
                flush(run, x);
                run = color.map(|color| (x, color));
            }
        }
    }
    flush(run, lane.right());
}

/// Ticks and labels under the lanes, about every 110 points.
fn time_axis_ui(painter: &egui::Painter, plot: Rect, bottom: f32, axis: TimeAxis) {
    let step = nice_step(axis.span_secs * 110.0 / f64::from(axis.width));
    let decimals = (-step.log10()).ceil().max(0.0) as usize;
    let first = (axis.start_secs / step).ceil() as i64;
    let last = ((axis.start_secs + axis.span_secs) / step).floor() as i64;
    for tick in first..=last {
        let secs = tick as f64 * step;
        let x = axis.x_of(secs);
        // A label cut by the edge reads as another number.
        if x > plot.right() - 24.0 {
            continue;
        }
        painter.vline(
            x,
            plot.bottom()..=plot.bottom() + 4.0,
            Stroke::new(1.0, theme::AXIS_TEXT),
        );
        painter.text(
            Pos2::new(x, bottom),
            Align2::CENTER_BOTTOM,
            format!("{secs:.decimals$} s"),
            FontId::proportional(11.0),
            theme::AXIS_TEXT,
        );
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Seconds on the app's axis, to the microsecond.
fn format_secs(cpu: &CpuTimeline, ts_ns: u64) -> String {
    cpu.secs_of(ts_ns)
        .map_or_else(|| "?".to_owned(), |secs| format!("{secs:.6} s"))
}

fn details_ui(ui: &mut egui::Ui, model: &Model, cpu: &CpuTimeline, state: &mut CpuTimelineState) {
    let Some(key) = state.selected else {
        ui.weak("Click a slice to see the task, its wake-up and why it left the CPU.");
        return;
    };
    let Some(slice) = cpu.find(key) else {
        ui.weak("The selected slice is no longer kept in memory.");
        return;
    };
    ui.horizontal(|ui| {
        if slice.is_idle() {
            ui.strong(format!(
                "CPU {}'s idle task ({})",
                key.cpu,
                cpu.comm(slice.comm)
            ));
        } else {
            ui.strong(format!(
                "{} (pid {}, tgid {}, prio {})",
                cpu.comm(slice.comm),
                slice.pid,
                slice.tgid,
                slice.prio
            ));
        }
        if ui.small_button("Close").clicked() {
            state.selected = None;
        }
    });
    let duration = format_duration_ns(slice.duration_ns());
    let start = format_secs(cpu, slice.start_ns);
    if slice.left == microscope_model::LeaveState::StillRunning {
        ui.label(format!(
            "On CPU {} since {start}: {duration} so far.",
            key.cpu
        ));
    } else {
        ui.label(format!(
            "On CPU {} from {start} to {}: {duration}.",
            key.cpu,
            format_secs(cpu, slice.end_ns)
        ));
    }
    match slice.wakeup {
        Some(wakeup) => {
            let waker = if wakeup.waker_pid == 0 {
                format!(
                    "CPU {}'s idle task (an interrupt, or a wake-up sent from another CPU)",
                    wakeup.cpu
                )
            } else {
                format!("{} (pid {})", cpu.comm(wakeup.waker_comm), wakeup.waker_pid)
            };
            ui.label(format!(
                "Woken by {waker} at {} on CPU {}, queued for CPU {}; it waited {} to run.",
                format_secs(cpu, wakeup.ts_ns),
                wakeup.cpu,
                wakeup.target_cpu,
                format_duration_ns(slice.wakeup_latency_ns().unwrap_or_default())
            ));
        }
        None if slice.is_idle() => {}
        None if model.probe("sched:sched_wakeup").is_some_and(|p| p.enabled) => {
            ui.label(
                "No wake-up before it: it was already runnable (preempted or yielding), \
                 or it is a new task (fork wakes it without `sched_wakeup`).",
            );
        }
        None => {
            ui.weak("Enable `sched:sched_wakeup` to see who woke it.");
        }
    }
    let left = slice.left;
    let code = left
        .code()
        .map(|code| format!(" ({code})"))
        .unwrap_or_default();
    ui.label(format!(
        "Left the CPU: {}{code}: {}.",
        left.word(),
        left.explanation()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.2), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert!((nice_step(0.0031) - 0.005).abs() < 1e-12);
        assert_eq!(nice_step(60.0), 100.0);
    }
}
