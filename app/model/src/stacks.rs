//! The app's store of stack samples: what the flame graph and paths views
//! are built from.
//!
//! The helper sends stacks as lists of frame ids (root → leaf) and the names
//! of new ids before their first use. Stacks repeat a lot (the same syscall
//! path is sampled thousands of times), so each unique (probe, process,
//! command, frames) stack is stored once and a sample is only a time, a stack
//! index and a value: 24 bytes however deep the stack is.
//!
//! Samples are kept sorted by time, so a time range is two binary searches
//! away whatever the store holds. Samples that arrive slightly out of order
//! (batches from several CPUs) are inserted at their place; that shifts only
//! the few newer samples after them.

use crate::units::format_duration_ns;
use rustc_hash::{FxHashMap, FxHasher};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;

/// How many samples the store keeps before it forgets the oldest
/// (24 bytes each: about 96 MiB).
pub const DEFAULT_MAX_SAMPLES: usize = 4_000_000;

/// Marks "no further stack with this hash" in the collision chains.
const NO_STACK: u32 = u32::MAX;

/// The name shown for a frame id whose name never arrived.
pub fn unknown_frame_name(id: u32) -> String {
    format!("[unknown frame #{id}]")
}

/// What the values of a probe's samples count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ValueUnit {
    /// Number of samples (on-CPU profiling, stacks captured at a probe).
    #[default]
    Samples,
    /// Nanoseconds spent blocked (off-CPU).
    Nanoseconds,
}

impl ValueUnit {
    /// A value with its unit, e.g. `1234 samples` or `12.3 ms`.
    pub fn format(self, value: u64) -> String {
        match self {
            Self::Samples if value == 1 => "1 sample".to_owned(),
            Self::Samples => format!("{value} samples"),
            Self::Nanoseconds => format_duration_ns(value),
        }
    }

    /// A value in few characters, for crowded places: `1234` or `12.3 ms`.
    pub fn format_short(self, value: u64) -> String {
        match self {
            Self::Samples => value.to_string(),
            Self::Nanoseconds => format_duration_ns(value),
        }
    }
}

/// The index of a unique stack in a [`StackStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StackId(u32);

impl StackId {
    /// The index, for dense per-stack tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One sample: when, which stack, how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackSample {
    /// Kernel time of the sample (`bpf_ktime_get_ns`), in ns.
    pub t_ns: u64,
    /// The stack.
    pub stack: StackId,
    /// Samples (on-CPU) or ns blocked (off-CPU): see [`ValueUnit`].
    pub value: u64,
}

/// A unique stack, borrowed from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackRef<'a> {
    /// Key of the probe that captured it.
    pub probe: u16,
    /// Process id (thread group id).
    pub tgid: u32,
    /// Command name of the thread.
    pub comm: &'a str,
    /// Frame ids, root first.
    pub frames: &'a [u32],
}

/// Which samples to use: a time range and optional probe and process filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackQuery {
    /// First time included, in ns.
    pub start_ns: u64,
    /// First time excluded, in ns.
    pub end_ns: u64,
    /// Only this probe's samples.
    pub probe: Option<u16>,
    /// Only this process's samples.
    pub tgid: Option<u32>,
}

impl StackQuery {
    /// Every sample of every probe and process.
    pub fn all() -> Self {
        Self::range(0, u64::MAX)
    }

    /// Every sample in `[start_ns, end_ns)`.
    pub fn range(start_ns: u64, end_ns: u64) -> Self {
        Self {
            start_ns,
            end_ns,
            probe: None,
            tgid: None,
        }
    }

    /// The same query, restricted to one probe (or all with `None`).
    pub fn with_probe(self, probe: Option<u16>) -> Self {
        Self { probe, ..self }
    }

    /// The same query, restricted to one process (or all with `None`).
    pub fn with_tgid(self, tgid: Option<u32>) -> Self {
        Self { tgid, ..self }
    }
}

/// A process seen in the samples of a query, for the process filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSummary {
    /// Process id.
    pub tgid: u32,
    /// Its command name (the one with most samples when threads differ).
    pub comm: String,
    /// Sum of its sample values.
    pub value: u64,
}

/// An owned copy of the stacks a query selects, each with the sum of its
/// samples' values: what graphs are built from, on another thread when the
/// slice is large. Frame names are shared with the store, not copied.
#[derive(Clone, Debug, Default)]
pub struct StackSlice {
    stacks: Vec<SliceStack>,
    frames: Vec<u32>,
    comms: Arc<Vec<Box<str>>>,
    frame_names: Arc<FxHashMap<u32, FrameName>>,
    unit: ValueUnit,
}

/// A frame's function name and whether it runs in the kernel.
#[derive(Clone, Debug)]
struct FrameName {
    name: Box<str>,
    kernel: bool,
}

#[derive(Clone, Copy, Debug)]
struct SliceStack {
    tgid: u32,
    comm: u32,
    frames_start: usize,
    frames_len: u32,
    value: u64,
}

/// A stack of a [`StackSlice`] and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceEntry<'a> {
    /// Process id.
    pub tgid: u32,
    /// Command name of the thread.
    pub comm: &'a str,
    /// Frame ids, root first.
    pub frames: &'a [u32],
    /// Sum of the values of its samples in the slice.
    pub value: u64,
}

impl StackSlice {
    /// Number of unique stacks.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Whether no stack was selected.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// What the values count.
    pub fn unit(&self) -> ValueUnit {
        self.unit
    }

    /// The stacks, in the store's order.
    pub fn iter(&self) -> impl Iterator<Item = SliceEntry<'_>> + '_ {
        self.stacks.iter().map(|stack| SliceEntry {
            tgid: stack.tgid,
            comm: self.comms.get(stack.comm as usize).map_or("", |c| c),
            frames: self
                .frames
                .get(stack.frames_start..stack.frames_start + stack.frames_len as usize)
                .unwrap_or(&[]),
            value: stack.value,
        })
    }

    /// The name of frame `id`, or `[unknown frame #id]`.
    pub fn frame_name(&self, id: u32) -> Cow<'_, str> {
        match self.frame_names.get(&id) {
            Some(frame) => Cow::Borrowed(&frame.name),
            None => Cow::Owned(unknown_frame_name(id)),
        }
    }

    /// Whether frame `id` is a kernel function (false if unknown).
    pub fn is_kernel_frame(&self, id: u32) -> bool {
        self.frame_names.get(&id).is_some_and(|frame| frame.kernel)
    }
}

/// Where a unique stack's frames are and whose stack it is.
#[derive(Clone, Copy, Debug)]
struct StackEntry {
    frames_start: usize,
    frames_len: u32,
    tgid: u32,
    comm: u32,
    probe: u16,
    /// The previous stack with the same hash, or [`NO_STACK`].
    next_same_hash: u32,
}

/// Stack samples, their unique stacks and the frame names. See the module
/// documentation.
#[derive(Clone, Debug)]
pub struct StackStore {
    /// Shared with the slices handed to graph builds: a name arriving
    /// during a build copies the table once instead of every build doing so.
    frame_names: Arc<FxHashMap<u32, FrameName>>,
    comms: Arc<Vec<Box<str>>>,
    comm_ids: FxHashMap<Box<str>, u32>,
    stacks: Vec<StackEntry>,
    /// The frames of every unique stack, one after the other.
    frames: Vec<u32>,
    /// Hash of (probe, tgid, comm, frames) → newest stack with that hash.
    by_hash: FxHashMap<u64, u32>,
    /// Sorted by `t_ns`.
    samples: Vec<StackSample>,
    probes: BTreeSet<u16>,
    units: BTreeMap<u16, ValueUnit>,
    max_samples: usize,
    forgotten: u64,
    rejected: u64,
    generation: u64,
}

impl Default for StackStore {
    fn default() -> Self {
        Self::new()
    }
}

impl StackStore {
    /// An empty store that keeps up to [`DEFAULT_MAX_SAMPLES`] samples.
    pub fn new() -> Self {
        Self {
            frame_names: Arc::default(),
            comms: Arc::default(),
            comm_ids: FxHashMap::default(),
            stacks: Vec::new(),
            frames: Vec::new(),
            by_hash: FxHashMap::default(),
            samples: Vec::new(),
            probes: BTreeSet::new(),
            units: BTreeMap::new(),
            max_samples: DEFAULT_MAX_SAMPLES,
            forgotten: 0,
            rejected: 0,
            generation: 0,
        }
    }

    /// Keeps at most `max_samples` samples (at least one); older ones are
    /// forgotten, in chunks, as new ones arrive.
    pub fn set_max_samples(&mut self, max_samples: usize) {
        self.max_samples = max_samples.max(1);
        self.enforce_limit();
    }

    /// Names frame `id`, a kernel function if `kernel`. The helper sends
    /// each id's name before the first stack that uses it; a later name for
    /// the same id replaces the earlier.
    pub fn intern_frame(&mut self, id: u32, name: String, kernel: bool) {
        let frame = FrameName {
            name: name.into_boxed_str(),
            kernel,
        };
        Arc::make_mut(&mut self.frame_names).insert(id, frame);
        self.generation += 1;
    }

    /// Declares what `probe`'s sample values count (samples by default).
    pub fn set_unit(&mut self, probe: u16, unit: ValueUnit) {
        if self.units.insert(probe, unit) != Some(unit) {
            self.generation += 1;
        }
    }

    /// What `probe`'s sample values count.
    pub fn unit(&self, probe: u16) -> ValueUnit {
        self.units.get(&probe).copied().unwrap_or_default()
    }

    /// What the values `query` selects count: its probe's unit, or with no
    /// probe filter the unit all probes share.
    pub fn query_unit(&self, query: StackQuery) -> ValueUnit {
        match query.probe {
            Some(probe) => self.unit(probe),
            None => self.shared_unit().unwrap_or_default(),
        }
    }

    /// The unit of every probe that sent samples, if they all agree (and
    /// some did): only then can their values be added up.
    pub fn shared_unit(&self) -> Option<ValueUnit> {
        let mut units = self.probes.iter().map(|&probe| self.unit(probe));
        let first = units.next()?;
        units.all(|unit| unit == first).then_some(first)
    }

    /// Adds a sample of `value` at `t_ns`: `frames` (root first) seen by
    /// `probe` in process `tgid`, thread command `comm`.
    pub fn add(
        &mut self,
        t_ns: u64,
        probe: u16,
        tgid: u32,
        comm: &str,
        frames: &[u32],
        value: u64,
    ) {
        let Some(stack) = self.intern_stack(probe, tgid, comm, frames) else {
            self.rejected += 1;
            return;
        };
        let sample = StackSample { t_ns, stack, value };
        match self.samples.last() {
            Some(last) if last.t_ns > t_ns => {
                let at = self.samples.partition_point(|s| s.t_ns <= t_ns);
                self.samples.insert(at, sample);
            }
            _ => self.samples.push(sample),
        }
        self.probes.insert(probe);
        self.generation += 1;
        self.enforce_limit();
    }

    /// Forgets every sample, stack and frame name; keeps the sample limit
    /// and the probes' units, which describe probes rather than data.
    pub fn clear(&mut self) {
        let generation = self.generation + 1;
        let max_samples = self.max_samples;
        let units = std::mem::take(&mut self.units);
        *self = Self::new();
        self.max_samples = max_samples;
        self.units = units;
        self.generation = generation;
    }

    /// Changes whenever the store changes: views rebuild what they show
    /// from the store only when this moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of samples kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Number of unique stacks interned.
    pub fn unique_stacks(&self) -> usize {
        self.stacks.len()
    }

    /// Samples forgotten to stay under the sample limit.
    pub fn forgotten_samples(&self) -> u64 {
        self.forgotten
    }

    /// Samples refused because the store ran out of stack indexes (more
    /// than four billion unique stacks).
    pub fn rejected_samples(&self) -> u64 {
        self.rejected
    }

    /// Time of the oldest and of the newest sample kept.
    pub fn time_span(&self) -> Option<(u64, u64)> {
        Some((self.samples.first()?.t_ns, self.samples.last()?.t_ns))
    }

    /// Keys of the probes that sent samples, in order.
    pub fn probes(&self) -> impl Iterator<Item = u16> + '_ {
        self.probes.iter().copied()
    }

    /// The name of frame `id`, or `[unknown frame #id]` if none arrived.
    pub fn frame_name(&self, id: u32) -> Cow<'_, str> {
        match self.frame_names.get(&id) {
            Some(frame) => Cow::Borrowed(&frame.name),
            None => Cow::Owned(unknown_frame_name(id)),
        }
    }

    /// Whether frame `id` is a kernel function (false if unknown).
    pub fn is_kernel_frame(&self, id: u32) -> bool {
        self.frame_names.get(&id).is_some_and(|frame| frame.kernel)
    }

    /// A unique stack.
    pub fn stack(&self, id: StackId) -> Option<StackRef<'_>> {
        let entry = self.stacks.get(id.index())?;
        let end = entry.frames_start + entry.frames_len as usize;
        Some(StackRef {
            probe: entry.probe,
            tgid: entry.tgid,
            comm: self.comms.get(entry.comm as usize).map_or("", |c| c),
            frames: self.frames.get(entry.frames_start..end)?,
        })
    }

    /// Every sample kept, oldest first.
    pub fn samples(&self) -> &[StackSample] {
        &self.samples
    }

    /// The samples in `[start_ns, end_ns)`, oldest first.
    pub fn samples_between(&self, start_ns: u64, end_ns: u64) -> &[StackSample] {
        let from = self.samples.partition_point(|s| s.t_ns < start_ns);
        let to = self.samples.partition_point(|s| s.t_ns < end_ns);
        self.samples.get(from..to.max(from)).unwrap_or(&[])
    }

    /// The samples `query` selects, oldest first.
    pub fn matching(&self, query: StackQuery) -> impl Iterator<Item = &StackSample> + '_ {
        self.samples_between(query.start_ns, query.end_ns)
            .iter()
            .filter(move |sample| self.selects(query, sample.stack))
    }

    /// Sum of the values of the samples `query` selects, per unique stack,
    /// in stack order; stacks without samples are left out.
    pub fn stack_totals(&self, query: StackQuery) -> Vec<(StackId, u64)> {
        let samples = self.samples_between(query.start_ns, query.end_ns);
        // A dense table is fastest when the slice is large next to the
        // number of stacks; a map when a short slice meets many stacks.
        if samples.len() >= self.stacks.len() / 8 {
            let mut totals = vec![0u64; self.stacks.len()];
            for sample in samples {
                if self.selects(query, sample.stack)
                    && let Some(total) = totals.get_mut(sample.stack.index())
                {
                    *total = total.saturating_add(sample.value);
                }
            }
            totals
                .into_iter()
                .enumerate()
                .filter(|&(_, total)| total > 0)
                .filter_map(|(index, total)| Some((StackId(u32::try_from(index).ok()?), total)))
                .collect()
        } else {
            let mut totals: FxHashMap<StackId, u64> = FxHashMap::default();
            for sample in samples {
                if self.selects(query, sample.stack) {
                    let total = totals.entry(sample.stack).or_default();
                    *total = total.saturating_add(sample.value);
                }
            }
            let mut totals: Vec<(StackId, u64)> =
                totals.into_iter().filter(|&(_, total)| total > 0).collect();
            totals.sort_unstable_by_key(|&(id, _)| id);
            totals
        }
    }

    /// An owned copy of the stacks `query` selects, with their values.
    pub fn slice(&self, query: StackQuery) -> StackSlice {
        let totals = self.stack_totals(query);
        let mut stacks = Vec::with_capacity(totals.len());
        let mut frames = Vec::new();
        for (stack, value) in totals {
            let Some(entry) = self.stacks.get(stack.index()) else {
                continue;
            };
            let end = entry.frames_start + entry.frames_len as usize;
            let Some(stack_frames) = self.frames.get(entry.frames_start..end) else {
                continue;
            };
            stacks.push(SliceStack {
                tgid: entry.tgid,
                comm: entry.comm,
                frames_start: frames.len(),
                frames_len: entry.frames_len,
                value,
            });
            frames.extend_from_slice(stack_frames);
        }
        StackSlice {
            stacks,
            frames,
            comms: Arc::clone(&self.comms),
            frame_names: Arc::clone(&self.frame_names),
            unit: self.query_unit(query),
        }
    }

    /// The processes in the samples `query` selects (its process filter is
    /// ignored), heaviest first.
    pub fn processes(&self, query: StackQuery) -> Vec<ProcessSummary> {
        let query = query.with_tgid(None);
        // tgid → (total, value per command name id)
        let mut by_tgid: BTreeMap<u32, (u64, BTreeMap<u32, u64>)> = BTreeMap::new();
        for (stack, value) in self.stack_totals(query) {
            let Some(entry) = self.stacks.get(stack.index()) else {
                continue;
            };
            let (total, comms) = by_tgid.entry(entry.tgid).or_default();
            *total = total.saturating_add(value);
            let comm = comms.entry(entry.comm).or_default();
            *comm = comm.saturating_add(value);
        }
        let mut processes: Vec<ProcessSummary> = by_tgid
            .into_iter()
            .map(|(tgid, (value, comms))| {
                let comm = comms
                    .iter()
                    .max_by_key(|&(comm, value)| (*value, std::cmp::Reverse(*comm)))
                    .and_then(|(&comm, _)| self.comms.get(comm as usize))
                    .map_or_else(String::new, |comm| comm.to_string());
                ProcessSummary { tgid, comm, value }
            })
            .collect();
        processes.sort_by(|a, b| b.value.cmp(&a.value).then(a.tgid.cmp(&b.tgid)));
        processes
    }

    /// Whether `query`'s probe and process filters let `stack` through.
    fn selects(&self, query: StackQuery, stack: StackId) -> bool {
        if query.probe.is_none() && query.tgid.is_none() {
            return true;
        }
        self.stacks.get(stack.index()).is_some_and(|entry| {
            query.probe.is_none_or(|probe| entry.probe == probe)
                && query.tgid.is_none_or(|tgid| entry.tgid == tgid)
        })
    }

    /// The index of this stack, interning it if new; `None` when the store
    /// has no index left for it.
    fn intern_stack(
        &mut self,
        probe: u16,
        tgid: u32,
        comm: &str,
        frames: &[u32],
    ) -> Option<StackId> {
        let comm = self.intern_comm(comm)?;
        let mut hasher = FxHasher::default();
        (probe, tgid, comm, frames).hash(&mut hasher);
        let hash = hasher.finish();

        let head = self.by_hash.get(&hash).copied().unwrap_or(NO_STACK);
        let mut candidate = head;
        while let Some(entry) = self.stacks.get(candidate as usize) {
            let end = entry.frames_start + entry.frames_len as usize;
            if entry.probe == probe
                && entry.tgid == tgid
                && entry.comm == comm
                && self.frames.get(entry.frames_start..end) == Some(frames)
            {
                return Some(StackId(candidate));
            }
            candidate = entry.next_same_hash;
        }

        let id = u32::try_from(self.stacks.len())
            .ok()
            .filter(|&id| id != NO_STACK)?;
        let frames_len = u32::try_from(frames.len()).ok()?;
        self.stacks.push(StackEntry {
            frames_start: self.frames.len(),
            frames_len,
            tgid,
            comm,
            probe,
            next_same_hash: head,
        });
        self.frames.extend_from_slice(frames);
        self.by_hash.insert(hash, id);
        Some(StackId(id))
    }

    fn intern_comm(&mut self, comm: &str) -> Option<u32> {
        if let Some(&id) = self.comm_ids.get(comm) {
            return Some(id);
        }
        let id = u32::try_from(self.comms.len()).ok()?;
        Arc::make_mut(&mut self.comms).push(comm.into());
        self.comm_ids.insert(comm.into(), id);
        Some(id)
    }

    /// Forgets the oldest samples once over the limit: a sixteenth of the
    /// limit at a time, so the cost of moving the rest is amortised.
    fn enforce_limit(&mut self) {
        if self.samples.len() <= self.max_samples {
            return;
        }
        let excess = self.samples.len() - self.max_samples;
        let chunk = excess.max(self.max_samples / 16).min(self.samples.len());
        self.samples.drain(..chunk);
        self.forgotten += chunk as u64;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StackStore {
        let mut store = StackStore::new();
        store.intern_frame(1, "start_kernel".into(), false);
        store.intern_frame(2, "vfs_read".into(), false);
        store.intern_frame(3, "ext4_read".into(), false);
        store
    }

    #[test]
    fn repeated_stacks_are_stored_once() {
        let mut store = store();
        for t in 0..100 {
            store.add(t, 1, 10, "cat", &[1, 2, 3], 1);
        }
        store.add(200, 1, 10, "cat", &[1, 2], 1);
        store.add(201, 1, 11, "cat", &[1, 2], 1);
        store.add(202, 2, 11, "cat", &[1, 2], 1);
        store.add(203, 2, 11, "dog", &[1, 2], 1);
        assert_eq!(store.len(), 104);
        assert_eq!(store.unique_stacks(), 5);
        let first = store.samples()[0].stack;
        assert_eq!(
            store.stack(first),
            Some(StackRef {
                probe: 1,
                tgid: 10,
                comm: "cat",
                frames: &[1, 2, 3],
            })
        );
    }

    #[test]
    fn an_empty_store_answers_every_query() {
        let store = StackStore::new();
        assert!(store.is_empty());
        assert_eq!(store.time_span(), None);
        assert!(store.samples_between(5, 1).is_empty());
        assert!(store.stack_totals(StackQuery::all()).is_empty());
        assert!(store.processes(StackQuery::all()).is_empty());
        assert_eq!(store.stack(StackId(0)), None);
    }

    #[test]
    fn unknown_frames_have_a_placeholder_name() {
        let store = store();
        assert_eq!(store.frame_name(2), "vfs_read");
        assert_eq!(store.frame_name(77), "[unknown frame #77]");
    }

    #[test]
    fn the_time_slice_includes_only_samples_in_range() {
        let mut store = store();
        for t in [10, 20, 30, 40, 50] {
            store.add(t, 1, 1, "a", &[1], t);
        }
        let times = |from, to| -> Vec<u64> {
            store
                .samples_between(from, to)
                .iter()
                .map(|s| s.t_ns)
                .collect()
        };
        assert_eq!(times(20, 40), [20, 30]);
        assert_eq!(times(21, 41), [30, 40]);
        assert_eq!(times(0, 10), Vec::<u64>::new());
        assert_eq!(times(50, 51), [50]);
        assert_eq!(times(40, 20), Vec::<u64>::new());
        let totals = store.stack_totals(StackQuery::range(20, 50));
        assert_eq!(totals.iter().map(|t| t.1).sum::<u64>(), 20 + 30 + 40);
    }

    #[test]
    fn late_samples_are_inserted_in_time_order() {
        let mut store = store();
        for t in [10, 30, 20, 5, 30, 25] {
            store.add(t, 1, 1, "a", &[1], 1);
        }
        let times: Vec<u64> = store.samples().iter().map(|s| s.t_ns).collect();
        assert_eq!(times, [5, 10, 20, 25, 30, 30]);
        assert_eq!(store.time_span(), Some((5, 30)));
    }

    #[test]
    fn probe_and_process_filters_select_samples() {
        let mut store = store();
        store.add(1, 1, 100, "cat", &[1, 2], 3);
        store.add(2, 1, 200, "dd", &[1, 2], 5);
        store.add(3, 2, 100, "cat", &[1, 3], 7);
        let sum = |query: StackQuery| store.matching(query).map(|s| s.value).sum::<u64>();
        assert_eq!(sum(StackQuery::all()), 15);
        assert_eq!(sum(StackQuery::all().with_probe(Some(1))), 8);
        assert_eq!(sum(StackQuery::all().with_tgid(Some(100))), 10);
        assert_eq!(
            sum(StackQuery::all().with_probe(Some(2)).with_tgid(Some(200))),
            0
        );
        assert_eq!(store.probes().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn processes_are_listed_heaviest_first_with_their_main_command() {
        let mut store = store();
        store.add(1, 1, 100, "worker", &[1], 2);
        store.add(2, 1, 100, "main", &[1], 5);
        store.add(3, 1, 200, "dd", &[2], 4);
        store.add(4, 1, 300, "late", &[2], 40);
        let processes = store.processes(StackQuery::range(0, 4).with_tgid(Some(200)));
        assert_eq!(
            processes,
            [
                ProcessSummary {
                    tgid: 100,
                    comm: "main".into(),
                    value: 7
                },
                ProcessSummary {
                    tgid: 200,
                    comm: "dd".into(),
                    value: 4
                },
            ]
        );
    }

    #[test]
    fn a_sparse_slice_and_a_dense_slice_total_alike() {
        let mut store = store();
        for i in 0..64u32 {
            store.add(u64::from(i), 1, i, "x", &[1, i], 1);
        }
        for _ in 0..4 {
            store.add(1000, 1, 3, "x", &[1, 3], 2);
        }
        // 4 samples over 65 stacks: the map path.
        let sparse = store.stack_totals(StackQuery::range(1000, 1001));
        assert_eq!(sparse.len(), 1);
        assert_eq!(sparse[0].1, 8);
        // Everything: the dense path.
        let dense = store.stack_totals(StackQuery::all());
        assert_eq!(dense.len(), 64);
        assert_eq!(dense.iter().map(|t| t.1).sum::<u64>(), 72);
        assert!(dense.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_slice_owns_the_selected_stacks_and_shares_the_names() {
        let mut store = store();
        store.add(1, 1, 100, "cat", &[1, 2], 3);
        store.add(2, 1, 100, "cat", &[1, 2], 4);
        store.add(3, 1, 200, "dd", &[1, 9], 5);
        store.add(9, 1, 200, "dd", &[3], 5);
        let slice = store.slice(StackQuery::range(0, 5));
        let entries: Vec<SliceEntry<'_>> = slice.iter().collect();
        assert_eq!(
            entries,
            [
                SliceEntry {
                    tgid: 100,
                    comm: "cat",
                    frames: &[1, 2],
                    value: 7
                },
                SliceEntry {
                    tgid: 200,
                    comm: "dd",
                    frames: &[1, 9],
                    value: 5
                },
            ]
        );
        // A name arriving later does not change the slice taken before.
        store.intern_frame(9, "late".into(), false);
        assert_eq!(slice.frame_name(9), "[unknown frame #9]");
        assert_eq!(store.frame_name(9), "late");
        assert!(StackStore::new().slice(StackQuery::all()).is_empty());
    }

    #[test]
    fn the_oldest_samples_are_forgotten_past_the_limit() {
        let mut store = store();
        store.set_max_samples(32);
        for t in 0..40 {
            store.add(t, 1, 1, "a", &[1], 1);
        }
        assert!(store.len() <= 32);
        assert_eq!(store.len() as u64 + store.forgotten_samples(), 40);
        assert_eq!(store.time_span().map(|s| s.1), Some(39));
    }

    #[test]
    fn every_change_moves_the_generation() {
        let mut store = StackStore::new();
        let g0 = store.generation();
        store.intern_frame(1, "a".into(), false);
        let g1 = store.generation();
        store.add(1, 1, 1, "a", &[1], 1);
        let g2 = store.generation();
        store.set_unit(1, ValueUnit::Nanoseconds);
        let g3 = store.generation();
        store.set_unit(1, ValueUnit::Nanoseconds);
        store.clear();
        let g4 = store.generation();
        assert!(g0 < g1 && g1 < g2 && g2 < g3 && g3 < g4);
        assert!(store.is_empty());
    }

    #[test]
    fn units_format_values() {
        assert_eq!(ValueUnit::Samples.format(1), "1 sample");
        assert_eq!(ValueUnit::Samples.format(1234), "1234 samples");
        assert_eq!(ValueUnit::Nanoseconds.format(12_300_000), "12.3 ms");
    }
}
