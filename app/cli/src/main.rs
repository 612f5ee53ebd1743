//! `microscope`: the window, or `probes` / `watch` / `record` / `info` /
//! `export` / `profile` / `check-pack` in a terminal. Parses the arguments,
//! runs the command, prints its error and exits with its status.

use clap::Parser as _;
use microscope::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match microscope::run(Cli::parse()) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("microscope: {err:#}");
            microscope::exit_status(&err)
        }
    }
}
