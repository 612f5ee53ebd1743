//! Browsing a recording larger than what the live views keep: the first and
//! the last scheduler slice and the first and the last event of a probe are
//! all read back from the file (a real file, the real browser thread).

use crossbeam_channel::Receiver;
use microscope_model::{BrowseUpdate, MAX_SLICES, RECENT_EVENTS, Update};
use microscope_sources::BrowseRequest;
use microscope_wire::EventData;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "fixtures/large.rs"]
mod large;
use large::{OPENAT_KEY, SWITCH_KEY, write_large};

/// Fails a stuck browser; never reached by a working one.
const PATIENCE: Duration = Duration::from_secs(600);

fn next_answer(updates: &Receiver<Update>) -> BrowseUpdate {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match updates.recv_timeout(left).expect("the browser answers") {
            Update::Browse(BrowseUpdate::Progress(_)) => {}
            Update::Browse(update) => return update,
            other => panic!("not a browser update: {other:?}"),
        }
    }
}

#[test]
fn every_switch_and_event_of_a_recording_beyond_the_memory_caps_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    // More switches than the live CPU timeline keeps, and far more openat
    // events than the inspector keeps.
    let events = (MAX_SLICES as u64) * 64 / 63 + 20_000;
    let large = write_large(dir.path(), events);
    assert!(large.switches > MAX_SLICES as u64);
    assert!(large.opens > RECENT_EVENTS as u64);

    let (updates, requests) = microscope_sources::browse(&large.path, Arc::new(|| {})).unwrap();
    let BrowseUpdate::Overview(overview) = next_answer(&updates) else {
        panic!("the first answer is not the overview");
    };
    assert_eq!(overview.events_of(SWITCH_KEY), large.switches);
    assert_eq!(overview.events_of(OPENAT_KEY), large.opens);
    assert_eq!(overview.cpus().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(
        overview.switches_between(overview.start_ns, overview.end_ns + 1),
        large.switches
    );

    // The CPU timeline at the very start and at the very end.
    for (at_ns, task) in [
        (large.first_switch_ns, "alpha"),
        (large.last_switch_ns, "omega"),
    ] {
        requests
            .send(BrowseRequest::CpuWindow {
                from_ns: at_ns,
                to_ns: at_ns + 1,
            })
            .unwrap();
        let BrowseUpdate::CpuWindow(window) = next_answer(&updates) else {
            panic!("no window for {at_ns}");
        };
        let slice = (0..2)
            .filter_map(|cpu| window.timeline.slice_at(cpu, at_ns))
            .find(|slice| slice.start_ns == at_ns)
            .expect("the slice that starts at that moment");
        assert_eq!(window.timeline.task_name(&slice), task);
        // The same time axis as the replayed timeline.
        assert_eq!(window.timeline.anchor(), overview.anchor);
    }

    // Every event of a time range, for the waterfall: the first switch,
    // read back from the start of the file, split into its two halves,
    // and nothing outside the range.
    requests
        .send(BrowseRequest::CallEvents {
            tid: 7,
            at_ns: large.first_switch_ns,
            from_ns: large.first_switch_ns,
            to_ns: large.first_switch_ns,
        })
        .unwrap();
    let BrowseUpdate::CallEvents(call) = next_answer(&updates) else {
        panic!("no call events");
    };
    assert_eq!(
        (call.tid, call.at_ns, call.truncated),
        (7, large.first_switch_ns, false)
    );
    let kinds: Vec<_> = call
        .events
        .iter()
        .map(|o| (o.ts_ns, o.probe.as_str(), std::mem::discriminant(&o.kind)))
        .collect();
    assert_eq!(kinds.len(), 2, "{:?}", call.events);
    assert!(
        call.events
            .iter()
            .all(|o| o.ts_ns == large.first_switch_ns && o.probe == "sched:sched_switch"),
        "{:?}",
        call.events
    );
    assert!(matches!(
        call.events[1].kind,
        microscope_model::waterfall::Kind::SwitchIn { .. }
    ));
    // No system call there: following says so plainly.
    assert!(call.follow().is_err());

    // The inspector's first and last pages.
    let filename = |event: &microscope_wire::Event| match &event.data {
        EventData::Openat { filename, .. } => filename.clone(),
        other => panic!("not an openat: {other:?}"),
    };
    for (first, count, expected) in [(0, 10, "/first"), (large.opens - 10, 10, "/last")] {
        requests
            .send(BrowseRequest::Events {
                probe: OPENAT_KEY,
                first,
                count,
            })
            .unwrap();
        let BrowseUpdate::Page(page) = next_answer(&updates) else {
            panic!("no page from {first}");
        };
        assert_eq!((page.first, page.events.len()), (first, 10));
        assert_eq!(page.total, large.opens);
        let event = if first == 0 {
            page.events.first()
        } else {
            page.events.last()
        };
        assert_eq!(filename(event.unwrap()), expected);
    }
}

#[test]
fn a_baseline_recording_is_read_whole() {
    #[path = "fixtures/recording.rs"]
    mod recording;
    let dir = tempfile::tempdir().unwrap();
    let path = recording::write_recording(dir.path());
    let updates = microscope_sources::baseline(&path, Arc::new(|| {})).unwrap();
    let BrowseUpdate::Baseline(baseline) = next_answer(&updates) else {
        panic!("no baseline");
    };
    assert_eq!(baseline.path, path);
    let series = baseline
        .timeline
        .series("syscalls:sys_enter_openat")
        .expect("the probe's rates");
    let events: f64 = series
        .points()
        .iter()
        .map(|p| p[1] * microscope_model::BUCKET.as_secs_f64())
        .sum();
    assert_eq!(
        events.round() as u64,
        recording::BATCHES * recording::EVENTS_PER_BATCH as u64
    );

    // A file that is not a recording: a sentence, not a panic.
    let garbage = dir.path().join("garbage.mscr");
    std::fs::write(&garbage, b"not a recording").unwrap();
    let updates = microscope_sources::baseline(&garbage, Arc::new(|| {})).unwrap();
    let BrowseUpdate::Failed(reason) = next_answer(&updates) else {
        panic!("a garbage baseline was accepted");
    };
    assert!(reason.contains("garbage.mscr"), "{reason}");
}
