//! Microscope's data model: what the helper reports, as the app keeps it,
//! and the pure algorithms behind every view.
//!
//! Nothing here knows egui, eframe, clap or threads: the data sources
//! (`microscope-sources`) produce [`Update`]s, [`Model::apply`] takes them,
//! and the views (`microscope-gui`) and the command line (`microscope`) read
//! the model. Everything is unit-tested without a window or a socket.
//!
//! - `update`, `convert`: the app's own types and the one conversion from
//!   the wire types ([`update_from_message`]), so the protocol can evolve
//!   without touching views.
//! - `model`, `timeline`, `histogram`, `counter`, `decimate`, `cpu_timeline`:
//!   UI state and the pure logic behind it (rate buckets, cumulative-to-increase
//!   counters, the latency histogram, min/max decimation for the plot, per-CPU
//!   scheduler slices built from `sched_switch`).
//! - `stacks`, `flame`, `paths`: stack samples ([`StackStore`]: unique stacks
//!   interned once, samples sorted by time), the [`FlameGraph`] built from a
//!   slice of them (zoom, search, differential, folded import/export) and the
//!   [`CallGraph`] of the paths view (`petgraph`).
//! - `folded`: stacks from the helper as folded lines for flame-graph tools.
//! - [`Clock`]: where "now" comes from; tests move a manual one.
//! - `event_fields`: an event's fields as name/value pairs, for the
//!   inspector and the CSV export.
//! - [`map`]: the subsystem map's graph and layered layout, and the
//!   [`map::MapHighlight`] a tour step or a followed call lights on it.
//! - [`waterfall`]: one system call followed end to end (the events it
//!   caused, linked by thread, request identity or time) and its latency
//!   breakdown.
//! - `pack_data`: a pack probe's counter tables (rates per row, over time)
//!   and log2 histograms, from the helper's readings of its maps.
//! - `cost`: what tracing costs (BPF run time per probe, share of a CPU,
//!   events, ring fill, drops, the helper's CPU and memory) with a short history.
//! - `units`: durations, counts, rates and sizes for people, in one place.
//! - `overview`: a recording seen whole (chunks of the file, per-bucket CPU
//!   columns) and the windows and pages read from it, so a replay reaches
//!   every moment of a recording of any size.
//! - `synthetic`: deterministic synthetic stacks for benchmarks and tests.
//!
//! # Dependencies and why
//!
//! - `microscope-wire`: the types the helper sends, converted once here.
//! - `microscope-catalogue`: the built-in probe pack, so the map and its
//!   explanations work offline and on replays.
//! - `petgraph`: the subsystem map's graph (`map`; its layered layout is
//!   ours, a few lines of barycentre ordering a student can follow) and the
//!   call graph of the paths view (functions and calls, with the traversals
//!   its layout needs).
//! - `rustc-hash`: FxHash for the stack and flame-graph indexes: millions of
//!   lookups keyed by small integers the app assigned itself (no untrusted
//!   keys an attacker could collide), where SipHash costs several times more.
//! - `fastrand`: the seeded generator of the synthetic stacks.
//! - `thiserror`: this library's errors.
//! - `tempfile` (dev): throwaway files in tests.

mod clock;
mod convert;
mod cost;
mod counter;
mod cpu_timeline;
mod decimate;
mod event_fields;
mod flame;
mod folded;
mod histogram;
pub mod live_defaults;
pub mod map;
mod model;
mod overview;
mod pack_data;
mod paths;
mod stacks;
mod synthetic;
mod timeline;
mod units;
mod update;
pub mod waterfall;

pub use clock::Clock;
pub use convert::sched_records;
pub use convert::update_from_message;
pub use cost::{
    COST_HISTORY, CostHistory, CostSnapshot, ProbeCostFigures, format_mib, format_share,
};
pub use counter::CumulativeCounter;
pub use cpu_timeline::{ClockAnchor, CpuTimeline, LeaveState, MAX_SLICES, Slice, SliceKey, Wakeup};
pub use decimate::decimate_min_max;
pub use event_fields::{Field, fields};
pub use flame::{
    BuildOptions, FlameGraph, FoldedError, FoldedWriteError, FrameBox, FrameDetails, NodeId,
    ROOT_NAME, SearchResult, Values,
};
pub use folded::{
    FoldedProfile, KERNEL_SUFFIX, UNKNOWN_COMM, comm_frame, folded_frame, sanitize_frame,
};
pub use histogram::{LatencyHistogram, bucket_label, log2_bucket_label};
pub use model::{
    Baseline, Browse, ConnectionState, Model, PackStackRate, RECENT_EVENTS, SCHED_SWITCH,
};
pub use overview::{
    CHUNK_BYTES, Chunk, Column, CpuWindow, EventPage, LOOKBACK_SWITCHES, MAX_OVERVIEW_CPUS,
    OVERVIEW_BUCKETS, OverviewBuilder, RecordingOverview,
};
pub use pack_data::{
    CounterRow, CounterTable, PackProbeData, RATE_HISTORY, histogram_summary, sum_buckets,
};
pub use paths::{
    AUTO_EXPAND_MIN_SHARE, CallGraph, CallNode, DEFAULT_VISIBLE_DEPTH, MAX_CALLEES_SHOWN,
    PathsLayout, VisibleEdge,
};
pub use stacks::{
    DEFAULT_MAX_SAMPLES, ProcessSummary, SliceEntry, StackId, StackQuery, StackRef, StackSample,
    StackSlice, StackStore, ValueUnit, unknown_frame_name,
};
pub use synthetic::synthetic_store;
pub use timeline::{BUCKET, SETTLE, Series, Timeline};
pub use units::{
    format_bytes, format_count, format_duration_ns, format_rate, format_seconds_ns,
    format_whole_duration_ns,
};
pub use update::{
    BrowseUpdate, Capability, HelperSummary, Probe, ProbeCount, ProbeDrops, ProbeKind, ReplaySpeed,
    ReplayStatus, SchedRecord, SwitchRecord, Update, WakeupRecord,
};
