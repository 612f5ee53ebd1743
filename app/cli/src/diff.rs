//! `microscope diff BASELINE COMPARISON`: what grew and what shrank between
//! two recordings, headless.
//!
//! Each recording becomes folded stacks exactly as `export --format
//! folded` writes them (its on-CPU profile, else its off-CPU one, else the
//! stacks captured at a probe; without stacks, `comm;probe` event counts).
//! Then:
//!
//! - `--format folded`: one line per stack, `stack baseline comparison`,
//!   the two-column input of `flamegraph.pl` and `inferno-flamegraph` for a
//!   differential flame graph (what `difffolded.pl` and
//!   `inferno-diff-folded` write), raw counts;
//! - `--format summary`: both totals, then the functions whose share of
//!   their own recording's total changed most, grown first: each side is
//!   normalised to its own total, as the app's differential flame graph
//!   colours them, so a recording twice as long does not read as twice as
//!   hot.

use crate::cli::{DiffArgs, DiffFormat};
use crate::export::{ExportError, export_folded, open_output};
use crate::failure::Failure;
use microscope_wire::Recording;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

/// One recording as folded stacks.
#[derive(Debug, Default, PartialEq)]
pub struct Folded {
    /// Count of each stack (`frame;frame;…`).
    pub stacks: BTreeMap<String, u64>,
    /// Sum of the counts.
    pub total: u64,
    /// Damage found in the file, as a sentence.
    pub warning: Option<String>,
}

/// Reads `file` and folds it as `export --format folded` does.
pub fn fold_recording(file: &Path) -> Result<Folded, ExportError> {
    let recording = Recording::open(file)?;
    let mut warning = recording
        .damage()
        .map(|damage| format!("{} is damaged: {damage}", file.display()));
    let mut corrupt = None;
    let frames = recording
        .frames()?
        .map_while(|frame| frame.map_err(|err| corrupt = Some(err.to_string())).ok());
    let mut text = Vec::new();
    export_folded(recording.header(), frames, &mut text).map_err(|source| ExportError::Output {
        path: file.to_owned(),
        source,
    })?;
    if let Some(corrupt) = corrupt {
        warning = Some(format!("{} is read only up to {corrupt}", file.display()));
    }
    let mut folded = Folded {
        warning,
        ..Folded::default()
    };
    for line in String::from_utf8_lossy(&text).lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else {
            continue;
        };
        let count: u64 = count.parse().unwrap_or(0);
        *folded.stacks.entry(stack.to_owned()).or_default() += count;
        folded.total += count;
    }
    Ok(folded)
}

/// `stack baseline comparison` lines, sorted by stack.
pub fn diff_folded(baseline: &Folded, comparison: &Folded) -> String {
    let stacks: BTreeSet<&String> = baseline
        .stacks
        .keys()
        .chain(comparison.stacks.keys())
        .collect();
    let mut out = String::new();
    for stack in stacks {
        let before = baseline.stacks.get(stack).copied().unwrap_or(0);
        let after = comparison.stacks.get(stack).copied().unwrap_or(0);
        out.push_str(&format!("{stack} {before} {after}\n"));
    }
    out
}

/// One function's share of each recording (of the samples whose stack
/// contains it).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The frame's name.
    pub function: String,
    /// Share of the baseline's total, 0..=1.
    pub before: f64,
    /// Share of the comparison's total, 0..=1.
    pub after: f64,
}

impl Change {
    /// Percentage points gained (negative: lost).
    pub fn points(&self) -> f64 {
        (self.after - self.before) * 100.0
    }
}

/// Every function's share of each side, most grown first, most shrunk last.
pub fn changes(baseline: &Folded, comparison: &Folded) -> Vec<Change> {
    fn inclusive(folded: &Folded) -> BTreeMap<&str, u64> {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for (stack, count) in &folded.stacks {
            // Once per stack, even if the function recurses.
            let frames: BTreeSet<&str> = stack.split(';').collect();
            for frame in frames {
                *counts.entry(frame).or_default() += count;
            }
        }
        counts
    }
    let (before, after) = (inclusive(baseline), inclusive(comparison));
    let share = |count: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        }
    };
    let names: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    let mut changes: Vec<Change> = names
        .into_iter()
        .map(|name| Change {
            function: name.to_owned(),
            before: share(before.get(name).copied().unwrap_or(0), baseline.total),
            after: share(after.get(name).copied().unwrap_or(0), comparison.total),
        })
        .collect();
    changes.sort_by(|a, b| {
        b.points()
            .total_cmp(&a.points())
            .then(a.function.cmp(&b.function))
    });
    changes
}

/// The summary: totals, then the `top` most grown and most shrunk.
pub fn summary(
    baseline_name: &str,
    baseline: &Folded,
    comparison_name: &str,
    comparison: &Folded,
    top: usize,
) -> String {
    let mut out = format!(
        "baseline   {baseline_name}: {} samples or events\ncomparison {comparison_name}: {} \
         samples or events\nshares are of each recording's own total\n",
        baseline.total, comparison.total
    );
    let changes = changes(baseline, comparison);
    let row = |c: &Change| {
        format!(
            "{:>+8.2} pts  {:>6.2} % -> {:>6.2} %  {}\n",
            c.points(),
            c.before * 100.0,
            c.after * 100.0,
            c.function
        )
    };
    out.push_str("\ngrew:\n");
    let grown: Vec<&Change> = changes
        .iter()
        .filter(|c| c.points() > 0.0)
        .take(top)
        .collect();
    if grown.is_empty() {
        out.push_str("  nothing\n");
    }
    for change in grown {
        out.push_str(&row(change));
    }
    out.push_str("\nshrank:\n");
    let shrunk: Vec<&Change> = changes
        .iter()
        .rev()
        .filter(|c| c.points() < 0.0)
        .take(top)
        .collect();
    if shrunk.is_empty() {
        out.push_str("  nothing\n");
    }
    for change in shrunk {
        out.push_str(&row(change));
    }
    out
}

/// `microscope diff`.
pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let baseline = fold_recording(&args.baseline).map_err(|err| Failure::new(&err, 1))?;
    let comparison = fold_recording(&args.comparison).map_err(|err| Failure::new(&err, 1))?;
    for warning in [&baseline.warning, &comparison.warning]
        .into_iter()
        .flatten()
    {
        eprintln!("microscope: warning: {warning}");
    }
    let text = match args.format {
        DiffFormat::Folded => diff_folded(&baseline, &comparison),
        DiffFormat::Summary => summary(
            &args.baseline.display().to_string(),
            &baseline,
            &args.comparison.display().to_string(),
            &comparison,
            args.top,
        ),
    };
    let write = |out: &mut dyn Write| out.write_all(text.as_bytes()).and_then(|()| out.flush());
    let written = if args.output == Path::new("-") {
        write(&mut io::stdout().lock())
    } else {
        let file = open_output(&args.output, args.force).map_err(|err| Failure::new(&err, 1))?;
        write(&mut BufWriter::new(file))
    };
    written.map_err(|source| {
        Failure::new(
            &ExportError::Output {
                path: args.output.clone(),
                source,
            },
            1,
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(lines: &[(&str, u64)]) -> Folded {
        let mut folded = Folded::default();
        for (stack, count) in lines {
            folded.stacks.insert((*stack).to_owned(), *count);
            folded.total += count;
        }
        folded
    }

    #[test]
    fn shares_are_of_each_side_s_own_total() {
        // Twice the samples, same proportions: nothing changed.
        let a = folded(&[("main;work", 30), ("main;idle", 70)]);
        let b = folded(&[("main;work", 60), ("main;idle", 140)]);
        assert!(changes(&a, &b).iter().all(|c| c.points().abs() < 1e-9));
        // Work went from 30 % to 75 %.
        let c = folded(&[("main;work", 150), ("main;idle", 50)]);
        let changes = changes(&a, &c);
        assert_eq!(changes[0].function, "work");
        assert!((changes[0].points() - 45.0).abs() < 1e-9);
        assert_eq!(changes.last().map(|c| c.function.as_str()), Some("idle"));
        let text = summary("a", &a, "c", &c, 5);
        assert!(
            text.contains("+45.00 pts   30.00 % ->  75.00 %  work"),
            "{text}"
        );
        assert!(
            text.contains("-45.00 pts   70.00 % ->  25.00 %  idle"),
            "{text}"
        );
    }

    #[test]
    fn the_folded_diff_has_both_counts_of_every_stack() {
        let a = folded(&[("main;gone", 3), ("main;both", 5)]);
        let b = folded(&[("main;both", 7), ("main;new", 1)]);
        assert_eq!(
            diff_folded(&a, &b),
            "main;both 5 7\nmain;gone 3 0\nmain;new 0 1\n"
        );
    }

    /// A recording of an `openat` workload: `busy` events of `worker` and
    /// 100 of `shell` per batch, for 10 batches.
    fn workload(path: &Path, busy: u64) {
        use microscope_wire::{
            Availability, Capabilities, Event, EventBatch, EventData, HelperInfo, HelperMessage,
            ProbeInfo, ProbeKind, RecordingHeader, RecordingWriter,
        };
        let yes = || Availability::yes("test");
        let header = RecordingHeader::new(
            HelperInfo {
                helper_version: "test".into(),
                kernel_release: "test".into(),
                capabilities: Capabilities {
                    tracefs: yes(),
                    btf: yes(),
                    kprobes: yes(),
                    fentry: yes(),
                    uprobes: yes(),
                },
            },
            vec![ProbeInfo {
                fields: Vec::new(),
                id: "syscalls:sys_enter_openat".into(),
                key: 1,
                subsystem: "System calls".into(),
                description: String::new(),
                kind: ProbeKind::Stream,
                availability: yes(),
                enabled: true,
            }],
            "diff test",
        );
        let mut writer = RecordingWriter::create(path, &header, false).unwrap();
        let event = |comm: &str, ts_ns| Event {
            probe: 1,
            cpu: 0,
            ts_ns,
            pid: 7,
            tgid: 7,
            comm: comm.into(),
            data: EventData::Openat {
                dfd: -100,
                filename: "/dev/null".into(),
                flags: 0,
                mode: 0,
            },
        };
        for batch in 0..10 {
            let events = (0..busy)
                .map(|i| event("worker", batch * 1000 + i))
                .chain((0..100).map(|i| event("shell", batch * 1000 + i)))
                .collect();
            writer
                .write(
                    batch * 1_000_000,
                    &HelperMessage::Batch(EventBatch {
                        events,
                        stats: Vec::new(),
                    }),
                )
                .unwrap();
        }
        writer.finish().unwrap();
    }

    #[test]
    fn the_same_workload_at_two_intensities() {
        let dir = tempfile::tempdir().unwrap();
        let (light, heavy) = (dir.path().join("light.mscr"), dir.path().join("heavy.mscr"));
        workload(&light, 100);
        workload(&heavy, 300);
        let a = fold_recording(&light).unwrap();
        let b = fold_recording(&heavy).unwrap();
        assert_eq!((a.total, b.total), (2_000, 4_000));
        // worker: 50 % of the light run, 75 % of the heavy one.
        let text = summary("light", &a, "heavy", &b, 3);
        assert!(
            text.contains("+25.00 pts   50.00 % ->  75.00 %  worker"),
            "{text}"
        );
        assert!(
            text.contains("-25.00 pts   50.00 % ->  25.00 %  shell"),
            "{text}"
        );
        assert_eq!(
            diff_folded(&a, &b),
            "shell;syscalls:sys_enter_openat 1000 1000\n\
             worker;syscalls:sys_enter_openat 1000 3000\n"
        );
    }

    #[test]
    fn a_bad_file_is_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.mscr");
        let err = fold_recording(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.mscr"), "{err}");
        let garbage = dir.path().join("garbage.mscr");
        std::fs::write(&garbage, b"not a recording").unwrap();
        let err = fold_recording(&garbage).unwrap_err().to_string();
        assert!(err.contains("garbage.mscr"), "{err}");
    }
}
