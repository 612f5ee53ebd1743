//! Microscope's profiler: where the CPUs spend their time (on-CPU) and
//! where threads wait (off-CPU), counted per stack in the kernel.
//!
//! A separate object from `main.rs` so that the profiler can be loaded,
//! attached and cleared on its own; the helper loads it the first time a
//! profile is started.
//!
//! - `on_cpu` runs on a `cpu-clock` perf event, once per sample on every
//!   CPU (99 Hz by default, chosen by the helper at attach time). It adds 1
//!   to `COUNTS[(PROFILE_ON_CPU, tgid, kernel stack, user stack, comm)]`.
//!   The idle task (pid 0, `swapper/N`) is skipped: the profile answers
//!   "what is the CPU doing"; the share of idle is what is missing from
//!   `hz × CPUs × seconds`, and the CPU timeline shows it directly.
//! - `off_cpu` runs on `sched:sched_switch`. The task leaving the CPU
//!   (`prev`) is still `current`, so its stacks are captured then and kept
//!   with the time in `BLOCKED[pid]`; when that pid is switched back in
//!   (`next`), the time it was away is added to `OFF_COUNTS[key]` if it is
//!   at least the configured minimum. Preemption is not blocking: a task
//!   that left in `TASK_RUNNING` state (the low byte of `prev_state` is 0,
//!   whatever the preempt bit 0x100 says) is not recorded; neither are
//!   exiting tasks, which never come back.
//!
//! Both count maps are aggregated in the kernel; the helper reads and
//! deletes them about once a second and frees the stacks they used.
//! On-CPU and off-CPU use separate stack maps so that draining one never
//! frees a stack the other still refers to.
#![no_std]
#![no_main]
#![expect(
    internal_features,
    reason = "`atomic_xadd`: the eBPF target has no 64-bit atomic add otherwise"
)]
#![feature(core_intrinsics)]

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_F_USER_STACK, BPF_NOEXIST},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel,
    },
    macros::{map, perf_event, tracepoint},
    maps::{Array, HashMap, LruHashMap, StackTrace},
    programs::{PerfEventContext, TracePointContext, tracing::StackIdContext},
};
use microscope_ebpf::keep_current;
use probes_common::{
    BLOCKED_ENTRIES, BlockStart, COMM_LEN, DEFAULT_MIN_BLOCK_NS, FIELD_MISSING, FilterTable,
    PROFILE_OFF_CPU, PROFILE_ON_CPU, STACK_ENTRIES, StackKey,
};

/// Stacks of on-CPU samples.
#[map]
static STACKS: StackTrace = StackTrace::with_max_entries(STACK_ENTRIES, 0);

/// Samples per (process, stacks, comm).
#[map]
static COUNTS: HashMap<StackKey, u64> = HashMap::with_max_entries(STACK_ENTRIES, 0);

/// Stacks of threads that blocked.
#[map]
static OFF_STACKS: StackTrace = StackTrace::with_max_entries(STACK_ENTRIES, 0);

/// Nanoseconds blocked per (process, stacks, comm).
#[map]
static OFF_COUNTS: HashMap<StackKey, u64> = HashMap::with_max_entries(STACK_ENTRIES, 0);

/// Threads now blocked, by kernel pid: since when, and where.
#[map]
static BLOCKED: LruHashMap<u32, BlockStart> = LruHashMap::with_max_entries(BLOCKED_ENTRIES, 0);

/// Shortest block that counts, in ns (one entry; 0 until the helper sets it
/// means the default).
#[map]
static MIN_BLOCK_NS: Array<u64> = Array::with_max_entries(1, 0);

/// The process filters, one per slot (one entry; all zero keeps nothing).
/// A sample is kept if any slot keeps its task; the helper gives each
/// client the samples its own filter keeps.
#[map]
static FILTER: Array<FilterTable> = Array::with_max_entries(1, 0);

// `sched_switch` field offsets, set by the helper from tracefs (the names
// are those of `probes_common::FIELD_GLOBALS`). Read through `offset()` so
// the compiler cannot fold them into constants.
#[unsafe(no_mangle)]
static SWITCH_PREV_STATE: u32 = FIELD_MISSING;
#[unsafe(no_mangle)]
static SWITCH_NEXT_PID: u32 = FIELD_MISSING;

/// `prev_state` bits that mean "left the CPU to wait": the kernel's
/// `TASK_REPORT` states plus `TASK_REPORT_IDLE` (0x80). Above them sits
/// `TASK_REPORT_MAX` (0x100), set on preemption; 0 means runnable.
const BLOCKED_STATES: u8 = 0xff;
/// `EXIT_DEAD` | `EXIT_ZOMBIE`: the task is exiting and will not come back.
const EXITING_STATES: u8 = 0x10 | 0x20;

#[perf_event]
pub fn on_cpu(ctx: PerfEventContext) -> u32 {
    try_on_cpu(&ctx).unwrap_or(1)
}

fn try_on_cpu(ctx: &PerfEventContext) -> Result<u32, i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if pid_tgid as u32 == 0 || !keep_current(FILTER.get(0)) {
        return Ok(0);
    }
    let key = stack_key(ctx, PROFILE_ON_CPU, pid_tgid, &STACKS);
    add(&COUNTS, &key, 1);
    Ok(0)
}

#[tracepoint]
pub fn off_cpu(ctx: TracePointContext) -> u32 {
    try_off_cpu(&ctx).unwrap_or(1)
}

fn try_off_cpu(ctx: &TracePointContext) -> Result<u32, i64> {
    // SAFETY: plain BPF helper without arguments.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    let record = record_prefix(ctx);

    // `prev` is `current`: remember where and when it blocked.
    let pid_tgid = bpf_get_current_pid_tgid();
    let prev_pid = pid_tgid as u32;
    let state: u8 = field(&record, &SWITCH_PREV_STATE);
    if prev_pid != 0
        && state & BLOCKED_STATES != 0
        && state & EXITING_STATES == 0
        && keep_current(FILTER.get(0))
    {
        let start = BlockStart {
            ts_ns: now_ns,
            key: stack_key(ctx, PROFILE_OFF_CPU, pid_tgid, &OFF_STACKS),
        };
        // A full LRU map evicts the longest-blocked thread instead of
        // failing; should it fail anyway, this block is simply not counted.
        let _ = BLOCKED.insert(prev_pid, start, 0);
    }

    // `next` comes back: add the time it was away to its stacks.
    let next_pid: u32 = field(&record, &SWITCH_NEXT_PID);
    if next_pid == 0 {
        return Ok(0);
    }
    let Some(start) = BLOCKED.get_ptr(next_pid) else {
        return Ok(0);
    };
    // SAFETY: the pointer comes from a successful lookup; the value is
    // copied out before the entry is removed.
    let start = unsafe { *start };
    // Already gone is fine: another CPU switched it in first.
    let _ = BLOCKED.remove(next_pid);
    let blocked_ns = now_ns.saturating_sub(start.ts_ns);
    if blocked_ns >= min_block_ns() {
        add(&OFF_COUNTS, &start.key, blocked_ns);
    }
    Ok(0)
}

/// The counts key of the current task, with both its stacks captured in
/// `stacks` (a negative id when a stack could not be taken: none in user
/// space for kernel threads, none in the kernel for user-mode samples, or
/// the map's bucket holds another stack).
#[inline(always)]
fn stack_key<C: StackIdContext>(ctx: &C, id: u32, pid_tgid: u64, stacks: &StackTrace) -> StackKey {
    StackKey {
        id,
        tgid: (pid_tgid >> 32) as u32,
        kernel_stack: ctx
            .get_stackid(stacks, 0)
            .map_or_else(|e| e, |id| id as i32),
        user_stack: ctx
            .get_stackid(stacks, u64::from(BPF_F_USER_STACK))
            .map_or_else(|e| e, |id| id as i32),
        comm: bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
    }
}

#[inline(always)]
fn min_block_ns() -> u64 {
    match MIN_BLOCK_NS.get(0) {
        Some(&ns) if ns > 0 => ns,
        _ => DEFAULT_MIN_BLOCK_NS,
    }
}

/// Adds `value` to `counts[key]`, creating the entry if needed.
#[inline(always)]
fn add(counts: &HashMap<StackKey, u64>, key: &StackKey, value: u64) {
    if let Some(count) = counts.get_ptr_mut(key) {
        // SAFETY: the pointer comes from a successful lookup; several CPUs
        // may add to the same entry, and the atomic add keeps the sum exact.
        unsafe { atomic_add(count, value) };
        return;
    }
    // Another CPU may insert the same key first: BPF_NOEXIST then fails
    // and the value is added to its entry instead. A full map (more
    // distinct stacks in one drain interval than it holds) loses the value.
    if counts.insert(key, value, u64::from(BPF_NOEXIST)).is_err()
        && let Some(count) = counts.get_ptr_mut(key)
    {
        // SAFETY: as above.
        unsafe { atomic_add(count, value) };
    }
}

/// # Safety
/// `count` must point at a live map value.
#[inline(always)]
unsafe fn atomic_add(count: *mut u64, value: u64) {
    // SAFETY: the caller guarantees `count` is valid; the intrinsic compiles
    // to BPF_ATOMIC | BPF_ADD, which every kernel with BPF ring buffers has.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            count, value,
        );
    }
}

/// Bytes copied from the start of the `sched_switch` record: every field
/// used here lies in the first 64 bytes (the record ends at 64).
const RECORD_PREFIX: usize = 64;

#[inline(always)]
fn record_prefix(ctx: &TracePointContext) -> [u8; RECORD_PREFIX] {
    // SAFETY: `bpf_probe_read_kernel` copes with any address; a record
    // shorter than the prefix is followed by more of the per-CPU trace
    // buffer, so the copy stays in mapped memory and the extra bytes are
    // never used.
    unsafe { bpf_probe_read_kernel(ctx.as_ptr().cast::<[u8; RECORD_PREFIX]>()) }
        .unwrap_or([0; RECORD_PREFIX])
}

#[inline(always)]
fn offset(global: &u32) -> usize {
    // SAFETY: `global` is a valid reference; the volatile read only stops the
    // compiler from assuming the value it was initialised with.
    unsafe { core::ptr::read_volatile(global) as usize }
}

/// The field of type `T` at the offset held by `global`, or `T`'s default
/// when the offset is outside the prefix (the helper refuses to attach when
/// a field is missing, so this only guards the verifier's view).
#[inline(always)]
fn field<T: Copy + Default>(record: &[u8; RECORD_PREFIX], global: &u32) -> T {
    let off = offset(global);
    if off > RECORD_PREFIX - size_of::<T>() {
        return T::default();
    }
    // SAFETY: `off + size_of::<T>() <= RECORD_PREFIX`, checked above; the
    // read is unaligned-safe and `T` is a plain integer.
    unsafe { core::ptr::read_unaligned(record.as_ptr().add(off).cast::<T>()) }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
