//! The one place where wire types become the GUI's model types.

use crate::update::{
    Capability, HelperSummary, Probe, ProbeCount, ProbeDrops, ProbeKind, RECENT_PER_BATCH,
    SchedRecord, SwitchRecord, Update, WakeupRecord,
};
use microscope_wire as wire;
use microscope_wire::ProbeKey;
use std::collections::BTreeMap;
use std::time::Instant;

impl From<wire::ProbeKind> for ProbeKind {
    fn from(kind: wire::ProbeKind) -> Self {
        match kind {
            wire::ProbeKind::Stream => Self::Stream,
            wire::ProbeKind::SyscallCounts => Self::SyscallCounts,
            wire::ProbeKind::SyscallLatency => Self::SyscallLatency,
            wire::ProbeKind::Fields => Self::Fields,
            wire::ProbeKind::Function => Self::Function,
            wire::ProbeKind::Stacks => Self::Stacks,
            wire::ProbeKind::Pack => Self::Pack,
            wire::ProbeKind::TimeStacks => Self::TimeStacks,
        }
    }
}

impl From<wire::ProbeInfo> for Probe {
    fn from(info: wire::ProbeInfo) -> Self {
        Self {
            id: info.id,
            key: info.key,
            subsystem: info.subsystem,
            description: info.description,
            kind: info.kind.into(),
            unavailable_reason: (!info.availability.available).then_some(info.availability.reason),
            enabled: info.enabled,
            fields: info
                .fields
                .into_iter()
                .map(|field| (field.name, field.c_type))
                .collect(),
        }
    }
}

impl From<wire::HelperInfo> for HelperSummary {
    fn from(info: wire::HelperInfo) -> Self {
        let wire::Capabilities {
            tracefs,
            btf,
            kprobes,
            fentry,
            uprobes,
        } = info.capabilities;
        let capability = |name, availability: wire::Availability| Capability {
            name,
            available: availability.available,
            reason: availability.reason,
        };
        Self {
            helper_version: info.helper_version,
            kernel_release: info.kernel_release,
            capabilities: vec![
                capability("tracefs", tracefs),
                capability("btf", btf),
                capability("kprobes", kprobes),
                capability("fentry", fentry),
                capability("uprobes", uprobes),
            ],
        }
    }
}

/// Converts one helper message into a UI update; `None` for messages the UI
/// does not use (a repeated hello).
pub fn update_from_message(message: wire::HelperMessage, arrived: Instant) -> Option<Update> {
    Some(match message {
        wire::HelperMessage::Hello(info) => Update::Connected(info.into()),
        wire::HelperMessage::PackData(data) => Update::PackData { arrived, data },
        wire::HelperMessage::VerifierLog { probe, log } => Update::VerifierLog { probe, log },
        wire::HelperMessage::Probes(probes) => {
            Update::Probes(probes.into_iter().map(Probe::from).collect())
        }
        wire::HelperMessage::ProbeState { probe, enabled } => Update::ProbeState { probe, enabled },
        wire::HelperMessage::Batch(batch) => {
            // Counting here, on the ingest thread, keeps the channel to the UI
            // small: one entry per probe instead of one per event.
            let mut counts = BTreeMap::<ProbeKey, u64>::new();
            let mut by_comm = BTreeMap::<(ProbeKey, &str), u64>::new();
            for event in &batch.events {
                *counts.entry(event.probe).or_default() += 1;
                *by_comm.entry((event.probe, &event.comm)).or_default() += 1;
            }
            let by_comm = by_comm
                .into_iter()
                .map(|((key, comm), n)| (key, comm.to_owned(), n))
                .collect();
            // The newest few of each probe, for the event inspector.
            let mut kept = BTreeMap::<ProbeKey, usize>::new();
            let mut recent: Vec<wire::Event> = batch
                .events
                .iter()
                .rev()
                .filter(|event| {
                    let n = kept.entry(event.probe).or_default();
                    *n += 1;
                    *n <= RECENT_PER_BATCH
                })
                .cloned()
                .collect();
            recent.reverse();
            let mut sched = Vec::new();
            for event in batch.events {
                if let Some(record) = sched_record(event) {
                    sched.push(record);
                }
            }
            // Batches hold each CPU's events in order but not merged across
            // CPUs; merging here (stable, so per-CPU order stays) lets a
            // wake-up on one CPU come before the switch it causes on another.
            sched.sort_by_key(SchedRecord::ts_ns);
            Update::Events {
                arrived,
                counts: counts
                    .into_iter()
                    .map(|(key, events)| ProbeCount { key, events })
                    .collect(),
                drops: batch
                    .stats
                    .iter()
                    .map(|stats| ProbeDrops {
                        key: stats.probe,
                        kernel_drops: stats.kernel_drops,
                        client_drops: stats.client_drops,
                    })
                    .collect(),
                sched,
                by_comm,
                recent,
            }
        }
        wire::HelperMessage::Aggregates(aggregates) => Update::Aggregates {
            arrived,
            syscall_total: (!aggregates.syscall_counts.is_empty()).then(|| {
                aggregates
                    .syscall_counts
                    .iter()
                    .map(|(_, count)| count)
                    .sum()
            }),
            latency_log2_ns: aggregates.latency_log2_ns,
            functions: aggregates
                .functions
                .into_iter()
                .map(|f| (f.probe, f.calls, f.latency_log2_ns))
                .collect(),
        },
        wire::HelperMessage::Error { message } => Update::HelperError { message },
        wire::HelperMessage::ProbeAdded(info) => Update::ProbeAdded(info.into()),
        wire::HelperMessage::Tracepoints(names) => Update::Tracepoints(names),
        wire::HelperMessage::KernelFunctions {
            contains,
            names,
            truncated,
        } => Update::KernelFunctions {
            contains,
            names,
            truncated,
        },
        wire::HelperMessage::Filter(filter) => Update::Filter(filter),
        wire::HelperMessage::Cost(report) => Update::Cost {
            arrived,
            snapshot: crate::cost::CostSnapshot::from_report(&report, 0.0),
        },
        wire::HelperMessage::CostWatch {
            watching,
            run_times,
        } => Update::CostWatch {
            watching,
            run_times: if run_times.available {
                Ok(())
            } else {
                Err(run_times.reason)
            },
        },
        wire::HelperMessage::Stacks(batch) => Update::Stacks(batch),
    })
}

/// The CPU timeline's records of a batch's events, merged in time order
/// (as a live batch gives them to the model).
pub fn sched_records(events: Vec<wire::Event>) -> Vec<SchedRecord> {
    let mut sched: Vec<SchedRecord> = events.into_iter().filter_map(sched_record).collect();
    sched.sort_by_key(SchedRecord::ts_ns);
    sched
}

/// The CPU timeline's part of an event, if it has one. Takes the event by
/// value so the command names move instead of being copied.
fn sched_record(event: wire::Event) -> Option<SchedRecord> {
    match event.data {
        wire::EventData::SchedSwitch {
            prev_pid,
            prev_comm,
            prev_prio,
            prev_state,
            next_pid,
            next_comm,
            next_prio,
        } => Some(SchedRecord::Switch(SwitchRecord {
            cpu: event.cpu,
            ts_ns: event.ts_ns,
            prev_pid,
            // At `sched_switch` the current task is the one leaving.
            prev_tgid: event.tgid,
            prev_comm,
            prev_prio,
            prev_state,
            next_pid,
            next_comm,
            next_prio,
        })),
        wire::EventData::SchedWakeup {
            pid, target_cpu, ..
        } => Some(SchedRecord::Wakeup(WakeupRecord {
            cpu: event.cpu,
            ts_ns: event.ts_ns,
            waker_pid: event.pid,
            waker_comm: event.comm,
            pid,
            target_cpu,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(probe: ProbeKey) -> wire::Event {
        wire::Event {
            probe,
            cpu: 0,
            ts_ns: 1,
            pid: 1,
            tgid: 1,
            comm: "init".into(),
            data: wire::EventData::SchedFork {
                parent_pid: 1,
                child_pid: 2,
            },
        }
    }

    #[test]
    fn a_batch_becomes_counts_per_probe() {
        let now = Instant::now();
        let batch = wire::EventBatch {
            events: vec![event(1), event(2), event(1)],
            stats: vec![wire::ProbeStats {
                probe: 1,
                kernel_drops: 5,
                client_drops: 0,
            }],
        };
        let update = update_from_message(wire::HelperMessage::Batch(batch), now);
        assert_eq!(
            update,
            Some(Update::Events {
                arrived: now,
                counts: vec![
                    ProbeCount { key: 1, events: 2 },
                    ProbeCount { key: 2, events: 1 }
                ],
                drops: vec![ProbeDrops {
                    key: 1,
                    kernel_drops: 5,
                    client_drops: 0
                }],
                sched: Vec::new(),
                by_comm: vec![(1, "init".into(), 2), (2, "init".into(), 1)],
                recent: vec![event(1), event(2), event(1)],
            })
        );
    }

    #[test]
    fn only_the_newest_events_of_a_batch_go_to_the_inspector() {
        let mut events: Vec<wire::Event> = (0..RECENT_PER_BATCH as u64 + 10)
            .map(|i| wire::Event {
                ts_ns: i,
                ..event(1)
            })
            .collect();
        events.push(event(2));
        let batch = wire::EventBatch {
            events,
            stats: Vec::new(),
        };
        let Some(Update::Events { recent, .. }) =
            update_from_message(wire::HelperMessage::Batch(batch), Instant::now())
        else {
            panic!("expected events");
        };
        assert_eq!(recent.len(), RECENT_PER_BATCH + 1);
        assert_eq!(recent[0].ts_ns, 10, "the oldest 10 of probe 1 are left out");
        assert_eq!(recent.last().map(|e| e.probe), Some(2));
    }

    #[test]
    fn switches_and_wakeups_become_sched_records_merged_by_time() {
        let switch = |cpu, ts_ns| wire::Event {
            probe: 1,
            cpu,
            ts_ns,
            pid: 10,
            tgid: 9,
            comm: "bash".into(),
            data: wire::EventData::SchedSwitch {
                prev_pid: 10,
                prev_comm: "bash".into(),
                prev_prio: 120,
                prev_state: 1,
                next_pid: 0,
                next_comm: "swapper/0".into(),
                next_prio: 120,
            },
        };
        let wakeup = wire::Event {
            probe: 2,
            cpu: 1,
            ts_ns: 150,
            pid: 33,
            tgid: 33,
            comm: "kworker".into(),
            data: wire::EventData::SchedWakeup {
                pid: 10,
                comm: "bash".into(),
                prio: 120,
                target_cpu: 0,
            },
        };
        // CPU 0's events, then CPU 1's, as the helper may batch them.
        let batch = wire::EventBatch {
            events: vec![switch(0, 100), switch(0, 200), wakeup, event(3)],
            stats: Vec::new(),
        };
        let Some(Update::Events { sched, counts, .. }) =
            update_from_message(wire::HelperMessage::Batch(batch), Instant::now())
        else {
            panic!("expected events");
        };
        assert_eq!(counts.len(), 3, "every probe is still counted");
        let times: Vec<u64> = sched.iter().map(SchedRecord::ts_ns).collect();
        assert_eq!(times, [100, 150, 200]);
        let SchedRecord::Switch(first) = &sched[0] else {
            panic!("expected a switch");
        };
        assert_eq!(
            (first.prev_pid, first.prev_tgid, first.prev_state),
            (10, 9, 1)
        );
        assert_eq!(
            sched[1],
            SchedRecord::Wakeup(WakeupRecord {
                cpu: 1,
                ts_ns: 150,
                waker_pid: 33,
                waker_comm: "kworker".into(),
                pid: 10,
                target_cpu: 0,
            })
        );
    }

    #[test]
    fn an_unavailable_probe_keeps_its_reason() {
        let probe = Probe::from(wire::ProbeInfo {
            fields: Vec::new(),
            id: "kprobe:do_sys_openat2".into(),
            key: 9,
            subsystem: "Files".into(),
            description: "openat".into(),
            kind: wire::ProbeKind::Stream,
            availability: wire::Availability::no("CONFIG_KPROBES is not set"),
            enabled: false,
        });
        assert!(!probe.is_available());
        assert_eq!(
            probe.unavailable_reason.as_deref(),
            Some("CONFIG_KPROBES is not set")
        );
    }

    #[test]
    fn empty_syscall_counts_mean_counting_is_off() {
        let now = Instant::now();
        let aggregates = wire::Aggregates {
            functions: Vec::new(),
            ts_ns: 0,
            syscall_counts: vec![],
            latency_log2_ns: vec![],
        };
        let Some(Update::Aggregates { syscall_total, .. }) =
            update_from_message(wire::HelperMessage::Aggregates(aggregates), now)
        else {
            panic!("expected aggregates");
        };
        assert_eq!(syscall_total, None);
    }
}
