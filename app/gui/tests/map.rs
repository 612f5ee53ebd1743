//! The subsystem map, driven headless with `egui_kittest`: nodes are found
//! by their accessible labels, clicked, and their details read.

#![expect(
    clippy::unwrap_used,
    reason = "a failed send is a broken test; panicking says so"
)]

use crossbeam_channel::{Receiver, Sender, bounded};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use microscope_gui::{MicroscopeApp, region};
use microscope_model::{Clock, HelperSummary, Probe, ProbeCount, ProbeKind, Update};
use microscope_wire::ClientMessage;
use microscope_wire::ProbeKey;
use std::time::{Duration, Instant};

struct Fixture {
    harness: Harness<'static, MicroscopeApp>,
    /// The app's clock: it moves only when the test says.
    clock: Clock,
    updates: Sender<Update>,
    to_helper: Receiver<ClientMessage>,
}

fn probe(id: &str, key: ProbeKey, subsystem: &str, enabled: bool) -> Probe {
    Probe {
        id: id.into(),
        key,
        subsystem: subsystem.into(),
        description: format!("{id} happens"),
        kind: ProbeKind::Fields,
        unavailable_reason: None,
        enabled,
        fields: Vec::new(),
    }
}

fn connected() -> Fixture {
    let (updates, update_rx) = bounded(64);
    let (command_tx, to_helper) = bounded(64);
    let clock = Clock::manual(Instant::now());
    let app = MicroscopeApp::new(update_rx, command_tx).with_clock(clock.clone());
    let harness = Harness::builder()
        .with_size([1200.0, 760.0])
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
    fixture
        .updates
        .send(Update::Probes(vec![
            probe("block:block_rq_issue", 1, "block", false),
            probe("block:block_rq_complete", 2, "block", false),
            probe("sched:sched_switch", 3, "sched", false),
        ]))
        .unwrap();
    fixture.harness.run_steps(2);
    fixture
}

fn map_node(fixture: &Fixture, prefix: &str) -> String {
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_all_by_role(Role::Button)
        .filter_map(|n| n.accesskit_node().label())
        .find(|label| label.starts_with(prefix))
        .unwrap_or_else(|| panic!("no map node labelled {prefix}…"))
}

#[test]
fn every_subsystem_is_an_accessible_node_of_the_map() {
    let fixture = connected();
    let labels: Vec<String> = fixture
        .harness
        .get_by_label(region::MAP)
        .get_all_by_role(Role::Button)
        .filter_map(|n| n.accesskit_node().label())
        .filter(|l| l.ends_with("events/s"))
        .collect();
    assert!(labels.len() >= 10, "{labels:?}");
    assert!(
        labels.iter().any(|l| l == "Block I/O — 0 events/s"),
        "{labels:?}"
    );
}

#[test]
fn clicking_a_node_shows_its_details_and_toggling_there_sends_enable() {
    let mut fixture = connected();
    let label = map_node(&fixture, "Block I/O");
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label(&label)
        .click();
    fixture.harness.run_steps(2);
    let details = fixture.harness.get_by_label(region::MAP_DETAILS);
    details.get_by_label_contains("requests");
    details.get_by_role_and_label(Role::Link, "https://docs.kernel.org/block/blk-mq.html");
    fixture
        .harness
        .get_by_label(region::MAP_DETAILS)
        .get_by_role_and_label(Role::CheckBox, "block:block_rq_issue")
        .click();
    fixture.harness.run_steps(2);
    assert_eq!(
        fixture.to_helper.try_recv(),
        Ok(ClientMessage::Enable {
            probe: "block:block_rq_issue".into()
        })
    );
}

#[test]
fn the_search_box_jumps_to_a_probe() {
    let mut fixture = connected();
    let search = fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_role(Role::TextInput);
    search.click();
    fixture.harness.run_steps(1);
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_role(Role::TextInput)
        .type_text("rq_complete");
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label_contains("block:block_rq_complete (Block I/O)")
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::MAP_DETAILS)
        .get_by_role_and_label(Role::CheckBox, "block:block_rq_complete");
}

#[test]
fn a_busy_subsystem_shows_its_rate_on_the_map() {
    let mut fixture = connected();
    fixture
        .updates
        .send(Update::ProbeState {
            probe: "block:block_rq_issue".into(),
            enabled: true,
        })
        .unwrap();
    fixture
        .updates
        .send(Update::Events {
            arrived: fixture.clock.now(),
            counts: vec![ProbeCount {
                key: 1,
                events: 400,
            }],
            drops: Vec::new(),
            sched: Vec::new(),
            by_comm: vec![(1, "kworker/0:1".into(), 400)],
            recent: Vec::new(),
        })
        .unwrap();
    fixture.harness.run_steps(1);
    // The rate counts complete buckets only: two buckets later, the 400
    // events of the first are 400 in the last 0.5 s, 800 events/s.
    fixture
        .clock
        .advance(microscope_model::BUCKET * 2 + Duration::from_millis(50));
    fixture.harness.run_steps(2);
    let label = map_node(&fixture, "Block I/O");
    assert_eq!(label, "Block I/O — 800 events/s");
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label(&label)
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::MAP_DETAILS)
        .get_by_label("kworker/0:1");
}

#[test]
fn stacks_can_be_captured_at_a_tracepoint_from_the_map() {
    let mut fixture = connected();
    let label = map_node(&fixture, "Block I/O");
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label(&label)
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::MAP_DETAILS)
        .get_all_by_role_and_label(Role::CheckBox, "stacks")
        .next()
        .expect("a stacks switch per tracepoint")
        .click();
    fixture.harness.run_steps(2);
    let Ok(ClientMessage::SetOptions { probe, options }) = fixture.to_helper.try_recv() else {
        panic!("expected SetOptions");
    };
    assert!(probe.starts_with("block:"), "{probe}");
    assert!(options.stacks);
}

#[test]
fn probes_outside_the_map_get_a_node_of_their_category() {
    let mut fixture = connected();
    // A recording made with another pack: its subsystem is unknown here.
    fixture
        .updates
        .send(Update::ProbeAdded(probe(
            "i915:i915_request_add",
            9,
            "Graphics",
            true,
        )))
        .unwrap();
    fixture
        .updates
        .send(Update::Events {
            arrived: fixture.clock.now(),
            counts: vec![ProbeCount {
                key: 9,
                events: 400,
            }],
            drops: Vec::new(),
            sched: Vec::new(),
            by_comm: Vec::new(),
            recent: Vec::new(),
        })
        .unwrap();
    fixture.harness.run_steps(1);
    fixture
        .clock
        .advance(microscope_model::BUCKET * 2 + Duration::from_millis(50));
    fixture.harness.run_steps(2);
    let label = map_node(&fixture, "i915");
    assert_eq!(label, "i915 — 800 events/s");
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label(&label)
        .click();
    fixture.harness.run_steps(2);
    let details = fixture.harness.get_by_label(region::MAP_DETAILS);
    details.get_by_label_contains("Probes of the `i915` tracepoint category");
    details.get_by_role_and_label(Role::CheckBox, "i915:i915_request_add");
}

/// The label of the map node that has the keyboard focus.
fn focused_node(fixture: &Fixture) -> Option<String> {
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_all_by_role(Role::Button)
        .find(|n| n.is_focused())
        .and_then(|n| n.accesskit_node().label())
}

#[test]
fn the_keyboard_walks_the_map_and_enter_opens_details() {
    let mut fixture = connected();
    let user = map_node(&fixture, "User space");
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label(&user)
        .focus();
    fixture.harness.run_steps(2);
    assert_eq!(focused_node(&fixture).as_deref(), Some(user.as_str()));
    // Down goes a layer down: from user space to the system calls.
    fixture.harness.key_press(egui::Key::ArrowDown);
    fixture.harness.run_steps(2);
    let syscalls = focused_node(&fixture).expect("a node keeps the focus");
    assert!(syscalls.starts_with("System calls"), "{syscalls}");
    // Up comes back.
    fixture.harness.key_press(egui::Key::ArrowUp);
    fixture.harness.run_steps(2);
    assert_eq!(focused_node(&fixture).as_deref(), Some(user.as_str()));
    fixture.harness.key_press(egui::Key::ArrowDown);
    fixture.harness.run_steps(2);
    // Enter opens the focused node's details; Esc closes them.
    fixture.harness.key_press(egui::Key::Enter);
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::MAP_DETAILS)
        .get_by_label("System calls");
    fixture.harness.key_press(egui::Key::Escape);
    fixture.harness.run_steps(2);
    assert!(
        fixture
            .harness
            .query_by_label(region::MAP_DETAILS)
            .is_none(),
        "Esc closes the details"
    );
}

#[test]
fn default_probes_are_counted_in_the_kernel_and_light_the_map() {
    let (updates, update_rx) = bounded(64);
    let (command_tx, to_helper) = bounded(64);
    let clock = Clock::manual(Instant::now());
    let app = MicroscopeApp::new(update_rx, command_tx)
        .with_clock(clock.clone())
        .with_default_probes(true);
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    updates
        .send(Update::Connected(HelperSummary {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0-test".into(),
            capabilities: Vec::new(),
        }))
        .unwrap();
    let mut unavailable = probe("net:net_dev_queue", 4, "netdev", false);
    unavailable.unavailable_reason = Some("no such tracepoint here".into());
    updates
        .send(Update::Probes(vec![
            probe("sched:sched_waking", 1, "sched", false),
            probe("block:block_rq_issue", 2, "block", false),
            probe("sched:sched_switch", 3, "sched", false),
            unavailable,
        ]))
        .unwrap();
    harness.run_steps(2);
    let sent: Vec<ClientMessage> = to_helper.try_iter().collect();
    let counted = |id: &str| ClientMessage::SetOptions {
        probe: id.into(),
        options: microscope_wire::ProbeOptions {
            count_only: true,
            ..Default::default()
        },
    };
    let enable = |id: &str| ClientMessage::Enable { probe: id.into() };
    assert_eq!(
        sent,
        vec![
            counted("sched:sched_waking"),
            enable("sched:sched_waking"),
            counted("block:block_rq_issue"),
            enable("block:block_rq_issue"),
        ],
        "the defaults on offer, counted in the kernel; nothing else"
    );
    // A second probe list (a reconnect) does not ask again.
    updates.send(Update::Probes(Vec::new())).unwrap();
    harness.run_steps(2);
    assert_eq!(to_helper.try_iter().count(), 0);
    // The helper's counts light the scheduler.
    updates
        .send(Update::Probes(vec![probe(
            "sched:sched_waking",
            1,
            "sched",
            true,
        )]))
        .unwrap();
    for total in [100, 300] {
        updates
            .send(Update::Aggregates {
                arrived: clock.now(),
                syscall_total: None,
                latency_log2_ns: Vec::new(),
                functions: vec![(1, total, Vec::new())],
            })
            .unwrap();
    }
    harness.run_steps(1);
    clock.advance(microscope_model::BUCKET * 2 + Duration::from_millis(50));
    harness.run_steps(2);
    let scheduler = harness
        .get_by_label(region::MAP)
        .get_all_by_role(Role::Button)
        .filter_map(|n| n.accesskit_node().label())
        .find(|l| l.starts_with("Scheduler"))
        .unwrap();
    assert_eq!(
        scheduler, "Scheduler — 400 events/s",
        "200 hits after the first report, in 0.5 s"
    );
    // Its details say it is only counted, and offer to stream it.
    harness
        .get_by_label(region::MAP)
        .get_by_label(&scheduler)
        .click();
    harness.run_steps(2);
    let details = harness.get_by_label(region::MAP_DETAILS);
    details.get_by_label("counted in the kernel");
    details.get_by_label("stream events").click();
    harness.run_steps(2);
    assert_eq!(
        to_helper.try_recv(),
        Ok(ClientMessage::SetOptions {
            probe: "sched:sched_waking".into(),
            options: microscope_wire::ProbeOptions::default(),
        })
    );
}

#[test]
fn without_default_probes_nothing_is_switched_on() {
    let fixture = connected();
    assert_eq!(fixture.to_helper.try_iter().count(), 0);
}
