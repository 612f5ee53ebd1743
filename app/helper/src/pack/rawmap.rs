//! Reading a map whose key and value layouts are known only at run time
//! (from a pack's manifest) as raw bytes: `BPF_MAP_LOOKUP_BATCH` (hundreds
//! of entries per system call, kernel 5.6+ for hash and array maps), else
//! `BPF_MAP_GET_NEXT_KEY` and `BPF_MAP_LOOKUP_ELEM` (two calls per entry).
//! aya's typed maps need the sizes at compile time and aya 0.14 has no
//! batch operations, so these commands are issued directly.

use std::os::fd::{AsRawFd as _, BorrowedFd};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// The kernel's `ENOTSUPP` (not in libc): an operation the map type lacks.
const ENOTSUPP: i32 = 524;
/// Entries asked for per batch call at first.
const BATCH: usize = 256;
/// Never ask for more per call than this (a bucket larger than this is
/// read one entry at a time instead).
const MAX_BATCH: usize = 1 << 16;
/// Never walk more entries than this (a hash map being changed can cycle).
const MAX_WALK: usize = 1 << 20;

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

/// `union bpf_attr` as the batch commands read it.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn bpf(cmd: libc::c_long, attr: &mut MapElemAttr) -> std::io::Result<()> {
    sys_bpf(cmd, attr)
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid, initialised `bpf_attr` prefix for this
    // command and outlives the call; its pointers point into live buffers
    // of the sizes the map was created with (checked by the callers).
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A map's entries as raw `(key, value)` bytes, and how many more there
/// were than were read.
pub type Entries = (Vec<(Vec<u8>, Vec<u8>)>, u64);

/// Every `(key, value)` of the map, at most `max` entries (the others are
/// counted). `value_size` is the whole value as the kernel copies it out
/// (for per-CPU maps: the value rounded up to 8 bytes, times the possible
/// CPUs). In batches where the kernel can, else one entry at a time.
pub fn entries(
    fd: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    max: usize,
) -> std::io::Result<Entries> {
    match entries_batched(fd, key_size, value_size, max)? {
        Some(read) => Ok(read),
        None => entries_one_by_one(fd, key_size, value_size, max),
    }
}

/// [`entries`] with `BPF_MAP_LOOKUP_BATCH`; `None` when the kernel or the
/// map type has no batch lookup.
pub fn entries_batched(
    fd: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    max: usize,
) -> std::io::Result<Option<Entries>> {
    let mut out = Vec::new();
    let mut truncated = 0u64;
    let mut chunk = BATCH;
    // The position token: a bucket index (hash maps) or a key (arrays).
    let mut in_batch = vec![0u8; key_size.max(8)];
    let mut out_batch = vec![0u8; key_size.max(8)];
    let mut first = true;
    let mut walked = 0usize;
    loop {
        let mut keys = vec![0u8; chunk * key_size];
        let mut values = vec![0u8; chunk * value_size];
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { in_batch.as_ptr() as u64 },
            out_batch: out_batch.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let result = sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let n = (attr.count as usize).min(chunk);
        let errno = result.as_ref().err().and_then(std::io::Error::raw_os_error);
        match errno {
            None | Some(libc::ENOENT) => {}
            Some(libc::ENOSPC) if n == 0 && chunk < MAX_BATCH => {
                // One bucket holds more than `chunk` entries.
                chunk *= 4;
                continue;
            }
            Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP | libc::EPERM) if first => {
                return Ok(None);
            }
            Some(_) => return result.map(|()| None),
        }
        for (key, value) in keys
            .chunks_exact(key_size)
            .zip(values.chunks_exact(value_size))
            .take(n)
        {
            if out.len() < max {
                out.push((key.to_vec(), value.to_vec()));
            } else {
                truncated += 1;
            }
        }
        walked += n;
        if errno == Some(libc::ENOENT) || walked > MAX_WALK {
            return Ok(Some((out, truncated)));
        }
        std::mem::swap(&mut in_batch, &mut out_batch);
        first = false;
    }
}

/// [`entries`] with `BPF_MAP_GET_NEXT_KEY` and `BPF_MAP_LOOKUP_ELEM`.
pub fn entries_one_by_one(
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
        if out.len() + truncated as usize > MAX_WALK {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd as _, FromRawFd as _, OwnedFd};
    use std::time::Instant;

    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    const HASH: u32 = 1;
    const STACK_TRACE: u32 = 7;

    #[repr(C)]
    #[derive(Default)]
    struct CreateAttr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    }

    fn create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> OwnedFd {
        let mut attr = CreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
        };
        // SAFETY: a valid `bpf_attr` prefix for BPF_MAP_CREATE.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_CREATE,
                &mut attr as *mut CreateAttr,
                std::mem::size_of::<CreateAttr>(),
            )
        };
        assert!(
            fd >= 0,
            "creating a map needs root: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    }

    /// Both ways of reading a real hash map of 10 000 entries of a pack's
    /// stack-count shape (32-byte keys, 16-byte values) give the same
    /// entries; prints how long each took (a measurement, not a check).
    #[test]
    #[ignore = "needs root to create a BPF map; run by hand with --ignored"]
    fn batched_and_one_by_one_reads_agree_on_a_real_map() {
        const N: u32 = 10_000;
        let map = create(HASH, 32, 16, 16_384);
        for i in 0..N {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&u64::from(i * 3).to_le_bytes());
            let mut attr = MapElemAttr {
                map_fd: map.as_raw_fd() as u32,
                key: key.as_ptr() as u64,
                value_or_next_key: value.as_ptr() as u64,
                ..MapElemAttr::default()
            };
            sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).unwrap();
        }
        let mut timings = Vec::new();
        let mut reads = Vec::new();
        for batched in [false, true] {
            let started = Instant::now();
            let (mut read, truncated) = if batched {
                entries_batched(map.as_fd(), 32, 16, 1 << 20)
                    .unwrap()
                    .expect("this kernel has batch lookups")
            } else {
                entries_one_by_one(map.as_fd(), 32, 16, 1 << 20).unwrap()
            };
            timings.push(started.elapsed());
            assert_eq!(truncated, 0);
            read.sort();
            reads.push(read);
        }
        assert_eq!(reads[0].len(), N as usize);
        assert_eq!(reads[0], reads[1]);
        println!(
            "reading {N} entries: one by one {:?}, batched {:?}",
            timings[0], timings[1]
        );
        // At most `max` kept, the rest counted.
        let (kept, truncated) = entries_batched(map.as_fd(), 32, 16, 100).unwrap().unwrap();
        assert_eq!((kept.len(), truncated), (100, u64::from(N) - 100));
        // A stack map has no batch lookup: the caller falls back.
        let stacks = create(STACK_TRACE, 4, 8 * 127, 64);
        assert!(
            entries_batched(stacks.as_fd(), 4, 8 * 127, 10)
                .unwrap()
                .is_none()
        );
    }
}
