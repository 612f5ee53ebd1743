//! `kind = "stacks"` outputs: a count map keyed by stack ids plus the stack
//! map they point into. The manifest reads back as written, every mistake
//! gets a sentence with its file, line and column, and `check-pack`'s
//! object check refuses maps of the wrong type or size.

use microscope_catalogue::object::{MapInfo, ObjectInfo, ProgramInfo, check_probe};
use microscope_catalogue::{BpfProbe, Catalogue, OutputKind, Pack, Role, Target, Unit};

const PACK: &str = r#"[pack]
id = "demo"
name = "Demo"
description = "A pack for tests."
version = "0.1.0"

[[object]]
id = "demo"
file = "demo.bpf.o"
"#;

/// A good stacks probe; tests replace parts of it.
const PROBE: &str = r#"[[probe]]
id = "demo:offcpu"
type = "bpf"
object = "demo"
subsystem = "sched"
summary = "Time off the CPU per stack."

[[probe.attach]]
program = "on_switch"
target = "tracepoint:sched:sched_switch"

[[probe.output]]
map = "counts"
kind = "stacks"
stack_map = "stacks"
kernel_stack = "kstack"
user_stack = "ustack"
count = "total"
unit = "us"
key = [
  { name = "tgid", type = "u32", role = "tgid" },
  { name = "ustack", type = "i32" },
  { name = "kstack", type = "i32" },
  { name = "comm", type = "char[16]", role = "comm" },
]
value = [{ name = "blocks", type = "u64" }, { name = "total", type = "u64" }]
"#;

fn load(probe: &str) -> Result<BpfProbe, String> {
    let pack = Pack::from_files("packs/demo", &[("pack.toml", PACK), ("offcpu.toml", probe)])
        .map_err(|e| e.to_string())?;
    Catalogue::from_packs(vec![Pack::builtin(), pack.clone()]).map_err(|e| e.to_string())?;
    match &pack.probes()[0].target {
        Target::Bpf(bpf) => Ok(bpf.clone()),
        other => panic!("not a bpf probe: {other:?}"),
    }
}

fn edit(from: &str, to: &str) -> String {
    assert_eq!(PROBE.matches(from).count(), 1, "{from}");
    PROBE.replace(from, to)
}

#[test]
fn a_stacks_output_reads_back_as_written() {
    let bpf = load(PROBE).unwrap();
    let OutputKind::Stacks(spec) = &bpf.outputs[0].kind else {
        panic!("not a stacks output: {:?}", bpf.outputs[0].kind);
    };
    assert_eq!(bpf.outputs[0].map, "counts");
    assert_eq!(bpf.outputs[0].kind.as_str(), "stacks");
    assert_eq!(spec.stack_map, "stacks");
    assert_eq!(spec.kernel_stack.as_deref(), Some("kstack"));
    assert_eq!(spec.user_stack.as_deref(), Some("ustack"));
    assert_eq!(spec.count, "total");
    assert_eq!(spec.unit, Unit::Us);
    assert_eq!(spec.key.size, 28);
    assert_eq!(spec.value.size, 16);
    assert_eq!(spec.key_role(Role::Tgid).unwrap().name, "tgid");
    assert_eq!(spec.key_role(Role::Comm).unwrap().offset, 12);
    assert!(spec.key_role(Role::Pid).is_none());
}

#[test]
fn one_stack_id_a_lone_count_and_no_unit_are_enough() {
    let probe = edit("user_stack = \"ustack\"\n", "")
        .replace("count = \"total\"\n", "")
        .replace("unit = \"us\"\n", "")
        .replace(
            "value = [{ name = \"blocks\", type = \"u64\" }, { name = \"total\", type = \"u64\" }]",
            "value = [{ name = \"hits\", type = \"u64\" }]",
        );
    let bpf = load(&probe).unwrap();
    let OutputKind::Stacks(spec) = &bpf.outputs[0].kind else {
        panic!("not a stacks output");
    };
    assert_eq!(spec.user_stack, None);
    assert_eq!(spec.count, "hits");
    assert_eq!(spec.unit, Unit::Count);
}

#[test]
fn malformed_stacks_outputs_get_a_sentence_with_the_place() {
    let cases: [(String, &str); 14] = [
        (
            edit("stack_map = \"stacks\"\n", ""),
            "packs/demo/offcpu.toml:14:8: output `counts` of probe `demo:offcpu` holds stacks but names no `stack_map = \"...\"`",
        ),
        (
            edit("stack_map = \"stacks\"", "stack_map = \"counts\""),
            "packs/demo/offcpu.toml:15:13: output `counts` of probe `demo:offcpu`: the stack map must be another map than the count map `counts`",
        ),
        (
            edit("kernel_stack = \"kstack\"\n", "").replace("user_stack = \"ustack\"\n", ""),
            "packs/demo/offcpu.toml:14:8: output `counts` of probe `demo:offcpu` holds stacks but says neither `kernel_stack = \"FIELD\"` nor `user_stack = \"FIELD\"`",
        ),
        (
            edit("kernel_stack = \"kstack\"", "kernel_stack = \"kid\""),
            "packs/demo/offcpu.toml:16:16: output `counts` of probe `demo:offcpu`: `kernel_stack = \"kid\"` is not a key field (the key has `tgid`, `ustack`, `kstack`, `comm`)",
        ),
        (
            edit("kernel_stack = \"kstack\"", "kernel_stack = \"comm\""),
            "`kernel_stack = \"comm\"` must name a 4- or 8-byte integer key field",
        ),
        (
            edit("user_stack = \"ustack\"", "user_stack = \"kstack\""),
            "`kernel_stack` and `user_stack` name the same key field",
        ),
        (
            edit("count = \"total\"\n", ""),
            "packs/demo/offcpu.toml:14:8: output `counts` of probe `demo:offcpu` has 2 value fields; say which holds the count or time with `count = \"FIELD\"`",
        ),
        (
            edit("count = \"total\"", "count = \"tgid\""),
            "the stacks' count `tgid` must be an integer value field (the value has `blocks`, `total`)",
        ),
        (
            edit("unit = \"us\"", "unit = \"bytes\""),
            "stacks count hits (`unit = \"count\"`, the default) or sum a time (`ns`, `us`, `ms`, `s`), not `B`",
        ),
        (
            edit("unit = \"us\"", "unit = \"fortnights\""),
            "packs/demo/offcpu.toml:19:8",
        ),
        (
            edit("kind = \"stacks\"", "kind = \"counters\""),
            "packs/demo/offcpu.toml:15:13: output `counts` of probe `demo:offcpu`: `stack_map` does not apply to kind `counters`",
        ),
        (
            edit(
                "key = [",
                "fields = [{ name = \"x\", type = \"u32\" }]\nkey = [",
            ),
            "is a map of keys and values: describe it with `key` and `value`, not `fields`",
        ),
        (
            format!(
                "{PROBE}\n[[probe.output]]\nmap = \"stacks\"\nkind = \"counters\"\nkey = [{{ name = \"id\", type = \"u32\" }}]\nvalue = [{{ name = \"ip\", type = \"u64\" }}]\n"
            ),
            "packs/demo/offcpu.toml:29:7: probe `demo:offcpu`: outputs `counts` and `stacks` read the same map (a stacks output's stack map is its own)",
        ),
        (
            format!(
                "{PROBE}\n[[probe.output]]\nmap = \"events\"\nkind = \"events\"\nfields = [{{ name = \"pid\", type = \"u32\" }}]\n"
            ),
            "packs/demo/offcpu.toml:13:7: probe `demo:offcpu` has events and a stacks output `counts` that sums time",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(probe, expected)| match load(probe) {
            Ok(_) => (expected, "accepted".to_owned()),
            Err(e) => (expected, e),
        })
        .filter(|(expected, got)| !got.contains(**expected))
        .map(|(expected, got)| format!("expected\n  {expected}\ngot\n  {got}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What `inspect` would say of an object with these maps and the probe's
/// program.
fn object(counts: MapInfo, stacks: Option<MapInfo>) -> ObjectInfo {
    let mut info = ObjectInfo::default();
    info.programs.insert(
        "on_switch".into(),
        ProgramInfo {
            kind: "tracepoint".into(),
            section: "tracepoint/sched/sched_switch".into(),
        },
    );
    info.maps.insert("counts".into(), counts);
    if let Some(stacks) = stacks {
        info.maps.insert("stacks".into(), stacks);
    }
    info
}

const HASH: MapInfo = MapInfo {
    map_type: 1,
    key_size: 28,
    value_size: 16,
    max_entries: 1024,
};
const STACK_TRACE: MapInfo = MapInfo {
    map_type: 7,
    key_size: 4,
    value_size: 127 * 8,
    max_entries: 1024,
};

#[test]
fn the_object_check_refuses_missing_and_mistyped_maps() {
    let bpf = load(PROBE).unwrap();
    let check = |info: ObjectInfo| check_probe("demo", "demo:offcpu", &bpf, &info);
    assert_eq!(check(object(HASH, Some(STACK_TRACE))), Vec::<String>::new());
    // Per-CPU and LRU hash maps of counts are fine too.
    for map_type in [5, 9, 10] {
        assert!(check(object(MapInfo { map_type, ..HASH }, Some(STACK_TRACE))).is_empty());
    }
    let cases = [
        (
            object(HASH, None),
            "pack `demo`, probe `demo:offcpu`: output `counts` names the stack map `stacks`, which the object does not have (it has counts)",
        ),
        (
            object(
                HASH,
                Some(MapInfo {
                    map_type: 1,
                    ..STACK_TRACE
                }),
            ),
            "pack `demo`, probe `demo:offcpu`: `stacks` is a map of type `hash` (1), not a stack map (BPF_MAP_TYPE_STACK_TRACE)",
        ),
        (
            object(
                HASH,
                Some(MapInfo {
                    value_size: 0,
                    ..STACK_TRACE
                }),
            ),
            "stack map `stacks` has 0-byte values; they must be a positive multiple of 8",
        ),
        (
            object(
                HASH,
                Some(MapInfo {
                    key_size: 8,
                    ..STACK_TRACE
                }),
            ),
            "stack map `stacks` has 8-byte keys; a stack map's keys are 4-byte stack ids",
        ),
        (
            object(
                MapInfo {
                    map_type: 2,
                    ..HASH
                },
                Some(STACK_TRACE),
            ),
            "output `counts` holds stack counts but the map is of type `array` (2), not a hash map of counts keyed by stack ids",
        ),
        (
            object(
                MapInfo {
                    key_size: 24,
                    ..HASH
                },
                Some(STACK_TRACE),
            ),
            "map `counts` has 24-byte keys but the manifest's key fields add up to 28 bytes",
        ),
    ];
    for (info, expected) in cases {
        let problems = check(info);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected {expected}\ngot {problems:?}"
        );
    }
}

#[test]
fn an_object_may_set_map_sizes_its_own_loader_would() {
    let load_pack = |maps: &str| {
        let pack = PACK.replace(
            "file = \"demo.bpf.o\"\n",
            &format!("file = \"demo.bpf.o\"\n{maps}\n"),
        );
        Pack::from_files("packs/demo", &[("pack.toml", &pack)]).map_err(|e| e.to_string())
    };
    let pack = load_pack("maps = { stacks = { value_size = 1016, max_entries = 16384 } }").unwrap();
    let sizes = &pack.objects()[0].map_sizes["stacks"];
    assert_eq!(
        (sizes.value_size, sizes.max_entries),
        (Some(1016), Some(16384))
    );
    for (maps, expected) in [
        (
            "maps = { stacks = { value_size = 0 } }",
            "packs/demo/pack.toml:10:8: object `demo`: map `stacks` cannot have a size of 0",
        ),
        (
            "maps = { stacks = {} }",
            "object `demo`: map `stacks` sets neither `value_size` nor `max_entries`",
        ),
        (
            "maps = { stacks = { key_size = 4 } }",
            "unknown field `key_size`",
        ),
        (
            "maps = { \"9x\" = { max_entries = 4 } }",
            "`9x` is not a map name",
        ),
    ] {
        let err = load_pack(maps).unwrap_err();
        assert!(err.contains(expected), "{maps}: {err}");
    }
}
