//! The profiler: on-CPU sampling and off-CPU blocked time, per stack.
//!
//! [`Profiler`] owns the `profile` eBPF object (`ebpf/src/bin/profile.rs`),
//! which it loads when the first profile starts and unloads when the last
//! one stops, so an idle helper holds none of its maps. The hub calls
//! [`Profiler::drain`] about once a second ([`DRAIN_INTERVAL`]): the counts
//! are read and deleted in the kernel right there (map syscalls, a few ms),
//! and handed to the `microscope-symbolize` thread, which names the frames
//! (blazesym; parsing a big binary's DWARF the first time can take a
//! while, and must not stall the hub). Results come back through a bounded
//! channel; `drain` waits a little for them ([`RESULT_WAIT`]) and otherwise
//! returns them with a later drain.
//!
//! The same pipeline carries the main object's stacks at tracepoints: read
//! them with [`crate::take_stack_counts`] and pass them to
//! [`Profiler::submit`]; they come out of the next drain.

use crate::raw_stack::RawStack;
use crate::stacks::{self, clear_stacks, intern_stacks, stack_ids, take_stack_counts};
use crate::symbolize::{FrameInterner, NamedStack, Symbolizer, unknown_address};
use crate::tracefs;
use aya::maps::{Array, HashMap, MapData, StackTraceMap};
use aya::programs::perf_event::{
    PerfEventConfig, PerfEventLinkId, PerfEventScope, SamplePolicy, SoftwareEvent,
};
use aya::programs::trace_point::TracePointLinkId;
use aya::programs::{PerfEvent, ProgramError, TracePoint};
use aya::sys::SyscallError;
use aya::{Ebpf, EbpfLoader};
use microscope_wire::ProbeKey;
use microscope_wire::{Availability, ProbeOptions, StackBatch, StackCount};
use probes_common::{
    BlockStart, DEFAULT_MIN_BLOCK_NS, DEFAULT_SAMPLE_HZ, FIELD_GLOBALS, FIELD_MISSING, FilterTable,
    PROFILE_OFF_CPU, PROFILE_ON_CPU, ProcessFilterConfig, StackKey,
};
use std::cell::OnceCell;
use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

/// The profiler object built from `ebpf/src/bin/profile.rs`.
static PROFILE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profile"));

/// How often the hub should call [`Profiler::drain`].
pub const DRAIN_INTERVAL: Duration = Duration::from_secs(1);
/// How long [`Profiler::drain`] waits for the symbolizer to finish the
/// counts it just read. Names cached from earlier drains make this the
/// common case; a new process with large debug info takes longer and its
/// stacks come with the next drain instead.
pub const RESULT_WAIT: Duration = Duration::from_millis(25);
/// Highest sampling rate accepted. Each sample costs a few µs per CPU; the
/// kernel's own cap is `/proc/sys/kernel/perf_event_max_sample_rate`.
pub const MAX_SAMPLE_HZ: u32 = 1000;
/// Drains queued for the symbolizer before new ones are merged into the
/// last (bounded, like every channel here).
const JOB_QUEUE: usize = 4;
/// Finished drains waiting to be collected.
const DONE_QUEUE: usize = 16;
/// Most stacks waiting for a busy symbolizer (a few MiB). Past this, the
/// waiting stacks are sent with their frames named by address instead:
/// a slow symbolization costs names, never unbounded memory.
pub const MAX_BACKLOG_STACKS: usize = 8192;

/// The `sched_switch` offset globals the object declares.
const SWITCH_GLOBALS: [&str; 2] = ["SWITCH_PREV_STATE", "SWITCH_NEXT_PID"];

/// What to profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    /// Where the CPUs spend their time: timer samples of running tasks.
    OnCpu,
    /// Where threads wait: time from leaving the CPU blocked until running
    /// again, by the stack they blocked in.
    OffCpu,
}

impl ProfileKind {
    /// Both kinds.
    pub const ALL: [ProfileKind; 2] = [ProfileKind::OnCpu, ProfileKind::OffCpu];

    /// The probe id clients enable: `profile:cpu` or `profile:offcpu`.
    pub const fn probe_id(self) -> &'static str {
        match self {
            Self::OnCpu => "profile:cpu",
            Self::OffCpu => "profile:offcpu",
        }
    }

    /// The kind behind a probe id.
    pub fn from_probe_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.probe_id() == id)
    }

    /// One line for the probe list.
    pub const fn description(self) -> &'static str {
        match self {
            Self::OnCpu => {
                "Where the CPUs spend their time: kernel and user stacks sampled on every CPU \
                 (99 Hz by default), counted in the kernel"
            }
            Self::OffCpu => {
                "Where threads wait: time spent blocked (sleeping, waiting for I/O or locks) \
                 per kernel and user stack, counted in the kernel"
            }
        }
    }

    fn index(self) -> usize {
        match self {
            Self::OnCpu => 0,
            Self::OffCpu => 1,
        }
    }

    fn stack_key_id(self) -> u32 {
        match self {
            Self::OnCpu => PROFILE_ON_CPU,
            Self::OffCpu => PROFILE_OFF_CPU,
        }
    }
}

/// Stack counts of one or more drains, with frame ids from
/// [`Profiler::interner`]; [`batch_for`](Self::batch_for) makes a client's
/// [`StackBatch`] of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackBatchParts {
    /// Start of the interval covered, ns of `CLOCK_MONOTONIC`.
    pub start_ns: u64,
    /// End of the interval covered.
    pub end_ns: u64,
    /// Counts per distinct stack, sorted by probe, process, comm, frames.
    pub stacks: Vec<StackCount>,
}

impl StackBatchParts {
    /// The batch for a client that has been sent frame ids `0..sent_upto`
    /// and wants the probes for which `wants` is true. Returns the batch and
    /// the client's new `sent_upto`, to be stored only once the batch was
    /// queued for the client (a lost batch must not lose definitions).
    pub fn batch_for(
        &self,
        interner: &FrameInterner,
        sent_upto: u32,
        wants: impl Fn(ProbeKey) -> bool,
    ) -> (StackBatch, u32) {
        let batch = StackBatch {
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            frames: interner.frames_since(sent_upto),
            stacks: self
                .stacks
                .iter()
                .filter(|s| wants(s.probe))
                .cloned()
                .collect(),
        };
        (batch, interner.len())
    }
}

/// A running profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    key: ProbeKey,
    sample_hz: u32,
    min_block_ns: u64,
}

/// Counts read from the kernel, on their way to the symbolizer.
struct Job {
    start_ns: u64,
    end_ns: u64,
    stacks: Vec<RawStack>,
}

impl Job {
    fn merge(&mut self, other: Job) {
        self.start_ns = self.start_ns.min(other.start_ns);
        self.end_ns = self.end_ns.max(other.end_ns);
        self.stacks.extend(other.stacks);
    }
}

/// Named stacks coming back from the symbolizer.
struct Done {
    start_ns: u64,
    end_ns: u64,
    stacks: Vec<NamedStack>,
}

/// On-CPU and off-CPU profiling (see the module docs).
///
/// Not thread-safe by itself (`&mut self` everywhere), but `Send`: the hub
/// task owns it.
pub struct Profiler {
    object: Option<Object>,
    runs: [Option<Run>; 2],
    filter: FilterTable,
    /// What the kernel allows, tested once on first use.
    verdicts: OnceCell<[Availability; 2]>,
    /// Why the last start of a kind failed, if it did.
    failures: [Option<String>; 2],
    thread: Option<SymbolizeThread>,
    /// Read from the kernel but not yet handed to the symbolizer.
    queued: Vec<RawStack>,
    /// A job the symbolizer's queue had no room for; merged with the next
    /// (at most [`MAX_BACKLOG_STACKS`] stacks).
    backlog: Option<Job>,
    /// Stacks that waited too long for the symbolizer, named by address.
    unnamed: Option<Done>,
    /// Jobs handed over whose results have not come back.
    outstanding: usize,
    /// Start of the interval the next drain covers, while profiles run.
    interval_start_ns: Option<u64>,
    /// When `drain` was last called (the start of the interval of stacks
    /// submitted from elsewhere).
    last_drain_ns: Option<u64>,
    interner: FrameInterner,
}

impl Default for Profiler {
    fn default() -> Self {
        Self::new()
    }
}

impl Profiler {
    /// A profiler with nothing loaded or running.
    pub fn new() -> Self {
        Self {
            object: None,
            runs: [None, None],
            // Every process until told otherwise.
            filter: FilterTable::single(ProcessFilterConfig::default()),
            verdicts: OnceCell::new(),
            failures: [None, None],
            thread: None,
            queued: Vec::new(),
            backlog: None,
            unnamed: None,
            outstanding: 0,
            interval_start_ns: None,
            last_drain_ns: None,
            interner: FrameInterner::new(),
        }
    }

    /// Whether this kernel can run `kind`, and why not. The first call
    /// loads the object once to test both kinds for real (programs
    /// verified, a cpu-clock perf event opened, `sched_switch` fields
    /// found), then unloads it; later calls answer from memory, except
    /// that a start that failed since is reported with its reason.
    pub fn availability(&self, kind: ProfileKind) -> Availability {
        if let Some(reason) = &self.failures[kind.index()] {
            return Availability::no(reason.clone());
        }
        self.verdicts.get_or_init(check_availability)[kind.index()].clone()
    }

    /// Run-time statistics of the programs of the profile running as `key`.
    pub fn program_runs(&self, key: ProbeKey) -> Vec<crate::cost::ProgramRun> {
        let Some(object) = &self.object else {
            return Vec::new();
        };
        let running = |kind: ProfileKind| self.runs[kind.index()].is_some_and(|r| r.key == key);
        crate::cost::program_runs(object.ebpf.programs(), |name| match name {
            "on_cpu" => running(ProfileKind::OnCpu),
            "off_cpu" => running(ProfileKind::OffCpu),
            _ => false,
        })
    }

    /// Whether `kind` is running, and under which probe key.
    pub fn running(&self, kind: ProfileKind) -> Option<ProbeKey> {
        self.runs[kind.index()].map(|run| run.key)
    }

    /// Starts `kind`, its counts reported under probe `key`. Starting a
    /// kind that runs already applies the new options (the sampler is
    /// re-attached for a new rate) and key. `filter` becomes the filter of
    /// both kinds, as [`set_filter`](Self::set_filter). `tracefs` is where
    /// the `sched_switch` format is read (off-CPU needs it). An error is a
    /// sentence for the user.
    pub fn start(
        &mut self,
        key: ProbeKey,
        kind: ProfileKind,
        options: &ProbeOptions,
        filter: &FilterTable,
        tracefs: Option<&Path>,
    ) -> Result<(), String> {
        let run = Run {
            key,
            sample_hz: match options.sample_hz {
                0 => DEFAULT_SAMPLE_HZ,
                hz if hz > MAX_SAMPLE_HZ => {
                    return Err(format!(
                        "a sampling rate of {hz} Hz is too high; choose at most {MAX_SAMPLE_HZ} Hz \
                         (99 Hz is usual)"
                    ));
                }
                hz => hz,
            },
            min_block_ns: match options.min_block_us {
                0 => DEFAULT_MIN_BLOCK_NS,
                us => us.saturating_mul(1000),
            },
        };
        let verdict = self.availability(kind);
        if !verdict.available && self.failures[kind.index()].is_none() {
            return Err(format!(
                "{} is not available here: {}",
                kind.probe_id(),
                verdict.reason
            ));
        }
        if self.thread.is_none() {
            self.thread = Some(SymbolizeThread::spawn()?);
        }
        let result = self.start_run(kind, run, filter, tracefs);
        match &result {
            Ok(()) => {
                self.failures[kind.index()] = None;
                self.runs[kind.index()] = Some(run);
                self.interval_start_ns.get_or_insert_with(monotonic_ns);
                log::info!("started {} (probe {key})", kind.probe_id());
            }
            Err(reason) => {
                self.failures[kind.index()] = Some(reason.clone());
                self.unload_if_idle();
            }
        }
        result
    }

    fn start_run(
        &mut self,
        kind: ProfileKind,
        run: Run,
        filter: &FilterTable,
        tracefs: Option<&Path>,
    ) -> Result<(), String> {
        let previous = self.runs[kind.index()];
        let object = match &mut self.object {
            Some(object) => object,
            None => self.object.insert(Object::load(tracefs)?),
        };
        self.filter = *filter;
        object.set_filter(filter)?;
        match kind {
            ProfileKind::OnCpu => {
                if previous.is_some_and(|p| p.sample_hz == run.sample_hz) {
                    return Ok(());
                }
                object.detach(kind);
                object.attach_on_cpu(run.sample_hz)
            }
            ProfileKind::OffCpu => {
                object.set_min_block(run.min_block_ns)?;
                if previous.is_some() {
                    return Ok(());
                }
                // Blocks that started before this run would be counted
                // from when they started.
                object.clear_blocked();
                object.attach_off_cpu()
            }
        }
    }

    /// Stops the profile reported under `key`; false if none was running.
    /// Its last counts are read right away (and, for off-CPU, the time
    /// threads have been blocked so far, since they will not be switched
    /// in while it is attached) and come out of the next
    /// [`drain`](Self::drain). The object is unloaded when nothing runs.
    pub fn stop(&mut self, key: ProbeKey) -> bool {
        let Some(kind) = ProfileKind::ALL
            .into_iter()
            .find(|kind| self.runs[kind.index()].is_some_and(|run| run.key == key))
        else {
            return false;
        };
        self.stop_kind(kind);
        self.unload_if_idle();
        true
    }

    /// Stops every profile; returns how many were running.
    pub fn stop_all(&mut self) -> usize {
        let mut stopped = 0;
        for kind in ProfileKind::ALL {
            if self.runs[kind.index()].is_some() {
                self.stop_kind(kind);
                stopped += 1;
            }
        }
        self.unload_if_idle();
        stopped
    }

    fn stop_kind(&mut self, kind: ProfileKind) {
        let Some(run) = self.runs[kind.index()].take() else {
            return;
        };
        let Some(object) = &mut self.object else {
            return;
        };
        object.detach(kind);
        let probe_of = |id: u32| (id == kind.stack_key_id()).then_some(run.key);
        let mut last = match kind {
            ProfileKind::OnCpu => take_stack_counts(
                &mut object.counts,
                &mut object.stacks,
                probe_of,
                &HashSet::new(),
                true,
            ),
            ProfileKind::OffCpu => {
                let now_ns = monotonic_ns();
                let ongoing: Vec<(StackKey, u64)> = object
                    .blocked_starts()
                    .into_iter()
                    .filter_map(|start| {
                        let blocked_ns = now_ns.saturating_sub(start.ts_ns);
                        (blocked_ns >= run.min_block_ns).then_some((start.key, blocked_ns))
                    })
                    .collect();
                let mut last = stacks::read_stacks(&ongoing, &object.off_stacks, probe_of, false);
                last.extend(take_stack_counts(
                    &mut object.off_counts,
                    &mut object.off_stacks,
                    probe_of,
                    &HashSet::new(),
                    false,
                ));
                object.clear_blocked();
                last
            }
        };
        object.clear_stacks(kind);
        self.queued.append(&mut last);
        log::info!("stopped {} (probe {})", kind.probe_id(), run.key);
    }

    fn unload_if_idle(&mut self) {
        if self.runs.iter().all(Option::is_none) && self.object.take().is_some() {
            log::debug!("profiler object unloaded");
        }
    }

    /// Sets the in-kernel process filter of both kinds (also kept for
    /// later starts). Stacks already counted are not filtered again.
    pub fn set_filter(&mut self, filter: &FilterTable) -> Result<(), String> {
        self.filter = *filter;
        match &mut self.object {
            Some(object) => object.set_filter(filter),
            None => Ok(()),
        }
    }

    /// Reads and deletes the running profiles' counts (freeing their
    /// stacks), hands them to the symbolizer, and returns every drain it has
    /// finished, merged, with frame ids from [`interner`](Self::interner).
    /// `now_ns` (`CLOCK_MONOTONIC`) ends the interval this drain covers.
    ///
    /// `None` when there is nothing to send: nothing ran since the last
    /// drain, or the symbolizer is still busy with it (then a later drain
    /// returns it, with its own interval).
    pub fn drain(&mut self, now_ns: u64) -> Option<StackBatchParts> {
        let running = self.runs.iter().any(Option::is_some);
        let last_drain_ns = self.last_drain_ns.replace(now_ns);
        if !self.has_pending() {
            self.interval_start_ns = None;
            return None;
        }
        let mut raw = std::mem::take(&mut self.queued);
        if let Some(object) = &mut self.object {
            raw.extend(object.take_running(&self.runs));
        }
        let start_ns = self
            .interval_start_ns
            .or(last_drain_ns)
            .unwrap_or(now_ns)
            .min(now_ns);
        self.interval_start_ns = running.then_some(now_ns);
        self.submit_job(Job {
            start_ns,
            end_ns: now_ns,
            stacks: raw,
        });
        self.collect()
    }

    /// Whether a later [`drain`](Self::drain) may still return something:
    /// a profile runs, or stacks are waiting for or inside the symbolizer.
    pub fn has_pending(&self) -> bool {
        self.runs.iter().any(Option::is_some)
            || !self.queued.is_empty()
            || self.backlog.is_some()
            || self.unnamed.is_some()
            || self.outstanding > 0
    }

    /// Queues stacks read elsewhere (the main object's stacks at
    /// tracepoints, see [`crate::take_stack_counts`]) to be symbolized
    /// and returned by the next [`drain`](Self::drain).
    pub fn submit(&mut self, stacks: Vec<RawStack>) {
        self.queued.extend(stacks);
    }

    /// Every frame name used so far, by id.
    pub fn interner(&self) -> &FrameInterner {
        &self.interner
    }

    /// Reads and deletes the running profiles' counts without symbolizing
    /// them: what [`drain`](Self::drain) does first. For tests and tools
    /// that want the raw addresses.
    pub fn take_raw(&mut self) -> Vec<RawStack> {
        match &mut self.object {
            Some(object) => object.take_running(&self.runs),
            None => Vec::new(),
        }
    }

    fn submit_job(&mut self, job: Job) {
        let job = match self.backlog.take() {
            Some(mut backlog) => {
                backlog.merge(job);
                backlog
            }
            None => job,
        };
        let thread = match &mut self.thread {
            Some(thread) => thread,
            None => match SymbolizeThread::spawn() {
                Ok(thread) => self.thread.insert(thread),
                Err(reason) => {
                    log::error!("{reason}; keeping the stacks for the next drain");
                    self.backlog = Some(job);
                    return;
                }
            },
        };
        match thread.jobs.try_send(job) {
            Ok(()) => self.outstanding += 1,
            Err(TrySendError::Full(job)) if job.stacks.len() > MAX_BACKLOG_STACKS => {
                log::warn!(
                    "the symbolizer is behind by {} stacks; sending them with addresses \
                     for names",
                    job.stacks.len()
                );
                let named = name_by_address(&job.stacks);
                let unnamed = self.unnamed.get_or_insert_with(|| Done {
                    start_ns: job.start_ns,
                    end_ns: job.end_ns,
                    stacks: Vec::new(),
                });
                unnamed.start_ns = unnamed.start_ns.min(job.start_ns);
                unnamed.end_ns = unnamed.end_ns.max(job.end_ns);
                unnamed.stacks.extend(named);
            }
            Err(TrySendError::Full(job)) => self.backlog = Some(job),
            Err(TrySendError::Disconnected(job)) => {
                log::error!("the symbolizer thread stopped; starting a new one");
                self.thread = None;
                self.outstanding = 0;
                self.backlog = Some(job);
            }
        }
    }

    fn collect(&mut self) -> Option<StackBatchParts> {
        let mut done: Vec<Done> = self.unnamed.take().into_iter().collect();
        let Some(thread) = self.thread.as_ref() else {
            return self.merge_done(done);
        };
        let mut received = 0;
        while let Ok(result) = thread.done.try_recv() {
            done.push(result);
            received += 1;
        }
        self.outstanding = self.outstanding.saturating_sub(received);
        if received == 0 && self.outstanding > 0 {
            match thread.done.recv_timeout(RESULT_WAIT) {
                Ok(result) => {
                    done.push(result);
                    self.outstanding -= 1;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    log::error!("the symbolizer thread stopped; its last stacks are lost");
                    self.thread = None;
                    self.outstanding = 0;
                }
            }
        }
        self.merge_done(done)
    }

    /// One batch of every finished drain, with frame ids interned.
    fn merge_done(&mut self, done: Vec<Done>) -> Option<StackBatchParts> {
        let mut iter = done.into_iter();
        let first = iter.next()?;
        let (mut start_ns, mut end_ns, mut named) = (first.start_ns, first.end_ns, first.stacks);
        for more in iter {
            start_ns = start_ns.min(more.start_ns);
            end_ns = end_ns.max(more.end_ns);
            named.extend(more.stacks);
        }
        Some(StackBatchParts {
            start_ns,
            end_ns,
            stacks: intern_stacks(named, &mut self.interner),
        })
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        let n = self.stop_all();
        if n > 0 {
            log::info!("stopped {n} profile(s) on shutdown");
        }
    }
}

/// The loaded object: its maps and the links of what is attached.
struct Object {
    ebpf: Ebpf,
    counts: HashMap<MapData, StackKey, u64>,
    stacks: StackTraceMap<MapData>,
    off_counts: HashMap<MapData, StackKey, u64>,
    off_stacks: StackTraceMap<MapData>,
    blocked: HashMap<MapData, u32, BlockStart>,
    min_block: Array<MapData, u64>,
    filter: Array<MapData, FilterTable>,
    /// Why off-CPU cannot attach (fields missing from `sched_switch`).
    off_cpu_problem: Option<String>,
    on_links: Vec<PerfEventLinkId>,
    off_link: Option<TracePointLinkId>,
}

impl Object {
    /// Loads the object with the `sched_switch` offsets of the running
    /// kernel (read from `tracefs`); programs are loaded when first attached.
    fn load(tracefs: Option<&Path>) -> Result<Self, String> {
        let (offsets, off_cpu_problem) = switch_offsets(tracefs);
        let mut loader = EbpfLoader::new();
        for (global, offset) in &offsets {
            loader.override_global(global, offset, true);
        }
        let mut ebpf = loader.load(PROFILE_OBJECT).map_err(|err| {
            format!(
                "could not load the profiler's eBPF object: {err}. The helper must run as root \
                 (or with CAP_BPF and CAP_PERFMON)"
            )
        })?;
        let counts = HashMap::try_from(take_map(&mut ebpf, "COUNTS")?).map_err(map_error)?;
        let stacks = StackTraceMap::try_from(take_map(&mut ebpf, "STACKS")?).map_err(map_error)?;
        let off_counts =
            HashMap::try_from(take_map(&mut ebpf, "OFF_COUNTS")?).map_err(map_error)?;
        let off_stacks =
            StackTraceMap::try_from(take_map(&mut ebpf, "OFF_STACKS")?).map_err(map_error)?;
        let blocked = HashMap::try_from(take_map(&mut ebpf, "BLOCKED")?).map_err(map_error)?;
        let min_block = Array::try_from(take_map(&mut ebpf, "MIN_BLOCK_NS")?).map_err(map_error)?;
        let filter = Array::try_from(take_map(&mut ebpf, "FILTER")?).map_err(map_error)?;
        Ok(Self {
            ebpf,
            counts,
            stacks,
            off_counts,
            off_stacks,
            blocked,
            min_block,
            filter,
            off_cpu_problem,
            on_links: Vec::new(),
            off_link: None,
        })
    }

    fn set_filter(&mut self, filter: &FilterTable) -> Result<(), String> {
        self.filter
            .set(0, filter, 0)
            .map_err(|err| format!("could not set the profiler's process filter: {err}"))
    }

    fn set_min_block(&mut self, ns: u64) -> Result<(), String> {
        self.min_block
            .set(0, ns, 0)
            .map_err(|err| format!("could not set the shortest block to count: {err}"))
    }

    fn program<'a, T>(&'a mut self, name: &str) -> Result<&'a mut T, String>
    where
        &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
    {
        let program = self
            .ebpf
            .program_mut(name)
            .ok_or_else(|| format!("the profiler object has no program {name}; rebuild it"))?;
        program
            .try_into()
            .map_err(|err: ProgramError| err.to_string())
    }

    fn attach_on_cpu(&mut self, sample_hz: u32) -> Result<(), String> {
        let cpus = aya::util::online_cpus()
            .map_err(|(path, err)| format!("could not read the online CPUs from {path}: {err}"))?;
        let program: &mut PerfEvent = self.program("on_cpu")?;
        load_once(program.load())?;
        let mut links = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            match program.attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Frequency(u64::from(sample_hz)),
                false,
            ) {
                Ok(link) => links.push(link),
                Err(err) => {
                    for link in links {
                        let _ = program.detach(link);
                    }
                    return Err(describe_perf_error(&err, cpu, sample_hz));
                }
            }
        }
        self.on_links = links;
        Ok(())
    }

    fn attach_off_cpu(&mut self) -> Result<(), String> {
        if let Some(problem) = &self.off_cpu_problem {
            return Err(problem.clone());
        }
        let program: &mut TracePoint = self.program("off_cpu")?;
        load_once(program.load())?;
        let link = program.attach("sched", "sched_switch").map_err(|err| {
            format!("attaching the off-CPU profiler to sched:sched_switch failed: {err}")
        })?;
        self.off_link = Some(link);
        Ok(())
    }

    fn detach(&mut self, kind: ProfileKind) {
        match kind {
            ProfileKind::OnCpu => {
                let links = std::mem::take(&mut self.on_links);
                if links.is_empty() {
                    return;
                }
                match self.program::<PerfEvent>("on_cpu") {
                    Ok(program) => {
                        for link in links {
                            if let Err(err) = program.detach(link) {
                                log::warn!("detaching the on-CPU sampler failed: {err}");
                            }
                        }
                    }
                    Err(err) => log::warn!("detaching the on-CPU sampler failed: {err}"),
                }
            }
            ProfileKind::OffCpu => {
                let Some(link) = self.off_link.take() else {
                    return;
                };
                match self.program::<TracePoint>("off_cpu") {
                    Ok(program) => {
                        if let Err(err) = program.detach(link) {
                            log::warn!("detaching the off-CPU profiler failed: {err}");
                        }
                    }
                    Err(err) => log::warn!("detaching the off-CPU profiler failed: {err}"),
                }
            }
        }
    }

    /// Reads and deletes the counts of the running kinds.
    fn take_running(&mut self, runs: &[Option<Run>; 2]) -> Vec<RawStack> {
        let mut raw = Vec::new();
        if let Some(run) = runs[ProfileKind::OnCpu.index()] {
            raw.extend(take_stack_counts(
                &mut self.counts,
                &mut self.stacks,
                |id| (id == PROFILE_ON_CPU).then_some(run.key),
                &HashSet::new(),
                true,
            ));
        }
        if let Some(run) = runs[ProfileKind::OffCpu.index()] {
            // Threads still blocked refer to stacks their time will be
            // added to when they run again: those stacks must stay.
            let keep: HashSet<u32> = self
                .blocked_starts()
                .iter()
                .flat_map(|start| stack_ids(&start.key))
                .collect();
            raw.extend(take_stack_counts(
                &mut self.off_counts,
                &mut self.off_stacks,
                |id| (id == PROFILE_OFF_CPU).then_some(run.key),
                &keep,
                false,
            ));
        }
        raw
    }

    /// Every thread now blocked: since when, and its stacks.
    fn blocked_starts(&self) -> Vec<BlockStart> {
        let keys: Vec<u32> = self.blocked.keys().filter_map(Result::ok).collect();
        keys.iter()
            .filter_map(|pid| self.blocked.get(pid, 0).ok())
            .collect()
    }

    fn clear_blocked(&mut self) {
        let keys: Vec<u32> = self.blocked.keys().filter_map(Result::ok).collect();
        for pid in keys {
            // Gone already (the thread ran meanwhile) is fine.
            let _ = self.blocked.remove(&pid);
        }
    }

    fn clear_stacks(&mut self, kind: ProfileKind) {
        match kind {
            ProfileKind::OnCpu => clear_stacks(&mut self.stacks),
            ProfileKind::OffCpu => clear_stacks(&mut self.off_stacks),
        }
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // Dropping the object would release the links too; detaching first
        // keeps the log honest.
        self.detach(ProfileKind::OnCpu);
        self.detach(ProfileKind::OffCpu);
    }
}

/// Loads the object once to find out what this kernel allows.
fn check_availability() -> [Availability; 2] {
    let tracefs = tracefs::find();
    let mut object = match Object::load(tracefs.as_deref()) {
        Ok(object) => object,
        Err(reason) => return [Availability::no(reason.clone()), Availability::no(reason)],
    };
    let on_cpu = match object.attach_on_cpu(1) {
        Ok(()) => {
            object.detach(ProfileKind::OnCpu);
            Availability::yes("a cpu-clock perf event opened on every CPU, program verified")
        }
        Err(reason) => Availability::no(reason),
    };
    let off_cpu = if tracefs.is_none() {
        Availability::no(
            "tracefs is not mounted; run `sudo mount -t tracefs nodev /sys/kernel/tracing`",
        )
    } else {
        match object.attach_off_cpu() {
            Ok(()) => {
                object.detach(ProfileKind::OffCpu);
                Availability::yes("sched:sched_switch present, fields found, program verified")
            }
            Err(reason) => Availability::no(reason),
        }
    };
    [on_cpu, off_cpu]
}

/// The object's `sched_switch` offset globals from the running kernel's
/// format file, and why off-CPU cannot work if a field is missing.
fn switch_offsets(tracefs: Option<&Path>) -> (Vec<(&'static str, u32)>, Option<String>) {
    let format = match tracefs {
        Some(root) => tracefs::read_format(root, "sched", "sched_switch"),
        None => Err(
            "tracefs is not mounted; run `sudo mount -t tracefs nodev /sys/kernel/tracing`"
                .to_owned(),
        ),
    };
    let mut offsets = Vec::new();
    let mut missing = Vec::new();
    for global in FIELD_GLOBALS
        .iter()
        .filter(|g| SWITCH_GLOBALS.contains(&g.global))
    {
        let offset = match &format {
            Ok(fields) => fields.get(global.field).map(|f| f.offset),
            Err(_) => None,
        };
        if offset.is_none() {
            missing.push(global.field);
        }
        offsets.push((global.global, offset.unwrap_or(FIELD_MISSING)));
    }
    let problem = match format {
        Err(reason) => Some(reason),
        Ok(_) if !missing.is_empty() => Some(format!(
            "tracepoint sched:sched_switch on this kernel lacks field(s) {}",
            missing.join(", ")
        )),
        Ok(_) => None,
    };
    (offsets, problem)
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<aya::maps::Map, String> {
    ebpf.take_map(name)
        .ok_or_else(|| format!("the profiler object lacks map {name}; rebuild the helper"))
}

fn map_error(err: aya::maps::MapError) -> String {
    format!("a profiler map has an unexpected type ({err}); rebuild the helper")
}

/// `load()` again after a failed attach is fine: already loaded is success.
fn load_once(result: Result<(), ProgramError>) -> Result<(), String> {
    match result {
        Ok(()) | Err(ProgramError::AlreadyLoaded) => Ok(()),
        Err(err) => Err(crate::tracer::describe_load_error(&err)),
    }
}

/// A sentence for a perf event the kernel would not open.
fn describe_perf_error(err: &ProgramError, cpu: u32, sample_hz: u32) -> String {
    let ProgramError::SyscallError(SyscallError { call, io_error }) = err else {
        return format!("attaching the on-CPU sampler to CPU {cpu} failed: {err}");
    };
    match io_error.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => format!(
            "the kernel refused a perf event on CPU {cpu} ({call}: {io_error}); the helper \
             needs root (or CAP_PERFMON), and /proc/sys/kernel/perf_event_paranoid may forbid \
             system-wide sampling"
        ),
        Some(libc::ENOENT | libc::ENODEV | libc::EOPNOTSUPP) => format!(
            "this kernel or virtual machine offers no cpu-clock perf event ({call}: {io_error}); \
             on-CPU profiling needs CONFIG_PERF_EVENTS"
        ),
        Some(libc::EINVAL) => format!(
            "the kernel refused to sample at {sample_hz} Hz ({call}: {io_error}); \
             /proc/sys/kernel/perf_event_max_sample_rate may be lower: choose a lower rate"
        ),
        _ => format!("attaching the on-CPU sampler to CPU {cpu} failed ({call}: {io_error})"),
    }
}

/// The `microscope-symbolize` thread and its two bounded channels.
struct SymbolizeThread {
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
    /// Ends when `jobs` is dropped.
    _handle: JoinHandle<()>,
}

impl SymbolizeThread {
    fn spawn() -> Result<Self, String> {
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(JOB_QUEUE);
        let (done_tx, done_rx) = mpsc::sync_channel::<Done>(DONE_QUEUE);
        let handle = std::thread::Builder::new()
            .name("microscope-symbolize".to_owned())
            .spawn(move || symbolize_jobs(&jobs_rx, &done_tx))
            .map_err(|err| format!("could not start the symbolizer thread: {err}"))?;
        Ok(Self {
            jobs: jobs_tx,
            done: done_rx,
            _handle: handle,
        })
    }
}

fn symbolize_jobs(jobs: &Receiver<Job>, done: &SyncSender<Done>) {
    let mut symbolizer = Symbolizer::new();
    for job in jobs {
        let named = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            symbolizer.symbolize_all(&job.stacks)
        }));
        let stacks = match named {
            Ok(named) => named,
            Err(_) => {
                // A malformed binary tripped the symbolizer: show this
                // drain's frames as addresses and start afresh.
                log::error!("symbolizing stacks panicked; showing them as addresses");
                symbolizer = Symbolizer::new();
                name_by_address(&job.stacks)
            }
        };
        let result = Done {
            start_ns: job.start_ns,
            end_ns: job.end_ns,
            stacks,
        };
        if done.send(result).is_err() {
            break;
        }
    }
}

/// Stacks named by their addresses only.
fn name_by_address(stacks: &[RawStack]) -> Vec<NamedStack> {
    stacks
        .iter()
        .map(|stack| {
            let user = stack.user.frames().iter().rev().map(|a| (*a, false));
            let kernel = stack.kernel.frames().iter().rev().map(|a| (*a, true));
            NamedStack {
                probe: stack.probe,
                tgid: stack.tgid,
                comm: stack.comm.clone(),
                frames: user
                    .chain(kernel)
                    .map(|(addr, kernel)| (unknown_address(addr).into(), kernel))
                    .collect(),
                value: stack.value,
            }
        })
        .collect()
}

/// Nanoseconds of `CLOCK_MONOTONIC`, the clock of `bpf_ktime_get_ns`.
pub use microscope_wire::monotonic_ns;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_stack::CapturedStack;

    #[test]
    fn a_stuck_symbolizer_costs_names_never_unbounded_memory() {
        // A symbolizer thread that never takes a job, as if a file it
        // reads never answered.
        let (jobs, _never_read) = mpsc::sync_channel::<Job>(JOB_QUEUE);
        let (_done_tx, done) = mpsc::sync_channel::<Done>(DONE_QUEUE);
        let (release, wait) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let _ = wait.recv();
        });
        let mut profiler = Profiler::new();
        profiler.thread = Some(SymbolizeThread {
            jobs,
            done,
            _handle: handle,
        });
        let stack = |i: u64| RawStack {
            probe: 1,
            tgid: 42,
            comm: "stuck".into(),
            kernel: CapturedStack::Frames(vec![0xffff_ffff_8100_0000 + i]),
            user: CapturedStack::Frames(vec![0x40_0000 + i]),
            value: 1,
            leaf_is_ip: true,
        };
        let mut named = 0;
        let mut drains = 0;
        // 60 drains of 1000 stacks each: 60 000 stacks in all.
        for round in 0..60u64 {
            profiler.submit((0..1000).map(|i| stack(round * 1000 + i)).collect());
            if let Some(parts) = profiler.drain(round) {
                named += parts.stacks.iter().map(|s| s.value).sum::<u64>();
                drains += 1;
            }
            let waiting = profiler.backlog.as_ref().map_or(0, |b| b.stacks.len());
            assert!(waiting <= MAX_BACKLOG_STACKS, "{waiting} stacks waiting");
        }
        // Everything past the queue came back, named by address.
        assert!(drains > 0);
        assert!(named >= 60_000 - (JOB_QUEUE as u64 + 1) * 1000 - MAX_BACKLOG_STACKS as u64);
        let last = profiler.interner().len() - 1;
        let frame = profiler.interner().get(last).map(|f| f.name.clone());
        assert!(
            frame.is_some_and(|n| n.starts_with("[unknown]+0x")),
            "frames are named by address"
        );
        drop(release);
    }

    #[test]
    fn probe_ids_round_trip() {
        for kind in ProfileKind::ALL {
            assert_eq!(ProfileKind::from_probe_id(kind.probe_id()), Some(kind));
        }
        assert_eq!(ProfileKind::from_probe_id("profile:gpu"), None);
    }

    #[test]
    fn batch_for_filters_probes_and_advances_sent_upto() {
        let mut interner = FrameInterner::new();
        let a = interner.intern("a", false);
        let b = interner.intern("b", true);
        let parts = StackBatchParts {
            start_ns: 1,
            end_ns: 2,
            stacks: vec![
                StackCount {
                    probe: 7,
                    tgid: 1,
                    comm: "x".into(),
                    frames: vec![a, b],
                    value: 3,
                },
                StackCount {
                    probe: 8,
                    tgid: 1,
                    comm: "x".into(),
                    frames: vec![a],
                    value: 1,
                },
            ],
        };
        let (batch, sent) = parts.batch_for(&interner, 0, |p| p == 7);
        assert_eq!(batch.stacks.len(), 1);
        assert_eq!(batch.frames.len(), 2);
        assert_eq!(sent, 2);
        let (batch, sent) = parts.batch_for(&interner, sent, |_| true);
        assert_eq!(batch.stacks.len(), 2);
        assert!(batch.frames.is_empty(), "nothing new to define");
        assert_eq!(sent, 2);
    }

    #[test]
    fn stacks_without_names_keep_their_addresses() {
        let named = name_by_address(&[RawStack {
            probe: 1,
            tgid: 2,
            comm: "c".into(),
            kernel: CapturedStack::Frames(vec![0xffff_0001, 0xffff_0002]),
            user: CapturedStack::Frames(vec![0x10]),
            value: 5,
            leaf_is_ip: true,
        }]);
        let names: Vec<(&str, bool)> = named[0]
            .frames
            .iter()
            .map(|(n, k)| (n.as_ref(), *k))
            .collect();
        assert_eq!(
            names,
            [
                ("[unknown]+0x10", false),
                ("[unknown]+0xffff0002", true),
                ("[unknown]+0xffff0001", true)
            ]
        );
    }

    #[test]
    fn an_unused_profiler_drains_nothing() {
        let mut profiler = Profiler::new();
        assert!(profiler.drain(5).is_none());
        assert!(!profiler.stop(3));
        assert_eq!(profiler.stop_all(), 0);
        assert!(profiler.take_raw().is_empty());
        assert!(profiler.interner().is_empty());
    }
}
