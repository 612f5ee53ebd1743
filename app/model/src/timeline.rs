//! Events per second of each probe, in fixed time buckets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Width of one timeline bucket.
pub const BUCKET: Duration = Duration::from_millis(250);

/// How late data may arrive for a bucket: batches come within 50 ms,
/// aggregate totals every 250 ms plus jitter.
pub const SETTLE: Duration = Duration::from_millis(300);

/// Longest history kept per probe, in buckets (about 69 hours at 250 ms); the
/// oldest tenth is dropped when a series grows past it.
const MAX_POINTS_PER_SERIES: usize = 1_000_000;

/// The rate history of one probe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// `[seconds since the timeline's epoch (bucket start), events per second]`,
    /// sorted by time, one point per bucket.
    points: Vec<[f64; 2]>,
    /// Bucket index of the last point.
    last_bucket: Option<u64>,
}

impl Series {
    /// The points, sorted by time.
    pub fn points(&self) -> &[[f64; 2]] {
        &self.points
    }

    /// Adds `events` to bucket `bucket`, filling skipped buckets with zeros.
    fn add(&mut self, bucket: u64, events: u64) {
        let rate_per_sec = events as f64 / BUCKET.as_secs_f64();
        match self.last_bucket {
            Some(last) if bucket == last => {
                if let Some(point) = self.points.last_mut() {
                    point[1] += rate_per_sec;
                }
            }
            Some(last) if bucket < last => {
                // Stamped just before a bucket the UI already zero-filled.
                let x = bucket_start_secs(bucket);
                if let Some(point) = self.points.iter_mut().rev().find(|p| p[0] == x) {
                    point[1] += rate_per_sec;
                }
            }
            last => {
                if let Some(last) = last {
                    // Two zeros are enough to draw a long silence as a flat line.
                    let gap = (last + 1)..bucket;
                    if gap.end - gap.start > 2 {
                        self.points.push([bucket_start_secs(gap.start), 0.0]);
                        self.points.push([bucket_start_secs(gap.end - 1), 0.0]);
                    } else {
                        self.points.extend(gap.map(|b| [bucket_start_secs(b), 0.0]));
                    }
                }
                self.points.push([bucket_start_secs(bucket), rate_per_sec]);
                self.last_bucket = Some(bucket);
                if self.points.len() > MAX_POINTS_PER_SERIES {
                    self.points.drain(..MAX_POINTS_PER_SERIES / 10);
                }
            }
        }
    }

    /// Sum of events in buckets `from..to`.
    fn events_in(&self, from: u64, to: u64) -> f64 {
        let (from_secs, to_secs) = (bucket_start_secs(from), bucket_start_secs(to));
        let start = self.points.partition_point(|p| p[0] < from_secs);
        self.points[start..]
            .iter()
            .take_while(|p| p[0] < to_secs)
            .map(|p| p[1] * BUCKET.as_secs_f64())
            .sum()
    }
}

fn bucket_duration(bucket: u64) -> Duration {
    BUCKET.saturating_mul(u32::try_from(bucket).unwrap_or(u32::MAX))
}

fn bucket_start_secs(bucket: u64) -> f64 {
    bucket as f64 * BUCKET.as_secs_f64()
}

/// Rate histories of all probes that produced data, by probe id.
#[derive(Clone, Debug)]
pub struct Timeline {
    epoch: Instant,
    series: BTreeMap<String, Series>,
}

impl Timeline {
    /// An empty timeline whose time axis starts at `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            series: BTreeMap::new(),
        }
    }

    /// Seconds from the epoch to `at` (0 before the epoch).
    pub fn secs_since_epoch(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.epoch).as_secs_f64()
    }

    fn bucket_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos / BUCKET.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts `events` of `probe` at time `at`.
    pub fn record(&mut self, probe: &str, at: Instant, events: u64) {
        let bucket = self.bucket_of(at);
        match self.series.get_mut(probe) {
            Some(series) => series.add(bucket, events),
            None => {
                let mut series = Series::default();
                series.add(bucket, events);
                self.series.insert(probe.to_owned(), series);
            }
        }
    }

    /// Counts `events` of `probe` that happened evenly between `from` and
    /// `to`, split across the buckets that interval covers.
    ///
    /// Aggregated probes arrive as a total every ~250 ms with jitter; putting
    /// each increase in its arrival bucket would leave some buckets with two
    /// readings and some with none, a saw-tooth that is not in the data.
    pub fn record_spread(&mut self, probe: &str, from: Instant, to: Instant, events: u64) {
        let (first, last) = (self.bucket_of(from), self.bucket_of(to));
        if first >= last || to <= from {
            self.record(probe, to, events);
            return;
        }
        let span_ns = to.duration_since(from).as_nanos() as f64;
        let mut assigned = 0u64;
        for bucket in first..=last {
            let start = self.epoch + bucket_duration(bucket);
            let end = start + BUCKET;
            let overlap = end.min(to).saturating_duration_since(start.max(from));
            let share = if bucket == last {
                events - assigned
            } else {
                ((events as f64) * overlap.as_nanos() as f64 / span_ns).round() as u64
            }
            .min(events - assigned);
            assigned += share;
            self.record(probe, start.max(from), share);
        }
    }

    /// Extends the series of `probes` with zero buckets up to `now`, so a
    /// probe that goes quiet draws as a line falling to zero.
    pub fn advance<'a>(&mut self, probes: impl IntoIterator<Item = &'a str>, now: Instant) {
        for probe in probes {
            self.record(probe, now, 0);
        }
    }

    /// Buckets starting at or after this time (seconds since the epoch) may
    /// still be filling: the current one always is, and aggregated probes
    /// report up to [`SETTLE`] late. Views stop their lines there instead of
    /// showing a partial bucket as a sudden drop.
    pub fn settled_until_secs(&self, now: Instant) -> f64 {
        let settled = now.checked_sub(SETTLE).unwrap_or(self.epoch);
        bucket_start_secs(self.bucket_of(settled))
    }

    /// The series of one probe, if it produced data.
    pub fn series(&self, probe: &str) -> Option<&Series> {
        self.series.get(probe)
    }

    /// All series, by probe id.
    pub fn all_series(&self) -> impl Iterator<Item = (&str, &Series)> {
        self.series.iter().map(|(id, series)| (id.as_str(), series))
    }

    /// Events per second of one probe over the last second of complete
    /// buckets (0 if it has no data).
    pub fn rate_per_sec(&self, probe: &str, now: Instant) -> f64 {
        let to = self.bucket_of(now);
        let buckets_per_sec = (1.0 / BUCKET.as_secs_f64()).round() as u64;
        let from = to.saturating_sub(buckets_per_sec);
        let seconds = (to - from) as f64 * BUCKET.as_secs_f64();
        match self.series.get(probe) {
            Some(series) if seconds > 0.0 => series.events_in(from, to) / seconds,
            _ => 0.0,
        }
    }

    /// Events per second over the last second of complete buckets, over all probes.
    pub fn total_rate_per_sec(&self, now: Instant) -> f64 {
        let to = self.bucket_of(now);
        let buckets_per_sec = (1.0 / BUCKET.as_secs_f64()).round() as u64;
        let from = to.saturating_sub(buckets_per_sec);
        let seconds = (to - from) as f64 * BUCKET.as_secs_f64();
        if seconds == 0.0 {
            return 0.0;
        }
        self.series
            .values()
            .map(|s| s.events_in(from, to))
            .sum::<f64>()
            / seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_land_in_their_bucket_as_a_rate() {
        let epoch = Instant::now();
        let mut timeline = Timeline::new(epoch);
        timeline.record("a", epoch + Duration::from_millis(10), 10);
        timeline.record("a", epoch + Duration::from_millis(200), 15);
        timeline.record("a", epoch + Duration::from_millis(300), 1);
        let points = timeline.series("a").map(Series::points);
        assert_eq!(points, Some(&[[0.0, 100.0], [0.25, 4.0]][..]));
    }

    #[test]
    fn skipped_buckets_are_zero_and_long_gaps_stay_small() {
        let epoch = Instant::now();
        let mut timeline = Timeline::new(epoch);
        timeline.record("a", epoch, 1);
        timeline.record("a", epoch + Duration::from_millis(750), 1);
        timeline.record("a", epoch + Duration::from_secs(3600), 1);
        let points = timeline.series("a").map(Series::points).unwrap_or_default();
        assert_eq!(
            &points[..4],
            &[[0.0, 4.0], [0.25, 0.0], [0.5, 0.0], [0.75, 4.0]]
        );
        assert_eq!(points.len(), 7);
    }

    #[test]
    fn spread_totals_split_by_overlap_and_keep_every_event() {
        let epoch = Instant::now();
        let mut timeline = Timeline::new(epoch);
        // 300 events between 0.125 s and 0.5 s: a third in bucket 0, two
        // thirds in bucket 1, none lost to rounding.
        let from = epoch + Duration::from_millis(125);
        timeline.record_spread("a", from, epoch + Duration::from_millis(500), 300);
        let points = timeline.series("a").map(Series::points).unwrap_or_default();
        assert_eq!(&points[..2], &[[0.0, 400.0], [0.25, 800.0]]);
        let total: f64 = points.iter().map(|p| p[1] * BUCKET.as_secs_f64()).sum();
        assert_eq!(total, 300.0);
        // Jittered readings no longer leave empty buckets between them.
        let mut jittery = Timeline::new(epoch);
        let mut prev = epoch;
        for ms in [240, 510, 740, 1010, 1240] {
            let at = epoch + Duration::from_millis(ms);
            jittery.record_spread("b", prev, at, 250);
            prev = at;
        }
        let rates: Vec<f64> = jittery
            .series("b")
            .unwrap()
            .points()
            .iter()
            .map(|p| p[1])
            .collect();
        assert!(
            rates[..4].iter().all(|r| (*r - 1000.0).abs() < 150.0),
            "{rates:?}"
        );
    }

    #[test]
    fn only_settled_buckets_are_drawn() {
        let epoch = Instant::now();
        let timeline = Timeline::new(epoch);
        // At 1.2 s, data up to 0.9 s is settled: buckets before 0.75 s.
        assert_eq!(
            timeline.settled_until_secs(epoch + Duration::from_millis(1200)),
            0.75
        );
        assert_eq!(timeline.settled_until_secs(epoch), 0.0);
    }

    #[test]
    fn late_events_join_an_earlier_bucket() {
        let epoch = Instant::now();
        let mut timeline = Timeline::new(epoch);
        timeline.advance(["a"], epoch + Duration::from_millis(600));
        timeline.record("a", epoch + Duration::from_millis(100), 2);
        // `advance` created only the current bucket; the late event has no
        // bucket to join and is dropped rather than reordering the series.
        let points = timeline.series("a").map(Series::points).unwrap_or_default();
        assert!(points.windows(2).all(|w| w[0][0] < w[1][0]));
    }

    #[test]
    fn total_rate_covers_the_last_second() {
        let epoch = Instant::now();
        let mut timeline = Timeline::new(epoch);
        for i in 0..8 {
            timeline.record("a", epoch + Duration::from_millis(250 * i), 100);
            timeline.record("b", epoch + Duration::from_millis(250 * i), 50);
        }
        let now = epoch + Duration::from_secs(2);
        assert!((timeline.total_rate_per_sec(now) - 600.0).abs() < 1e-9);
        assert_eq!(Timeline::new(epoch).total_rate_per_sec(epoch), 0.0);
    }
}
