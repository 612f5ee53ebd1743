//! `cargo xtask bench all`: every benchmark, one after the other, and
//! `BENCHMARKS.md` at the workspace root with what they measured.
//!
//! Each benchmark runs as its own `cargo xtask bench NAME` child (the same
//! command a person runs alone), its output shown as it goes and kept. The
//! file has the machine's description, a summary table of every target
//! line the benchmarks print (each with its target and verdict), and each
//! benchmark's whole output. A benchmark that fails (no root for the
//! helper, no bpftrace) is listed as failed with its last lines; the others
//! still run. Benchmarks are not tests, and this is not a step of `cargo
//! xtask test`: the table is where speed is judged.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{proc, workspace};

/// Options of `cargo xtask bench all`.
#[derive(Debug, Args)]
pub struct Options {
    /// Seconds per configuration of the pipeline benchmark.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds of the pipeline benchmark.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Each benchmark: its name for `cargo xtask bench`, extra arguments, and
/// what it measures, for the file.
const BENCHMARKS: [(&str, &str); 7] = [
    (
        "pipeline",
        "A syscall loop (openat + close, pinned to CPU 0) untraced, while Microscope streams \
         every openat event to a client, while Microscope only counts syscalls in the kernel, \
         under an empty BPF program on the same tracepoint (the floor any tracer pays), and \
         under bpftrace count() and printf. Drops, and the helper's memory idle and under load.",
    ),
    (
        "defaults",
        "What the app's default probes (counted in the kernel, so the map lights at once) cost \
         two loads pinned to CPU 0, against adjacent untraced runs.",
    ),
    (
        "profile",
        "What on-CPU profiling (99 Hz, whole system) costs a CPU-bound loop.",
    ),
    (
        "toggle",
        "Time from switching a probe on to its first event at the client.",
    ),
    (
        "flame",
        "UI thread CPU time per frame of the flame graph view on 100 000 unique stacks.",
    ),
    (
        "recording",
        "Open time and peak memory of `microscope info` on a 10-million-event recording.",
    ),
    (
        "replay",
        "The real window (headless) replaying a 10-million-event recording: open time, time \
         to any moment, UI time per frame of the CPU timeline and the inspector, peak memory; \
         the Rates timeline with a million points per series.",
    ),
];

/// Runs `cargo xtask bench all`.
pub fn run(options: &Options) -> Result<()> {
    let exe = std::env::current_exe().context("could not find the xtask binary")?;
    let started = Instant::now();
    let mut results = Vec::new();
    for (name, what) in BENCHMARKS {
        println!("\n=== cargo xtask bench {name} ===");
        let mut cmd = Command::new(&exe);
        cmd.args(["bench", name]);
        if name == "pipeline" {
            cmd.args(["--seconds", &options.seconds.to_string()]);
            cmd.args(["--rounds", &options.rounds.to_string()]);
        }
        let bench_started = Instant::now();
        let (ok, output) = run_teed(&mut cmd)?;
        results.push(Outcome {
            name,
            what,
            ok,
            output,
            seconds: bench_started.elapsed().as_secs(),
        });
    }
    let text = markdown(&results, started.elapsed().as_secs());
    let path = workspace::root().join("BENCHMARKS.md");
    std::fs::write(&path, text).with_context(|| format!("could not write {}", path.display()))?;
    println!("\nbench: wrote {}", path.display());
    let failed: Vec<&str> = results.iter().filter(|r| !r.ok).map(|r| r.name).collect();
    if !failed.is_empty() {
        println!(
            "bench: these benchmarks failed (see the file): {}",
            failed.join(", ")
        );
    }
    Ok(())
}

struct Outcome {
    name: &'static str,
    what: &'static str,
    ok: bool,
    output: String,
    seconds: u64,
}

/// Runs `cmd`, showing its output as it goes and keeping it (stdout and
/// stderr, interleaved as lines arrive on stdout; stderr follows).
fn run_teed(cmd: &mut Command) -> Result<(bool, String)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", proc::describe(cmd)))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let errors = std::thread::spawn(move || {
        let mut kept = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            kept.push_str(&line);
            kept.push('\n');
        }
        kept
    });
    let mut output = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child.wait().context("could not wait for the benchmark")?;
    let errors = errors.join().unwrap_or_default();
    let errors: String = errors
        .lines()
        .filter(|line| !is_noise(line))
        .map(|line| format!("{line}\n"))
        .collect();
    if !errors.trim().is_empty() {
        output.push_str(&errors);
    }
    Ok((status.success(), output))
}

/// Whether a line of a benchmark's stderr is left out of the file: cargo's
/// build lines (also as echoed by the helper's build script, `warning:
/// microscoped@…: Compiling …`) and the helper's own log below errors
/// (`[2026-11-30T15:57:40Z INFO  microscoped…]`). Errors stay.
fn is_noise(line: &str) -> bool {
    let line = line.trim_start();
    let build = |text: &str| {
        let text = text.trim_start();
        ["Compiling", "Finished", "Running", "Blocking", "Checking"]
            .iter()
            .any(|word| text.starts_with(word))
    };
    if build(line) {
        return true;
    }
    if let Some(rest) = line.strip_prefix("warning: ")
        && let Some((package, echoed)) = rest.split_once(": ")
        && package.contains('@')
    {
        return build(echoed);
    }
    if let Some(rest) = line.strip_prefix('[')
        && let Some((_, after_time)) = rest.split_once(' ')
    {
        return ["INFO ", "WARN ", "DEBUG ", "TRACE "]
            .iter()
            .any(|level| after_time.starts_with(level));
    }
    false
}

/// What the machine is.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, name)| name.trim())
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(
            || "?".to_owned(),
            |kb| format!("{:.1} GiB", kb as f64 / 1048576.0),
        );
    let output = |program: &str, args: &[&str]| {
        proc::stdout_of(Command::new(program).args(args))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "?".to_owned())
    };
    let mut text = String::new();
    let _ = writeln!(text, "- CPU: {model}, {cpus} CPUs available");
    let _ = writeln!(text, "- memory: {memory}");
    let _ = writeln!(text, "- kernel: {}", output("uname", &["-srm"]));
    let _ = writeln!(
        text,
        "- virtualisation: {}",
        output("systemd-detect-virt", &[])
    );
    let _ = writeln!(
        text,
        "- date (UTC): {}",
        output("date", &["-u", "+%Y-%m-%d %H:%M"])
    );
    let _ = writeln!(
        text,
        "- commit: {}",
        output("git", &["rev-parse", "--short", "HEAD"])
    );
    let _ = writeln!(
        text,
        "- load average when the run ended: {}",
        read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    text
}

/// The target lines of a benchmark's output: `target…`, `targets:…`,
/// `helper memory…`, `floor:…`.
fn target_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .map(str::trim)
        .filter(|line| {
            line.starts_with("target")
                || line.starts_with("helper memory")
                || line.starts_with("floor:")
        })
        .collect()
}

fn markdown(results: &[Outcome], seconds: u64) -> String {
    let mut text = String::from(
        "# Benchmarks\n\nWritten by `cargo xtask bench all` (every benchmark, in about \
         ",
    );
    let _ = write!(
        text,
        "{} minutes). Benchmarks are not tests: a missed target is reported here, not \
         turned into a failure. Run one alone with `cargo xtask bench NAME`.\n\n## The \
         machine\n\n{}\nThe machine is shared: other processes ran meanwhile, which lowers \
         rates and raises wall-clock times (the UI rows also give the UI thread's own CPU \
         time, which they do not affect).\n\n## Summary: every target\n\n| benchmark | \
         measured against its target |\n|---|---|\n",
        seconds.div_ceil(60),
        machine()
    );
    for result in results {
        let lines = target_lines(&result.output);
        if !result.ok {
            let _ = writeln!(text, "| {} | FAILED (see below) |", result.name);
        }
        for line in lines {
            let _ = writeln!(text, "| {} | {} |", result.name, line.replace('|', "/"));
        }
    }
    for result in results {
        let _ = write!(
            text,
            "\n## `cargo xtask bench {}`\n\n{}\n\n{} in {} s.\n\n```text\n{}```\n",
            result.name,
            result.what,
            if result.ok { "Ran" } else { "FAILED" },
            result.seconds,
            result.output
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_lines_and_the_helper_s_log_are_noise_but_errors_are_not() {
        assert!(is_noise("   Compiling serde v1.0.0"));
        assert!(is_noise(
            "warning: microscoped@0.1.0:    Compiling aya-ebpf v0.2.1"
        ));
        assert!(is_noise(
            "[2026-11-30T15:57:40Z INFO  microscoped] microscoped 0.1.0 listening"
        ));
        assert!(is_noise(
            "[2026-11-30T15:57:40Z WARN  microscoped] probe func:vfs_read unavailable"
        ));
        assert!(!is_noise(
            "[2026-11-30T15:57:40Z ERROR microscoped] could not attach"
        ));
        assert!(!is_noise("warning: unused variable: `x`"));
        assert!(!is_noise("error: could not compile `microscoped`"));
    }

    #[test]
    fn target_lines_are_found() {
        let output = "bench: x\n\ntarget: p95 ≤ 8 ms: met\nhelper memory, a: 50 MiB idle\nno\n";
        assert_eq!(
            target_lines(output),
            ["target: p95 ≤ 8 ms: met", "helper memory, a: 50 MiB idle"]
        );
    }

    #[test]
    fn a_failed_benchmark_is_listed_as_failed() {
        let text = markdown(
            &[Outcome {
                name: "toggle",
                what: "w",
                ok: false,
                output: "error: needs root\n".to_owned(),
                seconds: 1,
            }],
            60,
        );
        assert!(text.contains("| toggle | FAILED (see below) |"), "{text}");
        assert!(text.contains("error: needs root"), "{text}");
    }
}
