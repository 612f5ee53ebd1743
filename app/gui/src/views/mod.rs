//! One view per file. Each draws from the [`Model`](microscope_model::Model) and
//! reports what the user asked for as [`Command`](crate::command::Command)s.

mod banner;
pub(crate) mod cost_view;
mod cpu_timeline_view;
mod flame_view;
mod graph_cache;
mod histogram_view;
mod inspector_view;
mod map_view;
mod pack_view;
mod paths_view;
pub(crate) mod probes_panel;
mod replay_bar;
mod stack_filters;
mod status_bar;
mod timeline_view;
mod tools_view;

pub use banner::{banner_text, banner_ui};
pub use cost_view::{cost_ui, probe_cost_line_ui};
pub use cpu_timeline_view::{CpuTimelineState, cpu_timeline_ui, slice_label};
pub use flame_view::{
    BREADCRUMBS, DiffRanges, FRAMES, FlameLayout, FlameView, NO_SAMPLES_IN_RANGE, NO_STACKS,
};
pub use histogram_view::histogram_ui;
pub use inspector_view::{InspectorState, PAGE_EVENTS, inspector_ui};
pub use map_view::{MapState, map_ui};
pub use pack_view::{
    MACHINE_WIDE, PackViewState, has_verifier_log, pack_ui, verifier_log_button_ui,
    verifier_log_window_ui,
};
pub use paths_view::{CALL_GRAPH, PathsView};
pub use probes_panel::probes_ui;
pub use replay_bar::replay_bar_ui;
pub use stack_filters::{StackFilters, TimeRange};
pub use status_bar::status_bar_ui;
pub use timeline_view::timeline_ui;
pub use tools_view::{ToolsState, tools_buttons_ui, tools_windows_ui};

/// Accessibility labels of the app's regions, for screen readers and tests.
pub mod region {
    /// The top banner shown while not connected.
    pub const BANNER: &str = "Connection banner";
    /// The left panel with the probe checkboxes.
    pub const PROBES: &str = "Probe list";
    /// The events-per-second plot.
    pub const TIMELINE: &str = "Timeline";
    /// The syscall latency histogram.
    pub const LATENCY: &str = "Syscall latency";
    /// The replay bar (play, speed, scrubber) or the "Open recording…" row.
    pub const REPLAY: &str = "Replay";
    /// The bottom status bar.
    pub const STATUS: &str = "Status";
    /// The tabs above the central area.
    pub const TABS: &str = "Views";
    /// The per-CPU scheduler view.
    pub const CPU_TIMELINE: &str = "CPU timeline";
    /// The details of the slice selected in the CPU timeline.
    pub const SLICE_DETAILS: &str = "Slice details";
    /// The subsystem map.
    pub const MAP: &str = "Subsystem map";
    /// The event inspector.
    pub const INSPECTOR: &str = "Event inspector";
    /// The details of the subsystem selected on the map.
    pub const MAP_DETAILS: &str = "Subsystem details";
    /// The flame graph view.
    pub const FLAME: &str = "Flame graph";
    /// The paths (call graph) view.
    pub const PATHS: &str = "Call paths";
    /// Pack probes' counter tables and histograms.
    pub const PACKS: &str = "Pack maps";
    /// The Cost view.
    pub const COST: &str = "Cost view";
    /// The Cost view's table, a row per attached probe.
    pub const COST_TABLE: &str = "Cost table";
}
