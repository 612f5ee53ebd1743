//! The subsystem map: the kernel's parts in layers, lit by live event
//! rates; click a part to read what it does and switch its probes.

use crate::command::CommandQueue;
use crate::map_layout;
use crate::theme;
use crate::views::probes_panel::probe_checkbox_ui;
use egui::{Align2, Color32, FontId, Pos2, Rect, Role, Sense, Stroke, Vec2, WidgetInfo};
use microscope_model::Probe;
use microscope_model::map::{MapHighlight, SubsystemMap};
use microscope_model::{Model, format_rate};
use std::time::Instant;

/// What the map view remembers between frames.
#[derive(Clone, Debug, Default)]
pub struct MapState {
    /// The subsystem whose details are shown.
    pub selected: Option<String>,
    /// The probe a search jumped to (highlighted in the details).
    pub highlighted_probe: Option<String>,
    /// The search box.
    pub search: String,
    /// Nodes and edges drawn bold, the rest dimmed: set by a tour step or a
    /// followed operation (see [`Command::HighlightMap`](crate::command::Command::HighlightMap)).
    pub highlight: MapHighlight,
    /// Zoom and pan.
    pub view: map_layout::View,
    /// Whether the keyboard focus is on one of the map's nodes (so +, −
    /// and 0 zoom the map).
    pub focus_in_map: bool,
    /// What was painted last frame, for tests and tours.
    pub last_layout: Option<map_layout::MapLayout>,
}

/// Accessible label of a map node: its name and its rate.
pub fn node_label(name: &str, rate: f64) -> String {
    format!("{name} — {} events/s", format_rate(rate))
}

/// Events per second of every enabled probe whose events the map shows at
/// node `id` (see [`SubsystemMap::node_of_probe`]).
pub fn subsystem_rate(model: &Model, map: &SubsystemMap, id: &str, now: Instant) -> f64 {
    probes_of_node(model, map, id)
        .filter(|p| p.enabled)
        .map(|p| model.timeline.rate_per_sec(&p.id, now))
        .sum()
}

/// The probes whose events the map shows at node `id`.
fn probes_of_node<'a>(
    model: &'a Model,
    map: &'a SubsystemMap,
    id: &str,
) -> impl Iterator<Item = &'a Probe> {
    let node = map.node(id);
    model
        .probes
        .iter()
        .filter(move |p| node.is_some() && map.node_of_probe(p) == node)
}

/// Draws the map, its search box and the selected subsystem's details.
pub fn map_ui(
    ui: &mut egui::Ui,
    model: &Model,
    map: &SubsystemMap,
    state: &mut MapState,
    now: Instant,
    commands: &mut CommandQueue,
) {
    search_ui(ui, model, map, state);
    let available = ui.available_rect_before_wrap();
    let details_width = if state.selected.is_some() {
        (available.width() * 0.36).clamp(260.0, 460.0)
    } else {
        0.0
    };
    let canvas = Rect::from_min_max(
        available.min,
        Pos2::new(available.max.x - details_width, available.max.y),
    );
    let data: Vec<NodeData> = map
        .graph()
        .node_weights()
        .map(|n| NodeData {
            rate: subsystem_rate(model, map, &n.id, now),
            spark: node_sparkline(model, map, &n.id),
            on: probes_of_node(model, map, &n.id).any(|p| p.enabled),
        })
        .collect();
    canvas_ui(ui, map, state, canvas, &data);
    if let Some(id) = state.selected.clone() {
        let rect = Rect::from_min_max(
            Pos2::new(canvas.max.x + theme::ITEM_GAP, available.min.y),
            available.max,
        );
        ui.scope_builder(
            egui::UiBuilder::new()
                .max_rect(rect)
                .accessibility_label(crate::views::region::MAP_DETAILS),
            |ui| details_ui(ui, model, map, state, &id, now, commands),
        );
    }
    ui.advance_cursor_after_rect(available);
}

fn search_ui(ui: &mut egui::Ui, model: &Model, map: &SubsystemMap, state: &mut MapState) {
    ui.horizontal(|ui| {
        ui.label("Find:");
        ui.add(
            egui::TextEdit::singleline(&mut state.search)
                .hint_text("a subsystem or a probe, e.g. block_rq_issue")
                .desired_width(280.0),
        );
    });
    let ids: Vec<&str> = model.probes.iter().map(|p| p.id.as_str()).collect();
    let hits = map.search(&state.search, &ids);
    if hits.is_empty() {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        for (subsystem, probe) in hits.iter().take(12) {
            let name = map
                .subsystem(subsystem)
                .map_or(subsystem.as_str(), |s| s.name.as_str());
            let text = match probe {
                Some(probe) => format!("{probe} ({name})"),
                None => name.to_owned(),
            };
            if ui.small_button(text).clicked() {
                state.selected = Some(subsystem.clone());
                state.highlighted_probe = probe.clone();
                state.search.clear();
            }
        }
        if hits.len() > 12 {
            ui.weak(format!("and {} more", hits.len() - 12));
        }
    });
}

/// The colour for `rate` on a scale up to `max`: grey when silent, then
/// the viridis ramp (dark blue → green → yellow) on a log scale. Viridis
/// keeps its order in lightness, so readers with any colour vision, and a
/// grey-scale print, still see which node is busier.
pub fn heat_color(rate: f64, max: f64) -> Color32 {
    if rate <= 0.0 || max <= 0.0 {
        return theme::MAP_COLD;
    }
    let t = ((rate + 1.0).ln() / (max + 1.0).ln()).clamp(0.0, 1.0) as f32;
    theme::viridis(0.15 + 0.85 * t)
}

/// Text colour readable on `fill`.
fn text_on(fill: Color32) -> Color32 {
    let [r, g, b, _] = fill.to_array();
    let luma = 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
    if luma > 140.0 {
        theme::MAP_TEXT_DARK
    } else {
        theme::MAP_TEXT
    }
}

/// The last 30 s of a node's rate (events/s per timeline bucket), oldest
/// first, summed over its enabled probes.
fn node_sparkline(model: &Model, map: &SubsystemMap, id: &str) -> Vec<f64> {
    let mut sums: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for probe in probes_of_node(model, map, id).filter(|p| p.enabled) {
        let Some(series) = model.timeline.series(&probe.id) else {
            continue;
        };
        let points = series.points();
        let last = points.last().map_or(0.0, |p| p[0]);
        for point in points.iter().rev().take_while(|p| p[0] >= last - 30.0) {
            *sums.entry((point[0] * 1000.0) as i64).or_default() += point[1];
        }
    }
    sums.into_values().collect()
}

/// What each node shows: its rate now and its recent rates.
struct NodeData {
    rate: f64,
    spark: Vec<f64>,
    /// Whether any probe of the node is on.
    on: bool,
}

fn canvas_ui(
    ui: &mut egui::Ui,
    map: &SubsystemMap,
    state: &mut MapState,
    canvas: Rect,
    data: &[NodeData],
) {
    let content = Rect::from_min_max(
        canvas.min,
        Pos2::new(canvas.max.x, canvas.max.y - map_layout::LEGEND_HEIGHT),
    );
    let background = ui.interact(
        content,
        ui.scope_id().with("map-canvas"),
        Sense::click_and_drag(),
    );
    background.widget_info(|| {
        WidgetInfo::labeled(Role::Canvas, true, "map: drag to pan, scroll to zoom")
    });
    zoom_and_pan(ui, state, &background, content);
    let layout =
        map_layout::layout_map(map, canvas, state.view, &map_layout::egui_measure(ui.ctx()));
    let painter = ui.painter_at(content);
    painter.rect_filled(canvas, 4.0, theme::MAP_BACKGROUND);
    bands_ui(&painter, &layout);
    let max_rate = data.iter().map(|d| d.rate).fold(0.0, f64::max);
    let selected = state.selected.as_deref().and_then(|id| map.node(id));
    edges_ui(&painter, map, state, &layout, selected);
    let mut focus_moved_to = None;
    state.focus_in_map = false;
    for node in &layout.nodes {
        let index = node.index;
        let Some(d) = data.get(index.index()) else {
            continue;
        };
        let id = ui.scope_id().with(("map-node", &map.graph()[index].id));
        let response = ui.interact(node.rect.intersect(content), id, Sense::click());
        let mut label = node_label(&map.graph()[index].name, d.rate);
        if state.highlight.has_node(&map.graph()[index].id) {
            label.push_str(" (highlighted)");
        }
        response.widget_info(|| WidgetInfo::labeled(Role::Button, true, &label));
        node_ui(&painter, map, state, node, d, max_rate, selected, &response);
        if response.has_focus() {
            state.focus_in_map = true;
            // The arrows are ours: they move between nodes by the map's
            // layers, not by egui's screen-space guess.
            ui.memory_mut(|m| {
                m.set_focus_lock_filter(
                    id,
                    egui::EventFilter {
                        horizontal_arrows: true,
                        vertical_arrows: true,
                        ..Default::default()
                    },
                );
            });
            if let Some(step) = arrow_pressed(ui) {
                focus_moved_to = layout.neighbour(index, step);
            }
            if response.gained_focus() {
                state.view = state.view.showing(node.rect, content);
            }
        }
        if response.clicked() {
            let node_id = map.graph()[index].id.clone();
            state.selected = if selected == Some(index) {
                None
            } else {
                Some(node_id)
            };
            state.highlighted_probe = None;
        }
        let explanation = map
            .subsystem(&map.graph()[index].id)
            .map(|s| first_sentence(&s.explanation))
            .unwrap_or_default();
        response.on_hover_text(format!(
            "{label}\n{explanation}\nClick (or Enter) for details and probes."
        ));
    }
    if let Some(next) = focus_moved_to
        && let Some(node) = layout.node(next)
    {
        ui.memory_mut(|m| m.request_focus(ui.scope_id().with(("map-node", &map.graph()[next].id))));
        state.view = state.view.showing(node.rect, content);
    }
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) && state.selected.is_some() {
        state.selected = None;
    }
    legend_ui(&ui.painter_at(layout.legend.rect), &layout.legend, max_rate);
    if let Some(caption) = &state.highlight.caption {
        caption_ui(&painter, content, caption);
    }
    state.last_layout = Some(layout);
}

/// Scroll (or pinch, or +/−) zooms about the pointer; dragging the
/// background pans; 0 shows the whole map.
fn zoom_and_pan(ui: &egui::Ui, state: &mut MapState, background: &egui::Response, content: Rect) {
    if background.dragged() {
        state.view = state.view.panned(background.drag_delta(), content);
    }
    let keys_apply = background.hovered() || state.focus_in_map;
    let (zoom, scroll, pointer, plus, minus, reset) = ui.input(|i| {
        (
            i.zoom_delta(),
            i.smooth_scroll_delta,
            i.pointer.hover_pos(),
            i.key_pressed(egui::Key::Plus) || i.key_pressed(egui::Key::Equals),
            i.key_pressed(egui::Key::Minus),
            i.key_pressed(egui::Key::Num0),
        )
    });
    let anchor = pointer
        .filter(|p| content.contains(*p))
        .unwrap_or_else(|| content.center());
    let mut factor = 1.0;
    if background.hovered() {
        factor *= zoom;
        if zoom == 1.0 && scroll.y != 0.0 {
            factor *= (scroll.y / 200.0).exp();
        }
    }
    if keys_apply {
        if plus {
            factor *= 1.25;
        }
        if minus {
            factor /= 1.25;
        }
        if reset {
            state.view = map_layout::View::default();
        }
    }
    if factor != 1.0 {
        state.view = state.view.zoomed(factor, anchor, content);
    }
}

/// An arrow key pressed this frame (consumed, so nothing else moves).
fn arrow_pressed(ui: &egui::Ui) -> Option<map_layout::Step> {
    use egui::{Key, Modifiers};
    use map_layout::Step;
    ui.input_mut(|i| {
        [
            (Key::ArrowLeft, Step::Left),
            (Key::ArrowRight, Step::Right),
            (Key::ArrowUp, Step::Up),
            (Key::ArrowDown, Step::Down),
        ]
        .into_iter()
        .find(|(key, _)| i.consume_key(Modifiers::NONE, *key))
        .map(|(_, step)| step)
    })
}

fn bands_ui(painter: &egui::Painter, layout: &map_layout::MapLayout) {
    for (i, band) in layout.bands.iter().enumerate() {
        if i % 2 == 1 {
            painter.rect_filled(band.rect, 0.0, theme::MAP_BAND);
        }
        for line in &band.label {
            painter.text(
                line.rect.min,
                Align2::LEFT_TOP,
                &line.text,
                FontId::proportional(line.size),
                theme::AXIS_TEXT,
            );
        }
    }
}

fn edges_ui(
    painter: &egui::Painter,
    map: &SubsystemMap,
    state: &MapState,
    layout: &map_layout::MapLayout,
    selected: Option<petgraph::graph::NodeIndex>,
) {
    let graph = map.graph();
    let dim = !state.highlight.is_empty();
    // Highlighted edges last, on top.
    let mut edges: Vec<(&map_layout::EdgeLayout, bool)> = layout
        .edges
        .iter()
        .filter_map(|e| {
            let (from, to) = graph.edge_endpoints(e.edge)?;
            Some((e, state.highlight.has_edge(&graph[from].id, &graph[to].id)))
        })
        .collect();
    edges.sort_by_key(|(_, highlighted)| *highlighted);
    for (edge, highlighted) in edges {
        let Some((from, to)) = graph.edge_endpoints(edge.edge) else {
            continue;
        };
        let touches_selected = selected.is_some_and(|s| s == from || s == to);
        let stroke = if highlighted {
            Stroke::new(3.5, theme::MAP_TOUR)
        } else if touches_selected {
            Stroke::new(2.0, theme::MAP_EDGE_SELECTED)
        } else if dim {
            Stroke::new(1.0, theme::MAP_EDGE.gamma_multiply(0.5))
        } else {
            Stroke::new(1.2, theme::MAP_EDGE)
        };
        painter.add(egui::Shape::line(edge.points.clone(), stroke));
        if let [.., before, end] = edge.points.as_slice() {
            arrow_head(painter, *before, *end, stroke);
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one node's paint needs all of these"
)]
fn node_ui(
    painter: &egui::Painter,
    map: &SubsystemMap,
    state: &MapState,
    node: &map_layout::NodeLayout,
    data: &NodeData,
    max_rate: f64,
    selected: Option<petgraph::graph::NodeIndex>,
    response: &egui::Response,
) {
    let id = &map.graph()[node.index].id;
    let highlighted = state.highlight.has_node(id);
    let mut fill = heat_color(data.rate, max_rate);
    if !state.highlight.is_empty() && !highlighted {
        fill = fill.gamma_multiply(0.4);
    }
    let outline = if highlighted {
        Stroke::new(4.0, theme::MAP_TOUR)
    } else if selected == Some(node.index) || response.hovered() {
        Stroke::new(3.0, theme::SELECTED_SLICE)
    } else {
        Stroke::new(1.0, theme::MAP_NODE_OUTLINE)
    };
    painter.rect(node.rect, 6.0, fill, outline, egui::StrokeKind::Inside);
    if response.has_focus() {
        painter.rect_stroke(
            node.rect.expand(3.0),
            8.0,
            Stroke::new(1.5, theme::SELECTED_SLICE),
            egui::StrokeKind::Outside,
        );
    }
    let text = text_on(fill);
    for line in &node.name {
        painter.text(
            line.rect.center(),
            Align2::CENTER_CENTER,
            &line.text,
            FontId::proportional(line.size),
            text,
        );
    }
    let rate = if data.rate > 0.0 {
        format!("{}/s", format_rate(data.rate))
    } else if data.on {
        "silent".to_owned()
    } else {
        "no probe on".to_owned()
    };
    painter.text(
        node.rate.center(),
        Align2::CENTER_CENTER,
        rate,
        // Never larger than the name it stands under.
        FontId::proportional(
            (node.rate.height() / 1.3).min(node.name.first().map_or(f32::MAX, |l| l.size)),
        ),
        text.gamma_multiply(0.85),
    );
    sparkline_ui(painter, node.spark, &data.spark, text.gamma_multiply(0.8));
}

fn sparkline_ui(painter: &egui::Painter, rect: Rect, values: &[f64], color: Color32) {
    let max = values.iter().copied().fold(0.0, f64::max);
    if rect.height() < 4.0 || values.len() < 2 || max <= 0.0 {
        return;
    }
    let n = (values.len() - 1) as f32;
    let points: Vec<Pos2> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Pos2::new(
                rect.min.x + rect.width() * i as f32 / n,
                rect.max.y - rect.height() * (*v / max) as f32,
            )
        })
        .collect();
    painter.add(egui::Shape::line(points, Stroke::new(1.0, color)));
}

fn caption_ui(painter: &egui::Painter, content: Rect, caption: &str) {
    let galley = painter.layout(
        caption.to_owned(),
        FontId::proportional(13.0),
        theme::MAP_TEXT,
        content.width() * 0.6,
    );
    let rect = Rect::from_min_size(
        Pos2::new(content.max.x - galley.size().x - 16.0, content.min.y + 6.0),
        galley.size() + Vec2::splat(8.0),
    );
    painter.rect_filled(rect, 4.0, theme::MAP_CAPTION_FILL);
    painter.galley(rect.min + Vec2::splat(4.0), galley, theme::MAP_TEXT);
}

/// A small head of fixed size at `end`, pointing from `before` (egui's own
/// arrow scales its head with the length, which buries long edges' ends).
fn arrow_head(painter: &egui::Painter, before: Pos2, end: Pos2, stroke: Stroke) {
    let dir = (end - before).normalized();
    let normal = Vec2::new(-dir.y, dir.x);
    let back = end - dir * 8.0;
    painter.add(egui::Shape::convex_polygon(
        vec![end, back + normal * 4.0, back - normal * 4.0],
        stroke.color,
        Stroke::NONE,
    ));
}

fn legend_ui(painter: &egui::Painter, legend: &map_layout::LegendLayout, max_rate: f64) {
    let font = FontId::proportional(11.0);
    painter.rect_filled(legend.rect, 0.0, theme::MAP_BACKGROUND);
    painter.rect(
        legend.silent_swatch,
        2.0,
        theme::MAP_COLD,
        Stroke::new(1.0, theme::MAP_NODE_OUTLINE),
        egui::StrokeKind::Inside,
    );
    let text = |line: &map_layout::TextLine| {
        painter.text(
            line.rect.min,
            Align2::LEFT_TOP,
            &line.text,
            font.clone(),
            theme::AXIS_TEXT,
        );
    };
    text(&legend.silent_text);
    text(&legend.low_text);
    let steps = 24;
    for i in 0..steps {
        let t = i as f32 / steps as f32;
        let x = legend.ramp.min.x + legend.ramp.width() * t;
        painter.rect_filled(
            Rect::from_min_size(
                Pos2::new(x, legend.ramp.min.y),
                Vec2::new(
                    legend.ramp.width() / steps as f32 + 0.5,
                    legend.ramp.height(),
                ),
            ),
            0.0,
            theme::viridis(0.15 + 0.85 * t),
        );
    }
    let high = if max_rate > 0.0 {
        format!("{} events/s", format_rate(max_rate))
    } else {
        "no events yet".to_owned()
    };
    painter.text(
        legend.high_text.left_center(),
        Align2::LEFT_CENTER,
        high,
        font.clone(),
        theme::AXIS_TEXT,
    );
    if let Some(hint) = &legend.hint {
        text(hint);
    }
}

fn first_sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.find(". ") {
        Some(end) => text[..=end].to_owned(),
        None => text,
    }
}

fn details_ui(
    ui: &mut egui::Ui,
    model: &Model,
    map: &SubsystemMap,
    state: &mut MapState,
    id: &str,
    now: Instant,
    commands: &mut CommandQueue,
) {
    if let Some(category) = map.elsewhere_category(id) {
        elsewhere_details_ui(ui, model, map, state, id, category, now, commands);
        return;
    }
    let Some(subsystem) = map.subsystem(id) else {
        ui.label(format!("No subsystem `{id}` in the catalogue."));
        return;
    };
    egui::ScrollArea::vertical()
        .id_salt("map-details")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(&subsystem.name);
                if ui.small_button("Close").clicked() {
                    state.selected = None;
                }
            });
            ui.label(
                egui::RichText::new(format!(
                    "{} events/s now",
                    format_rate(subsystem_rate(model, map, id, now))
                ))
                .strong(),
            );
            ui.add_space(theme::SECTION_GAP);
            let explanation = subsystem
                .explanation
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            ui.label(explanation);
            if !subsystem.docs.is_empty() {
                ui.add_space(theme::SECTION_GAP);
                ui.label(egui::RichText::new("Read more").strong());
                for url in &subsystem.docs {
                    ui.hyperlink(url);
                }
            }
            if !subsystem.source.is_empty() {
                ui.label(egui::RichText::new("Kernel source").strong());
                for path in &subsystem.source {
                    ui.monospace(path);
                }
            }
            paths_ui(ui, map, id);
            ui.add_space(theme::SECTION_GAP);
            ui.label(egui::RichText::new("Probes").strong());
            let probes: Vec<&Probe> = probes_of_node(model, map, id).collect();
            if probes.is_empty() {
                ui.weak("The helper offers no probe here (or is not connected yet).");
            }
            for probe in &probes {
                let highlighted = state.highlighted_probe.as_deref() == Some(probe.id.as_str());
                let frame = egui::Frame::NONE.fill(if highlighted {
                    theme::MAP_HIGHLIGHT
                } else {
                    Color32::TRANSPARENT
                });
                frame.show(ui, |ui| {
                    ui.horizontal(|ui| {
                        probe_checkbox_ui(ui, model, probe, commands);
                        stacks_controls_ui(ui, model, probe, commands);
                    });
                    crate::views::probe_cost_line_ui(ui, model, probe);
                    pack_stacks_line_ui(ui, model, probe);
                    counted_controls_ui(ui, model, probe, commands);
                    ui.weak(&probe.description);
                });
            }
            mini_timeline_ui(ui, model, &probes);
            top_processes_ui(ui, model, &probes);
        });
}

/// Details of a node in the bottom row: a tracepoint category the
/// catalogue does not describe, with its probes.
#[expect(clippy::too_many_arguments, reason = "the same state as details_ui")]
fn elsewhere_details_ui(
    ui: &mut egui::Ui,
    model: &Model,
    map: &SubsystemMap,
    state: &mut MapState,
    id: &str,
    category: &str,
    now: Instant,
    commands: &mut CommandQueue,
) {
    egui::ScrollArea::vertical()
        .id_salt("map-details")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(category);
                if ui.small_button("Close").clicked() {
                    state.selected = None;
                }
            });
            ui.label(
                egui::RichText::new(format!(
                    "{} events/s now",
                    format_rate(subsystem_rate(model, map, id, now))
                ))
                .strong(),
            );
            ui.add_space(theme::SECTION_GAP);
            ui.label(format!(
                "Probes of the `{category}` tracepoint category, which this map's probe packs \
                 do not describe. Their events are counted here so you can see where they go; \
                 /sys/kernel/tracing/events/{category}/ lists the category's tracepoints and \
                 their formats."
            ));
            ui.add_space(theme::SECTION_GAP);
            ui.label(egui::RichText::new("Probes").strong());
            let probes: Vec<&Probe> = probes_of_node(model, map, id).collect();
            for probe in &probes {
                ui.horizontal(|ui| {
                    probe_checkbox_ui(ui, model, probe, commands);
                    stacks_controls_ui(ui, model, probe, commands);
                });
                crate::views::probe_cost_line_ui(ui, model, probe);
                ui.weak(format!("{} ({})", probe.description, probe.subsystem));
            }
            mini_timeline_ui(ui, model, &probes);
            top_processes_ui(ui, model, &probes);
        });
}

/// For a pack probe whose only data are stacks: what its rate counts, and
/// for a time sum the time per second, which the node's events/s leaves out.
fn pack_stacks_line_ui(ui: &mut egui::Ui, model: &Model, probe: &Probe) {
    let Some(rate) = model.pack_stack_rates.get(&probe.key) else {
        return;
    };
    ui.label(pack_stacks_line(rate));
}

/// The sentence of [`pack_stacks_line_ui`].
fn pack_stacks_line(rate: &microscope_model::PackStackRate) -> String {
    if rate.time {
        format!(
            "Its rate is the stacks (a thread's code path) whose time grew: {}/s; \
             time they added: {} per second (Flame tab)",
            format_rate(rate.stacks_per_sec()),
            microscope_model::format_duration_ns(rate.value_per_sec() as u64),
        )
    } else {
        format!(
            "Its rate is its stacks' samples: {}/s (Flame tab)",
            format_rate(rate.value_per_sec())
        )
    }
}

/// For a default probe, counted in the kernel without events: says so, and
/// offers to stream its events.
fn counted_controls_ui(
    ui: &mut egui::Ui,
    model: &Model,
    probe: &Probe,
    commands: &mut CommandQueue,
) {
    if !probe.enabled || !model.counted_in_kernel.contains(&probe.id) {
        return;
    }
    ui.horizontal(|ui| counted_row_ui(ui, probe, commands));
}

fn counted_row_ui(ui: &mut egui::Ui, probe: &Probe, commands: &mut CommandQueue) {
    ui.weak("counted in the kernel").on_hover_text(
        "A default probe: its hits are counted in the kernel, which costs little, \
             and no events are sent. Start the app with --no-default-probes to leave \
             the defaults off.",
    );
    if ui
        .small_button("stream events")
        .on_hover_text("Send every event of this probe, with its fields, to the app.")
        .clicked()
    {
        commands.send(crate::command::Command::StreamEvents(probe.id.clone()));
    }
}

/// For a tracepoint: capture its stacks ("how did the kernel get here"),
/// and once some are in, open them as call paths.
fn stacks_controls_ui(
    ui: &mut egui::Ui,
    model: &Model,
    probe: &Probe,
    commands: &mut CommandQueue,
) {
    use crate::command::Command;
    if probe.kind != microscope_model::ProbeKind::Fields || model.is_replay() {
        if model.stacks.probes().any(|key| key == probe.key)
            && ui.small_button("Show paths").clicked()
        {
            commands.send(Command::ShowPaths { key: probe.key });
        }
        return;
    }
    let mut on = model.stacks_wanted.contains(&probe.id);
    if ui
        .checkbox(&mut on, "stacks")
        .on_hover_text(
            "Capture the kernel and user stack of every hit, counted in the kernel: \
             the flame graph and Paths show how the kernel got here.",
        )
        .changed()
    {
        commands.send(Command::SetStacks {
            probe: probe.id.clone(),
            on,
        });
    }
    if model.stacks.probes().any(|key| key == probe.key) && ui.small_button("Show paths").clicked()
    {
        commands.send(Command::ShowPaths { key: probe.key });
    }
}

fn paths_ui(ui: &mut egui::Ui, map: &SubsystemMap, id: &str) {
    let Some(index) = map.node(id) else { return };
    let graph = map.graph();
    let incoming: Vec<String> = graph
        .edges_directed(index, petgraph::Direction::Incoming)
        .map(|e| {
            use petgraph::visit::EdgeRef as _;
            format!("from {}: {}", graph[e.source()].name, e.weight().label)
        })
        .collect();
    let outgoing: Vec<String> = graph
        .edges_directed(index, petgraph::Direction::Outgoing)
        .map(|e| {
            use petgraph::visit::EdgeRef as _;
            format!("to {}: {}", graph[e.target()].name, e.weight().label)
        })
        .collect();
    if incoming.is_empty() && outgoing.is_empty() {
        return;
    }
    ui.add_space(theme::SECTION_GAP);
    ui.label(egui::RichText::new("Paths").strong());
    for line in incoming.iter().chain(&outgoing) {
        ui.label(line);
    }
}

fn mini_timeline_ui(ui: &mut egui::Ui, model: &Model, probes: &[&Probe]) {
    let series: Vec<(&str, &[[f64; 2]])> = probes
        .iter()
        .filter_map(|p| {
            model
                .timeline
                .series(&p.id)
                .map(|s| (p.id.as_str(), s.points()))
        })
        .collect();
    if series.is_empty() {
        return;
    }
    ui.add_space(theme::SECTION_GAP);
    ui.label(egui::RichText::new("Events per second").strong());
    egui_plot::Plot::new("map-mini-timeline")
        .height(110.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .show_axes([false, true])
        .show(ui, |plot| {
            for (i, (id, points)) in series.iter().enumerate() {
                // The last 30 s is what a glance needs.
                let last = points.last().map_or(0.0, |p| p[0]);
                let recent: Vec<[f64; 2]> = points
                    .iter()
                    .filter(|p| p[0] >= last - 30.0)
                    .copied()
                    .collect();
                plot.line(
                    egui_plot::Line::new(*id, egui_plot::PlotPoints::from(recent))
                        .color(theme::series_color(i)),
                );
            }
        });
}

fn top_processes_ui(ui: &mut egui::Ui, model: &Model, probes: &[&Probe]) {
    let mut by_comm: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for probe in probes {
        if let Some(counts) = model.comm_counts.get(&probe.key) {
            for (comm, n) in counts {
                *by_comm.entry(comm).or_default() += n;
            }
        }
    }
    if by_comm.is_empty() {
        return;
    }
    let mut top: Vec<(&str, u64)> = by_comm.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ui.add_space(theme::SECTION_GAP);
    ui.label(egui::RichText::new("Top processes").strong());
    egui::Grid::new("map-top-processes")
        .striped(true)
        .show(ui, |ui| {
            for (comm, n) in top.into_iter().take(5) {
                ui.monospace(comm);
                ui.label(format!("{n} events"));
                ui.end_row();
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_runs_from_grey_through_dark_to_light() {
        assert_eq!(heat_color(0.0, 100.0), theme::MAP_COLD);
        let luma = |c: Color32| {
            let [r, g, b, _] = c.to_array();
            0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
        };
        let low = heat_color(1.0, 100_000.0);
        let mid = heat_color(300.0, 100_000.0);
        let high = heat_color(100_000.0, 100_000.0);
        // Busier is lighter, whatever the reader's colour vision.
        assert!(
            luma(low) < luma(mid) && luma(mid) < luma(high),
            "{low:?} {mid:?} {high:?}"
        );
        assert_eq!(text_on(high), theme::MAP_TEXT_DARK);
        assert_eq!(text_on(low), theme::MAP_TEXT);
    }

    #[test]
    fn labels_say_name_and_rate() {
        assert_eq!(node_label("Block I/O", 1234.4), "Block I/O — 1.2k events/s");
        assert_eq!(node_label("VFS", 0.0), "VFS — 0 events/s");
        assert_eq!(node_label("TCP", 25_000.0), "TCP — 25k events/s");
    }
}
