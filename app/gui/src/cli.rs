//! Command-line arguments.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Microscope: watch the Linux kernel work, live.
///
/// With no subcommand, opens the window. The privileged helper `microscoped`
/// must be running (`sudo microscoped`, or `cargo xtask run`).
#[derive(Debug, Parser)]
#[command(name = "microscope", version)]
pub struct Cli {
    /// Socket of the helper daemon.
    #[arg(long, global = true, value_name = "PATH", default_value = microscope_wire::DEFAULT_SOCKET_PATH)]
    pub socket: PathBuf,
    /// Probe to enable as soon as the window opens (repeatable), e.g.
    /// `--enable sched:sched_switch`; the same as ticking its box.
    #[arg(long = "enable", value_name = "ID")]
    pub enable: Vec<String>,
    /// What to do; opens the window if omitted.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Print the helper's version, the kernel's tracing capabilities and every probe.
    Probes,
    /// Enable probes and print `<probe id> <events>` for each probe, once a second.
    Watch {
        /// Probe id to enable (repeatable), e.g. `sched:sched_switch`.
        #[arg(long = "probe", value_name = "ID", required = true)]
        probes: Vec<String>,
        /// How many one-second lines to print before exiting.
        #[arg(long, value_name = "N", default_value_t = 5)]
        seconds: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_is_accepted_before_and_after_the_subcommand() {
        let cli = Cli::parse_from(["microscope", "probes", "--socket", "/tmp/s"]);
        assert_eq!(cli.socket, PathBuf::from("/tmp/s"));
        let cli = Cli::parse_from(["microscope", "--socket", "/tmp/t", "probes"]);
        assert_eq!(cli.socket, PathBuf::from("/tmp/t"));
        let cli = Cli::parse_from(["microscope"]);
        assert_eq!(
            cli.socket,
            PathBuf::from(microscope_wire::DEFAULT_SOCKET_PATH)
        );
        assert!(cli.command.is_none());
        let cli = Cli::parse_from(["microscope", "--enable", "a:b", "--enable", "c:d"]);
        assert_eq!(cli.enable, ["a:b", "c:d"]);
    }

    #[test]
    fn watch_takes_repeated_probes() {
        let cli = Cli::parse_from([
            "microscope",
            "watch",
            "--probe",
            "a:b",
            "--probe",
            "c:d",
            "--seconds",
            "3",
        ]);
        let Some(CliCommand::Watch { probes, seconds }) = cli.command else {
            panic!("expected watch");
        };
        assert_eq!(probes, ["a:b", "c:d"]);
        assert_eq!(seconds, 3);
        assert!(Cli::try_parse_from(["microscope", "watch"]).is_err());
    }
}
