//! What a pack probe's own maps hold: its counter tables (with a rate per
//! row, and that rate over time) and its log2 histograms, as the helper
//! last read them ([`microscope_wire::PackData`]).
//!
//! The helper reads the maps about every 250 ms and sends cumulative
//! values: everything counted since it loaded the probe. The maps live in
//! the kernel once per helper, so they count for every client of the helper
//! alike (machine-wide, or the processes the kernel's common filter keeps),
//! not for this window alone. Rates are increases between two readings over
//! the kernel time between them, so they do not depend on when frames
//! arrive (a replay at 10× shows the same rates).

use crate::histogram::log2_bucket_label;
use microscope_wire::{FieldValue, PackHistogram, PackTable};
use std::collections::{HashMap, VecDeque};

/// Rate points kept per table row: a minute at the helper's 250 ms.
pub const RATE_HISTORY: usize = 240;

/// What one pack probe's maps held at the last reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PackProbeData {
    /// When the maps were last read, ns of the kernel's `CLOCK_MONOTONIC`.
    pub ts_ns: u64,
    /// Readings received.
    pub readings: u64,
    /// One per counter map, in the manifest's order.
    pub tables: Vec<CounterTable>,
    /// One per histogram map and key, as last read (cumulative).
    pub histograms: Vec<PackHistogram>,
}

/// A counter map: its rows with their latest values and rates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CounterTable {
    /// The map's name.
    pub map: String,
    /// Column names: the key fields, then the value fields.
    pub columns: Vec<String>,
    /// How many of the columns are the key.
    pub key_columns: usize,
    /// The value column whose rate is kept (the first numeric one), if any.
    pub rate_column: Option<usize>,
    /// Rows the helper left out because the map held more than it sends.
    pub truncated: u64,
    /// One row per key in the map, in the helper's order.
    pub rows: Vec<CounterRow>,
    /// When the previous reading was taken, ns.
    previous_ts_ns: Option<u64>,
}

/// One key of a counter map.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterRow {
    /// The key cells as text, joined by spaces (`openat`, `pid=7 read`):
    /// what identifies the row across readings.
    pub key: String,
    /// Every cell, key columns first, decoded by the manifest.
    pub cells: Vec<FieldValue>,
    /// Increase of [`CounterTable::rate_column`] per second between the last
    /// two readings; `None` after the first.
    pub rate_per_sec: Option<f64>,
    /// `(kernel seconds, rate per second)` of the last [`RATE_HISTORY`]
    /// readings, oldest first.
    pub history: VecDeque<[f64; 2]>,
}

impl CounterRow {
    /// The rate column's value (cumulative), as a number.
    pub fn value(&self, table: &CounterTable) -> Option<f64> {
        table
            .rate_column
            .and_then(|column| self.cells.get(column))
            .and_then(FieldValue::as_f64)
    }
}

impl CounterTable {
    /// The name of the column whose rate is kept.
    pub fn rate_column_name(&self) -> Option<&str> {
        self.rate_column
            .and_then(|column| self.columns.get(column))
            .map(String::as_str)
    }

    /// Sum of the rate column over every row (cumulative).
    pub fn total(&self) -> f64 {
        self.rows.iter().filter_map(|row| row.value(self)).sum()
    }

    /// Sum of the rows' latest rates.
    pub fn total_rate_per_sec(&self) -> f64 {
        self.rows.iter().filter_map(|row| row.rate_per_sec).sum()
    }

    /// Row indices by latest rate, highest first (then by value, then key).
    pub fn by_rate(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        let score = |i: usize| {
            self.rows.get(i).map_or((0.0, 0.0, ""), |row| {
                (
                    row.rate_per_sec.unwrap_or(0.0),
                    row.value(self).unwrap_or(0.0),
                    row.key.as_str(),
                )
            })
        };
        order.sort_by(|&a, &b| {
            let (ra, va, ka) = score(a);
            let (rb, vb, kb) = score(b);
            rb.total_cmp(&ra).then(vb.total_cmp(&va)).then(ka.cmp(kb))
        });
        order
    }

    /// Takes a new reading of the map: rows absent from it are gone from
    /// the map too, so they are dropped; the others get their rate.
    fn update(&mut self, reading: PackTable, ts_ns: u64) {
        let previous_ts_ns = self.previous_ts_ns.replace(ts_ns);
        let seconds = previous_ts_ns
            .filter(|&previous| ts_ns > previous)
            .map(|previous| (ts_ns - previous) as f64 / 1e9);
        let shape_changed = self.columns != reading.columns;
        self.columns = reading.columns;
        self.key_columns = reading.key_columns.min(self.columns.len());
        self.truncated = reading.truncated;
        let mut old: HashMap<String, CounterRow> = if shape_changed {
            HashMap::new()
        } else {
            self.rows
                .drain(..)
                .map(|row| (row.key.clone(), row))
                .collect()
        };
        self.rate_column = reading.rows.first().and_then(|row| {
            (self.key_columns..row.len()).find(|&i| row.get(i).is_some_and(is_number))
        });
        let column = self.rate_column;
        let key_columns = self.key_columns;
        let kernel_secs = ts_ns as f64 / 1e9;
        self.rows = reading
            .rows
            .into_iter()
            .map(|cells| {
                let key = key_text(cells.get(..key_columns).unwrap_or(&cells));
                let value = column
                    .and_then(|c| cells.get(c))
                    .and_then(FieldValue::as_f64);
                let mut row = old.remove(&key).unwrap_or_else(|| CounterRow {
                    key: key.clone(),
                    cells: Vec::new(),
                    rate_per_sec: None,
                    history: VecDeque::new(),
                });
                let before = if row.cells.is_empty() {
                    // A key that appeared since the last reading started
                    // from nothing in between.
                    Some(0.0)
                } else {
                    column
                        .and_then(|c| row.cells.get(c))
                        .and_then(FieldValue::as_f64)
                };
                row.rate_per_sec = match (seconds, value, before) {
                    (Some(seconds), Some(now), Some(before)) => {
                        // Lower than before: the probe was loaded afresh
                        // (re-enabled, or reloaded for a new filter).
                        let increase = if now >= before { now - before } else { now };
                        Some(increase / seconds)
                    }
                    _ => None,
                };
                if let Some(rate) = row.rate_per_sec {
                    if row.history.len() == RATE_HISTORY {
                        row.history.pop_front();
                    }
                    row.history.push_back([kernel_secs, rate]);
                }
                row.cells = cells;
                row
            })
            .collect();
    }
}

fn is_number(value: &FieldValue) -> bool {
    matches!(value, FieldValue::Int(_) | FieldValue::Uint(_))
}

/// Key cells as one line: strings without quotes.
fn key_text(cells: &[FieldValue]) -> String {
    let texts: Vec<String> = cells
        .iter()
        .map(|cell| match cell {
            FieldValue::Str(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    if texts.is_empty() {
        "all".to_owned()
    } else {
        texts.join(" ")
    }
}

impl PackProbeData {
    /// Takes one reading of the probe's maps.
    pub fn update(&mut self, data: microscope_wire::PackData) {
        for reading in data.tables {
            let index = match self.tables.iter().position(|t| t.map == reading.map) {
                Some(index) => index,
                None => {
                    self.tables.push(CounterTable {
                        map: reading.map.clone(),
                        ..CounterTable::default()
                    });
                    self.tables.len() - 1
                }
            };
            self.tables[index].update(reading, data.ts_ns);
        }
        self.histograms = data.histograms;
        self.ts_ns = data.ts_ns;
        self.readings += 1;
    }

    /// The probe's total for the timeline: every histogram's samples, or
    /// when it has none, the rate columns of its tables summed (as
    /// `microscope watch` counts it).
    pub fn total(&self) -> u64 {
        if self.histograms.is_empty() {
            self.tables
                .iter()
                .map(CounterTable::total)
                .sum::<f64>()
                .max(0.0) as u64
        } else {
            self.histograms.iter().flat_map(|h| &h.buckets).sum()
        }
    }

    /// Names of the histogram maps, in order of first appearance.
    pub fn histogram_maps(&self) -> Vec<&str> {
        let mut maps: Vec<&str> = Vec::new();
        for h in &self.histograms {
            if !maps.contains(&h.map.as_str()) {
                maps.push(&h.map);
            }
        }
        maps
    }

    /// The histograms of map `map`, largest first.
    pub fn histograms_of(&self, map: &str) -> Vec<&PackHistogram> {
        let mut of: Vec<&PackHistogram> = self.histograms.iter().filter(|h| h.map == map).collect();
        of.sort_by_key(|h| std::cmp::Reverse(h.buckets.iter().sum::<u64>()));
        of
    }
}

/// The buckets of several histograms added up (e.g. every thread's run-queue
/// latency into one).
pub fn sum_buckets<'a>(histograms: impl IntoIterator<Item = &'a PackHistogram>) -> Vec<u64> {
    let mut sum: Vec<u64> = Vec::new();
    for h in histograms {
        if sum.len() < h.buckets.len() {
            sum.resize(h.buckets.len(), 0);
        }
        for (s, b) in sum.iter_mut().zip(&h.buckets) {
            *s = s.saturating_add(*b);
        }
    }
    sum
}

/// One sentence about a histogram: its samples and its fullest bucket.
pub fn histogram_summary(counts: &[u64], unit: &str) -> String {
    let total: u64 = counts.iter().sum();
    let fullest = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
        .filter(|&(_, &c)| c > 0);
    match fullest {
        Some((bucket, _)) => format!(
            "{} samples; most in {} – {}",
            crate::units::format_count(total),
            log2_bucket_label(bucket, unit),
            log2_bucket_label(bucket + 1, unit)
        ),
        None => "no samples yet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::PackData;

    fn table(rows: Vec<(&str, u64)>) -> PackTable {
        PackTable {
            map: "data".into(),
            columns: vec!["syscall".into(), "count".into(), "comm".into()],
            key_columns: 1,
            rows: rows
                .into_iter()
                .map(|(name, count)| {
                    vec![
                        FieldValue::Named {
                            value: 0,
                            text: name.into(),
                        },
                        FieldValue::Uint(count),
                        FieldValue::Str(String::new()),
                    ]
                })
                .collect(),
            truncated: 0,
        }
    }

    fn reading(ts_ns: u64, rows: Vec<(&str, u64)>) -> PackData {
        PackData {
            probe: 1,
            ts_ns,
            tables: vec![table(rows)],
            histograms: Vec::new(),
        }
    }

    #[test]
    fn rows_get_rates_from_kernel_time() {
        let mut data = PackProbeData::default();
        data.update(reading(1_000_000_000, vec![("read", 10), ("openat", 4)]));
        let t = &data.tables[0];
        assert_eq!(t.rate_column_name(), Some("count"));
        assert_eq!(t.rows[0].key, "read");
        assert_eq!(t.rows[0].rate_per_sec, None, "one reading has no rate");
        assert_eq!(data.total(), 14);
        // Half a second later: read +10, openat +0, write is new with 3.
        data.update(reading(
            1_500_000_000,
            vec![("read", 20), ("openat", 4), ("write", 3)],
        ));
        let t = &data.tables[0];
        let rate = |key: &str| t.rows.iter().find(|r| r.key == key).unwrap().rate_per_sec;
        assert_eq!(rate("read"), Some(20.0));
        assert_eq!(rate("openat"), Some(0.0));
        assert_eq!(rate("write"), Some(6.0));
        assert_eq!(t.total_rate_per_sec(), 26.0);
        let order: Vec<&str> = t
            .by_rate()
            .iter()
            .map(|&i| t.rows[i].key.as_str())
            .collect();
        assert_eq!(order, ["read", "write", "openat"]);
        assert_eq!(
            t.rows[0].history.iter().copied().collect::<Vec<_>>(),
            [[1.5, 20.0]]
        );
        assert_eq!(data.total(), 27);
    }

    #[test]
    fn a_reloaded_probe_counts_from_zero_and_gone_rows_leave() {
        let mut data = PackProbeData::default();
        data.update(reading(1_000_000_000, vec![("read", 100), ("write", 5)]));
        data.update(reading(2_000_000_000, vec![("read", 7)]));
        let t = &data.tables[0];
        assert_eq!(t.rows.len(), 1, "write is no longer in the map");
        assert_eq!(t.rows[0].rate_per_sec, Some(7.0));
    }

    #[test]
    fn history_is_bounded_and_time_going_back_gives_no_rate() {
        let mut data = PackProbeData::default();
        for i in 0..(RATE_HISTORY as u64 + 10) {
            data.update(reading(i * 250_000_000, vec![("read", i)]));
        }
        assert_eq!(data.tables[0].rows[0].history.len(), RATE_HISTORY);
        assert_eq!(data.tables[0].rows[0].rate_per_sec, Some(4.0));
        data.update(reading(0, vec![("read", 1_000)]));
        assert_eq!(data.tables[0].rows[0].rate_per_sec, None);
    }

    #[test]
    fn empty_and_odd_tables() {
        let mut data = PackProbeData::default();
        data.update(PackData {
            probe: 1,
            ts_ns: 5,
            tables: vec![PackTable {
                map: "m".into(),
                columns: vec!["comm".into()],
                key_columns: 3,
                rows: vec![vec![], vec![FieldValue::Str("sh".into())]],
                truncated: 9,
            }],
            histograms: Vec::new(),
        });
        let t = &data.tables[0];
        assert_eq!(t.key_columns, 1, "clamped to the columns there are");
        assert_eq!(t.rate_column, None, "no numeric value column");
        assert_eq!(t.rows[0].key, "all");
        assert_eq!(t.rows[1].key, "sh");
        assert_eq!(t.truncated, 9);
        assert_eq!(data.total(), 0);
        assert!(t.by_rate().len() == 2);
    }

    #[test]
    fn histograms_sum_and_read_well() {
        let h = |label: &str, buckets: Vec<u64>| PackHistogram {
            map: "hists".into(),
            label: label.into(),
            unit: "µs".into(),
            buckets,
        };
        let mut data = PackProbeData::default();
        data.update(PackData {
            probe: 1,
            ts_ns: 1,
            tables: Vec::new(),
            histograms: vec![h("tid=1", vec![1, 2]), h("tid=2", vec![0, 5, 1])],
        });
        assert_eq!(data.total(), 9);
        assert_eq!(data.histogram_maps(), ["hists"]);
        assert_eq!(data.histograms_of("hists")[0].label, "tid=2");
        let sum = sum_buckets(data.histograms_of("hists"));
        assert_eq!(sum, [1, 7, 1]);
        assert_eq!(
            histogram_summary(&sum, "µs"),
            "9 samples; most in 2 µs – 4 µs"
        );
        assert_eq!(histogram_summary(&[], "µs"), "no samples yet");
    }
}
