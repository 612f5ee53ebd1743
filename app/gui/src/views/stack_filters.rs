//! What the stack views (flame graph, paths) share: which samples to show
//! (time range, probe, process, live or frozen) and the widgets that choose
//! them.

use egui::{ComboBox, DragValue};
use microscope_model::Model;
use microscope_model::{StackQuery, StackStore};
use microscope_wire::ProbeKey;

const NS_PER_SEC: u64 = 1_000_000_000;
/// The "last N s" choices of the range selector.
const LAST_SECS: [u32; 4] = [5, 10, 30, 60];

/// The time range a stack view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRange {
    /// Every sample kept.
    All,
    /// The last `secs` seconds up to the newest sample.
    Last {
        /// Length of the range, in seconds.
        secs: u32,
    },
    /// A fixed range, e.g. a selection on the timeline.
    Custom {
        /// First time included, in kernel ns.
        start_ns: u64,
        /// First time excluded, in kernel ns.
        end_ns: u64,
    },
}

impl TimeRange {
    fn title(self) -> String {
        match self {
            Self::All => "All samples".to_owned(),
            Self::Last { secs } => format!("Last {secs} s"),
            Self::Custom { .. } => "Custom range".to_owned(),
        }
    }
}

/// Which samples a stack view shows. It is the view's own state, like a
/// scroll position, so its widgets change it directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFilters {
    /// The time range.
    pub range: TimeRange,
    /// Only this probe; `None` is every probe, allowed only when they all
    /// count the same unit (see [`Self::effective_probe`]).
    pub probe: Option<ProbeKey>,
    /// Only this process, with its command name for the selector.
    pub process: Option<(u32, String)>,
    /// While frozen, the newest sample time when freezing: "last N s"
    /// stays where it was and new samples do not change the graph.
    frozen_at_ns: Option<u64>,
}

impl Default for StackFilters {
    fn default() -> Self {
        Self {
            range: TimeRange::Last { secs: 10 },
            probe: None,
            process: None,
            frozen_at_ns: None,
        }
    }
}

impl StackFilters {
    /// Whether new samples change the view.
    pub fn is_live(&self) -> bool {
        self.frozen_at_ns.is_none()
    }

    /// Follows new samples, or freezes the view at the newest sample now.
    pub fn set_live(&mut self, live: bool, store: &StackStore) {
        self.frozen_at_ns = if live { None } else { Some(newest_ns(store)) };
    }

    /// Shows `[start_ns, end_ns)` (kernel ns), e.g. a selection on the timeline.
    pub fn set_range(&mut self, start_ns: u64, end_ns: u64) {
        self.range = TimeRange::Custom {
            start_ns: start_ns.min(end_ns),
            end_ns: end_ns.max(start_ns),
        };
    }

    /// The range in kernel ns, `[start, end)`.
    pub fn resolved_range(&self, store: &StackStore) -> (u64, u64) {
        match self.range {
            TimeRange::All => (0, u64::MAX),
            TimeRange::Last { secs } => {
                let end = self
                    .frozen_at_ns
                    .unwrap_or_else(|| newest_ns(store))
                    .saturating_add(1);
                (end.saturating_sub(u64::from(secs) * NS_PER_SEC), end)
            }
            TimeRange::Custom { start_ns, end_ns } => (start_ns, end_ns),
        }
    }

    /// The probe whose samples are shown: the chosen one, or with none
    /// chosen and probes counting different units (samples and ns blocked
    /// do not add up), the first probe.
    pub fn effective_probe(&self, store: &StackStore) -> Option<ProbeKey> {
        match self.probe {
            Some(probe) => Some(probe),
            None if store.shared_unit().is_some() => None,
            None => store.probes().next(),
        }
    }

    /// The samples to show.
    pub fn query(&self, store: &StackStore) -> StackQuery {
        let (start_ns, end_ns) = self.resolved_range(store);
        StackQuery::range(start_ns, end_ns)
            .with_probe(self.effective_probe(store))
            .with_tgid(self.process.as_ref().map(|(tgid, _)| *tgid))
    }

    /// The settings part of the filters, which change only when the user
    /// (or a command) changes them: a change rebuilds at once.
    pub(crate) fn settings(&self) -> Self {
        self.clone()
    }

    /// The range selector (with the custom range's fields).
    pub fn range_ui(&mut self, ui: &mut egui::Ui, store: &StackStore, id_salt: &str) {
        let current = self.range;
        ComboBox::from_id_salt((id_salt, "range"))
            .selected_text(current.title())
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut self.range, TimeRange::All, TimeRange::All.title());
                for secs in LAST_SECS {
                    let choice = TimeRange::Last { secs };
                    ui.selectable_value(&mut self.range, choice, choice.title());
                }
                let custom = match current {
                    TimeRange::Custom { .. } => current,
                    _ => {
                        let (start_ns, end_ns) = clamp_to_data(self.resolved_range(store), store);
                        TimeRange::Custom { start_ns, end_ns }
                    }
                };
                ui.selectable_value(&mut self.range, custom, custom.title());
            })
            .response
            .on_hover_text("Which samples to show, by the time they were taken.");
        if let TimeRange::Custom { start_ns, end_ns } = &mut self.range {
            range_fields_ui(ui, store, start_ns, end_ns);
        }
    }

    /// The probe selector, naming probes from the model's catalogue.
    pub fn probe_ui(&mut self, ui: &mut egui::Ui, model: &Model, id_salt: &str) {
        let store = &model.stacks;
        let shown = self.effective_probe(store);
        let mixed = store.shared_unit().is_none();
        ComboBox::from_id_salt((id_salt, "probe"))
            .selected_text(shown.map_or_else(|| "All probes".to_owned(), |p| probe_name(model, p)))
            .show_ui(ui, |ui| {
                if !mixed {
                    ui.selectable_value(&mut self.probe, None, "All probes");
                }
                for probe in store.probes() {
                    ui.selectable_value(&mut self.probe, Some(probe), probe_name(model, probe));
                }
            })
            .response
            .on_hover_text(if mixed {
                "Which probe's stacks to show (on-CPU samples and time blocked do not add up)."
            } else {
                "Which probe's stacks to show."
            });
    }

    /// The process selector: every process in the range, heaviest first.
    pub fn process_ui(&mut self, ui: &mut egui::Ui, store: &StackStore, id_salt: &str) {
        let selected = self.process.as_ref().map_or_else(
            || "All processes".to_owned(),
            |(tgid, comm)| format!("{comm} ({tgid})"),
        );
        let query = self.query(store);
        let unit = store.query_unit(query);
        ComboBox::from_id_salt((id_salt, "process"))
            .selected_text(selected)
            .height(400.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut self.process, None, "All processes");
                // Only while the list is open: it scans the range.
                for process in store.processes(query) {
                    let text = format!(
                        "{} ({}) — {}",
                        process.comm,
                        process.tgid,
                        unit.format(process.value)
                    );
                    ui.selectable_value(
                        &mut self.process,
                        Some((process.tgid, process.comm)),
                        text,
                    );
                }
            })
            .response
            .on_hover_text("Show one process's stacks only.");
    }

    /// The live / frozen toggle.
    pub fn live_ui(&mut self, ui: &mut egui::Ui, store: &StackStore) {
        let mut live = self.is_live();
        if ui
            .checkbox(&mut live, "Live")
            .on_hover_text("Follow new samples; untick to freeze what is shown.")
            .changed()
        {
            self.set_live(live, store);
        }
    }
}

/// The newest sample's time, 0 with none.
fn newest_ns(store: &StackStore) -> u64 {
    store.time_span().map_or(0, |(_, newest)| newest)
}

/// `range` within the samples kept, for a custom range's first values.
fn clamp_to_data(range: (u64, u64), store: &StackStore) -> (u64, u64) {
    let (first, last) = store.time_span().unwrap_or((0, 0));
    let start = range.0.clamp(first, last);
    let end = range.1.clamp(start, last.saturating_add(1));
    (start, end)
}

/// Two fields, in seconds since the oldest sample kept, for `[start, end)`.
pub(crate) fn range_fields_ui(
    ui: &mut egui::Ui,
    store: &StackStore,
    start_ns: &mut u64,
    end_ns: &mut u64,
) {
    let origin = store.time_span().map_or(0, |(first, _)| first);
    let to_secs = |ns: u64| ns.saturating_sub(origin) as f64 / NS_PER_SEC as f64;
    let to_ns = |secs: f64| origin.saturating_add((secs.max(0.0) * NS_PER_SEC as f64) as u64);
    let mut from = to_secs(*start_ns);
    let mut to = to_secs(*end_ns);
    ui.label("from");
    let from_changed = ui
        .add(
            DragValue::new(&mut from)
                .speed(0.1)
                .suffix(" s")
                .max_decimals(3),
        )
        .on_hover_text("Seconds after the oldest sample kept.")
        .changed();
    ui.label("to");
    let to_changed = ui
        .add(
            DragValue::new(&mut to)
                .speed(0.1)
                .suffix(" s")
                .max_decimals(3),
        )
        .changed();
    if from_changed {
        *start_ns = to_ns(from).min(*end_ns);
    }
    if to_changed {
        *end_ns = to_ns(to).max(*start_ns);
    }
}

/// The probe's id from the catalogue, or its key.
pub(crate) fn probe_name(model: &Model, key: ProbeKey) -> String {
    model
        .probes
        .iter()
        .find(|p| p.key == key)
        .map_or_else(|| format!("probe #{key}"), |p| p.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_model::ValueUnit;

    fn store() -> StackStore {
        let mut store = StackStore::new();
        for secs in 0..20u64 {
            store.add(secs * NS_PER_SEC, 1, 1, "a", &[1], 1);
        }
        store
    }

    #[test]
    fn last_seconds_end_at_the_newest_sample_and_freeze_there() {
        let mut store = store();
        let mut filters = StackFilters::default();
        let newest = 19 * NS_PER_SEC;
        assert_eq!(
            filters.resolved_range(&store),
            (newest + 1 - 10 * NS_PER_SEC, newest + 1)
        );
        filters.set_live(false, &store);
        store.add(25 * NS_PER_SEC, 1, 1, "a", &[1], 1);
        assert_eq!(filters.resolved_range(&store).1, newest + 1);
        filters.set_live(true, &store);
        assert_eq!(filters.resolved_range(&store).1, 25 * NS_PER_SEC + 1);
        filters.set_range(7, 3);
        assert_eq!(filters.resolved_range(&store), (3, 7));
        let query = filters.query(&store);
        assert_eq!((query.start_ns, query.end_ns, query.probe), (3, 7, None));
    }

    #[test]
    fn probes_of_different_units_are_never_mixed() {
        let mut store = store();
        let filters = StackFilters::default();
        assert_eq!(filters.effective_probe(&store), None);
        store.set_unit(2, ValueUnit::Nanoseconds);
        store.add(30, 2, 1, "a", &[1], 1000);
        assert_eq!(filters.effective_probe(&store), Some(1));
        let chosen = StackFilters {
            probe: Some(2),
            ..StackFilters::default()
        };
        assert_eq!(chosen.effective_probe(&store), Some(2));
    }
}
