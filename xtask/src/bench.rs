//! `cargo xtask bench pipeline`: what tracing costs a syscall-heavy loop.
//! (`cargo xtask bench recording` lives in `bench_recording.rs`, `cargo
//! xtask bench profile` in `bench_profile.rs`, `cargo xtask bench flame` in
//! `bench_flame.rs`.)
//!
//! The loop (`openat("/dev/null")` + `close`, pinned to CPU 0) runs untraced,
//! then while the real helper streams every `sys_enter_openat` event to a
//! decoding client (`microscope watch`), then under two bpftrace scripts for
//! comparison. Benchmarks are not tests: a missed target is reported, not
//! turned into a failure.

use std::fs;
use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};

use crate::helper;
use crate::proc::RemoveDir;
use crate::proc::{self, ChildGuard};
use crate::{run, setup, workspace};

const PROBE: &str = "syscalls:sys_enter_openat";
/// Microscope's counting-only probe: every syscall counted per number in
/// the kernel, no event streamed.
const COUNTS_PROBE: &str = "raw_syscalls:sys_enter";
/// The floor any tracer pays: a program that does nothing, on the same
/// tracepoint.
const EMPTY_SCRIPT: &str = "tracepoint:syscalls:sys_enter_openat { }";
/// The loop runs here; the tracers' consumers get the other CPUs.
pub(crate) const LOOP_CPU: usize = 0;
/// The configuration that streams every event.
const STREAM: &str = "microscope watch (stream)";
/// The configuration with an empty program.
const FLOOR: &str = "empty BPF program (floor)";
/// Microscope's streaming may cost at most this share of the untraced rate.
const TARGET_OVERHEAD_PERCENT: f64 = 20.0;
const COUNT_SCRIPT: &str = "tracepoint:syscalls:sys_enter_openat { @[pid] = count(); }";
const PRINTF_SCRIPT: &str =
    "tracepoint:syscalls:sys_enter_openat { printf(\"%s\\n\", str(args->filename)); }";

/// Options of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct Options {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Loop throughput untraced, with Microscope streaming, and with bpftrace.
    Pipeline {
        /// How long each configuration runs.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// How many times the whole sequence runs; the table shows each
        /// configuration's median round, so one noisy round cannot decide it.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Open time and peak memory of `microscope info` on a synthetic
    /// recording of millions of events.
    Recording(crate::bench_recording::Options),
    /// What the app's default probes (counted in the kernel) cost a
    /// syscall-bound loop and a page-faulting loop.
    Defaults(crate::bench_defaults::Options),
    /// Time from switching a probe on to its first event at the client.
    Toggle(crate::bench_toggle::Options),
    /// What on-CPU profiling (99 Hz, whole system) costs a CPU-bound loop.
    Profile(crate::bench_profile::Options),
    /// UI CPU time per frame of the flame graph view on 100k unique
    /// synthetic stacks.
    Flame(crate::bench_flame::Options),
    /// The real app replaying a 10-million-event recording: open time, time
    /// to any moment, UI time per frame, peak memory; and the Rates
    /// timeline with a million points.
    Replay(crate::bench_replay::Options),
    /// Every benchmark, then BENCHMARKS.md with the machine and every
    /// target (needs root; takes about 10 minutes).
    All(crate::bench_all::Options),
}

/// One line of the results table.
struct Row {
    config: &'static str,
    result: Result<Measured>,
    /// Median over the rounds of this configuration's rate divided by the
    /// same round's untraced rate: adjacent runs, so slow drifts of a
    /// shared machine cancel out better than in a ratio of medians.
    share_of_untraced: Option<f64>,
}

struct Measured {
    ops_per_sec: f64,
    events: Option<u64>,
    drops: Option<Drops>,
    /// The helper's resident memory before the client connected and its
    /// peak by the end (`VmRSS`, `VmHWM`), in bytes.
    helper_memory: Option<(u64, u64)>,
}

/// Events lost: in the kernel (ring buffer full) and in the helper (client
/// too slow).
#[derive(Debug, Default, PartialEq, Eq)]
struct Drops {
    kernel: u64,
    client: u64,
}

impl Drops {
    fn describe(&self) -> String {
        if self.client == 0 {
            self.kernel.to_string()
        } else {
            format!("{} (+{} client)", self.kernel, self.client)
        }
    }
}

/// Runs `cargo xtask bench ...`.
pub fn run(options: &Options) -> Result<()> {
    let (seconds, rounds) = match &options.bench {
        Bench::Pipeline { seconds, rounds } => (*seconds, *rounds),
        Bench::Recording(options) => return crate::bench_recording::run(options),
        Bench::Toggle(options) => return crate::bench_toggle::run(options),
        Bench::Defaults(options) => return crate::bench_defaults::run(options),
        Bench::Profile(options) => return crate::bench_profile::run(options),
        Bench::Flame(options) => return crate::bench_flame::run(options),
        Bench::Replay(options) => return crate::bench_replay::run(options),
        Bench::All(options) => return crate::bench_all::run(options),
    };
    if seconds == 0 || rounds == 0 {
        bail!("--seconds and --rounds must be at least 1");
    }
    setup::run()?;
    run::build(true)?;
    proc::survive_ctrl_c();

    let has_bpftrace = proc::succeeds(Command::new("bpftrace").arg("--version"));
    if !has_bpftrace {
        println!("bench: bpftrace is not installed; skipping the bpftrace comparisons");
    }
    // Rounds interleave the configurations so slow drifts of the machine
    // (other load, frequency, the VM's neighbours) hit all of them alike.
    let mut all: Vec<(&'static str, Vec<Result<Measured>>)> = Vec::new();
    let mut record = |config: &'static str, result: Result<Measured>| {
        if let Ok(m) = &result {
            println!("bench:   {config}: {:.0} ops/s", m.ops_per_sec);
        }
        match all.iter_mut().find(|(c, _)| *c == config) {
            Some((_, results)) => results.push(result),
            None => all.push((config, vec![result])),
        }
    };
    for round in 1..=rounds {
        println!("bench: round {round} of {rounds} ({seconds} s per configuration)");
        let untraced = load_loop(seconds, false).map(|ops_per_sec| Measured {
            ops_per_sec,
            events: None,
            drops: None,
            helper_memory: None,
        });
        record("untraced", untraced);
        record(STREAM, with_microscope(seconds, PROBE));
        record(
            "microscope (counts only)",
            with_microscope(seconds, COUNTS_PROBE),
        );
        if has_bpftrace {
            record(FLOOR, with_bpftrace_quiet(EMPTY_SCRIPT, seconds));
            record("bpftrace count()", with_bpftrace_count(seconds));
            record("bpftrace printf", with_bpftrace_printf(seconds));
        }
    }
    let untraced_rates: Vec<Option<f64>> = all
        .first()
        .map(|(_, results)| {
            results
                .iter()
                .map(|r| r.as_ref().ok().map(|m| m.ops_per_sec))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Row> = all
        .into_iter()
        .map(|(config, results)| {
            let shares: Vec<f64> = results
                .iter()
                .zip(&untraced_rates)
                .filter_map(|(result, untraced)| {
                    let base = (*untraced)?;
                    let ops = result.as_ref().ok()?.ops_per_sec;
                    (base > 0.0).then_some(ops / base)
                })
                .collect();
            Row {
                config,
                result: median(results),
                share_of_untraced: (!shares.is_empty()).then(|| median_of(&shares)),
            }
        })
        .collect();

    print_table(&rows);
    println!(
        "note: events received count every process's openat while the tracer ran, \
         not only the loop's"
    );
    println!(
        "note: counting only runs at {COUNTS_PROBE}, another attach point than the floor's: \
         it is hit by the loop's openat and close alike"
    );
    if let Some(load) = load_average().filter(|load| *load > 0.5) {
        println!(
            "note: the 1-minute load average was {load:.2}; other busy processes \
             sharing CPU {LOOP_CPU} lower every rate"
        );
    }
    Ok(())
}

/// Runs the pinned `__openloop` for `seconds` (touching fresh pages instead
/// of opening files with `touch_pages`) and returns its ops/s.
pub(crate) fn load_loop(seconds: u64, touch_pages: bool) -> Result<f64> {
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

/// (b): the helper streams every openat event to `microscope watch` (or,
/// for [`COUNTS_PROBE`], counts syscalls in the kernel).
fn with_microscope(seconds: u64, probe: &str) -> Result<Measured> {
    let dir = std::env::temp_dir().join(format!("microscope-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let _cleanup = RemoveDir(dir.clone());
    let socket = dir.join("helper.sock");

    let helper = helper::start_own(&socket, "the benchmark")?;
    let idle = memory_of(helper.id(), "VmRSS:");

    // The client outlives the loop by a margin: it needs a moment to
    // subscribe, and its last line reports the final partial second.
    let watch_seconds = seconds + 3;
    let app = workspace::built_binary("microscope", true);
    let mut cmd = Command::new(&app);
    cmd.args([
        "watch",
        "--probe",
        probe,
        "--seconds",
        &watch_seconds.to_string(),
    ])
    .arg("--socket")
    .arg(&socket)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    let mut watch = proc::spawn_guarded(&mut cmd, "microscope watch", "Run `cargo xtask setup`.")?;
    // The first per-second line means the subscription is live.
    let first_line: fn(&str) -> bool = if probe == COUNTS_PROBE {
        |line| line.starts_with(COUNTS_PROBE)
    } else {
        |line| line.starts_with(PROBE)
    };
    let (ready, lines) = read_lines(&mut watch, first_line)?;
    wait_ready(
        &ready,
        &mut watch,
        Duration::from_secs(5),
        "microscope watch",
    )?;

    let ops_per_sec = load_loop(seconds, false)?;

    let status = watch
        .wait_timeout(Duration::from_secs(watch_seconds + 10))?
        .ok_or_else(|| anyhow!("microscope watch did not exit after --seconds {watch_seconds}"))?;
    let lines = join_lines(lines)?;
    if !status.success() {
        bail!("microscope watch failed ({status}); its error is above");
    }
    let peak = memory_of(helper.id(), "VmHWM:");
    let (events, drops) = parse_watch(&lines, probe);
    Ok(Measured {
        ops_per_sec,
        events: Some(events),
        drops: Some(drops),
        helper_memory: idle.zip(peak),
    })
}

/// A `kB` line of `/proc/PID/status`, in bytes.
fn memory_of(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix(key))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Sums the `<probe> <n>` lines, and the `kernel=` and `client=` counts of
/// `# drops <probe> kernel=<n> client=<n>` lines (the format `microscope
/// watch` documents as stable).
fn parse_watch(lines: &[String], probe: &str) -> (u64, Drops) {
    let mut events = 0;
    let mut drops = Drops::default();
    for line in lines {
        if let Some(rest) = line.strip_prefix("# drops ") {
            for field in rest.split_whitespace() {
                if let Some(n) = field.strip_prefix("kernel=") {
                    drops.kernel += n.parse::<u64>().unwrap_or(0);
                } else if let Some(n) = field.strip_prefix("client=") {
                    drops.client += n.parse::<u64>().unwrap_or(0);
                }
            }
        } else if let Some(count) = line
            .strip_prefix(probe)
            .and_then(|rest| rest.strip_prefix(' '))
        {
            events += count.trim().parse::<u64>().unwrap_or(0);
        }
    }
    (events, drops)
}

/// bpftrace as root, in its own process group so SIGINT reaches it via
/// `sudo`; `None` when we cannot become root without a prompt.
fn bpftrace(script: &str) -> Option<Command> {
    let mut cmd = if workspace::is_root() {
        Command::new("bpftrace")
    } else if proc::succeeds(Command::new("sudo").args(["-n", "true"])) {
        let mut cmd = Command::new("sudo");
        cmd.args(["-n", "bpftrace"]);
        cmd
    } else {
        return None;
    };
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.args(["-e", script]).stdin(Stdio::null());
    Some(cmd)
}

/// (c): bpftrace counts events per pid in a map.
fn with_bpftrace_count(seconds: u64) -> Result<Measured> {
    let mut cmd =
        bpftrace(COUNT_SCRIPT).context("bpftrace needs root (or sudo without a password)")?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut tracer = proc::spawn_guarded(&mut cmd, "bpftrace", "Install bpftrace.")?
        .with_stop_signal(libc::SIGINT);
    let (ready, lines) = read_lines(&mut tracer, |line| line.starts_with("Attaching"))?;
    wait_ready(&ready, &mut tracer, Duration::from_secs(30), "bpftrace")?;

    let ops_per_sec = load_loop(seconds, false)?;

    // On SIGINT bpftrace prints the map (`@[pid]: count`) and exits.
    tracer.stop()?;
    let lines = join_lines(lines)?;
    let events = lines
        .iter()
        .filter_map(|line| line.strip_prefix("@[")?.split_once("]:"))
        .filter_map(|(_pid, count)| count.trim().parse::<u64>().ok())
        .sum();
    Ok(Measured {
        ops_per_sec,
        events: Some(events),
        drops: None,
        helper_memory: None,
    })
}

/// (d): bpftrace prints every filename, to /dev/null.
fn with_bpftrace_printf(seconds: u64) -> Result<Measured> {
    with_bpftrace_quiet(PRINTF_SCRIPT, seconds)
}

/// bpftrace running `script`, its output to /dev/null.
fn with_bpftrace_quiet(script: &str, seconds: u64) -> Result<Measured> {
    let mut cmd = bpftrace(script).context("bpftrace needs root (or sudo without a password)")?;
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut tracer = proc::spawn_guarded(&mut cmd, "bpftrace", "Install bpftrace.")?
        .with_stop_signal(libc::SIGINT);
    // Its "Attaching" line goes to /dev/null with the rest, so watch for the
    // perf event it attaches the program through instead.
    wait_attached(&mut tracer)?;

    let ops_per_sec = load_loop(seconds, false)?;
    tracer.stop()?;
    Ok(Measured {
        ops_per_sec,
        events: None,
        drops: None,
        helper_memory: None,
    })
}

/// Waits until `tracer` holds a perf event fd (bpftrace attaches tracepoint
/// programs through one). Without root we cannot look, so we wait a while.
fn wait_attached(tracer: &mut ChildGuard) -> Result<()> {
    if !workspace::is_root() {
        thread::sleep(Duration::from_secs(5));
        return Ok(());
    }
    let fd_dir = PathBuf::from(format!("/proc/{}/fd", tracer.id()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = tracer.try_wait()? {
            bail!("bpftrace exited ({status}) before attaching");
        }
        if has_perf_event_fd(&fd_dir) {
            // The program is attached right after the fd is opened.
            thread::sleep(Duration::from_millis(200));
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    bail!("bpftrace did not attach within 30 s")
}

fn has_perf_event_fd(fd_dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(fd_dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().contains("perf_event"))
    })
}

/// Reads the child's stdout on a thread, collecting every line; `ready`
/// receives one message when a line matches `is_ready`.
fn read_lines(
    child: &mut ChildGuard,
    is_ready: fn(&str) -> bool,
) -> Result<(mpsc::Receiver<()>, JoinHandle<Vec<String>>)> {
    let stdout = child
        .child_mut()
        .stdout
        .take()
        .context("the child's stdout was not piped")?;
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let reader = thread::Builder::new()
        .name("bench-stdout".to_owned())
        .spawn(move || collect_lines(stdout, &ready_tx, is_ready))
        .context("could not start a thread to read the child's output")?;
    Ok((ready_rx, reader))
}

fn collect_lines(
    stdout: impl Read,
    ready: &mpsc::SyncSender<()>,
    is_ready: fn(&str) -> bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut signalled = false;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if !signalled && is_ready(&line) {
            signalled = true;
            let _receiver_gone = ready.try_send(());
        }
        lines.push(line);
    }
    lines
}

fn join_lines(reader: JoinHandle<Vec<String>>) -> Result<Vec<String>> {
    reader
        .join()
        .map_err(|_panic| anyhow!("the thread reading a child's output panicked"))
}

/// Waits for `ready`, failing when the child exits first or time runs out.
fn wait_ready(
    ready: &mpsc::Receiver<()>,
    child: &mut ChildGuard,
    timeout: Duration,
    name: &str,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match ready.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait()?;
                bail!("{name} exited ({status}) before it was ready; its messages above say why");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= deadline {
            bail!("{name} was not ready within {} s", timeout.as_secs());
        }
    }
}

/// The 1-minute load average, to flag a busy machine.
fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The median round by ops/s, or the first error if no round succeeded.
/// The median of `values` (the upper middle one of an even count); NaN when
/// there are none. Every benchmark's medians of rates and costs.
pub(crate) fn median_of(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median(results: Vec<Result<Measured>>) -> Result<Measured> {
    let mut ok = Vec::new();
    let mut first_err = None;
    for result in results {
        match result {
            Ok(m) => ok.push(m),
            Err(err) => {
                first_err.get_or_insert(err);
            }
        }
    }
    ok.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
    let middle = ok.len() / 2;
    match ok.into_iter().nth(middle) {
        Some(m) => Ok(m),
        None => Err(first_err.unwrap_or_else(|| anyhow!("no round ran"))),
    }
}

fn print_table(rows: &[Row]) {
    let percent_of_untraced = |row: &Row| row.share_of_untraced.map(|share| 100.0 * share);
    let number = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());

    println!(
        "\n{:<26}  {:>12}  {:>13}  {:>15}  {:>8}",
        "configuration", "loop ops/s", "% of untraced", "events received", "drops"
    );
    println!("{}", "-".repeat(26 + 12 + 13 + 15 + 8 + 8));
    for row in rows {
        match &row.result {
            Ok(m) => println!(
                "{:<26}  {:>12.0}  {:>13}  {:>15}  {:>8}",
                row.config,
                m.ops_per_sec,
                percent_of_untraced(row).map_or_else(|| "-".to_owned(), |p| format!("{p:.1} %")),
                number(m.events),
                m.drops
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), Drops::describe),
            ),
            Err(err) => println!("{:<26}  failed: {err:#}", row.config),
        }
    }
    println!(
        "(loop ops/s: the median round; % of untraced: the median over the rounds of the rate \
         divided by the same round's untraced rate)"
    );

    let cost_of = |name: &str| {
        rows.iter()
            .find(|row| row.config == name)
            .and_then(percent_of_untraced)
            .map(|percent| 100.0 - percent)
    };
    let verdict = match cost_of(STREAM) {
        Some(cost) if cost <= TARGET_OVERHEAD_PERCENT => format!("met (costs {cost:.1} %)"),
        Some(cost) => format!("MISSED (costs {cost:.1} %)"),
        None => "not measured".to_owned(),
    };
    println!(
        "\ntarget: Microscope streaming costs at most {TARGET_OVERHEAD_PERCENT:.0} % of the \
         untraced loop rate: {verdict}"
    );
    // What the floor already costs: no tracer of this tracepoint can cost
    // less, so a target below it cannot be met by anyone.
    if let (Some(floor), Some(stream)) = (cost_of(FLOOR), cost_of(STREAM)) {
        let added = if stream >= floor {
            format!(
                "Microscope's streaming adds {:.1} points to it (reserving, filling and \
                 submitting each record, and the helper draining them on another CPU)",
                stream - floor
            )
        } else {
            format!(
                "Microscope's streaming measured {:.1} points below it: no cost beyond the \
                 floor could be told from the rounds' noise",
                floor - stream
            )
        };
        println!("floor: an empty program on {PROBE} costs {floor:.1} % on its own; {added}");
    }
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    for row in rows {
        if let Ok(Measured {
            helper_memory: Some((idle, peak)),
            ..
        }) = &row.result
        {
            println!(
                "helper memory, {}: {:.0} MiB idle, {:.0} MiB peak under the loop \
                 (target: < {HELPER_MEMORY_TARGET_MIB} MiB: {})",
                row.config,
                mib(*idle),
                mib(*peak),
                if mib(*peak) < f64::from(HELPER_MEMORY_TARGET_MIB) {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
    }
}

/// The helper's resident memory the hostile-client tests hold it to.
const HELPER_MEMORY_TARGET_MIB: u32 = 160;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_watch_output() {
        let lines: Vec<String> = [
            "syscalls:sys_enter_openat 120000",
            "syscalls:sys_enter_openat 130001",
            "syscalls:sys_enter_openat_x 5",
            "# drops syscalls:sys_enter_openat kernel=17 client=3",
            "",
            "garbage",
        ]
        .map(str::to_owned)
        .to_vec();
        let drops = Drops {
            kernel: 17,
            client: 3,
        };
        assert_eq!(parse_watch(&lines, PROBE), (250_001, drops));
        assert_eq!(parse_watch(&[], PROBE), (0, Drops::default()));
    }
}
