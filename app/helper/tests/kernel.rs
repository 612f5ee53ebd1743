//! Kernel tests: the real helper binary, the real eBPF programs on the running
//! kernel, a real socket, and workloads whose effects we know exactly.
//!
//! They need root (to load BPF), so each is `#[ignore]`d: a plain `cargo
//! test` lists them as ignored, and `cargo xtask test` runs them as root,
//! one at a time (`--ignored --test-threads=1`), or shows the step as
//! skipped. Run by hand without root, each fails saying so.
//!
//! Every workload ends with a sentinel event the test recognises (an open
//! of a path of its own, a write of an odd size); a test collects until
//! its sentinel arrives, so exact counts never depend on a sleep, and fails
//! if it does not arrive within [`SENTINEL_TIMEOUT`].
#![expect(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use microscope_wire::ProbeKey;
use microscope_wire::{
    ClientError, ClientMessage, Connection, EventData, FieldValue, FrameDecoder, HelperMessage,
    Preamble, ProbeKind,
};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "kernel/cost.rs"]
mod cost;
#[path = "kernel/filters.rs"]
mod filters;
#[path = "kernel/hostile.rs"]
mod hostile;
#[path = "kernel/packs.rs"]
mod packs;
#[path = "kernel/profile.rs"]
mod profile;

const NOBODY: u32 = 65534;

/// How long a sentinel may take to arrive before the test fails. Batches
/// leave every 40 ms; this is for a machine busy with other builds.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(20);

/// The helper process, stopped with SIGTERM when dropped.
struct Helper {
    child: Option<Child>,
    socket: PathBuf,
    group: String,
    /// More arguments for the helper (e.g. `--pack-dir`).
    extra_args: Vec<std::ffi::OsString>,
    _dir: tempfile::TempDir,
}

impl Helper {
    fn start() -> Self {
        Self::start_for_group("microscope-test-no-such-group")
    }

    /// Starts the helper with extra command-line arguments.
    fn start_with(extra: &[&std::ffi::OsStr]) -> Self {
        Self::start_for_group_with("microscope-test-no-such-group", extra)
    }

    /// A helper whose socket members of `group` may use.
    fn start_for_group(group: &str) -> Self {
        Self::start_for_group_with(group, &[])
    }

    /// A helper for `group`, with extra command-line arguments.
    fn start_for_group_with(group: &str, extra: &[&std::ffi::OsStr]) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "kernel tests need root to load eBPF programs: run `sudo -E cargo xtask test` \
             (or this target with `sudo -E cargo test -p microscoped --test kernel -- --ignored`)"
        );
        let dir = tempfile::tempdir().unwrap();
        // Let an unprivileged test client reach the socket file itself.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut helper = Self {
            child: None,
            socket: dir.path().join("microscoped.sock"),
            group: group.to_owned(),
            extra_args: extra.iter().map(|a| a.to_os_string()).collect(),
            _dir: dir,
        };
        helper.restart();
        helper
    }

    /// Starts the helper (again, after it stopped) on the same socket and
    /// waits until it accepts connections.
    fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_microscoped"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--group")
            .arg(&self.group)
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("HELPER_LOG").unwrap_or("error".into()),
            )
            .spawn()
            .expect("spawn microscoped");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("microscoped did not listen on its socket within 20 s");
    }

    /// The helper's process id.
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn connect(&self) -> Connection {
        Connection::connect(&self.socket).expect("connect to the helper")
    }

    /// Sends SIGTERM and waits; returns the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(&child, nix::sys::signal::Signal::SIGTERM);
        child.wait().unwrap()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, sig);
}

fn enable(conn: &mut Connection, probe: &str) {
    if let Err(err) = conn.enable_probe(probe) {
        panic!("enabling {probe} failed: {err}");
    }
}

/// Passes every event to `keep` until `keep` says it saw the sentinel;
/// fails after [`SENTINEL_TIMEOUT`] without it.
fn collect_until_sentinel(
    conn: &mut Connection,
    mut keep: impl FnMut(&microscope_wire::Event) -> bool,
) {
    conn.set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + SENTINEL_TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the workload's sentinel event did not arrive within {SENTINEL_TIMEOUT:?}"
        );
        match conn.recv() {
            Ok(HelperMessage::Batch(batch)) => {
                for event in &batch.events {
                    if keep(event) {
                        return;
                    }
                }
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
}

/// Whether `event` is an `openat` of `path`.
fn opens(event: &microscope_wire::Event, path: &str) -> bool {
    matches!(&event.data, EventData::Openat { filename, .. } if filename == path)
}

/// Opens `path` (which need not exist) as the end of a workload.
fn open_sentinel(path: &str) {
    let _ = std::fs::File::open(path);
}

/// Names (as the kernel truncates them) of our tracepoint programs.
const OUR_PROGRAMS: [&str; 3] = ["sched_switch", "sys_enter_opena", "sched_process_e"];

fn our_program_ids() -> Vec<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| {
            p.name_as_str()
                .is_some_and(|n| OUR_PROGRAMS.iter().any(|o| n.starts_with(o)))
        })
        .map(|p| p.id())
        .collect()
}

fn loaded_program_count() -> usize {
    our_program_ids().len()
}

/// Attachments (BPF links) the process `pid` holds: the helper's own, not
/// those of other helpers running tests on the same machine at once.
fn attached_link_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .filter(|text| text.lines().any(|l| l.starts_with("link_id:")))
        .count()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn openat_events_match_the_workload_exactly() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    enable(&mut conn, "syscalls:sys_enter_openat");

    let path = format!(
        "/tmp/microscope-kernel-test-{}-{}",
        std::process::id(),
        rand_suffix()
    );
    const OPENS: usize = 257;
    for _ in 0..OPENS {
        // The path does not exist: the syscall fails, but it was entered.
        let _ = std::fs::File::open(&path);
    }
    let sentinel = format!("{path}-end");
    open_sentinel(&sentinel);
    let me = std::process::id();
    let mut seen = 0;
    collect_until_sentinel(&mut conn, |e| {
        if let EventData::Openat { filename, dfd, .. } = &e.data
            && filename == &path
        {
            assert_eq!(e.tgid, me, "event from another process");
            assert_eq!(*dfd, -100, "std opens relative to AT_FDCWD");
            seen += 1;
        }
        opens(e, &sentinel)
    });
    assert_eq!(seen, OPENS);
}

/// The values of an event's generically decoded fields, by name.
fn fields_by_name<'a>(
    names: &'a [String],
    event: &'a microscope_wire::Event,
) -> std::collections::HashMap<&'a str, &'a FieldValue> {
    let EventData::Fields(values) = &event.data else {
        panic!("not a generically decoded event: {:?}", event.data);
    };
    names.iter().map(String::as_str).zip(values).collect()
}

/// Enables a tracepoint decoded generically (whether the built-in pack names
/// it or not); returns its key and field names.
fn enable_generic(conn: &mut Connection, id: &str) -> (ProbeKey, Vec<String>) {
    let replies = conn
        .enable_probe(id)
        .unwrap_or_else(|err| panic!("enabling {id} failed: {err}"));
    let added = replies.iter().find_map(|m| match m {
        HelperMessage::ProbeAdded(info) if info.id == id => Some(info.clone()),
        _ => None,
    });
    let info = added.unwrap_or_else(|| {
        conn.send(&ClientMessage::ListProbes).unwrap();
        loop {
            if let HelperMessage::Probes(probes) = conn.recv().unwrap() {
                break probes
                    .into_iter()
                    .find(|p| p.id == id)
                    .unwrap_or_else(|| panic!("{id} is neither added nor listed"));
            }
        }
    });
    assert_eq!(info.kind, ProbeKind::Fields);
    (info.key, info.fields.into_iter().map(|f| f.name).collect())
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn any_tracepoint_is_decoded_field_by_field() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    // A string in the record, the pid and a byte count, each set by us.
    let (rename_key, rename_fields) = enable_generic(&mut conn, "task:task_rename");
    let (write_key, write_fields) = enable_generic(&mut conn, "syscalls:sys_enter_write");
    // One not in the built-in pack, created on demand.
    let replies = conn.enable_probe("syscalls:sys_enter_getppid").unwrap();
    assert!(
        replies.iter().any(
            |m| matches!(m, HelperMessage::ProbeAdded(p) if p.id == "syscalls:sys_enter_getppid")
        ),
        "{replies:?}"
    );

    let name = format!("msc{}", rand_suffix() % 1_000_000);
    let me = std::process::id();
    let tid = nix::unistd::gettid().as_raw() as u32;
    let worker = std::thread::Builder::new()
        .name(name.clone())
        .spawn(|| nix::unistd::gettid().as_raw() as u32)
        .unwrap();
    let worker_tid = worker.join().unwrap();
    const COUNT: usize = 12_345;
    let mut devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    for _ in 0..3 {
        devnull.write_all(&[0u8; COUNT]).unwrap();
    }
    // The sentinel: one more write, of another size, from this thread.
    devnull.write_all(&[0u8; COUNT + 1]).unwrap();

    let (mut renames, mut writes) = (0, 0);
    collect_until_sentinel(&mut conn, |e| {
        if e.probe == rename_key {
            let f = fields_by_name(&rename_fields, e);
            if f["newcomm"] == &FieldValue::Str(name.clone()) {
                assert_eq!(f["pid"], &FieldValue::Int(i64::from(worker_tid)));
                assert_eq!(e.tgid, me);
                renames += 1;
            }
        } else if e.probe == write_key && e.pid == tid {
            let f = fields_by_name(&write_fields, e);
            if f["count"] == &FieldValue::Uint(COUNT as u64) {
                writes += 1;
            }
            return f["count"] == &FieldValue::Uint(COUNT as u64 + 1);
        }
        false
    });
    assert_eq!(renames, 1, "the thread was named once");
    assert_eq!(writes, 3, "three writes of {COUNT} bytes");
}

/// Sets the helper's process filter and waits for its confirmation.
fn set_filter(conn: &mut Connection, filter: microscope_wire::ProcessFilter) {
    conn.send(&ClientMessage::SetFilter(filter.clone()))
        .unwrap();
    conn.set_recv_timeout(Some(Duration::from_secs(5))).unwrap();
    loop {
        match conn.recv().unwrap() {
            HelperMessage::Filter(f) if f == filter => return,
            HelperMessage::Error { message } => panic!("filter refused: {message}"),
            _ => {}
        }
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn the_process_filter_drops_other_tasks_in_the_kernel() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    enable(&mut conn, "syscalls:sys_enter_openat");
    let base = format!(
        "/tmp/microscope-filter-{}-{}",
        std::process::id(),
        rand_suffix()
    );
    let (named, other) = (format!("{base}-named"), format!("{base}-other"));
    let sentinel = format!("{base}-end");
    // 100 opens from this thread, then 100 from a thread named `mscfilt`,
    // which ends with the sentinel when `sentinel_in_worker`.
    let opens_then = |sentinel_in_worker: bool| {
        (0..100).for_each(|_| drop(std::fs::File::open(&other)));
        let (named, sentinel) = (named.clone(), sentinel.clone());
        std::thread::Builder::new()
            .name("mscfilt".into())
            .spawn(move || {
                (0..100).for_each(|_| drop(std::fs::File::open(&named)));
                if sentinel_in_worker {
                    open_sentinel(&sentinel);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    };
    let count = |conn: &mut Connection| {
        let (mut a, mut b) = (0, 0);
        collect_until_sentinel(conn, |e| {
            a += usize::from(opens(e, &named));
            b += usize::from(opens(e, &other));
            opens(e, &sentinel)
        });
        (a, b)
    };

    set_filter(
        &mut conn,
        microscope_wire::ProcessFilter {
            comm: Some("mscfilt".into()),
            ..Default::default()
        },
    );
    opens_then(true);
    assert_eq!(count(&mut conn), (100, 0), "only the named thread passes");

    let this_process = microscope_wire::ProcessFilter {
        pid: Some(std::process::id()),
        ..Default::default()
    };
    set_filter(&mut conn, this_process.clone());
    opens_then(false);
    open_sentinel(&sentinel);
    assert_eq!(
        count(&mut conn),
        (100, 100),
        "both threads are this process"
    );

    set_filter(
        &mut conn,
        microscope_wire::ProcessFilter {
            pid: Some(1),
            ..Default::default()
        },
    );
    opens_then(false);
    // init opens no sentinel of ours: let this process through again, so
    // that the sentinel marks the end of what pid 1's filter let through.
    set_filter(&mut conn, this_process);
    open_sentinel(&sentinel);
    assert_eq!(count(&mut conn), (0, 0), "init does not open our files");
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn one_clients_filter_never_changes_what_another_receives() {
    let helper = Helper::start();
    let mut narrow = helper.connect();
    let mut wide = helper.connect();
    enable(&mut narrow, "syscalls:sys_enter_openat");
    enable(&mut wide, "syscalls:sys_enter_openat");
    set_filter(
        &mut narrow,
        microscope_wire::ProcessFilter {
            comm: Some("mscnarrow".into()),
            ..Default::default()
        },
    );
    let base = format!(
        "/tmp/microscope-two-filters-{}-{}",
        std::process::id(),
        rand_suffix()
    );
    let (named, other, sentinel) = (
        format!("{base}-named"),
        format!("{base}-other"),
        format!("{base}-end"),
    );
    (0..50).for_each(|_| drop(std::fs::File::open(&other)));
    let (n, e) = (named.clone(), sentinel.clone());
    std::thread::Builder::new()
        .name("mscnarrow".into())
        .spawn(move || {
            (0..50).for_each(|_| drop(std::fs::File::open(&n)));
            // The sentinel passes both filters.
            open_sentinel(&e);
        })
        .unwrap()
        .join()
        .unwrap();
    let count = |conn: &mut Connection| {
        let (mut a, mut b) = (0, 0);
        collect_until_sentinel(conn, |e| {
            a += usize::from(opens(e, &named));
            b += usize::from(opens(e, &other));
            opens(e, &sentinel)
        });
        (a, b)
    };
    assert_eq!(
        count(&mut narrow),
        (50, 0),
        "the narrow client's own filter"
    );
    assert_eq!(
        count(&mut wide),
        (50, 50),
        "the other client's filter does not narrow this one"
    );
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn an_unknown_tracepoint_gets_a_clear_refusal() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    let err = conn
        .enable_probe("nosuch:tracepoint")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("this kernel has no tracepoint nosuch:tracepoint"),
        "{err}"
    );
    let err = conn
        .enable_probe("../../etc:passwd")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a tracepoint name"), "{err}");
    // The connection stays usable.
    enable(&mut conn, "sched:sched_switch");
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_child_fork_exec_and_exit_each_arrive_once() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    for probe in [
        "sched:sched_process_fork",
        "sched:sched_process_exec",
        "sched:sched_process_exit",
        // For the sentinel: every probe writes to the same ring buffer.
        "syscalls:sys_enter_openat",
    ] {
        enable(&mut conn, probe);
    }
    let status = Command::new("/bin/true").status().unwrap();
    assert!(status.success());
    let sentinel = format!(
        "/tmp/microscope-fork-test-{}-{}-end",
        std::process::id(),
        rand_suffix()
    );
    open_sentinel(&sentinel);
    // `status()` forks a child; find its pid from the fork event of our process.
    let me = std::process::id();
    let (mut forks, mut execs, mut exits) = (Vec::new(), Vec::new(), Vec::new());
    collect_until_sentinel(&mut conn, |e| {
        match &e.data {
            EventData::SchedFork {
                parent_pid,
                child_pid,
            } if e.tgid == me => {
                forks.push((*parent_pid, *child_pid));
            }
            EventData::SchedExec { pid, filename, .. } if filename.ends_with("/true") => {
                execs.push(*pid);
            }
            EventData::SchedExit {
                pid, group_dead, ..
            } => exits.push((*pid, *group_dead, e.comm.clone())),
            _ => {}
        }
        opens(e, &sentinel)
    });
    assert_eq!(forks.len(), 1, "forks from this test process: {forks:?}");
    let child = forks[0].1;
    assert_eq!(execs, vec![child], "exec events of /bin/true");
    let child_exits: Vec<_> = exits.iter().filter(|(pid, ..)| *pid == child).collect();
    assert_eq!(
        child_exits.len(),
        1,
        "exit events of the child: {child_exits:?}"
    );
    assert!(child_exits[0].1, "the child's exit ends its process");
    assert_eq!(child_exits[0].2, "true");
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn hello_reports_capabilities_and_probe_list() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    let hello = conn.hello().clone();
    assert!(!hello.helper_version.is_empty());
    assert!(
        hello.capabilities.tracefs.available,
        "{:?}",
        hello.capabilities.tracefs
    );
    for cap in [&hello.capabilities.kprobes, &hello.capabilities.fentry] {
        // Whatever the verdict, it comes with a reason.
        assert!(!cap.reason.is_empty());
    }
    conn.send(&ClientMessage::ListProbes).unwrap();
    let HelperMessage::Probes(probes) = conn.recv().unwrap() else {
        panic!("expected probes")
    };
    let ids: Vec<_> = probes.iter().map(|p| p.id.as_str()).collect();
    for id in [
        "sched:sched_switch",
        "syscalls:sys_enter_openat",
        "raw_syscalls:sys_enter",
        "syscalls:latency",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    // Every tracepoint probe of the built-in pack exists on this kernel; the
    // others (function probes, samplers) may not, but then they say why.
    assert!(probes.len() >= 60, "only {} probes", probes.len());
    for p in &probes {
        if matches!(p.kind, ProbeKind::Stream | ProbeKind::Fields) {
            assert!(
                p.availability.available,
                "{} unavailable on this kernel: {}",
                p.id, p.availability.reason
            );
        } else if !p.availability.available {
            assert!(
                !p.availability.reason.is_empty(),
                "{} gives no reason",
                p.id
            );
        }
    }
    conn.send(&ClientMessage::Enable {
        probe: "nope:nope".into(),
    })
    .unwrap();
    let HelperMessage::Error { message } = conn.recv().unwrap() else {
        panic!("expected an error")
    };
    assert!(message.contains("microscope probes"), "{message}");
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn syscall_counts_and_latency_are_aggregated_in_the_kernel() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    enable(&mut conn, "raw_syscalls:sys_enter");
    enable(&mut conn, "syscalls:latency");
    let getppid = |conn: &mut Connection| -> (u64, u64) {
        // Wait for a fresh snapshot.
        loop {
            if let HelperMessage::Aggregates(a) = conn.recv().unwrap() {
                let n = a
                    .syscall_counts
                    .iter()
                    .find(|(nr, _)| *nr == libc::SYS_getppid as u32);
                return (n.map_or(0, |(_, c)| *c), a.latency_log2_ns.iter().sum());
            }
        }
    };
    let (before, lat_before) = getppid(&mut conn);
    const CALLS: u64 = 5000;
    for _ in 0..CALLS {
        nix::unistd::getppid();
    }
    let _ = getppid(&mut conn); // a snapshot may have been taken mid-loop
    let (after, lat_after) = getppid(&mut conn);
    // Other processes may call getppid too, so at least ours.
    assert!(
        after - before >= CALLS,
        "getppid count grew by {} < {CALLS}",
        after - before
    );
    assert!(
        lat_after - lat_before >= CALLS,
        "latency histogram grew by {}",
        lat_after - lat_before
    );
}

/// A function of this test binary, probed through the socket by
/// `function_probes_through_the_socket`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_kernel_test_function(n: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(200));
    std::hint::black_box(n)
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn function_probes_through_the_socket() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    let capabilities = conn.hello().capabilities.clone();

    // Kernel functions are listed whatever can attach to them.
    conn.send(&ClientMessage::ListKernelFunctions {
        contains: "vfs_rea".into(),
    })
    .unwrap();
    let names = loop {
        if let HelperMessage::KernelFunctions {
            contains, names, ..
        } = conn.recv().unwrap()
        {
            assert_eq!(contains, "vfs_rea");
            break names;
        }
    };
    assert!(names.iter().any(|n| n == "vfs_read"), "{names:?}");

    // A kernel function: attached where the kernel allows, else refused
    // with the reason.
    match conn.enable_probe("func:vfs_read") {
        Ok(_) => assert!(capabilities.kprobes.available || capabilities.fentry.available),
        Err(ClientError::Refused(message)) => {
            assert!(
                !capabilities.kprobes.available && !capabilities.fentry.available,
                "{message}"
            );
            assert!(message.contains(&capabilities.kprobes.reason), "{message}");
        }
        Err(err) => panic!("enabling func:vfs_read failed: {err}"),
    }

    // A user function: every call counted and timed.
    assert!(
        capabilities.uprobes.available,
        "this kernel has no uprobes, which Microscope needs: {}",
        capabilities.uprobes.reason
    );
    let exe = std::env::current_exe().unwrap();
    let id = format!("uprobe:{}:microscope_kernel_test_function", exe.display());
    let replies = conn.enable_probe(&id).unwrap();
    let info = replies
        .iter()
        .find_map(|m| match m {
            HelperMessage::ProbeAdded(info) => Some(info.clone()),
            _ => None,
        })
        .expect("a new function probe is announced");
    assert_eq!(info.id, id);
    assert_eq!(info.kind, ProbeKind::Function);
    assert!(info.availability.available, "{}", info.availability.reason);
    const CALLS: u64 = 300;
    for i in 0..CALLS {
        microscope_kernel_test_function(i);
    }
    conn.set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        assert!(
            Instant::now() < deadline,
            "no aggregates with {CALLS} calls"
        );
        match conn.recv() {
            Ok(HelperMessage::Aggregates(a)) => {
                if let Some(s) = a.functions.iter().find(|s| s.probe == info.key)
                    && s.calls >= CALLS
                {
                    break s.clone();
                }
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    };
    // Only this process calls it.
    assert_eq!(stats.calls, CALLS);
    assert_eq!(stats.latency_log2_ns.len(), 64);
    assert_eq!(stats.latency_log2_ns.iter().sum::<u64>(), CALLS);
    // 200 µs sleeps: nothing below 2^17 ns (131 µs).
    assert_eq!(stats.latency_log2_ns[..17].iter().sum::<u64>(), 0);
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn probes_are_detached_when_the_last_client_leaves_and_on_sigterm() {
    let programs_before = loaded_program_count();
    let mut helper = Helper::start();
    let links_before = attached_link_count(helper.pid());
    let mut conn = helper.connect();
    enable(&mut conn, "sched:sched_switch");
    assert_eq!(
        attached_link_count(helper.pid()),
        links_before + 1,
        "enabling attaches one link"
    );
    drop(conn);
    wait_until("the last client's probe is detached", || {
        attached_link_count(helper.pid()) == links_before
    });

    let mut conn = helper.connect();
    conn.send(&ClientMessage::ListProbes).unwrap();
    let HelperMessage::Probes(probes) = conn.recv().unwrap() else {
        panic!("expected probes")
    };
    assert!(
        probes.iter().all(|p| !p.enabled),
        "a new client starts with nothing enabled"
    );
    enable(&mut conn, "sched:sched_switch");
    enable(&mut conn, "syscalls:sys_enter_openat");
    assert_eq!(attached_link_count(helper.pid()), links_before + 2);
    let status = helper.stop();
    assert!(status.success(), "helper exited with {status}");
    wait_until("the helper's programs are gone", || {
        loaded_program_count() == programs_before
    });
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn programs_are_released_even_when_the_helper_is_killed() {
    let baseline = loaded_program_count();
    let mut helper = Helper::start();
    let mut conn = helper.connect();
    enable(&mut conn, "syscalls:sys_enter_openat");
    let mut child = helper.child.take().unwrap();
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    // Every attachment is a file descriptor of the helper: the kernel
    // detaches and frees the programs when the process dies.
    wait_until("the killed helper's programs are gone", || {
        loaded_program_count() == baseline
    });
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_client_of_another_version_gets_a_clear_error() {
    let helper = Helper::start();
    let reply = raw_handshake(&helper.socket, &Preamble { version: 999 }.to_bytes());
    assert!(reply.contains("protocol version mismatch"), "{reply}");
    assert!(reply.contains("v999"), "{reply}");
    let reply = raw_handshake(&helper.socket, b"GET / HT");
    assert!(reply.contains("not a Microscope"), "{reply}");
}

/// Sends `preamble`, returns the helper's first message as text.
fn raw_handshake(socket: &Path, preamble: &[u8]) -> String {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(preamble).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    assert_eq!(
        Preamble::check(bytes[..8].try_into().unwrap()),
        Ok(Preamble::current())
    );
    let mut decoder = FrameDecoder::<HelperMessage>::new();
    decoder.push(&bytes[8..]);
    match decoder.next_message().unwrap() {
        Some(HelperMessage::Error { message }) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn an_unprivileged_user_outside_the_group_is_refused() {
    let helper = Helper::start();
    // 1. The socket is 0660 root:root here, so the kernel refuses at connect().
    let reply = connect_as_nobody(&helper.socket);
    assert!(reply.contains("permission denied"), "{reply}");
    assert!(reply.contains("usermod -aG"), "{reply}");
    // 2. Even with the file opened up, the peer-credential check refuses.
    std::fs::set_permissions(&helper.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let reply = connect_as_nobody(&helper.socket);
    assert!(reply.contains("refused"), "{reply}");
    assert!(reply.contains(&format!("uid {NOBODY}")), "{reply}");
    // Root is still welcome.
    let _ = helper.connect();
}

/// Runs `child_connects_as_given` in a copy of this test binary as uid
/// nobody and returns what it printed.
fn connect_as_nobody(socket: &Path) -> String {
    // The checkout may sit under a directory nobody cannot enter (/root):
    // run a copy of this binary from a world-readable place.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("kernel-test-child");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&exe)
        .args([
            "--exact",
            "child_connects_as_given",
            "--nocapture",
            "--ignored",
        ])
        .env("MICROSCOPE_TEST_SOCKET", socket)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("CONNECT RESULT: "))
        .unwrap_or_else(|| {
            panic!(
                "child printed no result: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

/// Not a test on its own: the child half of
/// `an_unprivileged_user_outside_the_group_is_refused`.
#[test]
#[ignore = "run by another test as an unprivileged user"]
fn child_connects_as_given() {
    let Some(socket) = std::env::var_os("MICROSCOPE_TEST_SOCKET") else {
        return;
    };
    match Connection::connect(socket) {
        Ok(_) => println!("CONNECT RESULT: connected"),
        Err(err) => println!("CONNECT RESULT: {err}"),
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
