//! Each client's in-kernel aggregates count exactly what its own process
//! filter keeps: the kernel has a filter slot per distinct filter and
//! counts per slot (`app/helper/src/filter_slots.rs`).

use super::{Helper, enable, set_filter};
use microscope_wire::{Aggregates, ClientMessage, Connection, HelperMessage, ProcessFilter};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::time::{Duration, Instant};

/// A function of this test binary, probed with a uprobe; the forked
/// workloads call it. No system call inside.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_filters_test_function(n: u64) -> u64 {
    std::hint::black_box(n.wrapping_mul(3))
}

/// A forked child that waits, blocked in `read`, for a byte on a pipe, then
/// calls `getppid` `syscalls` times and the test function `calls` times,
/// and exits. Between the fork and its exit it makes no other system call,
/// so its counts are known exactly.
struct Workload {
    pid: nix::unistd::Pid,
    go: Option<OwnedFd>,
}

impl Workload {
    fn fork(syscalls: u64, calls: u64) -> Self {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        // SAFETY: the child runs only async-signal-safe code (read, the raw
        // getppid system call, a pure function, _exit) before it exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let mut byte = 0u8;
                // SAFETY: reads one byte into a live local.
                let n = unsafe { libc::read(read_end.as_raw_fd(), (&raw mut byte).cast(), 1) };
                if n == 1 {
                    for _ in 0..syscalls {
                        // SAFETY: getppid takes no arguments.
                        unsafe { libc::syscall(libc::SYS_getppid) };
                    }
                    for i in 0..calls {
                        microscope_filters_test_function(i);
                    }
                }
                // SAFETY: ends the child at once, without running the
                // parent's atexit handlers or destructors.
                unsafe { libc::_exit(i32::from(n != 1)) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(read_end);
                let workload = Self {
                    pid: child,
                    go: Some(write_end),
                };
                // Wait until it is blocked in `read` (system call 0), so
                // that the read's entry predates the probes: its return is
                // then not timed, and the workload's system calls are
                // exactly its `getppid`s (and its final exit_group).
                super::wait_until("the workload blocks in read", || {
                    std::fs::read_to_string(format!("/proc/{child}/syscall"))
                        .is_ok_and(|s| s.starts_with("0 "))
                });
                workload
            }
        }
    }

    fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    fn go(&mut self) {
        let go = self.go.take().unwrap();
        assert_eq!(nix::unistd::write(&go, b"g").unwrap(), 1);
    }

    fn wait(&self) {
        let status = nix::sys::wait::waitpid(self.pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(self.pid, 0));
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if self.go.is_some() {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

/// The first aggregates the helper read after `after_ns` (its clock is
/// `monotonic_ns`, as ours): they include everything done before.
fn aggregates_after(conn: &mut Connection, after_ns: u64) -> Aggregates {
    conn.set_recv_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + super::SENTINEL_TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "no aggregates read after the workloads ended"
        );
        match conn.recv() {
            Ok(HelperMessage::Aggregates(a)) if a.ts_ns > after_ns => return a,
            Ok(_) | Err(microscope_wire::ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
}

fn getppid_count(a: &Aggregates) -> u64 {
    a.syscall_counts
        .iter()
        .find(|(nr, _)| *nr == libc::SYS_getppid as u32)
        .map_or(0, |(_, n)| *n)
}

fn only(pid: u32) -> ProcessFilter {
    ProcessFilter {
        pid: Some(pid),
        ..ProcessFilter::default()
    }
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn each_client_s_aggregates_count_exactly_its_own_processes() {
    std::hint::black_box(microscope_filters_test_function(1));
    let helper = Helper::start();
    const SYSCALLS: [u64; 2] = [3000, 1700];
    const CALLS: [u64; 2] = [250, 90];
    let mut workloads = [
        Workload::fork(SYSCALLS[0], CALLS[0]),
        Workload::fork(SYSCALLS[1], CALLS[1]),
    ];
    let uprobe = format!(
        "uprobe:{}:microscope_filters_test_function",
        std::env::current_exe().unwrap().display()
    );
    // One client per workload, filtering on it, and one without a filter.
    let mut clients = [helper.connect(), helper.connect(), helper.connect()];
    for (conn, workload) in clients.iter_mut().zip(&workloads) {
        set_filter(conn, only(workload.pid()));
    }
    for conn in &mut clients {
        for probe in ["raw_syscalls:sys_enter", "syscalls:latency", &uprobe] {
            enable(conn, probe);
        }
    }
    for workload in &mut workloads {
        workload.go();
    }
    for workload in &workloads {
        workload.wait();
    }
    let ended_ns = microscope_wire::monotonic_ns();
    let aggregates: Vec<Aggregates> = clients
        .iter_mut()
        .map(|conn| aggregates_after(conn, ended_ns))
        .collect();
    for (i, a) in aggregates.iter().enumerate().take(2) {
        let latency: u64 = a.latency_log2_ns.iter().sum();
        let [function] = a.functions.as_slice() else {
            panic!("client {i}: one function probe expected: {:?}", a.functions);
        };
        let (calls, timed) = (function.calls, function.latency_log2_ns.iter().sum::<u64>());
        eprintln!(
            "client {i} (pid {}): getppid {}, syscalls timed {latency}, function calls {calls}, \
             timed {timed}",
            workloads[i].pid(),
            getppid_count(a)
        );
        assert_eq!(getppid_count(a), SYSCALLS[i], "client {i}'s getppid count");
        // Every system call the workload returned from is timed: its
        // getppids, and on kernels whose uretprobes return through a system
        // call (x86-64 since 6.11) one per function call; not its last,
        // exit_group, which never returns.
        let returned: u64 = a
            .syscall_counts
            .iter()
            .filter(|(nr, _)| *nr != libc::SYS_exit_group as u32)
            .map(|(_, n)| n)
            .sum();
        eprintln!("client {i}'s syscalls: {:?}", a.syscall_counts);
        assert_eq!(latency, returned, "client {i}'s syscall latency histogram");
        assert!(
            returned == SYSCALLS[i] || returned == SYSCALLS[i] + CALLS[i],
            "client {i}: its workload made {returned} system calls"
        );
        assert_eq!(calls, CALLS[i], "client {i}'s function calls");
        assert_eq!(timed, CALLS[i], "client {i}'s function latency histogram");
    }
    // The client without a filter counts both (and others' getppid).
    let all = &aggregates[2];
    eprintln!(
        "client without a filter: getppid {}, function {:?}",
        getppid_count(all),
        all.functions.first().map(|f| f.calls)
    );
    assert!(getppid_count(all) >= SYSCALLS[0] + SYSCALLS[1]);
    assert_eq!(all.functions[0].calls, CALLS[0] + CALLS[1]);
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_ninth_distinct_filter_is_refused_with_a_sentence() {
    let helper = Helper::start();
    let pids = 1..=probes_common::FILTER_SLOTS;
    let mut clients: Vec<Connection> = pids
        .clone()
        .map(|pid| {
            let mut conn = helper.connect();
            set_filter(&mut conn, only(pid));
            conn
        })
        .collect();
    let mut late = helper.connect();
    late.set_recv_timeout(Some(Duration::from_secs(5))).unwrap();
    // No slot left, not even for "no filter": enabling says why.
    let err = late.enable_probe("raw_syscalls:sys_enter").unwrap_err();
    eprintln!("enable: {err}");
    assert!(
        err.to_string().contains("8 different process filters"),
        "{err}"
    );
    // A ninth distinct filter is refused; the others are untouched.
    late.send(&ClientMessage::SetFilter(only(99))).unwrap();
    let refusal = loop {
        match late.recv().unwrap() {
            HelperMessage::Error { message } => break message,
            HelperMessage::Filter(f) => panic!("filter {f} accepted"),
            _ => {}
        }
    };
    eprintln!("set filter: {refusal}");
    assert!(refusal.contains("8 different process filters"), "{refusal}");
    // A filter another client uses is shared.
    set_filter(&mut late, only(3));
    enable(&mut late, "raw_syscalls:sys_enter");
    // When a client leaves, its slot is free for a new filter.
    drop(clients.remove(0));
    super::wait_until("the ninth filter fits once a client left", || {
        late.send(&ClientMessage::SetFilter(only(99))).unwrap();
        loop {
            match late.recv().unwrap() {
                HelperMessage::Error { .. } => return false,
                HelperMessage::Filter(f) => return f == only(99),
                _ => {}
            }
        }
    });
}

/// Counts `getppid` events of this process that `conn` receives until the
/// openat of `sentinel`.
fn getppid_events_until(conn: &mut Connection, sentinel: &str) -> usize {
    let me = std::process::id();
    let mut seen = 0;
    super::collect_until_sentinel(conn, |event| {
        if super::opens(event, sentinel) {
            return true;
        }
        if event.tgid == me && matches!(event.data, microscope_wire::EventData::Fields(_)) {
            seen += 1;
        }
        false
    });
    seen
}

fn count_only(conn: &mut Connection, probe: &str) {
    conn.send(&ClientMessage::SetOptions {
        probe: probe.to_owned(),
        options: microscope_wire::ProbeOptions {
            count_only: true,
            ..Default::default()
        },
    })
    .expect("send the options");
}

/// One client's "count it in the kernel only" never stops another client's
/// stream of the same tracepoint, whichever asked first.
#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn one_client_counting_only_does_not_stop_another_s_stream() {
    const CALLS: usize = 500;
    let probe = "syscalls:sys_enter_getppid";
    let helper = Helper::start();
    let me = ProcessFilter {
        pid: Some(std::process::id()),
        ..Default::default()
    };
    for counting_first in [true, false] {
        let mut counting = helper.connect();
        let mut streaming = helper.connect();
        set_filter(&mut streaming, me.clone());
        if counting_first {
            count_only(&mut counting, probe);
            enable(&mut counting, probe);
            enable(&mut streaming, probe);
        } else {
            enable(&mut streaming, probe);
            count_only(&mut counting, probe);
            enable(&mut counting, probe);
        }
        enable(&mut streaming, "syscalls:sys_enter_openat");
        let sentinel = format!(
            "/tmp/microscope-count-only-{}-{counting_first}",
            std::process::id()
        );
        for _ in 0..CALLS {
            nix::unistd::getppid();
        }
        super::open_sentinel(&sentinel);
        assert_eq!(
            getppid_events_until(&mut streaming, &sentinel),
            CALLS,
            "the streaming client gets every call (the other client asked to count only {})",
            if counting_first { "first" } else { "second" }
        );
    }
}

/// When the last client that streams a probe disables it, or leaves, the
/// probe goes back to being only counted in the kernel for the clients
/// that asked so: their counts arrive again.
#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_probe_counts_again_when_its_last_streaming_client_goes() {
    const CALLS: u64 = 300;
    let probe = "syscalls:sys_enter_getppid";
    let helper = Helper::start();
    for leaves in [false, true] {
        let mut streaming = helper.connect();
        let (key, _) = super::enable_generic(&mut streaming, probe);
        let mut counting = helper.connect();
        set_filter(&mut counting, only(std::process::id()));
        count_only(&mut counting, probe);
        enable(&mut counting, probe);
        if leaves {
            drop(streaming);
        } else {
            streaming
                .send(&ClientMessage::Disable {
                    probe: probe.to_owned(),
                })
                .unwrap();
        }
        // The hub handles the departure soon but at a moment of its own:
        // call in rounds until the counting client's aggregates count a
        // whole round. Without the switch back they never count any.
        let deadline = Instant::now() + super::SENTINEL_TIMEOUT;
        let how = if leaves { "leaves" } else { "disables it" };
        loop {
            assert!(
                Instant::now() < deadline,
                "no kernel count of {probe} after the streaming client {how}"
            );
            for _ in 0..CALLS {
                nix::unistd::getppid();
            }
            let counted = aggregates_after(&mut counting, microscope_wire::monotonic_ns())
                .functions
                .iter()
                .find(|f| f.probe == key)
                .map_or(0, |f| f.calls);
            if counted >= CALLS {
                break;
            }
        }
    }
}
