//! `cargo xtask bench replay`: can every moment of a 10-million-event
//! recording be reached quickly, in little memory, with smooth frames?
//!
//! Writes the synthetic recording of `bench recording` (seeded: the same
//! file every time), then runs the release app's hidden `microscope
//! __bench-replay FILE`, which drives the real window headless (see
//! `app/gui/src/bench_replay.rs`): open time, time until the recording's
//! overview is read, time to show 1 ms of slices at five moments and the
//! inspector's last page, and UI time per frame while panning and zooming
//! the CPU timeline, on an inspector page, and on the Rates timeline with
//! a million points per series. Peak resident memory comes from `wait4`.
//! Benchmarks are not tests: a missed target is reported, not turned into
//! a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::Value;

use crate::proc::RemoveDir;
use crate::{proc, workspace};

/// Every moment reachable (the overview read) within this…
pub const TARGET_OPEN: Duration = Duration::from_secs(3);
/// …UI work per frame (p95 of the UI thread's CPU time)…
pub const TARGET_FRAME_MS: f64 = 16.0;
/// …and peak resident memory below this.
pub const TARGET_PEAK_BYTES: u64 = 1 << 30;

/// Options of `cargo xtask bench replay`.
#[derive(Debug, Args)]
pub struct Options {
    /// Events in the synthetic recording.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Frames measured per scenario.
    #[arg(long, default_value_t = 200)]
    pub frames: usize,
    /// Use this recording instead of writing a synthetic one.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// What one run measured.
#[expect(
    dead_code,
    reason = "kept for callers that want numbers rather than text"
)]
pub struct Summary {
    /// Events in the recording.
    pub events: u64,
    /// Request to the first frame showing it, ms.
    pub first_frame_ms: f64,
    /// Request to the overview read (every moment reachable), ms.
    pub overview_ms: f64,
    /// Slowest moment reached, ms.
    pub slowest_moment_ms: f64,
    /// Worst p95 of UI CPU time per frame over the replay's scenarios.
    pub worst_frame_p95_ms: f64,
    /// Worst p95 over the Rates scenarios.
    pub rates_p95_ms: f64,
    /// Peak resident memory of the app.
    pub peak_rss_bytes: u64,
}

/// Runs `cargo xtask bench replay`.
pub fn run(options: &Options) -> Result<()> {
    measure(options).map(|_| ())
}

/// Runs it and returns the numbers.
pub fn measure(options: &Options) -> Result<Summary> {
    if options.events == 0 || options.frames == 0 {
        bail!("--events and --frames must be at least 1");
    }
    let mut build = workspace::cargo();
    build.args(["build", "--release", "-p", "microscope"]);
    proc::run_checked(
        &mut build,
        "building the app",
        "Fix the compiler errors above.",
    )?;
    let app = workspace::built_binary("microscope", true);
    let dir = std::env::temp_dir().join(format!("microscope-bench-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let _cleanup = RemoveDir(dir.clone());
    let path = match &options.file {
        Some(file) => file.clone(),
        None => {
            let path = dir.join("replay.mscr");
            println!(
                "bench: writing {} synthetic events to {}",
                options.events,
                path.display()
            );
            crate::bench_recording::write_synthetic(&path, options.events)?;
            path
        }
    };
    // Once to warm the page cache, as a file just written or opened before is.
    let _ = std::fs::read(&path);
    println!(
        "bench: replaying it in the headless app ({} frames per scenario)",
        options.frames
    );
    let (report, peak_rss_bytes) = run_app(&app, &path, options.frames)?;
    print_report(&report, peak_rss_bytes)
}

fn run_app(app: &Path, file: &Path, frames: usize) -> Result<(Value, u64)> {
    let out = tempfile_path(file)?;
    let stdout = std::fs::File::create(&out).context("could not create the report file")?;
    let mut cmd = Command::new(app);
    cmd.arg("__bench-replay")
        .arg(file)
        .args(["--frames", &frames.to_string()])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit());
    let (status, peak) = proc::run_with_peak_rss(&mut cmd)?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}); its messages are above",
            proc::describe(&cmd)
        );
    }
    let text = std::fs::read_to_string(&out).context("could not read the report")?;
    let _ = std::fs::remove_file(&out);
    let report = serde_json::from_str(text.trim())
        .context("`microscope __bench-replay` printed something other than its JSON report")?;
    Ok((report, peak))
}

fn tempfile_path(file: &Path) -> Result<PathBuf> {
    let dir = file.parent().context("the recording has no directory")?;
    Ok(dir.join(format!("bench-replay-report-{}.json", std::process::id())))
}

fn print_report(report: &Value, peak_rss_bytes: u64) -> Result<Summary> {
    let number = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_f64)
            .with_context(|| format!("the report has no number `{key}`"))
    };
    let events = number(report, "events")? as u64;
    let first_frame_ms = number(report, "first_frame_ms")?;
    let overview_ms = number(report, "overview_ms")?;
    println!(
        "\nrecording: {events} events\n\n{:<52}  {:>10}",
        "opening", "time"
    );
    println!("{}", "-".repeat(64));
    println!(
        "{:<52}  {:>7.0} ms",
        "first frame showing the recording", first_frame_ms
    );
    println!(
        "{:<52}  {:>7.0} ms",
        "overview read: every moment reachable", overview_ms
    );
    let mut slowest_moment_ms: f64 = 0.0;
    for moment in report
        .get("moments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ms = number(moment, "ms")?;
        slowest_moment_ms = slowest_moment_ms.max(ms);
        println!(
            "{:<52}  {:>7.0} ms",
            moment.get("moment").and_then(Value::as_str).unwrap_or("?"),
            ms
        );
    }
    println!(
        "\n{:<46}  {:>27}  {:>27}",
        "per frame", "UI thread CPU (median/p95/max)", "wall clock (median/p95/max)"
    );
    println!("{}", "-".repeat(46 + 27 + 27 + 4));
    let (mut worst, mut rates) = (0.0_f64, 0.0_f64);
    for scenario in report
        .get("scenarios")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = scenario
            .get("scenario")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let times = |clock: &str| -> Result<(f64, f64, f64)> {
            let clock = scenario.get(clock).context("a scenario without times")?;
            Ok((
                number(clock, "median_ms")?,
                number(clock, "p95_ms")?,
                number(clock, "max_ms")?,
            ))
        };
        let (cpu, wall) = (times("cpu")?, times("wall")?);
        println!(
            "{name:<46}  {:>7.2} {:>7.2} {:>7.2} ms  {:>7.2} {:>7.2} {:>7.2} ms",
            cpu.0, cpu.1, cpu.2, wall.0, wall.1, wall.2
        );
        if name.starts_with("Rates") {
            rates = rates.max(cpu.1);
        } else {
            worst = worst.max(cpu.1);
        }
    }
    let mib = peak_rss_bytes as f64 / f64::from(1 << 20);
    println!("\npeak resident memory of the app: {mib:.0} MiB");
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "\ntargets: every moment reachable < {} s: {} ({:.1} s); UI work p95 < {TARGET_FRAME_MS} ms \
         per frame: {} (worst {worst:.2} ms; Rates with 1M points {rates:.2} ms); peak memory < \
         {} MiB: {} ({mib:.0} MiB)",
        TARGET_OPEN.as_secs(),
        verdict(overview_ms < TARGET_OPEN.as_secs_f64() * 1e3),
        overview_ms / 1e3,
        verdict(worst < TARGET_FRAME_MS && rates < TARGET_FRAME_MS),
        TARGET_PEAK_BYTES >> 20,
        verdict(peak_rss_bytes < TARGET_PEAK_BYTES),
    );
    Ok(Summary {
        events,
        first_frame_ms,
        overview_ms,
        slowest_moment_ms,
        worst_frame_p95_ms: worst,
        rates_p95_ms: rates,
        peak_rss_bytes,
    })
}
