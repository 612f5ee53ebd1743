//! `microscope`: the command line, thin over the library crates.
//!
//! Each subcommand is one module with one `run(args) -> Result<ExitCode>`;
//! [`run`] only picks the module, and `main.rs` only parses the arguments
//! and prints the error a command returns (with the exit status it chose,
//! see `failure`). The window is `microscope-gui`, the data model
//! `microscope-model`, the file format and the socket `microscope-wire`.
//!
//! - [`cli`]: the arguments (clap derive), leaves of this crate.
//! - `window`: no subcommand: opens the window.
//! - `probes`, `watch`: the helper's probes, and events per second; the
//!   watch aggregation is a pure function ([`tally_seconds`]) with unit tests.
//! - `record`, `info`, `export`: `record`, `info` and `export` of recordings
//!   (the file format lives in `microscope-wire`); each export format is a
//!   pure function from frames to a writer.
//! - `profile`: stack batches from the helper folded into flame-graph input
//!   (`microscope_model::FoldedProfile`, pure and unit-tested).
//! - `diff`: what grew and shrank between two recordings.
//! - `check_pack`: a probe pack checked against the built-in one.
//! - `bench`: the hidden `__bench-flame` that `cargo xtask bench flame` runs.
//!
//! # Dependencies and why
//!
//! - `clap` (derive): the command line.
//! - `anyhow` at the boundary between commands and `main`; `thiserror` for
//!   the commands' own errors.
//! - `serde_json`, `csv`: the Perfetto (trace-event JSON) and CSV exports,
//!   with correct escaping and quoting.
//! - `env_logger`: diagnostics (`RUST_LOG=debug microscope`).
//! - `jiff`: the calendar date of a recording in `info` (UTC).
//! - `microscope-gui`, `microscope-model`, `microscope-wire`,
//!   `microscope-catalogue`: the window, the model, the protocol,
//!   recordings and `CLOCK_MONOTONIC` (the clock of the helper's batch
//!   times, for `profile`), the probe packs.
//! - `inferno` (dev): checks that `profile`'s folded output is what
//!   flame-graph tools read.

mod bench;
mod check_pack;
pub mod cli;
mod diff;
mod export;
mod failure;
mod info;
mod new_pack;
mod probes;
mod profile;
mod record;
mod watch;
mod window;

pub use cli::{Cli, CliCommand};
pub use export::{ExportError, ExportOutcome, export_csv, export_folded, export_perfetto};
pub use failure::{Failure, exit_status};
pub use profile::{ProfileError, ProfileRequest, run_profile};
pub use watch::{WatchError, WatchTally, tally_seconds};

use std::process::ExitCode;

/// Runs what the command line asks for.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(command) = &cli.command else {
        return window::run(cli);
    };
    let socket = &cli.socket;
    match command {
        CliCommand::Probes(args) => probes::run(socket, args),
        CliCommand::NewPack(args) => new_pack::run(args),
        CliCommand::CheckPack(args) => check_pack::run(args),
        CliCommand::Watch(args) => watch::run(socket, args),
        CliCommand::Record(args) => record::run(socket, args),
        CliCommand::Info(args) => info::run(args),
        CliCommand::Profile(args) => profile::run(socket, args),
        CliCommand::Export(args) => export::run(args),
        CliCommand::Diff(args) => diff::run(args),
        CliCommand::BenchFlame(args) => bench::run(args),
        CliCommand::BenchReplay(args) => bench::run_replay(args),
    }
}
