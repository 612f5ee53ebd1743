//! Borrowed mirrors of the message types, for the recovery scan.
//!
//! A scan of a recording without an index only needs each event's probe and
//! timestamp, but postcard is not self-describing: every field must be
//! parsed to find the next one. These types parse the same bytes as
//! [`FrameBody`](super::FrameBody) with strings borrowed from the frame
//! instead of allocated: a 10-million-event scan went from 3.0 s to 1.8 s
//! (`cargo xtask bench recording`).
//!
//! A generic event's fields are read one by one and dropped
//! ([`SkippedFields`]) instead of collected. Strings stay `&str`, UTF-8
//! checked, even those the scan does not read: borrowing them as bytes
//! skipped the check (`from_utf8` was 9 % of the overview pass) but let the
//! scan accept frames the decoder refuses, which the `recording` fuzz
//! target caught ("a frame the scan accepted fails to decode"); what the
//! scan accepts must decode.
//!
//! They must match `messages.rs` field for field and variant for variant.
//! The round-trip tests check it: a scan of every message and event kind
//! must give the same totals as the writer.

#![expect(
    dead_code,
    reason = "fields are parsed only to move past them; the encoding is what matters"
)]

use super::{RecordingIndex, RecordingTotals};
use crate::ProbeKey;
use crate::{Aggregates, HelperInfo, PackData, ProbeInfo, ProbeStats, ProcessFilter, StackBatch};
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use std::fmt;

/// Mirror of [`FrameBody`](super::FrameBody).
#[derive(Deserialize)]
pub(super) enum ScanBody<'a> {
    #[serde(borrow)]
    Message(ScanFrame<'a>),
    Index(RecordingIndex),
}

/// Mirror of [`RecordedFrame`](super::RecordedFrame).
#[derive(Deserialize)]
pub(super) struct ScanFrame<'a> {
    pub(super) recv_ns: u64,
    #[serde(borrow)]
    message: ScanMessage<'a>,
}

impl ScanFrame<'_> {
    /// Adds this frame to `totals` as [`RecordingTotals::add`] would.
    pub(super) fn add_to(&self, totals: &mut RecordingTotals) {
        totals.add_frame(self.recv_ns);
        match &self.message {
            ScanMessage::Batch(batch) => totals.add_batch(
                batch.events.iter().map(|event| (event.probe, event.ts_ns)),
                &batch.stats,
            ),
            ScanMessage::Aggregates(_) | ScanMessage::PackData(_) => totals.aggregates += 1,
            ScanMessage::Stacks(_) => totals.stack_batches += 1,
            ScanMessage::Error { .. } => totals.errors += 1,
            ScanMessage::Hello(_)
            | ScanMessage::Probes(_)
            | ScanMessage::ProbeState { .. }
            | ScanMessage::ProbeAdded(_)
            | ScanMessage::Tracepoints(_)
            | ScanMessage::KernelFunctions { .. }
            | ScanMessage::Filter(_)
            | ScanMessage::VerifierLog { .. } => {}
        }
    }

    /// What [`Recording::glance`](super::Recording::glance) shows of each
    /// streamed event of this frame.
    pub(super) fn glances(&self) -> impl Iterator<Item = EventGlance<'_>> {
        let events = match &self.message {
            ScanMessage::Batch(batch) => batch.events.as_slice(),
            _ => &[],
        };
        events.iter().map(|event| EventGlance {
            probe: event.probe,
            cpu: event.cpu,
            ts_ns: event.ts_ns,
            pid: event.pid,
            tgid: event.tgid,
            wakeup: matches!(event.data, ScanEventData::SchedWakeup { .. }),
            switch: match event.data {
                ScanEventData::SchedSwitch {
                    prev_pid,
                    prev_state,
                    next_pid,
                    next_comm,
                    ..
                } => Some(SwitchGlance {
                    prev_pid,
                    prev_state,
                    next_pid,
                    next_comm,
                }),
                _ => None,
            },
        })
    }
}

/// One streamed event as a fast pass over a recording sees it: where and
/// when, and for a `sched_switch` who took the CPU. Strings are borrowed
/// from the frame; nothing is allocated per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventGlance<'a> {
    /// [`Event::probe`](crate::Event::probe).
    pub probe: ProbeKey,
    /// [`Event::cpu`](crate::Event::cpu).
    pub cpu: u32,
    /// [`Event::ts_ns`](crate::Event::ts_ns).
    pub ts_ns: u64,
    /// [`Event::pid`](crate::Event::pid).
    pub pid: u32,
    /// [`Event::tgid`](crate::Event::tgid).
    pub tgid: u32,
    /// Whether it is a [`EventData::SchedWakeup`](crate::EventData::SchedWakeup).
    pub wakeup: bool,
    /// Present for a [`EventData::SchedSwitch`](crate::EventData::SchedSwitch).
    pub switch: Option<SwitchGlance<'a>>,
}

/// The fields of a `sched_switch` a summary needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchGlance<'a> {
    /// The task leaving.
    pub prev_pid: u32,
    /// Why it left (`TASK_REPORT` bits).
    pub prev_state: u64,
    /// The task taking the CPU.
    pub next_pid: u32,
    /// Its command name.
    pub next_comm: &'a str,
}

/// Mirror of [`HelperMessage`](crate::HelperMessage).
#[derive(Deserialize)]
enum ScanMessage<'a> {
    Hello(HelperInfo),
    Probes(Vec<ProbeInfo>),
    ProbeState {
        probe: &'a str,
        enabled: bool,
    },
    #[serde(borrow)]
    Batch(ScanBatch<'a>),
    Aggregates(Aggregates),
    Error {
        message: &'a str,
    },
    ProbeAdded(ProbeInfo),
    Tracepoints(Vec<&'a str>),
    KernelFunctions {
        contains: &'a str,
        names: Vec<&'a str>,
        truncated: bool,
    },
    Filter(ProcessFilter),
    Stacks(StackBatch),
    PackData(PackData),
    VerifierLog {
        probe: &'a str,
        log: &'a str,
    },
}

/// Mirror of [`EventBatch`](crate::EventBatch).
#[derive(Deserialize)]
struct ScanBatch<'a> {
    #[serde(borrow)]
    events: Vec<ScanEvent<'a>>,
    stats: Vec<ProbeStats>,
}

/// Mirror of [`Event`](crate::Event).
#[derive(Deserialize)]
struct ScanEvent<'a> {
    probe: ProbeKey,
    cpu: u32,
    ts_ns: u64,
    pid: u32,
    tgid: u32,
    comm: &'a str,
    #[serde(borrow)]
    data: ScanEventData<'a>,
}

/// Mirror of [`EventData`](crate::EventData).
#[derive(Deserialize)]
enum ScanEventData<'a> {
    SchedSwitch {
        prev_pid: u32,
        prev_comm: &'a str,
        prev_prio: i32,
        prev_state: u64,
        next_pid: u32,
        next_comm: &'a str,
        next_prio: i32,
    },
    SchedWakeup {
        pid: u32,
        comm: &'a str,
        prio: i32,
        target_cpu: u32,
    },
    SchedFork {
        parent_pid: u32,
        child_pid: u32,
    },
    SchedExec {
        pid: u32,
        old_pid: u32,
        filename: &'a str,
    },
    SchedExit {
        pid: u32,
        prio: i32,
        group_dead: bool,
    },
    Openat {
        dfd: i32,
        filename: &'a str,
        flags: u32,
        mode: u32,
    },
    Fields(SkippedFields),
}

/// A generic event's fields (a `Vec<FieldValue>`), read and dropped one by
/// one: nothing is allocated.
struct SkippedFields;

impl<'de> Deserialize<'de> for SkippedFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Skip;
        impl<'de> Visitor<'de> for Skip {
            type Value = SkippedFields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of field values")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SkippedFields, A::Error> {
                while seq.next_element::<ScanFieldValue<'de>>()?.is_some() {}
                Ok(SkippedFields)
            }
        }
        deserializer.deserialize_seq(Skip)
    }
}

/// Mirror of [`FieldValue`](crate::FieldValue), borrowed.
#[derive(Deserialize)]
enum ScanFieldValue<'a> {
    Int(i64),
    Uint(u64),
    Str(&'a str),
    Bytes(&'a [u8]),
    Missing,
    Named { value: i64, text: &'a str },
}
