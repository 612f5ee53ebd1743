//! One function probe: counts calls of one kernel or user function and the
//! time from its entry to its return, in the kernel.
//!
//! The helper loads a fresh instance of this object for every function probe
//! and loads and attaches only the pair of programs the mechanism needs
//! (`fn_kprobe` + `fn_kretprobe`, `fn_fentry` + `fn_fexit`, or `fn_uprobe` +
//! `fn_uretprobe`). The maps therefore belong to that one function: no key
//! lookup per call, and detaching is dropping the instance. fentry programs
//! are verified against the target function's BTF at load time, which also
//! makes one load per function the natural unit.
//!
//! Entry programs check the process filter, bump `CALLS` and remember the
//! time in `START` under the thread's pid_tgid; exit programs take that time
//! out again and add one to the log2 bucket of the difference in `LATENCY`.
//! An exit without a remembered entry (the probe was attached while the
//! thread was inside the function, the filter dropped the entry, or the LRU
//! map evicted it) is ignored.
//!
//! Recursion: the entry time is keyed by thread, so a recursive call
//! overwrites its caller's entry time. The innermost call of a nest is timed
//! correctly and the outer ones are counted but not timed, rather than
//! timed wrongly.
#![no_std]
#![no_main]
#![expect(
    internal_features,
    reason = "atomic_xadd: the eBPF target has no 64-bit atomic add otherwise"
)]
#![feature(core_intrinsics)]

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{fentry, fexit, kprobe, kretprobe, map, uprobe, uretprobe},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use microscope_ebpf::keep_current;
use probes_common::{FUNCTION_START_ENTRIES, LATENCY_BUCKETS, ProcessFilterConfig, log2_bucket};

/// Calls of the function that passed the filter, per CPU (one slot).
#[map]
static CALLS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Log2 histogram of entry-to-return time in ns, per CPU: slot `i` counts
/// calls that took `[2^i, 2^(i+1))` ns.
#[map]
static LATENCY: PerCpuArray<u64> = PerCpuArray::with_max_entries(LATENCY_BUCKETS, 0);

/// When each thread (by pid_tgid) entered the function, in ns. LRU so that
/// threads which die inside the function cannot fill it up.
#[map]
static START: LruHashMap<u64, u64> = LruHashMap::with_max_entries(FUNCTION_START_ENTRIES, 0);

/// The process filter (one entry; all zero keeps everything).
#[map]
static FILTER: Array<ProcessFilterConfig> = Array::with_max_entries(1, 0);

/// Adds one to a per-CPU slot. Atomic because uprobe programs run with
/// migration, not preemption, disabled: another task on this CPU may run the
/// same program between a plain load and store.
#[inline(always)]
fn bump(slot: *mut u64) {
    // SAFETY: `slot` comes from a successful map lookup, so it points at a
    // live, aligned u64 of this CPU's copy of the map.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            slot, 1,
        );
    }
}

/// Entry half, shared by every mechanism.
#[inline(always)]
fn enter() -> u32 {
    if !keep_current(FILTER.get(0)) {
        return 0;
    }
    if let Some(slot) = CALLS.get_ptr_mut(0) {
        bump(slot);
    }
    // SAFETY: plain BPF helper without arguments.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    // A full LRU map evicts its oldest entry, so insert cannot meaningfully fail.
    let _ = START.insert(bpf_get_current_pid_tgid(), now_ns, 0);
    0
}

/// Exit half, shared by every mechanism. No filter check: only entries that
/// passed it left a start time.
#[inline(always)]
fn exit() -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(start) = START.get_ptr(pid_tgid) else {
        return 0;
    };
    // SAFETY: the pointer comes from a successful lookup; plain BPF helper.
    let (start_ns, now_ns) = unsafe { (*start, bpf_ktime_get_ns()) };
    let _ = START.remove(pid_tgid);
    if let Some(slot) = LATENCY.get_ptr_mut(log2_bucket(now_ns.saturating_sub(start_ns))) {
        bump(slot);
    }
    0
}

/// Kernel function entry, through a kprobe.
#[kprobe]
pub fn fn_kprobe(_ctx: ProbeContext) -> u32 {
    enter()
}

/// Kernel function return, through a kretprobe.
#[kretprobe]
pub fn fn_kretprobe(_ctx: RetProbeContext) -> u32 {
    exit()
}

/// Kernel function entry, through a BPF trampoline (the target is chosen at
/// load time).
#[fentry]
pub fn fn_fentry(_ctx: FEntryContext) -> u32 {
    enter()
}

/// Kernel function return, through a BPF trampoline.
#[fexit]
pub fn fn_fexit(_ctx: FExitContext) -> u32 {
    exit()
}

/// User function entry.
#[uprobe]
pub fn fn_uprobe(_ctx: ProbeContext) -> u32 {
    enter()
}

/// User function return.
#[uretprobe]
pub fn fn_uretprobe(_ctx: RetProbeContext) -> u32 {
    exit()
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
