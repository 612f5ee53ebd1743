//! What tracing costs, as the app keeps it: the helper's cost reports
//! turned into per-probe figures a person reads (run time per event, share
//! of a CPU, events per second, ring-buffer fill, drops), with a short
//! history for the Cost view's plot.

use crate::units::format_rate;
use microscope_wire::ProbeKey;
use std::collections::VecDeque;

/// Reports kept for the history plot: two minutes at one a second.
pub const COST_HISTORY: usize = 120;

/// What one probe cost over one report's interval.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeCostFigures {
    /// The probe.
    pub key: ProbeKey,
    /// Mean BPF run time per program run, ns (`None`: it did not run, or
    /// run times are off).
    pub ns_per_run: Option<f64>,
    /// BPF run time over the interval as a share of one CPU (0.01 = 1 %).
    pub cpu_share: f64,
    /// Program runs per second (every hit, kept or filtered out).
    pub runs_per_sec: f64,
    /// Records streamed per second.
    pub events_per_sec: f64,
    /// Records lost in the kernel in the interval.
    pub kernel_drops: u64,
    /// Peak fill of its ring buffer (0–1), if it streams.
    pub ring_fill: Option<f64>,
    /// Its programs: name, kernel id.
    pub programs: Vec<(String, u32)>,
}

impl ProbeCostFigures {
    /// One line: `412 ns/run · 0.9 % of a CPU · 21k runs/s`.
    pub fn summary(&self, run_times: bool) -> String {
        let mut parts = Vec::new();
        if run_times {
            match self.ns_per_run {
                Some(ns) => parts.push(format!("{} ns/run", format_ns(ns))),
                None => parts.push("no runs".to_owned()),
            }
            parts.push(format!("{} of a CPU", format_share(self.cpu_share)));
            parts.push(format!("{} runs/s", format_rate(self.runs_per_sec)));
        }
        if self.ring_fill.is_some() || self.events_per_sec > 0.0 {
            parts.push(format!("{} events/s", format_rate(self.events_per_sec)));
        }
        if let Some(fill) = self.ring_fill {
            parts.push(format!("ring {}", format_share(fill)));
        }
        if self.kernel_drops > 0 {
            parts.push(format!("{} dropped", self.kernel_drops));
        }
        parts.join(" · ")
    }
}

/// One report, in the app's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct CostSnapshot {
    /// When it arrived, seconds on the timeline's axis.
    pub at_secs: f64,
    /// Whether BPF run times were measured; if not, why.
    pub run_times: Result<(), String>,
    /// Every attached probe.
    pub probes: Vec<ProbeCostFigures>,
    /// The helper's CPU use as a share of one CPU.
    pub helper_cpu_share: f64,
    /// The helper's resident memory, bytes.
    pub helper_rss_bytes: u64,
    /// Online CPUs.
    pub cpus: u32,
}

impl CostSnapshot {
    /// Converts a wire report that arrived at `at_secs`.
    pub fn from_report(report: &microscope_wire::CostReport, at_secs: f64) -> Self {
        let probes = report
            .probes
            .iter()
            .map(|p| ProbeCostFigures {
                key: p.probe,
                ns_per_run: p.ns_per_run(),
                cpu_share: report.cpu_share(p.run_time_ns()),
                runs_per_sec: report.per_sec(p.run_count()),
                events_per_sec: report.per_sec(p.events),
                kernel_drops: p.kernel_drops,
                ring_fill: (p.ring_bytes > 0)
                    .then(|| (p.ring_peak_bytes as f64 / p.ring_bytes as f64).min(1.0)),
                programs: p.programs.iter().map(|g| (g.name.clone(), g.id)).collect(),
            })
            .collect();
        Self {
            at_secs,
            run_times: if report.run_times.available {
                Ok(())
            } else {
                Err(report.run_times.reason.clone())
            },
            probes,
            helper_cpu_share: report.cpu_share(report.helper.interval_cpu_ns),
            helper_rss_bytes: report.helper.rss_bytes,
            cpus: report.cpus,
        }
    }

    /// The figures of probe `key`, if it was attached.
    pub fn probe(&self, key: ProbeKey) -> Option<&ProbeCostFigures> {
        self.probes.iter().find(|p| p.key == key)
    }

    /// All probes' BPF run time together, as a share of one CPU.
    pub fn total_cpu_share(&self) -> f64 {
        self.probes.iter().map(|p| p.cpu_share).sum()
    }

    /// The helper's line: `helper: 2.1 % of a CPU, 48 MiB`.
    pub fn helper_summary(&self) -> String {
        format!(
            "helper: {} of a CPU, {} resident",
            format_share(self.helper_cpu_share),
            format_mib(self.helper_rss_bytes)
        )
    }
}

/// The latest cost reports, oldest first.
#[derive(Clone, Debug, Default)]
pub struct CostHistory {
    snapshots: VecDeque<CostSnapshot>,
    /// The helper's answer to the last watch request: watching, and
    /// whether run times are measured (or why not).
    pub watch: Option<(bool, Result<(), String>)>,
}

impl CostHistory {
    /// Keeps a new report, dropping the oldest past [`COST_HISTORY`].
    pub fn push(&mut self, snapshot: CostSnapshot) {
        if self.snapshots.len() >= COST_HISTORY {
            self.snapshots.pop_front();
        }
        self.snapshots.push_back(snapshot);
    }

    /// The newest report.
    pub fn latest(&self) -> Option<&CostSnapshot> {
        self.snapshots.back()
    }

    /// Every kept report, oldest first.
    pub fn snapshots(&self) -> impl Iterator<Item = &CostSnapshot> {
        self.snapshots.iter()
    }

    /// Forgets every report (a new connection, a replay).
    pub fn clear(&mut self) {
        self.snapshots.clear();
    }
}

/// A share as a percentage a person reads: `0.42 %`, `12 %`, `< 0.01 %`.
pub fn format_share(share: f64) -> String {
    let pct = share * 100.0;
    if pct <= 0.0 {
        "0 %".to_owned()
    } else if pct < 0.01 {
        "< 0.01 %".to_owned()
    } else if pct < 10.0 {
        format!("{pct:.2} %")
    } else {
        format!("{pct:.0} %")
    }
}

/// Bytes in MiB: `48.0 MiB`.
pub fn format_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Nanoseconds per run with a sensible precision: `87`, `1.2k`.
fn format_ns(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{ns:.0}")
    } else {
        format_rate(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::{Availability, CostReport, HelperCost, ProbeCost, ProgramCost};

    fn report() -> CostReport {
        CostReport {
            ts_ns: 5_000_000_000,
            interval_ns: 1_000_000_000,
            cpus: 2,
            run_times: Availability::yes("on"),
            probes: vec![ProbeCost {
                probe: 3,
                programs: vec![ProgramCost {
                    name: "sys_enter_openat".into(),
                    id: 41,
                    run_time_ns: 9_000_000,
                    run_count: 90_000,
                    interval_run_time_ns: 5_000_000,
                    interval_run_count: 20_000,
                }],
                events: 19_000,
                kernel_drops: 7,
                ring_bytes: 16 << 20,
                ring_peak_bytes: 4 << 20,
            }],
            helper: HelperCost {
                interval_cpu_ns: 30_000_000,
                cpu_ns: 1_000_000_000,
                rss_bytes: 48 << 20,
            },
        }
    }

    #[test]
    fn a_report_becomes_figures_a_person_reads() {
        let snapshot = CostSnapshot::from_report(&report(), 4.0);
        let probe = snapshot.probe(3).unwrap();
        assert_eq!(probe.ns_per_run, Some(250.0));
        assert!((probe.cpu_share - 0.005).abs() < 1e-12);
        assert!((probe.events_per_sec - 19_000.0).abs() < 1e-9);
        assert_eq!(probe.ring_fill, Some(0.25));
        assert_eq!(
            probe.summary(true),
            "250 ns/run · 0.50 % of a CPU · 20k runs/s · 19k events/s · ring 25 % · 7 dropped"
        );
        assert_eq!(
            snapshot.helper_summary(),
            "helper: 3.00 % of a CPU, 48.0 MiB resident"
        );
        assert!(snapshot.probe(4).is_none());
    }

    #[test]
    fn without_run_times_only_events_are_shown() {
        let mut wire = report();
        wire.run_times = Availability::no("old kernel");
        wire.interval_ns = 0;
        let snapshot = CostSnapshot::from_report(&wire, 1.0);
        assert_eq!(snapshot.run_times, Err("old kernel".to_owned()));
        assert_eq!(snapshot.probe(3).unwrap().cpu_share, 0.0);
        assert_eq!(
            snapshot.probe(3).unwrap().summary(false),
            "0 events/s · ring 25 % · 7 dropped"
        );
    }

    #[test]
    fn the_history_is_bounded() {
        let mut history = CostHistory::default();
        assert!(history.latest().is_none());
        for i in 0..COST_HISTORY + 5 {
            history.push(CostSnapshot::from_report(&report(), i as f64));
        }
        assert_eq!(history.snapshots().count(), COST_HISTORY);
        assert_eq!(history.snapshots().next().unwrap().at_secs, 5.0);
        history.clear();
        assert!(history.latest().is_none());
        assert_eq!(format_share(0.0), "0 %");
        assert_eq!(format_share(0.00000001), "< 0.01 %");
        assert_eq!(format_share(0.5), "50 %");
    }
}
