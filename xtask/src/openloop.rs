//! The load generator of `cargo xtask bench`: `openat("/dev/null")` plus
//! `close` as fast as possible on one pinned CPU, for a fixed time.
//!
//! It runs as a child process (`cargo xtask __openloop`) so that it can be
//! pinned to a CPU and so that its pid is its own.

use std::ffi::CStr;
use std::io;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;

/// Options of the hidden `__openloop` subcommand.
#[derive(Debug, Args)]
pub struct Options {
    /// How long to loop.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// The CPU to pin the loop to.
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
    /// Instead of opening files, map 64 fresh pages, write a byte to each
    /// (one page fault per page) and unmap them; an op is a page touched.
    #[arg(long)]
    pub touch_pages: bool,
}

/// Pages mapped, touched and unmapped per round of `--touch-pages`.
const PAGES_PER_ROUND: usize = 64;

const DEV_NULL: &CStr = c"/dev/null";

/// Loops and prints `ops_per_sec <N>` on stdout.
pub fn run(options: &Options) -> Result<()> {
    pin_to_cpu(options.cpu)?;
    let duration = Duration::try_from_secs_f64(options.seconds)
        .context("--seconds must be a positive number")?;
    if options.touch_pages {
        return touch_pages(duration);
    }
    let started = Instant::now();
    let mut ops: u64 = 0;
    loop {
        // Reading the clock every iteration would add a vDSO call per op;
        // every 256 keeps the overshoot well under a millisecond.
        for _ in 0..256 {
            // SAFETY: DEV_NULL is a valid NUL-terminated path.
            let fd = unsafe { libc::open(DEV_NULL.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                bail!("open(/dev/null) failed: {}", io::Error::last_os_error());
            }
            // SAFETY: `fd` was just opened by us and is closed exactly once.
            unsafe { libc::close(fd) };
        }
        ops += 256;
        if started.elapsed() >= duration {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = ops as f64 / elapsed;
    println!("ops_per_sec {rate:.0}");
    Ok(())
}

/// The `--touch-pages` loop: page faults on fresh anonymous memory.
fn touch_pages(duration: Duration) -> Result<()> {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let len = page * PAGES_PER_ROUND;
    let started = Instant::now();
    let mut ops: u64 = 0;
    while started.elapsed() < duration {
        // SAFETY: a fresh private anonymous mapping; nothing else uses it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            bail!("mmap failed: {}", io::Error::last_os_error());
        }
        for i in 0..PAGES_PER_ROUND {
            // SAFETY: `i * page` is inside the `len` bytes just mapped
            // writable; volatile so the write (and its fault) happens.
            unsafe { base.cast::<u8>().add(i * page).write_volatile(1) };
        }
        // SAFETY: unmaps exactly the mapping made above.
        unsafe { libc::munmap(base, len) };
        ops += PAGES_PER_ROUND as u64;
    }
    let rate = ops as f64 / started.elapsed().as_secs_f64();
    println!("ops_per_sec {rate:.0}");
    Ok(())
}

/// Pins this process to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes inside `set`; `cpu` is bounds-checked by it.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is us.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        bail!(
            "could not pin the loop to CPU {cpu}: {}",
            io::Error::last_os_error()
        );
    }
    Ok(())
}
