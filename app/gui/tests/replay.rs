//! The window opening a recording and playing it (egui_kittest, headless).

use crossbeam_channel::bounded;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use microscope_gui::MicroscopeApp;
use std::time::{Duration, Instant};

#[path = "../../sources/tests/fixtures/recording.rs"]
mod recording;
use recording::{BATCHES, EVENTS_PER_BATCH, write_recording};

#[test]
fn opening_a_recording_and_pressing_play_moves_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_recording(dir.path());
    let (_updates, update_rx) = bounded(1);
    let (to_helper, _helper_rx) = bounded(1);
    let app = MicroscopeApp::new(update_rx, to_helper);
    let mut harness = Harness::builder()
        .with_size([1000.0, 640.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    let ctx = harness.ctx.clone();
    harness.state_mut().start_replay(path, false, &ctx);
    // The replay thread reports each state change; wait for it rather than
    // for a number of frames.
    let playing = |app: &MicroscopeApp| app.model().replay.as_ref().map(|r| r.playing);
    run_until(&mut harness, "the replay to start", |app| {
        playing(app) == Some(true)
    });

    // It starts playing; pause, pick max speed, press play.
    harness.get_by_role_and_label(Role::Button, "Pause").click();
    run_until(&mut harness, "the replay to pause", |app| {
        playing(app) == Some(false)
    });
    harness.get_by_label("max").click();
    harness.run_steps(1);
    harness.get_by_role_and_label(Role::Button, "Play").click();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        harness.run_steps(1);
        let model = harness.state().model();
        let done = model
            .replay
            .as_ref()
            .is_some_and(|r| !r.playing && r.position_ns == r.duration_ns);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the replay did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let model = harness.state().model();
    assert!(model.is_replay());
    let series = model
        .timeline
        .series("syscalls:sys_enter_openat")
        .expect("a series");
    let events: f64 = series
        .points()
        .iter()
        .map(|p| p[1] * microscope_model::BUCKET.as_secs_f64())
        .sum();
    assert_eq!(events.round() as u64, BATCHES * EVENTS_PER_BATCH as u64);
    // The replay bar is there, with the way back to live data.
    harness.get_by_role_and_label(Role::Button, "Go live");
}

/// Runs frames until `done` holds; fails after 20 s (a hung replay thread).
fn run_until(
    harness: &mut Harness<'_, MicroscopeApp>,
    what: &str,
    done: impl Fn(&MicroscopeApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        harness.run_steps(1);
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(1);
}
