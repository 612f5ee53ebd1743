//! Where everything on the subsystem map is painted: the layer bands and
//! their names, the nodes with their name, rate and sparkline, the edges'
//! routes and the legend. The map view paints exactly these rectangles and
//! polylines, and tests check them (no text over another text, a node or
//! the legend; no edge through a node) at the window sizes people use.
//!
//! The model orders each row ([`SubsystemMap::rows`]); an edge across
//! several rows has a narrow *pass* slot in each row in between. So every
//! edge is drawn as:
//! - between neighbouring rows: a straight line in the gap between them;
//! - through a row it passes: a vertical line in its pass slot, where no
//!   node is;
//! - within one row: a horizontal line between two side-by-side nodes, or,
//!   for nodes apart, down into the gap below the row, across, and back up.
//!
//! None of these can touch a node but its own two. Text is wrapped at word
//! boundaries only, by this module, and painted line by line; when a word
//! does not fit even at the smallest size it is cut with "…" rather than
//! broken or allowed to spill.

use egui::{Pos2, Rect, Vec2};
use microscope_model::map::{MapSlot, SubsystemMap};
use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef as _;
use std::collections::HashMap;

/// Measures text: its painted size at a font size, in points.
pub trait MeasureText {
    /// Size of `text` on one line in the proportional font of `size` points.
    fn size(&self, text: &str, size: f32) -> Vec2;
}

impl<F: Fn(&str, f32) -> Vec2> MeasureText for F {
    fn size(&self, text: &str, size: f32) -> Vec2 {
        self(text, size)
    }
}

/// Measures with egui's own fonts, the ones the view paints with.
pub fn egui_measure(ctx: &egui::Context) -> impl MeasureText + '_ {
    move |text: &str, size: f32| {
        ctx.fonts_mut(|fonts| {
            fonts
                .layout_no_wrap(
                    text.to_owned(),
                    egui::FontId::proportional(size),
                    egui::Color32::WHITE,
                )
                .size()
        })
    }
}

/// Height of the legend strip under the map, in points (not zoomed).
pub const LEGEND_HEIGHT: f32 = 24.0;
/// Node name sizes tried, largest first, in points (before zoom).
const NAME_SIZES: [f32; 5] = [14.0, 13.0, 12.0, 11.0, 10.0];
/// Lines a node name may take: two, or three when rows are narrow (a
/// small window with the details panel open).
const NAME_LINES: [usize; 2] = [2, 3];
/// Size of the rate line in a node and of band names, in points.
const SMALL_SIZE: f32 = 11.0;
/// Widest a node gets, in points (before zoom).
const NODE_MAX_WIDTH: f32 = 190.0;
/// Width of a pass slot (an edge crossing a row), in points.
const PASS_WIDTH: f32 = 6.0;
/// Least gap between two slots of a row, in points.
const MIN_GAP: f32 = 10.0;
/// Padding inside a node, in points.
const NODE_PAD: f32 = 5.0;
/// Height of a node's sparkline, in points.
const SPARK_HEIGHT: f32 = 12.0;
/// Least room kept between rows for edges, in points.
const MIN_CHANNEL: f32 = 16.0;
/// Gap between the band names' column and the nodes, in points.
const GUTTER_GAP: f32 = 8.0;

/// A line of text and the box it is painted in.
#[derive(Clone, Debug, PartialEq)]
pub struct TextLine {
    /// The text.
    pub text: String,
    /// Where it is painted (left-top anchored).
    pub rect: Rect,
    /// Font size, in points.
    pub size: f32,
}

/// A layer band: the stripe of one row and its name in the left column.
#[derive(Clone, Debug)]
pub struct BandLayout {
    /// The whole stripe.
    pub rect: Rect,
    /// The layer's name, wrapped into the left column.
    pub label: Vec<TextLine>,
}

/// A node: a rounded box holding its name, its rate and a sparkline.
#[derive(Clone, Debug)]
pub struct NodeLayout {
    /// The node in [`SubsystemMap::graph`].
    pub index: NodeIndex,
    /// The box.
    pub rect: Rect,
    /// The name, one entry per line, centred in the box.
    pub name: Vec<TextLine>,
    /// Where the rate is written (centred).
    pub rate: Rect,
    /// Where the sparkline goes (may be empty when rows are tight).
    pub spark: Rect,
}

/// An edge as a polyline from the source's border to the target's.
#[derive(Clone, Debug)]
pub struct EdgeLayout {
    /// The edge in [`SubsystemMap::graph`].
    pub edge: EdgeIndex,
    /// Points, first on the source's border, last on the target's.
    pub points: Vec<Pos2>,
}

/// The legend strip: the colour scale and a hint of the keys.
#[derive(Clone, Debug)]
pub struct LegendLayout {
    /// The strip.
    pub rect: Rect,
    /// "silent" swatch.
    pub silent_swatch: Rect,
    /// Its text.
    pub silent_text: TextLine,
    /// The colour ramp.
    pub ramp: Rect,
    /// "0" under/left of the ramp.
    pub low_text: TextLine,
    /// Where the maximum rate is written, right of the ramp.
    pub high_text: Rect,
    /// How to zoom, pan and move (left out when the strip is too narrow).
    pub hint: Option<TextLine>,
}

/// Everything painted on the map, in screen points.
#[derive(Clone, Debug)]
pub struct MapLayout {
    /// The whole canvas (content and legend).
    pub canvas: Rect,
    /// Where bands, nodes and edges are painted (clipped to this).
    pub content: Rect,
    /// The bands, top to bottom.
    pub bands: Vec<BandLayout>,
    /// The nodes, in reading order (row by row, left to right).
    pub nodes: Vec<NodeLayout>,
    /// The edges.
    pub edges: Vec<EdgeLayout>,
    /// The legend.
    pub legend: LegendLayout,
    /// Size of node names, in points.
    pub name_size: f32,
}

/// Zoom and pan of the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// 1 = the whole map fits; up to [`MAX_ZOOM`].
    pub zoom: f32,
    /// Offset of the zoomed map from the content's corner, in points.
    pub pan: Vec2,
}

/// Closest zoom.
pub const MAX_ZOOM: f32 = 4.0;

impl Default for View {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            pan: Vec2::ZERO,
        }
    }
}

impl View {
    /// Zooms by `factor` keeping `anchor` (a screen point) where it is;
    /// keeps the map covering `content`.
    #[must_use]
    pub fn zoomed(self, factor: f32, anchor: Pos2, content: Rect) -> Self {
        let zoom = (self.zoom * factor).clamp(1.0, MAX_ZOOM);
        let origin = content.min + self.pan;
        let unzoomed = (anchor - origin) / self.zoom;
        let new_origin = anchor - unzoomed * zoom;
        Self {
            zoom,
            pan: new_origin - content.min,
        }
        .clamped(content)
    }

    /// Moved by `delta` points, kept covering `content`.
    #[must_use]
    pub fn panned(self, delta: Vec2, content: Rect) -> Self {
        Self {
            zoom: self.zoom,
            pan: self.pan + delta,
        }
        .clamped(content)
    }

    /// Moved so that `rect` (a node on screen) is inside `content`, with a
    /// margin.
    #[must_use]
    pub fn showing(self, rect: Rect, content: Rect) -> Self {
        let margin = 12.0;
        let mut delta = Vec2::ZERO;
        if rect.min.x < content.min.x + margin {
            delta.x = content.min.x + margin - rect.min.x;
        } else if rect.max.x > content.max.x - margin {
            delta.x = content.max.x - margin - rect.max.x;
        }
        if rect.min.y < content.min.y + margin {
            delta.y = content.min.y + margin - rect.min.y;
        } else if rect.max.y > content.max.y - margin {
            delta.y = content.max.y - margin - rect.max.y;
        }
        self.panned(delta, content)
    }

    fn clamped(self, content: Rect) -> Self {
        let extra = content.size() * (self.zoom - 1.0);
        Self {
            zoom: self.zoom,
            pan: Vec2::new(
                self.pan.x.clamp(-extra.x, 0.0),
                self.pan.y.clamp(-extra.y, 0.0),
            ),
        }
    }
}

/// Lays the map out in `canvas` (the map's whole area, legend included).
pub fn layout_map(
    map: &SubsystemMap,
    canvas: Rect,
    view: View,
    measure: &impl MeasureText,
) -> MapLayout {
    let legend_rect = Rect::from_min_max(
        Pos2::new(canvas.min.x, canvas.max.y - LEGEND_HEIGHT),
        canvas.max,
    );
    let content = Rect::from_min_max(canvas.min, Pos2::new(canvas.max.x, legend_rect.min.y));
    let z = view.zoom;
    let area = Rect::from_min_size(content.min + view.pan, content.size() * z);
    let rows = map.rows();
    let gutter = (area.width() * 0.12).clamp(78.0 * z, 150.0 * z);
    let band_height = area.height() / rows.len().max(1) as f32;
    let bands: Vec<BandLayout> = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let rect = Rect::from_min_size(
                Pos2::new(area.min.x, area.min.y + r as f32 * band_height),
                Vec2::new(area.width(), band_height),
            );
            let label_box = Rect::from_min_max(
                rect.min + Vec2::splat(4.0 * z),
                Pos2::new(rect.min.x + gutter - 4.0 * z, rect.max.y - 2.0 * z),
            );
            BandLayout {
                rect,
                label: wrap_block(&row.name, label_box, SMALL_SIZE * z, 9.0 * z, 6, measure),
            }
        })
        .collect();
    let nodes_left = area.min.x + gutter + GUTTER_GAP * z;
    let nodes_right = area.max.x - 8.0 * z;
    let widths: Vec<f32> = rows
        .iter()
        .map(|row| node_width(row_counts(&row.slots), nodes_right - nodes_left, z))
        .collect();
    // Names get what a row leaves after the padding, the rate line and the
    // edges' channel.
    let name_room = band_height - MIN_CHANNEL * z - 2.0 * NODE_PAD * z - SMALL_SIZE * z * 1.3;
    let names = fit_names(map, &widths, z, name_room, measure);
    let line_height = names.size * 1.25;
    let text_block = names.max_lines as f32 * line_height + SMALL_SIZE * z * 1.3;
    let full_height = 2.0 * NODE_PAD * z + text_block + SPARK_HEIGHT * z + 2.0 * z;
    // The sparkline goes first when rows are tight; edges keep their room.
    let node_height = full_height
        .min(band_height - MIN_CHANNEL * z)
        .max(text_block + 2.0 * NODE_PAD * z);
    let spark_height = (node_height - 2.0 * NODE_PAD * z - text_block).max(0.0);
    let mut nodes = Vec::new();
    let mut slot_x: HashMap<(usize, MapSlot), f32> = HashMap::new();
    let mut zones = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let band = bands[r].rect;
        let top = band.center().y - node_height / 2.0;
        zones.push((top, top + node_height));
        let (k, p) = row_counts(&row.slots);
        let width = widths[r];
        let used = k as f32 * width + p as f32 * PASS_WIDTH * z;
        let gap = (nodes_right - nodes_left - used) / (k + p + 1) as f32;
        let mut x = nodes_left + gap;
        for slot in &row.slots {
            match slot {
                MapSlot::Node(index) => {
                    let rect =
                        Rect::from_min_size(Pos2::new(x, top), Vec2::new(width, node_height));
                    nodes.push(node_layout(
                        *index,
                        rect,
                        names.lines.get(index).cloned().unwrap_or_default(),
                        (line_height, names.size, names.max_lines, spark_height, z),
                        measure,
                    ));
                    slot_x.insert((r, *slot), x + width / 2.0);
                    x += width + gap;
                }
                MapSlot::Pass(_) => {
                    slot_x.insert((r, *slot), x + PASS_WIDTH * z / 2.0);
                    x += PASS_WIDTH * z + gap;
                }
            }
        }
    }
    let edges = route_edges(map, &nodes, &slot_x, &zones, &bands);
    MapLayout {
        canvas,
        content,
        bands,
        nodes,
        edges,
        legend: legend_layout(legend_rect, measure),
        name_size: names.size,
    }
}

/// Nodes and pass slots in a row.
fn row_counts(slots: &[MapSlot]) -> (usize, usize) {
    let nodes = slots
        .iter()
        .filter(|s| matches!(s, MapSlot::Node(_)))
        .count();
    (nodes, slots.len() - nodes)
}

/// Width of each node in a row of `k` nodes and `p` passes.
fn node_width((k, p): (usize, usize), room: f32, z: f32) -> f32 {
    let k = k.max(1) as f32;
    let gaps = (k + p as f32 + 1.0) * MIN_GAP * z;
    ((room - gaps - p as f32 * PASS_WIDTH * z) / k).clamp(8.0, NODE_MAX_WIDTH * z)
}

/// The names, wrapped, at the largest size at which every name fits its
/// node in two lines (else three) without cutting a word.
struct Names {
    size: f32,
    /// Lines every node has room for.
    max_lines: usize,
    lines: HashMap<NodeIndex, Vec<String>>,
}

fn fit_names(
    map: &SubsystemMap,
    widths: &[f32],
    z: f32,
    name_room: f32,
    measure: &impl MeasureText,
) -> Names {
    let graph = map.graph();
    let row_of_node: HashMap<NodeIndex, usize> = map
        .rows()
        .iter()
        .enumerate()
        .flat_map(|(r, row)| {
            row.slots.iter().filter_map(move |s| match s {
                MapSlot::Node(index) => Some((*index, r)),
                MapSlot::Pass(_) => None,
            })
        })
        .collect();
    let wrap_all = |size: f32, max_lines: usize, cut: bool| {
        let mut all = HashMap::new();
        for index in graph.node_indices() {
            let row = row_of_node.get(&index).copied().unwrap_or(0);
            let room = widths.get(row).copied().unwrap_or(0.0) - 2.0 * NODE_PAD * z;
            let lines = wrap_words(&graph[index].name, room, size, measure);
            if lines.len() > max_lines || lines.iter().any(|l| measure.size(l, size).x > room) {
                if !cut {
                    return None;
                }
                all.insert(index, cut_lines(lines, max_lines, room, size, measure));
            } else {
                all.insert(index, lines);
            }
        }
        Some(all)
    };
    for max_lines in NAME_LINES {
        for size in NAME_SIZES {
            if max_lines as f32 * size * z * 1.25 > name_room {
                continue;
            }
            if let Some(lines) = wrap_all(size * z, max_lines, false) {
                return Names {
                    size: size * z,
                    max_lines,
                    lines,
                };
            }
        }
    }
    let size = NAME_SIZES[NAME_SIZES.len() - 1] * z;
    let max_lines = NAME_LINES[NAME_LINES.len() - 1];
    Names {
        size,
        max_lines,
        lines: wrap_all(size, max_lines, true).unwrap_or_default(),
    }
}

/// Greedy word wrap: words never split; a word wider than `width` gets a
/// line of its own (and is cut by the caller).
fn wrap_words(text: &str, width: f32, size: f32, measure: &impl MeasureText) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if measure.size(&format!("{line} {word}"), size).x <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// Keeps the first `max_lines` lines, each cut with "…" to `width`.
fn cut_lines(
    lines: Vec<String>,
    max_lines: usize,
    width: f32,
    size: f32,
    measure: &impl MeasureText,
) -> Vec<String> {
    let total = lines.len();
    lines
        .into_iter()
        .take(max_lines)
        .enumerate()
        .map(|(i, line)| {
            let more = i + 1 == max_lines && total > max_lines;
            if !more && measure.size(&line, size).x <= width {
                return line;
            }
            cut_to(&line, width, size, measure)
        })
        .collect()
}

/// `text` cut (by characters) and ended with "…" so it fits `width`.
fn cut_to(text: &str, width: f32, size: f32, measure: &impl MeasureText) -> String {
    let chars: Vec<char> = text.chars().collect();
    for keep in (0..chars.len()).rev() {
        let candidate: String = chars[..keep].iter().collect::<String>() + "…";
        if measure.size(&candidate, size).x <= width {
            return candidate;
        }
    }
    String::new()
}

/// `text` wrapped at words into `bounds`, from its top-left, shrinking from
/// `size` down to `min_size` until it fits; cut if even that does not.
fn wrap_block(
    text: &str,
    bounds: Rect,
    size: f32,
    min_size: f32,
    max_lines: usize,
    measure: &impl MeasureText,
) -> Vec<TextLine> {
    let mut chosen = (size, Vec::new());
    let mut s = size;
    while s >= min_size {
        let lines = wrap_words(text, bounds.width(), s, measure);
        let fits_lines = (lines.len() as f32) * s * 1.25 <= bounds.height()
            && lines.len() <= max_lines
            && lines.iter().all(|l| measure.size(l, s).x <= bounds.width());
        chosen = (s, lines);
        if fits_lines {
            break;
        }
        s -= 1.0;
    }
    let (size, mut lines) = chosen;
    let room_lines = ((bounds.height() / (size * 1.25)).floor() as usize).min(max_lines);
    let cut = lines.len() > room_lines;
    lines.truncate(room_lines);
    let last = lines.len().saturating_sub(1);
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let line = if (cut && i == last) || measure.size(&line, size).x > bounds.width() {
                cut_to(&line, bounds.width(), size, measure)
            } else {
                line
            };
            let text_size = measure.size(&line, size);
            TextLine {
                rect: Rect::from_min_size(
                    Pos2::new(bounds.min.x, bounds.min.y + i as f32 * size * 1.25),
                    text_size,
                ),
                text: line,
                size,
            }
        })
        .collect()
}

fn node_layout(
    index: NodeIndex,
    rect: Rect,
    lines: Vec<String>,
    (line_height, size, max_lines, spark_height, z): (f32, f32, usize, f32, f32),
    measure: &impl MeasureText,
) -> NodeLayout {
    let inner = rect.shrink(NODE_PAD * z);
    // The name block sits at the top, centred; short names are centred in
    // the room of two lines.
    let name_top =
        inner.min.y + (max_lines - lines.len().min(max_lines)) as f32 * line_height / 2.0;
    let name = lines
        .into_iter()
        .enumerate()
        .map(|(i, text)| TextLine {
            rect: Rect::from_center_size(
                Pos2::new(inner.center().x, name_top + (i as f32 + 0.5) * line_height),
                measure.size(&text, size),
            ),
            text,
            size,
        })
        .collect();
    let rate_top = inner.min.y + max_lines as f32 * line_height;
    let rate = Rect::from_min_max(
        Pos2::new(inner.min.x, rate_top),
        Pos2::new(inner.max.x, rate_top + SMALL_SIZE * z * 1.3),
    );
    let spark = Rect::from_min_max(
        Pos2::new(inner.min.x, inner.max.y - spark_height),
        inner.max,
    );
    NodeLayout {
        index,
        rect,
        name,
        rate,
        spark,
    }
}

/// Which side of a node an edge leaves or enters by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Side {
    Top,
    Bottom,
}

fn route_edges(
    map: &SubsystemMap,
    nodes: &[NodeLayout],
    slot_x: &HashMap<(usize, MapSlot), f32>,
    zones: &[(f32, f32)],
    bands: &[BandLayout],
) -> Vec<EdgeLayout> {
    let graph = map.graph();
    let rect_of: HashMap<NodeIndex, Rect> = nodes.iter().map(|n| (n.index, n.rect)).collect();
    let mut row_of: HashMap<MapSlot, usize> = HashMap::new();
    let mut order_in_row: HashMap<NodeIndex, usize> = HashMap::new();
    for (r, row) in map.rows().iter().enumerate() {
        let mut k = 0;
        for slot in &row.slots {
            row_of.insert(*slot, r);
            if let MapSlot::Node(index) = slot {
                order_in_row.insert(*index, k);
                k += 1;
            }
        }
    }
    // Each edge end on a node: which side, and where the other end is (to
    // sort the ends along the side so that edges do not cross there).
    struct Plan {
        edge: EdgeIndex,
        from: NodeIndex,
        to: NodeIndex,
        kind: Kind,
    }
    #[derive(PartialEq)]
    enum Kind {
        Down,
        Up,
        Beside,
        Below(usize),
    }
    let mut plans = Vec::new();
    let mut ends: HashMap<(NodeIndex, Side), Vec<(f32, EdgeIndex)>> = HashMap::new();
    let mut lanes: HashMap<usize, usize> = HashMap::new();
    for edge in graph.edge_references() {
        let (from, to) = (edge.source(), edge.target());
        let (Some(&ra), Some(&rb)) = (
            row_of.get(&MapSlot::Node(from)),
            row_of.get(&MapSlot::Node(to)),
        ) else {
            continue;
        };
        let (Some(fa), Some(fb)) = (rect_of.get(&from), rect_of.get(&to)) else {
            continue;
        };
        let first_towards = |near_row: usize, far: Rect| {
            slot_x
                .get(&(near_row, MapSlot::Pass(edge.id())))
                .copied()
                .unwrap_or(far.center().x)
        };
        let kind = if ra < rb {
            ends.entry((from, Side::Bottom))
                .or_default()
                .push((first_towards(ra + 1, *fb), edge.id()));
            ends.entry((to, Side::Top))
                .or_default()
                .push((first_towards(rb - 1, *fa), edge.id()));
            Kind::Down
        } else if ra > rb {
            ends.entry((from, Side::Top))
                .or_default()
                .push((first_towards(ra - 1, *fb), edge.id()));
            ends.entry((to, Side::Bottom))
                .or_default()
                .push((first_towards(rb + 1, *fa), edge.id()));
            Kind::Up
        } else {
            let (oa, ob) = (order_in_row[&from], order_in_row[&to]);
            if oa.abs_diff(ob) == 1 {
                Kind::Beside
            } else {
                ends.entry((from, Side::Bottom))
                    .or_default()
                    .push((fb.center().x, edge.id()));
                ends.entry((to, Side::Bottom))
                    .or_default()
                    .push((fa.center().x, edge.id()));
                let lane = lanes.entry(ra).or_default();
                *lane += 1;
                Kind::Below(*lane - 1)
            }
        };
        plans.push(Plan {
            edge: edge.id(),
            from,
            to,
            kind,
        });
    }
    let mut port: HashMap<(NodeIndex, Side, EdgeIndex), Pos2> = HashMap::new();
    for ((node, side), mut list) in ends {
        let Some(rect) = rect_of.get(&node) else {
            continue;
        };
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n = list.len() as f32;
        let y = match side {
            Side::Top => rect.min.y,
            Side::Bottom => rect.max.y,
        };
        let usable = rect.width() * 0.8;
        for (i, (_, edge)) in list.into_iter().enumerate() {
            let x = rect.min.x + rect.width() * 0.1 + usable * (i as f32 + 0.5) / n;
            port.insert((node, side, edge), Pos2::new(x, y));
        }
    }
    plans
        .into_iter()
        .map(|plan| {
            let a = rect_of[&plan.from];
            let b = rect_of[&plan.to];
            let points = match plan.kind {
                Kind::Down | Kind::Up => {
                    let down = plan.kind == Kind::Down;
                    let (start_side, end_side) = if down {
                        (Side::Bottom, Side::Top)
                    } else {
                        (Side::Top, Side::Bottom)
                    };
                    let mut points = vec![port[&(plan.from, start_side, plan.edge)]];
                    let ra = row_of[&MapSlot::Node(plan.from)];
                    let rb = row_of[&MapSlot::Node(plan.to)];
                    let passed: Vec<usize> = if down {
                        (ra + 1..rb).collect()
                    } else {
                        (rb + 1..ra).rev().collect()
                    };
                    for r in passed {
                        let x = slot_x[&(r, MapSlot::Pass(plan.edge))];
                        let (top, bottom) = zones[r];
                        if down {
                            points.push(Pos2::new(x, top));
                            points.push(Pos2::new(x, bottom));
                        } else {
                            points.push(Pos2::new(x, bottom));
                            points.push(Pos2::new(x, top));
                        }
                    }
                    points.push(port[&(plan.to, end_side, plan.edge)]);
                    points
                }
                Kind::Beside => {
                    // Both directions between the same pair are offset.
                    let paired = graph.find_edge(plan.to, plan.from).is_some();
                    let offset = if !paired {
                        0.0
                    } else if plan.from < plan.to {
                        -a.height() * 0.15
                    } else {
                        a.height() * 0.15
                    };
                    let y = a.center().y + offset;
                    if a.center().x < b.center().x {
                        vec![Pos2::new(a.max.x, y), Pos2::new(b.min.x, y)]
                    } else {
                        vec![Pos2::new(a.min.x, y), Pos2::new(b.max.x, y)]
                    }
                }
                Kind::Below(lane) => {
                    let r = row_of[&MapSlot::Node(plan.from)];
                    let bottom = zones[r].1;
                    let below = zones
                        .get(r + 1)
                        .map_or(bands[r].rect.max.y, |&(top, _)| top);
                    let lanes = lanes_in_row(&lanes, r);
                    let y = bottom
                        + (below - bottom)
                            * (0.25 + 0.5 * (lane as f32 + 0.5) / lanes as f32).min(0.9);
                    let start = port[&(plan.from, Side::Bottom, plan.edge)];
                    let end = port[&(plan.to, Side::Bottom, plan.edge)];
                    vec![start, Pos2::new(start.x, y), Pos2::new(end.x, y), end]
                }
            };
            EdgeLayout {
                edge: plan.edge,
                points,
            }
        })
        .collect()
}

fn lanes_in_row(lanes: &HashMap<usize, usize>, row: usize) -> usize {
    lanes.get(&row).copied().unwrap_or(1).max(1)
}

/// The legend's widest maximum-rate text, kept free whatever the rate.
const WIDEST_RATE: &str = "999.9k events/s";
/// The legend's hint.
pub const LEGEND_HINT: &str = "scroll or +/− zoom · drag pans · Tab/arrows move · Enter opens";

fn legend_layout(rect: Rect, measure: &impl MeasureText) -> LegendLayout {
    let size = 11.0;
    let y = rect.center().y;
    let text_at = |text: &str, x: f32| {
        let s = measure.size(text, size);
        TextLine {
            text: text.to_owned(),
            rect: Rect::from_min_size(Pos2::new(x, y - s.y / 2.0), s),
            size,
        }
    };
    let mut x = rect.min.x + 8.0;
    let silent_swatch = Rect::from_center_size(Pos2::new(x + 6.0, y), Vec2::splat(12.0));
    x += 18.0;
    let silent_text = text_at("silent", x);
    x = silent_text.rect.max.x + 12.0;
    let low_text = text_at("0", x);
    x = low_text.rect.max.x + 4.0;
    let ramp = Rect::from_min_size(Pos2::new(x, y - 5.0), Vec2::new(110.0, 10.0));
    x = ramp.max.x + 4.0;
    let widest = measure.size(WIDEST_RATE, size);
    let high_text = Rect::from_min_size(Pos2::new(x, y - widest.y / 2.0), widest);
    x = high_text.max.x + 16.0;
    let hint = text_at(LEGEND_HINT, x);
    let hint = (hint.rect.max.x <= rect.max.x - 4.0).then_some(hint);
    LegendLayout {
        rect,
        silent_swatch,
        silent_text,
        ramp,
        low_text,
        high_text,
        hint,
    }
}

/// A direction to move the keyboard focus in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// Arrow up: the layer above.
    Up,
    /// Arrow down: the layer below.
    Down,
}

impl MapLayout {
    /// The node drawn at `index`.
    pub fn node(&self, index: NodeIndex) -> Option<&NodeLayout> {
        self.nodes.iter().find(|n| n.index == index)
    }

    /// Every text, swatch and box that must not overlap another: the band
    /// names, the nodes, the legend's parts.
    pub fn solid_rects(&self) -> Vec<(String, Rect)> {
        let mut rects = Vec::new();
        for band in &self.bands {
            for line in &band.label {
                rects.push((format!("band label `{}`", line.text), line.rect));
            }
        }
        for node in &self.nodes {
            rects.push((format!("node {:?}", node.index), node.rect));
        }
        let legend = &self.legend;
        rects.push(("legend swatch".into(), legend.silent_swatch));
        rects.push(("legend `silent`".into(), legend.silent_text.rect));
        rects.push(("legend `0`".into(), legend.low_text.rect));
        rects.push(("legend ramp".into(), legend.ramp));
        rects.push(("legend max rate".into(), legend.high_text));
        if let Some(hint) = &legend.hint {
            rects.push(("legend hint".into(), hint.rect));
        }
        rects
    }

    /// The node `step` leads to from `from`: left and right, the next node
    /// in the same layer (else the nearest that way); up and down, the
    /// nearest node of the next layer that has one, the closest across.
    pub fn neighbour(&self, from: NodeIndex, step: Step) -> Option<NodeIndex> {
        let here = self.node(from)?.rect.center();
        let candidates: Vec<(f32, f32, NodeIndex)> = self
            .nodes
            .iter()
            .filter(|n| n.index != from)
            .filter_map(|n| {
                let d = n.rect.center() - here;
                let (ahead, aside) = match step {
                    Step::Left => (-d.x, d.y),
                    Step::Right => (d.x, d.y),
                    Step::Up => (-d.y, d.x),
                    Step::Down => (d.y, d.x),
                };
                (ahead > 1.0).then_some((ahead, aside.abs(), n.index))
            })
            .collect();
        let pick = |list: &mut dyn Iterator<Item = &(f32, f32, NodeIndex)>,
                    key: &dyn Fn(&(f32, f32, NodeIndex)) -> f32| {
            list.min_by(|a, b| key(a).total_cmp(&key(b))).map(|c| c.2)
        };
        match step {
            Step::Left | Step::Right => {
                pick(&mut candidates.iter().filter(|c| c.1 < 1.0), &|c| c.0)
                    .or_else(|| pick(&mut candidates.iter(), &|c| c.0 + 2.5 * c.1))
            }
            Step::Up | Step::Down => {
                let nearest_row = candidates.iter().map(|c| c.0).fold(f32::INFINITY, f32::min);
                pick(
                    &mut candidates.iter().filter(|c| c.0 < nearest_row + 1.0),
                    &|c| c.1,
                )
            }
        }
    }
}

/// Whether the segment `a`–`b` touches the inside of `rect`
/// (Liang–Barsky clipping).
pub fn segment_hits_rect(a: Pos2, b: Pos2, rect: Rect) -> bool {
    let d = b - a;
    let mut t0 = 0.0_f32;
    let mut t1 = 1.0_f32;
    for (p, q) in [
        (-d.x, a.x - rect.min.x),
        (d.x, rect.max.x - a.x),
        (-d.y, a.y - rect.min.y),
        (d.y, rect.max.y - a.y),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text as wide as 0.55 × size per character: close to egui's default
    /// proportional font, and exact enough for the logic tested here (the
    /// integration test measures with egui's real fonts).
    fn approx(text: &str, size: f32) -> Vec2 {
        Vec2::new(text.chars().count() as f32 * size * 0.55, size * 1.2)
    }

    #[test]
    fn words_wrap_whole_and_never_mid_word() {
        let lines = wrap_words("Memory management", 60.0, 12.0, &approx);
        assert_eq!(lines, vec!["Memory", "management"]);
        let lines = wrap_words("Memory management", 500.0, 12.0, &approx);
        assert_eq!(lines, vec!["Memory management"]);
        assert!(wrap_words("", 50.0, 12.0, &approx).is_empty());
        assert_eq!(cut_to("management", 30.0, 12.0, &approx), "man…");
    }

    #[test]
    fn segment_test_sees_crossings_and_misses() {
        let rect = Rect::from_min_max(Pos2::new(10.0, 10.0), Pos2::new(20.0, 20.0));
        assert!(segment_hits_rect(
            Pos2::new(0.0, 15.0),
            Pos2::new(30.0, 15.0),
            rect
        ));
        assert!(segment_hits_rect(
            Pos2::new(0.0, 0.0),
            Pos2::new(30.0, 30.0),
            rect
        ));
        assert!(!segment_hits_rect(
            Pos2::new(0.0, 0.0),
            Pos2::new(30.0, 5.0),
            rect
        ));
        assert!(!segment_hits_rect(
            Pos2::new(0.0, 21.0),
            Pos2::new(30.0, 21.0),
            rect
        ));
        assert!(segment_hits_rect(
            Pos2::new(15.0, 15.0),
            Pos2::new(15.0, 16.0),
            rect
        ));
    }

    #[test]
    fn zoom_keeps_the_anchor_and_the_map_covering_the_view() {
        let content = Rect::from_min_size(Pos2::new(100.0, 50.0), Vec2::new(800.0, 600.0));
        let anchor = Pos2::new(300.0, 200.0);
        let view = View::default().zoomed(2.0, anchor, content);
        assert_eq!(view.zoom, 2.0);
        // The map point under the anchor stays under it.
        let unzoomed = (anchor - content.min) / 1.0;
        let after = content.min + view.pan + unzoomed * 2.0;
        assert!((after - anchor).length() < 1e-3, "{after:?}");
        let out = View::default().zoomed(0.5, anchor, content);
        assert_eq!(out, View::default(), "never smaller than the whole map");
        let far = view.panned(Vec2::new(5000.0, 5000.0), content);
        assert_eq!(far.pan, Vec2::ZERO, "the map's corner stays in view");
    }

    #[test]
    fn arrows_move_to_the_nearest_node_that_way() {
        let map = SubsystemMap::builtin();
        let canvas = Rect::from_min_size(Pos2::ZERO, Vec2::new(1000.0, 700.0));
        let layout = layout_map(&map, canvas, View::default(), &approx);
        let user = map.node("user").unwrap();
        let syscalls = map.node("syscalls").unwrap();
        assert_eq!(layout.neighbour(user, Step::Down), Some(syscalls));
        assert_eq!(layout.neighbour(syscalls, Step::Up), Some(user));
        assert_eq!(layout.neighbour(user, Step::Up), None);
        // Left and right stay in the row when the row has a node that way.
        let vfs = map.node("vfs").unwrap();
        let socket = map.node("socket").unwrap();
        let (a, b) = if layout.node(vfs).unwrap().rect.center().x
            < layout.node(socket).unwrap().rect.center().x
        {
            (vfs, socket)
        } else {
            (socket, vfs)
        };
        assert_eq!(layout.neighbour(a, Step::Right), Some(b));
        assert_eq!(layout.neighbour(b, Step::Left), Some(a));
    }
}
