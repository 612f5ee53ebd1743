//! Pack data: what a pack probe's own maps hold. Its log2 histograms draw
//! like the syscall latency histogram (one key, or all keys added up); its
//! counter maps show as a table (keys decoded by the manifest, the values,
//! and each row's rate) and the rates of chosen rows over time. Also the
//! verifier's whole log of a pack probe the kernel refused.

use crate::command::{Command, CommandQueue};
use crate::theme;
use crate::views::histogram_view::log2_bars_ui;
use microscope_model::{
    CounterTable, Model, PackProbeData, Probe, format_count, format_rate, histogram_summary,
    log2_bucket_label, sum_buckets,
};
use microscope_wire::FieldValue;
use std::collections::{BTreeMap, BTreeSet};

/// Rows plotted over time when the user has ticked none: the busiest few.
const DEFAULT_PLOTTED_ROWS: usize = 5;

/// The sentence that says whose counts these are.
pub const MACHINE_WIDE: &str = "Counted in the kernel since the helper loaded this probe, for \
     every client of the helper alike: machine-wide (or the processes every client's filter \
     keeps), not only what this window asked for. Rates are per second between two readings.";

/// What the pack view remembers between frames.
#[derive(Debug, Default)]
pub struct PackViewState {
    /// The probe shown (its id).
    pub probe: Option<String>,
    /// Per histogram map: the key shown (`None`: every key added up).
    pub histogram_key: BTreeMap<String, Option<String>>,
    /// Per counter map: the rows whose rate is plotted (by key text).
    pub plotted: BTreeMap<String, BTreeSet<String>>,
    /// The probe whose verifier log window is open.
    pub verifier_log: Option<String>,
}

/// Probes with map data to show, by id.
fn with_data(model: &Model) -> Vec<(&Probe, &PackProbeData)> {
    model
        .probes
        .iter()
        .filter_map(|p| Some((p, model.packs.get(&p.key)?)))
        .filter(|(_, data)| !data.tables.is_empty() || !data.histograms.is_empty())
        .collect()
}

/// Draws the pack view.
pub fn pack_ui(ui: &mut egui::Ui, model: &Model, state: &mut PackViewState) {
    let probes = with_data(model);
    if probes.is_empty() {
        ui.weak(
            "Switch on a pack probe with counters or histograms (for example \
             libbpf-tools:syscount or libbpf-tools:runqlat) to see its maps here. \
             `microscope probes` lists them as kind `pack`; docs/packs.md says how to write one.",
        );
        return;
    }
    if state
        .probe
        .as_ref()
        .is_none_or(|id| !probes.iter().any(|(p, _)| &p.id == id))
    {
        state.probe = probes.first().map(|(p, _)| p.id.clone());
    }
    let Some(&(probe, data)) = probes
        .iter()
        .find(|(p, _)| Some(&p.id) == state.probe.as_ref())
    else {
        return;
    };
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("Pack probe")
            .selected_text(&probe.id)
            .show_ui(ui, |ui| {
                for (p, _) in &probes {
                    if ui.selectable_label(p.id == probe.id, &p.id).clicked() {
                        state.probe = Some(p.id.clone());
                    }
                }
            });
        ui.weak(format!(
            "{} readings of its maps so far",
            format_count(data.readings)
        ));
    });
    ui.weak(MACHINE_WIDE);
    ui.add_space(theme::SECTION_GAP);
    let maps = data.histogram_maps();
    let sections = maps.len() + data.tables.len();
    let each = (ui.available_height() / sections.max(1) as f32).max(160.0);
    egui::ScrollArea::vertical()
        .id_salt("pack-view")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for map in maps {
                ui.push_id(("hist", map), |ui| {
                    histogram_section_ui(ui, data, map, each, state);
                });
                ui.add_space(theme::SECTION_GAP);
            }
            for table in &data.tables {
                ui.push_id(("table", &table.map), |ui| {
                    table_section_ui(ui, table, each, state);
                });
                ui.add_space(theme::SECTION_GAP);
            }
        });
}

fn histogram_section_ui(
    ui: &mut egui::Ui,
    data: &PackProbeData,
    map: &str,
    height: f32,
    state: &mut PackViewState,
) {
    let histograms = data.histograms_of(map);
    let unit = histograms.first().map_or("", |h| h.unit.as_str());
    let chosen = state.histogram_key.entry(map.to_owned()).or_default();
    if chosen
        .as_ref()
        .is_some_and(|label| !histograms.iter().any(|h| &h.label == label))
    {
        *chosen = None;
    }
    let all = if histograms.len() == 1 {
        histograms
            .first()
            .map_or_else(|| "all".to_owned(), |h| h.label.clone())
    } else {
        format!("all {} keys, added up", histograms.len())
    };
    let counts = match chosen {
        Some(label) => histograms
            .iter()
            .find(|h| &h.label == label)
            .map(|h| h.buckets.clone())
            .unwrap_or_default(),
        None => sum_buckets(histograms.iter().copied()),
    };
    ui.horizontal(|ui| {
        ui.strong(format!("Histogram `{map}`"));
        if histograms.len() > 1 {
            egui::ComboBox::from_id_salt("histogram-key")
                .selected_text(chosen.as_deref().unwrap_or(&all))
                .show_ui(ui, |ui| {
                    if ui.selectable_label(chosen.is_none(), &all).clicked() {
                        *chosen = None;
                    }
                    for h in &histograms {
                        let selected = chosen.as_deref() == Some(h.label.as_str());
                        if ui.selectable_label(selected, &h.label).clicked() {
                            *chosen = Some(h.label.clone());
                        }
                    }
                });
        }
        ui.label(histogram_summary(&counts, unit));
    });
    let x_label = if unit.is_empty() {
        "value (log2 buckets, lower bound)".to_owned()
    } else {
        format!("{unit} (log2 buckets, lower bound)")
    };
    // The heading row above took some of the section's height.
    let plot_height = (height - ui.spacing().interact_size.y * 2.0).max(140.0);
    ui.allocate_ui(egui::vec2(ui.available_width(), plot_height), |ui| {
        log2_bars_ui(ui, map, &counts, "samples", &x_label, |bucket| {
            log2_bucket_label(bucket, unit)
        });
    });
}

fn table_section_ui(
    ui: &mut egui::Ui,
    table: &CounterTable,
    height: f32,
    state: &mut PackViewState,
) {
    let order = table.by_rate();
    let rate_name = table.rate_column_name().unwrap_or("value");
    ui.horizontal(|ui| {
        ui.strong(format!("Counters `{}`", table.map));
        ui.label(format!(
            "{} rows; {} {rate_name} in all, {}/s now",
            format_count(table.rows.len() as u64),
            format_count(table.total().max(0.0) as u64),
            format_rate(table.total_rate_per_sec()),
        ));
        if table.truncated > 0 {
            ui.colored_label(
                theme::WARNING,
                format!(
                    "{} more rows in the map than the helper sends",
                    format_count(table.truncated)
                ),
            );
        }
    });
    let ticked = state.plotted.entry(table.map.clone()).or_default();
    let plotted: Vec<&str> = if ticked.is_empty() {
        order
            .iter()
            .filter_map(|&i| table.rows.get(i))
            .filter(|row| row.rate_per_sec.is_some_and(|r| r > 0.0))
            .take(DEFAULT_PLOTTED_ROWS)
            .map(|row| row.key.as_str())
            .collect()
    } else {
        ticked.iter().map(String::as_str).collect()
    };
    if table.rate_column.is_some() {
        if plotted.is_empty() {
            ui.weak(format!(
                "No row's {rate_name} grew in the last reading; tick rows below to plot their rates."
            ));
        } else {
            rates_plot_ui(ui, table, &plotted, rate_name, height * 0.45);
        }
    }
    let plotted: BTreeSet<String> = plotted.into_iter().map(str::to_owned).collect();
    rows_ui(ui, table, &order, &plotted, ticked, height * 0.55);
}

fn rates_plot_ui(
    ui: &mut egui::Ui,
    table: &CounterTable,
    keys: &[&str],
    rate_name: &str,
    height: f32,
) {
    let t0 = table
        .rows
        .iter()
        .filter_map(|row| row.history.front().map(|p| p[0]))
        .fold(f64::INFINITY, f64::min);
    egui_plot::Plot::new("pack-rates")
        .height(height.max(100.0))
        .x_axis_label("seconds")
        .y_axis_label(format!("{rate_name}/s"))
        .legend(egui_plot::Legend::default())
        .include_y(0.0)
        .allow_scroll(false)
        .show(ui, |plot| {
            for (index, key) in keys.iter().enumerate() {
                let Some(row) = table.rows.iter().find(|row| row.key == *key) else {
                    continue;
                };
                let points: Vec<[f64; 2]> = row.history.iter().map(|p| [p[0] - t0, p[1]]).collect();
                plot.line(
                    egui_plot::Line::new(*key, egui_plot::PlotPoints::from(points))
                        .color(theme::series_color(index)),
                );
            }
        });
}

fn rows_ui(
    ui: &mut egui::Ui,
    table: &CounterTable,
    order: &[usize],
    plotted: &BTreeSet<String>,
    ticked: &mut BTreeSet<String>,
    height: f32,
) {
    use egui_extras::{Column, TableBuilder};
    // Rows are one line high: a wrapped cell would spill into the next row.
    ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
    let rate_title = format!("{}/s", table.rate_column_name().unwrap_or("value"));
    let mut table_ui = TableBuilder::new(ui)
        .id_salt("pack-table")
        .striped(true)
        .max_scroll_height(height.max(120.0))
        .auto_shrink([false, true])
        .vscroll(true)
        .column(Column::auto().at_least(36.0));
    for _ in 0..table.columns.len() + 1 {
        table_ui = table_ui.column(Column::auto().at_least(60.0).resizable(true));
    }
    table_ui
        .header(row_height + 2.0, |mut header| {
            header.col(|ui| {
                ui.strong("plot");
            });
            for (i, title) in table.columns.iter().enumerate() {
                header.col(|ui| {
                    if i < table.key_columns {
                        ui.strong(format!("{title} (key)"));
                    } else {
                        ui.strong(title);
                    }
                });
            }
            header.col(|ui| {
                ui.strong(&rate_title);
            });
        })
        .body(|body| {
            body.rows(row_height, order.len(), |mut cells| {
                let Some(row) = order.get(cells.index()).and_then(|&i| table.rows.get(i)) else {
                    return;
                };
                cells.col(|ui| {
                    let mut on = plotted.contains(&row.key);
                    let response = ui
                        .checkbox(&mut on, "")
                        .on_hover_text(format!("Plot the rate of {} over time", row.key));
                    if response.changed() {
                        if ticked.is_empty() {
                            // The first tick starts from what was plotted.
                            ticked.extend(plotted.iter().cloned());
                        }
                        if on {
                            ticked.insert(row.key.clone());
                        } else {
                            ticked.remove(&row.key);
                        }
                    }
                });
                for (column, cell) in row.cells.iter().enumerate() {
                    cells.col(|ui| {
                        ui.monospace(cell_text(cell, column >= table.key_columns));
                    });
                }
                for _ in row.cells.len()..table.columns.len() {
                    cells.col(|_| {});
                }
                cells.col(|ui| {
                    ui.monospace(row.rate_per_sec.map_or_else(|| "–".to_owned(), format_rate));
                });
            });
        });
}

/// A cell for people: strings without quotes, counts grouped by thousands
/// (keys such as pids stay as they are).
fn cell_text(value: &FieldValue, count: bool) -> String {
    match value {
        FieldValue::Str(s) => s.clone(),
        FieldValue::Uint(n) if count => format_count(*n),
        other => other.to_string(),
    }
}

/// The verifier log window of a refused pack probe, once asked for.
pub fn verifier_log_window_ui(ctx: &egui::Context, model: &Model, state: &mut PackViewState) {
    let Some(probe) = state.verifier_log.clone() else {
        return;
    };
    let mut open = true;
    egui::Window::new(format!("Verifier log of {probe}"))
        .open(&mut open)
        .default_size([720.0, 480.0])
        .show(ctx, |ui| match model.verifier_logs.get(&probe) {
            Some(log) => {
                ui.label(
                    "The kernel's verifier refused this program; its log ends with the reason. \
                     The same log: `microscope probes --verifier-log ID`.",
                );
                egui::ScrollArea::both().show(ui, |ui| {
                    ui.monospace(log);
                });
            }
            None => {
                ui.weak("Asked the helper for the log…");
                if let Some(error) = &model.last_helper_error {
                    ui.colored_label(theme::WARNING, error);
                }
            }
        });
    if !open {
        state.verifier_log = None;
    }
}

/// Whether `probe` was refused by the verifier (so a log can be asked for).
pub fn has_verifier_log(probe: &Probe) -> bool {
    probe
        .unavailable_reason
        .as_deref()
        .is_some_and(|reason| reason.starts_with("the verifier refused"))
}

/// A button that opens the verifier log of `probe`.
pub fn verifier_log_button_ui(ui: &mut egui::Ui, probe: &Probe, commands: &mut CommandQueue) {
    if ui
        .small_button("Verifier log")
        .on_hover_text("Show the verifier's whole log for this probe")
        .clicked()
    {
        commands.send(Command::ShowVerifierLog(probe.id.clone()));
    }
}
