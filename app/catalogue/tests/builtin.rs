//! What the built-in pack must contain: enough subsystems and probes, the
//! probes the helper already ships under their old ids and programs, and
//! entries that hold together.

use std::collections::BTreeMap;

use microscope_catalogue::{Catalogue, Pack, ProbeType, Target};

#[test]
fn has_at_least_ten_subsystems_and_sixty_probes() {
    let catalogue = Catalogue::builtin();
    assert!(
        catalogue.subsystems().len() >= 10,
        "{}",
        catalogue.subsystems().len()
    );
    assert!(
        catalogue.probes().len() >= 60,
        "{}",
        catalogue.probes().len()
    );
    assert_eq!(catalogue.packs().len(), 1);
    assert_eq!(catalogue.packs()[0].id, "builtin");
}

#[test]
fn keeps_the_probes_the_helper_already_ships() {
    let catalogue = Catalogue::builtin();
    let streamed = [
        ("sched:sched_switch", "sched_switch"),
        ("sched:sched_wakeup", "sched_wakeup"),
        ("sched:sched_process_fork", "sched_process_fork"),
        ("sched:sched_process_exec", "sched_process_exec"),
        ("sched:sched_process_exit", "sched_process_exit"),
        ("syscalls:sys_enter_openat", "sys_enter_openat"),
    ];
    for (id, program) in streamed {
        let probe = catalogue
            .probe(id)
            .unwrap_or_else(|| panic!("{id} is missing"));
        assert_eq!(probe.kind, ProbeType::Tracepoint, "{id}");
        let [attachment] = probe.attachments() else {
            panic!("{id} should attach exactly one program");
        };
        assert_eq!(attachment.program.as_deref(), Some(program), "{id}");
        assert_eq!(attachment.tracepoint(), id);
    }

    let counts = catalogue.probe("raw_syscalls:sys_enter").unwrap();
    assert_eq!(counts.kind, ProbeType::SyscallCounts);
    let [attachment] = counts.attachments() else {
        panic!("raw_syscalls:sys_enter should attach exactly one program");
    };
    assert_eq!(attachment.program.as_deref(), Some("sys_enter_count"));
    assert_eq!(attachment.tracepoint(), "raw_syscalls:sys_enter");

    let latency = catalogue.probe("syscalls:latency").unwrap();
    assert_eq!(latency.kind, ProbeType::SyscallLatency);
    let attached: Vec<(Option<&str>, String)> = latency
        .attachments()
        .iter()
        .map(|a| (a.program.as_deref(), a.tracepoint()))
        .collect();
    assert_eq!(
        attached,
        [
            (
                Some("sys_enter_latency"),
                "raw_syscalls:sys_enter".to_owned()
            ),
            (Some("sys_exit_latency"), "raw_syscalls:sys_exit".to_owned()),
        ]
    );
}

#[test]
fn has_the_profilers() {
    let catalogue = Catalogue::builtin();
    let cpu = catalogue.probe("profile:cpu").unwrap();
    assert_eq!(cpu.kind, ProbeType::ProfileCpu);
    assert!(cpu.summary.contains("99 Hz"));
    assert_eq!(
        catalogue.probe("profile:offcpu").unwrap().kind,
        ProbeType::ProfileOffcpu
    );
}

#[test]
fn every_subsystem_has_probes_an_explanation_and_kernel_docs() {
    let catalogue = Catalogue::builtin();
    for subsystem in catalogue.subsystems() {
        let id = &subsystem.id;
        assert!(
            catalogue.probes_of(id).next().is_some(),
            "{id} has no probes"
        );
        let sentences = subsystem.explanation.matches(". ").count() + 1;
        assert!(
            (2..=6).contains(&sentences),
            "{id}: the explanation should be 2 to 5 sentences, it has about {sentences}"
        );
        assert!(
            !subsystem.explanation.contains('\n'),
            "{id}: explanation has a line break"
        );
        assert!(!subsystem.docs.is_empty(), "{id} has no docs");
        for url in &subsystem.docs {
            assert!(url.starts_with("https://docs.kernel.org/"), "{id}: {url}");
        }
        assert!(!subsystem.source.is_empty(), "{id} has no source paths");
        assert!(
            subsystem.defined_at.file.ends_with(&format!("/{id}.toml")),
            "{id} is defined in {}, not in {id}.toml",
            subsystem.defined_at.file
        );
    }
}

#[test]
fn every_edge_joins_two_subsystems_and_every_layer_is_used() {
    let catalogue = Catalogue::builtin();
    assert!(!catalogue.edges().is_empty());
    for edge in catalogue.edges() {
        assert!(catalogue.subsystem(&edge.from).is_some(), "{}", edge.from);
        assert!(catalogue.subsystem(&edge.to).is_some(), "{}", edge.to);
        assert!(!edge.label.is_empty());
    }
    let indexes: Vec<u32> = catalogue.layers().iter().map(|l| l.index).collect();
    assert_eq!(indexes, (0..indexes.len() as u32).collect::<Vec<_>>());
    for layer in catalogue.layers() {
        assert!(
            catalogue
                .subsystems()
                .iter()
                .any(|s| s.layer == layer.index),
            "layer {} ({}) is empty",
            layer.index,
            layer.name
        );
    }
    // Every subsystem is reachable on the map: no island.
    for subsystem in catalogue.subsystems() {
        assert!(
            catalogue
                .edges()
                .iter()
                .any(|e| e.from == subsystem.id || e.to == subsystem.id),
            "{} has no edge",
            subsystem.id
        );
    }
}

#[test]
fn tracepoint_probes_are_named_after_their_tracepoint() {
    for probe in Catalogue::builtin().probes() {
        if probe.kind == ProbeType::Tracepoint {
            let [attachment] = probe.attachments() else {
                panic!("{} attaches several programs", probe.id);
            };
            assert_eq!(probe.id, attachment.tracepoint());
        }
    }
}

#[test]
fn function_probes_only_where_no_tracepoint_does_the_job() {
    // Not a full proof, but the rule of the catalogue: a function probe is
    // named `func:NAME` and no tracepoint of the same name exists in it.
    let catalogue = Catalogue::builtin();
    for probe in catalogue.probes() {
        if let Target::Function { name, .. } = &probe.target {
            assert_eq!(probe.id, format!("func:{name}"));
            assert!(
                !catalogue
                    .probes()
                    .iter()
                    .flat_map(|p| p.attachments())
                    .any(|a| a.name == *name),
                "{name} has a tracepoint of its own"
            );
        }
    }
}

#[test]
fn field_docs_keep_the_order_written() {
    let switch = Catalogue::builtin()
        .probe("sched:sched_switch")
        .unwrap()
        .clone();
    let names: Vec<&str> = switch.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"prev_comm"));
    assert_eq!(names.last(), Some(&"next_prio"));
    assert!(switch.field("prev_state").unwrap().contains("preempted"));
}

#[test]
fn counts_by_type() {
    let catalogue = Catalogue::builtin();
    let mut by_type: BTreeMap<ProbeType, usize> = BTreeMap::new();
    for probe in catalogue.probes() {
        *by_type.entry(probe.kind).or_default() += 1;
    }
    // Tracepoints first: they work on every kernel, kprobes and fentry do not.
    let tracepoints = by_type[&ProbeType::Tracepoint];
    let functions = by_type[&ProbeType::Function];
    assert!(tracepoints > 3 * functions, "{by_type:?}");
    // `bpf` probes bring their own object: only third-party packs have them.
    for kind in ProbeType::ALL.into_iter().filter(|k| *k != ProbeType::Bpf) {
        assert!(by_type.contains_key(&kind), "no probe of type {kind}");
    }
}

#[test]
fn builtin_pack_and_catalogue_agree() {
    let pack = Pack::builtin();
    let catalogue = Catalogue::builtin();
    assert_eq!(pack.probes(), catalogue.probes());
    assert_eq!(pack.subsystems(), catalogue.subsystems());
}
