//! The subsystem map: the kernel's parts in layers, lit by live event
//! rates; click a part to read what it does and switch its probes.

use crate::command::CommandQueue;
use crate::theme;
use crate::views::probes_panel::probe_checkbox_ui;
use egui::{Align2, Color32, FontId, Pos2, Rect, Role, Sense, Stroke, Vec2, WidgetInfo};
use microscope_model::Probe;
use microscope_model::map::{MapHighlight, SubsystemMap};
use microscope_model::{Model, format_rate};
use std::time::Instant;

/// What the map view remembers between frames.
#[derive(Debug, Default)]
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
    let rates: Vec<f64> = map
        .graph()
        .node_weights()
        .map(|n| subsystem_rate(model, map, &n.id, now))
        .collect();
    canvas_ui(ui, map, state, canvas, &rates);
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
/// blue → yellow → red on a log scale.
pub fn heat_color(rate: f64, max: f64) -> Color32 {
    if rate <= 0.0 || max <= 0.0 {
        return theme::MAP_COLD;
    }
    let t = ((rate + 1.0).ln() / (max + 1.0).ln()).clamp(0.0, 1.0) as f32;
    let hue = 0.6 * (1.0 - t); // 0.6 = blue, 0 = red
    egui::ecolor::Hsva::new(hue, 0.75, 0.9, 1.0).into()
}

fn canvas_ui(
    ui: &mut egui::Ui,
    map: &SubsystemMap,
    state: &mut MapState,
    rect: Rect,
    rates: &[f64],
) {
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, theme::MAP_BACKGROUND);
    let graph = map.graph();
    let rows = map.layers().len().max(1) as f32;
    let inner = rect.shrink2(Vec2::new(150.0_f32.min(rect.width() * 0.2), 10.0));
    let to_screen = |pos: [f32; 2]| {
        Pos2::new(
            inner.min.x + pos[0] * inner.width(),
            inner.min.y + pos[1] * inner.height(),
        )
    };
    // Layer bands with their names.
    let band = rect.height() / rows;
    for (i, (_, name)) in map.layers().iter().enumerate() {
        let top = rect.min.y + i as f32 * band;
        if i % 2 == 1 {
            painter.rect_filled(
                Rect::from_min_size(Pos2::new(rect.min.x, top), Vec2::new(rect.width(), band)),
                0.0,
                theme::MAP_BAND,
            );
        }
        painter.text(
            Pos2::new(rect.min.x + 6.0, top + 4.0),
            Align2::LEFT_TOP,
            name,
            FontId::proportional(11.0),
            theme::AXIS_TEXT,
        );
    }
    let max_rate = rates.iter().copied().fold(0.0, f64::max);
    // Names wrap to the space between neighbours in their row.
    let mut per_row: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for node in graph.node_weights() {
        *per_row.entry(node.layer).or_default() += 1;
    }
    let radius = |rate: f64| 16.0 + 6.0 * ((rate + 1.0).log10() as f32).min(5.0);
    let selected = state.selected.as_deref().and_then(|id| map.node(id));
    // Edges first, under the nodes.
    for edge in graph.edge_indices() {
        let Some((from, to)) = graph.edge_endpoints(edge) else {
            continue;
        };
        let (a, b) = (to_screen(graph[from].pos), to_screen(graph[to].pos));
        let touches_selected = selected.is_some_and(|s| s == from || s == to);
        let highlighted = state.highlight.has_edge(&graph[from].id, &graph[to].id);
        let (color, width) = if highlighted {
            (theme::MAP_TOUR, 3.5)
        } else if touches_selected {
            (theme::MAP_EDGE_SELECTED, 1.5)
        } else {
            (theme::MAP_EDGE, 1.5)
        };
        let dir = (b - a).normalized();
        let start = a + dir * radius(rates[from.index()]);
        let end = b - dir * (radius(rates[to.index()]) + 2.0);
        arrow(&painter, start, end, Stroke::new(width, color));
    }
    for index in graph.node_indices() {
        let node = &graph[index];
        let rate = rates[index.index()];
        let center = to_screen(node.pos);
        let r = radius(rate);
        let node_rect = Rect::from_center_size(center, Vec2::splat(2.0 * r));
        let id = ui.scope_id().with(("map-node", &node.id));
        let response = ui.interact(node_rect, id, Sense::click());
        let label = node_label(&node.name, rate);
        response.widget_info(|| WidgetInfo::labeled(Role::Button, true, &label));
        let is_selected = selected == Some(index);
        let highlighted = state.highlight.has_node(&node.id);
        let outline = if highlighted {
            Stroke::new(4.0, theme::MAP_TOUR)
        } else if is_selected || response.hovered() {
            Stroke::new(3.0, theme::SELECTED_SLICE)
        } else {
            Stroke::new(1.0, theme::MAP_NODE_OUTLINE)
        };
        let mut fill = heat_color(rate, max_rate);
        if !state.highlight.is_empty() && !highlighted {
            fill = fill.gamma_multiply(0.35);
        }
        painter.circle(center, r, fill, outline);
        let in_row = per_row.get(&node.layer).copied().unwrap_or(1).max(1) as f32;
        let wrap = (inner.width() / in_row - 6.0).max(60.0);
        let galley = painter.layout(
            node.name.clone(),
            FontId::proportional(12.0),
            theme::MAP_TEXT,
            wrap,
        );
        let text_pos = center + Vec2::new(-galley.size().x / 2.0, r + 2.0);
        painter.galley(text_pos, galley, theme::MAP_TEXT);
        if rate > 0.0 {
            painter.text(
                center,
                Align2::CENTER_CENTER,
                format_rate(rate),
                FontId::proportional(11.0),
                theme::SLICE_TEXT,
            );
        }
        if response.clicked() {
            state.selected = if is_selected {
                None
            } else {
                Some(node.id.clone())
            };
            state.highlighted_probe = None;
        }
        let explanation = map
            .subsystem(&node.id)
            .map(|s| first_sentence(&s.explanation))
            .unwrap_or_default();
        response.on_hover_text(format!(
            "{label}\n{explanation}\nClick for details and probes."
        ));
    }
    legend_ui(&painter, rect, max_rate);
    if let Some(caption) = &state.highlight.caption {
        painter.text(
            Pos2::new(rect.center().x, rect.min.y + 4.0),
            Align2::CENTER_TOP,
            caption,
            FontId::proportional(13.0),
            theme::MAP_TOUR,
        );
    }
}

/// A line from `start` to `end` with a small head of fixed size (egui's own
/// arrow scales its head with the length, which buries long edges' ends).
fn arrow(painter: &egui::Painter, start: Pos2, end: Pos2, stroke: Stroke) {
    painter.line_segment([start, end], stroke);
    let dir = (end - start).normalized();
    let normal = Vec2::new(-dir.y, dir.x);
    let back = end - dir * 8.0;
    painter.line_segment([end, back + normal * 4.0], stroke);
    painter.line_segment([end, back - normal * 4.0], stroke);
}

fn legend_ui(painter: &egui::Painter, rect: Rect, max_rate: f64) {
    let origin = Pos2::new(rect.max.x - 190.0, rect.min.y + 8.0);
    if max_rate <= 0.0 {
        painter.text(
            origin + Vec2::new(120.0, 12.0),
            Align2::RIGHT_TOP,
            "no events yet: switch probes on to light the map",
            FontId::proportional(10.0),
            theme::AXIS_TEXT,
        );
        return;
    }
    let steps = 24;
    let width = 120.0;
    for i in 0..steps {
        let t = i as f64 / (steps - 1) as f64;
        let rate = if max_rate > 0.0 {
            (t * (max_rate + 1.0).ln()).exp() - 1.0
        } else {
            0.0
        };
        let x = origin.x + width * i as f32 / steps as f32;
        painter.rect_filled(
            Rect::from_min_size(
                Pos2::new(x, origin.y),
                Vec2::new(width / steps as f32 + 0.5, 10.0),
            ),
            0.0,
            heat_color(rate.max(if i == 0 { 0.0 } else { 1e-9 }), max_rate.max(1.0)),
        );
    }
    painter.text(
        origin + Vec2::new(0.0, 12.0),
        Align2::LEFT_TOP,
        "0",
        FontId::proportional(10.0),
        theme::AXIS_TEXT,
    );
    painter.text(
        origin + Vec2::new(width, 12.0),
        Align2::RIGHT_TOP,
        format!("{} events/s", format_rate(max_rate)),
        FontId::proportional(10.0),
        theme::AXIS_TEXT,
    );
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
    fn heat_runs_from_grey_through_blue_to_red() {
        assert_eq!(heat_color(0.0, 100.0), theme::MAP_COLD);
        let low = egui::ecolor::Hsva::from(heat_color(1.0, 100_000.0));
        let high = egui::ecolor::Hsva::from(heat_color(100_000.0, 100_000.0));
        assert!(low.h > high.h, "low rates are bluer: {low:?} vs {high:?}");
        assert!(high.h < 0.05, "the busiest node is red: {high:?}");
    }

    #[test]
    fn labels_say_name_and_rate() {
        assert_eq!(node_label("Block I/O", 1234.4), "Block I/O — 1.2k events/s");
        assert_eq!(node_label("VFS", 0.0), "VFS — 0 events/s");
        assert_eq!(node_label("TCP", 25_000.0), "TCP — 25k events/s");
    }
}
