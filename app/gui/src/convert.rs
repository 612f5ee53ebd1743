//! The one place where wire types become the GUI's model types.

use crate::update::{Capability, HelperSummary, Probe, ProbeCount, ProbeDrops, ProbeKind, Update};
use microscope_wire as wire;
use std::collections::BTreeMap;
use std::time::Instant;

impl From<wire::ProbeKind> for ProbeKind {
    fn from(kind: wire::ProbeKind) -> Self {
        match kind {
            wire::ProbeKind::Stream => Self::Stream,
            wire::ProbeKind::SyscallCounts => Self::SyscallCounts,
            wire::ProbeKind::SyscallLatency => Self::SyscallLatency,
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
        wire::HelperMessage::Probes(probes) => {
            Update::Probes(probes.into_iter().map(Probe::from).collect())
        }
        wire::HelperMessage::ProbeState { probe, enabled } => Update::ProbeState { probe, enabled },
        wire::HelperMessage::Batch(batch) => {
            // Counting here, on the ingest thread, keeps the channel to the UI
            // small: one entry per probe instead of one per event.
            let mut counts = BTreeMap::<u16, u64>::new();
            for event in &batch.events {
                *counts.entry(event.probe).or_default() += 1;
            }
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
        },
        wire::HelperMessage::Error { message } => Update::HelperError { message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(probe: u16) -> wire::Event {
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
            })
        );
    }

    #[test]
    fn an_unavailable_probe_keeps_its_reason() {
        let probe = Probe::from(wire::ProbeInfo {
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
