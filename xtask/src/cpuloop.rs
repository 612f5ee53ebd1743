//! The load of `cargo xtask bench profile`: pure computation, no system
//! calls, on one pinned CPU for a fixed time — what a profiler's sampling
//! interrupts slow down and nothing else does.
//!
//! It runs as a child process (`cargo xtask __cpuloop`) so that it can be
//! pinned to a CPU and so that its pid is its own.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;

/// Options of the hidden `__cpuloop` subcommand.
#[derive(Debug, Args)]
pub struct Options {
    /// How long to loop.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// The CPU to pin the loop to.
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
}

/// Steps of the generator per operation: about a microsecond of work, so
/// the clock read between operations costs nothing measurable.
const STEPS_PER_OP: u32 = 1000;

/// Loops and prints `ops_per_sec <N>` on stdout.
pub fn run(options: &Options) -> Result<()> {
    crate::openloop::pin_to_cpu(options.cpu)?;
    let duration = Duration::try_from_secs_f64(options.seconds)
        .context("--seconds must be a positive number")?;
    let started = Instant::now();
    let mut ops: u64 = 0;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while started.elapsed() < duration {
        for _ in 0..STEPS_PER_OP {
            // xorshift64: a dependency chain the CPU cannot skip.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state = black_box(state);
        }
        ops += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("ops_per_sec {:.0}", ops as f64 / elapsed);
    Ok(())
}
