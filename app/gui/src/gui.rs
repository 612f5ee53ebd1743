//! Opening the window: channels, the ingest thread, eframe.

use crate::app::MicroscopeApp;
use crate::command::Command;
use crate::ingest::spawn_ingest;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;

/// Title of the main window.
pub const WINDOW_TITLE: &str = "Microscope";

/// Updates waiting for the UI. At ~20 batches and 4 aggregates per second this
/// is minutes of slack; when it is full the reader blocks and the helper
/// counts client drops instead of the app growing without bound.
const UPDATE_CHANNEL_CAPACITY: usize = 4096;
/// Requests waiting for the socket; clicks never come close.
const COMMAND_CHANNEL_CAPACITY: usize = 256;

/// Opens the window, connected to the helper at `socket`, until it is closed.
/// The probes in `enable` are switched on as if their boxes were ticked.
pub fn run_gui(socket: PathBuf, enable: Vec<String>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(WINDOW_TITLE)
            .with_inner_size([1200.0, 800.0])
            .with_min_inner_size([640.0, 400.0]),
        ..Default::default()
    };
    eframe::run_native(
        WINDOW_TITLE,
        options,
        Box::new(move |creation| {
            let (update_tx, update_rx) = crossbeam_channel::bounded(UPDATE_CHANNEL_CAPACITY);
            let (command_tx, command_rx) = crossbeam_channel::bounded(COMMAND_CHANNEL_CAPACITY);
            let ctx = creation.egui_ctx.clone();
            spawn_ingest(
                socket,
                update_tx,
                command_rx,
                Arc::new(move || ctx.request_repaint()),
            )
            .context("could not start the connection thread")?;
            let mut app = MicroscopeApp::new(update_rx, command_tx);
            for probe in enable {
                app.request(Command::SetProbeEnabled {
                    probe,
                    enabled: true,
                });
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|err| anyhow::anyhow!("could not open the window: {err}"))
}
