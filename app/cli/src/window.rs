//! `microscope` with no subcommand: the window.

use crate::cli::{Cli, View};
use std::process::ExitCode;

/// Opens the window with the options of `cli` until it is closed.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    microscope_gui::run_gui(
        cli.socket,
        cli.enable,
        cli.replay,
        cli.view.map(View::tab),
        cli.select,
        !cli.no_default_probes,
        cli.baseline,
    )?;
    Ok(ExitCode::SUCCESS)
}
