//! The flame graph and paths views, driven headless with `egui_kittest`.
//! Stacks go into a `Model`'s `StackStore` as the ingest side will put
//! them; frames and functions are found by their accessible names and
//! clicked.

#![expect(
    clippy::unwrap_used,
    reason = "a failed lookup is a broken test; panicking says so"
)]

use crossbeam_channel::bounded;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use microscope_gui::{
    BREADCRUMBS, CALL_GRAPH, Command, CommandQueue, DiffRanges, FRAMES, FlameLayout, FlameView,
    MicroscopeApp, NO_SAMPLES_IN_RANGE, NO_STACKS, PathsView, region,
};
use microscope_model::{FlameGraph, Model, StackStore};
use std::collections::HashMap;
use std::time::Instant;

const SECOND: u64 = 1_000_000_000;

/// Four paths into the kernel and an idle loop: 100 samples.
const FOLDED: &str = "\
main;read;vfs_read;ext4_read 30
main;read;vfs_read 10
main;write;vfs_write 40
main;compute 15
idle 5
";

/// Adds folded lines to `store` as samples of probe 1 in process 100
/// (`app`), one line per millisecond from `t0_ns`, naming frames as needed.
fn add_folded(store: &mut StackStore, text: &str, t0_ns: u64) {
    let mut ids: HashMap<String, u32> = HashMap::new();
    // Ids already named keep their number.
    for id in 0..1000 {
        let name = store.frame_name(id);
        if !name.starts_with("[unknown") {
            ids.insert(name.into_owned(), id);
        }
    }
    for (line_number, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let frames: Vec<u32> = stack
            .split(';')
            .map(|name| {
                let next = u32::try_from(ids.len()).unwrap() + 1;
                *ids.entry(name.to_owned()).or_insert_with(|| {
                    store.intern_frame(next, name.to_owned(), false);
                    next
                })
            })
            .collect();
        let t_ns = t0_ns + line_number as u64 * 1_000_000;
        store.add(t_ns, 1, 100, "app", &frames, count.parse().unwrap());
    }
}

struct FlameState {
    model: Model,
    view: FlameView,
    commands: CommandQueue,
}

fn flame_harness(text: &str, size: [f32; 2]) -> Harness<'static, FlameState> {
    let mut model = Model::new(Instant::now());
    add_folded(&mut model.stacks, text, SECOND);
    let mut view = FlameView::new();
    view.by_process = false;
    let state = FlameState {
        model,
        view,
        commands: CommandQueue::default(),
    };
    let mut harness = Harness::builder().with_size(size).build_ui_state(
        |ui, state: &mut FlameState| {
            state.view.ui(ui, &state.model, &mut state.commands);
        },
        state,
    );
    harness.run_steps(2);
    harness
}

fn frame_label(name: &str, samples: u64) -> String {
    format!("{name} — {samples} samples ({samples}.0 %)")
}

#[test]
fn clicking_a_frame_zooms_and_the_breadcrumbs_go_back() {
    let mut harness = flame_harness(FOLDED, [1000.0, 600.0]);
    assert!(harness.state().view.zoom_path().is_empty());
    harness
        .get_by_label(FRAMES)
        .get_by_label(&frame_label("vfs_read", 40))
        .click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().view.zoom_path(),
        ["main", "read", "vfs_read"]
    );
    // Zoomed: only vfs_read and what it called are drawn.
    let frames = harness.get_by_label(FRAMES);
    frames.get_by_label(&frame_label("ext4_read", 30));
    assert!(frames.query_by_label(&frame_label("idle", 5)).is_none());
    assert!(
        frames
            .query_by_label(&frame_label("vfs_write", 40))
            .is_none()
    );

    // The breadcrumbs hold the ancestors: back to `main`…
    harness
        .get_by_label(BREADCRUMBS)
        .get_by_label("main")
        .click();
    harness.run_steps(2);
    assert_eq!(harness.state().view.zoom_path(), ["main"]);
    let frames = harness.get_by_label(FRAMES);
    frames.get_by_label(&frame_label("vfs_write", 40));
    assert!(frames.query_by_label(&frame_label("idle", 5)).is_none());

    // …and to the root.
    harness
        .get_by_label(BREADCRUMBS)
        .get_by_label("all")
        .click();
    harness.run_steps(2);
    assert!(harness.state().view.zoom_path().is_empty());
    harness
        .get_by_label(FRAMES)
        .get_by_label(&frame_label("idle", 5));
}

#[test]
fn hovering_a_frame_shows_its_self_and_total() {
    let mut harness = flame_harness(FOLDED, [1000.0, 600.0]);
    harness
        .get_by_label(FRAMES)
        .get_by_label(&frame_label("read", 40))
        .click();
    harness.run_steps(2);
    harness
        .get_by_label(FRAMES)
        .get_by_label(&frame_label("vfs_read", 40))
        .hover();
    harness.run_steps(2);
    harness.get_by_label("total: 40 samples (40.0 % of all, 100.0 % of the zoomed frame)");
    harness.get_by_label("self: 10 samples");
}

#[test]
fn search_highlights_matches_and_reports_their_share() {
    let mut harness = flame_harness(FOLDED, [1000.0, 600.0]);
    harness.get_by_label("Search").click();
    harness.run_steps(1);
    harness.get_by_label("Search").type_text("READ");
    harness.run_steps(3);
    // `read` (40) holds the other matches (vfs_read, ext4_read): 40 %.
    harness.get_by_label("matched: 40.0 %");
    let view = &harness.state().view;
    let graph = view.graph().unwrap();
    let result = view.search_result().unwrap();
    let matched: Vec<&str> = result.matched_nodes().map(|n| graph.name(n)).collect();
    assert_eq!(matched, ["read", "vfs_read", "ext4_read"]);

    harness.state_mut().view.set_search("vfs");
    harness.run_steps(2);
    harness.get_by_label("matched: 80.0 %");
}

#[test]
fn the_time_slice_only_includes_samples_in_range() {
    let mut model = Model::new(Instant::now());
    add_folded(&mut model.stacks, "early;a 7\n", SECOND);
    add_folded(&mut model.stacks, "late;b 3\n", 5 * SECOND);
    let mut view = FlameView::new();
    view.by_process = false;
    view.set_range(4 * SECOND, 6 * SECOND);
    let mut harness = Harness::builder().with_size([800.0, 400.0]).build_ui_state(
        |ui, state: &mut FlameState| state.view.ui(ui, &state.model, &mut state.commands),
        FlameState {
            model,
            view,
            commands: CommandQueue::default(),
        },
    );
    harness.run_steps(2);
    let frames = harness.get_by_label(FRAMES);
    frames.get_by_label("late — 3 samples (100.0 %)");
    assert!(frames.query_by_label_contains("early").is_none());
    assert_eq!(harness.state().view.graph().unwrap().total(), 3);

    // A range with nothing in it says so.
    harness.state_mut().view.set_range(2 * SECOND, 3 * SECOND);
    harness.run_steps(2);
    harness.get_by_label(NO_SAMPLES_IN_RANGE);
}

#[test]
fn unknown_frame_ids_are_drawn_with_a_placeholder() {
    let mut model = Model::new(Instant::now());
    model
        .stacks
        .intern_frame(1, "entry_SYSCALL_64".into(), false);
    model.stacks.add(SECOND, 1, 100, "app", &[1, 42], 3);
    let mut view = FlameView::new();
    view.by_process = false;
    let mut harness = Harness::builder().with_size([800.0, 400.0]).build_ui_state(
        |ui, state: &mut FlameState| state.view.ui(ui, &state.model, &mut state.commands),
        FlameState {
            model,
            view,
            commands: CommandQueue::default(),
        },
    );
    harness.run_steps(2);
    harness
        .get_by_label(FRAMES)
        .get_by_label("[unknown frame #42] — 3 samples (100.0 %)");
    // The name arrives late: the graph is rebuilt with it.
    harness
        .state_mut()
        .model
        .stacks
        .intern_frame(42, "do_sys_openat2".into(), false);
    harness.run_steps(2);
    harness
        .get_by_label(FRAMES)
        .get_by_label("do_sys_openat2 — 3 samples (100.0 %)");
}

#[test]
fn frames_split_by_process_and_the_process_filter_keeps_one() {
    let mut model = Model::new(Instant::now());
    add_folded(&mut model.stacks, FOLDED, SECOND);
    model.stacks.intern_frame(500, "dd_main".into(), false);
    model.stacks.add(2 * SECOND, 1, 200, "dd", &[500], 25);
    let mut harness = Harness::builder()
        .with_size([1000.0, 600.0])
        .build_ui_state(
            |ui, state: &mut FlameState| state.view.ui(ui, &state.model, &mut state.commands),
            FlameState {
                model,
                view: FlameView::new(),
                commands: CommandQueue::default(),
            },
        );
    harness.run_steps(2);
    harness
        .get_by_label(FRAMES)
        .get_by_label("app (100) — 100 samples (80.0 %)");
    harness
        .get_by_label(FRAMES)
        .get_by_label("dd (200) — 25 samples (20.0 %)");
    harness.get_by_value("All processes").click();
    harness.run_steps(2);
    harness.get_by_label("dd (200) — 25 samples").click();
    harness.run_steps(2);
    assert_eq!(harness.state().view.graph().unwrap().total(), 25);
    let frames = harness.get_by_label(FRAMES);
    frames.get_by_label("dd_main — 25 samples (100.0 %)");
    assert!(frames.query_by_label_contains("app (100)").is_none());
}

#[test]
fn a_frozen_view_ignores_new_samples_until_live_again() {
    let mut harness = flame_harness(FOLDED, [1000.0, 600.0]);
    harness.get_by_label("Live").click();
    harness.run_steps(2);
    assert!(!harness.state().view.filters.is_live());
    add_folded(
        &mut harness.state_mut().model.stacks,
        "idle 100\n",
        2 * SECOND,
    );
    harness.run_steps(2);
    assert_eq!(harness.state().view.graph().unwrap().total(), 100);
    harness.get_by_label("Live").click();
    harness.run_steps(2);
    assert_eq!(harness.state().view.graph().unwrap().total(), 200);
}

#[test]
fn diff_mode_colours_growth_and_shrinkage_each_side_normalised() {
    let mut model = Model::new(Instant::now());
    // Before: read 50 %, write 50 %. After (twice the samples): read 80 %.
    add_folded(&mut model.stacks, "m;read 50\nm;write 50\n", SECOND);
    add_folded(&mut model.stacks, "m;read 160\nm;write 40\n", 3 * SECOND);
    let mut view = FlameView::new();
    view.by_process = false;
    view.set_diff(Some(DiffRanges {
        baseline: (SECOND, 2 * SECOND),
        comparison: (3 * SECOND, 4 * SECOND),
    }));
    let mut harness = Harness::builder().with_size([800.0, 400.0]).build_ui_state(
        |ui, state: &mut FlameState| state.view.ui(ui, &state.model, &mut state.commands),
        FlameState {
            model,
            view,
            commands: CommandQueue::default(),
        },
    );
    harness.run_steps(2);
    let graph = harness.state().view.graph().unwrap();
    assert!(graph.is_differential());
    assert_eq!((graph.baseline_total(), graph.total()), (100, 200));
    let ratio = |name: &str| {
        graph
            .diff_ratio(graph.find_path(&["m", name]).unwrap())
            .unwrap()
    };
    assert!(ratio("read") > 0.0, "read went from 50 % to 80 %");
    assert!(ratio("write") < 0.0, "write went from 50 % to 20 %");
    assert_eq!(ratio("read"), (0.8 - 0.5) / 0.8);
    // The comparison's shape is drawn.
    harness
        .get_by_label(FRAMES)
        .get_by_label("read — 160 samples (80.0 %)");
    // The Diff checkbox is ticked and turns it off.
    harness.get_by_label("Diff").click();
    harness.run_steps(2);
    assert_eq!(harness.state().view.diff(), None);
    assert!(!harness.state().view.graph().unwrap().is_differential());
}

#[test]
fn icicle_puts_the_root_on_top() {
    let mut harness = flame_harness(FOLDED, [800.0, 500.0]);
    let root = "all — 100 samples (100.0 %)";
    let leaf = "ext4_read — 30 samples (30.0 %)";
    let y = |harness: &Harness<'_, FlameState>, label: &str| {
        harness
            .get_by_label(FRAMES)
            .get_by_label(label)
            .rect()
            .center()
            .y
    };
    assert!(
        y(&harness, root) > y(&harness, leaf),
        "flame: root at the bottom"
    );
    harness.get_by_label("Icicle").click();
    harness.run_steps(2);
    assert_eq!(harness.state().view.layout, FlameLayout::Icicle);
    assert!(
        y(&harness, root) < y(&harness, leaf),
        "icicle: root at the top"
    );
}

#[test]
fn export_writes_the_graph_shown_as_folded_stacks() {
    let mut harness = flame_harness(FOLDED, [1000.0, 600.0]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.folded");
    let lines = harness.state_mut().view.export_folded(&file).unwrap();
    assert_eq!(lines, 5);
    let text = std::fs::read_to_string(&file).unwrap();
    let shown = harness.state().view.graph().unwrap();
    assert_eq!(&FlameGraph::from_folded(&text).unwrap(), shown);
    assert_eq!(&FlameGraph::from_folded(FOLDED).unwrap(), shown);
    harness.run_steps(1);
    harness.get_by_label(&format!("Wrote 5 folded stacks to {}.", file.display()));

    // A failure is a sentence in the view, not a panic.
    let bad = dir.path().join("missing-dir").join("out.folded");
    assert!(harness.state_mut().view.export_folded(&bad).is_err());
    harness.run_steps(1);
    harness.get_by_label_contains(&format!(
        "Could not write the folded stacks to {}: No such file or directory",
        bad.display()
    ));
    harness.get_by_label_contains("Choose another file, in a folder you can write to.");
}

#[test]
fn an_empty_store_explains_where_stacks_come_from() {
    let (_updates, update_rx) = bounded(4);
    let (to_helper, _to_helper_rx) = bounded(4);
    let app = MicroscopeApp::new(update_rx, to_helper);
    let mut harness = Harness::builder()
        .with_size([1000.0, 640.0])
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    harness.run_steps(2);
    harness
        .get_by_label(region::TABS)
        .get_by_label("Flame")
        .click();
    harness.run_steps(2);
    harness.get_by_label(region::FLAME).get_by_label(NO_STACKS);
    harness
        .get_by_label(region::TABS)
        .get_by_label("Paths")
        .click();
    harness.run_steps(2);
    harness.get_by_label(region::PATHS).get_by_label(NO_STACKS);
    // The timeline's selection reaches both views through one command.
    harness.state_mut().request(Command::ShowStackRange {
        start_ns: 5,
        end_ns: 9,
    });
    harness.run_steps(1);
    // The tab row offers every view, the two stack views among them.
    let tabs = harness.get_by_label(region::TABS);
    for title in ["Map", "Rates", "CPUs", "Events", "Flame", "Paths"] {
        tabs.get_by_label(title);
    }
    let app = harness.state();
    assert_eq!(
        app.flame_view().filters.resolved_range(&app.model().stacks),
        (5, 9)
    );
    assert_eq!(
        app.paths_view().filters.resolved_range(&app.model().stacks),
        (5, 9)
    );
}

#[test]
fn snapshot_flame_graph() {
    let mut harness = flame_harness(FOLDED, [640.0, 260.0]);
    harness.state_mut().view.set_search("vfs");
    harness.run_steps(2);
    harness.snapshot("flame_graph");
}

// The paths view.

/// Three ways into `submit_bio`, one heavy, and a recursion.
const PATHS: &str = "\
entry;sys_read;vfs_read;ext4_read;submit_bio 50
entry;sys_write;vfs_write;ext4_write;submit_bio 30
entry;sys_fsync;ext4_sync;submit_bio 10
entry;sys_read;walk;walk;walk 10
";

struct PathsState {
    model: Model,
    view: PathsView,
}

fn paths_harness() -> Harness<'static, PathsState> {
    let mut model = Model::new(Instant::now());
    add_folded(&mut model.stacks, PATHS, SECOND);
    let mut harness = Harness::builder()
        .with_size([1100.0, 700.0])
        .build_ui_state(
            |ui, state: &mut PathsState| state.view.ui(ui, &state.model),
            PathsState {
                model,
                view: PathsView::new(),
            },
        );
    harness.run_steps(2);
    harness
}

fn shown(harness: &Harness<'_, PathsState>, name: &str) -> bool {
    harness
        .get_by_label(CALL_GRAPH)
        .query_by_label_contains(&format!("{name} — "))
        .is_some()
}

#[test]
fn paths_start_with_the_first_layers_and_the_heaviest_path() {
    let harness = paths_harness();
    harness
        .get_by_label(CALL_GRAPH)
        .get_by_label("submit_bio — 90 samples (90.0 %)");
    for name in [
        "entry",
        "sys_read",
        "vfs_read",
        "ext4_read",
        "ext4_sync",
        "walk",
    ] {
        assert!(shown(&harness, name), "{name} is shown");
    }
    // Depth 2 off the heaviest path stays closed.
    assert!(shown(&harness, "vfs_write"));
    assert!(!shown(&harness, "ext4_write"));
}

#[test]
fn clicking_a_function_shows_or_hides_its_callees() {
    let mut harness = paths_harness();
    harness
        .get_by_label(CALL_GRAPH)
        .get_by_label_contains("vfs_write — ")
        .click();
    harness.run_steps(2);
    assert!(shown(&harness, "ext4_write"));
    assert!(
        harness
            .state()
            .view
            .expanded()
            .unwrap()
            .contains("vfs_write")
    );

    // Closing sys_write hides vfs_write, and with it ext4_write.
    harness
        .get_by_label(CALL_GRAPH)
        .get_by_label_contains("sys_write — ")
        .click();
    harness.run_steps(2);
    assert!(!shown(&harness, "vfs_write"));
    assert!(!shown(&harness, "ext4_write"));
    let nodes = harness.state().view.layout().unwrap().node_count();
    harness
        .get_by_label(CALL_GRAPH)
        .get_by_label_contains("sys_write — ")
        .click();
    harness.run_steps(2);
    assert!(shown(&harness, "vfs_write"));
    assert_eq!(
        harness.state().view.layout().unwrap().node_count(),
        nodes + 2
    );
}
