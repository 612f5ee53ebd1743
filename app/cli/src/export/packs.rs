//! Pack probes' maps in exports: the `tables` CSV (every reading of every
//! counter table and histogram) and the Perfetto counter tracks (each
//! counter row's rate, each histogram's samples per second).
//!
//! Rates come from the model's [`PackProbeData`], the same arithmetic the
//! window's Pack data tab uses.

use super::{ProbeNames, TraceWriter, micros};
use microscope_model::PackProbeData;
use microscope_wire::{
    FieldValue, HelperMessage, PackData, ProbeKey, RecordedFrame, RecordingHeader,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// A cell as CSV text: numbers as numbers (a named number as its number:
/// the name is in the key column, or a decoded value such as a duration
/// keeps its raw unit), strings as they are.
fn cell(value: &FieldValue) -> String {
    match value {
        FieldValue::Int(n) => n.to_string(),
        FieldValue::Uint(n) => n.to_string(),
        FieldValue::Named { value, .. } => value.to_string(),
        FieldValue::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes `ts_ns,probe,map,kind,key,column,value,unit` rows: for every
/// reading of a pack probe's maps, one row per counter-table row and value
/// column (`kind` `counter`, `key` the decoded key) and one per histogram
/// bucket (`kind` `histogram`, `key` the histogram's key, `column`
/// `bucket_I` counting values in `[2^I, 2^(I+1))` of `unit`). Values are
/// cumulative, as the helper read them. Returns the rows written.
pub fn export_tables(
    header: &RecordingHeader,
    frames: impl IntoIterator<Item = RecordedFrame>,
    out: impl Write,
) -> io::Result<u64> {
    let mut names = ProbeNames::new(header);
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "ts_ns", "probe", "map", "kind", "key", "column", "value", "unit",
    ])?;
    let mut rows = 0;
    // Rows are keyed as the window keys them (decoded key cells joined).
    let mut packs: BTreeMap<ProbeKey, PackProbeData> = BTreeMap::new();
    for frame in frames {
        names.learn(&frame.message);
        let HelperMessage::PackData(data) = frame.message else {
            continue;
        };
        let probe = names.name(data.probe);
        let ts = data.ts_ns.to_string();
        for h in &data.histograms {
            for (bucket, count) in h.buckets.iter().enumerate() {
                writer.write_record([
                    ts.as_str(),
                    &probe,
                    &h.map,
                    "histogram",
                    &h.label,
                    &format!("bucket_{bucket}"),
                    &count.to_string(),
                    &h.unit,
                ])?;
                rows += 1;
            }
        }
        let pack = packs.entry(data.probe).or_default();
        pack.update(data);
        for table in &pack.tables {
            for row in &table.rows {
                let values = table.columns.iter().zip(&row.cells).skip(table.key_columns);
                for (column, value) in values {
                    writer.write_record([
                        ts.as_str(),
                        &probe,
                        &table.map,
                        "counter",
                        &row.key,
                        column,
                        &cell(value),
                        "",
                    ])?;
                    rows += 1;
                }
            }
        }
    }
    writer.flush()?;
    Ok(rows)
}

/// Perfetto counter tracks of pack probes, in process 0: per counter
/// table, `<probe> <map> <column>/s` with one series per row; per
/// histogram map, `<probe> <map> samples/s`.
#[derive(Default)]
pub(super) struct PackCounters {
    packs: BTreeMap<ProbeKey, PackProbeData>,
    /// Previous `(ts_ns, samples)` of each histogram map.
    samples: BTreeMap<(ProbeKey, String), (u64, u64)>,
}

impl PackCounters {
    pub(super) fn reading(
        &mut self,
        trace: &mut TraceWriter<impl Write>,
        names: &ProbeNames,
        data: PackData,
    ) -> io::Result<()> {
        let key = data.probe;
        let probe = names.name(key);
        let ts_ns = data.ts_ns;
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for h in &data.histograms {
            *totals.entry(h.map.clone()).or_default() += h.buckets.iter().sum::<u64>();
        }
        for (map, total) in totals {
            let previous = self.samples.insert((key, map.clone()), (ts_ns, total));
            let Some((t0, s0)) = previous.filter(|&(t0, _)| ts_ns > t0) else {
                continue;
            };
            let seconds = (ts_ns - t0) as f64 / 1e9;
            // Lower than before: the probe was loaded afresh.
            let increase = if total >= s0 { total - s0 } else { total };
            trace.event(&json!({
                "ph": "C", "name": format!("{probe} {map} samples/s"), "ts": micros(ts_ns),
                "pid": 0, "args": {"samples": increase as f64 / seconds},
            }))?;
        }
        let pack = self.packs.entry(key).or_default();
        pack.update(data);
        for table in &pack.tables {
            let Some(column) = table.rate_column_name() else {
                continue;
            };
            let args: serde_json::Map<String, serde_json::Value> = table
                .rows
                .iter()
                .filter_map(|row| Some((row.key.clone(), json!(row.rate_per_sec?))))
                .collect();
            if args.is_empty() {
                continue;
            }
            trace.event(&json!({
                "ph": "C", "name": format!("{probe} {} {column}/s", table.map),
                "ts": micros(ts_ns), "pid": 0, "args": args,
            }))?;
        }
        Ok(())
    }
}
