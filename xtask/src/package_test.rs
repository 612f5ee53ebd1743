//! The package test of `cargo xtask test`: build the Debian package, install
//! it with `dpkg -i`, check what it installed, run the helper as its systemd
//! unit would, talk to it as root, as a member of the group and as an
//! outsider, then remove and purge it and check that nothing is left.
//!
//! systemd is not PID 1 on the test machines, so the unit is checked with
//! `systemd-analyze verify` and the helper is started the way the unit's
//! `[Service]` section says: its `ExecStart`, under its
//! `CapabilityBoundingSet` (through `setpriv`), its `Group`,
//! `NoNewPrivileges`, and its `RuntimeDirectory`. That proves the capability
//! set is enough for what the checks exercise (loading every program,
//! tracepoint events, a uprobe opened as a group member).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use microscope_wire::{ClientError, Connection, EventData, HelperMessage};

use crate::package::{self, PACKAGE, UNIT_PATH};
use crate::proc::{self, ChildGuard, run_checked, stdout_of};
use crate::setup;

/// The group the package creates.
const GROUP: &str = "microscope";
/// The uid the unprivileged clients run as (`nobody`).
const NOBODY: u32 = 65534;
/// How long the helper may take to create its socket, and an event to come.
const DEADLINE: Duration = Duration::from_secs(20);

/// Files the package must install, and remove again.
const INSTALLED: [&str; 7] = [
    "/usr/bin/microscope",
    "/usr/sbin/microscoped",
    UNIT_PATH,
    "/usr/share/applications/microscope.desktop",
    "/usr/share/icons/hicolor/scalable/apps/microscope.svg",
    "/usr/share/man/man1/microscope.1.gz",
    "/usr/share/man/man8/microscoped.8.gz",
];
/// What the service's enablement leaves, which purge must remove.
const ENABLEMENT: [&str; 3] = [
    "/etc/systemd/system/multi-user.target.wants/microscoped.service",
    "/etc/systemd/system/microscoped.service",
    "/var/lib/systemd/deb-systemd-helper-enabled/microscoped.service.dsh-also",
];

/// Why the test cannot run here, when it cannot (reported as skipped).
pub fn unable() -> Option<String> {
    if !crate::workspace::is_root() {
        return Some(
            "installs a package with dpkg, which needs root; run `sudo -E cargo xtask test`"
                .to_owned(),
        );
    }
    if !Path::new("/usr/bin/dpkg").exists() {
        return Some("needs dpkg (Debian or Ubuntu)".to_owned());
    }
    if installed() {
        return Some(format!(
            "the `{PACKAGE}` package is installed on this machine and the test would purge it; \
             remove it first (`sudo apt purge {PACKAGE}`)"
        ));
    }
    None
}

/// `cargo xtask package --test`: says why the test cannot run here, or runs it.
pub fn run_test(compile: bool) -> Result<()> {
    if let Some(reason) = unable() {
        anyhow::bail!("cannot test the package: {reason}");
    }
    run(compile)
}

/// Runs the whole test, building the release binaries first when
/// `compile`; `unable()` must have returned `None`.
pub fn run(compile: bool) -> Result<()> {
    setup::install_apt_packages(&["desktop-file-utils"])?;
    let group_existed = group_gid()?.is_some();
    let deb = package::build(compile)?;
    println!("package test: installing {}", deb.display());
    let guard = PurgeGuard;
    run_checked(
        Command::new("dpkg").arg("-i").arg(&deb),
        "dpkg -i",
        "dpkg's message above says what failed.",
    )?;
    check_installed()?;
    check_unit_files()?;
    exercise_service()?;
    remove_and_purge(group_existed)?;
    drop(guard);
    println!("package test: installed, ran, removed and purged cleanly");
    Ok(())
}

/// Purges the package if a check failed half-way, so a failed test does
/// not leave it on the machine.
struct PurgeGuard;

impl Drop for PurgeGuard {
    fn drop(&mut self) {
        if installed() || config_files_remain() {
            eprintln!("package test: purging the package after a failure");
            let _ignored = Command::new("dpkg").args(["--purge", PACKAGE]).status();
        }
    }
}

fn installed() -> bool {
    stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

fn config_files_remain() -> bool {
    stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]))
        .is_some_and(|status| status.contains("config-files"))
}

fn group_gid() -> Result<Option<u32>> {
    let output = Command::new("getent")
        .args(["group", GROUP])
        .output()
        .context("could not run getent")?;
    if !output.status.success() {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let gid = line
        .trim()
        .split(':')
        .nth(2)
        .and_then(|gid| gid.parse().ok())
        .with_context(|| format!("getent printed an odd group line: {line}"))?;
    Ok(Some(gid))
}

fn check_installed() -> Result<()> {
    for path in INSTALLED {
        if !Path::new(path).exists() {
            bail!("the package did not install {path}");
        }
    }
    if group_gid()?.is_none() {
        bail!("installing the package did not create the group `{GROUP}`");
    }
    let wants = Path::new(ENABLEMENT[0]);
    if fs::symlink_metadata(wants).is_err() {
        bail!(
            "installing did not enable the service ({} is missing)",
            wants.display()
        );
    }
    run_checked(
        Command::new("desktop-file-validate").arg(INSTALLED[3]),
        "desktop-file-validate",
        "Fix assets/package/microscope.desktop as the message above says.",
    )?;
    for page in &INSTALLED[5..] {
        run_checked(
            Command::new("gzip").args(["-t", page]),
            "checking a man page",
            "The man page is not valid gzip.",
        )?;
    }
    println!("package test: files, group, enablement, desktop entry and man pages are in place");
    Ok(())
}

fn check_unit_files() -> Result<()> {
    let output = Command::new("systemd-analyze")
        .args(["verify", UNIT_PATH])
        .output()
        .context("could not run systemd-analyze (package systemd)")?;
    let messages = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || messages.contains("microscoped.service") {
        bail!(
            "`systemd-analyze verify {UNIT_PATH}` complained:\n{}",
            messages.trim()
        );
    }
    // How exposed the unit is, by systemd's own measure (informational).
    if let Some(report) = stdout_of(Command::new("systemd-analyze").args([
        "security",
        "--offline=true",
        "--no-pager",
        UNIT_PATH,
    ])) && let Some(line) = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
    {
        println!("package test: systemd-analyze security: {}", line.trim());
    }
    println!("package test: systemd-analyze verify accepts the unit");
    Ok(())
}

/// The `[Service]` settings of the installed unit that decide how the
/// helper runs.
struct Service {
    exec_start: Vec<String>,
    capabilities: Vec<String>,
    group: String,
    runtime_directory: String,
    runtime_directory_mode: u32,
    no_new_privileges: bool,
}

fn read_service(path: &Path) -> Result<Service> {
    let text =
        fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    let settings = service_settings(&text);
    let get = |key: &str| {
        settings
            .get(key)
            .cloned()
            .with_context(|| format!("{} has no {key}=", path.display()))
    };
    let mode = get("RuntimeDirectoryMode")?;
    Ok(Service {
        exec_start: get("ExecStart")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        capabilities: get("CapabilityBoundingSet")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        group: get("Group")?,
        runtime_directory: get("RuntimeDirectory")?,
        runtime_directory_mode: u32::from_str_radix(&mode, 8)
            .with_context(|| format!("RuntimeDirectoryMode={mode} is not octal"))?,
        no_new_privileges: settings
            .get("NoNewPrivileges")
            .is_some_and(|v| v == "yes" || v == "true"),
    })
}

/// `key=value` lines of the `[Service]` section (later lines win, as in
/// systemd for these single-valued keys).
fn service_settings(text: &str) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    let mut in_service = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            settings.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    settings
}

/// `CAP_BPF CAP_PERFMON` → `-all,+bpf,+perfmon` for setpriv.
fn setpriv_caps(capabilities: &[String]) -> String {
    let mut caps = String::from("-all");
    for cap in capabilities {
        caps.push_str(",+");
        caps.push_str(&cap.trim_start_matches("CAP_").to_lowercase());
    }
    caps
}

fn exercise_service() -> Result<()> {
    let service = read_service(Path::new(UNIT_PATH))?;
    let gid = group_gid()?.context("the group vanished")?;
    if service.group != GROUP {
        bail!("the unit runs as group {}, not {GROUP}", service.group);
    }
    let runtime = Path::new("/run").join(&service.runtime_directory);
    let socket = socket_of(&service)?;
    if UnixStream::connect(&socket).is_ok() {
        bail!(
            "a helper already listens on {}; stop it (e.g. `cargo xtask run`) and run the test again",
            socket.display()
        );
    }
    // What systemd does for RuntimeDirectory=: a fresh directory owned by
    // the service's user and group, removed when it stops.
    let _ignored = fs::remove_dir_all(&runtime);
    fs::create_dir_all(&runtime)
        .with_context(|| format!("could not create {}", runtime.display()))?;
    fs::set_permissions(
        &runtime,
        fs::Permissions::from_mode(service.runtime_directory_mode),
    )?;
    std::os::unix::fs::chown(&runtime, Some(0), Some(gid))
        .with_context(|| format!("could not chown {}", runtime.display()))?;

    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(format!(
            "--bounding-set={}",
            setpriv_caps(&service.capabilities)
        ))
        .arg("--inh-caps=-all");
    if service.no_new_privileges {
        cmd.arg("--no-new-privs");
    }
    cmd.arg("--").args(&service.exec_start);
    println!(
        "package test: starting the helper as the unit would: {}",
        proc::describe(&cmd)
    );
    let mut helper = proc::spawn_guarded(
        &mut cmd,
        "the installed helper",
        "setpriv is part of util-linux.",
    )?;
    wait_for_socket(&mut helper, &socket)?;
    check_socket_mode(&socket, gid)?;

    tracepoint_events_arrive(&socket)?;
    as_nobody(
        &[gid],
        &["probes"],
        "a member of the group lists the probes",
    )?;
    uprobe_as_member(gid, &socket)?;
    let refused = run_as_nobody(&[], &["probes"])?;
    if refused.status.success() {
        bail!("a user outside the group `{GROUP}` was let in");
    }
    println!("package test: a user outside the group is refused");

    let status = helper.stop()?;
    if !status.success() {
        bail!("the helper exited with {status} on SIGTERM");
    }
    if socket.exists() {
        bail!("the helper left {} behind", socket.display());
    }
    let _ignored = fs::remove_dir_all(&runtime);
    println!("package test: the helper stopped cleanly on SIGTERM");
    Ok(())
}

/// The `--socket` of `ExecStart`, or the default path.
fn socket_of(service: &Service) -> Result<PathBuf> {
    let mut args = service.exec_start.iter();
    while let Some(arg) = args.next() {
        if arg == "--socket" {
            return args
                .next()
                .map(PathBuf::from)
                .context("ExecStart ends with --socket");
        }
        if let Some(path) = arg.strip_prefix("--socket=") {
            return Ok(PathBuf::from(path));
        }
    }
    Ok(PathBuf::from(microscope_wire::DEFAULT_SOCKET_PATH))
}

fn wait_for_socket(helper: &mut ChildGuard, socket: &Path) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = helper.try_wait()? {
            bail!(
                "the installed helper exited ({status}) under the unit's settings; \
                 its message above says which privilege it lacked"
            );
        }
        if socket.exists() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the installed helper did not create {} in time",
                socket.display()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn check_socket_mode(socket: &Path, gid: u32) -> Result<()> {
    let meta = fs::metadata(socket)?;
    if meta.mode() & 0o777 != 0o660 || meta.gid() != gid {
        bail!(
            "{} has mode {:o} and group {}, not 0660 and {GROUP}",
            socket.display(),
            meta.mode() & 0o777,
            meta.gid()
        );
    }
    Ok(())
}

/// As root: enable `syscalls:sys_enter_openat`, open a file with a unique
/// name, and wait for that very event (the sentinel).
fn tracepoint_events_arrive(socket: &Path) -> Result<()> {
    let mut conn = Connection::connect(socket).context("root could not connect to the helper")?;
    conn.enable_probe("syscalls:sys_enter_openat")
        .context("enabling syscalls:sys_enter_openat")?;
    conn.set_recv_timeout(Some(Duration::from_millis(200)))?;
    let sentinel = std::env::temp_dir().join(format!(
        "microscope-package-test-{}-sentinel",
        std::process::id()
    ));
    let deadline = Instant::now() + DEADLINE;
    loop {
        // Opened again each round: events of the first open may predate
        // the attachment.
        let _ignored = fs::File::open(&sentinel);
        match conn.recv() {
            Ok(HelperMessage::Batch(batch)) => {
                let seen = batch.events.iter().any(|event| {
                    matches!(&event.data, EventData::Openat { filename, .. }
                        if Path::new(filename) == sentinel)
                });
                if seen {
                    println!("package test: tracepoint events arrive (the sentinel open was seen)");
                    return Ok(());
                }
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => return Err(err).context("the connection to the helper failed"),
        }
        if Instant::now() >= deadline {
            bail!(
                "no openat event of {} within {} s",
                sentinel.display(),
                DEADLINE.as_secs()
            );
        }
    }
}

/// Calls of the uprobe check's function, all counted exactly.
const UPROBE_CALLS: u64 = 100;

/// Options of the hidden `cargo xtask __uprobe-client`.
#[derive(Debug, clap::Args)]
pub struct UprobeClientOptions {
    /// The helper's socket.
    #[arg(long)]
    socket: PathBuf,
}

/// The uprobe's target: a function of this very binary.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_package_test_function(n: u64) -> u64 {
    std::hint::black_box(n.wrapping_mul(3))
}

/// As a member of the group (not root): a uprobe on a copy of this binary
/// (readable by anyone, wherever the checkout is) counts exactly the calls
/// made. The helper opens the file as the client, attaches a uprobe (which
/// needs CAP_SYS_ADMIN) and counts in the kernel.
fn uprobe_as_member(gid: u32, socket: &Path) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("microscope-package-test-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let client = dir.join("uprobe-client");
    // Through /proc/self/exe: it still opens when the file on disk was
    // replaced by a rebuild since this program started.
    fs::copy("/proc/self/exe", &client).context("could not copy this program")?;
    fs::set_permissions(&client, fs::Permissions::from_mode(0o755))?;
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg(format!("--groups={gid}"))
        .arg("--")
        .arg(&client)
        .arg("__uprobe-client")
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null());
    let output = cmd.output();
    let _ignored = fs::remove_dir_all(&dir);
    let output = output.with_context(|| format!("could not run `{}`", proc::describe(&cmd)))?;
    if !output.status.success() {
        bail!(
            "a member of the group could not count a uprobe's calls ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    println!(
        "package test: a member of the group attached a uprobe: {}",
        String::from_utf8_lossy(&output.stdout).trim()
    );
    Ok(())
}

/// Runs `cargo xtask __uprobe-client`: enable a uprobe on
/// [`microscope_package_test_function`] of this binary, call it
/// [`UPROBE_CALLS`] times, wait until the helper has counted exactly that.
pub fn uprobe_client(options: &UprobeClientOptions) -> Result<()> {
    let exe = std::env::current_exe().context("could not find this program")?;
    let id = format!("uprobe:{}:microscope_package_test_function", exe.display());
    let mut conn = Connection::connect(&options.socket)
        .with_context(|| format!("could not connect to {}", options.socket.display()))?;
    let replies = conn
        .enable_probe(&id)
        .with_context(|| format!("enabling {id}"))?;
    let key = replies
        .iter()
        .find_map(|m| match m {
            HelperMessage::ProbeAdded(info) => Some(info.key),
            _ => None,
        })
        .context("the helper did not announce the new probe")?;
    for i in 0..UPROBE_CALLS {
        microscope_package_test_function(i);
    }
    conn.set_recv_timeout(Some(Duration::from_millis(200)))?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        match conn.recv() {
            Ok(HelperMessage::Aggregates(aggregates)) => {
                let calls = aggregates
                    .functions
                    .iter()
                    .find(|f| f.probe == key)
                    .map_or(0, |f| f.calls);
                if calls == UPROBE_CALLS {
                    println!("{calls} calls counted");
                    return Ok(());
                }
                if calls > UPROBE_CALLS {
                    bail!("{calls} calls counted, {UPROBE_CALLS} made");
                }
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => return Err(err).context("the connection to the helper failed"),
        }
        if Instant::now() >= deadline {
            bail!(
                "the helper did not count {UPROBE_CALLS} calls within {} s",
                DEADLINE.as_secs()
            );
        }
    }
}

fn run_as_nobody(groups: &[u32], args: &[&str]) -> Result<std::process::Output> {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        cmd.arg(format!("--groups={}", list.join(",")));
    }
    cmd.arg("--")
        .arg("/usr/bin/microscope")
        .args(args)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null());
    cmd.output()
        .with_context(|| format!("could not run `{}`", proc::describe(&cmd)))
}

fn as_nobody(groups: &[u32], args: &[&str], what: &str) -> Result<()> {
    let output = run_as_nobody(groups, args)?;
    if !output.status.success() {
        bail!(
            "{what}: `microscope {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    println!("package test: {what}");
    Ok(())
}

fn remove_and_purge(group_existed: bool) -> Result<()> {
    run_checked(
        Command::new("dpkg").args(["--remove", PACKAGE]),
        "dpkg --remove",
        "dpkg's message above says what failed.",
    )?;
    left_behind(&INSTALLED, "removing")?;
    if group_gid()?.is_none() {
        bail!("removing (not purging) the package deleted the group `{GROUP}`");
    }
    run_checked(
        Command::new("dpkg").args(["--purge", PACKAGE]),
        "dpkg --purge",
        "dpkg's message above says what failed.",
    )?;
    left_behind(&ENABLEMENT, "purging")?;
    left_behind(&["/var/lib/microscope", "/run/microscope"], "purging")?;
    if !group_existed && group_gid()?.is_some() {
        bail!("purging the package left the group `{GROUP}` it created");
    }
    if installed() || config_files_remain() {
        bail!("dpkg still lists `{PACKAGE}` after purging it");
    }
    // Anything else, anywhere the package or its scripts could write.
    // (find's exit status is ignored: files vanishing under /run while it
    // walks make it complain without changing the answer.)
    let output = Command::new("find")
        .args([
            "/etc",
            "/usr",
            "/var/lib",
            "/run",
            "-xdev",
            "-name",
            "*microscope*",
        ])
        .stderr(Stdio::null())
        .output()
        .context("could not search the file system with find")?;
    let found = String::from_utf8_lossy(&output.stdout);
    if !found.trim().is_empty() {
        bail!("purging the package left behind:\n{}", found.trim());
    }
    println!("package test: remove took the files, purge the group and the service's state");
    Ok(())
}

fn left_behind(paths: &[&str], action: &str) -> Result<()> {
    let left: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|path| match fs::symlink_metadata(path) {
            Ok(_) => true,
            Err(err) => err.kind() != io::ErrorKind::NotFound,
        })
        .collect();
    if !left.is_empty() {
        bail!("{action} the package left {}", left.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_service_section_only() {
        let unit = "[Unit]\nDescription=x\nGroup=wrong\n\n[Service]\n# comment\n\
                    ExecStart=/usr/sbin/microscoped --socket /run/microscope/s.sock\n\
                    CapabilityBoundingSet=CAP_BPF CAP_PERFMON\nGroup=microscope\n\
                    [Install]\nWantedBy=multi-user.target\n";
        let settings = service_settings(unit);
        assert_eq!(settings["Group"], "microscope");
        assert_eq!(settings["CapabilityBoundingSet"], "CAP_BPF CAP_PERFMON");
        assert!(!settings.contains_key("WantedBy"));
        assert_eq!(
            setpriv_caps(&["CAP_BPF".into(), "CAP_SYS_PTRACE".into()]),
            "-all,+bpf,+sys_ptrace"
        );
    }
}
