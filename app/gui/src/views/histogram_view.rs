//! Latency histograms, one bar per log2 bucket: system calls, or the calls
//! of a probed kernel or user function.

use crate::theme;
use egui_plot::{Bar, BarChart, Plot};
use microscope_model::Model;
use microscope_model::ProbeKind;
use microscope_model::bucket_label;

/// Draws the histogram chosen in `shown` (`None`: system calls; else a
/// function probe's id), with a selector when function probes have data.
pub fn histogram_ui(ui: &mut egui::Ui, model: &Model, shown: &mut Option<String>) {
    if shown
        .as_ref()
        .is_some_and(|id| !model.functions.contains_key(id))
    {
        *shown = None;
    }
    if model.functions.is_empty() {
        ui.strong("Syscall latency (since the first aggregate)");
    } else {
        ui.horizontal(|ui| {
            ui.strong("Latency of");
            egui::ComboBox::from_id_salt("histogram-choice")
                .selected_text(shown.as_deref().unwrap_or("system calls"))
                .show_ui(ui, |ui| {
                    if ui
                        .selectable_label(shown.is_none(), "system calls")
                        .clicked()
                    {
                        *shown = None;
                    }
                    for id in model.functions.keys() {
                        let selected = shown.as_deref() == Some(id.as_str());
                        if ui.selectable_label(selected, id).clicked() {
                            *shown = Some(id.clone());
                        }
                    }
                });
        });
    }
    if let Some((calls, histogram)) = shown.as_ref().and_then(|id| model.functions.get(id)) {
        ui.weak(format!("{calls} calls since the probe was switched on"));
        if histogram.has_data() {
            bars_ui(ui, &histogram.counts(), "calls");
        } else {
            ui.weak("No call has returned yet.");
        }
        return;
    }
    let latency_probe = model
        .probes
        .iter()
        .find(|p| p.kind == ProbeKind::SyscallLatency);
    if !model.latency.has_data() {
        let hint = match latency_probe {
            Some(probe) => format!("Enable `{}` to see how long syscalls take.", probe.id),
            None if model.probes.is_empty() => {
                "Syscall latencies appear here once the helper is connected.".to_owned()
            }
            None => "The helper offers no syscall latency probe.".to_owned(),
        };
        ui.weak(hint);
        return;
    }
    match model
        .browse
        .baseline
        .as_ref()
        .filter(|b| b.latency.has_data())
    {
        Some(baseline) => {
            ui.weak(
                "Each recording as a share of its own calls: this one, and the baseline \
                 (lighter).",
            );
            shares_ui(ui, &model.latency.counts(), &baseline.latency.counts());
        }
        None => bars_ui(ui, &model.latency.counts(), "syscalls"),
    }
}

/// Two histograms side by side, each bucket as a percentage of its own
/// total.
fn shares_ui(ui: &mut egui::Ui, counts: &[u64], baseline: &[u64]) {
    let percent = |counts: &[u64]| -> Vec<f64> {
        let total: u64 = counts.iter().sum();
        counts
            .iter()
            .map(|&c| {
                if total == 0 {
                    0.0
                } else {
                    100.0 * c as f64 / total as f64
                }
            })
            .collect()
    };
    let (now, before) = (percent(counts), percent(baseline));
    let buckets = now.len().max(before.len());
    let bars = |values: &[f64], offset: f64| -> Vec<Bar> {
        (0..buckets)
            .map(|bucket| {
                Bar::new(
                    bucket as f64 + offset,
                    values.get(bucket).copied().unwrap_or(0.0),
                )
                .width(0.4)
                .name(format!(
                    "{} – {}",
                    bucket_label(bucket),
                    bucket_label(bucket + 1)
                ))
            })
            .collect()
    };
    Plot::new("latency-compared")
        .x_axis_label("latency (log2 buckets, lower bound)")
        .y_axis_label("% of calls")
        .x_axis_formatter(|mark, _range| {
            let bucket = mark.value;
            if bucket >= 0.0 && bucket.fract() == 0.0 {
                bucket_label(bucket as usize)
            } else {
                String::new()
            }
        })
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .include_y(0.0)
        .show(ui, |plot_ui| {
            plot_ui.bar_chart(
                BarChart::new("this recording", bars(&now, -0.2)).color(theme::HISTOGRAM_BAR),
            );
            plot_ui.bar_chart(
                BarChart::new("baseline", bars(&before, 0.2))
                    .color(theme::HISTOGRAM_BAR.gamma_multiply(0.45)),
            );
        });
}

fn bars_ui(ui: &mut egui::Ui, counts: &[u64], what: &str) {
    log2_bars_ui(
        ui,
        "latency",
        counts,
        what,
        "latency (log2 buckets, lower bound)",
        bucket_label,
    );
}

/// Draws a log2 histogram, one bar per bucket with data (and a little
/// context around them): the syscall and function latencies, and a pack
/// probe's histograms (`label` names a bucket's lower bound in their unit).
pub(crate) fn log2_bars_ui(
    ui: &mut egui::Ui,
    plot_id: &str,
    counts: &[u64],
    what: &str,
    x_label: &str,
    label: impl Fn(usize) -> String,
) {
    let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
    let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    // Show a little context around the buckets that have data.
    let shown = first.saturating_sub(2)..(last + 3).min(counts.len());
    let bars = counts
        .get(shown.clone())
        .unwrap_or_default()
        .iter()
        .zip(shown)
        .map(|(&count, bucket)| {
            Bar::new(bucket as f64, count as f64)
                .width(0.9)
                .name(format!("{} – {}", label(bucket), label(bucket + 1)))
        })
        .collect();
    Plot::new(plot_id)
        .x_axis_label(x_label)
        .y_axis_label(what)
        .x_axis_formatter(|mark, _range| {
            let bucket = mark.value;
            if bucket >= 0.0 && bucket.fract() == 0.0 {
                label(bucket as usize)
            } else {
                String::new()
            }
        })
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .include_y(0.0)
        .show(ui, |plot_ui| {
            plot_ui.bar_chart(BarChart::new(plot_id, bars).color(theme::HISTOGRAM_BAR));
        });
}
