//! `microscope info FILE`: what a recording holds.

use crate::cli::InfoArgs;
use crate::failure::Failure;
use microscope_model::{format_bytes, format_seconds_ns};
use microscope_wire::ProbeKey;
use microscope_wire::{IndexSource, ProbeKind, RECORDING_VERSION, Recording, RecordingError};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `microscope info`: prints the report.
pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let report = info_report(&args.file).map_err(|err| Failure::new(&err, 1))?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Opens the recording and returns the report to print.
pub fn info_report(file: &Path) -> Result<String, RecordingError> {
    Ok(format_info(&Recording::open(file)?))
}

/// The report: file, helper and kernel, time span, events and drops per
/// probe, index, damage. Reads only what [`Recording::open`] read.
pub fn format_info(recording: &Recording) -> String {
    let mut out = String::new();
    let header = recording.header();
    let summary = recording.summary();
    let totals = &summary.totals;
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "file: {} ({}, recording format v{RECORDING_VERSION})",
        recording.path().display(),
        format_bytes(summary.file_bytes)
    );
    let _ = writeln!(
        out,
        "recorded: {} UTC",
        format_unix_ms(header.created_unix_ms)
    );
    if !header.note.is_empty() {
        let _ = writeln!(out, "note: {}", header.note);
    }
    let _ = writeln!(out, "helper: microscoped {}", header.helper.helper_version);
    let _ = writeln!(out, "kernel: {}", header.helper.kernel_release);
    match totals.recv_span_ns {
        Some((first, last)) => {
            let _ = writeln!(
                out,
                "time span: {} ({} frames received from {} to {})",
                format_seconds_ns(last.saturating_sub(first)),
                totals.frames,
                format_seconds_ns(first),
                format_seconds_ns(last)
            );
        }
        None => {
            let _ = writeln!(out, "time span: none (no frames)");
        }
    }
    if let Some((min, max)) = totals.event_span_ns {
        let _ = writeln!(
            out,
            "event timestamps: {} of kernel time (CLOCK_MONOTONIC {min} to {max} ns)",
            format_seconds_ns(max.saturating_sub(min))
        );
    }

    let _ = writeln!(out, "events: {}", totals.events);
    let name = |key: ProbeKey| {
        header
            .probe(key)
            .map_or_else(|| format!("probe#{key}"), |probe| probe.id.clone())
    };
    let mut rows: Vec<(String, String)> = totals
        .events_per_probe
        .iter()
        .map(|(&key, &events)| (name(key), events.to_string()))
        .collect();
    // Probes that were recorded but delivered no event still get a line.
    for probe in header.probes.iter().filter(|probe| probe.enabled) {
        if !rows.iter().any(|(id, _)| *id == probe.id) {
            let events = match probe.kind {
                ProbeKind::Stream | ProbeKind::Fields => "0".to_owned(),
                ProbeKind::SyscallCounts
                | ProbeKind::SyscallLatency
                | ProbeKind::Function
                | ProbeKind::Stacks
                | ProbeKind::Pack
                | ProbeKind::TimeStacks => {
                    "- (aggregated in the kernel, see aggregates)".to_owned()
                }
            };
            rows.push((probe.id.clone(), events));
        }
    }
    let width = rows.iter().map(|(id, _)| id.len()).max().unwrap_or(0);
    for (id, events) in &rows {
        let _ = writeln!(out, "  {id:<width$}  {events}");
    }
    if totals.aggregates > 0 {
        let _ = writeln!(out, "aggregates: {} snapshots", totals.aggregates);
    }
    if totals.errors > 0 {
        let _ = writeln!(out, "helper errors: {}", totals.errors);
    }

    let lossy: Vec<_> = totals
        .drops
        .iter()
        .filter(|(_, drops)| drops.kernel_drops_during() > 0 || drops.client_drops_during() > 0)
        .collect();
    if lossy.is_empty() {
        let _ = writeln!(out, "drops: none while recording");
    } else {
        let _ = writeln!(out, "drops while recording (per probe; not per CPU):");
        for (&key, drops) in lossy {
            let _ = writeln!(
                out,
                "  {}  kernel={} client={}",
                name(key),
                drops.kernel_drops_during(),
                drops.client_drops_during()
            );
        }
    }
    let _ = match summary.index_source {
        IndexSource::Footer => writeln!(
            out,
            "index: present ({} seek points)",
            summary.index_entries
        ),
        IndexSource::Scan => writeln!(
            out,
            "index: absent (the writer did not finish; rebuilt by reading every frame, \
             {} seek points)",
            summary.index_entries
        ),
    };
    let _ = match &summary.damage {
        None => writeln!(out, "damage: none"),
        Some(damage) => writeln!(out, "damage: {damage}"),
    };
    out
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time in ms (UTC); a time past what a
/// calendar can hold (a damaged header) is said as such.
fn format_unix_ms(unix_ms: u64) -> String {
    i64::try_from(unix_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{unix_ms} ms after 1970, past any calendar date"),
            |time| time.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(format_unix_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_unix_ms(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(
            format_unix_ms(u64::MAX),
            "18446744073709551615 ms after 1970, past any calendar date"
        );
    }
}
