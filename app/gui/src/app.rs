//! The app: drains updates, lays out the views, applies their commands.

use crate::command::{Command, CommandQueue};
use crate::model::Model;
use crate::theme;
use crate::update::Update;
use crate::views::{self, CentralTab, CpuTimelineState, region};
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use egui::UiBuilder;
use microscope_wire::ClientMessage;
use std::time::{Duration, Instant};

/// Longest the UI spends applying updates in one frame; the rest waits for
/// the next frame so drawing stays smooth under a flood of data.
const DRAIN_BUDGET: Duration = Duration::from_millis(4);

/// How often to redraw while connected, so the timeline scrolls.
const LIVE_REPAINT_INTERVAL: Duration = Duration::from_millis(100);

/// Microscope's window. Build it from the two channel ends the ingest thread
/// (or a test) holds the other ends of.
pub struct MicroscopeApp {
    model: Model,
    updates: Receiver<Update>,
    to_helper: Sender<ClientMessage>,
    commands: CommandQueue,
    follow_live: bool,
    tab: CentralTab,
    cpu_view: CpuTimelineState,
}

impl MicroscopeApp {
    /// An app fed by `updates` that sends its requests to `to_helper`.
    pub fn new(updates: Receiver<Update>, to_helper: Sender<ClientMessage>) -> Self {
        Self {
            model: Model::new(Instant::now()),
            updates,
            to_helper,
            commands: CommandQueue::default(),
            follow_live: true,
            tab: CentralTab::default(),
            cpu_view: CpuTimelineState::default(),
        }
    }

    /// Queues a command as if a widget had sent it; applied on the next frame.
    pub fn request(&mut self, command: Command) {
        self.commands.send(command);
    }

    /// What the app currently shows.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Draws one frame into `ui` (the whole window).
    pub fn show_ui(&mut self, ui: &mut egui::Ui) {
        let now = Instant::now();
        self.drain_updates(ui.ctx());
        self.model.tick(now);

        if let Some(text) = views::banner_text(&self.model) {
            egui::Panel::top("banner")
                .frame(egui::Frame::NONE)
                .show(ui, |ui| {
                    ui.scope_builder(UiBuilder::new().accessibility_label(region::BANNER), |ui| {
                        views::banner_ui(ui, &text);
                    });
                });
        }
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.scope_builder(UiBuilder::new().accessibility_label(region::STATUS), |ui| {
                views::status_bar_ui(ui, &self.model, now);
            });
        });
        egui::Panel::left("probes")
            .default_size(theme::PROBE_PANEL_WIDTH)
            .show(ui, |ui| {
                ui.scope_builder(UiBuilder::new().accessibility_label(region::PROBES), |ui| {
                    views::probes_ui(ui, &self.model, &mut self.commands);
                });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.scope_builder(UiBuilder::new().accessibility_label(region::TABS), |ui| {
                ui.horizontal(|ui| {
                    for tab in CentralTab::ALL {
                        if ui.selectable_label(self.tab == tab, tab.title()).clicked() {
                            self.commands.send(Command::ShowTab(tab));
                        }
                    }
                });
            });
            ui.separator();
            if self.tab == CentralTab::Cpus {
                ui.scope_builder(
                    UiBuilder::new().accessibility_label(region::CPU_TIMELINE),
                    |ui| {
                        views::cpu_timeline_ui(
                            ui,
                            &self.model,
                            &mut self.cpu_view,
                            now,
                            &mut self.commands,
                        );
                    },
                );
                return;
            }
            let timeline_height = ui.available_height() * theme::TIMELINE_SHARE;
            ui.scope_builder(
                UiBuilder::new().accessibility_label(region::TIMELINE),
                |ui| {
                    views::timeline_ui(
                        ui,
                        &self.model,
                        self.follow_live,
                        now,
                        timeline_height,
                        &mut self.commands,
                    );
                },
            );
            ui.add_space(theme::SECTION_GAP);
            ui.scope_builder(
                UiBuilder::new().accessibility_label(region::LATENCY),
                |ui| {
                    views::histogram_ui(ui, &self.model);
                },
            );
        });

        self.apply_commands();
        if self.model.is_connected() {
            ui.ctx().request_repaint_after(LIVE_REPAINT_INTERVAL);
        }
    }

    fn drain_updates(&mut self, ctx: &egui::Context) {
        let started = Instant::now();
        loop {
            if started.elapsed() > DRAIN_BUDGET {
                // More is waiting: come back right after this frame.
                ctx.request_repaint();
                return;
            }
            match self.updates.try_recv() {
                Ok(update) => self.model.apply(update),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.model.apply(Update::Disconnected {
                        reason: "the connection thread stopped".to_owned(),
                    });
                    return;
                }
            }
        }
    }

    /// The one place where commands change state.
    fn apply_commands(&mut self) {
        let commands: Vec<Command> = self.commands.drain().collect();
        for command in commands {
            match command {
                Command::SetProbeEnabled { probe, enabled } => {
                    let message = if enabled {
                        self.model.wanted.insert(probe.clone());
                        ClientMessage::Enable { probe }
                    } else {
                        self.model.wanted.remove(&probe);
                        ClientMessage::Disable { probe }
                    };
                    self.send_to_helper(message);
                }
                Command::SetFollowLive(follow) => self.follow_live = follow,
                Command::ShowTab(tab) => self.tab = tab,
            }
        }
    }

    fn send_to_helper(&self, message: ClientMessage) {
        // Never block the UI: the channel only fills if the ingest thread is
        // stuck, and then dropping a click is the lesser evil.
        match self.to_helper.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => {
                log::warn!("the connection thread is busy; dropped {message:?}");
            }
            Err(TrySendError::Disconnected(message)) => {
                log::warn!("the connection thread stopped; dropped {message:?}");
            }
        }
    }
}

impl eframe::App for MicroscopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show_ui(ui);
    }
}
