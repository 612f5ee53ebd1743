//! Probe packs on the running kernel: the C example pack (built here with
//! clang), four of bcc's libbpf-tools (their unmodified objects, extracted
//! from Debian's `libbpf-tools` package at test time), and the refusals.
//!
//! Each test makes a root-owned pack directory, starts the real helper with
//! `--pack-dir`, runs a workload whose effects it knows exactly (children
//! with known exit codes, a child making a known number of system calls or
//! sleeps), and compares what the pack's maps and events say.
//!
//! Needs root, `clang-22` and `libbpf-dev` (`cargo xtask setup` installs
//! them), and network access to Debian's archive the first time (the
//! objects are cached in the target directory).

use super::{Helper, rand_suffix};
use microscope_wire::ProbeKey;
use microscope_wire::{
    ClientError, ClientMessage, Connection, EventData, FieldValue, HelperMessage, PackData,
    ProbeInfo, ProbeKind, ProcessFilter, StackBatch,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LIBBPF_TOOLS: [&str; 5] = [
    "exitsnoop",
    "execsnoop",
    "runqlat",
    "syscount",
    "offcputime",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The libbpf-tools objects, extracted once into the target directory.
fn libbpf_tools_objects() -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libbpf-tools");
    if LIBBPF_TOOLS
        .iter()
        .all(|t| cache.join(format!("{t}.bpf.o")).is_file())
    {
        return cache;
    }
    let work = cache.join("download");
    std::fs::create_dir_all(&work).unwrap();
    let status = Command::new("apt-get")
        .args(["download", "libbpf-tools"])
        .current_dir(&work)
        .status()
        .expect("run apt-get");
    assert!(
        status.success(),
        "`apt-get download libbpf-tools` failed: the libbpf-tools pack tests need Debian's package (run `apt-get update` first)"
    );
    let deb = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("the downloaded .deb");
    let root = work.join("root");
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success(), "dpkg -x {} failed", deb.display());
    for tool in LIBBPF_TOOLS {
        let binary = std::fs::read(root.join("usr/sbin").join(tool)).unwrap();
        let objects = microscope_catalogue::object::embedded_objects(&binary);
        assert_eq!(objects.len(), 1, "{tool} embeds one BPF object");
        std::fs::write(cache.join(format!("{tool}.bpf.o")), objects[0]).unwrap();
    }
    cache
}

/// Compiles a C BPF source with clang-22.
fn clang(source: &Path, out: &Path) {
    let arch_include = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let output = Command::new("clang-22")
        .args(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86"])
        .arg(format!("-I{arch_include}"))
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run clang-22 ({err}); `cargo xtask setup` installs clang-22 and libbpf-dev"
            )
        });
    assert!(
        output.status.success(),
        "clang-22 failed on {}: {}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds the Rust example pack's object (aya-ebpf, nightly, bpf-linker)
/// into the target directory, once.
fn rust_example_object() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-rust");
    let output = Command::new("cargo")
        .args(["build", "--release"])
        .current_dir(repo().join("assets/packs/example-rust/program"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building the Rust example pack failed (it needs nightly with rust-src and bpf-linker, which `cargo xtask setup` installs): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    target.join("bpfel-unknown-none/release/writes")
}

/// Copies the manifests (and sources) of pack `name` from assets/packs.
fn copy_pack(name: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(repo().join("assets/packs").join(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// A root-owned directory holding the C example pack and the libbpf-tools
/// pack, objects included.
fn trusted_packs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("example-c");
    copy_pack("example-c", &c);
    clang(&c.join("sleeps.bpf.c"), &c.join("sleeps.bpf.o"));
    clang(&c.join("offcpu.bpf.c"), &c.join("offcpu.bpf.o"));
    let rust = dir.path().join("example-rust");
    copy_pack("example-rust", &rust);
    std::fs::copy(rust_example_object(), rust.join("writes.bpf.o")).unwrap();
    let tools = dir.path().join("libbpf-tools");
    copy_pack("libbpf-tools", &tools);
    let objects = libbpf_tools_objects();
    for tool in LIBBPF_TOOLS {
        let name = format!("{tool}.bpf.o");
        std::fs::copy(objects.join(&name), tools.join(&name)).unwrap();
    }
    dir
}

fn start(packs: &Path) -> Option<Helper> {
    Some(Helper::start_with(&[
        OsStr::new("--pack-dir"),
        packs.as_os_str(),
    ]))
}

fn probe(conn: &mut Connection, id: &str) -> ProbeInfo {
    conn.list_probes()
        .unwrap()
        .into_iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("the helper does not list {id}"))
}

fn enable_available(conn: &mut Connection, id: &str) -> ProbeInfo {
    // Loading an object (verifier included) takes longer than the short
    // timeouts used while collecting.
    conn.set_recv_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let info = probe(conn, id);
    assert!(
        info.availability.available,
        "{id} is unavailable: {}",
        info.availability.reason
    );
    if let Err(err) = conn.enable_probe(id) {
        panic!("enabling {id} failed: {err}");
    }
    info
}

fn set_filter_pid(conn: &mut Connection, pid: u32) {
    super::set_filter(
        conn,
        ProcessFilter {
            pid: Some(pid),
            ..ProcessFilter::default()
        },
    );
}

fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// The first snapshot of probe `key`'s maps read after `after_ns`
/// (events that arrive meanwhile are skipped).
fn pack_data_after(conn: &mut Connection, key: ProbeKey, after_ns: u64) -> PackData {
    conn.set_recv_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < deadline,
            "no map snapshot of probe {key} within 10 s"
        );
        match conn.recv() {
            Ok(HelperMessage::PackData(data)) if data.probe == key && data.ts_ns > after_ns => {
                return data;
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
}

/// A forked child waiting to run its workload; killed if the test fails
/// before starting it.
struct Forked {
    pid: nix::unistd::Pid,
    start: Option<std::os::fd::OwnedFd>,
}

impl Drop for Forked {
    fn drop(&mut self) {
        if self.start.is_some() {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

/// A forked child that waits for a byte on a pipe, runs `work` (raw system
/// calls only: the parent has threads), and exits. If the parent goes away
/// first, the read sees end-of-file and the child exits without working.
fn forked(work: fn()) -> Forked {
    let (read, write) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only makes raw system calls (close, read, the
    // workload's own, _exit): nothing that needs another thread's lock.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(write);
            let mut byte = [0u8; 1];
            // SAFETY: a valid fd and a 1-byte buffer.
            let n = unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(&read),
                    byte.as_mut_ptr().cast(),
                    1,
                )
            };
            if n == 1 {
                work();
            }
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => Forked {
            pid: child,
            start: Some(write),
        },
    }
}

impl Forked {
    fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Starts the workload and waits for the child to exit; returns the
    /// monotonic time after it did.
    fn go_and_wait(mut self) -> u64 {
        if let Some(start) = self.start.take() {
            nix::unistd::write(&start, b"x").unwrap();
        }
        nix::sys::wait::waitpid(self.pid, None).unwrap();
        monotonic_ns()
    }
}

fn named<'a>(
    info: &'a ProbeInfo,
    event: &'a microscope_wire::Event,
    field: &str,
) -> &'a FieldValue {
    let EventData::Fields(values) = &event.data else {
        panic!("not a pack event: {:?}", event.data);
    };
    let i = info
        .fields
        .iter()
        .position(|f| f.name == field)
        .unwrap_or_else(|| panic!("{} has no field {field}", info.id));
    &values[i]
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_exitsnoop_reports_each_childs_exit_code_and_signal() {
    let packs = trusted_packs();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    let info = enable_available(&mut conn, "libbpf-tools:exitsnoop");
    let codes = [0, 3, 7, 42, 255];
    let mut expected = std::collections::HashMap::new();
    for code in codes {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exit {code}"))
            .spawn()
            .unwrap();
        expected.insert(child.id(), (code, "0 (none)".to_owned()));
        child.wait().unwrap();
    }
    let mut killed = Command::new("sleep").arg("100").spawn().unwrap();
    expected.insert(killed.id(), (0, "SIGTERM".to_owned()));
    super::signal(&killed, nix::sys::signal::Signal::SIGTERM);
    killed.wait().unwrap();

    let mut seen = std::collections::HashMap::new();
    conn.set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < expected.len() && Instant::now() < deadline {
        match conn.recv() {
            Ok(HelperMessage::Batch(batch)) => {
                for e in batch.events.iter().filter(|e| e.probe == info.key) {
                    if expected.contains_key(&e.tgid) {
                        let code = named(&info, e, "exit_code").clone();
                        let sig = named(&info, e, "sig").to_string();
                        assert!(
                            seen.insert(e.tgid, (code, sig)).is_none(),
                            "two exits of {}",
                            e.tgid
                        );
                    }
                }
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
    for (pid, (code, sig)) in &expected {
        let got = seen
            .get(pid)
            .unwrap_or_else(|| panic!("no exit event for child {pid}"));
        assert_eq!(
            got,
            &(FieldValue::Int(i64::from(*code)), sig.clone()),
            "child {pid}"
        );
    }
    println!(
        "exitsnoop: {} exits with codes {codes:?} and one SIGTERM, each seen once with its code",
        expected.len()
    );
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_execsnoop_reports_arguments_and_errno() {
    let packs = trusted_packs();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    let info = enable_available(&mut conn, "libbpf-tools:execsnoop");
    let marker = format!("microscope-{}", rand_suffix());
    let missing = format!("/nonexistent/{marker}");
    let mut ok = Command::new("/bin/true")
        .args(["one", &marker])
        .spawn()
        .unwrap();
    let ok_pid = ok.id();
    ok.wait().unwrap();
    // A failed exec: the child of `sh` tries a file that does not exist.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {missing} 2>/dev/null"))
        .status()
        .unwrap();
    assert!(!status.success());

    let (mut good, mut bad) = (None, None);
    conn.set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (good.is_none() || bad.is_none()) && Instant::now() < deadline {
        match conn.recv() {
            Ok(HelperMessage::Batch(batch)) => {
                for e in batch.events.iter().filter(|e| e.probe == info.key) {
                    let args = named(&info, e, "args").to_string();
                    if e.tgid == ok_pid && args.contains(&marker) {
                        good = Some((args, named(&info, e, "retval").to_string()));
                    } else if args.contains(&missing) {
                        bad = Some(named(&info, e, "retval").to_string());
                    }
                }
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
    let (args, retval) = good.expect("an exec event for /bin/true");
    assert_eq!(args, format!("\"/bin/true one {marker}\""));
    assert_eq!(retval, "0 (success)");
    assert_eq!(bad.expect("an exec event for the missing file"), "-ENOENT");
}

fn sleep_2ms() {
    for _ in 0..20 {
        let t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 2_000_000,
        };
        // SAFETY: valid timespec; the remainder is not wanted.
        unsafe { libc::nanosleep(&t, std::ptr::null_mut()) };
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_c_example_counts_sleeps_of_one_process() {
    let packs = trusted_packs();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    let child = forked(sleep_2ms);
    let pid = child.pid();
    set_filter_pid(&mut conn, pid);
    let info = enable_available(&mut conn, "example-c:sleeps");
    let done = child.go_and_wait();

    // Its events (one per sleep, each at least 2 ms, none failed) and the
    // first snapshot of its maps taken after the child ended.
    let mut events = 0;
    let mut data = None;
    conn.set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (data.is_none() || events < 20) && Instant::now() < deadline {
        match conn.recv() {
            Ok(HelperMessage::Batch(batch)) => {
                for e in batch.events.iter().filter(|e| e.probe == info.key) {
                    assert_eq!(e.tgid, pid);
                    assert_eq!(named(&info, e, "ret").to_string(), "0 (success)");
                    let FieldValue::Named { value, .. } = named(&info, e, "duration_ns") else {
                        panic!("duration_ns is a duration");
                    };
                    assert!(*value >= 2_000_000);
                    events += 1;
                }
            }
            Ok(HelperMessage::PackData(d)) if d.probe == info.key && d.ts_ns > done => {
                data.get_or_insert(d);
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
    assert_eq!(events, 20);
    let data = data.expect("a snapshot of the maps after the child ended");
    let table = data
        .tables
        .iter()
        .find(|t| t.map == "totals")
        .expect("the totals table");
    assert_eq!(table.columns, ["tgid", "calls", "total_ns"]);
    assert_eq!(
        table.rows.len(),
        1,
        "only the filtered process: {:?}",
        table.rows
    );
    assert_eq!(table.rows[0][0], FieldValue::Uint(u64::from(pid)));
    assert_eq!(table.rows[0][1], FieldValue::Uint(20));
    let FieldValue::Named {
        value: total_ns, ..
    } = table.rows[0][2]
    else {
        panic!("total_ns is a duration: {:?}", table.rows[0][2]);
    };
    assert!(
        total_ns >= 40_000_000,
        "20 sleeps of 2 ms took {total_ns} ns"
    );
    let hist = data
        .histograms
        .iter()
        .find(|h| h.map == "hist")
        .expect("the histogram");
    assert_eq!(hist.label, format!("tgid={pid}"));
    assert_eq!(hist.unit, "µs");
    assert_eq!(hist.buckets.iter().sum::<u64>(), 20);
    // 2 ms = 2000 µs is in bucket 10, [1024, 2048); a late wake-up in a later one.
    assert!(
        hist.buckets.iter().take(10).all(|n| *n == 0),
        "{:?}",
        hist.buckets
    );
    println!(
        "example-c:sleeps: 20 sleeps counted, histogram {:?}",
        hist.buckets
    );
}

/// Stack batches until one that covers `after_ns` (its counts were read
/// later), with every frame name defined on the way.
fn stacks_after(
    conn: &mut Connection,
    after_ns: u64,
) -> (Vec<StackBatch>, HashMap<u32, (String, bool)>) {
    conn.set_recv_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut batches, mut names) = (Vec::new(), HashMap::new());
    loop {
        assert!(
            Instant::now() < deadline,
            "no stack batch read after the workload ended within 20 s"
        );
        match conn.recv() {
            Ok(HelperMessage::Stacks(batch)) => {
                for frame in &batch.frames {
                    names.insert(frame.id, (frame.name.clone(), frame.kernel));
                }
                let last = batch.end_ns > after_ns;
                batches.push(batch);
                if last {
                    return (batches, names);
                }
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_c_offcpu_stacks_name_the_sleeping_function_and_sum_its_sleeps() {
    off_cpu_stacks_of_a_sleeper("example-c:offcpu");
}

/// bcc's offcputime, unmodified, with the stack map sizes its command line
/// would set written into its BTF by the helper. Its program counts every
/// thread of the machine: the workload's stacks reach this client only
/// through the hub's refinement by the client's process filter.
#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_offcputime_stacks_name_the_sleeping_function_and_sum_its_sleeps() {
    off_cpu_stacks_of_a_sleeper("libbpf-tools:offcputime");
}

/// Enables off-CPU stacks probe `id` for the profiler's workload thread
/// that sleeps 20 × 20 ms in `microscope_sleep_wait`, and checks the
/// stacks that reach the client: only the workload's, naming the function
/// and the kernel's nanosleep path, with a time that agrees with what the
/// workload measured.
fn off_cpu_stacks_of_a_sleeper(id: &str) {
    let packs = trusted_packs();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    const SLEEPS: u64 = 20;
    const SLEEP_MS: u64 = 20;
    // A thread named `sleeper` calls nanosleep() SLEEPS times from
    // `microscope_sleep_wait` (profile_target.rs, built with frame pointers).
    let mut target =
        super::profile::Target::spawn(&["sleep", &SLEEPS.to_string(), &SLEEP_MS.to_string()]);
    let pid = target.pid();
    set_filter_pid(&mut conn, pid);
    let info = enable_available(&mut conn, id);
    assert_eq!(info.kind, ProbeKind::TimeStacks, "its stacks sum time");
    target.go();
    let line = target.read_line();
    let measured_ns: u64 = line
        .strip_prefix("slept_ns ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the workload said {line:?}"));
    target.expect_line("done");
    let done = monotonic_ns();
    // The sentinel: wake the workload's main thread (blocked reading its
    // stdin) once more, so its count grows and a drain after `done` sends
    // a batch; that batch's counts were read after every sleep was counted.
    target.go();
    let (batches, names) = stacks_after(&mut conn, done);

    let mut slept_ns = 0;
    let mut example = Vec::new();
    let mut stacks = 0;
    for stack in batches.iter().flat_map(|b| &b.stacks) {
        assert_eq!(stack.probe, info.key, "only the enabled probe's stacks");
        assert_eq!(
            stack.tgid, pid,
            "another process's stack reached the client"
        );
        stacks += 1;
        let frames: Vec<&(String, bool)> = stack
            .frames
            .iter()
            .map(|id| {
                names
                    .get(id)
                    .unwrap_or_else(|| panic!("frame {id} has no name"))
            })
            .collect();
        let in_sleeper = frames
            .iter()
            .any(|(n, k)| !k && n == "microscope_sleep_wait");
        let in_nanosleep = frames.iter().any(|(n, k)| *k && n.contains("nanosleep"));
        if in_sleeper && in_nanosleep {
            assert_eq!(stack.comm, "sleeper");
            slept_ns += stack.value;
            example = frames.iter().map(|(n, _)| n.clone()).collect();
        }
    }
    println!(
        "{id}: {stacks} stacks; {:.1} ms off the CPU in the nanosleep path of \
         microscope_sleep_wait; asked for {} ms, the workload measured {:.1} ms; stack: {}",
        slept_ns as f64 / 1e6,
        SLEEPS * SLEEP_MS,
        measured_ns as f64 / 1e6,
        example.join(";")
    );
    assert!(
        !example.is_empty(),
        "no stack names both microscope_sleep_wait and a nanosleep kernel function"
    );
    // Off-CPU time runs from leaving the CPU to running again: never more
    // than the wall time the workload measured around its calls, and the
    // calls do little else than sleep.
    assert!(
        slept_ns <= measured_ns,
        "{slept_ns} ns off the CPU > {measured_ns} ns measured"
    );
    assert!(
        slept_ns >= measured_ns * 8 / 10,
        "{slept_ns} ns off the CPU is under 80 % of the {measured_ns} ns the workload measured"
    );
    assert!(slept_ns >= SLEEPS * SLEEP_MS * 1_000_000 * 8 / 10);
}

fn known_writes() {
    let null = c"/dev/null";
    let buf = [0u8; 5000];
    // SAFETY: a valid C string; the fd is used only here.
    let fd = unsafe { libc::open(null.as_ptr(), libc::O_WRONLY) };
    for (count, size) in [(10, 100), (5, 5000)] {
        for _ in 0..count {
            // SAFETY: `buf` holds at least `size` bytes.
            unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), size) };
        }
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_rust_example_counts_write_sizes_of_one_process() {
    let packs = trusted_packs();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    let child = forked(known_writes);
    let pid = child.pid();
    set_filter_pid(&mut conn, pid);
    let info = enable_available(&mut conn, "example-rust:writes");
    let done = child.go_and_wait();

    let data = pack_data_after(&mut conn, info.key, done);
    let table = data
        .tables
        .iter()
        .find(|t| t.map == "TOTALS")
        .expect("TOTALS");
    assert_eq!(
        table.rows.len(),
        1,
        "only the filtered process: {:?}",
        table.rows
    );
    assert_eq!(table.rows[0][0], FieldValue::Uint(u64::from(pid)));
    assert_eq!(table.rows[0][1], FieldValue::Uint(15));
    assert_eq!(
        table.rows[0][2],
        FieldValue::Named {
            value: 26_000,
            text: "25.4 KiB".into()
        }
    );
    let hist = data
        .histograms
        .iter()
        .find(|h| h.map == "SIZES")
        .expect("SIZES");
    assert_eq!(hist.label, format!("tgid={pid}"));
    let mut expected = vec![0u64; 32];
    expected[6] = 10; // 100 bytes: [64, 128)
    expected[12] = 5; // 5000 bytes: [4096, 8192)
    assert_eq!(hist.buckets, expected);
    println!(
        "example-rust:writes: 15 writes, 26000 bytes, buckets 6 → 10 and 12 → 5 (per-CPU copies summed)"
    );
}

fn many_syscalls() {
    for _ in 0..137 {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    for _ in 0..50 {
        // SAFETY: getuid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getuid) };
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_syscount_counts_calls_by_name_for_one_process() {
    let packs = trusted_packs();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    let child = forked(many_syscalls);
    set_filter_pid(&mut conn, child.pid());
    let info = enable_available(&mut conn, "libbpf-tools:syscount");
    let done = child.go_and_wait();

    let data = pack_data_after(&mut conn, info.key, done);
    let table = &data.tables[0];
    let count = |name: &str| {
        table
            .rows
            .iter()
            .find(|row| row[0].to_string() == name)
            .map(|row| row[1].clone())
    };
    assert_eq!(
        count("getppid"),
        Some(FieldValue::Uint(137)),
        "{:?}",
        table.rows
    );
    assert_eq!(count("getuid"), Some(FieldValue::Uint(50)));
    // The read that waited for the start byte returned once.
    assert_eq!(count("read"), Some(FieldValue::Uint(1)));

    // The same reading through the app's path: converted as the ingest
    // thread converts it, its table in the model keyed by the decoded names.
    let mut model = microscope_model::Model::new(Instant::now());
    model.apply(microscope_model::Update::Probes(vec![info.clone().into()]));
    let update = microscope_model::update_from_message(
        HelperMessage::PackData(data.clone()),
        Instant::now(),
    )
    .expect("pack data is an update");
    model.apply(update);
    let table = &model.packs[&info.key].tables[0];
    assert_eq!(table.rate_column_name(), Some("count"));
    let value = |name: &str| {
        table
            .rows
            .iter()
            .find(|row| row.key == name)
            .and_then(|row| row.value(table))
    };
    assert_eq!(
        (value("getppid"), value("getuid")),
        (Some(137.0), Some(50.0))
    );
    println!(
        "syscount: getppid 137, getuid 50, read 1 for the filtered child, in the app's model too"
    );
}

fn wake_often() {
    sleep_2ms();
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn pack_runqlat_histogram_total_equals_the_switches_to_the_thread() {
    let packs = trusted_packs();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    let info = enable_available(&mut conn, "libbpf-tools:runqlat");
    super::enable(&mut conn, "sched:sched_switch");
    let child = forked(wake_often);
    let pid = child.pid();
    let done = child.go_and_wait();

    // Every time the child was put on a CPU after waiting in the run queue.
    let mut switches_in = 0u64;
    let mut left_for_good = false;
    // Drop counters as of the newest batch: the hub reads the kernel's in
    // the same turn as it sends the pack's snapshot, so a batch queued after
    // the snapshot carries every drop of the workload.
    let (mut kernel_drops, mut client_drops) = (0u64, 0u64);
    let mut batch_after_data = false;
    conn.set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut data = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (data.is_none() || !left_for_good || !batch_after_data) && Instant::now() < deadline {
        match conn.recv() {
            Ok(HelperMessage::Batch(batch)) => {
                for e in &batch.events {
                    if let EventData::SchedSwitch {
                        next_pid,
                        prev_pid,
                        prev_state,
                        ..
                    } = &e.data
                    {
                        if *next_pid == pid {
                            switches_in += 1;
                        }
                        // Its last switch out: it is dead (EXIT_DEAD/ZOMBIE).
                        if *prev_pid == pid && *prev_state & 0x30 != 0 {
                            left_for_good = true;
                        }
                    }
                }
                kernel_drops = batch.stats.iter().map(|s| s.kernel_drops).sum();
                client_drops = batch.stats.iter().map(|s| s.client_drops).sum();
                batch_after_data = data.is_some();
            }
            Ok(HelperMessage::PackData(d)) if d.probe == info.key && d.ts_ns > done => {
                data = Some(d);
            }
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
    // Exact counts need every scheduler event: say so plainly when the
    // machine was too busy for the helper to keep them all.
    assert_eq!(
        (kernel_drops, client_drops),
        (0, 0),
        "scheduler events were lost (in the kernel, for this client) while the child ran; \
         the child was seen switched in {switches_in} times"
    );
    assert!(left_for_good, "no final sched_switch of the child");
    let data = data.expect("a runqlat snapshot after the child ended");
    let hist = data
        .histograms
        .iter()
        .find(|h| h.label.starts_with(&format!("tid={pid} ")))
        .unwrap_or_else(|| panic!("no histogram for {pid}"));
    let total: u64 = hist.buckets.iter().sum();
    assert!(
        switches_in >= 21,
        "the child ran after each of its 20 sleeps: {switches_in}"
    );
    assert_eq!(total, switches_in, "histogram {:?}", hist.buckets);
    println!(
        "runqlat: child {pid} was switched in {switches_in} times; histogram total {total} ({:?} µs buckets)",
        hist.buckets
    );
}

/// A pack whose program the verifier rejects, one whose CO-RE read names a
/// field no kernel has, and one with a `.kconfig` extern.
const BAD_VERIFIER: &str = r#"
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
SEC("tracepoint/sched/sched_process_exit")
int unchecked(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	*v += 1; /* no NULL check: the verifier refuses this */
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

const BAD_CORE: &str = r#"
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
struct task_struct { int microscope_no_such_field; } __attribute__((preserve_access_index));
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
SEC("tracepoint/sched/sched_process_exit")
int missing_field(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 key = BPF_CORE_READ(task, microscope_no_such_field);
	__u64 one = 1;
	bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

const BAD_KCONFIG: &str = r#"
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern int LINUX_KERNEL_VERSION __kconfig;
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
SEC("tracepoint/sched/sched_process_exit")
int kconfig(void *ctx)
{
	__u32 key = LINUX_KERNEL_VERSION;
	__u64 one = 1;
	bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

/// Writes a one-probe pack `id` whose object is built from `source`.
fn bad_pack(root: &Path, id: &str, program: &str, source: &str) {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pack.toml"),
        format!(
            "[pack]\nid = \"{id}\"\nname = \"{id}\"\ndescription = \"A pack the helper must refuse.\"\nversion = \"1\"\n\n[[object]]\nid = \"bad\"\nfile = \"bad.bpf.o\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("probe.toml"),
        format!(
            "[[probe]]\nid = \"{id}:counts\"\ntype = \"bpf\"\nobject = \"bad\"\nsubsystem = \"process\"\nsummary = \"Counts exits.\"\n\n[[probe.attach]]\nprogram = \"{program}\"\ntarget = \"tracepoint:sched:sched_process_exit\"\n\n[[probe.output]]\nmap = \"counts\"\nkind = \"counters\"\nkey = [{{ name = \"key\", type = \"u32\" }}]\nvalue = [{{ name = \"count\", type = \"u64\" }}]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("bad.bpf.c"), source).unwrap();
    clang(&dir.join("bad.bpf.c"), &dir.join("bad.bpf.o"));
}

fn enable_error(conn: &mut Connection, id: &str) -> String {
    match conn.enable_probe(id) {
        Err(ClientError::Refused(message)) => message,
        other => panic!("enabling {id} should be refused, got {other:?}"),
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn bad_packs_are_refused_with_a_sentence_and_the_others_still_load() {
    let packs = trusted_packs();
    bad_pack(packs.path(), "bad-verifier", "unchecked", BAD_VERIFIER);
    bad_pack(packs.path(), "bad-core", "missing_field", BAD_CORE);
    bad_pack(packs.path(), "bad-kconfig", "kconfig", BAD_KCONFIG);
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();

    // The verifier's verdict, in a sentence; the whole log on request.
    let info = probe(&mut conn, "bad-verifier:counts");
    assert!(!info.availability.available);
    let reason = &info.availability.reason;
    assert!(
        reason.contains("the verifier refused pack `bad-verifier`, program `unchecked`")
            && reason.contains("--verifier-log"),
        "{reason}"
    );
    let message = enable_error(&mut conn, "bad-verifier:counts");
    assert!(message.contains("the verifier refused"), "{message}");
    conn.send(&ClientMessage::VerifierLog {
        probe: "bad-verifier:counts".into(),
    })
    .unwrap();
    let log = loop {
        if let HelperMessage::VerifierLog { log, .. } = conn.recv().unwrap() {
            break log;
        }
    };
    assert!(log.contains("map_value_or_null"), "the whole log: {log}");

    // A CO-RE read of a field this kernel lacks.
    let info = probe(&mut conn, "bad-core:counts");
    assert!(
        info.availability
            .reason
            .contains("does not exist on this kernel"),
        "{}",
        info.availability.reason
    );

    // A `.kconfig` extern: the whole pack is refused before loading.
    let message = enable_error(&mut conn, "bad-kconfig:counts");
    assert!(
        message.contains("no pack `bad-kconfig` is loaded") && message.contains(".kconfig"),
        "{message}"
    );

    // A probe that does not exist in a loaded pack.
    let message = enable_error(&mut conn, "libbpf-tools:opensnoop");
    assert!(
        message.starts_with("pack `libbpf-tools` has no probe `libbpf-tools:opensnoop`; it offers")
            && message.contains("libbpf-tools:exitsnoop"),
        "{message}"
    );

    // The good packs still work.
    for id in [
        "libbpf-tools:exitsnoop",
        "libbpf-tools:runqlat",
        "example-c:sleeps",
    ] {
        enable_available(&mut conn, id);
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_world_writable_pack_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let packs = trusted_packs();
    let c = packs.path().join("example-c");
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o777)).unwrap();
    let Some(helper) = start(packs.path()) else {
        return;
    };
    let mut conn = helper.connect();
    assert!(
        conn.list_probes()
            .unwrap()
            .iter()
            .all(|p| p.id != "example-c:sleeps"),
        "a pack in a world-writable directory must not be offered"
    );
    let message = enable_error(&mut conn, "example-c:sleeps");
    assert!(
        message.contains(&format!("{} is writable by everyone", c.display()))
            && message.contains("chmod go-w"),
        "{message}"
    );
    // The other pack of the same directory is unaffected.
    enable_available(&mut conn, "libbpf-tools:exitsnoop");
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn check_pack_accepts_the_objects_the_helper_loads() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root to read tracefs like the helper: run `sudo -E cargo xtask test`"
    );
    let packs = trusted_packs();
    for name in ["libbpf-tools", "example-c"] {
        let checked = microscope_catalogue::check_pack_dir(&packs.path().join(name)).unwrap();
        assert!(
            checked.is_clean(),
            "{name}: {:?} {:?}",
            checked.object_problems,
            checked.probes
        );
        for probe in &checked.probes {
            for target in &probe.targets {
                assert!(
                    !target.contains("unavailable") && !target.contains("not checked"),
                    "{}: {target}",
                    probe.id
                );
            }
        }
    }
}

/// Writes template `lang` of `microscope new-pack` (assets/packs/templates)
/// as pack `id`, substituting the placeholders the way the command does.
fn scaffold(lang: &str, id: &str, to: &Path) {
    let from = repo().join("assets/packs/templates").join(lang);
    let mut stack = vec![from.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(&from)
                .unwrap()
                .to_str()
                .unwrap()
                .replace("PACK_ID", id);
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("PACK_ID", id)
                .replace("CRATE_NAME", &id.replace('-', "_"));
            let out = to.join(relative);
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
            std::fs::write(out, text).unwrap();
        }
    }
}

fn failed_opens() {
    let missing = c"/nonexistent/microscope-scaffold-test";
    for _ in 0..3 {
        // SAFETY: a valid C string; the call fails with ENOENT.
        unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                missing.as_ptr(),
                libc::O_RDONLY,
            )
        };
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn packs_written_by_new_pack_build_load_and_count() {
    let root = tempfile::tempdir().unwrap();
    scaffold("c", "scaffold-c", &root.path().join("scaffold-c"));
    clang(
        &root.path().join("scaffold-c/scaffold-c.bpf.c"),
        &root.path().join("scaffold-c/scaffold-c.bpf.o"),
    );
    let rust = root.path().join("scaffold-rust");
    scaffold("rust", "scaffold-rust", &rust);
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-rust");
    let output = Command::new("cargo")
        .args(["build", "--release"])
        .current_dir(rust.join("program"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::copy(
        target.join("bpfel-unknown-none/release/scaffold_rust"),
        rust.join("scaffold-rust.bpf.o"),
    )
    .unwrap();
    let Some(helper) = start(root.path()) else {
        return;
    };
    let mut conn = helper.connect();
    for id in ["scaffold-c:opens", "scaffold-rust:opens"] {
        let child = forked(failed_opens);
        let pid = child.pid();
        set_filter_pid(&mut conn, pid);
        let info = enable_available(&mut conn, id);
        let done = child.go_and_wait();
        let mut failures = 0;
        let mut data = None;
        conn.set_recv_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while (data.is_none() || failures < 3) && Instant::now() < deadline {
            match conn.recv() {
                Ok(HelperMessage::Batch(batch)) => {
                    for e in batch.events.iter().filter(|e| e.probe == info.key) {
                        assert_eq!(e.tgid, pid);
                        assert_eq!(named(&info, e, "ret").to_string(), "-ENOENT");
                        failures += 1;
                    }
                }
                Ok(HelperMessage::PackData(d)) if d.probe == info.key && d.ts_ns > done => {
                    data.get_or_insert(d);
                }
                Ok(_) | Err(ClientError::Timeout(_)) => {}
                Err(err) => panic!("connection failed: {err}"),
            }
        }
        assert_eq!(failures, 3, "{id}");
        let rows = &data.expect("a snapshot").tables[0].rows;
        assert_eq!(
            rows,
            &[vec![FieldValue::Uint(u64::from(pid)), FieldValue::Uint(3)]],
            "{id}"
        );
        conn.send(&ClientMessage::Disable {
            probe: id.to_owned(),
        })
        .unwrap();
        println!("{id}: 3 failed openat() counted and reported with -ENOENT");
    }
}
