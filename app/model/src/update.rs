//! The GUI's own types for what the helper reports, and the updates the
//! ingest thread sends to the UI.
//!
//! These mirror the wire types only where the UI needs them; see
//! [`update_from_message`](crate::update_from_message) for the one place that
//! maps one to the other.

use microscope_wire::ProbeKey;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How a probe's data arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// One event per occurrence, counted per time bucket.
    Stream,
    /// Cumulative in-kernel counts per syscall.
    SyscallCounts,
    /// Cumulative in-kernel log2 latency histogram.
    SyscallLatency,
    /// One event per occurrence with fields decoded from the tracepoint's
    /// format file.
    Fields,
    /// Calls and latency of a kernel or user function, counted in the kernel.
    Function,
    /// Stack counts (profiles, off-CPU time).
    Stacks,
    /// A pack's own programs that stream no events: counters and
    /// histograms read from its maps (a pack probe with events is
    /// [`ProbeKind::Fields`], and may have maps too).
    Pack,
    /// A pack probe whose stack counts sum time (nanoseconds off the CPU,
    /// say) rather than count hits; it may have maps too, never events.
    TimeStacks,
}

impl ProbeKind {
    /// Whether every occurrence arrives as its own event.
    pub fn is_streamed(self) -> bool {
        matches!(self, Self::Stream | Self::Fields)
    }
}

/// One probe of the catalogue, as the UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Stable id, e.g. `sched:sched_switch`; also the checkbox label.
    pub id: String,
    /// Short key used in event batches.
    pub key: ProbeKey,
    /// Kernel subsystem the probe is grouped under.
    pub subsystem: String,
    /// One line for a person.
    pub description: String,
    /// How its data arrives.
    pub kind: ProbeKind,
    /// `None` when the kernel can attach it, else why it cannot.
    pub unavailable_reason: Option<String>,
    /// Whether the helper currently sends it to us.
    pub enabled: bool,
    /// For [`ProbeKind::Fields`]: field names and C types, in event order.
    pub fields: Vec<(String, String)>,
}

impl Probe {
    /// Whether the running kernel can attach this probe.
    pub fn is_available(&self) -> bool {
        self.unavailable_reason.is_none()
    }
}

/// One tracing feature of the kernel and whether it is usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Short name, e.g. `kprobes`.
    pub name: &'static str,
    /// Usable on this kernel.
    pub available: bool,
    /// Why not, or how it was checked.
    pub reason: String,
}

/// Who the helper is and what the kernel can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperSummary {
    /// `microscoped`'s version.
    pub helper_version: String,
    /// `uname -r` of the traced kernel.
    pub kernel_release: String,
    /// Tracing features of the kernel.
    pub capabilities: Vec<Capability>,
}

/// Events counted for one probe in one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCount {
    /// [`Probe::key`].
    pub key: ProbeKey,
    /// Events in the batch.
    pub events: u64,
}

/// Running drop totals of one streamed probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeDrops {
    /// [`Probe::key`].
    pub key: ProbeKey,
    /// Records lost in the kernel (ring buffer full), since the helper started.
    pub kernel_drops: u64,
    /// Events the helper dropped because this client read too slowly.
    pub client_drops: u64,
}

/// Most events per probe and batch passed on for the event inspector: a
/// person reads a few hundred rows, not 200 000 a second.
pub const RECENT_PER_BATCH: usize = 256;

/// What the thread that reads a recording for browsing sends.
#[derive(Clone, Debug)]
pub enum BrowseUpdate {
    /// Share of the file read so far (0..=1) while the overview is built.
    Progress(f32),
    /// The overview of the whole recording.
    Overview(std::sync::Arc<crate::RecordingOverview>),
    /// The slices of a time range, read from the file.
    CpuWindow(std::sync::Arc<crate::CpuWindow>),
    /// A page of events of one probe, read from the file.
    Page(std::sync::Arc<crate::EventPage>),
    /// Reading failed; a sentence saying why and what to do.
    Failed(String),
    /// A second recording to compare with, read whole.
    Baseline(std::sync::Arc<crate::Baseline>),
    /// The events around a call, read from the file for the waterfall.
    CallEvents(std::sync::Arc<crate::waterfall::CallEvents>),
}

impl PartialEq for BrowseUpdate {
    fn eq(&self, other: &Self) -> bool {
        use std::sync::Arc;
        match (self, other) {
            (Self::Progress(a), Self::Progress(b)) => a == b,
            (Self::Overview(a), Self::Overview(b)) => Arc::ptr_eq(a, b),
            (Self::CpuWindow(a), Self::CpuWindow(b)) => Arc::ptr_eq(a, b),
            (Self::Page(a), Self::Page(b)) => Arc::ptr_eq(a, b),
            (Self::Failed(a), Self::Failed(b)) => a == b,
            (Self::Baseline(a), Self::Baseline(b)) => Arc::ptr_eq(a, b),
            (Self::CallEvents(a), Self::CallEvents(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// What the ingest thread tells the UI.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The handshake succeeded.
    Connected(HelperSummary),
    /// The connection failed or dropped; the ingest thread keeps retrying.
    Disconnected {
        /// A sentence saying what happened and what to do.
        reason: String,
    },
    /// The probe catalogue.
    Probes(Vec<Probe>),
    /// A probe was enabled or disabled for us.
    ProbeState {
        /// [`Probe::id`].
        probe: String,
        /// Whether we now receive it.
        enabled: bool,
    },
    /// Events of one batch, counted per probe, plus the scheduler events the
    /// CPU timeline is built from.
    Events {
        /// When the batch arrived (wall clock of this process).
        arrived: Instant,
        /// Events per probe key.
        counts: Vec<ProbeCount>,
        /// Running drop totals.
        drops: Vec<ProbeDrops>,
        /// `sched_switch` and `sched_wakeup` events of the batch, sorted by
        /// time (empty when neither probe is on).
        sched: Vec<SchedRecord>,
        /// Events per (probe key, command name) in the batch.
        by_comm: Vec<(ProbeKey, String, u64)>,
        /// The newest events of each probe in the batch (at most
        /// [`RECENT_PER_BATCH`] per probe), for the event inspector.
        recent: Vec<microscope_wire::Event>,
    },
    /// In-kernel aggregates (cumulative since the probe was enabled).
    Aggregates {
        /// When the message arrived.
        arrived: Instant,
        /// Sum of all per-syscall counts, `None` if counting is off.
        syscall_total: Option<u64>,
        /// 64 log2 latency buckets in ns; empty if the latency probe is off.
        latency_log2_ns: Vec<u64>,
        /// Function probes: `(key, calls, 64 log2 latency buckets)`.
        functions: Vec<(ProbeKey, u64, Vec<u64>)>,
    },
    /// A probe created on demand (any tracepoint or function) joined the
    /// catalogue.
    ProbeAdded(Probe),
    /// Every tracepoint of the traced kernel, `category:name`.
    Tracepoints(Vec<String>),
    /// Kernel functions matching a search.
    KernelFunctions {
        /// What was searched for.
        contains: String,
        /// Matching names.
        names: Vec<String>,
        /// More matched than were listed.
        truncated: bool,
    },
    /// The in-kernel process filter now in force, in words.
    Filter(microscope_wire::ProcessFilter),
    /// Stack counts for the flame graph and paths views.
    Stacks(microscope_wire::StackBatch),
    /// What a pack probe's counter and histogram maps hold (cumulative).
    PackData {
        /// When the message arrived.
        arrived: Instant,
        /// The maps, decoded by the pack's manifest.
        data: microscope_wire::PackData,
    },
    /// The verifier's whole log for a pack probe the kernel refused.
    VerifierLog {
        /// [`Probe::id`].
        probe: String,
        /// The log, as the kernel wrote it.
        log: String,
    },
    /// A replay is about to (re)start from the beginning: forget all data.
    ReplayReset,
    /// Where the replay's playhead is.
    Replay(ReplayStatus),
    /// What the recording's browser read from the file (see
    /// [`RecordingOverview`](crate::RecordingOverview)).
    Browse(BrowseUpdate),
    /// The recording could not be opened.
    ReplayFailed {
        /// A sentence saying what happened and what to do.
        reason: String,
    },
    /// A cost report ([`crate::CostSnapshot`], its `at_secs` set on arrival).
    Cost {
        /// When it arrived.
        arrived: Instant,
        /// The figures.
        snapshot: crate::cost::CostSnapshot,
    },
    /// The helper answered a watch request: whether we now get cost
    /// reports, and whether run times are measured (or why not).
    CostWatch {
        /// Whether this app receives cost reports.
        watching: bool,
        /// Run times measured, or why not.
        run_times: Result<(), String>,
    },
    /// The helper reported an error (for example a probe failed to attach).
    HelperError {
        /// A sentence for a person.
        message: String,
    },
}

/// A `sched:sched_switch` event, reduced to what the CPU timeline needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchRecord {
    /// CPU that switched.
    pub cpu: u32,
    /// When, in ns of the kernel's `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// Thread leaving the CPU.
    pub prev_pid: u32,
    /// Its process (the event's current task is the one leaving).
    pub prev_tgid: u32,
    /// Its command name.
    pub prev_comm: String,
    /// Its kernel priority (lower runs first; 120 is nice 0).
    pub prev_prio: i32,
    /// Why it left: the tracepoint's `prev_state` (`TASK_REPORT` bits).
    pub prev_state: u64,
    /// Thread taking the CPU.
    pub next_pid: u32,
    /// Its command name.
    pub next_comm: String,
    /// Its kernel priority.
    pub next_prio: i32,
}

/// A `sched:sched_wakeup` event, reduced to what the CPU timeline needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WakeupRecord {
    /// CPU that reported the wake-up.
    pub cpu: u32,
    /// When, in ns of the kernel's `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// Thread running when the wake-up was reported: usually the waker.
    pub waker_pid: u32,
    /// Its command name.
    pub waker_comm: String,
    /// Thread woken.
    pub pid: u32,
    /// CPU whose run queue it was put on.
    pub target_cpu: u32,
}

/// A scheduler event for the CPU timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchedRecord {
    /// A context switch.
    Switch(SwitchRecord),
    /// A task became runnable.
    Wakeup(WakeupRecord),
}

impl SchedRecord {
    /// When it happened, in ns of the kernel's `CLOCK_MONOTONIC`.
    pub fn ts_ns(&self) -> u64 {
        match self {
            Self::Switch(switch) => switch.ts_ns,
            Self::Wakeup(wakeup) => wakeup.ts_ns,
        }
    }
}

/// Where a replay stands, as the replay thread last reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayStatus {
    /// The recording.
    pub path: PathBuf,
    /// Playhead, ns since the recording started.
    pub position_ns: u64,
    /// Length of the recording, ns.
    pub duration_ns: u64,
    /// Whether the playhead moves.
    pub playing: bool,
    /// How fast it moves.
    pub speed: ReplaySpeed,
    /// When this status was reported (to move the playhead between reports).
    pub reported_at: Instant,
    /// What could not be read from a damaged file, in a sentence.
    pub damage: Option<String>,
}

impl ReplayStatus {
    /// The playhead at wall time `now`, extrapolated from the last report.
    pub fn position_at(&self, now: Instant) -> Duration {
        let mut position_ns = self.position_ns;
        if self.playing
            && let ReplaySpeed::Times(factor) = self.speed
        {
            let since = now.saturating_duration_since(self.reported_at).as_nanos() as f64;
            position_ns = position_ns.saturating_add((since * factor) as u64);
        }
        Duration::from_nanos(position_ns.min(self.duration_ns))
    }
}

/// Playback speed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReplaySpeed {
    /// Recorded pace times this factor (1× or 10×).
    Times(f64),
    /// As fast as the app can take the frames.
    Max,
}

impl ReplaySpeed {
    /// The speeds offered in the replay bar.
    pub const CHOICES: [ReplaySpeed; 3] = [
        ReplaySpeed::Times(1.0),
        ReplaySpeed::Times(10.0),
        ReplaySpeed::Max,
    ];

    /// Short label, e.g. `10×`.
    pub fn label(self) -> String {
        match self {
            ReplaySpeed::Times(f) => format!("{f}×"),
            ReplaySpeed::Max => "max".to_owned(),
        }
    }
}
