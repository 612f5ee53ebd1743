//! Guided tours: the list of scenarios (the *Tours* tab) and the panel of
//! the current step beside the map — what happens and why, the probes the
//! step switches on, the action the app can do for the student, and the
//! events that are the evidence.

use crate::command::{Command, CommandQueue};
use crate::theme;
use crossbeam_channel::Receiver;
use microscope_catalogue::{Catalogue, Tour, TourAction, TourStep};
use microscope_model::map::MapHighlight;
use microscope_model::{Model, fields};
use microscope_sources::ActionReport;
use microscope_wire::Event;

/// Events shown as evidence per probe.
const EVIDENCE_ROWS: usize = 3;

/// Where the student is in a tour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TourPosition {
    /// The tour's id.
    pub tour: String,
    /// The step shown, from 0.
    pub step: usize,
}

/// What the tours remember between frames.
#[derive(Debug, Default)]
pub struct ToursState {
    /// The tour being followed, if any.
    pub position: Option<TourPosition>,
    /// An action the app is doing for the student.
    pub running: Option<Receiver<ActionReport>>,
    /// What the last action did.
    pub last_report: Option<ActionReport>,
    /// Probes this tour switched on (said in the panel, switched off at its end).
    pub switched_on: Vec<String>,
    /// Whether the map's highlight is ours (a tour step or a followed call),
    /// to clear when neither is left.
    pub lit_map: bool,
}

impl ToursState {
    /// The tour and step shown, if they exist in `catalogue`.
    pub fn current<'a>(&self, catalogue: &'a Catalogue) -> Option<(&'a Tour, usize, &'a TourStep)> {
        let position = self.position.as_ref()?;
        let tour = catalogue.tour(&position.tour)?;
        let step = tour.steps.get(position.step)?;
        Some((tour, position.step, step))
    }

    /// What the map highlights for the step shown (empty with no tour).
    pub fn highlight(&self, catalogue: &Catalogue) -> MapHighlight {
        self.current(catalogue)
            .map_or_else(MapHighlight::default, |(_, _, step)| {
                MapHighlight::new(
                    step.nodes.iter().map(String::as_str),
                    step.edges.iter().map(|(a, b)| (a.as_str(), b.as_str())),
                )
            })
    }

    /// Takes the report of a finished action, if one arrived.
    pub fn poll_action(&mut self) {
        if let Some(rx) = &self.running
            && let Ok(report) = rx.try_recv()
        {
            self.last_report = Some(report);
            self.running = None;
        }
    }
}

/// The *Tours* tab: every tour with a button to start it.
pub fn tours_list_ui(ui: &mut egui::Ui, catalogue: &Catalogue, commands: &mut CommandQueue) {
    ui.heading("Guided tours");
    ui.label(
        "Each tour follows one operation through the kernel, step by step: the map shows \
         where it is, the probes it needs are switched on, and the events it causes are the \
         evidence. With the helper running you can do the operation yourself; in a \
         recording (the demo) the recorded events are shown.",
    );
    ui.add_space(theme::SECTION_GAP);
    egui::ScrollArea::vertical().show(ui, |ui| {
        for tour in catalogue.tours() {
            ui.group(|ui| {
                ui.set_width(ui.available_width());
                ui.strong(&tour.title);
                ui.label(&tour.summary);
                ui.horizontal(|ui| {
                    if ui.button(start_label(tour)).clicked() {
                        commands.send(Command::StartTour(tour.id.clone()));
                    }
                    ui.weak(format!(
                        "{} steps · from the pack `{}`",
                        tour.steps.len(),
                        tour.pack
                    ));
                });
            });
            ui.add_space(theme::SECTION_GAP);
        }
        if catalogue.tours().is_empty() {
            ui.weak("No pack holds a tour. A pack's tours/*.toml files add them.");
        }
    });
}

/// The label of a tour's start button: `Start “read() of a file”`.
pub fn start_label(tour: &Tour) -> String {
    let short = tour.title.split(':').next().unwrap_or(&tour.title).trim();
    format!("Start “{short}”")
}

/// The panel of the current step.
pub fn tour_step_ui(
    ui: &mut egui::Ui,
    model: &Model,
    catalogue: &Catalogue,
    state: &ToursState,
    commands: &mut CommandQueue,
) {
    let Some((tour, index, step)) = state.current(catalogue) else {
        return;
    };
    ui.horizontal(|ui| {
        ui.weak(format!("Tour: {}", tour.title));
    });
    ui.heading(format!(
        "Step {} of {}: {}",
        index + 1,
        tour.steps.len(),
        step.title
    ));
    nav_ui(ui, tour, index, commands);
    ui.separator();
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.label(&step.text);
        ui.add_space(theme::SECTION_GAP);
        on_the_map_ui(ui, catalogue, step);
        probes_ui(ui, model, state, step);
        action_ui(ui, model, state, step, commands);
        if step.follow
            && let Some(call) = &tour.syscall
        {
            let tid = state.last_report.as_ref().map(|r| r.tid);
            if ui
                .button(format!("Follow one {call}() end to end"))
                .on_hover_text(
                    "The waterfall of the slowest recent call (yours if you pressed the \
                     button above): every kernel event it caused, on a time axis.",
                )
                .clicked()
            {
                commands.send(Command::FollowSlowest {
                    call: call.clone(),
                    tid,
                });
            }
        }
        ui.add_space(theme::SECTION_GAP);
        ui.strong("Evidence: the newest events of this step's probes");
        for probe in &step.probes {
            evidence_ui(ui, model, state, step.action, probe);
        }
    });
}

fn nav_ui(ui: &mut egui::Ui, tour: &Tour, index: usize, commands: &mut CommandQueue) {
    ui.horizontal(|ui| {
        if ui
            .add_enabled(index > 0, egui::Button::new("Back"))
            .clicked()
        {
            commands.send(Command::TourStep(index - 1));
        }
        if ui
            .add_enabled(index + 1 < tour.steps.len(), egui::Button::new("Next"))
            .clicked()
        {
            commands.send(Command::TourStep(index + 1));
        }
        if ui.button("End tour").clicked() {
            commands.send(Command::EndTour);
        }
    });
}

fn on_the_map_ui(ui: &mut egui::Ui, catalogue: &Catalogue, step: &TourStep) {
    let names: Vec<&str> = step
        .nodes
        .iter()
        .map(|id| {
            catalogue
                .subsystem(id)
                .map_or(id.as_str(), |s| s.name.as_str())
        })
        .collect();
    if !names.is_empty() {
        ui.label(format!("On the map (highlighted): {}", names.join(", ")));
    }
}

/// The step's probes and their state, saying what the tour switched on.
fn probes_ui(ui: &mut egui::Ui, model: &Model, state: &ToursState, step: &TourStep) {
    ui.strong("Probes of this step");
    for id in &step.probes {
        let probe = model.probe(id);
        let kept = probe
            .and_then(|p| model.recent.get(&p.key))
            .map_or(0, |events| events.len());
        let status = match probe {
            None if model.is_replay() => "not in this recording".to_owned(),
            None => "not known to the helper (yet)".to_owned(),
            Some(p) if !p.is_available() => format!(
                "not available on this kernel: {}",
                p.unavailable_reason.as_deref().unwrap_or("")
            ),
            Some(_) if model.is_replay() => format!("recorded: {kept} events kept"),
            Some(p) if p.enabled && state.switched_on.contains(id) => {
                format!("switched on by this tour · {kept} events kept")
            }
            Some(p) if p.enabled => format!("on · {kept} events kept"),
            Some(_) if model.wanted.contains(id) => "switching on…".to_owned(),
            Some(_) => "off".to_owned(),
        };
        ui.horizontal_wrapped(|ui| {
            ui.monospace(id);
            ui.weak(status);
        });
    }
    ui.add_space(theme::SECTION_GAP);
}

fn action_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &ToursState,
    step: &TourStep,
    commands: &mut CommandQueue,
) {
    let Some(action) = step.action else {
        return;
    };
    if model.is_replay() {
        ui.weak(format!(
            "In a recording the app cannot act; what the recorded workload did stands in for \
             \"{}\". Go live (helper running) to do it yourself.",
            action.button_text()
        ));
    } else {
        let busy = state.running.is_some();
        if ui
            .add_enabled(!busy, egui::Button::new(action.button_text()))
            .on_hover_text("The app does this itself, as you, on a thread of its own.")
            .clicked()
        {
            commands.send(Command::RunTourAction(action));
        }
        if busy {
            ui.weak("running…");
        }
    }
    if let Some(report) = &state.last_report {
        match &report.outcome {
            Ok(text) => ui.label(format!("Done by thread {}: {text}.", report.tid)),
            Err(why) => ui.colored_label(theme::WARNING, why),
        };
    }
    ui.add_space(theme::SECTION_GAP);
}

/// The newest events of `probe`, those of the action's thread first.
fn evidence_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &ToursState,
    action: Option<TourAction>,
    probe: &str,
) {
    let Some(p) = model.probe(probe) else {
        return;
    };
    let Some(events) = model.recent.get(&p.key) else {
        ui.weak(format!("{probe}: no events yet"));
        return;
    };
    let names: Vec<String> = p.fields.iter().map(|(n, _)| n.clone()).collect();
    // The action's thread when the app did one; else, in a recording, the
    // demo workload's thread for the step's action (`tour-hit` reads a
    // cached file, `tour-read` an uncached one...), or any `tour-*` thread
    // for a step without an action.
    let ours = |e: &Event| match (&state.last_report, action) {
        (Some(r), _) => {
            e.pid == r.tid || r.child_pid.is_some_and(|c| e.tgid == c) || event_names_pid(e, r.tid)
        }
        (None, Some(action)) => e.comm == action.demo_thread(),
        (None, None) => e.comm.starts_with("tour-"),
    };
    let mine: Vec<&Event> = events
        .iter()
        .rev()
        .filter(|e| ours(e))
        .take(EVIDENCE_ROWS)
        .collect();
    let shown: Vec<&Event> = if mine.is_empty() {
        events.iter().rev().take(EVIDENCE_ROWS).collect()
    } else {
        mine
    };
    // Saying "none" only where a thread did the action: live before the
    // button is pressed, nobody has.
    let acted = state.last_report.is_some() || (model.is_replay() && action.is_some());
    let whose = if shown.iter().any(|e| ours(e)) {
        " (from the thread that did the action)"
    } else if acted {
        ", none in the thread that did the action"
    } else {
        ""
    };
    ui.label(format!("{probe}: {} events kept{whose}", events.len()));
    for event in shown {
        ui.monospace(evidence_line(event, &names));
    }
}

/// Whether a scheduler event is about thread `tid` (woken, switched).
fn event_names_pid(event: &Event, tid: u32) -> bool {
    match &event.data {
        microscope_wire::EventData::SchedWakeup { pid, .. } => *pid == tid,
        microscope_wire::EventData::SchedSwitch {
            prev_pid, next_pid, ..
        } => *prev_pid == tid || *next_pid == tid,
        _ => false,
    }
}

/// One event as a line: CPU, command[thread], then its fields.
pub fn evidence_line(event: &Event, names: &[String]) -> String {
    let mut line = format!("  cpu {} {}[{}]", event.cpu, event.comm, event.pid);
    for (name, value) in fields(&event.data, names).into_iter().take(6) {
        line.push_str(&format!(" {name}={value}"));
    }
    line
}
