//! One system call followed end to end: the kernel events it caused, on a
//! time axis, and where its latency went.
//!
//! The events come from the probes a person switched on: the inspector's
//! recent events live, and in a replay the events around the call read
//! from the recording ([`CallEvents`]), since the inspector keeps only the
//! newest events of each probe and a busy probe such as `sched_switch`
//! forgets the ones around an older call. They are linked to the call in three
//! ways, and each step says which:
//!
//! - **same thread**: the event ran in the calling thread between its entry
//!   and its exit (readahead, page-cache insertions, a bio it submitted, its
//!   own switch out) — certain;
//! - **same request**: a block request's issue or completion names the
//!   device and a sector range that holds a sector the thread queued — the
//!   kernel's own identity for a request, certain (`block_rq_complete` runs
//!   in an interrupt, in whatever task was on that CPU);
//! - **inferred**: a block request the thread issued itself, matched to its
//!   completion by device and sector, but without a bio seen first, or
//!   scheduler events matched by thread id and time only — very likely, not
//!   proven.
//!
//! The latency breakdown cuts `[entry, exit]` at milestones (first block
//! activity, issue, completion, wake-up, back on a CPU) kept in time order,
//! so its parts always add up to the call's measured latency.

use crate::event_fields::{Field, fields};
use microscope_wire::{Event, EventData};
use std::fmt;

/// What an event means for following a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `syscalls:sys_enter_NAME`.
    SyscallEnter(String),
    /// `syscalls:sys_exit_NAME`, with its return value.
    SyscallExit(String, i64),
    /// A bio enters the block layer (`block_bio_queue`), or is queued
    /// (`block_rq_insert`).
    BlockQueue(Request),
    /// A request goes to the driver (`block_rq_issue`).
    BlockIssue(Request),
    /// The device finished a request (`block_rq_complete`).
    BlockComplete(Request),
    /// A task leaves a CPU (`sched_switch`): `state` 0 is preempted.
    SwitchOut {
        /// The task leaving.
        pid: u32,
        /// Its `prev_state`.
        state: u64,
    },
    /// A task gets a CPU (the other half of `sched_switch`).
    SwitchIn {
        /// The task taking the CPU.
        pid: u32,
    },
    /// A task is woken (`sched_wakeup`).
    Wakeup {
        /// The task woken.
        pid: u32,
    },
    /// An interrupt handler starts (`irq_handler_entry`).
    IrqEntry {
        /// The interrupt number.
        irq: i64,
        /// The handler's name (`virtio1-req.0`), empty when not recorded.
        name: String,
    },
    /// An interrupt handler ends (`irq_handler_exit`).
    IrqExit {
        /// The interrupt number.
        irq: i64,
    },
    /// Anything else, linked only if it ran in the thread during the call.
    Other,
}

/// A block request's identity as the kernel gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Device, `major << 20 | minor`.
    pub dev: u64,
    /// First sector (512 bytes).
    pub sector: u64,
    /// Sectors, 0 when the event does not say.
    pub sectors: u64,
}

impl Request {
    /// Whether this request covers `sector` of the same device.
    fn covers(&self, other: &Request) -> bool {
        self.dev == other.dev
            && other.sector >= self.sector
            && other.sector < self.sector + self.sectors.max(1)
    }
}

/// An event reduced to what following a call needs; built from the
/// inspector's events by [`observe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Probe id (`block:block_rq_issue`).
    pub probe: String,
    /// CPU.
    pub cpu: u32,
    /// Kernel time, ns.
    pub ts_ns: u64,
    /// Thread id of the task running when it fired.
    pub pid: u32,
    /// Its command.
    pub comm: String,
    /// What it means.
    pub kind: Kind,
}

/// Turns an event of probe `probe` (with generic field names `names`) into
/// an [`Observed`].
pub fn observe(probe: &str, names: &[String], event: &Event) -> Observed {
    let kind = kind_of(probe, names, event);
    Observed {
        probe: probe.to_owned(),
        cpu: event.cpu,
        ts_ns: event.ts_ns,
        pid: event.pid,
        comm: event.comm.clone(),
        kind,
    }
}

fn kind_of(probe: &str, names: &[String], event: &Event) -> Kind {
    match &event.data {
        EventData::SchedSwitch {
            prev_pid,
            prev_state,
            ..
        } => {
            return Kind::SwitchOut {
                pid: *prev_pid,
                state: *prev_state,
            };
        }
        EventData::SchedWakeup { pid, .. } => return Kind::Wakeup { pid: *pid },
        _ => {}
    }
    let values = fields(&event.data, names);
    let number = |name: &str| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, f)| match f {
                Field::Unsigned(n) => Some(*n as i64),
                Field::Signed(n) | Field::Named(n, _) => Some(*n),
                _ => None,
            })
    };
    match probe {
        "irq:irq_handler_entry" => {
            let name = values
                .iter()
                .find_map(|(n, f)| match f {
                    Field::Text(text) if *n == "name" => Some((*text).to_owned()),
                    _ => None,
                })
                .unwrap_or_default();
            return Kind::IrqEntry {
                irq: number("irq").unwrap_or(-1),
                name,
            };
        }
        "irq:irq_handler_exit" => {
            return Kind::IrqExit {
                irq: number("irq").unwrap_or(-1),
            };
        }
        _ => {}
    }
    if let Some(call) = probe.strip_prefix("syscalls:sys_enter_") {
        return Kind::SyscallEnter(call.to_owned());
    }
    if let Some(call) = probe.strip_prefix("syscalls:sys_exit_") {
        return Kind::SyscallExit(call.to_owned(), number("ret").unwrap_or(0));
    }
    if let Some(name) = probe.strip_prefix("block:") {
        let (Some(dev), Some(sector)) = (number("dev"), number("sector")) else {
            return Kind::Other;
        };
        let sectors = number("nr_sector")
            .or_else(|| number("bytes").map(|b| b / 512))
            .unwrap_or(0);
        let request = Request {
            dev: dev as u64,
            sector: sector as u64,
            sectors: sectors.max(0) as u64,
        };
        return match name {
            "block_bio_queue" | "block_rq_insert" | "block_getrq" => Kind::BlockQueue(request),
            "block_rq_issue" => Kind::BlockIssue(request),
            "block_rq_complete" => Kind::BlockComplete(request),
            _ => Kind::Other,
        };
    }
    Kind::Other
}

/// A `sched_switch` is also the switch in of its next task: the events
/// with each switch doubled into its two halves.
fn with_switch_ins(events: &[Observed], raw: &[Event]) -> Vec<Observed> {
    let mut out = Vec::with_capacity(events.len());
    for (observed, event) in events.iter().zip(raw) {
        out.push(observed.clone());
        if let EventData::SchedSwitch { next_pid, .. } = &event.data {
            out.push(Observed {
                kind: Kind::SwitchIn { pid: *next_pid },
                ..observed.clone()
            });
        }
    }
    out
}

/// `observe` for a list of `(probe id, field names, event)`, switches
/// doubled into their two halves, sorted by time.
pub fn observe_all<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a [String], &'a Event)>,
) -> Vec<Observed> {
    let mut observed = Vec::new();
    let mut raw = Vec::new();
    for (probe, names, event) in events {
        observed.push(observe(probe, names, event));
        raw.push(event.clone());
    }
    let mut all = with_switch_ins(&observed, &raw);
    all.sort_by_key(|o| o.ts_ns);
    all
}

/// `observe_all` for events named by probe key: the probes say each key's
/// id and field names (a key no probe names is `?`).
pub fn observe_keyed<'a>(
    probes: &[crate::Probe],
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<Observed> {
    let names: std::collections::HashMap<microscope_wire::ProbeKey, (&str, Vec<String>)> = probes
        .iter()
        .map(|p| {
            let names = p.fields.iter().map(|(name, _)| name.clone()).collect();
            (p.key, (p.id.as_str(), names))
        })
        .collect();
    observe_all(events.into_iter().map(|e| {
        names
            .get(&e.probe)
            .map_or(("?", &[][..], e), |(id, f)| (*id, f.as_slice(), e))
    }))
}

/// The events of a time range around one call, read from a recording so
/// the waterfall sees every event, not only those the inspector still
/// keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEvents {
    /// The thread whose call was asked for.
    pub tid: u32,
    /// The moment picked in the call (its entry, or any event in it).
    pub at_ns: u64,
    /// Start of the range read, kernel ns.
    pub from_ns: u64,
    /// End of the range read, kernel ns.
    pub to_ns: u64,
    /// Every event of the range, as [`observe_all`] gives them.
    pub events: Vec<Observed>,
    /// Whether the range held more than [`MAX_CALL_EVENTS`] events and only
    /// its start was kept.
    pub truncated: bool,
}

impl CallEvents {
    /// Follows the asked call through these events.
    pub fn follow(&self) -> Result<Waterfall, FollowError> {
        follow(&self.events, self.tid, self.at_ns)
    }
}

/// Most events read from a recording around one call (about 100 bytes
/// each in memory).
pub const MAX_CALL_EVENTS: usize = 1_000_000;

/// How an event is tied to the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The call's own entry or exit.
    Call,
    /// It ran in the calling thread during the call.
    SameThread,
    /// Same device and sectors as a request the thread queued.
    SameRequest,
    /// Matched by thread id, device, sector or time, without the kernel
    /// saying so.
    Inferred,
}

impl Link {
    /// How the view says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Call => "the call itself",
            Self::SameThread => "certain: same thread, during the call",
            Self::SameRequest => "certain: same device and sectors as the thread's request",
            Self::Inferred => "inferred: matched by thread and time, not proven",
        }
    }
}

/// One bar of the waterfall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What happened, for a student.
    pub label: String,
    /// The probe that saw it.
    pub probe: String,
    /// Where it starts, kernel ns.
    pub start_ns: u64,
    /// Where it ends (`start_ns` for a point event).
    pub end_ns: u64,
    /// CPU it ran on.
    pub cpu: u32,
    /// The task running when it fired.
    pub comm: String,
    /// Thread id of that task.
    pub pid: u32,
    /// How it is tied to the call.
    pub link: Link,
}

impl Step {
    /// Its duration in ns (0 for a point event).
    pub fn duration_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }
}

/// One part of the call's latency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// What the time was spent on.
    pub label: String,
    /// How long, ns.
    pub ns: u64,
}

/// The call and everything linked to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waterfall {
    /// The system call's name (`read`).
    pub call: String,
    /// Its thread.
    pub tid: u32,
    /// Its command.
    pub comm: String,
    /// Entry, kernel ns.
    pub enter_ns: u64,
    /// Exit, kernel ns.
    pub exit_ns: u64,
    /// Its return value.
    pub ret: i64,
    /// Bars, in time order (the call itself first).
    pub steps: Vec<Step>,
    /// Where the latency went; the parts add up to [`Self::latency_ns`].
    pub breakdown: Vec<Part>,
}

impl Waterfall {
    /// Exit minus entry.
    pub fn latency_ns(&self) -> u64 {
        self.exit_ns - self.enter_ns
    }

    /// Whether a block request is linked (the call went to the disk).
    pub fn went_to_disk(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.probe == "block:block_rq_complete")
    }
}

/// Why a call cannot be followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowError {
    /// No `sys_enter` of the thread at or before the picked time.
    NoEntry {
        /// The thread.
        tid: u32,
    },
    /// The call has not returned among the events kept.
    NoExit {
        /// The call.
        call: String,
        /// The thread.
        tid: u32,
    },
}

impl fmt::Display for FollowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEntry { tid } => write!(
                f,
                "thread {tid} has no system call entry at or before this event among the events kept: switch on the call's syscalls:sys_enter_* and sys_exit_* probes and pick a call again"
            ),
            Self::NoExit { call, tid } => write!(
                f,
                "the {call}() of thread {tid} has not returned among the events kept (switch on syscalls:sys_exit_{call}, or wait for the call to end)"
            ),
        }
    }
}

/// Follows the system call of thread `tid` that was running at `at_ns`
/// (its entry, its exit, or any event in between), through `events`
/// (sorted by time, as [`observe_all`] gives them).
pub fn follow(events: &[Observed], tid: u32, at_ns: u64) -> Result<Waterfall, FollowError> {
    let (enter_index, call) = events
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| e.ts_ns <= at_ns && e.pid == tid)
        .find_map(|(i, e)| match &e.kind {
            Kind::SyscallEnter(name) => Some((i, name.clone())),
            _ => None,
        })
        .ok_or(FollowError::NoEntry { tid })?;
    let enter = &events[enter_index];
    let (exit_index, ret) = events
        .iter()
        .enumerate()
        .skip(enter_index + 1)
        .filter(|(_, e)| e.pid == tid)
        .find_map(|(i, e)| match &e.kind {
            Kind::SyscallExit(name, ret) if *name == call => Some((i, *ret)),
            _ => None,
        })
        .ok_or_else(|| FollowError::NoExit {
            call: call.clone(),
            tid,
        })?;
    let exit = &events[exit_index];
    if exit.ts_ns < at_ns {
        // The entry found belongs to an earlier call; the one running at
        // `at_ns` entered before the events kept begin.
        return Err(FollowError::NoEntry { tid });
    }
    let during = &events[enter_index + 1..exit_index];
    let steps = link_steps(enter, exit, during, tid, &call);
    let breakdown = breakdown(enter.ts_ns, exit.ts_ns, &steps);
    Ok(Waterfall {
        call,
        tid,
        comm: enter.comm.clone(),
        enter_ns: enter.ts_ns,
        exit_ns: exit.ts_ns,
        ret,
        steps,
        breakdown,
    })
}

/// The follow-able calls among `events`: `(tid, entry ns, exit ns, call)`,
/// newest first; the views list them and the tour picks the slowest.
pub fn calls(events: &[Observed], name: &str) -> Vec<(u32, u64, u64)> {
    let mut open: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    let mut done = Vec::new();
    for e in events {
        match &e.kind {
            Kind::SyscallEnter(n) if n == name => {
                open.insert(e.pid, e.ts_ns);
            }
            Kind::SyscallExit(n, _) if n == name => {
                if let Some(start) = open.remove(&e.pid) {
                    done.push((e.pid, start, e.ts_ns));
                }
            }
            _ => {}
        }
    }
    done.reverse();
    done
}

fn link_steps(
    enter: &Observed,
    exit: &Observed,
    during: &[Observed],
    tid: u32,
    call: &str,
) -> Vec<Step> {
    let step = |e: &Observed, label: String, end_ns: u64, link: Link| Step {
        label,
        probe: e.probe.clone(),
        start_ns: e.ts_ns,
        end_ns: end_ns.max(e.ts_ns),
        cpu: e.cpu,
        comm: e.comm.clone(),
        pid: e.pid,
        link,
    };
    let mut steps = vec![Step {
        end_ns: exit.ts_ns,
        ..step(
            enter,
            format!("{call}() system call, entry to exit"),
            exit.ts_ns,
            Link::Call,
        )
    }];
    // Requests the thread queued (certain), then issues and completions
    // of those requests by anyone.
    let queued: Vec<Request> = during
        .iter()
        .filter(|e| e.pid == tid)
        .filter_map(|e| match &e.kind {
            Kind::BlockQueue(r) => Some(*r),
            _ => None,
        })
        .collect();
    let issued_by_thread: Vec<Request> = during
        .iter()
        .filter(|e| e.pid == tid)
        .filter_map(|e| match &e.kind {
            Kind::BlockIssue(r) => Some(*r),
            _ => None,
        })
        .collect();
    // Interrupts already linked (one may complete several requests).
    let mut interrupts: Vec<(u32, u64)> = Vec::new();
    // Bars of the thread's other probes: index in `steps`, events.
    let mut repeated: std::collections::HashMap<String, (usize, usize)> =
        std::collections::HashMap::new();
    let completion_of = |r: &Request, from: u64| {
        during.iter().find(|e| {
            e.ts_ns >= from
                && matches!(&e.kind, Kind::BlockComplete(c) if c.covers(r) || r.covers(c))
        })
    };
    for e in during {
        let mine = e.pid == tid;
        match &e.kind {
            Kind::BlockQueue(r) if mine => {
                let issue = during.iter().find(|i| {
                    i.ts_ns >= e.ts_ns && matches!(&i.kind, Kind::BlockIssue(x) if x.covers(r))
                });
                let end = issue.map_or(e.ts_ns, |i| i.ts_ns);
                steps.push(step(
                    e,
                    format!(
                        "block layer: {} KiB at sector {} queued",
                        r.sectors / 2,
                        r.sector
                    ),
                    end,
                    Link::SameThread,
                ));
            }
            Kind::BlockIssue(r) => {
                let by_identity = queued.iter().any(|q| r.covers(q));
                let link = match (by_identity, mine) {
                    (true, _) => Link::SameRequest,
                    (false, true) => Link::SameThread,
                    (false, false) => continue,
                };
                let done = completion_of(r, e.ts_ns);
                steps.push(step(
                    e,
                    format!(
                        "device: {} KiB at sector {}{}",
                        r.sectors / 2,
                        r.sector,
                        if done.is_some() {
                            ", issue to completion"
                        } else {
                            ", completion not seen"
                        }
                    ),
                    done.map_or(e.ts_ns, |d| d.ts_ns),
                    link,
                ));
            }
            Kind::BlockComplete(c) => {
                let certain = queued.iter().any(|q| c.covers(q));
                let inferred = issued_by_thread.iter().any(|i| c.covers(i) || i.covers(c));
                let link = if certain {
                    Link::SameRequest
                } else if inferred {
                    Link::Inferred
                } else {
                    continue;
                };
                steps.push(step(
                    e,
                    format!("device done: sector {} completed (interrupt)", c.sector),
                    e.ts_ns,
                    link,
                ));
                if let Some((entry, irq_step)) = completion_interrupt(during, e)
                    && !interrupts.contains(&(entry.cpu, entry.ts_ns))
                {
                    interrupts.push((entry.cpu, entry.ts_ns));
                    steps.push(irq_step);
                }
            }
            Kind::SwitchOut { pid, state } if *pid == tid => {
                let back = during.iter().find(|b| {
                    b.ts_ns >= e.ts_ns && matches!(b.kind, Kind::SwitchIn { pid } if pid == tid)
                });
                let why = if *state == 0 {
                    "preempted"
                } else {
                    "asleep, waiting"
                };
                steps.push(step(
                    e,
                    format!("off the CPU: {why}"),
                    back.map_or(exit.ts_ns, |b| b.ts_ns),
                    Link::SameThread,
                ));
            }
            Kind::Wakeup { pid } if *pid == tid => {
                let runs = during.iter().find(|b| {
                    b.ts_ns >= e.ts_ns && matches!(b.kind, Kind::SwitchIn { pid } if pid == tid)
                });
                let by = if e.pid == 0 {
                    "from an idle CPU (an interrupt)".to_owned()
                } else {
                    format!("while CPU {} ran {}", e.cpu, e.comm)
                };
                steps.push(step(
                    e,
                    format!("woken {by}; waits for a CPU"),
                    runs.map_or(e.ts_ns, |r| r.ts_ns),
                    Link::Inferred,
                ));
            }
            Kind::SwitchIn { pid } if *pid == tid => {
                steps.push(step(
                    e,
                    "back on a CPU".to_owned(),
                    e.ts_ns,
                    Link::SameThread,
                ));
            }
            Kind::Other | Kind::SyscallEnter(_) | Kind::SyscallExit(..) if mine => {
                // A readahead of 1 MiB allocates and caches 256 pages: one
                // bar per probe, from its first event to its last.
                if let Some((index, count)) = repeated.get_mut(&e.probe)
                    && let Some(bar) = steps.get_mut(*index)
                {
                    *count += 1;
                    bar.end_ns = e.ts_ns.max(bar.end_ns);
                    bar.label = format!("{} ×{count}, first to last", e.probe);
                } else {
                    repeated.insert(e.probe.clone(), (steps.len(), 1));
                    steps.push(step(e, e.probe.clone(), e.ts_ns, Link::SameThread));
                }
            }
            _ => {}
        }
    }
    steps.push(step(
        exit,
        format!("{call}() returns"),
        exit.ts_ns,
        Link::Call,
    ));
    // An interrupt is found when its completion is: put it in time order
    // (stable, so the call stays first and its return last).
    steps.sort_by_key(|s| s.start_ns);
    steps
}

/// How long before a request's completion its interrupt handler may have
/// started.
pub const IRQ_WINDOW_NS: u64 = 1_000_000;

/// The interrupt handler that most likely completed the request of
/// `complete`: the last one to start at most [`IRQ_WINDOW_NS`] before it on
/// the same CPU (a device's handler completes its requests), else on any
/// CPU (the completion was passed to another CPU). Matched by CPU and time
/// only — inferred, as its label says.
fn completion_interrupt<'a>(
    during: &'a [Observed],
    complete: &Observed,
) -> Option<(&'a Observed, Step)> {
    let candidates = || {
        during.iter().filter(|e| {
            matches!(e.kind, Kind::IrqEntry { .. })
                && e.ts_ns <= complete.ts_ns
                && complete.ts_ns - e.ts_ns <= IRQ_WINDOW_NS
        })
    };
    let entry = candidates()
        .filter(|e| e.cpu == complete.cpu)
        .max_by_key(|e| e.ts_ns)
        .or_else(|| candidates().max_by_key(|e| e.ts_ns))?;
    let Kind::IrqEntry { irq, name } = &entry.kind else {
        return None;
    };
    let exit = during.iter().find(|e| {
        e.cpu == entry.cpu
            && e.ts_ns >= entry.ts_ns
            && matches!(e.kind, Kind::IrqExit { irq: x } if x == *irq)
    });
    let handler = if name.is_empty() {
        format!("irq {irq}")
    } else {
        format!("irq {irq} ({name})")
    };
    let place = if entry.cpu == complete.cpu {
        format!("on CPU {}", entry.cpu)
    } else {
        format!("on CPU {}, completed on CPU {}", entry.cpu, complete.cpu)
    };
    let step = Step {
        label: format!("completion interrupt: {handler} {place}"),
        probe: entry.probe.clone(),
        start_ns: entry.ts_ns,
        end_ns: exit.map_or(entry.ts_ns, |x| x.ts_ns),
        cpu: entry.cpu,
        comm: entry.comm.clone(),
        pid: entry.pid,
        link: Link::Inferred,
    };
    Some((entry, step))
}

/// Cuts `[enter, exit]` at the milestones the steps show.
fn breakdown(enter: u64, exit: u64, steps: &[Step]) -> Vec<Part> {
    let first = |probe_prefix: &str| {
        steps
            .iter()
            .filter(|s| s.probe.starts_with(probe_prefix) && s.link != Link::Call)
            .map(|s| s.start_ns)
            .min()
    };
    let last = |probe: &str| {
        steps
            .iter()
            .filter(|s| s.probe == probe)
            .map(|s| s.start_ns)
            .max()
    };
    let block_start = first("block:");
    let issue = first("block:block_rq_issue");
    // The last wake-up ends the last wait; the completion that counts is
    // the last one before it (later ones are readahead the call does not
    // wait for).
    let wakeup = last("sched:sched_wakeup");
    let complete = steps
        .iter()
        .filter(|s| s.probe == "block:block_rq_complete" && wakeup.is_none_or(|w| s.start_ns <= w))
        .map(|s| s.start_ns)
        .max()
        .or_else(|| last("block:block_rq_complete"));
    let back = steps
        .iter()
        .filter(|s| s.label == "back on a CPU" && wakeup.is_none_or(|w| s.start_ns >= w))
        .map(|s| s.start_ns)
        .min();
    // Each label names the time that ends at its milestone; a milestone
    // not seen merges its time into the next part, whose label says so.
    let milestones: Vec<(Option<u64>, &'static str)> = match (block_start, wakeup) {
        (Some(_), _) => vec![
            (
                block_start,
                "in the kernel before the disk: VFS, page cache, file system",
            ),
            (issue, "queued in the block layer"),
            (complete, "on the device"),
            (wakeup, "from the completion to the wake-up"),
            (back, "waiting for a CPU after the wake-up"),
            (Some(exit), "back on a CPU: copy to the program, return"),
        ],
        (None, Some(_)) => vec![
            (wakeup, "in the kernel, then asleep until the wake-up"),
            (back, "waiting for a CPU after the wake-up"),
            (Some(exit), "back on a CPU: finish and return"),
        ],
        (None, None) => vec![(
            Some(exit),
            "in the kernel: VFS and page cache (no disk I/O)",
        )],
    };
    let mut parts = Vec::new();
    let mut at = enter;
    let mut labels: Vec<&'static str> = Vec::new();
    for (milestone, label) in milestones {
        labels.push(label);
        if let Some(t) = milestone {
            let t = t.clamp(at, exit);
            parts.push(Part {
                label: labels.join(" + "),
                ns: t - at,
            });
            labels.clear();
            at = t;
        }
    }
    parts.retain(|p| p.ns > 0);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_ns: u64, pid: u32, probe: &str, kind: Kind) -> Observed {
        Observed {
            probe: probe.to_owned(),
            cpu: 0,
            ts_ns,
            pid,
            comm: if pid == 7 {
                "reader".into()
            } else {
                "swapper/1".into()
            },
            kind,
        }
    }

    fn req(sector: u64, sectors: u64) -> Request {
        Request {
            dev: 8 << 20,
            sector,
            sectors,
        }
    }

    /// An uncached read by thread 7: enter at 1000, bio queued at 1500,
    /// issued at 1700, sleeps at 1800, completes at 9000 in an interrupt
    /// (pid 0), woken at 9100, runs at 9400, returns at 9900.
    fn uncached_read() -> Vec<Observed> {
        vec![
            ev(
                1_000,
                7,
                "syscalls:sys_enter_read",
                Kind::SyscallEnter("read".into()),
            ),
            ev(1_200, 7, "readahead:page_cache_sync_ra", Kind::Other),
            ev(
                1_500,
                7,
                "block:block_bio_queue",
                Kind::BlockQueue(req(2048, 64)),
            ),
            ev(
                1_600,
                3,
                "block:block_rq_issue",
                Kind::BlockIssue(req(4096, 8)),
            ),
            ev(
                1_700,
                7,
                "block:block_rq_issue",
                Kind::BlockIssue(req(2048, 64)),
            ),
            ev(
                1_800,
                7,
                "sched:sched_switch",
                Kind::SwitchOut { pid: 7, state: 2 },
            ),
            ev(
                5_000,
                0,
                "block:block_rq_complete",
                Kind::BlockComplete(req(4096, 8)),
            ),
            ev(
                9_000,
                0,
                "block:block_rq_complete",
                Kind::BlockComplete(req(2048, 64)),
            ),
            ev(9_100, 0, "sched:sched_wakeup", Kind::Wakeup { pid: 7 }),
            ev(9_400, 0, "sched:sched_switch", Kind::SwitchIn { pid: 7 }),
            ev(
                9_900,
                7,
                "syscalls:sys_exit_read",
                Kind::SyscallExit("read".into(), 4096),
            ),
        ]
    }

    #[test]
    fn an_uncached_read_is_followed_to_the_disk_and_back() {
        let events = uncached_read();
        let w = follow(&events, 7, 1_000).unwrap();
        assert_eq!(
            (w.call.as_str(), w.tid, w.latency_ns(), w.ret),
            ("read", 7, 8_900, 4096)
        );
        let probes: Vec<(&str, u64, u64, Link)> = w
            .steps
            .iter()
            .map(|s| (s.probe.as_str(), s.start_ns, s.end_ns, s.link))
            .collect();
        assert_eq!(
            probes,
            vec![
                ("syscalls:sys_enter_read", 1_000, 9_900, Link::Call),
                (
                    "readahead:page_cache_sync_ra",
                    1_200,
                    1_200,
                    Link::SameThread
                ),
                ("block:block_bio_queue", 1_500, 1_700, Link::SameThread),
                ("block:block_rq_issue", 1_700, 9_000, Link::SameRequest),
                ("sched:sched_switch", 1_800, 9_400, Link::SameThread),
                ("block:block_rq_complete", 9_000, 9_000, Link::SameRequest),
                ("sched:sched_wakeup", 9_100, 9_400, Link::Inferred),
                ("sched:sched_switch", 9_400, 9_400, Link::SameThread),
                ("syscalls:sys_exit_read", 9_900, 9_900, Link::Call),
            ],
            "another thread's request (sector 4096) is left out"
        );
        assert!(w.went_to_disk());
        let parts: Vec<(&str, u64)> = w
            .breakdown
            .iter()
            .map(|p| (p.label.as_str(), p.ns))
            .collect();
        assert_eq!(
            parts,
            vec![
                (
                    "in the kernel before the disk: VFS, page cache, file system",
                    500
                ),
                ("queued in the block layer", 200),
                ("on the device", 7_300),
                ("from the completion to the wake-up", 100),
                ("waiting for a CPU after the wake-up", 300),
                ("back on a CPU: copy to the program, return", 500),
            ]
        );
        assert_eq!(
            w.breakdown.iter().map(|p| p.ns).sum::<u64>(),
            w.latency_ns()
        );
    }

    #[test]
    fn the_call_is_found_from_any_event_inside_it_or_from_its_exit() {
        let events = uncached_read();
        for at in [1_000, 1_800, 9_400, 9_900] {
            assert_eq!(
                follow(&events, 7, at).unwrap().enter_ns,
                1_000,
                "picked at {at}"
            );
        }
    }

    #[test]
    fn a_cache_hit_is_all_page_cache_time() {
        let events = vec![
            ev(
                100,
                7,
                "syscalls:sys_enter_read",
                Kind::SyscallEnter("read".into()),
            ),
            ev(
                400,
                7,
                "syscalls:sys_exit_read",
                Kind::SyscallExit("read".into(), 10),
            ),
        ];
        let w = follow(&events, 7, 100).unwrap();
        assert!(!w.went_to_disk());
        assert_eq!(
            w.breakdown,
            vec![Part {
                label: "in the kernel: VFS and page cache (no disk I/O)".into(),
                ns: 300
            }]
        );
    }

    #[test]
    fn an_issue_without_a_bio_links_its_completion_as_inferred() {
        let mut events = uncached_read();
        events.retain(|e| e.probe != "block:block_bio_queue");
        let w = follow(&events, 7, 1_000).unwrap();
        let complete = w
            .steps
            .iter()
            .find(|s| s.probe == "block:block_rq_complete")
            .unwrap();
        assert_eq!(complete.link, Link::Inferred);
        let issue = w
            .steps
            .iter()
            .find(|s| s.probe == "block:block_rq_issue")
            .unwrap();
        assert_eq!(issue.link, Link::SameThread);
        assert_eq!(
            w.breakdown.iter().map(|p| p.ns).sum::<u64>(),
            w.latency_ns()
        );
    }

    #[test]
    fn missing_entry_or_exit_is_said_plainly() {
        let events = uncached_read();
        let err = follow(&events, 99, 5_000).unwrap_err();
        assert_eq!(err, FollowError::NoEntry { tid: 99 });
        // A moment after the call returned, whose own entry is not kept,
        // is not that call.
        assert_eq!(
            follow(&events, 7, 9_950).unwrap_err(),
            FollowError::NoEntry { tid: 7 }
        );
        let unfinished: Vec<Observed> = events[..10].to_vec();
        let err = follow(&unfinished, 7, 1_000).unwrap_err();
        assert!(err.to_string().contains("has not returned"), "{err}");
        assert!(follow(&[], 7, 0).is_err());
    }

    #[test]
    fn out_of_order_milestones_still_add_up() {
        // A wake-up seen before the completion (a spurious one) and a
        // completion after the exit (clock skew between CPUs).
        let events = vec![
            ev(
                0,
                7,
                "syscalls:sys_enter_read",
                Kind::SyscallEnter("read".into()),
            ),
            ev(10, 7, "block:block_rq_issue", Kind::BlockIssue(req(1, 8))),
            ev(20, 0, "sched:sched_wakeup", Kind::Wakeup { pid: 7 }),
            ev(
                50,
                0,
                "block:block_rq_complete",
                Kind::BlockComplete(req(1, 8)),
            ),
            ev(
                60,
                7,
                "syscalls:sys_exit_read",
                Kind::SyscallExit("read".into(), 0),
            ),
        ];
        let w = follow(&events, 7, 0).unwrap();
        assert_eq!(w.breakdown.iter().map(|p| p.ns).sum::<u64>(), 60);
    }

    #[test]
    fn a_readahead_completing_after_the_wake_up_is_not_the_milestone() {
        let mut events = uncached_read();
        // The thread also queued sector 9000, which completes after it ran
        // again: readahead it does not wait for.
        events.insert(
            3,
            ev(
                1_550,
                7,
                "block:block_bio_queue",
                Kind::BlockQueue(req(9000, 8)),
            ),
        );
        events.insert(
            10,
            ev(
                9_600,
                0,
                "block:block_rq_complete",
                Kind::BlockComplete(req(9000, 8)),
            ),
        );
        let w = follow(&events, 7, 1_000).unwrap();
        let parts: Vec<(&str, u64)> = w
            .breakdown
            .iter()
            .map(|p| (p.label.as_str(), p.ns))
            .collect();
        assert_eq!(parts[2], ("on the device", 7_300), "{parts:?}");
        assert_eq!(
            parts[3],
            ("from the completion to the wake-up", 100),
            "{parts:?}"
        );
        assert_eq!(
            w.breakdown.iter().map(|p| p.ns).sum::<u64>(),
            w.latency_ns()
        );
    }

    #[test]
    fn the_completion_interrupt_is_linked_by_cpu_and_time_as_inferred() {
        let mut events = uncached_read();
        let on_cpu = |mut e: Observed, cpu: u32| {
            e.cpu = cpu;
            e
        };
        // The disk's handler on CPU 0 (where the completion ran), and
        // another interrupt on CPU 1 just before the completion: the one
        // on the completion's CPU wins.
        let irq = |ts, cpu, kind| on_cpu(ev(ts, 0, "irq:irq_handler_entry", kind), cpu);
        events.insert(
            6,
            irq(
                8_900,
                0,
                Kind::IrqEntry {
                    irq: 36,
                    name: "virtio1-req.0".into(),
                },
            ),
        );
        events.insert(
            7,
            irq(
                8_950,
                1,
                Kind::IrqEntry {
                    irq: 38,
                    name: "virtio2-input.0".into(),
                },
            ),
        );
        let mut exit = ev(9_050, 0, "irq:irq_handler_exit", Kind::IrqExit { irq: 36 });
        exit.cpu = 0;
        events.insert(10, exit);
        events.sort_by_key(|e| e.ts_ns);
        let w = follow(&events, 7, 1_000).unwrap();
        let irqs: Vec<&Step> = w
            .steps
            .iter()
            .filter(|s| s.probe == "irq:irq_handler_entry")
            .collect();
        assert_eq!(irqs.len(), 1, "{:#?}", w.steps);
        assert_eq!(
            (irqs[0].start_ns, irqs[0].end_ns, irqs[0].link),
            (8_900, 9_050, Link::Inferred)
        );
        assert_eq!(
            irqs[0].label,
            "completion interrupt: irq 36 (virtio1-req.0) on CPU 0"
        );
        let starts: Vec<u64> = w.steps.iter().map(|s| s.start_ns).collect();
        assert!(starts.windows(2).all(|p| p[0] <= p[1]), "{starts:?}");
        assert_eq!(w.steps.last().unwrap().probe, "syscalls:sys_exit_read");
        assert_eq!(
            w.breakdown.iter().map(|p| p.ns).sum::<u64>(),
            w.latency_ns()
        );

        // Only a handler on another CPU: linked, and the label says where.
        events.retain(|e| !(e.probe == "irq:irq_handler_entry" && e.cpu == 0));
        let w = follow(&events, 7, 1_000).unwrap();
        let irq = w
            .steps
            .iter()
            .find(|s| s.probe == "irq:irq_handler_entry")
            .unwrap();
        assert_eq!(
            irq.label,
            "completion interrupt: irq 38 (virtio2-input.0) on CPU 1, completed on CPU 0"
        );

        // A handler that starts after the completion did not complete it.
        let mut late: Vec<Observed> = events
            .iter()
            .cloned()
            .map(|mut e| {
                if e.probe == "irq:irq_handler_entry" {
                    e.ts_ns = 9_200;
                }
                e
            })
            .collect();
        late.sort_by_key(|e| e.ts_ns);
        let w = follow(&late, 7, 1_000).unwrap();
        assert!(
            !w.steps.iter().any(|s| s.probe == "irq:irq_handler_entry"),
            "{:#?}",
            w.steps
        );
    }

    #[test]
    fn repeated_events_of_a_probe_in_the_thread_are_one_bar() {
        let mut events = uncached_read();
        for (i, ts) in [1_300, 1_350, 1_400].into_iter().enumerate() {
            events.insert(2 + i, ev(ts, 7, "kmem:mm_page_alloc", Kind::Other));
        }
        let w = follow(&events, 7, 1_000).unwrap();
        let bars: Vec<&Step> = w
            .steps
            .iter()
            .filter(|s| s.probe == "kmem:mm_page_alloc")
            .collect();
        assert_eq!(bars.len(), 1, "{:#?}", w.steps);
        assert_eq!(
            (bars[0].start_ns, bars[0].end_ns, bars[0].label.as_str()),
            (1_300, 1_400, "kmem:mm_page_alloc ×3, first to last")
        );
    }

    #[test]
    fn calls_lists_finished_calls_newest_first() {
        let events = uncached_read();
        assert_eq!(calls(&events, "read"), vec![(7, 1_000, 9_900)]);
        assert!(calls(&events, "write").is_empty());
    }
}
