//! The test `cargo xtask test-vm` runs as `/bin/vmtest` inside a QEMU VM
//! booted on a distribution kernel that has kprobes and fentry (this
//! project's development machines have neither).
//!
//! It attaches the real function probes (`kprobe:`, `fentry:`, `func:` on
//! `do_sys_openat2`, and `uprobe:` on a function of this binary) and a real
//! tracepoint probe, runs a workload whose counts are known, checks what the
//! kernel counted, and leaves a one-line verdict in the file named by
//! `MICROSCOPE_VMTEST_VERDICT`, from which the VM's `/init` prints the line
//! the xtask looks for: `MICROSCOPE-VMTEST PASS <summary>` or
//! `MICROSCOPE-VMTEST FAIL <reason>`.
//!
//! Built static for x86_64-unknown-linux-musl. Note that musl's `open()`
//! uses the `open` syscall and `openat()` the `openat` one; both go through
//! `do_sys_openat2`.

use microscope_wire::{Event, EventData, FunctionStats};
use microscoped::{FunctionProbes, FunctionTarget, PROBES, Tracer, detect_capabilities};
use probes_common::{FILTER_PID, ProcessFilterConfig};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Opens of /dev/null with `open` and with `openat` each.
const OPENS_EACH: u64 = 250;
/// Calls of the probed user function.
const USER_CALLS: u64 = 100;

/// The user function probed with `uprobe:/bin/vmtest:microscope_vmtest_work`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_vmtest_work(n: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(100));
    black_box(n.wrapping_mul(3))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = run();
    let (verdict, code) = match &result {
        Ok(summary) => (summary.as_str(), ExitCode::SUCCESS),
        Err(reason) => (reason.as_str(), ExitCode::FAILURE),
    };
    // `/init` prints the verdict line from this file; run by hand, the
    // line is printed here.
    match std::env::var_os("MICROSCOPE_VMTEST_VERDICT") {
        Some(path) => {
            if let Err(err) = std::fs::write(&path, verdict) {
                println!("vmtest: could not write the verdict to {path:?}: {err}");
                return ExitCode::FAILURE;
            }
        }
        None => println!(
            "MICROSCOPE-VMTEST {} {verdict}",
            if result.is_ok() { "PASS" } else { "FAIL" }
        ),
    }
    code
}

/// Opens and closes /dev/null `OPENS_EACH` times with `open` and with
/// `openat`.
fn open_workload() -> Result<(), String> {
    let path = c"/dev/null";
    for _ in 0..OPENS_EACH {
        for use_openat in [false, true] {
            // SAFETY: `path` is a NUL-terminated string; the descriptor is
            // closed right away.
            let fd = unsafe {
                if use_openat {
                    libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY)
                } else {
                    libc::open(path.as_ptr(), libc::O_RDONLY)
                }
            };
            if fd < 0 {
                return Err(format!(
                    "opening /dev/null failed: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: `fd` was just opened by us and is closed once.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

fn run() -> Result<String, String> {
    let started = Instant::now();
    let tracefs = microscoped::tracefs::find();
    let capabilities = detect_capabilities(tracefs.as_deref());
    for (what, availability) in [
        ("kprobes", &capabilities.kprobes),
        ("fentry", &capabilities.fentry),
        ("uprobes", &capabilities.uprobes),
    ] {
        println!("vmtest: {what}: {}", availability.reason);
        if !availability.available {
            return Err(format!("{what} unavailable: {}", availability.reason));
        }
    }

    let exe = std::env::current_exe().map_err(|err| format!("no current exe: {err}"))?;
    let ids = [
        "kprobe:do_sys_openat2".to_owned(),
        "fentry:do_sys_openat2".to_owned(),
        "func:do_sys_openat2".to_owned(),
        format!("uprobe:{}:microscope_vmtest_work", exe.display()),
    ];
    let filter = ProcessFilterConfig {
        flags: FILTER_PID,
        tgid: std::process::id(),
        ..Default::default()
    };
    let mut probes = FunctionProbes::new(&capabilities);
    for (key, id) in ids.iter().enumerate() {
        let target = FunctionTarget::parse(id)
            .ok_or_else(|| format!("{id} is not a function probe id"))??;
        let availability = probes.availability(&target);
        if !availability.available {
            return Err(format!("{id} unavailable: {}", availability.reason));
        }
        let attach_started = Instant::now();
        probes.attach(key as u16, &target, &filter)?;
        println!(
            "vmtest: attached {id} via {} in {} ms",
            probes.mechanism(key as u16).unwrap_or("?"),
            attach_started.elapsed().as_millis()
        );
    }
    if probes.mechanism(2) != Some("fentry/fexit") {
        return Err(format!(
            "func: should prefer fentry where the kernel allows it, but chose {:?}",
            probes.mechanism(2)
        ));
    }

    // The tracepoint path still works next to the function probes.
    let mut tracer =
        Tracer::load(tracefs.as_deref()).map_err(|err| format!("loading the tracer: {err}"))?;
    let openat_key = PROBES
        .iter()
        .position(|p| p.id == "syscalls:sys_enter_openat")
        .ok_or("the catalogue has no syscalls:sys_enter_openat")? as u16;
    tracer.attach(openat_key)?;

    let workload_started = Instant::now();
    open_workload()?;
    for i in 0..USER_CALLS {
        microscope_vmtest_work(i);
    }
    let workload_ms = workload_started.elapsed().as_millis();

    let stats = probes.stats();
    let mut summary = Vec::new();
    for (key, id) in ids.iter().enumerate() {
        let FunctionStats {
            calls,
            latency_log2_ns,
            ..
        } = stats
            .iter()
            .find(|s| usize::from(s.probe) == key)
            .ok_or_else(|| format!("no stats for {id}"))?;
        let timed: u64 = latency_log2_ns.iter().sum();
        println!("vmtest: {id}: {calls} calls, {timed} timed, log2 ns {latency_log2_ns:?}");
        let expected = if id.starts_with("uprobe:") {
            USER_CALLS
        } else {
            2 * OPENS_EACH
        };
        let exact = id.starts_with("uprobe:");
        if (exact && *calls != expected) || *calls < expected {
            return Err(format!(
                "{id} counted {calls} calls, expected {}{expected}",
                if exact { "" } else { "at least " }
            ));
        }
        if timed == 0 {
            return Err(format!("{id} timed no call (empty latency histogram)"));
        }
        summary.push(format!("{id}={calls}"));
    }

    let mut events: Vec<Event> = Vec::new();
    tracer.drain(usize::MAX, &mut events);
    let openats = events
        .iter()
        .filter(|e| {
            e.probe == openat_key
                && e.tgid == std::process::id()
                && matches!(&e.data, EventData::Openat { filename, .. } if filename == "/dev/null")
        })
        .count() as u64;
    println!("vmtest: syscalls:sys_enter_openat: {openats} events for /dev/null");
    if openats < OPENS_EACH {
        return Err(format!(
            "syscalls:sys_enter_openat delivered {openats} events, expected at least {OPENS_EACH}"
        ));
    }
    summary.push(format!("sys_enter_openat={openats}"));

    let detached = probes.detach_all();
    if detached != ids.len() {
        return Err(format!(
            "detach_all detached {detached} probes, expected {}",
            ids.len()
        ));
    }
    Ok(format!(
        "{} (workload {workload_ms} ms, total {} ms)",
        summary.join(" "),
        started.elapsed().as_millis()
    ))
}
