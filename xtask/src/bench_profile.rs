//! `cargo xtask bench profile`: what on-CPU profiling costs the programs it
//! watches.
//!
//! A CPU-bound loop (`__cpuloop`, no system calls, pinned to CPU 0) runs in
//! short pairs: once while the real helper profiles the whole system at the
//! rate under test (`profile:cpu`, enabled over the socket like the app
//! does), once without. Each pair's two runs are adjacent in time, and
//! alternate in order, so the load of other processes on this shared
//! machine hits both alike; the cost is the median over pairs of
//! `1 − profiled / unprofiled`.
//!
//! The loop's rate is noisy on a shared VM (±15 % from run to run, more
//! than the cost being measured), so the bench also measures the cost
//! directly, two ways:
//! - the time the kernel spent in the sampling program (`run_time_ns` and
//!   `run_cnt` of the program's file descriptor in the helper, counted while
//!   `kernel.bpf_stats_enabled` is 1): ns per sample × samples per second is
//!   the share of each CPU the program takes;
//! - interruptions of a clock-reading loop on the same CPU (`__cpuloop
//!   --gaps`): the extra interruptions per second and the extra time they
//!   take, profiled minus unprofiled, which includes the sampling interrupt
//!   itself.
//!
//! Benchmarks are not tests: a missed target is reported, not turned into a
//! failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use microscope_wire::{ClientError, ClientMessage, Connection, HelperMessage, ProbeOptions};

use crate::bench::median_of;
use crate::proc::RemoveDir;
use crate::{helper, proc, run, setup};

/// The loop runs here.
const LOOP_CPU: usize = 0;
/// Profiling at 99 Hz may cost at most this share of the loop's rate.
const TARGET_OVERHEAD_PERCENT: f64 = 1.0;
/// The sampling rate the target is about.
const DEFAULT_HZ: u32 = 99;
const PROBE: &str = "profile:cpu";
/// `BPF_PROG_TYPE_PERF_EVENT`, as `fdinfo` shows it.
const PERF_EVENT_PROG_TYPE: &str = "7";
const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Options of `cargo xtask bench profile`.
#[derive(Debug, Args)]
pub struct Options {
    /// How long each run of the loop lasts.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
    /// How many (profiled, unprofiled) pairs per rate.
    #[arg(long, default_value_t = 10)]
    pairs: usize,
    /// A second, higher sampling rate to measure for comparison (0 = none).
    #[arg(long, default_value_t = 999)]
    high_hz: u32,
}

/// What one rate cost.
struct RateResult {
    hz: u32,
    /// `1 − profiled / unprofiled` of each pair, in %.
    pair_costs: Vec<f64>,
    /// Median loop rates, unprofiled and profiled.
    median_off: f64,
    median_on: f64,
    /// Extra interruptions per second of each pair (profiled − not).
    extra_interrupts: Vec<f64>,
    /// Extra interrupted µs per second of each pair.
    extra_interrupted_us: Vec<f64>,
    /// Time in the sampling program per sample, if the kernel counted it.
    ns_per_sample: Option<f64>,
    /// CPU the helper used while profiling (all its threads: draining,
    /// symbolizing, sending; not loading the object), as a share of one CPU.
    helper_cpu_percent: Option<f64>,
    /// Samples counted in the stack batches received.
    samples: u64,
}

/// Runs `cargo xtask bench profile`.
pub fn run(options: &Options) -> Result<()> {
    if options.seconds == 0 || options.pairs == 0 {
        bail!("--seconds and --pairs must be at least 1");
    }
    setup::run()?;
    run::build(true)?;
    proc::survive_ctrl_c();

    let dir = std::env::temp_dir().join(format!("microscope-bench-prof-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let _cleanup = RemoveDir(dir.clone());
    let socket = dir.join("helper.sock");
    let helper = helper::start_own(&socket, "the profiling benchmark")?;
    let _stats = BpfStats::enable();

    let mut client = ProfileClient::connect(&socket)?;
    let mut rates = vec![DEFAULT_HZ];
    if options.high_hz > 0 && options.high_hz != DEFAULT_HZ {
        rates.push(options.high_hz);
    }
    let mut results = Vec::new();
    for hz in rates {
        println!(
            "bench: {hz} Hz, {} pairs of {} s runs (profiled and not, adjacent)",
            options.pairs, options.seconds
        );
        results.push(measure_rate(&mut client, helper.id(), hz, options)?);
    }
    print_table(&results);
    Ok(())
}

fn measure_rate(
    client: &mut ProfileClient,
    helper_pid: u32,
    hz: u32,
    options: &Options,
) -> Result<RateResult> {
    client.set_rate(hz)?;
    let samples_before = client.samples();
    let (mut offs, mut ons, mut pair_costs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut extra_interrupts, mut extra_interrupted_us) = (Vec::new(), Vec::new());
    let (mut run_ns, mut run_cnt) = (0u64, 0u64);
    let (mut helper_ticks, mut profiled_time) = (Some(0u64), Duration::ZERO);
    for pair in 0..options.pairs {
        // Alternate the order so a steady drift favours neither side.
        let profiled_first = pair % 2 == 1;
        let (mut on, mut off) = (Loop::default(), Loop::default());
        for profiled in [profiled_first, !profiled_first] {
            if profiled {
                client.enable()?;
                // The helper's steady work: loading the object on enable
                // and freeing it on disable are left out.
                let ticks_before = cpu_ticks(helper_pid);
                let started = Instant::now();
                on = Loop::measure(options.seconds)?;
                if let Some((ns, cnt)) = program_stats(helper_pid) {
                    run_ns += ns;
                    run_cnt += cnt;
                }
                profiled_time += started.elapsed();
                helper_ticks = match (helper_ticks, ticks_before, cpu_ticks(helper_pid)) {
                    (Some(total), Some(before), Some(after)) => {
                        Some(total + after.saturating_sub(before))
                    }
                    _ => None,
                };
                client.disable()?;
            } else {
                off = Loop::measure(options.seconds)?;
            }
        }
        let cost = 100.0 * (1.0 - on.ops_per_sec / off.ops_per_sec);
        println!(
            "bench:   pair {}: {:.0} → {:.0} ops/s ({cost:+.2} %), interruptions {:.0} → {:.0}/s \
             taking {:.0} → {:.0} µs/s",
            pair + 1,
            off.ops_per_sec,
            on.ops_per_sec,
            off.interrupts_per_sec,
            on.interrupts_per_sec,
            off.interrupted_us_per_sec,
            on.interrupted_us_per_sec,
        );
        offs.push(off.ops_per_sec);
        ons.push(on.ops_per_sec);
        pair_costs.push(cost);
        extra_interrupts.push(on.interrupts_per_sec - off.interrupts_per_sec);
        extra_interrupted_us.push(on.interrupted_us_per_sec - off.interrupted_us_per_sec);
    }
    // Let the last batch arrive before counting samples.
    thread::sleep(Duration::from_millis(1500));
    Ok(RateResult {
        hz,
        median_off: median_of(&offs),
        median_on: median_of(&ons),
        pair_costs,
        extra_interrupts,
        extra_interrupted_us,
        ns_per_sample: (run_cnt > 0).then(|| run_ns as f64 / run_cnt as f64),
        helper_cpu_percent: helper_ticks.map(|ticks| {
            100.0 * ticks as f64 / clock_ticks_per_sec() / profiled_time.as_secs_f64()
        }),
        samples: client.samples() - samples_before,
    })
}

/// One measurement on the loop's CPU: the computing loop for the run's
/// seconds, then the clock-reading loop for half as long.
#[derive(Debug, Default)]
struct Loop {
    ops_per_sec: f64,
    interrupts_per_sec: f64,
    interrupted_us_per_sec: f64,
}

impl Loop {
    fn measure(seconds: u64) -> Result<Self> {
        let seconds = seconds as f64;
        let compute = cpu_loop(seconds, false)?;
        let gaps = cpu_loop(seconds / 2.0, true)?;
        Ok(Self {
            ops_per_sec: value(&compute, "ops_per_sec")?,
            interrupts_per_sec: value(&gaps, "interrupts_per_sec")?,
            interrupted_us_per_sec: value(&gaps, "interrupted_us_per_sec")?,
        })
    }
}

/// Runs the pinned loop (`--gaps`: the clock-reading one) and returns what
/// it printed.
fn cpu_loop(seconds: f64, gaps: bool) -> Result<String> {
    let exe = std::env::current_exe().context("could not find the xtask binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["__cpuloop", "--seconds", &seconds.to_string()])
        .args(["--cpu", &LOOP_CPU.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if gaps {
        cmd.arg("--gaps");
    }
    let output = cmd
        .output()
        .with_context(|| format!("could not start the loop `{}`", proc::describe(&cmd)))?;
    if !output.status.success() {
        bail!("the loop failed ({}); its error is above", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The number after `name ` in the loop's output.
fn value(output: &str, name: &str) -> Result<f64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("the loop printed no {name}: {output:?}"))
}

/// A connection to the helper that switches `profile:cpu` on and off; a
/// thread reads everything the helper sends (so its queue never fills) and
/// counts the samples in the stack batches.
struct ProfileClient {
    writer: microscope_wire::Writer,
    /// `ProbeState` answers and errors, in order.
    answers: mpsc::Receiver<Result<bool, String>>,
    /// Samples counted so far.
    samples: mpsc::Receiver<u64>,
    samples_total: u64,
}

impl ProfileClient {
    fn connect(socket: &Path) -> Result<Self> {
        let mut connection = Connection::connect(socket)?;
        let probes = connection.list_probes()?;
        let info = probes
            .iter()
            .find(|p| p.id == PROBE)
            .ok_or_else(|| anyhow!("the helper offers no {PROBE} probe"))?;
        if !info.availability.available {
            bail!(
                "{PROBE} is not available here: {}",
                info.availability.reason
            );
        }
        let writer = connection.writer()?;
        let (answers_tx, answers) = mpsc::channel();
        let (samples_tx, samples) = mpsc::channel();
        thread::Builder::new()
            .name("bench-profile-reader".to_owned())
            .spawn(move || {
                loop {
                    let sent = match connection.recv() {
                        Ok(HelperMessage::ProbeState { probe, enabled }) if probe == PROBE => {
                            answers_tx.send(Ok(enabled)).is_ok()
                        }
                        Ok(HelperMessage::Error { message }) => {
                            answers_tx.send(Err(message)).is_ok()
                        }
                        Ok(HelperMessage::Stacks(batch)) => samples_tx
                            .send(batch.stacks.iter().map(|s| s.value).sum())
                            .is_ok(),
                        Ok(_) => true,
                        Err(ClientError::Closed) => false,
                        Err(err) => answers_tx.send(Err(err.to_string())).is_ok(),
                    };
                    if !sent {
                        break;
                    }
                }
            })
            .context("could not start a thread to read from the helper")?;
        Ok(Self {
            writer,
            answers,
            samples,
            samples_total: 0,
        })
    }

    fn ask(&mut self, message: ClientMessage) -> Result<bool> {
        self.writer.send(&message)?;
        match self.answers.recv_timeout(Duration::from_secs(15)) {
            Ok(Ok(enabled)) => Ok(enabled),
            Ok(Err(message)) => bail!("the helper refused: {message}"),
            Err(_) => bail!("the helper did not answer within 15 s"),
        }
    }

    fn set_rate(&mut self, hz: u32) -> Result<()> {
        self.ask(ClientMessage::SetOptions {
            probe: PROBE.to_owned(),
            options: ProbeOptions {
                sample_hz: hz,
                ..ProbeOptions::default()
            },
        })
        .map(|_| ())
    }

    fn enable(&mut self) -> Result<()> {
        let started = Instant::now();
        if !self.ask(ClientMessage::Enable {
            probe: PROBE.to_owned(),
        })? {
            bail!("the helper did not enable {PROBE}");
        }
        // Sampling starts with the answer; a slow answer is worth knowing.
        if started.elapsed() > Duration::from_secs(1) {
            println!(
                "bench:   (enabling took {:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    fn disable(&mut self) -> Result<()> {
        self.ask(ClientMessage::Disable {
            probe: PROBE.to_owned(),
        })
        .map(|_| ())
    }

    fn samples(&mut self) -> u64 {
        self.samples_total += self.samples.try_iter().sum::<u64>();
        self.samples_total
    }
}

/// `run_time_ns` and `run_cnt` of the helper's perf-event programs (the
/// sampler), read from `/proc/PID/fdinfo`.
fn program_stats(pid: u32) -> Option<(u64, u64)> {
    programs_stats(pid, PERF_EVENT_PROG_TYPE)
}

/// `run_time_ns` and `run_cnt` summed over process `pid`'s BPF programs of
/// type `prog_type` (the number `/proc/PID/fdinfo` shows: 5 tracepoint,
/// 7 perf event), while `kernel.bpf_stats_enabled` is 1.
pub fn programs_stats(pid: u32, prog_type: &str) -> Option<(u64, u64)> {
    let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let mut total = (0, 0);
    let mut found = false;
    for entry in fs::read_dir(&fd_dir).ok()?.flatten() {
        let is_prog = fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().contains("bpf-prog"));
        if !is_prog {
            continue;
        }
        let info_path = Path::new("/proc")
            .join(pid.to_string())
            .join("fdinfo")
            .join(entry.file_name());
        let Ok(info) = fs::read_to_string(info_path) else {
            continue;
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_owned())
        };
        if field("prog_type:").as_deref() != Some(prog_type) {
            continue;
        }
        let ns = field("run_time_ns:").and_then(|v| v.parse::<u64>().ok());
        let cnt = field("run_cnt:").and_then(|v| v.parse::<u64>().ok());
        if let (Some(ns), Some(cnt)) = (ns, cnt) {
            total.0 += ns;
            total.1 += cnt;
            found = true;
        }
    }
    found.then_some(total)
}

/// User plus system CPU time of process `pid` (all threads), in clock
/// ticks, from `/proc/PID/stat`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields 14 and 15; the comm (field 2) may contain spaces, so count
    // from its closing parenthesis (field 3 follows it).
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Turns `kernel.bpf_stats_enabled` on while alive and restores it after.
pub struct BpfStats {
    previous: Option<String>,
}

impl BpfStats {
    /// Turns the statistics on (a note is printed if that is refused).
    pub fn enable() -> Self {
        let previous = fs::read_to_string(BPF_STATS).ok();
        if fs::write(BPF_STATS, "1").is_err() {
            println!(
                "bench: could not set {BPF_STATS} (needs root); the program's own time is \
                 not measured"
            );
            return Self { previous: None };
        }
        Self { previous }
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Some(previous) = &self.previous {
            let _ignored = fs::write(BPF_STATS, previous.trim());
        }
    }
}

fn print_table(results: &[RateResult]) {
    println!(
        "\n{:>7}  {:>10}  {:>10}  {:>9}  {:>16}  {:>13}  {:>13}  {:>12}",
        "rate",
        "off ops/s",
        "on ops/s",
        "pair cost",
        "pair cost range",
        "program",
        "interruptions",
        "interrupted"
    );
    println!("{}", "-".repeat(7 + 10 + 10 + 9 + 16 + 13 + 13 + 12 + 14));
    for r in results {
        let mut costs = r.pair_costs.clone();
        costs.sort_by(f64::total_cmp);
        let cost = median_of(&costs);
        let (low, high) = (
            costs.first().copied().unwrap_or(f64::NAN),
            costs.last().copied().unwrap_or(f64::NAN),
        );
        // One sample per CPU per period: the share of each CPU it takes.
        let program = r.ns_per_sample.map_or_else(
            || "-".to_owned(),
            |ns| format!("{:.3} %", ns * f64::from(r.hz) / 1e7),
        );
        let interrupts = median_of(&r.extra_interrupts);
        let interrupted_us = median_of(&r.extra_interrupted_us);
        println!(
            "{:>4} Hz  {:>10.0}  {:>10.0}  {:>7.2} %  {:>6.1} … {:>5.1} %  {:>13}  {:>+11.0}/s  {:>10.3} %",
            r.hz,
            r.median_off,
            r.median_on,
            cost,
            low,
            high,
            program,
            interrupts,
            interrupted_us / 1e4,
        );
        println!(
            "         program: {} per sample; helper: {} of one CPU; {} samples received \
             from {} profiled runs",
            r.ns_per_sample
                .map_or_else(|| "-".to_owned(), |ns| format!("{:.1} µs", ns / 1000.0)),
            r.helper_cpu_percent
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.1} %")),
            r.samples,
            r.pair_costs.len()
        );
    }
    println!(
        "\ncolumns: loop rates are medians; pair cost is the median of 1 − on/off over \
         adjacent pairs (range: lowest … highest pair); program is the share of a CPU the \
         sampling program took (kernel BPF statistics); interruptions and interrupted are \
         the median extra interruptions of the loop's CPU and the share of its time they \
         took, profiled minus not"
    );
    let verdict = match results.first() {
        Some(r) => {
            let cost = median_of(&r.pair_costs);
            let interrupted = median_of(&r.extra_interrupted_us) / 1e4;
            let met = |c: f64| {
                if c <= TARGET_OVERHEAD_PERCENT {
                    "met"
                } else {
                    "MISSED"
                }
            };
            format!(
                "{} by the loop's rate ({cost:.2} %, ±{:.0} % noise between runs), {} by the \
                 time interrupts took ({interrupted:.3} %)",
                met(cost),
                spread(&r.pair_costs),
                met(interrupted)
            )
        }
        None => "not measured".to_owned(),
    };
    println!(
        "\ntarget: on-CPU profiling at {DEFAULT_HZ} Hz costs a CPU-bound loop less than \
         {TARGET_OVERHEAD_PERCENT:.0} %: {verdict}"
    );
}

/// Half the distance between the 10th and 90th percentile of `values`.
fn spread(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
        sorted.get(i).copied().unwrap_or(f64::NAN)
    };
    (at(0.9) - at(0.1)) / 2.0
}
