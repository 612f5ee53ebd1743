//! Where things are (workspace root, built binaries, cargo's bin directory)
//! and the environment every child process gets.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: the parent of this crate's manifest directory.
pub fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// `$CARGO_HOME/bin` (default `~/.cargo/bin`), where `cargo install` puts
/// bpf-linker whether or not that directory is on the user's PATH.
pub fn cargo_bin_dir() -> Option<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
    Some(home.join("bin"))
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A built binary under `target/<profile>/`.
pub fn built_binary(name: &str, release: bool) -> PathBuf {
    let profile = if release { "release" } else { "debug" };
    target_dir().join(profile).join(name)
}

/// True when this process runs as root (euid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A `cargo` command run from the workspace root, using the same cargo that
/// runs this xtask when there is one.
pub fn cargo() -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

/// Puts cargo's bin directory on PATH (aya-build needs `bpf-linker` there)
/// and gives child processes an `XDG_RUNTIME_DIR` (winit and wgpu want one).
///
/// Must run before any thread is started.
pub fn prepare_environment() {
    if let Some(bin) = cargo_bin_dir() {
        let path = env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = env::split_paths(&path).collect();
        if !dirs.contains(&bin) {
            dirs.push(bin);
            if let Ok(joined) = env::join_paths(dirs) {
                // SAFETY: called first thing in `main`, before any thread exists,
                // so nothing can read the environment concurrently.
                unsafe { env::set_var("PATH", joined) };
            }
        }
    }

    if env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let dir = PathBuf::from(format!("/tmp/xdg-runtime-{uid}"));
        let ready = fs::create_dir_all(&dir)
            .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)));
        match ready {
            // SAFETY: as above, no other thread exists yet.
            Ok(()) => unsafe { env::set_var("XDG_RUNTIME_DIR", &dir) },
            Err(err) => eprintln!(
                "warning: could not create {} for XDG_RUNTIME_DIR ({err}); \
                 GUI programs may complain. Set XDG_RUNTIME_DIR yourself.",
                dir.display()
            ),
        }
    }
}
