//! The event inspector, headless: decoded fields by name, filter, pause.

#![expect(
    clippy::unwrap_used,
    reason = "a failed send is a broken test; panicking says so"
)]

use crossbeam_channel::{Sender, bounded};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use microscope_gui::{MicroscopeApp, region};
use microscope_model::{HelperSummary, Probe, ProbeKind, Update};
use microscope_wire::{ClientMessage, Event, EventData, FieldValue};
use std::time::Instant;

fn request(sector: u64, comm: &str) -> Event {
    Event {
        probe: 5,
        cpu: 1,
        ts_ns: 1_000_000 + sector,
        pid: 42,
        tgid: 42,
        comm: comm.into(),
        data: EventData::Fields(vec![
            FieldValue::Uint(sector),
            FieldValue::Uint(8),
            FieldValue::Str("WS".into()),
        ]),
    }
}

fn send_batch(updates: &Sender<Update>, events: Vec<Event>) {
    updates
        .send(Update::Events {
            arrived: Instant::now(),
            counts: Vec::new(),
            drops: Vec::new(),
            sched: Vec::new(),
            by_comm: Vec::new(),
            recent: events,
        })
        .unwrap();
}

#[test]
fn decoded_events_are_listed_filtered_and_paused() {
    let (updates, update_rx) = bounded(64);
    let (command_tx, _to_helper) = bounded::<ClientMessage>(64);
    let app = MicroscopeApp::new(update_rx, command_tx);
    let mut harness = Harness::builder()
        .with_size([1200.0, 760.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    updates
        .send(Update::Connected(HelperSummary {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0-test".into(),
            capabilities: Vec::new(),
        }))
        .unwrap();
    updates
        .send(Update::Probes(vec![Probe {
            id: "block:block_rq_issue".into(),
            key: 5,
            subsystem: "block".into(),
            description: "A request is handed to the driver.".into(),
            kind: ProbeKind::Fields,
            unavailable_reason: None,
            enabled: true,
            fields: vec![
                ("sector".into(), "sector_t".into()),
                ("nr_sector".into(), "unsigned int".into()),
                ("rwbs".into(), "char[8]".into()),
            ],
        }]))
        .unwrap();
    send_batch(
        &updates,
        vec![request(2048, "jbd2/vda1"), request(4096, "dd")],
    );
    harness.run_steps(2);
    harness
        .get_by_label(region::TABS)
        .get_by_label("Events")
        .click();
    harness.run_steps(3);

    let inspector = harness.get_by_label(region::INSPECTOR);
    inspector.get_by_label("sector");
    inspector.get_by_label("rwbs");
    inspector.get_by_label("2048");
    inspector.get_by_label("dd");
    inspector.get_by_label("2 of the newest 2 events");

    // Filter by a command name.
    inspector.get_by_role(Role::TextInput).click();
    harness.run_steps(1);
    harness
        .get_by_label(region::INSPECTOR)
        .get_by_role(Role::TextInput)
        .type_text("jbd2");
    harness.run_steps(2);
    let inspector = harness.get_by_label(region::INSPECTOR);
    inspector.get_by_label("1 of the newest 2 events");
    assert!(inspector.query_by_label("4096").is_none());

    // Paused: new events wait.
    inspector.get_by_label("Pause").click();
    harness.run_steps(1);
    send_batch(&updates, vec![request(8192, "jbd2/vda1")]);
    harness.run_steps(2);
    harness
        .get_by_label(region::INSPECTOR)
        .get_by_label("1 of the newest 2 events (paused)");
    harness
        .get_by_label(region::INSPECTOR)
        .get_by_label("Resume")
        .click();
    harness.run_steps(2);
    harness
        .get_by_label(region::INSPECTOR)
        .get_by_label("2 of the newest 3 events");
}
