//! The loaded eBPF object: attaching and detaching probes, draining the ring
//! buffer, reading the in-kernel aggregates.

use crate::decode::decode_record;
use crate::generic;
use crate::raw_stack::RawStack;
use crate::stacks::take_stack_counts;
use crate::tracefs;
use crate::tracefs::Format;
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf, StackTraceMap};
use aya::programs::TracePoint;
use aya::programs::trace_point::TracePointLinkId;
use aya::{Ebpf, EbpfLoader};
use microscope_wire::ProbeKey;
use microscope_wire::{Aggregates, Availability, Event, EventData, ProbeStats};
use probes_common::{
    EVENT_KINDS, EventKind, FIELD_GLOBALS, FIELD_MISSING, FILTER_SLOTS, FilterTable,
    LATENCY_BUCKETS, SLOT_COUNT_ONLY, SLOT_STACKS, SYSCALL_SLOTS, StackKey, TP_SLOTS,
    TracepointEvent,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The dedicated programs of Microscope's object that stream records, and
/// the record kind each writes. Which probe runs them is the pack's business
/// (`program = "..."` in `assets/packs/builtin`); this is what the object
/// itself does.
const STREAMING_PROGRAMS: [(&str, EventKind); 6] = [
    ("sched_switch", EventKind::SchedSwitch),
    ("sched_wakeup", EventKind::SchedWakeup),
    ("sched_process_fork", EventKind::SchedFork),
    ("sched_process_exec", EventKind::SchedExec),
    ("sched_process_exit", EventKind::SchedExit),
    ("sys_enter_openat", EventKind::Openat),
];

/// The record kind dedicated program `program` writes, if it streams.
fn record_kind_of(program: &str) -> Option<EventKind> {
    STREAMING_PROGRAMS
        .iter()
        .find(|(name, _)| *name == program)
        .map(|(_, kind)| *kind)
}

/// One dedicated program of Microscope's object and the tracepoint it
/// attaches to, as a pack names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dedicated {
    /// Function name of the program in the eBPF object.
    pub program: String,
    /// Tracepoint category.
    pub category: String,
    /// Tracepoint name.
    pub name: String,
}

/// A probe run by dedicated programs, registered with [`Tracer::register`].
struct DedicatedProbe {
    id: String,
    attachments: Vec<Dedicated>,
    availability: Availability,
}

/// The generic tracepoint program of slot `slot` (one copy per slot, see
/// [`probes_common::TP_SLOTS`]).
fn generic_program(slot: usize) -> String {
    format!("tp_generic_{slot}")
}

/// The eBPF object built from `ebpf/`, embedded at compile time.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/microscope-ebpf"));

/// Parsed `format` files by (category, name), or why one could not be read.
type Formats = HashMap<(&'static str, &'static str), Result<tracefs::Fields, String>>;

/// The offset written into each global of [`FIELD_GLOBALS`], in that order.
type Offsets = Vec<(&'static str, u32)>;

/// Loading the eBPF object failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The kernel refused the object or one of its maps.
    #[error(
        "could not load Microscope's eBPF programs: {source}. The helper must run as root \
         (or with CAP_BPF and CAP_PERFMON) on a kernel with BPF ring buffers (5.8 or newer)"
    )]
    Ebpf {
        /// aya's error.
        #[source]
        source: aya::EbpfError,
    },
    /// A map the programs need is missing from the object (a build problem).
    #[error("the eBPF object lacks map {0}; rebuild with `cargo xtask run`")]
    MissingMap(&'static str),
    /// A map has an unexpected type (a build problem).
    #[error("the eBPF map {name} has an unexpected type: {source}")]
    Map {
        /// Map name.
        name: &'static str,
        /// aya's error.
        #[source]
        source: aya::maps::MapError,
    },
}

/// Owns the loaded programs and maps.
pub struct Tracer {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    drops: PerCpuArray<MapData, u64>,
    /// Syscalls entered, by filter slot and syscall number.
    syscall_counts: PerCpuArray<MapData, u64>,
    /// Syscall latency histograms, by filter slot.
    latency: PerCpuArray<MapData, u64>,
    /// Generic tracepoint records lost, per CPU, by slot.
    tp_drops: PerCpuArray<MapData, u64>,
    /// Hits of generic slots that only count (`SLOT_COUNT_ONLY`), per CPU.
    tp_hits: PerCpuArray<MapData, u64>,
    /// Options of each generic slot.
    slot_options: Array<MapData, u32>,
    /// The in-kernel process filters, by slot.
    filter: Array<MapData, FilterTable>,
    /// Stacks captured at tracepoints with stacks on (`SLOT_STACKS`).
    stacks: StackTraceMap<MapData>,
    /// Hits per (slot, process, stacks, comm).
    stack_counts: BpfHashMap<MapData, StackKey, u64>,
    /// tracefs, where the tracepoints of dedicated probes are checked.
    tracefs: Option<PathBuf>,
    /// The field offsets set at load time.
    offsets: Offsets,
    /// Probes run by dedicated programs, by wire key.
    dedicated: HashMap<ProbeKey, DedicatedProbe>,
    /// The probe each streamed record kind belongs to, by kind.
    event_keys: [Option<ProbeKey>; EVENT_KINDS as usize],
    /// Links of attached probes, by wire key: program name and link.
    attached: HashMap<ProbeKey, Vec<(String, TracePointLinkId)>>,
    /// What each generic slot traces: probe key and tracepoint format.
    slots: Vec<Option<(ProbeKey, Arc<Format>)>>,
    /// Which slots only count (their hits are in `TP_HITS`, by filter slot).
    count_only: Vec<bool>,
    /// Records that did not decode (should stay 0).
    decode_errors: u64,
    /// Most bytes found waiting in the ring buffer at one drain since
    /// [`take_ring_peak`](Self::take_ring_peak).
    ring_peak_bytes: u64,
}

impl Tracer {
    /// Loads the object and sets tracepoint field offsets from `tracefs`.
    /// Programs are loaded (verified) when a probe that runs them is
    /// [registered](Self::register).
    pub fn load(tracefs: Option<&Path>) -> Result<Self, LoadError> {
        let offsets = field_offsets(tracefs);
        let mut loader = EbpfLoader::new();
        for (global, offset) in &offsets {
            loader.override_global(global, offset, true);
        }
        let mut ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|source| LoadError::Ebpf { source })?;
        Ok(Self {
            ring: RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?).map_err(|source| {
                LoadError::Map {
                    name: "EVENTS",
                    source,
                }
            })?,
            drops: per_cpu(&mut ebpf, "DROPS")?,
            syscall_counts: per_cpu(&mut ebpf, "SYSCALL_COUNTS")?,
            latency: per_cpu(&mut ebpf, "SYSCALL_LATENCY")?,
            tp_drops: per_cpu(&mut ebpf, "TP_DROPS")?,
            tp_hits: per_cpu(&mut ebpf, "TP_HITS")?,
            slot_options: typed_map(&mut ebpf, "TP_SLOT_OPTIONS", Array::try_from)?,
            filter: typed_map(&mut ebpf, "FILTER", Array::try_from)?,
            stacks: typed_map(&mut ebpf, "STACKS", StackTraceMap::try_from)?,
            stack_counts: typed_map(&mut ebpf, "STACK_COUNTS", BpfHashMap::try_from)?,
            ebpf,
            tracefs: tracefs.map(Path::to_path_buf),
            offsets,
            dedicated: HashMap::new(),
            event_keys: [None; EVENT_KINDS as usize],
            attached: HashMap::new(),
            slots: vec![None; TP_SLOTS as usize],
            count_only: vec![false; TP_SLOTS as usize],
            decode_errors: 0,
            ring_peak_bytes: 0,
        })
    }

    /// Registers probe `key` (`id`), run by dedicated programs: checks its
    /// tracepoints and fields on this kernel and loads its programs. Returns
    /// whether it can be attached, and why not.
    pub fn register(
        &mut self,
        key: ProbeKey,
        id: &str,
        attachments: Vec<Dedicated>,
    ) -> Availability {
        let availability = probe_availability(
            &mut self.ebpf,
            &attachments,
            self.tracefs.as_deref(),
            &self.offsets,
        );
        for a in &attachments {
            if let Some(slot) =
                record_kind_of(&a.program).and_then(|kind| self.event_keys.get_mut(kind as usize))
            {
                *slot = Some(key);
            }
        }
        self.dedicated.insert(
            key,
            DedicatedProbe {
                id: id.to_owned(),
                attachments,
                availability: availability.clone(),
            },
        );
        availability
    }

    /// The loaded object, for capability checks.
    pub(crate) fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Whether probe `key` is attached.
    pub fn is_attached(&self, key: ProbeKey) -> bool {
        self.attached.contains_key(&key)
    }

    /// Attaches every program of dedicated probe `key` (see
    /// [`register`](Self::register)). An error is a sentence for the user.
    pub fn attach(&mut self, key: ProbeKey) -> Result<(), String> {
        if self.is_attached(key) {
            return Ok(());
        }
        let probe = self
            .dedicated
            .get(&key)
            .ok_or_else(|| format!("no probe with key {key}"))?;
        if !probe.availability.available {
            return Err(format!(
                "{} is not available here: {}",
                probe.id, probe.availability.reason
            ));
        }
        let (id, attachments) = (probe.id.clone(), probe.attachments.clone());
        let mut links = Vec::new();
        for a in &attachments {
            let result = tracepoint(&mut self.ebpf, &a.program)
                .and_then(|tp| tp.attach(&a.category, &a.name).map_err(|e| e.to_string()));
            match result {
                Ok(link) => links.push((a.program.clone(), link)),
                Err(err) => {
                    self.detach_links(links);
                    return Err(format!(
                        "attaching {id} to tracepoint {}:{} failed: {err}",
                        a.category, a.name
                    ));
                }
            }
        }
        log::info!("attached {id}");
        self.attached.insert(key, links);
        Ok(())
    }

    /// Attaches a free slot's generic program to tracepoint `format.id` as
    /// probe `key`; with `stacks`, it also counts stacks; with `count_only`
    /// it counts hits in the kernel and sends no record. An error is a
    /// sentence for the user.
    pub fn attach_generic(
        &mut self,
        key: ProbeKey,
        format: Arc<Format>,
        stacks: bool,
        count_only: bool,
    ) -> Result<(), String> {
        if self.is_attached(key) {
            return Ok(());
        }
        let slot = self.slots.iter().position(Option::is_none).ok_or_else(|| {
            format!(
                "cannot trace {}: {TP_SLOTS} tracepoints are already traced at once, \
                 the most this helper can; disable one first",
                format.id
            )
        })?;
        let options =
            if stacks { SLOT_STACKS } else { 0 } | if count_only { SLOT_COUNT_ONLY } else { 0 };
        self.slot_options
            .set(slot as u32, options, 0)
            .map_err(|err| format!("could not set the options of {}: {err}", format.id))?;
        let (category, name) = format.id.split_once(':').unwrap_or((&format.id, ""));
        if count_only {
            // The slot's hits under every filter start from zero.
            for filter_slot in 0..FILTER_SLOTS {
                let index = filter_slot * TP_SLOTS + slot as u32;
                crate::filter_slots::clear_per_cpu(&mut self.tp_hits, index..index + 1)?;
            }
        }
        let program = generic_program(slot);
        let link = tracepoint(&mut self.ebpf, &program)
            .and_then(|tp| {
                if tp.fd().is_err() {
                    tp.load().map_err(|err| describe_load_error(&err))?;
                }
                tp.attach(category, name).map_err(|e| e.to_string())
            })
            .map_err(|err| format!("attaching tracepoint {} failed: {err}", format.id))?;
        log::info!(
            "attached tracepoint {} in slot {slot} (stacks: {stacks}, count only: {count_only})",
            format.id
        );
        self.count_only[slot] = count_only;
        self.slots[slot] = Some((key, format));
        self.attached.insert(key, vec![(program, link)]);
        Ok(())
    }

    /// Reads and deletes the stacks counted at tracepoints since the last
    /// call (see [`take_stack_counts`]), each under the probe key of its
    /// slot. Counts of a slot freed meanwhile are dropped.
    pub fn take_stacks(&mut self) -> Vec<RawStack> {
        let slots = &self.slots;
        let probe_of = |slot: u32| {
            slots
                .get(usize::try_from(slot).ok()?)
                .and_then(Option::as_ref)
                .map(|(key, _)| *key)
        };
        take_stack_counts(
            &mut self.stack_counts,
            &mut self.stacks,
            probe_of,
            &std::collections::HashSet::new(),
            false,
        )
    }

    /// Writes the in-kernel process filters.
    pub fn set_filter(&mut self, table: &FilterTable) -> Result<(), String> {
        self.filter
            .set(0, table, 0)
            .map_err(|err| format!("could not set the process filter: {err}"))
    }

    /// Zeroes the aggregates of filter slot `slot`, before it gets a new
    /// filter.
    pub fn clear_slot(&mut self, slot: usize) -> Result<(), String> {
        let slot = slot as u32;
        crate::filter_slots::clear_per_cpu(
            &mut self.syscall_counts,
            slot * SYSCALL_SLOTS..(slot + 1) * SYSCALL_SLOTS,
        )?;
        crate::filter_slots::clear_per_cpu(
            &mut self.latency,
            slot * LATENCY_BUCKETS..(slot + 1) * LATENCY_BUCKETS,
        )?;
        crate::filter_slots::clear_per_cpu(
            &mut self.tp_hits,
            slot * TP_SLOTS..(slot + 1) * TP_SLOTS,
        )
    }

    /// Detaches probe `key` if attached.
    pub fn detach(&mut self, key: ProbeKey) {
        if let Some(links) = self.attached.remove(&key) {
            self.detach_links(links);
            for (slot, count_only) in self.slots.iter_mut().zip(&mut self.count_only) {
                if slot.as_ref().is_some_and(|(k, _)| *k == key) {
                    *slot = None;
                    *count_only = false;
                }
            }
            log::info!("detached probe {key}");
        }
    }

    /// Detaches every probe; returns how many were attached.
    pub fn detach_all(&mut self) -> usize {
        let keys: Vec<ProbeKey> = self.attached.keys().copied().collect();
        for key in &keys {
            self.detach(*key);
        }
        keys.len()
    }

    fn detach_links(&mut self, links: Vec<(String, TracePointLinkId)>) {
        for (program, link) in links {
            if let Err(err) = tracepoint(&mut self.ebpf, &program)
                .and_then(|tp| tp.detach(link).map_err(|e| e.to_string()))
            {
                log::warn!("detaching {program} failed: {err}");
            }
        }
    }

    /// Decodes up to `max` ring buffer records into `out`; returns how many
    /// records were consumed.
    pub fn drain(&mut self, max: usize, out: &mut Vec<Event>) -> usize {
        let mut consumed = 0;
        let mut bytes = 0u64;
        while consumed < max {
            let Some(item) = self.ring.next() else { break };
            consumed += 1;
            bytes += ring_record_bytes(item.len());
            let decoded = match crate::decode::record_kind(&item) {
                Ok(EventKind::Tracepoint) => decode_generic(&item, &self.slots),
                _ => decode_record(&item, |kind| {
                    self.event_keys
                        .get(kind as usize)
                        .copied()
                        .flatten()
                        .unwrap_or(ProbeKey::MAX)
                }),
            };
            match decoded {
                Ok(event) => out.push(event),
                Err(crate::decode::DecodeError::UnknownTracepoint(_)) => {}
                Err(err) => {
                    self.decode_errors += 1;
                    if self.decode_errors == 1 {
                        log::error!(
                            "undecodable ring buffer record ({err}); counting further ones"
                        );
                    }
                }
            }
        }
        self.ring_peak_bytes = self.ring_peak_bytes.max(bytes);
        consumed
    }

    /// Most bytes found waiting in the ring buffer at one drain since the
    /// previous call (what it held when drained: its fill level).
    pub fn take_ring_peak(&mut self) -> u64 {
        std::mem::take(&mut self.ring_peak_bytes)
    }

    /// Whether probe `key` streams into the ring buffer.
    pub fn streams(&self, key: ProbeKey) -> bool {
        self.event_keys.contains(&Some(key))
            || self
                .slots
                .iter()
                .any(|s| s.as_ref().is_some_and(|(k, _)| *k == key))
    }

    /// Run-time statistics of the programs probe `key` has attached.
    pub fn program_runs(&self, key: ProbeKey) -> Vec<crate::cost::ProgramRun> {
        let Some(links) = self.attached.get(&key) else {
            return Vec::new();
        };
        crate::cost::program_runs(self.ebpf.programs(), |name| {
            links.iter().any(|(program, _)| program == name)
        })
    }

    /// Kernel drops of every streamed probe (summed over CPUs).
    pub fn kernel_drops(&self) -> Vec<ProbeStats> {
        let mut stats: Vec<ProbeStats> = (0u32..)
            .zip(self.event_keys)
            .filter_map(|(kind, key)| {
                Some(ProbeStats {
                    probe: key?,
                    kernel_drops: sum_slot(&self.drops, kind),
                    client_drops: 0,
                })
            })
            .collect();
        for (slot, traced) in self.slots.iter().enumerate() {
            if let Some((key, _)) = traced {
                stats.push(ProbeStats {
                    probe: *key,
                    kernel_drops: sum_slot(&self.tp_drops, slot as u32),
                    client_drops: 0,
                });
            }
        }
        stats
    }

    /// Hits of each attached tracepoint that only counts, under filter slot
    /// `slot`, since it was attached or the slot got its filter:
    /// `(probe key, hits)`.
    pub fn counted_hits(&self, slot: usize) -> Vec<(ProbeKey, u64)> {
        let slot = slot as u32;
        self.slots
            .iter()
            .zip(&self.count_only)
            .enumerate()
            .filter_map(|(tp_slot, (traced, count_only))| {
                let (key, _) = traced.as_ref().filter(|_| *count_only)?;
                Some((
                    *key,
                    sum_slot(&self.tp_hits, slot * TP_SLOTS + tp_slot as u32),
                ))
            })
            .collect()
    }

    /// Reads the aggregates of filter slot `slot` (cumulative since the
    /// slot got its filter).
    pub fn aggregates(&self, slot: usize, counts: bool, latency: bool, ts_ns: u64) -> Aggregates {
        let slot = slot as u32;
        let syscall_counts = if counts {
            (0..SYSCALL_SLOTS)
                .filter_map(|nr| {
                    let n = sum_slot(&self.syscall_counts, slot * SYSCALL_SLOTS + nr);
                    (n > 0).then_some((nr, n))
                })
                .collect()
        } else {
            Vec::new()
        };
        let latency_log2_ns = if latency {
            (0..LATENCY_BUCKETS)
                .map(|b| sum_slot(&self.latency, slot * LATENCY_BUCKETS + b))
                .collect()
        } else {
            Vec::new()
        };
        Aggregates {
            functions: Vec::new(),
            ts_ns,
            syscall_counts,
            latency_log2_ns,
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let n = self.detach_all();
        if n > 0 {
            log::info!("detached {n} probe(s) on shutdown");
        }
    }
}

/// Decodes a generic tracepoint record with the format of the tracepoint
/// its slot traces.
fn decode_generic(
    bytes: &[u8],
    slots: &[Option<(ProbeKey, Arc<Format>)>],
) -> Result<Event, crate::decode::DecodeError> {
    let record: TracepointEvent = crate::decode::read(bytes, Some(EventKind::Tracepoint))?;
    // A record of a tracepoint detached a moment ago: not an error.
    let Some((key, format)) = slots.get(record.slot as usize).and_then(Option::as_ref) else {
        return Err(crate::decode::DecodeError::UnknownTracepoint(record.slot));
    };
    let header = record.header;
    Ok(Event {
        probe: *key,
        cpu: header.cpu,
        ts_ns: header.ts_ns,
        pid: header.pid,
        tgid: header.tgid,
        comm: crate::decode::c_string(&header.comm),
        data: EventData::Fields(generic::decode_fields(format, &record.data)),
    })
}

/// Bytes a record of `len` bytes takes in a BPF ring buffer: an 8-byte
/// header, then the record rounded up to 8 bytes.
fn ring_record_bytes(len: usize) -> u64 {
    8 + (len as u64).div_ceil(8) * 8
}

fn sum_slot(map: &PerCpuArray<MapData, u64>, index: u32) -> u64 {
    map.get(&index, 0)
        .map(|values| values.iter().sum())
        .unwrap_or(0)
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::MissingMap(name))
}

fn per_cpu(ebpf: &mut Ebpf, name: &'static str) -> Result<PerCpuArray<MapData, u64>, LoadError> {
    typed_map(ebpf, name, PerCpuArray::try_from)
}

/// Takes map `name` out of the object as the type `convert` makes of it.
fn typed_map<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<T, aya::maps::MapError>,
) -> Result<T, LoadError> {
    convert(take_map(ebpf, name)?).map_err(|source| LoadError::Map { name, source })
}

/// The offset of each global of [`FIELD_GLOBALS`], read from the running
/// kernel's format files ([`FIELD_MISSING`] where a field or tracepoint is
/// missing).
fn field_offsets(tracefs: Option<&Path>) -> Offsets {
    let mut formats: Formats = HashMap::new();
    FIELD_GLOBALS
        .iter()
        .map(|g| {
            let format = formats
                .entry((g.category, g.name))
                .or_insert_with(|| match tracefs {
                    Some(root) => tracefs::read_format(root, g.category, g.name),
                    None => Err("tracefs is not mounted".to_owned()),
                });
            let offset = match format {
                Ok(fields) => fields.get(g.field).map_or(FIELD_MISSING, |f| f.offset),
                Err(_) => FIELD_MISSING,
            };
            (g.global, offset)
        })
        .collect()
}

fn tracepoint<'a>(ebpf: &'a mut Ebpf, program: &str) -> Result<&'a mut TracePoint, String> {
    let prog = ebpf
        .program_mut(program)
        .ok_or_else(|| format!("the eBPF object has no program {program}"))?;
    prog.try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())
}

/// Checks the tracepoints and fields of one probe and loads its programs.
fn probe_availability(
    ebpf: &mut Ebpf,
    attachments: &[Dedicated],
    tracefs: Option<&Path>,
    offsets: &[(&'static str, u32)],
) -> Availability {
    let Some(root) = tracefs else {
        return Availability::no(
            "tracefs is not mounted; run `sudo mount -t tracefs nodev /sys/kernel/tracing`",
        );
    };
    for a in attachments {
        if let Err(reason) = tracefs::read_format(root, &a.category, &a.name) {
            return Availability::no(reason);
        }
        let missing = missing_fields(a, offsets);
        if !missing.is_empty() {
            return Availability::no(format!(
                "tracepoint {}:{} on this kernel lacks field(s) {}",
                a.category,
                a.name,
                missing.join(", ")
            ));
        }
    }
    for a in attachments {
        let loaded = tracepoint(ebpf, &a.program).and_then(|tp| match tp.load() {
            Ok(()) => Ok(()),
            // Shared programs (sys_enter for two probes) are loaded once.
            Err(aya::programs::ProgramError::AlreadyLoaded) => Ok(()),
            Err(err) => Err(describe_load_error(&err)),
        });
        if let Err(reason) = loaded {
            return Availability::no(reason);
        }
    }
    Availability::yes("tracepoint present, fields found, program verified")
}

/// The fields of `a`'s tracepoint whose offset globals found no field.
fn missing_fields(a: &Dedicated, offsets: &[(&'static str, u32)]) -> Vec<&'static str> {
    FIELD_GLOBALS
        .iter()
        .zip(offsets)
        .filter(|(g, (_, off))| {
            g.category == a.category && g.name == a.name && *off == FIELD_MISSING
        })
        .map(|(g, _)| g.field)
        .collect()
}

/// A sentence for a program the kernel would not load.
pub fn describe_load_error(err: &aya::programs::ProgramError) -> String {
    match err {
        aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            format!(
                "the kernel refused to load the program ({io_error}); verifier said: {}",
                verifier_verdict(&log)
            )
        }
        other => format!("loading the program failed: {other}"),
    }
}

/// The lines of a verifier log that say why it refused: the last ones before
/// the statistics it always prints at the end.
pub(crate) fn verifier_verdict(log: &str) -> String {
    let is_statistics = |line: &str| {
        line.starts_with("verification time")
            || line.starts_with("stack depth")
            || line.starts_with("processed ")
    };
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_statistics(l))
        .collect();
    lines[lines.len().saturating_sub(2)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::{STREAMING_PROGRAMS, record_kind_of, verifier_verdict};
    use probes_common::EventKind;

    #[test]
    fn every_streamed_record_kind_has_one_program() {
        // Generic tracepoint records belong to whichever tracepoint their
        // slot traces, not to a dedicated program.
        for kind in EventKind::ALL
            .into_iter()
            .filter(|k| *k != EventKind::Tracepoint)
        {
            let programs: Vec<&str> = STREAMING_PROGRAMS
                .iter()
                .filter(|(_, k)| *k == kind)
                .map(|(p, _)| *p)
                .collect();
            assert_eq!(programs.len(), 1, "{kind:?}: {programs:?}");
            assert_eq!(record_kind_of(programs[0]), Some(kind));
        }
        assert_eq!(record_kind_of("sys_enter_count"), None);
    }

    #[test]
    fn verdict_skips_the_statistics() {
        let log = "0: (bf) r6 = r1\n1: (61) r1 = *(u32 *)(r6 +8)\n\
                   R6 invalid ctx access off=8 size=4\n\
                   verification time 1999 usec\nstack depth 64+0\n\
                   processed 225 insns (limit 1000000) max_states_per_insn 1\n";
        assert_eq!(
            verifier_verdict(log),
            "1: (61) r1 = *(u32 *)(r6 +8) / R6 invalid ctx access off=8 size=4"
        );
        assert_eq!(verifier_verdict(""), "");
    }
}
