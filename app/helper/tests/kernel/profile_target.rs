//! The workload of the profiler's kernel tests (`profile.rs`), compiled by
//! the test itself with `rustc -O -g -C force-frame-pointers=yes`: user
//! stacks are walked by frame pointers, and DWARF names the inlined code.
//!
//! `profile_target burn SECONDS`, `profile_target sleep COUNT MS` or
//! `profile_target split HOT_THIRDS STEPS` (STEPS spin steps in all, a share
//! of HOT_THIRDS thirds of them in `microscope_hot_part`, the rest in
//! `microscope_cold_part`: a fixed amount of work, not of time). It
//! prints `ready`, waits for a line on stdin, runs the workload (`sleep`
//! then prints `slept_ns N`, the wall time of its sleeps), prints `done`
//! and waits for stdin to close, so the test can profile exactly the
//! workload and still read the process's memory map afterwards.

use std::hint::black_box;
use std::io::BufRead as _;
use std::time::{Duration, Instant};

/// Burns CPU for `seconds`. The clock is read only every million steps, so
/// nearly every sample lands in this function (or the step inlined into it).
#[unsafe(no_mangle)]
#[inline(never)]
pub fn microscope_burn_cpu(seconds: f64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut x = 1u64;
    while Instant::now() < deadline {
        for _ in 0..1_000_000 {
            x = spin_step(black_box(x));
        }
    }
    x
}

/// `steps` spin steps; the hot part of `split`.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn microscope_hot_part(steps: u64) -> u64 {
    let mut x = 3u64;
    for _ in 0..steps {
        x = spin_step(black_box(x));
    }
    x
}

/// `steps` spin steps; the cold part of `split` (another body than the hot
/// part's, so the linker cannot fold the two into one symbol).
#[unsafe(no_mangle)]
#[inline(never)]
pub fn microscope_cold_part(steps: u64) -> u64 {
    let mut x = 5u64;
    for _ in 0..steps {
        x = spin_step(black_box(x)) ^ 1;
    }
    x
}

#[inline(always)]
fn spin_step(x: u64) -> u64 {
    x.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        ^ (x >> 7)
}

/// Sleeps `count` times for `ms` ms with the `nanosleep` system call, made
/// right here so that this function is the innermost user frame (libc is
/// built without frame pointers on Debian, and a frame-pointer walk from
/// inside it would skip its caller). Returns the wall time spent in the
/// calls, in ns.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn microscope_sleep_wait(count: u32, ms: u64) -> u64 {
    let started = Instant::now();
    for _ in 0..count {
        let request: [i64; 2] = [(ms / 1000) as i64, (ms % 1000 * 1_000_000) as i64];
        // SAFETY: nanosleep(2) reads a valid timespec and, with a null
        // second argument, writes nothing.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") 35i64 => _, // SYS_nanosleep on x86_64
                in("rdi") request.as_ptr(),
                in("rsi") 0usize,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
    }
    started.elapsed().as_nanos() as u64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("ready");
    let stdin = std::io::stdin();
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    match args.get(1).map(String::as_str) {
        Some("burn") => {
            let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
            black_box(microscope_burn_cpu(seconds));
        }
        Some("split") => {
            let hot_thirds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            let steps: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
            // Rounds of 3 million steps, so both parts run all along.
            let round = 1_000_000;
            for _ in 0..steps / (3 * round) {
                black_box(microscope_hot_part(round * hot_thirds));
                black_box(microscope_cold_part(round * (3 - hot_thirds.min(3))));
            }
        }
        Some("sleep") => {
            let count = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
            let ms = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50);
            let sleeper = std::thread::Builder::new()
                .name("sleeper".to_owned())
                .spawn(move || microscope_sleep_wait(count, ms))
                .expect("spawn the sleeper thread");
            let slept_ns = sleeper.join().expect("the sleeper thread");
            println!("slept_ns {slept_ns}");
        }
        _ => {
            eprintln!(
                "usage: profile_target burn SECONDS | sleep COUNT MS | split HOT_THIRDS STEPS"
            );
            std::process::exit(2);
        }
    }
    println!("done");
    // Stay alive (and symbolizable) until the test closes stdin.
    for _ in stdin.lock().lines() {}
}
