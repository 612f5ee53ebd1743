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

/// Background threads that keep the traced views busy until dropped: one
/// opens `/dev/null`, spawns `true` and touches fresh memory a few times a
/// second (syscalls, fork/exec/exit, context switches, page faults), one
/// writes and fsyncs a file (file system and block I/O), one reads a file
/// whose pages it has just dropped from the page cache (`tour-read`: an
/// uncached read, down to the disk, for the `read()` tour), one sends over
/// loopback TCP.
pub struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    scratch: PathBuf,
}

impl Workload {
    /// Starts the threads.
    pub fn start() -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let scratch =
            std::env::temp_dir().join(format!("microscope-workload-{}", std::process::id()));
        let mut threads = Vec::new();

        let flag = Arc::clone(&stop);
        threads.push(
            thread::Builder::new()
                .name("workload-procs".to_owned())
                .spawn(move || {
                    while !flag.load(Ordering::Relaxed) {
                        for _ in 0..20 {
                            let _file = File::open("/dev/null");
                        }
                        let _status = Command::new("true").status();
                        touch_fresh_memory();
                        thread::sleep(Duration::from_millis(200));
                    }
                })
                .context("could not start the workload thread")?,
        );

        let flag = Arc::clone(&stop);
        let path = scratch.clone();
        threads.push(
            thread::Builder::new()
                .name("workload-io".to_owned())
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
        let path = scratch.with_extension("read");
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
                .name("workload-net".to_owned())
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
        let _ignored = fs::remove_file(self.scratch.with_extension("read"));
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

/// Maps 4 MiB of fresh memory and writes one byte per page: 1 024 page
/// faults.
fn touch_fresh_memory() {
    let mut memory = vec![0u8; 4 << 20];
    for page in memory.chunks_mut(4096) {
        if let Some(first) = page.first_mut() {
            *first = 1;
        }
    }
    std::hint::black_box(&memory);
}
