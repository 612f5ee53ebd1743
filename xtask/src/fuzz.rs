//! `cargo xtask fuzz [--seconds N] [TARGET]`: runs the cargo-fuzz targets of
//! `app/fuzz` (the parsers of untrusted bytes) for a bounded time each.
//!
//! It installs cargo-fuzz when missing, writes seed inputs made with the
//! real encoders (wire streams, recordings finished and cut off, the
//! built-in pack, tracefs format files of this kernel) to
//! `target/fuzz/seeds/`, keeps the growing corpus in `target/fuzz/corpus/`
//! and any crashing input in `target/fuzz/artifacts/`, and ends with a table
//! of executions and coverage per target. A crash fails the task and says
//! how to replay it.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use microscope_wire::{
    Aggregates, ClientMessage, Frame, HelperMessage, ProbeOptions, ProcessFilter, RecordingWriter,
    StackBatch, StackCount, encode_frame,
};

use crate::bench_recording::{header, synthetic_batch};
use crate::proc::{describe, run_checked, stdout_of};
use crate::workspace;

/// Every fuzz target (`app/fuzz/Cargo.toml`), in the order they run.
pub const TARGETS: [&str; 7] = [
    "wire_client",
    "wire_helper",
    "recording",
    "tracefs_format",
    "generic_record",
    "pack_manifest",
    "pack_object",
];
/// The cargo-fuzz release known to work with the installed nightly.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Largest input libFuzzer makes, in bytes: enough for a recording of a few
/// frames or a whole pack.
const MAX_LEN: u32 = 64 * 1024;

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Args)]
pub struct Options {
    /// How long to fuzz each target.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Fuzz only this target (default: all of them, one after another).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    target: Option<String>,
}

/// What one target's run reported.
#[derive(Debug, Default)]
pub struct Report {
    /// The target.
    pub target: String,
    /// Inputs executed.
    pub executions: u64,
    /// Coverage points (libFuzzer's `cov`) at the end.
    pub cov: u64,
    /// Features (libFuzzer's `ft`) at the end.
    pub ft: u64,
    /// Inputs in the corpus at the end.
    pub corpus: u64,
    /// Where the crashing input was saved, if the target crashed.
    pub crash: Option<String>,
    /// Wall time, s.
    pub seconds: f64,
}

/// Runs `cargo xtask fuzz`.
pub fn run(options: &Options) -> Result<()> {
    let targets: Vec<&str> = match &options.target {
        Some(target) => vec![target.as_str()],
        None => TARGETS.to_vec(),
    };
    let reports = fuzz(&targets, options.seconds)?;
    print_reports(&reports);
    let crashed: Vec<&Report> = reports.iter().filter(|r| r.crash.is_some()).collect();
    if !crashed.is_empty() {
        for report in &crashed {
            eprintln!(
                "{} crashed on {}; replay it with `{}`",
                report.target,
                report.crash.as_deref().unwrap_or("?"),
                replay_command(report)
            );
        }
        bail!("{} fuzz target(s) crashed", crashed.len());
    }
    Ok(())
}

/// Installs cargo-fuzz, builds the targets, and fuzzes each of `targets`
/// for `seconds`.
pub fn fuzz(targets: &[&str], seconds: u32) -> Result<Vec<Report>> {
    install_cargo_fuzz()?;
    let dirs = Dirs::new();
    write_seeds(&dirs.seeds).context("could not write the seed inputs")?;
    let mut build = cargo_fuzz();
    build.arg("build");
    dirs.common_args(&mut build);
    run_checked(
        &mut build,
        "building the fuzz targets",
        "Fix the compiler errors above; the targets build with nightly (`cargo xtask setup`).",
    )?;
    targets
        .iter()
        .map(|target| run_target(&dirs, target, seconds))
        .collect()
}

/// Where the fuzz crate, its build, seeds, corpus and crashes are.
struct Dirs {
    fuzz_dir: PathBuf,
    target_dir: PathBuf,
    seeds: PathBuf,
    corpus: PathBuf,
    artifacts: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let base = workspace::target_dir().join("fuzz");
        Self {
            fuzz_dir: workspace::root().join("app/fuzz"),
            target_dir: base.clone(),
            seeds: base.join("seeds"),
            corpus: base.join("corpus"),
            artifacts: base.join("artifacts"),
        }
    }

    fn common_args(&self, cmd: &mut Command) {
        cmd.arg("--fuzz-dir")
            .arg(&self.fuzz_dir)
            .arg("--target-dir")
            .arg(&self.target_dir);
    }
}

/// `cargo +nightly fuzz`, through the rustup proxy: xtask runs under the
/// pinned stable toolchain, and libFuzzer's instrumentation needs nightly.
fn cargo_fuzz() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .current_dir(workspace::root())
        .args(["+nightly", "fuzz"]);
    cmd
}

fn install_cargo_fuzz() -> Result<()> {
    let installed = stdout_of(Command::new("cargo").args(["fuzz", "--version"]))
        .is_some_and(|out| out.contains(CARGO_FUZZ_VERSION));
    if installed {
        return Ok(());
    }
    println!("fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about a minute)");
    run_checked(
        workspace::cargo().args([
            "install",
            &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
            "--locked",
        ]),
        "installing cargo-fuzz",
        "It needs network access to crates.io.",
    )
}

fn run_target(dirs: &Dirs, target: &str, seconds: u32) -> Result<Report> {
    let corpus = dirs.corpus.join(target);
    let seeds = dirs.seeds.join(target);
    let artifacts = dirs.artifacts.join(target);
    for dir in [&corpus, &artifacts] {
        fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let mut cmd = cargo_fuzz();
    cmd.arg("run");
    dirs.common_args(&mut cmd);
    cmd.arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={MAX_LEN}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    println!("\n==> fuzz {target} for {seconds} s: {}", describe(&cmd));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", describe(&cmd)))?;
    let mut report = Report {
        target: target.to_owned(),
        ..Report::default()
    };
    if let Some(stderr) = child.stderr.take() {
        let mut in_dictionary = false;
        for line in BufReader::new(stderr).lines() {
            let line = line.context("could not read libFuzzer's output")?;
            parse_line(&line, &mut report);
            // Every new coverage point gets a line, and the final
            // dictionary dozens: keep the log readable.
            if line.starts_with("###### Recommended dictionary") {
                in_dictionary = true;
            }
            if !is_progress(&line) && !in_dictionary {
                eprintln!("{line}");
            }
            if line.starts_with("###### End of recommended dictionary") {
                in_dictionary = false;
            }
        }
    }
    let status = child.wait().context("could not wait for the fuzzer")?;
    report.seconds = started.elapsed().as_secs_f64();
    if !status.success() && report.crash.is_none() {
        report.crash = Some(format!(
            "(no input saved; the fuzzer exited with {status}, see above)"
        ));
    }
    Ok(report)
}

/// Whether `line` is one of libFuzzer's per-input progress lines.
fn is_progress(line: &str) -> bool {
    line.starts_with('#')
        && ["NEW", "REDUCE", "RELOAD"]
            .iter()
            .any(|word| line.split_whitespace().nth(1) == Some(*word))
}

/// Picks the figures out of libFuzzer's status and final-stats lines.
fn parse_line(line: &str, report: &mut Report) {
    if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
        report.executions = value.trim().parse().unwrap_or(report.executions);
    }
    if let Some(path) = line.split("Test unit written to ").nth(1).map(str::trim) {
        report.crash = Some(path.to_owned());
    }
    if line.starts_with('#') {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            let [key, value] = pair else { continue };
            // `corp: 40/9Kb`: the count is the leading digits.
            let digits = value.len() - value.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let Ok(number) = value[..digits].parse::<u64>() else {
                continue;
            };
            match *key {
                "cov:" => report.cov = number,
                "ft:" => report.ft = number,
                "corp:" => report.corpus = number,
                _ => {}
            }
        }
    }
}

fn replay_command(report: &Report) -> String {
    format!(
        "cargo +nightly fuzz run --fuzz-dir app/fuzz --target-dir target/fuzz {} {}",
        report.target,
        report.crash.as_deref().unwrap_or("<input>")
    )
}

/// Prints the table of runs.
pub fn print_reports(reports: &[Report]) {
    println!(
        "\n{:<16} {:>12} {:>8} {:>8} {:>8} {:>8}  result",
        "target", "executions", "cov", "ft", "corpus", "seconds"
    );
    for r in reports {
        println!(
            "{:<16} {:>12} {:>8} {:>8} {:>8} {:>8.0}  {}",
            r.target,
            r.executions,
            r.cov,
            r.ft,
            r.corpus,
            r.seconds,
            if r.crash.is_some() { "CRASH" } else { "ok" }
        );
    }
}

/// The C example pack's objects, compiled with clang-22 (one with a stack
/// map), as seeds for `pack_object`.
fn pack_objects(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let sources = workspace::root().join("assets/packs/example-c");
    let mut objects = Vec::new();
    for name in ["sleeps", "offcpu"] {
        let object = dir.join(format!("{name}.bpf.o"));
        crate::packs::build_c(&sources.join(format!("{name}.bpf.c")), &object)?;
        let bytes = fs::read(&object).with_context(|| format!("reading {}", object.display()))?;
        fs::remove_file(&object)?;
        objects.push((name.to_owned(), bytes));
    }
    Ok(objects)
}

/// Writes each target's seeds into `dir/<target>/`. Every input starts with
/// the mode byte of `app/fuzz/src/lib.rs` (0: as it is, 1: repaired).
fn write_seeds(dir: &Path) -> Result<()> {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (name, stream) in [
        ("client", wire_stream(&client_messages())?),
        ("helper", wire_stream(&helper_messages())?),
    ] {
        let target = if name == "client" {
            "wire_client"
        } else {
            "wire_helper"
        };
        for mode in [0u8, 1, 8, 9] {
            seeds.push((target, format!("{name}-{mode}"), with_mode(mode, &stream)));
        }
    }
    for (name, file) in recordings(dir)? {
        for mode in [0u8, 1] {
            seeds.push((
                "recording",
                format!("{name}-{mode}"),
                with_mode(mode, &file),
            ));
        }
    }
    for (name, text) in format_files() {
        seeds.push(("tracefs_format", name.clone(), text.clone().into_bytes()));
        let mut input = vec![0];
        input.extend_from_slice(text.as_bytes());
        input.push(0);
        input.extend((0..=255u8).cycle().take(256));
        seeds.push(("generic_record", name, input));
    }
    seeds.push(("generic_record", "specs".into(), generic_specs()));
    seeds.push(("pack_manifest", "builtin".into(), builtin_pack()?));
    for (name, object) in pack_objects(dir)? {
        seeds.push(("pack_object", name, object));
    }
    // Inputs that once crashed a target, kept so every run tries them again.
    for target in TARGETS {
        let kept = workspace::root().join("app/fuzz/regressions").join(target);
        let Ok(entries) = fs::read_dir(&kept) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("could not list {}", kept.display()))?
                .path();
            let bytes =
                fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
            let name = format!(
                "regression-{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            seeds.push((target, name, bytes));
        }
    }

    for target in TARGETS {
        let target_dir = dir.join(target);
        if target_dir.exists() {
            fs::remove_dir_all(&target_dir)
                .with_context(|| format!("could not clear {}", target_dir.display()))?;
        }
        fs::create_dir_all(&target_dir)
            .with_context(|| format!("could not create {}", target_dir.display()))?;
    }
    for (target, name, bytes) in seeds {
        let path = dir.join(target).join(name);
        fs::write(&path, bytes).with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(())
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(mode);
    out.extend_from_slice(bytes);
    out
}

fn client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::ListProbes,
        ClientMessage::Enable {
            probe: "sched:sched_switch".into(),
        },
        ClientMessage::SetOptions {
            probe: "profile:cpu".into(),
            options: ProbeOptions {
                stacks: true,
                sample_hz: 99,
                min_block_us: 1000,
                count_only: false,
            },
        },
        ClientMessage::ListTracepoints,
        ClientMessage::ListKernelFunctions {
            contains: "vfs_".into(),
        },
        ClientMessage::SetFilter(ProcessFilter {
            pid: Some(42),
            comm: Some("bash".into()),
            cgroup: Some(7),
        }),
        ClientMessage::Disable {
            probe: "uprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:malloc".into(),
        },
    ]
}

fn helper_messages() -> Vec<HelperMessage> {
    let header = header();
    vec![
        HelperMessage::Hello(header.helper.clone()),
        HelperMessage::Probes(header.probes.clone()),
        HelperMessage::ProbeState {
            probe: "sched:sched_switch".into(),
            enabled: true,
        },
        synthetic_batch(1, 24),
        HelperMessage::Aggregates(Aggregates {
            functions: Vec::new(),
            ts_ns: 5,
            syscall_counts: vec![(0, 10), (257, 3)],
            latency_log2_ns: vec![0, 1, 2, 4, 5],
        }),
        HelperMessage::Error {
            message: "no such probe".into(),
        },
        HelperMessage::Tracepoints(vec![
            "sched:sched_switch".into(),
            "irq:irq_handler_entry".into(),
        ]),
        HelperMessage::KernelFunctions {
            contains: "vfs_".into(),
            names: vec!["vfs_read".into(), "vfs_write".into()],
            truncated: false,
        },
        HelperMessage::Filter(ProcessFilter::default()),
        HelperMessage::Stacks(StackBatch {
            start_ns: 1,
            end_ns: 2,
            frames: vec![
                Frame {
                    id: 0,
                    name: "main".into(),
                    kernel: false,
                },
                Frame {
                    id: 1,
                    name: "do_sys_openat2".into(),
                    kernel: true,
                },
            ],
            stacks: vec![StackCount {
                probe: 9,
                tgid: 42,
                comm: "cat".into(),
                frames: vec![0, 1],
                value: 17,
            }],
        }),
    ]
}

fn wire_stream<T: serde::Serialize>(messages: &[T]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for message in messages {
        encode_frame(message, &mut out).context("could not encode a seed message")?;
    }
    Ok(out)
}

/// Two small recordings made by the real writer: one finished (footer and
/// index), one whose writer was dropped (read by scanning).
fn recordings(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let mut files = Vec::new();
    for finished in [true, false] {
        let path = dir.join(format!("scratch-{finished}.mscr"));
        let mut writer = RecordingWriter::create(&path, &header(), true)?;
        for (i, message) in helper_messages().iter().enumerate() {
            writer.write(i as u64 * 1_000, message)?;
        }
        if finished {
            writer.finish()?;
        } else {
            drop(writer);
        }
        let bytes =
            fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
        let _ignored = fs::remove_file(&path);
        let name = if finished { "finished" } else { "unfinished" };
        files.push((name.to_owned(), bytes));
    }
    Ok(files)
}

/// A sample format file, and a few of the running kernel's when tracefs is
/// readable.
fn format_files() -> Vec<(String, String)> {
    let mut files = vec![(
        "sample".to_owned(),
        "name: sched_switch\nID: 316\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:__data_loc char[] name;\toffset:28;\tsize:4;\tsigned:0;\n\
\tfield:__rel_loc u8[] blob;\toffset:32;\tsize:4;\tsigned:0;\n\
\nprint fmt: \"prev_comm=%s\", REC->prev_comm\n"
            .to_owned(),
    )];
    for event in [
        "sched/sched_switch",
        "syscalls/sys_enter_openat",
        "block/block_rq_issue",
        "irq/irq_handler_entry",
        "net/net_dev_xmit",
    ] {
        let path = Path::new("/sys/kernel/tracing/events")
            .join(event)
            .join("format");
        if let Ok(text) = fs::read_to_string(&path) {
            files.push((event.replace('/', "-"), text));
        }
    }
    files
}

/// `generic_record`'s structured mode: one field spec of every C type.
fn generic_specs() -> Vec<u8> {
    let mut input = vec![1, 16];
    for kind in 0..16u8 {
        input.extend_from_slice(&[kind, 8 + kind * 8, 0, 4]);
    }
    input.extend((0..=255u8).cycle().take(256));
    input
}

/// The built-in pack: `pack.toml`, then every other file, NUL-separated.
fn builtin_pack() -> Result<Vec<u8>> {
    let dir = workspace::root().join("assets/packs/builtin");
    let mut names: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("could not list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    names.sort_by_key(|path| !path.ends_with("pack.toml"));
    let mut out = Vec::new();
    for (i, path) in names.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend(fs::read(path).with_context(|| format!("could not read {}", path.display()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_status_and_final_stats() {
        let mut report = Report::default();
        for line in [
            "#2\tINITED cov: 512 ft: 600 corp: 10/2Kb exec/s: 0 rss: 40Mb",
            "#4096\tpulse  cov: 700 ft: 900 corp: 40/9Kb lim: 40 exec/s: 2048 rss: 41Mb",
            "#90000\tDONE   cov: 812 ft: 1432 corp: 77/20Kb lim: 4096 exec/s: 3000 rss: 42Mb",
            "stat::number_of_executed_units: 90123",
        ] {
            parse_line(line, &mut report);
        }
        assert_eq!(report.cov, 812);
        assert_eq!(report.ft, 1432);
        assert_eq!(report.corpus, 77);
        assert_eq!(report.executions, 90123);
        assert!(report.crash.is_none());
        parse_line(
            "artifact_prefix='a/'; Test unit written to a/crash-0123",
            &mut report,
        );
        assert_eq!(report.crash.as_deref(), Some("a/crash-0123"));
    }

    #[test]
    fn progress_lines_are_recognised() {
        assert!(is_progress("#123\tNEW    cov: 5 ft: 6"));
        assert!(is_progress("#9\tREDUCE cov: 5 ft: 6"));
        assert!(!is_progress("#9\tDONE   cov: 5 ft: 6"));
        assert!(!is_progress("==1==ERROR: AddressSanitizer"));
    }
}
