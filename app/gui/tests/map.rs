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
use std::time::{Duration, Instant};

struct Fixture {
    harness: Harness<'static, MicroscopeApp>,
    /// The app's clock: it moves only when the test says.
    clock: Clock,
    updates: Sender<Update>,
    to_helper: Receiver<ClientMessage>,
}

fn probe(id: &str, key: u16, subsystem: &str, enabled: bool) -> Probe {
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
