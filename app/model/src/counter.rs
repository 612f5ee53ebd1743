//! Turning cumulative totals into increases.

/// Follows a cumulative total (for example the sum of the helper's in-kernel
/// syscall counts) and reports how much it grew since the previous reading.
///
/// The first reading is the baseline and reports 0. A total that goes down
/// means the counter was restarted (the probe was re-enabled, or the helper
/// restarted), so the new total is all growth since that restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CumulativeCounter {
    last_total: Option<u64>,
}

impl CumulativeCounter {
    /// A counter with no baseline yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a new total and returns the increase since the last one.
    pub fn advance(&mut self, total: u64) -> u64 {
        let increase = match self.last_total {
            None => 0,
            Some(last) if total >= last => total - last,
            Some(_) => total,
        };
        self.last_total = Some(total);
        increase
    }

    /// Forgets the baseline; the next reading becomes the new one.
    pub fn reset(&mut self) {
        self.last_total = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reading_is_the_baseline() {
        let mut counter = CumulativeCounter::new();
        assert_eq!(counter.advance(1000), 0);
        assert_eq!(counter.advance(1500), 500);
        assert_eq!(counter.advance(1500), 0);
    }

    #[test]
    fn a_decrease_is_a_restart() {
        let mut counter = CumulativeCounter::new();
        counter.advance(1000);
        assert_eq!(counter.advance(30), 30);
        assert_eq!(counter.advance(40), 10);
    }

    #[test]
    fn reset_takes_a_new_baseline() {
        let mut counter = CumulativeCounter::new();
        counter.advance(10);
        counter.reset();
        assert_eq!(counter.advance(500), 0);
    }
}
