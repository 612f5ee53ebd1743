//! Files the helper opens on a client's behalf: the binaries of uprobes.
//!
//! The helper is root, and a client names any path it likes. So a path is
//! opened once, with the client's own file-system credentials, and only
//! that open file is used afterwards:
//!
//! 1. A short-lived thread takes the client's uid, gid and groups as its
//!    file-system credentials (`setfsuid`, `setfsgid`, and the raw
//!    `setgroups` system call: on Linux credentials belong to each thread,
//!    and the raw calls change only the calling one, unlike glibc's
//!    wrappers, which change every thread). The kernel then checks every
//!    directory on the way and the file itself exactly as it would for the
//!    client: modes, ACLs, security modules.
//! 2. It opens the path `O_PATH | O_NOFOLLOW | O_CLOEXEC`: nothing is read,
//!    a FIFO or device is not opened, and a symbolic link as the last
//!    component is opened as the link itself, then refused.
//! 3. `fstat` must say regular file, and `fstatfs` must not say FUSE (a
//!    FUSE server could stall the reads that follow).
//! 4. It opens the path again, `O_RDONLY | O_NONBLOCK | O_NOFOLLOW |
//!    O_CLOEXEC`, which checks read permission, still as the client (a FIFO
//!    swapped in meanwhile would not block it), and `fstat` must find the
//!    very inode of step 3.
//! 5. It finds the function's file offset from that descriptor.
//!
//! The thread then ends, and its credentials with it. The uprobe is
//! attached through `/proc/self/fd/N` at that offset, so aya and the kernel
//! never look the client's path up again.
//!
//! Errors are what the client would get opening the file itself: they never
//! say whether a file the client may not read exists. The wait for the
//! thread is bounded ([`OPEN_TIMEOUT`]), and so is the number of threads
//! that may be stuck at once ([`MAX_OPENS_IN_FLIGHT`]), so a file system that
//! does not answer costs a refusal, never a stalled helper.

use crate::auth::Peer;
use std::fs::File;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long an open on a client's behalf, with its symbol lookup, may
/// take. Locally it takes milliseconds; in the emulated VM of `cargo xtask
/// test-vm` on a busy host, looking `microscope_vmtest_work` up in the
/// static test binary went past 1 s once (30 November 2026), so the bound
/// leaves room for slow machines while a file system that does not answer
/// still costs only a refusal.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
/// Opens that may be under way (or stuck) at once.
pub const MAX_OPENS_IN_FLIGHT: usize = 4;
/// `FUSE_SUPER_MAGIC` from `linux/magic.h`.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

static OPENS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// A uprobe's binary, opened and checked for one client.
#[derive(Debug)]
pub struct UprobeFile {
    /// The open file.
    fd: OwnedFd,
    /// Device and inode, to tell whether two opens found the same file.
    identity: (u64, u64),
    /// File offset of the function, if the file defines it.
    pub offset: Option<u64>,
}

impl UprobeFile {
    /// The path through which the kernel reaches this very file.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// Device and inode number.
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }
}

/// Opens `path` as `peer` would and finds `symbol` in it (see the module
/// docs). An error is a sentence for that client.
pub fn open_uprobe_target(peer: &Peer, path: &Path, symbol: &str) -> Result<UprobeFile, String> {
    if !path.is_absolute() {
        return Err(format!(
            "the binary of a uprobe must be an absolute path, and `{}` is not",
            path.display()
        ));
    }
    let in_flight = OPENS_IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
    if in_flight >= MAX_OPENS_IN_FLIGHT {
        OPENS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(format!(
            "cannot open {} now: {MAX_OPENS_IN_FLIGHT} file checks are still waiting for a \
             file system that does not answer; try again later",
            path.display()
        ));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (peer, owned_path, symbol) = (peer.clone(), path.to_path_buf(), symbol.to_owned());
    let spawned = std::thread::Builder::new()
        .name("microscoped-open".to_owned())
        .spawn(move || {
            let result = open_as(&peer, &owned_path, &symbol);
            OPENS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
            // The helper may have stopped waiting; then the file is closed here.
            let _ = tx.send(result);
        });
    if let Err(err) = spawned {
        OPENS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(format!(
            "could not start a thread to open {}: {err}",
            path.display()
        ));
    }
    rx.recv_timeout(OPEN_TIMEOUT).unwrap_or_else(|_| {
        Err(format!(
            "opening {} took longer than {} s (a file system that does not answer?); \
             the helper stopped waiting",
            path.display(),
            OPEN_TIMEOUT.as_secs()
        ))
    })
}

/// Steps 1 to 5 of the module docs, on the calling (throwaway) thread.
fn open_as(peer: &Peer, path: &Path, symbol: &str) -> Result<UprobeFile, String> {
    if peer.uid != 0 {
        take_credentials_of(peer).map_err(|err| {
            format!(
                "could not take uid {}'s file permissions to open {} ({err})",
                peer.uid,
                path.display()
            )
        })?;
    }
    let not_readable = || {
        format!(
            "{} does not exist or uid {} may not read it",
            path.display(),
            peer.uid
        )
    };
    let opened = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    let handle: OwnedFd = opened.map_err(|_| not_readable())?;
    let stat = nix::sys::stat::fstat(&handle).map_err(|_| not_readable())?;
    // `O_PATH | O_NOFOLLOW` opens a final symbolic link itself.
    if stat.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(format!(
            "{} is a symbolic link; name the file it points to (`readlink -f {}`)",
            path.display(),
            path.display()
        ));
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(format!(
            "{} is not a regular file (a directory, FIFO, socket or device); uprobes need a \
             program or library",
            path.display()
        ));
    }
    let fs = nix::sys::statfs::fstatfs(&handle).map_err(|_| not_readable())?;
    if fs.filesystem_type().0 as i64 == FUSE_SUPER_MAGIC {
        return Err(format!(
            "{} is on a FUSE file system; the helper does not read files there, because a \
             FUSE server could keep it waiting. Copy the program to a local disk",
            path.display()
        ));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|_| not_readable())?;
    let meta = file.metadata().map_err(|_| not_readable())?;
    let identity = (meta.dev(), meta.ino());
    if identity != (stat.st_dev, stat.st_ino) {
        return Err(not_readable());
    }
    let fd: OwnedFd = file.try_clone().map_err(|_| not_readable())?.into();
    let offset = microscope_catalogue::targets::function_file_offset(file, path, symbol)?;
    Ok(UprobeFile {
        fd,
        identity,
        offset,
    })
}

/// Takes `peer`'s groups, gid and uid as this thread's file-system
/// credentials. Only this thread's: the raw system calls, not glibc's
/// process-wide wrappers.
fn take_credentials_of(peer: &Peer) -> Result<(), String> {
    let groups: Vec<libc::gid_t> = peer.groups.clone();
    // SAFETY: setgroups(2) reads `groups.len()` gids from a live buffer; the
    // raw system call changes the calling thread's groups only.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if rc != 0 {
        return Err(format!("setgroups: {}", std::io::Error::last_os_error()));
    }
    // setfsgid/setfsuid return the previous value and never fail loudly:
    // ask again (an invalid id changes nothing and returns the current one)
    // to check that the change took.
    // SAFETY: plain system calls on integers, for the calling thread.
    let gid_ok = unsafe {
        libc::syscall(libc::SYS_setfsgid, peer.gid);
        libc::syscall(libc::SYS_setfsgid, u32::MAX) == i64::from(peer.gid)
    };
    // SAFETY: as above.
    let uid_ok = unsafe {
        libc::syscall(libc::SYS_setfsuid, peer.uid);
        libc::syscall(libc::SYS_setfsuid, u32::MAX) == i64::from(peer.uid)
    };
    if gid_ok && uid_ok {
        Ok(())
    } else {
        Err("setfsuid/setfsgid did not take".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Peer {
        Peer {
            uid: 0,
            gid: 0,
            pid: None,
            groups: Vec::new(),
        }
    }

    #[unsafe(no_mangle)]
    #[inline(never)]
    extern "C" fn microscope_target_file_unit_test_symbol() -> u32 {
        std::hint::black_box(7)
    }

    #[test]
    fn a_regular_binary_opens_with_its_offset() {
        std::hint::black_box(microscope_target_file_unit_test_symbol());
        let exe = std::env::current_exe().unwrap();
        // Whoever runs the tests may read their own binary.
        let me = Peer {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            pid: None,
            groups: Vec::new(),
        };
        let file =
            open_uprobe_target(&me, &exe, "microscope_target_file_unit_test_symbol").unwrap();
        assert!(file.offset.is_some());
        let meta = std::fs::metadata(&exe).unwrap();
        assert_eq!(file.identity(), (meta.dev(), meta.ino()));
        let through_fd = std::fs::metadata(file.proc_path()).unwrap();
        assert_eq!(through_fd.ino(), meta.ino());
        let absent = open_uprobe_target(&me, &exe, "no_such_function_anywhere_42").unwrap();
        assert_eq!(absent.offset, None);
    }

    #[test]
    fn links_fifos_directories_and_relative_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&exe, &link).unwrap();
        let err = open_uprobe_target(&root(), &link, "main").unwrap_err();
        assert!(err.contains("is a symbolic link"), "{err}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        // Would block forever if it were opened for reading.
        let err = open_uprobe_target(&root(), &fifo, "main").unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        let err = open_uprobe_target(&root(), dir.path(), "main").unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        let err = open_uprobe_target(&root(), Path::new("bin/ls"), "main").unwrap_err();
        assert!(err.contains("absolute path"), "{err}");
        let err = open_uprobe_target(&root(), &dir.path().join("absent"), "main").unwrap_err();
        assert!(
            err.contains("does not exist or uid 0 may not read it"),
            "{err}"
        );
    }
}
