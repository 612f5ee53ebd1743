//! `type = "bpf"` probes: the packs in the tree load, and every malformed
//! manifest gets a sentence with its file, line and column.

use microscope_catalogue::{
    AttachPoint, Buckets, Catalogue, Decode, FieldType, KnobValue, OutputKind, Pack, Target, Unit,
};
use std::path::Path;

const PACK: &str = r#"[pack]
id = "demo"
name = "Demo"
description = "A pack for tests."
version = "0.1.0"

[[object]]
id = "demo"
file = "demo.bpf.o"
"#;

/// A good probe; tests replace parts of it.
const PROBE: &str = r#"[[probe]]
id = "demo:exits"
type = "bpf"
object = "demo"
subsystem = "process"
summary = "Exits."

[[probe.attach]]
program = "on_exit"
target = "tp_btf:sched_process_exit"
fallback = [{ program = "on_exit_tp", target = "tracepoint:sched:sched_process_exit" }]

[probe.knobs]
verbose = true
min_code = 3
target_tgid = "process_filter.pid"

[[probe.output]]
map = "events"
kind = "events"
fields = [
  { name = "ts", type = "u64", role = "time", decode = "duration", unit = "ns" },
  { name = "pid", type = "u32", role = "tgid" },
  { name = "code", type = "i32", decode = "values", values = { 0 = "ok", 1 = "failed" } },
  { name = "comm", type = "char[16]", role = "comm" },
]

[[probe.output]]
map = "hist"
kind = "histogram"
unit = "us"
slots = "slots"
key = [{ name = "pid", type = "u32" }]
value = [{ name = "slots", type = "u32[26]" }, { name = "comm", type = "char[16]" }]
"#;

fn load(probe: &str) -> Result<Pack, String> {
    let pack = Pack::from_files("packs/demo", &[("pack.toml", PACK), ("exits.toml", probe)])
        .map_err(|e| e.to_string())?;
    Catalogue::from_packs(vec![Pack::builtin(), pack.clone()]).map_err(|e| e.to_string())?;
    Ok(pack)
}

fn error(probe: &str) -> String {
    match load(probe) {
        Ok(_) => panic!("accepted:\n{probe}"),
        Err(e) => e,
    }
}

#[test]
fn a_bpf_probe_reads_back_as_written() {
    let pack = load(PROBE).unwrap();
    assert_eq!(pack.objects()[0].file, "demo.bpf.o");
    let Target::Bpf(bpf) = &pack.probes()[0].target else {
        panic!("not a bpf probe");
    };
    assert_eq!(bpf.object, "demo");
    let choices = &bpf.attach[0].choices;
    assert_eq!(
        choices[0].point,
        AttachPoint::TpBtf("sched_process_exit".into())
    );
    assert_eq!(choices[1].program, "on_exit_tp");
    let knobs: Vec<_> = bpf
        .knobs
        .iter()
        .map(|k| (k.name.as_str(), k.value))
        .collect();
    assert_eq!(
        knobs,
        [
            ("verbose", KnobValue::Bool(true)),
            ("min_code", KnobValue::Int(3)),
            ("target_tgid", KnobValue::FilterPid)
        ]
    );
    let OutputKind::Events { record } = &bpf.outputs[0].kind else {
        panic!("events first");
    };
    // C layout: u64 at 0, u32 at 8, i32 at 12, char[16] at 16; 32 bytes.
    let offsets: Vec<u32> = record.fields.iter().map(|f| f.offset).collect();
    assert_eq!((offsets, record.size), (vec![0, 8, 12, 16], 32));
    assert_eq!(record.fields[0].decode, Decode::Duration(Unit::Ns));
    assert!(matches!(&record.fields[2].decode, Decode::Values(v) if v[&1] == "failed"));
    let OutputKind::Histogram {
        value,
        buckets,
        unit,
        ..
    } = &bpf.outputs[1].kind
    else {
        panic!("a histogram second");
    };
    assert_eq!(*buckets, Buckets::Slots("slots".into()));
    assert_eq!(*unit, Unit::Us);
    assert_eq!(value.size, 120);
    assert_eq!(
        value.fields[0].ty,
        FieldType::Array {
            bytes: 4,
            signed: false,
            count: 26
        }
    );
}

#[test]
fn the_packs_in_the_tree_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/packs");
    for name in ["libbpf-tools", "example-c"] {
        let pack = Pack::load_dir(&root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        Catalogue::from_packs(vec![Pack::builtin(), pack.clone()])
            .unwrap_or_else(|e| panic!("{name} against the built-in pack: {e}"));
        assert!(
            pack.probes()
                .iter()
                .all(|p| matches!(p.target, Target::Bpf(_)))
        );
        assert_eq!(pack.dir(), Some(root.join(name).as_path()));
    }
}

/// `PROBE` with `from` replaced by `to` (which must occur once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(PROBE.matches(from).count(), 1, "{from}");
    PROBE.replace(from, to)
}

#[test]
fn malformed_bpf_probes_get_a_sentence_with_the_place() {
    let cases = [
        (
            edit("object = \"demo\"\n", ""),
            "packs/demo/exits.toml:3:8: probe `demo:exits` has type `bpf` but names no `object`",
        ),
        (
            edit("object = \"demo\"", "object = \"other\""),
            "packs/demo/exits.toml:2:6: probe `demo:exits` loads the object `other`, which this pack's pack.toml does not declare (it declares demo)",
        ),
        (
            edit(
                "target = \"tp_btf:sched_process_exit\"",
                "target = \"usdt:/bin/x:probe\"",
            ),
            "packs/demo/exits.toml:10:10: probe `demo:exits`: `usdt:/bin/x:probe` is not an attach target",
        ),
        (
            edit("verbose = true", "verbose = \"yes\""),
            "packs/demo/exits.toml:14:1: knob `verbose` of probe `demo:exits` is set to \"yes\"",
        ),
        (
            edit("kind = \"events\"", "kind = \"stream\""),
            "packs/demo/exits.toml:20:8: output `events` of probe `demo:exits` has kind `stream`; the kinds are `events`, `counters`, `histogram` and `stacks`",
        ),
        (
            edit("slots = \"slots\"\n", ""),
            "packs/demo/exits.toml:30:8: output `hist` of probe `demo:exits` is a histogram but says neither `slots",
        ),
        (
            edit("type = \"u32[26]\"", "type = \"float\""),
            "packs/demo/exits.toml:34:35: field `slots` of output `hist`: `float` is not a type",
        ),
        (
            edit("role = \"comm\" }", "role = \"comm\", decode = \"errno\" }"),
            "packs/demo/exits.toml:25:63: field `comm` is a `char[16]`; only integer fields take `decode = \"errno\"`",
        ),
        (
            edit(
                "{ name = \"pid\", type = \"u32\", role = \"tgid\" }",
                "{ name = \"pid\", type = \"u32\", offset = 4, role = \"tgid\" }",
            ),
            "field `pid` of output `events` (bytes 4..8) overlaps field `ts`",
        ),
        (
            edit("unit = \"us\"", "unit = \"us\"\ncolour = \"red\""),
            "packs/demo/exits.toml:32:1: unknown field `colour`",
        ),
        (
            edit(
                "decode = \"duration\", unit = \"ns\"",
                "decode = \"duration\", unit = \"bytes\"",
            ),
            "field `ts` is a duration but its unit `B` is not ns, us, ms or s",
        ),
        (
            edit(
                "type = \"bpf\"",
                "type = \"tracepoint\"\ntarget = \"sched:sched_process_exit\"",
            ),
            "packs/demo/exits.toml:5:10: probe `demo:exits` has type `tracepoint`; only `type = \"bpf\"` probes load an `object`",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(probe, expected)| (expected, error(probe)))
        .filter(|(expected, got)| !got.contains(**expected))
        .map(|(expected, got)| format!("expected\n  {expected}\ngot\n  {got}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn object_files_stay_inside_the_pack() {
    for file in ["/etc/passwd", "../other/x.o", "a//b.o", ""] {
        let pack = PACK.replace("demo.bpf.o", file);
        let err = Pack::from_files("packs/demo", &[("pack.toml", &pack)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("packs/demo/pack.toml:9:8: the object file")
                && err.contains("inside the pack's directory"),
            "{file}: {err}"
        );
    }
}

#[test]
fn check_pack_reports_objects_it_cannot_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pack.toml"), PACK).unwrap();
    std::fs::write(dir.path().join("exits.toml"), PROBE).unwrap();
    // No object yet.
    let checked = microscope_catalogue::check_pack_dir(dir.path()).unwrap();
    assert!(!checked.is_clean());
    assert!(
        checked.object_problems[0].contains("demo.bpf.o")
            && checked.object_problems[0].contains("build it first"),
        "{:?}",
        checked.object_problems
    );
    // Not an ELF file.
    std::fs::write(dir.path().join("demo.bpf.o"), b"#!/bin/sh\necho hi\n").unwrap();
    let checked = microscope_catalogue::check_pack_dir(dir.path()).unwrap();
    assert!(
        checked.object_problems[0].starts_with("demo.bpf.o is not an ELF object"),
        "{:?}",
        checked.object_problems
    );
    assert_eq!(
        checked.probes[0].problems,
        ["its object `demo` could not be read (see above)"]
    );
}
