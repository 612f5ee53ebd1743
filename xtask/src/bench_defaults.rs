//! `cargo xtask bench defaults`: what the app's default probes cost (the
//! cheap set it switches on when it connects, so the map lights at once;
//! `microscope_model::live_defaults`).
//!
//! Two loads, each pinned to CPU 0, run untraced and while the real helper
//! counts the default set in the kernel for a client that asked for it the
//! way the app does (`SetOptions { count_only }`, then `Enable`):
//! - `openat`+`close` of `/dev/null` (`__openloop`): a syscall-bound
//!   program. No default probe is a syscall tracepoint, so this is the
//!   price a syscall-heavy program would *not* pay; for comparison the
//!   bench also counts `raw_syscalls:sys_enter` in the kernel (what lights
//!   the "System calls" node), which every system call pays;
//! - touching fresh pages (`__openloop --touch-pages`): one
//!   `exceptions:page_fault_user` hit per page, the most frequent default
//!   probe on a busy machine.
//!
//! Rounds interleave the configurations and the table shows medians.
//! Benchmarks are not tests: nothing here fails on a number.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use microscope_model::live_defaults::DEFAULT_PROBES;
use microscope_wire::{ClientError, ClientMessage, Connection, HelperMessage, ProbeOptions};

use crate::helper::{self, Started};
use crate::proc::RemoveDir;
use crate::{proc, run, setup, workspace};

/// The loops run here; the helper gets the other CPUs.
const LOOP_CPU: usize = 0;
/// What lights the "System calls" node: counted per syscall in the kernel.
const SYSCALL_COUNTS: &str = "raw_syscalls:sys_enter";

/// Options of `cargo xtask bench defaults`.
#[derive(Debug, Args)]
pub struct Options {
    /// How long each configuration runs, in seconds.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// How many interleaved rounds; the table shows medians.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Use the debug builds (the cost measured is the kernel's: the
    /// helper only reads the counts four times a second).
    #[arg(long)]
    debug: bool,
}

/// Runs `cargo xtask bench defaults`.
pub fn run(options: &Options) -> Result<()> {
    if options.seconds == 0 || options.rounds == 0 {
        bail!("--seconds and --rounds must be at least 1");
    }
    let release = !options.debug;
    setup::run()?;
    run::build(release)?;
    proc::survive_ctrl_c();
    let dir =
        std::env::temp_dir().join(format!("microscope-bench-defaults-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let _cleanup = RemoveDir(dir.clone());
    let socket = dir.join("helper.sock");
    let _helper = match helper::start(&workspace::built_binary("microscoped", release), &socket)? {
        Started::Ours(guard) => guard,
        Started::AlreadyRunning => bail!("something already listens on {}", socket.display()),
        Started::NoPrivilege(how) => {
            bail!("the benchmark needs the helper, which needs root: {how}")
        }
    };

    let loads: [(&str, bool); 2] = [("openat+close", false), ("page touches", true)];
    let mut results: Vec<(String, Vec<f64>)> = Vec::new();
    let mut record = |name: String, rate: f64| {
        println!("bench:   {name}: {rate:.0} ops/s");
        match results.iter_mut().find(|(n, _)| *n == name) {
            Some((_, rates)) => rates.push(rate),
            None => results.push((name, vec![rate])),
        }
    };
    let mut hits_total = 0;
    for round in 1..=options.rounds {
        println!(
            "bench: round {round} of {} ({} s per configuration)",
            options.rounds, options.seconds
        );
        for (load, touch) in loads {
            record(
                format!("{load}, untraced"),
                load_loop(options.seconds, touch)?,
            );
            let mut client = CountingClient::connect(&socket, DEFAULT_PROBES)?;
            record(
                format!("{load}, default probes"),
                load_loop(options.seconds, touch)?,
            );
            hits_total += client.hits()?;
            drop(client);
            if !touch {
                let _client = CountingClient::connect(&socket, &[SYSCALL_COUNTS])?;
                record(
                    format!("{load}, + raw_syscalls counted"),
                    load_loop(options.seconds, touch)?,
                );
            }
        }
    }
    print_table(&results);
    println!(
        "note: the default probes counted {hits_total} hits in all, with no event streamed \
         ({} probes: {})",
        DEFAULT_PROBES.len(),
        DEFAULT_PROBES.join(", ")
    );
    Ok(())
}

/// Runs the pinned loop for `seconds` and returns its ops/s.
fn load_loop(seconds: u64, touch_pages: bool) -> Result<f64> {
    let exe = std::env::current_exe().context("could not find the xtask binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["__openloop", "--seconds", &seconds.to_string()])
        .args(["--cpu", &LOOP_CPU.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if touch_pages {
        cmd.arg("--touch-pages");
    }
    let output = cmd
        .output()
        .with_context(|| format!("could not start the load loop `{}`", proc::describe(&cmd)))?;
    if !output.status.success() {
        bail!(
            "the load loop failed ({}); its error is above",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("ops_per_sec "))
        .and_then(|rate| rate.trim().parse().ok())
        .with_context(|| format!("the load loop printed no rate: {stdout:?}"))
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}

fn print_table(results: &[(String, Vec<f64>)]) {
    println!();
    println!("| configuration | ops/s (median) | vs untraced |");
    println!("|---|---:|---:|");
    for (name, rates) in results {
        let rate = median(rates.clone());
        let load = name.split(',').next().unwrap_or_default();
        let base = results
            .iter()
            .find(|(n, _)| *n == format!("{load}, untraced"))
            .map(|(_, r)| median(r.clone()))
            .unwrap_or(0.0);
        let change = if base > 0.0 && !name.ends_with("untraced") {
            format!("{:+.1} %", (rate / base - 1.0) * 100.0)
        } else {
            String::new()
        };
        println!("| {name} | {rate:.0} | {change} |");
    }
}

/// A client that asked the helper to count `probes` in the kernel, as the
/// app does for its defaults; they stay on until it is dropped.
struct CountingClient {
    _writer: microscope_wire::Writer,
    hits: mpsc::Receiver<Result<u64, String>>,
}

impl CountingClient {
    fn connect(socket: &Path, probes: &[&str]) -> Result<Self> {
        let mut connection = Connection::connect(socket)?;
        let offered = connection.list_probes()?;
        let mut writer = connection.writer()?;
        let mut wanted = 0;
        for id in probes {
            let Some(info) = offered.iter().find(|p| p.id == *id) else {
                println!("bench:   (the helper offers no {id})");
                continue;
            };
            if !info.availability.available {
                println!(
                    "bench:   ({id} is not available: {})",
                    info.availability.reason
                );
                continue;
            }
            if info.kind == microscope_wire::ProbeKind::Fields {
                writer.send(&ClientMessage::SetOptions {
                    probe: (*id).to_owned(),
                    options: ProbeOptions {
                        count_only: true,
                        ..ProbeOptions::default()
                    },
                })?;
            }
            writer.send(&ClientMessage::Enable {
                probe: (*id).to_owned(),
            })?;
            wanted += 1;
        }
        if wanted == 0 {
            bail!("the helper offers none of {probes:?}");
        }
        let (hits_tx, hits) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        thread::Builder::new()
            .name("bench-defaults-reader".to_owned())
            .spawn(move || {
                let mut enabled = 0;
                loop {
                    let sent = match connection.recv() {
                        Ok(HelperMessage::ProbeState { enabled: true, .. }) => {
                            enabled += 1;
                            if enabled == wanted {
                                let _ = ready_tx.send(Ok(()));
                            }
                            true
                        }
                        Ok(HelperMessage::Error { message }) => ready_tx.send(Err(message)).is_ok(),
                        Ok(HelperMessage::Batch(batch)) if !batch.events.is_empty() => hits_tx
                            .send(Err(format!(
                                "{} events were streamed; counted probes send none",
                                batch.events.len()
                            )))
                            .is_ok(),
                        Ok(HelperMessage::Aggregates(aggregates)) => hits_tx
                            .send(Ok(aggregates.functions.iter().map(|f| f.calls).sum()))
                            .is_ok(),
                        Ok(_) => true,
                        Err(ClientError::Closed) => false,
                        Err(err) => ready_tx.send(Err(err.to_string())).is_ok(),
                    };
                    if !sent {
                        break;
                    }
                }
            })
            .context("could not start a thread to read from the helper")?;
        match ready.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => bail!("the helper refused: {message}"),
            Err(_) => bail!("the helper did not enable the probes within 30 s"),
        }
        Ok(Self {
            _writer: writer,
            hits,
        })
    }

    /// The latest cumulative hit count the helper reported.
    fn hits(&mut self) -> Result<u64> {
        let mut latest = 0;
        for report in self.hits.try_iter() {
            latest = report.map_err(|message| anyhow!(message))?;
        }
        Ok(latest)
    }
}
