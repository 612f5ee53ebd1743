//! Starting the privileged helper (`microscoped`) as root for `run`,
//! `screenshot` and `bench`, and waiting until its socket accepts clients.

use std::fs;
use std::io::{self, IsTerminal as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::proc::{self, ChildGuard};
use crate::workspace;

/// How long the helper may take to create its socket (it loads the eBPF
/// object first).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of trying to start the helper.
pub enum Started {
    /// We started it; dropping the guard stops it.
    Ours(ChildGuard),
    /// A helper already listens on the socket; we leave it alone.
    AlreadyRunning,
    /// We could not become root; the message says how to start it by hand.
    NoPrivilege(String),
}

/// Starts our own release-built helper on a fresh `socket` for `task`, which
/// cannot go on without it (screenshot, demo, bench).
pub fn start_own(socket: &Path, task: &str) -> Result<ChildGuard> {
    start_own_built(socket, task, true)
}

/// [`start_own`] with the helper of the release (`true`) or dev build.
pub fn start_own_built(socket: &Path, task: &str, release: bool) -> Result<ChildGuard> {
    match start(&workspace::built_binary("microscoped", release), socket)? {
        Started::Ours(guard) => Ok(guard),
        Started::AlreadyRunning => bail!("something already listens on {}", socket.display()),
        Started::NoPrivilege(how) => bail!("{task} needs the helper, which needs root: {how}"),
    }
}

/// Starts `binary --socket socket` as root and waits for the socket.
///
/// Errors mean the helper started but failed (exited, or never created its
/// socket).
pub fn start(binary: &Path, socket: &Path) -> Result<Started> {
    match UnixStream::connect(socket) {
        Ok(_) => return Ok(Started::AlreadyRunning),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            // Left behind by a helper that died: nothing listens, so it is
            // safe to remove (only root can, usually).
            if workspace::is_root() {
                let _ignored = fs::remove_file(socket);
            }
        }
        Err(_) => {}
    }

    let by_hand = format!(
        "start the helper yourself in another terminal: sudo {} --socket {}",
        binary.display(),
        socket.display()
    );
    let Some(mut cmd) = root_command(binary) else {
        return Ok(Started::NoPrivilege(by_hand));
    };
    if workspace::is_root()
        && let Some(dir) = socket.parent()
    {
        let _ignored = fs::create_dir_all(dir);
    }
    cmd.arg("--socket").arg(socket);
    // Its own process group: a Ctrl-C in the terminal then reaches only the
    // app, and `sudo` relays our SIGTERM (it ignores signals from its
    // parent's process group, assuming the terminal already sent them).
    cmd.process_group(0);
    let mut guard = proc::spawn_guarded(
        &mut cmd,
        "the helper (microscoped)",
        "Build it first with `cargo build --release -p microscoped`.",
    )?;

    let deadline = Instant::now() + SOCKET_TIMEOUT;
    loop {
        if let Some(status) = guard.try_wait()? {
            bail!(
                "the helper exited ({status}) before creating {}; its messages above say why. \
                 To retry by hand: {by_hand}",
                socket.display()
            );
        }
        // Existence, not a test connection: a probe connection would show up
        // in the helper's log as a client that vanished mid-handshake.
        if socket.exists() {
            return Ok(Started::Ours(guard));
        }
        if Instant::now() >= deadline {
            bail!(
                "the helper did not create {} within {} s; its messages above may say why",
                socket.display(),
                SOCKET_TIMEOUT.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A command that runs `binary` as root: directly when we are root, else
/// through `sudo -n` once sudo is known to work without a prompt (asking
/// for the password first when a terminal is attached).
fn root_command(binary: &Path) -> Option<Command> {
    if workspace::is_root() {
        return Some(Command::new(binary));
    }
    let sudo_ready = proc::succeeds(Command::new("sudo").args(["-n", "true"]))
        || (io::stdin().is_terminal()
            && Command::new("sudo")
                .args([
                    "-v",
                    "-p",
                    "[sudo] password for %u (to start the helper as root): ",
                ])
                .status()
                .is_ok_and(|status| status.success()));
    if !sudo_ready {
        return None;
    }
    let mut cmd = Command::new("sudo");
    cmd.arg("-n").arg(binary);
    Some(cmd)
}
