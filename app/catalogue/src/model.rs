//! The typed catalogue: what a validated manifest says, with no TOML left in
//! it.

use std::fmt;

use serde::Deserialize;

use crate::bpf::BpfProbe;
use crate::error::Location;

/// A pack's `[pack]` table: who ships these probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackInfo {
    /// Stable id, e.g. `builtin`.
    pub id: String,
    /// Name shown to people.
    pub name: String,
    /// What the pack is for, a sentence or two.
    pub description: String,
    /// The pack's own version, e.g. `1.0.0`.
    pub version: String,
    /// Where its `pack.toml` is.
    pub defined_at: Location,
}

/// One row of the subsystem map, from user space (0) down to the hardware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Position from the top, starting at 0.
    pub index: u32,
    /// Name shown beside the row, e.g. `System call interface`.
    pub name: String,
    /// The pack that defines it.
    pub pack: String,
    /// Where it is defined.
    pub defined_at: Location,
}

/// A path data takes from one subsystem to another: an arrow on the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Subsystem id the arrow starts at.
    pub from: String,
    /// Subsystem id the arrow points to.
    pub to: String,
    /// A short phrase for the path, e.g. `read/write/open enter the VFS`.
    pub label: String,
    /// The pack that defines it.
    pub pack: String,
    /// Where it is defined.
    pub defined_at: Location,
}

/// A part of the kernel: a node on the map, with its explanation and probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subsystem {
    /// Stable id, e.g. `sched`.
    pub id: String,
    /// Name shown to people, e.g. `Scheduler`.
    pub name: String,
    /// Index of the [`Layer`] it sits on.
    pub layer: u32,
    /// A short paragraph for a student: what it does and how data flows
    /// through it.
    pub explanation: String,
    /// Links to read more, on docs.kernel.org for the built-in pack.
    pub docs: Vec<String>,
    /// Kernel source paths where it lives, e.g. `kernel/sched/core.c`.
    pub source: Vec<String>,
    /// The pack that defines it.
    pub pack: String,
    /// Where it is defined.
    pub defined_at: Location,
}

/// What a probe attaches to and what it delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeType {
    /// A kernel tracepoint: every hit is streamed as a record.
    Tracepoint,
    /// A kernel function, through fentry/fexit where the kernel allows it,
    /// else kprobe/kretprobe: call rate and a latency histogram.
    Function,
    /// A function in a user-space binary or library (uprobe/uretprobe): call
    /// rate and a latency histogram.
    Uprobe,
    /// Every system call counted per syscall number, in the kernel.
    SyscallCounts,
    /// Time from syscall entry to exit, as a log2 histogram built in the
    /// kernel.
    SyscallLatency,
    /// On-CPU stack samples from a timer.
    ProfileCpu,
    /// Stacks of tasks leaving the CPU, weighted by how long they stay off.
    ProfileOffcpu,
    /// The pack's own BPF programs, from an object it ships: events,
    /// counters and histograms read from the maps its manifest names.
    Bpf,
}

impl ProbeType {
    /// Every type, in the order the manifest documentation lists them.
    pub const ALL: [Self; 8] = [
        Self::Tracepoint,
        Self::Function,
        Self::Uprobe,
        Self::SyscallCounts,
        Self::SyscallLatency,
        Self::ProfileCpu,
        Self::ProfileOffcpu,
        Self::Bpf,
    ];

    /// The spelling used in manifests, e.g. `syscall_latency`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tracepoint => "tracepoint",
            Self::Function => "function",
            Self::Uprobe => "uprobe",
            Self::SyscallCounts => "syscall_counts",
            Self::SyscallLatency => "syscall_latency",
            Self::ProfileCpu => "profile_cpu",
            Self::ProfileOffcpu => "profile_offcpu",
            Self::Bpf => "bpf",
        }
    }

    /// Whether its target is one or more tracepoints (`category:name`).
    pub fn attaches_to_tracepoints(self) -> bool {
        matches!(
            self,
            Self::Tracepoint | Self::SyscallCounts | Self::SyscallLatency
        )
    }

    /// Whether every attachment must name a dedicated program: aggregating
    /// probes count or time in the kernel, which the generic tracepoint
    /// program (it copies the record) cannot do.
    pub fn needs_program(self) -> bool {
        matches!(self, Self::SyscallCounts | Self::SyscallLatency)
    }
}

impl fmt::Display for ProbeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One eBPF program attached to one tracepoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Name of a dedicated program in the pack's eBPF object (Microscope's
    /// own object for the built-in pack). `None` means the generic tracepoint
    /// program, which copies the record so the helper can decode every field
    /// from the tracepoint's `format` file.
    pub program: Option<String>,
    /// Tracepoint category, e.g. `block`.
    pub category: String,
    /// Tracepoint name, e.g. `block_rq_issue`.
    pub name: String,
}

impl Attachment {
    /// `category:name`, as tracefs and the manifest spell it.
    pub fn tracepoint(&self) -> String {
        format!("{}:{}", self.category, self.name)
    }
}

/// Where a probe attaches, by kind of target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One or more tracepoints, attached together when the probe is enabled
    /// (types `tracepoint`, `syscall_counts`, `syscall_latency`).
    Tracepoints(Vec<Attachment>),
    /// A kernel function (type `function`).
    Function {
        /// The function's symbol, as in `/proc/kallsyms`.
        name: String,
        /// A dedicated program, if the pack ships one; else the helper's
        /// generic entry/return pair.
        program: Option<String>,
    },
    /// A function in a user-space file (type `uprobe`).
    Uprobe {
        /// An absolute path, or a library name (`libc.so.6`) the helper
        /// looks up the way the dynamic linker does.
        binary: String,
        /// The symbol in that file.
        symbol: String,
        /// A dedicated program, if the pack ships one.
        program: Option<String>,
    },
    /// No target: a sampler the helper sets up on every CPU (types
    /// `profile_cpu`, `profile_offcpu`).
    Sampler {
        /// A dedicated program, if the pack ships one; else the helper's own.
        program: Option<String>,
    },
    /// The pack's own programs (type `bpf`).
    Bpf(BpfProbe),
}

/// What one field of a tracepoint record means, for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDoc {
    /// Field name as in the tracepoint's `format` file.
    pub name: String,
    /// What it means and its unit.
    pub meaning: String,
}

/// A probe a client can enable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeDef {
    /// Wire id: `category:name` for tracepoints, `func:NAME` for kernel
    /// functions, `uprobe:...` for user-space functions.
    pub id: String,
    /// Id of the [`Subsystem`] it belongs to.
    pub subsystem: String,
    /// What it attaches to and what it delivers.
    pub kind: ProbeType,
    /// Where it attaches.
    pub target: Target,
    /// One line for a person.
    pub summary: String,
    /// The record fields worth looking at, in the order the author wrote
    /// them.
    pub fields: Vec<FieldDoc>,
    /// Kernel features it needs beyond what its type implies (`kprobes`,
    /// `fentry`, a `CONFIG_` option...). Informational: the helper checks
    /// what the running kernel allows.
    pub requires: Vec<String>,
    /// Whether the app should suggest capturing a stack with each event.
    pub stacks: bool,
    /// The pack that defines it.
    pub pack: String,
    /// Where it is defined.
    pub defined_at: Location,
}

impl ProbeDef {
    /// The tracepoint attachments, empty for probes of other types.
    pub fn attachments(&self) -> &[Attachment] {
        match &self.target {
            Target::Tracepoints(attachments) => attachments,
            _ => &[],
        }
    }

    /// The meaning of record field `name`, if the manifest documents it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.meaning.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_manifest_spelling() {
        #[derive(Deserialize)]
        struct One {
            kind: ProbeType,
        }
        for kind in ProbeType::ALL {
            let parsed: One = toml::from_str(&format!("kind = \"{kind}\"")).unwrap();
            assert_eq!(parsed.kind, kind);
        }
    }
}
