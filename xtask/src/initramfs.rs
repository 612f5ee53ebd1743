//! A minimal initramfs writer: the kernel's "newc" cpio format
//! (`Documentation/driver-api/early-userspace/buffer-format.rst`), without
//! compression (the kernel and QEMU take it as is, and an emulated CPU
//! would spend longer unpacking it than loading it).
//!
//! Written here rather than with the `cpio` tool so that the archive can
//! hold a `/dev/console` device node without `mknod`, which needs root, and
//! so that it is the same byte for byte on every machine (fixed owners,
//! times and inode numbers).

use std::io::{self, Write};

/// One entry of the archive.
pub enum Entry<'a> {
    /// A directory.
    Dir {
        /// Path without a leading `/`.
        path: &'a str,
    },
    /// A regular file.
    File {
        /// Path without a leading `/`.
        path: &'a str,
        /// Permission bits, e.g. `0o755`.
        mode: u32,
        /// Contents.
        data: &'a [u8],
    },
    /// A symbolic link.
    Symlink {
        /// Path without a leading `/`.
        path: &'a str,
        /// What it points to.
        target: &'a str,
    },
    /// A character device node.
    CharDevice {
        /// Path without a leading `/`.
        path: &'a str,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Writes `entries` and the trailer as a newc archive.
pub fn write(out: &mut impl Write, entries: &[Entry<'_>]) -> io::Result<()> {
    let mut written = 0;
    for (i, entry) in entries.iter().enumerate() {
        // Inode 0 is avoided: some unpackers treat it as "no inode".
        let ino = i as u32 + 1;
        let (path, mode, data, rdev): (&str, u32, &[u8], (u32, u32)) = match entry {
            Entry::Dir { path } => (path, S_IFDIR | 0o755, &[], (0, 0)),
            Entry::File { path, mode, data } => (path, S_IFREG | mode, data, (0, 0)),
            Entry::Symlink { path, target } => (path, S_IFLNK | 0o777, target.as_bytes(), (0, 0)),
            Entry::CharDevice { path, major, minor } => {
                (path, S_IFCHR | 0o600, &[], (*major, *minor))
            }
        };
        let nlink = if matches!(entry, Entry::Dir { .. }) {
            2
        } else {
            1
        };
        written += record(out, ino, mode, nlink, rdev, path, data)?;
    }
    written += record(out, 0, 0, 1, (0, 0), "TRAILER!!!", &[])?;
    // The kernel reads the archive in 512-byte blocks, as cpio writes it.
    pad(out, written, 512)?;
    Ok(())
}

/// One header, name and body; returns the bytes written.
fn record(
    out: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    (rdev_major, rdev_minor): (u32, u32),
    name: &str,
    data: &[u8],
) -> io::Result<usize> {
    let size = u32::try_from(data.len())
        .map_err(|_| io::Error::other(format!("{name} is larger than 4 GiB, too big for cpio")))?;
    let name_size = name.len() as u32 + 1;
    let fields = [
        ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev_major, rdev_minor, name_size, 0,
    ];
    let mut header = String::from("070701");
    for field in fields {
        header.push_str(&format!("{field:08x}"));
    }
    out.write_all(header.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    let mut written = header.len() + name.len() + 1;
    written += pad(out, written, 4)?;
    out.write_all(data)?;
    written += data.len();
    written += pad(out, written, 4)?;
    Ok(written)
}

/// Writes zeros up to the next multiple of `align`; returns how many.
fn pad(out: &mut impl Write, written: usize, align: usize) -> io::Result<usize> {
    let n = (align - written % align) % align;
    out.write_all(&vec![0; n])?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(archive: &[u8], at: usize, index: usize) -> u32 {
        let start = at + 6 + 8 * index;
        let text = std::str::from_utf8(&archive[start..start + 8]).unwrap();
        u32::from_str_radix(text, 16).unwrap()
    }

    #[test]
    fn records_are_aligned_and_end_with_the_trailer() {
        let mut archive = Vec::new();
        write(
            &mut archive,
            &[
                Entry::Dir { path: "bin" },
                Entry::File {
                    path: "init",
                    mode: 0o755,
                    data: b"#!/bin/sh\n",
                },
                Entry::Symlink {
                    path: "bin/sh",
                    target: "busybox",
                },
                Entry::CharDevice {
                    path: "dev/console",
                    major: 5,
                    minor: 1,
                },
            ],
        )
        .unwrap();
        assert_eq!(archive.len() % 512, 0);
        // Walk the records as the kernel does.
        let mut at = 0;
        let mut names = Vec::new();
        loop {
            assert_eq!(&archive[at..at + 6], b"070701", "record at {at}");
            let size = field(&archive, at, 6) as usize;
            let name_size = field(&archive, at, 11) as usize;
            let name = std::str::from_utf8(&archive[at + 110..at + 110 + name_size - 1]).unwrap();
            names.push(name.to_owned());
            let data_at = (at + 110 + name_size).next_multiple_of(4);
            if name == "init" {
                assert_eq!(&archive[data_at..data_at + size], b"#!/bin/sh\n");
                assert_eq!(field(&archive, at, 1), S_IFREG | 0o755);
            }
            if name == "dev/console" {
                assert_eq!(field(&archive, at, 1), S_IFCHR | 0o600);
                assert_eq!((field(&archive, at, 9), field(&archive, at, 10)), (5, 1));
            }
            if name == "TRAILER!!!" {
                break;
            }
            at = (data_at + size).next_multiple_of(4);
        }
        assert_eq!(
            names,
            ["bin", "init", "bin/sh", "dev/console", "TRAILER!!!"]
        );
    }

    #[test]
    fn an_empty_archive_is_just_the_trailer() {
        let mut archive = Vec::new();
        write(&mut archive, &[]).unwrap();
        assert_eq!(archive.len(), 512);
        assert!(archive.starts_with(b"070701"));
        assert!(archive.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
