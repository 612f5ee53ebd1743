//! Where packs may come from: directories only root can change.
//!
//! The helper runs as root and loads a pack's BPF object into the kernel, so
//! whoever can write a pack can run code in the kernel's tracing context. A
//! pack is therefore read only when its directory, every directory above it,
//! and each of its files are owned by root and not writable by group or
//! others. One exception keeps `/tmp`-style directories usable on the way: a
//! root-owned directory with the sticky bit set, where nobody else can
//! rename or remove root's entries.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The system directories packs are read from, besides `--pack-dir`.
pub const SYSTEM_PACK_DIRS: &[&str] = &["/usr/share/microscope/packs", "/etc/microscope/packs"];

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Checks `path` (a directory or file) and every directory above it. The
/// error is a sentence naming the path at fault and the fix.
pub fn check_trusted(path: &Path) -> Result<(), String> {
    let canonical = path
        .canonicalize()
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    // The path itself first, then its parents up to `/`.
    let mut current: Option<&Path> = Some(&canonical);
    let mut first = true;
    while let Some(p) = current {
        check_one(p, first)?;
        first = false;
        current = p.parent();
    }
    Ok(())
}

fn check_one(path: &Path, is_target: bool) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if meta.uid() != 0 {
        return Err(format!(
            "{} is owned by uid {}, not root, so another user could change what the helper loads into the kernel; \
             run `sudo chown root:root {}` (or move the pack to a root-owned directory such as /etc/microscope/packs)",
            path.display(),
            meta.uid(),
            path.display()
        ));
    }
    let mode = meta.mode();
    if mode & GROUP_OR_OTHER_WRITE != 0 {
        let sticky_dir = meta.is_dir() && mode & STICKY != 0 && !is_target;
        if !sticky_dir {
            return Err(format!(
                "{} is writable by {} (mode {:o}), so another user could change what the helper loads into the kernel; \
                 run `sudo chmod go-w {}`",
                path.display(),
                if mode & 0o002 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                mode & 0o7777,
                path.display()
            ));
        }
    }
    Ok(())
}

/// The pack directories under the trusted directories: each `dirs` entry
/// that has a `pack.toml` is a pack, else each of its subdirectories that
/// has one. Missing system directories are skipped; a `--pack-dir` that
/// does not exist is an error (a sentence).
pub fn pack_dirs(dirs: &[(PathBuf, bool)]) -> (Vec<PathBuf>, Vec<String>) {
    let mut packs = Vec::new();
    let mut problems = Vec::new();
    for (dir, required) in dirs {
        if !dir.exists() {
            if *required {
                problems.push(format!(
                    "the pack directory {} does not exist",
                    dir.display()
                ));
            }
            continue;
        }
        if dir.join(microscope_catalogue::PACK_MANIFEST).is_file() {
            packs.push(dir.clone());
            continue;
        }
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.join(microscope_catalogue::PACK_MANIFEST).is_file())
                    .collect();
                found.sort();
                packs.extend(found);
            }
            Err(err) => problems.push(format!(
                "cannot read the pack directory {}: {err}",
                dir.display()
            )),
        }
    }
    (packs, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_missing_path_is_a_sentence() {
        let err = check_trusted(Path::new("/no/such/pack")).unwrap_err();
        assert!(err.starts_with("cannot read /no/such/pack"), "{err}");
    }

    #[test]
    fn a_world_writable_dir_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_trusted(dir.path()).unwrap_err();
        if nix::unistd::geteuid().is_root() {
            assert!(
                err.contains("writable by everyone") && err.contains("chmod go-w"),
                "{err}"
            );
        } else {
            assert!(
                err.contains("not root") && err.contains("chown root:root"),
                "{err}"
            );
        }
    }

    #[test]
    fn system_dirs_that_do_not_exist_are_skipped() {
        let (packs, problems) = pack_dirs(&[(PathBuf::from("/no/such/dir"), false)]);
        assert!(packs.is_empty() && problems.is_empty());
        let (_, problems) = pack_dirs(&[(PathBuf::from("/no/such/dir"), true)]);
        assert_eq!(problems, ["the pack directory /no/such/dir does not exist"]);
    }
}
