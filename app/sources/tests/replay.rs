//! Replaying a recording: the replay thread on its own, and the model it
//! feeds compared with the model of the same messages live.

use crossbeam_channel::{Receiver, bounded};
use microscope_model::{ReplaySpeed, Update};
use microscope_sources::{ReplayControl, spawn_replay};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "fixtures/recording.rs"]
mod recording;
use recording::{BATCH_INTERVAL_NS, BATCHES, EVENTS_PER_BATCH, header, write_recording};

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
fn a_replayed_timeline_equals_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_recording(dir.path());
    let epoch = Instant::now();

    // Live: the ingest thread applies each message as it arrives.
    let mut live = microscope_model::Model::new(epoch);
    live.apply(Update::Connected(header().helper.into()));
    live.apply(Update::Probes(
        header()
            .probes
            .into_iter()
            .map(microscope_model::Probe::from)
            .collect(),
    ));
    let recording = microscope_wire::Recording::open(&path).unwrap();
    for frame in recording.frames().unwrap() {
        let frame = frame.unwrap();
        let arrived = epoch + Duration::from_nanos(frame.recv_ns);
        if let Some(update) = microscope_model::update_from_message(frame.message, arrived) {
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
    let mut replayed = microscope_model::Model::for_replay(epoch, false);
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

/// A pack probe's readings (syscount's counter table) are recorded like
/// any message and replayed into the same model state as live.
#[test]
fn pack_readings_replay_into_tables_and_the_timeline() {
    use microscope_wire::{
        FieldValue, HelperMessage, PackData, PackTable, ProbeInfo, ProbeKind, RecordingWriter,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packs.mscr");
    let mut with_pack = header();
    with_pack.probes.push(ProbeInfo {
        id: "libbpf-tools:syscount".into(),
        key: 9,
        subsystem: "syscalls".into(),
        kind: ProbeKind::Pack,
        ..with_pack.probes[0].clone()
    });
    let mut writer = RecordingWriter::create(&path, &with_pack, false).unwrap();
    for i in 0..8u64 {
        let reading = PackData {
            probe: 9,
            ts_ns: 1_000_000_000 + i * 250_000_000,
            tables: vec![PackTable {
                map: "data".into(),
                columns: vec!["syscall".into(), "count".into()],
                key_columns: 1,
                rows: vec![vec![
                    FieldValue::Named {
                        value: 0,
                        text: "read".into(),
                    },
                    FieldValue::Uint(1000 + i * 25),
                ]],
                truncated: 0,
            }],
            histograms: Vec::new(),
        };
        writer
            .write(i * 250_000_000, &HelperMessage::PackData(reading))
            .unwrap();
    }
    writer.finish().unwrap();

    let (update_tx, updates) = bounded(1024);
    let (controls, control_rx) = bounded(16);
    controls
        .send(ReplayControl::Speed(ReplaySpeed::Max))
        .unwrap();
    let epoch = Instant::now();
    spawn_replay(path, epoch, update_tx, control_rx, Arc::new(|| {})).unwrap();
    let mut model = microscope_model::Model::for_replay(epoch, false);
    for update in drain_until_end(&updates) {
        model.apply(update);
    }
    let pack = &model.packs[&9];
    assert_eq!(pack.readings, 8);
    let row = &pack.tables[0].rows[0];
    assert_eq!(row.key, "read");
    assert_eq!(row.rate_per_sec, Some(100.0), "25 calls every 250 ms");
    assert_eq!(row.history.len(), 7);
    let calls: f64 = model
        .timeline
        .series("libbpf-tools:syscount")
        .unwrap()
        .points()
        .iter()
        .map(|p| p[1] * 0.25)
        .sum();
    assert_eq!(calls, 175.0, "the growth after the first reading");
}

/// A pack probe's stacks (`example-c:offcpu`, time off the CPU per stack)
/// go through the window's recorder like every helper message and replay
/// into the same flame-graph data: names, totals, and nanoseconds as the
/// unit.
#[test]
fn pack_stacks_record_and_replay_with_their_unit() {
    use microscope_model::{StackQuery, ValueUnit};
    use microscope_sources::Recorder;
    use microscope_wire::{Frame, HelperMessage, ProbeInfo, ProbeKind, StackBatch, StackCount};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stacks.mscr");
    let live = header();
    let mut probes = live.probes.clone();
    probes.push(ProbeInfo {
        id: "example-c:offcpu".into(),
        key: 7,
        subsystem: "sched".into(),
        kind: ProbeKind::TimeStacks,
        ..probes[0].clone()
    });
    let recorder = Recorder::default();
    recorder.observe(&HelperMessage::Hello(live.helper.clone()));
    recorder.observe(&HelperMessage::Probes(probes));
    recorder
        .start(&path, &["example-c:offcpu".to_owned()].into())
        .unwrap();
    let frame = |id: u32, name: &str, kernel: bool| Frame {
        id,
        name: name.into(),
        kernel,
    };
    for drain in 0..3u64 {
        // Names once, in the first batch; each drain adds 10 ms and 2 ms.
        let frames = if drain == 0 {
            vec![
                frame(0, "main", false),
                frame(1, "microscope_sleep_wait", false),
                frame(2, "do_nanosleep", true),
                frame(3, "pipe_read", true),
            ]
        } else {
            Vec::new()
        };
        let stack = |frames: Vec<u32>, value: u64| StackCount {
            probe: 7,
            tgid: 4242,
            comm: "sleeper".into(),
            frames,
            value,
        };
        recorder.observe(&HelperMessage::Stacks(StackBatch {
            start_ns: 1_000_000_000 * (drain + 1),
            end_ns: 1_000_000_000 * (drain + 2),
            frames,
            stacks: vec![
                stack(vec![0, 1, 2], 10_000_000),
                stack(vec![0, 3], 2_000_000),
            ],
        }));
    }
    let outcome = recorder.stop().expect("a recording was running");
    assert!(outcome.starts_with("recorded 0 events"), "{outcome}");

    let (update_tx, updates) = bounded(1024);
    let (controls, control_rx) = bounded(16);
    controls
        .send(ReplayControl::Speed(ReplaySpeed::Max))
        .unwrap();
    let epoch = Instant::now();
    spawn_replay(path, epoch, update_tx, control_rx, Arc::new(|| {})).unwrap();
    let mut model = microscope_model::Model::for_replay(epoch, false);
    for update in drain_until_end(&updates) {
        model.apply(update);
    }
    assert_eq!(model.stacks.unit(7), ValueUnit::Nanoseconds);
    let slice = model.stacks.slice(StackQuery::all().with_probe(Some(7)));
    assert_eq!(slice.unit(), ValueUnit::Nanoseconds);
    let mut totals: Vec<(String, u64)> = slice
        .iter()
        .map(|s| {
            let names: Vec<String> = s
                .frames
                .iter()
                .map(|id| slice.frame_name(*id).into_owned())
                .collect();
            assert_eq!((s.tgid, s.comm), (4242, "sleeper"));
            (names.join(";"), s.value)
        })
        .collect();
    totals.sort();
    assert_eq!(
        totals,
        [
            (
                "main;microscope_sleep_wait;do_nanosleep".to_owned(),
                30_000_000
            ),
            ("main;pipe_read".to_owned(), 6_000_000),
        ]
    );
}
