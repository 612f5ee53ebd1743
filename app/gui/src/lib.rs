//! Microscope's window: the egui views over the model, fed by the live
//! helper or a recording.
//!
//! ```text
//! socket ─▶ ingest (threads) ─Update─▶ app ─▶ model ─▶ views ─▶ pixels
//!                ▲                      │
//!                └──── ClientMessage ◀──┘ (commands, applied in one place)
//! ```
//!
//! - [`MicroscopeApp`]: drains the current source's updates into the
//!   [`Model`](microscope_model::Model) each frame, lays out the views and
//!   applies their commands.
//! - `command`: widgets emit [`Command`]s; the app applies them in one place.
//! - `views`: one view per file; `theme`: colours and spacing.
//! - [`run_gui`]: opens the window on the live helper or a recording.
//! - [`bench`]: what `cargo xtask bench flame` times (the flame view per
//!   frame on synthetic stacks), run by the hidden `microscope __bench-flame`.
//!
//! Tests build a [`MicroscopeApp`] from channel ends they hold
//! ([`MicroscopeApp::new`]) and drive it with `egui_kittest`; no socket needed.
//!
//! # Dependencies and why
//!
//! - `eframe` (glow renderer, X11 and Wayland): the native window. glow runs
//!   at 30–60 fps on a software rasterizer where wgpu manages 5–13.
//! - `egui`: immediate-mode UI; the whole UI is a function of the model, which
//!   keeps live data simple, and it exposes an AccessKit tree tests query.
//! - `egui_plot`: the timeline and the histogram; `egui_extras`: the event
//!   inspector's table; `egui_file`: file pickers drawn with egui itself.
//! - `microscope-model`, `microscope-sources`: what the views draw and where
//!   it comes from.
//! - `microscope-catalogue`: the probe pack's explanations in the tools view.
//! - `petgraph`: the layouts of the map and paths views walk their graphs.
//! - `crossbeam-channel`: the bounded channels to the sources and the
//!   graph-building worker.
//! - `anyhow`: the one error of opening the window; `log`: diagnostics.
//! - `microscope-wire`: the messages to the helper, and the UI thread's CPU
//!   clock for `microscope __bench-flame`; `serde_json`: that report.
//! - `egui_kittest` (dev, wgpu + snapshot): headless UI tests on lavapipe.

mod app;
pub mod bench;
pub mod bench_replay;
mod command;
mod gui;
pub mod map_layout;
mod tab;
mod theme;
mod views;

pub use app::MicroscopeApp;
pub use command::{Command, CommandQueue};
pub use gui::{WINDOW_TITLE, WindowOptions, catalogue_with_local_packs, pack_dirs, run_gui};
pub use tab::CentralTab;
pub use views::{
    BREADCRUMBS, CALL_GRAPH, CpuTimelineState, DiffRanges, FRAMES, FlameLayout, FlameView,
    MACHINE_WIDE, NO_SAMPLES_IN_RANGE, NO_STACKS, PathsView, StackFilters, TimeRange, banner_text,
    region, slice_label,
};
pub use views::{
    BREAKDOWN, TourPosition, ToursState, WATERFALL_BARS, WaterfallState, bar_label, evidence_line,
    node_of_probe, start_label,
};
