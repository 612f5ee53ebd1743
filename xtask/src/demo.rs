//! `cargo xtask demo`: records the demo that the app opens when no helper is
//! reachable (`assets/demo.mscr`), on the real kernel, with the real helper.
//!
//! Anyone with root can rerun it to refresh the demo; the app embeds the file
//! at build time. Besides the helper it needs `mkfs.ext4` and a loop device
//! (see [`JournaledDir`]). It records everything, then writes the demo with
//! only the workload's events of the busiest memory probes
//! ([`OWN_PROCESS_ONLY`]) and prints its size and event count; check the
//! drops with `microscope info assets/demo.mscr`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use microscope_wire::{HelperMessage, Recording, RecordingWriter};

use crate::helper;
use crate::workload::Workload;
use crate::{proc, run, setup, workspace};

/// Probes recorded in the demo: the scheduler and processes, syscalls,
/// files from the VFS down to the block layer, TCP over loopback, and an
/// on-CPU profile — so every view has something to show — and what each
/// guided tour (`assets/packs/builtin/tours/`) shows: read and write
/// system calls, readahead and the page cache, bios and the device's
/// interrupts (a few dozen a second here), fsync and the journal, the
/// socket calls, mmap, page faults and page allocations. Opens and
/// softirqs are left out to keep the file small enough to ship (about
/// 2 MB); so are the events of [`OWN_PROCESS_ONLY`] from other processes.
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
    "irq:irq_handler_entry",
    "irq:irq_handler_exit",
    "sock:sock_send_length",
    "sock:sock_recv_length",
    "sock:sk_data_ready",
    "tcp:tcp_probe",
    "net:net_dev_queue",
    "net:netif_rx",
    "profile:cpu",
    "filemap:mm_filemap_add_to_page_cache",
    "exceptions:page_fault_user",
    "kmem:mm_page_alloc",
    "kmem:rss_stat",
];

/// Probes whose events the demo keeps only when they come from the
/// workload (this process): a busy machine makes 30 000–50 000 user page
/// faults, as many page allocations and ~2 000 page-cache insertions a
/// second (15 MB in 8 s), far more than a file that is shipped can hold,
/// while the tours only need the workload's (`tour-fault` touches 64 new
/// pages twice a second; `tour-read` fills the cache five times a second).
/// The recording's note says so.
const OWN_PROCESS_ONLY: &[&str] = &[
    "filemap:mm_filemap_add_to_page_cache",
    "exceptions:page_fault_user",
    "kmem:mm_page_alloc",
    "kmem:rss_stat",
];

/// Size of the journaled ext4 image the write workload runs on, in MiB.
const JOURNALED_IMAGE_MIB: u64 = 64;

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
    let journaled = JournaledDir::mount()?;
    let _workload = Workload::start_in(journaled.path())?;

    let raw = out.with_extension("mscr.all");
    let mut record = Command::new(workspace::built_binary("microscope", release));
    record.arg("record").arg("--socket").arg(&socket);
    for probe in PROBES {
        record.args(["--probe", probe]);
    }
    record
        .args(["--seconds", &options.seconds.to_string(), "--force", "-o"])
        .arg(&raw);
    proc::run_checked(
        &mut record,
        "recording the demo",
        "Its message above says why.",
    )?;
    let kept = keep_own_events(&raw, &out, std::process::id())?;
    let _ignored = fs::remove_file(&raw);
    println!(
        "demo: wrote {} ({} bytes, {} events; {} events of other processes left out)",
        out.display(),
        kept.bytes,
        kept.events,
        kept.left_out
    );
    Ok(())
}

/// What [`keep_own_events`] wrote.
struct Kept {
    bytes: u64,
    events: u64,
    left_out: u64,
}

/// Copies the recording `raw` to `out`, leaving out the events of
/// [`OWN_PROCESS_ONLY`] that do not come from process `tgid`, and says so
/// in the note.
fn keep_own_events(raw: &Path, out: &Path, tgid: u32) -> Result<Kept> {
    let recording = Recording::open(raw).with_context(|| format!("reading {}", raw.display()))?;
    let mut header = recording.header().clone();
    let filtered: Vec<_> = header
        .probes
        .iter()
        .filter(|p| OWN_PROCESS_ONLY.contains(&p.id.as_str()))
        .map(|p| p.key)
        .collect();
    header.note = format!(
        "{} · cargo xtask demo kept only the demo workload's events of {}",
        header.note,
        OWN_PROCESS_ONLY.join(", ")
    );
    let mut writer = RecordingWriter::create(out, &header, true)
        .with_context(|| format!("writing {}", out.display()))?;
    let mut left_out = 0;
    for frame in recording.frames()? {
        let mut frame = frame.with_context(|| format!("reading {}", raw.display()))?;
        if let HelperMessage::Batch(batch) = &mut frame.message {
            let before = batch.events.len();
            batch
                .events
                .retain(|e| e.tgid == tgid || !filtered.contains(&e.probe));
            left_out += (before - batch.events.len()) as u64;
        }
        writer.write(frame.recv_ns, &frame.message)?;
    }
    let finished = writer.finish()?;
    Ok(Kept {
        bytes: finished.bytes,
        events: finished.totals.events,
        left_out,
    })
}

/// A small ext4 file system with a journal, on a loop device, mounted in a
/// temporary directory until dropped. The demo's write workload runs there
/// because the file system it would use otherwise may have no journal
/// (these machines' root file system has none: `/proc/fs/jbd2/` is empty),
/// and then `fsync` commits nothing and the write tour's journal step has
/// no events.
struct JournaledDir {
    image: PathBuf,
    mount_point: PathBuf,
}

impl JournaledDir {
    /// Makes the image (in the target directory) and mounts it.
    fn mount() -> Result<Self> {
        let image = workspace::target_dir().join("demo-journaled.ext4");
        let mount_point =
            std::env::temp_dir().join(format!("microscope-demo-journal-{}", std::process::id()));
        let file = fs::File::create(&image)
            .with_context(|| format!("could not create {}", image.display()))?;
        file.set_len(JOURNALED_IMAGE_MIB << 20)
            .with_context(|| format!("could not size {}", image.display()))?;
        drop(file);
        proc::run_checked(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-O", "has_journal"])
                .arg(&image),
            "making the demo's journaled file system",
            "mkfs.ext4 comes with e2fsprogs (apt-get install e2fsprogs).",
        )?;
        fs::create_dir_all(&mount_point)
            .with_context(|| format!("could not create {}", mount_point.display()))?;
        let dir = Self { image, mount_point };
        proc::run_checked(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&dir.image)
                .arg(&dir.mount_point),
            "mounting the demo's journaled file system",
            "It needs root and loop devices (modprobe loop).",
        )?;
        if !dir.mount_point.join("lost+found").exists() {
            bail!(
                "{} is not the new file system after mounting it",
                dir.mount_point.display()
            );
        }
        Ok(dir)
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for JournaledDir {
    fn drop(&mut self) {
        // Errors leave a mount or a file behind, which the next run
        // replaces; the recording is written by then.
        let _status = Command::new("umount").arg(&self.mount_point).status();
        let _ignored = fs::remove_dir(&self.mount_point);
        let _ignored = fs::remove_file(&self.image);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::{
        Availability, Capabilities, Event, EventBatch, EventData, HelperInfo, ProbeInfo, ProbeKind,
        RecordingHeader,
    };

    fn probe(id: &str, key: u64) -> ProbeInfo {
        ProbeInfo {
            fields: Vec::new(),
            id: id.into(),
            key,
            subsystem: "test".into(),
            description: id.into(),
            kind: ProbeKind::Stream,
            availability: Availability::yes("test"),
            enabled: true,
        }
    }

    fn event(probe: u64, tgid: u32) -> Event {
        Event {
            probe,
            cpu: 0,
            ts_ns: 1_000,
            pid: tgid,
            tgid,
            comm: "test".into(),
            data: EventData::Openat {
                dfd: -100,
                filename: "/x".into(),
                flags: 0,
                mode: 0,
            },
        }
    }

    #[test]
    fn other_processes_faults_are_left_out_and_everything_else_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, out) = (dir.path().join("all.mscr"), dir.path().join("demo.mscr"));
        let yes = || Availability::yes("test");
        let header = RecordingHeader::new(
            HelperInfo {
                helper_version: "0.1.0".into(),
                kernel_release: "6.18.0-test".into(),
                capabilities: Capabilities {
                    tracefs: yes(),
                    btf: yes(),
                    kprobes: yes(),
                    fentry: yes(),
                    uprobes: yes(),
                },
            },
            vec![
                probe("exceptions:page_fault_user", 1),
                probe("sched:sched_switch", 2),
            ],
            "microscope record",
        );
        let mut writer = RecordingWriter::create(&raw, &header, false).unwrap();
        let events = vec![event(1, 42), event(1, 99), event(2, 42), event(2, 99)];
        for recv_ns in [10, 20] {
            let batch = EventBatch {
                events: events.clone(),
                stats: vec![],
            };
            writer.write(recv_ns, &HelperMessage::Batch(batch)).unwrap();
        }
        writer.finish().unwrap();

        let kept = keep_own_events(&raw, &out, 42).unwrap();
        assert_eq!((kept.events, kept.left_out), (6, 2));
        let demo = Recording::open(&out).unwrap();
        assert!(demo.header().note.starts_with("microscope record · "));
        assert!(demo.header().note.contains("exceptions:page_fault_user"));
        let mut seen = Vec::new();
        for frame in demo.frames().unwrap() {
            let frame = frame.unwrap();
            if let HelperMessage::Batch(batch) = frame.message {
                seen.extend(
                    batch
                        .events
                        .iter()
                        .map(|e| (frame.recv_ns, e.probe, e.tgid)),
                );
            }
        }
        assert_eq!(
            seen,
            vec![
                (10, 1, 42),
                (10, 2, 42),
                (10, 2, 99),
                (20, 1, 42),
                (20, 2, 42),
                (20, 2, 99)
            ]
        );
    }
}
