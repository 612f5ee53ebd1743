//! Where the app reads "now": the system's monotonic clock, or a clock a
//! test moves by hand, so that tests age the timeline's buckets without
//! sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of `Instant`s. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Manual>);

#[derive(Clone, Debug)]
struct Manual {
    start: Instant,
    elapsed_ns: Arc<AtomicU64>,
}

impl Clock {
    /// The system's monotonic clock (`Instant::now`).
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock standing at `start` until [`advance`](Self::advance)d.
    pub fn manual(start: Instant) -> Self {
        Self(Some(Manual {
            start,
            elapsed_ns: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        match &self.0 {
            None => Instant::now(),
            Some(manual) => {
                manual.start + Duration::from_nanos(manual.elapsed_ns.load(Ordering::Relaxed))
            }
        }
    }

    /// Moves a manual clock (and its clones) forward by `by`; the system
    /// clock moves by itself and ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(manual) = &self.0 {
            let by_ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            manual.elapsed_ns.fetch_add(by_ns, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = Instant::now();
        let clock = Clock::manual(start);
        let clone = clock.clone();
        assert_eq!(clock.now(), start);
        clone.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + Duration::from_millis(1500));
        let system = Clock::system();
        let before = system.now();
        system.advance(Duration::from_secs(3600));
        assert!(system.now() < before + Duration::from_secs(3600));
    }
}
