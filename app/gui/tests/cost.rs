//! What tracing costs (issue 13 §1), in the window: "Show cost" and the
//! Cost tab ask the helper for cost reports exactly while shown, and a
//! report's figures appear under the probe, in the map's details and in
//! the Cost view. Headless with `egui_kittest`; the report goes through the
//! same conversion as one from the socket.

#![expect(
    clippy::unwrap_used,
    reason = "a failed send is a broken test; panicking says so"
)]

use crossbeam_channel::{Receiver, Sender, bounded};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use microscope_gui::{MicroscopeApp, region};
use microscope_model::{Clock, HelperSummary, Probe, ProbeKind, Update, update_from_message};
use microscope_wire::{
    Availability, ClientMessage, CostReport, HelperCost, HelperMessage, ProbeCost, ProgramCost,
};
use std::time::Instant;

struct Fixture {
    harness: Harness<'static, MicroscopeApp>,
    updates: Sender<Update>,
    to_helper: Receiver<ClientMessage>,
}

fn fixture() -> Fixture {
    let (updates, update_rx) = bounded(64);
    let (command_tx, to_helper) = bounded(64);
    let clock = Clock::manual(Instant::now());
    let app = MicroscopeApp::new(update_rx, command_tx).with_clock(clock);
    let harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    let mut fixture = Fixture {
        harness,
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
        .send(Update::Probes(vec![Probe {
            fields: Vec::new(),
            id: "syscalls:sys_enter_openat".into(),
            key: 3,
            subsystem: "syscalls".into(),
            description: "openat calls".into(),
            kind: ProbeKind::Stream,
            unavailable_reason: None,
            enabled: false,
        }]))
        .unwrap();
    fixture.harness.run_steps(2);
    fixture
}

/// What the helper would send: 250 ns per run over 20 000 runs in one second.
fn report() -> HelperMessage {
    HelperMessage::Cost(CostReport {
        ts_ns: 5_000_000_000,
        interval_ns: 1_000_000_000,
        cpus: 2,
        run_times: Availability::yes("on"),
        probes: vec![ProbeCost {
            probe: 3,
            programs: vec![ProgramCost {
                name: "sys_enter_openat".into(),
                id: 41,
                run_time_ns: 9_000_000,
                run_count: 90_000,
                interval_run_time_ns: 5_000_000,
                interval_run_count: 20_000,
            }],
            events: 19_000,
            kernel_drops: 0,
            ring_bytes: 16 << 20,
            ring_peak_bytes: 4 << 20,
        }],
        helper: HelperCost {
            interval_cpu_ns: 30_000_000,
            cpu_ns: 1_000_000_000,
            rss_bytes: 48 << 20,
        },
    })
}

fn send_report(fixture: &mut Fixture) {
    let update = update_from_message(report(), Instant::now()).unwrap();
    fixture.updates.send(update).unwrap();
    fixture.harness.run_steps(2);
}

/// Every request the app sent so far.
fn sent(fixture: &Fixture) -> Vec<ClientMessage> {
    fixture.to_helper.try_iter().collect()
}

#[test]
fn show_cost_watches_and_puts_the_figures_under_the_probe_and_on_the_map() {
    let mut fixture = fixture();
    let probes = fixture.harness.get_by_label(region::PROBES);
    probes
        .get_by_role_and_label(Role::CheckBox, "syscalls:sys_enter_openat")
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_role_and_label(Role::CheckBox, "Show cost")
        .click();
    fixture.harness.run_steps(2);
    assert_eq!(
        sent(&fixture),
        vec![
            ClientMessage::Enable {
                probe: "syscalls:sys_enter_openat".into()
            },
            ClientMessage::WatchCost { watch: true }
        ]
    );
    send_report(&mut fixture);
    let line = "250 ns/run · 0.50 % of a CPU · 20k runs/s · 19k events/s · ring 25 %";
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_label(line);
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_label_contains("helper: 3.00 % of a CPU, 48.0 MiB resident");
    // The map's details of the probe's subsystem say the same.
    fixture
        .harness
        .get_by_label(region::TABS)
        .get_by_label("Map")
        .click();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::MAP)
        .get_by_label_contains("System calls —")
        .click();
    fixture.harness.run_steps(3);
    fixture
        .harness
        .get_by_label(region::MAP_DETAILS)
        .get_by_label(line);
    // Unticked: the app stops watching, so the helper turns statistics off.
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_role_and_label(Role::CheckBox, "Show cost")
        .click();
    fixture.harness.run_steps(2);
    assert_eq!(
        sent(&fixture),
        vec![ClientMessage::WatchCost { watch: false }]
    );
}

#[test]
fn the_cost_tab_watches_while_shown_and_lists_each_program() {
    let mut fixture = fixture();
    fixture
        .harness
        .get_by_label(region::TABS)
        .get_by_label("Cost")
        .click();
    fixture.harness.run_steps(2);
    assert_eq!(
        sent(&fixture),
        vec![ClientMessage::WatchCost { watch: true }]
    );
    fixture
        .harness
        .get_by_label(region::COST)
        .get_by_label_contains("Waiting for the helper");
    let answer = HelperMessage::CostWatch {
        watching: true,
        run_times: Availability::yes("on"),
    };
    let update = update_from_message(answer, Instant::now()).unwrap();
    fixture.updates.send(update).unwrap();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::COST)
        .get_by_label_contains("Measuring");
    send_report(&mut fixture);
    let table = fixture.harness.get_by_label(region::COST_TABLE);
    table.get_by_label("syscalls:sys_enter_openat");
    table.get_by_label("250 ns");
    table.get_by_label("0.50 %");
    table.get_by_label("20k");
    table.get_by_label("19k");
    table.get_by_label("25 %");
    table.get_by_label("sys_enter_openat (41)");
    fixture
        .harness
        .get_by_label(region::COST)
        .get_by_label_contains("All probes: 0.50 % of a CPU (0.25 % of the machine's 2 CPUs)");
    // Another tab: nobody looks any more.
    fixture
        .harness
        .get_by_label(region::TABS)
        .get_by_label("Rates")
        .click();
    fixture.harness.run_steps(2);
    assert_eq!(
        sent(&fixture),
        vec![ClientMessage::WatchCost { watch: false }]
    );
}
