//! The live timeline: events per second of each probe.

use crate::command::{Command, CommandQueue};
use crate::theme;
use egui_plot::{Legend, Line, Plot, PlotPoints};
use microscope_model::BUCKET;
use microscope_model::Model;
use microscope_model::decimate_min_max;
use microscope_model::format_rate;
use std::time::Instant;

/// Seconds of history shown while following live data.
pub const LIVE_WINDOW_SECS: f64 = 60.0;

/// A tick of the rate axis: `1M`, `1.5k`, as the map writes rates.
pub fn rate_axis_label(events_per_sec: f64) -> String {
    format_rate(events_per_sec)
}

/// Draws the timeline in `height` points.
pub fn timeline_ui(
    ui: &mut egui::Ui,
    model: &Model,
    follow_live: bool,
    now: Instant,
    height: f32,
    commands: &mut CommandQueue,
) {
    ui.horizontal(|ui| {
        ui.strong("Events per second");
        ui.add_space(theme::ITEM_GAP);
        let mut follow = follow_live;
        if ui
            .checkbox(&mut follow, "Follow live")
            .on_hover_text("Keep the last minute in view; untick to pan and zoom.")
            .changed()
        {
            commands.send(Command::SetFollowLive(follow));
        }
    });
    let now_secs = model.timeline.secs_since_epoch(now);
    let width_px = ui.available_width().max(1.0);
    let plot = Plot::new("timeline")
        .height(height)
        .legend(Legend::default())
        .x_axis_label("seconds since start")
        .y_axis_label("events/s")
        .y_axis_formatter(|mark, _range| rate_axis_label(mark.value))
        .allow_drag(!follow_live)
        .allow_zoom(!follow_live)
        .allow_scroll(!follow_live)
        .include_y(0.0);
    let mut shown = (0.0, 0.0);
    plot.show(ui, |plot_ui| {
        let (x_min, x_max) = if follow_live {
            (
                (now_secs - LIVE_WINDOW_SECS).max(0.0),
                now_secs.max(LIVE_WINDOW_SECS),
            )
        } else {
            let bounds = plot_ui.plot_bounds();
            (bounds.min()[0], bounds.max()[0])
        };
        // One column per pixel of the plot's width (approximately: axes take a
        // little of it, which only means slightly more points than needed).
        let columns = width_px as usize;
        let mut y_max: f64 = 1.0;
        // Stop before buckets that are still filling (see `settled_until_secs`);
        // the half-bucket margin keeps the last settled point itself.
        let data_x_max =
            x_max.min(model.timeline.settled_until_secs(now) - 0.5 * BUCKET.as_secs_f64());
        for (index, (probe, series)) in model.timeline.all_series().enumerate() {
            let points = decimate_min_max(series.points(), x_min, data_x_max, columns);
            y_max = points.iter().map(|p| p[1]).fold(y_max, f64::max);
            plot_ui
                .line(Line::new(probe, PlotPoints::new(points)).color(theme::series_color(index)));
            // The baseline recording's rate of the same probe, dashed, on
            // the same axis (seconds since each recording started).
            if let Some(series) = model
                .browse
                .baseline
                .as_ref()
                .and_then(|b| b.timeline.series(probe))
            {
                let points = decimate_min_max(series.points(), x_min, x_max, columns);
                y_max = points.iter().map(|p| p[1]).fold(y_max, f64::max);
                plot_ui.line(
                    Line::new(format!("{probe} (baseline)"), PlotPoints::new(points))
                        .color(theme::series_color(index))
                        .style(egui_plot::LineStyle::dashed_loose()),
                );
            }
        }
        if follow_live {
            plot_ui.set_plot_bounds_x(x_min..=x_max);
            plot_ui.set_plot_bounds_y(0.0..=y_max * 1.1);
        }
        shown = (x_min, x_max);
    });
    // Time-slice the flame graph: the stacks of the seconds in view.
    if let Some((start_ns, end_ns)) = model.stack_range_of(shown.0, shown.1)
        && ui
            .button("Flame graph of this range")
            .on_hover_text(
                "Show the stack samples of the time in view in the Flame and Paths tabs \
                 (untick Follow live, then pan and zoom to choose the range).",
            )
            .clicked()
    {
        commands.send(Command::ShowStackRange { start_ns, end_ns });
        commands.send(Command::ShowTab(crate::tab::CentralTab::Flame));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_axis_writes_large_rates_short() {
        assert_eq!(rate_axis_label(1_000_000.0), "1M");
        assert_eq!(rate_axis_label(1_500.0), "1.5k");
        assert_eq!(rate_axis_label(500.0), "500");
        assert_eq!(rate_axis_label(0.0), "0");
    }
}
