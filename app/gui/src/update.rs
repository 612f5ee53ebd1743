//! The GUI's own types for what the helper reports, and the updates the
//! ingest thread sends to the UI.
//!
//! These mirror the wire types only where the UI needs them; see
//! [`convert`](crate::convert) for the one place that maps one to the other.

use std::time::Instant;

/// How a probe's data arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// One event per occurrence, counted per time bucket.
    Stream,
    /// Cumulative in-kernel counts per syscall.
    SyscallCounts,
    /// Cumulative in-kernel log2 latency histogram.
    SyscallLatency,
}

/// One probe of the catalogue, as the UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Stable id, e.g. `sched:sched_switch`; also the checkbox label.
    pub id: String,
    /// Short key used in event batches.
    pub key: u16,
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
    pub key: u16,
    /// Events in the batch.
    pub events: u64,
}

/// Running drop totals of one streamed probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeDrops {
    /// [`Probe::key`].
    pub key: u16,
    /// Records lost in the kernel (ring buffer full), since the helper started.
    pub kernel_drops: u64,
    /// Events the helper dropped because this client read too slowly.
    pub client_drops: u64,
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
    /// Events of one batch, counted per probe.
    Events {
        /// When the batch arrived (wall clock of this process).
        arrived: Instant,
        /// Events per probe key.
        counts: Vec<ProbeCount>,
        /// Running drop totals.
        drops: Vec<ProbeDrops>,
    },
    /// In-kernel aggregates (cumulative since the probe was enabled).
    Aggregates {
        /// When the message arrived.
        arrived: Instant,
        /// Sum of all per-syscall counts, `None` if counting is off.
        syscall_total: Option<u64>,
        /// 64 log2 latency buckets in ns; empty if the latency probe is off.
        latency_log2_ns: Vec<u64>,
    },
    /// The helper reported an error (for example a probe failed to attach).
    HelperError {
        /// A sentence for a person.
        message: String,
    },
}
