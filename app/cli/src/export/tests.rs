use super::*;
use microscope_wire::ProbeKey;
use microscope_wire::{
    Availability, Capabilities, EventBatch, HelperInfo, ProbeInfo, ProbeKind, RecordingWriter,
};

fn probe(id: &str, key: ProbeKey, kind: ProbeKind) -> ProbeInfo {
    ProbeInfo {
        fields: Vec::new(),
        id: id.into(),
        key,
        subsystem: "Test".into(),
        description: String::new(),
        kind,
        availability: Availability::yes(""),
        enabled: true,
    }
}

fn header() -> RecordingHeader {
    RecordingHeader {
        created_unix_ms: 1_700_000_000_000,
        helper: HelperInfo {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0".into(),
            capabilities: Capabilities {
                tracefs: Availability::yes(""),
                btf: Availability::yes(""),
                kprobes: Availability::no(""),
                fentry: Availability::no(""),
                uprobes: Availability::yes(""),
            },
        },
        probes: vec![
            probe("sched:sched_switch", 1, ProbeKind::Stream),
            probe("syscalls:sys_enter_openat", 2, ProbeKind::Stream),
            probe("raw_syscalls:sys_enter", 3, ProbeKind::SyscallCounts),
        ],
        note: String::new(),
    }
}

fn switch(cpu: u32, ts_ns: u64, prev: (u32, &str), next: (u32, &str)) -> Event {
    Event {
        probe: 1,
        cpu,
        ts_ns,
        pid: prev.0,
        tgid: prev.0,
        comm: prev.1.into(),
        data: EventData::SchedSwitch {
            prev_pid: prev.0,
            prev_comm: prev.1.into(),
            prev_prio: 120,
            prev_state: 1,
            next_pid: next.0,
            next_comm: next.1.into(),
            next_prio: 120,
        },
    }
}

fn openat(cpu: u32, ts_ns: u64, pid: u32, comm: &str, path: &str) -> Event {
    Event {
        probe: 2,
        cpu,
        ts_ns,
        pid,
        tgid: pid,
        comm: comm.into(),
        data: EventData::Openat {
            dfd: -100,
            filename: path.into(),
            flags: 0,
            mode: 0,
        },
    }
}

/// Two CPUs switching between tasks, openat calls with awkward paths, and
/// two aggregate snapshots.
fn frames() -> Vec<RecordedFrame> {
    let batch = |events| {
        HelperMessage::Batch(EventBatch {
            events,
            stats: vec![],
        })
    };
    let aggregates = |ts_ns, count| {
        HelperMessage::Aggregates(Aggregates {
            functions: Vec::new(),
            ts_ns,
            syscall_counts: vec![(0, count)],
            latency_log2_ns: vec![],
        })
    };
    [
        batch(vec![
            switch(0, 1_000, (0, "swapper/0"), (10, "bash")),
            switch(1, 1_500, (0, "swapper/1"), (20, "cc1")),
            openat(0, 2_000, 10, "bash", "/etc/passwd"),
            openat(1, 2_500, 20, "cc1", "/tmp/a,\"b\";c"),
        ]),
        aggregates(3_000, 100),
        batch(vec![
            switch(0, 4_000, (10, "bash"), (30, "semi;colon")),
            openat(0, 4_500, 30, "semi;colon", "/x"),
            switch(1, 5_000, (20, "cc1"), (0, "swapper/1")),
        ]),
        aggregates(1_000_003_000, 1100),
        HelperMessage::ProbeState {
            probe: "sched:sched_switch".into(),
            enabled: false,
        },
    ]
    .into_iter()
    .enumerate()
    .map(|(i, message)| RecordedFrame {
        recv_ns: i as u64,
        message,
    })
    .collect()
}

fn field<'a>(event: &'a Value, key: &str) -> &'a Value {
    event
        .get(key)
        .unwrap_or_else(|| panic!("{event} has no {key}"))
}

#[test]
fn perfetto_export_follows_the_trace_event_format() {
    let mut out = Vec::new();
    let events = export_perfetto(&header(), frames(), &mut out).unwrap();
    assert_eq!(events, 7);
    let json: Value = serde_json::from_slice(&out).unwrap();
    let trace = json["traceEvents"].as_array().unwrap();
    assert!(!trace.is_empty());

    for event in trace {
        let ph = field(event, "ph").as_str().unwrap();
        field(event, "pid").as_u64().unwrap();
        field(event, "name").as_str().unwrap();
        match ph {
            "X" => {
                field(event, "ts").as_f64().unwrap();
                assert!(field(event, "dur").as_f64().unwrap() >= 0.0);
                field(event, "tid").as_u64().unwrap();
                assert_eq!(field(event, "pid"), 0);
                field(field(event, "args"), "pid").as_u64().unwrap();
            }
            "i" => {
                field(event, "ts").as_f64().unwrap();
                field(event, "tid").as_u64().unwrap();
                assert_eq!(field(event, "s"), "t");
            }
            "C" => {
                field(event, "ts").as_f64().unwrap();
                assert!(
                    field(event, "args")
                        .as_object()
                        .unwrap()
                        .values()
                        .all(Value::is_number)
                );
            }
            "M" => match field(event, "name").as_str().unwrap() {
                "process_name" | "thread_name" => {
                    field(field(event, "args"), "name").as_str().unwrap();
                }
                "thread_sort_index" => {
                    field(field(event, "args"), "sort_index").as_u64().unwrap();
                }
                other => panic!("unexpected metadata {other}: {event}"),
            },
            other => panic!("unexpected ph {other}: {event}"),
        }
    }

    let of = |ph: &str| -> Vec<&Value> { trace.iter().filter(|e| e["ph"] == ph).collect() };
    // The CPU tracks are named.
    let metadata = of("M");
    assert!(
        metadata
            .iter()
            .any(|e| e["name"] == "process_name" && e["pid"] == 0 && e["args"]["name"] == "CPUs")
    );
    for cpu in [0, 1] {
        assert!(
            metadata.iter().any(|e| e["name"] == "thread_name"
                && e["pid"] == 0
                && e["tid"] == cpu
                && e["args"]["name"] == format!("CPU {cpu}")),
            "CPU {cpu} not named"
        );
    }
    // Slices: bash 1..4 µs on CPU 0, cc1 1.5..5 µs on CPU 1, and the
    // still-running task on CPU 0 closed at the last event. No idle slices.
    let slices: Vec<(String, u64, f64, f64)> = of("X")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["tid"].as_u64().unwrap(),
                e["ts"].as_f64().unwrap(),
                e["dur"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        slices,
        vec![
            ("bash".into(), 0, 1.0, 3.0),
            ("cc1".into(), 1, 1.5, 3.5),
            ("semi;colon".into(), 0, 4.0, 1.0),
        ]
    );
    let bash = of("X")[0];
    assert_eq!(bash["args"]["pid"], 10);
    assert_eq!(bash["args"]["prev_state"], 1);
    // openat calls are instants on their threads, with their fields.
    let instants = of("i");
    assert_eq!(instants.len(), 3);
    assert_eq!(instants[1]["name"], "syscalls:sys_enter_openat");
    assert_eq!(instants[1]["pid"], 20);
    assert_eq!(instants[1]["args"]["filename"], "/tmp/a,\"b\";c");
    assert_eq!(instants[1]["args"]["dfd"], -100);
    // One rate from the two aggregate snapshots: 1000 syscalls in 1 s.
    let counters = of("C");
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0]["args"]["syscalls"], 1000.0);
}

#[test]
fn perfetto_export_of_nothing_is_still_valid_json() {
    let mut out = Vec::new();
    export_perfetto(&header(), Vec::new(), &mut out).unwrap();
    let json: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["traceEvents"].as_array().unwrap().len(), 1);
}

#[test]
fn csv_export_has_a_header_and_a_quoted_row_per_event() {
    let mut out = Vec::new();
    let rows = export_csv(&header(), frames(), &mut out).unwrap();
    assert_eq!(rows, 7);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["ts_ns", "cpu", "probe", "pid", "tgid", "comm", "fields"]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 7);
    assert_eq!(
        records[3].iter().collect::<Vec<_>>(),
        vec![
            "2500",
            "1",
            "syscalls:sys_enter_openat",
            "20",
            "20",
            "cc1",
            "dfd=-100;filename=/tmp/a,\"b\";c;flags=0;mode=0",
        ]
    );
    assert!(records[0][6].starts_with("prev_pid=0;prev_comm=swapper/0;"));

    let mut empty = Vec::new();
    assert_eq!(export_csv(&header(), Vec::new(), &mut empty).unwrap(), 0);
    assert_eq!(empty, b"ts_ns,cpu,probe,pid,tgid,comm,fields\n");
}

#[test]
fn folded_export_is_comm_semicolon_probe_space_count() {
    let mut out = Vec::new();
    let total = export_folded(&header(), frames(), &mut out).unwrap();
    assert_eq!(total, 7);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        count.parse::<u64>().unwrap();
        let frames: Vec<&str> = stack.split(';').collect();
        assert_eq!(frames.len(), 2, "{line}");
        assert!(frames.iter().all(|f| !f.is_empty()), "{line}");
    }
    assert_eq!(
        lines,
        vec![
            "bash;sched:sched_switch 1",
            "bash;syscalls:sys_enter_openat 1",
            "cc1;sched:sched_switch 1",
            "cc1;syscalls:sys_enter_openat 1",
            "semi:colon;syscalls:sys_enter_openat 1",
            "swapper/0;sched:sched_switch 1",
            "swapper/1;sched:sched_switch 1",
        ]
    );
}

#[test]
fn run_export_reads_a_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("r.mscr");
    let mut writer = RecordingWriter::create(&recording, &header(), false).unwrap();
    for frame in frames() {
        writer.write(frame.recv_ns, &frame.message).unwrap();
    }
    writer.finish().unwrap();

    let out = dir.path().join("out.csv");
    let outcome = run_export(&recording, ExportFormat::Csv, &out, false).unwrap();
    assert_eq!(outcome.events, 7);
    assert!(outcome.warning.is_none());
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 8);

    let err = run_export(&recording, ExportFormat::Folded, &out, false).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    run_export(&recording, ExportFormat::Folded, &out, true).unwrap();
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("bash;"));

    let err = run_export(&out, ExportFormat::Csv, &dir.path().join("x"), false).unwrap_err();
    assert!(
        err.to_string().contains("not a Microscope recording"),
        "{err}"
    );

    // `info` on the same file.
    let report = crate::info::info_report(&recording).unwrap();
    for expected in [
        "kernel: 6.18.0\n",
        "events: 7\n",
        "  sched:sched_switch         4\n",
        "  syscalls:sys_enter_openat  3\n",
        "  raw_syscalls:sys_enter     - (aggregated in the kernel",
        "index: present",
        "damage: none\n",
        "recorded: 2023-11-14 22:13:20 UTC\n",
    ] {
        assert!(report.contains(expected), "{expected:?} not in\n{report}");
    }
    // A torn copy says how much was recovered.
    let bytes = std::fs::read(&recording).unwrap();
    let torn = dir.path().join("torn.mscr");
    std::fs::write(&torn, &bytes[..bytes.len() - 60]).unwrap();
    let report = crate::info::info_report(&torn).unwrap();
    assert!(report.contains("damage: recovered "), "{report}");
    assert!(report.contains("index: absent"), "{report}");
}

#[test]
fn folded_export_of_a_profile_writes_its_call_stacks() {
    let mut with_profile = header();
    with_profile
        .probes
        .push(probe("profile:cpu", 9, ProbeKind::Stacks));
    let frame = |id, name: &str, kernel| microscope_wire::Frame {
        id,
        name: name.into(),
        kernel,
    };
    let batch = |frames, value| {
        HelperMessage::Stacks(microscope_wire::StackBatch {
            start_ns: 0,
            end_ns: 1_000_000_000,
            frames,
            stacks: vec![microscope_wire::StackCount {
                probe: 9,
                tgid: 7,
                comm: "burn".into(),
                frames: vec![0, 1, 2],
                value,
            }],
        })
    };
    let frames: Vec<RecordedFrame> = [
        batch(
            vec![
                frame(0, "main", false),
                frame(1, "burn_cpu", false),
                frame(2, "asm_sysvec_apic_timer_interrupt", true),
            ],
            90,
        ),
        // Later batches refer to the frames by id only.
        batch(Vec::new(), 9),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, message)| RecordedFrame {
        recv_ns: i as u64,
        message,
    })
    .collect();
    let mut out = Vec::new();
    let total = export_folded(&with_profile, frames, &mut out).unwrap();
    assert_eq!(total, 99);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "burn;main;burn_cpu;asm_sysvec_apic_timer_interrupt_[k] 99\n"
    );
}

#[test]
fn folded_export_of_pack_time_stacks_writes_microseconds() {
    let mut with_pack = header();
    with_pack
        .probes
        .push(probe("example-c:offcpu", 12, ProbeKind::TimeStacks));
    let batch = |frames, value| {
        HelperMessage::Stacks(microscope_wire::StackBatch {
            start_ns: 0,
            end_ns: 1_000_000_000,
            frames,
            stacks: vec![microscope_wire::StackCount {
                probe: 12,
                tgid: 7,
                comm: "sleeper".into(),
                frames: vec![0, 1],
                value,
            }],
        })
    };
    let frame = |id, name: &str, kernel| microscope_wire::Frame {
        id,
        name: name.into(),
        kernel,
    };
    let frames: Vec<RecordedFrame> = [
        batch(
            vec![
                frame(0, "microscope_sleep_wait", false),
                frame(1, "do_nanosleep", true),
            ],
            90_000,
        ),
        batch(Vec::new(), 9_000),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, message)| RecordedFrame {
        recv_ns: i as u64,
        message,
    })
    .collect();
    let mut out = Vec::new();
    export_folded(&with_pack, frames, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "sleeper;microscope_sleep_wait;do_nanosleep_[k] 99\n"
    );
}

/// A recording with syscount's counter table and runqlat's histogram, read
/// twice 250 ms apart, written to a file and read back as a user would.
fn pack_recording(dir: &Path) -> PathBuf {
    use microscope_wire::{FieldValue, PackData, PackHistogram, PackTable};
    let mut with_packs = header();
    with_packs
        .probes
        .push(probe("libbpf-tools:syscount", 20, ProbeKind::Pack));
    with_packs
        .probes
        .push(probe("libbpf-tools:runqlat", 21, ProbeKind::Pack));
    let syscount = |ts_ns, read| {
        HelperMessage::PackData(PackData {
            probe: 20,
            ts_ns,
            tables: vec![PackTable {
                map: "data".into(),
                columns: vec!["syscall".into(), "count".into(), "comm".into()],
                key_columns: 1,
                rows: vec![vec![
                    FieldValue::Named {
                        value: 0,
                        text: "read".into(),
                    },
                    FieldValue::Uint(read),
                    FieldValue::Str("sh".into()),
                ]],
                truncated: 0,
            }],
            histograms: Vec::new(),
        })
    };
    let runqlat = |ts_ns, buckets| {
        HelperMessage::PackData(PackData {
            probe: 21,
            ts_ns,
            tables: Vec::new(),
            histograms: vec![PackHistogram {
                map: "hists".into(),
                label: "all".into(),
                unit: "µs".into(),
                buckets,
            }],
        })
    };
    let path = dir.join("packs.mscr");
    let mut writer = RecordingWriter::create(&path, &with_packs, false).unwrap();
    for (i, message) in [
        syscount(1_000_000_000, 100),
        runqlat(1_000_000_000, vec![1, 2]),
        syscount(1_250_000_000, 150),
        runqlat(1_250_000_000, vec![1, 7]),
    ]
    .into_iter()
    .enumerate()
    {
        writer.write(i as u64, &message).unwrap();
    }
    writer.finish().unwrap();
    path
}

#[test]
fn pack_tables_and_histograms_export_as_csv_and_perfetto_counters() {
    let dir = tempfile::tempdir().unwrap();
    let recording = pack_recording(dir.path());

    let out = dir.path().join("packs.csv");
    let outcome = run_export(&recording, ExportFormat::Tables, &out, false).unwrap();
    // Two table readings of two value columns, two histogram readings of
    // two buckets.
    assert_eq!(outcome.events, 8);
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "ts_ns,probe,map,kind,key,column,value,unit");
    for expected in [
        "1000000000,libbpf-tools:syscount,data,counter,read,count,100,",
        "1000000000,libbpf-tools:syscount,data,counter,read,comm,sh,",
        "1250000000,libbpf-tools:syscount,data,counter,read,count,150,",
        "1250000000,libbpf-tools:runqlat,hists,histogram,all,bucket_1,7,µs",
    ] {
        assert!(lines.contains(&expected), "{expected} not in\n{csv}");
    }

    let out = dir.path().join("packs.json");
    run_export(&recording, ExportFormat::Perfetto, &out, false).unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let counters: Vec<&Value> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "C")
        .collect();
    let named = |name: &str| {
        counters
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no counter {name} in {counters:?}"))
    };
    // 50 more reads and 5 more samples in 250 ms.
    assert_eq!(
        named("libbpf-tools:syscount data count/s")["args"]["read"],
        200.0
    );
    assert_eq!(
        named("libbpf-tools:runqlat hists samples/s")["args"]["samples"],
        20.0
    );
    assert_eq!(counters.len(), 2, "no rate before the second reading");
}

#[test]
fn a_recording_without_packs_exports_an_empty_table() {
    let mut out = Vec::new();
    assert_eq!(export_tables(&header(), frames(), &mut out).unwrap(), 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ts_ns,probe,map,kind,key,column,value,unit\n"
    );
}
