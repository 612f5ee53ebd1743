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

/// Where the app looks for packs whose map, explanations and tours it
/// shows (the helper reads the system ones for their probes): the system
/// directories and, for a teacher without root, `~/.local/share/microscope/packs`.
pub fn pack_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/share/microscope/packs", "/etc/microscope/packs"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(data) = data {
        dirs.push(data.join("microscope/packs"));
    }
    dirs
}

/// The built-in pack merged with every pack directory inside `dirs`
/// (missing directories are fine). A pack that cannot be read or merged is
/// left out, with a sentence saying why.
pub fn catalogue_with_local_packs(
    dirs: &[PathBuf],
) -> (microscope_catalogue::Catalogue, Vec<String>) {
    use microscope_catalogue::{Catalogue, Pack};
    let mut packs = vec![Pack::builtin()];
    let mut problems = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join(microscope_catalogue::PACK_MANIFEST).is_file())
            .collect();
        found.sort();
        for path in found {
            match Pack::load_dir(&path) {
                Ok(pack) => {
                    let mut with = packs.clone();
                    with.push(pack);
                    match Catalogue::from_packs(with.clone()) {
                        Ok(_) => packs = with,
                        Err(err) => problems
                            .push(format!("the pack in {} is left out: {err}", path.display())),
                    }
                }
                Err(err) => {
                    problems.push(format!("the pack in {} is left out: {err}", path.display()))
                }
            }
        }
    }
    match Catalogue::from_packs(packs) {
        Ok(catalogue) => (catalogue, problems),
        // Each pack merged above; this only guards against a logic slip.
        Err(err) => {
            problems.push(format!("local packs are left out: {err}"));
            (Catalogue::builtin(), problems)
        }
    }
}

/// What the window opens on, from the command line.
#[derive(Debug, Default)]
pub struct WindowOptions {
    /// The helper's socket.
    pub socket: PathBuf,
    /// Probes switched on as if their boxes were ticked.
    pub enable: Vec<String>,
    /// A recording to replay instead of connecting.
    pub replay: Option<PathBuf>,
    /// The view to open on.
    pub tab: Option<CentralTab>,
    /// A subsystem whose details the map shows.
    pub select: Option<String>,
    /// Count a cheap default set of probes in the kernel as soon as the
    /// helper answers, so the map lights at once.
    pub default_probes: bool,
    /// Commands to run first (a tour, a followed call).
    pub start: Vec<Command>,
    /// A second recording to compare with.
    pub baseline: Option<PathBuf>,
}

/// Opens the window until it is closed: replaying `replay` if given, else
/// connected to the helper at `socket` (falling back to the bundled demo
/// recording when no helper answers); see [`WindowOptions`].
pub fn run_gui(window: WindowOptions) -> anyhow::Result<()> {
    let WindowOptions {
        socket,
        enable,
        replay,
        tab,
        select,
        default_probes,
        start,
        baseline,
    } = window;
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
            let (catalogue, problems) = catalogue_with_local_packs(&pack_dirs());
            let mut app = MicroscopeApp::new(updates, to_helper)
                .with_socket(socket, replay.is_none())
                .with_recorder(recorder)
                .with_default_probes(default_probes)
                .with_catalogue(catalogue, problems);
            if let Some(tab) = tab {
                app.request(Command::ShowTab(tab));
            }
            if let Some(subsystem) = select {
                app.request(Command::SelectSubsystem(subsystem));
            }
            // A tour or a followed call asked for on the command line.
            for command in start {
                app.request(command);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_teachers_pack_adds_its_tour_and_a_broken_pack_is_left_out_with_a_sentence() {
        let root = tempfile::tempdir().unwrap();
        let manifest = |id: &str| {
            format!("[pack]\nid = \"{id}\"\nname = \"n\"\ndescription = \"d\"\nversion = \"1\"\n")
        };
        let class = root.path().join("class");
        std::fs::create_dir_all(class.join("tours")).unwrap();
        std::fs::write(class.join("pack.toml"), manifest("class")).unwrap();
        std::fs::write(
            class.join("tours/mine.toml"),
            "[tour]\nid = \"mine\"\ntitle = \"t\"\nsummary = \"s\"\n[[step]]\ntitle = \"a\"\ntext = \"b\"\nnodes = [\"vfs\"]\n",
        )
        .unwrap();
        let broken = root.path().join("broken");
        std::fs::create_dir_all(broken.join("tours")).unwrap();
        std::fs::write(broken.join("pack.toml"), manifest("broken")).unwrap();
        std::fs::write(broken.join("tours/bad.toml"), "[tour]\nid = 3\n").unwrap();

        let (catalogue, problems) =
            catalogue_with_local_packs(&[root.path().to_owned(), root.path().join("missing")]);
        assert!(catalogue.tour("mine").is_some());
        assert!(catalogue.tour("read").is_some(), "the built-in tours stay");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("broken/tours/bad.toml:2:6"),
            "{problems:?}"
        );
    }
}
