//! The probes switched on when the app connects to a helper, so that the
//! map lights within a second instead of waiting, grey, for someone to
//! tick boxes.
//!
//! They are chosen to cost little on every machine:
//! - each is a tracepoint that is *counted in the kernel* (one per-CPU
//!   increment per hit, [`microscope_wire::ProbeOptions::count_only`]): no
//!   record is copied to the ring buffer, nothing is streamed per event;
//!   the helper reads the counts four times a second;
//! - none is a `syscalls:`/`raw_syscalls:` tracepoint. Enabling any of
//!   those sends *every* system call of every task through the kernel's
//!   slow syscall path (about a quarter slower on a syscall-bound loop,
//!   whatever the program does), so system calls are counted only when
//!   someone asks (the "System calls" node says so);
//! - each fires at the pace of real work in its subsystem (a wake-up, a
//!   page fault, a block request, a packet queued), not at every lock or
//!   allocation.
//!
//! `microscope --no-default-probes` leaves them off.

use crate::update::{Probe, ProbeKind};
use std::collections::BTreeSet;

/// One cheap tracepoint per subsystem of the built-in map, counted in the
/// kernel.
pub const DEFAULT_PROBES: &[&str] = &[
    // Scheduler: a task is made runnable (rarer than context switches).
    "sched:sched_waking",
    // Process lifecycle: a process or thread is created.
    "task:task_newtask",
    // Memory: a program touches memory that is not mapped yet.
    "exceptions:page_fault_user",
    // Interrupts: a softirq runs (timers, network, block completions).
    "irq:softirq_entry",
    // Locking: a task has to wait for a contended lock.
    "lock:contention_begin",
    // Page cache: a page of a file is read into the cache.
    "filemap:mm_filemap_add_to_page_cache",
    // ext4: a buffered write begins.
    "ext4:ext4_da_write_begin",
    // Block layer: a request is sent to the device.
    "block:block_rq_issue",
    // Sockets: a program sent data on a socket.
    "sock:sock_send_length",
    // IP: a route is looked up.
    "fib:fib_table_lookup",
    // Network devices: a packet is queued for sending.
    "net:net_dev_queue",
];

/// The default probes to switch on now, of those the helper offers: the
/// ones available here that are not on (or asked for) already, and that it
/// runs through its generic tracepoint programs (only those can count in
/// the kernel without streaming; a pack may have given an id another kind).
pub fn to_switch_on<'a>(probes: &'a [Probe], wanted: &BTreeSet<String>) -> Vec<&'a str> {
    DEFAULT_PROBES
        .iter()
        .filter_map(|id| probes.iter().find(|p| p.id == *id))
        .filter(|p| p.kind == ProbeKind::Fields)
        .filter(|p| p.unavailable_reason.is_none() && !p.enabled && !wanted.contains(&p.id))
        .map(|p| p.id.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(id: &str, enabled: bool, unavailable: Option<&str>) -> Probe {
        Probe {
            id: id.into(),
            key: 1,
            subsystem: String::new(),
            description: String::new(),
            kind: ProbeKind::Fields,
            unavailable_reason: unavailable.map(str::to_owned),
            enabled,
            fields: Vec::new(),
        }
    }

    #[test]
    fn defaults_switch_on_only_what_is_offered_available_and_off() {
        let probes = vec![
            probe("sched:sched_waking", false, None),
            probe("block:block_rq_issue", true, None),
            probe("net:net_dev_queue", false, Some("no such tracepoint")),
            probe("irq:softirq_entry", false, None),
            probe("lock:contention_begin", false, None),
            probe("sched:sched_switch", false, None),
            Probe {
                kind: ProbeKind::Stream,
                ..probe("task:task_newtask", false, None)
            },
        ];
        let wanted: BTreeSet<String> = ["lock:contention_begin".to_owned()].into();
        assert_eq!(
            to_switch_on(&probes, &wanted),
            vec!["sched:sched_waking", "irq:softirq_entry"]
        );
        assert!(to_switch_on(&[], &BTreeSet::new()).is_empty());
    }

    #[test]
    fn no_default_probe_touches_system_calls() {
        assert!(
            DEFAULT_PROBES
                .iter()
                .all(|id| !id.starts_with("syscalls:") && !id.starts_with("raw_syscalls:")),
            "a syscall tracepoint slows every system call on the machine"
        );
    }

    #[test]
    fn every_default_probe_is_in_the_builtin_pack() {
        let catalogue = microscope_catalogue::Catalogue::builtin();
        for id in DEFAULT_PROBES {
            assert!(
                catalogue.probe(id).is_some(),
                "{id} is not in the built-in pack"
            );
        }
    }
}
