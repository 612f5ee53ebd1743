//! What `cargo xtask bench flame` measures: the UI thread's CPU time per
//! frame of the flame graph view on 100k unique synthetic stacks.
//!
//! It lives in the library (behind `microscope __bench-flame`) so that it
//! drives the real view, and so the xtask needs no GUI dependencies. Each
//! frame is a full `egui::Context::run_ui` pass plus tessellation, the CPU
//! work an eframe frame does before handing triangles to the GPU. Rendering
//! the triangles is not included: on the GL backend it happens on the GPU
//! (or in llvmpipe's threads). Each frame is timed twice: the UI thread's
//! CPU time (what the view costs) and the wall clock (what it cost on this
//! machine at that moment, other processes included).

use crate::command::CommandQueue;
use crate::views::FlameView;
use egui::{Event, Pos2, RawInput, Rect, Vec2};
use microscope_model::Model;
use microscope_model::{BuildOptions, FlameGraph, NodeId};
use microscope_model::{StackQuery, synthetic_store};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Longest wait for the first graph to be built.
const BUILD_TIMEOUT: Duration = Duration::from_secs(120);
/// Frames drawn before measuring, so fonts and caches are warm.
const WARM_UP_FRAMES: usize = 10;
/// What to measure.
#[derive(Clone, Debug)]
pub struct FlameBenchOptions {
    /// Unique stacks in the store.
    pub unique_stacks: usize,
    /// Frames measured per scenario.
    pub frames: usize,
    /// Size of the window, in points.
    pub window: Vec2,
    /// Seed of the synthetic stacks.
    pub seed: u64,
}

impl Default for FlameBenchOptions {
    fn default() -> Self {
        Self {
            unique_stacks: 100_000,
            frames: 200,
            window: Vec2::new(1280.0, 800.0),
            seed: 0x5eed,
        }
    }
}

/// Median, 95th percentile and maximum of a set of durations, in ms.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Median, in ms.
    pub median_ms: f64,
    /// 95th percentile, in ms.
    pub p95_ms: f64,
    /// Maximum, in ms.
    pub max_ms: f64,
}

impl Percentiles {
    pub(crate) fn of(mut times: Vec<Duration>) -> Self {
        times.sort();
        let ms = |index: usize| times.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3);
        Self {
            median_ms: ms(times.len() / 2),
            p95_ms: ms((times.len() * 95 / 100).min(times.len().saturating_sub(1))),
            max_ms: ms(times.len().saturating_sub(1)),
        }
    }

    pub(crate) fn json(self) -> serde_json::Value {
        serde_json::json!({
            "median_ms": self.median_ms,
            "p95_ms": self.p95_ms,
            "max_ms": self.max_ms,
        })
    }
}

/// Frame times of one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameTimes {
    /// What was drawn, e.g. `unzoomed`.
    pub scenario: String,
    /// CPU time of the UI thread per frame.
    pub cpu: Percentiles,
    /// Wall-clock time per frame (includes time other processes ran).
    pub wall: Percentiles,
    /// Frames of the flame graph painted in the last frame.
    pub painted_frames: usize,
}

/// Everything `cargo xtask bench flame` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct FlameBenchReport {
    /// Unique stacks in the store.
    pub unique_stacks: usize,
    /// Samples in the store.
    pub samples: usize,
    /// Nodes of the flame graph.
    pub graph_nodes: usize,
    /// Depth of the deepest frame.
    pub max_depth: u32,
    /// Median time to build the flame graph from the store, in ms (done
    /// only when the data or the filters change, not per frame).
    pub build_ms: f64,
    /// Per-frame times of each scenario.
    pub scenarios: Vec<FrameTimes>,
}

/// Draws the flame view on a store of synthetic stacks, unzoomed, zoomed
/// and while the pointer moves over it, and times each frame.
pub fn flame_frame_times(options: &FlameBenchOptions) -> FlameBenchReport {
    let mut model = Model::new(Instant::now());
    model.stacks = synthetic_store(options.unique_stacks, options.seed);
    let store = &model.stacks;

    let builds: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            black_box(FlameGraph::from_store(
                store,
                StackQuery::all(),
                BuildOptions::default(),
            ));
            started.elapsed()
        })
        .collect();
    let graph = FlameGraph::from_store(store, StackQuery::all(), BuildOptions::default());

    let mut view = FlameView::new();
    view.filters.range = crate::views::TimeRange::All;
    let mut scenarios = Vec::new();
    let frames = options.frames.max(1);
    let mut runner = Runner {
        ctx: egui::Context::default(),
        model: &model,
        view: &mut view,
        screen: Rect::from_min_size(Pos2::ZERO, options.window),
        clock: 0,
    };

    // The first frames start the build on a worker; wait for its graph.
    let built_by = Instant::now() + BUILD_TIMEOUT;
    while (runner.view.graph().is_none() || runner.view.is_building()) && Instant::now() < built_by
    {
        runner.measure("build", 1, |_| None);
        std::thread::sleep(Duration::from_millis(5));
    }

    scenarios.push(runner.measure("unzoomed", frames, |_| None));

    // Three levels down the heaviest path: a process, an entry point, its
    // heaviest callee.
    let mut zoom = NodeId::ROOT;
    for _ in 0..3 {
        if let Some(child) = graph
            .children(zoom)
            .max_by_key(|&child| graph.values(child).total)
        {
            zoom = child;
        }
    }
    runner.view.zoom_to(graph.path(zoom));
    scenarios.push(runner.measure("zoomed", frames, |_| None));
    runner.view.zoom_to(Vec::new());

    // The pointer sweeps across the lower rows, where the widest frames
    // are, so a tooltip is open in every frame.
    let hover_at = |frame: usize| {
        let x = 5.0 + (frame * 37 % 1200) as f32 * (options.window.x - 10.0) / 1200.0;
        let y = options.window.y - 10.0 - (frame % 8) as f32 * 18.0;
        Some(Pos2::new(x, y))
    };
    scenarios.push(runner.measure("hovering", frames, hover_at));

    // Screen readers switch on the accessibility tree: one node per frame.
    runner.ctx.enable_accesskit();
    scenarios.push(runner.measure("unzoomed, accessibility tree on", frames, |_| None));
    runner.ctx.disable_accesskit();

    FlameBenchReport {
        unique_stacks: store.unique_stacks(),
        samples: store.len(),
        graph_nodes: graph.len(),
        max_depth: graph.max_depth(),
        build_ms: median_ms(builds),
        scenarios,
    }
}

/// Draws the view frame after frame in one egui context.
struct Runner<'a> {
    ctx: egui::Context,
    model: &'a Model,
    view: &'a mut FlameView,
    screen: Rect,
    /// Frames drawn so far: egui's clock must move forward across scenarios.
    clock: u64,
}

impl Runner<'_> {
    /// Runs `frames` frames (after a warm-up) with the pointer where
    /// `pointer` says, and times each: the egui pass plus tessellation.
    fn measure(
        &mut self,
        scenario: &str,
        frames: usize,
        pointer: impl Fn(usize) -> Option<Pos2>,
    ) -> FrameTimes {
        let mut commands = CommandQueue::default();
        let mut wall = Vec::with_capacity(frames);
        let mut cpu = Vec::with_capacity(frames);
        for frame in 0..WARM_UP_FRAMES + frames {
            self.clock += 1;
            let mut input = RawInput {
                screen_rect: Some(self.screen),
                time: Some(self.clock as f64 / 60.0),
                ..RawInput::default()
            };
            if let Some(pos) = pointer(frame) {
                input.events.push(Event::PointerMoved(pos));
            }
            let started = Instant::now();
            let cpu_started = thread_cpu_time();
            let (model, view) = (self.model, &mut *self.view);
            let mut output = self.ctx.run_ui(input, |ui| {
                egui::CentralPanel::default().show(ui, |ui| view.ui(ui, model, &mut commands));
            });
            let shapes = std::mem::take(&mut output.shapes);
            let primitives = self.ctx.tessellate(shapes, output.pixels_per_point);
            black_box(primitives.len());
            // There is no GPU to upload the font atlas to.
            output.drop_without_applying_deltas();
            if frame >= WARM_UP_FRAMES {
                wall.push(started.elapsed());
                cpu.push(thread_cpu_time().saturating_sub(cpu_started));
            }
        }
        FrameTimes {
            scenario: scenario.to_owned(),
            cpu: Percentiles::of(cpu),
            wall: Percentiles::of(wall),
            painted_frames: self.view.painted_frames(),
        }
    }
}

/// CPU time this thread has used. Unlike the wall clock, it does not count
/// time other processes had the CPU, which on a shared machine is most of
/// the spread between frames.
pub(crate) fn thread_cpu_time() -> Duration {
    Duration::from_nanos(microscope_wire::thread_cpu_ns())
}

/// The report as one line of JSON, which `cargo xtask bench flame` reads.
pub fn report_json(report: &FlameBenchReport) -> String {
    serde_json::json!({
        "unique_stacks": report.unique_stacks,
        "samples": report.samples,
        "graph_nodes": report.graph_nodes,
        "max_depth": report.max_depth,
        "build_ms": report.build_ms,
        "scenarios": report.scenarios.iter().map(|s| serde_json::json!({
            "scenario": s.scenario,
            "cpu": s.cpu.json(),
            "wall": s.wall.json(),
            "painted_frames": s.painted_frames,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

fn median_ms(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times
        .get(times.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_reports_every_scenario() {
        let report = flame_frame_times(&FlameBenchOptions {
            unique_stacks: 300,
            frames: 3,
            window: Vec2::new(600.0, 400.0),
            seed: 1,
        });
        assert_eq!(report.unique_stacks, 300);
        assert_eq!(report.scenarios.len(), 4);
        assert!(report.scenarios.iter().all(|s| s.painted_frames > 0));
        assert!(report.graph_nodes > 300);
    }
}
