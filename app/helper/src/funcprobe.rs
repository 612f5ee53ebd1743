//! Function probes: how often any kernel or user function is called and how
//! long each call takes, counted in the kernel.
//!
//! Every probed function gets its own small instance of the `funcprobe`
//! eBPF object (`ebpf/src/bin/funcprobe.rs`): its maps hold only that
//! function's counts, so the kernel needs no per-call key lookup, and
//! detaching is dropping the instance (aya closes the links and programs).
//! Only the two programs the mechanism needs are loaded and attached:
//!
//! | target | entry | exit |
//! |---|---|---|
//! | kernel, fentry | `fn_fentry` (BPF trampoline) | `fn_fexit` |
//! | kernel, kprobe | `fn_kprobe` | `fn_kretprobe` |
//! | user | `fn_uprobe` | `fn_uretprobe` |
//!
//! fentry is cheaper than a kprobe (a direct call instead of a breakpoint
//! trap) and is chosen by [`Mechanism::Auto`] when the kernel allows it and
//! the function is in its BTF; kprobes reach more functions (any text symbol
//! in `/proc/kallsyms` that is not on the kprobe blacklist).
//!
//! Names are checked against the running kernel before anything is loaded,
//! so the GUI can explain "not available" without trying: BTF for fentry,
//! `/proc/kallsyms` for kprobes, and the ELF symbol tables of the binary for
//! uprobes (through the `object` crate).
//!
//! A uprobe's binary is named by a client, so it is opened as that client
//! would open it, once, and used only through that descriptor (see
//! [`crate::target_file`]): the function's file offset is read from it and
//! the uprobe is attached through `/proc/self/fd/N` at that offset. Every
//! client enabling a uprobe has its own access checked the same way, and
//! must find the very file (device and inode) the probe is attached to.

use crate::auth::Peer;
use crate::target_file::{UprobeFile, open_uprobe_target};
use crate::tracer::describe_load_error;
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeScope};
use aya::programs::{FEntry, FExit, KProbe, ProgramError, UProbe};
use aya::{Btf, Ebpf, EbpfLoader};
use microscope_wire::ProbeKey;
use microscope_wire::{Availability, Capabilities, FunctionStats};
use probes_common::{FilterTable, LATENCY_BUCKETS};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most function probes attached at once: each is an object instance with
/// its own maps (kernel memory), so a client naming many functions is
/// refused past this.
pub const MAX_ATTACHED_FUNCTIONS: usize = 128;

/// The function probe object built from `ebpf/src/bin/funcprobe.rs`.
static FUNCPROBE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/funcprobe"));

/// A fresh instance of the function probe object, its programs not loaded.
pub(crate) fn load_object() -> Result<Ebpf, String> {
    load_object_with(&mut object_loader())
}

/// A loader for the function probe object. `EbpfLoader::new` parses the
/// kernel's BTF (~85 ms here, seconds in an emulated VM) for CO-RE
/// relocations, which this object has none of, so that copy is dropped; the
/// loader is made once and reused for every instance.
fn object_loader() -> EbpfLoader<'static> {
    let mut loader = EbpfLoader::new();
    loader.btf(None);
    loader
}

fn load_object_with(loader: &mut EbpfLoader<'static>) -> Result<Ebpf, String> {
    loader.load(FUNCPROBE_OBJECT).map_err(|err| {
        format!(
            "the kernel refused the function probe object ({}); the helper must run as root \
             (or with CAP_BPF and CAP_PERFMON)",
            error_chain(&err)
        )
    })
}

/// Where the kernel publishes its own BTF.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Every kernel symbol with its type; text symbols are functions.
const KALLSYMS: &str = "/proc/kallsyms";
/// A cached list of kernel function names is read again when a name is not
/// in it and the list is older than this (a module may have been loaded).
const NAME_CACHE_REFRESH: Duration = Duration::from_secs(10);

/// How a kernel function is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// fentry/fexit when the kernel allows them and the function is in its
    /// BTF, else kprobe/kretprobe.
    Auto,
    /// kprobe/kretprobe: a breakpoint at the function's entry and a
    /// trampoline on its return address.
    Kprobe,
    /// fentry/fexit: BPF trampolines called directly from the function's
    /// ftrace call site.
    Fentry,
}

/// A function to probe, as named by a probe id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FunctionTarget {
    /// A function of the running kernel (or of a loaded module).
    Kernel {
        /// Symbol name, as in `/proc/kallsyms` (`vfs_read`, `foo.isra.0`).
        function: String,
        /// How to reach it.
        mechanism: Mechanism,
    },
    /// A function of a program or shared library on disk. It is probed in
    /// every process that maps that file.
    User {
        /// Absolute path of the ELF file.
        binary: PathBuf,
        /// Symbol name, as in its symbol table (mangled for C++ and Rust).
        symbol: String,
    },
}

impl FunctionTarget {
    /// Parses a function probe id: `func:NAME` (fentry if possible, else
    /// kprobe), `kprobe:NAME`, `fentry:NAME`, or `uprobe:/abs/path:SYMBOL`.
    ///
    /// `None` when `id` is not a function probe id at all (for example a
    /// tracepoint `category:name`); `Some(Err(sentence))` when it is one but
    /// malformed.
    pub fn parse(id: &str) -> Option<Result<Self, String>> {
        let (prefix, rest) = id.split_once(':')?;
        let mechanism = match prefix {
            "func" => Mechanism::Auto,
            "kprobe" => Mechanism::Kprobe,
            "fentry" => Mechanism::Fentry,
            "uprobe" => return Some(parse_user(rest)),
            _ => return None,
        };
        Some(
            parse_kernel_name(prefix, rest).map(|function| Self::Kernel {
                function: function.to_owned(),
                mechanism,
            }),
        )
    }

    /// The function's name (kernel function or user symbol).
    pub fn name(&self) -> &str {
        match self {
            Self::Kernel { function, .. } => function,
            Self::User { symbol, .. } => symbol,
        }
    }
}

/// The probe id of the target, the inverse of [`FunctionTarget::parse`].
impl fmt::Display for FunctionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel {
                function,
                mechanism,
            } => {
                let prefix = match mechanism {
                    Mechanism::Auto => "func",
                    Mechanism::Kprobe => "kprobe",
                    Mechanism::Fentry => "fentry",
                };
                write!(f, "{prefix}:{function}")
            }
            Self::User { binary, symbol } => write!(f, "uprobe:{}:{symbol}", binary.display()),
        }
    }
}

fn parse_kernel_name<'a>(prefix: &str, name: &'a str) -> Result<&'a str, String> {
    if name.is_empty() {
        return Err(format!(
            "`{prefix}:` needs a kernel function name after the colon, like `{prefix}:vfs_read`"
        ));
    }
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if !valid {
        return Err(format!(
            "`{name}` is not a kernel function name: names are letters, digits, `_` and `.` \
             (like `vfs_read` or `ext4_file_read_iter`)"
        ));
    }
    Ok(name)
}

fn parse_user(rest: &str) -> Result<FunctionTarget, String> {
    let usage = "uprobe ids name a binary and a symbol: `uprobe:/absolute/path:symbol`, \
                 like `uprobe:/usr/bin/bash:readline`";
    let Some((binary, symbol)) = rest.rsplit_once(':') else {
        return Err(format!("`uprobe:{rest}` has no symbol; {usage}"));
    };
    if binary.is_empty() || symbol.is_empty() {
        return Err(format!(
            "`uprobe:{rest}` lacks a binary or a symbol; {usage}"
        ));
    }
    if !binary.starts_with('/') {
        return Err(format!(
            "the binary of a uprobe must be an absolute path, and `{binary}` is not; {usage}"
        ));
    }
    if symbol.bytes().any(|b| b.is_ascii_whitespace() || b == 0) {
        return Err(format!(
            "`{symbol}` is not a symbol name (it contains spaces); {usage}"
        ));
    }
    Ok(FunctionTarget::User {
        binary: PathBuf::from(binary),
        symbol: symbol.to_owned(),
    })
}

/// The mechanism and attach point a target resolved to on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Resolved {
    Kprobe(String),
    Fentry(String),
    Uprobe {
        binary: PathBuf,
        symbol: String,
        /// Where the function starts in the file.
        offset: u64,
        /// Device and inode of the file checked.
        identity: (u64, u64),
    },
}

impl Resolved {
    fn mechanism(&self) -> &'static str {
        match self {
            Self::Kprobe(_) => "kprobe/kretprobe",
            Self::Fentry(_) => "fentry/fexit",
            Self::Uprobe { .. } => "uprobe/uretprobe",
        }
    }
}

/// One attached function probe: its own instance of the object.
struct Instance {
    target: FunctionTarget,
    resolved: Resolved,
    /// Calls by filter slot.
    calls: PerCpuArray<MapData, u64>,
    /// Latency histograms by filter slot.
    latency: PerCpuArray<MapData, u64>,
    filter: Array<MapData, FilterTable>,
    /// Holds the programs and their links; dropping it detaches both.
    _ebpf: Ebpf,
}

/// The attached function probes, by wire key, and what this kernel allows.
pub struct FunctionProbes {
    kprobes: Availability,
    fentry: Availability,
    uprobes: Availability,
    instances: BTreeMap<ProbeKey, Instance>,
    /// Text symbols of `/proc/kallsyms`: what kprobes can reach.
    kallsyms: NameCache,
    /// FUNC names of the kernel's BTF: what fentry can reach.
    btf_functions: NameCache,
    /// The kernel's BTF, parsed on the first fentry attach (~5 MB; fentry
    /// programs are verified against it).
    btf: Option<Btf>,
    /// Loads instances of the object (see [`object_loader`]).
    loader: EbpfLoader<'static>,
}

impl FunctionProbes {
    /// No probes yet; `capabilities` says which mechanisms this kernel has.
    pub fn new(capabilities: &Capabilities) -> Self {
        Self {
            kprobes: capabilities.kprobes.clone(),
            fentry: capabilities.fentry.clone(),
            uprobes: capabilities.uprobes.clone(),
            instances: BTreeMap::new(),
            kallsyms: NameCache::new(kallsyms_functions),
            btf_functions: NameCache::new(btf_functions),
            btf: None,
            loader: object_loader(),
        }
    }

    /// Whether `target` can be attached here for `peer`, and if not, why.
    /// Cheap: it checks the capability and that the function or symbol
    /// exists (a uprobe's binary opened as `peer`), and loads nothing.
    pub fn availability(&self, target: &FunctionTarget, peer: &Peer) -> Availability {
        match self.resolve(target, peer) {
            Ok((resolved, _)) => Availability::yes(match &resolved {
                Resolved::Fentry(name) => {
                    format!("{name} is in the kernel's BTF; via fentry/fexit")
                }
                Resolved::Kprobe(name) => {
                    format!("{name} is a kernel function; via kprobe/kretprobe")
                }
                Resolved::Uprobe { binary, symbol, .. } => format!(
                    "{} has a function symbol {symbol}; via uprobe/uretprobe",
                    binary.display()
                ),
            }),
            Err(reason) => Availability::no(reason),
        }
    }

    /// Loads a fresh instance of the function probe object for `target`,
    /// sets its process filters and attaches its exit and entry programs
    /// (exit first, so that no call is timed from a missed entry). `key` is
    /// the probe's wire key, used by [`FunctionProbes::stats`].
    ///
    /// Attaching the same target under the same key again does nothing
    /// but check `peer`'s access (for a uprobe: `peer` may read the binary,
    /// and it is the file the probe is attached to). An error is a
    /// sentence for the user.
    pub fn attach(
        &mut self,
        key: ProbeKey,
        target: &FunctionTarget,
        filter: &FilterTable,
        peer: &Peer,
    ) -> Result<(), String> {
        let (resolved, file) = self
            .resolve(target, peer)
            .map_err(|reason| format!("{target} is not available here: {reason}"))?;
        if let Some(existing) = self.instances.get(&key) {
            if existing.target != *target {
                return Err(format!(
                    "cannot attach {target}: probe key {key} is already used by {}",
                    existing.target
                ));
            }
            if existing.resolved != resolved {
                return Err(format!(
                    "{target} is attached to another file than the one now at that path \
                     (it was replaced meanwhile); disable it everywhere and enable it again"
                ));
            }
            return Ok(());
        }
        if self.instances.len() >= MAX_ATTACHED_FUNCTIONS {
            return Err(format!(
                "cannot attach {target}: {MAX_ATTACHED_FUNCTIONS} function probes are attached \
                 already, the most this helper attaches at once; disable some first"
            ));
        }
        if matches!(resolved, Resolved::Fentry(_)) && self.btf.is_none() {
            let btf = Btf::from_sys_fs().map_err(|err| {
                format!(
                    "cannot attach {target}: the kernel's BTF ({VMLINUX_BTF}) could not be \
                     parsed ({err}); use kprobe:{} instead",
                    target.name()
                )
            })?;
            self.btf = Some(btf);
        }
        let instance = Instance::load(
            &mut self.loader,
            target,
            resolved,
            file.as_ref(),
            filter,
            self.btf.as_ref(),
        )
        .map_err(|reason| format!("attaching {target} failed: {reason}"))?;
        log::info!("attached {target} ({})", instance.resolved.mechanism());
        self.instances.insert(key, instance);
        Ok(())
    }

    /// Detaches the probe with `key`; whether it was attached.
    pub fn detach(&mut self, key: ProbeKey) -> bool {
        match self.instances.remove(&key) {
            Some(instance) => {
                log::info!("detached {}", instance.target);
                true
            }
            None => false,
        }
    }

    /// Detaches every function probe; returns how many were attached.
    pub fn detach_all(&mut self) -> usize {
        let n = self.instances.len();
        self.instances.clear();
        n
    }

    /// Whether the probe with `key` is attached.
    pub fn is_attached(&self, key: ProbeKey) -> bool {
        self.instances.contains_key(&key)
    }

    /// Run-time statistics of the programs of the probe with `key`.
    pub fn program_runs(&self, key: ProbeKey) -> Vec<crate::cost::ProgramRun> {
        self.instances.get(&key).map_or_else(Vec::new, |instance| {
            crate::cost::program_runs(instance._ebpf.programs(), |_| true)
        })
    }

    /// How the probe with `key` is attached (`"fentry/fexit"`,
    /// `"kprobe/kretprobe"`, `"uprobe/uretprobe"`), if it is.
    pub fn mechanism(&self, key: ProbeKey) -> Option<&'static str> {
        self.instances.get(&key).map(|i| i.resolved.mechanism())
    }

    /// Writes `filter` into the `FILTER` map of every attached probe (new
    /// probes get it through [`FunctionProbes::attach`]).
    pub fn set_filter(&mut self, filter: &FilterTable) -> Result<(), String> {
        let mut failed = Vec::new();
        for instance in self.instances.values_mut() {
            if let Err(err) = instance.filter.set(0, filter, 0) {
                failed.push(format!("{} ({err})", instance.target));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the process filter could not be set on {}; those probes still count every process",
                failed.join(", ")
            ))
        }
    }

    /// Zeroes the counts of filter slot `slot` in every attached probe,
    /// before the slot gets a new filter.
    pub fn clear_slot(&mut self, slot: usize) -> Result<(), String> {
        let slot = slot as u32;
        for instance in self.instances.values_mut() {
            crate::filter_slots::clear_per_cpu(&mut instance.calls, slot..slot + 1)?;
            crate::filter_slots::clear_per_cpu(
                &mut instance.latency,
                slot * LATENCY_BUCKETS..(slot + 1) * LATENCY_BUCKETS,
            )?;
        }
        Ok(())
    }

    /// Cumulative counts of every attached probe in filter slot `slot`, by
    /// key: calls summed over CPUs and the 64-bucket log2 latency histogram.
    pub fn stats(&self, slot: usize) -> Vec<FunctionStats> {
        let slot = slot as u32;
        self.instances
            .iter()
            .map(|(key, instance)| FunctionStats {
                probe: *key,
                calls: sum_slot(&instance.calls, slot),
                latency_log2_ns: (0..LATENCY_BUCKETS)
                    .map(|bucket| sum_slot(&instance.latency, slot * LATENCY_BUCKETS + bucket))
                    .collect(),
            })
            .collect()
    }

    /// The subsystem to list `target` under (a built-in pack subsystem id:
    /// `user` for user functions, a guess from the name for kernel ones)
    /// and a one-line description.
    pub fn describe(&self, target: &FunctionTarget) -> (String, String) {
        match target {
            FunctionTarget::Kernel {
                function,
                mechanism,
            } => {
                let how = match mechanism {
                    Mechanism::Auto => {
                        "fentry/fexit where the kernel allows, else kprobe/kretprobe"
                    }
                    Mechanism::Kprobe => "kprobe/kretprobe",
                    Mechanism::Fentry => "fentry/fexit",
                };
                (
                    kernel_subsystem(function).to_owned(),
                    format!(
                        "Calls of the kernel function {function} and the time from entry to return ({how})."
                    ),
                )
            }
            FunctionTarget::User { binary, symbol } => (
                "user".to_owned(),
                format!(
                    "Calls of {symbol} in {} (every process running it) and the time from \
                     entry to return (uprobe/uretprobe).",
                    binary.display()
                ),
            ),
        }
    }

    /// Picks the mechanism and checks that the function exists; a uprobe's
    /// binary is opened as `peer` and returned open.
    fn resolve(
        &self,
        target: &FunctionTarget,
        peer: &Peer,
    ) -> Result<(Resolved, Option<UprobeFile>), String> {
        if let FunctionTarget::User { binary, symbol } = target {
            if !self.uprobes.available {
                return Err(self.uprobes.reason.clone());
            }
            let file = open_uprobe_target(peer, binary, symbol)?;
            let Some(offset) = file.offset else {
                return Err(format!(
                    "{} has no function symbol `{symbol}`; stripped binaries keep only \
                     their exported symbols, so pick one from the binary's symbol list",
                    binary.display()
                ));
            };
            let resolved = Resolved::Uprobe {
                binary: binary.clone(),
                symbol: symbol.clone(),
                offset,
                identity: file.identity(),
            };
            return Ok((resolved, Some(file)));
        }
        self.resolve_kernel(target).map(|resolved| (resolved, None))
    }

    /// [`resolve`](Self::resolve) for kernel functions.
    fn resolve_kernel(&self, target: &FunctionTarget) -> Result<Resolved, String> {
        match target {
            FunctionTarget::Kernel {
                function,
                mechanism: Mechanism::Kprobe,
            } => self
                .kprobe_reaches(function)
                .map(|()| Resolved::Kprobe(function.clone())),
            FunctionTarget::Kernel {
                function,
                mechanism: Mechanism::Fentry,
            } => self
                .fentry_reaches(function)
                .map(|()| Resolved::Fentry(function.clone())),
            FunctionTarget::Kernel {
                function,
                mechanism: Mechanism::Auto,
            } => {
                let fentry = match self.fentry_reaches(function) {
                    Ok(()) => return Ok(Resolved::Fentry(function.clone())),
                    Err(reason) => reason,
                };
                let kprobe = match self.kprobe_reaches(function) {
                    Ok(()) => return Ok(Resolved::Kprobe(function.clone())),
                    Err(reason) => reason,
                };
                Err(if !self.fentry.available && !self.kprobes.available {
                    format!(
                        "this kernel lets no probe reach kernel functions: fentry: {fentry}; \
                         kprobes: {kprobe}"
                    )
                } else {
                    format!("neither fentry nor kprobes can reach it: {fentry}; and {kprobe}")
                })
            }
            FunctionTarget::User { .. } => Err("not a kernel function".to_owned()),
        }
    }

    fn fentry_reaches(&self, function: &str) -> Result<(), String> {
        if !self.fentry.available {
            return Err(self.fentry.reason.clone());
        }
        match self.btf_functions.contains(function) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "{function} is not a function in the kernel's BTF, so fentry cannot reach it \
                 (it may be inlined, renamed like {function}.isra.0, or in a module)"
            )),
            Err(reason) => Err(format!("fentry needs the kernel's BTF, and {reason}")),
        }
    }

    fn kprobe_reaches(&self, function: &str) -> Result<(), String> {
        if !self.kprobes.available {
            return Err(self.kprobes.reason.clone());
        }
        match self.kallsyms.contains(function) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "the kernel has no function named {function} in {KALLSYMS} (it may be inlined, \
                 renamed like {function}.isra.0, or in a module that is not loaded)"
            )),
            // The attach itself will say whether the name exists.
            Err(reason) => {
                log::warn!("could not check {function} against {KALLSYMS}: {reason}");
                Ok(())
            }
        }
    }
}

impl Drop for FunctionProbes {
    fn drop(&mut self) {
        let n = self.detach_all();
        if n > 0 {
            log::info!("detached {n} function probe(s) on shutdown");
        }
    }
}

impl Instance {
    /// Loads the object, sets its filter, attaches exit then entry.
    fn load(
        loader: &mut EbpfLoader<'static>,
        target: &FunctionTarget,
        resolved: Resolved,
        file: Option<&UprobeFile>,
        filter: &FilterTable,
        btf: Option<&Btf>,
    ) -> Result<Self, String> {
        let mut ebpf = load_object_with(loader)?;
        let mut filter_map: Array<MapData, FilterTable> = take_map(&mut ebpf, "FILTER")?;
        filter_map
            .set(0, filter, 0)
            .map_err(|err| format!("setting the process filter failed: {err}"))?;
        let calls = take_map(&mut ebpf, "CALLS")?;
        let latency = take_map(&mut ebpf, "LATENCY")?;
        match &resolved {
            Resolved::Kprobe(function) => {
                for program in ["fn_kretprobe", "fn_kprobe"] {
                    let kprobe: &mut KProbe = program_mut(&mut ebpf, program)?;
                    kprobe.load().map_err(|err| describe_load_error(&err))?;
                    kprobe
                        .attach(function, 0)
                        .map_err(|err| describe_kernel_attach_error(function, "kprobe", &err))?;
                }
            }
            Resolved::Fentry(function) => {
                let btf = btf.ok_or("the kernel's BTF was not loaded")?;
                let fexit: &mut FExit = program_mut(&mut ebpf, "fn_fexit")?;
                fexit
                    .load(function, btf)
                    .map_err(|err| describe_fentry_load_error(function, &err))?;
                fexit
                    .attach()
                    .map_err(|err| describe_kernel_attach_error(function, "fexit", &err))?;
                let fentry: &mut FEntry = program_mut(&mut ebpf, "fn_fentry")?;
                fentry
                    .load(function, btf)
                    .map_err(|err| describe_fentry_load_error(function, &err))?;
                fentry
                    .attach()
                    .map_err(|err| describe_kernel_attach_error(function, "fentry", &err))?;
            }
            Resolved::Uprobe {
                binary,
                symbol,
                offset,
                ..
            } => {
                let file = file.ok_or("the binary was not opened")?;
                for program in ["fn_uretprobe", "fn_uprobe"] {
                    let uprobe: &mut UProbe = program_mut(&mut ebpf, program)?;
                    uprobe.load().map_err(|err| describe_load_error(&err))?;
                    // The open file, at the offset read from it: nothing
                    // looks the client's path up again.
                    uprobe
                        .attach(
                            UProbeAttachLocation::AbsoluteOffset(*offset),
                            file.proc_path(),
                            UProbeScope::AllProcesses,
                        )
                        .map_err(|err| describe_uprobe_attach_error(binary, symbol, &err))?;
                }
            }
        }
        Ok(Self {
            target: target.clone(),
            resolved,
            calls,
            latency,
            filter: filter_map,
            _ebpf: ebpf,
        })
    }
}

fn take_map<M>(ebpf: &mut Ebpf, name: &str) -> Result<M, String>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| format!("the function probe object lacks map {name}; rebuild the helper"))?;
    M::try_from(map)
        .map_err(|err| format!("the function probe map {name} has an unexpected type: {err}"))
}

fn program_mut<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, String>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf.program_mut(name).ok_or_else(|| {
        format!("the function probe object lacks program {name}; rebuild the helper")
    })?;
    program
        .try_into()
        .map_err(|err: ProgramError| format!("program {name} has an unexpected type: {err}"))
}

fn sum_slot(map: &PerCpuArray<MapData, u64>, index: u32) -> u64 {
    map.get(&index, 0)
        .map(|values| values.iter().sum())
        .unwrap_or(0)
}

/// An error and its sources, joined with ": " (aya's messages name the
/// failing call; the errno is in the source).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        let next = err.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = err.source();
    }
    text
}

/// The errno at the bottom of a program error, if there is one.
fn errno(err: &ProgramError) -> Option<i32> {
    match err {
        ProgramError::SyscallError(e) => e.io_error.raw_os_error(),
        ProgramError::LoadError { io_error, .. } => io_error.raw_os_error(),
        ProgramError::IOError(e) => e.raw_os_error(),
        _ => None,
    }
}

/// The kernel-internal ENOTSUPP, which BPF syscalls leak to user space.
const ENOTSUPP: i32 = 524;

fn describe_fentry_load_error(function: &str, err: &ProgramError) -> String {
    match err {
        ProgramError::Btf(_) => format!(
            "{function} is not a function in the kernel's BTF, so fentry cannot reach it; \
             use kprobe:{function} instead"
        ),
        _ if errno(err) == Some(libc::EPERM) => format!(
            "the kernel refuses fentry programs (EPERM on load: kernel lockdown or a restricted \
             BPF policy); use kprobe:{function} instead"
        ),
        _ if errno(err) == Some(ENOTSUPP) => format!(
            "this kernel has no BPF trampolines for {function} (ENOTSUPP); use \
             kprobe:{function} instead"
        ),
        _ => describe_load_error(err),
    }
}

fn describe_kernel_attach_error(function: &str, how: &str, err: &ProgramError) -> String {
    match errno(err) {
        Some(libc::ENOENT) => format!(
            "the kernel has no function {function} to attach a {how} to (it may be inlined or in \
             a module that is not loaded)"
        ),
        Some(libc::EINVAL) if how == "kprobe" => format!(
            "the kernel refused a kprobe on {function} (EINVAL): it may be on the kprobe \
             blacklist (/sys/kernel/debug/kprobes/blacklist) or not the start of a function"
        ),
        Some(libc::EBUSY) => format!(
            "the kernel refused the {how} on {function} (EBUSY): another tool already holds an \
             exclusive attachment there; try kprobe:{function}"
        ),
        Some(libc::EPERM | libc::EACCES) => format!(
            "the kernel refused the {how} on {function} (permission denied): run the helper as \
             root on a kernel without lockdown"
        ),
        _ => format!(
            "attaching the {how} on {function} failed: {}",
            error_chain(err)
        ),
    }
}

fn describe_uprobe_attach_error(binary: &Path, symbol: &str, err: &ProgramError) -> String {
    match err {
        ProgramError::UProbeError(aya::programs::uprobe::UProbeError::SymbolError {
            error,
            ..
        }) => {
            format!(
                "the uprobe address of `{symbol}` in {} could not be found: {error}",
                binary.display()
            )
        }
        ProgramError::UProbeError(aya::programs::uprobe::UProbeError::FileError {
            filename,
            io_error,
        }) => format!("could not read {}: {io_error}", filename.display()),
        _ => format!(
            "attaching a uprobe to `{symbol}` in {} failed: {}",
            binary.display(),
            error_chain(err)
        ),
    }
}

/// The subsystem (its id in the built-in probe pack, as for tracepoints)
/// a kernel function most likely belongs to, guessed from its name; `other`
/// when the name says nothing.
fn kernel_subsystem(function: &str) -> &'static str {
    // First match wins, so longer prefixes come before shorter ones.
    const PREFIXES: &[(&str, &str)] = &[
        ("__x64_sys_", "syscalls"),
        ("__ia32_sys_", "syscalls"),
        ("__se_sys_", "syscalls"),
        ("__do_sys_", "syscalls"),
        ("do_sys_", "syscalls"),
        ("ksys_", "syscalls"),
        ("vfs_", "vfs"),
        ("do_filp_open", "vfs"),
        ("filp_", "vfs"),
        ("path_", "vfs"),
        ("ext4_", "ext4"),
        ("jbd2_", "ext4"),
        ("btrfs_", "ext4"),
        ("xfs_", "ext4"),
        ("filemap_", "pagecache"),
        ("page_cache_", "pagecache"),
        ("readahead", "pagecache"),
        ("writeback_", "pagecache"),
        ("folio_", "pagecache"),
        ("handle_mm_fault", "memory"),
        ("exc_page_fault", "memory"),
        ("do_page_fault", "memory"),
        ("__alloc_pages", "memory"),
        ("alloc_pages", "memory"),
        ("__kmalloc", "memory"),
        ("kmalloc", "memory"),
        ("kfree", "memory"),
        ("kmem_", "memory"),
        ("vmalloc", "memory"),
        ("shmem_", "memory"),
        ("do_mmap", "memory"),
        ("mmap_", "memory"),
        ("page_", "memory"),
        ("tcp_", "tcp"),
        ("udp_", "udp"),
        ("ip_", "ip"),
        ("ip6_", "ip"),
        ("ipv6_", "ip"),
        ("fib_", "ip"),
        ("neigh_", "ip"),
        ("inet_", "socket"),
        ("sock_", "socket"),
        ("sk_", "socket"),
        ("unix_", "socket"),
        ("skb_", "netdev"),
        ("netif_", "netdev"),
        ("net_", "netdev"),
        ("napi_", "netdev"),
        ("dev_queue_", "netdev"),
        ("blk_", "block"),
        ("bio_", "block"),
        ("submit_bio", "block"),
        ("nvme_", "block"),
        ("scsi_", "block"),
        ("schedule", "sched"),
        ("sched_", "sched"),
        ("try_to_wake_up", "sched"),
        ("wake_up_", "sched"),
        ("pick_next_", "sched"),
        ("enqueue_", "sched"),
        ("dequeue_", "sched"),
        ("kernel_clone", "process"),
        ("copy_process", "process"),
        ("do_exit", "process"),
        ("do_group_exit", "process"),
        ("do_execve", "process"),
        ("bprm_", "process"),
        ("irq_", "irq"),
        ("handle_irq", "irq"),
        ("__do_softirq", "irq"),
        ("tasklet_", "irq"),
        ("hrtimer_", "irq"),
        ("mutex_", "locking"),
        ("rwsem_", "locking"),
        ("_raw_spin_", "locking"),
        ("futex_", "locking"),
        ("down_", "locking"),
        ("up_", "locking"),
        ("rcu_", "locking"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| function.starts_with(prefix))
        .map_or("other", |(_, subsystem)| subsystem)
}

/// Reads a list of kernel function names, or says why it could not.
type NameSource = fn() -> Result<Vec<String>, String>;

/// A sorted, deduplicated list of names read from the kernel, read again
/// when a name is missing and the list is [`NAME_CACHE_REFRESH`] old (a
/// module may have been loaded since).
struct NameCache {
    read: NameSource,
    cached: Mutex<Option<(Instant, Vec<String>)>>,
}

impl NameCache {
    fn new(read: NameSource) -> Self {
        Self {
            read,
            cached: Mutex::new(None),
        }
    }

    fn contains(&self, name: &str) -> Result<bool, String> {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((read_at, names)) = cached.as_ref() {
            let found = contains_sorted(names, name);
            if found || read_at.elapsed() < NAME_CACHE_REFRESH {
                return Ok(found);
            }
        }
        let mut names = (self.read)()?;
        sort_dedup(&mut names);
        let found = contains_sorted(&names, name);
        *cached = Some((Instant::now(), names));
        Ok(found)
    }
}

fn contains_sorted(names: &[String], name: &str) -> bool {
    names.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
}

fn sort_dedup(names: &mut Vec<String>) {
    names.sort_unstable();
    names.dedup();
}

/// Kernel functions whose name contains `contains`, sorted and
/// deduplicated, at most `limit`; the flag says whether more matched.
///
/// Read from the best source the kernel offers: tracefs'
/// `available_filter_functions` (what ftrace, and so fentry, can attach
/// to), else the FUNC names of the kernel's BTF, else the text symbols of
/// `/proc/kallsyms`. Returns nothing (and logs why) when none is readable.
pub fn kernel_functions(contains: &str, limit: usize) -> (Vec<String>, bool) {
    let sources: [(&str, NameSource); 3] = [
        ("available_filter_functions", traceable_functions),
        ("BTF", btf_functions),
        ("kallsyms", kallsyms_functions),
    ];
    let mut reasons = Vec::new();
    for (source, read) in sources {
        match read() {
            Ok(names) => return filter_names(names, contains, limit),
            Err(reason) => reasons.push(format!("{source}: {reason}")),
        }
    }
    log::warn!(
        "no list of kernel functions is readable ({})",
        reasons.join("; ")
    );
    (Vec::new(), false)
}

/// The names containing `contains`, sorted, deduplicated, at most `limit`.
fn filter_names(names: Vec<String>, contains: &str, limit: usize) -> (Vec<String>, bool) {
    let mut matching: Vec<String> = names
        .into_iter()
        .filter(|name| name.contains(contains))
        .collect();
    sort_dedup(&mut matching);
    let truncated = matching.len() > limit;
    matching.truncate(limit);
    (matching, truncated)
}

/// `available_filter_functions` of tracefs: one function per line, module
/// functions followed by ` [module]`.
fn traceable_functions() -> Result<Vec<String>, String> {
    let tracefs = crate::tracefs::find().ok_or("tracefs is not mounted")?;
    let path = tracefs.join("available_filter_functions");
    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("could not read {}: {err}", path.display()))?;
    Ok(parse_filter_functions(&text))
}

fn parse_filter_functions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        // Placeholders for functions ftrace could not resolve.
        .filter(|name| !name.starts_with("__ftrace_invalid_address__"))
        .map(str::to_owned)
        .collect()
}

/// Function (text) symbols of `/proc/kallsyms`.
fn kallsyms_functions() -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(KALLSYMS)
        .map_err(|err| format!("could not read {KALLSYMS}: {err}"))?;
    Ok(parse_kallsyms(&text))
}

/// Names of text symbols (`T`, `t`, `W`, `w`) in kallsyms format
/// (`address type name [module]`), without the compiler's padding and CFI
/// stubs and cold parts, which are not functions one can probe.
fn parse_kallsyms(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_address, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
            let is_text = matches!(kind, "T" | "t" | "W" | "w");
            let is_stub =
                name.starts_with("__pfx_") || name.starts_with("__cfi_") || name.contains(".cold");
            (is_text && !is_stub).then(|| name.to_owned())
        })
        .collect()
}

/// FUNC names of the kernel's BTF.
fn btf_functions() -> Result<Vec<String>, String> {
    let data =
        std::fs::read(VMLINUX_BTF).map_err(|err| format!("could not read {VMLINUX_BTF}: {err}"))?;
    btf_function_names(&data).map_err(|reason| format!("{VMLINUX_BTF} is not valid BTF: {reason}"))
}

/// The names of every `BTF_KIND_FUNC` in a raw BTF blob (the kernel's
/// `Documentation/bpf/btf.rst` format, little-endian). aya parses BTF too,
/// but does not expose iterating over its types.
fn btf_function_names(data: &[u8]) -> Result<Vec<String>, String> {
    let u32_at = |offset: usize| -> Result<u32, String> {
        data.get(offset..offset + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| format!("truncated at byte {offset}"))
    };
    let magic = data
        .get(0..2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or("shorter than its header")?;
    if magic != 0xeb9f {
        return Err(format!("bad magic {magic:#06x}"));
    }
    let header_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
    let types = data
        .get(header_len + type_off..header_len + type_off + type_len)
        .ok_or("the type section lies outside the file")?;
    let strings = data
        .get(header_len + str_off..header_len + str_off + str_len)
        .ok_or("the string section lies outside the file")?;

    const KIND_FUNC: u32 = 12;
    let mut names = Vec::new();
    let mut pos = 0;
    while pos < types.len() {
        let word = |i: usize| -> Result<u32, String> {
            types
                .get(pos + 4 * i..pos + 4 * i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| format!("type at byte {pos} is truncated"))
        };
        let (name_off, info) = (word(0)? as usize, word(1)?);
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        // Bytes that follow the 12-byte `struct btf_type`, per kind.
        let extra = match kind {
            1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
            3 => 12,                      // ARRAY
            4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
            6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
            2 | 7..=12 | 16 | 18 => 0,    // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
            other => return Err(format!("unknown type kind {other} at byte {pos}")),
        };
        if kind == KIND_FUNC {
            let name = strings
                .get(name_off..)
                .and_then(|s| s.split(|b| *b == 0).next())
                .ok_or_else(|| format!("function name offset {name_off} is outside the strings"))?;
            if !name.is_empty() {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        pos += 12 + extra;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Peer;
    use microscope_catalogue::targets::{binary_has_function, binary_symbols, find_library};

    fn kernel(function: &str, mechanism: Mechanism) -> FunctionTarget {
        FunctionTarget::Kernel {
            function: function.to_owned(),
            mechanism,
        }
    }

    #[test]
    fn parses_function_ids() {
        assert_eq!(
            FunctionTarget::parse("func:vfs_read"),
            Some(Ok(kernel("vfs_read", Mechanism::Auto)))
        );
        assert_eq!(
            FunctionTarget::parse("kprobe:do_sys_openat2"),
            Some(Ok(kernel("do_sys_openat2", Mechanism::Kprobe)))
        );
        assert_eq!(
            FunctionTarget::parse("fentry:ext4_file_read_iter.isra.0"),
            Some(Ok(kernel("ext4_file_read_iter.isra.0", Mechanism::Fentry)))
        );
        assert_eq!(
            FunctionTarget::parse("uprobe:/usr/bin/bash:readline"),
            Some(Ok(FunctionTarget::User {
                binary: PathBuf::from("/usr/bin/bash"),
                symbol: "readline".to_owned()
            }))
        );
        // The last colon separates the symbol.
        assert_eq!(
            FunctionTarget::parse("uprobe:/opt/a:b/lib.so:f"),
            Some(Ok(FunctionTarget::User {
                binary: PathBuf::from("/opt/a:b/lib.so"),
                symbol: "f".to_owned()
            }))
        );
    }

    #[test]
    fn other_ids_are_not_function_ids() {
        assert_eq!(FunctionTarget::parse("sched:sched_switch"), None);
        assert_eq!(FunctionTarget::parse("syscalls:latency"), None);
        assert_eq!(FunctionTarget::parse("kprobes:foo"), None);
        assert_eq!(FunctionTarget::parse("vfs_read"), None);
        assert_eq!(FunctionTarget::parse(""), None);
    }

    #[test]
    fn malformed_function_ids_are_sentences() {
        for id in [
            "func:",
            "kprobe:vfs read",
            "fentry:1abc",
            "func:a;b",
            "uprobe:",
            "uprobe:/bin/true",
            "uprobe:bin/true:main",
            "uprobe:/bin/true:",
            "uprobe::main",
            "uprobe:/bin/true:ma in",
        ] {
            match FunctionTarget::parse(id) {
                Some(Err(sentence)) => assert!(sentence.len() > 20, "{id}: {sentence}"),
                other => panic!("{id} should be malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn ids_round_trip() {
        for id in [
            "func:vfs_read",
            "kprobe:vfs_read",
            "fentry:vfs_read",
            "uprobe:/usr/lib/libc.so.6:malloc",
        ] {
            let target = FunctionTarget::parse(id).unwrap().unwrap();
            assert_eq!(target.to_string(), id);
        }
    }

    #[test]
    fn libraries_are_found_by_file_name() {
        assert_eq!(
            find_library("/opt/x/libfoo.so"),
            Ok(PathBuf::from("/opt/x/libfoo.so"))
        );
        assert!(
            find_library("lib/libc.so.6")
                .unwrap_err()
                .contains("neither")
        );
        let missing = find_library("libmicroscope-no-such-lib.so.9").unwrap_err();
        assert!(missing.contains("no library"), "{missing}");
        // Every system this runs on has a C library; under musl its name differs.
        if cfg!(target_env = "gnu") {
            assert!(find_library("libc.so.6").unwrap().is_file());
        }
    }

    #[test]
    fn kallsyms_keeps_text_symbols_only() {
        let text = "\
ffffffff81000000 T _text
ffffffff81001000 t __pfx_vfs_read
ffffffff81001010 T vfs_read
ffffffff81002000 t helper.isra.0
ffffffff81003000 t helper.cold
ffffffff81004000 D jiffies
ffffffff81005000 W weak_fn
ffffffffc0001000 t ext4_file_read_iter\t[ext4]
malformed
";
        assert_eq!(
            parse_kallsyms(text),
            [
                "_text",
                "vfs_read",
                "helper.isra.0",
                "weak_fn",
                "ext4_file_read_iter"
            ]
        );
        assert!(parse_kallsyms("").is_empty());
    }

    #[test]
    fn filter_functions_drop_modules_and_placeholders() {
        let text = "vfs_read\next4_read [ext4]\n__ftrace_invalid_address___64\n\n";
        assert_eq!(parse_filter_functions(text), ["vfs_read", "ext4_read"]);
    }

    #[test]
    fn filtering_names_sorts_dedups_and_truncates() {
        let names = ["vfs_write", "vfs_read", "do_read", "vfs_read", "x"].map(String::from);
        assert_eq!(
            filter_names(names.to_vec(), "read", 10),
            (vec!["do_read".to_owned(), "vfs_read".to_owned()], false)
        );
        assert_eq!(
            filter_names(names.to_vec(), "vfs", 1),
            (vec!["vfs_read".to_owned()], true)
        );
        assert_eq!(filter_names(Vec::new(), "", 5), (Vec::new(), false));
    }

    /// A BTF blob with the given types (each `(name, info, extra words)`)
    /// and string table.
    fn btf_blob(types: &[(u32, u32, u32, &[u32])], strings: &[u8]) -> Vec<u8> {
        let mut type_bytes = Vec::new();
        for (name, info, size, extra) in types {
            for word in [*name, *info, *size].iter().chain(extra.iter()) {
                type_bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&0xeb9fu16.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        for word in [
            24,
            0,
            type_bytes.len() as u32,
            type_bytes.len() as u32,
            strings.len() as u32,
        ] {
            blob.extend_from_slice(&word.to_le_bytes());
        }
        blob.extend_from_slice(&type_bytes);
        blob.extend_from_slice(strings);
        blob
    }

    #[test]
    fn btf_function_names_walks_every_kind() {
        let strings = b"\0int\0vfs_read\0arg\0s\0f\0";
        let kind = |k: u32, vlen: u32| (k << 24) | vlen;
        let types: &[(u32, u32, u32, &[u32])] = &[
            (1, kind(1, 0), 4, &[32]),                  // INT "int"
            (0, kind(4, 2), 8, &[16, 1, 0, 16, 1, 32]), // STRUCT "" with 2 members
            (0, kind(13, 1), 1, &[14, 1]),              // FUNC_PROTO (arg)
            (5, kind(12, 1), 3, &[]),                   // FUNC "vfs_read"
            (18, kind(6, 1), 4, &[20, 7]),              // ENUM "s"
            (20, kind(12, 0), 3, &[]),                  // FUNC "f"
        ];
        let blob = btf_blob(types, strings);
        assert_eq!(btf_function_names(&blob).unwrap(), ["vfs_read", "f"]);
    }

    #[test]
    fn btf_errors_are_reported() {
        assert!(btf_function_names(&[]).is_err());
        assert!(btf_function_names(&[0x9f, 0xeb]).is_err());
        let mut blob = btf_blob(&[(0, 12 << 24, 0, &[])], b"\0");
        blob[0] = 0;
        assert!(btf_function_names(&blob).unwrap_err().contains("magic"));
        let unknown = btf_blob(&[(0, 31 << 24, 0, &[])], b"\0");
        assert!(
            btf_function_names(&unknown)
                .unwrap_err()
                .contains("unknown type kind")
        );
        let mut truncated = btf_blob(&[(0, 3 << 24, 0, &[0, 0, 0])], b"\0");
        // The header still claims the array's 12 extra bytes; cut them off.
        truncated.truncate(24 + 16);
        assert!(btf_function_names(&truncated).is_err());
    }

    #[test]
    fn the_running_kernels_btf_parses() {
        let Ok(data) = std::fs::read(VMLINUX_BTF) else {
            eprintln!("skipping: no {VMLINUX_BTF} on this kernel");
            return;
        };
        let names = btf_function_names(&data).unwrap();
        assert!(
            names.iter().any(|n| n == "vfs_read"),
            "{} names",
            names.len()
        );
    }

    #[unsafe(no_mangle)]
    #[inline(never)]
    extern "C" fn microscope_funcprobe_unit_test_symbol() -> u32 {
        std::hint::black_box(7)
    }

    #[test]
    fn binary_symbols_lists_this_test_binarys_functions() {
        assert_eq!(microscope_funcprobe_unit_test_symbol(), 7);
        let exe = std::env::current_exe().unwrap();
        let (names, truncated) =
            binary_symbols(&exe, "microscope_funcprobe_unit_test", 10).unwrap();
        assert_eq!(names, ["microscope_funcprobe_unit_test_symbol"]);
        assert!(!truncated);
        assert!(binary_has_function(&exe, "microscope_funcprobe_unit_test_symbol").unwrap());
        assert!(!binary_has_function(&exe, "no_such_function_anywhere_42").unwrap());
        let (some, truncated) = binary_symbols(&exe, "", 3).unwrap();
        assert_eq!(some.len(), 3);
        assert!(truncated);
    }

    #[test]
    fn binary_symbols_explains_bad_files() {
        let missing = binary_symbols(Path::new("/no/such/binary"), "", 10).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        let dir = binary_symbols(Path::new("/"), "", 10).unwrap_err();
        assert!(dir.contains("not a regular file"), "{dir}");
        let text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(text.path(), "just text").unwrap();
        let not_elf = binary_symbols(text.path(), "", 10).unwrap_err();
        assert!(not_elf.contains("not an ELF"), "{not_elf}");
    }

    fn capabilities(kprobes: bool, fentry: bool, uprobes: bool) -> Capabilities {
        let av = |yes: bool, what: &str| {
            if yes {
                Availability::yes(format!("{what} ok"))
            } else {
                Availability::no(format!("this kernel has no {what}"))
            }
        };
        Capabilities {
            tracefs: av(true, "tracefs"),
            btf: av(true, "btf"),
            kprobes: av(kprobes, "kprobes"),
            fentry: av(fentry, "fentry"),
            uprobes: av(uprobes, "uprobes"),
        }
    }

    #[test]
    fn availability_names_the_missing_capability() {
        let probes = FunctionProbes::new(&capabilities(false, false, false));
        let auto = probes.availability(&kernel("vfs_read", Mechanism::Auto), &Peer::root());
        assert!(!auto.available);
        assert!(
            auto.reason.contains("this kernel has no kprobes"),
            "{}",
            auto.reason
        );
        assert!(
            auto.reason.contains("this kernel has no fentry"),
            "{}",
            auto.reason
        );
        let kprobe = probes.availability(&kernel("vfs_read", Mechanism::Kprobe), &Peer::root());
        assert_eq!(kprobe.reason, "this kernel has no kprobes");
        let exe = std::env::current_exe().unwrap();
        let user = probes.availability(
            &FunctionTarget::User {
                binary: exe,
                symbol: "main".to_owned(),
            },
            &Peer::root(),
        );
        assert_eq!(user.reason, "this kernel has no uprobes");
    }

    #[test]
    fn uprobe_availability_checks_the_symbol() {
        let probes = FunctionProbes::new(&capabilities(false, false, true));
        let exe = std::env::current_exe().unwrap();
        let present = probes.availability(
            &FunctionTarget::User {
                binary: exe.clone(),
                symbol: "microscope_funcprobe_unit_test_symbol".to_owned(),
            },
            &Peer::root(),
        );
        assert!(present.available, "{}", present.reason);
        let absent = probes.availability(
            &FunctionTarget::User {
                binary: exe,
                symbol: "no_such_function_anywhere_42".to_owned(),
            },
            &Peer::root(),
        );
        assert!(!absent.available);
        assert!(
            absent.reason.contains("no function symbol"),
            "{}",
            absent.reason
        );
        let missing = probes.availability(
            &FunctionTarget::User {
                binary: PathBuf::from("/no/such/binary"),
                symbol: "main".to_owned(),
            },
            &Peer::root(),
        );
        assert!(
            missing.reason.contains("does not exist"),
            "{}",
            missing.reason
        );
    }

    #[test]
    fn descriptions_name_the_function() {
        let probes = FunctionProbes::new(&capabilities(true, true, true));
        let (subsystem, description) = probes.describe(&kernel("vfs_read", Mechanism::Auto));
        assert_eq!(subsystem, "vfs");
        assert!(description.contains("vfs_read"));
        let (subsystem, _) = probes.describe(&kernel("mystery_fn", Mechanism::Kprobe));
        assert_eq!(subsystem, "other");
        for (function, subsystem) in [
            ("page_cache_sync_ra", "pagecache"),
            ("page_add_rmap", "memory"),
            ("__x64_sys_openat", "syscalls"),
            ("tcp_sendmsg", "tcp"),
            ("schedule_timeout", "sched"),
        ] {
            assert_eq!(kernel_subsystem(function), subsystem, "{function}");
        }
        let (subsystem, description) = probes.describe(&FunctionTarget::User {
            binary: PathBuf::from("/usr/bin/bash"),
            symbol: "readline".to_owned(),
        });
        assert_eq!(subsystem, "user");
        assert!(description.contains("/usr/bin/bash"));
    }

    #[test]
    fn error_chains_join_sources_once() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let err = ProgramError::SyscallError(aya::sys::SyscallError {
            call: "perf_event_open",
            io_error: io,
        });
        assert_eq!(errno(&err), Some(libc::ENOENT));
        let text = describe_kernel_attach_error("nope", "kprobe", &err);
        assert!(text.contains("no function nope"), "{text}");
        let chain = error_chain(&err);
        assert!(chain.contains("perf_event_open"), "{chain}");
        assert!(chain.contains("No such file"), "{chain}");
    }
}
