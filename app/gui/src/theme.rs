//! Colours and spacing, in one place.

use egui::{Color32, Margin};

/// Background of the "not connected" banner.
pub const BANNER_FILL: Color32 = Color32::from_rgb(0x8a, 0x3b, 0x12);
/// Text on the banner.
pub const BANNER_TEXT: Color32 = Color32::from_rgb(0xff, 0xf4, 0xe8);
/// Inner margin of the banner.
pub const BANNER_MARGIN: Margin = Margin::symmetric(10, 6);
/// "Connected" in the status bar.
pub const CONNECTED: Color32 = Color32::from_rgb(0x4c, 0xaf, 0x50);
/// "Not connected" in the status bar, and non-zero drop counts.
pub const WARNING: Color32 = Color32::from_rgb(0xe5, 0x73, 0x3b);
/// Bars of the latency histogram.
pub const HISTOGRAM_BAR: Color32 = Color32::from_rgb(0x5c, 0x9d, 0xe0);
/// Gap between items in a row, in points.
pub const ITEM_GAP: f32 = 12.0;
/// Vertical space between sections, in points.
pub const SECTION_GAP: f32 = 8.0;
/// Default width of the probe list, in points.
pub const PROBE_PANEL_WIDTH: f32 = 240.0;
/// Share of the central area given to the timeline; the histogram gets the rest.
pub const TIMELINE_SHARE: f32 = 0.6;

/// Distinct line colours for the timeline, reused in order.
const SERIES: [Color32; 8] = [
    Color32::from_rgb(0x5c, 0x9d, 0xe0),
    Color32::from_rgb(0xe0, 0x8e, 0x3c),
    Color32::from_rgb(0x6c, 0xc0, 0x6a),
    Color32::from_rgb(0xd0, 0x5c, 0x8a),
    Color32::from_rgb(0xb0, 0x8c, 0xe8),
    Color32::from_rgb(0xd8, 0xc8, 0x4a),
    Color32::from_rgb(0x4a, 0xc8, 0xc0),
    Color32::from_rgb(0xc8, 0x6a, 0x4a),
];

/// Line colour of the `index`-th series.
pub fn series_color(index: usize) -> Color32 {
    SERIES[index % SERIES.len()]
}

/// Tallest a CPU's lane gets in the CPU timeline (they shrink to fit many
/// CPUs), in points.
pub const CPU_LANE_HEIGHT: f32 = 40.0;
/// Vertical gap between CPU lanes, in points.
pub const CPU_LANE_GAP: f32 = 3.0;
/// Width of the "CPU n" labels left of the lanes, in points.
pub const CPU_LANE_LABEL_WIDTH: f32 = 52.0;
/// Height of the time axis under the lanes, in points.
pub const TIME_AXIS_HEIGHT: f32 = 18.0;
/// Behind a lane, where no slice is known.
pub const CPU_LANE_FILL: Color32 = Color32::from_gray(22);
/// A CPU's idle task: dim, so busy time stands out.
pub const IDLE_SLICE: Color32 = Color32::from_gray(52);
/// Command names written on slices.
pub const SLICE_TEXT: Color32 = Color32::from_gray(16);
/// "idle" written on the dim idle slices.
pub const IDLE_SLICE_TEXT: Color32 = Color32::from_gray(150);
/// Outline of the selected slice.
pub const SELECTED_SLICE: Color32 = Color32::WHITE;
/// Tick marks and labels of the time axis.
pub const AXIS_TEXT: Color32 = Color32::from_gray(150);

/// The colour of a process in the CPU timeline: stable for a `tgid`, and
/// neighbouring ids far apart in hue (golden-ratio steps).
pub fn process_color(tgid: u32) -> Color32 {
    // The fractional part of tgid × 0.618034, in integers so large ids keep
    // their precision.
    let hue = ((u64::from(tgid) * 618_034) % 1_000_000) as f32 / 1_000_000.0;
    egui::ecolor::Hsva::new(hue, 0.5, 0.8, 1.0).into()
}

/// Width of the replay scrubber, in points.
pub const SCRUBBER_WIDTH: f32 = 360.0;

/// Behind the subsystem map.
pub const MAP_BACKGROUND: Color32 = Color32::from_gray(24);
/// Every other layer band of the map.
pub const MAP_BAND: Color32 = Color32::from_gray(30);
/// A subsystem with no events (or no probe on).
pub const MAP_COLD: Color32 = Color32::from_gray(70);
/// Outline of a map node.
pub const MAP_NODE_OUTLINE: Color32 = Color32::from_gray(140);
/// Names under the map nodes.
pub const MAP_TEXT: Color32 = Color32::from_gray(220);
/// Paths between subsystems.
pub const MAP_EDGE: Color32 = Color32::from_gray(90);
/// Paths touching the selected subsystem.
pub const MAP_EDGE_SELECTED: Color32 = Color32::from_rgb(0xe0, 0xc0, 0x60);
/// Behind the probe a search jumped to.
pub const MAP_HIGHLIGHT: Color32 = Color32::from_rgb(0x40, 0x38, 0x18);
