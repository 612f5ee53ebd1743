//! The banner shown across the top while the helper is not connected.

use crate::model::{ConnectionState, Model};
use crate::theme;

/// The banner's sentence, or `None` while connected.
pub fn banner_text(model: &Model) -> Option<String> {
    match &model.connection {
        ConnectionState::Connected => None,
        ConnectionState::Connecting => Some("Connecting to the helper…".to_owned()),
        ConnectionState::Disconnected { reason } => Some(format!(
            "Not connected to the helper: {reason}. Start it with `sudo microscoped` \
             (or `cargo xtask run`); reconnecting…"
        )),
    }
}

/// Draws the banner if there is one.
pub fn banner_ui(ui: &mut egui::Ui, text: &str) {
    egui::Frame::new()
        .fill(theme::BANNER_FILL)
        .inner_margin(theme::BANNER_MARGIN)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.add(egui::Label::new(egui::RichText::new(text).color(theme::BANNER_TEXT)).wrap());
        });
}
