//! The app: drains updates, lays out the views, applies their commands.

use crate::command::{Command, CommandQueue};
use crate::tab::CentralTab;
use crate::theme;
use crate::views::{
    self, CpuTimelineState, FlameView, InspectorState, MapState, PackViewState, PathsView,
    ToolsState, ToursState, WaterfallState, region,
};
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use egui::UiBuilder;
use microscope_model::Update;
use microscope_model::map::SubsystemMap;
use microscope_model::{Clock, ConnectionState, Model};
use microscope_sources as sources;
use microscope_sources::Recorder;
use microscope_sources::Wake;
use microscope_sources::{BrowseRequest, ReplayControl};
use microscope_wire::ClientMessage;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Where "now" comes from; every model this app makes reads it too.
    clock: Clock,
    updates: Receiver<Update>,
    /// Requests to the helper, while live.
    to_helper: Option<Sender<ClientMessage>>,
    /// Requests to the replay thread, while replaying.
    replay_controls: Option<Sender<ReplayControl>>,
    /// The browser of the replayed recording: its answers and our requests.
    browser: Option<(Receiver<Update>, Sender<BrowseRequest>)>,
    /// The helper's socket, to go live again after a replay.
    socket: Option<PathBuf>,
    /// Open the demo recording if the first connection attempt fails.
    demo_if_unreachable: bool,
    open_dialog: Option<egui_file::FileDialog>,
    baseline_dialog: Option<egui_file::FileDialog>,
    /// The baseline being read (its one answer comes here).
    baseline: Option<Receiver<Update>>,
    commands: CommandQueue,
    follow_live: bool,
    tab: CentralTab,
    cpu_view: CpuTimelineState,
    map: SubsystemMap,
    map_view: MapState,
    probe_filter: String,
    inspector: InspectorState,
    tools: ToolsState,
    /// Which latency histogram the Rates tab shows (`None`: syscalls).
    histogram: Option<String>,
    /// Sees every message from the helper; records them when asked.
    recorder: Recorder,
    flame_view: FlameView,
    paths_view: PathsView,
    tours: ToursState,
    waterfall: WaterfallState,
    pack_view: PackViewState,
    /// "Show cost" is ticked in the probe panel.
    show_cost: bool,
    /// Whether we asked the helper for cost reports (see [`Self::watch_cost`]).
    watching_cost: bool,
    /// Switch on the default probes ([`microscope_model::live_defaults`])
    /// when the helper's probe list arrives, once per app.
    default_probes: DefaultProbes,
}

/// Where the app is with its default probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefaultProbes {
    /// Not wanted (`--no-default-probes`, tests, replays).
    Off,
    /// Wanted, waiting for the probe list.
    Pending,
    /// Switched on (or there were none to switch on).
    Done,
}

impl MicroscopeApp {
    /// An app fed by `updates` that sends its requests to `to_helper`.
    pub fn new(updates: Receiver<Update>, to_helper: Sender<ClientMessage>) -> Self {
        let clock = Clock::system();
        Self {
            model: Model::new(clock.now()),
            clock,
            updates,
            to_helper: Some(to_helper),
            replay_controls: None,
            browser: None,
            socket: None,
            demo_if_unreachable: false,
            open_dialog: None,
            baseline_dialog: None,
            baseline: None,
            commands: CommandQueue::default(),
            follow_live: true,
            tab: CentralTab::default(),
            cpu_view: CpuTimelineState::default(),
            map: SubsystemMap::builtin(),
            map_view: MapState::default(),
            probe_filter: String::new(),
            inspector: InspectorState::default(),
            tools: ToolsState::default(),
            histogram: None,
            recorder: Recorder::default(),
            flame_view: FlameView::new(),
            paths_view: PathsView::new(),
            tours: ToursState::default(),
            waterfall: WaterfallState::default(),
            pack_view: PackViewState::default(),
            show_cost: false,
            watching_cost: false,
            default_probes: DefaultProbes::Off,
        }
    }

    /// Remembers the helper's socket so "Go live" can reconnect after a
    /// replay, and, with `demo_if_unreachable`, opens the bundled demo
    /// recording when the first connection attempt fails.
    pub fn with_socket(mut self, socket: PathBuf, demo_if_unreachable: bool) -> Self {
        self.socket = Some(socket);
        self.demo_if_unreachable = demo_if_unreachable;
        self
    }

    /// Switches on a cheap default set of probes, counted in the kernel, as
    /// soon as the helper lists its probes, so the map lights at once (see
    /// [`microscope_model::live_defaults`]). Off unless asked for.
    pub fn with_default_probes(mut self, on: bool) -> Self {
        self.default_probes = if on {
            DefaultProbes::Pending
        } else {
            DefaultProbes::Off
        };
        self
    }

    /// Draws the map, its explanations and the tours from `catalogue` (the
    /// built-in pack and local ones); `problems` says which packs were left
    /// out, shown once in the status line.
    pub fn with_catalogue(
        mut self,
        catalogue: microscope_catalogue::Catalogue,
        problems: Vec<String>,
    ) -> Self {
        self.map = SubsystemMap::new(catalogue);
        if !problems.is_empty() {
            log::warn!("{}", problems.join("; "));
            self.model.last_helper_error = Some(problems.join("; "));
        }
        self
    }

    /// Shares `recorder` with the ingest thread that feeds this app, so the
    /// Record button records what that thread receives.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = recorder;
        self
    }

    /// Reads "now" from `clock` instead of the system clock: tests move a
    /// manual clock to age the timeline's buckets without sleeping.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.model = Model::new(clock.now()).with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// Queues a command as if a widget had sent it; applied on the next frame.
    pub fn request(&mut self, command: Command) {
        self.commands.send(command);
    }

    /// Where the map was painted in the last frame that showed it: its
    /// bands, nodes, edges and legend.
    pub fn map_layout(&self) -> Option<&crate::map_layout::MapLayout> {
        self.map_view.last_layout.as_ref()
    }

    /// The subsystem map the app draws.
    pub fn map(&self) -> &SubsystemMap {
        &self.map
    }

    /// What the map highlights now (a tour step, a followed operation).
    pub fn map_highlight(&self) -> &microscope_model::map::MapHighlight {
        &self.map_view.highlight
    }

    /// The model the views draw.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The flame graph view's state (range, zoom, search, the graph shown).
    pub fn flame_view(&self) -> &FlameView {
        &self.flame_view
    }

    /// The paths view's state.
    pub fn paths_view(&self) -> &PathsView {
        &self.paths_view
    }

    /// The guided tours' state (the tour and step shown).
    pub fn tours(&self) -> &ToursState {
        &self.tours
    }

    /// The waterfall's state (the call followed).
    pub fn waterfall(&self) -> &WaterfallState {
        &self.waterfall
    }

    /// The tab the central area shows.
    pub fn tab(&self) -> CentralTab {
        self.tab
    }

    /// The CPU timeline's state (time in view, selection).
    pub fn cpu_view(&self) -> &CpuTimelineState {
        &self.cpu_view
    }

    /// The inspector's state (probe, page, filter).
    pub fn inspector(&self) -> &InspectorState {
        &self.inspector
    }

    /// Shows the page of a browsed recording's events from event number
    /// `first` in the inspector (what its page buttons do).
    pub fn set_inspector_page(&mut self, first: u64) {
        self.inspector.page_first = first;
    }

    /// Draws one frame into `ui` (the whole window).
    pub fn show_ui(&mut self, ui: &mut egui::Ui) {
        let wall = self.clock.now();
        self.drain_updates(ui.ctx());
        // Views draw at the model's time: the wall clock, or the playhead.
        let now = self.model.now(wall);
        self.model.tick(now);
        // Probes outside the map's subsystems get a node of their own, so
        // their events do not leave the map dark.
        let model = &self.model;
        self.map.place_probes(
            model
                .probes
                .iter()
                .filter(|p| p.enabled || model.timeline.series(&p.id).is_some()),
        );
        self.tours.poll_action();
        self.follow_when_played();
        self.follow_from_file();
        self.light_map();
        self.open_dialog_ui(ui.ctx());
        self.baseline_dialog_ui(ui.ctx());
        views::tools_windows_ui(ui.ctx(), &self.model, &mut self.tools, &mut self.commands);
        views::verifier_log_window_ui(ui.ctx(), &self.model, &mut self.pack_view);
        self.top_panels_ui(ui, wall);
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.scope_builder(UiBuilder::new().accessibility_label(region::STATUS), |ui| {
                views::status_bar_ui(ui, &self.model, wall);
            });
        });
        self.probes_panel_ui(ui);
        self.tour_panel_ui(ui);
        egui::CentralPanel::default().show(ui, |ui| {
            self.tabs_ui(ui);
            ui.separator();
            self.central_ui(ui, now);
        });
        self.apply_commands(ui.ctx());
        self.watch_cost();
        let replay_playing = self.model.replay.as_ref().is_some_and(|r| r.playing);
        if self.model.is_connected() || replay_playing {
            ui.ctx().request_repaint_after(LIVE_REPAINT_INTERVAL);
        }
    }

    /// The connection banner (when not connected) and the replay bar.
    fn top_panels_ui(&mut self, ui: &mut egui::Ui, wall: Instant) {
        if let Some(text) = views::banner_text(&self.model) {
            egui::Panel::top("banner")
                .frame(egui::Frame::NONE)
                .show(ui, |ui| {
                    ui.scope_builder(UiBuilder::new().accessibility_label(region::BANNER), |ui| {
                        views::banner_ui(ui, &text);
                    });
                });
        }
        egui::Panel::top("replay").show(ui, |ui| {
            ui.scope_builder(UiBuilder::new().accessibility_label(region::REPLAY), |ui| {
                views::replay_bar_ui(
                    ui,
                    &self.model,
                    self.recorder.status(),
                    wall,
                    &mut self.commands,
                );
            });
        });
    }

    /// The left panel: the tools buttons (live only) and the probe list.
    fn probes_panel_ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::left("probes")
            .default_size(theme::PROBE_PANEL_WIDTH)
            .show(ui, |ui| {
                ui.scope_builder(UiBuilder::new().accessibility_label(region::PROBES), |ui| {
                    if !self.model.is_replay() {
                        views::tools_buttons_ui(
                            ui,
                            &self.model,
                            &mut self.tools,
                            &mut self.commands,
                        );
                    }
                    views::probes_ui(
                        ui,
                        &self.model,
                        &self.map,
                        &mut self.probe_filter,
                        self.show_cost,
                        &mut self.commands,
                    );
                });
            });
    }

    /// The row of tabs above the central area.
    fn tabs_ui(&mut self, ui: &mut egui::Ui) {
        ui.scope_builder(UiBuilder::new().accessibility_label(region::TABS), |ui| {
            // Wrapped: with a tour's panel open at 1280 px the last tab
            // ("Cost") was cut off.
            ui.horizontal_wrapped(|ui| {
                for tab in CentralTab::ALL {
                    if ui.selectable_label(self.tab == tab, tab.title()).clicked() {
                        self.commands.send(Command::ShowTab(tab));
                    }
                }
            });
        });
    }

    /// The tab shown in the central area, labelled for screen readers.
    fn central_ui(&mut self, ui: &mut egui::Ui, now: Instant) {
        let labelled = |label| UiBuilder::new().accessibility_label(label);
        match self.tab {
            CentralTab::Rates => self.rates_ui(ui, now),
            CentralTab::Map => {
                ui.scope_builder(labelled(region::MAP), |ui| {
                    views::map_ui(
                        ui,
                        &self.model,
                        &self.map,
                        &mut self.map_view,
                        now,
                        &mut self.commands,
                    );
                });
            }
            CentralTab::Events => {
                ui.scope_builder(labelled(region::INSPECTOR), |ui| {
                    views::inspector_ui(ui, &self.model, &mut self.inspector, &mut self.commands);
                });
            }
            CentralTab::Cpus => {
                ui.scope_builder(labelled(region::CPU_TIMELINE), |ui| {
                    views::cpu_timeline_ui(
                        ui,
                        &self.model,
                        &mut self.cpu_view,
                        now,
                        &mut self.commands,
                    );
                });
            }
            CentralTab::Flame => {
                ui.scope_builder(labelled(region::FLAME), |ui| {
                    self.flame_view.ui(ui, &self.model, &mut self.commands);
                });
            }
            CentralTab::Paths => {
                ui.scope_builder(labelled(region::PATHS), |ui| {
                    self.paths_view.ui(ui, &self.model);
                });
            }
            CentralTab::Packs => {
                ui.scope_builder(labelled(region::PACKS), |ui| {
                    views::pack_ui(ui, &self.model, &mut self.pack_view);
                });
            }
            CentralTab::Cost => {
                ui.scope_builder(labelled(region::COST), |ui| {
                    views::cost_ui(ui, &self.model, &mut self.commands);
                });
            }
            CentralTab::Tours => {
                ui.scope_builder(labelled(region::TOURS), |ui| {
                    views::tours_list_ui(ui, self.map.catalogue(), &mut self.commands);
                });
            }
            CentralTab::Waterfall => {
                ui.scope_builder(labelled(region::WATERFALL), |ui| {
                    views::waterfall_ui(ui, &self.model, &self.waterfall, &mut self.commands);
                });
            }
        }
    }

    /// The Rates tab: events per second above the latency histogram.
    fn rates_ui(&mut self, ui: &mut egui::Ui, now: Instant) {
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
                views::histogram_ui(ui, &self.model, &mut self.histogram);
            },
        );
    }

    /// Applies what the recording's browser read (few, large answers).
    fn drain_browser(&mut self) {
        if let Some((updates, _)) = &self.browser {
            while let Ok(update) = updates.try_recv() {
                self.model.apply(update);
            }
        }
        if let Some(baseline) = &self.baseline
            && let Ok(update) = baseline.try_recv()
        {
            self.model.apply(update);
            self.baseline = None;
        }
    }

    fn drain_updates(&mut self, ctx: &egui::Context) {
        self.drain_browser();
        let started = Instant::now();
        loop {
            if started.elapsed() > DRAIN_BUDGET {
                // More is waiting: come back right after this frame.
                ctx.request_repaint();
                return;
            }
            match self.updates.try_recv() {
                Ok(Update::Disconnected { reason })
                    if self.demo_if_unreachable
                        && self.model.connection == ConnectionState::Connecting =>
                {
                    // No helper at start-up: show the demo rather than an empty window.
                    log::info!("{reason}; opening the demo recording");
                    self.demo_if_unreachable = false;
                    match sources::demo_file() {
                        Ok(path) => self.start_replay(path, true, ctx),
                        Err(err) => self.model.apply(Update::Disconnected {
                            reason: format!("{reason} (and the demo could not be opened: {err})"),
                        }),
                    }
                    return;
                }
                Ok(update) => {
                    let probe_list = matches!(update, Update::Probes(_));
                    self.model.apply(update);
                    if probe_list {
                        self.switch_on_default_probes();
                    }
                }
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

    /// Replays `path` instead of what was shown before.
    pub fn start_replay(&mut self, path: PathBuf, demo: bool, ctx: &egui::Context) {
        // A baseline stays open across recordings.
        let baseline = self.model.browse.baseline.take();
        self.model = Model::for_replay(self.clock.now(), demo).with_clock(self.clock.clone());
        self.model.browse.baseline = baseline;
        self.to_helper = None; // ends the ingest thread, so the helper detaches
        self.watching_cost = false;
        self.cpu_view = CpuTimelineState::default();
        self.inspector = InspectorState::default();
        // The browser asked for the call's events is replaced below.
        self.waterfall.reading = None;
        self.browser = match sources::browse(&path, wake(ctx)) {
            Ok(browser) => Some(browser),
            Err(err) => {
                log::warn!(
                    "could not start reading {} for browsing: {err}",
                    path.display()
                );
                None
            }
        };
        match sources::replay(&path, self.model.epoch(), wake(ctx)) {
            Ok((updates, controls)) => {
                self.updates = updates;
                self.replay_controls = Some(controls);
            }
            Err(err) => {
                self.model.last_helper_error = Some(format!(
                    "could not start replaying {}: {err}",
                    path.display()
                ));
            }
        }
    }

    /// Leaves a replay and connects to the helper.
    fn go_live(&mut self, ctx: &egui::Context) {
        let Some(socket) = self.socket.clone() else {
            return;
        };
        self.replay_controls = None; // ends the replay thread
        self.browser = None; // and the browser
        self.waterfall.reading = None;
        self.model = Model::new(self.clock.now()).with_clock(self.clock.clone());
        match sources::live(&socket, wake(ctx), self.recorder.clone()) {
            Ok((updates, to_helper)) => {
                self.updates = updates;
                self.to_helper = Some(to_helper);
                // A new connection watches nothing yet.
                self.watching_cost = false;
            }
            Err(err) => {
                self.model.apply(Update::Disconnected {
                    reason: format!("could not start the connection thread: {err}"),
                });
            }
        }
    }

    fn baseline_dialog_ui(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.baseline_dialog else {
            return;
        };
        if dialog.show(ctx).selected()
            && let Some(path) = dialog.path()
        {
            self.commands.send(Command::OpenBaseline(path.to_owned()));
        }
        if !dialog.visible() {
            self.baseline_dialog = None;
        }
    }

    /// Reads `path` as the baseline the flame graph, rates and histogram
    /// compare with.
    pub fn open_baseline(&mut self, path: PathBuf, ctx: &egui::Context) {
        match sources::baseline(&path, wake(ctx)) {
            Ok(updates) => self.baseline = Some(updates),
            Err(err) => {
                self.model.last_helper_error = Some(format!(
                    "could not start reading {} as the baseline: {err}",
                    path.display()
                ));
            }
        }
    }

    fn open_dialog_ui(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.open_dialog else {
            return;
        };
        if dialog.show(ctx).selected()
            && let Some(path) = dialog.path()
        {
            self.commands.send(Command::OpenRecording(path.to_owned()));
        }
        if !dialog.visible() {
            self.open_dialog = None;
        }
    }

    /// The one place where commands change state.
    fn apply_commands(&mut self, ctx: &egui::Context) {
        let commands: Vec<Command> = self.commands.drain().collect();
        for command in commands {
            if command.is_tour() {
                self.apply_tour_command(command, ctx);
                continue;
            }
            match command {
                Command::SetProbeEnabled { probe, enabled } => {
                    // Someone who ticks a default probe wants its events.
                    if enabled && self.model.counted_in_kernel.remove(&probe) {
                        let options = self.options_of(&probe);
                        self.send_to_helper(ClientMessage::SetOptions {
                            probe: probe.clone(),
                            options,
                        });
                    }
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
                Command::ShowCost(shown) => self.show_cost = shown,
                Command::Replay(control) => {
                    if let Some(controls) = &self.replay_controls
                        && controls.try_send(control).is_err()
                    {
                        log::warn!("the replay thread is busy or gone; dropped {control:?}");
                    }
                }
                Command::Browse(request) => {
                    if let Some((_, requests)) = &self.browser
                        && requests.try_send(request).is_err()
                    {
                        log::warn!("the recording's browser is busy or gone; dropped {request:?}");
                    }
                }
                Command::ShowCpuRange { from_secs, to_secs } => {
                    self.cpu_view.follow_live = false;
                    self.cpu_view.end_secs = to_secs;
                    self.cpu_view.span_secs = (to_secs - from_secs).max(1e-6);
                }
                Command::ShowOpenDialog => {
                    let mut dialog = egui_file::FileDialog::open_file()
                        .title("Open a Microscope recording")
                        .filename_filter(Box::new(|name: &str| name.ends_with(".mscr")));
                    dialog.open();
                    self.open_dialog = Some(dialog);
                }
                Command::OpenRecording(path) => self.start_replay(path, false, ctx),
                Command::ShowBaselineDialog => {
                    let mut dialog = egui_file::FileDialog::open_file()
                        .title("Open a recording to compare with")
                        .filename_filter(Box::new(|name: &str| name.ends_with(".mscr")));
                    dialog.open();
                    self.baseline_dialog = Some(dialog);
                }
                Command::OpenBaseline(path) => self.open_baseline(path, ctx),
                Command::GoLive => self.go_live(ctx),
                Command::SetStacks { probe, on } => {
                    if on {
                        self.model.stacks_wanted.insert(probe.clone());
                    } else {
                        self.model.stacks_wanted.remove(&probe);
                    }
                    let options = self.options_of(&probe);
                    self.send_to_helper(ClientMessage::SetOptions { probe, options });
                }
                Command::StreamEvents(probe) => {
                    if self.model.counted_in_kernel.remove(&probe) {
                        let options = self.options_of(&probe);
                        self.send_to_helper(ClientMessage::SetOptions { probe, options });
                    }
                }
                Command::ShowPaths { key } => {
                    self.paths_view.filters.probe = Some(key);
                    self.flame_view.filters.probe = Some(key);
                    self.tab = CentralTab::Paths;
                }
                Command::SelectSubsystem(id) => {
                    if self.map.node(&id).is_some() {
                        self.tab = CentralTab::Map;
                        self.map_view.selected = Some(id);
                    } else {
                        self.model.last_helper_error = Some(format!(
                            "there is no subsystem `{id}` on the map; the map's search box lists them"
                        ));
                    }
                }
                Command::HighlightMap(highlight) => self.map_view.highlight = highlight,
                Command::StartRecording => {
                    let dir = std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir());
                    let path = microscope_sources::default_path(&dir);
                    if let Err(err) = self.recorder.start(&path, &self.model.wanted) {
                        self.model.last_helper_error = Some(format!("could not record: {err}"));
                    }
                }
                Command::StopRecording => {
                    if let Some(outcome) = self.recorder.stop() {
                        self.model.last_helper_error = Some(outcome);
                    }
                }
                Command::ListKernelFunctions(contains) => {
                    self.send_to_helper(ClientMessage::ListKernelFunctions { contains });
                }
                Command::ListTracepoints => self.send_to_helper(ClientMessage::ListTracepoints),
                Command::SetFilter(filter) => self.send_to_helper(ClientMessage::SetFilter(filter)),
                Command::ExportFolded(path) => {
                    // The view shows the sentence; the log keeps it too.
                    if let Err(err) = self.flame_view.export_folded(&path) {
                        log::warn!("{err}");
                    }
                }
                Command::ShowStackRange { start_ns, end_ns } => {
                    self.flame_view.set_range(start_ns, end_ns);
                    self.paths_view.set_range(start_ns, end_ns);
                }
                Command::StartTour(_)
                | Command::TourStep(_)
                | Command::EndTour
                | Command::RunTourAction(_)
                | Command::FollowCall { .. }
                | Command::FollowSlowest { .. }
                | Command::ClearWaterfall
                | Command::FollowWhenPlayed(_) => self.apply_tour_command(command, ctx),
                Command::ShowVerifierLog(probe) => {
                    if !self.model.verifier_logs.contains_key(&probe) {
                        self.send_to_helper(ClientMessage::VerifierLog {
                            probe: probe.clone(),
                        });
                    }
                    self.pack_view.verifier_log = Some(probe);
                }
            }
        }
    }

    /// Asks the helper for cost reports exactly while something shows
    /// them (the Cost tab, or "Show cost"), so the kernel's run-time
    /// statistics are on only while someone looks.
    fn watch_cost(&mut self) {
        let wanted = !self.model.is_replay() && (self.show_cost || self.tab == CentralTab::Cost);
        if wanted != self.watching_cost {
            self.watching_cost = wanted;
            self.send_to_helper(ClientMessage::WatchCost { watch: wanted });
        }
    }

    /// Asks the helper to count each default probe in the kernel and to
    /// switch it on, the first time its probe list arrives while live.
    fn switch_on_default_probes(&mut self) {
        if self.default_probes != DefaultProbes::Pending || self.model.is_replay() {
            return;
        }
        self.default_probes = DefaultProbes::Done;
        let ids: Vec<String> =
            microscope_model::live_defaults::to_switch_on(&self.model.probes, &self.model.wanted)
                .into_iter()
                .map(str::to_owned)
                .collect();
        log::info!(
            "switching on {} default probes, counted in the kernel",
            ids.len()
        );
        for probe in ids {
            self.send_to_helper(ClientMessage::SetOptions {
                probe: probe.clone(),
                options: microscope_wire::ProbeOptions {
                    count_only: true,
                    ..Default::default()
                },
            });
            self.model.counted_in_kernel.insert(probe.clone());
            self.model.wanted.insert(probe.clone());
            self.send_to_helper(ClientMessage::Enable { probe });
        }
    }

    /// The options to send for `probe`: stacks as asked, counted in the
    /// kernel if it is a default probe nobody asked to stream.
    fn options_of(&self, probe: &str) -> microscope_wire::ProbeOptions {
        microscope_wire::ProbeOptions {
            stacks: self.model.stacks_wanted.contains(probe),
            count_only: self.model.counted_in_kernel.contains(probe),
            ..Default::default()
        }
    }

    fn send_to_helper(&self, message: ClientMessage) {
        let Some(to_helper) = &self.to_helper else {
            log::info!("replaying a recording; {message:?} is not sent");
            return;
        };
        // Never block the UI: the channel only fills if the ingest thread is
        // stuck, and then dropping a click is the lesser evil.
        match to_helper.try_send(message) {
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

/// Guided tours and the waterfall.
impl MicroscopeApp {
    /// What the map highlights: the tour step shown, else the call
    /// followed in the waterfall.
    fn highlight(&self) -> microscope_model::map::MapHighlight {
        match &self.waterfall.current {
            Some(Ok(waterfall)) if self.waterfall.on_map => {
                views::highlight_of(&self.map, waterfall)
            }
            _ => self.tours.highlight(self.map.catalogue()),
        }
    }

    /// Puts the tour step's or the followed call's highlight on the map;
    /// clears it when neither is left (other highlights are left alone).
    fn light_map(&mut self) {
        let ours = self.highlight();
        if !ours.is_empty() {
            self.map_view.highlight = ours;
            self.tours.lit_map = true;
        } else if self.tours.lit_map {
            self.map_view.highlight = microscope_model::map::MapHighlight::default();
            self.tours.lit_map = false;
        }
    }

    /// A follow asked for before the replay had played: done once it has.
    fn follow_when_played(&mut self) {
        let played = match &self.model.replay {
            Some(r) => !r.playing && r.position_ns == r.duration_ns,
            None => !self.model.is_replay(),
        };
        if played && let Some(call) = self.waterfall.pending.take() {
            self.commands
                .send(Command::FollowSlowest { call, tid: None });
        }
    }

    /// In a replay, asks the recording's browser for every event around the
    /// call just followed: the inspector keeps only the newest events of
    /// each probe, and a busy probe (`sched_switch`) has often forgotten
    /// those around the call. `picked` is the moment asked for, used when
    /// the inspector could not follow the call at all.
    fn read_call_from_file(&mut self, tid: u32, picked_ns: u64) {
        self.waterfall.from_file = false;
        self.waterfall.reading = None;
        if !self.model.is_replay() {
            return;
        }
        let Some((_, requests)) = &self.browser else {
            return;
        };
        let (at_ns, from_ns, to_ns) = match &self.waterfall.current {
            Some(Ok(w)) => (w.enter_ns, w.enter_ns, w.exit_ns),
            _ => (
                picked_ns,
                picked_ns.saturating_sub(CALL_SEARCH_NS),
                picked_ns.saturating_add(CALL_SEARCH_NS),
            ),
        };
        let request = BrowseRequest::CallEvents {
            tid,
            at_ns,
            from_ns,
            to_ns,
        };
        if requests.try_send(request).is_ok() {
            self.waterfall.reading = Some((tid, at_ns));
        } else {
            log::warn!(
                "the recording's browser is busy or gone; the waterfall stays as followed from the inspector's events"
            );
        }
    }

    /// Follows the call again through the events the browser read around
    /// it, once they arrive; keeps what the inspector gave if the file
    /// does not do better.
    fn follow_from_file(&mut self) {
        let Some((tid, at_ns)) = self.waterfall.reading else {
            return;
        };
        let Some(read) = self.model.browse.call_events.clone() else {
            return;
        };
        if (read.tid, read.at_ns) != (tid, at_ns) {
            return; // an older answer
        }
        self.waterfall.reading = None;
        match (read.follow(), &self.waterfall.current) {
            (Ok(waterfall), _) => {
                self.waterfall.current = Some(Ok(waterfall));
                self.waterfall.from_file = true;
            }
            (Err(why), None | Some(Err(_))) => {
                self.waterfall.current = Some(Err(why.to_string()));
            }
            (Err(why), Some(Ok(_))) => {
                log::warn!("following the call through the recording's events failed: {why}");
            }
        }
    }

    /// The current tour step, in a panel right of the central area.
    fn tour_panel_ui(&mut self, ui: &mut egui::Ui) {
        if self.tours.current(self.map.catalogue()).is_none() {
            return;
        }
        egui::Panel::right("tour")
            .default_size(theme::TOUR_PANEL_WIDTH)
            .show(ui, |ui| {
                ui.scope_builder(
                    UiBuilder::new().accessibility_label(region::TOUR_STEP),
                    |ui| {
                        views::tour_step_ui(
                            ui,
                            &self.model,
                            self.map.catalogue(),
                            &self.tours,
                            &mut self.commands,
                        );
                    },
                );
            });
    }

    /// Shows step `step` of the current tour and switches on its probes
    /// (live only; a recording holds what it holds).
    fn show_tour_step(&mut self, tour: String, step: usize) {
        self.tours.position = Some(views::TourPosition { tour, step });
        self.waterfall.on_map = false;
        self.tab = CentralTab::Map;
        let Some((_, _, step)) = self.tours.current(self.map.catalogue()) else {
            return;
        };
        if self.model.is_replay() {
            return;
        }
        let wanted: Vec<String> = step
            .probes
            .iter()
            .filter(|id| !self.model.wanted.contains(*id))
            .filter(|id| {
                self.model
                    .probe(id)
                    .is_none_or(|p| p.is_available() && !p.enabled)
            })
            .cloned()
            .collect();
        for probe in wanted {
            self.tours.switched_on.push(probe.clone());
            self.model.wanted.insert(probe.clone());
            self.send_to_helper(ClientMessage::Enable { probe });
        }
    }

    fn apply_tour_command(&mut self, command: Command, ctx: &egui::Context) {
        match command {
            Command::StartTour(id) => {
                if self.map.catalogue().tour(&id).is_some() {
                    self.tours.last_report = None;
                    self.show_tour_step(id, 0);
                } else {
                    self.model.last_helper_error =
                        Some(format!("there is no tour `{id}`; the Tours tab lists them"));
                }
            }
            Command::TourStep(step) => {
                if let Some(position) = self.tours.position.clone() {
                    self.show_tour_step(position.tour, step);
                }
            }
            Command::EndTour => {
                self.tours.position = None;
                for probe in std::mem::take(&mut self.tours.switched_on) {
                    self.model.wanted.remove(&probe);
                    self.send_to_helper(ClientMessage::Disable { probe });
                }
            }
            Command::RunTourAction(action) => {
                match sources::spawn_tour_action(action, sources::scratch_dir(), wake(ctx)) {
                    Ok(rx) => self.tours.running = Some(rx),
                    Err(err) => {
                        self.model.last_helper_error =
                            Some(format!("could not start the tour's action: {err}"));
                    }
                }
            }
            Command::FollowCall { tid, ts_ns } => {
                let observed = self.model.observed_events();
                self.waterfall.current = Some(
                    microscope_model::waterfall::follow(&observed, tid, ts_ns)
                        .map_err(|e| e.to_string()),
                );
                self.read_call_from_file(tid, ts_ns);
                self.waterfall.on_map = true;
                self.tab = CentralTab::Waterfall;
            }
            Command::FollowSlowest { call, tid } => {
                let observed = self.model.observed_events();
                self.waterfall.current = Some(
                    slowest_call(&observed, &call, tid).ok_or_else(|| {
                        format!(
                            "no finished {call}() among the events kept yet: it needs syscalls:sys_enter_{call} and syscalls:sys_exit_{call}{}",
                            if self.model.is_replay() {
                                ", and the replay to reach one"
                            } else {
                                "; press the step's action button to make one"
                            }
                        )
                    }),
                );
                if let Some(Ok(w)) = &self.waterfall.current {
                    let (tid, at_ns) = (w.tid, w.enter_ns);
                    self.read_call_from_file(tid, at_ns);
                }
                self.waterfall.on_map = true;
                self.tab = CentralTab::Waterfall;
            }
            Command::ClearWaterfall => {
                self.waterfall.current = None;
                self.waterfall.reading = None;
                self.waterfall.from_file = false;
            }
            Command::FollowWhenPlayed(call) => self.waterfall.pending = Some(call),
            _ => {}
        }
    }
}

/// When a call cannot be followed from the inspector's events in a replay,
/// how far either side of the picked moment the recording is read for it.
const CALL_SEARCH_NS: u64 = 1_000_000_000;

/// How many of the slowest calls are followed to find one that went to
/// the disk.
const SLOWEST_TRIED: usize = 64;

/// The recent `call` that best shows the path to the disk: of thread `tid`
/// when given, else of a `tour-*` thread (the demo's workload, see
/// `microscope_sources::ACTION_THREAD`) when there is one; among those, one
/// that went to the disk and was woken, then the slowest. A blocking pipe
/// read can be slower than any disk read, and the tours are about the disk.
fn slowest_call(
    observed: &[microscope_model::waterfall::Observed],
    call: &str,
    tid: Option<u32>,
) -> Option<microscope_model::waterfall::Waterfall> {
    use microscope_model::waterfall::{Waterfall, calls, follow};
    let tour_threads: std::collections::HashSet<u32> = observed
        .iter()
        .filter(|o| o.comm.starts_with("tour-"))
        .map(|o| o.pid)
        .collect();
    let ours = |t: u32| match tid {
        Some(tid) => t == tid,
        None => tour_threads.contains(&t),
    };
    let mut all = calls(observed, call);
    all.sort_by_key(|(t, start, end)| (!ours(*t), std::cmp::Reverse(end - start)));
    let followed: Vec<Waterfall> = all
        .iter()
        .take(SLOWEST_TRIED)
        .filter_map(|(t, start, _)| follow(observed, *t, *start).ok())
        .collect();
    let woken = |w: &Waterfall| w.steps.iter().any(|s| s.probe == "sched:sched_wakeup");
    let score = |w: &Waterfall| (ours(w.tid), w.went_to_disk(), woken(w));
    followed
        .iter()
        .max_by_key(|w| (score(w), w.latency_ns()))
        .cloned()
}

/// Wakes the UI from a source thread.
fn wake(ctx: &egui::Context) -> Wake {
    let ctx = ctx.clone();
    Arc::new(move || ctx.request_repaint())
}

impl eframe::App for MicroscopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show_ui(ui);
    }
}
