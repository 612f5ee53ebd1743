//! Microscope's eBPF programs.
//!
//! Streamed probes reserve a record in the `EVENTS` ring buffer, fill it in
//! place and submit it with `BPF_RB_NO_WAKEUP`: the helper polls the buffer on
//! a timer, so the kernel never wakes it per event (wake-ups themselves cost
//! ~80k context switches/s at full rate, see ARCHITECTURE.md). A full buffer
//! bumps the per-CPU `DROPS` counter of that event kind.
//!
//! Aggregated probes never touch the ring buffer: syscall counts and the
//! latency histogram are per-CPU arrays that the helper sums and diffs,
//! one part per process filter slot (`probes_common::FilterTable`): a
//! syscall is counted once in each slot whose filter keeps its task, so
//! each client reads exactly what its own filter keeps.
//!
//! Tracepoint field offsets are read from `u32` globals that the helper sets
//! at load time from each tracepoint's `format` file (see
//! `probes_common::FIELD_GLOBALS`).
//!
//! Each program has its own ELF section (`tracepoint/microscope/NAME`; the
//! helper attaches them by program name to whichever tracepoint a probe
//! names, so the target part of the section is only a label). With one
//! shared `tracepoint` section, aya copies the whole section's BTF line
//! information into every program it parses: 74 programs × ~300 KB kept
//! 22 MiB of the idle helper's heap (measured with heaptrack), growing
//! with the square of the number of programs.
#![no_std]
#![no_main]
// `atomic_xadd`: the eBPF target has no 64-bit atomic add otherwise.
#![allow(internal_features)]
#![feature(core_intrinsics)]

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_F_USER_STACK, BPF_NOEXIST, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user_str_bytes,
    },
    macros::{fentry, map, tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf, StackTrace},
    programs::{FEntryContext, TracePointContext, tracing::StackIdContext as _},
};
use microscope_ebpf::{for_each_slot, keep_current, slots_keeping_current};
use probes_common::{
    COMM_LEN, EVENT_KINDS, EntryStart, EventHeader, EventKind, FIELD_MISSING, FILTER_SLOTS,
    FilterTable, LATENCY_BUCKETS, OpenatEvent, RING_BYTES, SLOT_COUNT_ONLY, SLOT_STACKS,
    STACK_ENTRIES, SYSCALL_SLOTS, SYSCALL_START_ENTRIES, SchedExecEvent, SchedExitEvent,
    SchedForkEvent, SchedSwitchEvent, SchedWakeupEvent, StackKey, TP_SLOTS, TracepointEvent,
    log2_bucket,
};

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Records lost because `EVENTS` was full, per CPU, indexed by `EventKind`.
#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(EVENT_KINDS, 0);

/// Syscalls entered, per CPU, indexed by filter slot × `SYSCALL_SLOTS` +
/// syscall number.
#[map]
static SYSCALL_COUNTS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(SYSCALL_SLOTS * FILTER_SLOTS, 0);

/// Log2 histogram of syscall latency in ns, per CPU, indexed by filter slot
/// × `LATENCY_BUCKETS` + bucket.
#[map]
static SYSCALL_LATENCY: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(LATENCY_BUCKETS * FILTER_SLOTS, 0);

/// When each thread (by kernel pid) entered its current syscall, in ns, and
/// which filter slots kept it. LRU so that threads which die inside a
/// syscall cannot fill it up.
#[map]
static SYSCALL_START: LruHashMap<u32, EntryStart> =
    LruHashMap::with_max_entries(SYSCALL_START_ENTRIES, 0);

/// The process filters, one per slot (one entry; all zero keeps nothing).
#[map]
static FILTER: Array<FilterTable> = Array::with_max_entries(1, 0);

/// Generic tracepoint records lost because `EVENTS` was full, per CPU, by
/// slot.
#[map]
static TP_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(TP_SLOTS, 0);

/// Hits of each generic slot with [`SLOT_COUNT_ONLY`], per CPU, by filter
/// slot: index `filter_slot * TP_SLOTS + slot`.
#[map]
static TP_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(TP_SLOTS * FILTER_SLOTS, 0);

/// Options of each generic slot ([`SLOT_STACKS`], [`SLOT_COUNT_ONLY`]), set by the helper before
/// it attaches the slot's program.
#[map]
static TP_SLOT_OPTIONS: Array<u32> = Array::with_max_entries(TP_SLOTS, 0);

/// Kernel and user stacks captured at tracepoints with stacks on.
#[map]
static STACKS: StackTrace = StackTrace::with_max_entries(STACK_ENTRIES, 0);

/// Hits per (tracepoint, process, stacks).
#[map]
static STACK_COUNTS: HashMap<StackKey, u64> = HashMap::with_max_entries(STACK_ENTRIES, 0);

// Field offsets, set by the helper from tracefs (`FIELD_MISSING` until then).
// Read through `offset()` so the compiler cannot fold them into constants.
macro_rules! offsets {
    ($($name:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            static $name: u32 = FIELD_MISSING;
        )*
    };
}

offsets!(
    SWITCH_PREV_COMM,
    SWITCH_PREV_PID,
    SWITCH_PREV_PRIO,
    SWITCH_PREV_STATE,
    SWITCH_NEXT_COMM,
    SWITCH_NEXT_PID,
    SWITCH_NEXT_PRIO,
    WAKEUP_COMM,
    WAKEUP_PID,
    WAKEUP_PRIO,
    WAKEUP_TARGET_CPU,
    FORK_PARENT_PID,
    FORK_CHILD_PID,
    EXEC_FILENAME,
    EXEC_PID,
    EXEC_OLD_PID,
    EXIT_PID,
    EXIT_PRIO,
    EXIT_GROUP_DEAD,
    OPENAT_DFD,
    OPENAT_FILENAME,
    OPENAT_FLAGS,
    OPENAT_MODE,
    RAW_ENTER_ID,
);

#[inline(always)]
fn offset(global: &u32) -> usize {
    // SAFETY: `global` is a valid reference; the volatile read only stops the
    // compiler from assuming the value it was initialised with.
    unsafe { core::ptr::read_volatile(global) as usize }
}

/// Bytes copied from the start of a tracepoint record. Every fixed field our
/// programs read lies in the first 64 bytes (`sched_switch` ends at 64).
const RECORD_PREFIX: usize = 64;

/// The first [`RECORD_PREFIX`] bytes of the tracepoint record, in one helper
/// call. Reading each field with its own `bpf_probe_read` cost ~60 ns per
/// field here; one copy plus plain loads is several times cheaper.
#[inline(always)]
fn record_prefix(ctx: &TracePointContext) -> [u8; RECORD_PREFIX] {
    // SAFETY: `bpf_probe_read_kernel` copes with any address. A record shorter
    // than the prefix is followed by more of the per-CPU trace buffer, so the
    // copy stays in mapped memory; bytes past the record are never used.
    unsafe { bpf_probe_read_kernel(ctx.as_ptr().cast::<[u8; RECORD_PREFIX]>()) }
        .unwrap_or([0; RECORD_PREFIX])
}

/// The field of type `T` at the offset held by `global`, or `T`'s default
/// when the offset is outside the prefix (the helper never attaches a program
/// whose fields are missing, so this only guards the verifier's view).
#[inline(always)]
fn field<T: Copy + Default>(record: &[u8; RECORD_PREFIX], global: &u32) -> T {
    let off = offset(global);
    if off > RECORD_PREFIX - size_of::<T>() {
        return T::default();
    }
    // SAFETY: `off + size_of::<T>() <= RECORD_PREFIX`, checked above; the
    // read is unaligned-safe and `T` is a plain integer or byte array.
    unsafe { core::ptr::read_unaligned(record.as_ptr().add(off).cast::<T>()) }
}

#[inline(always)]
fn header(kind: EventKind) -> EventHeader {
    let pid_tgid = bpf_get_current_pid_tgid();
    EventHeader {
        kind: kind as u32,
        // SAFETY: plain BPF helpers without arguments.
        cpu: unsafe { bpf_get_smp_processor_id() },
        // SAFETY: as above.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        comm: bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
    }
}

#[inline(always)]
fn count_drop(kind: EventKind) {
    if let Some(slot) = DROPS.get_ptr_mut(kind as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it (preemption is off in
        // tracepoint programs).
        unsafe { *slot += 1 };
    }
}

/// Reserves a `T` in the ring buffer, lets `fill` write it, submits it
/// without waking the reader. Counts a drop when the buffer is full.
#[inline(always)]
fn emit<T: 'static>(kind: EventKind, fill: impl FnOnce(*mut T)) -> u32 {
    if !keep_current(FILTER.get(0)) {
        return 0;
    }
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            fill(entry.as_mut_ptr());
            entry.submit(BPF_RB_NO_WAKEUP as u64);
        }
        None => count_drop(kind),
    }
    0
}

#[tracepoint(category = "microscope", name = "sched_switch")]
pub fn sched_switch(ctx: TracePointContext) -> u32 {
    let record = record_prefix(&ctx);
    emit::<SchedSwitchEvent>(EventKind::SchedSwitch, |e| {
        // SAFETY: `e` points at a reserved record of the right size.
        unsafe {
            (*e).header = header(EventKind::SchedSwitch);
            (*e).prev_pid = field(&record, &SWITCH_PREV_PID);
            (*e).next_pid = field(&record, &SWITCH_NEXT_PID);
            (*e).prev_prio = field(&record, &SWITCH_PREV_PRIO);
            (*e).next_prio = field(&record, &SWITCH_NEXT_PRIO);
            (*e).prev_state = field(&record, &SWITCH_PREV_STATE);
            (*e).prev_comm = field::<[u8; COMM_LEN]>(&record, &SWITCH_PREV_COMM);
            (*e).next_comm = field::<[u8; COMM_LEN]>(&record, &SWITCH_NEXT_COMM);
        }
    })
}

#[tracepoint(category = "microscope", name = "sched_wakeup")]
pub fn sched_wakeup(ctx: TracePointContext) -> u32 {
    let record = record_prefix(&ctx);
    emit::<SchedWakeupEvent>(EventKind::SchedWakeup, |e| {
        // SAFETY: `e` points at a reserved record of the right size.
        unsafe {
            (*e).header = header(EventKind::SchedWakeup);
            (*e).pid = field(&record, &WAKEUP_PID);
            (*e).prio = field(&record, &WAKEUP_PRIO);
            (*e).target_cpu = field(&record, &WAKEUP_TARGET_CPU);
            (*e)._pad = 0;
            (*e).comm = field::<[u8; COMM_LEN]>(&record, &WAKEUP_COMM);
        }
    })
}

#[tracepoint(category = "microscope", name = "sched_process_fork")]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let record = record_prefix(&ctx);
    emit::<SchedForkEvent>(EventKind::SchedFork, |e| {
        // SAFETY: `e` points at a reserved record of the right size.
        unsafe {
            (*e).header = header(EventKind::SchedFork);
            (*e).parent_pid = field(&record, &FORK_PARENT_PID);
            (*e).child_pid = field(&record, &FORK_CHILD_PID);
        }
    })
}

#[tracepoint(category = "microscope", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let record = record_prefix(&ctx);
    emit::<SchedExecEvent>(EventKind::SchedExec, |e| {
        // SAFETY: `e` points at a reserved record of the right size. The
        // filename is a `__data_loc` field: a u32 whose low 16 bits are the
        // string's offset from the start of the record.
        unsafe {
            (*e).header = header(EventKind::SchedExec);
            (*e).pid = field(&record, &EXEC_PID);
            (*e).old_pid = field(&record, &EXEC_OLD_PID);
            let loc: u32 = field(&record, &EXEC_FILENAME);
            let src = ctx.as_ptr().cast::<u8>().add((loc & 0xffff) as usize);
            if bpf_probe_read_kernel_str_bytes(src, &mut (*e).filename).is_err() {
                (*e).filename[0] = 0;
            }
        }
    })
}

#[tracepoint(category = "microscope", name = "sched_process_exit")]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let record = record_prefix(&ctx);
    emit::<SchedExitEvent>(EventKind::SchedExit, |e| {
        // SAFETY: `e` points at a reserved record of the right size.
        unsafe {
            (*e).header = header(EventKind::SchedExit);
            (*e).pid = field(&record, &EXIT_PID);
            (*e).prio = field(&record, &EXIT_PRIO);
            (*e).group_dead = u32::from(field::<u8>(&record, &EXIT_GROUP_DEAD));
            (*e)._pad = 0;
        }
    })
}

#[tracepoint(category = "microscope", name = "sys_enter_openat")]
pub fn sys_enter_openat(ctx: TracePointContext) -> u32 {
    let record = record_prefix(&ctx);
    emit::<OpenatEvent>(EventKind::Openat, |e| {
        // SAFETY: `e` points at a reserved record of the right size. Syscall
        // arguments are 8-byte fields whatever their C type.
        unsafe {
            (*e).header = header(EventKind::Openat);
            (*e).dfd = field::<u64>(&record, &OPENAT_DFD) as i32;
            (*e).flags = field::<u64>(&record, &OPENAT_FLAGS) as u32;
            (*e).mode = field::<u64>(&record, &OPENAT_MODE) as u32;
            (*e)._pad = 0;
            let path = field::<u64>(&record, &OPENAT_FILENAME) as *const u8;
            if bpf_probe_read_user_str_bytes(path, &mut (*e).filename).is_err() {
                (*e).filename[0] = 0;
            }
        }
    })
}

/// `raw_syscalls:sys_enter`, counting: one per-CPU increment per syscall
/// in each filter slot that keeps the task.
#[tracepoint(category = "microscope", name = "sys_enter_count")]
pub fn sys_enter_count(ctx: TracePointContext) -> u32 {
    let slots = slots_keeping_current(FILTER.get(0));
    if slots == 0 {
        return 0;
    }
    let record = record_prefix(&ctx);
    let id: i64 = field(&record, &RAW_ENTER_ID);
    if !(0..i64::from(SYSCALL_SLOTS)).contains(&id) {
        return 0;
    }
    for_each_slot(slots, |slot| {
        if let Some(count) = SYSCALL_COUNTS.get_ptr_mut(slot * SYSCALL_SLOTS + id as u32) {
            // SAFETY: per-CPU slot, written only from this CPU.
            unsafe { *count += 1 };
        }
    });
    0
}

/// `raw_syscalls:sys_enter`, latency half: remember when this thread
/// entered, and which filter slots keep it.
#[tracepoint(category = "microscope", name = "sys_enter_latency")]
pub fn sys_enter_latency(_ctx: TracePointContext) -> u32 {
    let slots = slots_keeping_current(FILTER.get(0));
    if slots == 0 {
        return 0;
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    let start = EntryStart {
        // SAFETY: plain BPF helper.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        slots,
        _pad: 0,
    };
    // A full LRU map evicts the oldest entry, so insert cannot meaningfully fail.
    let _ = SYSCALL_START.insert(tid, start, 0);
    0
}

/// `raw_syscalls:sys_exit`, latency half: log2-bucket the time since entry
/// in the slots that kept the thread at entry.
#[tracepoint(category = "microscope", name = "sys_exit_latency")]
pub fn sys_exit_latency(_ctx: TracePointContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let Some(start) = SYSCALL_START.get_ptr(tid) else {
        return 0;
    };
    // SAFETY: the pointer comes from a successful lookup; plain BPF helper.
    let (start, now_ns) = unsafe { (*start, bpf_ktime_get_ns()) };
    let _ = SYSCALL_START.remove(tid);
    let bucket = log2_bucket(now_ns.saturating_sub(start.ts_ns));
    for_each_slot(start.slots, |slot| {
        if let Some(count) = SYSCALL_LATENCY.get_ptr_mut(slot * LATENCY_BUCKETS + bucket) {
            // SAFETY: per-CPU slot, written only from this CPU.
            unsafe { *count += 1 };
        }
    });
    0
}

/// Any tracepoint, through one copy of this program per slot (see
/// `probes_common::TP_SLOTS` for why): copies the first `TP_RECORD_BYTES`
/// of the record into the ring buffer, stamped with the slot (or, with
/// `SLOT_COUNT_ONLY`, only counts the hit in `TP_HITS`), and with
/// `SLOT_STACKS` set also counts the kernel and user stacks of the hit in
/// `STACK_COUNTS` ("how did the kernel get here"). The helper decodes the
/// record with the format file of the tracepoint it attached to the slot.
#[inline(always)]
fn generic(ctx: &TracePointContext, slot: u32) -> u32 {
    let options = TP_SLOT_OPTIONS.get(slot).copied().unwrap_or(0);
    if options & SLOT_COUNT_ONLY != 0 {
        // Counted per filter slot, like the syscall counts: each client
        // gets the hits of its own filter.
        let filters = slots_keeping_current(FILTER.get(0));
        if filters == 0 {
            return 0;
        }
        for_each_slot(filters, |filter| {
            if let Some(count) = TP_HITS.get_ptr_mut(filter * TP_SLOTS + slot) {
                // SAFETY: per-CPU slot, written only from this CPU.
                unsafe { *count += 1 };
            }
        });
    } else {
        if !keep_current(FILTER.get(0)) {
            return 0;
        }
        copy_record(ctx, slot);
    }
    if options & SLOT_STACKS != 0 {
        let pid_tgid = bpf_get_current_pid_tgid();
        let key = StackKey {
            id: slot,
            tgid: (pid_tgid >> 32) as u32,
            kernel_stack: ctx.get_stackid(&STACKS, 0).map_or(-1, |id| id as i32),
            user_stack: ctx
                .get_stackid(&STACKS, u64::from(BPF_F_USER_STACK))
                .map_or(-1, |id| id as i32),
            comm: bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
        };
        count_stack(&key);
    }
    0
}

macro_rules! generic_slots {
    ($($name:ident $section:literal = $slot:literal,)*) => {
        $(
            #[tracepoint(category = "microscope", name = $section)]
            pub fn $name(ctx: TracePointContext) -> u32 {
                generic(&ctx, $slot)
            }
        )*
    };
}

generic_slots!(
    tp_generic_0 "tp_generic_0" = 0,
    tp_generic_1 "tp_generic_1" = 1,
    tp_generic_2 "tp_generic_2" = 2,
    tp_generic_3 "tp_generic_3" = 3,
    tp_generic_4 "tp_generic_4" = 4,
    tp_generic_5 "tp_generic_5" = 5,
    tp_generic_6 "tp_generic_6" = 6,
    tp_generic_7 "tp_generic_7" = 7,
    tp_generic_8 "tp_generic_8" = 8,
    tp_generic_9 "tp_generic_9" = 9,
    tp_generic_10 "tp_generic_10" = 10,
    tp_generic_11 "tp_generic_11" = 11,
    tp_generic_12 "tp_generic_12" = 12,
    tp_generic_13 "tp_generic_13" = 13,
    tp_generic_14 "tp_generic_14" = 14,
    tp_generic_15 "tp_generic_15" = 15,
    tp_generic_16 "tp_generic_16" = 16,
    tp_generic_17 "tp_generic_17" = 17,
    tp_generic_18 "tp_generic_18" = 18,
    tp_generic_19 "tp_generic_19" = 19,
    tp_generic_20 "tp_generic_20" = 20,
    tp_generic_21 "tp_generic_21" = 21,
    tp_generic_22 "tp_generic_22" = 22,
    tp_generic_23 "tp_generic_23" = 23,
    tp_generic_24 "tp_generic_24" = 24,
    tp_generic_25 "tp_generic_25" = 25,
    tp_generic_26 "tp_generic_26" = 26,
    tp_generic_27 "tp_generic_27" = 27,
    tp_generic_28 "tp_generic_28" = 28,
    tp_generic_29 "tp_generic_29" = 29,
    tp_generic_30 "tp_generic_30" = 30,
    tp_generic_31 "tp_generic_31" = 31,
    tp_generic_32 "tp_generic_32" = 32,
    tp_generic_33 "tp_generic_33" = 33,
    tp_generic_34 "tp_generic_34" = 34,
    tp_generic_35 "tp_generic_35" = 35,
    tp_generic_36 "tp_generic_36" = 36,
    tp_generic_37 "tp_generic_37" = 37,
    tp_generic_38 "tp_generic_38" = 38,
    tp_generic_39 "tp_generic_39" = 39,
    tp_generic_40 "tp_generic_40" = 40,
    tp_generic_41 "tp_generic_41" = 41,
    tp_generic_42 "tp_generic_42" = 42,
    tp_generic_43 "tp_generic_43" = 43,
    tp_generic_44 "tp_generic_44" = 44,
    tp_generic_45 "tp_generic_45" = 45,
    tp_generic_46 "tp_generic_46" = 46,
    tp_generic_47 "tp_generic_47" = 47,
    tp_generic_48 "tp_generic_48" = 48,
    tp_generic_49 "tp_generic_49" = 49,
    tp_generic_50 "tp_generic_50" = 50,
    tp_generic_51 "tp_generic_51" = 51,
    tp_generic_52 "tp_generic_52" = 52,
    tp_generic_53 "tp_generic_53" = 53,
    tp_generic_54 "tp_generic_54" = 54,
    tp_generic_55 "tp_generic_55" = 55,
    tp_generic_56 "tp_generic_56" = 56,
    tp_generic_57 "tp_generic_57" = 57,
    tp_generic_58 "tp_generic_58" = 58,
    tp_generic_59 "tp_generic_59" = 59,
    tp_generic_60 "tp_generic_60" = 60,
    tp_generic_61 "tp_generic_61" = 61,
    tp_generic_62 "tp_generic_62" = 62,
    tp_generic_63 "tp_generic_63" = 63,
);

#[inline(always)]
fn copy_record(ctx: &TracePointContext, slot: u32) {
    match EVENTS.reserve::<TracepointEvent>(0) {
        Some(mut entry) => {
            let e = entry.as_mut_ptr();
            // SAFETY: `e` points at a reserved record of the right size; the
            // read helper copes with any address (bytes past a short record
            // are more of the per-CPU trace buffer, never used).
            let copied = unsafe {
                (*e).header = header(EventKind::Tracepoint);
                (*e).slot = slot;
                (*e)._pad = 0;
                bpf_probe_read_kernel_buf(ctx.as_ptr().cast::<u8>(), &mut (*e).data)
            };
            if copied.is_ok() {
                entry.submit(BPF_RB_NO_WAKEUP as u64);
            } else {
                entry.discard(BPF_RB_NO_WAKEUP as u64);
            }
        }
        None => {
            if let Some(count) = TP_DROPS.get_ptr_mut(slot) {
                // SAFETY: per-CPU slot, written only from this CPU.
                unsafe { *count += 1 };
            }
        }
    }
}

#[inline(always)]
fn count_stack(key: &StackKey) {
    match STACK_COUNTS.get_ptr_mut(key) {
        // SAFETY: shared across CPUs: an atomic add keeps counts exact.
        Some(count) => unsafe {
            core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                count, 1,
            );
        },
        None => {
            // Another CPU may insert the same key first: BPF_NOEXIST then
            // fails and this hit is retried as an add.
            if STACK_COUNTS.insert(key, 1, u64::from(BPF_NOEXIST)).is_err()
                && let Some(count) = STACK_COUNTS.get_ptr_mut(key)
            {
                // SAFETY: as above.
                unsafe {
                    core::intrinsics::atomic_xadd::<
                        u64,
                        u64,
                        { core::intrinsics::AtomicOrdering::Relaxed },
                    >(count, 1);
                }
            }
        }
    }
}

/// Never attached: the helper only tries to load it, to learn whether this
/// kernel allows fentry programs at all (lockdown refuses them with EPERM).
#[fentry(function = "do_sys_openat2")]
pub fn fentry_check(_ctx: FEntryContext) -> u32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
