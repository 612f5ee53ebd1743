//! Microscope's example pack in Rust: the sizes of `write()` calls, per
//! process, as totals and a log2 histogram built in the kernel.
//!
//! The helper sets `TARGET_TGID` before loading (`[probe.knobs]` in
//! writes.toml binds it to the process filter's pid) and reads the two maps
//! by the layouts writes.toml gives. Both maps are per-CPU: the eBPF target
//! has no 64-bit atomic add, and each CPU writing its own copy needs none;
//! the helper sums the copies.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{map, tracepoint},
    maps::PerCpuHashMap,
    programs::TracePointContext,
};

/// Only count this process (0: every process). A `.rodata` global the
/// helper overwrites before loading; read it volatile so the compiler does
/// not fold the 0 in.
#[unsafe(no_mangle)]
static TARGET_TGID: u32 = 0;

/// Buckets of the histogram: bucket `i` counts writes of `[2^i, 2^(i+1))`
/// bytes (bucket 0 also counts empty writes).
const SLOTS: usize = 32;

/// Per process: calls and bytes asked for.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Totals {
    pub calls: u64,
    pub bytes: u64,
}

/// Per process: the log2 histogram of sizes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Sizes {
    pub slots: [u64; SLOTS],
}

#[map]
static TOTALS: PerCpuHashMap<u32, Totals> = PerCpuHashMap::with_max_entries(1024, 0);

#[map]
static SIZES: PerCpuHashMap<u32, Sizes> = PerCpuHashMap::with_max_entries(1024, 0);

/// Where `count`, the third argument, sits in the record of
/// `syscalls:sys_enter_write` (8 bytes of common fields, the syscall number
/// and padding, then six 8-byte arguments): stable across kernels.
const COUNT_OFFSET: usize = 16 + 2 * 8;

#[tracepoint]
pub fn write_enter(ctx: TracePointContext) -> u32 {
    try_write_enter(&ctx).unwrap_or(1)
}

fn try_write_enter(ctx: &TracePointContext) -> Result<u32, i64> {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: a plain read of our own static.
    let target = unsafe { core::ptr::read_volatile(&TARGET_TGID) };
    if target != 0 && tgid != target {
        return Ok(0);
    }
    // SAFETY: the offset lies inside the tracepoint's record.
    let count: u64 = unsafe { ctx.read_at(COUNT_OFFSET)? };
    let slot = log2(count).min(SLOTS as u32 - 1) as usize;

    if TOTALS.get_ptr_mut(&tgid).is_none() {
        TOTALS.insert(&tgid, &Totals { calls: 0, bytes: 0 }, 0)?;
    }
    if let Some(totals) = TOTALS.get_ptr_mut(&tgid) {
        // SAFETY: a valid pointer to this CPU's copy, which no other CPU writes.
        unsafe {
            (*totals).calls += 1;
            (*totals).bytes += count;
        }
    }
    if SIZES.get_ptr_mut(&tgid).is_none() {
        SIZES.insert(&tgid, &Sizes { slots: [0; SLOTS] }, 0)?;
    }
    if let Some(sizes) = SIZES.get_ptr_mut(&tgid)
        && let Some(bucket) = unsafe { (*sizes).slots.get_mut(slot) }
    {
        *bucket += 1;
    }
    Ok(0)
}

/// floor(log2(v)), 0 for 0 and 1.
fn log2(mut v: u64) -> u32 {
    let mut r = 0;
    while v > 1 && r < 63 {
        v >>= 1;
        r += 1;
    }
    r
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
