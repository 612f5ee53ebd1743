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
//! helper runs, so a client (or a recording) can keep them: a key never
//! names two probes. Probes created on demand (any tracepoint, `func:`,
//! `kprobe:`, `fentry:`, `uprobe:`) are at most [`MAX_ON_DEMAND_PROBES`] at
//! once and are forgotten when no client uses them any more; naming one
//! again registers it under a new key. When the keys run out (65 536
//! registrations), new probes are refused with a sentence asking for a
//! restart of the helper.

use crate::auth::Peer;
use crate::funcprobe::{FunctionProbes, FunctionTarget, Mechanism};
use crate::generic;
use crate::tracefs::{self, Format};
use crate::tracer::{Dedicated, Tracer};
use microscope_catalogue::targets::find_library;
use microscope_catalogue::{Attachment, Catalogue, ProbeDef, ProbeType, Target};
use microscope_wire::{Availability, FieldInfo, ProbeInfo, ProbeKind, ProbeOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// A probe of a third-party pack: index into [`crate::pack::PackProbes`].
    Pack(usize),
    /// On-CPU or off-CPU stack sampling.
    Profile {
        /// Off-CPU (blocked time) rather than on-CPU samples.
        off_cpu: bool,
    },
}

/// Most probes created on demand registered at once.
pub const MAX_ON_DEMAND_PROBES: usize = 1024;
/// Longest probe id accepted (a uprobe's path included).
pub const MAX_PROBE_ID_BYTES: usize = 1024;

/// One registered probe.
#[derive(Clone, Debug)]
pub struct Registered {
    /// What clients see (with `enabled` false; set per client when listing).
    pub info: ProbeInfo,
    /// Where its data comes from.
    pub source: Source,
    /// How it collects.
    pub options: ProbeOptions,
    /// Created for a client rather than from a pack: forgotten when unused.
    pub on_demand: bool,
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
    probes: BTreeMap<u16, Registered>,
    by_id: HashMap<String, u16>,
    tracefs: Option<PathBuf>,
    /// The next key to hand out (past `u16::MAX`: none left).
    next_key: u32,
    /// How many probes created on demand are registered.
    on_demand: usize,
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
            probes: BTreeMap::new(),
            by_id: HashMap::new(),
            tracefs,
            next_key: 0,
            on_demand: 0,
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
        let registered = self.push(Registered {
            info: pack_info(def, shape.kind, shape.availability, shape.fields),
            source: shape.source,
            options: ProbeOptions::default(),
            on_demand: false,
        });
        if let Err(reason) = registered {
            log::warn!("probe {} of pack {} skipped: {reason}", def.id, def.pack);
        }
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
        let registered = self.push(Registered {
            info: pack_info(def, kind, Availability::no("not checked yet"), Vec::new()),
            source: Source::Dedicated,
            options: ProbeOptions::default(),
            on_demand: false,
        });
        let key = match registered {
            Ok(key) => key,
            Err(reason) => {
                log::warn!("probe {} of pack {} skipped: {reason}", def.id, def.pack);
                return;
            }
        };
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

    /// Registers `probe` under the next key; refused when keys or room for
    /// probes created on demand ran out.
    fn push(&mut self, probe: Registered) -> Result<u16, String> {
        let key = u16::try_from(self.next_key).map_err(|_| {
            "this helper has registered 65 536 probes since it started, the most probe \
             keys it has; ask an administrator to restart it (`systemctl restart \
             microscoped`)"
                .to_owned()
        })?;
        if probe.on_demand {
            if self.on_demand >= MAX_ON_DEMAND_PROBES {
                return Err(format!(
                    "cannot create probe {}: {MAX_ON_DEMAND_PROBES} probes created on demand \
                     are in use already, the most this helper keeps; disable some first",
                    probe.info.id
                ));
            }
            self.on_demand += 1;
        }
        self.next_key += 1;
        self.by_id.insert(probe.info.id.clone(), key);
        self.probes.insert(
            key,
            Registered {
                info: ProbeInfo { key, ..probe.info },
                ..probe
            },
        );
        Ok(key)
    }

    /// The probe with wire key `key`.
    pub fn get(&self, key: u16) -> Option<&Registered> {
        self.probes.get(&key)
    }

    /// Forgets probe `key` if it was created on demand; its key is never
    /// handed out again. Whether it was forgotten.
    pub fn forget(&mut self, key: u16) -> bool {
        if !self.probes.get(&key).is_some_and(|p| p.on_demand) {
            return false;
        }
        if let Some(probe) = self.probes.remove(&key) {
            self.by_id.remove(&probe.info.id);
            self.on_demand -= 1;
            log::info!("forgot probe {} ({key}): no client uses it", probe.info.id);
        }
        true
    }

    /// Forgets every probe created on demand for which `in_use` is false.
    pub fn forget_unused(&mut self, in_use: impl Fn(u16) -> bool) {
        let unused: Vec<u16> = self
            .probes
            .values()
            .filter(|p| p.on_demand && !in_use(p.info.key))
            .map(|p| p.info.key)
            .collect();
        for key in unused {
            self.forget(key);
        }
    }

    /// Whether no more probes can be created on demand until some are forgotten.
    pub fn on_demand_full(&self) -> bool {
        self.on_demand >= MAX_ON_DEMAND_PROBES
    }

    /// The key of a registered probe.
    pub fn key_of(&self, id: &str) -> Option<u16> {
        self.by_id.get(id).copied()
    }

    /// The key of probe `id`, registering it first if it is a tracepoint
    /// this kernel has or a function probe id (`func:`, `kprobe:`,
    /// `fentry:`, `uprobe:`; a uprobe's binary is checked as `peer`).
    /// Returns the key and, when it was just registered, its description
    /// for clients. An error is a sentence for the user.
    pub fn resolve(
        &mut self,
        id: &str,
        functions: &FunctionProbes,
        peer: &Peer,
    ) -> Result<(u16, Option<ProbeInfo>), String> {
        if let Some(key) = self.key_of(id) {
            return Ok((key, None));
        }
        if id.len() > MAX_PROBE_ID_BYTES {
            return Err(format!(
                "a probe id of {} bytes is longer than the {MAX_PROBE_ID_BYTES} this helper \
                 accepts",
                id.len()
            ));
        }
        if let Some(target) = FunctionTarget::parse(id) {
            return self.register_function(id, target?, functions, peer);
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
            on_demand: true,
        })?;
        let info = self.probes.get(&key).map(|p| p.info.clone());
        log::info!("registered tracepoint {id} as probe {key}");
        Ok((key, info))
    }

    /// Registers a function probe, available or not (an unavailable one is
    /// listed with the reason, and enabling it fails with that reason).
    fn register_function(
        &mut self,
        id: &str,
        target: FunctionTarget,
        functions: &FunctionProbes,
        peer: &Peer,
    ) -> Result<(u16, Option<ProbeInfo>), String> {
        let (subsystem, description) = functions.describe(&target);
        let info = ProbeInfo {
            id: id.to_owned(),
            key: 0,
            subsystem,
            description,
            kind: ProbeKind::Function,
            availability: functions.availability(&target, peer),
            enabled: false,
            fields: Vec::new(),
        };
        let key = self.push(Registered {
            info,
            source: Source::Function {
                target: Some(target),
            },
            options: ProbeOptions::default(),
            on_demand: true,
        })?;
        let info = self.probes.get(&key).map(|p| p.info.clone());
        log::info!("registered function probe {id} as probe {key}");
        Ok((key, info))
    }

    /// Registers pack probe `index` (described by `info`); returns its key.
    pub fn register_pack(&mut self, info: ProbeInfo, index: usize) -> Result<u16, String> {
        self.push(Registered {
            info,
            source: Source::Pack(index),
            options: ProbeOptions::default(),
            on_demand: false,
        })
    }

    /// The stack samplers: key and whether off-CPU.
    pub fn profiles(&self) -> Vec<(u16, bool)> {
        self.probes
            .values()
            .filter_map(|p| match p.source {
                Source::Profile { off_cpu } => Some((p.info.key, off_cpu)),
                _ => None,
            })
            .collect()
    }

    /// Records whether probe `key` can work on this kernel.
    pub fn set_availability(&mut self, key: u16, availability: Availability) {
        if let Some(probe) = self.probes.get_mut(&key) {
            probe.info.availability = availability;
        }
    }

    /// Changes how probe `key` collects.
    pub fn set_options(&mut self, key: u16, options: ProbeOptions) {
        if let Some(probe) = self.probes.get_mut(&key) {
            probe.options = options;
        }
    }

    /// Every probe as a client with `enabled` probes sees it.
    pub fn list(&self, enabled: &BTreeSet<u16>) -> Vec<ProbeInfo> {
        self.probes
            .values()
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
    // The pack is the helper's own: its targets are checked as root.
    let availability = match &target {
        Ok(target) => functions.availability(target, &Peer::root()),
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
