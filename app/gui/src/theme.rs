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
pub const MAP_EDGE: Color32 = Color32::from_gray(120);
/// Paths touching the selected subsystem (Okabe–Ito sky blue).
pub const MAP_EDGE_SELECTED: Color32 = Color32::from_rgb(0x56, 0xb4, 0xe9);
/// Nodes and edges a tour step or a followed operation highlights
/// (Okabe–Ito orange: apart from the viridis fills for every colour vision).
pub const MAP_TOUR: Color32 = Color32::from_rgb(0xe6, 0x9f, 0x00);
/// Names on light (busy) map nodes.
pub const MAP_TEXT_DARK: Color32 = Color32::from_gray(20);
/// Behind a highlight's caption on the map.
pub const MAP_CAPTION_FILL: Color32 = Color32::from_rgba_premultiplied(10, 10, 10, 220);

/// The viridis colour map at `t` in `[0, 1]` (dark purple → blue → green →
/// yellow): perceptually uniform, lighter as `t` grows, and told apart by
/// readers with any common colour-vision deficiency (van der Walt and
/// Smith's map for matplotlib; these are its values at 0, ¼, ½, ¾ and 1).
pub fn viridis(t: f32) -> Color32 {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    let [a, b] = [STOPS[i], STOPS[i + 1]];
    let mix = |k: usize| (a[k] + (b[k] - a[k]) * f).round() as u8;
    Color32::from_rgb(mix(0), mix(1), mix(2))
}
/// Behind the probe a search jumped to.
pub const MAP_HIGHLIGHT: Color32 = Color32::from_rgb(0x40, 0x38, 0x18);

/// Height of a row of the flame graph (a frame plus the gap above it), in points.
pub const FLAME_ROW_HEIGHT: f32 = 18.0;
/// Size of frame names in the flame graph, in points (monospace, so the
/// characters that fit a frame are known without laying the text out).
pub const FLAME_FONT_SIZE: f32 = 11.0;
/// Frame names.
pub const FLAME_TEXT: Color32 = Color32::from_gray(20);
/// The root frame ("all").
pub const FLAME_ROOT: Color32 = Color32::from_gray(170);
/// Frames matching the search.
pub const FLAME_MATCH: Color32 = Color32::from_rgb(0xd9, 0x4c, 0xe6);
/// Frames that kept their share in a differential flame graph.
pub const DIFF_SAME: Color32 = Color32::from_gray(215);
/// Frames that grew the most in a differential flame graph.
pub const DIFF_GREW: Color32 = Color32::from_rgb(0xe0, 0x33, 0x2b);
/// Frames that shrank the most in a differential flame graph.
pub const DIFF_SHRANK: Color32 = Color32::from_rgb(0x2f, 0x6f, 0xe0);

/// The colour of a flame-graph frame: a warm hue stable for its name, as in
/// Brendan Gregg's flame graphs, so a function keeps its colour everywhere.
pub fn flame_color(name: &str) -> Color32 {
    // FNV-1a: a few lines, stable across runs and platforms.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let unit = |shift: u32| ((hash >> shift) & 0xff) as f32 / 255.0;
    Color32::from_rgb(
        205 + (50.0 * unit(0)) as u8,
        (230.0 * unit(8)) as u8,
        (55.0 * unit(16)) as u8,
    )
}

/// The colour of a frame in a differential flame graph: red as it grew,
/// blue as it shrank (`ratio` from -1 to 1), pale when it kept its share.
pub fn diff_color(ratio: f64) -> Color32 {
    let strength = ratio.abs().clamp(0.0, 1.0) as f32;
    let target = if ratio >= 0.0 { DIFF_GREW } else { DIFF_SHRANK };
    DIFF_SAME.lerp_to_gamma(target, strength)
}

/// Size of a function's box in the paths view, in points.
pub const PATHS_NODE_SIZE: egui::Vec2 = egui::Vec2::new(190.0, 38.0);
/// Horizontal gap between boxes of a layer, in points.
pub const PATHS_NODE_GAP: f32 = 16.0;
/// Vertical gap between layers (room for the edges and their counts), in points.
pub const PATHS_LAYER_GAP: f32 = 54.0;
/// Calls between functions.
pub const PATHS_EDGE: Color32 = Color32::from_gray(130);
/// Counts written on the calls.
pub const PATHS_EDGE_TEXT: Color32 = Color32::from_gray(190);
/// Outline of a function whose callees are shown.
pub const PATHS_EXPANDED: Color32 = Color32::WHITE;
/// Outline of a function whose callees are hidden.
pub const PATHS_COLLAPSED: Color32 = Color32::from_gray(90);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_red_and_shrinkage_blue() {
        let grew = diff_color(0.8);
        let shrank = diff_color(-0.8);
        assert!(grew.r() > grew.b() + 100, "{grew:?}");
        assert!(shrank.b() > shrank.r() + 100, "{shrank:?}");
        assert_eq!(diff_color(0.0), DIFF_SAME);
        assert_eq!(diff_color(1.0), DIFF_GREW);
        assert_eq!(diff_color(-1.0), DIFF_SHRANK);
    }

    #[test]
    fn a_function_keeps_its_colour() {
        assert_eq!(flame_color("vfs_read"), flame_color("vfs_read"));
        assert_ne!(flame_color("vfs_read"), flame_color("vfs_write"));
    }
}
