//! What widgets ask for. Views push [`Command`]s while drawing; the app
//! applies them in one place after the frame's widgets are laid out.

/// A request from a widget.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Turn a probe on or off.
    SetProbeEnabled {
        /// Probe id.
        probe: String,
        /// Wanted state.
        enabled: bool,
    },
    /// Keep the timeline scrolled to the newest data, or let the user pan and zoom.
    SetFollowLive(bool),
    /// Show another tab in the central area.
    ShowTab(crate::tab::CentralTab),
    /// Play, pause, change speed or seek the replay.
    Replay(microscope_sources::ReplayControl),
    /// Read part of the replayed recording for a view (a time range of
    /// slices, a page of events).
    Browse(microscope_sources::BrowseRequest),
    /// Show `from_secs..to_secs` in the CPU timeline (stops following).
    ShowCpuRange {
        /// Left edge, seconds since the start.
        from_secs: f64,
        /// Right edge.
        to_secs: f64,
    },
    /// Show the file picker for a baseline recording.
    ShowBaselineDialog,
    /// Read this recording as the baseline to compare with.
    OpenBaseline(std::path::PathBuf),
    /// Show the file picker for a recording.
    ShowOpenDialog,
    /// Replay this recording instead of the live kernel.
    OpenRecording(std::path::PathBuf),
    /// Leave the replay and connect to the helper.
    GoLive,
    /// Capture (or stop capturing) the stack of every hit of a tracepoint.
    SetStacks {
        /// Probe id (a tracepoint).
        probe: String,
        /// Capture or not.
        on: bool,
    },
    /// Stream the events of a probe that is only counted in the kernel
    /// (a default probe).
    StreamEvents(String),
    /// Show the call paths into a probe (its captured stacks).
    ShowPaths {
        /// The probe's key.
        key: microscope_wire::ProbeKey,
    },
    /// Show the map with this subsystem's details.
    SelectSubsystem(String),
    /// Make these nodes and edges stand out on the map (an empty highlight
    /// clears it). Does not switch tabs.
    HighlightMap(microscope_model::map::MapHighlight),
    /// Start recording what the helper sends to a new file in the current
    /// directory.
    StartRecording,
    /// Stop the recording and write its index.
    StopRecording,
    /// Ask the helper for kernel functions whose name contains this.
    ListKernelFunctions(String),
    /// Ask the helper for every tracepoint of the kernel.
    ListTracepoints,
    /// Set the helper's in-kernel process filter.
    SetFilter(microscope_wire::ProcessFilter),
    /// Write the flame graph shown as folded stacks to this file.
    ExportFolded(std::path::PathBuf),
    /// Show (or hide) what each probe costs under it in the probe list and
    /// the map's details; the app watches the cost while shown.
    ShowCost(bool),
    /// Show the stack samples of `[start_ns, end_ns)` (kernel ns) in the
    /// flame graph and paths views, e.g. a selection on the timeline.
    ShowStackRange {
        /// First time included.
        start_ns: u64,
        /// First time excluded.
        end_ns: u64,
    },
    /// Ask the helper for the verifier's whole log of this pack probe and
    /// show it in a window.
    ShowVerifierLog(String),
    /// Start a guided tour (its id) at its first step, beside the map.
    StartTour(String),
    /// Show this step (from 0) of the current tour.
    TourStep(usize),
    /// Leave the tour (probes it switched on are switched off).
    EndTour,
    /// Do a tour step's action (read a file...) on a thread of the app.
    RunTourAction(microscope_catalogue::TourAction),
    /// Follow the system call thread `tid` was in at `ts_ns` (kernel ns).
    FollowCall {
        /// The thread.
        tid: u32,
        /// Its entry, its exit, or any time in between.
        ts_ns: u64,
    },
    /// Follow the slowest recent call of a system call (of thread `tid`
    /// when given, falling back to any thread).
    FollowSlowest {
        /// The system call (`read`).
        call: String,
        /// Prefer this thread's calls.
        tid: Option<u32>,
    },
    /// Close the waterfall, back to picking a call.
    ClearWaterfall,
    /// [`Command::FollowSlowest`] of this system call once the replay has
    /// played to its end (at once when live).
    FollowWhenPlayed(String),
}

/// Tours and followed calls.
impl Command {
    /// Whether it belongs to the guided tours or the waterfall (applied by
    /// `MicroscopeApp::apply_tour_command`).
    pub fn is_tour(&self) -> bool {
        matches!(
            self,
            Self::StartTour(_)
                | Self::TourStep(_)
                | Self::EndTour
                | Self::RunTourAction(_)
                | Self::FollowCall { .. }
                | Self::FollowSlowest { .. }
                | Self::ClearWaterfall
                | Self::FollowWhenPlayed(_)
        )
    }
}

/// Collects the commands of one frame.
#[derive(Debug, Default)]
pub struct CommandQueue {
    commands: Vec<Command>,
}

impl CommandQueue {
    /// Queues a command.
    pub fn send(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// Takes the queued commands, oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Command> {
        self.commands.drain(..)
    }
}
