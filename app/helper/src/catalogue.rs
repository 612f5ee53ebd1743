//! The probes this helper ships: which eBPF programs each one attaches, to
//! which tracepoints, and how its data is delivered.
//!
//! TODO(#3): move this table into `assets/` as the built-in probe pack.

use microscope_wire::ProbeKind;
use probes_common::EventKind;

/// One eBPF program and the tracepoint it attaches to.
#[derive(Clone, Copy, Debug)]
pub struct Attachment {
    /// Function name of the program in the eBPF object.
    pub program: &'static str,
    /// Tracepoint category.
    pub category: &'static str,
    /// Tracepoint name.
    pub name: &'static str,
}

/// A probe a client can enable.
#[derive(Clone, Copy, Debug)]
pub struct ProbeDef {
    /// Id on the wire, `category:name`.
    pub id: &'static str,
    /// Subsystem it belongs to.
    pub subsystem: &'static str,
    /// One line for a person.
    pub description: &'static str,
    /// How its data arrives.
    pub kind: ProbeKind,
    /// For streamed probes, the ring buffer record kind.
    pub event: Option<EventKind>,
    /// Programs attached together when it is enabled.
    pub attachments: &'static [Attachment],
}

const fn tp(program: &'static str, category: &'static str, name: &'static str) -> Attachment {
    Attachment {
        program,
        category,
        name,
    }
}

/// Every built-in probe. The index of a probe is its wire key.
pub const PROBES: &[ProbeDef] = &[
    ProbeDef {
        id: "sched:sched_switch",
        subsystem: "Scheduler",
        description: "A CPU switches from one task to another (who left, why, who runs next).",
        kind: ProbeKind::Stream,
        event: Some(EventKind::SchedSwitch),
        attachments: &[tp("sched_switch", "sched", "sched_switch")],
    },
    ProbeDef {
        id: "sched:sched_wakeup",
        subsystem: "Scheduler",
        description: "A sleeping task becomes runnable and is queued on a CPU.",
        kind: ProbeKind::Stream,
        event: Some(EventKind::SchedWakeup),
        attachments: &[tp("sched_wakeup", "sched", "sched_wakeup")],
    },
    ProbeDef {
        id: "sched:sched_process_fork",
        subsystem: "Process lifecycle",
        description: "A task creates a child process or thread (fork, clone).",
        kind: ProbeKind::Stream,
        event: Some(EventKind::SchedFork),
        attachments: &[tp("sched_process_fork", "sched", "sched_process_fork")],
    },
    ProbeDef {
        id: "sched:sched_process_exec",
        subsystem: "Process lifecycle",
        description: "A process replaces its program with a new one (execve).",
        kind: ProbeKind::Stream,
        event: Some(EventKind::SchedExec),
        attachments: &[tp("sched_process_exec", "sched", "sched_process_exec")],
    },
    ProbeDef {
        id: "sched:sched_process_exit",
        subsystem: "Process lifecycle",
        description: "A task exits; `group_dead` marks the end of the whole process.",
        kind: ProbeKind::Stream,
        event: Some(EventKind::SchedExit),
        attachments: &[tp("sched_process_exit", "sched", "sched_process_exit")],
    },
    ProbeDef {
        id: "syscalls:sys_enter_openat",
        subsystem: "System calls",
        description: "A task asks to open a file by path (openat), with the path it passed.",
        kind: ProbeKind::Stream,
        event: Some(EventKind::Openat),
        attachments: &[tp("sys_enter_openat", "syscalls", "sys_enter_openat")],
    },
    ProbeDef {
        id: "raw_syscalls:sys_enter",
        subsystem: "System calls",
        description: "Every system call entered, counted per syscall number in the kernel.",
        kind: ProbeKind::SyscallCounts,
        event: None,
        attachments: &[tp("sys_enter_count", "raw_syscalls", "sys_enter")],
    },
    ProbeDef {
        id: "syscalls:latency",
        subsystem: "System calls",
        description: "Time from syscall entry to exit, as a log2 histogram built in the kernel.",
        kind: ProbeKind::SyscallLatency,
        event: None,
        attachments: &[
            tp("sys_enter_latency", "raw_syscalls", "sys_enter"),
            tp("sys_exit_latency", "raw_syscalls", "sys_exit"),
        ],
    },
];

/// The wire key of probe `id`, if it exists.
#[cfg(test)]
pub fn key_of(id: &str) -> Option<u16> {
    PROBES.iter().position(|p| p.id == id).map(|i| i as u16)
}

/// The probe with wire key `key`.
pub fn probe(key: u16) -> Option<&'static ProbeDef> {
    PROBES.get(usize::from(key))
}

/// The wire key of the streamed probe producing `kind` records.
pub fn key_of_event(kind: EventKind) -> u16 {
    PROBES
        .iter()
        .position(|p| p.event == Some(kind))
        .map_or(u16::MAX, |i| i as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_has_exactly_one_probe() {
        // Generic tracepoint records belong to whichever tracepoint their
        // slot traces, not to a built-in probe.
        for kind in EventKind::ALL
            .into_iter()
            .filter(|k| *k != EventKind::Tracepoint)
        {
            assert_eq!(
                PROBES.iter().filter(|p| p.event == Some(kind)).count(),
                1,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn ids_are_unique_and_streams_have_events() {
        for (i, p) in PROBES.iter().enumerate() {
            assert_eq!(key_of(p.id), Some(i as u16));
            assert_eq!(p.event.is_some(), p.kind == ProbeKind::Stream, "{}", p.id);
            assert!(!p.attachments.is_empty());
        }
        assert_eq!(key_of("nope:nope"), None);
    }
}
