//! Reading a map whose key and value layouts are known only at run time
//! (from a pack's manifest): `BPF_MAP_GET_NEXT_KEY` and
//! `BPF_MAP_LOOKUP_ELEM` on raw bytes. aya's typed maps need the sizes at
//! compile time, so these two commands are issued directly.

use std::os::fd::{AsRawFd as _, BorrowedFd};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// `union bpf_attr` as the two map commands read it.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value_or_next_key: u64,
    flags: u64,
}

fn bpf(cmd: libc::c_long, attr: &mut MapElemAttr) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid, initialised `bpf_attr` prefix for this
    // command and outlives the call; its pointers point into live buffers
    // of the sizes the map was created with (checked by the callers).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut MapElemAttr,
            std::mem::size_of::<MapElemAttr>(),
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A map's entries as raw `(key, value)` bytes, and how many more there
/// were than were read.
pub type Entries = (Vec<(Vec<u8>, Vec<u8>)>, u64);

/// Every `(key, value)` of the map, at most `max` entries. `value_size` is
/// the whole value as the kernel copies it out (for per-CPU maps: the value
/// rounded up to 8 bytes, times the possible CPUs).
pub fn entries(
    fd: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    max: usize,
) -> std::io::Result<Entries> {
    let mut out = Vec::new();
    let mut truncated = 0u64;
    let mut key: Option<Vec<u8>> = None;
    let mut next = vec![0u8; key_size];
    loop {
        let mut attr = MapElemAttr {
            map_fd: fd.as_raw_fd() as u32,
            key: key.as_ref().map_or(0, |k| k.as_ptr() as u64),
            value_or_next_key: next.as_mut_ptr() as u64,
            ..MapElemAttr::default()
        };
        match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => break,
            Err(err) => return Err(err),
        }
        let current = next.clone();
        if out.len() >= max {
            truncated += 1;
        } else {
            let mut value = vec![0u8; value_size];
            let mut attr = MapElemAttr {
                map_fd: fd.as_raw_fd() as u32,
                key: current.as_ptr() as u64,
                value_or_next_key: value.as_mut_ptr() as u64,
                ..MapElemAttr::default()
            };
            match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
                Ok(()) => out.push((current.clone(), value)),
                // Deleted between the two calls.
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
                Err(err) => return Err(err),
            }
        }
        // A hash map being changed can cycle; never walk more than this.
        if out.len() + truncated as usize > 1 << 20 {
            break;
        }
        key = Some(current);
    }
    Ok((out, truncated))
}

/// The number of possible CPUs, which sizes per-CPU values.
pub fn possible_cpus() -> usize {
    aya::util::nr_cpus().unwrap_or(1).max(1)
}
