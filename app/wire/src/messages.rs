//! The messages: what clients ask, what the helper answers and streams.

use serde::{Deserialize, Serialize};

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
}

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// One entry of the probe catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// Stable id, `category:name` for tracepoints (`sched:sched_switch`).
    pub id: String,
    /// Small number used in [`Event::probe`] instead of the id.
    pub key: u16,
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
    pub probe: u16,
    /// Records lost in the kernel because the ring buffer was full.
    pub kernel_drops: u64,
    /// Batches for this client dropped because it read too slowly (in events).
    pub client_drops: u64,
}

/// One decoded kernel event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// [`ProbeInfo::key`] of the probe that produced it.
    pub probe: u16,
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
}
