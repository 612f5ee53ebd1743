//! A recording seen whole, so that the views of a replay reach every moment
//! of a recording of any size without keeping its events in memory.
//!
//! The live views keep bounded buffers ([`MAX_SLICES`](crate::MAX_SLICES)
//! scheduler slices, the newest events of each probe): right for a stream
//! that never ends, wrong for a file whose every event is on disk. For a
//! recording, `microscope-sources` makes one fast pass over the file
//! ([`microscope_wire::Recording::glance`]) and feeds every frame to an
//! [`OverviewBuilder`]. The [`RecordingOverview`] it builds is small
//! whatever the file's size:
//!
//! - **chunks**: the file cut into pieces of about [`CHUNK_BYTES`], each
//!   with its offset, its events' time span and its events per probe. A
//!   view that needs details (the slices of a zoomed-in CPU timeline, a page
//!   of the event inspector) names a time range or an event number; the
//!   chunks say which bytes of the file to read ([`CpuWindow`],
//!   [`EventPage`]).
//! - **CPU columns**: the recording's time span cut into at most
//!   [`OVERVIEW_BUCKETS`] buckets; per CPU and bucket, the share of time a
//!   task (not the idle task) ran, the number of switches, and the task with
//!   the longest stay in the bucket. A zoomed-out CPU timeline draws these,
//!   one pixel column over one or more buckets, instead of millions of
//!   slices.
//!
//! Memory: about 12 bytes per bucket and CPU (at most
//! [`MAX_OVERVIEW_CPUS`] CPUs: 200 MB for a recording of 1024 CPUs, 800 kB
//! for 4), 100 bytes per chunk (400 for a 10-million-event file).

use crate::cpu_timeline::{ClockAnchor, CpuTimeline};
use microscope_wire::{Event, EventGlance, ProbeKey};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::ops::Range;

/// Most time buckets of the CPU columns.
pub const OVERVIEW_BUCKETS: usize = 16_384;
/// CPUs beyond this many (a hostile or damaged file) are counted, not drawn.
pub const MAX_OVERVIEW_CPUS: usize = 1024;
/// A new chunk starts after this many bytes of frames…
pub const CHUNK_BYTES: u64 = 1 << 20;
/// …or this many frames.
pub const CHUNK_FRAMES: u64 = 256;
/// Distinct command names kept; later ones read as `?`.
const MAX_COMMS: usize = 65_536;

/// A run of consecutive frames of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// File offset of its first frame.
    pub offset: u64,
    /// File offset just after its last frame.
    pub end_offset: u64,
    /// `recv_ns` of its first frame.
    pub first_recv_ns: u64,
    /// Smallest and largest event time in it; `None` without events.
    pub ts_span: Option<(u64, u64)>,
    /// `sched_switch` events in it.
    pub switches: u64,
    /// Streamed events per probe in it.
    pub events: Vec<(ProbeKey, u64)>,
}

impl Chunk {
    /// Events of `probe` in this chunk.
    pub fn events_of(&self, probe: ProbeKey) -> u64 {
        self.events
            .iter()
            .find(|(key, _)| *key == probe)
            .map_or(0, |(_, n)| *n)
    }
}

/// One CPU's buckets.
#[derive(Clone, Debug, Default, PartialEq)]
struct LaneColumns {
    /// Share of each bucket a task other than idle ran (0..=1).
    busy: Vec<f32>,
    /// Share of the longest single stay in each bucket.
    longest: Vec<f32>,
    /// The thread of that stay (0: none, or idle).
    pid: Vec<u32>,
    /// `sched_switch` events in each bucket.
    switches: Vec<u32>,
}

impl LaneColumns {
    /// Adds the columns of the same CPU over later frames: busy shares and
    /// switches add up, the longest stay is the longer one (ours on a tie,
    /// as when one builder sees both).
    fn add(&mut self, later: &LaneColumns) {
        for (busy, more) in self.busy.iter_mut().zip(&later.busy) {
            *busy = (*busy + more).min(1.0);
        }
        for (switches, more) in self.switches.iter_mut().zip(&later.switches) {
            *switches = switches.saturating_add(*more);
        }
        let longest = self.longest.iter_mut().zip(self.pid.iter_mut());
        for ((longest, pid), (&stay, &later_pid)) in
            longest.zip(later.longest.iter().zip(&later.pid))
        {
            if stay > *longest {
                *longest = stay;
                *pid = later_pid;
            }
        }
    }
}

/// What one pixel column of a zoomed-out CPU lane shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    /// Share of the column's time a task (not idle) ran, 0..=1.
    pub busy: f32,
    /// The thread with the longest stay in it (0 when only idle ran).
    pub pid: u32,
    /// Its process.
    pub tgid: u32,
    /// Switches in the column.
    pub switches: u64,
}

/// The whole-recording summary (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingOverview {
    /// First event time of the recording (kernel ns).
    pub start_ns: u64,
    /// Last event time.
    pub end_ns: u64,
    /// Width of one bucket of the CPU columns, in ns.
    pub bucket_ns: u64,
    /// How kernel time maps to the views' seconds: the same rule as the
    /// replayed [`CpuTimeline`] (the newest scheduler event of the first
    /// frame with any, at that frame's `recv_ns`).
    pub anchor: Option<ClockAnchor>,
    /// The file, chunk by chunk, in order.
    pub chunks: Vec<Chunk>,
    /// Streamed events per probe, whole recording.
    pub events_per_probe: BTreeMap<ProbeKey, u64>,
    /// Events of CPUs beyond [`MAX_OVERVIEW_CPUS`] (not in the columns).
    pub ignored_cpu_events: u64,
    lanes: BTreeMap<u32, LaneColumns>,
    comms: Vec<String>,
    comm_of_pid: FxHashMap<u32, u32>,
    tgid_of_pid: FxHashMap<u32, u32>,
}

impl RecordingOverview {
    /// The CPUs with scheduler events, ascending.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.lanes.keys().copied()
    }

    /// Buckets overlapping `from_ns..to_ns`.
    fn buckets(&self, from_ns: u64, to_ns: u64) -> Range<usize> {
        let count = self.lanes.values().next().map_or(0, |lane| lane.busy.len());
        let index = |ns: u64| {
            usize::try_from(ns.saturating_sub(self.start_ns) / self.bucket_ns.max(1))
                .unwrap_or(usize::MAX)
        };
        if to_ns <= self.start_ns || from_ns > self.end_ns || to_ns <= from_ns {
            return 0..0;
        }
        index(from_ns).min(count)..index(to_ns.saturating_sub(1)).saturating_add(1).min(count)
    }

    /// What `cpu` did in `from_ns..to_ns`, from the buckets it overlaps;
    /// `None` outside the recording or for an unknown CPU.
    pub fn column(&self, cpu: u32, from_ns: u64, to_ns: u64) -> Option<Column> {
        let lane = self.lanes.get(&cpu)?;
        let range = self.buckets(from_ns, to_ns);
        if range.is_empty() {
            return None;
        }
        let buckets = range.len() as f32;
        let mut column = Column {
            busy: 0.0,
            pid: 0,
            tgid: 0,
            switches: 0,
        };
        let mut longest = 0.0;
        for index in range {
            column.busy += lane.busy.get(index).copied().unwrap_or(0.0) / buckets;
            column.switches += u64::from(lane.switches.get(index).copied().unwrap_or(0));
            let stay = lane.longest.get(index).copied().unwrap_or(0.0);
            if stay > longest {
                longest = stay;
                column.pid = lane.pid.get(index).copied().unwrap_or(0);
            }
        }
        column.tgid = self.tgid_of(column.pid);
        Some(column)
    }

    /// `sched_switch` events of all CPUs in the buckets overlapping
    /// `from_ns..to_ns` (what loading that range would cost).
    pub fn switches_between(&self, from_ns: u64, to_ns: u64) -> u64 {
        let range = self.buckets(from_ns, to_ns);
        self.lanes
            .values()
            .map(|lane| {
                lane.switches
                    .get(range.clone())
                    .map_or(0, |s| s.iter().map(|&n| u64::from(n)).sum::<u64>())
            })
            .sum()
    }

    /// The command name last seen for a thread.
    pub fn comm_of(&self, pid: u32) -> &str {
        if pid == 0 {
            return "idle";
        }
        self.comm_of_pid
            .get(&pid)
            .and_then(|&id| self.comms.get(id as usize))
            .map_or("?", String::as_str)
    }

    /// The process of a thread, when seen leaving a CPU (else the thread).
    pub fn tgid_of(&self, pid: u32) -> u32 {
        self.tgid_of_pid.get(&pid).copied().unwrap_or(pid)
    }

    /// `ts_ns` on the views' time axis (seconds since the recording
    /// started), as [`CpuTimeline::secs_of`].
    pub fn secs_of(&self, ts_ns: u64) -> Option<f64> {
        let anchor = self.anchor?;
        Some(anchor.secs + (ts_ns as f64 - anchor.ts_ns as f64) / 1e9)
    }

    /// The kernel time at `secs` on the views' axis, as [`CpuTimeline::ns_at`].
    pub fn ns_at(&self, secs: f64) -> Option<u64> {
        let anchor = self.anchor?;
        Some((anchor.ts_ns as f64 + (secs - anchor.secs) * 1e9) as u64)
    }

    /// The chunks to read for the scheduler slices of `from_ns..to_ns`:
    /// those whose events overlap it, and before them enough chunks to see
    /// about [`LOOKBACK_SWITCHES`] switches, so the tasks already running at
    /// `from_ns` are known.
    pub fn chunks_for_window(&self, from_ns: u64, to_ns: u64) -> Range<usize> {
        let overlaps = |chunk: &Chunk| {
            chunk
                .ts_span
                .is_some_and(|(first, last)| first < to_ns && last >= from_ns)
        };
        let Some(first) = self.chunks.iter().position(overlaps) else {
            return 0..0;
        };
        let last = self.chunks.iter().rposition(overlaps).unwrap_or(first);
        let mut start = first;
        let mut seen = 0;
        while start > 0 && seen < LOOKBACK_SWITCHES {
            start -= 1;
            seen += self.chunks.get(start).map_or(0, |c| c.switches);
        }
        start..last + 1
    }

    /// Events of `probe` in the whole recording.
    pub fn events_of(&self, probe: ProbeKey) -> u64 {
        self.events_per_probe.get(&probe).copied().unwrap_or(0)
    }

    /// The chunk holding event number `ordinal` (from 0) of `probe`, and
    /// how many of its events of that probe come before it there.
    pub fn locate_event(&self, probe: ProbeKey, ordinal: u64) -> Option<(usize, u64)> {
        let mut before = 0;
        for (index, chunk) in self.chunks.iter().enumerate() {
            let here = chunk.events_of(probe);
            if ordinal < before + here {
                return Some((index, ordinal - before));
            }
            before += here;
        }
        None
    }

    /// Number of the first event of `probe` in a frame received at or after
    /// `recv_ns` (to the chunk: the inspector's "at the playhead").
    pub fn event_at_recv(&self, probe: ProbeKey, recv_ns: u64) -> u64 {
        self.chunks
            .iter()
            .take_while(|chunk| chunk.first_recv_ns < recv_ns)
            .map(|chunk| chunk.events_of(probe))
            .sum::<u64>()
            .min(self.events_of(probe).saturating_sub(1))
    }
}

/// Switches read before a CPU window (see
/// [`RecordingOverview::chunks_for_window`]).
pub const LOOKBACK_SWITCHES: u64 = 4096;

/// The task running on one CPU while the builder reads.
#[derive(Clone, Copy, Debug)]
struct Running {
    pid: u32,
    since_ns: u64,
}

/// Builds a [`RecordingOverview`] from every frame of a recording, in order.
///
/// A recording can also be built in parts, one per thread: give each part's
/// frames, in order, to a builder of its own (all made with the same
/// `event_span_ns`), then [`merge`](Self::merge) the parts in file order and
/// [`finish`](Self::finish) the result. The only state that crosses a seam
/// is the task running on each CPU when the earlier part ended: its stay
/// lasts until the first switch the later part saw on that CPU, and `merge`
/// spreads it then. The result is the one a single builder makes, except
/// that chunks also start at the seams.
#[derive(Debug)]
pub struct OverviewBuilder {
    overview: RecordingOverview,
    buckets: usize,
    chunk: Option<(Chunk, u64, BTreeMap<ProbeKey, u64>)>,
    /// Per CPU: the task running since its last switch, and the time of
    /// the newest switch seen there.
    running: FxHashMap<u32, (Running, u64)>,
    /// Per CPU: the time of the first switch seen there (where a stay that
    /// began in an earlier part ends).
    first_switch_ns: FxHashMap<u32, u64>,
    comm_ids: FxHashMap<String, u32>,
}

impl OverviewBuilder {
    /// A builder for a recording whose events span `event_span_ns` (from
    /// its index's totals) and whose data ends at `data_end`.
    pub fn new(event_span_ns: Option<(u64, u64)>) -> Self {
        let (start_ns, end_ns) = event_span_ns.unwrap_or((0, 0));
        let span = end_ns.saturating_sub(start_ns).max(1);
        let bucket_ns = span.div_ceil(OVERVIEW_BUCKETS as u64).max(1);
        let buckets = usize::try_from(span.div_ceil(bucket_ns))
            .unwrap_or(OVERVIEW_BUCKETS)
            .clamp(1, OVERVIEW_BUCKETS);
        Self {
            overview: RecordingOverview {
                start_ns,
                end_ns,
                bucket_ns,
                anchor: None,
                chunks: Vec::new(),
                events_per_probe: BTreeMap::new(),
                ignored_cpu_events: 0,
                lanes: BTreeMap::new(),
                comms: Vec::new(),
                comm_of_pid: FxHashMap::default(),
                tgid_of_pid: FxHashMap::default(),
            },
            buckets,
            chunk: None,
            running: FxHashMap::default(),
            first_switch_ns: FxHashMap::default(),
            comm_ids: FxHashMap::default(),
        }
    }

    /// Adds one frame at file `offset`, received `recv_ns` into the
    /// recording, with its streamed events.
    pub fn frame(
        &mut self,
        offset: u64,
        recv_ns: u64,
        events: &mut dyn Iterator<Item = EventGlance<'_>>,
    ) {
        let start_new = self.chunk.as_ref().is_none_or(|(chunk, frames, _)| {
            offset.saturating_sub(chunk.offset) >= CHUNK_BYTES || *frames >= CHUNK_FRAMES
        });
        if start_new {
            self.close_chunk(offset);
            self.chunk = Some((
                Chunk {
                    offset,
                    end_offset: offset,
                    first_recv_ns: recv_ns,
                    ..Chunk::default()
                },
                0,
                BTreeMap::new(),
            ));
        }
        let mut newest_sched: Option<u64> = None;
        for event in events {
            if let Some((chunk, _, counts)) = &mut self.chunk {
                *counts.entry(event.probe).or_default() += 1;
                chunk.ts_span = Some(match chunk.ts_span {
                    Some((first, last)) => (first.min(event.ts_ns), last.max(event.ts_ns)),
                    None => (event.ts_ns, event.ts_ns),
                });
                chunk.switches += u64::from(event.switch.is_some());
            }
            if event.switch.is_some() || event.wakeup {
                newest_sched = Some(newest_sched.map_or(event.ts_ns, |n| n.max(event.ts_ns)));
            }
            self.switch(&event);
        }
        if let Some((_, frames, _)) = &mut self.chunk {
            *frames += 1;
        }
        if self.overview.anchor.is_none()
            && let Some(ts_ns) = newest_sched
        {
            self.overview.anchor = Some(ClockAnchor {
                ts_ns,
                secs: recv_ns as f64 / 1e9,
            });
        }
    }

    fn close_chunk(&mut self, end_offset: u64) {
        if let Some((mut chunk, _, counts)) = self.chunk.take() {
            chunk.end_offset = end_offset;
            // Counted per chunk as events come, for the whole file here.
            for (&probe, &count) in &counts {
                *self.overview.events_per_probe.entry(probe).or_default() += count;
            }
            chunk.events = counts.into_iter().collect();
            self.overview.chunks.push(chunk);
        }
    }

    fn bucket(&self, ts_ns: u64) -> usize {
        usize::try_from(ts_ns.saturating_sub(self.overview.start_ns) / self.overview.bucket_ns)
            .unwrap_or(usize::MAX)
            .min(self.buckets - 1)
    }

    fn switch(&mut self, event: &EventGlance<'_>) {
        let Some(switch) = event.switch else {
            return;
        };
        if !self.overview.lanes.contains_key(&event.cpu)
            && self.overview.lanes.len() >= MAX_OVERVIEW_CPUS
        {
            self.overview.ignored_cpu_events += 1;
            return;
        }
        if switch.prev_pid != 0 {
            self.overview
                .tgid_of_pid
                .insert(switch.prev_pid, event.tgid);
        }
        // A thread mostly keeps its name: compare with the one it had before
        // hashing the name.
        let same_name = self
            .overview
            .comm_of_pid
            .get(&switch.next_pid)
            .and_then(|&id| self.overview.comms.get(id as usize))
            .is_some_and(|name| name == switch.next_comm);
        if !same_name && let Some(id) = self.comm_id(switch.next_comm) {
            self.overview.comm_of_pid.insert(switch.next_pid, id);
        }
        let bucket = self.bucket(event.ts_ns);
        let buckets = self.buckets;
        let lane = self
            .overview
            .lanes
            .entry(event.cpu)
            .or_insert_with(|| LaneColumns {
                busy: vec![0.0; buckets],
                longest: vec![0.0; buckets],
                pid: vec![0; buckets],
                switches: vec![0; buckets],
            });
        if let Some(n) = lane.switches.get_mut(bucket) {
            *n = n.saturating_add(1);
        }
        let previous = self.running.insert(
            event.cpu,
            (
                Running {
                    pid: switch.next_pid,
                    since_ns: event.ts_ns,
                },
                event.ts_ns,
            ),
        );
        match previous {
            Some((running, last_ns)) if event.ts_ns < last_ns => {
                // Out of order on this CPU: keep what was running.
                self.running.insert(event.cpu, (running, last_ns));
            }
            Some((running, _)) => self.stay(event.cpu, running, event.ts_ns),
            None => {
                self.first_switch_ns.insert(event.cpu, event.ts_ns);
            }
        }
    }

    /// The id of a command name, interned on first sight (the name is
    /// copied only then: this runs for every switch); `None` once
    /// [`MAX_COMMS`] names are known.
    fn comm_id(&mut self, comm: &str) -> Option<u32> {
        if let Some(&id) = self.comm_ids.get(comm) {
            return Some(id);
        }
        if self.overview.comms.len() >= MAX_COMMS {
            return None;
        }
        let id = self.overview.comms.len() as u32;
        self.comm_ids.insert(comm.to_owned(), id);
        self.overview.comms.push(comm.to_owned());
        Some(id)
    }

    /// Spreads a stay of `running` until `end_ns` over its buckets.
    fn stay(&mut self, cpu: u32, running: Running, end_ns: u64) {
        let (first, last) = (self.bucket(running.since_ns), self.bucket(end_ns));
        let (start_ns, bucket_ns) = (self.overview.start_ns, self.overview.bucket_ns);
        let Some(lane) = self.overview.lanes.get_mut(&cpu) else {
            return;
        };
        for index in first..=last {
            let bucket_start = start_ns + index as u64 * bucket_ns;
            let from = running.since_ns.max(bucket_start);
            let to = end_ns.min(bucket_start + bucket_ns);
            let share = to.saturating_sub(from) as f32 / bucket_ns as f32;
            if running.pid == 0 || share <= 0.0 {
                continue;
            }
            if let Some(busy) = lane.busy.get_mut(index) {
                *busy = (*busy + share).min(1.0);
            }
            if let (Some(longest), Some(pid)) =
                (lane.longest.get_mut(index), lane.pid.get_mut(index))
                && share > *longest
            {
                *longest = share;
                *pid = running.pid;
            }
        }
    }

    /// Appends `later`, a builder given the frames that follow this one's
    /// in the file (see the type's docs).
    pub fn merge(&mut self, later: OverviewBuilder) {
        let OverviewBuilder {
            overview: later_overview,
            chunk: later_chunk,
            running: later_running,
            first_switch_ns: later_first_switch_ns,
            ..
        } = later;
        self.stitch(&later_running, &later_first_switch_ns);
        self.append_chunks(later_overview.chunks, later_chunk);
        self.merge_tasks(
            later_overview.comms,
            later_overview.comm_of_pid,
            later_overview.tgid_of_pid,
        );
        self.merge_lanes(later_overview.lanes);
        for (probe, count) in later_overview.events_per_probe {
            *self.overview.events_per_probe.entry(probe).or_default() += count;
        }
        self.overview.ignored_cpu_events += later_overview.ignored_cpu_events;
        self.overview.anchor = self.overview.anchor.or(later_overview.anchor);
    }

    /// The stays running at the seam: each CPU's task when this part
    /// ended ran until the later part's first switch there.
    fn stitch(
        &mut self,
        later_running: &FxHashMap<u32, (Running, u64)>,
        later_first_switch_ns: &FxHashMap<u32, u64>,
    ) {
        for (&cpu, &first_ns) in later_first_switch_ns {
            match self.running.get(&cpu).copied() {
                // An out-of-order seam (a damaged or hand-made file) drops
                // that one stay rather than spread it backwards.
                Some((running, last_ns)) if first_ns >= last_ns => {
                    self.stay(cpu, running, first_ns);
                }
                Some(_) => {}
                None => {
                    self.first_switch_ns.insert(cpu, first_ns);
                }
            }
        }
        // Where the later part switched, its task runs on; elsewhere ours.
        self.running
            .extend(later_running.iter().map(|(&cpu, &r)| (cpu, r)));
    }

    /// The later part's chunks after ours; our open chunk ends where the
    /// later part's first one begins.
    fn append_chunks(
        &mut self,
        chunks: Vec<Chunk>,
        open: Option<(Chunk, u64, BTreeMap<ProbeKey, u64>)>,
    ) {
        let Some(seam) = chunks
            .first()
            .or(open.as_ref().map(|(chunk, _, _)| chunk))
            .map(|chunk| chunk.offset)
        else {
            // The later part had no frames: our chunk goes on.
            return;
        };
        self.close_chunk(seam);
        self.overview.chunks.extend(chunks);
        self.chunk = open;
    }

    /// Command names (interned again, in the later part's order of first
    /// sight, so ids are those one builder would give) and the later
    /// part's view of each thread, which is newer than ours.
    fn merge_tasks(
        &mut self,
        comms: Vec<String>,
        comm_of_pid: FxHashMap<u32, u32>,
        tgid_of_pid: FxHashMap<u32, u32>,
    ) {
        let ids: Vec<Option<u32>> = comms.iter().map(|comm| self.comm_id(comm)).collect();
        for (pid, later_id) in comm_of_pid {
            if let Some(&Some(id)) = ids.get(later_id as usize) {
                self.overview.comm_of_pid.insert(pid, id);
            }
        }
        self.overview.tgid_of_pid.extend(tgid_of_pid);
    }

    /// Adds the later part's columns to ours, CPU by CPU.
    fn merge_lanes(&mut self, lanes: BTreeMap<u32, LaneColumns>) {
        for (cpu, later) in lanes {
            if let Some(lane) = self.overview.lanes.get_mut(&cpu) {
                lane.add(&later);
            } else if self.overview.lanes.len() < MAX_OVERVIEW_CPUS {
                self.overview.lanes.insert(cpu, later);
            } else {
                self.overview.ignored_cpu_events +=
                    later.switches.iter().map(|&n| u64::from(n)).sum::<u64>();
            }
        }
    }

    /// The overview of everything added so far.
    pub fn finish(mut self, data_end: u64) -> RecordingOverview {
        self.close_chunk(data_end);
        let end_ns = self.overview.end_ns;
        let running: Vec<(u32, Running)> = self
            .running
            .iter()
            .map(|(&cpu, &(running, _))| (cpu, running))
            .collect();
        for (cpu, running) in running {
            self.stay(cpu, running, end_ns.max(running.since_ns));
        }
        self.overview
    }
}

/// The scheduler slices of a time range of a recording, read from the file.
#[derive(Clone, Debug)]
pub struct CpuWindow {
    /// The range asked for (kernel ns).
    pub from_ns: u64,
    /// Its end.
    pub to_ns: u64,
    /// Its slices, on the same time axis as the replay's.
    pub timeline: CpuTimeline,
}

impl CpuWindow {
    /// An empty window on the axis of `anchor`.
    pub fn new(from_ns: u64, to_ns: u64, anchor: ClockAnchor) -> Self {
        Self {
            from_ns,
            to_ns,
            timeline: CpuTimeline::with_anchor(anchor),
        }
    }

    /// Whether it holds everything of `from_ns..to_ns`.
    pub fn covers(&self, from_ns: u64, to_ns: u64) -> bool {
        self.from_ns <= from_ns && to_ns <= self.to_ns
    }
}

/// Consecutive events of one probe, read from a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPage {
    /// The probe.
    pub probe: ProbeKey,
    /// Number of the first event (from 0) among the probe's events.
    pub first: u64,
    /// The events, in file order.
    pub events: Vec<Event>,
    /// Events of the probe in the recording.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::SwitchGlance;

    fn switch(
        cpu: u32,
        ts_ns: u64,
        prev: u32,
        next: u32,
        comm: &'static str,
    ) -> EventGlance<'static> {
        EventGlance {
            probe: 1,
            cpu,
            ts_ns,
            pid: prev,
            tgid: prev,
            wakeup: false,
            switch: Some(SwitchGlance {
                prev_pid: prev,
                prev_state: 1,
                next_pid: next,
                next_comm: comm,
            }),
        }
    }

    fn other(ts_ns: u64) -> EventGlance<'static> {
        EventGlance {
            probe: 2,
            cpu: 0,
            ts_ns,
            pid: 9,
            tgid: 9,
            wakeup: false,
            switch: None,
        }
    }

    #[test]
    fn columns_say_who_ran_and_how_busy_the_cpu_was() {
        // 0..1000 ns, 16 384 buckets of 1 ns at most: here 1000 buckets.
        let mut builder = OverviewBuilder::new(Some((0, 1000)));
        let mut events = vec![
            switch(0, 0, 0, 7, "burn"),
            switch(0, 600, 7, 0, "swapper"),
            other(700),
            switch(0, 800, 0, 8, "cat"),
        ]
        .into_iter();
        builder.frame(100, 5_000, &mut events);
        let overview = builder.finish(200);
        assert_eq!(overview.cpus().collect::<Vec<_>>(), vec![0]);
        assert_eq!(overview.anchor.map(|a| a.ts_ns), Some(800));
        let column = overview.column(0, 0, 1000).expect("a column");
        // burn ran 600 ns, cat from 800 to the end: 200 ns.
        assert!((column.busy - 0.8).abs() < 0.01, "{column:?}");
        assert_eq!(column.switches, 3);
        let first_half = overview.column(0, 0, 500).expect("a column");
        assert_eq!(
            (first_half.pid, overview.comm_of(first_half.pid)),
            (7, "burn")
        );
        assert_eq!(overview.column(0, 650, 750).map(|c| c.pid), Some(0));
        assert_eq!(overview.switches_between(0, 1000), 3);
        assert_eq!(overview.column(3, 0, 1000), None);
        assert_eq!(overview.column(0, 2000, 3000), None);
    }

    #[test]
    fn chunks_locate_events_and_windows() {
        let mut builder = OverviewBuilder::new(Some((0, 10_000)));
        // Frames of 1 MiB: each starts a chunk.
        for i in 0..4u64 {
            let mut events = vec![other(i * 1000), switch(0, i * 1000 + 1, 0, 5, "x")].into_iter();
            builder.frame(i * CHUNK_BYTES, i * 10, &mut events);
        }
        let overview = builder.finish(4 * CHUNK_BYTES);
        assert_eq!(overview.chunks.len(), 4);
        assert_eq!(overview.chunks[3].end_offset, 4 * CHUNK_BYTES);
        assert_eq!(overview.events_of(2), 4);
        assert_eq!(overview.locate_event(2, 0), Some((0, 0)));
        assert_eq!(overview.locate_event(2, 3), Some((3, 0)));
        assert_eq!(overview.locate_event(2, 4), None);
        assert_eq!(overview.event_at_recv(2, 15), 2);
        assert_eq!(overview.event_at_recv(2, 1_000), 3);
        // The window 2000..2500 is in chunk 2; the chunks before it are read
        // too, to know what was running.
        assert_eq!(overview.chunks_for_window(2000, 2500), 0..3);
        assert_eq!(overview.chunks_for_window(50_000, 60_000), 0..0);
    }

    /// Frames of random events in time order: switches on 3 CPUs among 5
    /// tasks, wake-ups and other events, a few per frame.
    fn random_frames(seed: u64, frames: usize) -> Vec<Vec<EventGlance<'static>>> {
        const COMMS: [&str; 5] = ["swapper", "burn", "cat", "sh", "kworker"];
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut ts_ns = 1_000;
        (0..frames)
            .map(|_| {
                (0..rng.usize(0..6))
                    .map(|_| {
                        ts_ns += rng.u64(1..400);
                        let next = rng.usize(0..COMMS.len());
                        match rng.u8(0..10) {
                            0 => other(ts_ns),
                            1 => EventGlance {
                                wakeup: true,
                                ..other(ts_ns)
                            },
                            _ => switch(
                                rng.u32(0..3),
                                ts_ns,
                                rng.u32(0..5) * 10,
                                next as u32 * 10,
                                COMMS[next],
                            ),
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// One builder over `frames` (frame `i` at offset `i * gap`).
    fn build(frames: &[Vec<EventGlance<'static>>], gap: u64, span: (u64, u64)) -> OverviewBuilder {
        build_from(frames, 0, gap, span)
    }

    fn build_from(
        frames: &[Vec<EventGlance<'static>>],
        first: usize,
        gap: u64,
        span: (u64, u64),
    ) -> OverviewBuilder {
        let mut builder = OverviewBuilder::new(Some(span));
        for (i, events) in frames.iter().enumerate() {
            let index = (first + i) as u64;
            builder.frame(index * gap, index * 7, &mut events.iter().copied());
        }
        builder
    }

    #[test]
    fn parts_merged_in_order_make_the_overview_one_builder_makes() {
        for seed in 0..20 {
            let frames = random_frames(seed, 120);
            let span = (1_000, 1_000 + 120 * 6 * 400);
            let end = frames.len() as u64 * CHUNK_BYTES;
            // Frames 1 MiB apart: a chunk each, so even the chunks match.
            let whole = build(&frames, CHUNK_BYTES, span).finish(end);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut cuts: Vec<usize> = (0..rng.usize(1..5)).map(|_| rng.usize(0..=120)).collect();
            cuts.extend([0, 120]);
            cuts.sort_unstable();
            let mut parts = cuts
                .windows(2)
                .map(|w| build_from(&frames[w[0]..w[1]], w[0], CHUNK_BYTES, span));
            let mut merged = parts.next().expect("a part");
            for part in parts {
                merged.merge(part);
            }
            assert_eq!(merged.finish(end), whole, "seed {seed}, cuts {cuts:?}");
        }
    }

    #[test]
    fn parts_cut_inside_a_chunk_start_a_chunk_at_the_seam() {
        let frames = random_frames(7, 100);
        let span = (1_000, 1_000 + 100 * 6 * 400);
        let whole = build(&frames, 10, span).finish(1000);
        let mut merged = build_from(&frames[..37], 0, 10, span);
        merged.merge(build_from(&frames[37..37], 37, 10, span));
        merged.merge(build_from(&frames[37..], 37, 10, span));
        let merged = merged.finish(1000);
        let offsets = |o: &RecordingOverview| {
            o.chunks
                .iter()
                .map(|c| (c.offset, c.end_offset))
                .collect::<Vec<_>>()
        };
        assert_eq!(offsets(&whole), vec![(0, 1000)]);
        assert_eq!(offsets(&merged), vec![(0, 370), (370, 1000)]);
        let switches = |o: &RecordingOverview| o.chunks.iter().map(|c| c.switches).sum::<u64>();
        assert_eq!(switches(&merged), switches(&whole));
        assert_eq!(
            RecordingOverview {
                chunks: Vec::new(),
                ..merged
            },
            RecordingOverview {
                chunks: Vec::new(),
                ..whole
            }
        );
    }

    #[test]
    fn a_stay_across_a_seam_counts_once_whole() {
        // burn runs on CPU 0 from 0 to 800 ns; the seam is at 500.
        let mut early = OverviewBuilder::new(Some((0, 1000)));
        early.frame(0, 0, &mut vec![switch(0, 0, 0, 7, "burn")].into_iter());
        let mut late = OverviewBuilder::new(Some((0, 1000)));
        late.frame(
            50,
            1,
            &mut vec![switch(0, 800, 7, 0, "swapper")].into_iter(),
        );
        early.merge(late);
        let overview = early.finish(100);
        let column = overview.column(0, 0, 1000).expect("a column");
        assert!((column.busy - 0.8).abs() < 0.01, "{column:?}");
        assert_eq!((column.pid, column.switches), (7, 2));
        assert_eq!(overview.comm_of(7), "burn");
    }
}
