//! Guided tours and the waterfall on the bundled demo recording, driven
//! headless with `egui_kittest`: what a student without root sees.

#![expect(
    clippy::unwrap_used,
    reason = "a missing widget or file is a broken test; panicking says so"
)]

use crossbeam_channel::bounded;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use microscope_catalogue::{Catalogue, TourAction};
use microscope_gui::{CentralTab, Command, MicroscopeApp, start_label};
use std::time::{Duration, Instant};

fn demo_app() -> Harness<'static, MicroscopeApp> {
    let (_updates, update_rx) = bounded(1);
    let (to_helper, _helper_rx) = bounded(1);
    let app = MicroscopeApp::new(update_rx, to_helper);
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    let ctx = harness.ctx.clone();
    let demo = microscope_sources::demo_file().unwrap();
    harness.state_mut().start_replay(demo, true, &ctx);
    harness
}

/// Runs frames until `done` holds; fails after 60 s (a hung replay).
fn run_until(
    harness: &mut Harness<'_, MicroscopeApp>,
    what: &str,
    done: impl Fn(&MicroscopeApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        harness.run_steps(1);
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(1);
}

/// Plays the demo to its end at full speed.
fn play_to_the_end(harness: &mut Harness<'_, MicroscopeApp>) {
    run_until(harness, "the replay to start", |app| {
        app.model().replay.is_some()
    });
    harness
        .state_mut()
        .request(Command::Replay(microscope_sources::ReplayControl::Speed(
            microscope_model::ReplaySpeed::Max,
        )));
    run_until(harness, "the replay to end", |app| {
        app.model()
            .replay
            .as_ref()
            .is_some_and(|r| !r.playing && r.position_ns == r.duration_ns)
    });
}

#[test]
fn the_read_tour_is_two_clicks_away_and_lights_each_step_on_the_map() {
    let mut harness = demo_app();
    harness.run_steps(2);
    let catalogue = Catalogue::builtin();
    let tour = catalogue.tour("read").unwrap();

    // Click 1: the Tours tab. Click 2: start the read() tour.
    harness.get_by_label("Tours").click();
    harness.run_steps(2);
    harness.get_by_label(&start_label(tour)).click();
    harness.run_steps(2);
    assert_eq!(harness.state().tab(), CentralTab::Map);

    for (i, step) in tour.steps.iter().enumerate() {
        let highlight = harness.state().map_highlight();
        let nodes: Vec<&str> = highlight.nodes.iter().map(String::as_str).collect();
        let mut expected_nodes: Vec<&str> = step.nodes.iter().map(String::as_str).collect();
        expected_nodes.sort_unstable();
        assert_eq!(nodes, expected_nodes, "step {}", i + 1);
        let edges: Vec<(&str, &str)> = highlight
            .edges
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut expected_edges: Vec<(&str, &str)> = step
            .edges
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        expected_edges.sort_unstable();
        assert_eq!(edges, expected_edges, "step {}", i + 1);
        // The heading says which step, and the map's nodes say they are lit.
        harness.get_by_label(&format!(
            "Step {} of {}: {}",
            i + 1,
            tour.steps.len(),
            step.title
        ));
        let lit: Vec<String> = harness
            .query_all_by_role(Role::Button)
            .filter_map(|n| n.accesskit_node().label())
            .filter(|label| label.ends_with("(highlighted)"))
            .collect();
        assert_eq!(lit.len(), step.nodes.len(), "step {}: {lit:?}", i + 1);
        for node in &step.nodes {
            let name = &catalogue.subsystem(node).unwrap().name;
            assert!(
                lit.iter().any(|label| label.starts_with(name.as_str())),
                "step {}: {name} is not lit ({lit:?})",
                i + 1
            );
        }
        if i + 1 < tour.steps.len() {
            harness.get_by_label("Next").click();
            harness.run_steps(2);
        }
    }
    harness.get_by_label("End tour").click();
    harness.run_steps(2);
    assert!(harness.state().map_highlight().is_empty());
    assert!(harness.state().tours().position.is_none());
}

#[test]
fn the_recorded_uncached_read_is_a_waterfall_whose_parts_add_up() {
    let mut harness = demo_app();
    play_to_the_end(&mut harness);
    harness.state_mut().request(Command::FollowSlowest {
        call: "read".into(),
        tid: None,
    });
    harness.run_steps(2);
    assert_eq!(harness.state().tab(), CentralTab::Waterfall);
    // The inspector has forgotten the scheduler events around an older
    // call; the waterfall reads them from the file.
    run_until(
        &mut harness,
        "the call's events read from the file",
        |app| app.waterfall().reading.is_none(),
    );
    assert!(harness.state().waterfall().from_file);
    let waterfall = match &harness.state().waterfall().current {
        Some(Ok(w)) => w.clone(),
        other => panic!("no waterfall: {other:?}"),
    };
    assert_eq!(waterfall.call, "read");
    assert!(waterfall.went_to_disk(), "{waterfall:#?}");

    // Events in time order: the call, the request's issue, its completion,
    // the reader's wake-up, the return.
    let starts: Vec<u64> = waterfall.steps.iter().map(|s| s.start_ns).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    let first = |probe: &str| {
        waterfall
            .steps
            .iter()
            .position(|s| s.probe == probe)
            .unwrap_or_else(|| panic!("no {probe} in {waterfall:#?}"))
    };
    let enter = first("syscalls:sys_enter_read");
    let issue = first("block:block_rq_issue");
    let complete = first("block:block_rq_complete");
    let wakeup = first("sched:sched_wakeup");
    let exit = first("syscalls:sys_exit_read");
    assert!(enter < issue && issue < complete && complete < wakeup && wakeup < exit);

    // The breakdown adds up to the measured latency, exactly.
    let sum: u64 = waterfall.breakdown.iter().map(|p| p.ns).sum();
    assert_eq!(sum, waterfall.latency_ns());
    // Every milestone was seen, so no part merges two: the wait for a CPU
    // after the wake-up is its own part, and so is the time back on a CPU.
    let labels: Vec<&str> = waterfall
        .breakdown
        .iter()
        .map(|p| p.label.as_str())
        .collect();
    for part in [
        "on the device",
        "waiting for a CPU after the wake-up",
        "back on a CPU: copy to the program, return",
    ] {
        assert!(labels.contains(&part), "no part {part:?} in {labels:?}");
    }
    assert!(
        labels.iter().all(|l| !l.contains(" + ")),
        "merged parts: {labels:?}"
    );
    let back = waterfall
        .steps
        .iter()
        .position(|s| s.label == "back on a CPU")
        .unwrap_or_else(|| panic!("no switch back in {waterfall:#?}"));
    assert!(wakeup < back && back < exit);
    // The device's interrupt handler that completed the request, linked by
    // CPU and time: inferred, before the completion.
    let interrupt = waterfall
        .steps
        .iter()
        .position(|s| s.label.starts_with("completion interrupt: irq "))
        .unwrap_or_else(|| panic!("no completion interrupt in {waterfall:#?}"));
    assert_eq!(
        waterfall.steps[interrupt].link,
        microscope_model::waterfall::Link::Inferred
    );
    assert!(issue < interrupt && interrupt < complete, "{waterfall:#?}");

    // The view lists the same bars, in the same order.
    let rows: Vec<String> = harness
        .query_all_by_role(Role::Row)
        .filter_map(|n| n.accesskit_node().label())
        .collect();
    let expected: Vec<String> = waterfall
        .steps
        .iter()
        .map(microscope_gui::bar_label)
        .collect();
    assert_eq!(rows, expected);
    // And the map lights where it went.
    let highlight = harness.state().map_highlight();
    for node in ["syscalls", "block"] {
        assert!(highlight.has_node(node), "{highlight:?}");
    }
}

/// Probes whose evidence must come from the demo workload's thread for the
/// step's action (`tour-fault`, `tour-write`, `tour-read`, `tour-hit`...).
const FROM_THE_WORKLOAD: &[&str] = &[
    "exceptions:page_fault_user",
    "kmem:mm_page_alloc",
    "syscalls:sys_enter_fsync",
    "readahead:page_cache_sync_ra",
    "syscalls:sys_exit_read",
    "sock:sock_send_length",
    "sched:sched_process_fork",
];

#[test]
fn every_step_of_every_tour_finds_its_evidence_in_the_demo() {
    let mut harness = demo_app();
    play_to_the_end(&mut harness);
    let catalogue = Catalogue::builtin();
    let tours = catalogue.tours().to_vec();
    assert!(tours.len() >= 5, "{} tours", tours.len());
    for tour in &tours {
        harness
            .state_mut()
            .request(Command::StartTour(tour.id.clone()));
        harness.run_steps(2);
        for (i, step) in tour.steps.iter().enumerate() {
            harness.state_mut().request(Command::TourStep(i));
            harness.run_steps(2);
            let place = format!("tour {} step {} ({})", tour.id, i + 1, step.title);
            for probe in &step.probes {
                let model = harness.state().model();
                let kept = model
                    .probe(probe)
                    .and_then(|p| model.recent.get(&p.key))
                    .map_or(0, |events| events.len());
                assert!(kept > 0, "{place}: no {probe} event in the demo");
                // The step panel shows them; for a cache hit, the page
                // cache gains nothing from the thread that reads.
                let cache_hit = step.action == Some(TourAction::ReadFile)
                    && probe == "filemap:mm_filemap_add_to_page_cache";
                let whose = if cache_hit {
                    ", none in the thread that did the action"
                } else if FROM_THE_WORKLOAD.contains(&probe.as_str())
                    || probe == "filemap:mm_filemap_add_to_page_cache"
                {
                    " (from the thread that did the action)"
                } else {
                    ""
                };
                harness.get_by_label_contains(&format!("{probe}: {kept} events kept{whose}"));
            }
        }
    }
}

#[test]
fn a_call_the_inspector_has_forgotten_is_followed_from_the_file() {
    // The demo's first read that went to the disk: thousands of events
    // later, the inspector (newest 2 000 events per probe) no longer holds
    // its scheduler events.
    let recording =
        microscope_wire::Recording::open(microscope_sources::demo_file().unwrap()).unwrap();
    let key = |id: &str| {
        recording
            .header()
            .probes
            .iter()
            .find(|p| p.id == id)
            .unwrap()
            .key
    };
    let (enter_key, bio_key) = (key("syscalls:sys_enter_read"), key("block:block_bio_queue"));
    let mut events: Vec<microscope_wire::Event> = recording
        .frames()
        .unwrap()
        .filter_map(|frame| match frame.unwrap().message {
            microscope_wire::HelperMessage::Batch(batch) => Some(batch.events),
            _ => None,
        })
        .flatten()
        .filter(|e| e.comm == "tour-read" && (e.probe == enter_key || e.probe == bio_key))
        .collect();
    events.sort_by_key(|e| e.ts_ns);
    // The first read whose next event is a bio it queued: one that went
    // to the disk with every probe already attached.
    let (tid, enter_ns) = events
        .windows(2)
        .find(|w| w[0].probe == enter_key && w[1].probe == bio_key)
        .map(|w| (w[0].pid, w[0].ts_ns))
        .unwrap();

    let mut harness = demo_app();
    play_to_the_end(&mut harness);
    let inspector = harness.state().model().observed_events();
    // Complete: it went to the disk, was woken and got a CPU again, and no
    // part of its latency merges two milestones.
    let complete = |w: &microscope_model::waterfall::Waterfall| {
        w.went_to_disk()
            && w.steps.iter().any(|s| s.probe == "sched:sched_wakeup")
            && w.steps.iter().any(|s| s.label == "back on a CPU")
            && w.breakdown.iter().all(|p| !p.label.contains(" + "))
    };
    // From the inspector alone the call is not followed or is incomplete:
    // its older events are no longer kept.
    let from_inspector = microscope_model::waterfall::follow(&inspector, tid, enter_ns);
    assert!(
        from_inspector.as_ref().map_or(true, |w| !complete(w)),
        "the inspector still holds all of the first read's events: the test proves nothing"
    );
    harness.state_mut().request(Command::FollowCall {
        tid,
        ts_ns: enter_ns,
    });
    harness.run_steps(2);
    run_until(
        &mut harness,
        "the call's events read from the file",
        |app| app.waterfall().reading.is_none(),
    );
    let state = harness.state().waterfall();
    let waterfall = match &state.current {
        Some(Ok(w)) => w.clone(),
        other => panic!("not followed from the file: {other:?}"),
    };
    assert!(state.from_file);
    assert_eq!((waterfall.tid, waterfall.enter_ns), (tid, enter_ns));
    assert!(complete(&waterfall), "{waterfall:#?}");
    assert_eq!(
        waterfall.breakdown.iter().map(|p| p.ns).sum::<u64>(),
        waterfall.latency_ns()
    );
    harness.get_by_label_contains("every event around it, read from the recording");
}
