//! Spawning child processes: failures become sentences, and long-running
//! children are stopped by a guard when the task ends, also on error.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::workspace;

/// How long a child gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `program arg arg` for messages.
pub fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    // `$CARGO` is an absolute path into the toolchain; "cargo" reads better
    // and is what a user would type.
    let mut text = if program.file_name() == Some(OsStr::new("cargo")) {
        "cargo".to_owned()
    } else {
        program.to_string_lossy().into_owned()
    };
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

fn spawn_error(cmd: &Command, err: &io::Error, hint: &str) -> anyhow::Error {
    let program = cmd.get_program().to_string_lossy();
    if err.kind() == io::ErrorKind::NotFound {
        anyhow!("`{program}` is not installed or not on PATH. {hint}")
    } else {
        anyhow!("could not start `{}`: {err}. {hint}", describe(cmd))
    }
}

/// Runs `cmd` with inherited stdio and fails with "`what` failed ... `hint`".
pub fn run_checked(cmd: &mut Command, what: &str, hint: &str) -> Result<()> {
    let status = cmd.status().map_err(|err| spawn_error(cmd, &err, hint))?;
    if !status.success() {
        bail!("{what} failed ({status}): `{}`. {hint}", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd`, returning whether it succeeded; a missing program counts as
/// failure. For checks whose failure is an answer, not an error.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `cmd` and returns its stdout, or `None` when it could not run or failed.
/// For checks: "not installed" is an answer there, not an error.
pub fn stdout_of(cmd: &mut Command) -> Option<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Spawns `cmd` and guards the child so it is stopped when the guard drops.
pub fn spawn_guarded(cmd: &mut Command, name: &str, hint: &str) -> Result<ChildGuard> {
    let child = cmd.spawn().map_err(|err| spawn_error(cmd, &err, hint))?;
    Ok(ChildGuard {
        child,
        name: name.to_owned(),
        stop_signal: libc::SIGTERM,
    })
}

/// `program` run as root: directly when we are root, else through `sudo`
/// (which may prompt for a password).
pub fn as_root(program: &str) -> Command {
    if workspace::is_root() {
        Command::new(program)
    } else {
        let mut cmd = Command::new("sudo");
        cmd.arg(program);
        cmd
    }
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn send_signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; at worst it fails with
    // ESRCH for a process that already exited, which we ignore.
    unsafe {
        libc::kill(pid, signal);
    }
}

extern "C" fn ignore_signal(_signal: libc::c_int) {}

/// Keeps this process alive on Ctrl-C so the guards can stop the children.
///
/// A handler (not `SIG_IGN`) is installed on purpose: handlers reset to the
/// default on `exec`, so children still stop on Ctrl-C, while an ignored
/// signal would be inherited and make them immune to it.
pub fn survive_ctrl_c() {
    let handler = ignore_signal as extern "C" fn(libc::c_int);
    // SAFETY: the handler is async-signal-safe (it does nothing), and
    // installing a handler has no other preconditions.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// A child process that is stopped (signal, then SIGKILL after a grace
/// period) when the guard is dropped.
pub struct ChildGuard {
    child: Child,
    name: String,
    stop_signal: libc::c_int,
}

impl ChildGuard {
    /// Which signal asks this child to stop (SIGTERM unless changed).
    pub fn with_stop_signal(mut self, signal: libc::c_int) -> Self {
        self.stop_signal = signal;
        self
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The underlying child, e.g. to take its stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// `Some(status)` once the child has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("could not check whether {} is still running", self.name))
    }

    /// Waits for the child to exit by itself.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.child
            .wait()
            .with_context(|| format!("could not wait for {}", self.name))
    }

    /// Waits up to `timeout` for the child to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the child to stop, escalating to SIGKILL after a grace period,
    /// and returns its exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        send_signal(self.id(), self.stop_signal);
        if let Some(status) = self.wait_timeout(STOP_GRACE)? {
            return Ok(status);
        }
        eprintln!(
            "{} did not stop within {} s; killing it",
            self.name,
            STOP_GRACE.as_secs()
        );
        // SIGKILL cannot be relayed by `sudo`; that is why the gentle signal
        // comes first.
        self.child
            .kill()
            .with_context(|| format!("could not kill {}", self.name))?;
        self.wait()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("warning: {err:#}");
        }
    }
}

/// Removes a temporary directory when dropped.
pub(crate) struct RemoveDir(pub(crate) std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ignored = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` to its end and returns its exit status and peak resident
/// memory in bytes (from `wait4`'s rusage: the same number as `VmHWM`).
pub fn run_with_peak_rss(cmd: &mut Command) -> Result<(ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt as _;
    let child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", describe(cmd)))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // std's `Child` cannot report rusage, so reap the child ourselves; it is
    // ours, and `child` is never waited on after this.
    // SAFETY: `status` and `usage` are valid for writes for the whole call.
    let reaped = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    if reaped != pid {
        anyhow::bail!(
            "waiting for `{}` failed: {}",
            describe(cmd),
            std::io::Error::last_os_error()
        );
    }
    // ru_maxrss is in KiB on Linux.
    let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    Ok((ExitStatus::from_raw(status), peak))
}
