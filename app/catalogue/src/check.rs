//! What `microscope check-pack DIR` says about a pack, without root: its
//! manifest against the built-in pack, each object read as aya would read
//! it, each `bpf` probe against its object, and each attach target against
//! what this machine's kernel shows an unprivileged user (its BTF, the
//! kprobe PMU, `/proc/kallsyms` names, tracefs when readable).

use std::path::Path;

use crate::bpf::{AttachPoint, BpfProbe};
use crate::object::{self, ObjectInfo};
use crate::{Catalogue, CatalogueError, Pack, Target};

/// The verdict on one `bpf` probe of a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeCheck {
    /// Probe id.
    pub id: String,
    /// Problems with its object, programs, knobs or maps (empty: none).
    pub problems: Vec<String>,
    /// For each program slot, which target this kernel would use, or why
    /// none (or `not checked: ...`).
    pub targets: Vec<String>,
}

/// A whole pack's check.
#[derive(Debug)]
pub struct PackCheck {
    /// The pack as read.
    pub pack: Pack,
    /// Objects that cannot be loaded at all, each a sentence.
    pub object_problems: Vec<String>,
    /// Each `bpf` probe.
    pub probes: Vec<ProbeCheck>,
}

impl PackCheck {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.object_problems.is_empty() && self.probes.iter().all(|p| p.problems.is_empty())
    }
}

/// Checks the pack in `dir`. The error is the manifest's first problem
/// (with file, line and column); object and probe problems are in the
/// result.
pub fn check_pack_dir(dir: &Path) -> Result<PackCheck, CatalogueError> {
    let pack = Pack::load_dir(dir)?;
    Catalogue::from_packs(vec![Pack::builtin(), pack.clone()])?;
    let kernel = KernelView::read();
    let mut object_problems = Vec::new();
    let mut objects: Vec<(String, ObjectInfo)> = Vec::new();
    for def in pack.objects() {
        let path = dir.join(&def.file);
        match std::fs::read(&path) {
            Err(err) => object_problems.push(format!(
                "cannot read the object {} ({err}); build it first (see docs/packs.md)",
                path.display()
            )),
            Ok(bytes) => match object::prepare(def, bytes)
                .and_then(|bytes| object::inspect(&def.file, &bytes))
            {
                Ok(info) => objects.push((def.id.clone(), info)),
                Err(problems) => object_problems.extend(problems),
            },
        }
    }
    let mut probes = Vec::new();
    for def in pack.probes() {
        let Target::Bpf(bpf) = &def.target else {
            continue;
        };
        let problems = match objects.iter().find(|(id, _)| *id == bpf.object) {
            Some((_, info)) => object::check_probe(&pack.info().id, &def.id, bpf, info),
            None => vec![format!(
                "its object `{}` could not be read (see above)",
                bpf.object
            )],
        };
        probes.push(ProbeCheck {
            id: def.id.clone(),
            problems,
            targets: targets(bpf, &kernel),
        });
    }
    Ok(PackCheck {
        pack,
        object_problems,
        probes,
    })
}

/// Which target of each slot this kernel would take.
fn targets(bpf: &BpfProbe, kernel: &KernelView) -> Vec<String> {
    bpf.attach
        .iter()
        .map(|slot| {
            let mut unknown = Vec::new();
            let chosen = object::choose(&slot.choices, |point| match kernel.allows(point) {
                Allowed::Yes => Ok(()),
                Allowed::No(why) => Err(why),
                Allowed::Unknown(why) => {
                    unknown.push(format!("{point}: {why}"));
                    // Unknown counts as allowed: the helper decides.
                    Ok(())
                }
            });
            match chosen {
                Ok(choice) if unknown.is_empty() => {
                    format!("{} → {}", choice.program, choice.point)
                }
                Ok(choice) => format!(
                    "{} → {} (not checked: {})",
                    choice.program,
                    choice.point,
                    unknown.join("; ")
                ),
                Err(why) => format!("unavailable on this kernel: {why}"),
            }
        })
        .collect()
}

enum Allowed {
    Yes,
    No(String),
    Unknown(String),
}

/// What an unprivileged user can learn about the running kernel.
struct KernelView {
    btf: Option<aya_obj::btf::Btf>,
    tracefs: Option<&'static Path>,
    kprobes: bool,
    kallsyms: Option<String>,
}

impl KernelView {
    fn read() -> Self {
        let tracefs = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .into_iter()
            .map(Path::new)
            .find(|p| std::fs::read_dir(p.join("events")).is_ok());
        Self {
            btf: aya_obj::btf::Btf::from_sys_fs().ok(),
            tracefs,
            kprobes: Path::new("/sys/bus/event_source/devices/kprobe/type").exists(),
            kallsyms: std::fs::read_to_string("/proc/kallsyms").ok(),
        }
    }

    fn in_btf(&self, name: &str, kind: aya_obj::btf::BtfKind) -> Option<bool> {
        self.btf
            .as_ref()
            .map(|btf| btf.id_by_type_name_kind(name, kind).is_ok())
    }

    fn tracepoint(&self, category: &str, name: &str) -> Allowed {
        match self.tracefs {
            Some(t) if t.join("events").join(category).join(name).is_dir() => Allowed::Yes,
            Some(_) => Allowed::No(format!("this kernel has no tracepoint `{category}:{name}`")),
            // Every real tracepoint has a `btf_trace_NAME` type in the
            // kernel's BTF, which anyone may read (syscall events do not).
            None => match self.in_btf(&format!("btf_trace_{name}"), aya_obj::btf::BtfKind::Typedef)
            {
                Some(true) => Allowed::Yes,
                _ => Allowed::Unknown("tracefs is not readable without root".to_owned()),
            },
        }
    }

    fn allows(&self, point: &AttachPoint) -> Allowed {
        use aya_obj::btf::BtfKind;
        let raw_tracepoint =
            |name: &str| match self.in_btf(&format!("btf_trace_{name}"), BtfKind::Typedef) {
                Some(true) => Allowed::Yes,
                Some(false) => Allowed::No(format!(
                    "this kernel has no tracepoint named `{name}` (no btf_trace_{name} in its BTF)"
                )),
                None => Allowed::Unknown(
                    "the kernel's BTF (/sys/kernel/btf/vmlinux) could not be read".to_owned(),
                ),
            };
        match point {
            AttachPoint::Tracepoint { category, name } => self.tracepoint(category, name),
            AttachPoint::TpBtf(name) => {
                if self.btf.is_none() {
                    return Allowed::No(
                        "tp_btf programs need kernel BTF, which this kernel does not expose"
                            .to_owned(),
                    );
                }
                raw_tracepoint(name)
            }
            AttachPoint::RawTp(name) => raw_tracepoint(name),
            AttachPoint::Kprobe(function) | AttachPoint::Kretprobe(function) => {
                if !self.kprobes {
                    return Allowed::No(
                        "this kernel is built without CONFIG_KPROBES (no kprobe PMU)".to_owned(),
                    );
                }
                match &self.kallsyms {
                    Some(text)
                        if text
                            .lines()
                            .any(|l| l.split_whitespace().nth(2) == Some(function.as_str())) =>
                    {
                        Allowed::Yes
                    }
                    Some(_) => Allowed::No(format!(
                        "this kernel has no function `{function}` in /proc/kallsyms"
                    )),
                    None => Allowed::Unknown("/proc/kallsyms is not readable".to_owned()),
                }
            }
            AttachPoint::Fentry(function) | AttachPoint::Fexit(function) => {
                match self.in_btf(function, BtfKind::Func) {
                    Some(true) => Allowed::Unknown(
                        "the function is in the kernel's BTF, but whether the kernel allows fentry is only known when loading (the helper tests it)".to_owned(),
                    ),
                    Some(false) => Allowed::No(format!("the function `{function}` is not in the kernel's BTF")),
                    None => Allowed::No("fentry programs need kernel BTF, which this kernel does not expose".to_owned()),
                }
            }
            AttachPoint::Uprobe { binary, symbol, .. } => {
                match crate::targets::find_library(binary) {
                    Err(why) => Allowed::No(why),
                    Ok(path) => match crate::targets::binary_has_function(&path, symbol) {
                        Ok(true) => Allowed::Yes,
                        Ok(false) => Allowed::No(format!(
                            "{} has no function symbol `{symbol}`",
                            path.display()
                        )),
                        Err(why) => Allowed::Unknown(why),
                    },
                }
            }
            AttachPoint::PerfEvent { .. } => Allowed::Yes,
        }
    }
}
