//! The status bar: connection, event rate, drops, helper and kernel versions.

use crate::theme;
use microscope_model::{ConnectionState, Model, format_count};
use std::time::Instant;

/// Draws the status bar.
pub fn status_bar_ui(ui: &mut egui::Ui, model: &Model, now: Instant) {
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
        let rate = model.timeline.total_rate_per_sec(now);
        ui.label(format!("{} events/s", format_count(rate.round() as u64)));
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
