//! Code shared by Microscope's eBPF objects (each binary, `src/main.rs` and
//! any in `src/bin`, is one object the helper loads on its own). The helper
//! also names this package as a build dependency, which makes cargo rebuild
//! the helper when the probes change.
#![no_std]

use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
};
use probes_common::{COMM_LEN, FILTER_CGROUP, FILTER_COMM, FILTER_SLOTS, FilterTable};

/// The filter slots that keep the current task, as a mask (see
/// [`FilterTable`]). Each object declares its own one-entry `FILTER` array
/// and passes `FILTER.get(0)`; the helper writes the same table into all of
/// them. The task's comm and cgroup are read at most once, and only when a
/// slot in use filters on them; with only unfiltered slots in use nothing
/// is read.
#[inline(always)]
pub fn slots_keeping_current(table: Option<&FilterTable>) -> u32 {
    let Some(table) = table else {
        return 0;
    };
    if table.active & !table.keep_all == 0 {
        return table.active;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let comm = if table.flags & FILTER_COMM != 0 {
        bpf_get_current_comm().unwrap_or([0; COMM_LEN])
    } else {
        [0; COMM_LEN]
    };
    let cgroup = if table.flags & FILTER_CGROUP != 0 {
        // SAFETY: plain BPF helper without arguments.
        unsafe { bpf_get_current_cgroup_id() }
    } else {
        0
    };
    table.keeping(tgid, &comm, cgroup)
}

/// Whether some filter slot keeps the current task: what streamed events
/// and stack samples check (the helper then gives each client what its own
/// filter keeps). A slot without conditions answers at once.
#[inline(always)]
pub fn keep_current(table: Option<&FilterTable>) -> bool {
    let Some(table) = table else {
        return false;
    };
    table.keep_all & table.active != 0 || slots_keeping_current(Some(table)) != 0
}

/// Calls `f` with each slot whose bit is set in `mask`, lowest first (a
/// fixed eight-step loop the verifier sees whole).
#[inline(always)]
pub fn for_each_slot(mask: u32, mut f: impl FnMut(u32)) {
    for slot in 0..FILTER_SLOTS {
        if mask & (1 << slot) != 0 {
            f(slot);
        }
    }
}
