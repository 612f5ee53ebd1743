//! Everything that can collect data, behind one interface for the hub: the
//! probe [`Registry`] says what a probe id is; this module attaches it with
//! the right machinery and reads what it collected.
//!
//! | source | machinery |
//! |---|---|
//! | pack probe naming dedicated programs | Microscope's object ([`Tracer::attach`]) |
//! | any tracepoint | Microscope's object, generic program ([`Tracer::attach_generic`]) |
//! | kernel or user function | one instance of the function probe object each ([`FunctionProbes`]) |
//! | `profile:cpu`, `profile:offcpu` | the profiler's object ([`Profiler::start`]) |

use crate::auth::Peer;
use crate::filter_slots::FilterSlots;
use crate::funcprobe::FunctionProbes;
use crate::pack::PackProbes;
use crate::profiler::{ProfileKind, Profiler, StackBatchParts};
use crate::registry::{Registry, Source};
use crate::symbolize::FrameInterner;
use crate::tracer::Tracer;
use microscope_catalogue::Catalogue;
use microscope_wire::ProbeKey;
use microscope_wire::{
    Aggregates, Capabilities, Event, FunctionStats, ProbeInfo, ProbeKind, ProbeOptions, ProbeStats,
    ProcessFilter,
};
use probes_common::{
    COMM_LEN, FILTER_CGROUP, FILTER_COMM, FILTER_PID, FilterTable, ProcessFilterConfig,
};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The helper's probes and the machinery that attaches them.
pub struct ProbeSet {
    tracer: Tracer,
    functions: FunctionProbes,
    profiler: Profiler,
    registry: Registry,
    packs: PackProbes,
    /// Each client's process filter slot (see `filter_slots.rs`).
    slots: FilterSlots,
    tracefs: Option<PathBuf>,
}

impl ProbeSet {
    /// Wraps the loaded tracer; registers the probes of the built-in pack.
    /// `capabilities` say which function probe mechanisms the kernel has.
    pub fn new(
        mut tracer: Tracer,
        tracefs: Option<PathBuf>,
        capabilities: &Capabilities,
        packs: PackProbes,
    ) -> Self {
        let functions = FunctionProbes::new(capabilities);
        let mut registry = Registry::new(
            &mut tracer,
            &functions,
            tracefs.clone(),
            &Catalogue::builtin(),
        );
        let profiler = Profiler::new();
        for (key, off_cpu) in registry.profiles() {
            registry.set_availability(key, profiler.availability(profile_kind(off_cpu)));
        }
        for index in 0..packs.probes().len() {
            if let Some(info) = packs.info(index) {
                if registry.key_of(&info.id).is_some() {
                    log::warn!(
                        "pack probe {} has the id of a built-in probe; skipped",
                        info.id
                    );
                    continue;
                }
                if let Err(reason) = registry.register_pack(info, index) {
                    log::warn!("pack probe {index} not registered: {reason}");
                }
            }
        }
        Self {
            tracer,
            functions,
            profiler,
            registry,
            packs,
            slots: FilterSlots::default(),
            tracefs,
        }
    }

    /// The probe catalogue as a client with `enabled` probes sees it.
    pub fn list(&self, enabled: &BTreeSet<ProbeKey>) -> Vec<ProbeInfo> {
        self.registry.list(enabled)
    }

    /// The key of a known probe.
    pub fn key_of(&self, id: &str) -> Option<ProbeKey> {
        self.registry.key_of(id)
    }

    /// Resolves `id` (registering a new tracepoint if needed) and attaches
    /// it for `peer` (whose access to a uprobe's binary is checked).
    /// Returns its key and, if it was just registered, its description. A
    /// probe registered for this call is forgotten again if it cannot be
    /// attached. `in_use` says which keys some client has enabled: when no
    /// room is left for probes created on demand, the others are forgotten.
    pub fn enable(
        &mut self,
        id: &str,
        peer: &Peer,
        in_use: impl Fn(ProbeKey) -> bool,
    ) -> Result<(ProbeKey, Option<ProbeInfo>), String> {
        if self.registry.key_of(id).is_none() {
            self.check_pack_id(id)?;
        }
        let (key, added) = self.resolve(id, peer, in_use)?;
        if let Err(reason) = self.attach(key, peer) {
            if added.is_some() {
                self.registry.forget(key);
            }
            return Err(reason);
        }
        Ok((key, added))
    }

    /// The key of `id`, registering it if needed (see [`enable`](Self::enable)).
    fn resolve(
        &mut self,
        id: &str,
        peer: &Peer,
        in_use: impl Fn(ProbeKey) -> bool,
    ) -> Result<(ProbeKey, Option<ProbeInfo>), String> {
        if self.registry.key_of(id).is_none() && self.registry.on_demand_full() {
            self.registry.forget_unused(in_use);
        }
        self.registry.resolve(id, &self.functions, peer)
    }

    /// Detaches probe `key` and, if it was created on demand, forgets it.
    /// Call when no client uses it any more.
    pub fn retire(&mut self, key: ProbeKey) {
        self.detach(key);
        self.registry.forget(key);
    }

    fn attach(&mut self, key: ProbeKey, peer: &Peer) -> Result<(), String> {
        let Some(probe) = self.registry.get(key) else {
            return Err(format!("no probe with key {key}"));
        };
        if !probe.info.availability.available {
            return Err(format!(
                "{} is not available here: {}",
                probe.info.id, probe.info.availability.reason
            ));
        }
        match &probe.source {
            Source::Dedicated => self.tracer.attach(key),
            Source::Pack(index) => {
                let index = *index;
                self.packs.attach(key, index)
            }
            Source::Tracepoint { format, .. } => {
                let (format, options) = (format.clone(), &probe.options);
                let (stacks, count_only) = (options.stacks, options.count_only);
                self.tracer.attach_generic(key, format, stacks, count_only)
            }
            Source::Function {
                target: Some(target),
            } => {
                let table = self.slots.table();
                self.functions.attach(key, target, &table, peer)
            }
            // Registered unavailable, so not reached.
            Source::Function { target: None } => Err(format!(
                "{}: the pack's function target could not be resolved",
                probe.info.id
            )),
            Source::Profile { off_cpu } => {
                let (kind, options) = (profile_kind(*off_cpu), probe.options.clone());
                let table = self.slots.table();
                self.profiler
                    .start(key, kind, &options, &table, self.tracefs.as_deref())
            }
        }
    }

    /// Detaches probe `key`.
    pub fn detach(&mut self, key: ProbeKey) {
        self.tracer.detach(key);
        self.functions.detach(key);
        self.profiler.stop(key);
        self.packs.detach(key);
    }

    /// An error sentence when `id` names a pack (its prefix is a loaded
    /// pack's id, or it cannot be a tracepoint) but no probe of it.
    fn check_pack_id(&self, id: &str) -> Result<(), String> {
        let Some((prefix, _)) = id.split_once(':') else {
            return Ok(());
        };
        let offered: Vec<&str> = self
            .packs
            .probes()
            .iter()
            .filter(|p| p.def.pack == prefix)
            .map(|p| p.def.id.as_str())
            .collect();
        if self.packs.pack_ids().iter().any(|p| p == prefix) {
            return Err(format!(
                "pack `{prefix}` has no probe `{id}`; it offers {}",
                if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                }
            ));
        }
        // Tracepoint categories are C identifiers; pack ids may have `-`.
        if prefix.contains('-') {
            return Err(format!(
                "no pack `{prefix}` is loaded, so there is no probe `{id}`; packs are read at start \
                 from /usr/share/microscope/packs, /etc/microscope/packs and each `--pack-dir`{}",
                if self.packs.problems().is_empty() {
                    String::new()
                } else {
                    format!(" (refused: {})", self.packs.problems().join("; "))
                }
            ));
        }
        Ok(())
    }

    /// The whole verifier log of a pack probe the kernel refused.
    pub fn verifier_log(&self, id: &str) -> Result<String, String> {
        let key = self
            .registry
            .key_of(id)
            .ok_or_else(|| format!("unknown probe `{id}`"))?;
        match self.registry.get(key).map(|p| &p.source) {
            Some(Source::Pack(index)) => self
                .packs
                .verifier_log(*index)
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!("the verifier did not refuse {id}, so there is no log to show")
                }),
            _ => Err(format!(
                "{id} is not a pack probe; only pack probes keep a verifier log"
            )),
        }
    }

    /// Counters and histograms of the pack probes in `enabled`.
    pub fn pack_data_for(
        &self,
        enabled: &BTreeSet<ProbeKey>,
        ts_ns: u64,
    ) -> Vec<microscope_wire::PackData> {
        self.packs.data_for(enabled, ts_ns)
    }

    /// Detaches everything; returns how many probes were attached.
    pub fn detach_all(&mut self) -> usize {
        self.tracer.detach_all()
            + self.functions.detach_all()
            + self.profiler.stop_all()
            + self.packs.detach_all()
    }

    /// Whether probe `key` is only counted in the kernel now.
    pub fn counts_only(&self, key: ProbeKey) -> bool {
        self.registry.get(key).is_some_and(|p| p.options.count_only)
    }

    /// Switches counting-only of the attached probe `id` on or off, keeping
    /// its other options.
    pub fn set_count_only(
        &mut self,
        id: &str,
        count_only: bool,
        peer: &Peer,
        in_use: impl Fn(ProbeKey) -> bool,
    ) -> Result<ProbeKey, String> {
        let key = self
            .key_of(id)
            .ok_or_else(|| format!("unknown probe `{id}`"))?;
        let mut options = self
            .registry
            .get(key)
            .map(|p| p.options.clone())
            .unwrap_or_default();
        options.count_only = count_only;
        self.set_options(id, options, true, peer, in_use)
    }

    /// Whether probe `key` (named `id`) can collect as `options` ask; the
    /// reason as a sentence if not.
    pub fn check_options(
        &self,
        key: ProbeKey,
        id: &str,
        options: &ProbeOptions,
    ) -> Result<(), String> {
        if (options.stacks || options.count_only)
            && !matches!(
                self.registry.get(key).map(|p| &p.source),
                Some(Source::Tracepoint { .. })
            )
        {
            let what = if options.stacks {
                "capture stacks"
            } else {
                "only count its hits in the kernel"
            };
            return Err(format!(
                "{id} cannot {what}; that works at any tracepoint \
                 named `category:name` (for example block:block_rq_issue)"
            ));
        }
        Ok(())
    }

    /// The id of probe `key`.
    pub fn id_of(&self, key: ProbeKey) -> Option<String> {
        self.registry.get(key).map(|p| p.info.id.clone())
    }

    /// Changes how probe `id` collects; re-attaches it (for `peer`) if
    /// `attached`.
    pub fn set_options(
        &mut self,
        id: &str,
        options: ProbeOptions,
        attached: bool,
        peer: &Peer,
        in_use: impl Fn(ProbeKey) -> bool,
    ) -> Result<ProbeKey, String> {
        let (key, _) = self.resolve(id, peer, in_use)?;
        self.check_options(key, id, &options)?;
        self.registry.set_options(key, options);
        let is_profile = matches!(
            self.registry.get(key).map(|p| &p.source),
            Some(Source::Profile { .. })
        );
        if attached {
            // A running profile takes new options in place (its counts so
            // far are kept); tracepoints and functions are re-attached.
            if !is_profile {
                self.detach(key);
            }
            self.attach(key, peer)?;
        }
        Ok(key)
    }

    /// Gives client `client` the process filter `filter`: a filter slot of
    /// its own or shared with clients of an equal filter (see
    /// `filter_slots.rs`), written into every object of Microscope's own.
    /// The client's aggregates are then counted exactly under its filter.
    /// An error is a sentence; the client keeps its previous filter.
    pub fn set_client_filter(&mut self, client: u64, filter: &ProcessFilter) -> Result<(), String> {
        let config = filter_config(filter)?;
        let before = self.slots.table();
        let assigned = self
            .slots
            .assign(client, filter, config, std::time::Instant::now())?;
        if assigned.fresh {
            // Off in the kernel while its counters are cleared (it may be
            // the client's previous slot, taken over in place).
            let mut off = before;
            off.set(assigned.slot, None);
            if off != before {
                self.write_table(&off)?;
            }
            self.tracer.clear_slot(assigned.slot)?;
            self.functions.clear_slot(assigned.slot)?;
        }
        if self.slots.table() != before || assigned.fresh {
            self.write_filter_table()?;
        }
        Ok(())
    }

    /// Client `client` left: its filter slot is freed if no one else uses it.
    pub fn release_client(&mut self, client: u64) {
        if self.slots.release(client)
            && let Err(err) = self.write_filter_table()
        {
            log::error!("{err}");
        }
    }

    /// Makes sure client `client` has a filter slot for its `filter` (it
    /// may have found none when it came, every slot being taken by other
    /// filters): without one the kernel would not keep what it asks for. An
    /// error is a sentence.
    pub fn ensure_filter_slot(
        &mut self,
        client: u64,
        filter: &ProcessFilter,
    ) -> Result<(), String> {
        if self.slots.slot_of(client).is_some() {
            return Ok(());
        }
        self.set_client_filter(client, filter)
    }

    fn write_filter_table(&mut self) -> Result<(), String> {
        let table = self.slots.table();
        self.write_table(&table)
    }

    fn write_table(&mut self, table: &FilterTable) -> Result<(), String> {
        self.tracer.set_filter(table)?;
        self.functions.set_filter(table)?;
        self.profiler.set_filter(table)
    }

    /// Binds the `filter_pid` knob of third-party packs to `filter`'s pid:
    /// the filter every client shares, or none (see `server.rs`). Packs
    /// count in their own programs, for the whole machine otherwise.
    pub fn set_pack_filter(&mut self, filter: &ProcessFilter) -> Result<(), String> {
        self.packs.set_filter_pid(filter.pid.unwrap_or(0))
    }

    /// Drains up to `max` streamed records into `out`.
    pub fn drain(&mut self, max: usize, out: &mut Vec<Event>) -> usize {
        let n = self.tracer.drain(max, out);
        n + self.packs.drain(max.saturating_sub(n), out)
    }

    /// Kernel drop totals of the streamed probes.
    pub fn kernel_drops(&self) -> Vec<ProbeStats> {
        let mut drops = self.tracer.kernel_drops();
        drops.extend(self.packs.kernel_drops());
        drops
    }

    /// Stack counts collected since the last call, symbolized, with frame
    /// ids from [`frames`](Self::frames); `None` when there is nothing to
    /// send. Call about every [`crate::DRAIN_INTERVAL`].
    pub fn drain_stacks(&mut self, now_ns: u64) -> Option<StackBatchParts> {
        // Stacks at tracepoints take the profiles' way to the symbolizer.
        let at_tracepoints = self.tracer.take_stacks();
        if !at_tracepoints.is_empty() {
            self.profiler.submit(at_tracepoints);
        }
        // So do packs' stack counts.
        let of_packs = self.packs.take_stacks();
        if !of_packs.is_empty() {
            self.profiler.submit(of_packs);
        }
        self.profiler.drain(now_ns)
    }

    /// Whether probe `key` is a running pack probe with stack outputs.
    pub fn has_pack_stacks(&self, key: ProbeKey) -> bool {
        self.packs.has_stacks(key)
    }

    /// Every frame name the stack batches use, by id.
    pub fn frames(&self) -> &FrameInterner {
        self.profiler.interner()
    }

    /// Whether any of `enabled` delivers stack counts: a profile, or a
    /// tracepoint with stacks on.
    pub fn wants_stacks(&self, enabled: &BTreeSet<ProbeKey>) -> bool {
        enabled.iter().any(|key| {
            self.registry
                .get(*key)
                .is_some_and(|p| p.info.kind == ProbeKind::Stacks || p.options.stacks)
                || self.packs.has_stacks(*key)
        })
    }

    /// What each of `keys` costs now (cumulative program statistics and
    /// drops; `events` left for the caller, who counts them), for the cost
    /// meter. The ring buffer's peak fill is taken (reset) once for all.
    pub fn cost_samples(
        &mut self,
        keys: impl Iterator<Item = ProbeKey>,
    ) -> Vec<crate::cost::ProbeSample> {
        let ring_peak = self.tracer.take_ring_peak();
        let drops = self.kernel_drops();
        keys.map(|key| {
            let mut programs = self.tracer.program_runs(key);
            programs.extend(self.functions.program_runs(key));
            programs.extend(self.profiler.program_runs(key));
            programs.extend(self.packs.program_runs(key));
            let streams = self.tracer.streams(key);
            crate::cost::ProbeSample {
                probe: key,
                programs,
                events: 0,
                kernel_drops: drops
                    .iter()
                    .filter(|d| d.probe == key)
                    .map(|d| d.kernel_drops)
                    .sum(),
                ring_bytes: if streams {
                    u64::from(probes_common::RING_BYTES)
                } else {
                    0
                },
                ring_peak_bytes: if streams { ring_peak } else { 0 },
            }
        })
        .collect()
    }

    /// The aggregates client `client`, with probes `enabled`, wants, if any:
    /// those of its own filter slot.
    pub fn aggregates_for(
        &self,
        client: u64,
        enabled: &BTreeSet<ProbeKey>,
        ts_ns: u64,
    ) -> Option<Aggregates> {
        let slot = self.slots.slot_of(client)?;
        let wants = |kind| {
            enabled
                .iter()
                .any(|key| self.registry.get(*key).is_some_and(|p| p.info.kind == kind))
        };
        let counts = wants(ProbeKind::SyscallCounts);
        let latency = wants(ProbeKind::SyscallLatency);
        let functions = wants(ProbeKind::Function);
        // Tracepoints that only count report their hits as calls, like
        // function probes (see `ProbeOptions::count_only`).
        let hits: Vec<FunctionStats> = self
            .tracer
            .counted_hits(slot)
            .into_iter()
            .filter(|(key, _)| enabled.contains(key))
            .map(|(probe, calls)| FunctionStats {
                probe,
                calls,
                latency_log2_ns: Vec::new(),
            })
            .collect();
        if !(counts || latency || functions || !hits.is_empty()) {
            return None;
        }
        let mut aggregates = self.tracer.aggregates(slot, counts, latency, ts_ns);
        if functions {
            aggregates.functions = self
                .functions
                .stats(slot)
                .into_iter()
                .filter(|s| enabled.contains(&s.probe))
                .collect();
        }
        aggregates.functions.extend(hits);
        Some(aggregates)
    }
}

fn profile_kind(off_cpu: bool) -> ProfileKind {
    if off_cpu {
        ProfileKind::OffCpu
    } else {
        ProfileKind::OnCpu
    }
}

/// The kernel's form of a process filter. An error is a sentence.
pub fn filter_config(filter: &ProcessFilter) -> Result<ProcessFilterConfig, String> {
    let mut config = ProcessFilterConfig::default();
    if let Some(pid) = filter.pid {
        config.flags |= FILTER_PID;
        config.tgid = pid;
    }
    if let Some(comm) = &filter.comm {
        let bytes = comm.as_bytes();
        if bytes.is_empty() || bytes.len() >= COMM_LEN || bytes.contains(&0) {
            return Err(format!(
                "`{comm}` cannot be a command name: the kernel keeps 1 to {} bytes of it",
                COMM_LEN - 1
            ));
        }
        config.flags |= FILTER_COMM;
        config.comm[..bytes.len()].copy_from_slice(bytes);
    }
    if let Some(cgroup) = filter.cgroup {
        config.flags |= FILTER_CGROUP;
        config.cgroup = cgroup;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_config_encodes_each_condition() {
        assert_eq!(
            filter_config(&ProcessFilter::default()),
            Ok(ProcessFilterConfig::default())
        );
        let config = filter_config(&ProcessFilter {
            pid: Some(42),
            comm: Some("cat".into()),
            cgroup: Some(7),
        })
        .unwrap();
        assert_eq!(config.flags, FILTER_PID | FILTER_COMM | FILTER_CGROUP);
        assert_eq!((config.tgid, config.cgroup), (42, 7));
        assert_eq!(&config.comm[..4], b"cat\0");
        let err = filter_config(&ProcessFilter {
            comm: Some("a-very-long-command-name".into()),
            ..ProcessFilter::default()
        })
        .unwrap_err();
        assert!(err.contains("1 to 15 bytes"), "{err}");
    }
}
