//! The CPU timeline, driven headless with `egui_kittest`: scheduler events go
//! in through the update channel as the ingest thread would send them; slices
//! are found by their accessible names and clicked.

#![expect(
    clippy::unwrap_used,
    reason = "a failed send is a broken test; panicking says so"
)]

use crossbeam_channel::{Receiver, Sender, bounded};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use microscope_gui::{MicroscopeApp, region};
use microscope_model::{
    HelperSummary, Probe, ProbeKind, SchedRecord, SwitchRecord, Update, WakeupRecord,
};
use microscope_wire::ClientMessage;
use std::time::Instant;

const SECOND: u64 = 1_000_000_000;

struct Fixture {
    harness: Harness<'static, MicroscopeApp>,
    updates: Sender<Update>,
    to_helper: Receiver<ClientMessage>,
}

fn connected() -> Fixture {
    let (updates, update_rx) = bounded(64);
    let (command_tx, to_helper) = bounded(64);
    let app = MicroscopeApp::new(update_rx, command_tx);
    let harness = Harness::builder()
        .with_size([1000.0, 640.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    let probe = |id: &str, key| Probe {
        fields: Vec::new(),
        id: id.into(),
        key,
        subsystem: "Scheduler".into(),
        description: String::new(),
        kind: ProbeKind::Stream,
        unavailable_reason: None,
        enabled: false,
    };
    updates
        .send(Update::Connected(HelperSummary {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0-test".into(),
            capabilities: Vec::new(),
        }))
        .unwrap();
    updates
        .send(Update::Probes(vec![
            probe("sched:sched_switch", 1),
            probe("sched:sched_wakeup", 2),
        ]))
        .unwrap();
    let mut fixture = Fixture {
        harness,
        updates,
        to_helper,
    };
    fixture.harness.run_steps(2);
    fixture
}

fn enable(fixture: &Fixture, probe: &str) {
    fixture
        .updates
        .send(Update::ProbeState {
            probe: probe.into(),
            enabled: true,
        })
        .unwrap();
}

fn open_cpus_tab(fixture: &mut Fixture) {
    fixture
        .harness
        .get_by_label(region::TABS)
        .get_by_label("CPUs")
        .click();
    fixture.harness.run_steps(2);
}

fn switch(
    cpu: u32,
    ts_ns: u64,
    prev: (u32, &str),
    prev_state: u64,
    next: (u32, &str),
) -> SchedRecord {
    SchedRecord::Switch(SwitchRecord {
        cpu,
        ts_ns,
        prev_pid: prev.0,
        prev_tgid: prev.0,
        prev_comm: prev.1.into(),
        prev_prio: 120,
        prev_state,
        next_pid: next.0,
        next_comm: next.1.into(),
        next_prio: 120,
    })
}

#[test]
fn clicking_a_slice_shows_the_task_its_wakeup_and_why_it_left() {
    let mut fixture = connected();
    enable(&fixture, "sched:sched_switch");
    enable(&fixture, "sched:sched_wakeup");
    let bash = (1234, "bash");
    // Two seconds of bash on CPU 0 (woken by a kworker just before), cc1 on
    // CPU 1; the newest event is anchored to the batch's arrival, now, so
    // everything is inside the live 10 s window.
    fixture
        .updates
        .send(Update::Events {
            arrived: Instant::now(),
            counts: Vec::new(),
            drops: Vec::new(),
            by_comm: Vec::new(),
            recent: Vec::new(),
            sched: vec![
                switch(0, 100 * SECOND, (0, "swapper/0"), 0, (33, "kworker/0:1")),
                SchedRecord::Wakeup(WakeupRecord {
                    cpu: 0,
                    ts_ns: 100 * SECOND + SECOND / 2,
                    waker_pid: 33,
                    waker_comm: "kworker/0:1".into(),
                    pid: 1234,
                    target_cpu: 0,
                }),
                switch(0, 101 * SECOND, (33, "kworker/0:1"), 1, bash),
                switch(1, 101 * SECOND, (0, "swapper/1"), 0, (77, "cc1")),
                switch(0, 103 * SECOND, bash, 2, (0, "swapper/0")),
                switch(1, 104 * SECOND, (77, "cc1"), 0x100, (0, "swapper/1")),
            ],
        })
        .unwrap();
    fixture.harness.run_steps(2);
    open_cpus_tab(&mut fixture);

    let timeline = fixture.harness.get_by_label(region::CPU_TIMELINE);
    // Both CPUs' slices are there, idle included.
    timeline.get_by_role_and_label(Role::Button, "cpu 1: cc1 77 (3.00 s)");
    timeline.get_by_role_and_label(Role::Button, "cpu 0: kworker/0:1 33 (1.00 s)");
    timeline
        .get_by_role_and_label(Role::Button, "cpu 0: bash 1234 (2.00 s)")
        .click();
    fixture.harness.run_steps(2);

    let details = fixture.harness.get_by_label(region::SLICE_DETAILS);
    details.get_by_label("bash (pid 1234, tgid 1234, prio 120)");
    details.get_by_label_contains("On CPU 0 from");
    details.get_by_label_contains(": 2.00 s.");
    details.get_by_label_contains("Woken by kworker/0:1 (pid 33)");
    details.get_by_label_contains("it waited 500 ms to run");
    details.get_by_label_contains("Left the CPU: disk sleep (D)");

    // Closing the details forgets the selection.
    details.get_by_label("Close").click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::SLICE_DETAILS)
        .get_by_label_contains("Click a slice");
}

#[test]
fn without_sched_switch_the_view_offers_to_enable_it() {
    let mut fixture = connected();
    open_cpus_tab(&mut fixture);
    let timeline = fixture.harness.get_by_label(region::CPU_TIMELINE);
    timeline.get_by_label_contains("enable `sched:sched_switch`");
    timeline
        .get_by_role_and_label(Role::Button, "Enable sched:sched_switch")
        .click();
    fixture.harness.run_steps(2);
    assert_eq!(
        fixture.to_helper.try_recv(),
        Ok(ClientMessage::Enable {
            probe: "sched:sched_switch".into()
        })
    );
    assert!(
        fixture
            .harness
            .state()
            .model()
            .wanted
            .contains("sched:sched_switch"),
        "the same as ticking the box"
    );
    // Until the helper confirms, the view says it is waiting.
    fixture
        .harness
        .get_by_label(region::CPU_TIMELINE)
        .get_by_label_contains("Waiting for the helper");
}
