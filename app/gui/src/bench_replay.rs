//! What `cargo xtask bench replay` measures: the real app (the whole window,
//! headless) replaying a large recording. Behind `microscope __bench-replay`.
//!
//! - **open**: from asking the app to replay the file to the first frame
//!   that shows it (replay bar, probes), and to the frame where the
//!   recording's overview is read, after which every moment is reachable.
//! - **time to a moment**: the CPU timeline zoomed to 1 ms at the start, a
//!   quarter, the middle, three quarters and the end of the recording, until
//!   that millisecond's slices are drawn from the file; the inspector's last
//!   page of events, until shown.
//! - **UI time per frame**: the CPU timeline over the whole recording while
//!   panning, while zooming from the whole recording to 1 ms, and zoomed
//!   in while panning; the inspector on a page. Each frame is timed as in
//!   `bench.rs` (the UI thread's CPU time and the wall clock of an egui pass
//!   plus tessellation). The replay is paused, so frames measure the views,
//!   not the playback's updates.
//! - the Rates timeline with 1 million points per series (`rates_frame_times`).

use crate::bench::{Percentiles, thread_cpu_time};
use crate::views::timeline_ui;
use crate::{CentralTab, Command, CommandQueue, MicroscopeApp};
use crossbeam_channel::bounded;
use egui::{Event, Pos2, RawInput, Rect, Vec2};
use microscope_model::{BUCKET, Model, ProbeKind};
use microscope_sources::ReplayControl;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest wait for anything (a stuck app fails instead of hanging).
const PATIENCE: Duration = Duration::from_secs(300);
/// Frames before measuring.
const WARM_UP_FRAMES: usize = 5;

/// One measured scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// What was drawn.
    pub name: String,
    /// UI thread CPU time per frame.
    pub cpu: Percentiles,
    /// Wall clock per frame.
    pub wall: Percentiles,
}

/// Everything `__bench-replay` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayBenchReport {
    /// From the request to the first frame showing the recording.
    pub first_frame_ms: f64,
    /// From the request to the frame with the overview read.
    pub overview_ms: f64,
    /// Events in the recording.
    pub events: u64,
    /// Time to reach each moment: (where, ms).
    pub moments: Vec<(String, f64)>,
    /// Per-frame times.
    pub scenarios: Vec<Scenario>,
}

struct Runner {
    ctx: egui::Context,
    app: MicroscopeApp,
    screen: Rect,
    clock: u64,
}

impl Runner {
    /// One frame; returns (CPU, wall) time.
    fn frame(&mut self, events: Vec<Event>) -> (Duration, Duration) {
        self.clock += 1;
        let input = RawInput {
            screen_rect: Some(self.screen),
            time: Some(self.clock as f64 / 60.0),
            events,
            ..RawInput::default()
        };
        let started = Instant::now();
        let cpu_started = thread_cpu_time();
        let app = &mut self.app;
        let mut output = self.ctx.run_ui(input, |ui| app.show_ui(ui));
        let shapes = std::mem::take(&mut output.shapes);
        black_box(self.ctx.tessellate(shapes, output.pixels_per_point).len());
        output.drop_without_applying_deltas();
        (
            thread_cpu_time().saturating_sub(cpu_started),
            started.elapsed(),
        )
    }

    /// Frames until `done`, at most [`PATIENCE`]; the time it took.
    fn until(
        &mut self,
        what: &str,
        done: impl Fn(&MicroscopeApp) -> bool,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        while !done(&self.app) {
            if started.elapsed() > PATIENCE {
                return Err(format!("waited {PATIENCE:?} for {what}"));
            }
            self.frame(Vec::new());
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(started.elapsed())
    }

    /// `frames` frames, before each of which `step` may change the app and
    /// give input events; timed.
    fn measure(
        &mut self,
        name: &str,
        frames: usize,
        mut step: impl FnMut(&mut MicroscopeApp, usize) -> Vec<Event>,
    ) -> Scenario {
        let (mut cpu, mut wall) = (Vec::new(), Vec::new());
        for frame in 0..WARM_UP_FRAMES + frames {
            let events = step(&mut self.app, frame);
            let (c, w) = self.frame(events);
            if frame >= WARM_UP_FRAMES {
                cpu.push(c);
                wall.push(w);
            }
        }
        Scenario {
            name: name.to_owned(),
            cpu: Percentiles::of(cpu),
            wall: Percentiles::of(wall),
        }
    }
}

/// Replays `path` in the real app and measures it (see the module docs).
pub fn replay_frame_times(path: &Path, frames: usize) -> Result<ReplayBenchReport, String> {
    let (_updates, update_rx) = bounded(1);
    let (to_helper, _helper_rx) = bounded(1);
    let mut runner = Runner {
        ctx: egui::Context::default(),
        app: MicroscopeApp::new(update_rx, to_helper),
        screen: Rect::from_min_size(Pos2::ZERO, Vec2::new(1280.0, 800.0)),
        clock: 0,
    };
    let started = Instant::now();
    let ctx = runner.ctx.clone();
    runner.app.start_replay(path.to_owned(), false, &ctx);
    runner.app.request(Command::Replay(ReplayControl::Pause));
    runner.app.request(Command::ShowTab(CentralTab::Cpus));
    runner.until("the first frame of the replay", |app| {
        app.model().replay.is_some() && !app.model().probes.is_empty()
    })?;
    let first_frame_ms = started.elapsed().as_secs_f64() * 1e3;
    runner.until("the recording's overview", |app| {
        app.model().browse.overview.is_some() || app.model().browse.error.is_some()
    })?;
    let overview_ms = started.elapsed().as_secs_f64() * 1e3;
    let overview = runner
        .app
        .model()
        .browse
        .overview
        .clone()
        .ok_or_else(|| runner.app.model().browse.error.clone().unwrap_or_default())?;
    let events = overview.events_per_probe.values().sum();
    let (Some(first), Some(last)) = (
        overview.secs_of(overview.start_ns),
        overview.secs_of(overview.end_ns),
    ) else {
        return Err("the recording has no scheduler events".to_owned());
    };
    let span = last - first;
    let show = |app: &mut MicroscopeApp, from: f64, to: f64| {
        app.request(Command::ShowCpuRange {
            from_secs: from,
            to_secs: to,
        });
    };

    // Time to a moment: 1 ms of slices there, read from the file.
    let mut moments = Vec::new();
    for (name, at) in [
        ("start", 0.0),
        ("a quarter", 0.25),
        ("middle", 0.5),
        ("three quarters", 0.75),
        ("end", 1.0),
    ] {
        let to = (first + span * at + 0.001).min(last);
        show(&mut runner.app, to - 0.001, to);
        let (Some(from_ns), Some(to_ns)) = (overview.ns_at(to - 0.001), overview.ns_at(to)) else {
            continue;
        };
        let took = runner.until(&format!("the slices at the {name}"), |app| {
            app.model()
                .browse
                .cpu_window
                .as_ref()
                .is_some_and(|w| w.covers(from_ns, to_ns))
        })?;
        moments.push((
            format!("CPU timeline, 1 ms at the {name}"),
            took.as_secs_f64() * 1e3,
        ));
    }

    let mut scenarios = Vec::new();
    // The whole recording, panning a little each frame.
    scenarios.push(runner.measure(
        "CPU timeline: whole recording, panning",
        frames,
        |app, frame| {
            let shift = span * 0.002 * (frame % 50) as f64;
            show(app, first + shift, last + shift);
            Vec::new()
        },
    ));
    // Zooming in from the whole recording to 1 ms around the middle, then out.
    let middle = first + span / 2.0;
    scenarios.push(runner.measure(
        "CPU timeline: zooming whole ↔ 1 ms",
        frames,
        |app, frame| {
            let steps = 60;
            let phase = frame % (2 * steps);
            let t = if phase < steps {
                phase
            } else {
                2 * steps - phase
            } as f64
                / steps as f64;
            let width = span * (0.001 / span).powf(t);
            show(app, middle - width / 2.0, middle + width / 2.0);
            Vec::new()
        },
    ));
    // Zoomed in on 2 ms, panning by a tenth each frame (new ranges are read
    // as needed).
    scenarios.push(
        runner.measure("CPU timeline: 2 ms, panning", frames, |app, frame| {
            let from = middle + 0.0002 * frame as f64;
            show(app, from, from + 0.002);
            Vec::new()
        }),
    );
    // The pointer over the lanes: tooltips, zoomed out and in.
    scenarios.push(runner.measure(
        "CPU timeline: whole recording, hovering",
        frames,
        |app, frame| {
            show(app, first, last);
            vec![Event::PointerMoved(Pos2::new(
                150.0 + (frame * 7 % 1100) as f32,
                140.0,
            ))]
        },
    ));

    // The inspector: the last page of the first streamed probe.
    runner.app.request(Command::ShowTab(CentralTab::Events));
    runner.until("the inspector's first page", |app| {
        app.model().browse.page.is_some()
    })?;
    let probe = runner
        .app
        .model()
        .probes
        .iter()
        .find(|p| p.kind.is_streamed() && overview.events_of(p.key) > 0)
        .map(|p| p.key)
        .ok_or("the recording has no streamed events")?;
    let total = overview.events_of(probe);
    let last_page = total.saturating_sub(crate::views::PAGE_EVENTS as u64);
    runner.app.set_inspector_page(last_page);
    let took = runner.until("the inspector's last page", |app| {
        app.model()
            .browse
            .page
            .as_ref()
            .is_some_and(|p| p.first == last_page)
    })?;
    moments.push((
        "inspector, last page of events".to_owned(),
        took.as_secs_f64() * 1e3,
    ));
    scenarios.push(
        runner.measure("inspector: a page of 1 000 events", frames, |_, _| {
            Vec::new()
        }),
    );

    Ok(ReplayBenchReport {
        first_frame_ms,
        overview_ms,
        events,
        moments,
        scenarios,
    })
}

/// The Rates timeline with `points` points in each of two series: per-frame
/// times following the last minute, and over the whole history.
pub fn rates_frame_times(points: usize, frames: usize) -> Vec<Scenario> {
    let epoch = Instant::now();
    let mut model = Model::new(epoch);
    model.apply(microscope_model::Update::Probes(
        ["a:one", "b:two"]
            .into_iter()
            .enumerate()
            .map(|(key, id)| microscope_model::Probe {
                fields: Vec::new(),
                id: id.to_owned(),
                key: key as u64,
                subsystem: "Bench".to_owned(),
                description: String::new(),
                kind: ProbeKind::Stream,
                unavailable_reason: None,
                enabled: true,
            })
            .collect(),
    ));
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for bucket in 0..points as u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let at = epoch + BUCKET * u32::try_from(bucket).unwrap_or(u32::MAX);
        model.timeline.record("a:one", at, 1000 + rng % 5000);
        model.timeline.record("b:two", at, rng % 300);
    }
    let now = epoch + BUCKET * u32::try_from(points).unwrap_or(u32::MAX);
    let ctx = egui::Context::default();
    let screen = Rect::from_min_size(Pos2::ZERO, Vec2::new(1280.0, 800.0));
    let mut scenarios = Vec::new();
    for (name, follow) in [
        ("Rates: following the last minute", true),
        ("Rates: whole history (zoomed out), panning", false),
    ] {
        let (mut cpu, mut wall) = (Vec::new(), Vec::new());
        let mut commands = CommandQueue::default();
        for frame in 0..WARM_UP_FRAMES + frames {
            let mut input = RawInput {
                screen_rect: Some(screen),
                time: Some(frame as f64 / 60.0),
                ..RawInput::default()
            };
            if !follow && frame == 1 {
                // A double click fits the plot to all of its data.
                for pressed in [true, false, true, false] {
                    input.events.push(Event::PointerButton {
                        pos: Pos2::new(640.0, 300.0),
                        button: egui::PointerButton::Primary,
                        pressed,
                        modifiers: egui::Modifiers::default(),
                    });
                }
            }
            if !follow && frame > WARM_UP_FRAMES {
                input
                    .events
                    .push(Event::PointerMoved(Pos2::new(640.0, 300.0)));
            }
            let started = Instant::now();
            let cpu_started = thread_cpu_time();
            let mut output = ctx.run_ui(input, |ui| {
                egui::CentralPanel::default().show(ui, |ui| {
                    timeline_ui(ui, &model, follow, now, 500.0, &mut commands);
                });
            });
            let shapes = std::mem::take(&mut output.shapes);
            black_box(ctx.tessellate(shapes, output.pixels_per_point).len());
            output.drop_without_applying_deltas();
            if frame >= WARM_UP_FRAMES {
                cpu.push(thread_cpu_time().saturating_sub(cpu_started));
                wall.push(started.elapsed());
            }
        }
        scenarios.push(Scenario {
            name: name.to_owned(),
            cpu: Percentiles::of(cpu),
            wall: Percentiles::of(wall),
        });
    }
    scenarios
}

/// The report as one line of JSON, which `cargo xtask bench replay` reads.
pub fn report_json(report: &ReplayBenchReport, rates: &[Scenario]) -> String {
    let scenario = |s: &Scenario| serde_json::json!({"scenario": s.name, "cpu": s.cpu.json(), "wall": s.wall.json()});
    serde_json::json!({
        "events": report.events,
        "first_frame_ms": report.first_frame_ms,
        "overview_ms": report.overview_ms,
        "moments": report.moments.iter().map(|(name, ms)| serde_json::json!({"moment": name, "ms": ms})).collect::<Vec<_>>(),
        "scenarios": report.scenarios.iter().chain(rates).map(scenario).collect::<Vec<_>>(),
    })
    .to_string()
}
