//! A pack's BPF object, read before anything is loaded: what it holds, and
//! whether aya 0.14 and Microscope can load it at all.
//!
//! Two readers, each for what it does best: the `object` crate sees every
//! section and symbol as the ELF file has them (section names with their
//! targets, undefined `extern` symbols, `.rodata` globals and their sizes);
//! `aya-obj` (the parser aya itself runs at load time, same version) says
//! whether aya will accept the object and what its maps look like after BTF
//! map definitions are resolved. Every refusal is a sentence naming the
//! program, map or symbol, and why.

use std::collections::BTreeMap;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SectionKind};

use crate::bpf::{AttachPoint, BpfProbe, Buckets, FieldType, KnobValue, OutputKind};

/// `e_machine` of BPF objects.
const EM_BPF: u16 = 247;

/// Map types, as the kernel numbers them (`enum bpf_map_type`).
mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const CGROUP_ARRAY: u32 = 8;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const RINGBUF: u32 = 27;
    pub const BLOOM_FILTER: u32 = 30;
}

/// What an object holds, once it passed [`inspect`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Programs by function name: the program type (section prefix, e.g.
    /// `tracepoint`) and the whole section name.
    pub programs: BTreeMap<String, ProgramInfo>,
    /// Maps by name (data sections such as `.rodata` included).
    pub maps: BTreeMap<String, MapInfo>,
    /// `.rodata` globals (knobs) by name: their size in bytes.
    pub rodata: BTreeMap<String, u64>,
}

/// One program of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Program type as the section prefix spells it, normalised
    /// (`tp` → `tracepoint`, `raw_tracepoint` → `raw_tp`, `uprobe.s` → `uprobe`).
    pub kind: String,
    /// The section, e.g. `tracepoint/sched/sched_process_exit`.
    pub section: String,
}

/// One map of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Entries.
    pub max_entries: u32,
}

impl MapInfo {
    /// Whether each CPU has its own copy of a value.
    pub fn per_cpu(self) -> bool {
        matches!(
            self.map_type,
            map_type::PERCPU_HASH | map_type::PERCPU_ARRAY | map_type::LRU_PERCPU_HASH
        )
    }

    /// Whether it is an array (keys are `u32` indices, every slot exists).
    pub fn is_array(self) -> bool {
        matches!(self.map_type, map_type::ARRAY | map_type::PERCPU_ARRAY)
    }

    /// Whether it is a ring buffer (else, for event outputs, a perf buffer).
    pub fn is_ring_buffer(self) -> bool {
        self.map_type == map_type::RINGBUF
    }
}

/// Section prefixes aya 0.14 refuses, and what to do instead.
const REFUSED_SECTIONS: &[(&str, &str)] = &[
    (
        "usdt",
        "aya 0.14 cannot attach USDT probes; use a `uprobe` on the function instead",
    ),
    (
        "ksyscall",
        "aya 0.14 has no `ksyscall` programs; use `tracepoint/syscalls/sys_enter_NAME` or a `kprobe` on `__x64_sys_NAME`",
    ),
    (
        "kretsyscall",
        "aya 0.14 has no `kretsyscall` programs; use `tracepoint/syscalls/sys_exit_NAME`",
    ),
    (
        "kprobe.multi",
        "aya 0.14 cannot load multi-kprobes; use one `kprobe` program per function",
    ),
    (
        "kretprobe.multi",
        "aya 0.14 cannot load multi-kprobes; use one `kretprobe` program per function",
    ),
    (
        "uprobe.multi",
        "aya 0.14 cannot load multi-uprobes; use one `uprobe` program per function",
    ),
    (
        "uretprobe.multi",
        "aya 0.14 cannot load multi-uprobes; use one `uretprobe` program per function",
    ),
    (
        "fmod_ret",
        "aya 0.14 cannot load `fmod_ret` programs, and a pack may not change what kernel functions return",
    ),
    (
        "tc",
        "`tc` programs change network traffic; a pack may only trace",
    ),
    (
        "tcx",
        "`tcx` programs change network traffic; a pack may only trace",
    ),
    (
        "struct_ops",
        "`struct_ops` programs replace kernel code; a pack may only trace",
    ),
];

/// Program types a pack may use, by section prefix, normalised.
fn tracing_kind(prefix: &str) -> Option<&'static str> {
    Some(match prefix {
        "tracepoint" | "tp" => "tracepoint",
        "tp_btf" => "tp_btf",
        "raw_tp" | "raw_tracepoint" => "raw_tp",
        "kprobe" => "kprobe",
        "kretprobe" => "kretprobe",
        "fentry" | "fentry.s" => "fentry",
        "fexit" | "fexit.s" => "fexit",
        "uprobe" | "uprobe.s" => "uprobe",
        "uretprobe" | "uretprobe.s" => "uretprobe",
        "perf_event" => "perf_event",
        _ => return None,
    })
}

/// `bytes` with the map sizes `def` sets written in (see
/// [`ObjectDef::map_sizes`]): what the helper loads and `check-pack`
/// inspects. A sentence per map it could not set.
pub fn prepare(def: &crate::ObjectDef, bytes: Vec<u8>) -> Result<Vec<u8>, Vec<String>> {
    let mut bytes = bytes;
    let mut problems = Vec::new();
    for (map, sizes) in &def.map_sizes {
        match crate::btf_patch::set_map_sizes(&bytes, map, sizes.value_size, sizes.max_entries) {
            Ok(patched) => bytes = patched,
            Err(why) => problems.push(format!(
                "{}: cannot set the sizes of map `{map}` given in its `[[object]]`: {why}",
                def.file
            )),
        }
    }
    if problems.is_empty() {
        Ok(bytes)
    } else {
        Err(problems)
    }
}

/// Reads `bytes` (a BPF ELF object) and refuses what cannot be loaded
/// safely: a sentence per problem, naming `object` (a file name) and the
/// program, map or symbol at fault.
pub fn inspect(object: &str, bytes: &[u8]) -> Result<ObjectInfo, Vec<String>> {
    let elf = match object::File::parse(bytes) {
        Ok(elf) => elf,
        Err(err) => {
            return Err(vec![format!(
                "{object} is not an ELF object ({err}); build it with `clang -target bpf -c` or `cargo build` for bpfel-unknown-none"
            )]);
        }
    };
    let machine = match &elf {
        object::File::Elf64(e) => e.elf_header().e_machine.get(e.endian()),
        _ => 0,
    };
    if machine != EM_BPF {
        return Err(vec![format!(
            "{object} is not a BPF object (ELF machine {machine}, not 247 = BPF); build it with `clang -target bpf`"
        )]);
    }
    let mut problems = Vec::new();
    let mut info = ObjectInfo::default();
    for section in elf.sections() {
        let Ok(name) = section.name() else { continue };
        if name == ".kconfig" || name == ".ksyms" {
            problems.push(format!(
                "{object} has a `{name}` section (`__kconfig`/`__ksym` externs), which aya 0.14 cannot load; read the value another way (a knob, or BPF_CORE_READ)"
            ));
            continue;
        }
        if section.kind() != SectionKind::Text || name.starts_with('.') {
            continue;
        }
        let prefix = name.split('/').next().unwrap_or(name);
        if let Some((_, why)) = REFUSED_SECTIONS.iter().find(|(p, _)| *p == prefix) {
            problems.push(format!("{object}: section `{name}`: {why}"));
        } else if tracing_kind(prefix).is_none() {
            problems.push(format!(
                "{object}: section `{name}` holds a `{prefix}` program; a pack may only hold tracing programs (tracepoint, tp_btf, raw_tp, kprobe, kretprobe, fentry, fexit, uprobe, uretprobe, perf_event)"
            ));
        }
    }
    for symbol in elf.symbols() {
        let Ok(name) = symbol.name() else { continue };
        if symbol.is_undefined() && symbol.is_global() && !name.is_empty() {
            problems.push(format!(
                "{object} uses the extern `{name}` (a `__kconfig` or `__ksym` variable, resolved through .kconfig/.ksyms), which aya 0.14 cannot load; remove it, or pass the value as a knob"
            ));
        }
        let in_section = |wanted: &str| {
            symbol
                .section_index()
                .and_then(|i| elf.section_by_index(i).ok())
                .and_then(|s| {
                    s.name()
                        .ok()
                        .map(|n| n == wanted || n.starts_with(&format!("{wanted}.")))
                })
                .unwrap_or(false)
        };
        if symbol.kind() == object::SymbolKind::Data && in_section(".rodata") && symbol.size() > 0 {
            info.rodata.insert(name.to_owned(), symbol.size());
        }
        if symbol.kind() == object::SymbolKind::Text
            && symbol.is_global()
            && let Some(section) = symbol
                .section_index()
                .and_then(|i| elf.section_by_index(i).ok())
            && let Ok(section_name) = section.name()
            && let Some(kind) = tracing_kind(section_name.split('/').next().unwrap_or(section_name))
        {
            info.programs.insert(
                name.to_owned(),
                ProgramInfo {
                    kind: kind.to_owned(),
                    section: section_name.to_owned(),
                },
            );
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let parsed = match aya_obj::Object::parse(bytes) {
        Ok(parsed) => parsed,
        Err(err) => {
            let mut message = format!("aya cannot read {object}: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            return Err(vec![message]);
        }
    };
    for (name, map) in &parsed.maps {
        if name.starts_with('.') {
            continue;
        }
        let map_info = MapInfo {
            map_type: map.map_type(),
            key_size: map.key_size(),
            value_size: map.value_size(),
            max_entries: map.max_entries(),
        };
        if map.pinning() != aya_obj::maps::PinningType::None {
            problems.push(format!(
                "{object}: map `{name}` is pinned (LIBBPF_PIN_BY_NAME); aya would reuse whatever is pinned at that path without checking it, so packs may not pin maps: remove `__uint(pinning, ...)`"
            ));
        }
        if map_info.map_type == map_type::STACK_TRACE && map_info.value_size == 0 {
            problems.push(format!(
                "{object}: stack map `{name}` declares no value size, which aya 0.14 cannot create; add `__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64))`, or, for an object you cannot change, set it in its `[[object]]`: `maps = {{ {name} = {{ value_size = 1016, max_entries = 16384 }} }}`"
            ));
        } else if map_info.map_type == map_type::STACK_TRACE && map_info.max_entries == 0 {
            problems.push(format!(
                "{object}: stack map `{name}` declares no size (`max_entries`); add `__uint(max_entries, 16384)`, or set it in its `[[object]]`: `maps = {{ {name} = {{ max_entries = 16384 }} }}`"
            ));
        }
        if !matches!(
            map_info.map_type,
            map_type::HASH
                | map_type::ARRAY
                | map_type::PERF_EVENT_ARRAY
                | map_type::PERCPU_HASH
                | map_type::PERCPU_ARRAY
                | map_type::STACK_TRACE
                | map_type::CGROUP_ARRAY
                | map_type::LRU_HASH
                | map_type::LRU_PERCPU_HASH
                | map_type::QUEUE
                | map_type::STACK
                | map_type::RINGBUF
                | map_type::BLOOM_FILTER
        ) {
            problems.push(format!(
                "{object}: map `{name}` has type {} ({}), which packs cannot use; use hash, array, per-CPU, LRU, ring buffer, perf buffer or stack maps",
                map_info.map_type,
                map_type_name(map_info.map_type)
            ));
        }
        info.maps.insert(name.clone(), map_info);
    }
    if problems.is_empty() {
        Ok(info)
    } else {
        Err(problems)
    }
}

/// The kernel's name of a map type, for messages.
fn map_type_name(map_type: u32) -> &'static str {
    match map_type {
        map_type::HASH => "hash",
        map_type::ARRAY => "array",
        map_type::PERF_EVENT_ARRAY => "perf_event_array",
        map_type::PERCPU_HASH => "percpu_hash",
        map_type::PERCPU_ARRAY => "percpu_array",
        map_type::STACK_TRACE => "stack_trace",
        map_type::LRU_HASH => "lru_hash",
        map_type::LRU_PERCPU_HASH => "lru_percpu_hash",
        map_type::RINGBUF => "ringbuf",
        3 => "prog_array: tail calls",
        12 => "array_of_maps",
        13 => "hash_of_maps",
        14 => "devmap",
        15 => "sockmap",
        16 => "cpumap",
        17 => "xskmap",
        18 => "sockhash",
        19 | 21 => "cgroup_storage",
        20 => "reuseport_sockarray",
        24 => "sk_storage",
        25 => "devmap_hash",
        26 => "struct_ops",
        28 => "inode_storage",
        29 => "task_storage",
        31 => "user_ringbuf",
        32 => "cgrp_storage",
        33 => "arena",
        _ => "unknown",
    }
}

/// Checks a `bpf` probe against its object: every program exists with the
/// type its target needs, every knob is a `.rodata` global of a size a
/// value can be written in, every output map exists with the type and sizes
/// the manifest's layout says. A sentence per problem, naming `pack`, the
/// probe, and the program, knob or map.
pub fn check_probe(pack: &str, probe_id: &str, probe: &BpfProbe, info: &ObjectInfo) -> Vec<String> {
    let mut problems = Vec::new();
    let whose = format!("pack `{pack}`, probe `{probe_id}`");
    for slot in &probe.attach {
        for choice in &slot.choices {
            match info.programs.get(&choice.program) {
                None => problems.push(format!(
                    "{whose}: the object `{}` has no program `{}` (it has {})",
                    probe.object,
                    choice.program,
                    list(info.programs.keys())
                )),
                Some(program) if program.kind != choice.point.program_kind() => {
                    problems.push(format!(
                        "{whose}: program `{}` is a `{}` program (section `{}`) and cannot attach to `{}`; use a `{}:` target or a `SEC(\"{}/...\")` program",
                        choice.program,
                        program.kind,
                        program.section,
                        choice.point,
                        program.kind,
                        choice.point.program_kind()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    for knob in &probe.knobs {
        match info.rodata.get(&knob.name) {
            None => problems.push(format!(
                "{whose}: knob `{}` is not a `const volatile` global in the object's .rodata (it has {})",
                knob.name,
                list(info.rodata.keys())
            )),
            Some(size) if ![1, 2, 4, 8].contains(size) => problems.push(format!(
                "{whose}: knob `{}` is {size} bytes; only globals of 1, 2, 4 or 8 bytes can be set",
                knob.name
            )),
            Some(size) => {
                if let KnobValue::Int(v) = knob.value
                    && !fits(v, *size)
                {
                    problems.push(format!(
                        "{whose}: knob `{}` is {size} bytes and cannot hold {v}",
                        knob.name
                    ));
                }
            }
        }
    }
    for output in &probe.outputs {
        let Some(map) = info.maps.get(&output.map) else {
            problems.push(format!(
                "{whose}: the object has no map `{}` (it has {})",
                output.map,
                list(info.maps.keys().filter(|m| !m.starts_with('.')))
            ));
            continue;
        };
        let sizes = |key: u32, value: u32| {
            let mut out = Vec::new();
            if map.key_size != key {
                out.push(format!(
                    "{whose}: map `{}` has {}-byte keys but the manifest's key fields add up to {key} bytes",
                    output.map, map.key_size
                ));
            }
            if map.value_size != value {
                out.push(format!(
                    "{whose}: map `{}` has {}-byte values but the manifest's value fields add up to {value} bytes",
                    output.map, map.value_size
                ));
            }
            out
        };
        match &output.kind {
            OutputKind::Events { .. } => {
                if !matches!(map.map_type, map_type::RINGBUF | map_type::PERF_EVENT_ARRAY) {
                    problems.push(format!(
                        "{whose}: output `{}` holds events but the map is a {} (type {}), not a ring buffer or perf buffer",
                        output.map,
                        map_type_name(map.map_type),
                        map.map_type
                    ));
                }
            }
            OutputKind::Counters { key, value } | OutputKind::Histogram { key, value, .. } => {
                if !matches!(
                    map.map_type,
                    map_type::HASH
                        | map_type::ARRAY
                        | map_type::PERCPU_HASH
                        | map_type::PERCPU_ARRAY
                        | map_type::LRU_HASH
                        | map_type::LRU_PERCPU_HASH
                ) {
                    problems.push(format!(
                        "{whose}: output `{}` is a {} but the map is not a hash or array map (type {})",
                        output.map,
                        output.kind.as_str(),
                        map.map_type
                    ));
                }
                problems.extend(sizes(key.size, value.size));
                if let OutputKind::Histogram {
                    buckets: Buckets::Slots(slots),
                    value,
                    ..
                } = &output.kind
                    && let Some(FieldType::Array { count, .. }) = value.field(slots).map(|f| f.ty)
                    && count > 64
                {
                    problems.push(format!(
                        "{whose}: histogram `{}` has {count} slots; at most 64 log2 buckets are shown",
                        output.map
                    ));
                }
            }
            OutputKind::Stacks(spec) => {
                if !matches!(
                    map.map_type,
                    map_type::HASH
                        | map_type::PERCPU_HASH
                        | map_type::LRU_HASH
                        | map_type::LRU_PERCPU_HASH
                ) {
                    problems.push(format!(
                        "{whose}: output `{}` holds stack counts but the map is of type `{}` ({}), not a hash map of counts keyed by stack ids",
                        output.map,
                        map_type_name(map.map_type),
                        map.map_type
                    ));
                }
                problems.extend(sizes(spec.key.size, spec.value.size));
                problems.extend(check_stack_map(&whose, &output.map, &spec.stack_map, info));
            }
        }
    }
    problems
}

/// The stack map of a `stacks` output: present, a
/// `BPF_MAP_TYPE_STACK_TRACE` with 4-byte keys (stack ids) and values of
/// whole 8-byte addresses.
fn check_stack_map(whose: &str, counts: &str, name: &str, info: &ObjectInfo) -> Option<String> {
    let Some(map) = info.maps.get(name) else {
        return Some(format!(
            "{whose}: output `{counts}` names the stack map `{name}`, which the object does not have (it has {})",
            list(info.maps.keys().filter(|m| !m.starts_with('.')))
        ));
    };
    if map.map_type != map_type::STACK_TRACE {
        return Some(format!(
            "{whose}: `{name}` is a map of type `{}` ({}), not a stack map (BPF_MAP_TYPE_STACK_TRACE); name the map `bpf_get_stackid` writes into",
            map_type_name(map.map_type),
            map.map_type
        ));
    }
    if map.key_size != 4 {
        return Some(format!(
            "{whose}: stack map `{name}` has {}-byte keys; a stack map's keys are 4-byte stack ids",
            map.key_size
        ));
    }
    if map.value_size == 0 || map.value_size % 8 != 0 {
        return Some(format!(
            "{whose}: stack map `{name}` has {}-byte values; they must be a positive multiple of 8 (one 64-bit address per frame, e.g. `__uint(value_size, 127 * sizeof(__u64))`)",
            map.value_size
        ));
    }
    None
}

/// The BPF objects embedded in a program (as bcc's libbpf-tools embed their
/// `.bpf.o` through a generated skeleton): every 64-bit little-endian ELF
/// image with machine BPF, cut at the end of its section header table.
pub fn embedded_objects(bytes: &[u8]) -> Vec<&[u8]> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = bytes
        .get(at..)
        .and_then(|rest| rest.windows(4).position(|w| w == b"\x7fELF"))
    {
        let start = at + offset;
        at = start + 4;
        let header = |o: usize, n: usize| bytes.get(start + o..start + o + n);
        let u16_at = |o| header(o, 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let is_bpf64 = header(4, 2) == Some(&[2, 1]) && u16_at(18) == Some(EM_BPF);
        let shoff = header(40, 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        });
        let (Some(shoff), Some(shentsize), Some(shnum)) = (shoff, u16_at(58), u16_at(60)) else {
            continue;
        };
        let size = usize::try_from(shoff)
            .ok()
            .and_then(|s| s.checked_add(usize::from(shentsize) * usize::from(shnum)));
        if let Some(image) = size.and_then(|size| bytes.get(start..start.checked_add(size)?))
            && is_bpf64
        {
            found.push(image);
            at = start + image.len();
        }
    }
    found
}

/// Which attach choice of a slot the kernel allows: the first for which
/// `allowed` says yes; else a sentence with every reason.
pub fn choose(
    choices: &[crate::bpf::AttachChoice],
    mut allowed: impl FnMut(&AttachPoint) -> Result<(), String>,
) -> Result<&crate::bpf::AttachChoice, String> {
    let mut reasons = Vec::new();
    for choice in choices {
        match allowed(&choice.point) {
            Ok(()) => return Ok(choice),
            Err(why) => reasons.push(format!("{} ({}): {why}", choice.point, choice.program)),
        }
    }
    Err(format!(
        "no attach target of program `{}` works on this kernel: {}",
        choices.first().map_or("?", |c| c.program.as_str()),
        reasons.join("; ")
    ))
}

fn fits(v: i64, size: u64) -> bool {
    match size {
        1 => (i64::from(i8::MIN)..=i64::from(u8::MAX)).contains(&v),
        2 => (i64::from(i16::MIN)..=i64::from(u16::MAX)).contains(&v),
        4 => (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&v),
        _ => true,
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_sentence() {
        let err = inspect("x.bpf.o", b"not an elf").unwrap_err();
        assert!(err[0].contains("x.bpf.o is not an ELF object"), "{err:?}");
        let err = inspect("x.bpf.o", &[]).unwrap_err();
        assert!(err[0].contains("not an ELF object"), "{err:?}");
    }

    #[test]
    fn a_host_binary_is_not_a_bpf_object() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = inspect("test", &me).unwrap_err();
        assert!(err[0].contains("is not a BPF object"), "{err:?}");
    }

    #[test]
    fn embedded_objects_are_found_and_cut_at_their_section_headers() {
        // A fake BPF ELF header: 64-bit, little-endian, machine 247, section
        // headers at 64, two of 64 bytes: 192 bytes in all.
        let mut image = vec![0u8; 192];
        image[..4].copy_from_slice(b"\x7fELF");
        image[4] = 2;
        image[5] = 1;
        image[18..20].copy_from_slice(&EM_BPF.to_le_bytes());
        image[40..48].copy_from_slice(&64u64.to_le_bytes());
        image[58..60].copy_from_slice(&64u16.to_le_bytes());
        image[60..62].copy_from_slice(&2u16.to_le_bytes());
        let mut host = b"\x7fELF host binary header, not BPF".to_vec();
        host.extend(&image);
        host.extend(b"trailing bytes");
        assert_eq!(embedded_objects(&host), vec![image.as_slice()]);
        // Truncated: the section headers run past the end.
        assert!(embedded_objects(&image[..100]).is_empty());
        assert!(embedded_objects(b"").is_empty());
    }

    #[test]
    fn knob_sizes_bound_their_values() {
        assert!(fits(255, 1) && fits(-128, 1) && !fits(256, 1));
        assert!(fits(u32::MAX.into(), 4) && !fits(i64::from(u32::MAX) + 1, 4));
        assert!(fits(i64::MAX, 8));
    }
}
