//! Everything the UI shows, and how updates from the ingest thread change it.

use crate::clock::Clock;
use crate::counter::CumulativeCounter;
use crate::cpu_timeline::CpuTimeline;
use crate::histogram::LatencyHistogram;
use crate::pack_data::PackProbeData;
use crate::stacks::StackStore;
use crate::timeline::Timeline;
use crate::update::{
    HelperSummary, Probe, ProbeCount, ProbeDrops, ProbeKind, ReplayStatus, Update,
};
use microscope_wire::ProbeKey;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The probe the CPU timeline is built from.
pub const SCHED_SWITCH: &str = "sched:sched_switch";

/// The state of the link to the helper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// No answer yet from the first attempt.
    Connecting,
    /// Handshake done.
    Connected,
    /// Not connected; the ingest thread keeps retrying.
    Disconnected {
        /// What happened, in a sentence.
        reason: String,
    },
    /// Showing a recording, not the live kernel.
    Replay {
        /// Whether it is the bundled demo (shown because no helper answered).
        demo: bool,
    },
}

/// The off-CPU profile, whose stacks count nanoseconds rather than samples.
pub const OFF_CPU_PROBE: &str = "profile:offcpu";

/// Events kept per probe for the event inspector.
pub const RECENT_EVENTS: usize = 2_000;

/// A recording read for browsing: what the replay's views show beyond the
/// bounded buffers that playing fills (see
/// [`RecordingOverview`](crate::RecordingOverview)).
#[derive(Clone, Debug, Default)]
pub struct Browse {
    /// Share of the file read while the overview is built.
    pub progress: f32,
    /// The whole recording, once read.
    pub overview: Option<std::sync::Arc<crate::RecordingOverview>>,
    /// The latest time range of slices read from the file.
    pub cpu_window: Option<std::sync::Arc<crate::CpuWindow>>,
    /// The latest page of events read from the file.
    pub page: Option<std::sync::Arc<crate::EventPage>>,
    /// Why reading failed, if it did.
    pub error: Option<String>,
    /// A second recording to compare with, once read.
    pub baseline: Option<std::sync::Arc<Baseline>>,
    /// The latest events around a followed call, read from the file.
    pub call_events: Option<std::sync::Arc<crate::waterfall::CallEvents>>,
}

/// A second recording, read whole, that the flame graph, the rates and the
/// latency histogram show next to the one replayed.
#[derive(Debug)]
pub struct Baseline {
    /// Its file.
    pub path: std::path::PathBuf,
    /// Its stack samples.
    pub stacks: crate::StackStore,
    /// Its events per second, seconds counted from its own start.
    pub timeline: crate::Timeline,
    /// Its syscall latencies.
    pub latency: crate::LatencyHistogram,
}

impl Baseline {
    /// The baseline from a model that was fed the whole recording.
    pub fn from_model(path: std::path::PathBuf, model: Model) -> Self {
        Self {
            path,
            stacks: model.stacks,
            timeline: model.timeline,
            latency: model.latency,
        }
    }
}

impl Browse {
    fn apply(&mut self, update: crate::update::BrowseUpdate) {
        use crate::update::BrowseUpdate;
        match update {
            BrowseUpdate::Progress(share) => self.progress = share,
            BrowseUpdate::Overview(overview) => {
                self.progress = 1.0;
                self.overview = Some(overview);
            }
            BrowseUpdate::CpuWindow(window) => self.cpu_window = Some(window),
            BrowseUpdate::Page(page) => self.page = Some(page),
            BrowseUpdate::Failed(reason) => self.error = Some(reason),
            BrowseUpdate::Baseline(baseline) => self.baseline = Some(baseline),
            BrowseUpdate::CallEvents(events) => self.call_events = Some(events),
        }
    }
}

/// What a pack probe whose only data are stacks grew by in its latest
/// drain (the helper drains stacks once a second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackStackRate {
    /// End of the drain's interval, kernel ns.
    pub end_ns: u64,
    /// Length of the interval, ns.
    pub interval_ns: u64,
    /// Stacks (thread and code path) whose count grew.
    pub stacks: u64,
    /// What their counts grew by: samples, or ns for a time sum.
    pub value: u64,
    /// Whether `value` is time (ns) rather than samples.
    pub time: bool,
}

impl PackStackRate {
    /// Stacks that grew per second of the interval.
    pub fn stacks_per_sec(&self) -> f64 {
        per_sec(self.stacks, self.interval_ns)
    }

    /// Samples per second, or for a time sum ns per second.
    pub fn value_per_sec(&self) -> f64 {
        per_sec(self.value, self.interval_ns)
    }
}

fn per_sec(amount: u64, interval_ns: u64) -> f64 {
    if interval_ns == 0 {
        0.0
    } else {
        amount as f64 * 1e9 / interval_ns as f64
    }
}

/// The UI's state.
#[derive(Debug)]
pub struct Model {
    /// Link to the helper.
    pub connection: ConnectionState,
    /// Identity of the helper, once connected (kept after a disconnect).
    pub helper: Option<HelperSummary>,
    /// The probe catalogue (kept after a disconnect).
    pub probes: Vec<Probe>,
    /// Probes the user asked for; re-enabled by the ingest thread on reconnect.
    pub wanted: BTreeSet<String>,
    /// Events per second of each probe.
    pub timeline: Timeline,
    /// Syscall latencies since the first aggregate.
    pub latency: LatencyHistogram,
    /// Which task ran on which CPU, from `sched_switch` events.
    pub cpu: CpuTimeline,
    /// Stack samples (on-CPU, off-CPU, stacks at probes), for the flame
    /// graph and paths views.
    pub stacks: StackStore,
    /// Latest drop totals per probe key.
    pub drops: BTreeMap<ProbeKey, ProbeDrops>,
    /// The last error the helper reported.
    pub last_helper_error: Option<String>,
    /// Baselines of aggregated probes, by probe id.
    aggregate_counters: BTreeMap<String, CumulativeCounter>,
    /// When the previous total of each aggregated probe arrived.
    aggregate_arrivals: BTreeMap<String, Instant>,
    /// Where the replay stands, when showing a recording.
    pub replay: Option<ReplayStatus>,
    /// The recording read for browsing, when replaying one.
    pub browse: Browse,
    /// Every tracepoint of the traced kernel, once asked for.
    pub tracepoints: Vec<String>,
    /// The last kernel function search: (query, names, truncated).
    pub kernel_functions: Option<(String, Vec<String>, bool)>,
    /// The in-kernel process filter in force.
    pub filter: microscope_wire::ProcessFilter,
    /// Kernel ns minus timeline ns (the timeline counts from `epoch`), from
    /// the latest stack batch's end and its arrival: maps a timeline range
    /// to the stack samples' clock, to within the batch interval (~1 s).
    stack_clock_offset_ns: Option<i128>,
    /// Tracepoints whose stacks we asked the helper to capture.
    pub stacks_wanted: BTreeSet<String>,
    /// Tracepoints we asked the helper only to count in the kernel (the
    /// default probes, [`crate::live_defaults`]): they have rates but no
    /// events.
    pub counted_in_kernel: BTreeSet<String>,
    /// Calls and latency histogram of each enabled function probe, by id.
    pub functions: BTreeMap<String, (u64, LatencyHistogram)>,
    /// Events per command name of each probe, since it was enabled.
    pub comm_counts: HashMap<ProbeKey, HashMap<String, u64>>,
    /// The newest events of each streamed probe, oldest first, at most
    /// [`RECENT_EVENTS`] each.
    pub recent: HashMap<ProbeKey, VecDeque<microscope_wire::Event>>,
    /// What each pack probe's counter and histogram maps last held, by
    /// probe key.
    pub packs: BTreeMap<ProbeKey, PackProbeData>,
    /// The latest drain of each pack probe whose only data are stacks, by
    /// probe key: what lights its node and feeds its rate.
    pub pack_stack_rates: BTreeMap<ProbeKey, PackStackRate>,
    /// Verifier logs the helper sent, by probe id.
    pub verifier_logs: BTreeMap<String, String>,
    /// What tracing costs: the latest reports, while the app watches.
    pub cost: crate::cost::CostHistory,
    /// Start of the time axis of every view.
    epoch: Instant,
    /// Where "now" comes from.
    clock: Clock,
    /// When a replay's playhead stopped (paused or at the end), as reported
    /// by the replay; `None` while it plays, and when live.
    replay_stopped_at: Option<Instant>,
}

impl Model {
    /// An empty model whose timeline starts at `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self {
            connection: ConnectionState::Connecting,
            helper: None,
            probes: Vec::new(),
            wanted: BTreeSet::new(),
            timeline: Timeline::new(epoch),
            latency: LatencyHistogram::default(),
            cpu: CpuTimeline::new(),
            stacks: StackStore::new(),
            drops: BTreeMap::new(),
            last_helper_error: None,
            aggregate_counters: BTreeMap::new(),
            aggregate_arrivals: BTreeMap::new(),
            replay: None,
            browse: Browse::default(),
            tracepoints: Vec::new(),
            kernel_functions: None,
            filter: microscope_wire::ProcessFilter::default(),
            stacks_wanted: BTreeSet::new(),
            counted_in_kernel: BTreeSet::new(),
            stack_clock_offset_ns: None,
            functions: BTreeMap::new(),
            comm_counts: HashMap::new(),
            recent: HashMap::new(),
            packs: BTreeMap::new(),
            pack_stack_rates: BTreeMap::new(),
            verifier_logs: BTreeMap::new(),
            cost: crate::cost::CostHistory::default(),
            epoch,
            clock: Clock::system(),
            replay_stopped_at: None,
        }
    }

    /// The same model reading "now" from `clock` (tests move it by hand).
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Where the model reads "now".
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// An empty model for replaying a recording (the demo or not).
    pub fn for_replay(epoch: Instant, demo: bool) -> Self {
        Self {
            connection: ConnectionState::Replay { demo },
            ..Self::new(epoch)
        }
    }

    /// Start of the time axis: a replay delivers a frame received `t` after
    /// its recording started at `epoch + t`.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The time the views show: the wall clock when live, the playhead when
    /// replaying.
    pub fn now(&self, wall: Instant) -> Instant {
        match &self.replay {
            Some(status) => self.epoch + status.position_at(wall),
            None => wall,
        }
    }

    /// Events per second arriving now, over the last second, for the status
    /// bar. Live, that is the last second of the timeline. A replay that
    /// stopped (paused, or at its end) delivers nothing: the time since it
    /// stopped counts as silence after the playhead, so the rate falls to 0
    /// within a second instead of showing the recording's last rate forever.
    pub fn events_per_sec(&self, wall: Instant) -> f64 {
        let silence = self
            .replay_stopped_at
            .map_or(Duration::ZERO, |at| wall.saturating_duration_since(at));
        self.timeline.total_rate_per_sec(self.now(wall) + silence)
    }

    /// Whether a recording is shown.
    pub fn is_replay(&self) -> bool {
        matches!(self.connection, ConnectionState::Replay { .. })
    }

    /// Whether the helper is connected.
    pub fn is_connected(&self) -> bool {
        self.connection == ConnectionState::Connected
    }

    /// The probe with this id.
    pub fn probe(&self, id: &str) -> Option<&Probe> {
        self.probes.iter().find(|probe| probe.id == id)
    }

    /// Every kept event (the inspector's), as the waterfall reads them:
    /// sorted by time, switches split into their two halves.
    pub fn observed_events(&self) -> Vec<crate::waterfall::Observed> {
        crate::waterfall::observe_keyed(&self.probes, self.recent.values().flatten())
    }

    /// Ids of the probes the helper currently sends us.
    pub fn enabled_probes(&self) -> impl Iterator<Item = &str> {
        self.probes
            .iter()
            .filter(|p| p.enabled)
            .map(|p| p.id.as_str())
    }

    /// Kernel drops over all probes, since the helper started.
    pub fn kernel_drops(&self) -> u64 {
        self.drops.values().map(|d| d.kernel_drops).sum()
    }

    /// Events the helper dropped because we read too slowly.
    pub fn client_drops(&self) -> u64 {
        self.drops.values().map(|d| d.client_drops).sum()
    }

    /// Applies one update from the ingest thread.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Connected(helper) => self.connected(helper),
            Update::Disconnected { reason } => self.disconnected(reason),
            Update::Probes(probes) => self.probes = probes,
            Update::ProbeState { probe, enabled } => self.probe_state(&probe, enabled),
            Update::Events {
                arrived,
                counts,
                drops,
                sched,
                by_comm,
                recent,
            } => {
                self.count_by_comm(by_comm);
                self.keep_recent(recent);
                if !sched.is_empty() {
                    let arrived_secs = self.timeline.secs_since_epoch(arrived);
                    self.cpu.apply(sched, arrived_secs);
                }
                self.record_counts(arrived, counts);
                for drop in drops {
                    self.drops.insert(drop.key, drop);
                }
            }
            Update::Aggregates {
                arrived,
                syscall_total,
                latency_log2_ns,
                functions,
            } => self.add_aggregates(arrived, syscall_total, &latency_log2_ns, &functions),
            Update::HelperError { message } => self.last_helper_error = Some(message),
            Update::ProbeAdded(probe) => match self.probes.iter_mut().find(|p| p.id == probe.id) {
                Some(known) => *known = probe,
                None => self.probes.push(probe),
            },
            Update::Tracepoints(names) => self.tracepoints = names,
            Update::KernelFunctions {
                contains,
                names,
                truncated,
            } => self.kernel_functions = Some((contains, names, truncated)),
            Update::Filter(filter) => self.filter = filter,
            Update::Stacks(batch) => self.stacks_arrived(batch),
            Update::PackData { arrived, data } => self.pack_data_arrived(arrived, data),
            Update::VerifierLog { probe, log } => {
                self.verifier_logs.insert(probe, log);
            }
            Update::Browse(update) => self.browse.apply(update),
            Update::ReplayReset => {
                let connection = self.connection.clone();
                // The browser read the file, not the playback: it stays.
                let browse = std::mem::take(&mut self.browse);
                *self = Self {
                    connection,
                    browse,
                    ..Self::new(self.epoch).with_clock(self.clock.clone())
                };
            }
            Update::Replay(status) => {
                self.replay_stopped_at = if status.playing {
                    None
                } else {
                    // A later report (a speed change while paused) does not
                    // restart the silence.
                    self.replay_stopped_at.or(Some(status.reported_at))
                };
                self.replay = Some(status);
            }
            Update::ReplayFailed { reason } => self.last_helper_error = Some(reason),
            Update::Cost {
                arrived,
                mut snapshot,
            } => {
                snapshot.at_secs = self.timeline.secs_since_epoch(arrived);
                self.cost.push(snapshot);
            }
            Update::CostWatch {
                watching,
                run_times,
            } => {
                if !watching {
                    self.cost.clear();
                }
                self.cost.watch = Some((watching, run_times));
            }
        }
    }

    /// The helper said hello: a new connection, or a replay's recorded helper.
    fn connected(&mut self, helper: HelperSummary) {
        // A replay announces the recorded helper; it stays a replay.
        if !self.is_replay() {
            self.connection = ConnectionState::Connected;
        }
        self.helper = Some(helper);
        self.last_helper_error = None;
        // Frame ids are the connection's: a new one (perhaps a restarted
        // helper) numbers frames afresh.
        self.stacks.clear();
        self.reset_aggregates();
        self.cpu.break_continuity();
        self.cost.clear();
    }

    /// The connection dropped: nothing is enabled any more.
    fn disconnected(&mut self, reason: String) {
        self.connection = ConnectionState::Disconnected { reason };
        for probe in &mut self.probes {
            probe.enabled = false;
        }
        self.reset_aggregates();
        self.cpu.break_continuity();
    }

    /// A probe was switched on or off; off forgets what it aggregated.
    fn probe_state(&mut self, probe: &str, enabled: bool) {
        if let Some(p) = self.probes.iter_mut().find(|p| p.id == probe) {
            p.enabled = enabled;
        }
        if enabled {
            return;
        }
        if probe == SCHED_SWITCH {
            self.cpu.break_continuity();
        }
        self.aggregate_counters.remove(probe);
        if self
            .probe(probe)
            .is_some_and(|p| p.kind == ProbeKind::SyscallLatency)
        {
            self.latency.reset();
        }
    }

    /// Adds a batch's events per (probe, command name).
    fn count_by_comm(&mut self, by_comm: Vec<(ProbeKey, String, u64)>) {
        for (key, comm, n) in by_comm {
            *self
                .comm_counts
                .entry(key)
                .or_default()
                .entry(comm)
                .or_default() += n;
        }
    }

    /// Keeps the newest [`RECENT_EVENTS`] events of each probe.
    fn keep_recent(&mut self, recent: Vec<microscope_wire::Event>) {
        for event in recent {
            let kept = self.recent.entry(event.probe).or_default();
            if kept.len() == RECENT_EVENTS {
                kept.pop_front();
            }
            kept.push_back(event);
        }
    }

    /// Puts a batch's events per probe on the timeline.
    fn record_counts(&mut self, arrived: Instant, counts: Vec<ProbeCount>) {
        for count in counts {
            if let Some(probe) = self.probes.iter().find(|p| p.key == count.key) {
                self.timeline.record(&probe.id, arrived, count.events);
            }
        }
    }

    /// Turns cumulative in-kernel totals into increases on the timeline
    /// (spread over the time since the previous total) and keeps the
    /// latency histograms.
    fn add_aggregates(
        &mut self,
        arrived: Instant,
        syscall_total: Option<u64>,
        latency_log2_ns: &[u64],
        functions: &[(ProbeKey, u64, Vec<u64>)],
    ) {
        self.latency.observe(latency_log2_ns);
        let latency_total = (!latency_log2_ns.is_empty()).then(|| latency_log2_ns.iter().sum());
        let enabled: Vec<(String, ProbeKey, ProbeKind)> = self
            .probes
            .iter()
            .filter(|p| p.enabled)
            .map(|p| (p.id.clone(), p.key, p.kind))
            .collect();
        for (id, key, kind) in enabled {
            let total = match kind {
                // A tracepoint that only counts in the kernel
                // (`ProbeOptions::count_only`) reports its hits as calls.
                ProbeKind::Stream
                | ProbeKind::Fields
                | ProbeKind::Stacks
                | ProbeKind::Pack
                | ProbeKind::TimeStacks => {
                    let Some((_, hits, _)) = functions.iter().find(|(k, _, _)| *k == key) else {
                        continue;
                    };
                    Some(*hits)
                }
                ProbeKind::SyscallCounts => syscall_total,
                ProbeKind::SyscallLatency => latency_total,
                ProbeKind::Function => {
                    let Some((_, calls, buckets)) = functions.iter().find(|(k, _, _)| *k == key)
                    else {
                        continue;
                    };
                    let entry = self.functions.entry(id.clone()).or_default();
                    entry.0 = *calls;
                    entry.1.observe(buckets);
                    Some(*calls)
                }
            };
            if let Some(total) = total {
                self.record_total(&id, arrived, total);
            }
        }
    }

    /// Records the increase of probe `id`'s cumulative `total`.
    fn record_total(&mut self, id: &str, arrived: Instant, total: u64) {
        let increase = self
            .aggregate_counters
            .entry(id.to_owned())
            .or_default()
            .advance(total);
        match self.aggregate_arrivals.insert(id.to_owned(), arrived) {
            Some(since) => self.timeline.record_spread(id, since, arrived, increase),
            None => self.timeline.record(id, arrived, increase),
        }
    }

    /// Files a batch of stacks, noting how its kernel clock maps onto the
    /// timeline's (the batch arrives now).
    fn stacks_arrived(&mut self, batch: microscope_wire::StackBatch) {
        let arrived_ns = (self.timeline.secs_since_epoch(self.now(self.clock.now())) * 1e9) as i128;
        self.stack_clock_offset_ns = Some(i128::from(batch.end_ns) - arrived_ns);
        self.pack_stacks_arrived(&batch);
        self.add_stacks(batch);
    }

    /// Puts the stacks of pack probes that have no other data (no events,
    /// counters or histograms) on the timeline, so that their node lights
    /// and the Rates tab plots them: a count's samples, or for a time sum
    /// the stacks that grew (summing nanoseconds into a node's events/s
    /// would mix units); the time per second is kept beside.
    fn pack_stacks_arrived(&mut self, batch: &microscope_wire::StackBatch) {
        let interval_ns = batch.end_ns.saturating_sub(batch.start_ns);
        let arrived = self.clock.now();
        let from = arrived
            .checked_sub(Duration::from_nanos(interval_ns))
            .unwrap_or(arrived);
        let stacks_only: Vec<(String, ProbeKey, ProbeKind)> = self
            .probes
            .iter()
            .filter(|p| {
                matches!(p.kind, ProbeKind::Pack | ProbeKind::TimeStacks)
                    && !self.packs.contains_key(&p.key)
            })
            .map(|p| (p.id.clone(), p.key, p.kind))
            .collect();
        for (id, key, kind) in stacks_only {
            let mut grown = PackStackRate {
                end_ns: batch.end_ns,
                interval_ns,
                stacks: 0,
                value: 0,
                time: kind == ProbeKind::TimeStacks,
            };
            for stack in batch.stacks.iter().filter(|s| s.probe == key) {
                grown.stacks += 1;
                grown.value = grown.value.saturating_add(stack.value);
            }
            if grown.stacks == 0 {
                continue;
            }
            let increase = if grown.time {
                grown.stacks
            } else {
                grown.value
            };
            // A drain too big for one batch comes in several with the same
            // interval: each adds to it.
            match self.pack_stack_rates.get_mut(&key) {
                Some(rate) if rate.end_ns == grown.end_ns => {
                    rate.stacks = rate.stacks.saturating_add(grown.stacks);
                    rate.value = rate.value.saturating_add(grown.value);
                }
                _ => {
                    self.pack_stack_rates.insert(key, grown);
                }
            }
            self.timeline.record_spread(&id, from, arrived, increase);
        }
    }

    /// Files a reading of a pack probe's maps. A probe whose data are only
    /// maps gets its total's growth on the timeline (so the map lights and
    /// the Rates tab plots it); one that streams events is counted by them.
    fn pack_data_arrived(&mut self, arrived: Instant, data: microscope_wire::PackData) {
        let key = data.probe;
        let pack = self.packs.entry(key).or_default();
        pack.update(data);
        let total = pack.total();
        let map_only = self
            .probes
            .iter()
            .find(|p| p.key == key && matches!(p.kind, ProbeKind::Pack | ProbeKind::TimeStacks))
            .map(|p| p.id.clone());
        if let Some(id) = map_only {
            self.record_total(&id, arrived, total);
        }
    }

    /// Moves the timeline of enabled probes forward to `now`.
    pub fn tick(&mut self, now: Instant) {
        if self.is_connected() || self.replay.as_ref().is_some_and(|r| r.playing) {
            let enabled: Vec<String> = self.enabled_probes().map(str::to_owned).collect();
            self.timeline
                .advance(enabled.iter().map(String::as_str), now);
        }
    }

    /// The stack samples' time range (kernel ns) for a timeline range in
    /// seconds, once a stack batch has arrived; `None` before, or when the
    /// range holds no stack samples.
    pub fn stack_range_of(&self, from_secs: f64, to_secs: f64) -> Option<(u64, u64)> {
        let offset = self.stack_clock_offset_ns?;
        let to_ns = |secs: f64| u64::try_from((secs * 1e9) as i128 + offset).unwrap_or(0);
        let (start_ns, end_ns) = (to_ns(from_secs), to_ns(to_secs));
        let (first, last) = self.stacks.time_span()?;
        (end_ns > start_ns && end_ns >= first && start_ns <= last).then_some((start_ns, end_ns))
    }

    /// Files a batch of stack counts: frame names first (interned by id),
    /// then each stack at the end of the interval it covers. Off-CPU
    /// stacks and those of [`ProbeKind::TimeStacks`] pack probes count
    /// nanoseconds, the others samples.
    fn add_stacks(&mut self, batch: microscope_wire::StackBatch) {
        for frame in batch.frames {
            self.stacks.intern_frame(frame.id, frame.name, frame.kernel);
        }
        for stack in &batch.stacks {
            if self.probes.iter().any(|p| {
                p.key == stack.probe && (p.id == OFF_CPU_PROBE || p.kind == ProbeKind::TimeStacks)
            }) {
                self.stacks
                    .set_unit(stack.probe, crate::stacks::ValueUnit::Nanoseconds);
            }
            self.stacks.add(
                batch.end_ns,
                stack.probe,
                stack.tgid,
                &stack.comm,
                &stack.frames,
                stack.value,
            );
        }
    }

    fn reset_aggregates(&mut self) {
        self.aggregate_counters.clear();
        self.latency.reset();
        // Keys are the connection's: a new one may number probes afresh.
        self.packs.clear();
        self.pack_stack_rates.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::ProbeCount;

    fn probe(id: &str, key: ProbeKey, kind: ProbeKind) -> Probe {
        Probe {
            fields: Vec::new(),
            id: id.into(),
            key,
            subsystem: "Test".into(),
            description: String::new(),
            kind,
            unavailable_reason: None,
            enabled: true,
        }
    }

    #[test]
    fn stacks_only_pack_probes_get_a_rate_and_others_do_not() {
        let epoch = Instant::now();
        let clock = Clock::manual(epoch);
        let mut model = Model::new(epoch).with_clock(clock.clone());
        model.apply(Update::Probes(vec![
            probe("p:offcpu", 1, ProbeKind::TimeStacks),
            probe("p:hits", 2, ProbeKind::Pack),
            probe("p:maps", 3, ProbeKind::Pack),
            probe("sched:sched_switch", 4, ProbeKind::Stream),
        ]));
        // p:maps has counters: its maps give its rate, not its stacks.
        model.apply(Update::PackData {
            arrived: clock.now(),
            data: microscope_wire::PackData {
                probe: 3,
                ts_ns: 0,
                tables: Vec::new(),
                histograms: Vec::new(),
            },
        });
        let stack = |probe, value| microscope_wire::StackCount {
            probe,
            tgid: 7,
            comm: "sleeper".into(),
            frames: Vec::new(),
            value,
        };
        let batch = |stacks| microscope_wire::StackBatch {
            start_ns: 1_000_000_000,
            end_ns: 1_500_000_000,
            frames: Vec::new(),
            stacks,
        };
        clock.advance(Duration::from_secs(2));
        // A drain of half a second, cut in two batches.
        model.apply(Update::Stacks(batch(vec![
            stack(1, 30_000_000),
            stack(2, 7),
            stack(3, 100),
            stack(4, 5),
        ])));
        model.apply(Update::Stacks(batch(vec![stack(1, 10_000_000)])));
        let offcpu = model.pack_stack_rates[&1];
        assert_eq!(
            (offcpu.stacks, offcpu.value, offcpu.time),
            (2, 40_000_000, true)
        );
        assert_eq!(offcpu.stacks_per_sec(), 4.0);
        assert_eq!(offcpu.value_per_sec(), 80_000_000.0);
        assert_eq!(model.pack_stack_rates[&2].value_per_sec(), 14.0);
        assert!(!model.pack_stack_rates.contains_key(&3));
        assert!(!model.pack_stack_rates.contains_key(&4));
        // On the timeline: stacks that grew for time, samples for counts.
        let events = |id: &str| {
            model.timeline.series(id).map_or(0.0, |s| {
                s.points()
                    .iter()
                    .map(|p| p[1] * crate::timeline::BUCKET.as_secs_f64())
                    .sum::<f64>()
            })
        };
        assert_eq!(events("p:offcpu"), 2.0);
        assert_eq!(events("p:hits"), 7.0);
        assert_eq!(events("p:maps"), 0.0);
        // The next drain replaces the rate.
        model.apply(Update::Stacks(microscope_wire::StackBatch {
            start_ns: 1_500_000_000,
            end_ns: 2_500_000_000,
            ..batch(vec![stack(1, 1)])
        }));
        assert_eq!(model.pack_stack_rates[&1].value_per_sec(), 1.0);
    }

    #[test]
    fn stack_batches_fill_the_flame_graph_store() {
        let epoch = Instant::now();
        let mut model = Model::new(epoch);
        model.apply(Update::Probes(vec![
            probe("profile:cpu", 1, ProbeKind::Stacks),
            probe(OFF_CPU_PROBE, 2, ProbeKind::Stacks),
        ]));
        let frame = |id, name: &str| microscope_wire::Frame {
            id,
            name: name.into(),
            kernel: false,
        };
        let stack = |probe, value| microscope_wire::StackCount {
            probe,
            tgid: 7,
            comm: "burn".into(),
            frames: vec![0, 1],
            value,
        };
        model.apply(Update::Stacks(microscope_wire::StackBatch {
            start_ns: 0,
            end_ns: 1_000,
            frames: vec![frame(0, "main"), frame(1, "burn_cpu")],
            stacks: vec![stack(1, 5), stack(2, 2_000_000)],
        }));
        assert_eq!(model.stacks.frame_name(1), "burn_cpu");
        assert_eq!(model.stacks.unit(1), crate::stacks::ValueUnit::Samples);
        assert_eq!(model.stacks.unit(2), crate::stacks::ValueUnit::Nanoseconds);
        assert_eq!((model.stacks.len(), model.stacks.unique_stacks()), (2, 2));
        assert_eq!(model.stacks.time_span(), Some((1_000, 1_000)));
        // The batch arrived at about `epoch` on the timeline, ending at
        // kernel ns 1000: the timeline's first second holds it.
        let (start, end) = model.stack_range_of(-0.5, 0.5).expect("a range");
        assert!(start <= 1_000 && 1_000 <= end, "{start}..{end}");
        assert_eq!(model.stack_range_of(100.0, 101.0), None, "no samples there");
    }

    #[test]
    fn events_of_known_probes_reach_the_timeline() {
        let epoch = Instant::now();
        let mut model = Model::new(epoch);
        model.apply(Update::Probes(vec![probe("a", 1, ProbeKind::Stream)]));
        model.apply(Update::Events {
            arrived: epoch,
            counts: vec![
                ProbeCount { key: 1, events: 3 },
                ProbeCount { key: 7, events: 3 },
            ],
            drops: vec![ProbeDrops {
                key: 1,
                kernel_drops: 4,
                client_drops: 1,
            }],
            sched: Vec::new(),
            by_comm: vec![(1, "cat".into(), 3)],
            recent: Vec::new(),
        });
        assert_eq!(model.comm_counts[&1]["cat"], 3);
        assert_eq!(
            model.timeline.series("a").map(|s| s.points().len()),
            Some(1)
        );
        assert_eq!(model.timeline.all_series().count(), 1);
        assert_eq!((model.kernel_drops(), model.client_drops()), (4, 1));
    }

    #[test]
    fn scheduler_events_build_the_cpu_timeline() {
        use crate::update::{SchedRecord, SwitchRecord};
        let epoch = Instant::now();
        let mut model = Model::new(epoch);
        let switch = |ts_ns, prev_pid, next_pid| {
            SchedRecord::Switch(SwitchRecord {
                cpu: 1,
                ts_ns,
                prev_pid,
                prev_tgid: prev_pid,
                prev_comm: format!("task{prev_pid}"),
                prev_prio: 120,
                prev_state: 1,
                next_pid,
                next_comm: format!("task{next_pid}"),
                next_prio: 120,
            })
        };
        model.apply(Update::Events {
            arrived: epoch + std::time::Duration::from_secs(2),
            counts: Vec::new(),
            drops: Vec::new(),
            sched: vec![switch(5_000, 0, 7), switch(9_000, 7, 0)],
            by_comm: Vec::new(),
            recent: Vec::new(),
        });
        assert_eq!(model.cpu.len(), 1);
        assert_eq!(model.cpu.secs_of(9_000), Some(2.0));
        // Switching the probe off forgets the running task: no slice may
        // span the events that were not sent.
        model.apply(Update::ProbeState {
            probe: SCHED_SWITCH.into(),
            enabled: false,
        });
        assert_eq!(model.cpu.count_overlapping(1, 0, u64::MAX), 1);
    }

    #[test]
    fn aggregated_probes_count_increases() {
        let epoch = Instant::now();
        let mut model = Model::new(epoch);
        model.apply(Update::Probes(vec![
            probe("counts", 1, ProbeKind::SyscallCounts),
            probe("latency", 2, ProbeKind::SyscallLatency),
        ]));
        let aggregates = |total, latency: Vec<u64>| Update::Aggregates {
            functions: Vec::new(),
            arrived: epoch,
            syscall_total: Some(total),
            latency_log2_ns: latency,
        };
        model.apply(aggregates(100, vec![1, 1]));
        model.apply(aggregates(110, vec![3, 1]));
        let rate = |id| {
            model
                .timeline
                .series(id)
                .and_then(|s| s.points().last())
                .map(|p| p[1])
        };
        assert_eq!(rate("counts"), Some(40.0));
        assert_eq!(rate("latency"), Some(8.0));
        assert_eq!(model.latency.counts(), vec![2, 0]);
    }

    #[test]
    fn tracepoints_counted_in_the_kernel_reach_the_timeline() {
        let epoch = Instant::now();
        let mut model = Model::new(epoch);
        model.apply(Update::Probes(vec![
            probe("sched:sched_waking", 1, ProbeKind::Fields),
            probe("block:block_rq_issue", 2, ProbeKind::Fields),
        ]));
        let hits = |waking| Update::Aggregates {
            functions: vec![(1, waking, Vec::new())],
            arrived: epoch,
            syscall_total: None,
            latency_log2_ns: Vec::new(),
        };
        model.apply(hits(30));
        model.apply(hits(50));
        let total = |id| {
            model
                .timeline
                .series(id)
                .map(|s| s.points().iter().map(|p| p[1]).sum::<f64>())
        };
        // The first total is the baseline; 20 more hits in one 250 ms
        // bucket are 80 events/s.
        assert_eq!(total("sched:sched_waking"), Some(80.0));
        assert_eq!(total("block:block_rq_issue"), None, "no count, no rate");
    }

    #[test]
    fn pack_readings_fill_tables_and_light_the_timeline() {
        use microscope_wire::{FieldValue, PackData, PackTable};
        let epoch = Instant::now();
        let mut model = Model::new(epoch);
        model.apply(Update::Probes(vec![
            probe("libbpf-tools:syscount", 1, ProbeKind::Pack),
            probe("libbpf-tools:exitsnoop", 2, ProbeKind::Fields),
        ]));
        let reading = |probe, ts_ns, count| Update::PackData {
            arrived: epoch + Duration::from_nanos(ts_ns),
            data: PackData {
                probe,
                ts_ns,
                tables: vec![PackTable {
                    map: "data".into(),
                    columns: vec!["syscall".into(), "count".into()],
                    key_columns: 1,
                    rows: vec![vec![
                        FieldValue::Named {
                            value: 0,
                            text: "read".into(),
                        },
                        FieldValue::Uint(count),
                    ]],
                    truncated: 0,
                }],
                histograms: Vec::new(),
            },
        };
        model.apply(reading(1, 0, 100));
        model.apply(reading(1, 250_000_000, 150));
        model.apply(reading(2, 250_000_000, 7));
        let table = &model.packs[&1].tables[0];
        assert_eq!(table.rows[0].rate_per_sec, Some(200.0));
        // Without histograms, the table's counts are the probe's total.
        let calls: f64 = model
            .timeline
            .series("libbpf-tools:syscount")
            .map(|s| s.points().iter().map(|p| p[1] * 0.25).sum())
            .unwrap_or_default();
        assert_eq!(
            calls, 50.0,
            "the growth between the readings, in rate buckets"
        );
        assert!(
            model.timeline.series("libbpf-tools:exitsnoop").is_none(),
            "a probe with events is counted by its events"
        );
        assert_eq!(model.packs[&2].readings, 1);
        model.apply(Update::VerifierLog {
            probe: "p".into(),
            log: "R1 invalid mem access".into(),
        });
        assert_eq!(model.verifier_logs["p"], "R1 invalid mem access");
        // A new connection numbers probes afresh.
        model.apply(Update::Connected(HelperSummary {
            helper_version: String::new(),
            kernel_release: String::new(),
            capabilities: Vec::new(),
        }));
        assert!(model.packs.is_empty());
    }

    #[test]
    fn a_disconnect_keeps_the_catalogue_but_clears_enabled_flags() {
        let mut model = Model::new(Instant::now());
        model.apply(Update::Probes(vec![probe("a", 1, ProbeKind::Stream)]));
        model.apply(Update::Disconnected {
            reason: "gone".into(),
        });
        assert_eq!(
            model.connection,
            ConnectionState::Disconnected {
                reason: "gone".into()
            }
        );
        assert_eq!(model.probes.len(), 1);
        assert_eq!(model.enabled_probes().count(), 0);
    }

    #[test]
    fn the_rate_falls_to_zero_once_a_replay_stops_or_live_data_stops() {
        use crate::update::{ReplaySpeed, ReplayStatus};
        let epoch = Instant::now();
        let clock = Clock::manual(epoch);
        let mut model = Model::for_replay(epoch, false).with_clock(clock.clone());
        model.apply(Update::Probes(vec![probe("a", 1, ProbeKind::Stream)]));
        let status = |position_ns, playing| ReplayStatus {
            path: "r.mscr".into(),
            position_ns,
            duration_ns: 4_000_000_000,
            playing,
            speed: ReplaySpeed::Times(1.0),
            reported_at: clock.now(),
            damage: None,
        };
        model.apply(Update::Replay(status(0, true)));
        // Four seconds of 1 000 events every 250 ms: 4 000 events/s.
        for bucket in 0..16 {
            model.apply(Update::Events {
                arrived: epoch + Duration::from_millis(250 * bucket),
                counts: vec![ProbeCount {
                    key: 1,
                    events: 1000,
                }],
                drops: Vec::new(),
                sched: Vec::new(),
                by_comm: Vec::new(),
                recent: Vec::new(),
            });
        }
        clock.advance(Duration::from_secs(4));
        model.apply(Update::Replay(status(4_000_000_000, false)));
        assert_eq!(model.events_per_sec(clock.now()), 4000.0);
        // Half a second after the end: half of the last second was silent.
        clock.advance(Duration::from_millis(500));
        assert_eq!(model.events_per_sec(clock.now()), 2000.0);
        // A speed change while stopped does not bring the old rate back.
        model.apply(Update::Replay(status(4_000_000_000, false)));
        clock.advance(Duration::from_millis(600));
        assert_eq!(model.events_per_sec(clock.now()), 0.0);
        // The views still show the recording at the playhead.
        let at_playhead = model.now(clock.now());
        assert_eq!(model.timeline.total_rate_per_sec(at_playhead), 4000.0);
        // Playing again shows the playhead's rate.
        model.apply(Update::Replay(status(4_000_000_000, true)));
        assert_eq!(model.events_per_sec(clock.now()), 4000.0);

        // Live: the rate is the last second's, so silence reads 0.
        let mut live = Model::new(epoch).with_clock(clock.clone());
        live.apply(Update::Probes(vec![probe("a", 1, ProbeKind::Stream)]));
        live.apply(Update::Events {
            arrived: clock.now(),
            counts: vec![ProbeCount {
                key: 1,
                events: 1000,
            }],
            drops: Vec::new(),
            sched: Vec::new(),
            by_comm: Vec::new(),
            recent: Vec::new(),
        });
        clock.advance(Duration::from_millis(250));
        assert_eq!(live.events_per_sec(clock.now()), 1000.0);
        clock.advance(Duration::from_secs(1));
        assert_eq!(live.events_per_sec(clock.now()), 0.0);
    }
}
