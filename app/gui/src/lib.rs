//! Microscope's desktop app and command line.
//!
//! The privileged helper `microscoped` loads the eBPF programs and streams
//! what they see over a Unix socket (crate `microscope-wire`). This crate is
//! the unprivileged side: a window that shows it live, and two commands for
//! terminals and scripts.
//!
//! # Structure
//!
//! ```text
//! socket ─▶ ingest (threads) ─Update─▶ app ─▶ model ─▶ views ─▶ pixels
//!                ▲                      │
//!                └──── ClientMessage ◀──┘ (commands, applied in one place)
//! ```
//!
//! - [`cli`]: the arguments; `main.rs` only dispatches on them.
//! - `probes_cmd`, `watch`: the `probes` and `watch` subcommands; the watch
//!   aggregation is a pure function ([`tally_seconds`]) with unit tests.
//! - `record_cmd`, `info_cmd`, `export`: `record`, `info` and `export` of
//!   recordings (the file format lives in `microscope-wire`); each export
//!   format is a pure function from frames to a writer.
//! - `profile_cmd`: `profile`, stack batches from the helper folded into
//!   flame-graph input ([`FoldedProfile`], pure and unit-tested).
//! - `ingest`: the named threads that own the connection, reconnect every
//!   second and re-enable the wanted probes. They talk to the UI only through
//!   two bounded channels, so the UI never waits on I/O.
//! - `update`, `convert`: the GUI's own types and the one conversion from the
//!   wire types, so the protocol can evolve without touching views.
//! - `model`, `timeline`, `histogram`, `counter`, `decimate`, `cpu_timeline`:
//!   UI state and the pure logic behind it (rate buckets, cumulative-to-increase
//!   counters, the latency histogram, min/max decimation for the plot, per-CPU
//!   scheduler slices built from `sched_switch`).
//! - `stacks`, `flame`, `paths`: stack samples ([`StackStore`]: unique stacks
//!   interned once, samples sorted by time), the [`FlameGraph`] built from a
//!   slice of them (zoom, search, differential, folded import/export) and the
//!   [`CallGraph`] of the paths view (`petgraph`).
//! - [`MicroscopeApp`], `command`, `views`, `theme`: one view per file,
//!   widgets emit [`Command`]s, colours and spacing live in `theme`.
//!
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
//! - `egui_plot`: the timeline and the histogram.
//! - `petgraph`: the subsystem map's graph (`map`); its layered layout is
//!   ours, a few lines of barycentre ordering a student can follow.
//! - `microscope-catalogue`: the built-in probe pack, so the map and its
//!   explanations work offline and on replays.
//! - `petgraph` also holds the call graph of the paths view (functions
//!   and calls, with the traversals its layout needs).
//! - `crossbeam-channel`: bounded channels with `select!` and deadlines, which
//!   the ingest thread needs to wait on the UI and on its reader at once.
//! - `clap` (derive): the command line.
//! - `serde_json`, `csv`: the Perfetto (trace-event JSON) and CSV exports,
//!   with correct escaping and quoting.
//! - `thiserror` for this library's errors, `anyhow` at the binary boundary.
//! - `log` + `env_logger`: diagnostics (`RUST_LOG=debug microscope`).
//! - `libc`: `CLOCK_MONOTONIC`, the clock of the helper's batch times, for
//!   `profile` (std's `Instant` does not expose it), and the UI thread's CPU
//!   clock for `microscope __bench-flame` (std has no thread CPU time).
//! - `inferno` (dev): checks that `profile`'s folded output is what
//!   flame-graph tools read.
//! - `egui_kittest` (dev, wgpu + snapshot): headless UI tests on lavapipe.

mod app;
pub mod bench;
pub mod cli;
mod command;
mod convert;
mod counter;
mod cpu_timeline;
mod decimate;
mod event_fields;
mod export;
mod flame;
mod fxhash;
mod gui;
mod histogram;
mod info_cmd;
mod ingest;
pub mod map;
mod model;
mod new_pack_cmd;
mod pack_cmd;
mod paths;
mod probes_cmd;
mod profile_cmd;
mod record_cmd;
mod recorder;
mod replay;
mod sources;
mod stacks;
mod theme;
mod timeline;
mod update;
mod views;
mod watch;

pub use app::MicroscopeApp;
pub use command::{Command, CommandQueue};
pub use convert::update_from_message;
pub use counter::CumulativeCounter;
pub use cpu_timeline::{
    CpuTimeline, LeaveState, MAX_SLICES, Slice, SliceKey, Wakeup, format_duration_ns,
};
pub use decimate::decimate_min_max;
pub use export::{
    ExportError, ExportFormat, ExportOutcome, export_csv, export_folded, export_perfetto,
    run_export,
};
pub use flame::{
    BuildOptions, FlameGraph, FoldedError, FoldedWriteError, FrameBox, FrameDetails, NodeId,
    ROOT_NAME, SearchResult, Values,
};
pub use gui::{WINDOW_TITLE, run_gui};
pub use histogram::{LatencyHistogram, bucket_label, format_ns};
pub use info_cmd::{format_info, info_report};
pub use ingest::{RETRY_INTERVAL, Wake, spawn_ingest};
pub use model::{ConnectionState, Model, SCHED_SWITCH};
pub use new_pack_cmd::{PackLanguage, new_pack};
pub use pack_cmd::check_pack;
pub use paths::{
    AUTO_EXPAND_MIN_SHARE, CallGraph, CallNode, DEFAULT_VISIBLE_DEPTH, MAX_CALLEES_SHOWN,
    PathsLayout, VisibleEdge,
};
pub use probes_cmd::{format_probes, probes_report, verifier_log};
pub use profile_cmd::{
    FoldedProfile, OFF_CPU_PROBE, ON_CPU_PROBE, ProfileError, ProfileOutcome, ProfileRequest,
    run_profile, sanitize_frame,
};
pub use record_cmd::{RecordError, RecordOutcome, run_record};
pub use recorder::Recorder;
pub use replay::{ReplayControl, ReplaySpeed, spawn_replay};
pub use stacks::{
    DEFAULT_MAX_SAMPLES, ProcessSummary, SliceEntry, StackId, StackQuery, StackRef, StackSample,
    StackSlice, StackStore, ValueUnit, unknown_frame_name,
};
pub use timeline::{BUCKET, SETTLE, Series, Timeline};
pub use update::{
    Capability, HelperSummary, Probe, ProbeCount, ProbeDrops, ProbeKind, ReplayStatus, SchedRecord,
    SwitchRecord, Update, WakeupRecord,
};
pub use views::{
    BREADCRUMBS, CALL_GRAPH, CentralTab, CpuTimelineState, DiffRanges, FRAMES, FlameLayout,
    FlameView, NO_SAMPLES_IN_RANGE, NO_STACKS, PathsView, StackFilters, TimeRange, banner_text,
    region, slice_label,
};
pub use watch::{
    DropLine, WatchError, WatchLine, WatchProbe, WatchTally, run_watch, tally_seconds,
};
