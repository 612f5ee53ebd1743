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
