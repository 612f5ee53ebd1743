//! Turning stack addresses into function names, and interning the names.
//!
//! [`Symbolizer`] wraps [blazesym](https://docs.rs/blazesym): kernel
//! addresses resolve through `/proc/kallsyms` (and a matching `vmlinux`
//! with DWARF when one is installed under `/boot` or `/usr/lib/debug/boot`),
//! user addresses through the ELF symbol tables and DWARF (inlined
//! functions included) of the files mapped into the process. Files are
//! opened through `/proc/PID/map_files/`, so processes in containers (other
//! mount namespaces) and deleted binaries resolve too; JIT code resolves
//! through `/tmp/perf-NSPID.map` under the process's root when the runtime
//! writes one and it passes the checks of [`crate::perfmap`] (blazesym's own
//! perf map reading is off: it would open any file planted there as root).
//!
//! A frame that cannot be named is never dropped: it becomes
//! `module+0xoffset` (offset into the mapped file) or, when not even the
//! mapping is known, `[unknown]+0xaddress`.
//!
//! Names are cached per address: for the kernel, and per process in a small
//! LRU (a process's addresses must be resolved while it lives, so stacks
//! are symbolized right after each drain; the cache then keeps serving the
//! names of processes that exited meanwhile). A reused pid is detected by
//! its start time and gets a fresh cache.
//!
//! [`FrameInterner`] gives each distinct `(name, kernel)` a `u32` id, for
//! [`microscope_wire::StackBatch`].
//!
//! blazesym's `Symbolizer` is not `Send` (it uses `Rc` inside), so neither
//! is [`Symbolizer`]: it lives on one thread (the profiler's
//! `microscope-symbolize` thread, see `profiler.rs`).

use crate::raw_stack::{CapturedStack, RawStack};
use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized};
use microscope_wire::Frame;
use microscope_wire::ProbeKey;
use std::collections::HashMap;
use std::sync::Arc;

/// One resolved address: its function and, when the address lies in code
/// inlined into it, the inlined functions, outermost first.
type Names = Arc<[Arc<str>]>;

/// Processes whose address caches are kept.
const MAX_PROCESSES: usize = 64;
/// Addresses cached per process (and for the kernel) before that cache is
/// cleared and refilled.
const MAX_ADDRESSES: usize = 32_768;
/// Distinct processes symbolized before blazesym's own caches (open files,
/// parsed ELF/DWARF, one path per `/proc/PID/map_files` entry) are rebuilt
/// from scratch, so a long-running helper does not accumulate them (nor
/// binaries replaced on disk since, which keep their old parsed copy)...
const PROCESSES_PER_GENERATION: usize = 1024;
/// ...but not more often than this: a rebuild re-parses every binary still
/// in use, which is costly for large ones.
const MIN_GENERATION_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// Suffix of frames of functions inlined into their caller.
pub const INLINED_SUFFIX: &str = " (inlined)";
/// The frame shown where a stack was captured but could not be read (its
/// bucket in the stack map held another stack, or it was freed early).
pub const LOST_STACK: &str = "[lost stack]";

/// A stack with names: frames root → leaf, user frames first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedStack {
    /// Probe key.
    pub probe: ProbeKey,
    /// Process id.
    pub tgid: u32,
    /// Thread command name.
    pub comm: String,
    /// `(name, kernel)` from the outermost user frame to the innermost
    /// kernel frame.
    pub frames: Vec<(Arc<str>, bool)>,
    /// Samples, hits, or ns blocked.
    pub value: u64,
}

/// Resolves kernel and user addresses to names, with caches.
pub struct Symbolizer {
    inner: blazesym::symbolize::Symbolizer,
    kernel: HashMap<u64, Names>,
    processes: HashMap<u32, ProcessCache>,
    /// Incremented per [`Symbolizer::symbolize_all`] call, for the LRU.
    clock: u64,
    /// Distinct processes seen since `inner` was (re)built.
    processes_this_generation: usize,
    /// When `inner` was (re)built.
    generation_started: std::time::Instant,
}

struct ProcessCache {
    /// Field 22 of `/proc/PID/stat`: tells a reused pid apart.
    start_time: Option<u64>,
    names: HashMap<u64, Names>,
    last_used: u64,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    /// A symbolizer with empty caches.
    pub fn new() -> Self {
        Self {
            inner: new_blazesym(),
            kernel: HashMap::new(),
            processes: HashMap::new(),
            clock: 0,
            processes_this_generation: 0,
            generation_started: std::time::Instant::now(),
        }
    }

    /// Names every stack of a drain. Addresses are resolved in one batch
    /// per process (and one for the kernel), which is how blazesym is
    /// fastest: it reads each process's memory map once.
    pub fn symbolize_all(&mut self, stacks: &[RawStack]) -> Vec<NamedStack> {
        self.clock += 1;
        // Lookup addresses each stack needs, grouped by address space.
        let mut kernel_addrs = Vec::new();
        let mut user_addrs: HashMap<u32, Vec<u64>> = HashMap::new();
        for stack in stacks {
            let (kernel, user) = lookup_addresses(stack);
            kernel_addrs.extend(kernel);
            user_addrs.entry(stack.tgid).or_default().extend(user);
        }
        self.resolve_kernel(kernel_addrs);
        for (tgid, addrs) in user_addrs {
            self.resolve_user(tgid, addrs);
        }
        self.evict_processes();
        stacks
            .iter()
            .map(|stack| NamedStack {
                probe: stack.probe,
                tgid: stack.tgid,
                comm: stack.comm.clone(),
                frames: self.name_stack(stack),
                value: stack.value,
            })
            .collect()
    }

    /// Names of kernel addresses, each `(function, inlined...)`, resolved
    /// as given (no return-address adjustment).
    pub fn kernel_names(&mut self, addrs: &[u64]) -> Vec<Vec<String>> {
        self.resolve_kernel(addrs.to_vec());
        addrs
            .iter()
            .map(|addr| match self.kernel.get(addr) {
                Some(names) => names.iter().map(|n| n.to_string()).collect(),
                None => vec![unknown_address(*addr)],
            })
            .collect()
    }

    /// Names of addresses in process `tgid`, as [`kernel_names`](Self::kernel_names).
    pub fn user_names(&mut self, tgid: u32, addrs: &[u64]) -> Vec<Vec<String>> {
        self.resolve_user(tgid, addrs.to_vec());
        let cache = self.processes.get(&tgid);
        addrs
            .iter()
            .map(|addr| match cache.and_then(|c| c.names.get(addr)) {
                Some(names) => names.iter().map(|n| n.to_string()).collect(),
                None => vec![unknown_address(*addr)],
            })
            .collect()
    }

    fn name_stack(&self, stack: &RawStack) -> Vec<(Arc<str>, bool)> {
        let (kernel, user) = lookup_addresses(stack);
        let mut frames = Vec::with_capacity(kernel.len() + user.len() + 2);
        let process = self.processes.get(&stack.tgid);
        if matches!(stack.user, CapturedStack::Lost) {
            frames.push((Arc::from(LOST_STACK), false));
        }
        // The kernel gives leaf-first addresses; frames go root-first.
        for addr in user.iter().rev() {
            match process.and_then(|p| p.names.get(addr)) {
                Some(names) => push_names(&mut frames, names, false),
                None => frames.push((Arc::from(unknown_address(*addr)), false)),
            }
        }
        if matches!(stack.kernel, CapturedStack::Lost) {
            frames.push((Arc::from(LOST_STACK), true));
        }
        for addr in kernel.iter().rev() {
            match self.kernel.get(addr) {
                Some(names) => push_names(&mut frames, names, true),
                None => frames.push((Arc::from(unknown_address(*addr)), true)),
            }
        }
        frames
    }

    fn resolve_kernel(&mut self, mut addrs: Vec<u64>) {
        addrs.retain(|a| !self.kernel.contains_key(a));
        addrs.sort_unstable();
        addrs.dedup();
        if addrs.is_empty() {
            return;
        }
        if self.kernel.len() + addrs.len() > MAX_ADDRESSES {
            self.kernel.clear();
        }
        let source = Source::Kernel(Kernel::default());
        let resolved = match self.inner.symbolize(&source, Input::AbsAddr(&addrs)) {
            Ok(symbols) => symbols,
            Err(err) => {
                log::warn!(
                    "kernel addresses could not be symbolized ({err}); they show as addresses"
                );
                Vec::new()
            }
        };
        for (i, addr) in addrs.iter().enumerate() {
            let names = match resolved.get(i) {
                Some(Symbolized::Sym(sym)) => sym_names(sym),
                _ => Arc::from([Arc::from(unknown_address(*addr))]),
            };
            self.kernel.insert(*addr, names);
        }
    }

    fn resolve_user(&mut self, tgid: u32, mut addrs: Vec<u64>) {
        let start_time = process_start_time(tgid);
        let clock = self.clock;
        let is_new = match self.processes.get(&tgid) {
            None => true,
            // The process is gone (`None` now): keep serving its cache.
            Some(cache) => start_time.is_some() && cache.start_time != start_time,
        };
        if is_new {
            self.processes_this_generation += 1;
            if self.processes.contains_key(&tgid) {
                // A reused pid: blazesym's per-pid state is stale too.
                let evict = blazesym::symbolize::evict::Evict::Process(
                    blazesym::symbolize::evict::Process::new(tgid.into()),
                );
                if let Err(err) = self.inner.evict(&evict) {
                    log::debug!("evicting pid {tgid} from the symbolizer failed: {err}");
                }
            }
            self.processes.insert(
                tgid,
                ProcessCache {
                    start_time,
                    names: HashMap::new(),
                    last_used: clock,
                },
            );
        }
        let Some(cache) = self.processes.get_mut(&tgid) else {
            return;
        };
        cache.last_used = clock;
        addrs.retain(|a| !cache.names.contains_key(a));
        addrs.sort_unstable();
        addrs.dedup();
        if addrs.is_empty() {
            return;
        }
        if cache.names.len() + addrs.len() > MAX_ADDRESSES {
            cache.names.clear();
        }
        let resolved = if tgid == 0 {
            Vec::new()
        } else {
            let mut process = Process::new(tgid.into());
            // Perf maps are read by `perfmap`, with its checks.
            process.perf_map = false;
            let source = Source::Process(process);
            match self.inner.symbolize(&source, Input::AbsAddr(&addrs)) {
                Ok(symbols) => symbols,
                // Typically the process exited before its stacks were read.
                Err(err) => {
                    log::debug!("addresses of pid {tgid} could not be symbolized: {err}");
                    Vec::new()
                }
            }
        };
        let mut maps = None;
        let mut perf_map = None;
        for (i, addr) in addrs.iter().enumerate() {
            let names = match resolved.get(i) {
                Some(Symbolized::Sym(sym)) => sym_names(sym),
                _ => {
                    let perf_map = perf_map.get_or_insert_with(|| {
                        crate::perfmap::PerfMap::read(tgid)
                            .inspect_err(|why| log::debug!("no perf map for pid {tgid}: {why}"))
                            .unwrap_or_default()
                    });
                    match perf_map.lookup(*addr) {
                        Some(name) => Arc::from([name.clone()]),
                        None => {
                            let maps = maps.get_or_insert_with(|| read_maps(tgid));
                            Arc::from([Arc::from(unknown_user_address(maps, *addr))])
                        }
                    }
                }
            };
            cache.names.insert(*addr, names);
        }
    }

    /// Keeps at most [`MAX_PROCESSES`] process caches (least recently used
    /// go first), and rebuilds blazesym's caches every
    /// [`PROCESSES_PER_GENERATION`] processes (at most every
    /// [`MIN_GENERATION_AGE`]).
    fn evict_processes(&mut self) {
        while self.processes.len() > MAX_PROCESSES {
            let Some(oldest) = self
                .processes
                .iter()
                .min_by_key(|(_, cache)| cache.last_used)
                .map(|(tgid, _)| *tgid)
            else {
                break;
            };
            self.processes.remove(&oldest);
            let evict = blazesym::symbolize::evict::Evict::Process(
                blazesym::symbolize::evict::Process::new(oldest.into()),
            );
            if let Err(err) = self.inner.evict(&evict) {
                log::debug!("evicting pid {oldest} from the symbolizer failed: {err}");
            }
        }
        if self.processes_this_generation >= PROCESSES_PER_GENERATION
            && self.generation_started.elapsed() >= MIN_GENERATION_AGE
        {
            // Our own per-address caches stay; only future misses re-read files.
            self.inner = new_blazesym();
            self.processes_this_generation = 0;
            self.generation_started = std::time::Instant::now();
        }
    }
}

fn new_blazesym() -> blazesym::symbolize::Symbolizer {
    // Inlined functions and demangling are what a flame graph needs; source
    // lines (code info) are needed to find inlined frames.
    blazesym::symbolize::Symbolizer::builder()
        .enable_code_info(true)
        .enable_inlined_fns(true)
        .enable_demangling(true)
        .build()
}

/// The addresses to look up for `stack`, leaf-first as captured: every
/// return address is moved back by one byte so that it falls inside the
/// call instruction (a call that ends a function, to a function that does
/// not return, would otherwise resolve to the next function). Only the
/// innermost frame of a sample is the exact interrupted instruction.
pub fn lookup_addresses(stack: &RawStack) -> (Vec<u64>, Vec<u64>) {
    let kernel = stack.kernel.frames();
    let user = stack.user.frames();
    let exact_kernel_leaf = stack.leaf_is_ip && !kernel.is_empty();
    let exact_user_leaf = stack.leaf_is_ip && kernel.is_empty();
    let adjust = |addrs: &[u64], exact_leaf: bool| -> Vec<u64> {
        addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i == 0 && exact_leaf {
                    *a
                } else {
                    a.saturating_sub(1)
                }
            })
            .collect()
    };
    (
        adjust(kernel, exact_kernel_leaf),
        adjust(user, exact_user_leaf),
    )
}

fn push_names(frames: &mut Vec<(Arc<str>, bool)>, names: &Names, kernel: bool) {
    frames.extend(names.iter().map(|n| (n.clone(), kernel)));
}

/// The function and the functions inlined at the address, outermost first.
fn sym_names(sym: &blazesym::symbolize::Sym<'_>) -> Names {
    let mut names: Vec<Arc<str>> = Vec::with_capacity(1 + sym.inlined.len());
    names.push(Arc::from(sym.name.as_ref()));
    for inlined in &sym.inlined {
        names.push(Arc::from(format!("{}{INLINED_SUFFIX}", inlined.name)));
    }
    Arc::from(names)
}

/// `[unknown]+0xaddr`: not even the mapping is known.
pub fn unknown_address(addr: u64) -> String {
    format!("[unknown]+{addr:#x}")
}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    file_offset: u64,
    /// The file's name (no directories), or a pseudo-path like `[heap]`;
    /// `None` for anonymous memory.
    module: Option<String>,
}

fn read_maps(tgid: u32) -> Vec<Mapping> {
    std::fs::read_to_string(format!("/proc/{tgid}/maps"))
        .map(|text| parse_maps(&text))
        .unwrap_or_default()
}

/// Parses `/proc/PID/maps`; malformed lines are skipped.
fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(6, ' ');
            let (start, end) = fields.next()?.split_once('-')?;
            let _perms = fields.next()?;
            let offset = fields.next()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            let path = fields.next().unwrap_or("").trim();
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            let module = (!path.is_empty()).then(|| {
                path.rsplit_once('/')
                    .map_or(path, |(_, name)| name)
                    .to_owned()
            });
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                file_offset: u64::from_str_radix(offset, 16).ok()?,
                module,
            })
        })
        .collect()
}

/// `module+0xoffset` (offset into the mapped file) for an address no
/// symbol covers, or `[unknown]+0xaddr` outside any named mapping.
fn unknown_user_address(maps: &[Mapping], addr: u64) -> String {
    maps.iter()
        .find(|m| m.start <= addr && addr < m.end)
        .and_then(|m| {
            let module = m.module.as_ref()?;
            Some(format!("{module}+{:#x}", addr - m.start + m.file_offset))
        })
        .unwrap_or_else(|| unknown_address(addr))
}

/// Start time of process `tgid` in clock ticks since boot, field 22 of
/// `/proc/PID/stat`; `None` when it has exited.
fn process_start_time(tgid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{tgid}/stat")).ok()?;
    // The comm (field 2) may hold spaces and parentheses: skip past its
    // last `)`; field 3 follows, so field 22 is the 20th after it.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Assigns ids to frame names, for the whole life of the helper.
///
/// Ids start at 0 and increase; a name keeps its id forever. Clients learn
/// the names of ids they have not seen from [`StackBatch::frames`]: each
/// client remembers how many ids it has been sent (`sent_upto`) and gets
/// [`frames_since`](Self::frames_since)`(sent_upto)` with its next batch,
/// so a client that joins late still receives every definition it needs.
///
/// [`StackBatch::frames`]: microscope_wire::StackBatch::frames
#[derive(Debug, Default)]
pub struct FrameInterner {
    user: HashMap<Arc<str>, u32>,
    kernel: HashMap<Arc<str>, u32>,
    /// Frames with ids `base..base + frames.len()`.
    frames: std::collections::VecDeque<Frame>,
    /// The oldest id still held; older ones were forgotten by [`trim`](Self::trim).
    base: u32,
}

/// Most names an interner holds (some 20 MiB). [`FrameInterner::trim`]
/// forgets the oldest half past this; ids are never reused, so a forgotten
/// name seen again gets a new id.
pub const MAX_INTERNED_FRAMES: usize = 131_072;

impl FrameInterner {
    /// An interner with no names.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `(name, kernel)`, assigning the next one if it is new.
    pub fn intern(&mut self, name: &str, kernel: bool) -> u32 {
        let id = self.len();
        let ids = if kernel {
            &mut self.kernel
        } else {
            &mut self.user
        };
        if let Some(id) = ids.get(name) {
            return *id;
        }
        // More than 4 billion distinct names cannot happen in practice
        // (each is a function seen in a stack); saturate rather than wrap.
        if id == u32::MAX {
            return id;
        }
        ids.insert(Arc::from(name), id);
        self.frames.push_back(Frame {
            id,
            name: name.to_owned(),
            kernel,
        });
        id
    }

    /// Forgets the oldest half of the names when more than
    /// [`MAX_INTERNED_FRAMES`] are held. Call between batches, never while
    /// a batch is being interned: a batch's ids then all stay defined.
    pub fn trim(&mut self) {
        if self.frames.len() <= MAX_INTERNED_FRAMES {
            return;
        }
        let forget = self.frames.len() / 2;
        for frame in self.frames.drain(..forget) {
            let ids = if frame.kernel {
                &mut self.kernel
            } else {
                &mut self.user
            };
            ids.remove(frame.name.as_str());
        }
        self.base = self.frames.front().map_or(self.base, |f| f.id);
        log::info!(
            "forgot the {forget} oldest frame names; ids start at {} now",
            self.base
        );
    }

    /// How many ids have been assigned (the next id).
    pub fn len(&self) -> u32 {
        let held = u32::try_from(self.frames.len()).unwrap_or(u32::MAX);
        self.base.saturating_add(held)
    }

    /// Whether no name has been interned yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame with id `id`, unless it was forgotten.
    pub fn get(&self, id: u32) -> Option<&Frame> {
        self.frames
            .get(usize::try_from(id.checked_sub(self.base)?).ok()?)
    }

    /// Every frame with an id of at least `sent_upto`, in id order: what a
    /// client that has been sent ids `0..sent_upto` still needs.
    /// Forgotten ones are not needed: no batch interned since uses them.
    pub fn frames_since(&self, sent_upto: u32) -> Vec<Frame> {
        let from = usize::try_from(sent_upto.saturating_sub(self.base)).unwrap_or(usize::MAX);
        self.frames
            .range(from.min(self.frames.len())..)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_gives_stable_ids_per_name_and_space() {
        let mut interner = FrameInterner::new();
        assert!(interner.is_empty());
        let a = interner.intern("main", false);
        let b = interner.intern("schedule", true);
        let c = interner.intern("main", true);
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(interner.intern("main", false), a);
        assert_eq!(interner.len(), 3);
        assert_eq!(interner.get(1).unwrap().name, "schedule");
        assert!(interner.get(1).unwrap().kernel);
        assert!(interner.get(3).is_none());
    }

    #[test]
    fn a_late_client_gets_every_definition() {
        let mut interner = FrameInterner::new();
        let early = ["a", "b", "c"].map(|n| interner.intern(n, false));
        // The first client was sent everything so far.
        let first_sent = interner.len();
        let late = interner.intern("d", true);
        // The first client only needs the new name...
        let for_first = interner.frames_since(first_sent);
        assert_eq!(for_first.len(), 1);
        assert_eq!(for_first[0].id, late);
        // ...a client joining now (sent_upto 0) gets all four, in id order.
        let for_late = interner.frames_since(0);
        let ids: Vec<u32> = for_late.iter().map(|f| f.id).collect();
        assert_eq!(ids, [early[0], early[1], early[2], late]);
        assert!(interner.frames_since(interner.len()).is_empty());
        assert!(interner.frames_since(u32::MAX).is_empty());
    }

    #[test]
    fn the_interner_forgets_old_names_but_never_reuses_ids() {
        let mut interner = FrameInterner::new();
        for i in 0..=MAX_INTERNED_FRAMES {
            interner.intern(&format!("f{i}"), false);
        }
        let next = interner.len();
        interner.trim();
        assert_eq!(interner.len(), next, "trimming assigns nothing");
        assert!(interner.get(0).is_none(), "the oldest are forgotten");
        let kept = interner.get(next - 1).unwrap();
        assert_eq!(kept.name, format!("f{MAX_INTERNED_FRAMES}"));
        // A forgotten name comes back under a new id.
        assert_eq!(interner.intern("f0", false), next);
        // A client sent nothing gets only what is held.
        let all = interner.frames_since(0);
        assert_eq!(
            all.first().map(|f| f.id),
            Some((MAX_INTERNED_FRAMES as u32).div_ceil(2))
        );
        assert_eq!(all.last().map(|f| f.id), Some(next));
    }

    #[test]
    fn maps_lines_parse_and_name_unknown_addresses() {
        let maps = parse_maps(
            "55d0c0000000-55d0c0001000 r--p 00000000 fd:01 123 /usr/bin/true\n\
             55d0c0001000-55d0c0005000 r-xp 00001000 fd:01 123 /usr/bin/true\n\
             7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n\
             7f0000100000-7f0000200000 r-xp 00010000 fd:01 9 /tmp/jit (deleted)\n\
             7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n\
             garbage line\n",
        );
        assert_eq!(maps.len(), 5);
        assert_eq!(
            unknown_user_address(&maps, 0x55d0c0001234),
            "true+0x1234",
            "offset into the file, not into the mapping"
        );
        assert_eq!(unknown_user_address(&maps, 0x7f0000100010), "jit+0x10010");
        assert_eq!(
            unknown_user_address(&maps, 0x7f0000000010),
            "[unknown]+0x7f0000000010"
        );
        assert_eq!(unknown_user_address(&maps, 0x7ffd00000008), "[stack]+0x8");
        assert_eq!(unknown_user_address(&maps, 0x10), "[unknown]+0x10");
        assert!(parse_maps("").is_empty());
    }

    #[test]
    fn return_addresses_move_back_one_byte() {
        let stack = |kernel: Vec<u64>, user: Vec<u64>, leaf_is_ip| RawStack {
            probe: 0,
            tgid: 1,
            comm: String::new(),
            kernel: CapturedStack::from_frames(kernel),
            user: CapturedStack::from_frames(user),
            value: 1,
            leaf_is_ip,
        };
        // A kernel-mode sample: the kernel leaf is exact, the rest are
        // return addresses (the user "leaf" follows the syscall instruction).
        let (k, u) = lookup_addresses(&stack(vec![100, 200], vec![300, 400], true));
        assert_eq!((k, u), (vec![100, 199], vec![299, 399]));
        // A user-mode sample: the user leaf is exact.
        let (k, u) = lookup_addresses(&stack(vec![], vec![300, 400], true));
        assert_eq!((k, u), (vec![], vec![300, 399]));
        // Stacks captured at a tracepoint: every frame is a return address.
        let (k, u) = lookup_addresses(&stack(vec![100], vec![300], false));
        assert_eq!((k, u), (vec![99], vec![299]));
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(process_start_time(std::process::id()).is_some());
        assert!(process_start_time(u32::MAX).is_none());
    }
}
