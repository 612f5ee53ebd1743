//! Pack probes in the window, headless: fed with the helper's own messages
//! (`Probes`, `PackData`, `Batch`, `VerifierLog`) converted as the ingest
//! thread converts them. A pack probe is in the probe panel and on the map;
//! its histogram, its counter table with rates, and its decoded events show.

#![expect(
    clippy::unwrap_used,
    reason = "a failed send is a broken test; panicking says so"
)]

use crossbeam_channel::{Receiver, Sender, bounded};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use microscope_gui::{MACHINE_WIDE, MicroscopeApp, region};
use microscope_model::{Clock, HelperSummary, Update, update_from_message};
use microscope_wire::{
    Availability, ClientMessage, Event, EventBatch, EventData, FieldInfo, FieldValue, Frame,
    HelperMessage, PackData, PackHistogram, PackTable, ProbeInfo, ProbeKey, ProbeKind, StackBatch,
    StackCount,
};
use std::time::{Duration, Instant};

struct Fixture {
    harness: Harness<'static, MicroscopeApp>,
    clock: Clock,
    updates: Sender<Update>,
    to_helper: Receiver<ClientMessage>,
}

impl Fixture {
    /// Sends a helper message as the ingest thread would: converted, stamped
    /// with the arrival time.
    fn receive(&self, message: HelperMessage) {
        if let Some(update) = update_from_message(message, self.clock.now()) {
            self.updates.send(update).unwrap();
        }
    }
}

fn info(id: &str, key: ProbeKey, subsystem: &str, kind: ProbeKind) -> ProbeInfo {
    ProbeInfo {
        id: id.into(),
        key,
        subsystem: subsystem.into(),
        description: format!("{id}, from bcc's libbpf-tools"),
        kind,
        availability: Availability::yes("the verifier accepted it"),
        enabled: true,
        fields: Vec::new(),
    }
}

fn catalogue() -> Vec<ProbeInfo> {
    let field = |name: &str, c_type: &str| FieldInfo {
        name: name.into(),
        c_type: c_type.into(),
        meaning: String::new(),
    };
    vec![
        info("libbpf-tools:runqlat", 1, "sched", ProbeKind::Pack),
        info("libbpf-tools:syscount", 2, "syscalls", ProbeKind::Pack),
        ProbeInfo {
            fields: vec![
                field("pid", "u32"),
                field("sig", "u32 (signal)"),
                field("exit_code", "i32"),
            ],
            ..info("libbpf-tools:exitsnoop", 3, "process", ProbeKind::Fields)
        },
        ProbeInfo {
            availability: Availability::no(
                "the verifier refused program `handle` of broken:probe: R1 invalid mem access; \
                 ask for the whole log with `microscope probes --verifier-log broken:probe`",
            ),
            enabled: false,
            ..info("broken:probe", 4, "sched", ProbeKind::Pack)
        },
        info("example-c:offcpu", 5, "sched", ProbeKind::TimeStacks),
        info("demo:hits", 6, "sched", ProbeKind::Pack),
    ]
}

/// One drain of pack stacks as the helper sends them: the frame names,
/// then time off the CPU per stack of `example-c:offcpu` (ns) and hits per
/// stack of `demo:hits`.
fn pack_stacks() -> HelperMessage {
    let frame = |id: u32, name: &str, kernel: bool| Frame {
        id,
        name: name.into(),
        kernel,
    };
    let stack = |probe: ProbeKey, frames: Vec<u32>, value: u64| StackCount {
        probe,
        tgid: 77,
        comm: "sleeper".into(),
        frames,
        value,
    };
    HelperMessage::Stacks(StackBatch {
        start_ns: 1_000_000_000,
        end_ns: 2_000_000_000,
        frames: vec![
            frame(0, "main", false),
            frame(1, "microscope_sleep_wait", false),
            frame(2, "do_nanosleep", true),
            frame(3, "schedule", true),
            frame(4, "read_input", false),
            frame(5, "pipe_read", true),
        ],
        stacks: vec![
            stack(5, vec![0, 1, 2, 3], 30_000_000),
            stack(5, vec![0, 4, 5, 3], 10_000_000),
            stack(6, vec![0, 4], 7),
        ],
    })
}

fn runqlat(ts_ns: u64, first: Vec<u64>) -> HelperMessage {
    let hist = |label: &str, buckets| PackHistogram {
        map: "hists".into(),
        label: label.into(),
        unit: "µs".into(),
        buckets,
    };
    HelperMessage::PackData(PackData {
        probe: 1,
        ts_ns,
        tables: Vec::new(),
        histograms: vec![
            hist("tid=101 comm=sh", first),
            hist("tid=202 comm=cc1", vec![0, 1, 0, 2]),
        ],
    })
}

fn syscount(ts_ns: u64, read: u64, openat: u64) -> HelperMessage {
    let row = |value: i64, name: &str, count: u64| {
        vec![
            FieldValue::Named {
                value,
                text: name.into(),
            },
            FieldValue::Uint(count),
            FieldValue::Named {
                value: 0,
                text: "0 ns".into(),
            },
        ]
    };
    HelperMessage::PackData(PackData {
        probe: 2,
        ts_ns,
        tables: vec![PackTable {
            map: "data".into(),
            columns: vec!["syscall".into(), "count".into(), "total_ns".into()],
            key_columns: 1,
            rows: vec![row(0, "read", read), row(257, "openat", openat)],
            truncated: 0,
        }],
        histograms: Vec::new(),
    })
}

fn exit(pid: u32, sig: i64, code: i64) -> Event {
    Event {
        probe: 3,
        cpu: 0,
        ts_ns: 2_000_000_000 + u64::from(pid),
        pid,
        tgid: pid,
        comm: "child".into(),
        data: EventData::Fields(vec![
            FieldValue::Uint(u64::from(pid)),
            FieldValue::Named {
                value: sig,
                text: if sig == 15 { "SIGTERM" } else { "0" }.into(),
            },
            FieldValue::Int(code),
        ]),
    }
}

/// Connected, with two readings of each pack probe 250 ms apart and two
/// exits, then 550 ms more so the rate buckets are complete.
fn fed() -> Fixture {
    let (updates, update_rx) = bounded(64);
    let (command_tx, to_helper) = bounded(64);
    let clock = Clock::manual(Instant::now());
    let app = MicroscopeApp::new(update_rx, command_tx).with_clock(clock.clone());
    let harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    let mut fixture = Fixture {
        harness,
        clock,
        updates,
        to_helper,
    };
    fixture
        .updates
        .send(Update::Connected(HelperSummary {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0-test".into(),
            capabilities: Vec::new(),
        }))
        .unwrap();
    fixture.receive(HelperMessage::Probes(catalogue()));
    fixture.receive(runqlat(1_000_000_000, vec![0, 0, 3, 5, 1]));
    fixture.receive(syscount(1_000_000_000, 100, 10));
    fixture.harness.run_steps(1);
    fixture.clock.advance(Duration::from_millis(250));
    fixture.receive(runqlat(1_250_000_000, vec![0, 0, 4, 9, 1]));
    fixture.receive(syscount(1_250_000_000, 150, 12));
    fixture.receive(HelperMessage::Batch(EventBatch {
        events: vec![exit(4001, 0, 3), exit(4002, 15, 0)],
        stats: Vec::new(),
    }));
    fixture.harness.run_steps(1);
    fixture.clock.advance(Duration::from_millis(550));
    fixture.harness.run_steps(2);
    fixture
}

fn show_tab(fixture: &mut Fixture, title: &str) {
    fixture
        .harness
        .get_by_label(region::TABS)
        .get_by_label(title)
        .click();
    fixture.harness.run_steps(2);
}

#[test]
fn pack_probes_are_in_the_probe_panel_and_light_the_map() {
    let mut fixture = fed();
    let panel = fixture.harness.get_by_label(region::PROBES);
    panel.get_by_role_and_label(Role::CheckBox, "libbpf-tools:runqlat");
    panel.get_by_role_and_label(Role::CheckBox, "libbpf-tools:syscount");
    // runqlat's histograms grew by 5 samples (4 + 1 of tid 101's buckets)
    // in the first bucket; three complete buckets later that is 5 / 0.75 s.
    let label = fixture
        .harness
        .get_by_label(region::MAP)
        .get_all_by_role(Role::Button)
        .filter_map(|n| n.accesskit_node().label())
        .find(|label| label.starts_with("Scheduler"))
        .expect("a Scheduler node");
    assert!(label.contains("6.7"), "{label}");
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label(&label)
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::MAP_DETAILS)
        .get_by_role_and_label(Role::CheckBox, "libbpf-tools:runqlat");
}

#[test]
fn a_pack_histogram_and_counter_table_show_in_the_pack_data_tab() {
    let mut fixture = fed();
    show_tab(&mut fixture, "Pack data");
    let packs = fixture.harness.get_by_label(region::PACKS);
    packs.get_by_label(MACHINE_WIDE);
    packs.get_by_label("Histogram `hists`");
    // Both threads added up: [0, 1, 4, 11, 1].
    packs.get_by_label("17 samples; most in 8 µs – 16 µs");

    // The other probe: syscount's table, keys decoded, rates per row.
    packs
        .get_by_role_and_label(Role::ComboBox, "Pack probe")
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_all_by_label("libbpf-tools:syscount")
        .find(|n| n.accesskit_node().role() != Role::CheckBox)
        .expect("the probe in the list")
        .click();
    fixture.harness.run_steps(3);
    let packs = fixture.harness.get_by_label(region::PACKS);
    packs.get_by_label("Counters `data`");
    packs.get_by_label("2 rows; 162 count in all, 208/s now");
    packs.get_all_by_label("read").next();
    packs.get_all_by_label("openat").next();
    packs.get_by_label("150");
    // read grew by 50 and openat by 2 in 250 ms of kernel time.
    packs.get_all_by_label("200").next();
    packs.get_all_by_label("8.0").next();
    packs.get_by_label("count/s");
}

#[test]
fn pack_events_open_in_the_inspector_with_named_fields() {
    let mut fixture = fed();
    show_tab(&mut fixture, "Events");
    let inspector = fixture.harness.get_by_label(region::INSPECTOR);
    inspector.get_by_label("sig");
    inspector.get_by_label("exit_code");
    inspector.get_by_label("SIGTERM");
    inspector.get_by_label("2 of the newest 2 events");
}

#[test]
fn a_refused_pack_probe_shows_its_verifier_log() {
    let mut fixture = fed();
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_role_and_label(Role::Button, "Verifier log")
        .click();
    // A new window is measured in its first frame and drawn in the next.
    fixture.harness.run_steps(4);
    assert_eq!(
        fixture.to_helper.try_recv(),
        Ok(ClientMessage::VerifierLog {
            probe: "broken:probe".into()
        })
    );
    fixture
        .harness
        .get_by_label("Asked the helper for the log…");
    fixture.receive(HelperMessage::VerifierLog {
        probe: "broken:probe".into(),
        log: "0: (61) r0 = *(u32 *)(r1 +0)\nR1 invalid mem access 'scalar'".into(),
    });
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label_contains("R1 invalid mem access 'scalar'");
}

#[test]
fn pack_stacks_feed_the_flame_graph_in_their_unit() {
    let mut fixture = fed();
    fixture.receive(pack_stacks());
    fixture.harness.run_steps(2);
    show_tab(&mut fixture, "Flame");
    let flame = fixture.harness.get_by_label(region::FLAME);
    // Time off the CPU, as time: 30 ms of the 40 ms in microscope_sleep_wait.
    flame.get_by_label_contains("microscope_sleep_wait — 30.0 ms (75.0 %)");
    flame.get_by_label_contains("do_nanosleep — 30.0 ms");
    flame.get_by_label_contains("pipe_read — 10.0 ms");
    // Hits of the other pack probe do not add to time: pick it.
    flame
        .get_by_role_and_label(
            Role::ComboBox,
            "Which probe's stacks to show (on-CPU samples and time blocked do not add up).",
        )
        .click();
    fixture.harness.run_steps(2);
    // The popup's entry (the probe panel has a checkbox of that name too).
    fixture
        .harness
        .query_all_by_label("demo:hits")
        .find(|n| n.accesskit_node().role() != Role::CheckBox)
        .expect("demo:hits in the probe selector")
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::FLAME)
        .get_by_label_contains("read_input — 7 samples (100.0 %)");
}

#[test]
fn pack_stacks_open_as_call_paths() {
    let mut fixture = fed();
    fixture.receive(pack_stacks());
    fixture.harness.run_steps(2);
    show_tab(&mut fixture, "Paths");
    let paths = fixture.harness.get_by_label(region::PATHS);
    paths.get_by_label_contains("microscope_sleep_wait");
    assert!(paths.query_all_by_label_contains("30.0 ms").count() > 0);
}
