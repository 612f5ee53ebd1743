//! `cargo xtask bench recording`: does a recording of 10 million events
//! open quickly and in little memory?
//!
//! Writes a synthetic recording with the real writer (a deterministic,
//! seeded mix of `sched_switch`, `openat` with paths, wake-ups and
//! fork/exec/exit, in batches like the helper's), then runs the release
//! `microscope info FILE` as a child, timing it and reading its peak
//! resident memory from `wait4`'s rusage (the same number as `VmHWM`). It
//! measures the file as finished (footer and index) and again with the
//! footer cut off, which forces the crash-recovery scan. Benchmarks are not
//! tests: a missed target is reported, not turned into a failure.

use microscope_wire::ProbeKey;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use microscope_wire::{
    Aggregates, Availability, Capabilities, Event, EventBatch, EventData, HelperInfo,
    HelperMessage, ProbeInfo, ProbeKind, ProbeStats, Recording, RecordingHeader, RecordingWriter,
};

use crate::proc::RemoveDir;
use crate::{proc, workspace};

/// `microscope info` must finish within this…
const TARGET_OPEN: Duration = Duration::from_secs(3);
/// …and stay below this much resident memory.
const TARGET_PEAK_BYTES: u64 = 1 << 30;
/// Events per batch, as a busy helper sends them.
const BATCH_EVENTS: usize = 4096;
const CPUS: u32 = 4;

const SWITCH: ProbeKey = 1;
const WAKEUP: ProbeKey = 2;
const FORK: ProbeKey = 3;
const EXEC: ProbeKey = 4;
const EXIT: ProbeKey = 5;
const OPENAT: ProbeKey = 6;
const COUNTS: ProbeKey = 7;

/// Options of `cargo xtask bench recording`.
#[derive(Debug, Args)]
pub struct Options {
    /// How many events the synthetic recording holds.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Keep the recording here instead of a temporary directory.
    #[arg(long, value_name = "FILE")]
    keep: Option<PathBuf>,
}

/// One measured `microscope info` run.
struct Measured {
    wall: Duration,
    peak_rss_bytes: u64,
}

/// Runs `cargo xtask bench recording`.
pub fn run(options: &Options) -> Result<()> {
    if options.events == 0 {
        bail!("--events must be at least 1");
    }
    build_app()?;
    let dir = std::env::temp_dir().join(format!("microscope-bench-rec-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let _cleanup = RemoveDir(dir.clone());
    let path = options
        .keep
        .clone()
        .unwrap_or_else(|| dir.join("bench.mscr"));

    println!(
        "bench: writing {} synthetic events to {}",
        options.events,
        path.display()
    );
    let started = Instant::now();
    let bytes = write_synthetic(&path, options.events)?;
    let write_time = started.elapsed();
    println!(
        "bench: wrote {:.0} MiB in {:.1} s ({:.0} events/s through the writer{})",
        bytes as f64 / f64::from(1 << 20),
        write_time.as_secs_f64(),
        options.events as f64 / write_time.as_secs_f64(),
        if cfg!(debug_assertions) {
            ", xtask is a debug build"
        } else {
            ""
        }
    );

    let app = workspace::built_binary("microscope", true);
    // Once to warm the page cache, so both rows measure the same thing.
    info(&app, &path)?;
    let with_index = info(&app, &path)?;
    let seek = seek_to_middle(&path)?;

    // What a crash leaves: every frame, no index, no footer.
    let data_end = Recording::open(&path)?.data_end();
    let unfinished = if options.keep.is_some() {
        dir.join("unfinished.mscr")
    } else {
        path.clone()
    };
    if unfinished != path {
        fs::copy(&path, &unfinished).context("could not copy the recording")?;
    }
    OpenOptions::new()
        .write(true)
        .open(&unfinished)
        .and_then(|file| file.set_len(data_end))
        .with_context(|| format!("could not cut the footer off {}", unfinished.display()))?;
    let scanned = info(&app, &unfinished)?;

    print_table(bytes, &with_index, &scanned, seek, options.events);
    Ok(())
}

fn build_app() -> Result<()> {
    let mut cmd = workspace::cargo();
    cmd.args(["build", "--release", "-p", "microscope"]);
    proc::run_checked(
        &mut cmd,
        "building the app",
        "Fix the compiler errors above.",
    )
}

const COMMS: [&str; 8] = [
    "bash",
    "cc1",
    "rustc",
    "kworker/0:1",
    "systemd",
    "sshd",
    "firefox",
    "Xorg",
];
const PATHS: [&str; 8] = [
    "/etc/ld.so.cache",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/proc/self/status",
    "/home/user/src/microscope/target/release/deps/libserde-1a2b3c4d5e6f7a8b.rlib",
    "/dev/null",
    "/sys/fs/cgroup/user.slice/cpu.max",
    "/tmp/cc8XyZ12.s",
    "/usr/share/locale/locale.alias",
];

/// The synthetic recording's header (also a seed of `cargo xtask fuzz`).
pub(crate) fn header() -> RecordingHeader {
    let yes = || Availability::yes("synthetic");
    let probe = |id: &str, key, kind| ProbeInfo {
        fields: Vec::new(),
        id: id.to_owned(),
        key,
        subsystem: "Synthetic".to_owned(),
        description: "bench data".to_owned(),
        kind,
        availability: yes(),
        enabled: true,
    };
    RecordingHeader::new(
        HelperInfo {
            helper_version: "bench".to_owned(),
            kernel_release: "synthetic".to_owned(),
            capabilities: Capabilities {
                tracefs: yes(),
                btf: yes(),
                kprobes: yes(),
                fentry: yes(),
                uprobes: yes(),
            },
        },
        vec![
            probe("sched:sched_switch", SWITCH, ProbeKind::Stream),
            probe("sched:sched_wakeup", WAKEUP, ProbeKind::Stream),
            probe("sched:sched_process_fork", FORK, ProbeKind::Stream),
            probe("sched:sched_process_exec", EXEC, ProbeKind::Stream),
            probe("sched:sched_process_exit", EXIT, ProbeKind::Stream),
            probe("syscalls:sys_enter_openat", OPENAT, ProbeKind::Stream),
            probe("raw_syscalls:sys_enter", COUNTS, ProbeKind::SyscallCounts),
        ],
        "cargo xtask bench recording (synthetic)",
    )
}

/// One synthetic event at `ts_ns`: 55 % switches, 30 % openat, 10 %
/// wake-ups, 5 % fork/exec/exit.
fn synthetic_event(rng: &mut fastrand::Rng, ts_ns: u64) -> Event {
    let cpu = rng.u64(..u64::from(CPUS)) as u32;
    let task = rng.u64(..COMMS.len() as u64) as usize;
    let pid = 1000 + task as u32 * 7 + rng.u64(..4) as u32;
    let comm = COMMS.get(task).copied().unwrap_or("task").to_owned();
    let roll = rng.u64(..100);
    let (probe, data) = match roll {
        0..55 => {
            let next = rng.u64(..COMMS.len() as u64) as usize;
            (
                SWITCH,
                EventData::SchedSwitch {
                    prev_pid: pid,
                    prev_comm: comm.clone(),
                    prev_prio: 120,
                    prev_state: rng.u64(..3),
                    next_pid: 1000 + next as u32 * 7,
                    next_comm: COMMS.get(next).copied().unwrap_or("task").to_owned(),
                    next_prio: 120,
                },
            )
        }
        55..85 => {
            let path = PATHS.get(rng.u64(..PATHS.len() as u64) as usize);
            (
                OPENAT,
                EventData::Openat {
                    dfd: -100,
                    filename: format!("{}.{}", path.copied().unwrap_or("/"), rng.u64(..100)),
                    flags: 0o2_000_000,
                    mode: 0,
                },
            )
        }
        85..95 => (
            WAKEUP,
            EventData::SchedWakeup {
                pid: pid + 1,
                comm: comm.clone(),
                prio: 120,
                target_cpu: rng.u64(..u64::from(CPUS)) as u32,
            },
        ),
        95..97 => (
            FORK,
            EventData::SchedFork {
                parent_pid: pid,
                child_pid: pid + 100_000,
            },
        ),
        97..99 => (
            EXEC,
            EventData::SchedExec {
                pid,
                old_pid: pid,
                filename: "/usr/bin/cc1".to_owned(),
            },
        ),
        _ => (
            EXIT,
            EventData::SchedExit {
                pid,
                prio: 120,
                group_dead: rng.u64(..2) == 0,
            },
        ),
    };
    Event {
        probe,
        cpu,
        ts_ns,
        pid,
        tgid: pid,
        comm,
        data,
    }
}

/// A batch of `events` synthetic events, as the helper sends them (seeds of
/// `cargo xtask fuzz`).
pub(crate) fn synthetic_batch(seed: u64, events: usize) -> HelperMessage {
    let mut rng = fastrand::Rng::with_seed(seed);
    let events = (0..events as u64)
        .map(|i| synthetic_event(&mut rng, 1_000_000 + i * 2_500))
        .collect();
    HelperMessage::Batch(EventBatch {
        events,
        stats: vec![ProbeStats {
            probe: SWITCH,
            kernel_drops: 3,
            client_drops: 1,
        }],
    })
}

/// Writes `events` synthetic events; returns the file size.
pub(crate) fn write_synthetic(path: &Path, events: u64) -> Result<u64> {
    let mut writer = RecordingWriter::create(path, &header(), true)?;
    let mut rng = fastrand::Rng::with_seed(0x5eed_1234_abcd_ef01);
    // ~400k events/s, the rate of a tight syscall loop on this machine.
    let event_gap_ns = 2_500;
    let mut ts_ns = 1_000_000_000_000;
    let mut written = 0;
    let mut batches: u64 = 0;
    let mut syscalls = 0;
    while written < events {
        let n = (events - written).min(BATCH_EVENTS as u64);
        let batch_events = (0..n)
            .map(|_| {
                ts_ns += event_gap_ns;
                synthetic_event(&mut rng, ts_ns)
            })
            .collect();
        let stats = [SWITCH, OPENAT]
            .map(|probe| ProbeStats {
                probe,
                kernel_drops: batches / 1000,
                client_drops: 0,
            })
            .to_vec();
        let recv_ns = ts_ns - 1_000_000_000_000 + 1_000_000;
        writer.write(
            recv_ns,
            &HelperMessage::Batch(EventBatch {
                events: batch_events,
                stats,
            }),
        )?;
        batches += 1;
        written += n;
        if batches.is_multiple_of(25) {
            syscalls += 250_000;
            writer.write(
                recv_ns,
                &HelperMessage::Aggregates(Aggregates {
                    functions: Vec::new(),
                    ts_ns,
                    syscall_counts: vec![(0, syscalls / 2), (257, syscalls / 2)],
                    latency_log2_ns: Vec::new(),
                }),
            )?;
        }
    }
    Ok(writer.finish()?.bytes)
}

/// Runs `microscope info FILE`, timing it and reading its peak RSS.
fn info(app: &Path, file: &Path) -> Result<Measured> {
    let mut cmd = Command::new(app);
    cmd.arg("info")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let (status, peak_rss_bytes) = proc::run_with_peak_rss(&mut cmd)?;
    let wall = started.elapsed();
    if !status.success() {
        bail!("`microscope info {}` failed ({status})", file.display());
    }
    Ok(Measured {
        wall,
        peak_rss_bytes,
    })
}

/// Opens the recording and reads one frame from the middle seek point: what
/// a scrubber does.
fn seek_to_middle(path: &Path) -> Result<Duration> {
    let started = Instant::now();
    let recording = Recording::open(path)?;
    let entries = &recording.index().entries;
    let middle = entries
        .get(entries.len() / 2)
        .context("the recording has no index entries")?;
    let frame = recording
        .frames_from(middle.offset)?
        .next()
        .context("no frame at the middle seek point")??;
    if frame.recv_ns != middle.recv_ns {
        bail!("the middle seek point does not lead to its frame");
    }
    Ok(started.elapsed())
}

fn print_table(bytes: u64, with_index: &Measured, scanned: &Measured, seek: Duration, events: u64) {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!(
        "\nrecording: {events} events, {:.0} MiB ({:.1} bytes/event)\n",
        mib(bytes),
        bytes as f64 / events as f64
    );
    println!("{:<44}  {:>9}  {:>14}", "measurement", "time", "peak RSS");
    println!("{}", "-".repeat(44 + 9 + 14 + 4));
    for (name, m) in [
        ("microscope info (footer index)", with_index),
        ("microscope info (no footer: recovery scan)", scanned),
    ] {
        println!(
            "{name:<44}  {:>7.3} s  {:>10.1} MiB",
            m.wall.as_secs_f64(),
            mib(m.peak_rss_bytes)
        );
    }
    println!(
        "{:<44}  {:>7.3} s  {:>14}",
        "open + seek to the middle + read a frame",
        seek.as_secs_f64(),
        "-"
    );
    let verdict = |m: &Measured| {
        if m.wall < TARGET_OPEN && m.peak_rss_bytes < TARGET_PEAK_BYTES {
            "met"
        } else {
            "MISSED"
        }
    };
    println!(
        "\ntarget: open < {} s and peak memory < {} MiB: {} with the index, {} by scanning",
        TARGET_OPEN.as_secs(),
        TARGET_PEAK_BYTES >> 20,
        verdict(with_index),
        verdict(scanned)
    );
}
