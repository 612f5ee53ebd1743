//! Browsing a recording: a named thread that reads the file for the views
//! of a replay, so they reach every moment of a recording of any size while
//! memory stays bounded.
//!
//! ```text
//!  UI ──BrowseRequest──▶ microscope-browse ◀── Recording (file)
//!  UI ◀──Update::Browse──┘
//! ```
//!
//! First it reads every frame once, fast (borrowed strings, no allocation
//! per event: [`Recording::glance`]), on every core (`overview.rs`), into a
//! [`RecordingOverview`](microscope_model::RecordingOverview), reporting
//! its progress. Then it answers requests: the scheduler slices of a time
//! range ([`CpuWindow`]), built with the same [`CpuTimeline`] code as live
//! data from the chunks of the file that hold them, and pages of one
//! probe's events ([`EventPage`]) for the inspector, and every event of a
//! time range around one system call ([`CallEvents`]) for the waterfall.
//! Requests that queued up
//! while it was busy are coalesced: only the newest of each kind is read.
//!
//! The replay thread still plays the recording into the model for the
//! views that aggregate (rates, histograms, flame graph, map); this thread
//! serves the views that show single events.

use crate::Wake;
use crate::overview::build_overview;
use crossbeam_channel::{Receiver, Sender};
use microscope_model::waterfall::{CallEvents, MAX_CALL_EVENTS, observe_keyed};
use microscope_model::{
    BrowseUpdate, CpuTimeline, CpuWindow, EventPage, Probe, RecordingOverview, Update,
    sched_records,
};
use microscope_wire::{HelperMessage, ProbeKey, Recording};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Most `sched_switch` events read for one window; a larger request gets
/// the start of its range (the view asks for far less: see the CPU
/// timeline view).
pub const MAX_WINDOW_SWITCHES: u64 = 4_000_000;
/// Most events in one page.
pub const MAX_PAGE_EVENTS: usize = 10_000;

/// What the views ask of the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowseRequest {
    /// The scheduler slices of `from_ns..to_ns` (kernel ns).
    CpuWindow {
        /// Start of the range.
        from_ns: u64,
        /// End of the range.
        to_ns: u64,
    },
    /// `count` events of `probe` from its event number `first` (from 0).
    Events {
        /// The probe.
        probe: ProbeKey,
        /// Number of the first event.
        first: u64,
        /// How many (at most [`MAX_PAGE_EVENTS`]).
        count: usize,
    },
    /// Every event of `from_ns..=to_ns`, to follow the call of thread `tid`
    /// running at `at_ns` (at most [`MAX_CALL_EVENTS`]).
    CallEvents {
        /// The calling thread.
        tid: u32,
        /// A moment in the call (its entry, or an event in it).
        at_ns: u64,
        /// Start of the range, kernel ns.
        from_ns: u64,
        /// End of the range, kernel ns.
        to_ns: u64,
    },
}

/// Starts the browser of the recording at `path`. Dropping the request
/// sender (or the update receiver) ends the thread.
pub fn spawn_browser(
    path: PathBuf,
    updates: Sender<Update>,
    requests: Receiver<BrowseRequest>,
    wake: Wake,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("microscope-browse".to_owned())
        .spawn(move || {
            let send = |update: BrowseUpdate| {
                let sent = updates.send(Update::Browse(update)).is_ok();
                wake();
                sent
            };
            let recording = match Recording::open(&path) {
                Ok(recording) => recording,
                Err(err) => {
                    send(BrowseUpdate::Failed(err.to_string()));
                    return;
                }
            };
            let Some(overview) = build_overview(&recording, &send) else {
                return;
            };
            let overview = Arc::new(overview);
            let probes: Vec<Probe> = recording
                .header()
                .probes
                .iter()
                .cloned()
                .map(Probe::from)
                .collect();
            if !send(BrowseUpdate::Overview(Arc::clone(&overview))) {
                return;
            }
            while let Ok(first) = requests.recv() {
                for request in coalesce(first, &requests) {
                    let update = match request {
                        BrowseRequest::CpuWindow { from_ns, to_ns } => {
                            cpu_window(&recording, &overview, from_ns, to_ns)
                                .map(|window| BrowseUpdate::CpuWindow(Arc::new(window)))
                        }
                        BrowseRequest::Events {
                            probe,
                            first,
                            count,
                        } => event_page(&recording, &overview, probe, first, count)
                            .map(|page| BrowseUpdate::Page(Arc::new(page))),
                        BrowseRequest::CallEvents {
                            tid,
                            at_ns,
                            from_ns,
                            to_ns,
                        } => {
                            call_events(&recording, &overview, &probes, tid, at_ns, from_ns..=to_ns)
                                .map(|events| BrowseUpdate::CallEvents(Arc::new(events)))
                        }
                    };
                    let update = update.unwrap_or_else(BrowseUpdate::Failed);
                    if !send(update) {
                        return;
                    }
                }
            }
        })
}

/// Reads the recording at `path` whole, as a replay would play it, into a
/// [`Baseline`](microscope_model::Baseline) sent as one update; a file that
/// cannot be read gets a sentence instead.
pub fn spawn_baseline(
    path: PathBuf,
    updates: Sender<Update>,
    wake: Wake,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("microscope-baseline".to_owned())
        .spawn(move || {
            let update = match read_baseline(&path) {
                Ok(baseline) => BrowseUpdate::Baseline(Arc::new(baseline)),
                Err(reason) => BrowseUpdate::Failed(format!(
                    "could not open {} as the baseline: {reason}",
                    path.display()
                )),
            };
            let _ = updates.send(Update::Browse(update));
            wake();
        })
}

fn read_baseline(path: &std::path::Path) -> Result<microscope_model::Baseline, String> {
    use microscope_model::{Model, Probe, update_from_message};
    let recording = Recording::open(path).map_err(|err| err.to_string())?;
    let epoch = Instant::now();
    let mut model = Model::for_replay(epoch, false);
    let header = recording.header().clone();
    model.apply(Update::Connected(header.helper.into()));
    let mut probes: Vec<Probe> = header.probes.into_iter().map(Probe::from).collect();
    for probe in &mut probes {
        probe.enabled = true;
    }
    model.apply(Update::Probes(probes));
    for frame in recording.frames().map_err(|err| err.to_string())? {
        // Damage: compare what came before it.
        let Ok(frame) = frame else { break };
        let arrived = epoch + Duration::from_nanos(frame.recv_ns);
        if let Some(update) = update_from_message(frame.message, arrived) {
            model.apply(update);
        }
    }
    Ok(microscope_model::Baseline::from_model(
        path.to_owned(),
        model,
    ))
}

/// The newest request of each kind among `first` and those waiting.
fn coalesce(first: BrowseRequest, requests: &Receiver<BrowseRequest>) -> Vec<BrowseRequest> {
    let mut window = None;
    let mut page = None;
    let mut call = None;
    for request in std::iter::once(first).chain(requests.try_iter()) {
        match request {
            BrowseRequest::CpuWindow { .. } => window = Some(request),
            BrowseRequest::Events { .. } => page = Some(request),
            BrowseRequest::CallEvents { .. } => call = Some(request),
        }
    }
    window.into_iter().chain(page).chain(call).collect()
}

/// The slices of `from_ns..to_ns`, from the chunks that hold them.
pub fn cpu_window(
    recording: &Recording,
    overview: &RecordingOverview,
    from_ns: u64,
    to_ns: u64,
) -> Result<CpuWindow, String> {
    let Some(anchor) = overview.anchor else {
        return Err("this recording has no scheduler events to show".to_owned());
    };
    let mut window = CpuWindow::new(from_ns, to_ns, anchor);
    let chunks = overview.chunks_for_window(from_ns, to_ns);
    let (Some(first), Some(last)) = (
        overview.chunks.get(chunks.start),
        chunks
            .end
            .checked_sub(1)
            .and_then(|i| overview.chunks.get(i)),
    ) else {
        return Ok(window);
    };
    let mut frames = recording
        .frames_from(first.offset)
        .map_err(|err| err.to_string())?;
    let mut timeline: CpuTimeline = window.timeline;
    while frames.offset() < last.end_offset {
        let Some(frame) = frames.next() else {
            break;
        };
        let frame = frame.map_err(|err| err.to_string())?;
        if let HelperMessage::Batch(batch) = frame.message {
            timeline.apply(sched_records(batch.events), 0.0);
        }
        if timeline.len() as u64 >= MAX_WINDOW_SWITCHES {
            // Too much asked: keep the start of the range.
            window.to_ns = timeline.latest_ns().min(window.to_ns);
            break;
        }
    }
    window.timeline = timeline;
    Ok(window)
}

/// `count` events of `probe` from its event number `first`.
pub fn event_page(
    recording: &Recording,
    overview: &RecordingOverview,
    probe: ProbeKey,
    first: u64,
    count: usize,
) -> Result<EventPage, String> {
    let total = overview.events_of(probe);
    let count = count.min(MAX_PAGE_EVENTS);
    let mut page = EventPage {
        probe,
        first,
        events: Vec::with_capacity(count),
        total,
    };
    let Some((chunk, mut skip)) = overview.locate_event(probe, first) else {
        return Ok(page);
    };
    let offset = overview.chunks.get(chunk).map_or(0, |c| c.offset);
    let frames = recording
        .frames_from(offset)
        .map_err(|err| err.to_string())?;
    for frame in frames {
        let frame = frame.map_err(|err| err.to_string())?;
        let HelperMessage::Batch(batch) = frame.message else {
            continue;
        };
        for event in batch.events.into_iter().filter(|e| e.probe == probe) {
            if skip > 0 {
                skip -= 1;
            } else if page.events.len() < count {
                page.events.push(event);
            }
        }
        if page.events.len() >= count {
            break;
        }
    }
    Ok(page)
}

/// Every event of `range` (kernel ns), from the chunks whose events
/// overlap it, for following the call of `tid` at `at_ns`.
pub fn call_events(
    recording: &Recording,
    overview: &RecordingOverview,
    probes: &[Probe],
    tid: u32,
    at_ns: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<CallEvents, String> {
    let overlaps = |chunk: &&microscope_model::Chunk| {
        chunk
            .ts_span
            .is_some_and(|(first, last)| first <= *range.end() && last >= *range.start())
    };
    let mut raw = Vec::new();
    let mut truncated = false;
    for chunk in overview.chunks.iter().filter(overlaps) {
        let mut frames = recording
            .frames_from(chunk.offset)
            .map_err(|err| err.to_string())?;
        while frames.offset() < chunk.end_offset {
            let Some(frame) = frames.next() else {
                break;
            };
            let frame = frame.map_err(|err| err.to_string())?;
            let HelperMessage::Batch(batch) = frame.message else {
                continue;
            };
            for event in batch.events {
                if !range.contains(&event.ts_ns) {
                    continue;
                }
                if raw.len() >= MAX_CALL_EVENTS {
                    truncated = true;
                    break;
                }
                raw.push(event);
            }
        }
    }
    Ok(CallEvents {
        tid,
        at_ns,
        from_ns: *range.start(),
        to_ns: *range.end(),
        events: observe_keyed(probes, &raw),
        truncated,
    })
}
