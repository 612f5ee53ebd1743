//! `cargo xtask demo`: records the demo that the app opens when no helper is
//! reachable (`assets/demo.mscr`), on the real kernel, with the real helper.
//!
//! Anyone with root can rerun it to refresh the demo; the app embeds the file
//! at build time.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use clap::Args;

use crate::helper;
use crate::workload::Workload;
use crate::{proc, run, setup, workspace};

/// Probes recorded in the demo: the scheduler and processes, syscalls,
/// files from the VFS down to the block layer, TCP over loopback, and an
/// on-CPU profile — so every view has something to show. High-rate
/// tracepoints (page allocations, softirqs) are left out to keep the file
/// small enough to ship.
const PROBES: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_wakeup",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
    "sched:sched_process_exit",
    "syscalls:sys_enter_openat",
    "raw_syscalls:sys_enter",
    "syscalls:latency",
    "ext4:ext4_da_write_begin",
    "writeback:writeback_dirty_folio",
    "block:block_rq_issue",
    "block:block_rq_complete",
    "tcp:tcp_probe",
    "net:net_dev_queue",
    "profile:cpu",
];

/// Options of `cargo xtask demo`.
#[derive(Debug, Args)]
pub struct Options {
    /// How long to record.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Where to write it (default: assets/demo.mscr in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `cargo xtask demo`.
pub fn run(options: &Options) -> Result<()> {
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| workspace::root().join("assets/demo.mscr"));
    setup::run()?;
    run::build(true)?;
    proc::survive_ctrl_c();

    let socket = std::env::temp_dir().join(format!("microscope-demo-{}.sock", std::process::id()));
    let _helper = helper::start_own(&socket, "recording the demo")?;
    let _workload = Workload::start()?;

    let mut record = Command::new(workspace::built_binary("microscope", true));
    record.arg("record").arg("--socket").arg(&socket);
    for probe in PROBES {
        record.args(["--probe", probe]);
    }
    record
        .args(["--seconds", &options.seconds.to_string(), "--force", "-o"])
        .arg(&out);
    proc::run_checked(
        &mut record,
        "recording the demo",
        "Its message above says why.",
    )?;
    println!("demo: wrote {}", out.display());
    Ok(())
}
