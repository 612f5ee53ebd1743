//! `microscope watch`: enable probes and print their event counts every second.
//!
//! # Output format (stable; scripts and the classroom parse it)
//!
//! Every second, one line per probe, in the order the probes were given:
//!
//! ```text
//! <probe id> <events in that second>
//! ```
//!
//! for example `sched:sched_switch 1234`: a probe id (never contains spaces),
//! one space, a decimal count. For stream probes the count is the number of
//! events that arrived in that second; for `SyscallCounts` probes the growth of
//! the helper's total syscall count; for `SyscallLatency` probes the growth of
//! the number of latencies measured; for `Pack` probes (a pack's own maps,
//! no events) the growth of their histograms' samples, or of their counter
//! tables' first value column summed over the rows. Seconds are measured on
//! this process's clock, by arrival time.
//!
//! A `Pack` probe's maps are in-kernel aggregates shared by every client of
//! the helper: they count machine-wide (or what every client's filter
//! keeps), not only for this watch; a note on standard error says so.
//!
//! After the last second, for each probe whose drop counters grew during the
//! watch, one line starting with `#` (skip such lines when parsing):
//!
//! ```text
//! # drops <probe id> kernel=<n> client=<n>
//! ```
//!
//! `kernel` counts records lost because the ring buffer was full, `client`
//! events the helper dropped because this client read too slowly.

use crate::cli::WatchArgs;
use crate::failure::Failure;
use microscope_model::CumulativeCounter;
use microscope_wire::ProbeKey;
use microscope_wire::{ClientError, Connection, HelperMessage, ProbeInfo, ProbeKind};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Why `watch` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Talking to the helper failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The helper does not know the probe.
    #[error("the helper has no probe `{probe}`; `microscope probes` lists them")]
    UnknownProbe {
        /// The id asked for.
        probe: String,
    },
    /// The helper refused to enable a probe.
    #[error("could not enable {probe}: {message}")]
    EnableRefused {
        /// Probe id.
        probe: String,
        /// The helper's sentence.
        message: String,
    },
    /// The helper answered the probe list with an error.
    #[error("the helper could not list its probes: {0}")]
    ListRefused(String),
    /// Writing the output failed (for example a closed pipe).
    #[error("could not write the output")]
    Output(#[source] std::io::Error),
}

impl WatchError {
    /// Process exit code: 2 for connection problems, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(_) => 2,
            _ => 1,
        }
    }
}

/// A probe being watched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchProbe {
    /// Probe id.
    pub id: String,
    /// Key in event batches.
    pub key: ProbeKey,
    /// How its data arrives.
    pub kind: ProbeKind,
}

impl From<&ProbeInfo> for WatchProbe {
    fn from(info: &ProbeInfo) -> Self {
        Self {
            id: info.id.clone(),
            key: info.key,
            kind: info.kind,
        }
    }
}

/// One output line: a probe and its events in one second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchLine {
    /// Probe id.
    pub probe: String,
    /// Events in the second.
    pub events: u64,
}

impl fmt::Display for WatchLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.probe, self.events)
    }
}

/// The final line for a probe that lost events during the watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropLine {
    /// Probe id.
    pub probe: String,
    /// Kernel ring-buffer drops during the watch.
    pub kernel_drops: u64,
    /// Events dropped by the helper for this slow client during the watch.
    pub client_drops: u64,
}

impl fmt::Display for DropLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "# drops {} kernel={} client={}",
            self.probe, self.kernel_drops, self.client_drops
        )
    }
}

/// `(kernel, client)` drop totals, first seen and last seen.
#[derive(Clone, Copy, Debug)]
struct DropTotals {
    first: (u64, u64),
    last: (u64, u64),
}

/// Counts events per probe for the current window.
#[derive(Debug)]
pub struct WatchTally {
    probes: Vec<WatchProbe>,
    window: Vec<u64>,
    counters: Vec<CumulativeCounter>,
    /// First and last drop totals seen, per probe key.
    drops: BTreeMap<ProbeKey, DropTotals>,
}

impl WatchTally {
    /// A tally for `probes`, in output order.
    pub fn new(probes: Vec<WatchProbe>) -> Self {
        let n = probes.len();
        Self {
            probes,
            window: vec![0; n],
            counters: vec![CumulativeCounter::new(); n],
            drops: BTreeMap::new(),
        }
    }

    /// Counts one message into the current window.
    pub fn record(&mut self, message: &HelperMessage) {
        match message {
            HelperMessage::Batch(batch) => {
                for event in &batch.events {
                    for (probe, count) in self.probes.iter().zip(&mut self.window) {
                        if matches!(probe.kind, ProbeKind::Stream | ProbeKind::Fields)
                            && probe.key == event.probe
                        {
                            *count += 1;
                        }
                    }
                }
                for stats in &batch.stats {
                    let now = (stats.kernel_drops, stats.client_drops);
                    self.drops
                        .entry(stats.probe)
                        .and_modify(|totals| totals.last = now)
                        .or_insert(DropTotals {
                            first: now,
                            last: now,
                        });
                }
            }
            HelperMessage::Aggregates(aggregates) => {
                let syscalls = &aggregates.syscall_counts;
                let latencies = &aggregates.latency_log2_ns;
                let totals = [
                    (
                        ProbeKind::SyscallCounts,
                        !syscalls.is_empty(),
                        syscalls.iter().map(|(_, c)| c).sum(),
                    ),
                    (
                        ProbeKind::SyscallLatency,
                        !latencies.is_empty(),
                        latencies.iter().sum(),
                    ),
                ];
                for ((probe, count), counter) in self
                    .probes
                    .iter()
                    .zip(&mut self.window)
                    .zip(&mut self.counters)
                {
                    for &(kind, present, total) in &totals {
                        // An empty field means that aggregate is off: keep the baseline.
                        if probe.kind == kind && present {
                            *count += counter.advance(total);
                        }
                    }
                    if probe.kind == ProbeKind::Function
                        && let Some(stats) =
                            aggregates.functions.iter().find(|f| f.probe == probe.key)
                    {
                        *count += counter.advance(stats.calls);
                    }
                }
            }
            HelperMessage::Stacks(batch) => {
                for stack in &batch.stacks {
                    for (probe, count) in self.probes.iter().zip(&mut self.window) {
                        // A pack's stack counts are what its count map grew by.
                        if matches!(
                            probe.kind,
                            ProbeKind::Stacks | ProbeKind::TimeStacks | ProbeKind::Pack
                        ) && probe.key == stack.probe
                        {
                            *count += stack.value;
                        }
                    }
                }
            }
            HelperMessage::PackData(data) => {
                // A pack probe without events counts what its maps grew by:
                // its histograms' samples, else its counters' first column.
                let histograms: u64 = data.histograms.iter().flat_map(|h| &h.buckets).sum();
                let counters: u64 = data
                    .tables
                    .iter()
                    .flat_map(|t| t.rows.iter().filter_map(move |row| row.get(t.key_columns)))
                    .filter_map(microscope_wire::FieldValue::as_f64)
                    .map(|v| v.max(0.0) as u64)
                    .sum();
                let total = if data.histograms.is_empty() {
                    counters
                } else {
                    histograms
                };
                for ((probe, count), counter) in self
                    .probes
                    .iter()
                    .zip(&mut self.window)
                    .zip(&mut self.counters)
                {
                    if matches!(probe.kind, ProbeKind::Pack | ProbeKind::TimeStacks)
                        && probe.key == data.probe
                    {
                        *count += counter.advance(total);
                    }
                }
            }
            HelperMessage::Hello(_)
            | HelperMessage::VerifierLog { .. }
            | HelperMessage::CostWatch { .. }
            | HelperMessage::Cost(_)
            | HelperMessage::Probes(_)
            | HelperMessage::ProbeState { .. }
            | HelperMessage::ProbeAdded(_)
            | HelperMessage::Tracepoints(_)
            | HelperMessage::KernelFunctions { .. }
            | HelperMessage::Filter(_)
            | HelperMessage::Error { .. } => {}
        }
    }

    /// Ends the current window: its lines, one per probe, and a fresh window.
    pub fn end_window(&mut self) -> Vec<WatchLine> {
        let lines = self
            .probes
            .iter()
            .zip(&self.window)
            .map(|(probe, &events)| WatchLine {
                probe: probe.id.clone(),
                events,
            })
            .collect();
        self.window.fill(0);
        lines
    }

    /// Probes whose drop counters grew since they were first seen.
    pub fn drop_lines(&self) -> Vec<DropLine> {
        self.probes
            .iter()
            .filter_map(|probe| {
                let DropTotals {
                    first: (k0, c0),
                    last: (k1, c1),
                } = self.drops.get(&probe.key)?;
                let line = DropLine {
                    probe: probe.id.clone(),
                    kernel_drops: k1.saturating_sub(*k0),
                    client_drops: c1.saturating_sub(*c0),
                };
                (line.kernel_drops > 0 || line.client_drops > 0).then_some(line)
            })
            .collect()
    }
}

/// The whole watch as a pure function: messages stamped with their arrival
/// times, cut into `seconds` one-second windows from `start`. Messages before
/// `start` only set baselines; messages after the last window are ignored.
pub fn tally_seconds(
    probes: Vec<WatchProbe>,
    start: Instant,
    seconds: u64,
    messages: impl IntoIterator<Item = (Instant, HelperMessage)>,
) -> (Vec<Vec<WatchLine>>, Vec<DropLine>) {
    let mut tally = WatchTally::new(probes);
    let mut out = Vec::new();
    let mut second = 0;
    let mut messages = messages.into_iter().peekable();
    while let Some((arrived, _)) = messages.peek() {
        if *arrived >= start {
            break;
        }
        if let Some((_, message)) = messages.next() {
            tally.record(&message);
        }
    }
    tally.end_window();
    for (arrived, message) in messages {
        let index = arrived.saturating_duration_since(start).as_secs();
        if index >= seconds {
            break;
        }
        while second < index {
            out.push(tally.end_window());
            second += 1;
        }
        tally.record(&message);
    }
    while second < seconds {
        out.push(tally.end_window());
        second += 1;
    }
    (out, tally.drop_lines())
}

/// `microscope watch`: the lines go to standard output.
pub fn run(socket: &Path, args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    run_watch(socket, &args.probes, args.seconds, &mut stdout)
        .map_err(|err| Failure::new(&err, err.exit_code()))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `microscope watch`, writing lines to `out`.
pub fn run_watch(
    socket: &Path,
    probe_ids: &[String],
    seconds: u64,
    out: &mut impl Write,
) -> Result<(), WatchError> {
    let mut connection = Connection::connect(socket)?;
    let catalogue = connection.list_probes().map_err(|err| match err {
        ClientError::Refused(message) => WatchError::ListRefused(message),
        other => other.into(),
    })?;
    let probes = probe_ids
        .iter()
        .map(|id| {
            catalogue
                .iter()
                .find(|info| &info.id == id)
                .map(WatchProbe::from)
                .ok_or_else(|| WatchError::UnknownProbe { probe: id.clone() })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut tally = WatchTally::new(probes.clone());
    for probe in &probes {
        let received = connection
            .enable_probe(&probe.id)
            .map_err(|err| match err {
                ClientError::Refused(message) => WatchError::EnableRefused {
                    probe: probe.id.clone(),
                    message,
                },
                other => other.into(),
            })?;
        for message in &received {
            tally.record(message);
        }
    }
    // Whatever arrived while enabling only sets baselines.
    tally.end_window();
    for probe in probes
        .iter()
        .filter(|p| matches!(p.kind, ProbeKind::Pack | ProbeKind::TimeStacks))
    {
        eprintln!(
            "microscope: {} counts in its own maps in the kernel, for every client of the helper \
             (machine-wide): its lines are the growth of those maps.",
            probe.id
        );
    }

    let start = Instant::now();
    for second in 1..=seconds {
        let deadline = start + Duration::from_secs(second);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A zero read timeout would mean "forever".
            if remaining < Duration::from_millis(1) {
                break;
            }
            connection.set_recv_timeout(Some(remaining))?;
            match connection.recv() {
                Ok(HelperMessage::Error { message }) => eprintln!("helper: {message}"),
                Ok(message) => tally.record(&message),
                Err(ClientError::Timeout(_)) => break,
                Err(err) => return Err(err.into()),
            }
        }
        for line in tally.end_window() {
            writeln!(out, "{line}").map_err(WatchError::Output)?;
        }
        out.flush().map_err(WatchError::Output)?;
    }
    for line in tally.drop_lines() {
        writeln!(out, "{line}").map_err(WatchError::Output)?;
    }
    connection.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::{Aggregates, Event, EventBatch, EventData, ProbeStats};

    fn probe(id: &str, key: ProbeKey, kind: ProbeKind) -> WatchProbe {
        WatchProbe {
            id: id.into(),
            key,
            kind,
        }
    }

    fn batch(keys: &[ProbeKey], stats: Vec<ProbeStats>) -> HelperMessage {
        let events = keys
            .iter()
            .map(|&probe| Event {
                probe,
                cpu: 0,
                ts_ns: 0,
                pid: 1,
                tgid: 1,
                comm: "t".into(),
                data: EventData::SchedFork {
                    parent_pid: 1,
                    child_pid: 2,
                },
            })
            .collect();
        HelperMessage::Batch(EventBatch { events, stats })
    }

    fn aggregates(counts: &[u64], latency: &[u64]) -> HelperMessage {
        HelperMessage::Aggregates(Aggregates {
            functions: Vec::new(),
            ts_ns: 0,
            syscall_counts: counts
                .iter()
                .enumerate()
                .map(|(nr, &c)| (nr as u32, c))
                .collect(),
            latency_log2_ns: latency.to_vec(),
        })
    }

    fn counts(lines: &[Vec<WatchLine>]) -> Vec<Vec<u64>> {
        lines
            .iter()
            .map(|second| second.iter().map(|l| l.events).collect())
            .collect()
    }

    #[test]
    fn stream_events_are_counted_per_second() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let probes = vec![
            probe("sched:sched_switch", 1, ProbeKind::Stream),
            probe("b", 2, ProbeKind::Stream),
        ];
        let messages = vec![
            (at(100), batch(&[1, 1, 2], vec![])),
            (at(900), batch(&[1], vec![])),
            (at(2500), batch(&[2, 2], vec![])),
            (at(3000), batch(&[1], vec![])), // after the last second
        ];
        let (lines, drops) = tally_seconds(probes, start, 3, messages);
        assert_eq!(counts(&lines), vec![vec![3, 1], vec![0, 0], vec![0, 2]]);
        assert_eq!(lines[0][0].to_string(), "sched:sched_switch 3");
        assert!(drops.is_empty());
    }

    #[test]
    fn no_messages_give_zero_lines() {
        let (lines, drops) = tally_seconds(
            vec![probe("a", 1, ProbeKind::Stream)],
            Instant::now(),
            2,
            vec![],
        );
        assert_eq!(counts(&lines), vec![vec![0], vec![0]]);
        assert!(drops.is_empty());
        let (lines, _) = tally_seconds(vec![], Instant::now(), 1, vec![]);
        assert_eq!(lines, vec![Vec::<WatchLine>::new()]);
    }

    #[test]
    fn aggregates_count_growth_from_the_first_message() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let probes = vec![
            probe("raw_syscalls:counts", 5, ProbeKind::SyscallCounts),
            probe("raw_syscalls:latency", 6, ProbeKind::SyscallLatency),
        ];
        let messages = vec![
            (
                start - Duration::from_millis(100),
                aggregates(&[1000, 500], &[10, 10]),
            ),
            (at(250), aggregates(&[1010, 500], &[12, 10])),
            (at(750), aggregates(&[1020, 505], &[12, 13])),
            (at(1250), aggregates(&[], &[])), // both off: ignored
            (at(1500), aggregates(&[1030, 505], &[20, 13])),
        ];
        let (lines, _) = tally_seconds(probes, start, 2, messages);
        assert_eq!(counts(&lines), vec![vec![25, 5], vec![10, 8]]);
    }

    #[test]
    fn the_first_aggregate_in_the_window_is_a_baseline() {
        let start = Instant::now();
        let probes = vec![probe("c", 5, ProbeKind::SyscallCounts)];
        let messages = vec![
            (start, aggregates(&[1_000_000], &[])),
            (
                start + Duration::from_millis(500),
                aggregates(&[1_000_100], &[]),
            ),
        ];
        let (lines, _) = tally_seconds(probes, start, 1, messages);
        assert_eq!(counts(&lines), vec![vec![100]]);
    }

    #[test]
    fn drops_during_the_watch_are_reported() {
        let start = Instant::now();
        let stats = |kernel_drops, client_drops| {
            vec![ProbeStats {
                probe: 1,
                kernel_drops,
                client_drops,
            }]
        };
        let messages = vec![
            (start, batch(&[1], stats(10, 0))),
            (start + Duration::from_millis(10), batch(&[1], stats(25, 2))),
        ];
        let (_, drops) = tally_seconds(vec![probe("a", 1, ProbeKind::Stream)], start, 1, messages);
        assert_eq!(
            drops,
            vec![DropLine {
                probe: "a".into(),
                kernel_drops: 15,
                client_drops: 2
            }]
        );
        assert_eq!(drops[0].to_string(), "# drops a kernel=15 client=2");
    }
}
