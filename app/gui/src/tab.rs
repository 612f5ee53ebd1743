//! The tabs of the central area.

/// What the central area shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CentralTab {
    /// The subsystem map: where to start exploring.
    #[default]
    Map,
    /// Events per second and the latency histogram.
    Rates,
    /// The CPU timeline.
    Cpus,
    /// The event inspector.
    Events,
    /// The flame graph of stack samples.
    Flame,
    /// The call graph of the stacks into a probe.
    Paths,
    /// Pack probes' counter tables and histograms.
    Packs,
    /// What each probe and the helper cost.
    Cost,
}

impl CentralTab {
    /// Every tab, in display order.
    pub const ALL: [Self; 8] = [
        Self::Map,
        Self::Rates,
        Self::Cpus,
        Self::Events,
        Self::Flame,
        Self::Paths,
        Self::Packs,
        Self::Cost,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Map => "Map",
            Self::Rates => "Rates",
            Self::Cpus => "CPUs",
            Self::Events => "Events",
            Self::Flame => "Flame",
            Self::Paths => "Paths",
            Self::Packs => "Pack data",
            Self::Cost => "Cost",
        }
    }
}
