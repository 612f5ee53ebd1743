//! `microscoped`: run as root; see the crate docs and the README.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;

/// Microscope's privileged helper: loads eBPF probes and streams their events
/// to authorised local clients over a Unix socket.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Unix socket to listen on.
    #[arg(long, default_value = microscope_wire::DEFAULT_SOCKET_PATH)]
    socket: PathBuf,
    /// Group whose members may connect (root always may).
    #[arg(long, default_value = microscoped::DEFAULT_GROUP)]
    group: String,
    /// A trusted directory of probe packs (or one pack), besides
    /// /usr/share/microscope/packs and /etc/microscope/packs. It and every
    /// directory above it must be owned by root and not writable by group or
    /// others (a root-owned sticky directory such as /tmp may be on the way).
    /// Repeatable.
    #[arg(long = "pack-dir", value_name = "DIR")]
    pack_dirs: Vec<PathBuf>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464): event
    /// counts, in-kernel histograms, syscall counts, drops and costs of the
    /// probes listed in --metrics-config. Off by default; a loopback
    /// address unless --metrics-allow-remote.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// The metrics endpoint's configuration: which probes run for it.
    #[arg(long, value_name = "FILE", requires = "metrics")]
    metrics_config: Option<PathBuf>,
    /// Let --metrics listen on an address other machines can reach.
    #[arg(long, requires = "metrics")]
    metrics_allow_remote: bool,
}

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    // A sentence, not a backtrace: these errors are for the person running it.
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("microscoped: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "microscoped must run as root to load eBPF programs; start it with `sudo microscoped` \
             (or `cargo xtask run`)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("microscoped-rt")
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            log::info!("stopping: detaching every probe");
            let _ = stop_tx.send(true);
        });
        microscoped::run(
            microscoped::Config {
                socket: args.socket,
                group: args.group,
                pack_dirs: args.pack_dirs,
                metrics: args
                    .metrics
                    .map(|addr| microscoped::metrics::MetricsOptions {
                        addr,
                        config_given: args.metrics_config.is_some(),
                        config: args
                            .metrics_config
                            .clone()
                            .unwrap_or_else(|| microscoped::metrics::DEFAULT_CONFIG.into()),
                        allow_remote: args.metrics_allow_remote,
                    }),
            },
            stop_rx,
        )
        .await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        }
        _ => {
            log::error!("could not install signal handlers; stop the helper with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `assets/package/man/microscoped.8` (shipped by the Debian package)
    /// must be what clap says today.
    /// `UPDATE_MAN=1 cargo test -p microscoped --bins man_page` rewrites it.
    #[test]
    fn man_page_is_up_to_date() {
        use clap::CommandFactory as _;

        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../assets/package/man/microscoped.8");
        let mut rendered = Vec::new();
        clap_mangen::Man::new(Args::command())
            .section("8")
            .manual("Microscope")
            .render(&mut rendered)
            .unwrap();
        if std::env::var_os("UPDATE_MAN").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        assert!(
            std::fs::read(&path).ok().as_deref() == Some(rendered.as_slice()),
            "{} is out of date; run `UPDATE_MAN=1 cargo test -p microscoped --bins man_page`",
            path.display()
        );
    }
}
