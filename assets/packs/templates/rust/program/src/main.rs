//! A Microscope probe pack program: openat() calls per process, and every
//! failed one, in Rust with aya-ebpf.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{map, tracepoint},
    maps::{PerCpuHashMap, RingBuf},
    programs::TracePointContext,
};

/// A knob, set by the helper before loading; read it volatile.
#[unsafe(no_mangle)]
static TARGET_TGID: u32 = 0;

/// One failed openat(): the manifest's `fields` list describes it.
#[repr(C)]
pub struct Failure {
    pub tgid: u32,
    pub ret: i32,
    pub comm: [u8; 16],
}

/// Calls per process, one copy per CPU (the helper sums them).
#[map]
static OPENS: PerCpuHashMap<u32, u64> = PerCpuHashMap::with_max_entries(1024, 0);

#[map]
static FAILURES: RingBuf = RingBuf::with_byte_size(64 * 1024, 0);

/// `ret` in the record of syscalls:sys_exit_openat.
const RET_OFFSET: usize = 16;

#[tracepoint]
pub fn openat_exit(ctx: TracePointContext) -> u32 {
    try_openat_exit(&ctx).unwrap_or(1)
}

fn try_openat_exit(ctx: &TracePointContext) -> Result<u32, i64> {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: a plain read of our own static.
    let target = unsafe { core::ptr::read_volatile(&TARGET_TGID) };
    if target != 0 && tgid != target {
        return Ok(0);
    }
    match OPENS.get_ptr_mut(&tgid) {
        // SAFETY: this CPU's copy, which no other CPU writes.
        Some(n) => unsafe { *n += 1 },
        None => OPENS.insert(&tgid, &1, 0)?,
    }
    // SAFETY: the offset lies inside the tracepoint's record.
    let ret: i64 = unsafe { ctx.read_at(RET_OFFSET)? };
    if ret >= 0 {
        return Ok(0);
    }
    if let Some(mut entry) = FAILURES.reserve::<Failure>(0) {
        entry.write(Failure {
            tgid,
            ret: ret as i32,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        });
        entry.submit(0);
    }
    Ok(0)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
