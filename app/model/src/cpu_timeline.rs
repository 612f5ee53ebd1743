//! Which task ran on which CPU, and when: scheduler slices built from
//! `sched:sched_switch` (and `sched:sched_wakeup`) events.
//!
//! A switch on CPU `c` at time `t` ends the slice of the task leaving (its
//! `prev_state` says why it left) and starts the slice of the task taking the
//! CPU. So each CPU's slices come from consecutive switches on that CPU alone,
//! and events of different CPUs may arrive in any order relative to each
//! other. The first switch seen on a CPU only starts a slice: when the task
//! leaving had started is unknown, so it gets none.
//!
//! A wake-up is remembered per woken thread until that thread's next slice
//! starts, and then attached to it (the latest wake-up before the start). A
//! wake-up processed after the slice it caused already started (events of two
//! CPUs in another order) is attached late, to the earliest slice of that
//! thread starting after it.
//!
//! # Time
//!
//! Times are kept as the kernel's `CLOCK_MONOTONIC` ns (`ts_ns`). The app's
//! time axis is seconds since the model's epoch: the newest event of the first
//! batch is anchored to that batch's arrival ([`ClockAnchor`]); every other
//! time is placed by its ns distance from it. Batches arrive 10–50 ms after
//! their events, so the whole timeline is drawn that much late, uniformly, and
//! distances between events are exact.
//!
//! # Memory
//!
//! A slice is 72 bytes. At most [`MAX_SLICES`] (≈ 150 MB) are kept over all
//! CPUs: beyond that, the oldest tenth of the covered time is dropped from
//! every CPU at once, so all CPUs keep the same history. At 10 000 switches/s
//! on each of 2 CPUs that is the last 100 s; on a quieter machine, minutes.
//! Command names are interned (a few thousand distinct ones at most); the
//! thread → process map is bounded by the kernel's `pid_max`; wake-ups not
//! yet followed by a slice are forgotten after [`WAKEUP_HORIZON_NS`].

use crate::update::{SchedRecord, SwitchRecord, WakeupRecord};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;

/// Most slices kept over all CPUs (see the module docs).
pub const MAX_SLICES: usize = 2_000_000;

/// Wake-ups older than this that no slice claimed are forgotten (a thread
/// woken but never run, or a wake-up of a thread already on a CPU).
pub const WAKEUP_HORIZON_NS: u64 = 10_000_000_000;

/// An interned command name; [`CpuTimeline::comm`] gives the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommId(u32);

/// Why a task left the CPU: the `prev_state` of the `sched_switch` that ended
/// its slice, decoded from the kernel's `TASK_REPORT` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveState {
    /// `R`: still runnable (it yielded, or was preempted on a kernel that
    /// does not flag preemption).
    Runnable,
    /// `R+`: preempted by another task while runnable.
    Preempted,
    /// `S`: interruptible sleep, waiting for an event.
    Sleeping,
    /// `D`: uninterruptible sleep, usually waiting for I/O.
    DiskSleep,
    /// `T`: stopped by a signal.
    Stopped,
    /// `t`: stopped by a debugger.
    Traced,
    /// `X`: exited, being removed.
    Dead,
    /// `Z`: exited, waiting for its parent.
    Zombie,
    /// `P`: a parked kernel thread.
    Parked,
    /// `I`: an idle kernel thread waiting for work.
    Idle,
    /// A state this app does not know.
    Other,
    /// Events were lost on this CPU: the next switch named another task.
    Lost,
    /// It has not left yet: the slice ends at the newest event.
    StillRunning,
}

/// `TASK_REPORT_MAX`: the kernel reports a preempted task with this bit.
const TASK_REPORT_PREEMPTED: u64 = 0x100;

impl LeaveState {
    /// Decodes the `prev_state` field of `sched_switch`.
    pub fn from_prev_state(prev_state: u64) -> Self {
        if prev_state & TASK_REPORT_PREEMPTED != 0 {
            return Self::Preempted;
        }
        // One bit per state, in the order of the kernel's `TASK_REPORT`.
        match prev_state & 0xff {
            0 => Self::Runnable,
            bits => match bits.trailing_zeros() {
                0 => Self::Sleeping,
                1 => Self::DiskSleep,
                2 => Self::Stopped,
                3 => Self::Traced,
                4 => Self::Dead,
                5 => Self::Zombie,
                6 => Self::Parked,
                7 => Self::Idle,
                _ => Self::Other,
            },
        }
    }

    /// A word for a person.
    pub fn word(self) -> &'static str {
        match self {
            Self::Runnable => "runnable",
            Self::Preempted => "preempted",
            Self::Sleeping => "sleeping",
            Self::DiskSleep => "disk sleep",
            Self::Stopped => "stopped",
            Self::Traced => "traced",
            Self::Dead => "dead",
            Self::Zombie => "zombie",
            Self::Parked => "parked",
            Self::Idle => "idle",
            Self::Other => "unknown state",
            Self::Lost => "unknown (events were lost)",
            Self::StillRunning => "still running",
        }
    }

    /// The letter `ps` and `perf sched` use, if there is one.
    pub fn code(self) -> Option<&'static str> {
        Some(match self {
            Self::Runnable => "R",
            Self::Preempted => "R+",
            Self::Sleeping => "S",
            Self::DiskSleep => "D",
            Self::Stopped => "T",
            Self::Traced => "t",
            Self::Dead => "X",
            Self::Zombie => "Z",
            Self::Parked => "P",
            Self::Idle => "I",
            Self::Other | Self::Lost | Self::StillRunning => return None,
        })
    }

    /// What it means, in a sentence.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Runnable => "it was still runnable: it yielded the CPU or was preempted",
            Self::Preempted => "another task took the CPU while it could still run",
            Self::Sleeping => "it went to sleep, waiting for an event (a lock, a timer, input)",
            Self::DiskSleep => "it waited without interruption, usually for I/O",
            Self::Stopped => "it was stopped by a signal",
            Self::Traced => "it was stopped by a debugger",
            Self::Dead => "it exited",
            Self::Zombie => "it exited and waits for its parent to collect it",
            Self::Parked => "a kernel thread parked itself",
            Self::Idle => "a kernel thread went idle, waiting for work",
            Self::Other => "the kernel reported a state this app does not know",
            Self::Lost => "events were lost, so when it left is not known",
            Self::StillRunning => "it is on the CPU as of the newest event",
        }
    }
}

/// The wake-up that made a task runnable before one of its slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wakeup {
    /// When, in kernel ns.
    pub ts_ns: u64,
    /// Thread running when the wake-up was reported: usually the waker; for
    /// a wake-up queued from another CPU, whatever ran there (often idle).
    pub waker_pid: u32,
    /// Its command name.
    pub waker_comm: CommId,
    /// CPU that reported it.
    pub cpu: u32,
    /// CPU whose run queue the task was put on.
    pub target_cpu: u32,
}

/// One task's stay on one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// When it took the CPU, in kernel ns.
    pub start_ns: u64,
    /// When it left (or the newest event, while [`LeaveState::StillRunning`]).
    pub end_ns: u64,
    /// Thread id; 0 is the CPU's idle task.
    pub pid: u32,
    /// Process id (the thread's own id until the process is known).
    pub tgid: u32,
    /// Command name.
    pub comm: CommId,
    /// Kernel priority (lower runs first; 120 is nice 0).
    pub prio: i32,
    /// Why it left.
    pub left: LeaveState,
    /// The wake-up before it, if one was seen.
    pub wakeup: Option<Wakeup>,
}

impl Slice {
    /// Whether this is the CPU's idle task.
    pub fn is_idle(&self) -> bool {
        self.pid == 0
    }

    /// How long it ran, in ns.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// From its wake-up to taking the CPU, in ns.
    pub fn wakeup_latency_ns(&self) -> Option<u64> {
        self.wakeup
            .map(|wakeup| self.start_ns.saturating_sub(wakeup.ts_ns))
    }
}

/// Names one slice stably (indices shift when old slices are dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceKey {
    /// Its CPU.
    pub cpu: u32,
    /// Its start, in kernel ns.
    pub start_ns: u64,
}

/// Ties kernel time to the app's time axis (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockAnchor {
    /// A kernel time, in ns.
    pub ts_ns: u64,
    /// The same moment, in seconds since the model's epoch.
    pub secs: f64,
}

/// The slices of one CPU.
#[derive(Clone, Debug, Default)]
struct Lane {
    /// Finished slices, sorted by time, not overlapping.
    slices: VecDeque<Slice>,
    /// The task on the CPU since the last switch (its `end_ns` is unused).
    running: Option<Slice>,
    /// Time of the newest switch applied.
    last_ns: u64,
}

impl Lane {
    /// Indices of the finished slices that overlap `from_ns..to_ns`.
    fn overlapping(&self, from_ns: u64, to_ns: u64) -> Range<usize> {
        let start = self.slices.partition_point(|s| s.end_ns <= from_ns);
        let end = self.slices.partition_point(|s| s.start_ns < to_ns);
        start..end.max(start)
    }
}

/// Per-CPU scheduler slices, built incrementally from scheduler events.
#[derive(Clone, Debug, Default)]
pub struct CpuTimeline {
    lanes: BTreeMap<u32, Lane>,
    comm_names: Vec<String>,
    comm_ids: HashMap<String, CommId>,
    /// Process of each thread seen as the current task of an event.
    tgids: HashMap<u32, u32>,
    /// Latest wake-up of each thread not yet followed by a slice.
    pending_wakeups: HashMap<u32, Wakeup>,
    anchor: Option<ClockAnchor>,
    /// Newest event time over all CPUs.
    latest_ns: u64,
    /// Slices ending at or before this were dropped to bound memory.
    horizon_ns: u64,
    slice_count: usize,
    max_slices: usize,
    out_of_order: u64,
}

impl CpuTimeline {
    /// An empty timeline keeping at most [`MAX_SLICES`].
    pub fn new() -> Self {
        Self::with_capacity_limit(MAX_SLICES)
    }

    /// An empty timeline keeping at most `max_slices` (for tests).
    pub fn with_capacity_limit(max_slices: usize) -> Self {
        Self {
            max_slices: max_slices.max(1),
            ..Self::default()
        }
    }

    /// An empty timeline, without a limit, whose time axis is `anchor`'s
    /// (a window of a recording, read from the file: see
    /// [`CpuWindow`](crate::CpuWindow)).
    pub fn with_anchor(anchor: ClockAnchor) -> Self {
        Self {
            anchor: Some(anchor),
            max_slices: usize::MAX,
            ..Self::default()
        }
    }

    /// Applies the scheduler events of one batch, which arrived `arrived_secs`
    /// after the model's epoch. Each CPU's events must be in time order;
    /// different CPUs may interleave in any order.
    pub fn apply(&mut self, records: Vec<SchedRecord>, arrived_secs: f64) {
        if self.anchor.is_none()
            && let Some(newest) = records.iter().map(SchedRecord::ts_ns).max()
        {
            self.anchor = Some(ClockAnchor {
                ts_ns: newest,
                secs: arrived_secs,
            });
            self.horizon_ns = records.iter().map(SchedRecord::ts_ns).min().unwrap_or(0);
        }
        for record in records {
            match record {
                SchedRecord::Switch(switch) => self.switch(switch),
                SchedRecord::Wakeup(wakeup) => self.wakeup(wakeup),
            }
        }
        self.trim();
    }

    /// Forgets what happened between events: the tasks on the CPUs and the
    /// pending wake-ups. Call when events may have been missed (a reconnect,
    /// the probe switched off), so no slice spans the gap.
    pub fn break_continuity(&mut self) {
        for lane in self.lanes.values_mut() {
            lane.running = None;
        }
        self.pending_wakeups.clear();
    }

    fn switch(&mut self, switch: SwitchRecord) {
        let lane = self.lanes.entry(switch.cpu).or_default();
        if switch.ts_ns < lane.last_ns {
            self.out_of_order += 1;
            return;
        }
        lane.last_ns = switch.ts_ns;
        self.latest_ns = self.latest_ns.max(switch.ts_ns);
        if switch.prev_pid != 0 {
            self.tgids.insert(switch.prev_pid, switch.prev_tgid);
        }
        let prev_comm = intern(&mut self.comm_names, &mut self.comm_ids, &switch.prev_comm);
        let next_comm = intern(&mut self.comm_names, &mut self.comm_ids, &switch.next_comm);
        if let Some(mut slice) = lane.running.take() {
            slice.end_ns = switch.ts_ns;
            if slice.pid == switch.prev_pid {
                slice.left = LeaveState::from_prev_state(switch.prev_state);
                // The leaving task is the event's current task: its process,
                // name and priority are the newest.
                slice.tgid = if slice.pid == 0 { 0 } else { switch.prev_tgid };
                slice.comm = prev_comm;
                slice.prio = switch.prev_prio;
            } else {
                slice.left = LeaveState::Lost;
            }
            lane.slices.push_back(slice);
            self.slice_count += 1;
        }
        let wakeup = match self.pending_wakeups.entry(switch.next_pid) {
            Entry::Occupied(entry) if entry.get().ts_ns <= switch.ts_ns => Some(entry.remove()),
            _ => None,
        };
        let tgid = match switch.next_pid {
            0 => 0,
            pid => self.tgids.get(&pid).copied().unwrap_or(pid),
        };
        lane.running = Some(Slice {
            start_ns: switch.ts_ns,
            end_ns: switch.ts_ns,
            pid: switch.next_pid,
            tgid,
            comm: next_comm,
            prio: switch.next_prio,
            left: LeaveState::StillRunning,
            wakeup,
        });
    }

    fn wakeup(&mut self, record: WakeupRecord) {
        self.latest_ns = self.latest_ns.max(record.ts_ns);
        let wakeup = Wakeup {
            ts_ns: record.ts_ns,
            waker_pid: record.waker_pid,
            waker_comm: intern(&mut self.comm_names, &mut self.comm_ids, &record.waker_comm),
            cpu: record.cpu,
            target_cpu: record.target_cpu,
        };
        if !self.attach_late(record.pid, wakeup) {
            self.pending_wakeups.insert(record.pid, wakeup);
        }
        if self.pending_wakeups.len() > 4096 {
            let oldest_kept = self.latest_ns.saturating_sub(WAKEUP_HORIZON_NS);
            self.pending_wakeups.retain(|_, w| w.ts_ns >= oldest_kept);
        }
    }

    /// Gives a wake-up to the earliest slice of `pid` that started at or after
    /// it, if one already did. Only slices newer than the wake-up are looked
    /// at, so this costs little when events come in order.
    fn attach_late(&mut self, pid: u32, wakeup: Wakeup) -> bool {
        let mut best: Option<(u32, u64)> = None;
        for (&cpu, lane) in &self.lanes {
            if lane.last_ns < wakeup.ts_ns {
                continue;
            }
            let candidates = lane
                .running
                .iter()
                .chain(lane.slices.iter().rev())
                .take_while(|s| s.start_ns >= wakeup.ts_ns)
                .filter(|s| s.pid == pid);
            if let Some(earliest) = candidates.map(|s| s.start_ns).min()
                && best.is_none_or(|(_, start)| earliest < start)
            {
                best = Some((cpu, earliest));
            }
        }
        let Some((cpu, start_ns)) = best else {
            return false;
        };
        let Some(slice) = self.slice_mut(SliceKey { cpu, start_ns }) else {
            return false;
        };
        // Keep the latest wake-up before the start.
        if slice.wakeup.is_none_or(|w| w.ts_ns <= wakeup.ts_ns) {
            slice.wakeup = Some(wakeup);
        }
        true
    }

    fn slice_mut(&mut self, key: SliceKey) -> Option<&mut Slice> {
        let lane = self.lanes.get_mut(&key.cpu)?;
        if lane.running.is_some_and(|s| s.start_ns == key.start_ns) {
            return lane.running.as_mut();
        }
        let index = lane
            .slices
            .binary_search_by_key(&key.start_ns, |s| s.start_ns)
            .ok()?;
        lane.slices.get_mut(index)
    }

    /// Drops the oldest tenth of the covered time, repeatedly, while there
    /// are more than `max_slices`.
    fn trim(&mut self) {
        // Each round moves the horizon a tenth closer to the newest event; 64
        // rounds leave less than 0.2 % of the span, so the loop ends.
        for _ in 0..64 {
            if self.slice_count <= self.max_slices {
                return;
            }
            let step = (self.latest_ns.saturating_sub(self.horizon_ns) / 10).max(1);
            self.horizon_ns = self.horizon_ns.saturating_add(step);
            for lane in self.lanes.values_mut() {
                let drop = lane.slices.partition_point(|s| s.end_ns <= self.horizon_ns);
                lane.slices.drain(..drop);
                self.slice_count -= drop;
            }
        }
    }

    /// The CPUs seen so far, ascending.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.lanes.keys().copied()
    }

    /// Whether any slice exists.
    pub fn is_empty(&self) -> bool {
        self.lanes
            .values()
            .all(|lane| lane.slices.is_empty() && lane.running.is_none())
    }

    /// Finished slices over all CPUs.
    pub fn len(&self) -> usize {
        self.slice_count
    }

    /// Switches ignored because they were older than their CPU's newest.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Newest event time seen, in kernel ns.
    pub fn latest_ns(&self) -> u64 {
        self.latest_ns
    }

    /// The text of an interned command name.
    pub fn comm(&self, id: CommId) -> &str {
        usize::try_from(id.0)
            .ok()
            .and_then(|index| self.comm_names.get(index))
            .map_or("?", String::as_str)
    }

    /// A slice's name for a person: its command, or "idle".
    pub fn task_name(&self, slice: &Slice) -> &str {
        if slice.is_idle() {
            "idle"
        } else {
            self.comm(slice.comm)
        }
    }

    /// The running task of `lane`, ending at the newest event.
    fn running_slice(&self, lane: &Lane) -> Option<Slice> {
        lane.running.map(|mut slice| {
            slice.end_ns = self.latest_ns.max(slice.start_ns);
            slice
        })
    }

    /// How many slices of `cpu` overlap `from_ns..to_ns` (cheap: two binary
    /// searches).
    pub fn count_overlapping(&self, cpu: u32, from_ns: u64, to_ns: u64) -> usize {
        let Some(lane) = self.lanes.get(&cpu) else {
            return 0;
        };
        let running = self
            .running_slice(lane)
            .is_some_and(|s| s.start_ns < to_ns && s.end_ns > from_ns);
        lane.overlapping(from_ns, to_ns).len() + usize::from(running)
    }

    /// The slices of `cpu` overlapping `from_ns..to_ns`, in time order, the
    /// running one last.
    pub fn overlapping(
        &self,
        cpu: u32,
        from_ns: u64,
        to_ns: u64,
    ) -> impl Iterator<Item = Slice> + '_ {
        let lane = self.lanes.get(&cpu);
        let finished = lane
            .into_iter()
            .flat_map(move |lane| lane.slices.range(lane.overlapping(from_ns, to_ns)).copied());
        let running = lane
            .and_then(|lane| self.running_slice(lane))
            .filter(move |s| s.start_ns < to_ns && s.end_ns > from_ns);
        finished.chain(running)
    }

    /// The slice of `cpu` covering `ts_ns`, if any.
    pub fn slice_at(&self, cpu: u32, ts_ns: u64) -> Option<Slice> {
        let lane = self.lanes.get(&cpu)?;
        if let Some(running) = self.running_slice(lane)
            && running.start_ns <= ts_ns
        {
            return (ts_ns <= running.end_ns).then_some(running);
        }
        let index = lane.slices.partition_point(|s| s.end_ns <= ts_ns);
        lane.slices
            .get(index)
            .filter(|s| s.start_ns <= ts_ns)
            .copied()
    }

    /// The slice named by `key`, if it is still kept.
    pub fn find(&self, key: SliceKey) -> Option<Slice> {
        let lane = self.lanes.get(&key.cpu)?;
        if let Some(running) = self.running_slice(lane)
            && running.start_ns == key.start_ns
        {
            return Some(running);
        }
        let index = lane
            .slices
            .binary_search_by_key(&key.start_ns, |s| s.start_ns)
            .ok()?;
        lane.slices.get(index).copied()
    }

    /// How kernel time maps to the app's seconds, once an event arrived.
    pub fn anchor(&self) -> Option<ClockAnchor> {
        self.anchor
    }

    /// `ts_ns` on the app's time axis (seconds since the model's epoch).
    pub fn secs_of(&self, ts_ns: u64) -> Option<f64> {
        let anchor = self.anchor?;
        let delta_ns = ts_ns as f64 - anchor.ts_ns as f64;
        Some(anchor.secs + delta_ns / 1e9)
    }

    /// The kernel time at `secs` on the app's time axis (clamped at 0).
    pub fn ns_at(&self, secs: f64) -> Option<u64> {
        let anchor = self.anchor?;
        let ns = anchor.ts_ns as f64 + (secs - anchor.secs) * 1e9;
        // `as` saturates: negative times become 0, huge ones u64::MAX.
        Some(ns as u64)
    }
}

fn intern(names: &mut Vec<String>, ids: &mut HashMap<String, CommId>, name: &str) -> CommId {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = CommId(u32::try_from(names.len()).unwrap_or(u32::MAX));
    names.push(name.to_owned());
    ids.insert(name.to_owned(), id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn switch(
        cpu: u32,
        ts_ns: u64,
        prev: (u32, &str),
        state: u64,
        next: (u32, &str),
    ) -> SchedRecord {
        SchedRecord::Switch(SwitchRecord {
            cpu,
            ts_ns,
            prev_pid: prev.0,
            prev_tgid: prev.0,
            prev_comm: prev.1.into(),
            prev_prio: 120,
            prev_state: state,
            next_pid: next.0,
            next_comm: next.1.into(),
            next_prio: 120,
        })
    }

    fn wakeup(cpu: u32, ts_ns: u64, waker: (u32, &str), pid: u32) -> SchedRecord {
        SchedRecord::Wakeup(WakeupRecord {
            cpu,
            ts_ns,
            waker_pid: waker.0,
            waker_comm: waker.1.into(),
            pid,
            target_cpu: cpu,
        })
    }

    fn all(timeline: &CpuTimeline, cpu: u32) -> Vec<Slice> {
        timeline.overlapping(cpu, 0, u64::MAX).collect()
    }

    const IDLE: (u32, &str) = (0, "swapper/0");
    const BASH: (u32, &str) = (100, "bash");
    const CC: (u32, &str) = (200, "cc1");

    #[test]
    fn empty() {
        let mut timeline = CpuTimeline::new();
        timeline.apply(Vec::new(), 1.0);
        assert!(timeline.is_empty());
        assert_eq!(timeline.cpus().count(), 0);
        assert_eq!(timeline.anchor(), None);
        assert_eq!(timeline.secs_of(5), None);
        assert_eq!(timeline.slice_at(0, 5), None);
        assert_eq!(timeline.count_overlapping(0, 0, u64::MAX), 0);
    }

    #[test]
    fn the_first_switch_only_starts_a_slice() {
        let mut timeline = CpuTimeline::new();
        timeline.apply(vec![switch(0, 10 * MS, BASH, 1, CC)], 2.0);
        assert_eq!(timeline.len(), 0, "when bash started is unknown");
        let slices = all(&timeline, 0);
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].pid, 200);
        assert_eq!(slices[0].left, LeaveState::StillRunning);
        assert_eq!(slices[0].duration_ns(), 0);
    }

    #[test]
    fn consecutive_switches_on_one_cpu_make_slices() {
        let mut timeline = CpuTimeline::new();
        timeline.apply(
            vec![
                switch(0, 10 * MS, IDLE, 0, BASH),
                switch(0, 12 * MS, BASH, 1, CC),
                switch(0, 15 * MS, CC, 0x100, IDLE),
                switch(0, 20 * MS, IDLE, 0, BASH),
            ],
            2.0,
        );
        let slices = all(&timeline, 0);
        let summary: Vec<_> = slices
            .iter()
            .map(|s| {
                (
                    timeline.task_name(s),
                    s.start_ns / MS,
                    s.end_ns / MS,
                    s.left,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("bash", 10, 12, LeaveState::Sleeping),
                ("cc1", 12, 15, LeaveState::Preempted),
                ("idle", 15, 20, LeaveState::Runnable),
                ("bash", 20, 20, LeaveState::StillRunning),
            ]
        );
        assert!(slices[2].is_idle());
        assert_eq!(timeline.comm(slices[2].comm), "swapper/0");
        assert_eq!(timeline.len(), 3);
        // Lookup by time and by key.
        assert_eq!(timeline.slice_at(0, 13 * MS).map(|s| s.pid), Some(200));
        assert_eq!(timeline.slice_at(0, 5 * MS), None);
        let key = SliceKey {
            cpu: 0,
            start_ns: 12 * MS,
        };
        assert_eq!(timeline.find(key).map(|s| s.pid), Some(200));
        // Culling: only slices overlapping the range, counted cheaply.
        let visible: Vec<u32> = timeline
            .overlapping(0, 13 * MS, 16 * MS)
            .map(|s| s.pid)
            .collect();
        assert_eq!(visible, [200, 0]);
        assert_eq!(timeline.count_overlapping(0, 13 * MS, 16 * MS), 2);
    }

    #[test]
    fn several_cpus_keep_separate_lanes_even_out_of_order() {
        let mut timeline = CpuTimeline::new();
        // CPU 1's events first, though CPU 0's happened in between.
        timeline.apply(
            vec![
                switch(1, 5 * MS, IDLE, 0, CC),
                switch(1, 30 * MS, CC, 2, IDLE),
                switch(0, 10 * MS, IDLE, 0, BASH),
                switch(0, 20 * MS, BASH, 1, IDLE),
            ],
            2.0,
        );
        assert_eq!(timeline.cpus().collect::<Vec<_>>(), [0, 1]);
        let cpu1 = all(&timeline, 1);
        assert_eq!((cpu1[0].pid, cpu1[0].left), (200, LeaveState::DiskSleep));
        let cpu0 = all(&timeline, 0);
        assert_eq!((cpu0[0].pid, cpu0[0].end_ns), (100, 20 * MS));
        // The running slices end at the newest event of any CPU.
        assert_eq!(cpu0[1].end_ns, 30 * MS);
        // A switch older than its CPU's newest is ignored, not reordered.
        timeline.apply(vec![switch(0, 15 * MS, IDLE, 0, CC)], 3.0);
        assert_eq!(timeline.out_of_order(), 1);
        assert_eq!(all(&timeline, 0).len(), 2);
    }

    #[test]
    fn a_wakeup_attaches_to_the_next_slice_of_its_thread() {
        let mut timeline = CpuTimeline::new();
        timeline.apply(
            vec![
                switch(0, 10 * MS, IDLE, 0, CC),
                wakeup(0, 11 * MS, (7, "old"), 100),
                wakeup(0, 12 * MS, CC, 100),
                switch(0, 13 * MS, CC, 0x100, BASH),
                switch(0, 14 * MS, BASH, 0x100, CC),
                switch(0, 15 * MS, CC, 1, BASH),
            ],
            2.0,
        );
        let slices = all(&timeline, 0);
        let bash = slices[1];
        let wakeup = bash.wakeup.expect("bash's first slice was woken");
        assert_eq!((wakeup.ts_ns, wakeup.waker_pid), (12 * MS, 200));
        assert_eq!(timeline.comm(wakeup.waker_comm), "cc1");
        assert_eq!(bash.wakeup_latency_ns(), Some(MS));
        // Its second slice follows a preemption: no new wake-up.
        assert_eq!(slices[3].pid, 100);
        assert_eq!(slices[3].wakeup, None);
    }

    #[test]
    fn a_wakeup_processed_after_the_switch_attaches_late() {
        let mut timeline = CpuTimeline::new();
        timeline.apply(
            vec![
                switch(1, 10 * MS, IDLE, 0, BASH),
                switch(1, 11 * MS, BASH, 1, IDLE),
                // Reported on CPU 0 at 9 ms, processed after CPU 1's events.
                wakeup(0, 9 * MS, CC, 100),
            ],
            2.0,
        );
        let bash = all(&timeline, 1)[0];
        assert_eq!(bash.wakeup.map(|w| w.ts_ns), Some(9 * MS));
        assert_eq!(bash.wakeup_latency_ns(), Some(MS));
    }

    #[test]
    fn a_pid_mismatch_means_lost_events() {
        let mut timeline = CpuTimeline::new();
        timeline.apply(
            vec![
                switch(0, 10 * MS, IDLE, 0, BASH),
                switch(0, 20 * MS, CC, 1, IDLE),
            ],
            2.0,
        );
        assert_eq!(all(&timeline, 0)[0].left, LeaveState::Lost);
    }

    #[test]
    fn kernel_time_maps_to_seconds_from_the_first_batch() {
        let mut timeline = CpuTimeline::new();
        timeline.apply(
            vec![
                switch(0, 1_000 * MS, IDLE, 0, BASH),
                switch(0, 1_500 * MS, BASH, 1, IDLE),
            ],
            10.0,
        );
        // The newest event of the first batch is its arrival.
        assert_eq!(timeline.secs_of(1_500 * MS), Some(10.0));
        assert_eq!(timeline.secs_of(1_000 * MS), Some(9.5));
        assert_eq!(timeline.ns_at(9.5), Some(1_000 * MS));
        assert_eq!(timeline.ns_at(-100.0), Some(0));
        // Later batches keep the anchor.
        timeline.apply(vec![switch(0, 2_500 * MS, IDLE, 0, CC)], 99.0);
        assert_eq!(timeline.secs_of(2_500 * MS), Some(11.0));
    }

    #[test]
    fn memory_is_bounded_by_dropping_the_oldest_time_on_every_cpu() {
        let mut timeline = CpuTimeline::with_capacity_limit(100);
        let mut records = Vec::new();
        for i in 0..200u64 {
            for cpu in 0..2 {
                let (prev, next) = if i % 2 == 0 {
                    (IDLE, BASH)
                } else {
                    (BASH, IDLE)
                };
                records.push(switch(cpu, i * MS, prev, 0, next));
            }
        }
        timeline.apply(records, 1.0);
        assert!(timeline.len() <= 100, "{}", timeline.len());
        assert!(timeline.len() >= 50, "{}", timeline.len());
        let firsts: Vec<u64> = timeline
            .cpus()
            .map(|cpu| all(&timeline, cpu)[0].start_ns)
            .collect();
        assert_eq!(firsts[0], firsts[1], "both CPUs keep the same history");
        assert_eq!(all(&timeline, 0).last().map(|s| s.start_ns), Some(199 * MS));
    }

    #[test]
    fn prev_state_decodes_to_words() {
        let word = |state| LeaveState::from_prev_state(state).word();
        assert_eq!(word(0), "runnable");
        assert_eq!(word(0x100), "preempted");
        assert_eq!(word(1), "sleeping");
        assert_eq!(word(2), "disk sleep");
        assert_eq!(word(4), "stopped");
        assert_eq!(word(0x10), "dead");
        assert_eq!(word(0x20), "zombie");
        assert_eq!(word(0x80), "idle");
        assert_eq!(LeaveState::from_prev_state(2).code(), Some("D"));
    }
}
