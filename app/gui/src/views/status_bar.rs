//! The status bar: connection, event rate, drops, helper and kernel versions.

use crate::theme;
use microscope_model::{ConnectionState, Model, format_count};
use std::time::{Duration, Instant};

/// How often a non-zero rate is redrawn when nothing else repaints.
const RATE_REFRESH: Duration = Duration::from_millis(250);

/// Draws the status bar; `wall` is the app's clock (not the playhead).
pub fn status_bar_ui(ui: &mut egui::Ui, model: &Model, wall: Instant) {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = theme::ITEM_GAP;
        match &model.connection {
            ConnectionState::Connected => {
                ui.colored_label(theme::CONNECTED, "Connected");
            }
            ConnectionState::Connecting => {
                ui.colored_label(theme::WARNING, "Connecting");
            }
            ConnectionState::Disconnected { .. } => {
                ui.colored_label(theme::WARNING, "Not connected");
            }
            ConnectionState::Replay { demo } => {
                ui.colored_label(theme::CONNECTED, if *demo { "Demo" } else { "Replay" });
            }
        }
        ui.separator();
        let rate = model.events_per_sec(wall);
        ui.label(format!("{} events/s", format_count(rate.round() as u64)));
        if rate > 0.0 {
            // The rate falls as time passes without events (a replay that
            // stopped, a quiet helper), which no input or update would
            // repaint: look again a few times a second until it reads 0.
            ui.ctx().request_repaint_after(RATE_REFRESH);
        }
        ui.separator();
        let kernel_drops = model.kernel_drops();
        let drops = format!("kernel drops: {}", format_count(kernel_drops));
        if kernel_drops > 0 {
            ui.colored_label(theme::WARNING, drops)
                .on_hover_text("Events lost because the kernel ring buffer was full.");
        } else {
            ui.label(drops);
        }
        let client_drops = model.client_drops();
        if client_drops > 0 {
            ui.colored_label(
                theme::WARNING,
                format!("app drops: {}", format_count(client_drops)),
            )
            .on_hover_text("Events the helper dropped because this app read too slowly.");
        }
        if let Some(helper) = &model.helper {
            ui.separator();
            ui.label(format!("microscoped {}", helper.helper_version));
            ui.separator();
            ui.label(format!("kernel {}", helper.kernel_release));
        }
        if let Some(error) = &model.last_helper_error {
            ui.separator();
            ui.colored_label(theme::WARNING, format!("helper error: {error}"));
        }
    });
}
