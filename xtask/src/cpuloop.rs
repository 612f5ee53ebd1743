//! The load of `cargo xtask bench profile`: pure computation, no system
//! calls, on one pinned CPU for a fixed time — what a profiler's sampling
//! interrupts slow down and nothing else does.
//!
//! It runs as a child process (`cargo xtask __cpuloop`) so that it can be
//! pinned to a CPU and so that its pid is its own.
//!
//! Besides ops per second of wall time it prints ops per second of its own
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`). On a machine shared with other
//! work the wall rate mostly measures how often the loop got the CPU; the
//! CPU-time rate does not, yet still pays for interrupts that hit the loop
//! (without `CONFIG_IRQ_TIME_ACCOUNTING`, as on Debian's kernels, their
//! time is charged to the task they interrupt).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use microscope_wire::thread_cpu_ns;

/// Options of the hidden `__cpuloop` subcommand.
#[derive(Debug, Args)]
pub struct Options {
    /// How long to loop.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// The CPU to pin the loop to.
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
    /// Instead of computing, read the clock in a tight loop and account
    /// the gaps: time taken from the loop by interrupts.
    #[arg(long)]
    pub gaps: bool,
}

/// A gap longer than this between two clock reads (normally ~30 ns apart)
/// is an interruption.
const MIN_GAP: Duration = Duration::from_micros(1);
/// Gaps longer than this are the scheduler running another task, not an
/// interrupt handler; they are counted apart.
const MAX_INTERRUPT: Duration = Duration::from_micros(500);

/// Steps of the generator per operation: about a microsecond of work, so
/// the clock read between operations costs nothing measurable.
const STEPS_PER_OP: u32 = 1000;

/// Loops and prints `ops_per_sec <N>` and `ops_per_cpu_sec <N>` on stdout
/// (with `--gaps`: `interrupts_per_sec <N>` and `interrupted_us_per_sec <N>`).
pub fn run(options: &Options) -> Result<()> {
    crate::openloop::pin_to_cpu(options.cpu)?;
    let duration = Duration::try_from_secs_f64(options.seconds)
        .context("--seconds must be a positive number")?;
    if options.gaps {
        gaps(duration);
        return Ok(());
    }
    let cpu_started = thread_cpu_ns();
    let started = Instant::now();
    let mut ops: u64 = 0;
    // A seeded generator: each step depends on the last, a chain the CPU
    // cannot skip or vectorise.
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    while started.elapsed() < duration {
        for _ in 0..STEPS_PER_OP {
            black_box(rng.u64(..));
        }
        ops += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_seconds = (thread_cpu_ns() - cpu_started) as f64 / 1e9;
    println!("ops_per_sec {:.0}", ops as f64 / elapsed);
    println!("ops_per_cpu_sec {:.0}", ops as f64 / cpu_seconds);
    Ok(())
}

/// Reads the clock back to back for `duration` and reports how often and
/// for how long something else ran on this CPU for less than
/// [`MAX_INTERRUPT`]: interrupt handlers, such as a profiler's sampling.
fn gaps(duration: Duration) {
    let started = Instant::now();
    let mut previous = started;
    let (mut interrupts, mut interrupted) = (0u64, Duration::ZERO);
    loop {
        let now = Instant::now();
        let gap = now - previous;
        previous = now;
        if gap >= MIN_GAP && gap < MAX_INTERRUPT {
            interrupts += 1;
            interrupted += gap;
        }
        if now - started >= duration {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("interrupts_per_sec {:.1}", interrupts as f64 / seconds);
    println!(
        "interrupted_us_per_sec {:.1}",
        interrupted.as_secs_f64() * 1e6 / seconds
    );
}
