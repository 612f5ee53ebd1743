//! JIT perf maps (`/tmp/perf-PID.map`), read without trusting them.
//!
//! A JIT (a JavaScript engine, the JVM with a perf agent, Python 3.12's
//! `-X perf`) writes the names of the code it generates to
//! `/tmp/perf-PID.map`, one `START SIZE name` line (hex) per function. The
//! file is written by the profiled process, and `/tmp` is shared, so any
//! user can put anything there: a FIFO (whose open or read blocks), a link
//! to a root-only file, a file of many gigabytes. The helper reads a perf
//! map as root only when all of this holds:
//!
//! - it is opened with `openat2` under the process's own root
//!   (`/proc/PID/root`, `RESOLVE_IN_ROOT`, so a container's `/tmp`), with
//!   no symbolic link anywhere on the way (`RESOLVE_NO_SYMLINKS`,
//!   `O_NOFOLLOW`) and `O_NONBLOCK` (opening a FIFO returns at once);
//! - `fstat` says it is a regular file owned by the uid that owns the
//!   process (the owner of `/proc/PID`);
//! - it is at most [`MAX_PERF_MAP_BYTES`] long (only that much is read).
//!
//! Otherwise it is not read at all, and JIT frames stay unnamed
//! (`[unknown]+0x...`). blazesym's own perf map support, which opens the
//! path as root, is switched off (`symbolize.rs`).

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;

/// Longest perf map read; the rest of a longer one is ignored.
pub const MAX_PERF_MAP_BYTES: u64 = 16 << 20;

/// The functions of one perf map, sorted by start address.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PerfMap {
    /// `(start, end, name)`, end exclusive.
    entries: Vec<(u64, u64, Arc<str>)>,
}

impl PerfMap {
    /// The perf map of process `tgid`, if it has one that passes every
    /// check of the module docs; why not, otherwise (for a debug log).
    pub fn read(tgid: u32) -> Result<Self, String> {
        let text = read_checked(tgid)?;
        Ok(Self::parse(&text))
    }

    /// Parses the text of a perf map; malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut entries: Vec<(u64, u64, Arc<str>)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ' ');
                let start = u64::from_str_radix(trim_hex(fields.next()?), 16).ok()?;
                let size = u64::from_str_radix(trim_hex(fields.next()?), 16).ok()?;
                let name = fields.next()?.trim();
                (size > 0 && !name.is_empty())
                    .then(|| Some((start, start.checked_add(size)?, Arc::from(name))))
                    .flatten()
            })
            .collect();
        entries.sort_by_key(|(start, _, _)| *start);
        Self { entries }
    }

    /// The function containing `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&Arc<str>> {
        let i = self.entries.partition_point(|(start, _, _)| *start <= addr);
        let (_, end, name) = self.entries.get(i.checked_sub(1)?)?;
        (addr < *end).then_some(name)
    }

    /// Whether it names nothing.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn trim_hex(field: &str) -> &str {
    field.strip_prefix("0x").unwrap_or(field)
}

/// Opens and reads `tgid`'s perf map under every check of the module docs.
fn read_checked(tgid: u32) -> Result<String, String> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
    use nix::sys::stat::Mode;
    let proc_dir = format!("/proc/{tgid}");
    let owner = nix::sys::stat::stat(proc_dir.as_str())
        .map_err(|err| format!("{proc_dir}: {err}"))?
        .st_uid;
    let nspid = namespace_pid(tgid).unwrap_or(tgid);
    // The process's root: a magic link, followed on purpose, once.
    let root = open(
        format!("{proc_dir}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("{proc_dir}/root: {err}"))?;
    let name = format!("tmp/perf-{nspid}.map");
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = openat2(&root, name.as_str(), how).map_err(|err| format!("/{name}: {err}"))?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|err| format!("/{name}: {err}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("/{name} is not a regular file; not read"));
    }
    if meta.uid() != owner {
        return Err(format!(
            "/{name} belongs to uid {}, not to the process's uid {owner}; not read",
            meta.uid()
        ));
    }
    let mut text = String::new();
    file.take(MAX_PERF_MAP_BYTES)
        .read_to_string(&mut text)
        .map_err(|err| format!("/{name}: {err}"))?;
    Ok(text)
}

/// The pid of `tgid` in its own pid namespace (last `NSpid:` field), which
/// is the number a JIT in a container writes in its file name.
fn namespace_pid(tgid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tgid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_looks_up_functions() {
        let map = PerfMap::parse(
            "7f0000001000 40 jit_a\n\
             0x7f0000002000 0x10 LazyCompile:*b file.js:3\n\
             garbage\n\
             7f0000003000 0 empty\n\
             ffffffffffffffff 10 overflows\n",
        );
        assert_eq!(map.lookup(0x7f00_0000_1000).map(|n| &**n), Some("jit_a"));
        assert_eq!(map.lookup(0x7f00_0000_103f).map(|n| &**n), Some("jit_a"));
        assert_eq!(map.lookup(0x7f00_0000_1040), None);
        assert_eq!(
            map.lookup(0x7f00_0000_2008).map(|n| &**n),
            Some("LazyCompile:*b file.js:3")
        );
        assert_eq!(map.lookup(0x7f00_0000_3000), None);
        assert_eq!(map.lookup(0), None);
        assert!(PerfMap::parse("").is_empty());
    }

    #[test]
    fn this_processs_own_map_is_read_and_a_fifo_or_link_is_not() {
        let me = std::process::id();
        let nspid = namespace_pid(me).unwrap_or(me);
        let path = std::path::PathBuf::from(format!("/tmp/perf-{nspid}.map"));
        assert!(
            !path.exists(),
            "{} exists already (left by an earlier run?); remove it and run again",
            path.display()
        );
        std::fs::write(&path, "1000 10 my_jit_function\n").unwrap();
        let map = PerfMap::read(me);
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            map.unwrap().lookup(0x1008).map(|n| &**n),
            Some("my_jit_function")
        );

        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Returns at once: a blocking open or read would hang the test.
        let fifo = PerfMap::read(me);
        let _ = std::fs::remove_file(&path);
        assert!(fifo.unwrap_err().contains("not a regular file"));

        let target = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(target.path(), "1000 10 through_a_link\n").unwrap();
        std::os::unix::fs::symlink(target.path(), &path).unwrap();
        let link = PerfMap::read(me);
        let _ = std::fs::remove_file(&path);
        assert!(link.is_err(), "a link is never followed: {link:?}");
    }
}
