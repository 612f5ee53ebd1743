//! The messages: what clients ask, what the helper answers and streams.

use serde::{Deserialize, Serialize};

/// A probe's wire key: the small number that stands for a probe id in
/// [`Event::probe`], [`ProbeInfo::key`] and every other `probe`/`key` field,
/// on the socket and in recordings.
///
/// The helper hands keys out in registration order and never reuses one
/// while it runs, so a key never names two probes, even after the probe it
/// named was forgotten. Every probe created on demand (a tracepoint,
/// `func:`, `uprobe:`, …) takes a new key, refused or not, so a client
/// naming distinct ids in a loop uses keys up. With the former `u16` that
/// took 65 536 registrations, about ten seconds of such a loop, after which
/// every new probe was refused until the helper restarted; a `u32` would
/// last about a week at the rate the hub answers a hostile client (100 000
/// distinct function ids in 12–16 s, about 7 000 a second). A `u64` lasts
/// longer than any machine runs, so keys never run out in practice (the
/// helper still refuses with a sentence if they ever did).
///
/// `postcard` encodes integers as varints, so widening the key from `u16`
/// changed no byte on the wire: keys below 65 536 encode exactly as before,
/// and connections and recordings from before decode unchanged (tested).
pub type ProbeKey = u64;

/// Client → helper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Ask for the probe list; answered with [`HelperMessage::Probes`].
    ListProbes,
    /// Attach a probe (by [`ProbeInfo::id`]) for this client; answered with
    /// [`HelperMessage::ProbeState`] or [`HelperMessage::Error`].
    Enable {
        /// Probe id, e.g. `sched:sched_switch`.
        probe: String,
    },
    /// Stop receiving a probe; the helper detaches it once no client wants it.
    Disable {
        /// Probe id.
        probe: String,
    },
    /// Change how a probe collects (stacks, sampling rate). Applies from the
    /// next time it is attached, and re-attaches it now if it is enabled.
    /// Answered with [`HelperMessage::ProbeState`] or an error.
    SetOptions {
        /// Probe id.
        probe: String,
        /// The new options.
        options: ProbeOptions,
    },
    /// Ask for every tracepoint of the running kernel; answered with
    /// [`HelperMessage::Tracepoints`].
    ListTracepoints,
    /// Ask for kernel functions whose name contains `contains`; answered with
    /// [`HelperMessage::KernelFunctions`].
    ListKernelFunctions {
        /// Substring to look for (case-sensitive, like kernel symbols).
        contains: String,
    },
    /// Keep only events of matching processes. An empty filter keeps
    /// everything. The filter is this client's own: another client's filter
    /// never changes what this one receives. The kernel filters on what
    /// every client's filter lets through (when all clients filter alike,
    /// exactly that); the helper refines events and stacks per client.
    /// In-kernel aggregates (syscall counts, latency, function calls) are
    /// counted with the kernel's filter. Answered with
    /// [`HelperMessage::Filter`].
    SetFilter(ProcessFilter),
    /// Ask for the whole verifier log of a pack probe the kernel refused;
    /// answered with [`HelperMessage::VerifierLog`] or an error. Added in
    /// protocol 3.
    VerifierLog {
        /// Probe id.
        probe: String,
    },
    /// Start (`watch: true`) or stop receiving [`HelperMessage::Cost`]
    /// reports. While any client watches, the helper keeps the kernel's BPF
    /// run-time statistics on (they cost every BPF program two clock reads
    /// per run, machine-wide), and turns them off when the last one stops
    /// or leaves. Asking twice counts once. Answered with
    /// [`HelperMessage::CostWatch`]. Added in protocol 5.
    WatchCost {
        /// Whether this client wants cost reports.
        watch: bool,
    },
}

/// How a probe collects, beyond what its id says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOptions {
    /// Capture the kernel and user stack at every hit and count hits per
    /// stack in the kernel ("how did the kernel get here").
    pub stacks: bool,
    /// For `profile:cpu`: samples per second per CPU (0 = the default, 99).
    pub sample_hz: u32,
    /// For `profile:offcpu`: ignore blocks shorter than this, in µs
    /// (0 = the default, 1 ms).
    pub min_block_us: u64,
    /// For a tracepoint: count its hits in the kernel and stream no events;
    /// the count comes in [`Aggregates::functions`] as `calls`. What the
    /// app's default probes use to light the map cheaply. Added in
    /// protocol 5.
    pub count_only: bool,
}

/// Which processes' events the kernel keeps. Every set condition must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFilter {
    /// Process id (tgid).
    pub pid: Option<u32>,
    /// Command name, exact (as `comm`, at most 15 bytes).
    pub comm: Option<String>,
    /// cgroup v2 id (the inode number of the cgroup's directory).
    pub cgroup: Option<u64>,
}

impl ProcessFilter {
    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.pid.is_none() && self.comm.is_none() && self.cgroup.is_none()
    }
}

impl std::fmt::Display for ProcessFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("all processes");
        }
        let mut parts = Vec::new();
        if let Some(pid) = self.pid {
            parts.push(format!("pid {pid}"));
        }
        if let Some(comm) = &self.comm {
            parts.push(format!("command {comm}"));
        }
        if let Some(cgroup) = self.cgroup {
            parts.push(format!("cgroup {cgroup}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Helper → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HelperMessage {
    /// First message after the preamble: who the helper is, what the kernel can do.
    Hello(HelperInfo),
    /// The probe catalogue with availability, for this client.
    Probes(Vec<ProbeInfo>),
    /// A probe was attached or detached for this client.
    ProbeState {
        /// Probe id.
        probe: String,
        /// Whether this client now receives it.
        enabled: bool,
    },
    /// Streamed events, at most ~50 ms old.
    Batch(EventBatch),
    /// In-kernel aggregates (cumulative since the probe was enabled), sent
    /// about every 250 ms while an aggregated probe is enabled.
    Aggregates(Aggregates),
    /// Something failed; `message` says what happened and what to do. When it
    /// answers the handshake, the helper closes the connection after it.
    Error {
        /// A sentence for a person.
        message: String,
    },
    /// A probe that was not in the catalogue (any tracepoint, kernel or user
    /// function) was created for an [`ClientMessage::Enable`]; sent before
    /// its [`HelperMessage::ProbeState`].
    ProbeAdded(ProbeInfo),
    /// Every tracepoint of the running kernel, `category:name`, sorted.
    Tracepoints(Vec<String>),
    /// Kernel functions that can be probed, answering
    /// [`ClientMessage::ListKernelFunctions`].
    KernelFunctions {
        /// The substring asked for.
        contains: String,
        /// Matching names, sorted, at most [`MAX_LISTED_FUNCTIONS`].
        names: Vec<String>,
        /// More matched than were listed.
        truncated: bool,
    },
    /// This client's process filter now in force.
    Filter(ProcessFilter),
    /// Stack counts collected in the kernel since the previous batch.
    Stacks(StackBatch),
    /// What a pack probe's counter and histogram maps hold (cumulative
    /// since it was enabled), about every 250 ms while it is enabled.
    /// Added in protocol 3.
    PackData(PackData),
    /// The verifier's whole log for a pack probe that failed to load,
    /// answering [`ClientMessage::VerifierLog`]. Added in protocol 3.
    VerifierLog {
        /// Probe id.
        probe: String,
        /// The log, as the kernel wrote it (may be long).
        log: String,
    },
    /// Answers [`ClientMessage::WatchCost`]: whether this client now
    /// receives cost reports, and whether the kernel's run-time statistics
    /// could be turned on (if not, why). Added in protocol 5.
    CostWatch {
        /// This client receives [`HelperMessage::Cost`].
        watching: bool,
        /// Whether BPF run-time statistics are on, or why they could not be.
        run_times: Availability,
    },
    /// What tracing costs, about every [`COST_INTERVAL_MS`] while this
    /// client watches ([`ClientMessage::WatchCost`]). Added in protocol 5.
    Cost(CostReport),
}

/// How often the helper sends a [`CostReport`] to watching clients, in ms.
pub const COST_INTERVAL_MS: u64 = 1000;

/// What every attached probe and the helper itself cost over one interval.
/// One report covers every probe attached on the machine (by any client),
/// since all of them cost the machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// End of the interval, ns of `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// Length of the interval, ns.
    pub interval_ns: u64,
    /// Online CPUs (a CPU share is of one CPU; divide by this for the machine).
    pub cpus: u32,
    /// Whether the kernel's BPF run-time statistics were on for the whole
    /// interval; if not, run times are zero and `reason` says why.
    pub run_times: Availability,
    /// Every attached probe, by key.
    pub probes: Vec<ProbeCost>,
    /// `microscoped` itself.
    pub helper: HelperCost,
}

/// What one probe cost over a [`CostReport`]'s interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCost {
    /// [`ProbeInfo::key`].
    pub probe: ProbeKey,
    /// The probe's BPF programs (a probe may run several, e.g. entry and exit).
    pub programs: Vec<ProgramCost>,
    /// Records it streamed to the helper in the interval (0 for probes that
    /// count in the kernel).
    pub events: u64,
    /// Records lost in the kernel in the interval (ring buffer full).
    pub kernel_drops: u64,
    /// Size of the ring buffer it writes into, bytes (0: it streams nothing).
    pub ring_bytes: u64,
    /// Most bytes waiting in that ring buffer at one drain in the interval.
    /// The ring may be shared with other probes of the same object.
    pub ring_peak_bytes: u64,
}

/// Run-time statistics of one BPF program, as `bpftool prog show` prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramCost {
    /// The program's name (the kernel keeps 15 bytes of it).
    pub name: String,
    /// The kernel's program id (`bpftool prog show id N`).
    pub id: u32,
    /// The kernel's cumulative `run_time_ns` at the end of the interval.
    pub run_time_ns: u64,
    /// The kernel's cumulative `run_cnt` at the end of the interval.
    pub run_count: u64,
    /// `run_time_ns` spent in the interval.
    pub interval_run_time_ns: u64,
    /// Runs in the interval.
    pub interval_run_count: u64,
}

/// The helper's own resource use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperCost {
    /// CPU time (user + system, all threads) used in the interval, ns.
    pub interval_cpu_ns: u64,
    /// CPU time used since it started, ns.
    pub cpu_ns: u64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
}

impl ProbeCost {
    /// BPF run time of all its programs in the interval, ns.
    pub fn run_time_ns(&self) -> u64 {
        self.programs.iter().map(|p| p.interval_run_time_ns).sum()
    }

    /// Program runs in the interval (for a probe of several programs, the
    /// runs of all of them).
    pub fn run_count(&self) -> u64 {
        self.programs.iter().map(|p| p.interval_run_count).sum()
    }

    /// Mean run time per program run in the interval, ns (`None`: no run).
    pub fn ns_per_run(&self) -> Option<f64> {
        let runs = self.run_count();
        (runs > 0).then(|| self.run_time_ns() as f64 / runs as f64)
    }
}

impl CostReport {
    /// The share of one CPU `ns` of work takes over this interval
    /// (0.01 = 1 % of one CPU).
    pub fn cpu_share(&self, ns: u64) -> f64 {
        if self.interval_ns == 0 {
            return 0.0;
        }
        ns as f64 / self.interval_ns as f64
    }

    /// Per second, of a count over this interval.
    pub fn per_sec(&self, n: u64) -> f64 {
        if self.interval_ns == 0 {
            return 0.0;
        }
        n as f64 * 1e9 / self.interval_ns as f64
    }
}

/// A pack probe's maps, read by the helper and decoded by its manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackData {
    /// [`ProbeInfo::key`].
    pub probe: ProbeKey,
    /// When the maps were read, ns of `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// Counter maps: one table each.
    pub tables: Vec<PackTable>,
    /// Log2 histograms: one per map and key.
    pub histograms: Vec<PackHistogram>,
}

/// A counter map: a row per key, key columns first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackTable {
    /// The map's name.
    pub map: String,
    /// Column names: the key fields, then the value fields.
    pub columns: Vec<String>,
    /// How many of the columns are the key.
    pub key_columns: usize,
    /// One row per key, values decoded (per-CPU values summed).
    pub rows: Vec<Vec<FieldValue>>,
    /// Rows left out because the map held more than the helper sends.
    pub truncated: u64,
}

/// One log2 histogram of a pack probe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackHistogram {
    /// The map's name.
    pub map: String,
    /// The key it is for, decoded (`all` when the key is constant), plus any
    /// label fields of the value (e.g. a command name).
    pub label: String,
    /// Unit of the values, e.g. `µs` (empty for plain counts).
    pub unit: String,
    /// Bucket `i` counts values in `[2^i, 2^(i+1))` of `unit`; bucket 0
    /// also counts 0.
    pub buckets: Vec<u64>,
}

/// Most names one [`HelperMessage::KernelFunctions`] lists.
pub const MAX_LISTED_FUNCTIONS: usize = 500;

/// Identity of the helper and of the kernel it runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperInfo {
    /// `microscoped`'s crate version.
    pub helper_version: String,
    /// `uname -r` of the traced kernel.
    pub kernel_release: String,
    /// What the kernel allows.
    pub capabilities: Capabilities,
}

/// Whether a feature is usable, and if not, why, in a sentence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// Usable on this kernel.
    pub available: bool,
    /// Why not (or a note on how it was checked).
    pub reason: String,
}

impl Availability {
    /// Usable, with a note on how that was established.
    pub fn yes(note: impl Into<String>) -> Self {
        Self {
            available: true,
            reason: note.into(),
        }
    }

    /// Not usable, with the reason.
    pub fn no(reason: impl Into<String>) -> Self {
        Self {
            available: false,
            reason: reason.into(),
        }
    }
}

/// Tracing features of the running kernel, detected by the helper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// tracefs mounted (tracepoints can be named and their formats read).
    pub tracefs: Availability,
    /// Kernel BTF at `/sys/kernel/btf/vmlinux`.
    pub btf: Availability,
    /// kprobes / kretprobes.
    pub kprobes: Availability,
    /// fentry / fexit (BPF trampolines).
    pub fentry: Availability,
    /// uprobes / uretprobes.
    pub uprobes: Availability,
}

/// How a probe delivers its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeKind {
    /// Every event is streamed in [`HelperMessage::Batch`].
    Stream,
    /// Counts per syscall, in [`Aggregates::syscall_counts`].
    SyscallCounts,
    /// Log2 latency histogram, in [`Aggregates::latency_log2_ns`].
    SyscallLatency,
    /// Every event is streamed in [`HelperMessage::Batch`] as
    /// [`EventData::Fields`], decoded from the tracepoint's format file;
    /// [`ProbeInfo::fields`] names them.
    Fields,
    /// A kernel or user function: calls and entry-to-exit latency, counted in
    /// the kernel, in [`Aggregates::functions`].
    Function,
    /// Stack samples (on-CPU) or blocked time per stack (off-CPU), counted in
    /// the kernel, in [`HelperMessage::Stacks`].
    Stacks,
    /// A pack's own BPF programs: events (if any) in
    /// [`HelperMessage::Batch`] as [`EventData::Fields`] named by
    /// [`ProbeInfo::fields`], counters and histograms in
    /// [`HelperMessage::PackData`]. Added in protocol 3.
    Pack,
    /// A pack probe with a `stacks` output that sums time: its stack counts
    /// in [`HelperMessage::Stacks`] are nanoseconds (as off-CPU tools
    /// keep), not hits. Its events, if any, come as for [`Self::Fields`],
    /// its counters and histograms as for [`Self::Pack`]. Added in
    /// protocol 6, at the end so that older recordings decode unchanged.
    TimeStacks,
}

/// One entry of the probe catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// Stable id, `category:name` for tracepoints (`sched:sched_switch`).
    pub id: String,
    /// Small number used in [`Event::probe`] instead of the id.
    pub key: ProbeKey,
    /// Kernel subsystem, e.g. `Scheduler`.
    pub subsystem: String,
    /// One line for a person.
    pub description: String,
    /// How its data arrives.
    pub kind: ProbeKind,
    /// Whether this kernel can attach it, and why not.
    pub availability: Availability,
    /// Whether this client currently receives it.
    pub enabled: bool,
    /// For [`ProbeKind::Fields`]: the record's fields, in the order of
    /// [`EventData::Fields`].
    pub fields: Vec<FieldInfo>,
}

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// Name, as in the format file (`prev_pid`).
    pub name: String,
    /// C type, as in the format file (`pid_t`, `__data_loc char[]`).
    pub c_type: String,
    /// What it means, when the catalogue explains it; else empty.
    pub meaning: String,
}

/// A decoded tracepoint field value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldValue {
    /// A signed integer of any width.
    Int(i64),
    /// An unsigned integer of any width (also pointers).
    Uint(u64),
    /// A `char` array or `__data_loc char[]`, up to its first NUL.
    Str(String),
    /// Any other array, raw bytes.
    Bytes(Vec<u8>),
    /// The record was shorter than the field's place (copied partially).
    Missing,
    /// A number with a name a pack's manifest gives it (an errno, a syscall,
    /// a signal, a device, a kernel symbol, a duration with its unit…):
    /// `value` for plotting, `text` for reading. Added in protocol 3.
    Named {
        /// The raw number.
        value: i64,
        /// How it reads, e.g. `ENOENT`, `openat`, `8:0`, `1.5 ms`.
        text: String,
    },
}

impl FieldValue {
    /// The value as a number, for plotting.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(v) => Some(*v as f64),
            Self::Uint(v) => Some(*v as f64),
            Self::Named { value, .. } => Some(*value as f64),
            Self::Str(_) | Self::Bytes(_) | Self::Missing => None,
        }
    }
}

impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Uint(v) => write!(f, "{v}"),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Bytes(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Self::Missing => f.write_str("(missing)"),
            Self::Named { text, .. } => f.write_str(text),
        }
    }
}

/// A batch of streamed events and running totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// Events in kernel time order per CPU (not merged across CPUs).
    pub events: Vec<Event>,
    /// Per-probe totals since the helper loaded its programs.
    pub stats: Vec<ProbeStats>,
}

/// Running totals of one streamed probe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStats {
    /// [`ProbeInfo::key`].
    pub probe: ProbeKey,
    /// Records lost in the kernel because the ring buffer was full.
    pub kernel_drops: u64,
    /// Batches for this client dropped because it read too slowly (in events).
    pub client_drops: u64,
}

/// One decoded kernel event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// [`ProbeInfo::key`] of the probe that produced it.
    pub probe: ProbeKey,
    /// CPU it happened on.
    pub cpu: u32,
    /// ns of `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// Kernel pid (thread id) of the current task.
    pub pid: u32,
    /// Process id of the current task.
    pub tgid: u32,
    /// Command name of the current task.
    pub comm: String,
    /// The probe's own fields.
    pub data: EventData,
}

/// Probe-specific fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventData {
    /// `sched:sched_switch`.
    SchedSwitch {
        /// Task leaving the CPU.
        prev_pid: u32,
        /// Its command name.
        prev_comm: String,
        /// Its kernel priority.
        prev_prio: i32,
        /// 0 = preempted while runnable; else `TASK_*` state bits.
        prev_state: u64,
        /// Task taking the CPU.
        next_pid: u32,
        /// Its command name.
        next_comm: String,
        /// Its kernel priority.
        next_prio: i32,
    },
    /// `sched:sched_wakeup`.
    SchedWakeup {
        /// Task woken.
        pid: u32,
        /// Its command name.
        comm: String,
        /// Its kernel priority.
        prio: i32,
        /// CPU it was queued on.
        target_cpu: u32,
    },
    /// `sched:sched_process_fork`.
    SchedFork {
        /// Parent pid.
        parent_pid: u32,
        /// New child pid.
        child_pid: u32,
    },
    /// `sched:sched_process_exec`.
    SchedExec {
        /// Pid after exec.
        pid: u32,
        /// Pid before exec.
        old_pid: u32,
        /// Program path.
        filename: String,
    },
    /// `sched:sched_process_exit`.
    SchedExit {
        /// Exiting task.
        pid: u32,
        /// Its kernel priority.
        prio: i32,
        /// The whole process is gone.
        group_dead: bool,
    },
    /// `syscalls:sys_enter_openat`.
    Openat {
        /// Directory fd (`-100` = `AT_FDCWD`).
        dfd: i32,
        /// Path as passed by the task.
        filename: String,
        /// `O_*` flags.
        flags: u32,
        /// Creation mode.
        mode: u32,
    },
    /// Any tracepoint, decoded generically: one value per
    /// [`ProbeInfo::fields`] entry, in that order.
    Fields(Vec<FieldValue>),
}

/// Cumulative in-kernel aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregates {
    /// When the maps were read, ns of `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// `(syscall number, count)` for every syscall seen, if counting is on.
    pub syscall_counts: Vec<(u32, u64)>,
    /// 64 buckets: bucket `i` counts latencies in `[2^i, 2^(i+1))` ns. Empty
    /// when the latency probe is off.
    pub latency_log2_ns: Vec<u64>,
    /// Function probes that are enabled, and tracepoints that only count
    /// ([`ProbeOptions::count_only`]; their `latency_log2_ns` is empty).
    pub functions: Vec<FunctionStats>,
}

/// Cumulative counts of one function probe since it was enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionStats {
    /// [`ProbeInfo::key`].
    pub probe: ProbeKey,
    /// Calls (entries).
    pub calls: u64,
    /// 64 buckets of entry-to-exit time: bucket `i` counts `[2^i, 2^(i+1))` ns.
    pub latency_log2_ns: Vec<u64>,
}

/// Stack counts from the kernel for one interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackBatch {
    /// Start of the interval the counts cover, ns of `CLOCK_MONOTONIC`.
    pub start_ns: u64,
    /// End of the interval.
    pub end_ns: u64,
    /// Frame names first used in this batch (interned: later batches refer
    /// to them by id only). A long table comes in several batches, the
    /// first ones with names only and no stacks.
    pub frames: Vec<Frame>,
    /// Counts per distinct stack.
    pub stacks: Vec<StackCount>,
}

/// An interned frame name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Id used in [`StackCount::frames`], unique within a connection.
    pub id: u32,
    /// Function name, or `module+0xoffset` when it has no symbol.
    pub name: String,
    /// Kernel or user space.
    pub kernel: bool,
}

/// How often one stack was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackCount {
    /// [`ProbeInfo::key`] of the probe that captured it.
    pub probe: ProbeKey,
    /// Process id.
    pub tgid: u32,
    /// Command name of the thread.
    pub comm: String,
    /// Frame ids from the root (outermost user frame) to the leaf (innermost
    /// kernel frame): user frames first, then kernel frames.
    pub frames: Vec<u32>,
    /// Samples (on-CPU, stacks at probes) or ns blocked (off-CPU).
    pub value: u64,
}
