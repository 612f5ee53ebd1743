//! What a guided tour's step does for the student, unprivileged, so the
//! step has fresh evidence: read a file (cached or not), write and sync one,
//! start a program, a loopback TCP exchange, touch new memory.
//!
//! Each action runs on a named thread of the app (a program as its child);
//! the report carries that thread's id, so the tour can show the events of
//! exactly that thread.

use crossbeam_channel::{Receiver, bounded};
use microscope_catalogue::TourAction;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Wake;

/// Name of the thread that does an action. In a recording, the thread
/// named by `TourAction::demo_thread` (the demo's `tour-read`, `tour-hit`,
/// ...) is taken as the one that did a step's action, and any `tour-*`
/// thread for a step without one: the tour shows their events first.
pub const ACTION_THREAD: &str = "tour-action";

/// Size of the file the read actions read: 1 MiB, a few block requests.
const FILE_BYTES: usize = 1 << 20;
/// What one `read()` asks for: 256 KiB, so one call misses and waits.
const READ_BYTES: usize = 256 << 10;
/// Memory the touch action maps and touches: 8 MiB, 2 048 pages.
const TOUCH_BYTES: usize = 8 << 20;
/// A page.
const PAGE_BYTES: usize = 4096;

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionReport {
    /// The action.
    pub action: TourAction,
    /// Thread id (kernel pid) of the thread that did it.
    pub tid: u32,
    /// Process id of the program it started, for [`TourAction::RunProgram`].
    pub child_pid: Option<u32>,
    /// When it started, ns of `CLOCK_MONOTONIC` (the helper's event clock).
    pub start_ns: u64,
    /// When it ended.
    pub end_ns: u64,
    /// What happened, as a sentence, or why it failed.
    pub outcome: Result<String, String>,
}

/// Runs `action` on a thread of its own; the report arrives on the
/// returned channel, and `wake` is called when it is there.
pub fn spawn_tour_action(
    action: TourAction,
    dir: PathBuf,
    wake: Wake,
) -> std::io::Result<Receiver<ActionReport>> {
    let (tx, rx) = bounded(1);
    std::thread::Builder::new()
        .name(ACTION_THREAD.to_owned())
        .spawn(move || {
            let report = perform(action, &dir);
            // The tour may have ended meanwhile; nobody to tell then.
            let _ignored = tx.send(report);
            wake();
        })?;
    Ok(rx)
}

/// Does `action` on the calling thread, with its files in `dir`.
pub fn perform(action: TourAction, dir: &Path) -> ActionReport {
    let tid = nix::unistd::gettid().as_raw().unsigned_abs();
    let start_ns = microscope_wire::monotonic_ns();
    let mut child_pid = None;
    let outcome = match action {
        TourAction::ReadFile => read_file(dir, false),
        TourAction::ReadUncached => read_file(dir, true),
        TourAction::WriteFsync => write_fsync(dir),
        TourAction::RunProgram => run_program(&mut child_pid),
        TourAction::TcpLoopback => tcp_loopback(),
        TourAction::TouchMemory => Ok(touch_memory()),
    };
    ActionReport {
        action,
        tid,
        child_pid,
        start_ns,
        end_ns: microscope_wire::monotonic_ns(),
        outcome,
    }
}

/// Where the actions keep their files: on a disk, not in `/tmp` (often a
/// tmpfs, which has no block device to watch): `$XDG_CACHE_HOME/microscope`
/// or `~/.cache/microscope`, else the current directory.
pub fn scratch_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("microscope")
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> String {
    format!("could not {what} {}: {err}", path.display())
}

/// Reads 256 KiB of a 1 MiB file in one `read()`; `uncached` first drops
/// the file's pages from the page cache, so the read goes to the disk.
fn read_file(dir: &Path, uncached: bool) -> Result<String, String> {
    fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let path = dir.join("tour-read.bin");
    let fresh = fs::metadata(&path).map_or(true, |m| m.len() != FILE_BYTES as u64);
    if fresh || uncached {
        let mut file = File::create(&path).map_err(|e| io_error("create", &path, e))?;
        file.write_all(&vec![0x6d; FILE_BYTES])
            .map_err(|e| io_error("write", &path, e))?;
        // Written-back pages are clean, and only clean pages can be dropped.
        file.sync_all().map_err(|e| io_error("sync", &path, e))?;
        if uncached {
            nix::fcntl::posix_fadvise(
                file.as_fd(),
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            )
            .map_err(|e| format!("could not drop {} from the page cache: {e}", path.display()))?;
        }
    }
    let mut file = File::open(&path).map_err(|e| io_error("open", &path, e))?;
    let mut buffer = vec![0u8; READ_BYTES];
    let bytes = file
        .read(&mut buffer)
        .map_err(|e| io_error("read", &path, e))?;
    let on_disk = if is_tmpfs(dir) {
        " (this directory is on tmpfs, which has no disk: no block I/O to see)"
    } else {
        ""
    };
    Ok(format!(
        "read {bytes} bytes of {} in one read(){}{on_disk}",
        path.display(),
        if uncached {
            ", after dropping its pages from the cache"
        } else {
            ""
        }
    ))
}

fn is_tmpfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

/// Writes 256 KiB and `fsync`s it.
fn write_fsync(dir: &Path) -> Result<String, String> {
    fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let path = dir.join("tour-write.bin");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| io_error("create", &path, e))?;
    file.write_all(&vec![0x77; READ_BYTES])
        .map_err(|e| io_error("write", &path, e))?;
    file.sync_all().map_err(|e| io_error("fsync", &path, e))?;
    Ok(format!("wrote and fsynced 256 KiB to {}", path.display()))
}

/// Starts `/bin/true` and waits for it.
fn run_program(child_pid: &mut Option<u32>) -> Result<String, String> {
    let mut child = Command::new("true")
        .spawn()
        .map_err(|e| format!("could not start `true`: {e}"))?;
    *child_pid = Some(child.id());
    let status = child
        .wait()
        .map_err(|e| format!("could not wait for `true`: {e}"))?;
    Ok(format!(
        "started `true` (pid {}), which exited with {status}",
        child.id()
    ))
}

/// Sends 64 KiB to a listener on 127.0.0.1 and reads it back.
fn tcp_loopback() -> Result<String, String> {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("could not listen on loopback: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("could not read the loopback port: {e}"))?;
    let mut client =
        TcpStream::connect(address).map_err(|e| format!("could not connect to {address}: {e}"))?;
    let (mut server, _) = listener
        .accept()
        .map_err(|e| format!("could not accept on {address}: {e}"))?;
    let message = vec![0x42u8; 64 << 10];
    client
        .write_all(&message)
        .map_err(|e| format!("could not send over loopback: {e}"))?;
    let mut received = vec![0u8; message.len()];
    server
        .read_exact(&mut received)
        .map_err(|e| format!("could not receive over loopback: {e}"))?;
    Ok(format!(
        "sent and received {} bytes over {address}",
        received.len()
    ))
}

/// Allocates 8 MiB of fresh zeroed memory and writes one byte per page.
fn touch_memory() -> String {
    // A large zeroed allocation comes from a fresh mmap: no page is backed
    // until it is touched.
    let mut memory = vec![0u8; TOUCH_BYTES];
    for page in memory.chunks_mut(PAGE_BYTES) {
        if let Some(first) = page.first_mut() {
            *first = 1;
        }
    }
    let touched = std::hint::black_box(&memory)
        .iter()
        .step_by(PAGE_BYTES)
        .count();
    format!("touched {touched} new pages ({} MiB)", TOUCH_BYTES >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_works_unprivileged_and_names_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let tid = nix::unistd::gettid().as_raw().unsigned_abs();
        for action in TourAction::ALL {
            let report = perform(action, dir.path());
            assert_eq!(report.tid, tid);
            assert!(report.end_ns >= report.start_ns);
            let text = report.outcome.unwrap_or_else(|e| panic!("{action:?}: {e}"));
            assert!(!text.is_empty());
            assert_eq!(report.child_pid.is_some(), action == TourAction::RunProgram);
        }
        assert_eq!(
            fs::metadata(dir.path().join("tour-read.bin"))
                .unwrap()
                .len(),
            FILE_BYTES as u64
        );
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let report = perform(TourAction::ReadUncached, &file.join("sub"));
        let err = report.outcome.unwrap_err();
        assert!(err.starts_with("could not create "), "{err}");
    }

    #[test]
    fn the_thread_reports_back_and_wakes_the_ui() {
        let dir = tempfile::tempdir().unwrap();
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = woken.clone();
        let rx = spawn_tour_action(
            TourAction::ReadFile,
            dir.path().to_owned(),
            std::sync::Arc::new(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)),
        )
        .unwrap();
        let report = rx.recv().unwrap();
        assert_ne!(report.tid, nix::unistd::gettid().as_raw().unsigned_abs());
        assert!(report.outcome.is_ok());
        // `wake` runs after the send; the thread's end is the sentinel.
        while !woken.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }
}
