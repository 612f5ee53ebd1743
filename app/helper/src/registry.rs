//! Every probe this helper knows, by wire key: the probes of the built-in
//! pack (`assets/packs/builtin`, through [`microscope_catalogue`]), and
//! those created when a client first asks for them (any tracepoint of the
//! running kernel).
//!
//! A probe id says where its data comes from:
//!
//! | id | source |
//! |---|---|
//! | a pack probe whose attachments name a `program` | dedicated programs of Microscope's object |
//! | `category:name` (in a pack or not) | any tracepoint, through the generic program |
//! | `func:NAME`, `uprobe:...` in a pack | kernel and user functions |
//! | `profile:cpu`, `profile:offcpu` | the stack samplers |
//!
//! Keys are handed out in registration order and never reused while the
//! helper runs, so a client (or a recording) can keep them.

use crate::funcprobe::{FunctionProbes, FunctionTarget, Mechanism};
use crate::generic;
use crate::tracefs::{self, Format};
use crate::tracer::{Dedicated, Tracer};
use microscope_catalogue::targets::find_library;
use microscope_catalogue::{Attachment, Catalogue, ProbeDef, ProbeType, Target};
use microscope_wire::{Availability, FieldInfo, ProbeInfo, ProbeKind, ProbeOptions};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a probe's data comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Dedicated programs of Microscope's object, registered with the
    /// [`Tracer`] under the probe's key.
    Dedicated,
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

/// What a pack probe becomes, before it has a key.
struct Shape {
    kind: ProbeKind,
    source: Source,
    availability: Availability,
    fields: Vec<FieldInfo>,
}

/// The helper's probes.
pub struct Registry {
    probes: Vec<Registered>,
    by_id: HashMap<String, u16>,
    tracefs: Option<PathBuf>,
}

impl Registry {
    /// The probes of `catalogue`, in its order, with their availability on
    /// this kernel. Probes run by dedicated programs are registered with
    /// `tracer`, which verifies their programs.
    pub fn new(
        tracer: &mut Tracer,
        functions: &FunctionProbes,
        tracefs: Option<PathBuf>,
        catalogue: &Catalogue,
    ) -> Self {
        let mut registry = Self {
            probes: Vec::new(),
            by_id: HashMap::new(),
            tracefs,
        };
        for def in catalogue.probes() {
            registry.register_pack_probe(def, tracer, functions);
        }
        registry
    }

    /// Registers one probe of a pack, unless its id is taken or its shape
    /// is one this helper cannot attach (both logged).
    fn register_pack_probe(
        &mut self,
        def: &ProbeDef,
        tracer: &mut Tracer,
        functions: &FunctionProbes,
    ) {
        if self.by_id.contains_key(&def.id) {
            log::warn!(
                "probe {} of pack {} is defined twice; the first one is kept",
                def.id,
                def.pack
            );
            return;
        }
        if let Some(attachments) = dedicated_attachments(def) {
            self.register_dedicated(def, attachments, tracer);
            return;
        }
        let shape = match (&def.kind, &def.target) {
            (ProbeType::Tracepoint, Target::Tracepoints(attachments)) if attachments.len() == 1 => {
                self.pack_tracepoint(def, &attachments[0])
            }
            (ProbeType::Function | ProbeType::Uprobe, target) => {
                pack_function(def, target, functions)
            }
            (ProbeType::ProfileCpu | ProbeType::ProfileOffcpu, _) => Shape {
                kind: ProbeKind::Stacks,
                source: Source::Profile {
                    off_cpu: def.kind == ProbeType::ProfileOffcpu,
                },
                // Set by `ProbeSet::new` from the profiler's own test.
                availability: Availability::no("not tested yet"),
                fields: Vec::new(),
            },
            _ => {
                log::warn!(
                    "probe {} of pack {} has a shape this helper cannot attach; skipped",
                    def.id,
                    def.pack
                );
                return;
            }
        };
        self.push(Registered {
            info: pack_info(def, shape.kind, shape.availability, shape.fields),
            source: shape.source,
            options: ProbeOptions::default(),
        });
    }

    /// Registers a probe whose every attachment names a dedicated program
    /// of Microscope's object; the tracer checks and loads the programs.
    fn register_dedicated(
        &mut self,
        def: &ProbeDef,
        attachments: Vec<Dedicated>,
        tracer: &mut Tracer,
    ) {
        let kind = match def.kind {
            ProbeType::SyscallCounts => ProbeKind::SyscallCounts,
            ProbeType::SyscallLatency => ProbeKind::SyscallLatency,
            _ => ProbeKind::Stream,
        };
        let key = self.push(Registered {
            info: pack_info(def, kind, Availability::no("not checked yet"), Vec::new()),
            source: Source::Dedicated,
            options: ProbeOptions::default(),
        });
        let availability = tracer.register(key, &def.id, attachments);
        self.set_availability(key, availability);
    }

    /// A pack probe on one tracepoint, decoded by the generic program.
    fn pack_tracepoint(&self, def: &ProbeDef, a: &Attachment) -> Shape {
        match self.format(&a.category, &a.name) {
            Ok(format) => Shape {
                kind: ProbeKind::Fields,
                fields: generic::field_infos(&format, |n| def.field(n).map(str::to_owned)),
                availability: Availability::yes(format!(
                    "tracepoint {} exists on this kernel",
                    format.id
                )),
                source: Source::Tracepoint { format },
            },
            Err(reason) => Shape {
                kind: ProbeKind::Fields,
                source: Source::Tracepoint {
                    format: Arc::new(Format {
                        id: a.tracepoint(),
                        event_id: 0,
                        fields: Vec::new(),
                    }),
                },
                availability: Availability::no(reason),
                fields: Vec::new(),
            },
        }
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

/// The attachments of `def` as dedicated programs, if every one names a
/// program (and there is at least one).
fn dedicated_attachments(def: &ProbeDef) -> Option<Vec<Dedicated>> {
    let attachments = def.attachments();
    if attachments.is_empty() {
        return None;
    }
    attachments
        .iter()
        .map(|a| {
            Some(Dedicated {
                program: a.program.clone()?,
                category: a.category.clone(),
                name: a.name.clone(),
            })
        })
        .collect()
}

/// A pack probe on a kernel or user function.
fn pack_function(def: &ProbeDef, target: &Target, functions: &FunctionProbes) -> Shape {
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
    Shape {
        kind: ProbeKind::Function,
        source: Source::Function {
            target: target.ok(),
        },
        availability,
        fields: Vec::new(),
    }
}

/// What clients see of pack probe `def` (its key is set by `push`).
fn pack_info(
    def: &ProbeDef,
    kind: ProbeKind,
    availability: Availability,
    fields: Vec<FieldInfo>,
) -> ProbeInfo {
    ProbeInfo {
        id: def.id.clone(),
        key: 0,
        subsystem: def.subsystem.clone(),
        description: def.summary.clone(),
        kind,
        availability,
        enabled: false,
        fields,
    }
}

fn unknown(id: &str) -> String {
    format!(
        "unknown probe `{id}`; `microscope probes` lists the probes this helper offers, \
         and any tracepoint can be named as `category:name`"
    )
}
