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
//! Entry programs ask the process filter table which slots keep the
//! thread, bump `CALLS` of each and remember the time and those slots in
//! `START` under the thread's pid_tgid; exit programs take them out again
//! and add one to the log2 bucket of the difference in `LATENCY` of the same
//! slots. Each client of the helper reads the slot of its own filter.
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
use microscope_ebpf::{for_each_slot, slots_keeping_current};
use probes_common::{
    EntryStart, FILTER_SLOTS, FUNCTION_START_ENTRIES, FilterTable, LATENCY_BUCKETS, log2_bucket,
};

/// Calls of the function, per CPU, by filter slot.
#[map]
static CALLS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FILTER_SLOTS, 0);

/// Log2 histogram of entry-to-return time in ns, per CPU, indexed by filter
/// slot × `LATENCY_BUCKETS` + bucket: bucket `i` counts calls that took
/// `[2^i, 2^(i+1))` ns.
#[map]
static LATENCY: PerCpuArray<u64> = PerCpuArray::with_max_entries(LATENCY_BUCKETS * FILTER_SLOTS, 0);

/// When each thread (by pid_tgid) entered the function, in ns, and which
/// filter slots kept it. LRU so that threads which die inside the function
/// cannot fill it up.
#[map]
static START: LruHashMap<u64, EntryStart> = LruHashMap::with_max_entries(FUNCTION_START_ENTRIES, 0);

/// The process filters, one per slot (one entry; all zero keeps nothing).
#[map]
static FILTER: Array<FilterTable> = Array::with_max_entries(1, 0);

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
    let slots = slots_keeping_current(FILTER.get(0));
    if slots == 0 {
        return 0;
    }
    for_each_slot(slots, |slot| {
        if let Some(count) = CALLS.get_ptr_mut(slot) {
            bump(count);
        }
    });
    let start = EntryStart {
        // SAFETY: plain BPF helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        slots,
        _pad: 0,
    };
    // A full LRU map evicts its oldest entry, so insert cannot meaningfully fail.
    let _ = START.insert(bpf_get_current_pid_tgid(), start, 0);
    0
}

/// Exit half, shared by every mechanism. No filter check: only entries that
/// passed it left a start time, with the slots to count the call in.
#[inline(always)]
fn exit() -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(start) = START.get_ptr(pid_tgid) else {
        return 0;
    };
    // SAFETY: the pointer comes from a successful lookup; plain BPF helper.
    let (start, now_ns) = unsafe { (*start, bpf_ktime_get_ns()) };
    let _ = START.remove(pid_tgid);
    let bucket = log2_bucket(now_ns.saturating_sub(start.ts_ns));
    for_each_slot(start.slots, |slot| {
        if let Some(count) = LATENCY.get_ptr_mut(slot * LATENCY_BUCKETS + bucket) {
            bump(count);
        }
    });
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
