//! Replaying a recording: the replay thread on its own, and the window
//! opening a recording and playing it (egui_kittest, headless).

#![expect(clippy::unwrap_used, reason = "a failed setup step is a broken test")]

use crossbeam_channel::{Receiver, bounded};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use microscope::{MicroscopeApp, ReplayControl, ReplaySpeed, Update, spawn_replay};
use microscope_wire::{
    Availability, Capabilities, Event, EventBatch, EventData, HelperInfo, HelperMessage, ProbeInfo,
    ProbeKind, RecordingHeader, RecordingWriter,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPENAT_KEY: u16 = 5;
const BATCHES: u64 = 12;
const EVENTS_PER_BATCH: usize = 100;
const BATCH_INTERVAL_NS: u64 = 250_000_000;

fn header() -> RecordingHeader {
    let yes = || Availability::yes("test");
    RecordingHeader::new(
        HelperInfo {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0-test".into(),
            capabilities: Capabilities {
                tracefs: yes(),
                btf: yes(),
                kprobes: yes(),
                fentry: yes(),
                uprobes: yes(),
            },
        },
        vec![ProbeInfo {
            fields: Vec::new(),
            id: "syscalls:sys_enter_openat".into(),
            key: OPENAT_KEY,
            subsystem: "System calls".into(),
            description: "openat".into(),
            kind: ProbeKind::Stream,
            availability: yes(),
            enabled: true,
        }],
        "test",
    )
}

/// 3 s of openat batches, 100 events every 250 ms.
fn write_recording(dir: &Path) -> PathBuf {
    let path = dir.join("test.mscr");
    let mut writer = RecordingWriter::create(&path, &header(), false).unwrap();
    for i in 0..BATCHES {
        let event = Event {
            probe: OPENAT_KEY,
            cpu: 0,
            ts_ns: 1_000_000_000 + i * BATCH_INTERVAL_NS,
            pid: 42,
            tgid: 42,
            comm: "cat".into(),
            data: EventData::Openat {
                dfd: -100,
                filename: "/etc/hostname".into(),
                flags: 0,
                mode: 0,
            },
        };
        let batch = EventBatch {
            events: vec![event; EVENTS_PER_BATCH],
            stats: vec![],
        };
        writer
            .write(i * BATCH_INTERVAL_NS, &HelperMessage::Batch(batch))
            .unwrap();
    }
    writer.finish().unwrap();
    path
}

fn drain_until_end(updates: &Receiver<Update>) -> Vec<Update> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(update) = updates.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let finished =
            matches!(&update, Update::Replay(s) if !s.playing && s.position_ns == s.duration_ns);
        seen.push(update);
        if finished {
            return seen;
        }
    }
    panic!(
        "the replay did not reach its end; got {} updates",
        seen.len()
    );
}

#[test]
fn replay_delivers_every_frame_on_the_recording_time_axis() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_recording(dir.path());
    let (update_tx, updates) = bounded(1024);
    let (controls, control_rx) = bounded(16);
    let epoch = Instant::now();
    controls
        .send(ReplayControl::Speed(ReplaySpeed::Max))
        .unwrap();
    spawn_replay(path, epoch, update_tx, control_rx, Arc::new(|| {})).unwrap();

    let seen = drain_until_end(&updates);
    let mut offsets_ns = Vec::new();
    let mut events = 0;
    for update in &seen {
        if let Update::Events {
            arrived, counts, ..
        } = update
        {
            offsets_ns.push(arrived.duration_since(epoch).as_nanos() as u64);
            events += counts.iter().map(|c| c.events).sum::<u64>();
        }
    }
    let expected: Vec<u64> = (0..BATCHES).map(|i| i * BATCH_INTERVAL_NS).collect();
    assert_eq!(
        offsets_ns, expected,
        "each batch lands at its recorded time"
    );
    assert_eq!(events, BATCHES * EVENTS_PER_BATCH as u64);
    assert!(matches!(seen.first(), Some(Update::ReplayReset)));
    // The recorded probe is shown as on.
    let probes = seen.iter().find_map(|u| match u {
        Update::Probes(p) => Some(p.clone()),
        _ => None,
    });
    assert!(probes.unwrap().iter().all(|p| p.enabled));

    // Seeking back replays from the start: a reset, then the frames again.
    controls.send(ReplayControl::Seek(500_000_000)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after_seek = Vec::new();
    while Instant::now() < deadline {
        if let Ok(update) = updates.recv_timeout(Duration::from_millis(100)) {
            let done = matches!(&update, Update::Replay(s) if s.position_ns == 500_000_000);
            after_seek.push(update);
            if done {
                break;
            }
        }
    }
    assert!(matches!(after_seek.first(), Some(Update::ReplayReset)));
    let batches = after_seek
        .iter()
        .filter(|u| matches!(u, Update::Events { .. }))
        .count();
    assert_eq!(batches, 3, "frames at 0, 250 and 500 ms");
}

#[test]
fn a_missing_recording_says_so() {
    let (update_tx, updates) = bounded(16);
    let (_controls, control_rx) = bounded(1);
    spawn_replay(
        "/nonexistent/x.mscr".into(),
        Instant::now(),
        update_tx,
        control_rx,
        Arc::new(|| {}),
    )
    .unwrap();
    let update = updates.recv_timeout(Duration::from_secs(5)).unwrap();
    let Update::ReplayFailed { reason } = update else {
        panic!("expected a failure, got {update:?}")
    };
    assert!(reason.contains("/nonexistent/x.mscr"), "{reason}");
}

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
    harness.run_steps(2);

    // It starts playing; pause, pick max speed, press play.
    harness.get_by_role_and_label(Role::Button, "Pause").click();
    harness.run_steps(2);
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
        .map(|p| p[1] * microscope::BUCKET.as_secs_f64())
        .sum();
    assert_eq!(events.round() as u64, BATCHES * EVENTS_PER_BATCH as u64);
    // The replay bar is there, with the way back to live data.
    harness.get_by_role_and_label(Role::Button, "Go live");
}

#[test]
fn a_replayed_timeline_equals_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_recording(dir.path());
    let epoch = Instant::now();

    // Live: the ingest thread applies each message as it arrives.
    let mut live = microscope::Model::new(epoch);
    live.apply(Update::Connected(header().helper.into()));
    live.apply(Update::Probes(
        header()
            .probes
            .into_iter()
            .map(microscope::Probe::from)
            .collect(),
    ));
    let recording = microscope_wire::Recording::open(&path).unwrap();
    for frame in recording.frames().unwrap() {
        let frame = frame.unwrap();
        let arrived = epoch + Duration::from_nanos(frame.recv_ns);
        if let Some(update) = microscope::update_from_message(frame.message, arrived) {
            live.apply(update);
        }
    }

    // Replay of the same file, as fast as possible.
    let (update_tx, updates) = bounded(1024);
    let (controls, control_rx) = bounded(16);
    controls
        .send(ReplayControl::Speed(ReplaySpeed::Max))
        .unwrap();
    spawn_replay(path, epoch, update_tx, control_rx, Arc::new(|| {})).unwrap();
    let mut replayed = microscope::Model::for_replay(epoch, false);
    for update in drain_until_end(&updates) {
        replayed.apply(update);
    }

    let id = "syscalls:sys_enter_openat";
    let live_points = live.timeline.series(id).unwrap().points().to_vec();
    assert!(!live_points.is_empty());
    assert_eq!(
        replayed.timeline.series(id).unwrap().points(),
        &live_points[..]
    );
}
