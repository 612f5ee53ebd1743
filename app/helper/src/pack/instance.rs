//! One enabled pack probe: its object loaded with its knobs, its programs
//! attached, its outputs open. Dropping it detaches everything (aya owns
//! the links and file descriptors).

use microscope_wire::ProbeKey;
use std::collections::HashMap;
use std::os::fd::AsFd as _;

use aya::maps::perf::{PerfEvent, PerfEventArray, PerfEventArrayBuffer};
use aya::maps::{Map, MapData, RingBuf, StackTraceMap};
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::programs::uprobe::UProbeScope;
use aya::programs::{
    BtfTracePoint, FEntry, FExit, KProbe, PerfEvent as PerfEventProgram, ProgramError,
    RawTracePoint, TracePoint, UProbe,
};
use aya::{Btf, Ebpf, EbpfLoader};
use microscope_catalogue::{
    AttachChoice, AttachPoint, Buckets, FieldType, KnobValue, Layout, OutputKind, Role,
};
use microscope_wire::{Event, EventData, FieldValue, PackData, PackHistogram, PackTable};

use super::stacks::StacksOutput;
use super::{PackProbe, decode, is_int, rawmap};

/// Most rows of one counter map sent per snapshot.
const MAX_ROWS: usize = 4096;
/// Most histograms of one map sent per snapshot.
const MAX_HISTOGRAMS: usize = 256;
/// Pages per CPU of a perf buffer (64 KiB with 4 KiB pages).
const PERF_PAGES: usize = 16;
/// The CO-RE poison aya writes for a relocation it cannot satisfy.
const CORE_POISON: &str = "unknown#195896080";

/// Why the kernel refused a probe: a sentence, and the whole verifier log
/// when there is one.
pub struct Refusal {
    pub verdict: String,
    pub log: Option<String>,
}

/// Loads the probe's object and its chosen programs (without attaching
/// them) to hear the verifier, then drops them.
pub fn trial_load(probe: &PackProbe, btf: Option<&Btf>) -> Result<(), Refusal> {
    let mut ebpf = load_object(probe, 0, btf).map_err(|verdict| Refusal { verdict, log: None })?;
    for choice in &probe.chosen {
        load_program(&mut ebpf, choice, btf).map_err(|err| refusal(probe, choice, &err))?;
    }
    Ok(())
}

fn refusal(probe: &PackProbe, choice: &AttachChoice, err: &ProgramError) -> Refusal {
    let whose = format!("pack `{}`, program `{}`", probe.def.pack, choice.program);
    match err {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let verdict = if log.contains(CORE_POISON) {
                format!(
                    "the verifier refused {whose}: a field or type it reads does not exist on this kernel \
                     (a CO-RE relocation could not be resolved); the pack must check for it with \
                     bpf_core_field_exists() or offer another program"
                )
            } else {
                format!(
                    "the verifier refused {whose} ({io_error}): {}; ask for the whole log with \
                     `microscope probes --verifier-log {}`",
                    crate::tracer::verifier_verdict(&log),
                    probe.def.id
                )
            };
            Refusal {
                verdict,
                log: Some(log),
            }
        }
        other => Refusal {
            verdict: format!("loading {whose} failed: {}", chain(other)),
            log: None,
        },
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// The object with the probe's knobs set.
fn load_object(probe: &PackProbe, filter_pid: u32, btf: Option<&Btf>) -> Result<Ebpf, String> {
    let knobs: Vec<(String, Vec<u8>)> = probe
        .bpf
        .knobs
        .iter()
        .map(|k| {
            let size = probe.knob_sizes.get(&k.name).copied().unwrap_or(8) as usize;
            let value: i64 = match k.value {
                KnobValue::Bool(b) => i64::from(b),
                KnobValue::Int(v) => v,
                KnobValue::FilterPid => i64::from(filter_pid),
            };
            (k.name.clone(), value.to_le_bytes()[..size.min(8)].to_vec())
        })
        .collect();
    let mut loader = EbpfLoader::new();
    loader.btf(btf);
    for (name, bytes) in &knobs {
        loader.override_global(name.as_str(), bytes.as_slice(), true);
    }
    loader.load(&probe.object).map_err(|err| {
        format!(
            "the kernel refused the object {} of pack `{}`: {}",
            probe.object_path.display(),
            probe.def.pack,
            chain(&err)
        )
    })
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, ProgramError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| ProgramError::UnexpectedProgramType)?;
    program.try_into()
}

/// Loads (verifies) one program for its chosen target.
fn load_program(
    ebpf: &mut Ebpf,
    choice: &AttachChoice,
    btf: Option<&Btf>,
) -> Result<(), ProgramError> {
    let name = choice.program.as_str();
    let no_btf = || ProgramError::UnexpectedProgramType;
    match &choice.point {
        AttachPoint::Tracepoint { .. } => program_mut::<TracePoint>(ebpf, name)?.load(),
        AttachPoint::TpBtf(tp) => {
            program_mut::<BtfTracePoint>(ebpf, name)?.load(tp, btf.ok_or_else(no_btf)?)
        }
        AttachPoint::RawTp(_) => program_mut::<RawTracePoint>(ebpf, name)?.load(),
        AttachPoint::Kprobe(_) | AttachPoint::Kretprobe(_) => {
            program_mut::<KProbe>(ebpf, name)?.load()
        }
        AttachPoint::Fentry(f) => {
            program_mut::<FEntry>(ebpf, name)?.load(f, btf.ok_or_else(no_btf)?)
        }
        AttachPoint::Fexit(f) => program_mut::<FExit>(ebpf, name)?.load(f, btf.ok_or_else(no_btf)?),
        AttachPoint::Uprobe { .. } => program_mut::<UProbe>(ebpf, name)?.load(),
        AttachPoint::PerfEvent { .. } => program_mut::<PerfEventProgram>(ebpf, name)?.load(),
    }
}

/// Attaches one loaded program.
fn attach_program(ebpf: &mut Ebpf, choice: &AttachChoice) -> Result<(), String> {
    let name = choice.program.as_str();
    let fail = |err: ProgramError| {
        format!(
            "attaching `{name}` to {} failed: {}",
            choice.point,
            chain(&err)
        )
    };
    match &choice.point {
        AttachPoint::Tracepoint { category, name: tp } => program_mut::<TracePoint>(ebpf, name)
            .map_err(fail)?
            .attach(category, tp)
            .map(drop)
            .map_err(fail),
        AttachPoint::TpBtf(_) => program_mut::<BtfTracePoint>(ebpf, name)
            .map_err(fail)?
            .attach()
            .map(drop)
            .map_err(fail),
        AttachPoint::RawTp(tp) => program_mut::<RawTracePoint>(ebpf, name)
            .map_err(fail)?
            .attach(tp)
            .map(drop)
            .map_err(fail),
        AttachPoint::Kprobe(f) | AttachPoint::Kretprobe(f) => program_mut::<KProbe>(ebpf, name)
            .map_err(fail)?
            .attach(f, 0)
            .map(drop)
            .map_err(fail),
        AttachPoint::Fentry(_) => program_mut::<FEntry>(ebpf, name)
            .map_err(fail)?
            .attach()
            .map(drop)
            .map_err(fail),
        AttachPoint::Fexit(_) => program_mut::<FExit>(ebpf, name)
            .map_err(fail)?
            .attach()
            .map(drop)
            .map_err(fail),
        AttachPoint::Uprobe { binary, symbol, .. } => {
            let binary = microscope_catalogue::targets::find_library(binary)?;
            program_mut::<UProbe>(ebpf, name)
                .map_err(fail)?
                .attach(symbol.as_str(), &binary, UProbeScope::AllProcesses)
                .map(drop)
                .map_err(fail)
        }
        AttachPoint::PerfEvent { hz } => {
            let cpus = aya::util::online_cpus().map_err(|(path, err)| {
                format!("could not read the online CPUs from {path}: {err}")
            })?;
            let program = program_mut::<PerfEventProgram>(ebpf, name).map_err(fail)?;
            for cpu in cpus {
                program
                    .attach(
                        PerfEventConfig::Software(SoftwareEvent::CpuClock),
                        PerfEventScope::AllProcessesOneCpu { cpu },
                        SamplePolicy::Frequency(u64::from(*hz)),
                        false,
                    )
                    .map_err(fail)?;
            }
            Ok(())
        }
    }
}

/// Where an events output's records come from.
enum EventSource {
    Ring(RingBuf<MapData>),
    Perf(Vec<(u32, PerfEventArrayBuffer<MapData>)>),
}

struct EventsOutput {
    layout: Layout,
    source: EventSource,
}

struct MapOutput {
    /// Index into the probe's outputs.
    output: usize,
    map: MapData,
    key_size: usize,
    value_size: usize,
    per_cpu: bool,
}

/// A running pack probe.
pub struct Instance {
    index: usize,
    key: ProbeKey,
    events: Vec<EventsOutput>,
    maps: Vec<MapOutput>,
    stacks: Vec<StacksOutput>,
    lost: u64,
    // Dropped last: detaches the programs.
    _ebpf: Ebpf,
}

impl Instance {
    /// Loads, attaches and opens probe `probe` as wire key `key`.
    pub fn start(
        probe: &PackProbe,
        key: ProbeKey,
        index: usize,
        filter_pid: u32,
        btf: Option<&Btf>,
    ) -> Result<Self, String> {
        let mut ebpf = load_object(probe, filter_pid, btf)?;
        for choice in &probe.chosen {
            load_program(&mut ebpf, choice, btf)
                .map_err(|err| refusal(probe, choice, &err).verdict)?;
            attach_program(&mut ebpf, choice)?;
        }
        let mut events = Vec::new();
        let mut maps = Vec::new();
        let mut stacks = Vec::new();
        for (i, output) in probe.bpf.outputs.iter().enumerate() {
            let Some(map) = ebpf.take_map(&output.map) else {
                return Err(format!(
                    "pack `{}`: the object has no map `{}`",
                    probe.def.pack, output.map
                ));
            };
            let open_error = |err: &dyn std::error::Error| {
                format!(
                    "pack `{}`: opening map `{}` failed: {}",
                    probe.def.pack,
                    output.map,
                    chain(err)
                )
            };
            match &output.kind {
                OutputKind::Events { record } => {
                    let source = match map {
                        Map::RingBuf(_) => {
                            EventSource::Ring(RingBuf::try_from(map).map_err(|e| open_error(&e))?)
                        }
                        Map::PerfEventArray(_) => {
                            let mut array =
                                PerfEventArray::try_from(map).map_err(|e| open_error(&e))?;
                            let cpus = aya::util::online_cpus().map_err(|(path, err)| {
                                format!("could not read the online CPUs from {path}: {err}")
                            })?;
                            let mut buffers = Vec::with_capacity(cpus.len());
                            for cpu in cpus {
                                buffers.push((
                                    cpu,
                                    array
                                        .open(cpu, Some(PERF_PAGES))
                                        .map_err(|e| open_error(&e))?,
                                ));
                            }
                            EventSource::Perf(buffers)
                        }
                        _ => {
                            return Err(format!(
                                "pack `{}`: map `{}` is neither a ring buffer nor a perf buffer",
                                probe.def.pack, output.map
                            ));
                        }
                    };
                    events.push(EventsOutput {
                        layout: record.clone(),
                        source,
                    });
                }
                OutputKind::Stacks(spec) => {
                    let (per_cpu, counts) = match map {
                        Map::HashMap(d) | Map::LruHashMap(d) => (false, d),
                        Map::PerCpuHashMap(d) | Map::PerCpuLruHashMap(d) => (true, d),
                        _ => {
                            return Err(format!(
                                "pack `{}`: map `{}` holds stack counts but is not a hash map",
                                probe.def.pack, output.map
                            ));
                        }
                    };
                    let Some(stack_map) = ebpf.take_map(&spec.stack_map) else {
                        return Err(format!(
                            "pack `{}`: the object has no map `{}` (or another output of the probe already reads it)",
                            probe.def.pack, spec.stack_map
                        ));
                    };
                    let stack_map = StackTraceMap::try_from(stack_map).map_err(|e| {
                        format!(
                            "pack `{}`: `{}` is not a stack map (BPF_MAP_TYPE_STACK_TRACE): {}",
                            probe.def.pack,
                            spec.stack_map,
                            chain(&e)
                        )
                    })?;
                    stacks.push(StacksOutput::new(
                        spec.clone(),
                        output.map.clone(),
                        counts,
                        stack_map,
                        per_cpu,
                    ));
                }
                OutputKind::Counters { key: k, value: v }
                | OutputKind::Histogram {
                    key: k, value: v, ..
                } => {
                    let (per_cpu, data) = match map {
                        Map::HashMap(d) | Map::Array(d) | Map::LruHashMap(d) => (false, d),
                        Map::PerCpuHashMap(d) | Map::PerCpuArray(d) | Map::PerCpuLruHashMap(d) => {
                            (true, d)
                        }
                        _ => {
                            return Err(format!(
                                "pack `{}`: map `{}` is not a hash or array map",
                                probe.def.pack, output.map
                            ));
                        }
                    };
                    let value_size = if per_cpu {
                        (v.size as usize).div_ceil(8) * 8 * rawmap::possible_cpus()
                    } else {
                        v.size as usize
                    };
                    maps.push(MapOutput {
                        output: i,
                        map: data,
                        key_size: k.size as usize,
                        value_size,
                        per_cpu,
                    });
                }
            }
        }
        log::info!("pack probe {} attached as probe {key}", probe.def.id);
        Ok(Self {
            index,
            key,
            events,
            maps,
            stacks,
            lost: 0,
            _ebpf: ebpf,
        })
    }

    /// Run-time statistics of its programs.
    pub fn program_runs(&self) -> Vec<crate::cost::ProgramRun> {
        crate::cost::program_runs(self._ebpf.programs(), |_| true)
    }

    /// Index of its probe in [`super::PackProbes`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether it streams events.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether it counts stacks.
    pub fn has_stacks(&self) -> bool {
        !self.stacks.is_empty()
    }

    /// What its stack counts grew by since the last call, as addresses.
    pub fn take_stacks(&mut self) -> Vec<crate::raw_stack::RawStack> {
        let key = self.key;
        self.stacks.iter_mut().flat_map(|s| s.take(key)).collect()
    }

    /// Records the kernel reported lost (perf buffers only: a full ring
    /// buffer is invisible to the reader).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Reads up to `max` records into `out`.
    pub fn drain(&mut self, _probe: &PackProbe, max: usize, out: &mut Vec<Event>) -> usize {
        let mut n = 0;
        let now = crate::profiler::monotonic_ns();
        let key = self.key;
        let mut lost = 0;
        for output in &mut self.events {
            match &mut output.source {
                EventSource::Ring(ring) => {
                    while n < max {
                        let Some(item) = ring.next() else { break };
                        out.push(event(key, &output.layout, &item, None, now));
                        n += 1;
                    }
                }
                EventSource::Perf(buffers) => {
                    for (cpu, buffer) in buffers.iter_mut() {
                        if !buffer.readable() {
                            continue;
                        }
                        let layout = &output.layout;
                        buffer.for_each(|sample| match sample {
                            PerfEvent::Sample { head, tail } => {
                                let bytes = if tail.is_empty() {
                                    std::borrow::Cow::Borrowed(head)
                                } else {
                                    std::borrow::Cow::Owned([head, tail].concat())
                                };
                                out.push(event(key, layout, &bytes, Some(*cpu), now));
                                n += 1;
                            }
                            PerfEvent::Lost { count } => lost += count,
                        });
                    }
                }
            }
        }
        self.lost += lost;
        n
    }

    /// A snapshot of its counter and histogram maps.
    pub fn read_maps(&self, probe: &PackProbe, ts_ns: u64) -> Option<PackData> {
        if self.maps.is_empty() {
            return None;
        }
        let mut data = PackData {
            probe: self.key,
            ts_ns,
            tables: Vec::new(),
            histograms: Vec::new(),
        };
        for m in &self.maps {
            let Some(output) = probe.bpf.outputs.get(m.output) else {
                continue;
            };
            let (entries, truncated) =
                match rawmap::entries(m.map.fd().as_fd(), m.key_size, m.value_size, MAX_ROWS) {
                    Ok(read) => read,
                    Err(err) => {
                        log::warn!(
                            "reading map {} of {} failed: {err}",
                            output.map,
                            probe.def.id
                        );
                        continue;
                    }
                };
            match &output.kind {
                OutputKind::Counters { key, value } => {
                    let mut table = PackTable {
                        map: output.map.clone(),
                        columns: key
                            .fields
                            .iter()
                            .chain(&value.fields)
                            .map(|f| f.name.clone())
                            .collect(),
                        key_columns: key.fields.len(),
                        rows: Vec::with_capacity(entries.len()),
                        truncated,
                    };
                    for (k, v) in &entries {
                        let v = merged_value(value, v, m.per_cpu);
                        let row = key
                            .fields
                            .iter()
                            .map(|f| decode::field(f, k))
                            .chain(value.fields.iter().map(|f| decode::field(f, &v)))
                            .collect();
                        table.rows.push(row);
                    }
                    data.tables.push(table);
                }
                OutputKind::Histogram {
                    key,
                    value,
                    buckets,
                    unit,
                } => {
                    let mut by_label: HashMap<String, Vec<u64>> = HashMap::new();
                    let mut order = Vec::new();
                    for (k, v) in &entries {
                        let v = merged_value(value, v, m.per_cpu);
                        let skip = match buckets {
                            Buckets::InKey { bucket, .. } => Some(bucket.as_str()),
                            Buckets::Slots(_) => None,
                        };
                        let label = label(key, k, value, &v, skip);
                        let counts = by_label.entry(label.clone()).or_insert_with(|| {
                            order.push(label.clone());
                            Vec::new()
                        });
                        match buckets {
                            Buckets::Slots(slots) => {
                                if let Some(spec) = value.field(slots) {
                                    let slots = decode::array(spec, &v);
                                    if counts.len() < slots.len() {
                                        counts.resize(slots.len(), 0);
                                    }
                                    for (c, s) in counts.iter_mut().zip(slots) {
                                        *c += s;
                                    }
                                }
                            }
                            Buckets::InKey { bucket, count } => {
                                let index = key.field(bucket).and_then(|f| int_of(f, k));
                                let n = value.field(count).and_then(|f| int_of(f, &v));
                                if let (Some(index), Some(n)) = (index, n)
                                    && (0..64).contains(&index)
                                {
                                    let index = index as usize;
                                    if counts.len() <= index {
                                        counts.resize(index + 1, 0);
                                    }
                                    counts[index] += n.max(0) as u64;
                                }
                            }
                        }
                    }
                    for label in order.into_iter().take(MAX_HISTOGRAMS) {
                        let buckets = by_label.remove(&label).unwrap_or_default();
                        data.histograms.push(PackHistogram {
                            map: output.map.clone(),
                            label,
                            unit: unit.symbol().to_owned(),
                            buckets,
                        });
                    }
                }
                OutputKind::Events { .. } | OutputKind::Stacks(_) => {}
            }
        }
        Some(data)
    }
}

fn int_of(spec: &microscope_catalogue::FieldSpec, bytes: &[u8]) -> Option<i64> {
    match spec.ty {
        FieldType::Int {
            bytes: size,
            signed,
        } => decode::int(bytes, spec.offset, size, signed),
        _ => None,
    }
}

/// A value as one CPU's layout: per-CPU copies summed (integers and
/// integer arrays), strings taken from the first CPU that has one.
pub(super) fn merged_value(layout: &Layout, raw: &[u8], per_cpu: bool) -> Vec<u8> {
    let size = layout.size as usize;
    if !per_cpu {
        return raw.to_vec();
    }
    let stride = size.div_ceil(8) * 8;
    let cpus: Vec<&[u8]> = raw
        .chunks(stride)
        .map(|c| &c[..size.min(c.len())])
        .collect();
    let mut merged = vec![0u8; size];
    for f in &layout.fields {
        let (elem, signed, count) = match f.ty {
            FieldType::Int { bytes, signed } => (bytes, signed, 1),
            FieldType::Array {
                bytes,
                signed,
                count,
            } => (bytes, signed, count),
            FieldType::Chars(n) => {
                let range = f.offset as usize..(f.offset + n) as usize;
                if let Some(src) = cpus.iter().find_map(|c| {
                    c.get(range.clone())
                        .filter(|s| s.first().is_some_and(|b| *b != 0))
                }) && let Some(dst) = merged.get_mut(range)
                {
                    dst.copy_from_slice(src);
                }
                continue;
            }
        };
        for i in 0..count {
            let offset = f.offset + i * u32::from(elem);
            let sum: i64 = cpus
                .iter()
                .filter_map(|c| decode::int(c, offset, elem, signed))
                .fold(0i64, i64::wrapping_add);
            let start = offset as usize;
            if let Some(dst) = merged.get_mut(start..start + usize::from(elem)) {
                dst.copy_from_slice(&sum.to_le_bytes()[..usize::from(elem)]);
            }
        }
    }
    merged
}

/// `name=value` of the key fields (but `skip`) and of the value's strings.
fn label(key: &Layout, k: &[u8], value: &Layout, v: &[u8], skip: Option<&str>) -> String {
    let mut parts: Vec<String> = key
        .fields
        .iter()
        .filter(|f| Some(f.name.as_str()) != skip)
        .map(|f| format!("{}={}", f.name, plain(&decode::field(f, k))))
        .collect();
    parts.extend(
        value
            .fields
            .iter()
            .filter(|f| matches!(f.ty, FieldType::Chars(_)))
            .map(|f| plain(&decode::field(f, v)))
            .filter(|s| !s.is_empty())
            .map(|s| format!("comm={s}")),
    );
    if parts.is_empty() {
        "all".to_owned()
    } else {
        parts.join(" ")
    }
}

fn plain(value: &FieldValue) -> String {
    match value {
        FieldValue::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One record → a wire event, the header filled from the fields with roles.
fn event(key: ProbeKey, layout: &Layout, bytes: &[u8], cpu: Option<u32>, now_ns: u64) -> Event {
    let values: Vec<FieldValue> = layout
        .fields
        .iter()
        .map(|f| decode::field(f, bytes))
        .collect();
    let mut event = Event {
        probe: key,
        cpu: cpu.unwrap_or(0),
        ts_ns: now_ns,
        pid: 0,
        tgid: 0,
        comm: String::new(),
        data: EventData::Fields(Vec::new()),
    };
    for (spec, value) in layout.fields.iter().zip(&values) {
        let Some(role) = spec.role else { continue };
        let number = if is_int(spec.ty) {
            decode::int(bytes, spec.offset, spec.ty.size() as u8, false).map(|v| v as u64)
        } else {
            None
        };
        match (role, number, value) {
            (Role::Pid, Some(n), _) => event.pid = n as u32,
            (Role::Tgid, Some(n), _) => event.tgid = n as u32,
            (Role::Time, Some(n), _) if n > 0 => event.ts_ns = n,
            (Role::Cpu, Some(n), _) => event.cpu = n as u32,
            (Role::Comm, _, FieldValue::Str(s)) => event.comm = s.clone(),
            _ => {}
        }
    }
    if event.pid == 0 {
        event.pid = event.tgid;
    }
    event.data = EventData::Fields(values);
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_catalogue::{Decode, FieldSpec};

    fn f(name: &str, ty: FieldType, offset: u32, role: Option<Role>) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty,
            offset,
            decode: Decode::Plain,
            role,
            meaning: String::new(),
        }
    }

    #[test]
    fn per_cpu_values_are_summed_and_strings_kept() {
        let layout = Layout {
            fields: vec![
                f(
                    "count",
                    FieldType::Int {
                        bytes: 8,
                        signed: false,
                    },
                    0,
                    None,
                ),
                f("comm", FieldType::Chars(4), 8, None),
            ],
            size: 16,
        };
        let mut raw = Vec::new();
        raw.extend(3u64.to_le_bytes());
        raw.extend([0u8; 8]);
        raw.extend(4u64.to_le_bytes());
        raw.extend(*b"sh\0\0\0\0\0\0");
        let merged = merged_value(&layout, &raw, true);
        assert_eq!(decode::int(&merged, 0, 8, false), Some(7));
        assert_eq!(&merged[8..10], b"sh");
    }

    #[test]
    fn roles_fill_the_event_header() {
        let layout = Layout {
            fields: vec![
                f(
                    "pid",
                    FieldType::Int {
                        bytes: 4,
                        signed: false,
                    },
                    0,
                    Some(Role::Tgid),
                ),
                f("comm", FieldType::Chars(8), 4, Some(Role::Comm)),
            ],
            size: 12,
        };
        let mut bytes = 42u32.to_le_bytes().to_vec();
        bytes.extend(*b"true\0\0\0\0");
        let e = event(3, &layout, &bytes, Some(1), 99);
        assert_eq!(
            (e.probe, e.cpu, e.ts_ns, e.tgid, e.pid, e.comm.as_str()),
            (3, 1, 99, 42, 42, "true")
        );
        assert_eq!(
            e.data,
            EventData::Fields(vec![FieldValue::Uint(42), FieldValue::Str("true".into())])
        );
    }

    #[test]
    fn labels_name_the_key() {
        let key = Layout {
            fields: vec![f(
                "tid",
                FieldType::Int {
                    bytes: 4,
                    signed: false,
                },
                0,
                None,
            )],
            size: 4,
        };
        let value = Layout {
            fields: vec![f("comm", FieldType::Chars(4), 0, None)],
            size: 4,
        };
        assert_eq!(
            label(&key, &7u32.to_le_bytes(), &value, b"sh\0\0", None),
            "tid=7 comm=sh"
        );
        assert_eq!(
            label(&key, &7u32.to_le_bytes(), &value, b"\0\0\0\0", Some("tid")),
            "all"
        );
    }
}
