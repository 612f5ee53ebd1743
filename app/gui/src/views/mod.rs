//! One view per file. Each draws from the [`Model`](crate::model::Model) and
//! reports what the user asked for as [`Command`](crate::command::Command)s.

mod banner;
mod histogram_view;
mod probes_panel;
mod status_bar;
mod timeline_view;

pub use banner::{banner_text, banner_ui};
pub use histogram_view::histogram_ui;
pub use probes_panel::probes_ui;
pub use status_bar::status_bar_ui;
pub use timeline_view::timeline_ui;

/// Accessibility labels of the app's regions, for screen readers and tests.
pub mod region {
    /// The top banner shown while not connected.
    pub const BANNER: &str = "Connection banner";
    /// The left panel with the probe checkboxes.
    pub const PROBES: &str = "Probe list";
    /// The events-per-second plot.
    pub const TIMELINE: &str = "Timeline";
    /// The syscall latency histogram.
    pub const LATENCY: &str = "Syscall latency";
    /// The bottom status bar.
    pub const STATUS: &str = "Status";
}
