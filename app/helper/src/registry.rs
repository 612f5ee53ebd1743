//! Every probe this helper knows, by wire key: the probes of the built-in
//! pack (`assets/packs/builtin`, through [`microscope_catalogue`]), and
//! those created when a client first asks for them (any tracepoint of the
//! running kernel).
//!
//! A probe id says where its data comes from:
//!
//! | id | source |
//! |---|---|
//! | a pack probe with a `program` in [`crate::catalogue::PROBES`] | a dedicated program of Microscope's object |
//! | `category:name` (in a pack or not) | any tracepoint, through the generic program |
//! | `func:NAME`, `uprobe:...` in a pack | kernel and user functions |
//! | `profile:cpu`, `profile:offcpu` | the stack samplers |
//!
//! Keys are handed out in registration order and never reused while the
//! helper runs, so a client (or a recording) can keep them.

use crate::catalogue::PROBES;
use crate::funcprobe::{FunctionProbes, FunctionTarget, Mechanism};
use crate::generic;
use crate::tracefs::{self, Format};
use crate::tracer::Tracer;
use microscope_catalogue::targets::find_library;
use microscope_catalogue::{Catalogue, ProbeType, Target};
use microscope_wire::{Availability, ProbeInfo, ProbeKind, ProbeOptions};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a probe's data comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A dedicated program of Microscope's object: [`catalogue::PROBES`]
    /// entry, whose index is also the probe's key.
    Builtin,
    /// Any tracepoint, decoded from its format file.
    Tracepoint {
        /// Its parsed format (whose `id` is `category:name`).
        format: Arc<Format>,
    },
    /// A kernel or user function: calls and latency.
    Function {
        /// The function, from the probe id or the pack's target; `None`
        /// when the pack's target could not be resolved (the probe is then
        /// unavailable, with the reason).
        target: Option<FunctionTarget>,
    },
    /// A probe of a third-party pack: index into [`crate::pack::PackProbes`].
    Pack(usize),
    /// On-CPU or off-CPU stack sampling.
    Profile {
        /// Off-CPU (blocked time) rather than on-CPU samples.
        off_cpu: bool,
    },
}

/// One registered probe.
#[derive(Clone, Debug)]
pub struct Registered {
    /// What clients see (with `enabled` false; set per client when listing).
    pub info: ProbeInfo,
    /// Where its data comes from.
    pub source: Source,
    /// How it collects.
    pub options: ProbeOptions,
}

/// The helper's probes.
pub struct Registry {
    probes: Vec<Registered>,
    by_id: HashMap<String, u16>,
    tracefs: Option<PathBuf>,
}

impl Registry {
    /// The probes of `catalogue`, with their availability on this kernel.
    /// Probes with a dedicated program come first, at the keys of
    /// [`crate::catalogue::PROBES`].
    pub fn new(
        tracer: &Tracer,
        functions: &FunctionProbes,
        tracefs: Option<PathBuf>,
        catalogue: &Catalogue,
    ) -> Self {
        let mut registry = Self {
            probes: Vec::new(),
            by_id: HashMap::new(),
            tracefs,
        };
        for (i, p) in PROBES.iter().enumerate() {
            let key = i as u16;
            let def = catalogue.probe(p.id);
            registry.push(Registered {
                info: ProbeInfo {
                    id: p.id.to_owned(),
                    key,
                    subsystem: def.map_or(p.subsystem, |d| d.subsystem.as_str()).to_owned(),
                    description: def.map_or(p.description, |d| d.summary.as_str()).to_owned(),
                    kind: p.kind,
                    availability: tracer.availability(key),
                    enabled: false,
                    fields: Vec::new(),
                },
                source: Source::Builtin,
                options: ProbeOptions::default(),
            });
        }
        for def in catalogue.probes() {
            if registry.by_id.contains_key(&def.id) {
                continue;
            }
            let (kind, source, availability, fields) = match (&def.kind, &def.target) {
                (ProbeType::Tracepoint, Target::Tracepoints(attachments))
                    if attachments.len() == 1 =>
                {
                    let a = &attachments[0];
                    match registry.format(&a.category, &a.name) {
                        Ok(format) => {
                            let fields =
                                generic::field_infos(&format, |n| def.field(n).map(str::to_owned));
                            let available = Availability::yes(format!(
                                "tracepoint {} exists on this kernel",
                                format.id
                            ));
                            (
                                ProbeKind::Fields,
                                Source::Tracepoint { format },
                                available,
                                fields,
                            )
                        }
                        Err(reason) => {
                            let format = Arc::new(Format {
                                id: a.tracepoint(),
                                event_id: 0,
                                fields: Vec::new(),
                            });
                            (
                                ProbeKind::Fields,
                                Source::Tracepoint { format },
                                Availability::no(reason),
                                Vec::new(),
                            )
                        }
                    }
                }
                (ProbeType::Function | ProbeType::Uprobe, target) => {
                    let target = match target {
                        Target::Function { name, .. } => Ok(FunctionTarget::Kernel {
                            function: name.clone(),
                            mechanism: Mechanism::Auto,
                        }),
                        Target::Uprobe { binary, symbol, .. } => {
                            find_library(binary).map(|binary| FunctionTarget::User {
                                binary,
                                symbol: symbol.clone(),
                            })
                        }
                        _ => Err(format!("probe {} names no function", def.id)),
                    };
                    let availability = match &target {
                        Ok(target) => functions.availability(target),
                        Err(reason) => Availability::no(reason.clone()),
                    };
                    (
                        ProbeKind::Function,
                        Source::Function {
                            target: target.ok(),
                        },
                        availability,
                        Vec::new(),
                    )
                }
                (ProbeType::ProfileCpu | ProbeType::ProfileOffcpu, _) => (
                    ProbeKind::Stacks,
                    Source::Profile {
                        off_cpu: def.kind == ProbeType::ProfileOffcpu,
                    },
                    // Set by `ProbeSet::new` from the profiler's own test.
                    Availability::no("not tested yet"),
                    Vec::new(),
                ),
                _ => {
                    log::warn!(
                        "probe {} of pack {} has a shape this helper cannot attach; skipped",
                        def.id,
                        def.pack
                    );
                    continue;
                }
            };
            registry.push(Registered {
                info: ProbeInfo {
                    id: def.id.clone(),
                    key: 0,
                    subsystem: def.subsystem.clone(),
                    description: def.summary.clone(),
                    kind,
                    availability,
                    enabled: false,
                    fields,
                },
                source,
                options: ProbeOptions {
                    stacks: false,
                    ..ProbeOptions::default()
                },
            });
        }
        registry
    }

    fn format(&self, category: &str, name: &str) -> Result<Arc<Format>, String> {
        let Some(tracefs) = &self.tracefs else {
            return Err(format!(
                "cannot look up tracepoint {category}:{name}: tracefs is not mounted; \
                 run `sudo mount -t tracefs nodev /sys/kernel/tracing` and restart the helper"
            ));
        };
        tracefs::read_full_format(tracefs, category, name).map(Arc::new)
    }

    fn push(&mut self, probe: Registered) -> u16 {
        let key = self.probes.len() as u16;
        self.by_id.insert(probe.info.id.clone(), key);
        self.probes.push(Registered {
            info: ProbeInfo { key, ..probe.info },
            ..probe
        });
        key
    }

    /// The probe with wire key `key`.
    pub fn get(&self, key: u16) -> Option<&Registered> {
        self.probes.get(usize::from(key))
    }

    /// The key of a registered probe.
    pub fn key_of(&self, id: &str) -> Option<u16> {
        self.by_id.get(id).copied()
    }

    /// The key of probe `id`, registering it first if it is a tracepoint
    /// this kernel has or a function probe id (`func:`, `kprobe:`,
    /// `fentry:`, `uprobe:`). Returns the key and, when it was just
    /// registered, its description for clients. An error is a sentence for
    /// the user.
    pub fn resolve(
        &mut self,
        id: &str,
        functions: &FunctionProbes,
    ) -> Result<(u16, Option<ProbeInfo>), String> {
        if let Some(key) = self.key_of(id) {
            return Ok((key, None));
        }
        if let Some(target) = FunctionTarget::parse(id) {
            return Ok(self.register_function(id, target?, functions));
        }
        let Some((category, name)) = id.split_once(':') else {
            return Err(unknown(id));
        };
        let format = self.format(category, name)?;
        let info = ProbeInfo {
            id: id.to_owned(),
            key: 0,
            subsystem: microscope_catalogue::subsystem_of_category(category).to_owned(),
            description: format!("Tracepoint {id}: every hit, with all its fields."),
            kind: ProbeKind::Fields,
            availability: Availability::yes(format!(
                "tracepoint {id} (id {}) exists on this kernel",
                format.event_id
            )),
            enabled: false,
            fields: generic::field_infos(&format, |_| None),
        };
        let key = self.push(Registered {
            info,
            source: Source::Tracepoint { format },
            options: ProbeOptions::default(),
        });
        let info = self.probes[usize::from(key)].info.clone();
        log::info!("registered tracepoint {id} as probe {key}");
        Ok((key, Some(info)))
    }

    /// Registers a function probe, available or not (an unavailable one is
    /// listed with the reason, and enabling it fails with that reason).
    fn register_function(
        &mut self,
        id: &str,
        target: FunctionTarget,
        functions: &FunctionProbes,
    ) -> (u16, Option<ProbeInfo>) {
        let (subsystem, description) = functions.describe(&target);
        let info = ProbeInfo {
            id: id.to_owned(),
            key: 0,
            subsystem,
            description,
            kind: ProbeKind::Function,
            availability: functions.availability(&target),
            enabled: false,
            fields: Vec::new(),
        };
        let key = self.push(Registered {
            info,
            source: Source::Function {
                target: Some(target),
            },
            options: ProbeOptions::default(),
        });
        let info = self.probes[usize::from(key)].info.clone();
        log::info!("registered function probe {id} as probe {key}");
        (key, Some(info))
    }

    /// Registers pack probe `index` (described by `info`); returns its key.
    pub fn register_pack(&mut self, info: ProbeInfo, index: usize) -> u16 {
        self.push(Registered {
            info,
            source: Source::Pack(index),
            options: ProbeOptions::default(),
        })
    }

    /// The stack samplers: key and whether off-CPU.
    pub fn profiles(&self) -> Vec<(u16, bool)> {
        self.probes
            .iter()
            .filter_map(|p| match p.source {
                Source::Profile { off_cpu } => Some((p.info.key, off_cpu)),
                _ => None,
            })
            .collect()
    }

    /// Records whether probe `key` can work on this kernel.
    pub fn set_availability(&mut self, key: u16, availability: Availability) {
        if let Some(probe) = self.probes.get_mut(usize::from(key)) {
            probe.info.availability = availability;
        }
    }

    /// Changes how probe `key` collects.
    pub fn set_options(&mut self, key: u16, options: ProbeOptions) {
        if let Some(probe) = self.probes.get_mut(usize::from(key)) {
            probe.options = options;
        }
    }

    /// Every probe as a client with `enabled` probes sees it.
    pub fn list(&self, enabled: &BTreeSet<u16>) -> Vec<ProbeInfo> {
        self.probes
            .iter()
            .map(|p| ProbeInfo {
                enabled: enabled.contains(&p.info.key),
                ..p.info.clone()
            })
            .collect()
    }
}

fn unknown(id: &str) -> String {
    format!(
        "unknown probe `{id}`; `microscope probes` lists the probes this helper offers, \
         and any tracepoint can be named as `category:name`"
    )
}
