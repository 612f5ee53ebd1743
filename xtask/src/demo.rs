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
/// on-CPU profile — so every view has something to show — and what each
/// guided tour (`assets/packs/builtin/tours/`) shows: read and write
/// system calls, readahead and the page cache, bios, fsync and the journal,
/// the socket calls, mmap. Page faults, page-cache insertions, opens, page
/// allocations and softirqs are left out to keep the file small enough to
/// ship (about 2 MB): a busy machine makes ~50 000 user page faults and
/// ~2 000 page-cache insertions a second (15 MB and 0.7 MB in 8 s), and the
/// faults overflow the ring buffer; the tour steps that use them say "not
/// in this recording".
const PROBES: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_wakeup",
    "sched:sched_wakeup_new",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
    "sched:sched_process_exit",
    "sched:sched_process_wait",
    "syscalls:sys_enter_read",
    "syscalls:sys_exit_read",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_fsync",
    "syscalls:sys_exit_fsync",
    "syscalls:sys_enter_mmap",
    "raw_syscalls:sys_enter",
    "syscalls:latency",
    "readahead:page_cache_sync_ra",
    "ext4:ext4_da_write_begin",
    "ext4:ext4_sync_file_enter",
    "ext4:ext4_sync_file_exit",
    "jbd2:jbd2_start_commit",
    "jbd2:jbd2_run_stats",
    "writeback:writeback_dirty_folio",
    "block:block_bio_queue",
    "block:block_rq_issue",
    "block:block_rq_complete",
    "sock:sock_send_length",
    "sock:sock_recv_length",
    "sock:sk_data_ready",
    "tcp:tcp_probe",
    "net:net_dev_queue",
    "net:netif_rx",
    "profile:cpu",
];

/// Options of `cargo xtask demo`.
#[derive(Debug, Args)]
pub struct Options {
    /// How long to record.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Where to write it (default: assets/demo.mscr in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Build and run the dev profile instead of release (quicker to build on
    /// a busy machine; the recording is the same kind).
    #[arg(long)]
    dev: bool,
    /// Do not run `cargo xtask setup` first (the tools are installed, and
    /// another setup may be running on this machine).
    #[arg(long)]
    skip_setup: bool,
}

/// Runs `cargo xtask demo`.
pub fn run(options: &Options) -> Result<()> {
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| workspace::root().join("assets/demo.mscr"));
    let release = !options.dev;
    if !options.skip_setup {
        setup::run()?;
    }
    run::build(release)?;
    proc::survive_ctrl_c();

    let socket = std::env::temp_dir().join(format!("microscope-demo-{}.sock", std::process::id()));
    let _helper = helper::start_own_built(&socket, "recording the demo", release)?;
    let _workload = Workload::start()?;

    let mut record = Command::new(workspace::built_binary("microscope", release));
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
