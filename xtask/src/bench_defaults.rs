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
//! Each traced run sits next to an untraced one (the order alternates), and
//! the table shows the median of the pairs' costs, as `bench profile` does:
//! the loops' rates on a shared VM swing by ±15 % or more between runs.
//! It also reads the kernel's own account of the helper's tracepoint
//! programs (`kernel.bpf_stats_enabled`): hits, ns per hit, and the share
//! of a CPU they took, which other load does not blur.
//! Benchmarks are not tests: nothing here fails on a number.

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use microscope_model::live_defaults::DEFAULT_PROBES;
use microscope_wire::{ClientError, ClientMessage, Connection, HelperMessage, ProbeOptions};

use crate::bench::{load_loop, median_of};
use crate::bench_profile::{BpfStats, programs_stats};
use crate::helper::{self, Started};
use crate::proc::RemoveDir;
use crate::{proc, run, setup, workspace};

/// What lights the "System calls" node: counted per syscall in the kernel.
const SYSCALL_COUNTS: &str = "raw_syscalls:sys_enter";
/// `prog_type` of tracepoint programs in `/proc/PID/fdinfo`.
const TRACEPOINT_PROG_TYPE: &str = "5";
/// The rows of the default set.
const DEFAULTS_LABEL: &str = "default probes";
/// The default set's programs may take at most this share of one CPU.
const TARGET_CPU_PERCENT: f64 = 1.0;

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
    let helper = match helper::start(&workspace::built_binary("microscoped", release), &socket)? {
        Started::Ours(guard) => guard,
        Started::AlreadyRunning => bail!("something already listens on {}", socket.display()),
        Started::NoPrivilege(how) => {
            bail!("the benchmark needs the helper, which needs root: {how}")
        }
    };

    let _stats = BpfStats::enable();
    let helper_pid = helper.id();
    let loads: [(&str, bool); 2] = [("openat+close", false), ("page touches", true)];
    let mut rows: Vec<Row> = Vec::new();
    for round in 0..options.rounds {
        println!(
            "bench: round {} of {} ({} s per run)",
            round + 1,
            options.rounds,
            options.seconds
        );
        for (load, touch) in loads {
            let mut traced: Vec<(&str, &[&str])> = vec![(DEFAULTS_LABEL, DEFAULT_PROBES)];
            if !touch {
                traced.push(("raw_syscalls:sys_enter counted", &[SYSCALL_COUNTS]));
            }
            for (name, probes) in traced {
                // Adjacent runs, order alternating, so drifts of the shared
                // machine hit both sides alike.
                let traced_first = round % 2 == 1;
                let mut untraced = 0.0;
                if !traced_first {
                    untraced = load_loop(options.seconds, touch)?;
                }
                let client = CountingClient::connect(&socket, probes)?;
                let before = programs_stats(helper_pid, TRACEPOINT_PROG_TYPE);
                let rate = load_loop(options.seconds, touch)?;
                let after = programs_stats(helper_pid, TRACEPOINT_PROG_TYPE);
                drop(client);
                if traced_first {
                    untraced = load_loop(options.seconds, touch)?;
                }
                let program = before
                    .zip(after)
                    .map(|((ns0, n0), (ns1, n1))| (ns1.saturating_sub(ns0), n1.saturating_sub(n0)));
                println!(
                    "bench:   {load}: untraced {untraced:.0} ops/s, {name} {rate:.0} ops/s{}",
                    program.map_or(String::new(), |(ns, n)| format!(
                        "; programs ran {n} times, {:.1} ms",
                        ns as f64 / 1e6
                    ))
                );
                let row = match rows
                    .iter_mut()
                    .position(|r| r.load == load && r.traced == name)
                {
                    Some(i) => &mut rows[i],
                    None => {
                        rows.push(Row {
                            load,
                            traced: name,
                            ..Row::default()
                        });
                        let last = rows.len() - 1;
                        &mut rows[last]
                    }
                };
                row.untraced.push(untraced);
                row.traced_rates.push(rate);
                row.pair_costs.push(1.0 - rate / untraced);
                if let Some((ns, n)) = program {
                    row.run_ns += ns;
                    row.runs += n;
                }
                row.seconds += options.seconds as f64;
            }
        }
    }
    print_table(&rows);
    println!(
        "note: default probes ({}): {}",
        DEFAULT_PROBES.len(),
        DEFAULT_PROBES.join(", ")
    );
    println!(
        "note: \"programs\" is the kernel's own account of the helper's tracepoint programs \
         (kernel.bpf_stats_enabled): their hits during the traced runs, machine-wide, and the \
         CPU time they took; it does not move with the noise of other processes"
    );
    Ok(())
}

/// One configuration's runs.
#[derive(Default)]
struct Row {
    load: &'static str,
    traced: &'static str,
    untraced: Vec<f64>,
    traced_rates: Vec<f64>,
    /// `1 − traced / untraced` of each adjacent pair.
    pair_costs: Vec<f64>,
    /// Time the programs ran, ns, and how many times, over all traced runs.
    run_ns: u64,
    runs: u64,
    /// Length of the traced runs, s.
    seconds: f64,
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| load | tracing | untraced ops/s | traced ops/s | change, median of pairs | pairs' range | \
         program hits/s | ns per hit | CPU of the programs |"
    );
    println!("|---|---|---:|---:|---:|---|---:|---:|---:|");
    for row in rows {
        let (low, high) = row
            .pair_costs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
                (lo.min(*c), hi.max(*c))
            });
        let per_hit = if row.runs > 0 {
            format!("{:.0}", row.run_ns as f64 / row.runs as f64)
        } else {
            "–".to_owned()
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:+.1} % | {:+.1} … {:+.1} % | {:.0} | {per_hit} | {:.3} % of a CPU |",
            row.load,
            row.traced,
            median_of(&row.untraced),
            median_of(&row.traced_rates),
            -100.0 * median_of(&row.pair_costs),
            -100.0 * high,
            -100.0 * low,
            row.runs as f64 / row.seconds,
            100.0 * row.run_ns as f64 / (row.seconds * 1e9),
        );
    }
    println!();
    for row in rows.iter().filter(|row| row.traced == DEFAULTS_LABEL) {
        let cpu = 100.0 * row.run_ns as f64 / (row.seconds * 1e9);
        println!(
            "target: the default probes' programs take under {TARGET_CPU_PERCENT:.0} % of a CPU \
             ({}): {} ({cpu:.2} % at {:.0} hits/s; the loop's rate changed {:+.1} %, median of pairs)",
            row.load,
            if cpu < TARGET_CPU_PERCENT {
                "met"
            } else {
                "MISSED"
            },
            row.runs as f64 / row.seconds,
            -100.0 * median_of(&row.pair_costs),
        );
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

    /// The latest cumulative hit count the helper reported; an error if it
    /// streamed events instead.
    fn hits(&mut self) -> Result<u64> {
        let mut latest = 0;
        for report in self.hits.try_iter() {
            latest = report.map_err(|message| anyhow!(message))?;
        }
        Ok(latest)
    }
}

impl Drop for CountingClient {
    fn drop(&mut self) {
        // A counted probe that streamed would make the figures wrong.
        if let Err(err) = self.hits() {
            println!("bench:   warning: {err}");
        }
    }
}
