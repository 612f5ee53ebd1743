//! Function probes on the running kernel: a uprobe on a function of this
//! test binary, called a known number of times, and what a kernel without
//! kprobes or fentry says about a kernel function.
//!
//! They need root (to load BPF), so they are `#[ignore]`d: `cargo xtask
//! test` runs them as root with `--ignored`, or shows the step as skipped;
//! run without root, they fail saying so. kprobe and fentry attachments
//! are tested in a VM: `cargo xtask test-vm`.

use microscoped::{FunctionProbes, FunctionTarget, Peer, detect_capabilities, kernel_functions};
use probes_common::{FILTER_PID, FilterTable, ProcessFilterConfig, log2_bucket};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Calls of the probed function.
const CALLS: u64 = 200;

/// The probed function: sleeps 2 ms (2^20.9 ns), so no call lands below log2
/// bucket 20; how far above depends on the machine, which the test measures.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_test_sleep_2ms(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2));
    black_box(n)
}

fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "function probes need root to load eBPF programs: run `sudo -E cargo xtask test`"
    );
}

fn only_this_process() -> FilterTable {
    FilterTable::single(ProcessFilterConfig {
        flags: FILTER_PID,
        tgid: std::process::id(),
        ..Default::default()
    })
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn uprobe_counts_every_call_and_times_it() {
    assert_root();
    let tracefs = microscoped::tracefs::find();
    let capabilities = detect_capabilities(tracefs.as_deref());
    assert!(
        capabilities.uprobes.available,
        "this kernel has no uprobes: {}",
        capabilities.uprobes.reason
    );
    let mut probes = FunctionProbes::new(&capabilities);
    let exe = std::env::current_exe().unwrap();
    let id = format!("uprobe:{}:microscope_test_sleep_2ms", exe.display());
    let target = FunctionTarget::parse(&id).unwrap().unwrap();
    let availability = probes.availability(&target, &Peer::root());
    assert!(availability.available, "{}", availability.reason);

    let attach_started = std::time::Instant::now();
    probes
        .attach(7, &target, &only_this_process(), &Peer::root())
        .unwrap();
    eprintln!("attached {id} in {:?}", attach_started.elapsed());
    assert_eq!(probes.mechanism(7), Some("uprobe/uretprobe"));
    // Attaching the same target again is a no-op; another target under the
    // same key is refused.
    probes
        .attach(7, &target, &only_this_process(), &Peer::root())
        .unwrap();
    let other = FunctionTarget::parse(&format!("uprobe:{}:main", exe.display()))
        .unwrap()
        .unwrap();
    assert!(
        probes
            .attach(7, &other, &only_this_process(), &Peer::root())
            .is_err()
    );

    // The longest call, as this thread measured it around the call: the
    // kernel's entry-to-return time of each call lies inside it.
    let mut longest_ns = 0;
    for i in 0..CALLS {
        let started = Instant::now();
        microscope_test_sleep_2ms(i);
        longest_ns = longest_ns.max(started.elapsed().as_nanos() as u64);
    }
    let stats = probes.stats(0);
    assert_eq!(stats.len(), 1);
    let stats = &stats[0];
    assert_eq!(stats.probe, 7);
    assert_eq!(stats.calls, CALLS, "every call is counted, exactly once");
    let histogram = &stats.latency_log2_ns;
    assert_eq!(histogram.len(), 64);
    assert_eq!(histogram.iter().sum::<u64>(), CALLS, "{histogram:?}");
    // A 2 ms sleep cannot return sooner than 2^20 ns (1.05 ms) ...
    assert_eq!(histogram[..20].iter().sum::<u64>(), 0, "{histogram:?}");
    // ... nor take longer than the longest call this thread measured.
    // The bucket function the probe itself uses.
    let top = log2_bucket(longest_ns) as usize;
    eprintln!(
        "log2 ns buckets 20..={top} of {CALLS} calls: {:?} (longest measured {longest_ns} ns)",
        &histogram[20..=top]
    );
    assert_eq!(histogram[top + 1..].iter().sum::<u64>(), 0, "{histogram:?}");

    // The in-kernel filter: calls of a process that is not kept do not count.
    let someone_else = ProcessFilterConfig {
        flags: FILTER_PID,
        tgid: 1,
        ..ProcessFilterConfig::default()
    };
    probes
        .set_filter(&FilterTable::single(someone_else))
        .unwrap();
    for i in 0..10 {
        microscope_test_sleep_2ms(i);
    }
    assert_eq!(probes.stats(0)[0].calls, CALLS);
    // Two slots at once: each counts what its own filter keeps.
    let mut two = FilterTable::single(someone_else);
    two.set(1, Some(ProcessFilterConfig::default()));
    probes.set_filter(&two).unwrap();
    for i in 0..10 {
        microscope_test_sleep_2ms(i);
    }
    assert_eq!(probes.stats(0)[0].calls, CALLS);
    assert_eq!(probes.stats(1)[0].calls, 10);
    assert_eq!(
        probes.stats(1)[0].latency_log2_ns.iter().sum::<u64>(),
        10,
        "each return is timed in the slot of its call"
    );

    assert!(probes.detach(7));
    assert!(!probes.detach(7));
    assert!(probes.stats(0).is_empty());
    assert_eq!(probes.detach_all(), 0);
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn kernel_functions_follow_what_the_kernel_allows() {
    assert_root();
    let tracefs = microscoped::tracefs::find();
    let capabilities = detect_capabilities(tracefs.as_deref());
    let mut probes = FunctionProbes::new(&capabilities);
    let target = FunctionTarget::parse("func:vfs_read").unwrap().unwrap();
    let availability = probes.availability(&target, &Peer::root());

    if capabilities.kprobes.available || capabilities.fentry.available {
        // A kernel with kprobes or fentry (the VM test covers both in depth).
        assert!(availability.available, "{}", availability.reason);
        probes
            .attach(
                1,
                &target,
                &FilterTable::single(ProcessFilterConfig::default()),
                &Peer::root(),
            )
            .unwrap();
        for _ in 0..10 {
            std::fs::read("/proc/self/stat").unwrap();
        }
        assert!(probes.stats(0)[0].calls >= 10);
    } else {
        // This project's development machines: neither, so the probe is
        // unavailable with both reasons, and attaching is refused in a sentence.
        assert!(!availability.available);
        eprintln!("func:vfs_read: {}", availability.reason);
        assert!(
            availability.reason.contains(&capabilities.kprobes.reason),
            "{}",
            availability.reason
        );
        assert!(
            availability.reason.contains(&capabilities.fentry.reason),
            "{}",
            availability.reason
        );
        let err = probes
            .attach(
                1,
                &target,
                &FilterTable::single(ProcessFilterConfig::default()),
                &Peer::root(),
            )
            .unwrap_err();
        assert!(
            err.starts_with("func:vfs_read is not available here: "),
            "{err}"
        );
        assert!(probes.stats(0).is_empty());
    }

    // The function list comes from the kernel whatever can attach.
    let (names, _) = kernel_functions("vfs_rea", 50);
    assert!(names.iter().any(|n| n == "vfs_read"), "{names:?}");
    let (none, truncated) = kernel_functions("no_such_kernel_function_xyz", 50);
    assert!(none.is_empty() && !truncated);
}
