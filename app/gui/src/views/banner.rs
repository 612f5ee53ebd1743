//! The banner shown across the top while the helper is not connected.

use crate::theme;
use microscope_model::{ConnectionState, Model};

/// The banner's sentence, or `None` while connected.
pub fn banner_text(model: &Model) -> Option<String> {
    match &model.connection {
        ConnectionState::Connected => None,
        ConnectionState::Connecting => Some("Connecting to the helper…".to_owned()),
        ConnectionState::Replay { demo: true } => Some(
            "Demo recording — start the helper to see your own kernel: run `sudo microscoped` \
             (or `cargo xtask run`), then press Go live."
                .to_owned(),
        ),
        ConnectionState::Replay { demo: false } => {
            let damage = model.replay.as_ref().and_then(|r| r.damage.as_ref());
            let failed = model.last_helper_error.as_ref();
            match (failed, damage) {
                (Some(reason), _) => Some(reason.clone()),
                (None, Some(damage)) => Some(format!(
                    "This recording is damaged ({damage}); showing what could be recovered."
                )),
                (None, None) => None,
            }
        }
        // The reason already says how to start the helper.
        ConnectionState::Disconnected { reason } => Some(format!(
            "Not connected to the helper: {reason}. Reconnecting…"
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
