//! `cargo xtask bench toggle`: how long after a probe is switched on its
//! first event reaches a client.
//!
//! A loop opens and closes `/dev/null` all the time, so every probe below
//! fires within microseconds of being attached. The client (what the app's
//! ingest thread does, minus one channel hop to the UI) sends `Enable`,
//! then reads until a batch holds an event of that probe; then `Disable`,
//! and again. The time covers loading-free attachment (programs are loaded
//! when the helper starts, or on a generic slot's first use), the kernel,
//! the 10 ms drain and the ≤ 40 ms batching.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use microscope_wire::{ClientError, ClientMessage, Connection, HelperMessage};

use crate::{helper, proc, run, setup};

/// The target for a toggle-to-first-event.
const TARGET: Duration = Duration::from_millis(200);
/// Probes measured: a dedicated program and two generic tracepoints.
const PROBES: [&str; 3] = [
    "syscalls:sys_enter_openat",
    "syscalls:sys_enter_close",
    "syscalls:sys_exit_openat",
];

/// Options of `cargo xtask bench toggle`.
#[derive(Debug, Args)]
pub struct Options {
    /// Toggles per probe.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

/// Runs the benchmark.
pub fn run(options: &Options) -> Result<()> {
    if options.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    setup::run()?;
    run::build(true)?;
    proc::survive_ctrl_c();
    let dir = tempfile_dir()?;
    let socket = dir.join("microscoped.sock");
    let _helper = helper::start_own(&socket, "bench toggle")?;

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("toggle-load".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    drop(std::fs::File::open("/dev/null"));
                    // A little less than flat out: the point is latency.
                    thread::sleep(Duration::from_micros(50));
                }
            })
            .context("could not start the load thread")?
    };

    let mut connection = Connection::connect(&socket).context("could not connect to the helper")?;
    connection.set_recv_timeout(Some(Duration::from_millis(20)))?;
    println!(
        "bench: {} toggles per probe; the load opens /dev/null ~15k times/s",
        options.rounds
    );
    let mut rows = Vec::new();
    for probe in PROBES {
        let mut times = Vec::with_capacity(options.rounds);
        for _ in 0..options.rounds {
            times.push(toggle_once(&mut connection, probe)?);
        }
        times.sort_unstable();
        rows.push((probe, times));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = worker.join();

    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "probe", "min", "median", "p95", "max"
    );
    let mut worst_median = Duration::ZERO;
    for (probe, times) in &rows {
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "{probe:<28} {:>9} {:>9} {:>9} {:>9}",
            ms(at(0.0)),
            ms(at(0.5)),
            ms(at(0.95)),
            ms(at(1.0))
        );
        worst_median = worst_median.max(at(0.5));
    }
    println!();
    println!(
        "target: first event within {} ms of the toggle — {}",
        TARGET.as_millis(),
        if worst_median < TARGET {
            "met (every median)"
        } else {
            "MISSED"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Enables `probe`, waits for its first event, disables it; returns the
/// time from sending `Enable` to that event's batch arriving.
fn toggle_once(connection: &mut Connection, probe: &str) -> Result<Duration> {
    let started = Instant::now();
    connection.send(&ClientMessage::Enable {
        probe: probe.to_owned(),
    })?;
    let mut key = None;
    let elapsed = loop {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("no event of {probe} within 10 s of enabling it");
        }
        match connection.recv() {
            Ok(HelperMessage::Probes(probes)) => {
                key = key.or(probes.iter().find(|p| p.id == probe).map(|p| p.key));
            }
            Ok(HelperMessage::ProbeAdded(info)) if info.id == probe => key = Some(info.key),
            Ok(HelperMessage::ProbeState { .. }) if key.is_none() => {
                connection.send(&ClientMessage::ListProbes)?;
            }
            Ok(HelperMessage::Batch(batch)) => {
                if let Some(key) = key
                    && batch.events.iter().any(|e| e.probe == key)
                {
                    break started.elapsed();
                }
            }
            Ok(HelperMessage::Error { message }) => bail!("enabling {probe} failed: {message}"),
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => return Err(err).context("the helper connection failed"),
        }
    };
    connection.send(&ClientMessage::Disable {
        probe: probe.to_owned(),
    })?;
    // Let the last batches of the probe go by before the next round.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(100) {
        match connection.recv() {
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => return Err(err).context("the helper connection failed"),
        }
    }
    Ok(elapsed)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("microscope-bench-toggle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    Ok(dir)
}
