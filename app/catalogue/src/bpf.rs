//! Probes that bring their own BPF object (`type = "bpf"`): which programs
//! to attach where, the `.rodata` knobs to set before loading, and how to
//! read the maps the programs fill.
//!
//! ```toml
//! # pack.toml
//! [[object]]
//! id = "exitsnoop"
//! file = "exitsnoop.bpf.o"
//!
//! # process.toml
//! [[probe]]
//! id = "exitsnoop:exits"
//! type = "bpf"
//! object = "exitsnoop"
//! subsystem = "process"
//! summary = "Every process exit, with its exit code and how long it lived."
//!
//! [[probe.attach]]
//! program = "sched_process_exit"
//! target = "tracepoint:sched:sched_process_exit"
//!
//! [probe.knobs]
//! trace_by_process = true
//!
//! [[probe.output]]
//! map = "events"
//! kind = "events"
//! fields = [
//!   { name = "pid", type = "u32", role = "tgid" },
//!   { name = "exit_code", type = "i32" },
//!   { name = "comm", type = "char[16]", role = "comm" },
//! ]
//! ```
//!
//! Everything here is checked without the object; the object itself is
//! checked against a probe by [`crate::object`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{CatalogueError, Location};

/// A BPF ELF object a pack ships (`[[object]]` in `pack.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDef {
    /// Id the pack's probes use in `object = "..."`.
    pub id: String,
    /// The file, relative to the pack's directory (no `..`, not absolute).
    pub file: String,
    /// Map sizes to write into the object before loading, as a libbpf
    /// tool's own loader sets them (`maps = { NAME = { value_size = N,
    /// max_entries = N } }`), by map name.
    pub map_sizes: BTreeMap<String, MapSizes>,
    /// Where it is declared.
    pub defined_at: Location,
}

/// Sizes of one map the manifest sets (see [`ObjectDef::map_sizes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSizes {
    /// Bytes per value.
    pub value_size: Option<u32>,
    /// Entries.
    pub max_entries: Option<u32>,
}

/// What a `bpf` probe loads, attaches and reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfProbe {
    /// [`ObjectDef::id`] of the object holding its programs.
    pub object: String,
    /// Programs to attach, all of them; each with alternatives.
    pub attach: Vec<AttachSlot>,
    /// `.rodata` globals to set before loading, in the order written.
    pub knobs: Vec<Knob>,
    /// Maps to read, and how.
    pub outputs: Vec<Output>,
    /// A longer explanation for learners (optional).
    pub explanation: Option<String>,
}

/// One program to attach: the first alternative the running kernel allows
/// wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachSlot {
    /// In the order of preference, at least one.
    pub choices: Vec<AttachChoice>,
    /// Where the slot is declared.
    pub defined_at: Location,
}

/// A program (by function name) and where it attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachChoice {
    /// The program's function name in the object.
    pub program: String,
    /// Where it attaches.
    pub point: AttachPoint,
}

/// Where a program attaches. aya discards the target part of a section name,
/// so the manifest names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachPoint {
    /// `tracepoint:category:name`.
    Tracepoint {
        /// e.g. `sched`.
        category: String,
        /// e.g. `sched_process_exit`.
        name: String,
    },
    /// `tp_btf:name`: a BTF-typed raw tracepoint.
    TpBtf(String),
    /// `raw_tp:name`.
    RawTp(String),
    /// `kprobe:function`.
    Kprobe(String),
    /// `kretprobe:function`.
    Kretprobe(String),
    /// `fentry:function`.
    Fentry(String),
    /// `fexit:function`.
    Fexit(String),
    /// `uprobe:path:symbol` or `uretprobe:path:symbol`.
    Uprobe {
        /// Absolute path or library name.
        binary: String,
        /// Function symbol.
        symbol: String,
        /// On return rather than entry.
        ret: bool,
    },
    /// `perf_event:cpu_clock:HZ`: sampling on every CPU.
    PerfEvent {
        /// Samples per second per CPU.
        hz: u32,
    },
}

impl AttachPoint {
    /// The program type a section must have to attach here, as the section
    /// prefix spells it (`tracepoint`, `tp_btf`, `kprobe`…).
    pub fn program_kind(&self) -> &'static str {
        match self {
            Self::Tracepoint { .. } => "tracepoint",
            Self::TpBtf(_) => "tp_btf",
            Self::RawTp(_) => "raw_tp",
            Self::Kprobe(_) => "kprobe",
            Self::Kretprobe(_) => "kretprobe",
            Self::Fentry(_) => "fentry",
            Self::Fexit(_) => "fexit",
            Self::Uprobe { ret: false, .. } => "uprobe",
            Self::Uprobe { ret: true, .. } => "uretprobe",
            Self::PerfEvent { .. } => "perf_event",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let form = "`tracepoint:CATEGORY:NAME`, `tp_btf:NAME`, `raw_tp:NAME`, `kprobe:FUNCTION`, \
                    `kretprobe:FUNCTION`, `fentry:FUNCTION`, `fexit:FUNCTION`, `uprobe:PATH:SYMBOL`, \
                    `uretprobe:PATH:SYMBOL` or `perf_event:cpu_clock:HZ`";
        let bad = || format!("`{text}` is not an attach target; write one of {form}");
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        let word = |s: &str| -> Result<String, String> {
            if is_symbol(s) {
                Ok(s.to_owned())
            } else {
                Err(bad())
            }
        };
        Ok(match kind {
            "tracepoint" => {
                let (category, name) = rest.split_once(':').ok_or_else(bad)?;
                Self::Tracepoint {
                    category: word(category)?,
                    name: word(name)?,
                }
            }
            "tp_btf" => Self::TpBtf(word(rest)?),
            "raw_tp" => Self::RawTp(word(rest)?),
            "kprobe" => Self::Kprobe(word(rest)?),
            "kretprobe" => Self::Kretprobe(word(rest)?),
            "fentry" => Self::Fentry(word(rest)?),
            "fexit" => Self::Fexit(word(rest)?),
            "uprobe" | "uretprobe" => {
                let (binary, symbol) = rest
                    .rsplit_once(':')
                    .filter(|(b, s)| !b.is_empty() && is_symbol(s))
                    .ok_or_else(bad)?;
                Self::Uprobe {
                    binary: binary.to_owned(),
                    symbol: symbol.to_owned(),
                    ret: kind == "uretprobe",
                }
            }
            "perf_event" => {
                let hz = rest
                    .strip_prefix("cpu_clock:")
                    .and_then(|hz| hz.parse::<u32>().ok())
                    .filter(|hz| (1..=1000).contains(hz))
                    .ok_or_else(|| {
                        format!("`{text}`: write `perf_event:cpu_clock:HZ` with HZ from 1 to 1000")
                    })?;
                Self::PerfEvent { hz }
            }
            _ => return Err(bad()),
        })
    }
}

impl fmt::Display for AttachPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tracepoint { category, name } => write!(f, "tracepoint:{category}:{name}"),
            Self::TpBtf(n) => write!(f, "tp_btf:{n}"),
            Self::RawTp(n) => write!(f, "raw_tp:{n}"),
            Self::Kprobe(n) => write!(f, "kprobe:{n}"),
            Self::Kretprobe(n) => write!(f, "kretprobe:{n}"),
            Self::Fentry(n) => write!(f, "fentry:{n}"),
            Self::Fexit(n) => write!(f, "fexit:{n}"),
            Self::Uprobe {
                binary,
                symbol,
                ret,
            } => write!(
                f,
                "{}:{binary}:{symbol}",
                if *ret { "uretprobe" } else { "uprobe" }
            ),
            Self::PerfEvent { hz } => write!(f, "perf_event:cpu_clock:{hz}"),
        }
    }
}

/// A `.rodata` global set before loading (`const volatile` in C).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Knob {
    /// The global's symbol name.
    pub name: String,
    /// Its value.
    pub value: KnobValue,
    /// Where it is set.
    pub defined_at: Location,
}

/// A knob's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnobValue {
    /// `true`/`false`, written as 1/0 in the global's size.
    Bool(bool),
    /// An integer, written little-endian in the global's size.
    Int(i64),
    /// `"process_filter.pid"`: the process id of the helper's process
    /// filter (0 when the filter names no process), so the program filters
    /// in the kernel as Microscope's own do. The probe is reloaded when the
    /// filter changes.
    FilterPid,
}

/// One map a probe's programs fill, and how to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The map's name in the object.
    pub map: String,
    /// What it holds.
    pub kind: OutputKind,
    /// Where it is declared.
    pub defined_at: Location,
}

/// What a map holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Records in a ring buffer or perf buffer, one event each.
    Events {
        /// The record's layout.
        record: Layout,
    },
    /// A hash or array map of counters: one row per key.
    Counters {
        /// The key's layout.
        key: Layout,
        /// The value's layout.
        value: Layout,
    },
    /// Log2 histograms: bucket `i` counts values in `[2^i, 2^(i+1))` of
    /// `unit` (bucket 0 also holds 0).
    Histogram {
        /// The key's layout; one histogram per distinct key (minus the
        /// bucket field, if the bucket is in the key).
        key: Layout,
        /// The value's layout.
        value: Layout,
        /// Where the buckets are.
        buckets: Buckets,
        /// Unit of the histogrammed values.
        unit: Unit,
    },
    /// Stack counts: a hash map (this output's `map`) whose key holds stack
    /// ids into a `BPF_MAP_TYPE_STACK_TRACE` map, and whose value counts
    /// hits or sums a time per stack. Shown in the flame graph and the
    /// paths view like the profiler's stacks.
    Stacks(StacksSpec),
}

/// How a `stacks` output reads its maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StacksSpec {
    /// The `BPF_MAP_TYPE_STACK_TRACE` map the ids point into.
    pub stack_map: String,
    /// The count map's key layout.
    pub key: Layout,
    /// The count map's value layout.
    pub value: Layout,
    /// The key field holding the kernel stack id (negative: none).
    pub kernel_stack: Option<String>,
    /// The key field holding the user stack id (negative: none).
    pub user_stack: Option<String>,
    /// The value field with the count or time.
    pub count: String,
    /// What `count` measures: `count` (hits) or a time unit (a time sum,
    /// as off-CPU tools keep).
    pub unit: Unit,
}

impl StacksSpec {
    /// The key field with `role`, if any.
    pub fn key_role(&self, role: Role) -> Option<&FieldSpec> {
        self.key.fields.iter().find(|f| f.role == Some(role))
    }
}

impl OutputKind {
    /// `events`, `counters`, `histogram` or `stacks`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Events { .. } => "events",
            Self::Counters { .. } => "counters",
            Self::Histogram { .. } => "histogram",
            Self::Stacks(_) => "stacks",
        }
    }
}

/// Where a histogram's buckets are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Buckets {
    /// A value field that is an array of counts, one per bucket (`slots`).
    Slots(String),
    /// A key field holding the bucket index; the value field `count` holds
    /// that bucket's count.
    InKey {
        /// The key field with the bucket index.
        bucket: String,
        /// The value field with the count.
        count: String,
    },
}

/// The layout of a record, key or value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Fields in order, with their offsets.
    pub fields: Vec<FieldSpec>,
    /// Size in bytes including trailing padding (C rules).
    pub size: u32,
}

impl Layout {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field of a record, key or value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// Name shown to people.
    pub name: String,
    /// Its C type.
    pub ty: FieldType,
    /// Byte offset in the record.
    pub offset: u32,
    /// How to show it.
    pub decode: Decode,
    /// What it says about the event, if anything.
    pub role: Option<Role>,
    /// What it means, for a person (may be empty).
    pub meaning: String,
}

/// A field's C type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// An integer of 1, 2, 4 or 8 bytes.
    Int {
        /// Size in bytes.
        bytes: u8,
        /// Signed.
        signed: bool,
    },
    /// `char[N]`: a C string of at most N bytes.
    Chars(u32),
    /// An array of integers (`u32[26]`), e.g. histogram slots.
    Array {
        /// Element size in bytes.
        bytes: u8,
        /// Elements signed.
        signed: bool,
        /// Number of elements.
        count: u32,
    },
}

impl FieldType {
    /// Size in bytes.
    pub fn size(self) -> u32 {
        match self {
            Self::Int { bytes, .. } => u32::from(bytes),
            Self::Chars(n) => n,
            Self::Array { bytes, count, .. } => u32::from(bytes) * count,
        }
    }

    /// Alignment in bytes (C rules on 64-bit targets).
    pub fn align(self) -> u32 {
        match self {
            Self::Int { bytes, .. } | Self::Array { bytes, .. } => u32::from(bytes),
            Self::Chars(_) => 1,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let int = |t: &str| -> Option<(u8, bool)> {
            Some(match t {
                "u8" | "__u8" | "unsigned char" => (1, false),
                "i8" | "s8" | "__s8" => (1, true),
                "u16" | "__u16" => (2, false),
                "i16" | "s16" | "__s16" => (2, true),
                "u32" | "__u32" | "unsigned int" | "pid_t_u" => (4, false),
                "i32" | "s32" | "__s32" | "int" | "pid_t" => (4, true),
                "u64" | "__u64" | "unsigned long" => (8, false),
                "i64" | "s64" | "__s64" | "long" => (8, true),
                _ => return None,
            })
        };
        if let Some((elem, rest)) = text.split_once('[') {
            let count: u32 = rest.strip_suffix(']')?.trim().parse().ok()?;
            if count == 0 || count > 65536 {
                return None;
            }
            let elem = elem.trim();
            if elem == "char" {
                return Some(Self::Chars(count));
            }
            let (bytes, signed) = int(elem)?;
            return Some(Self::Array {
                bytes,
                signed,
                count,
            });
        }
        let (bytes, signed) = int(text.trim())?;
        Some(Self::Int { bytes, signed })
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int =
            |bytes: u8, signed: bool| format!("{}{}", if signed { "i" } else { "u" }, bytes * 8);
        match *self {
            Self::Int { bytes, signed } => f.write_str(&int(bytes, signed)),
            Self::Chars(n) => write!(f, "char[{n}]"),
            Self::Array {
                bytes,
                signed,
                count,
            } => write!(f, "{}[{count}]", int(bytes, signed)),
        }
    }
}

/// What a field says about the event, beyond its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Thread id (the kernel's `pid`).
    Pid,
    /// Process id (the kernel's `tgid`).
    Tgid,
    /// Command name.
    Comm,
    /// Event time, ns of `CLOCK_MONOTONIC` (`bpf_ktime_get_ns`).
    Time,
    /// The CPU it happened on.
    Cpu,
}

/// How a field's value is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decode {
    /// The number (or string, for `char[N]`) as is.
    Plain,
    /// An errno: `2` or `-2` shows as `ENOENT`.
    Errno,
    /// A system call number of this machine's architecture → its name.
    Syscall,
    /// A signal number → `SIGTERM`.
    Signal,
    /// A kernel `dev_t` → `major:minor`.
    Dev,
    /// A kernel address → the symbol it falls in.
    Ksym,
    /// A duration in `unit`.
    Duration(Unit),
    /// A size in `unit`.
    Size(Unit),
    /// A fixed value map (`values = { 0 = "read", 1 = "write" }`); other
    /// values show as numbers.
    Values(BTreeMap<i64, String>),
    /// A `char[N]` holding several NUL-separated strings (an argument
    /// vector), shown separated by spaces.
    Strings,
}

impl Decode {
    /// The manifest spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Errno => "errno",
            Self::Syscall => "syscall",
            Self::Signal => "signal",
            Self::Dev => "dev",
            Self::Ksym => "ksym",
            Self::Duration(_) => "duration",
            Self::Size(_) => "size",
            Self::Values(_) => "values",
            Self::Strings => "strings",
        }
    }
}

/// A unit of time or size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// Bytes.
    Bytes,
    /// KiB.
    Kib,
    /// 512-byte sectors.
    Sectors,
    /// 4 KiB pages.
    Pages,
    /// Plain counts (histograms of sizes or counts without a unit).
    Count,
}

impl Unit {
    /// How people write it: `ns`, `µs`, `KiB`…
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Ns => "ns",
            Self::Us => "µs",
            Self::Ms => "ms",
            Self::S => "s",
            Self::Bytes => "B",
            Self::Kib => "KiB",
            Self::Sectors => "sectors",
            Self::Pages => "pages",
            Self::Count => "",
        }
    }

    /// Whether it measures time.
    pub fn is_time(self) -> bool {
        matches!(self, Self::Ns | Self::Us | Self::Ms | Self::S)
    }
}

// ---------------------------------------------------------------------------
// Manifest shape.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawObject {
    id: Spanned<String>,
    file: Spanned<String>,
    #[serde(default)]
    maps: Option<Spanned<BTreeMap<String, MapSizes>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAttachChoice {
    pub(crate) program: Spanned<String>,
    pub(crate) target: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawKnob {
    Bool(bool),
    Int(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutput {
    map: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    fields: Option<Vec<RawField>>,
    #[serde(default)]
    key: Option<Vec<RawField>>,
    #[serde(default)]
    value: Option<Vec<RawField>>,
    slots: Option<Spanned<String>>,
    bucket: Option<Spanned<String>>,
    count: Option<Spanned<String>>,
    unit: Option<Spanned<Unit>>,
    stack_map: Option<Spanned<String>>,
    kernel_stack: Option<Spanned<String>>,
    user_stack: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawField {
    name: Spanned<String>,
    #[serde(rename = "type")]
    ty: Spanned<String>,
    offset: Option<Spanned<u32>>,
    decode: Option<Spanned<String>>,
    unit: Option<Spanned<Unit>>,
    values: Option<Spanned<BTreeMap<String, String>>>,
    role: Option<Spanned<Role>>,
    #[serde(default)]
    meaning: String,
}

/// A place in one manifest file, for errors.
pub(crate) struct At<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
}

impl At<'_> {
    pub(crate) fn of<T>(&self, spanned: &Spanned<T>) -> Location {
        Location::at(self.file, self.text, spanned.span().start)
    }

    fn err<T>(&self, spanned: &Spanned<T>, problem: impl Into<String>) -> CatalogueError {
        CatalogueError::invalid(self.of(spanned), problem)
    }
}

impl RawObject {
    pub(crate) fn check(&self, at: &At<'_>) -> Result<ObjectDef, CatalogueError> {
        let id = self.id.get_ref().trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(at.err(
                &self.id,
                format!("the object id `{id}` may only use letters, digits, `_` and `-`"),
            ));
        }
        let file = self.file.get_ref().trim();
        if file.is_empty()
            || file.starts_with('/')
            || file.split('/').any(|part| part == ".." || part.is_empty())
        {
            return Err(at.err(
                &self.file,
                format!(
                    "the object file `{file}` of `{id}` must be a path inside the pack's directory, e.g. `{id}.bpf.o` (not absolute, no `..`)"
                ),
            ));
        }
        let map_sizes = match &self.maps {
            None => BTreeMap::new(),
            Some(maps) => {
                for (map, sizes) in maps.get_ref() {
                    if !is_symbol(map) {
                        return Err(
                            at.err(maps, format!("object `{id}`: `{map}` is not a map name"))
                        );
                    }
                    if sizes.value_size.is_none() && sizes.max_entries.is_none() {
                        return Err(at.err(maps, format!("object `{id}`: map `{map}` sets neither `value_size` nor `max_entries`")));
                    }
                    if sizes.value_size == Some(0) || sizes.max_entries == Some(0) {
                        return Err(at.err(
                            maps,
                            format!("object `{id}`: map `{map}` cannot have a size of 0"),
                        ));
                    }
                }
                maps.get_ref().clone()
            }
        };
        Ok(ObjectDef {
            id: id.to_owned(),
            file: file.to_owned(),
            map_sizes,
            defined_at: at.of(&self.id),
        })
    }
}

/// Reads one `[[probe.attach]]` of a `bpf` probe: the first choice and its
/// `fallback` list.
pub(crate) fn attach_slot(
    at: &At<'_>,
    probe: &str,
    first: (&Spanned<String>, &Spanned<String>),
    fallback: &[RawAttachChoice],
) -> Result<AttachSlot, CatalogueError> {
    let choice = |program: &Spanned<String>, target: &Spanned<String>| {
        let name = program.get_ref().trim();
        if !is_symbol(name) {
            return Err(at.err(
                program,
                format!(
                    "the program `{name}` of probe `{probe}` is not a function name of the object"
                ),
            ));
        }
        let point = AttachPoint::parse(target.get_ref().trim())
            .map_err(|why| at.err(target, format!("probe `{probe}`: {why}")))?;
        Ok(AttachChoice {
            program: name.to_owned(),
            point,
        })
    };
    let mut choices = vec![choice(first.0, first.1)?];
    for alt in fallback {
        choices.push(choice(&alt.program, &alt.target)?);
    }
    Ok(AttachSlot {
        choices,
        defined_at: at.of(first.0),
    })
}

/// Reads `[probe.knobs]`, in the order written.
pub(crate) fn knobs(
    at: &At<'_>,
    probe: &str,
    raw: &[(Spanned<String>, RawKnob)],
) -> Result<Vec<Knob>, CatalogueError> {
    raw.iter()
        .map(|(name, value)| {
            let value = match value {
                RawKnob::Bool(b) => KnobValue::Bool(*b),
                RawKnob::Int(i) => KnobValue::Int(*i),
                RawKnob::Text(t) if t == "process_filter.pid" => KnobValue::FilterPid,
                RawKnob::Text(t) => {
                    return Err(at.err(
                        name,
                        format!(
                            "knob `{}` of probe `{probe}` is set to \"{t}\"; a knob is `true`, `false`, an integer, or \"process_filter.pid\"",
                            name.get_ref()
                        ),
                    ));
                }
            };
            Ok(Knob {
                name: name.get_ref().clone(),
                value,
                defined_at: at.of(name),
            })
        })
        .collect()
}

impl RawOutput {
    pub(crate) fn check(&self, at: &At<'_>, probe: &str) -> Result<Output, CatalogueError> {
        let map = self.map.get_ref().trim().to_owned();
        if !is_symbol(&map) {
            return Err(at.err(
                &self.map,
                format!("probe `{probe}`: `{map}` is not a map name"),
            ));
        }
        let layout = |fields: &Option<Vec<RawField>>,
                      what: &str|
         -> Result<Layout, CatalogueError> {
            match fields {
                Some(fields) => layout(at, probe, &map, fields),
                None => Err(at.err(
                    &self.kind,
                    format!(
                        "output `{map}` of probe `{probe}` has no `{what}` list of fields (`{what} = [{{ name = \"...\", type = \"u32\" }}]`)"
                    ),
                )),
            }
        };
        let not_for = |spanned: Option<&Spanned<String>>, key: &str, kind: &str| {
            spanned.map_or(Ok(()), |s| {
                Err(at.err(
                    s,
                    format!(
                        "output `{map}` of probe `{probe}`: `{key}` does not apply to kind `{kind}`"
                    ),
                ))
            })
        };
        let kind = match self.kind.get_ref().as_str() {
            "events" => {
                not_for(self.slots.as_ref(), "slots", "events")?;
                not_for(self.bucket.as_ref(), "bucket", "events")?;
                if self.key.is_some() || self.value.is_some() {
                    return Err(at.err(&self.kind, format!("output `{map}` of probe `{probe}` holds events: describe the record with `fields`, not `key`/`value`")));
                }
                OutputKind::Events {
                    record: layout(&self.fields, "fields")?,
                }
            }
            "counters" => {
                not_for(self.slots.as_ref(), "slots", "counters")?;
                not_for(self.bucket.as_ref(), "bucket", "counters")?;
                self.no_fields(at, probe, &map)?;
                OutputKind::Counters {
                    key: layout(&self.key, "key")?,
                    value: layout(&self.value, "value")?,
                }
            }
            "histogram" => {
                self.no_fields(at, probe, &map)?;
                let key = layout(&self.key, "key")?;
                let value = layout(&self.value, "value")?;
                let buckets = match (&self.slots, &self.bucket) {
                    (Some(slots), None) => {
                        let name = slots.get_ref().trim();
                        match value.field(name).map(|f| f.ty) {
                            Some(FieldType::Array { .. }) => Buckets::Slots(name.to_owned()),
                            _ => return Err(at.err(slots, format!("output `{map}` of probe `{probe}`: `slots = \"{name}\"` must name a value field that is an integer array, e.g. `u32[26]`"))),
                        }
                    }
                    (None, Some(bucket)) => {
                        let name = bucket.get_ref().trim();
                        if !matches!(key.field(name).map(|f| f.ty), Some(FieldType::Int { .. })) {
                            return Err(at.err(bucket, format!("output `{map}` of probe `{probe}`: `bucket = \"{name}\"` must name an integer key field")));
                        }
                        let count = self.count.as_ref().map_or("count", |c| c.get_ref().as_str()).trim();
                        if !matches!(value.field(count).map(|f| f.ty), Some(FieldType::Int { .. })) {
                            return Err(at.err(self.count.as_ref().unwrap_or(bucket), format!("output `{map}` of probe `{probe}`: the bucket's count must be an integer value field named `{count}` (set `count = \"...\"`)")));
                        }
                        Buckets::InKey { bucket: name.to_owned(), count: count.to_owned() }
                    }
                    (Some(slots), Some(_)) => return Err(at.err(slots, format!("output `{map}` of probe `{probe}` has both `slots` and `bucket`: a histogram's buckets are either an array in the value or an index in the key"))),
                    (None, None) => return Err(at.err(&self.kind, format!("output `{map}` of probe `{probe}` is a histogram but says neither `slots = \"...\"` (an array of counts in the value) nor `bucket = \"...\"` (the bucket index in the key)"))),
                };
                OutputKind::Histogram {
                    key,
                    value,
                    buckets,
                    unit: self.unit.as_ref().map_or(Unit::Count, |u| *u.get_ref()),
                }
            }
            "stacks" => {
                not_for(self.slots.as_ref(), "slots", "stacks")?;
                not_for(self.bucket.as_ref(), "bucket", "stacks")?;
                self.no_fields(at, probe, &map)?;
                OutputKind::Stacks(self.stacks(
                    at,
                    probe,
                    &map,
                    layout(&self.key, "key")?,
                    layout(&self.value, "value")?,
                )?)
            }
            other => {
                return Err(at.err(
                    &self.kind,
                    format!("output `{map}` of probe `{probe}` has kind `{other}`; the kinds are `events`, `counters`, `histogram` and `stacks`"),
                ));
            }
        };
        if !matches!(kind, OutputKind::Stacks(_)) {
            for (key, spanned) in [
                ("stack_map", &self.stack_map),
                ("kernel_stack", &self.kernel_stack),
                ("user_stack", &self.user_stack),
            ] {
                not_for(spanned.as_ref(), key, kind.as_str())?;
            }
        }
        Ok(Output {
            map,
            kind,
            defined_at: at.of(&self.map),
        })
    }

    /// The `stacks` keys: the stack map, which key fields hold the stack
    /// ids, which value field the count, and its unit.
    fn stacks(
        &self,
        at: &At<'_>,
        probe: &str,
        map: &str,
        key: Layout,
        value: Layout,
    ) -> Result<StacksSpec, CatalogueError> {
        let Some(stack_map) = &self.stack_map else {
            return Err(at.err(&self.kind, format!("output `{map}` of probe `{probe}` holds stacks but names no `stack_map = \"...\"` (the BPF_MAP_TYPE_STACK_TRACE map its stack ids point into)")));
        };
        let stack_map_name = stack_map.get_ref().trim();
        if !is_symbol(stack_map_name) {
            return Err(at.err(
                stack_map,
                format!("probe `{probe}`: `{stack_map_name}` is not a map name"),
            ));
        }
        if stack_map_name == map {
            return Err(at.err(stack_map, format!("output `{map}` of probe `{probe}`: the stack map must be another map than the count map `{map}`")));
        }
        let id_field = |spanned: &Option<Spanned<String>>,
                        what: &str|
         -> Result<Option<String>, CatalogueError> {
            let Some(spanned) = spanned else {
                return Ok(None);
            };
            let name = spanned.get_ref().trim();
            match key.field(name).map(|f| f.ty) {
                Some(FieldType::Int { bytes: 4 | 8, .. }) => Ok(Some(name.to_owned())),
                Some(_) => Err(at.err(spanned, format!("output `{map}` of probe `{probe}`: `{what} = \"{name}\"` must name a 4- or 8-byte integer key field (a stack id as `bpf_get_stackid` returns it)"))),
                None => Err(at.err(spanned, format!("output `{map}` of probe `{probe}`: `{what} = \"{name}\"` is not a key field (the key has {})", field_names(&key)))),
            }
        };
        let kernel_stack = id_field(&self.kernel_stack, "kernel_stack")?;
        let user_stack = id_field(&self.user_stack, "user_stack")?;
        if kernel_stack.is_none() && user_stack.is_none() {
            return Err(at.err(&self.kind, format!("output `{map}` of probe `{probe}` holds stacks but says neither `kernel_stack = \"FIELD\"` nor `user_stack = \"FIELD\"` (the key fields with the stack ids)")));
        }
        if kernel_stack.is_some() && kernel_stack == user_stack {
            return Err(at.err(self.user_stack.as_ref().unwrap_or(&self.kind), format!("output `{map}` of probe `{probe}`: `kernel_stack` and `user_stack` name the same key field")));
        }
        let count = match &self.count {
            Some(count) => count.get_ref().trim().to_owned(),
            None if value.fields.len() == 1 => value.fields.first().map(|f| f.name.clone()).unwrap_or_default(),
            None => return Err(at.err(&self.kind, format!("output `{map}` of probe `{probe}` has {} value fields; say which holds the count or time with `count = \"FIELD\"`", value.fields.len()))),
        };
        if !matches!(
            value.field(&count).map(|f| f.ty),
            Some(FieldType::Int { .. })
        ) {
            return Err(at.err(self.count.as_ref().unwrap_or(&self.kind), format!("output `{map}` of probe `{probe}`: the stacks' count `{count}` must be an integer value field (the value has {})", field_names(&value))));
        }
        let unit = self.unit.as_ref().map_or(Unit::Count, |u| *u.get_ref());
        if !(unit.is_time() || unit == Unit::Count)
            && let Some(spanned) = &self.unit
        {
            return Err(at.err(spanned, format!("output `{map}` of probe `{probe}`: stacks count hits (`unit = \"count\"`, the default) or sum a time (`ns`, `us`, `ms`, `s`), not `{}`", unit.symbol())));
        }
        Ok(StacksSpec {
            stack_map: stack_map_name.to_owned(),
            key,
            value,
            kernel_stack,
            user_stack,
            count,
            unit,
        })
    }

    fn no_fields(&self, at: &At<'_>, probe: &str, map: &str) -> Result<(), CatalogueError> {
        if self.fields.is_some() {
            return Err(at.err(&self.kind, format!("output `{map}` of probe `{probe}` is a map of keys and values: describe it with `key` and `value`, not `fields`")));
        }
        Ok(())
    }
}

/// Lays the fields out by C rules (each at its natural alignment unless it
/// gives an `offset`), and checks names and decoders.
fn layout(at: &At<'_>, probe: &str, map: &str, raw: &[RawField]) -> Result<Layout, CatalogueError> {
    if raw.is_empty() {
        return Err(CatalogueError::invalid(
            Location::file(at.file),
            format!("output `{map}` of probe `{probe}` has an empty field list"),
        ));
    }
    let mut fields: Vec<FieldSpec> = Vec::with_capacity(raw.len());
    let (mut end, mut max_align) = (0u32, 1u32);
    for f in raw {
        let name = f.name.get_ref().trim().to_owned();
        if !is_symbol(&name) {
            return Err(at.err(
                &f.name,
                format!("output `{map}` of probe `{probe}`: `{name}` is not a field name"),
            ));
        }
        if fields.iter().any(|g| g.name == name) {
            return Err(at.err(
                &f.name,
                format!("output `{map}` of probe `{probe}` names the field `{name}` twice"),
            ));
        }
        let ty = FieldType::parse(f.ty.get_ref()).ok_or_else(|| {
            at.err(
                &f.ty,
                format!(
                    "field `{name}` of output `{map}`: `{}` is not a type; use u8, u16, u32, u64, i8, i16, i32, i64, char[N] or an integer array such as u32[26]",
                    f.ty.get_ref()
                ),
            )
        })?;
        let align = ty.align();
        let offset = match &f.offset {
            Some(offset) => *offset.get_ref(),
            None => end.div_ceil(align) * align,
        };
        if let Some(prev) = fields
            .iter()
            .find(|g| offset < g.offset + g.ty.size() && g.offset < offset + ty.size())
        {
            return Err(at.err(
                f.offset.as_ref().map_or(&f.name, |o| {
                    // Point at the offset when one was given.
                    let _ = o;
                    &f.name
                }),
                format!(
                    "field `{name}` of output `{map}` (bytes {offset}..{}) overlaps field `{}`",
                    offset + ty.size(),
                    prev.name
                ),
            ));
        }
        let decode = decode(at, f, &name, ty)?;
        let role = f.role.as_ref().map(|r| *r.get_ref());
        match (role, ty) {
            (Some(Role::Comm), FieldType::Chars(_)) | (None, _) => {}
            (Some(Role::Comm), _) => {
                return Err(at.err(
                    f.role.as_ref().map_or(&f.name, |_| &f.name),
                    format!(
                        "field `{name}` of output `{map}` has role `comm` but is not a `char[N]`"
                    ),
                ));
            }
            (Some(_), FieldType::Int { .. }) => {}
            (Some(role), _) => {
                return Err(at.err(
                    &f.name,
                    format!(
                        "field `{name}` of output `{map}` has role `{role:?}` but is not an integer"
                    ),
                ));
            }
        }
        end = end.max(offset + ty.size());
        max_align = max_align.max(align);
        fields.push(FieldSpec {
            name,
            ty,
            offset,
            decode,
            role,
            meaning: f.meaning.trim().to_owned(),
        });
    }
    Ok(Layout {
        fields,
        size: end.div_ceil(max_align) * max_align,
    })
}

fn decode(at: &At<'_>, f: &RawField, name: &str, ty: FieldType) -> Result<Decode, CatalogueError> {
    let unit = f.unit.as_ref().map(|u| *u.get_ref());
    let Some(spelled) = &f.decode else {
        if let Some(values) = &f.values {
            return Err(at.err(
                values,
                format!("field `{name}` has `values` but no `decode = \"values\"`"),
            ));
        }
        if let (Some(unit), Some(spanned)) = (unit, &f.unit) {
            return Err(at.err(spanned, format!("field `{name}` has a unit ({}) but no `decode = \"duration\"` or `decode = \"size\"`", unit.symbol())));
        }
        return Ok(Decode::Plain);
    };
    let numeric = matches!(ty, FieldType::Int { .. });
    let decode = match spelled.get_ref().as_str() {
        "plain" => Decode::Plain,
        "errno" => Decode::Errno,
        "syscall" => Decode::Syscall,
        "signal" => Decode::Signal,
        "dev" => Decode::Dev,
        "ksym" => Decode::Ksym,
        "strings" => {
            if !matches!(ty, FieldType::Chars(_)) {
                return Err(at.err(
                    spelled,
                    format!("field `{name}` is decoded as `strings` but is not a `char[N]`"),
                ));
            }
            return Ok(Decode::Strings);
        }
        "duration" | "size" => {
            let Some(unit) = unit else {
                return Err(at.err(
                    spelled,
                    format!(
                        "field `{name}` is decoded as a {} but has no `unit`",
                        spelled.get_ref()
                    ),
                ));
            };
            if spelled.get_ref() == "duration" {
                if !unit.is_time() {
                    return Err(at.err(
                        spelled,
                        format!(
                            "field `{name}` is a duration but its unit `{}` is not ns, us, ms or s",
                            unit.symbol()
                        ),
                    ));
                }
                Decode::Duration(unit)
            } else {
                if unit.is_time() {
                    return Err(at.err(spelled, format!("field `{name}` is a size but its unit is a time; use `decode = \"duration\"`")));
                }
                Decode::Size(unit)
            }
        }
        "values" => {
            let Some(values) = &f.values else {
                return Err(at.err(spelled, format!("field `{name}` is decoded by `values` but has no `values = {{ 0 = \"...\" }}` table")));
            };
            let mut map = BTreeMap::new();
            for (k, v) in values.get_ref() {
                let number: i64 = k.trim().parse().map_err(|_| {
                    at.err(
                        values,
                        format!("field `{name}`: the `values` key `{k}` is not an integer"),
                    )
                })?;
                map.insert(number, v.clone());
            }
            Decode::Values(map)
        }
        other => {
            return Err(at.err(
                spelled,
                format!("field `{name}` has `decode = \"{other}\"`; the decoders are plain, errno, syscall, signal, dev, ksym, duration, size, values and strings"),
            ));
        }
    };
    if !numeric && decode != Decode::Plain {
        return Err(at.err(
            spelled,
            format!(
                "field `{name}` is a `{ty}`; only integer fields take `decode = \"{}\"`",
                decode.as_str()
            ),
        ));
    }
    Ok(decode)
}

/// `a`, `b` and `c`: a layout's field names, for sentences.
fn field_names(layout: &Layout) -> String {
    let names: Vec<String> = layout
        .fields
        .iter()
        .map(|f| format!("`{}`", f.name))
        .collect();
    names.join(", ")
}

/// A C identifier (a symbol of the object or a kernel function), possibly
/// with compiler suffixes such as `.isra.0`.
fn is_symbol(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_points_parse_and_print_back() {
        for text in [
            "tracepoint:sched:sched_process_exit",
            "tp_btf:sched_switch",
            "raw_tp:sched_switch",
            "kprobe:do_sys_openat2",
            "kretprobe:vfs_read",
            "fentry:vfs_read",
            "fexit:vfs_read",
            "uprobe:/usr/bin/bash:readline",
            "uretprobe:libc.so.6:malloc",
            "perf_event:cpu_clock:99",
        ] {
            assert_eq!(AttachPoint::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "",
            "kprobe",
            "usdt:x:y",
            "tracepoint:sched",
            "perf_event:cpu_clock:0",
            "uprobe::x",
            "kprobe:1abc",
        ] {
            let err = AttachPoint::parse(bad).unwrap_err();
            assert!(
                err.contains("attach target") || err.contains("HZ"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn field_types_parse() {
        assert_eq!(
            FieldType::parse("u32"),
            Some(FieldType::Int {
                bytes: 4,
                signed: false
            })
        );
        assert_eq!(
            FieldType::parse("int"),
            Some(FieldType::Int {
                bytes: 4,
                signed: true
            })
        );
        assert_eq!(FieldType::parse("char[16]"), Some(FieldType::Chars(16)));
        assert_eq!(
            FieldType::parse("u32[26]"),
            Some(FieldType::Array {
                bytes: 4,
                signed: false,
                count: 26
            })
        );
        assert_eq!(FieldType::parse("u128"), None);
        assert_eq!(FieldType::parse("char[0]"), None);
        assert_eq!(FieldType::parse("float"), None);
    }
}
