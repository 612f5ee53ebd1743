//! `microscope` with no subcommand: the window.

use crate::cli::{Cli, View};
use microscope_gui::{Command, WindowOptions};
use std::process::ExitCode;

/// Opens the window with the options of `cli` until it is closed.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut start = Vec::new();
    if let Some(tour) = cli.tour {
        start.push(Command::StartTour(tour));
        if let Some(step) = cli.tour_step {
            start.push(Command::TourStep(step.saturating_sub(1)));
        }
    }
    if let Some(call) = cli.follow {
        start.push(Command::FollowWhenPlayed(call));
    }
    microscope_gui::run_gui(WindowOptions {
        socket: cli.socket,
        enable: cli.enable,
        replay: cli.replay,
        tab: cli.view.map(View::tab),
        select: cli.select,
        default_probes: !cli.no_default_probes,
        start,
        baseline: cli.baseline,
    })?;
    Ok(ExitCode::SUCCESS)
}
