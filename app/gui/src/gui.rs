//! Opening the window: the first source (live helper or a recording), eframe.

use crate::app::MicroscopeApp;
use crate::command::Command;
use crate::tab::CentralTab;
use anyhow::Context as _;
use microscope_sources as sources;
use std::path::PathBuf;
use std::sync::Arc;

/// Title of the main window.
pub const WINDOW_TITLE: &str = "Microscope";

/// Opens the window until it is closed: replaying `replay` if given, else
/// connected to the helper at `socket` (falling back to the bundled demo
/// recording when no helper answers). The probes in `enable` are switched on
/// as if their boxes were ticked; `tab` is the view to open on, `select` a
/// subsystem whose details the map shows. With `default_probes`, a cheap
/// default set of probes is counted in the kernel as soon as the helper
/// answers, so the map lights at once. `baseline` is a second recording to
/// compare with.
pub fn run_gui(
    socket: PathBuf,
    enable: Vec<String>,
    replay: Option<PathBuf>,
    tab: Option<CentralTab>,
    select: Option<String>,
    default_probes: bool,
    baseline: Option<PathBuf>,
) -> anyhow::Result<()> {
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
            let ctx = creation.egui_ctx.clone();
            let wake_ctx = ctx.clone();
            let recorder = microscope_sources::Recorder::default();
            let (updates, to_helper) = sources::live(
                &socket,
                Arc::new(move || wake_ctx.request_repaint()),
                recorder.clone(),
            )
            .context("could not start the connection thread")?;
            let mut app = MicroscopeApp::new(updates, to_helper)
                .with_socket(socket, replay.is_none())
                .with_recorder(recorder)
                .with_default_probes(default_probes);
            if let Some(tab) = tab {
                app.request(Command::ShowTab(tab));
            }
            if let Some(subsystem) = select {
                app.request(Command::SelectSubsystem(subsystem));
            }
            if let Some(path) = baseline {
                app.request(Command::OpenBaseline(path));
            }
            match replay {
                Some(path) => app.start_replay(path, false, &ctx),
                None => {
                    for probe in enable {
                        app.request(Command::SetProbeEnabled {
                            probe,
                            enabled: true,
                        });
                    }
                }
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|err| anyhow::anyhow!("could not open the window: {err}"))
}
