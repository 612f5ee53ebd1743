//! Building a recording's overview on every core.
//!
//! The overview ([`RecordingOverview`]) needs one pass over every frame of
//! the file, and a profile of that pass is decoding frames and adding their
//! events to per-CPU columns: CPU work, no waiting. Frames decode
//! independently, so the pass is split:
//!
//! 1. **Cut.** The file is cut into one part per core at seek points of its
//!    index ([`Recording::index`]: frame offsets about every MiB), so every
//!    part starts on a frame.
//! 2. **Read.** A named thread per part reads its frames with
//!    [`Recording::glance`] into an [`OverviewBuilder`] of its own.
//! 3. **Merge.** The parts are merged in file order
//!    ([`OverviewBuilder::merge`]: sums, plus the task each CPU was running
//!    at each seam) into the overview one thread would have built.
//!
//! On the 2-core development machine the 10-million-event bench recording's
//! overview took 3.7 s with one thread; see the README for the figure now.
//! Memory: each part holds one builder (a few MB) and a 1 MiB read buffer.
//!
//! An index comes from the file and is not trusted: each part must end
//! exactly where the next one starts. If one does not (a seek point that is
//! not a frame), the parts are thrown away and the file is read again in
//! one part, which needs no seek point.

use microscope_model::{BrowseUpdate, OverviewBuilder, RecordingOverview};
use microscope_wire::{Recording, RecordingError};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// How often progress is reported while the overview is built.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// Most threads reading parts (more cores than this gain little: the parts
/// also share the disk or page cache).
const MAX_PARTS: usize = 8;

/// One part read.
struct Part {
    builder: OverviewBuilder,
    /// Where its reading ended: the offset of the first frame it did not
    /// read (the next part's start, or the end of the data), or the damage
    /// that stopped it.
    ended: Result<u64, RecordingError>,
}

/// What reading the parts gave.
enum Outcome {
    /// The merged parts, and the damage that ended the data early, if any.
    Read(Box<OverviewBuilder>, Option<RecordingError>),
    /// A part did not end where the next began: the index is wrong.
    SeamMismatch,
    /// `send` failed: nobody wants the overview any more.
    Gone,
}

/// Reads every frame of `recording` into its overview, on up to one thread
/// per core, reporting progress through `send`; `None` when `send` says
/// the UI is gone. Damage in the middle gives the overview of what came
/// before it, and a [`BrowseUpdate::Failed`] saying so.
pub(crate) fn build_overview(
    recording: &Recording,
    send: &impl Fn(BrowseUpdate) -> bool,
) -> Option<RecordingOverview> {
    let parts = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, MAX_PARTS);
    let mut outcome = read_parts(recording, &part_starts(recording, parts), send);
    if matches!(outcome, Outcome::SeamMismatch) {
        log::warn!(
            "the index of {} does not point at its frames; reading it in one pass",
            recording.path().display()
        );
        outcome = read_parts(recording, &[recording.data_start()], send);
    }
    let (builder, damage) = match outcome {
        Outcome::Read(builder, damage) => (builder, damage),
        Outcome::SeamMismatch | Outcome::Gone => return None,
    };
    if let Some(err) = damage {
        log::warn!("{err}");
        if !send(BrowseUpdate::Failed(format!(
            "the recording can be browsed only up to the damage: {err}"
        ))) {
            return None;
        }
    }
    Some(builder.finish(recording.data_end()))
}

/// Where each of (at most) `parts` parts starts: the data's start, then
/// the seek points nearest after equal shares of the data.
fn part_starts(recording: &Recording, parts: usize) -> Vec<u64> {
    let (start, end) = (recording.data_start(), recording.data_end());
    let entries = &recording.index().entries;
    let share = end.saturating_sub(start) / parts as u64;
    let mut starts = vec![start];
    for part in 1..parts as u64 {
        let target = start + share * part;
        let at = entries.partition_point(|entry| entry.offset < target);
        if let Some(entry) = entries.get(at)
            && starts.last().is_some_and(|&last| entry.offset > last)
            && entry.offset < end
        {
            starts.push(entry.offset);
        }
    }
    starts
}

/// Reads the parts starting at `starts` (ascending, the first at the data's
/// start), each on a thread of its own, and merges them.
fn read_parts(
    recording: &Recording,
    starts: &[u64],
    send: &impl Fn(BrowseUpdate) -> bool,
) -> Outcome {
    let ranges: Vec<Range<u64>> = starts
        .iter()
        .zip(starts.iter().skip(1).chain([&recording.data_end()]))
        .map(|(&start, &end)| start..end)
        .collect();
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let span = recording.summary().totals.event_span_ns;
    let parts: Vec<Option<Part>> = thread::scope(|scope| {
        let (part_tx, part_rx) = crossbeam_channel::bounded(ranges.len());
        for (number, range) in ranges.iter().cloned().enumerate() {
            let (done, stop, part_tx) = (&done, &stop, part_tx.clone());
            let read = move || {
                let part = read_part(recording, range, span, done, stop);
                let _ = part_tx.send((number, part));
            };
            let spawned = thread::Builder::new()
                .name(format!("microscope-overview-{number}"))
                .spawn_scoped(scope, read.clone());
            if spawned.is_err() {
                // No thread to be had: read it here, slower but whole.
                read();
            }
        }
        drop(part_tx);
        let mut parts: Vec<Option<Part>> = ranges.iter().map(|_| None).collect();
        let total = recording
            .data_end()
            .saturating_sub(recording.data_start())
            .max(1);
        loop {
            match part_rx.recv_timeout(PROGRESS_INTERVAL) {
                Ok((number, part)) => {
                    if let Some(slot) = parts.get_mut(number) {
                        *slot = Some(part);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let share = done.load(Ordering::Relaxed) as f32 / total as f32;
                    if !send(BrowseUpdate::Progress(share.min(1.0))) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        parts
    });
    if stop.load(Ordering::Relaxed) {
        return Outcome::Gone;
    }
    merge_parts(parts, &ranges)
}

/// The parts merged in file order, up to the first damage.
fn merge_parts(parts: Vec<Option<Part>>, ranges: &[Range<u64>]) -> Outcome {
    let mut merged: Option<OverviewBuilder> = None;
    for (part, range) in parts.into_iter().zip(ranges) {
        // Every thread sends its part before it ends (a panic would have
        // ended the scope), so a part is never missing; treated as wrong
        // seams all the same.
        let Some(Part { builder, ended }) = part else {
            return Outcome::SeamMismatch;
        };
        let whole = match merged.take() {
            Some(mut earlier) => {
                earlier.merge(builder);
                earlier
            }
            None => builder,
        };
        match ended {
            Err(damage) => return Outcome::Read(Box::new(whole), Some(damage)),
            Ok(end) if end != range.end => return Outcome::SeamMismatch,
            Ok(_) => merged = Some(whole),
        }
    }
    merged.map_or(Outcome::Gone, |whole| Outcome::Read(Box::new(whole), None))
}

/// Reads the frames of `range` into a builder of their own.
fn read_part(
    recording: &Recording,
    range: Range<u64>,
    span: Option<(u64, u64)>,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> Part {
    let mut builder = OverviewBuilder::new(span);
    let mut reported = range.start;
    let mut ended = recording.data_end();
    let glanced = recording.glance(range.start, |offset, recv_ns, events| {
        if offset >= range.end || stop.load(Ordering::Relaxed) {
            ended = offset;
            return false;
        }
        builder.frame(offset, recv_ns, events);
        done.fetch_add(offset - reported, Ordering::Relaxed);
        reported = offset;
        true
    });
    Part {
        builder,
        ended: glanced.map(|()| ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::{
        Availability, Capabilities, Event, EventBatch, EventData, HelperInfo, HelperMessage,
        RecordingHeader, RecordingWriter,
    };
    use std::path::Path;

    const FRAMES: u64 = 3000;
    const EVENTS_PER_FRAME: u64 = 40;

    /// A recording of `FRAMES` batches of switches on 3 CPUs (about 6 MB,
    /// so its index has several seek points).
    fn write(path: &Path) {
        let yes = || Availability::yes("test");
        let info = HelperInfo {
            helper_version: "0".into(),
            kernel_release: "test".into(),
            capabilities: Capabilities {
                tracefs: yes(),
                btf: yes(),
                kprobes: yes(),
                fentry: yes(),
                uprobes: yes(),
            },
        };
        let header = RecordingHeader::new(info, Vec::new(), "overview parts");
        let mut writer = RecordingWriter::create(path, &header, false).unwrap();
        for frame in 0..FRAMES {
            let events = (0..EVENTS_PER_FRAME)
                .map(|i| {
                    let n = frame * EVENTS_PER_FRAME + i;
                    let next = (n * 7 % 11) as u32;
                    Event {
                        probe: 1 + n % 2,
                        cpu: (n % 3) as u32,
                        ts_ns: 1_000_000 + n * 1_000,
                        pid: 5,
                        tgid: 5,
                        comm: "t".into(),
                        data: EventData::SchedSwitch {
                            prev_pid: 5,
                            prev_comm: "t".into(),
                            prev_prio: 120,
                            prev_state: 1,
                            next_pid: next,
                            next_comm: format!("task with a long name {next}"),
                            next_prio: 120,
                        },
                    }
                })
                .collect();
            let batch = HelperMessage::Batch(EventBatch {
                events,
                stats: Vec::new(),
            });
            writer.write(frame * 1_000, &batch).unwrap();
        }
        writer.finish().unwrap();
    }

    fn read(recording: &Recording, starts: &[u64]) -> Outcome {
        read_parts(recording, starts, &|_| true)
    }

    /// Whether two overviews show the same, column by column (busy shares
    /// are sums of floats, added in another order by parts).
    fn assert_same_view(a: &RecordingOverview, b: &RecordingOverview) {
        assert_eq!(a.events_per_probe, b.events_per_probe);
        assert_eq!(
            (a.start_ns, a.end_ns, a.bucket_ns),
            (b.start_ns, b.end_ns, b.bucket_ns)
        );
        assert_eq!(a.anchor, b.anchor);
        assert_eq!(a.cpus().collect::<Vec<_>>(), b.cpus().collect::<Vec<_>>());
        for cpu in a.cpus() {
            for bucket in 0..=(a.end_ns - a.start_ns) / a.bucket_ns {
                let from = a.start_ns + bucket * a.bucket_ns;
                let (x, y) = (
                    a.column(cpu, from, from + a.bucket_ns).unwrap(),
                    b.column(cpu, from, from + a.bucket_ns).unwrap(),
                );
                assert!(
                    (x.busy - y.busy).abs() < 1e-5,
                    "cpu {cpu} at {from}: {x:?} {y:?}"
                );
                assert_eq!((x.pid, x.tgid, x.switches), (y.pid, y.tgid, y.switches));
                assert_eq!(a.comm_of(x.pid), b.comm_of(y.pid));
            }
        }
    }

    #[test]
    fn parts_at_seek_points_give_the_overview_of_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parts.mscr");
        write(&path);
        let recording = Recording::open(&path).unwrap();
        let starts = part_starts(&recording, 4);
        assert_eq!(starts.len(), 4, "{:?}", recording.index().entries);
        let (Outcome::Read(one, None), Outcome::Read(parts, None)) =
            (read(&recording, &starts[..1]), read(&recording, &starts))
        else {
            panic!("both read the whole file");
        };
        let (one, parts) = (
            one.finish(recording.data_end()),
            parts.finish(recording.data_end()),
        );
        assert_eq!(
            parts.events_of(1) + parts.events_of(2),
            FRAMES * EVENTS_PER_FRAME
        );
        let chunk_starts: Vec<u64> = parts.chunks.iter().map(|c| c.offset).collect();
        assert!(starts.iter().all(|s| chunk_starts.contains(s)));
        assert_same_view(&parts, &one);
    }

    #[test]
    fn a_part_not_starting_on_a_frame_is_caught_at_its_seam() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seams.mscr");
        write(&path);
        let recording = Recording::open(&path).unwrap();
        let starts = part_starts(&recording, 2);
        let wrong = [starts[0], starts[1] + 3];
        assert!(matches!(read(&recording, &wrong), Outcome::SeamMismatch));
    }

    #[test]
    fn damage_in_a_part_keeps_what_came_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.mscr");
        write(&path);
        let (starts, end) = {
            let recording = Recording::open(&path).unwrap();
            (part_starts(&recording, 4), recording.data_end())
        };
        // A flipped byte in the first frame of the third part: its CRC
        // fails, the index at the end still opens the file.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[starts[2] as usize + 20] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let recording = Recording::open(&path).unwrap();
        assert_eq!(recording.data_end(), end);
        let Outcome::Read(builder, Some(damage)) = read(&recording, &starts) else {
            panic!("the damage is reported");
        };
        assert!(damage.to_string().contains("checksum"), "{damage}");
        let overview = builder.finish(end);
        let events = overview.events_of(1) + overview.events_of(2);
        let one = match read(&recording, &starts[..1]) {
            Outcome::Read(one, Some(_)) => one.finish(end),
            _ => panic!("one pass stops at the same damage"),
        };
        assert_eq!(events, one.events_of(1) + one.events_of(2));
        assert!(events < FRAMES * EVENTS_PER_FRAME);
    }
}
