//! Recording from the window: the reader thread hands every message it
//! receives to the [`Recorder`] before converting it for the UI, so a
//! recording made here holds exactly what `microscope record` would.
//!
//! The recorder also remembers the helper's hello and its latest probe list,
//! which a recording's header needs when one starts mid-session.

use microscope_wire::{
    HelperInfo, HelperMessage, ProbeInfo, RecordingHeader, RecordingTotals, RecordingWriter,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shared by the app (start, stop, status) and the reader thread (write).
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    hello: Option<HelperInfo>,
    probes: Vec<ProbeInfo>,
    active: Option<Active>,
    /// How the last recording ended, in a sentence.
    outcome: Option<String>,
}

struct Active {
    writer: RecordingWriter,
    path: PathBuf,
    started: Instant,
    totals: RecordingTotals,
}

/// A recording in progress, for the UI.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingStatus {
    /// The file.
    pub path: PathBuf,
    /// How long it has been recording.
    pub elapsed: Duration,
    /// Streamed events written so far.
    pub events: u64,
}

impl Recorder {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: go on.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes note of `message` and writes it if a recording is on. A write
    /// error ends the recording with a sentence in [`Recorder::outcome`].
    pub fn observe(&self, message: &HelperMessage) {
        let mut state = self.state();
        match message {
            HelperMessage::Hello(info) => state.hello = Some(info.clone()),
            HelperMessage::Probes(probes) => state.probes = probes.clone(),
            HelperMessage::ProbeAdded(probe) => {
                state.probes.retain(|p| p.key != probe.key);
                state.probes.push(probe.clone());
            }
            _ => {}
        }
        // Cost reports describe the live machine while someone watched; they
        // are not written, so recordings keep the v4 message set and open in
        // older builds too.
        if matches!(
            message,
            HelperMessage::Cost(_) | HelperMessage::CostWatch { .. }
        ) {
            return;
        }
        let Some(active) = &mut state.active else {
            return;
        };
        let write = active.writer.write_received(message);
        match write {
            Ok(()) => active.totals.add(0, message),
            Err(err) => {
                let path = active.path.display().to_string();
                state.active = None;
                state.outcome = Some(format!("recording to {path} stopped: {err}"));
            }
        }
    }

    /// Starts recording to `path` (never over an existing file), with
    /// `enabled` marked as on in the header. An error is a sentence.
    pub fn start(&self, path: &Path, enabled: &BTreeSet<String>) -> Result<(), String> {
        let mut state = self.state();
        if state.active.is_some() {
            return Err("a recording is already running; stop it first".to_owned());
        }
        let Some(hello) = state.hello.clone() else {
            return Err("not connected to the helper: there is nothing to record yet".to_owned());
        };
        let probes = state
            .probes
            .iter()
            .map(|p| ProbeInfo {
                enabled: enabled.contains(&p.id),
                ..p.clone()
            })
            .collect();
        let header = RecordingHeader::new(hello, probes, "recorded from the Microscope window");
        let writer =
            RecordingWriter::create(path, &header, false).map_err(|err| err.to_string())?;
        state.active = Some(Active {
            writer,
            path: path.to_owned(),
            started: Instant::now(),
            totals: RecordingTotals::default(),
        });
        state.outcome = None;
        Ok(())
    }

    /// Stops the recording, writing its index; returns a sentence saying
    /// what was written.
    pub fn stop(&self) -> Option<String> {
        let mut state = self.state();
        let active = state.active.take()?;
        let outcome = match active.writer.finish() {
            Ok(_) => format!(
                "recorded {} events in {:.1} s to {}",
                active.totals.events,
                active.started.elapsed().as_secs_f64(),
                active.path.display()
            ),
            Err(err) => format!(
                "the recording {} could not be finished: {err}; it opens up to its last whole frame",
                active.path.display()
            ),
        };
        state.outcome = Some(outcome.clone());
        Some(outcome)
    }

    /// The recording in progress, if any.
    pub fn status(&self) -> Option<RecordingStatus> {
        self.state().active.as_ref().map(|a| RecordingStatus {
            path: a.path.clone(),
            elapsed: a.started.elapsed(),
            events: a.totals.events,
        })
    }

    /// How the last recording ended.
    pub fn outcome(&self) -> Option<String> {
        self.state().outcome.clone()
    }
}

/// A new file name for a recording started now, in `dir`.
pub fn default_path(dir: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    dir.join(format!("microscope-{secs}.mscr"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::{Availability, Capabilities, EventBatch, Recording};

    fn hello() -> HelperInfo {
        let yes = || Availability::yes("test");
        HelperInfo {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0-test".into(),
            capabilities: Capabilities {
                tracefs: yes(),
                btf: yes(),
                kprobes: yes(),
                fentry: yes(),
                uprobes: yes(),
            },
        }
    }

    #[test]
    fn records_what_arrives_between_start_and_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.mscr");
        let recorder = Recorder::default();
        let err = recorder
            .start(&path, &BTreeSet::new())
            .expect_err("no hello yet");
        assert!(err.contains("not connected"), "{err}");
        recorder.observe(&HelperMessage::Hello(hello()));
        recorder.observe(&HelperMessage::Batch(EventBatch::default()));
        recorder.start(&path, &BTreeSet::new()).expect("start");
        assert!(
            recorder.start(&path, &BTreeSet::new()).is_err(),
            "only one at a time"
        );
        recorder.observe(&HelperMessage::Batch(EventBatch::default()));
        recorder.observe(&HelperMessage::Error {
            message: "x".into(),
        });
        let outcome = recorder.stop().expect("was recording");
        assert!(outcome.contains("recorded 0 events"), "{outcome}");
        assert!(recorder.status().is_none());
        let recording = Recording::open(&path).expect("open");
        assert_eq!(recording.summary().totals.frames, 2);
        // Never over an existing file.
        let err = recorder.start(&path, &BTreeSet::new()).expect_err("exists");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
