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
