//! `microscope export`: a recording as Perfetto (Chrome trace-event JSON),
//! CSV or folded lines.
//!
//! Each format is a pure function from the header and the frames (in file
//! order) to a writer, so tests need no files; [`run_export`] opens the
//! recording and the output file around them. Frames are streamed: memory
//! stays small however large the recording.
//!
//! # Perfetto
//!
//! A JSON object `{"traceEvents": [...], "displayTimeUnit": "ns"}` in the
//! Chrome trace-event format, which <https://ui.perfetto.dev> and
//! `chrome://tracing` open. Timestamps are µs of the kernel's
//! `CLOCK_MONOTONIC` (time since boot), as floats with ns precision.
//!
//! - **CPUs**: process 0, named "CPUs", one thread per CPU (`tid` = CPU
//!   number, named "CPU n"). Each `sched_switch` ends the slice of the task
//!   that was running and starts one for the next task: complete events
//!   (`ph: "X"`) named after the task's comm, with `args.pid` and
//!   `args.prev_state` (the state it left the CPU in; 0 = preempted while
//!   runnable). The idle task gets no slices, so idle time shows as gaps.
//!   A slice still running when the recording ends is closed at the last
//!   event timestamp.
//! - **Every other streamed event**: an instant event (`ph: "i"`, thread
//!   scope) on the thread that caused it (`pid` = tgid, `tid` = pid), named
//!   after the probe id, with the probe's fields and the CPU in `args`.
//!   Events of the idle task (pid 0) land on their CPU's track.
//! - **Aggregates**: counter events (`ph: "C"`) in process 0: syscalls per
//!   second (from `raw_syscalls:sys_enter`'s totals) and latency samples per
//!   second (from `syscalls:latency`).
//! - **Pack probes' maps**: counter events in process 0 as well: for each
//!   counter table, `<probe> <map> <column>/s` with one series per row (the
//!   rate of its first value column, e.g. syscount's calls per second per
//!   system call); for each histogram map, `<probe> <map> samples/s`.
//! - Metadata events (`ph: "M"`) name the processes and threads.
//!
//! # CSV
//!
//! One row per streamed event: `ts_ns,cpu,probe,pid,tgid,comm,fields`, with
//! a header row; `fields` is `key=value` pairs joined by `;`. Aggregates are
//! not rows (they are totals, not events).
//!
//! # Tables
//!
//! Pack probes' maps as CSV: `ts_ns,probe,map,kind,key,column,value,unit`,
//! one row per value of every reading (about every 250 ms while the probe
//! was on): `counter` rows per table row and value column, `histogram` rows
//! per bucket (`bucket_I` counts values in `[2^I, 2^(I+1))` of `unit`).
//! Values are cumulative since the helper loaded the probe; the helper's
//! maps count for all its clients (machine-wide).
//!
//! # Folded
//!
//! The input format of flame-graph tools such as inferno. A recording with
//! stack counts (a profile, or stacks at a tracepoint) gives its call
//! stacks, `comm;frame;…;frame value`, kernel frames marked `_[k]` as
//! `microscope profile` writes them: the on-CPU profile if there is one,
//! else the off-CPU one (values in µs), else the first probe with stacks.
//! A recording without stacks gives `comm;probe count` lines (events per
//! process name and probe).

use crate::cli::ExportArgs;
use crate::cli::ExportFormat;
use crate::failure::Failure;
use microscope_model::{Field, comm_frame, fields, sanitize_frame};
use microscope_wire::EventData;
use microscope_wire::ProbeKey;
use microscope_wire::{
    Aggregates, Event, HelperMessage, ProbeInfo, RecordedFrame, Recording, RecordingError,
    RecordingHeader,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The recording could not be opened.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The output exists and `--force` was not given.
    #[error(
        "{} already exists; choose another name or pass --force to overwrite it",
        path.display()
    )]
    OutputExists {
        /// The output path.
        path: PathBuf,
    },
    /// The output could not be created or written.
    #[error("could not write {}: {source}", path.display())]
    Output {
        /// The output path (`-` for stdout).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// What an export wrote.
#[derive(Debug, Default)]
pub struct ExportOutcome {
    /// Streamed events read from the recording.
    pub events: u64,
    /// Damage or a corrupted frame that cut the export short: a sentence.
    pub warning: Option<String>,
}

/// A field as a JSON value: numbers stay numbers.
fn json_value(field: &Field<'_>) -> Value {
    match field {
        Field::Unsigned(n) => json!(n),
        Field::Signed(n) => json!(n),
        Field::Text(s) | Field::Named(_, s) => json!(s),
        Field::Flag(b) => json!(b),
        Field::Bytes(_) => json!(field.to_string()),
    }
}

/// Probe ids and field names by key, with a stand-in for keys the catalogue
/// lacks. Probes created while recording arrive as
/// [`HelperMessage::ProbeAdded`] frames: [`ProbeNames::learn`] them.
struct ProbeNames(HashMap<ProbeKey, (String, Vec<String>)>);

impl ProbeNames {
    fn new(header: &RecordingHeader) -> Self {
        let mut names = Self(HashMap::new());
        for probe in &header.probes {
            names.add(probe);
        }
        names
    }

    fn add(&mut self, probe: &ProbeInfo) {
        let fields = probe.fields.iter().map(|f| f.name.clone()).collect();
        self.0.insert(probe.key, (probe.id.clone(), fields));
    }

    /// Takes note of probes a message introduces.
    fn learn(&mut self, message: &HelperMessage) {
        match message {
            HelperMessage::ProbeAdded(probe) => self.add(probe),
            HelperMessage::Probes(probes) => probes.iter().for_each(|probe| self.add(probe)),
            _ => {}
        }
    }

    fn name(&self, key: ProbeKey) -> String {
        self.0
            .get(&key)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| format!("probe#{key}"))
    }

    fn fields(&self, key: ProbeKey) -> &[String] {
        self.0.get(&key).map_or(&[], |(_, fields)| fields)
    }
}

/// µs of a ns timestamp, as trace-event JSON wants them.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The events of every batch, in file order, and the probe names learnt
/// from the frames read so far.
fn for_each_event(
    frames: impl IntoIterator<Item = RecordedFrame>,
    names: &mut ProbeNames,
    mut each: impl FnMut(&ProbeNames, Event) -> io::Result<()>,
) -> io::Result<()> {
    for frame in frames {
        names.learn(&frame.message);
        if let HelperMessage::Batch(batch) = frame.message {
            for event in batch.events {
                each(names, event)?;
            }
        }
    }
    Ok(())
}

/// Writes trace events separated by commas inside the `traceEvents` array.
struct TraceWriter<W> {
    out: W,
    first: bool,
}

impl<W: Write> TraceWriter<W> {
    fn begin(mut out: W) -> io::Result<Self> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        Ok(Self { out, first: true })
    }

    fn event(&mut self, event: &Value) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, event)?;
        Ok(())
    }

    fn end(mut self) -> io::Result<W> {
        self.out.write_all(b"\n],\"displayTimeUnit\":\"ns\"}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A task running on a CPU since `start_ns`.
struct RunningSlice {
    comm: String,
    pid: u32,
    start_ns: u64,
}

/// State of the Perfetto export across frames.
struct PerfettoState {
    names: ProbeNames,
    running: BTreeMap<u32, Option<RunningSlice>>,
    named_processes: HashSet<u32>,
    named_threads: HashSet<(u32, u32)>,
    last_ts_ns: u64,
    /// Previous `(ts_ns, syscalls, latency samples)` of the aggregates.
    last_aggregates: Option<(u64, u64, u64)>,
    /// Pack probes' previous readings, for their rates.
    packs: PackCounters,
}

/// Writes the recording as Chrome trace-event JSON; returns the events read.
pub fn export_perfetto(
    header: &RecordingHeader,
    frames: impl IntoIterator<Item = RecordedFrame>,
    out: impl Write,
) -> io::Result<u64> {
    let mut trace = TraceWriter::begin(out)?;
    trace.event(&json!({
        "ph": "M", "pid": 0, "name": "process_name", "args": {"name": "CPUs"},
    }))?;
    let mut state = PerfettoState {
        names: ProbeNames::new(header),
        running: BTreeMap::new(),
        named_processes: HashSet::from([0]),
        named_threads: HashSet::new(),
        last_ts_ns: 0,
        last_aggregates: None,
        packs: PackCounters::default(),
    };
    let mut events = 0;
    for frame in frames {
        state.names.learn(&frame.message);
        match frame.message {
            HelperMessage::Batch(batch) => {
                events += batch.events.len() as u64;
                for event in &batch.events {
                    state.event(&mut trace, event)?;
                }
            }
            HelperMessage::Aggregates(aggregates) => state.aggregates(&mut trace, &aggregates)?,
            HelperMessage::PackData(data) => state.packs.reading(&mut trace, &state.names, data)?,
            _ => {}
        }
    }
    // Tasks still on a CPU at the end run until the last event seen.
    let last_ts_ns = state.last_ts_ns;
    for (cpu, slice) in std::mem::take(&mut state.running) {
        if let Some(slice) = slice {
            state.slice(&mut trace, cpu, slice, last_ts_ns, None)?;
        }
    }
    trace.end()?;
    Ok(events)
}

impl PerfettoState {
    fn event(&mut self, trace: &mut TraceWriter<impl Write>, event: &Event) -> io::Result<()> {
        self.last_ts_ns = self.last_ts_ns.max(event.ts_ns);
        if let std::collections::btree_map::Entry::Vacant(entry) = self.running.entry(event.cpu) {
            entry.insert(None);
            trace.event(&json!({
                "ph": "M", "pid": 0, "tid": event.cpu, "name": "thread_name",
                "args": {"name": format!("CPU {}", event.cpu)},
            }))?;
            trace.event(&json!({
                "ph": "M", "pid": 0, "tid": event.cpu, "name": "thread_sort_index",
                "args": {"sort_index": event.cpu},
            }))?;
        }
        if let EventData::SchedSwitch {
            prev_state,
            next_pid,
            next_comm,
            ..
        } = &event.data
        {
            let next = (*next_pid != 0).then(|| RunningSlice {
                comm: next_comm.clone(),
                pid: *next_pid,
                start_ns: event.ts_ns,
            });
            let previous = self.running.insert(event.cpu, next).flatten();
            if let Some(slice) = previous {
                self.slice(trace, event.cpu, slice, event.ts_ns, Some(*prev_state))?;
            }
            return Ok(());
        }
        // The idle task's events belong to its CPU.
        let (pid, tid) = if event.tgid == 0 {
            (0, event.cpu)
        } else {
            (event.tgid, event.pid)
        };
        if pid != 0 {
            self.name_thread(trace, pid, tid, &event.comm)?;
        }
        let mut args = serde_json::Map::new();
        args.insert("cpu".into(), json!(event.cpu));
        for (key, value) in fields(&event.data, self.names.fields(event.probe)) {
            args.insert(key.into(), json_value(&value));
        }
        trace.event(&json!({
            "ph": "i", "s": "t", "name": self.names.name(event.probe),
            "ts": micros(event.ts_ns), "pid": pid, "tid": tid, "args": args,
        }))
    }

    fn slice(
        &mut self,
        trace: &mut TraceWriter<impl Write>,
        cpu: u32,
        slice: RunningSlice,
        end_ns: u64,
        prev_state: Option<u64>,
    ) -> io::Result<()> {
        let mut args = serde_json::Map::new();
        args.insert("pid".into(), json!(slice.pid));
        if let Some(prev_state) = prev_state {
            args.insert("prev_state".into(), json!(prev_state));
        }
        trace.event(&json!({
            "ph": "X", "name": slice.comm, "ts": micros(slice.start_ns),
            "dur": micros(end_ns.saturating_sub(slice.start_ns)),
            "pid": 0, "tid": cpu, "args": args,
        }))
    }

    fn name_thread(
        &mut self,
        trace: &mut TraceWriter<impl Write>,
        pid: u32,
        tid: u32,
        comm: &str,
    ) -> io::Result<()> {
        if self.named_processes.insert(pid) {
            trace.event(&json!({
                "ph": "M", "pid": pid, "name": "process_name", "args": {"name": comm},
            }))?;
        }
        if self.named_threads.insert((pid, tid)) {
            trace.event(&json!({
                "ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": comm},
            }))?;
        }
        Ok(())
    }

    fn aggregates(
        &mut self,
        trace: &mut TraceWriter<impl Write>,
        aggregates: &Aggregates,
    ) -> io::Result<()> {
        let syscalls: u64 = aggregates.syscall_counts.iter().map(|(_, n)| n).sum();
        let samples: u64 = aggregates.latency_log2_ns.iter().sum();
        let now = (aggregates.ts_ns, syscalls, samples);
        let Some((t0, s0, l0)) = self.last_aggregates.replace(now) else {
            return Ok(());
        };
        let seconds = aggregates.ts_ns.saturating_sub(t0) as f64 / 1e9;
        if seconds <= 0.0 {
            return Ok(());
        }
        let ts = micros(aggregates.ts_ns);
        // An empty field means that aggregate is off: no counter for it.
        if !aggregates.syscall_counts.is_empty() {
            trace.event(&json!({
                "ph": "C", "name": "syscalls/s", "ts": ts, "pid": 0,
                "args": {"syscalls": syscalls.saturating_sub(s0) as f64 / seconds},
            }))?;
        }
        if !aggregates.latency_log2_ns.is_empty() {
            trace.event(&json!({
                "ph": "C", "name": "latency samples/s", "ts": ts, "pid": 0,
                "args": {"samples": samples.saturating_sub(l0) as f64 / seconds},
            }))?;
        }
        Ok(())
    }
}

/// Writes one CSV row per streamed event; returns the rows written.
pub fn export_csv(
    header: &RecordingHeader,
    frames: impl IntoIterator<Item = RecordedFrame>,
    out: impl Write,
) -> io::Result<u64> {
    let mut names = ProbeNames::new(header);
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(["ts_ns", "cpu", "probe", "pid", "tgid", "comm", "fields"])?;
    let mut rows = 0;
    for_each_event(frames, &mut names, |names, event| {
        let fields = fields(&event.data, names.fields(event.probe))
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(";");
        writer.write_record([
            event.ts_ns.to_string(),
            event.cpu.to_string(),
            names.name(event.probe),
            event.pid.to_string(),
            event.tgid.to_string(),
            event.comm,
            fields,
        ])?;
        rows += 1;
        Ok(())
    })?;
    writer.flush()?;
    Ok(rows)
}

/// Writes `comm;probe count` lines, sorted; returns the events counted.
pub fn export_folded(
    header: &RecordingHeader,
    frames: impl IntoIterator<Item = RecordedFrame>,
    mut out: impl Write,
) -> io::Result<u64> {
    let mut names = ProbeNames::new(header);
    let mut counts: BTreeMap<(String, ProbeKey), u64> = BTreeMap::new();
    let mut total = 0;
    // Every stack batch, kept until we know which probe's stacks to write.
    let mut stacks: Vec<microscope_wire::StackBatch> = Vec::new();
    for frame in frames {
        names.learn(&frame.message);
        match frame.message {
            HelperMessage::Batch(batch) => {
                for event in batch.events {
                    *counts.entry((event.comm, event.probe)).or_default() += 1;
                    total += 1;
                }
            }
            HelperMessage::Stacks(batch) => stacks.push(batch),
            _ => {}
        }
    }
    let with_stacks: std::collections::BTreeSet<ProbeKey> = stacks
        .iter()
        .flat_map(|b| b.stacks.iter().map(|s| s.probe))
        .collect();
    let preferred = ["profile:cpu", "profile:offcpu"]
        .into_iter()
        .find_map(|id| {
            with_stacks
                .iter()
                .find(|key| names.name(**key) == id)
                .copied()
        })
        .or_else(|| with_stacks.first().copied());
    if let Some(probe) = preferred {
        // Time off the CPU, or a pack's time sums: ns, written as µs.
        let off_cpu = names.name(probe) == "profile:offcpu"
            || header
                .probes
                .iter()
                .any(|p| p.key == probe && p.kind == microscope_wire::ProbeKind::TimeStacks);
        let mut profile = microscope_model::FoldedProfile::new(probe, None, off_cpu);
        for batch in &stacks {
            profile.add_batch(batch, 0);
        }
        for line in profile.lines() {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        return Ok(profile.total());
    }
    for ((comm, probe), count) in counts {
        writeln!(
            out,
            "{};{} {count}",
            comm_frame(&comm),
            sanitize_frame(&names.name(probe))
        )?;
    }
    out.flush()?;
    Ok(total)
}

/// `microscope export`: says how many events went where (unless to
/// standard output) and warns about damage.
pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let outcome = run_export(&args.file, args.format, &args.output, args.force)
        .map_err(|err| Failure::new(&err, 1))?;
    if let Some(warning) = &outcome.warning {
        eprintln!("microscope: warning: {warning}");
    }
    if args.output != Path::new("-") {
        let what = match args.format {
            ExportFormat::Tables => "pack table rows",
            ExportFormat::Perfetto | ExportFormat::Csv | ExportFormat::Folded => "events",
        };
        eprintln!(
            "microscope: exported {} {what} to {}",
            outcome.events,
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the recording and `output` (`-` = stdout) and exports.
pub fn run_export(
    file: &Path,
    format: ExportFormat,
    output: &Path,
    force: bool,
) -> Result<ExportOutcome, ExportError> {
    let recording = Recording::open(file)?;
    let mut warning = recording
        .damage()
        .map(|damage| format!("{} is damaged: {damage}", file.display()));
    let output_error = |source| ExportError::Output {
        path: output.to_owned(),
        source,
    };
    let sink: Box<dyn Write> = if output == Path::new("-") {
        Box::new(io::stdout().lock())
    } else {
        Box::new(open_output(output, force)?)
    };
    let sink = BufWriter::with_capacity(1 << 20, sink);
    let mut corrupt = None;
    let frames = recording
        .frames()?
        .map_while(|frame| frame.map_err(|err| corrupt = Some(err.to_string())).ok());
    let header = recording.header();
    let events = match format {
        ExportFormat::Perfetto => export_perfetto(header, frames, sink),
        ExportFormat::Csv => export_csv(header, frames, sink),
        ExportFormat::Folded => export_folded(header, frames, sink),
        ExportFormat::Tables => export_tables(header, frames, sink),
    }
    .map_err(output_error)?;
    if let Some(corrupt) = corrupt {
        warning = Some(format!("the export stops early: {corrupt}"));
    }
    Ok(ExportOutcome { events, warning })
}

pub(crate) fn open_output(path: &Path, force: bool) -> Result<File, ExportError> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            ExportError::OutputExists {
                path: path.to_owned(),
            }
        } else {
            ExportError::Output {
                path: path.to_owned(),
                source,
            }
        }
    })
}

mod packs;
use packs::PackCounters;
pub use packs::export_tables;

#[cfg(test)]
mod tests;
