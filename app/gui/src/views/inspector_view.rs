//! The event inspector: the newest decoded events of one probe, field by
//! field, pausable and filterable, with any numeric field plotted over time.
//!
//! On a replayed recording it pages through every event of the probe
//! instead, read from the file (first, earlier, later, last, at the
//! playhead, or any event number), so no event is out of reach however
//! large the recording.

use crate::command::{Command, CommandQueue};
use crate::theme;
use microscope_model::Model;
use microscope_model::Probe;
use microscope_model::fields;
use microscope_model::{RecordingOverview, format_count};
use microscope_sources::BrowseRequest;
use microscope_wire::{Event, ProbeKey};

/// Events per page of a browsed recording.
pub const PAGE_EVENTS: usize = 1_000;

/// What the inspector remembers between frames.
#[derive(Debug, Default)]
pub struct InspectorState {
    /// The probe shown (its id).
    pub probe: Option<String>,
    /// While paused, the events as they were when pause was pressed.
    pub frozen: Option<Vec<Event>>,
    /// Keep rows containing this text (command, pid or any field).
    pub filter: String,
    /// The numeric field plotted over time, if any.
    pub plot_field: Option<String>,
    /// On a browsed recording: number of the first event of the page shown.
    pub page_first: u64,
    /// The page last asked of the recording's browser.
    pub requested: Option<(ProbeKey, u64)>,
}

/// One row as text: time (s, relative to `t0_ns`), cpu, pid, command, then
/// `name=value` for each field.
fn row(event: &Event, names: &[String]) -> Vec<String> {
    let mut cells = vec![
        event.cpu.to_string(),
        event.pid.to_string(),
        event.comm.clone(),
    ];
    for (_, value) in fields(&event.data, names) {
        cells.push(value.to_string());
    }
    cells
}

/// The events of `probe` that match `filter` (case-insensitive, any cell).
pub fn matching<'a>(events: &'a [Event], names: &[String], filter: &str) -> Vec<&'a Event> {
    let needle = filter.trim().to_lowercase();
    events
        .iter()
        .filter(|e| {
            needle.is_empty()
                || row(e, names)
                    .iter()
                    .any(|cell| cell.to_lowercase().contains(&needle))
        })
        .collect()
}

/// Draws the inspector.
pub fn inspector_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &mut InspectorState,
    commands: &mut CommandQueue,
) {
    let streamed: Vec<&Probe> = model
        .probes
        .iter()
        .filter(|p| p.kind.is_streamed() && (p.enabled || model.recent.contains_key(&p.key)))
        .collect();
    if streamed.is_empty() {
        ui.weak(
            "Switch on a streamed probe (any tracepoint, for example block:block_rq_issue) \
             to see its events here, field by field.",
        );
        return;
    }
    if state
        .probe
        .as_ref()
        .is_none_or(|id| !streamed.iter().any(|p| &p.id == id))
    {
        state.probe = streamed.first().map(|p| p.id.clone());
        state.frozen = None;
        state.plot_field = None;
        state.page_first = 0;
    }
    let Some(probe) = streamed
        .iter()
        .find(|p| Some(&p.id) == state.probe.as_ref())
    else {
        return;
    };
    let names: Vec<String> = probe.fields.iter().map(|(name, _)| name.clone()).collect();
    let browsing = model
        .browse
        .overview
        .as_deref()
        .filter(|_| model.is_replay());
    let live: Vec<Event> = match browsing {
        Some(_) => page_events(model, probe.key, state, commands),
        None => model
            .recent
            .get(&probe.key)
            .map(|events| events.iter().cloned().collect())
            .unwrap_or_default(),
    };

    ui.horizontal(|ui| {
        egui::ComboBox::from_label("Probe")
            .selected_text(&probe.id)
            .show_ui(ui, |ui| {
                for p in &streamed {
                    if ui.selectable_label(p.id == probe.id, &p.id).clicked() {
                        state.probe = Some(p.id.clone());
                        state.frozen = None;
                        state.plot_field = None;
                        state.page_first = 0;
                    }
                }
            });
        let paused = state.frozen.is_some();
        if browsing.is_none() && ui.button(if paused { "Resume" } else { "Pause" }).clicked() {
            state.frozen = if paused { None } else { Some(live.clone()) };
        }
        ui.label("Filter:");
        ui.add(
            egui::TextEdit::singleline(&mut state.filter)
                .hint_text("command, pid or any value")
                .desired_width(200.0),
        );
    });
    let frozen = state.frozen.take();
    let events = frozen.as_deref().unwrap_or(&live);
    let shown = matching(events, &names, &state.filter);
    let column_names: Vec<String> = match events.first() {
        Some(first) => fields(&first.data, &names)
            .into_iter()
            .map(|(name, _)| name.to_owned())
            .collect(),
        None => names.clone(),
    };
    if let Some(overview) = browsing {
        page_controls_ui(ui, model, overview, probe.key, events.len(), state);
    }
    plot_ui(ui, &shown, &names, &column_names, state);
    if browsing.is_some() {
        ui.label(format!(
            "{} of these {} events match the filter",
            shown.len(),
            events.len()
        ));
    } else {
        ui.label(format!(
            "{} of the newest {} events{}",
            shown.len(),
            events.len(),
            if frozen.is_some() { " (paused)" } else { "" }
        ));
    }
    // A recording's pages count time from its start, like every other view.
    let start_ns = browsing.and_then(|o| o.ns_at(0.0));
    // Live, and on a recording's last page, the newest rows stay in view.
    let follow =
        browsing.is_none_or(|o| state.page_first + PAGE_EVENTS as u64 >= o.events_of(probe.key));
    table_ui(ui, &shown, &names, &column_names, start_ns, follow);
    if state.frozen.is_none() {
        state.frozen = frozen;
    }
}

/// The page of a browsed recording to show: the one read, once it is the
/// one wanted; asks the browser for it otherwise.
fn page_events(
    model: &Model,
    probe: ProbeKey,
    state: &mut InspectorState,
    commands: &mut CommandQueue,
) -> Vec<Event> {
    if let Some(page) = &model.browse.page
        && page.probe == probe
        && page.first == state.page_first
    {
        return page.events.clone();
    }
    let wanted = (probe, state.page_first);
    if state.requested != Some(wanted) {
        state.requested = Some(wanted);
        commands.send(Command::Browse(BrowseRequest::Events {
            probe,
            first: state.page_first,
            count: PAGE_EVENTS,
        }));
    }
    Vec::new()
}

/// First, earlier, later, last, at the playhead, or any event number.
fn page_controls_ui(
    ui: &mut egui::Ui,
    model: &Model,
    overview: &RecordingOverview,
    probe: ProbeKey,
    shown: usize,
    state: &mut InspectorState,
) {
    let total = overview.events_of(probe);
    let last_page = total.saturating_sub(PAGE_EVENTS as u64);
    let page = PAGE_EVENTS as u64;
    ui.horizontal(|ui| {
        if ui.button("First").clicked() {
            state.page_first = 0;
        }
        if ui.button("Earlier").clicked() {
            state.page_first = state.page_first.saturating_sub(page);
        }
        if ui.button("Later").clicked() {
            state.page_first = (state.page_first + page).min(last_page);
        }
        if ui.button("Last").clicked() {
            state.page_first = last_page;
        }
        if let Some(replay) = &model.replay
            && ui
                .button("At the playhead")
                .on_hover_text("The events received when the playhead's frame was.")
                .clicked()
        {
            state.page_first = overview
                .event_at_recv(probe, replay.position_ns)
                .min(last_page);
        }
        ui.label("From event");
        let mut number = state.page_first + 1;
        if ui
            .add(egui::DragValue::new(&mut number).range(1..=total.max(1)))
            .changed()
        {
            state.page_first = number.saturating_sub(1).min(last_page);
        }
    });
    let loaded = model
        .browse
        .page
        .as_ref()
        .is_some_and(|p| p.probe == probe && p.first == state.page_first);
    ui.weak(if loaded {
        format!(
            "Events {}–{} of {}, read from the recording.",
            format_count(state.page_first + 1),
            format_count(state.page_first + shown as u64),
            format_count(total)
        )
    } else {
        format!(
            "Reading events from {} of {}…",
            format_count(state.page_first + 1),
            format_count(total)
        )
    });
}

fn plot_ui(
    ui: &mut egui::Ui,
    shown: &[&Event],
    names: &[String],
    column_names: &[String],
    state: &mut InspectorState,
) {
    let numeric: Vec<&String> = column_names
        .iter()
        .filter(|name| {
            shown.first().is_some_and(|e| {
                fields(&e.data, names)
                    .iter()
                    .any(|(n, v)| n == *name && v.as_f64().is_some())
            })
        })
        .collect();
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("Plot field")
            .selected_text(state.plot_field.as_deref().unwrap_or("none"))
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(state.plot_field.is_none(), "none")
                    .clicked()
                {
                    state.plot_field = None;
                }
                for name in &numeric {
                    let selected = state.plot_field.as_deref() == Some(name.as_str());
                    if ui.selectable_label(selected, name.as_str()).clicked() {
                        state.plot_field = Some((*name).clone());
                    }
                }
            });
    });
    let Some(field) = &state.plot_field else {
        return;
    };
    let t0 = shown.first().map_or(0, |e| e.ts_ns);
    let points: Vec<[f64; 2]> = shown
        .iter()
        .filter_map(|e| {
            let value = fields(&e.data, names)
                .into_iter()
                .find(|(n, _)| n == field)
                .and_then(|(_, v)| v.as_f64())?;
            Some([e.ts_ns.saturating_sub(t0) as f64 / 1e9, value])
        })
        .collect();
    egui_plot::Plot::new("inspector-plot")
        .height(140.0)
        .x_axis_label("seconds")
        .show(ui, |plot| {
            plot.points(
                egui_plot::Points::new(field.as_str(), egui_plot::PlotPoints::from(points))
                    .radius(2.0)
                    .color(theme::HISTOGRAM_BAR),
            );
        });
}

/// The rows, times counted from `start_ns` (a recording's start) or else
/// from the first row; `follow` keeps the last row in view.
fn table_ui(
    ui: &mut egui::Ui,
    shown: &[&Event],
    names: &[String],
    column_names: &[String],
    start_ns: Option<u64>,
    follow: bool,
) {
    use egui_extras::{Column, TableBuilder};
    // Rows are one line high: a wrapped cell would spill into the next row
    // (times and command names were cut in two at 1280 px).
    ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
    let t0 = start_ns.unwrap_or_else(|| shown.first().map_or(0, |e| e.ts_ns));
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
    let titles: Vec<&str> = ["time (s)", "cpu", "pid", "command"]
        .into_iter()
        .chain(column_names.iter().map(String::as_str))
        .collect();
    let mut table = TableBuilder::new(ui)
        .id_salt("inspector-table")
        .striped(true)
        .stick_to_bottom(follow)
        .auto_shrink([false, false])
        .vscroll(true);
    for _ in &titles {
        table = table.column(Column::auto().at_least(40.0).resizable(true));
    }
    table
        .header(row_height + 2.0, |mut header| {
            for title in &titles {
                header.col(|ui| {
                    ui.strong(*title);
                });
            }
        })
        .body(|body| {
            body.rows(row_height, shown.len(), |mut row| {
                let event = shown[row.index()];
                row.col(|ui| {
                    ui.monospace(format!(
                        "{:.6}",
                        event.ts_ns.saturating_sub(t0) as f64 / 1e9
                    ));
                });
                for cell in self::row(event, names) {
                    row.col(|ui| {
                        ui.monospace(cell);
                    });
                }
            });
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::{EventData, FieldValue};

    fn event(comm: &str, sector: u64) -> Event {
        Event {
            probe: 1,
            cpu: 0,
            ts_ns: sector,
            pid: 7,
            tgid: 7,
            comm: comm.into(),
            data: EventData::Fields(vec![FieldValue::Uint(sector), FieldValue::Str("WS".into())]),
        }
    }

    #[test]
    fn the_filter_matches_any_cell() {
        let names = vec!["sector".to_owned(), "rwbs".to_owned()];
        let events = vec![event("kworker", 100), event("jbd2", 2048), event("dd", 7)];
        assert_eq!(matching(&events, &names, "").len(), 3);
        assert_eq!(matching(&events, &names, "JBD").len(), 1);
        assert_eq!(matching(&events, &names, "2048").len(), 1);
        assert_eq!(matching(&events, &names, "ws").len(), 3);
        assert!(matching(&events, &names, "nothing").is_empty());
    }
}
