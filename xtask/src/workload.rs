//! A small, recognisable load for screenshots and the demo recording.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// Background threads that keep the traced views busy until dropped, each
/// doing one guided tour's action over and over, named as
/// `TourAction::demo_thread` says (a tour step shows that thread's events
/// first in a recording): `tour-exec` opens `/dev/null` and spawns `true`
/// a few times a second (syscalls, fork/exec/exit, context switches),
/// `tour-fault` maps and touches fresh memory (page faults), `tour-write`
/// writes and fsyncs a file (file system, journal and block I/O),
/// `tour-hit` reads a small cached file (a page-cache hit), `tour-read`
/// reads a file whose pages it has just dropped from the page cache (an
/// uncached read, down to the disk), `tour-tcp` sends over loopback TCP.
pub struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The written and synced file.
    scratch: PathBuf,
    /// The file read uncached.
    read_file: PathBuf,
    /// The small file read from the cache.
    hit_file: PathBuf,
}

impl Workload {
    /// Starts the threads, with their files in the temporary directory.
    pub fn start() -> Result<Self> {
        Self::start_in(&std::env::temp_dir())
    }

    /// Starts the threads, with the written and synced file in `write_dir`
    /// (the demo puts it on a file system with a journal, so `fsync` shows
    /// a jbd2 commit) and the file read uncached in the temporary directory
    /// (on a real disk, whose interrupt completes the read, where the
    /// demo's journaled loop device would complete it in a kernel thread
    /// from the cached image).
    pub fn start_in(write_dir: &Path) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let name = format!("microscope-workload-{}", std::process::id());
        let scratch = write_dir.join(&name);
        let read_file = std::env::temp_dir().join(&name).with_extension("read");
        let hit_file = std::env::temp_dir().join(name).with_extension("hit");
        let mut threads = Vec::new();

        let flag = Arc::clone(&stop);
        threads.push(
            thread::Builder::new()
                .name("tour-exec".to_owned())
                .spawn(move || {
                    while !flag.load(Ordering::Relaxed) {
                        for _ in 0..20 {
                            let _file = File::open("/dev/null");
                        }
                        let _status = Command::new("true").status();
                        thread::sleep(Duration::from_millis(200));
                    }
                })
                .context("could not start the workload thread")?,
        );

        let flag = Arc::clone(&stop);
        threads.push(
            thread::Builder::new()
                .name("tour-fault".to_owned())
                .spawn(move || {
                    while !flag.load(Ordering::Relaxed) {
                        touch_fresh_memory();
                        thread::sleep(Duration::from_millis(FAULT_PERIOD_MS));
                    }
                })
                .context("could not start the page-fault workload thread")?,
        );

        let flag = Arc::clone(&stop);
        let path = scratch.clone();
        threads.push(
            thread::Builder::new()
                .name("tour-write".to_owned())
                .spawn(move || {
                    let block = vec![0x5au8; 256 * 1024];
                    while !flag.load(Ordering::Relaxed) {
                        // Errors only make the load lighter; nothing to report.
                        if let Ok(mut file) = File::create(&path) {
                            for _ in 0..8 {
                                let _ = file.write_all(&block);
                            }
                            let _ = file.sync_all();
                        }
                        thread::sleep(Duration::from_millis(300));
                    }
                })
                .context("could not start the I/O workload thread")?,
        );

        let flag = Arc::clone(&stop);
        let path = hit_file.clone();
        threads.push(
            thread::Builder::new()
                .name("tour-hit".to_owned())
                .spawn(move || cached_reads(&path, &flag))
                .context("could not start the cached-read workload thread")?,
        );

        let flag = Arc::clone(&stop);
        let path = read_file.clone();
        threads.push(
            thread::Builder::new()
                .name("tour-read".to_owned())
                .spawn(move || uncached_reads(&path, &flag))
                .context("could not start the uncached-read workload thread")?,
        );

        // Loopback TCP, so the network half of the map has something to show.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("could not listen on a loopback port for the network workload")?;
        let address = listener
            .local_addr()
            .context("could not read the loopback port")?;
        listener
            .set_nonblocking(true)
            .context("could not make the loopback listener non-blocking")?;
        let flag = Arc::clone(&stop);
        threads.push(
            thread::Builder::new()
                .name("tour-tcp".to_owned())
                .spawn(move || {
                    let chunk = vec![0x42u8; 64 * 1024];
                    let mut sink = vec![0u8; 64 * 1024];
                    while !flag.load(Ordering::Relaxed) {
                        if let Ok(mut client) = std::net::TcpStream::connect(address)
                            && let Ok((mut server, _)) = listener.accept()
                        {
                            use std::io::Read as _;
                            let _ = server.set_nonblocking(false);
                            for _ in 0..4 {
                                if client.write_all(&chunk).is_err() {
                                    break;
                                }
                                let _ = server.read(&mut sink);
                            }
                        }
                        thread::sleep(Duration::from_millis(100));
                    }
                })
                .context("could not start the network workload thread")?,
        );
        Ok(Self {
            stop,
            threads,
            scratch,
            read_file,
            hit_file,
        })
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _panicked = thread.join();
        }
        let _ignored = fs::remove_file(&self.scratch);
        let _ignored = fs::remove_file(&self.read_file);
        let _ignored = fs::remove_file(&self.hit_file);
    }
}

/// Writes a 1 MiB file once, then until `stop`: drops its pages from the
/// page cache and reads 256 KiB of it in one `read()`, which misses and
/// waits for the disk, five times a second.
fn uncached_reads(path: &Path, stop: &AtomicBool) {
    use std::io::Read as _;
    use std::os::fd::AsRawFd as _;
    let Ok(mut file) = File::create(path) else {
        return;
    };
    if file.write_all(&vec![0x6d; 1 << 20]).is_err() || file.sync_all().is_err() {
        return;
    }
    drop(file);
    let mut buffer = vec![0u8; 256 << 10];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut file) = File::open(path) {
            // SAFETY: a valid open descriptor; fadvise only drops clean
            // cached pages of this file and reads no memory of ours.
            let _ =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            let _ = file.read(&mut buffer);
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Writes a 16 KiB file once, then until `stop` reads it whole five times
/// a second: after the first read its pages stay cached, so each read is
/// a page-cache hit that adds nothing to the cache.
fn cached_reads(path: &Path, stop: &AtomicBool) {
    use std::io::Read as _;
    if fs::write(path, vec![0x68; 16 << 10]).is_err() {
        return;
    }
    let mut buffer = vec![0u8; 16 << 10];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut file) = File::open(path) {
            let _ = file.read(&mut buffer);
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Pages [`touch_fresh_memory`] touches each time: 256 KiB, so 64 page
/// faults and page allocations of this thread.
const FAULT_PAGES: usize = 64;
/// How often it does, in ms: with [`FAULT_PAGES`], 128 faults a second, a
/// rate the pipeline keeps and a recording of a few seconds can hold (the
/// demo keeps only this process's faults; see `xtask/src/demo.rs`).
const FAULT_PERIOD_MS: u64 = 500;

/// Maps [`FAULT_PAGES`] pages of fresh anonymous memory with `mmap`, writes
/// one byte per page (one page fault and one page allocation each), and
/// unmaps them. `mmap` directly rather than a `Vec`: the allocator would
/// reuse memory it already has, which faults no more.
fn touch_fresh_memory() {
    const PAGE: usize = 4096;
    let bytes = FAULT_PAGES * PAGE;
    // SAFETY: a new private anonymous mapping, asked of the kernel with no
    // address hint; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return; // Only makes the load lighter; nothing to report.
    }
    for page in 0..FAULT_PAGES {
        // SAFETY: `page * PAGE` is inside the `bytes`-long writable mapping
        // just made; a volatile write so the touch is not optimised away.
        unsafe { base.cast::<u8>().add(page * PAGE).write_volatile(1) };
    }
    // SAFETY: the mapping made above, unmapped once; no reference to it
    // outlives this call.
    unsafe { libc::munmap(base, bytes) };
}
