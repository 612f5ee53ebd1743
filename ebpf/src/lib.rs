//! Code shared by Microscope's eBPF objects (each binary, `src/main.rs` and
//! any in `src/bin`, is one object the helper loads on its own). The helper
//! also names this package as a build dependency, which makes cargo rebuild
//! the helper when the probes change.
#![no_std]

use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
};
use probes_common::{COMM_LEN, FILTER_COMM, ProcessFilterConfig};

/// Whether the current task passes the object's process filter (`None`, the
/// map being empty, keeps everything). Each object declares its own
/// one-entry `FILTER` array and passes `FILTER.get(0)`; the helper writes the
/// same value into all of them.
#[inline(always)]
pub fn keep_current(filter: Option<&ProcessFilterConfig>) -> bool {
    let Some(filter) = filter else {
        return true;
    };
    if filter.flags == 0 {
        return true;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let comm = if filter.flags & FILTER_COMM != 0 {
        bpf_get_current_comm().unwrap_or([0; COMM_LEN])
    } else {
        [0; COMM_LEN]
    };
    // SAFETY: plain BPF helper without arguments.
    filter.keeps(tgid, &comm, || unsafe { bpf_get_current_cgroup_id() })
}
