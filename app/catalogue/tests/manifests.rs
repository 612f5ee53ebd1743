//! Malformed packs give the sentence a pack author needs, with the place.

use microscope_catalogue::{Catalogue, CatalogueError, Pack, ProbeType, Target};

const PACK: &str = r#"
[pack]
id = "demo"
name = "Demo"
description = "A pack for tests."
version = "0.1.0"

[[layer]]
index = 0
name = "Top"

[[layer]]
index = 1
name = "Bottom"

[[edge]]
from = "alpha"
to = "beta"
label = "alpha calls beta"
"#;

const ALPHA: &str = r#"
[subsystem]
id = "alpha"
name = "Alpha"
layer = 0
explanation = "Alpha does things. Then it calls beta."
docs = ["https://docs.kernel.org/"]
source = ["kernel/alpha.c"]

[[probe]]
id = "alpha:first"
type = "tracepoint"
target = "alpha:first"
summary = "The first thing."

[probe.fields]
zeta = "comes first anyway"
alpha = "comes second"
"#;

const BETA: &str = r#"
[subsystem]
id = "beta"
name = "Beta"
layer = 1
explanation = "Beta does other things. It is called by alpha."
"#;

fn pack(files: &[(&str, &str)]) -> Result<Pack, CatalogueError> {
    Pack::from_files("packs/demo", files)
}

fn catalogue(files: &[(&str, &str)]) -> Result<Catalogue, CatalogueError> {
    Catalogue::from_packs(vec![pack(files)?])
}

/// The error's message, for a pack whose `alpha.toml` is `alpha`.
fn error_with_alpha(alpha: &str) -> String {
    match catalogue(&[
        ("pack.toml", PACK),
        ("alpha.toml", alpha),
        ("beta.toml", BETA),
    ]) {
        Ok(_) => panic!("the pack was accepted"),
        Err(e) => e.to_string(),
    }
}

/// `ALPHA` plus one more probe.
fn with_probe(probe: &str) -> String {
    format!("{ALPHA}\n[[probe]]\n{probe}")
}

#[test]
fn a_good_pack_loads() {
    let c = catalogue(&[
        ("pack.toml", PACK),
        ("alpha.toml", ALPHA),
        ("beta.toml", BETA),
    ])
    .unwrap();
    assert_eq!(c.subsystems().len(), 2);
    assert_eq!(c.layers().len(), 2);
    assert_eq!(c.edges()[0].label, "alpha calls beta");
    let probe = c.probe("alpha:first").unwrap();
    assert_eq!(probe.subsystem, "alpha");
    assert_eq!(probe.pack, "demo");
    assert_eq!(probe.defined_at.to_string(), "packs/demo/alpha.toml:11:6");
    let fields: Vec<&str> = probe.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fields, ["zeta", "alpha"], "fields keep the order written");
    assert_eq!(c.probes_of("alpha").count(), 1);
    assert_eq!(c.probes_of("beta").count(), 0);
    assert!(c.subsystem("gamma").is_none());
}

#[test]
fn an_empty_pack_loads() {
    let c = catalogue(&[(
        "pack.toml",
        "[pack]\nid = \"empty\"\nname = \"E\"\ndescription = \"D\"\nversion = \"1\"\n",
    )])
    .unwrap();
    assert!(c.probes().is_empty());
    assert!(c.subsystems().is_empty());
    assert!(c.edges().is_empty());
}

#[test]
fn every_type_and_target_form() {
    let extra = r#"
[[probe]]
id = "func:vfs_read"
type = "function"
target = "vfs_read"
summary = "Reads."
requires = "kprobes"

[[probe]]
id = "uprobe:libc:malloc"
type = "uprobe"
target = "/usr/lib/x86_64-linux-gnu/libc.so.6:malloc"
summary = "Allocations."
requires = ["uprobes", "CONFIG_UPROBES"]
stacks = true

[[probe]]
id = "profile:cpu"
type = "profile_cpu"
summary = "Samples."

[[probe]]
id = "syscalls:latency"
type = "syscall_latency"
summary = "Latency."

[[probe.attach]]
program = "enter"
target = "raw_syscalls:sys_enter"

[[probe.attach]]
program = "exit"
target = "raw_syscalls:sys_exit"
"#;
    let alpha = format!("{ALPHA}{extra}");
    let c = catalogue(&[
        ("pack.toml", PACK),
        ("alpha.toml", &alpha),
        ("beta.toml", BETA),
    ])
    .unwrap();
    let read = c.probe("func:vfs_read").unwrap();
    assert_eq!(read.kind, ProbeType::Function);
    assert_eq!(
        read.target,
        Target::Function {
            name: "vfs_read".into(),
            program: None
        }
    );
    assert_eq!(read.requires, ["kprobes"]);
    let malloc = c.probe("uprobe:libc:malloc").unwrap();
    assert_eq!(
        malloc.target,
        Target::Uprobe {
            binary: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
            symbol: "malloc".into(),
            program: None
        }
    );
    assert_eq!(malloc.requires, ["uprobes", "CONFIG_UPROBES"]);
    assert!(malloc.stacks);
    assert_eq!(
        c.probe("profile:cpu").unwrap().target,
        Target::Sampler { program: None }
    );
    let latency = c.probe("syscalls:latency").unwrap();
    assert_eq!(latency.attachments().len(), 2);
    assert_eq!(latency.attachments()[1].program.as_deref(), Some("exit"));
    assert_eq!(latency.attachments()[1].category, "raw_syscalls");
    assert_eq!(latency.attachments()[1].name, "sys_exit");
}

#[test]
fn a_missing_field_is_named_with_its_place() {
    let e = error_with_alpha(&with_probe(
        "id = \"alpha:second\"\ntype = \"tracepoint\"\ntarget = \"alpha:second\"\n",
    ));
    assert!(e.starts_with("packs/demo/alpha.toml:"), "{e}");
    assert!(e.contains("missing field `summary`"), "{e}");
}

#[test]
fn a_bad_type_lists_the_good_ones() {
    let e = error_with_alpha(&with_probe(
        "id = \"func:x\"\ntype = \"kprobe\"\ntarget = \"x\"\nsummary = \"X.\"\n",
    ));
    assert!(e.starts_with("packs/demo/alpha.toml:22:8: "), "{e}");
    assert!(e.contains("unknown variant `kprobe`"), "{e}");
    assert!(
        e.contains("`tracepoint`") && e.contains("`profile_offcpu`"),
        "{e}"
    );
}

#[test]
fn a_misspelt_key_is_an_error() {
    let e = error_with_alpha(&with_probe(
        "id = \"alpha:x\"\ntype = \"tracepoint\"\ntarget = \"alpha:x\"\nsumary = \"X.\"\n",
    ));
    assert!(e.contains("unknown field `sumary`"), "{e}");
}

#[test]
fn a_toml_syntax_error_has_line_and_column() {
    let e = error_with_alpha("[subsystem]\nid = \"alpha\nname = \"Alpha\"\n");
    assert!(e.starts_with("packs/demo/alpha.toml:2:"), "{e}");
}

#[test]
fn a_tracepoint_target_must_be_category_and_name() {
    let e = error_with_alpha(&with_probe(
        "id = \"alpha:x\"\ntype = \"tracepoint\"\ntarget = \"alpha_x\"\nsummary = \"X.\"\n",
    ));
    assert_eq!(
        e,
        "packs/demo/alpha.toml:23:10: probe `alpha:x` has type `tracepoint` but its target `alpha_x` \
         is not a tracepoint `category:name` (e.g. `block:block_rq_issue`)"
    );
}

#[test]
fn an_empty_summary_is_refused() {
    let e = error_with_alpha(&with_probe(
        "id = \"alpha:x\"\ntype = \"tracepoint\"\ntarget = \"alpha:x\"\nsummary = \"  \"\n",
    ));
    assert_eq!(
        e,
        "packs/demo/alpha.toml:24:11: the summary of probe `alpha:x` is empty"
    );
}

#[test]
fn a_duplicate_probe_id_in_a_pack_points_at_both() {
    let e = error_with_alpha(&with_probe(
        "id = \"alpha:first\"\ntype = \"tracepoint\"\ntarget = \"alpha:first\"\nsummary = \"Again.\"\n",
    ));
    assert_eq!(
        e,
        "packs/demo/alpha.toml:21:6: probe `alpha:first` is defined twice in this pack \
         (first at packs/demo/alpha.toml:11:6)"
    );
}

#[test]
fn a_probe_in_an_unknown_subsystem_is_refused() {
    let e = error_with_alpha(&with_probe(
        "id = \"alpha:x\"\ntype = \"tracepoint\"\ntarget = \"alpha:x\"\nsummary = \"X.\"\nsubsystem = \"gamma\"\n",
    ));
    assert_eq!(
        e,
        "packs/demo/alpha.toml:21:6: probe `alpha:x` belongs to subsystem `gamma`, which no loaded pack defines"
    );
}

#[test]
fn a_probe_with_no_subsystem_is_refused() {
    let e = match catalogue(&[
        ("pack.toml", PACK),
        ("alpha.toml", ALPHA),
        ("beta.toml", BETA),
        (
            "loose.toml",
            "[[probe]]\nid = \"a:b\"\ntype = \"tracepoint\"\ntarget = \"a:b\"\nsummary = \"X.\"\n",
        ),
    ]) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.starts_with("packs/demo/loose.toml:2:6: probe `a:b` names no subsystem"),
        "{e}"
    );
}

#[test]
fn an_edge_to_an_unknown_subsystem_is_refused() {
    let pack_toml =
        format!("{PACK}\n[[edge]]\nfrom = \"beta\"\nto = \"gamma\"\nlabel = \"nowhere\"\n");
    let e = match catalogue(&[
        ("pack.toml", &pack_toml),
        ("alpha.toml", ALPHA),
        ("beta.toml", BETA),
    ]) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        e,
        "packs/demo/pack.toml:22:8: the edge `beta` → `gamma` leads to subsystem `gamma`, which no loaded pack defines"
    );
}

#[test]
fn a_layer_out_of_range_is_refused() {
    let e = error_with_alpha(&ALPHA.replace("layer = 0", "layer = 7"));
    assert_eq!(
        e,
        "packs/demo/alpha.toml:3:6: subsystem `alpha` is on layer 7, but the layers are 0 to 1"
    );
}

#[test]
fn an_aggregating_probe_needs_its_programs() {
    let e = error_with_alpha(&with_probe(
        "id = \"raw_syscalls:sys_enter\"\ntype = \"syscall_counts\"\ntarget = \"raw_syscalls:sys_enter\"\nsummary = \"Counts.\"\n",
    ));
    assert!(
        e.contains("needs a `program` for its tracepoint `raw_syscalls:sys_enter`"),
        "{e}"
    );
}

#[test]
fn target_and_attach_list_do_not_mix() {
    let e = error_with_alpha(&with_probe(
        "id = \"a:b\"\ntype = \"tracepoint\"\ntarget = \"a:b\"\nsummary = \"X.\"\n[[probe.attach]]\ntarget = \"a:c\"\n",
    ));
    assert!(
        e.contains("has both `target` and `[[probe.attach]]`"),
        "{e}"
    );
}

#[test]
fn a_function_probe_is_named_after_its_function() {
    let e = error_with_alpha(&with_probe(
        "id = \"vfs:read\"\ntype = \"function\"\ntarget = \"vfs_read\"\nsummary = \"X.\"\n",
    ));
    assert!(
        e.ends_with(
            "probe `vfs:read` traces the function `vfs_read`, so its id must be `func:vfs_read`"
        ),
        "{e}"
    );
}

#[test]
fn a_uprobe_target_needs_path_and_symbol() {
    let e = error_with_alpha(&with_probe(
        "id = \"uprobe:x\"\ntype = \"uprobe\"\ntarget = \"malloc\"\nsummary = \"X.\"\n",
    ));
    assert!(e.contains("is not `path:symbol`"), "{e}");
}

#[test]
fn a_profiler_takes_no_target() {
    let e = error_with_alpha(&with_probe(
        "id = \"profile:x\"\ntype = \"profile_cpu\"\ntarget = \"sched:sched_switch\"\nsummary = \"X.\"\n",
    ));
    assert!(e.contains("takes no `target`"), "{e}");
}

#[test]
fn a_bad_requires_is_explained() {
    let e = error_with_alpha(&with_probe(
        "id = \"a:b\"\ntype = \"tracepoint\"\ntarget = \"a:b\"\nsummary = \"X.\"\nrequires = 3\n",
    ));
    assert!(
        e.contains("`requires` must be a string or a list of strings"),
        "{e}"
    );
}

#[test]
fn a_pack_without_pack_toml_is_not_a_pack() {
    let e = pack(&[("alpha.toml", ALPHA)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "packs/demo is not a probe pack: it has no pack.toml"
    );
}

#[test]
fn two_packs_defining_the_same_probe_are_both_named() {
    let other_pack = PACK
        .replace("id = \"demo\"", "id = \"other\"")
        .replace("index = 0", "index = 2")
        .replace("index = 1", "index = 3");
    let other_pack = other_pack.split("[[edge]]").next().unwrap().to_owned();
    let gamma = ALPHA
        .replace("id = \"alpha\"", "id = \"gamma\"")
        .replace("layer = 0", "layer = 2");
    let first = pack(&[
        ("pack.toml", PACK),
        ("alpha.toml", ALPHA),
        ("beta.toml", BETA),
    ])
    .unwrap();
    let second = Pack::from_files(
        "packs/other",
        &[("pack.toml", &other_pack), ("gamma.toml", &gamma)],
    )
    .unwrap();
    let e = Catalogue::from_packs(vec![first, second])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "probe `alpha:first` is defined twice: by pack `demo` (packs/demo/alpha.toml:11:6) \
         and by pack `other` (packs/other/gamma.toml:11:6)"
    );
}

#[test]
fn two_packs_defining_the_same_subsystem_are_both_named() {
    let other_pack = PACK.replace("id = \"demo\"", "id = \"other\"");
    let other_pack = other_pack.split("[[layer]]").next().unwrap().to_owned();
    let first = pack(&[
        ("pack.toml", PACK),
        ("alpha.toml", ALPHA),
        ("beta.toml", BETA),
    ])
    .unwrap();
    let second = Pack::from_files(
        "packs/other",
        &[("pack.toml", &other_pack), ("b.toml", BETA)],
    )
    .unwrap();
    let e = Catalogue::from_packs(vec![first, second])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "subsystem `beta` is defined twice: by pack `demo` (packs/demo/beta.toml:3:6) \
         and by pack `other` (packs/other/b.toml:3:6)"
    );
}

#[test]
fn a_third_party_pack_adds_probes_to_builtin_subsystems() {
    let extra_pack = "[pack]\nid = \"extra\"\nname = \"Extra\"\ndescription = \"More TCP.\"\nversion = \"0.1.0\"\n\n[[edge]]\nfrom = \"tcp\"\nto = \"socket\"\nlabel = \"received data queues on the socket\"\n";
    let probes = "[[probe]]\nid = \"func:tcp_cleanup_rbuf\"\ntype = \"function\"\ntarget = \"tcp_cleanup_rbuf\"\nsubsystem = \"tcp\"\nsummary = \"The reader has taken data: TCP may open the window.\"\n";
    let extra = Pack::from_files(
        "packs/extra",
        &[("pack.toml", extra_pack), ("tcp.toml", probes)],
    )
    .unwrap();
    let c = Catalogue::from_packs(vec![Pack::builtin(), extra]).unwrap();
    let probe = c.probe("func:tcp_cleanup_rbuf").unwrap();
    assert_eq!(probe.pack, "extra");
    assert!(c.probes_of("tcp").any(|p| p.id == "func:tcp_cleanup_rbuf"));
    assert_eq!(c.packs().len(), 2);
}

#[test]
fn the_same_pack_twice_is_refused() {
    let e = Catalogue::from_packs(vec![Pack::builtin(), Pack::builtin()]).unwrap_err();
    assert!(
        e.to_string().starts_with("pack `builtin` is loaded twice"),
        "{e}"
    );
}

#[test]
fn load_pack_dir_reads_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pack.toml"), PACK).unwrap();
    std::fs::write(dir.path().join("alpha.toml"), ALPHA).unwrap();
    std::fs::write(dir.path().join("beta.toml"), BETA).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
    let pack = Catalogue::load_pack_dir(dir.path()).unwrap();
    assert_eq!(pack.info().id, "demo");
    assert_eq!(pack.subsystems().len(), 2);
    let at = &pack.probes()[0].defined_at;
    assert_eq!(at.file, dir.path().join("alpha.toml").display().to_string());
}

#[test]
fn load_pack_dir_reports_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = Catalogue::load_pack_dir(&missing).unwrap_err();
    assert!(matches!(e, CatalogueError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())),
        "{e}"
    );
}
