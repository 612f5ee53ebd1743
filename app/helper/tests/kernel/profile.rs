//! Kernel tests of the profiler: the real `profile` object on the running
//! kernel, driven through [`Profiler`] as the hub drives it, against
//! workloads whose profile we know: a process that burns CPU in one
//! function, a thread that sleeps a known total time, and this process's
//! own system calls (kernel frames checked against `/proc/kallsyms`).
//!
//! The workload (`profile_target.rs`) is compiled here with frame pointers
//! and DWARF, as a profiled program should be.

use microscope_wire::ProbeKey;
use microscope_wire::{ProbeOptions, StackCount};
use microscoped::{
    FrameInterner, ProfileKind, Profiler, StackBatchParts, Symbolizer, lookup_addresses,
    monotonic_ns, tracefs,
};
use probes_common::{FILTER_PID, FilterTable, ProcessFilterConfig};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Profiles compete for the CPUs: one at a time, whatever the test threads.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The compiled workload, or why it could not be built.
static TARGET: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Loads the profiler for `kind`; fails, saying why, where it cannot run.
fn profiler_for(kind: ProfileKind) -> Profiler {
    assert!(
        nix::unistd::geteuid().is_root(),
        "profiler tests need root to load eBPF programs: run `sudo -E cargo xtask test`"
    );
    #[cfg(not(target_arch = "x86_64"))]
    panic!("the profiler's workload makes x86_64 system calls");
    let profiler = Profiler::new();
    let availability = profiler.availability(kind);
    assert!(
        availability.available,
        "{} is not available here: {}",
        kind.probe_id(),
        availability.reason
    );
    profiler
}

fn target_binary() -> &'static Path {
    let built = TARGET.get_or_init(|| {
        // Cargo's scratch directory for integration tests, under target/:
        // rebuilt every run, never left behind in /tmp.
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("profile_target");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel/profile_target.rs");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        let output = Command::new(&rustc)
            .args([
                "--edition",
                "2024",
                "-O",
                "-g",
                "-C",
                "force-frame-pointers=yes",
            ])
            .arg("-o")
            .arg(&out)
            .arg(&source)
            .output()
            .map_err(|e| format!("could not run {rustc}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{rustc} failed to build the workload: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(out)
    });
    match built {
        Ok(path) => path,
        Err(reason) => panic!("{reason}"),
    }
}

/// The workload process, killed when dropped.
pub(super) struct Target {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Target {
    /// Starts it; returns once it is ready and waiting for [`go`](Self::go).
    pub(super) fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(target_binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the workload");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut target = Self {
            child,
            stdin,
            stdout,
        };
        target.expect_line("ready");
        target
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(b"go\n").expect("write to the workload");
        stdin.flush().expect("flush");
    }

    pub(super) fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the workload");
        line.trim().to_owned()
    }

    pub(super) fn expect_line(&mut self, want: &str) {
        let line = self.read_line();
        assert_eq!(line, want, "the workload said {line:?}");
    }

    /// CPU time the process has used (user + system), from `/proc/PID/stat`.
    fn cpu_ns(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        let (_, rest) = stat.rsplit_once(')').expect("stat has a comm");
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(11) // fields 14 and 15 follow `)`, state and ten more
            .take(2)
            .map(|f| f.parse().expect("a number"))
            .collect();
        let ticks_per_sec = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as u64;
        fields.iter().sum::<u64>() * 1_000_000_000 / ticks_per_sec
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn only_pid(pid: u32) -> FilterTable {
    FilterTable::single(ProcessFilterConfig {
        flags: FILTER_PID,
        tgid: pid,
        ..ProcessFilterConfig::default()
    })
}

/// Drains like the hub does (every `DRAIN_INTERVAL`) while `work` runs,
/// then stops the profile and drains until everything came back.
fn profile_while(
    profiler: &mut Profiler,
    key: ProbeKey,
    work: impl FnOnce() + Send,
) -> Vec<StackCount> {
    let mut stacks = Vec::new();
    let mut keep = |parts: Option<StackBatchParts>| {
        if let Some(parts) = parts {
            assert!(parts.start_ns <= parts.end_ns);
            stacks.extend(parts.stacks);
        }
    };
    std::thread::scope(|scope| {
        let worker = scope.spawn(work);
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            keep(profiler.drain(monotonic_ns()));
        }
    });
    assert!(profiler.stop(key), "the profile was running");
    let deadline = Instant::now() + Duration::from_secs(20);
    while profiler.has_pending() {
        assert!(Instant::now() < deadline, "the symbolizer never finished");
        keep(profiler.drain(monotonic_ns()));
    }
    stacks
}

fn names<'a>(interner: &'a FrameInterner, stack: &StackCount) -> Vec<(&'a str, bool)> {
    stack
        .frames
        .iter()
        .map(|id| {
            let frame = interner.get(*id).expect("every id is defined");
            (frame.name.as_str(), frame.kernel)
        })
        .collect()
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn on_cpu_samples_land_in_the_burning_function() {
    let _serial = ONE_AT_A_TIME.lock();
    let mut profiler = profiler_for(ProfileKind::OnCpu);
    let mut target = Target::spawn(&["burn", "2"]);
    let options = ProbeOptions::default(); // 99 Hz
    profiler
        .start(
            1,
            ProfileKind::OnCpu,
            &options,
            &only_pid(target.pid()),
            tracefs::find().as_deref(),
        )
        .expect("start on-CPU profiling");
    let stacks = profile_while(&mut profiler, 1, || {
        target.go();
        target.expect_line("done");
    });
    // On a busy machine the workload gets less than 2 s of CPU: that, not
    // the wall time, is what it can be sampled for.
    let expected = target.cpu_ns() as f64 / 1e9 * 99.0;
    let interner = profiler.interner();
    let (mut total, mut burning, mut inlined, mut called_from_main) = (0, 0, 0, 0);
    for stack in &stacks {
        assert_eq!(stack.probe, 1);
        assert_eq!(
            stack.tgid,
            target.pid(),
            "the pid filter let another process in"
        );
        let frames = names(interner, stack);
        total += stack.value;
        let Some(at) = frames
            .iter()
            .position(|(n, k)| !k && *n == "microscope_burn_cpu")
        else {
            continue;
        };
        burning += stack.value;
        if frames[at..]
            .iter()
            .any(|(n, _)| *n == "profile_target::spin_step (inlined)")
        {
            inlined += stack.value;
        }
        if frames[..at]
            .iter()
            .any(|(n, _)| n.starts_with("profile_target::main"))
        {
            called_from_main += stack.value;
        }
    }
    eprintln!(
        "on-CPU: {total} samples of the workload ({expected:.0} expected from its CPU time \
         at 99 Hz); {burning} in microscope_burn_cpu ({:.1} %), {inlined} in the inlined \
         spin_step, {called_from_main} with main as a caller",
        100.0 * burning as f64 / total.max(1) as f64
    );
    assert!(
        total as f64 >= expected * 0.7 && total as f64 <= expected * 1.3 + 5.0,
        "{total} samples for {expected:.0} expected from the workload's CPU time"
    );
    assert!(
        burning * 100 >= total * 80,
        "microscope_burn_cpu holds {burning} of {total} samples"
    );
    assert!(
        inlined * 2 >= burning,
        "inlined spin_step named in only {inlined} of {burning} samples"
    );
    assert!(
        called_from_main * 10 >= burning * 9,
        "main is the caller in only {called_from_main} of {burning} samples (frame pointers)"
    );
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn off_cpu_time_of_a_sleeping_thread_matches_the_sleeps() {
    let _serial = ONE_AT_A_TIME.lock();
    let mut profiler = profiler_for(ProfileKind::OffCpu);
    const SLEEPS: u64 = 20;
    const SLEEP_MS: u64 = 50;
    let mut target = Target::spawn(&["sleep", &SLEEPS.to_string(), &SLEEP_MS.to_string()]);
    profiler
        .start(
            2,
            ProfileKind::OffCpu,
            &ProbeOptions::default(),
            &only_pid(target.pid()),
            tracefs::find().as_deref(),
        )
        .expect("start off-CPU profiling");
    let mut measured_ns = 0;
    let stacks = profile_while(&mut profiler, 2, || {
        target.go();
        let line = target.read_line();
        measured_ns = line
            .strip_prefix("slept_ns ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the workload said {line:?}"));
        target.expect_line("done");
    });
    let interner = profiler.interner();
    let mut slept_ns = 0;
    let mut example = Vec::new();
    for stack in &stacks {
        assert_eq!(stack.probe, 2);
        assert_eq!(
            stack.tgid,
            target.pid(),
            "the pid filter let another process in"
        );
        let frames = names(interner, stack);
        let in_sleeper = frames
            .iter()
            .any(|(n, k)| !k && *n == "microscope_sleep_wait");
        let in_nanosleep = frames.iter().any(|(n, k)| *k && n.contains("nanosleep"));
        if in_sleeper && in_nanosleep {
            slept_ns += stack.value;
            example = frames.iter().map(|(n, _)| n.to_string()).collect();
        }
    }
    eprintln!(
        "off-CPU: {:.1} ms blocked in the nanosleep path; asked for {:.1} ms, the workload \
         measured {:.1} ms around its system calls; stack: {}",
        slept_ns as f64 / 1e6,
        (SLEEPS * SLEEP_MS) as f64,
        measured_ns as f64 / 1e6,
        example.join(";")
    );
    // Blocked time runs from leaving the CPU to running again: it never
    // exceeds the wall time the workload measured around the calls, and
    // the calls do little but block (a busy machine delays the wake-ups,
    // which counts as blocked too, and the workload measured it as well).
    assert!(
        slept_ns <= measured_ns,
        "{slept_ns} ns > {measured_ns} ns measured"
    );
    assert!(
        slept_ns >= measured_ns * 8 / 10,
        "blocked time {slept_ns} ns is under 80 % of the {measured_ns} ns the workload measured"
    );
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_profile_stopped_mid_block_counts_the_block_so_far() {
    let _serial = ONE_AT_A_TIME.lock();
    let mut profiler = profiler_for(ProfileKind::OffCpu);
    // One 3 s sleep; the profile stops after ~1 s, while it still sleeps.
    let mut target = Target::spawn(&["sleep", "1", "3000"]);
    profiler
        .start(
            3,
            ProfileKind::OffCpu,
            &ProbeOptions::default(),
            &only_pid(target.pid()),
            tracefs::find().as_deref(),
        )
        .expect("start off-CPU profiling");
    let started = Instant::now();
    let mut blocked_ns = 0;
    let stacks = profile_while(&mut profiler, 3, || {
        target.go();
        // The workload blocks from here on; the profile stops once the
        // worker returns (after this sleep, however long it really took).
        let blocked = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        blocked_ns = blocked.elapsed().as_nanos() as u64;
    });
    let elapsed_ns = started.elapsed().as_nanos() as u64;
    let interner = profiler.interner();
    let slept_ns: u64 = stacks
        .iter()
        .filter(|s| {
            names(interner, s)
                .iter()
                .any(|(n, _)| *n == "microscope_sleep_wait")
        })
        .map(|s| s.value)
        .sum();
    eprintln!(
        "off-CPU at stop: {:.0} ms of a sleep still going, profile ran {:.0} ms, \
         the test waited {:.0} ms after starting the sleep",
        slept_ns as f64 / 1e6,
        elapsed_ns as f64 / 1e6,
        blocked_ns as f64 / 1e6
    );
    assert!(
        slept_ns >= blocked_ns * 8 / 10 && slept_ns <= elapsed_ns,
        "counted {slept_ns} ns of an ongoing sleep the test saw last {blocked_ns} ns, \
         in a {elapsed_ns} ns profile"
    );
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn kernel_frames_have_the_names_kallsyms_gives() {
    let _serial = ONE_AT_A_TIME.lock();
    let mut profiler = profiler_for(ProfileKind::OnCpu);
    let me = only_pid(std::process::id());
    let tracefs = tracefs::find();
    let options = ProbeOptions {
        sample_hz: 499,
        ..ProbeOptions::default()
    };
    profiler
        .start(1, ProfileKind::OnCpu, &options, &me, tracefs.as_deref())
        .expect("start on-CPU profiling");
    if profiler.availability(ProfileKind::OffCpu).available {
        profiler
            .start(2, ProfileKind::OffCpu, &options, &me, tracefs.as_deref())
            .expect("start off-CPU profiling");
    }
    // System calls keep this process in the kernel; short sleeps block it.
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        for _ in 0..200 {
            let _ = std::fs::read_to_string("/proc/self/stat");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let raw = profiler.take_raw();
    profiler.stop_all();
    let mut addrs: Vec<u64> = raw
        .iter()
        .flat_map(|stack| lookup_addresses(stack).0)
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert!(
        addrs.len() >= 10,
        "only {} distinct kernel addresses sampled",
        addrs.len()
    );
    let ours = Symbolizer::new().kernel_names(&addrs);
    let kallsyms = Kallsyms::read();
    let mut mismatches = Vec::new();
    for (addr, names) in addrs.iter().zip(&ours) {
        let expected = kallsyms.names_at(*addr);
        // With a vmlinux with DWARF, inlined functions follow the
        // function's own name, which is what kallsyms knows.
        if !expected.contains(&names[0].as_str()) {
            mismatches.push(format!("{addr:#x}: ours {names:?}, kallsyms {expected:?}"));
        }
    }
    eprintln!(
        "kernel frames: {} distinct addresses, {} named differently from kallsyms",
        addrs.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// `/proc/kallsyms`, sorted by address.
struct Kallsyms(Vec<(u64, String)>);

impl Kallsyms {
    fn read() -> Self {
        let text = std::fs::read_to_string("/proc/kallsyms").expect("read /proc/kallsyms");
        let mut symbols: Vec<(u64, String)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let addr = u64::from_str_radix(fields.next()?, 16).ok()?;
                let _kind = fields.next()?;
                let name = fields.next()?;
                (addr != 0).then(|| (addr, name.to_owned()))
            })
            .collect();
        symbols.sort();
        assert!(
            symbols.len() > 1000,
            "/proc/kallsyms shows no addresses (kptr_restrict?)"
        );
        Self(symbols)
    }

    /// Every name of the symbol covering `addr` (aliases share an address).
    fn names_at(&self, addr: u64) -> Vec<&str> {
        let end = self.0.partition_point(|(a, _)| *a <= addr);
        let Some((start, _)) = end.checked_sub(1).and_then(|i| self.0.get(i)) else {
            return Vec::new();
        };
        let begin = self.0.partition_point(|(a, _)| a < start);
        self.0[begin..end].iter().map(|(_, n)| n.as_str()).collect()
    }
}

/// Every frame id a client's batches use was defined to it earlier or in
/// the same batch; returns the workload's on-CPU samples and how many of
/// them were in `microscope_burn_cpu`.
fn check_stream(
    batches: &[microscope_wire::StackBatch],
    workload: u32,
    probe: ProbeKey,
) -> (u64, u64) {
    let mut defined = std::collections::HashMap::new();
    let (mut total, mut burning) = (0, 0);
    for batch in batches {
        for frame in &batch.frames {
            defined.insert(frame.id, frame.name.clone());
        }
        for stack in &batch.stacks {
            assert_eq!(stack.probe, probe, "a stack of a probe not enabled");
            for id in &stack.frames {
                assert!(
                    defined.contains_key(id),
                    "frame {id} used before it was defined"
                );
            }
            if stack.tgid == workload {
                total += stack.value;
                if stack
                    .frames
                    .iter()
                    .any(|id| defined[id] == "microscope_burn_cpu")
                {
                    burning += stack.value;
                }
            }
        }
    }
    (total, burning)
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn profiles_stream_through_the_socket_and_late_clients_get_every_frame() {
    let _serial = ONE_AT_A_TIME.lock();
    let helper = super::Helper::start();
    let mut first = helper.connect();
    let probes = first.list_probes().expect("list probes");
    let info = probes
        .iter()
        .find(|p| p.id == "profile:cpu")
        .expect("the helper offers profile:cpu");
    if !info.availability.available {
        eprintln!(
            "skipping: profile:cpu unavailable: {}",
            info.availability.reason
        );
        return;
    }
    let key = info.key;
    // Only the workload: symbolizing every process on a busy machine (with
    // debug builds of large programs) would make the timing unpredictable.
    let mut target = Target::spawn(&["burn", "3"]);
    first
        .send(&microscope_wire::ClientMessage::SetFilter(
            microscope_wire::ProcessFilter {
                pid: Some(target.pid()),
                ..microscope_wire::ProcessFilter::default()
            },
        ))
        .expect("send the filter");
    super::enable(&mut first, "profile:cpu");
    target.go();

    // Each client receives until a batch covers `until_ns` (0: not known
    // yet), or fails after a generous timeout.
    let until_ns = std::sync::atomic::AtomicU64::new(0);
    let receive = |conn: &mut microscope_wire::Connection,
                   into: &mut Vec<microscope_wire::StackBatch>,
                   enough: &dyn Fn(&[microscope_wire::StackBatch]) -> bool| {
        conn.set_recv_timeout(Some(Duration::from_millis(100)))
            .expect("set a timeout");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !enough(into) {
            assert!(
                Instant::now() < deadline,
                "the stack batches stopped before the workload ended ({} received)",
                into.len()
            );
            match conn.recv() {
                Ok(microscope_wire::HelperMessage::Stacks(batch)) => into.push(batch),
                Ok(_) | Err(microscope_wire::ClientError::Timeout(_)) => {}
                Err(err) => panic!("connection failed: {err}"),
            }
        }
    };
    let covers_the_end = |batches: &[microscope_wire::StackBatch]| {
        let end = until_ns.load(std::sync::atomic::Ordering::Acquire);
        end > 0 && batches.last().is_some_and(|b| b.end_ns >= end)
    };
    let mut first_batches = Vec::new();
    // The first client has names defined before the second one joins.
    receive(&mut first, &mut first_batches, &|b| {
        b.iter().any(|b| !b.frames.is_empty())
    });
    let mut late = helper.connect();
    super::enable(&mut late, "profile:cpu");
    let mut late_batches = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| receive(&mut late, &mut late_batches, &covers_the_end));
        scope.spawn(|| receive(&mut first, &mut first_batches, &covers_the_end));
        target.expect_line("done");
        until_ns.store(monotonic_ns(), std::sync::atomic::Ordering::Release);
    });

    let (first_total, first_burning) = check_stream(&first_batches, target.pid(), key);
    let (late_total, late_burning) = check_stream(&late_batches, target.pid(), key);
    let first_defs: usize = first_batches.iter().map(|b| b.frames.len()).sum();
    let late_first_defs = late_batches.first().map_or(0, |b| b.frames.len());
    eprintln!(
        "socket: first client {} batches, {first_total} workload samples ({first_burning} \
         burning), {first_defs} frame definitions; late client {} batches, {late_total} \
         samples ({late_burning} burning), {late_first_defs} definitions in its first batch",
        first_batches.len(),
        late_batches.len()
    );
    assert!(first_batches.len() >= 2, "a batch about every second");
    assert!(first_burning * 100 >= first_total * 80 && first_total > 20);
    assert!(late_burning * 100 >= late_total * 80 && late_total > 10);
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn stacks_at_a_tracepoint_are_counted_and_named() {
    let _serial = ONE_AT_A_TIME.lock();
    let helper = super::Helper::start();
    let mut conn = helper.connect();
    let probe = "syscalls:sys_enter_getppid";
    let me = std::process::id();
    conn.send(&microscope_wire::ClientMessage::SetOptions {
        probe: probe.to_owned(),
        options: ProbeOptions {
            stacks: true,
            ..ProbeOptions::default()
        },
    })
    .expect("send the options");
    let received = conn.enable_probe(probe).expect("enable with stacks");
    let key = received
        .iter()
        .find_map(|m| match m {
            microscope_wire::HelperMessage::ProbeAdded(info) => Some(info.key),
            _ => None,
        })
        .or_else(|| {
            conn.list_probes()
                .ok()?
                .iter()
                .find(|p| p.id == probe)
                .map(|p| p.key)
        })
        .expect("the probe's key");
    const CALLS: u64 = 500;
    for _ in 0..CALLS {
        nix::unistd::getppid();
    }
    conn.set_recv_timeout(Some(Duration::from_millis(100)))
        .expect("set a timeout");
    let mut defined = std::collections::HashMap::new();
    let (mut hits, mut through_syscall_entry) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && hits < CALLS {
        let batch = match conn.recv() {
            Ok(microscope_wire::HelperMessage::Stacks(batch)) => batch,
            Ok(_) | Err(microscope_wire::ClientError::Timeout(_)) => continue,
            Err(err) => panic!("connection failed: {err}"),
        };
        for frame in batch.frames {
            defined.insert(frame.id, (frame.name, frame.kernel));
        }
        for stack in batch.stacks.iter().filter(|s| s.tgid == me) {
            assert_eq!(stack.probe, key);
            hits += stack.value;
            if stack.frames.iter().any(|id| {
                defined
                    .get(id)
                    .is_some_and(|(n, k)| *k && n == "do_syscall_64")
            }) {
                through_syscall_entry += stack.value;
            }
        }
    }
    eprintln!(
        "stacks at {probe}: {hits} hits of this process counted ({CALLS} calls), \
         {through_syscall_entry} with do_syscall_64 in the kernel stack"
    );
    assert!(hits >= CALLS, "only {hits} of {CALLS} calls counted");
    assert!(through_syscall_entry * 10 >= hits * 9);
}

/// Two real recordings of the same program at two intensities (a third,
/// then two thirds of its CPU time in one function), written to files and
/// read back as the app reads a baseline: the differential flame graph
/// shows the hot function grown and the cold one shrunk, each recording as
/// a share of its own total, and the program as one process frame.
#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn two_recordings_at_two_intensities_compare_as_expected() {
    use microscope_model::{BrowseUpdate, BuildOptions, FlameGraph, StackQuery, Update};
    use microscope_wire::{ClientMessage, HelperMessage, ProcessFilter, RecordingHeader};
    let _serial = ONE_AT_A_TIME.lock();
    let helper = super::Helper::start();
    let dir = tempfile::tempdir().unwrap();
    let mut recordings = Vec::new();
    for hot_thirds in ["1", "2"] {
        // A fixed amount of work: about a second of CPU here.
        let mut target = Target::spawn(&["split", hot_thirds, "1500000000"]);
        let mut conn = helper.connect();
        conn.send(&ClientMessage::SetFilter(ProcessFilter {
            pid: Some(target.pid()),
            ..ProcessFilter::default()
        }))
        .unwrap();
        let probes = conn.list_probes().unwrap();
        let header = RecordingHeader::new(conn.hello().clone(), probes, "two intensities");
        let path = dir.path().join(format!("third-{hot_thirds}.mscr"));
        let mut writer = microscope_wire::RecordingWriter::create(&path, &header, false).unwrap();
        for message in conn.enable_probe("profile:cpu").unwrap() {
            writer.write_received(&message).unwrap();
        }
        target.go();
        // Record until a stack batch covers the moment the work ended.
        let until_ns = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                conn.set_recv_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    assert!(Instant::now() < deadline, "no stack batch covered the work");
                    match conn.recv() {
                        Ok(message) => {
                            writer.write_received(&message).unwrap();
                            let end = until_ns.load(std::sync::atomic::Ordering::Acquire);
                            if let HelperMessage::Stacks(batch) = &message
                                && end > 0
                                && batch.end_ns >= end
                            {
                                break;
                            }
                        }
                        Err(microscope_wire::ClientError::Timeout(_)) => {}
                        Err(err) => panic!("connection failed: {err}"),
                    }
                }
            });
            target.expect_line("done");
            until_ns.store(monotonic_ns(), std::sync::atomic::Ordering::Release);
        });
        writer.finish().unwrap();
        recordings.push(path);
    }

    // Read back as the app's *Open baseline…* reads a recording.
    let read = |path: &Path| {
        let updates = microscope_sources::baseline(path, std::sync::Arc::new(|| {})).unwrap();
        match updates.recv_timeout(Duration::from_secs(60)).unwrap() {
            Update::Browse(BrowseUpdate::Baseline(baseline)) => baseline,
            other => panic!("not a baseline: {other:?}"),
        }
    };
    let (before, after) = (read(&recordings[0]), read(&recordings[1]));
    let all = StackQuery::all();
    let graph = FlameGraph::differential_from_slices(
        &before.stacks.slice(all),
        &after.stacks.slice(all),
        BuildOptions {
            by_command: true,
            ..BuildOptions::default()
        },
    );
    let (total_before, total_after) = (graph.baseline_total(), graph.total());
    let share = |name: &str| {
        let found = graph.search(name);
        let nodes: Vec<_> = found.matched_nodes().collect();
        let before: u64 = nodes
            .iter()
            .filter_map(|&n| graph.baseline(n))
            .map(|v| v.total)
            .sum();
        let after: u64 = nodes.iter().map(|&n| graph.values(n).total).sum();
        (
            before as f64 / total_before.max(1) as f64,
            after as f64 / total_after.max(1) as f64,
        )
    };
    let (hot, cold) = (share("microscope_hot_part"), share("microscope_cold_part"));
    eprintln!(
        "samples {total_before} -> {total_after}; hot {:.2} -> {:.2}, cold {:.2} -> {:.2}",
        hot.0, hot.1, cold.0, cold.1
    );
    assert!(
        total_before > 30 && total_after > 30,
        "too few samples to compare"
    );
    // A third, then two thirds: the hot part's share grew past the middle.
    assert!(hot.0 < 0.5 && hot.1 > 0.5, "hot part {hot:?}");
    assert!(cold.0 > 0.5 && cold.1 < 0.5, "cold part {cold:?}");
    let process = graph
        .children(microscope_model::NodeId::ROOT)
        .map(|n| graph.name(n).to_owned())
        .collect::<Vec<_>>();
    assert_eq!(process, ["profile_target"], "one process frame, by command");
}
