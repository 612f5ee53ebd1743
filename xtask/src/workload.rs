//! A small, recognisable load for screenshots and the demo recording.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// Background threads that keep the traced views busy until dropped: one
/// opens `/dev/null` and spawns `true` a few times a second (syscalls,
/// fork/exec/exit, context switches), one writes and fsyncs a file (file
/// system and block I/O).
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
    }
}
