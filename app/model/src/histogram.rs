//! The syscall latency histogram: log2 buckets, measured from a baseline.

use crate::units::format_whole_duration_ns;

/// Bucket `i` of the helper's histogram counts latencies in `[2^i, 2^(i+1))` ns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    baseline: Option<Vec<u64>>,
    latest: Vec<u64>,
}

impl LatencyHistogram {
    /// Takes a cumulative histogram from the helper. The first one seen is
    /// the baseline, so the view shows what happened while the app watched.
    pub fn observe(&mut self, cumulative: &[u64]) {
        if cumulative.is_empty() {
            return;
        }
        let restarted = self
            .baseline
            .as_ref()
            .is_some_and(|base| base.iter().zip(cumulative).any(|(b, c)| c < b));
        if self.baseline.is_none() || restarted {
            self.baseline = Some(cumulative.to_vec());
        }
        self.latest = cumulative.to_vec();
    }

    /// Forgets everything (the probe was disabled or the helper reconnected).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Latencies per bucket since the baseline.
    pub fn counts(&self) -> Vec<u64> {
        let baseline = self.baseline.as_deref().unwrap_or_default();
        self.latest
            .iter()
            .enumerate()
            .map(|(i, count)| count.saturating_sub(baseline.get(i).copied().unwrap_or(0)))
            .collect()
    }

    /// Whether any aggregate has been seen.
    pub fn has_data(&self) -> bool {
        !self.latest.is_empty()
    }
}

/// `2^bucket` nanoseconds as a short label: `512 ns`, `1 µs`, `33 ms`, `2 s`.
pub fn bucket_label(bucket: usize) -> String {
    let ns = 1u128
        .checked_shl(u32::try_from(bucket).unwrap_or(u32::MAX))
        .unwrap_or(u128::MAX);
    format_whole_duration_ns(ns)
}

/// The lower bound of bucket `bucket` of a log2 histogram whose values
/// are in `unit` (a pack's manifest unit as the helper spells it: `ns`,
/// `µs`, `ms`, `s`, `B`, `KiB`, `sectors`, `pages`, or empty for counts):
/// `2^bucket` of that unit, for people (`4 µs` → `4 µs`, `2^20 B` → `1 MiB`).
pub fn log2_bucket_label(bucket: usize, unit: &str) -> String {
    let value = 1u128
        .checked_shl(u32::try_from(bucket).unwrap_or(u32::MAX))
        .unwrap_or(u128::MAX);
    let ns_per = match unit {
        "ns" => Some(1),
        "µs" | "us" => Some(1_000),
        "ms" => Some(1_000_000),
        "s" => Some(1_000_000_000),
        _ => None,
    };
    if let Some(ns_per) = ns_per {
        return format_whole_duration_ns(value.saturating_mul(ns_per));
    }
    let bytes_per = match unit {
        "B" => Some(1u128),
        "KiB" => Some(1024),
        _ => None,
    };
    if let Some(bytes_per) = bytes_per {
        let bytes = value.saturating_mul(bytes_per);
        let (scale, suffix) = [
            (1u128 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ]
        .into_iter()
        .find(|&(scale, _)| bytes >= scale)
        .unwrap_or((1, "B"));
        return format!("{} {suffix}", bytes / scale);
    }
    let count = if bucket < 64 {
        crate::units::format_count(value as u64)
    } else {
        format!("2^{bucket}")
    };
    if unit.is_empty() {
        count
    } else {
        format!("{count} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_measured_from_the_first_histogram() {
        let mut histogram = LatencyHistogram::default();
        assert!(!histogram.has_data());
        histogram.observe(&[5, 5, 0]);
        assert_eq!(histogram.counts(), vec![0, 0, 0]);
        histogram.observe(&[7, 5, 3]);
        assert_eq!(histogram.counts(), vec![2, 0, 3]);
    }

    #[test]
    fn empty_and_restarted_histograms() {
        let mut histogram = LatencyHistogram::default();
        histogram.observe(&[]);
        assert!(!histogram.has_data());
        histogram.observe(&[10, 10]);
        histogram.observe(&[1, 0]);
        assert_eq!(histogram.counts(), vec![0, 0]);
        histogram.reset();
        assert!(histogram.counts().is_empty());
    }

    #[test]
    fn pack_buckets_read_in_their_unit() {
        assert_eq!(log2_bucket_label(0, "µs"), "1 µs");
        assert_eq!(log2_bucket_label(3, "us"), "8 µs");
        assert_eq!(log2_bucket_label(10, "µs"), "1 ms");
        assert_eq!(log2_bucket_label(10, "ns"), "1 µs");
        assert_eq!(log2_bucket_label(1, "ms"), "2 ms");
        assert_eq!(log2_bucket_label(2, "s"), "4 s");
        assert_eq!(log2_bucket_label(9, "B"), "512 B");
        assert_eq!(log2_bucket_label(20, "B"), "1 MiB");
        assert_eq!(log2_bucket_label(1, "KiB"), "2 KiB");
        assert_eq!(log2_bucket_label(12, ""), "4 096");
        assert_eq!(log2_bucket_label(3, "sectors"), "8 sectors");
        assert_eq!(log2_bucket_label(70, "pages"), "2^70 pages");
        assert!(log2_bucket_label(500, "KiB").ends_with(" TiB"), "saturates");
    }

    #[test]
    fn labels_use_readable_units() {
        assert_eq!(bucket_label(0), "1 ns");
        assert_eq!(bucket_label(9), "512 ns");
        assert_eq!(bucket_label(10), "1 µs");
        assert_eq!(bucket_label(20), "1 ms");
        assert_eq!(bucket_label(25), "34 ms");
        assert_eq!(bucket_label(30), "1 s");
        assert_eq!(bucket_label(63), "9223372037 s");
        assert_eq!(bucket_label(200), format_whole_duration_ns(u128::MAX));
    }
}
