//! What tracing costs: the kernel's run time of each probe's BPF programs,
//! events, ring-buffer fill and drops per probe, and the helper's own CPU
//! and memory.
//!
//! The kernel counts `run_time_ns` and `run_cnt` of every BPF program only
//! while its run-time statistics are on (`BPF_ENABLE_STATS`, the same
//! counters `bpftool prog show` and bpftop print). Keeping them on costs
//! every BPF program on the machine two clock reads per run, so the helper
//! turns them on only while someone looks, as bpftop does: the hub holds
//! one [`RunTimeStats`] while at least one client (or the metrics endpoint)
//! watches, and drops it when the last one stops. The kernel counts the
//! holders of such file descriptors itself, so another tool's own
//! statistics are never turned off by us.
//!
//! Work per report is bounded by what is attached (the registry's and each
//! machinery's limits), never by how many clients watch or how often they
//! ask: one [`CostMeter::report`] per interval serves every watcher.

use microscope_wire::{Availability, CostReport, HelperCost, ProbeCost, ProbeKey, ProgramCost};
use std::collections::HashMap;
use std::os::fd::OwnedFd;

/// One BPF program's cumulative run-time statistics, as the kernel keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramRun {
    /// Its name in the object.
    pub name: String,
    /// The kernel's program id.
    pub id: u32,
    /// Cumulative `run_time_ns`.
    pub run_time_ns: u64,
    /// Cumulative `run_cnt`.
    pub run_count: u64,
}

/// The statistics of the loaded programs among `programs` whose name
/// `wanted` accepts (one `BPF_OBJ_GET_INFO_BY_FD` each).
pub fn program_runs<'a>(
    programs: impl Iterator<Item = (&'a str, &'a aya::programs::Program)>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<ProgramRun> {
    programs
        .filter(|(name, _)| wanted(name))
        .filter_map(|(name, program)| {
            let info = program.info().ok()?;
            Some(ProgramRun {
                name: name.to_owned(),
                id: info.id(),
                run_time_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
                run_count: info.run_count(),
            })
        })
        .collect()
}

/// The kernel's BPF run-time statistics, on while this lives.
#[derive(Debug)]
pub struct RunTimeStats {
    /// Closing it tells the kernel we no longer need the statistics.
    _fd: OwnedFd,
}

impl RunTimeStats {
    /// Turns the statistics on (`BPF_ENABLE_STATS`, Linux 5.8). An error
    /// is a sentence.
    pub fn enable() -> Result<Self, String> {
        aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .map(|fd| Self { _fd: fd })
            .map_err(|err| {
                format!(
                    "the kernel would not turn on BPF run-time statistics ({err}); they need \
                     Linux 5.8 or newer and CAP_SYS_ADMIN, so run times are not shown"
                )
            })
    }
}

/// What the hub knows of one probe at report time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeSample {
    /// The probe.
    pub probe: ProbeKey,
    /// Its programs' cumulative statistics.
    pub programs: Vec<ProgramRun>,
    /// Records streamed since the previous report.
    pub events: u64,
    /// Cumulative kernel drops.
    pub kernel_drops: u64,
    /// Size of the ring buffer it writes into (0: none).
    pub ring_bytes: u64,
    /// Most bytes waiting in it at one drain since the previous report.
    pub ring_peak_bytes: u64,
}

/// Turns cumulative samples into per-interval figures, and holds the
/// kernel's statistics on while it is [`start`](Self::start)ed.
#[derive(Debug, Default)]
pub struct CostMeter {
    /// `Some` while someone watches: the statistics (or why they are off).
    stats: Option<Result<RunTimeStats, String>>,
    last_ts_ns: u64,
    last_cpu_ns: u64,
    /// Cumulative (run time, runs) of each program at the previous report.
    last_runs: HashMap<u32, (u64, u64)>,
    /// Cumulative drops of each probe at the previous report.
    last_drops: HashMap<ProbeKey, u64>,
}

impl CostMeter {
    /// Whether the meter runs (someone watches).
    pub fn is_running(&self) -> bool {
        self.stats.is_some()
    }

    /// Turns the statistics on and takes `samples` as the baseline of the
    /// first interval. Returns whether run times are available, and why not.
    pub fn start(&mut self, now_ns: u64, samples: &[ProbeSample]) -> Availability {
        if self.stats.is_none() {
            self.stats = Some(RunTimeStats::enable());
            self.last_ts_ns = now_ns;
            self.last_cpu_ns = helper_cpu_ns();
            self.last_runs.clear();
            self.last_drops.clear();
            self.remember(samples);
        }
        self.run_times()
    }

    /// Turns the statistics off (when nobody else holds them).
    pub fn stop(&mut self) {
        self.stats = None;
    }

    /// Whether run times are measured, and if not, why.
    pub fn run_times(&self) -> Availability {
        match &self.stats {
            Some(Ok(_)) => Availability::yes("BPF run-time statistics are on while you watch"),
            Some(Err(reason)) => Availability::no(reason.clone()),
            None => Availability::no("nobody watches, so BPF run-time statistics are off"),
        }
    }

    /// The figures of the interval since the previous report (or the start).
    pub fn report(&mut self, now_ns: u64, cpus: u32, samples: &[ProbeSample]) -> CostReport {
        let probes = samples.iter().map(|s| self.probe_cost(s)).collect();
        let cpu_ns = helper_cpu_ns();
        let report = CostReport {
            ts_ns: now_ns,
            interval_ns: now_ns.saturating_sub(self.last_ts_ns),
            cpus,
            run_times: self.run_times(),
            probes,
            helper: HelperCost {
                interval_cpu_ns: cpu_ns.saturating_sub(self.last_cpu_ns),
                cpu_ns,
                rss_bytes: helper_rss_bytes(),
            },
        };
        self.last_ts_ns = now_ns;
        self.last_cpu_ns = cpu_ns;
        self.remember(samples);
        report
    }

    fn probe_cost(&self, sample: &ProbeSample) -> ProbeCost {
        let programs = sample
            .programs
            .iter()
            .map(|run| {
                // A program first seen now (attached since) starts from here.
                let (time, count) = self
                    .last_runs
                    .get(&run.id)
                    .copied()
                    .unwrap_or((run.run_time_ns, run.run_count));
                ProgramCost {
                    name: run.name.clone(),
                    id: run.id,
                    run_time_ns: run.run_time_ns,
                    run_count: run.run_count,
                    interval_run_time_ns: run.run_time_ns.saturating_sub(time),
                    interval_run_count: run.run_count.saturating_sub(count),
                }
            })
            .collect();
        let drops_before = self
            .last_drops
            .get(&sample.probe)
            .copied()
            .unwrap_or(sample.kernel_drops);
        ProbeCost {
            probe: sample.probe,
            programs,
            events: sample.events,
            kernel_drops: sample.kernel_drops.saturating_sub(drops_before),
            ring_bytes: sample.ring_bytes,
            ring_peak_bytes: sample.ring_peak_bytes,
        }
    }

    /// Keeps the cumulative figures of `samples` as the next baseline
    /// (only those of programs and probes still there: bounded by them).
    fn remember(&mut self, samples: &[ProbeSample]) {
        self.last_runs = samples
            .iter()
            .flat_map(|s| s.programs.iter())
            .map(|r| (r.id, (r.run_time_ns, r.run_count)))
            .collect();
        self.last_drops = samples.iter().map(|s| (s.probe, s.kernel_drops)).collect();
    }
}

/// CPU time the helper used since it started (user + system, every
/// thread), ns.
pub fn helper_cpu_ns() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return 0;
    };
    let ns = |tv: nix::sys::time::TimeVal| {
        u64::try_from(tv.tv_sec())
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(
                u64::try_from(tv.tv_usec())
                    .unwrap_or(0)
                    .saturating_mul(1000),
            )
    };
    ns(usage.user_time()).saturating_add(ns(usage.system_time()))
}

/// The helper's resident memory, bytes (`/proc/self/statm`).
pub fn helper_rss_bytes() -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages.saturating_mul(page))
}

/// Online CPUs (1 when they cannot be read).
pub fn online_cpus() -> u32 {
    aya::util::online_cpus()
        .map(|cpus| u32::try_from(cpus.len()).unwrap_or(u32::MAX))
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(probe: ProbeKey, id: u32, time: u64, count: u64, drops: u64) -> ProbeSample {
        ProbeSample {
            probe,
            programs: vec![ProgramRun {
                name: "p".into(),
                id,
                run_time_ns: time,
                run_count: count,
            }],
            events: count,
            kernel_drops: drops,
            ring_bytes: 0,
            ring_peak_bytes: 0,
        }
    }

    #[test]
    fn intervals_are_differences_from_the_previous_report() {
        let mut meter = CostMeter::default();
        meter.start(1_000, &[sample(1, 7, 100, 10, 2)]);
        assert!(meter.is_running());
        let report = meter.report(1_000_001_000, 2, &[sample(1, 7, 600, 20, 5)]);
        assert_eq!(report.interval_ns, 1_000_000_000);
        let cost = &report.probes[0];
        assert_eq!(cost.run_time_ns(), 500);
        assert_eq!(cost.run_count(), 10);
        assert_eq!(cost.ns_per_run(), Some(50.0));
        assert_eq!(cost.kernel_drops, 3);
        assert_eq!(cost.programs[0].run_time_ns, 600);
        assert!((report.cpu_share(500) - 5e-7).abs() < 1e-12);
        assert!((report.per_sec(10) - 10.0).abs() < 1e-9);
        // A program attached since the previous report starts from zero.
        let report = meter.report(
            2_000_001_000,
            2,
            &[sample(1, 7, 600, 20, 5), sample(2, 9, 50, 5, 0)],
        );
        assert_eq!(report.probes[0].run_count(), 0);
        assert_eq!(report.probes[0].ns_per_run(), None);
        assert_eq!(report.probes[1].run_count(), 0);
        let report = meter.report(3_000_001_000, 2, &[sample(2, 9, 80, 8, 0)]);
        assert_eq!(report.probes[0].run_time_ns(), 30);
        // The baseline only keeps what is still there.
        assert_eq!(meter.last_runs.len(), 1);
        meter.stop();
        assert!(!meter.is_running());
        assert!(!meter.run_times().available);
    }

    #[test]
    fn the_helper_measures_itself() {
        assert!(helper_rss_bytes() > 0);
        let before = helper_cpu_ns();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(helper_cpu_ns() >= before);
        assert!(online_cpus() >= 1);
    }
}
