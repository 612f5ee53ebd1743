//! Replaying a recording: a named thread that plays a recording's frames into
//! the same update channel the live ingest thread feeds, so every view works
//! the same on a replay as on live data, without root.
//!
//! ```text
//!  UI ──ReplayControl──▶ microscope-replay ◀── Recording (file)
//!  UI ◀──Update──────────┘
//! ```
//!
//! Time: a frame received `recv_ns` after the recording started is delivered
//! as if it arrived at `epoch + recv_ns`, where `epoch` is the model's
//! timeline epoch. So the timeline's x axis is "seconds since the recording
//! started" whatever the speed, and a replay at 1× draws the same picture the
//! live session drew.
//!
//! Seeking forward plays the frames in between as fast as possible; seeking
//! backward resets the model ([`Update::ReplayReset`]) and plays from the
//! start, because the timeline's history is built from every frame before the
//! playhead.

use crate::Wake;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use microscope_model::update_from_message;
use microscope_model::{Probe, ProbeKind, ReplaySpeed, ReplayStatus, Update};
use microscope_wire::{Frames, RecordedFrame, Recording};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the playhead position is reported while playing.
const POSITION_INTERVAL: Duration = Duration::from_millis(50);

/// What the replay bar asks of the replay thread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReplayControl {
    /// Start or resume.
    Play,
    /// Stop the playhead where it is.
    Pause,
    /// Change speed (the playhead keeps its place).
    Speed(ReplaySpeed),
    /// Move the playhead to this many ns since the recording started.
    Seek(u64),
}

/// Starts replaying the recording at `path`. Dropping the control sender (or
/// the update receiver) ends the thread.
pub fn spawn_replay(
    path: PathBuf,
    epoch: Instant,
    updates: Sender<Update>,
    controls: Receiver<ReplayControl>,
    wake: Wake,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("microscope-replay".to_owned())
        .spawn(move || {
            let recording = match Recording::open(&path) {
                Ok(recording) => recording,
                Err(err) => {
                    let _ = updates.send(Update::ReplayFailed {
                        reason: err.to_string(),
                    });
                    wake();
                    return;
                }
            };
            let mut player = Player::new(recording, path, epoch, updates, controls, wake);
            player.run();
        })
}

/// Why playing stopped.
enum Stop {
    /// The UI is gone.
    Gone,
}

struct Player {
    recording: Recording,
    path: PathBuf,
    epoch: Instant,
    updates: Sender<Update>,
    controls: Receiver<ReplayControl>,
    wake: Wake,
    duration_ns: u64,
    frames: Option<Frames>,
    /// The next frame, read but not yet delivered.
    pending: Option<RecordedFrame>,
    /// Playhead: ns since the recording started.
    position_ns: u64,
    /// `recv_ns` of the last frame delivered.
    delivered_ns: u64,
    playing: bool,
    speed: ReplaySpeed,
    /// Wall time at which the playhead was at `position_ns` (while playing).
    anchor: Instant,
    last_report: Instant,
}

impl Player {
    fn new(
        recording: Recording,
        path: PathBuf,
        epoch: Instant,
        updates: Sender<Update>,
        controls: Receiver<ReplayControl>,
        wake: Wake,
    ) -> Self {
        let summary = recording.summary();
        let duration_ns = summary.totals.recv_span_ns.map_or(0, |(_, last)| last);
        let now = Instant::now();
        Self {
            recording,
            path,
            epoch,
            updates,
            controls,
            wake,
            duration_ns,
            frames: None,
            pending: None,
            position_ns: 0,
            delivered_ns: 0,
            playing: true,
            speed: ReplaySpeed::Times(1.0),
            anchor: now,
            last_report: now,
        }
    }

    fn send(&self, update: Update) -> Result<(), Stop> {
        self.updates.send(update).map_err(|_| Stop::Gone)?;
        (self.wake)();
        Ok(())
    }

    fn status(&self) -> ReplayStatus {
        ReplayStatus {
            path: self.path.clone(),
            position_ns: self.position_ns,
            duration_ns: self.duration_ns,
            playing: self.playing,
            speed: self.speed,
            reported_at: Instant::now(),
            damage: self.recording.damage().map(ToString::to_string),
        }
    }

    fn run(&mut self) {
        // `Stop::Gone` is the only way out: the UI closed.
        let _ = self.play_from_start().and_then(|()| self.main_loop());
    }

    /// Resets the model and rewinds to the first frame.
    fn play_from_start(&mut self) -> Result<(), Stop> {
        let header = self.recording.header().clone();
        self.send(Update::ReplayReset)?;
        self.send(Update::Connected(header.helper.into()))?;
        // The probes as recorded, ticked when the recording has their data.
        let totals = self.recording.summary().totals;
        let probes = header
            .probes
            .into_iter()
            .map(|wire_probe| {
                let key = wire_probe.key;
                let mut probe = Probe::from(wire_probe);
                probe.enabled = totals.events_per_probe.get(&key).is_some_and(|n| *n > 0)
                    || (probe.kind != ProbeKind::Stream && totals.aggregates > 0);
                probe
            })
            .collect();
        self.send(Update::Probes(probes))?;
        self.frames = self.recording.frames().ok();
        self.pending = None;
        self.position_ns = 0;
        self.delivered_ns = 0;
        self.anchor = Instant::now();
        self.send(Update::Replay(self.status()))
    }

    fn next_frame(&mut self) -> Option<RecordedFrame> {
        if let Some(frame) = self.pending.take() {
            return Some(frame);
        }
        match self.frames.as_mut()?.next()? {
            Ok(frame) => Some(frame),
            Err(err) => {
                // Damage found while reading: stop here, say so once.
                log::warn!("{err}");
                self.frames = None;
                None
            }
        }
    }

    fn deliver(&mut self, frame: RecordedFrame) -> Result<(), Stop> {
        self.delivered_ns = frame.recv_ns;
        let arrived = self.epoch + Duration::from_nanos(frame.recv_ns);
        match update_from_message(frame.message, arrived) {
            Some(update) => self.send(update),
            None => Ok(()),
        }
    }

    /// Delivers every frame up to `to_ns` at once.
    fn fast_forward(&mut self, to_ns: u64) -> Result<(), Stop> {
        while let Some(frame) = self.next_frame() {
            if frame.recv_ns > to_ns {
                self.pending = Some(frame);
                break;
            }
            self.deliver(frame)?;
        }
        self.position_ns = to_ns.min(self.duration_ns);
        self.anchor = Instant::now();
        Ok(())
    }

    fn apply(&mut self, control: ReplayControl) -> Result<(), Stop> {
        match control {
            ReplayControl::Play => {
                if self.position_ns >= self.duration_ns {
                    self.play_from_start()?;
                }
                self.playing = true;
                self.anchor = Instant::now();
            }
            ReplayControl::Pause => {
                self.position_ns = self.playhead_now();
                self.playing = false;
            }
            ReplayControl::Speed(speed) => {
                self.position_ns = self.playhead_now();
                self.anchor = Instant::now();
                self.speed = speed;
            }
            ReplayControl::Seek(to_ns) => {
                let to_ns = to_ns.min(self.duration_ns);
                if to_ns < self.position_ns {
                    let playing = self.playing;
                    self.play_from_start()?;
                    self.playing = playing;
                }
                self.fast_forward(to_ns)?;
            }
        }
        self.send(Update::Replay(self.status()))
    }

    /// Where the playhead is now, from the anchor and the speed.
    fn playhead_now(&self) -> u64 {
        if !self.playing {
            return self.position_ns;
        }
        match self.speed {
            // As fast as possible: the playhead is wherever delivery got to.
            ReplaySpeed::Max => self.delivered_ns.max(self.position_ns),
            ReplaySpeed::Times(factor) => {
                let advanced = (self.anchor.elapsed().as_nanos() as f64 * factor) as u64;
                self.position_ns
                    .saturating_add(advanced)
                    .min(self.duration_ns)
            }
        }
    }

    fn main_loop(&mut self) -> Result<(), Stop> {
        loop {
            if !self.playing {
                match self.controls.recv() {
                    Ok(control) => self.apply(control)?,
                    Err(_) => return Err(Stop::Gone),
                }
                continue;
            }
            let Some(frame) = self.next_frame() else {
                // The end: stop at the last frame, wait for a seek or play.
                self.position_ns = self.duration_ns;
                self.playing = false;
                self.send(Update::Replay(self.status()))?;
                continue;
            };
            // Wait until the frame is due, taking controls meanwhile.
            let due = self.due_at(frame.recv_ns);
            let now = Instant::now();
            if due > now {
                self.pending = Some(frame);
                let wait = (due - now).min(POSITION_INTERVAL);
                match self.controls.recv_timeout(wait) {
                    Ok(control) => self.apply(control)?,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Err(Stop::Gone),
                }
                self.report_position()?;
                continue;
            }
            self.deliver(frame)?;
            // At max speed controls still get through between frames.
            if let Ok(control) = self.controls.try_recv() {
                self.apply(control)?;
            }
            self.report_position()?;
        }
    }

    /// Wall time at which a frame received at `recv_ns` is due.
    fn due_at(&self, recv_ns: u64) -> Instant {
        match self.speed {
            ReplaySpeed::Max => self.anchor,
            ReplaySpeed::Times(factor) => {
                let ahead_ns = recv_ns.saturating_sub(self.position_ns) as f64 / factor;
                self.anchor + Duration::from_nanos(ahead_ns as u64)
            }
        }
    }

    fn report_position(&mut self) -> Result<(), Stop> {
        if self.last_report.elapsed() < POSITION_INTERVAL {
            return Ok(());
        }
        self.last_report = Instant::now();
        let position = self.playhead_now();
        let status = ReplayStatus {
            position_ns: position,
            ..self.status()
        };
        self.send(Update::Replay(status))
    }
}
