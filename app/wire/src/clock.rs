//! The clock of the helper's times, read safely.

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds of `CLOCK_MONOTONIC`: the clock of `bpf_ktime_get_ns`, so of
/// every `ts_ns`, `start_ns` and `end_ns` the helper sends (it runs on this
/// machine). std's `Instant` reads the same clock but does not expose it.
/// 0 if the clock cannot be read, which Linux never refuses.
pub fn monotonic_ns() -> u64 {
    clock_ns(ClockId::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread in ns (`CLOCK_THREAD_CPUTIME_ID`), for
/// benchmarks that must not count time the thread waited; std has no
/// thread CPU time. 0 if the clock cannot be read.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

fn clock_ns(clock: ClockId) -> u64 {
    clock_gettime(clock).map_or(0, |time| {
        let secs = u64::try_from(time.tv_sec()).unwrap_or(0);
        let nanos = u64::try_from(time.tv_nsec()).unwrap_or(0);
        secs.saturating_mul(1_000_000_000).saturating_add(nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_advance() {
        let (a, b) = (monotonic_ns(), monotonic_ns());
        assert!(a > 0 && b >= a);
        let before = thread_cpu_ns();
        // Burn a little CPU on this thread; the result is used so the loop stays.
        let sum: u64 = (0..200_000u64).map(std::hint::black_box).sum();
        assert!(sum > 0);
        assert!(thread_cpu_ns() > before);
    }
}
