//! The loaded eBPF object: attaching and detaching probes, draining the ring
//! buffer, reading the in-kernel aggregates.

use crate::catalogue::{self, PROBES};
use crate::decode::decode_record;
use crate::generic;
use crate::stacks::{RawStack, take_stack_counts};
use crate::tracefs;
use crate::tracefs::Format;
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf, StackTraceMap};
use aya::programs::TracePoint;
use aya::programs::trace_point::TracePointLinkId;
use aya::{Ebpf, EbpfLoader};
use microscope_wire::{Aggregates, Availability, Event, EventData, ProbeStats};
use probes_common::{
    EventKind, FIELD_GLOBALS, FIELD_MISSING, LATENCY_BUCKETS, ProcessFilterConfig, SLOT_STACKS,
    SYSCALL_SLOTS, StackKey, TP_SLOTS, TracepointEvent,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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
    syscall_counts: PerCpuArray<MapData, u64>,
    latency: PerCpuArray<MapData, u64>,
    /// Generic tracepoint records lost, per CPU, by slot.
    tp_drops: PerCpuArray<MapData, u64>,
    /// Options of each generic slot.
    slot_options: Array<MapData, u32>,
    /// The in-kernel process filter.
    filter: Array<MapData, ProcessFilterConfig>,
    /// Stacks captured at tracepoints with stacks on (`SLOT_STACKS`).
    stacks: StackTraceMap<MapData>,
    /// Hits per (slot, process, stacks, comm).
    stack_counts: BpfHashMap<MapData, StackKey, u64>,
    /// Availability of each built-in probe, by wire key.
    availability: Vec<Availability>,
    /// Links of attached probes, by wire key: program name and link.
    attached: HashMap<u16, Vec<(String, TracePointLinkId)>>,
    /// What each generic slot traces: probe key and tracepoint format.
    slots: Vec<Option<(u16, Arc<Format>)>>,
    /// Records that did not decode (should stay 0).
    decode_errors: u64,
}

impl Tracer {
    /// Loads the object, sets tracepoint field offsets from `tracefs` and
    /// loads (but does not attach) every program the kernel can run.
    pub fn load(tracefs: Option<&Path>) -> Result<Self, LoadError> {
        // Offsets from the running kernel's format files.
        let mut formats: Formats = HashMap::new();
        let mut offsets: Vec<(&'static str, u32)> = Vec::new();
        for g in FIELD_GLOBALS {
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
            offsets.push((g.global, offset));
        }
        let mut loader = EbpfLoader::new();
        for (global, offset) in &offsets {
            loader.override_global(global, offset, true);
        }
        let mut ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|source| LoadError::Ebpf { source })?;

        let ring =
            RingBuf::try_from(take_map(&mut ebpf, "EVENTS")?).map_err(|source| LoadError::Map {
                name: "EVENTS",
                source,
            })?;
        let drops = per_cpu(&mut ebpf, "DROPS")?;
        let syscall_counts = per_cpu(&mut ebpf, "SYSCALL_COUNTS")?;
        let latency = per_cpu(&mut ebpf, "SYSCALL_LATENCY")?;
        let tp_drops = per_cpu(&mut ebpf, "TP_DROPS")?;
        let slot_options =
            Array::try_from(take_map(&mut ebpf, "TP_SLOT_OPTIONS")?).map_err(|source| {
                LoadError::Map {
                    name: "TP_SLOT_OPTIONS",
                    source,
                }
            })?;
        let filter =
            Array::try_from(take_map(&mut ebpf, "FILTER")?).map_err(|source| LoadError::Map {
                name: "FILTER",
                source,
            })?;
        let stacks = StackTraceMap::try_from(take_map(&mut ebpf, "STACKS")?).map_err(|source| {
            LoadError::Map {
                name: "STACKS",
                source,
            }
        })?;
        let stack_counts =
            BpfHashMap::try_from(take_map(&mut ebpf, "STACK_COUNTS")?).map_err(|source| {
                LoadError::Map {
                    name: "STACK_COUNTS",
                    source,
                }
            })?;

        let mut availability = Vec::with_capacity(PROBES.len());
        for probe in PROBES {
            let verdict =
                probe_availability(&mut ebpf, probe.attachments, tracefs, &formats, &offsets);
            availability.push(verdict);
        }
        Ok(Self {
            ebpf,
            ring,
            drops,
            syscall_counts,
            latency,
            tp_drops,
            slot_options,
            filter,
            stacks,
            stack_counts,
            availability,
            attached: HashMap::new(),
            slots: vec![None; TP_SLOTS as usize],
            decode_errors: 0,
        })
    }

    /// The loaded object, for capability checks.
    pub(crate) fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Availability of probe `key`.
    pub fn availability(&self, key: u16) -> Availability {
        self.availability
            .get(usize::from(key))
            .cloned()
            .unwrap_or_else(|| Availability::no("no such probe"))
    }

    /// Whether probe `key` is attached.
    pub fn is_attached(&self, key: u16) -> bool {
        self.attached.contains_key(&key)
    }

    /// Attaches every program of probe `key`. An error is a sentence for the user.
    pub fn attach(&mut self, key: u16) -> Result<(), String> {
        if self.is_attached(key) {
            return Ok(());
        }
        let probe = catalogue::probe(key).ok_or_else(|| format!("no probe with key {key}"))?;
        let availability = self.availability(key);
        if !availability.available {
            return Err(format!(
                "{} is not available here: {}",
                probe.id, availability.reason
            ));
        }
        let mut links = Vec::new();
        for a in probe.attachments {
            let result = tracepoint(&mut self.ebpf, a.program)
                .and_then(|tp| tp.attach(a.category, a.name).map_err(|e| e.to_string()));
            match result {
                Ok(link) => links.push((a.program.to_owned(), link)),
                Err(err) => {
                    self.detach_links(links);
                    return Err(format!(
                        "attaching {} to tracepoint {}:{} failed: {err}",
                        probe.id, a.category, a.name
                    ));
                }
            }
        }
        log::info!("attached {}", probe.id);
        self.attached.insert(key, links);
        Ok(())
    }

    /// Attaches a free slot's generic program to tracepoint `format.id` as
    /// probe `key`; with `stacks`, it also counts stacks. An error is a
    /// sentence for the user.
    pub fn attach_generic(
        &mut self,
        key: u16,
        format: Arc<Format>,
        stacks: bool,
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
        let options = if stacks { SLOT_STACKS } else { 0 };
        self.slot_options
            .set(slot as u32, options, 0)
            .map_err(|err| format!("could not set the options of {}: {err}", format.id))?;
        let (category, name) = format.id.split_once(':').unwrap_or((&format.id, ""));
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
            "attached tracepoint {} in slot {slot} (stacks: {stacks})",
            format.id
        );
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

    /// Writes the in-kernel process filter.
    pub fn set_filter(&mut self, filter: &ProcessFilterConfig) -> Result<(), String> {
        self.filter
            .set(0, filter, 0)
            .map_err(|err| format!("could not set the process filter: {err}"))
    }

    /// Detaches probe `key` if attached.
    pub fn detach(&mut self, key: u16) {
        if let Some(links) = self.attached.remove(&key) {
            self.detach_links(links);
            for slot in &mut self.slots {
                if slot.as_ref().is_some_and(|(k, _)| *k == key) {
                    *slot = None;
                }
            }
            log::info!("detached probe {key}");
        }
    }

    /// Detaches every probe; returns how many were attached.
    pub fn detach_all(&mut self) -> usize {
        let keys: Vec<u16> = self.attached.keys().copied().collect();
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
        while consumed < max {
            let Some(item) = self.ring.next() else { break };
            consumed += 1;
            let decoded = match crate::decode::record_kind(&item) {
                Ok(EventKind::Tracepoint) => decode_generic(&item, &self.slots),
                _ => decode_record(&item, catalogue::key_of_event),
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
        consumed
    }

    /// Kernel drops of every streamed probe (summed over CPUs).
    pub fn kernel_drops(&self) -> Vec<ProbeStats> {
        let mut stats: Vec<ProbeStats> = EventKind::ALL
            .iter()
            .filter(|kind| **kind != EventKind::Tracepoint)
            .map(|kind| ProbeStats {
                probe: catalogue::key_of_event(*kind),
                kernel_drops: sum_slot(&self.drops, *kind as u32),
                client_drops: 0,
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

    /// Reads the aggregates (cumulative since load).
    pub fn aggregates(&self, counts: bool, latency: bool, ts_ns: u64) -> Aggregates {
        let syscall_counts = if counts {
            (0..SYSCALL_SLOTS)
                .filter_map(|nr| {
                    let n = sum_slot(&self.syscall_counts, nr);
                    (n > 0).then_some((nr, n))
                })
                .collect()
        } else {
            Vec::new()
        };
        let latency_log2_ns = if latency {
            (0..LATENCY_BUCKETS)
                .map(|b| sum_slot(&self.latency, b))
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
    slots: &[Option<(u16, Arc<Format>)>],
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

fn sum_slot(map: &PerCpuArray<MapData, u64>, index: u32) -> u64 {
    map.get(&index, 0)
        .map(|values| values.iter().sum())
        .unwrap_or(0)
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::MissingMap(name))
}

fn per_cpu(ebpf: &mut Ebpf, name: &'static str) -> Result<PerCpuArray<MapData, u64>, LoadError> {
    PerCpuArray::try_from(take_map(ebpf, name)?).map_err(|source| LoadError::Map { name, source })
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
    attachments: &[catalogue::Attachment],
    tracefs: Option<&Path>,
    formats: &Formats,
    offsets: &[(&'static str, u32)],
) -> Availability {
    if tracefs.is_none() {
        return Availability::no(
            "tracefs is not mounted; run `sudo mount -t tracefs nodev /sys/kernel/tracing`",
        );
    }
    for a in attachments {
        if let Some(Err(reason)) = formats.get(&(a.category, a.name)) {
            return Availability::no(reason.clone());
        }
        // Tracepoints without offset globals (raw_syscalls:sys_exit) only need to exist.
        if !formats.contains_key(&(a.category, a.name))
            && let Some(root) = tracefs
            && let Err(reason) = tracefs::read_format(root, a.category, a.name)
        {
            return Availability::no(reason);
        }
        let missing: Vec<&str> = FIELD_GLOBALS
            .iter()
            .zip(offsets)
            .filter(|(g, (_, off))| {
                g.category == a.category && g.name == a.name && *off == FIELD_MISSING
            })
            .map(|(g, _)| g.field)
            .collect();
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
        let loaded = tracepoint(ebpf, a.program).and_then(|tp| match tp.load() {
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
fn verifier_verdict(log: &str) -> String {
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
    use super::verifier_verdict;

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
