//! One uncached `read()` by a test thread, followed end to end with the
//! app's own correlation (`microscope_model::waterfall`): the system call,
//! the block requests for the file's own sectors (from `FS_IOC_FIEMAP`),
//! their issue and completion, and the thread's wake-up, in that order.

use super::{Helper, collect_until_sentinel, enable, enable_generic, fields_by_name};
use microscope_model::waterfall::{Kind, Link, follow, observe_all};
use microscope_wire::{Event, FieldValue, ProbeKey};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::MetadataExt as _;

/// The file: 1 MiB; one `read()` of 256 KiB misses and waits for the disk.
const FILE_BYTES: usize = 1 << 20;
const READ_BYTES: usize = 256 << 10;
/// The sentinel: a read of this many bytes from `/dev/zero`.
const SENTINEL_BYTES: usize = 7;

/// `FS_IOC_FIEMAP`, `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
const EXTENTS: usize = 32;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

#[repr(C)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; EXTENTS],
}

/// The file's extents on its device, as 512-byte sector ranges of the
/// whole disk (a partition's start added).
fn sectors_of(file: &std::fs::File) -> Vec<(u64, u64)> {
    let mut map = Fiemap {
        start: 0,
        length: u64::MAX,
        flags: 1, // FIEMAP_FLAG_SYNC
        mapped_extents: 0,
        extent_count: EXTENTS as u32,
        reserved: 0,
        extents: [FiemapExtent::default(); EXTENTS],
    };
    // SAFETY: a valid descriptor and a `struct fiemap` with room for
    // `extent_count` extents, which is all the kernel writes.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP, &mut map) };
    assert_eq!(
        rc,
        0,
        "FS_IOC_FIEMAP failed ({}): the test file must be on a disk file system such as ext4",
        std::io::Error::last_os_error()
    );
    let dev = file.metadata().unwrap().dev();
    let start = std::fs::read_to_string(format!(
        "/sys/dev/block/{}:{}/start",
        libc::major(dev),
        libc::minor(dev)
    ))
    .ok()
    .and_then(|s| s.trim().parse::<u64>().ok())
    .unwrap_or(0);
    map.extents
        .iter()
        .take(map.mapped_extents as usize)
        .map(|e| {
            (
                start + e.physical / 512,
                start + (e.physical + e.length) / 512,
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn an_uncached_read_is_followed_to_the_disk_and_back() {
    // Not /tmp, which may be a tmpfs with no disk under it.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("uncached.bin");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&vec![0x6d; FILE_BYTES]).unwrap();
    file.sync_all().unwrap();
    let extents = sectors_of(&file);
    assert!(
        !extents.is_empty(),
        "the synced file has no extents on disk"
    );

    let helper = Helper::start();
    let mut conn = helper.connect();
    let mut names: HashMap<ProbeKey, (&str, Vec<String>)> = HashMap::new();
    for id in [
        "syscalls:sys_enter_read",
        "syscalls:sys_exit_read",
        "block:block_bio_queue",
        "block:block_rq_issue",
        "block:block_rq_complete",
    ] {
        let (key, fields) = enable_generic(&mut conn, id);
        names.insert(key, (id, fields));
    }
    enable(&mut conn, "sched:sched_switch");
    enable(&mut conn, "sched:sched_wakeup");
    let probes = conn.list_probes().unwrap();
    for id in ["sched:sched_switch", "sched:sched_wakeup"] {
        let key = probes.iter().find(|p| p.id == id).unwrap().key;
        names.insert(key, (id, Vec::new()));
    }

    // The workload, on a thread of its own: drop the file's pages, read
    // 256 KiB in one call, then the sentinel.
    let reader = std::thread::Builder::new()
        .name("uncached-read".into())
        .spawn(move || {
            let tid = nix::unistd::gettid().as_raw().unsigned_abs();
            nix::fcntl::posix_fadvise(
                std::os::fd::AsFd::as_fd(&file),
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            )
            .unwrap();
            let mut buffer = vec![0u8; READ_BYTES];
            let mut again = std::fs::File::open(&path).unwrap();
            assert_eq!(again.read(&mut buffer).unwrap(), READ_BYTES);
            let mut zero = std::fs::File::open("/dev/zero").unwrap();
            zero.read_exact(&mut [0u8; SENTINEL_BYTES]).unwrap();
            tid
        })
        .unwrap();
    let tid = reader.join().unwrap();

    let mut events: Vec<Event> = Vec::new();
    collect_until_sentinel(&mut conn, |e| {
        let Some((id, fields)) = names.get(&e.probe) else {
            return false;
        };
        events.push(e.clone());
        *id == "syscalls:sys_enter_read"
            && e.pid == tid
            && fields_by_name(fields, e)["count"] == &FieldValue::Uint(SENTINEL_BYTES as u64)
    });

    let observed = observe_all(events.iter().map(|e| {
        let (id, fields) = &names[&e.probe];
        (*id, fields.as_slice(), e)
    }));
    let enter = observed
        .iter()
        .find(|o| o.pid == tid && o.kind == Kind::SyscallEnter("read".into()))
        .expect("the reader's read() entry arrived");
    let waterfall = follow(&observed, tid, enter.ts_ns).unwrap();
    assert_eq!(waterfall.ret, READ_BYTES as i64);

    let in_file = |sector: u64| extents.iter().any(|(a, b)| (*a..*b).contains(&sector));
    let request_sector = |s: &microscope_model::waterfall::Step| {
        observed
            .iter()
            .find(|o| o.probe == s.probe && o.ts_ns == s.start_ns && o.cpu == s.cpu)
            .and_then(|o| match &o.kind {
                Kind::BlockQueue(r) | Kind::BlockIssue(r) | Kind::BlockComplete(r) => {
                    Some(r.sector)
                }
                _ => None,
            })
    };
    let position = |probe: &str| {
        waterfall
            .steps
            .iter()
            .position(|s| {
                s.probe == probe
                    && (!probe.starts_with("block:") || request_sector(s).is_some_and(in_file))
            })
            .unwrap_or_else(|| {
                panic!("no {probe} for the file's sectors {extents:?} in {waterfall:#?}")
            })
    };
    let entry = position("syscalls:sys_enter_read");
    let queued = position("block:block_bio_queue");
    let issued = position("block:block_rq_issue");
    let completed = position("block:block_rq_complete");
    let woken = position("sched:sched_wakeup");
    let exit = position("syscalls:sys_exit_read");
    assert!(
        entry < queued
            && queued <= issued
            && issued < completed
            && completed < woken
            && woken < exit,
        "out of order: {waterfall:#?}"
    );
    assert_eq!(waterfall.steps[queued].link, Link::SameThread);
    assert_eq!(waterfall.steps[completed].link, Link::SameRequest);
    assert_eq!(
        waterfall.breakdown.iter().map(|p| p.ns).sum::<u64>(),
        waterfall.latency_ns()
    );
}
