//! `cargo xtask run`: build, start the helper as root, open the app, and
//! stop the helper when the app exits.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::helper::{self, Started};
use crate::{proc, setup, workspace};

/// Where the helper listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/microscope/microscoped.sock";

/// Options of `cargo xtask run`.
#[derive(Debug, Args)]
pub struct Options {
    /// Build and run the release binaries (`--release=false` for debug).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    release: bool,
    /// The helper's Unix socket.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
}

/// Builds the helper and the app.
pub fn build(release: bool) -> Result<()> {
    let mut cmd = workspace::cargo();
    cmd.arg("build");
    if release {
        cmd.arg("--release");
    }
    cmd.args(["-p", "microscoped", "-p", "microscope"]);
    proc::run_checked(
        &mut cmd,
        "building the helper and the app",
        "Fix the compiler errors above; if bpf-linker or rust-src is missing, \
         run `cargo xtask setup`.",
    )
}

/// Runs `cargo xtask run`.
pub fn run(options: &Options) -> Result<()> {
    setup::run()?;
    build(options.release)?;
    proc::survive_ctrl_c();

    let helper_binary = workspace::built_binary("microscoped", options.release);
    let app_binary = workspace::built_binary("microscope", options.release);

    // If the helper cannot start, the app still opens: it shows a banner
    // that explains how to start the helper.
    let _helper = match helper::start(&helper_binary, &options.socket) {
        Ok(Started::Ours(guard)) => Some(guard),
        Ok(Started::AlreadyRunning) => {
            println!(
                "run: a helper already listens on {}; using it",
                options.socket.display()
            );
            None
        }
        Ok(Started::NoPrivilege(how)) => {
            println!("run: the helper needs root and sudo is not available here; {how}");
            None
        }
        Err(err) => {
            eprintln!("run: warning: {err:#}");
            None
        }
    };

    let status = Command::new(&app_binary)
        .arg("--socket")
        .arg(&options.socket)
        .status()
        .with_context(|| format!("could not start the app {}", app_binary.display()))?;
    // `_helper` drops on return: SIGTERM, then wait.
    if let Some(signal) = status.signal() {
        println!("run: the app was stopped by signal {signal}");
        return Ok(());
    }
    anyhow::ensure!(
        status.success(),
        "the app exited with {status}; its messages above say why"
    );
    Ok(())
}
