//! The window, driven headless with `egui_kittest` on lavapipe: no helper, no
//! socket, no display. Each test builds the app from channel ends it holds.

#![expect(
    clippy::unwrap_used,
    reason = "a failed send is a broken test; panicking says so"
)]

use crossbeam_channel::{Receiver, Sender, bounded};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use microscope_gui::{MicroscopeApp, region};
use microscope_model::{
    Clock, ConnectionState, HelperSummary, Probe, ProbeCount, ProbeKind, Update,
};
use microscope_wire::ClientMessage;
use microscope_wire::ProbeKey;
use std::time::Instant;

struct Fixture {
    harness: Harness<'static, MicroscopeApp>,
    /// The app's clock: it moves only when the test says.
    clock: Clock,
    updates: Sender<Update>,
    to_helper: Receiver<ClientMessage>,
}

fn fixture() -> Fixture {
    let (updates, update_rx) = bounded(64);
    let (command_tx, to_helper) = bounded(64);
    let clock = Clock::manual(Instant::now());
    let app = MicroscopeApp::new(update_rx, command_tx).with_clock(clock.clone());
    let harness = Harness::builder()
        .with_size([1000.0, 640.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    Fixture {
        harness,
        clock,
        updates,
        to_helper,
    }
}

fn probe(id: &str, key: ProbeKey, subsystem: &str, unavailable_reason: Option<&str>) -> Probe {
    Probe {
        fields: Vec::new(),
        id: id.into(),
        key,
        subsystem: subsystem.into(),
        description: format!("{id} events"),
        kind: ProbeKind::Stream,
        unavailable_reason: unavailable_reason.map(str::to_owned),
        enabled: false,
    }
}

fn catalogue() -> Vec<Probe> {
    vec![
        probe("sched:sched_switch", 1, "Scheduler", None),
        probe("sched:sched_wakeup", 2, "Scheduler", None),
        probe("syscalls:sys_enter_openat", 3, "Files", None),
        probe(
            "kprobe:vfs_read",
            4,
            "Files",
            Some("this kernel has no kprobes (CONFIG_KPROBES is not set)"),
        ),
    ]
}

fn helper() -> HelperSummary {
    HelperSummary {
        helper_version: "0.1.0".into(),
        kernel_release: "6.18.0-test".into(),
        capabilities: Vec::new(),
    }
}

fn show_tab(fixture: &mut Fixture, title: &str) {
    fixture
        .harness
        .get_by_label(region::TABS)
        .get_by_label(title)
        .click();
    fixture.harness.run_steps(2);
}

fn connect(fixture: &mut Fixture) {
    fixture.updates.send(Update::Connected(helper())).unwrap();
    fixture.updates.send(Update::Probes(catalogue())).unwrap();
    fixture.harness.run_steps(2);
}

#[test]
fn clicking_a_probe_checkbox_sends_enable() {
    let mut fixture = fixture();
    connect(&mut fixture);
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_role_and_label(Role::CheckBox, "sched:sched_switch")
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
            .contains("sched:sched_switch")
    );

    // And unticking disables it.
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_role_and_label(Role::CheckBox, "sched:sched_switch")
        .click();
    fixture.harness.run_steps(2);
    assert_eq!(
        fixture.to_helper.try_recv(),
        Ok(ClientMessage::Disable {
            probe: "sched:sched_switch".into()
        })
    );
    assert!(
        fixture.to_helper.try_recv().is_err(),
        "one message per click"
    );
}

#[test]
fn an_unavailable_probe_cannot_be_enabled() {
    let mut fixture = fixture();
    connect(&mut fixture);
    let checkbox = fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_role_and_label(Role::CheckBox, "kprobe:vfs_read");
    assert!(checkbox.accesskit_node().is_disabled());
    checkbox.click();
    fixture.harness.run_steps(2);
    assert!(fixture.to_helper.try_recv().is_err());
}

#[test]
fn an_event_batch_moves_the_timeline() {
    let mut fixture = fixture();
    connect(&mut fixture);
    fixture
        .updates
        .send(Update::ProbeState {
            probe: "sched:sched_switch".into(),
            enabled: true,
        })
        .unwrap();
    fixture
        .updates
        .send(Update::Events {
            arrived: fixture.clock.now(),
            counts: vec![ProbeCount {
                key: 1,
                events: 500,
            }],
            drops: Vec::new(),
            sched: Vec::new(),
            by_comm: Vec::new(),
            recent: Vec::new(),
        })
        .unwrap();
    fixture.harness.run_steps(1);
    // The timeline draws a bucket once it has settled (no more late data can
    // land in it): move the app's clock that far rather than wait.
    fixture
        .clock
        .advance(microscope_model::SETTLE + microscope_model::BUCKET * 2);
    fixture.harness.run_steps(3);
    show_tab(&mut fixture, "Rates");

    let model = fixture.harness.state().model();
    let series = model
        .timeline
        .series("sched:sched_switch")
        .expect("a series for the probe");
    // 500 events in the first 250 ms bucket: 2000 events/s there, and
    // nothing in the settled buckets after it.
    let rates: Vec<f64> = series.points().iter().map(|p| p[1]).collect();
    assert_eq!(rates.first(), Some(&2000.0), "{rates:?}");
    assert!(rates.iter().skip(1).all(|&r| r == 0.0), "{rates:?}");
    assert!(model.timeline.series("sched:sched_wakeup").is_none());
    // The plot legend lists the series.
    fixture
        .harness
        .get_by_label(region::TIMELINE)
        .get_by_role_and_label(Role::CheckBox, "sched:sched_switch");
}

#[test]
fn a_disconnect_shows_the_banner() {
    let mut fixture = fixture();
    connect(&mut fixture);
    assert!(fixture.harness.query_by_label(region::BANNER).is_none());
    let reason = "the helper closed the connection";
    fixture
        .updates
        .send(Update::Disconnected {
            reason: reason.into(),
        })
        .unwrap();
    fixture.harness.run_steps(2);
    assert_eq!(
        fixture.harness.state().model().connection,
        ConnectionState::Disconnected {
            reason: reason.into()
        }
    );
    fixture
        .harness
        .get_by_label(region::BANNER)
        .get_by_label_contains(&format!(
            "Not connected to the helper: {reason}. Reconnecting"
        ));
    // The probe list stays usable while disconnected.
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_label("sched:sched_wakeup");
}

#[test]
fn the_window_opens_without_a_helper() {
    let mut fixture = fixture();
    fixture.harness.run_steps(2);
    fixture
        .harness
        .get_by_label(region::BANNER)
        .get_by_label_contains("Connecting to the helper");
    fixture
        .harness
        .get_by_label(region::PROBES)
        .get_by_label_contains("No probes yet");
    fixture
        .harness
        .get_by_label(region::STATUS)
        .get_by_label_contains("Connecting");
}

#[test]
fn snapshot_disconnected_with_probes() {
    let mut fixture = fixture();
    fixture.updates.send(Update::Probes(catalogue())).unwrap();
    fixture
        .updates
        .send(Update::Disconnected {
            reason: "no Microscope helper is running at /run/microscope/microscoped.sock \
                     (No such file or directory (os error 2)); start it with \
                     `sudo microscoped` or `cargo xtask run`"
                .into(),
        })
        .unwrap();
    fixture.harness.run_steps(3);
    fixture.harness.snapshot("disconnected_with_probes");
}

#[test]
fn the_status_bar_rate_falls_to_zero_when_a_replay_stops() {
    use microscope_model::{ReplaySpeed, ReplayStatus};
    use std::time::Duration;
    let mut fixture = fixture();
    let start = fixture.clock.now();
    let mut switch = probe("sched:sched_switch", 1, "Scheduler", None);
    switch.enabled = true;
    fixture.updates.send(Update::Probes(vec![switch])).unwrap();
    let status = |clock: &Clock, position_ns, playing| ReplayStatus {
        path: "r.mscr".into(),
        position_ns,
        duration_ns: 2_000_000_000,
        playing,
        speed: ReplaySpeed::Times(1.0),
        reported_at: clock.now(),
        damage: None,
    };
    fixture
        .updates
        .send(Update::Replay(status(&fixture.clock, 0, true)))
        .unwrap();
    // Two seconds of 500 events every 250 ms: 2 000 events/s.
    for bucket in 0..8 {
        fixture
            .updates
            .send(Update::Events {
                arrived: start + Duration::from_millis(250 * bucket),
                counts: vec![ProbeCount {
                    key: 1,
                    events: 500,
                }],
                drops: Vec::new(),
                sched: Vec::new(),
                by_comm: Vec::new(),
                recent: Vec::new(),
            })
            .unwrap();
    }
    fixture.clock.advance(Duration::from_secs(2));
    fixture
        .updates
        .send(Update::Replay(status(&fixture.clock, 2_000_000_000, false)))
        .unwrap();
    fixture.harness.run_steps(2);
    let rate_label = |fixture: &Fixture| {
        fixture
            .harness
            .get_by_label(region::STATUS)
            .get_by_label_contains("events/s")
            .accesskit_node()
            .value()
            .unwrap_or_default()
    };
    assert_eq!(rate_label(&fixture), "2 000 events/s");
    // Nothing arrives to repaint a stopped replay, so the bar must ask to be
    // drawn again itself, or the last rate stays on screen (seen under Xvfb).
    fixture.harness.step();
    let causes = fixture.harness.ctx.repaint_causes();
    assert!(
        causes.iter().any(|c| c.file.ends_with("status_bar.rs")),
        "a non-zero rate must schedule its own repaint; causes: {causes:?}"
    );
    // The replay has ended: a second later nothing is arriving.
    fixture.clock.advance(Duration::from_millis(1100));
    fixture.harness.run_steps(2);
    assert_eq!(rate_label(&fixture), "0 events/s");
}

#[test]
fn a_long_probe_id_stays_on_one_line_and_keeps_its_whole_name() {
    let mut fixture = fixture();
    let long = "workqueue:workqueue_queue_work_with_a_name_longer_than_the_panel";
    fixture.updates.send(Update::Connected(helper())).unwrap();
    fixture
        .updates
        .send(Update::Probes(vec![
            probe("sched:sched_switch", 1, "Scheduler", None),
            probe(long, 2, "Scheduler", None),
        ]))
        .unwrap();
    fixture.harness.run_steps(2);
    let panel = fixture.harness.get_by_label(region::PROBES);
    let short = panel
        .get_by_role_and_label(Role::CheckBox, "sched:sched_switch")
        .rect();
    // Found by its whole id (the cut is only drawn), and as tall as a
    // one-line checkbox: not wrapped mid-word onto a second line.
    let cut = panel.get_by_role_and_label(Role::CheckBox, long).rect();
    assert!(
        cut.height() <= short.height() + 0.5,
        "the long id took {} px, a one-line checkbox {} px",
        cut.height(),
        short.height()
    );
}
