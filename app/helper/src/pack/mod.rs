//! Third-party probe packs: BPF objects anyone can write (Rust with
//! aya-ebpf, or C in the libbpf style), loaded from trusted directories,
//! described by their manifest, decoded into the wire's own types.
//!
//! At start the helper reads every pack under the trusted directories
//! ([`trust`]), checks its manifest and objects ([`microscope_catalogue::object`]),
//! picks for each program the first attach target the kernel allows, and
//! loads each probe once to hear the verifier's verdict (then unloads it).
//! A probe that fails any step is listed unavailable with the reason; other
//! packs are unaffected. Enabling a probe loads a fresh instance of its
//! object with its knobs, attaches it, and opens its outputs; disabling it
//! drops the instance, which detaches everything.
//!
//! - [`trust`]: which directories and files may be read;
//! - [`decode`]: record bytes → wire values;
//! - [`rawmap`]: reading maps whose layout is known only from the manifest;
//! - [`instance`]: one loaded, attached probe and its outputs.

mod decode;
mod instance;
mod rawmap;
mod stacks;
pub mod trust;

use microscope_wire::ProbeKey;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use microscope_catalogue::{
    AttachChoice, AttachPoint, BpfProbe, Catalogue, FieldType, KnobValue, OutputKind, Pack,
    ProbeDef, Target, object,
};
use microscope_wire::{
    Availability, Capabilities, Event, FieldInfo, PackData, ProbeInfo, ProbeKind, ProbeStats,
};

use instance::Instance;

/// One probe of a pack, as registered.
pub struct PackProbe {
    /// Its manifest entry.
    pub def: ProbeDef,
    /// Its programs, knobs and outputs.
    pub bpf: BpfProbe,
    /// The object's bytes, read once from the trusted directory.
    object: Arc<Vec<u8>>,
    /// The object's path, for messages.
    object_path: PathBuf,
    /// The attach target chosen for each program slot.
    chosen: Vec<AttachChoice>,
    /// Sizes of the object's `.rodata` globals, for knobs.
    knob_sizes: HashMap<String, u64>,
    /// Whether it can be enabled, and why not.
    pub availability: Availability,
    /// The verifier's whole log when it refused the probe.
    verifier_log: Option<String>,
}

/// Every pack probe, and the instances of those enabled.
pub struct PackProbes {
    probes: Vec<PackProbe>,
    pack_ids: Vec<String>,
    /// Packs refused as a whole, each a sentence.
    problems: Vec<String>,
    running: HashMap<ProbeKey, Instance>,
    /// The process filter's pid, for knobs bound to it (0 = none).
    filter_pid: u32,
    btf: Option<aya::Btf>,
}

impl PackProbes {
    /// No packs.
    pub fn empty() -> Self {
        Self {
            probes: Vec::new(),
            pack_ids: Vec::new(),
            problems: Vec::new(),
            running: HashMap::new(),
            filter_pid: 0,
            btf: None,
        }
    }

    /// Reads the packs under `dirs` (`(dir, given on the command line)`),
    /// checks them, and tries each probe on this kernel.
    pub fn load(dirs: &[(PathBuf, bool)], tracefs: Option<&Path>, caps: &Capabilities) -> Self {
        let mut packs = Self::empty();
        packs.btf = aya::Btf::from_sys_fs().ok();
        let (pack_dirs, problems) = trust::pack_dirs(dirs);
        packs.problems.extend(problems);
        for dir in pack_dirs {
            if let Err(problem) = packs.add_pack(&dir, tracefs, caps) {
                log::warn!("{problem}");
                packs.problems.push(problem);
            }
        }
        for p in &packs.probes {
            if p.availability.available {
                log::info!("pack probe {} ready: {}", p.def.id, p.availability.reason);
            } else {
                log::warn!(
                    "pack probe {} unavailable: {}",
                    p.def.id,
                    p.availability.reason
                );
            }
        }
        packs
    }

    fn add_pack(
        &mut self,
        dir: &Path,
        tracefs: Option<&Path>,
        caps: &Capabilities,
    ) -> Result<(), String> {
        trust::check_trusted(dir)
            .map_err(|why| format!("pack {} refused: {why}", dir.display()))?;
        for entry in
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        {
            let path = entry
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
                .path();
            trust::check_trusted(&path)
                .map_err(|why| format!("pack {} refused: {why}", dir.display()))?;
        }
        let pack =
            Pack::load_dir(dir).map_err(|e| format!("pack {} refused: {e}", dir.display()))?;
        let pack_id = pack.info().id.clone();
        if self.pack_ids.contains(&pack_id) || pack_id == "builtin" {
            return Err(format!(
                "pack {} refused: a pack with id `{pack_id}` is already loaded",
                dir.display()
            ));
        }
        // Checked against the built-in pack: its subsystems and layers.
        Catalogue::from_packs(vec![Pack::builtin(), pack.clone()])
            .map_err(|e| format!("pack {} refused: {e}", dir.display()))?;
        let mut objects = HashMap::new();
        for def in pack.objects() {
            let path = dir.join(&def.file);
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "pack `{pack_id}` refused: cannot read its object {}: {e}",
                    path.display()
                )
            })?;
            let info = object::prepare(def, bytes)
                .and_then(|bytes| Ok((object::inspect(&def.file, &bytes)?, bytes)))
                .map_err(|problems| format!("pack `{pack_id}` refused: {}", problems.join("; ")));
            let (info, bytes) = info?;
            objects.insert(def.id.clone(), (Arc::new(bytes), path, info));
        }
        for def in pack.probes() {
            let Target::Bpf(bpf) = &def.target else {
                log::warn!(
                    "probe {} of pack {pack_id} is not `type = \"bpf\"`; packs loaded by the helper bring their own programs, so it is skipped",
                    def.id
                );
                continue;
            };
            let Some((bytes, path, info)) = objects.get(&bpf.object) else {
                continue;
            };
            let mut probe = PackProbe {
                def: def.clone(),
                bpf: bpf.clone(),
                object: bytes.clone(),
                object_path: path.clone(),
                chosen: Vec::new(),
                knob_sizes: info.rodata.clone().into_iter().collect(),
                availability: Availability::no("not checked yet"),
                verifier_log: None,
            };
            let problems = object::check_probe(&pack_id, &def.id, bpf, info);
            probe.availability = if !problems.is_empty() {
                Availability::no(problems.join("; "))
            } else {
                match choose_all(bpf, tracefs, caps) {
                    Err(why) => Availability::no(why),
                    Ok(chosen) => {
                        probe.chosen = chosen;
                        match instance::trial_load(&probe, self.btf.as_ref()) {
                            Ok(()) => Availability::yes(format!(
                                "the verifier accepted it ({})",
                                probe
                                    .chosen
                                    .iter()
                                    .map(|c| c.point.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                            Err(refusal) => {
                                probe.verifier_log = refusal.log;
                                Availability::no(refusal.verdict)
                            }
                        }
                    }
                }
            };
            self.probes.push(probe);
        }
        self.pack_ids.push(pack_id);
        Ok(())
    }

    /// Every pack probe, by index.
    pub fn probes(&self) -> &[PackProbe] {
        &self.probes
    }

    /// Packs refused as a whole, each a sentence.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The ids of the loaded packs.
    pub fn pack_ids(&self) -> &[String] {
        &self.pack_ids
    }

    /// What clients see of probe `index` (key set by the registry).
    pub fn info(&self, index: usize) -> Option<ProbeInfo> {
        let p = self.probes.get(index)?;
        let events = p.bpf.outputs.iter().find_map(|o| match &o.kind {
            OutputKind::Events { record } => Some(record),
            _ => None,
        });
        let fields = events
            .map(|record| {
                record
                    .fields
                    .iter()
                    .map(|f| FieldInfo {
                        name: f.name.clone(),
                        c_type: match (&f.decode, f.ty) {
                            (microscope_catalogue::Decode::Plain, ty) => ty.to_string(),
                            (decode, ty) => format!("{ty} ({})", decode.as_str()),
                        },
                        meaning: f.meaning.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let description = match &p.bpf.explanation {
            Some(more) => format!("{} {more}", p.def.summary),
            None => p.def.summary.clone(),
        };
        Some(ProbeInfo {
            id: p.def.id.clone(),
            key: 0,
            subsystem: p.def.subsystem.clone(),
            description,
            kind: if events.is_some() {
                ProbeKind::Fields
            } else if p
                .bpf
                .outputs
                .iter()
                .any(|o| matches!(&o.kind, OutputKind::Stacks(spec) if spec.unit.is_time()))
            {
                // The catalogue refuses time stacks beside events.
                ProbeKind::TimeStacks
            } else {
                ProbeKind::Pack
            },
            availability: p.availability.clone(),
            enabled: false,
            fields,
        })
    }

    /// The whole verifier log of probe `index`, if the verifier refused it.
    pub fn verifier_log(&self, index: usize) -> Option<&str> {
        self.probes.get(index)?.verifier_log.as_deref()
    }

    /// Loads and attaches probe `index` as wire key `key`.
    pub fn attach(&mut self, key: ProbeKey, index: usize) -> Result<(), String> {
        let Some(probe) = self.probes.get(index) else {
            return Err(format!("no pack probe {index}"));
        };
        if self.running.contains_key(&key) {
            return Ok(());
        }
        let instance = Instance::start(probe, key, index, self.filter_pid, self.btf.as_ref())?;
        self.running.insert(key, instance);
        Ok(())
    }

    /// Run-time statistics of the programs of running probe `key`.
    pub fn program_runs(&self, key: ProbeKey) -> Vec<crate::cost::ProgramRun> {
        self.running
            .get(&key)
            .map_or_else(Vec::new, Instance::program_runs)
    }

    /// Detaches probe `key` (drops its instance).
    pub fn detach(&mut self, key: ProbeKey) -> bool {
        self.running.remove(&key).is_some()
    }

    /// Detaches every probe; returns how many were attached.
    pub fn detach_all(&mut self) -> usize {
        let n = self.running.len();
        self.running.clear();
        n
    }

    /// Sets the pid knobs bound to the process filter; reloads running
    /// probes that have one.
    pub fn set_filter_pid(&mut self, pid: u32) -> Result<(), String> {
        if pid == self.filter_pid {
            return Ok(());
        }
        self.filter_pid = pid;
        let bound: Vec<(ProbeKey, usize)> = self
            .running
            .iter()
            .filter(|(_, i)| {
                self.probes
                    .get(i.index())
                    .is_some_and(|p| p.bpf.knobs.iter().any(|k| k.value == KnobValue::FilterPid))
            })
            .map(|(key, i)| (*key, i.index()))
            .collect();
        for (key, index) in bound {
            self.running.remove(&key);
            self.attach(key, index)?;
        }
        Ok(())
    }

    /// Drains up to `max` events of every running probe into `out`.
    pub fn drain(&mut self, max: usize, out: &mut Vec<Event>) -> usize {
        let mut n = 0;
        for instance in self.running.values_mut() {
            if n >= max {
                break;
            }
            if let Some(probe) = self.probes.get(instance.index()) {
                n += instance.drain(probe, max - n, out);
            }
        }
        n
    }

    /// Whether running probe `key` counts stacks.
    pub fn has_stacks(&self, key: ProbeKey) -> bool {
        self.running.get(&key).is_some_and(Instance::has_stacks)
    }

    /// What the stack counts of every running probe grew by since the last
    /// call (see [`stacks`]), as addresses for the symbolizer.
    pub fn take_stacks(&mut self) -> Vec<crate::raw_stack::RawStack> {
        self.running
            .values_mut()
            .flat_map(Instance::take_stacks)
            .collect()
    }

    /// Events lost in the kernel, per running probe with events.
    pub fn kernel_drops(&self) -> Vec<ProbeStats> {
        self.running
            .iter()
            .filter(|(_, i)| i.has_events())
            .map(|(key, i)| ProbeStats {
                probe: *key,
                kernel_drops: i.lost(),
                client_drops: 0,
            })
            .collect()
    }

    /// The counters and histograms of the running probes in `enabled`.
    pub fn data_for(&self, enabled: &BTreeSet<ProbeKey>, ts_ns: u64) -> Vec<PackData> {
        enabled
            .iter()
            .filter_map(|key| {
                let instance = self.running.get(key)?;
                let probe = self.probes.get(instance.index())?;
                instance.read_maps(probe, ts_ns)
            })
            .collect()
    }
}

/// The first allowed attach target of each program slot.
fn choose_all(
    bpf: &BpfProbe,
    tracefs: Option<&Path>,
    caps: &Capabilities,
) -> Result<Vec<AttachChoice>, String> {
    bpf.attach
        .iter()
        .map(|slot| object::choose(&slot.choices, |point| allowed(point, tracefs, caps)).cloned())
        .collect()
}

/// Whether the running kernel can attach at `point`, and if not why.
fn allowed(point: &AttachPoint, tracefs: Option<&Path>, caps: &Capabilities) -> Result<(), String> {
    let tracepoint_exists = |category: Option<&str>, name: &str| -> Result<(), String> {
        let Some(tracefs) = tracefs else {
            return Err(caps.tracefs.reason.clone());
        };
        let events = tracefs.join("events");
        let found = match category {
            Some(category) => events.join(category).join(name).is_dir(),
            None => std::fs::read_dir(&events)
                .map(|dirs| {
                    dirs.filter_map(Result::ok)
                        .any(|d| d.path().join(name).is_dir())
                })
                .unwrap_or(false),
        };
        if found {
            Ok(())
        } else {
            Err(format!(
                "this kernel has no tracepoint `{}`",
                category.map_or(name.to_owned(), |c| format!("{c}:{name}"))
            ))
        }
    };
    let need = |a: &Availability| {
        if a.available {
            Ok(())
        } else {
            Err(a.reason.clone())
        }
    };
    match point {
        AttachPoint::Tracepoint { category, name } => tracepoint_exists(Some(category), name),
        AttachPoint::TpBtf(name) => {
            need(&caps.btf)?;
            tracepoint_exists(None, name)
        }
        AttachPoint::RawTp(name) => tracepoint_exists(None, name),
        AttachPoint::Kprobe(_) | AttachPoint::Kretprobe(_) => need(&caps.kprobes),
        AttachPoint::Fentry(_) | AttachPoint::Fexit(_) => need(&caps.fentry),
        AttachPoint::Uprobe { binary, .. } => {
            need(&caps.uprobes)?;
            microscope_catalogue::targets::find_library(binary).map(|_| ())
        }
        AttachPoint::PerfEvent { .. } => Ok(()),
    }
}

/// Whether field type `ty` of an event is an integer (for the header roles).
fn is_int(ty: FieldType) -> bool {
    matches!(ty, FieldType::Int { .. })
}
