//! One system call followed end to end: its kernel events as bars on a time
//! axis, how each is tied to the call, the stacks captured there, and where
//! the latency went (see `microscope_model::waterfall`).

use crate::command::{Command, CommandQueue};
use crate::theme;
use egui::{Align2, FontId, Pos2, Rect, Role, Sense, Stroke, Vec2, WidgetInfo};
use microscope_model::map::MapHighlight;
use microscope_model::map::SubsystemMap;
use microscope_model::waterfall::{Link, Waterfall, calls};
use microscope_model::{Model, StackQuery, format_duration_ns};

/// Accessible label of the waterfall's bars region.
pub const WATERFALL_BARS: &str = "Waterfall bars";
/// Accessible label of the latency breakdown.
pub const BREAKDOWN: &str = "Latency breakdown";

/// Width of the step names left of the bars.
const LABEL_WIDTH: f32 = 380.0;
/// Height of a bar's row.
const ROW_HEIGHT: f32 = 22.0;
/// Stack frames shown per probe.
const STACK_FRAMES: usize = 12;

/// What the waterfall shows: a followed call, or why there is none.
#[derive(Debug, Default)]
pub struct WaterfallState {
    /// The call followed, or the sentence saying why it could not be.
    pub current: Option<Result<Waterfall, String>>,
    /// Whether the map highlights its places (until a tour step is shown).
    pub on_map: bool,
    /// A system call to follow once the replay has played.
    pub pending: Option<String>,
    /// In a replay: the call (`tid`, a moment in it) whose events were asked
    /// of the recording's browser, until they arrive.
    pub reading: Option<(u32, u64)>,
    /// Whether [`Self::current`] was followed through every event of the
    /// file around the call (a replay), not only the inspector's.
    pub from_file: bool,
}

/// The subsystem of the map a probe's events belong to.
pub fn node_of_probe(map: &SubsystemMap, probe: &str) -> Option<String> {
    if let Some(def) = map.catalogue().probe(probe) {
        return Some(def.subsystem.clone());
    }
    let category = probe.split(':').next()?;
    Some(microscope_catalogue::subsystem_of_category(category).to_owned())
}

/// The map places of a waterfall's steps, with the map's edges between
/// consecutive places.
pub fn highlight_of(map: &SubsystemMap, waterfall: &Waterfall) -> MapHighlight {
    let mut path: Vec<String> = vec!["user".to_owned()];
    for step in &waterfall.steps {
        if let Some(node) = node_of_probe(map, &step.probe)
            && map.node(&node).is_some()
            && path.last() != Some(&node)
        {
            path.push(node);
        }
    }
    let edges: Vec<(&str, &str)> = path
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0].as_str(), w[1].as_str());
            let has = map
                .catalogue()
                .edges()
                .iter()
                .any(|e| (e.from == a && e.to == b) || (e.from == b && e.to == a));
            has.then_some((a, b))
        })
        .collect();
    let mut highlight = MapHighlight::new(path.iter().map(String::as_str), []);
    for (a, b) in edges {
        // Edges are directed on the map; light the one that exists.
        let forward = map
            .catalogue()
            .edges()
            .iter()
            .any(|e| e.from == a && e.to == b);
        let (from, to) = if forward { (a, b) } else { (b, a) };
        highlight.edges.insert((from.to_owned(), to.to_owned()));
    }
    highlight
}

/// Draws the waterfall, or how to pick a call.
pub fn waterfall_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &WaterfallState,
    commands: &mut CommandQueue,
) {
    match &state.current {
        None => pick_ui(ui, model, commands),
        Some(Err(why)) => {
            ui.colored_label(theme::WARNING, why);
            ui.add_space(theme::SECTION_GAP);
            pick_ui(ui, model, commands);
        }
        Some(Ok(waterfall)) => {
            egui::ScrollArea::vertical().show(ui, |ui| {
                header_ui(ui, waterfall, state, commands);
                bars_ui(ui, waterfall);
                ui.add_space(theme::SECTION_GAP);
                breakdown_ui(ui, waterfall);
                ui.add_space(theme::SECTION_GAP);
                stacks_ui(ui, model, waterfall);
            });
        }
    }
}

/// The slowest recent calls, each with a button to follow it.
fn pick_ui(ui: &mut egui::Ui, model: &Model, commands: &mut CommandQueue) {
    ui.label(
        "Pick one system call to follow: press Follow on a syscalls:sys_enter_* or \
         sys_exit_* event in the Events tab, on a call below, or in a guided tour. It needs \
         the call's sys_enter_* and sys_exit_* probes; block:*, sched:sched_switch and \
         sched:sched_wakeup show where the time went.",
    );
    let observed = model.observed_events();
    let mut names: Vec<String> = observed
        .iter()
        .filter_map(|o| match &o.kind {
            microscope_model::waterfall::Kind::SyscallEnter(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    let mut all: Vec<(String, u32, u64, u64)> = names
        .iter()
        .flat_map(|name| {
            calls(&observed, name)
                .into_iter()
                .map(move |(tid, start, end)| (name.clone(), tid, start, end))
        })
        .collect();
    all.sort_by_key(|(_, _, start, end)| std::cmp::Reverse(end - start));
    if all.is_empty() {
        ui.weak("No finished system call among the events kept yet.");
        return;
    }
    ui.strong("The slowest recent calls");
    for (name, tid, start, end) in all.into_iter().take(12) {
        ui.horizontal(|ui| {
            if ui.button("Follow").clicked() {
                commands.send(Command::FollowCall { tid, ts_ns: start });
            }
            ui.monospace(format!(
                "{name}() by thread {tid}: {}",
                format_duration_ns(end - start)
            ));
        });
    }
}

fn header_ui(
    ui: &mut egui::Ui,
    w: &Waterfall,
    state: &WaterfallState,
    commands: &mut CommandQueue,
) {
    let source = if state.from_file {
        " (every event around it, read from the recording)"
    } else if state.reading.is_some() {
        " (reading every event around it from the recording…)"
    } else {
        ""
    };
    ui.heading(format!(
        "{}() by {} (thread {}): {}",
        w.call,
        w.comm,
        w.tid,
        format_duration_ns(w.latency_ns())
    ));
    ui.horizontal(|ui| {
        ui.label(format!(
            "returned {} · {} events linked{} · {}",
            w.ret,
            w.steps.len(),
            source,
            if w.went_to_disk() {
                "it went to the disk"
            } else {
                "no disk request linked"
            }
        ));
        if ui.button("Show on the map").clicked() {
            commands.send(Command::ShowTab(crate::tab::CentralTab::Map));
        }
        if ui.button("Pick another call").clicked() {
            commands.send(Command::ClearWaterfall);
        }
    });
    ui.weak(
        "Bars: blue = same thread (certain), green = same device and sectors (certain), \
         orange = inferred from thread id and time.",
    );
}

fn link_color(link: Link) -> egui::Color32 {
    match link {
        Link::Call => theme::FLAME_ROOT,
        Link::SameThread => theme::HISTOGRAM_BAR,
        Link::SameRequest => theme::CONNECTED,
        Link::Inferred => theme::WARNING,
    }
}

/// Accessible name of a bar: what, how long, how it is linked.
pub fn bar_label(step: &microscope_model::waterfall::Step) -> String {
    format!(
        "{} — {} — {}",
        step.label,
        format_duration_ns(step.duration_ns()),
        step.link.describe()
    )
}

fn bars_ui(ui: &mut egui::Ui, w: &Waterfall) {
    ui.scope_builder(
        egui::UiBuilder::new().accessibility_label(WATERFALL_BARS),
        |ui| {
            let width = ui.available_width().max(LABEL_WIDTH + 200.0);
            let height = ROW_HEIGHT * (w.steps.len() as f32 + 1.0);
            let (rect, _) = ui.allocate_exact_size(Vec2::new(width, height), Sense::hover());
            let painter = ui.painter_at(rect);
            let axis = Rect::from_min_max(
                Pos2::new(rect.min.x + LABEL_WIDTH, rect.min.y),
                Pos2::new(rect.max.x - 90.0, rect.max.y),
            );
            let span = w.latency_ns().max(1) as f32;
            let x_of = |ns: u64| {
                axis.min.x
                    + (ns.saturating_sub(w.enter_ns).min(w.latency_ns()) as f32 / span)
                        * axis.width()
            };
            for i in 0..=4 {
                let ns = w.latency_ns() * i / 4;
                let x = axis.min.x + axis.width() * i as f32 / 4.0;
                painter.line_segment(
                    [
                        Pos2::new(x, rect.min.y + ROW_HEIGHT - 4.0),
                        Pos2::new(x, rect.max.y),
                    ],
                    Stroke::new(1.0, theme::MAP_BAND),
                );
                painter.text(
                    Pos2::new(x, rect.min.y + 2.0),
                    Align2::CENTER_TOP,
                    format_duration_ns(ns),
                    FontId::proportional(11.0),
                    theme::AXIS_TEXT,
                );
            }
            for (i, step) in w.steps.iter().enumerate() {
                let top = rect.min.y + ROW_HEIGHT * (i as f32 + 1.0);
                let row = Rect::from_min_size(
                    Pos2::new(rect.min.x, top),
                    Vec2::new(rect.width(), ROW_HEIGHT),
                );
                let name = egui::text::LayoutJob::simple_singleline(
                    step.label.clone(),
                    FontId::proportional(12.0),
                    ui.visuals().text_color(),
                );
                let galley = painter.layout_job(name);
                painter
                    .with_clip_rect(Rect::from_min_size(
                        row.min,
                        Vec2::new(LABEL_WIDTH - 8.0, ROW_HEIGHT),
                    ))
                    .galley(
                        Pos2::new(row.min.x + 4.0, top + 4.0),
                        galley,
                        ui.visuals().text_color(),
                    );
                let (x0, x1) = (x_of(step.start_ns), x_of(step.end_ns));
                let bar = Rect::from_min_max(
                    Pos2::new(x0, top + 4.0),
                    Pos2::new(x1.max(x0 + 3.0), top + ROW_HEIGHT - 4.0),
                );
                painter.rect_filled(bar, 2.0, link_color(step.link));
                painter.text(
                    Pos2::new(bar.max.x + 4.0, top + ROW_HEIGHT / 2.0),
                    Align2::LEFT_CENTER,
                    format_duration_ns(step.duration_ns()),
                    FontId::proportional(11.0),
                    ui.visuals().text_color(),
                );
                let id = ui.scope_id().with(("waterfall-step", i));
                let response = ui.interact(row, id, Sense::hover());
                let label = bar_label(step);
                response.widget_info(|| WidgetInfo::labeled(Role::Row, true, &label));
                response.on_hover_text(format!(
                    "{label}\nprobe {} · CPU {} · {}[{}] · at +{}",
                    step.probe,
                    step.cpu,
                    step.comm,
                    step.pid,
                    format_duration_ns(step.start_ns.saturating_sub(w.enter_ns))
                ));
            }
        },
    );
}

fn breakdown_ui(ui: &mut egui::Ui, w: &Waterfall) {
    ui.scope_builder(
        egui::UiBuilder::new().accessibility_label(BREAKDOWN),
        |ui| {
            ui.strong("Where the time went");
            let total = w.latency_ns().max(1) as f32;
            let width = ui.available_width().min(900.0);
            let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 18.0), Sense::hover());
            let painter = ui.painter_at(rect);
            let colors = [
                theme::HISTOGRAM_BAR,
                theme::FLAME_MATCH,
                theme::CONNECTED,
                theme::WARNING,
                theme::DIFF_GREW,
                theme::FLAME_ROOT,
            ];
            let mut x = rect.min.x;
            for (i, part) in w.breakdown.iter().enumerate() {
                let wpx = rect.width() * part.ns as f32 / total;
                painter.rect_filled(
                    Rect::from_min_size(Pos2::new(x, rect.min.y), Vec2::new(wpx, rect.height())),
                    0.0,
                    colors[i % colors.len()],
                );
                x += wpx;
            }
            egui::Grid::new("breakdown").striped(true).show(ui, |ui| {
                for (i, part) in w.breakdown.iter().enumerate() {
                    let (swatch, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
                    ui.painter()
                        .rect_filled(swatch, 2.0, colors[i % colors.len()]);
                    ui.label(&part.label);
                    ui.monospace(format_duration_ns(part.ns));
                    ui.monospace(format!("{:.1} %", 100.0 * part.ns as f32 / total));
                    ui.end_row();
                }
            });
            let sum: u64 = w.breakdown.iter().map(|p| p.ns).sum();
            ui.label(format!(
                "Sum of the parts: {} = the call's latency, exit − entry: {}",
                format_duration_ns(sum),
                format_duration_ns(w.latency_ns())
            ));
        },
    );
}

/// Stacks captured at the waterfall's probes, in the call's process, near
/// the call (stacks are counted per second, so they may be another hit).
fn stacks_ui(ui: &mut egui::Ui, model: &Model, w: &Waterfall) {
    let mut shown = 0;
    let mut probes: Vec<&str> = w.steps.iter().map(|s| s.probe.as_str()).collect();
    probes.dedup();
    for probe in probes {
        let Some(p) = model.probe(probe) else {
            continue;
        };
        let query = StackQuery::range(
            w.enter_ns.saturating_sub(1_000_000_000),
            w.exit_ns + 1_000_000_000,
        )
        .with_probe(Some(p.key));
        let Some((stack, _)) = model
            .stacks
            .stack_totals(query)
            .into_iter()
            .max_by_key(|(_, value)| *value)
        else {
            continue;
        };
        let Some(stack) = model.stacks.stack(stack) else {
            continue;
        };
        if shown == 0 {
            ui.strong("Kernel stacks captured at these probes");
            ui.weak("Stacks are counted per second, so this is the most frequent stack at the probe around the call: inferred, not this very event's.");
        }
        shown += 1;
        ui.label(format!("{probe} ({}):", stack.comm));
        let frames: Vec<String> = stack
            .frames
            .iter()
            .rev()
            .take(STACK_FRAMES)
            .map(|&id| model.stacks.frame_name(id).into_owned())
            .collect();
        ui.monospace(frames.join("\n"));
    }
    if shown == 0 {
        ui.weak("No kernel stack was captured at these probes (switch on \"stacks\" for a probe in the map's details to capture them).");
    }
}
