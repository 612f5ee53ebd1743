//! Min/max decimation of a time series for drawing.
//!
//! `egui_plot` folds points per pixel column itself, but its per-frame cost
//! stays proportional to the number of points it is given (about 18 ms for a
//! million, measured). Keeping, for each pixel column of the visible range,
//! only the smallest and the largest value draws the same picture — every
//! spike stays visible — from at most two points per column.

/// Returns the points of `points` (sorted by x) that matter for drawing the
/// x range `x_min..=x_max` across `columns` pixel columns.
///
/// The result keeps one point on each side of the range so the line enters and
/// leaves the plot at the right height. When the visible points already fit in
/// two per column they are returned unchanged; otherwise each column keeps its
/// minimum and maximum, in x order.
pub fn decimate_min_max(
    points: &[[f64; 2]],
    x_min: f64,
    x_max: f64,
    columns: usize,
) -> Vec<[f64; 2]> {
    if points.is_empty() || columns == 0 || x_min.is_nan() || x_max.is_nan() || x_max < x_min {
        return Vec::new();
    }
    // One point before and one after the range, when they exist.
    let start = points.partition_point(|p| p[0] < x_min).saturating_sub(1);
    let end = (points.partition_point(|p| p[0] <= x_max) + 1).min(points.len());
    let Some(visible) = points.get(start..end) else {
        return Vec::new();
    };
    if visible.len() <= 2 * columns {
        return visible.to_vec();
    }

    let column_width = (x_max - x_min) / columns as f64;
    let mut out = Vec::with_capacity(2 * columns + 2);
    let mut column_points: Option<(i64, [f64; 2], [f64; 2])> = None;
    for &point in visible {
        let column = if column_width > 0.0 {
            ((point[0] - x_min) / column_width).floor() as i64
        } else {
            0
        };
        match &mut column_points {
            Some((current, min, max)) if *current == column => {
                if point[1] < min[1] {
                    *min = point;
                }
                if point[1] > max[1] {
                    *max = point;
                }
            }
            _ => {
                if let Some((_, min, max)) = column_points.take() {
                    push_min_max(&mut out, min, max);
                }
                column_points = Some((column, point, point));
            }
        }
    }
    if let Some((_, min, max)) = column_points {
        push_min_max(&mut out, min, max);
    }
    out
}

fn push_min_max(out: &mut Vec<[f64; 2]>, min: [f64; 2], max: [f64; 2]) {
    if min == max {
        out.push(min);
    } else if min[0] <= max[0] {
        out.extend([min, max]);
    } else {
        out.extend([max, min]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_gives_nothing() {
        assert!(decimate_min_max(&[], 0.0, 10.0, 100).is_empty());
        assert!(decimate_min_max(&[[1.0, 1.0]], 0.0, 10.0, 0).is_empty());
        assert!(decimate_min_max(&[[1.0, 1.0]], 10.0, 0.0, 100).is_empty());
    }

    #[test]
    fn few_points_pass_through_with_one_neighbour_each_side() {
        let points: Vec<[f64; 2]> = (0..10).map(|i| [f64::from(i), f64::from(i * i)]).collect();
        let out = decimate_min_max(&points, 3.0, 5.0, 100);
        assert_eq!(
            out,
            vec![
                [2.0, 4.0],
                [3.0, 9.0],
                [4.0, 16.0],
                [5.0, 25.0],
                [6.0, 36.0]
            ]
        );
    }

    #[test]
    fn range_outside_the_data_keeps_only_the_nearest_point() {
        let points = [[0.0, 1.0], [1.0, 2.0]];
        assert_eq!(decimate_min_max(&points, 5.0, 6.0, 10), vec![[1.0, 2.0]]);
        assert_eq!(decimate_min_max(&points, -6.0, -5.0, 10), vec![[0.0, 1.0]]);
    }

    #[test]
    fn a_million_points_fold_to_two_per_column_and_keep_spikes() {
        let n = 1_000_000;
        let mut points: Vec<[f64; 2]> = (0..n).map(|i| [i as f64, (i % 7) as f64]).collect();
        points[123_456][1] = 1000.0;
        points[654_321][1] = -1000.0;
        let columns = 800;
        let out = decimate_min_max(&points, 0.0, n as f64, columns);
        assert!(out.len() <= 2 * columns + 2, "{} points", out.len());
        assert!(out.contains(&[123_456.0, 1000.0]));
        assert!(out.contains(&[654_321.0, -1000.0]));
        assert!(out.windows(2).all(|w| w[0][0] <= w[1][0]), "x order kept");
        assert_eq!(out.first(), Some(&[0.0, 0.0]));
    }

    #[test]
    fn only_the_visible_part_is_decimated() {
        let points: Vec<[f64; 2]> = (0..100_000).map(|i| [f64::from(i), 1.0]).collect();
        let out = decimate_min_max(&points, 50_000.0, 50_100.0, 10);
        assert!(out.iter().all(|p| (49_999.0..=50_101.0).contains(&p[0])));
        assert!(out.len() <= 22);
    }
}
