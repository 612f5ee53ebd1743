//! A replayed recording browsed in the window (egui_kittest, headless): the
//! CPU timeline reaches the recording's first and last switch, and the
//! inspector its first and last event, with more of both in the file than
//! the live views keep in memory. (The same for a file beyond the CPU
//! timeline's cap, through the browser alone: `app/sources/tests/browse.rs`.)

use crossbeam_channel::bounded;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use microscope_gui::{CentralTab, Command, MicroscopeApp};
use microscope_model::RECENT_EVENTS;
use microscope_sources::ReplayControl;
use std::time::{Duration, Instant};

#[path = "../../sources/tests/fixtures/large.rs"]
mod large;
use large::write_large;

/// Fails a stuck replay; never reached by a working one.
const PATIENCE: Duration = Duration::from_secs(300);

fn run_until(
    harness: &mut Harness<'_, MicroscopeApp>,
    what: &str,
    done: impl Fn(&Harness<'_, MicroscopeApp>) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    while !done(harness) {
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        harness.run_steps(1);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_first_and_last_switch_and_event_of_a_recording_are_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let large = write_large(dir.path(), 140_000);
    assert!(large.switches > RECENT_EVENTS as u64);
    let (_updates, update_rx) = bounded(1);
    let (to_helper, _helper_rx) = bounded(1);
    let app = MicroscopeApp::new(update_rx, to_helper);
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    let ctx = harness.ctx.clone();
    harness
        .state_mut()
        .start_replay(large.path.clone(), false, &ctx);
    harness
        .state_mut()
        .request(Command::Replay(ReplayControl::Pause));
    run_until(&mut harness, "the recording's overview", |h| {
        h.state().model().browse.overview.is_some()
    });
    let overview = harness.state().model().browse.overview.clone().unwrap();

    // The CPU timeline, zoomed on the first switch, then on the last.
    harness
        .state_mut()
        .request(Command::ShowTab(CentralTab::Cpus));
    // The last switch hands its CPU to `omega`.
    for (at_ns, label) in [
        (large.first_switch_ns, "cpu 1: alpha 201"),
        (large.last_switch_ns, ": omega "),
    ] {
        let at = overview.secs_of(at_ns).unwrap();
        harness.state_mut().request(Command::ShowCpuRange {
            from_secs: at - 5e-6,
            to_secs: at + 20e-6,
        });
        run_until(&mut harness, label, |h| {
            h.query_all_by_label_contains(label).next().is_some()
        });
    }

    // The inspector pages from the first switch event to the last.
    harness
        .state_mut()
        .request(Command::ShowTab(CentralTab::Events));
    run_until(&mut harness, "the first page", |h| {
        h.query_all_by_label("alpha").next().is_some()
    });
    harness.get_by_role_and_label(Role::Button, "Last").click();
    run_until(&mut harness, "the last page", |h| {
        h.query_all_by_label("omega").next().is_some()
    });
    harness
        .query_by_label_contains("of 137")
        .expect("the total");
}

#[test]
fn a_baseline_recording_is_drawn_next_to_the_replay() {
    #[path = "../../sources/tests/fixtures/recording.rs"]
    mod recording;
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let replayed = recording::write_recording(dir.path());
    let baseline = recording::write_recording(other.path());
    let (_updates, update_rx) = bounded(1);
    let (to_helper, _helper_rx) = bounded(1);
    let app = MicroscopeApp::new(update_rx, to_helper);
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    let ctx = harness.ctx.clone();
    harness.state_mut().start_replay(replayed, false, &ctx);
    harness.state_mut().request(Command::OpenBaseline(baseline));
    run_until(&mut harness, "the baseline", |h| {
        h.state().model().browse.baseline.is_some()
    });
    harness
        .state_mut()
        .request(Command::ShowTab(CentralTab::Rates));
    run_until(&mut harness, "the baseline's rates", |h| {
        h.query_all_by_label_contains("syscalls:sys_enter_openat (baseline)")
            .next()
            .is_some()
    });
    harness
        .query_by_label_contains("baseline: test.mscr")
        .expect("named in the replay bar");
}
