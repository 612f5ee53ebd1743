//! The map as painted in the real app window, at the sizes people use
//! (1280×800 and 1920×1080, with and without the details panel, with and
//! without the "Elsewhere in the kernel" row): no text overlaps another
//! text, a node or the legend; names stay inside their nodes; no edge
//! passes through a node. The rectangles are the ones the view painted in
//! that frame ([`MicroscopeApp::map_layout`]), measured with egui's fonts.

#![expect(
    clippy::unwrap_used,
    reason = "a failed send is a broken test; panicking says so"
)]

use crossbeam_channel::bounded;
use egui::{Pos2, Rect};
use egui_kittest::Harness;
use microscope_gui::map_layout::{MapLayout, segment_hits_rect};
use microscope_gui::{CentralTab, Command, MicroscopeApp};
use microscope_model::{Clock, HelperSummary, Probe, ProbeCount, ProbeKind, Update};
use std::time::Instant;

fn probe(id: &str, key: microscope_wire::ProbeKey, subsystem: &str) -> Probe {
    Probe {
        id: id.into(),
        key,
        subsystem: subsystem.into(),
        description: format!("{id} happens"),
        kind: ProbeKind::Fields,
        unavailable_reason: None,
        enabled: true,
        fields: Vec::new(),
    }
}

/// The app at `size`, on the map, with events from the built-in pack's
/// subsystems and (with `elsewhere`) from two categories outside it;
/// with `details`, the memory subsystem's details open.
fn painted(size: [f32; 2], details: bool, elsewhere: bool) -> Harness<'static, MicroscopeApp> {
    let (updates, update_rx) = bounded(64);
    let (command_tx, _to_helper) = bounded(64);
    let clock = Clock::manual(Instant::now());
    let mut app = MicroscopeApp::new(update_rx, command_tx).with_clock(clock.clone());
    app.request(Command::ShowTab(CentralTab::Map));
    if details {
        app.request(Command::SelectSubsystem("memory".into()));
    }
    let mut harness = Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, app: &mut MicroscopeApp| app.show_ui(ui), app);
    updates
        .send(Update::Connected(HelperSummary {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0-test".into(),
            capabilities: Vec::new(),
        }))
        .unwrap();
    let mut probes = vec![
        probe("block:block_rq_issue", 1, "block"),
        probe("sched:sched_switch", 2, "sched"),
    ];
    if elsewhere {
        probes.push(probe("i915:i915_request_add", 3, "Graphics"));
        probes.push(probe("kvm:kvm_exit", 4, "Virtualisation"));
    }
    let counts = probes
        .iter()
        .map(|p| ProbeCount {
            key: p.key,
            events: 1000,
        })
        .collect();
    updates.send(Update::Probes(probes)).unwrap();
    updates
        .send(Update::Events {
            arrived: clock.now(),
            counts,
            drops: Vec::new(),
            sched: Vec::new(),
            by_comm: Vec::new(),
            recent: Vec::new(),
        })
        .unwrap();
    harness.run_steps(4);
    harness
}

/// Pairs of rectangles that overlap by more than a hair.
fn overlaps(rects: &[(String, Rect)]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, (a_name, a)) in rects.iter().enumerate() {
        for (b_name, b) in &rects[i + 1..] {
            if a.shrink(0.5).intersects(b.shrink(0.5)) {
                found.push(format!("{a_name} {a:?} overlaps {b_name} {b:?}"));
            }
        }
    }
    found
}

fn check(size: [f32; 2], details: bool, elsewhere: bool) {
    let what = format!("{size:?}, details {details}, elsewhere {elsewhere}");
    let harness = painted(size, details, elsewhere);
    let app = harness.state();
    let layout: &MapLayout = app.map_layout().expect("the map was painted");
    let map = app.map();
    assert_eq!(
        layout.nodes.len(),
        map.graph().node_count(),
        "every node is painted ({what})"
    );
    if elsewhere {
        assert!(
            map.graph().node_weights().any(|n| n.name == "i915"),
            "the Elsewhere row is there ({what})"
        );
    }
    // 1. Texts, nodes and the legend's parts do not overlap each other.
    let solid = layout.solid_rects();
    let found = overlaps(&solid);
    assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
    // 2. Everything is inside the map's area; the legend is under the
    //    content; names and rates are inside their nodes, on few lines,
    //    and no line was cut.
    for (name, rect) in &solid {
        assert!(
            layout.canvas.expand(0.5).contains_rect(*rect),
            "{name} {rect:?} leaves the map {:?} ({what})",
            layout.canvas
        );
    }
    assert!(layout.legend.rect.min.y >= layout.content.max.y - 0.5);
    for node in &layout.nodes {
        let name = &map.graph()[node.index].name;
        assert!(
            !node.name.is_empty() && node.name.len() <= 3,
            "{name}: {:?} ({what})",
            node.name
        );
        let joined: Vec<&str> = node.name.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            joined.join(" "),
            name.split_whitespace().collect::<Vec<_>>().join(" "),
            "{name} is written whole, wrapped between words only ({what})"
        );
        for line in &node.name {
            assert!(
                node.rect.contains_rect(line.rect),
                "`{}` {:?} spills out of its node {:?} ({what})",
                line.text,
                line.rect,
                node.rect
            );
        }
        assert!(node.rect.contains_rect(node.rate), "{name}'s rate ({what})");
        assert!(
            node.name.iter().all(|l| !l.rect.intersects(node.rate)),
            "{name}'s rate under its name ({what})"
        );
        assert!(
            node.name[0].size >= 10.0,
            "{name} is written at {} pt, too small to read ({what})",
            node.name[0].size
        );
    }
    // 3. No edge passes through a node, its own two included (an edge
    //    starts and ends on their borders).
    for edge in &layout.edges {
        let (from, to) = map.graph().edge_endpoints(edge.edge).unwrap();
        let ends = (&map.graph()[from].name, &map.graph()[to].name);
        assert!(edge.points.len() >= 2, "{ends:?}");
        for node in &layout.nodes {
            for pair in edge.points.windows(2) {
                assert!(
                    !segment_hits_rect(pair[0], pair[1], node.rect.shrink(1.0)),
                    "the edge {ends:?} crosses {} at {:?}–{:?} ({what})",
                    map.graph()[node.index].name,
                    pair[0],
                    pair[1]
                );
            }
            for line in layout.bands.iter().flat_map(|b| &b.label) {
                for pair in edge.points.windows(2) {
                    assert!(
                        !segment_hits_rect(pair[0], pair[1], line.rect),
                        "the edge {ends:?} crosses the band name `{}` ({what})",
                        line.text
                    );
                }
            }
        }
        let first = edge.points[0];
        let last = edge.points[edge.points.len() - 1];
        let on_border = |p: Pos2, r: Rect| r.expand(0.5).contains(p) && !r.shrink(0.5).contains(p);
        let (a, b) = (
            layout.node(from).unwrap().rect,
            layout.node(to).unwrap().rect,
        );
        assert!(
            on_border(first, a),
            "{ends:?} starts on its source ({what})"
        );
        assert!(on_border(last, b), "{ends:?} ends on its target ({what})");
    }
    // 4. With the details panel open, the map gives it room.
    if details {
        assert!(
            layout.canvas.max.x < size[0] - 200.0,
            "{what}: {:?}",
            layout.canvas
        );
    }
}

#[test]
fn nothing_overlaps_at_1280x800() {
    check([1280.0, 800.0], false, false);
    check([1280.0, 800.0], true, false);
    check([1280.0, 800.0], true, true);
}

#[test]
fn nothing_overlaps_at_1920x1080() {
    check([1920.0, 1080.0], false, false);
    check([1920.0, 1080.0], true, false);
    check([1920.0, 1080.0], false, true);
}

#[test]
fn a_small_window_still_keeps_text_in_its_nodes() {
    // Smaller than the sizes people use (the GUI snapshot's): the rows are
    // tight, the sparklines go, but nothing overlaps or spills.
    check([1000.0, 640.0], false, false);
}

#[test]
fn the_overlap_check_sees_an_overlap() {
    let a = Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(10.0, 10.0));
    let b = Rect::from_min_max(Pos2::new(9.0, 9.0), Pos2::new(20.0, 20.0));
    let c = Rect::from_min_max(Pos2::new(10.0, 0.0), Pos2::new(20.0, 8.0));
    assert_eq!(overlaps(&[("a".into(), a), ("b".into(), b)]).len(), 1);
    assert!(
        overlaps(&[("a".into(), a), ("c".into(), c)]).is_empty(),
        "touching is not overlapping"
    );
}
