//! `microscope`: the window, or `probes` / `watch` in a terminal.

use clap::Parser as _;
use microscope::cli::{Cli, CliCommand};
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        None => match microscope::run_gui(cli.socket, cli.enable) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("microscope: {err:#}");
                ExitCode::FAILURE
            }
        },
        Some(CliCommand::Probes) => match microscope::probes_report(&cli.socket) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("microscope: {err}");
                ExitCode::from(2)
            }
        },
        Some(CliCommand::Watch { probes, seconds }) => {
            let mut stdout = std::io::stdout().lock();
            match microscope::run_watch(&cli.socket, &probes, seconds, &mut stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("microscope: {err}");
                    ExitCode::from(err.exit_code())
                }
            }
        }
    }
}
