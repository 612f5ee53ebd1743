//! The test `cargo xtask test-vm` runs as `/bin/vmtest` inside a QEMU VM
//! booted on a distribution kernel that has kprobes and fentry (this
//! project's development machines have neither).
//!
//! It runs the real helper (`microscoped::run`, on its own thread) and talks
//! to it as a client over the real socket with `microscope_wire::Connection`:
//! it enables `kprobe:`, `fentry:` and `func:` probes on `do_sys_openat2`, a
//! `uprobe:` on a function of this very binary and the tracepoint
//! `syscalls:sys_enter_openat`, sets the process filter to itself, runs a
//! workload whose counts are known, and checks what arrives in
//! `Aggregates::functions` and in the event batches. Then it profiles
//! itself on-CPU and off-CPU (`profile:cpu`, `profile:offcpu`) and checks
//! the stack batches.
//!
//! It leaves a one-line verdict in the file named by
//! `MICROSCOPE_VMTEST_VERDICT`, from which the VM's `/init` prints the line
//! the xtask looks for: `MICROSCOPE-VMTEST PASS <summary>` or
//! `MICROSCOPE-VMTEST FAIL <reason>`. Run by hand (as root), it prints that
//! line itself.
//!
//! Built static for x86_64-unknown-linux-musl. Note that musl's `open()`
//! uses the `open` syscall and `openat()` the `openat` one; both go through
//! `do_sys_openat2`, and only the second hits `sys_enter_openat`.

use microscope_wire::ProbeKey;
use microscope_wire::{
    ClientError, ClientMessage, Connection, EventData, FunctionStats, HelperMessage, ProbeInfo,
    ProcessFilter,
};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Opens of /dev/null with `open` and with `openat` each.
const OPENS_EACH: u64 = 250;
/// Calls of the probed user function.
const USER_CALLS: u64 = 100;
/// Where the helper listens inside the VM.
const SOCKET: &str = "/run/microscope/microscoped.sock";
/// How long the helper may take to start, and the counts to arrive (an
/// emulated CPU is some twenty times slower than the host).
const PATIENCE: Duration = Duration::from_secs(60);
/// The function probes, by mechanism, on the kernel side.
const KERNEL_PROBES: [&str; 3] = [
    "kprobe:do_sys_openat2",
    "fentry:do_sys_openat2",
    "func:do_sys_openat2",
];
/// Probes of the pack `/init` puts in /etc/microscope/packs
/// (assets/packs/vm-functions), and the mechanism each must attach with.
const PACK_PROBES: [(&str, &str); 2] = [
    ("vm-functions:opens", "fentry:do_sys_openat2"),
    ("vm-functions:opens-kprobe", "kprobe:do_sys_openat2"),
];
/// The tracepoint checked next to the function probes.
const TRACEPOINT: &str = "syscalls:sys_enter_openat";

/// Burns CPU for `ms` ms in a function the on-CPU profile must name. The
/// loop is plain instructions, no calls, so a sample's innermost frame is
/// this function even though this binary has no frame pointers.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_vmtest_burn(ms: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut x = 1u64;
    while Instant::now() < deadline {
        // SAFETY: arithmetic on registers only.
        unsafe {
            std::arch::asm!(
                "2:",
                "imul {x}, {x}, 3",
                "add {x}, 1",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                n = inout(reg) 1_000_000u64 => _,
                options(nomem, nostack),
            );
        }
    }
    x
}

/// The user function probed with `uprobe:/bin/vmtest:microscope_vmtest_work`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_vmtest_work(n: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(100));
    black_box(n.wrapping_mul(3))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = run_with_helper();
    let (verdict, code) = match &result {
        Ok(summary) => (summary.as_str(), ExitCode::SUCCESS),
        Err(reason) => (reason.as_str(), ExitCode::FAILURE),
    };
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

/// Starts the helper, runs the client half, stops the helper (also after a
/// failure) and checks that it stopped cleanly.
fn run_with_helper() -> Result<String, String> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vmtest-helper-rt")
        .enable_all()
        .build()
        .map_err(|err| format!("could not start a tokio runtime: {err}"))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = microscoped::Config {
        socket: PathBuf::from(SOCKET),
        group: microscoped::DEFAULT_GROUP.to_owned(),
        pack_dirs: Vec::new(),
        metrics: None,
    };
    let helper = std::thread::Builder::new()
        .name("vmtest-helper".to_owned())
        .spawn(move || runtime.block_on(microscoped::run(config, stopped)))
        .map_err(|err| format!("could not start the helper thread: {err}"))?;

    let result = client(started);
    let _ = stop.send(true);
    let served = helper
        .join()
        .map_err(|_| "the helper thread panicked".to_owned())?;
    if let Err(err) = served {
        return Err(format!("the helper failed: {err:#}"));
    }
    if Path::new(SOCKET).exists() {
        return Err("the helper left its socket behind".to_owned());
    }
    result.map(|summary| {
        format!(
            "{summary} (helper up to verdict {} ms)",
            started.elapsed().as_millis()
        )
    })
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

fn connect(started: Instant) -> Result<Connection, String> {
    loop {
        match Connection::connect(SOCKET) {
            Ok(conn) => return Ok(conn),
            Err(err) if started.elapsed() > PATIENCE => {
                return Err(format!("the helper never answered on {SOCKET}: {err}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Waits for the answer `pick` selects, skipping streamed messages.
fn wait_for<T>(
    conn: &mut Connection,
    what: &str,
    mut pick: impl FnMut(HelperMessage) -> Option<T>,
) -> Result<T, String> {
    loop {
        match conn.recv() {
            Ok(HelperMessage::Error { message }) => return Err(format!("{what}: {message}")),
            Ok(message) => {
                if let Some(answer) = pick(message) {
                    return Ok(answer);
                }
            }
            Err(err) => return Err(format!("waiting for {what}: {err}")),
        }
    }
}

/// The client half: each step below, in order; a summary of the counts.
fn client(started: Instant) -> Result<String, String> {
    let mut conn = connect(started)?;
    let helper_up_ms = started.elapsed().as_millis();
    conn.set_recv_timeout(Some(PATIENCE))
        .map_err(|err| err.to_string())?;
    check_capabilities(&conn, helper_up_ms)?;
    check_function_list(&mut conn)?;
    // The filter first, so that every count is this process's alone.
    filter_to_this_process(&mut conn)?;
    let uprobe = uprobe_id()?;
    let function_ids: Vec<String> = KERNEL_PROBES
        .iter()
        .map(|id| (*id).to_owned())
        .chain([uprobe.clone()])
        .collect();
    let all_ids: Vec<&str> = function_ids
        .iter()
        .map(String::as_str)
        .chain([TRACEPOINT])
        .collect();
    let added = enable_each(&mut conn, &all_ids)?;
    check_func_prefers_fentry(&added)?;
    let probes = conn.list_probes().map_err(|err| err.to_string())?;
    let keys: Vec<(String, ProbeKey)> = function_ids
        .iter()
        .map(|id| key_of(&probes, id).map(|key| (id.clone(), key)))
        .collect::<Result<_, _>>()?;
    let openat_key = key_of(&probes, TRACEPOINT)?;

    let workload_started = Instant::now();
    open_workload()?;
    for i in 0..USER_CALLS {
        microscope_vmtest_work(i);
    }
    let workload_ms = workload_started.elapsed().as_millis();

    let expected = |id: &str| {
        if id == uprobe {
            USER_CALLS
        } else {
            2 * OPENS_EACH
        }
    };
    let (latest, openats) = collect_counts(&mut conn, &keys, openat_key, expected)?;
    let mut summary = summarize_counts(&keys, &latest, &uprobe)?;
    println!("vmtest: {TRACEPOINT}: {openats} events for /dev/null");
    summary.push(format!("{TRACEPOINT}={openats}"));
    disable_each(&mut conn, &all_ids)?;
    summary.push(check_pack_probes(&mut conn)?);
    summary.push(check_profiles(&mut conn)?);
    Ok(format!(
        "{} (workload {workload_ms} ms; helper answered after {helper_up_ms} ms)",
        summary.join(" ")
    ))
}

/// The pack probes (a BPF object of a third-party pack, read from the
/// trusted /etc/microscope/packs): the fentry program is chosen over the
/// kprobe fallback, the kprobe-only probe attaches too, and both count this
/// process's opens of /dev/null in their map.
fn check_pack_probes(conn: &mut Connection) -> Result<String, String> {
    let probes = conn.list_probes().map_err(|err| err.to_string())?;
    let mut keys = Vec::new();
    for (id, mechanism) in PACK_PROBES {
        let info = probes
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| format!("the helper does not list the pack probe {id}"))?;
        if !info.availability.available || !info.availability.reason.contains(mechanism) {
            return Err(format!(
                "{id} should be available through {mechanism}: {}",
                info.availability.reason
            ));
        }
        keys.push((id, info.key));
    }
    let ids: Vec<&str> = PACK_PROBES.iter().map(|(id, _)| *id).collect();
    enable_each(conn, &ids)?;
    open_workload()?;
    let me = u64::from(std::process::id());
    let mut counted: HashMap<microscope_wire::ProbeKey, u64> = HashMap::new();
    let started = Instant::now();
    while keys
        .iter()
        .any(|(_, key)| counted.get(key).copied().unwrap_or(0) < 2 * OPENS_EACH)
    {
        if started.elapsed() > PATIENCE {
            return Err(format!(
                "pack probes counted {counted:?}, expected {} opens each",
                2 * OPENS_EACH
            ));
        }
        if let HelperMessage::PackData(data) = conn.recv().map_err(|err| err.to_string())? {
            for row in data.tables.iter().flat_map(|t| &t.rows) {
                if let [
                    microscope_wire::FieldValue::Uint(tgid),
                    microscope_wire::FieldValue::Uint(calls),
                ] = row.as_slice()
                    && *tgid == me
                {
                    counted.insert(data.probe, *calls);
                }
            }
        }
    }
    disable_each(conn, &ids)?;
    let summary: Vec<String> = keys
        .iter()
        .map(|(id, key)| format!("{id}={}", counted.get(key).copied().unwrap_or(0)))
        .collect();
    println!("vmtest: pack probes {}", summary.join(" "));
    Ok(summary.join(" "))
}

/// kprobes, fentry and uprobes must all be available on the VM's kernel.
fn check_capabilities(conn: &Connection, helper_up_ms: u128) -> Result<(), String> {
    let hello = conn.hello();
    println!(
        "vmtest: helper {} on {} answered after {helper_up_ms} ms",
        hello.helper_version, hello.kernel_release
    );
    let capabilities = &hello.capabilities;
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
    Ok(())
}

/// The helper lists `do_sys_openat2` among the kernel functions.
fn check_function_list(conn: &mut Connection) -> Result<(), String> {
    conn.send(&ClientMessage::ListKernelFunctions {
        contains: "do_sys_openat".to_owned(),
    })
    .map_err(|err| err.to_string())?;
    let names = wait_for(conn, "the kernel function list", |m| match m {
        HelperMessage::KernelFunctions { names, .. } => Some(names),
        _ => None,
    })?;
    if !names.iter().any(|n| n == "do_sys_openat2") {
        return Err(format!(
            "do_sys_openat2 is not in the kernel function list {names:?}"
        ));
    }
    Ok(())
}

/// Sets the process filter to this process and waits for its confirmation.
fn filter_to_this_process(conn: &mut Connection) -> Result<(), String> {
    conn.send(&ClientMessage::SetFilter(ProcessFilter {
        pid: Some(std::process::id()),
        ..ProcessFilter::default()
    }))
    .map_err(|err| err.to_string())?;
    wait_for(conn, "the process filter", |m| {
        matches!(m, HelperMessage::Filter(_)).then_some(())
    })
}

/// The uprobe id of `microscope_vmtest_work` in this binary.
fn uprobe_id() -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|err| format!("no current exe: {err}"))?;
    Ok(format!("uprobe:{}:microscope_vmtest_work", exe.display()))
}

/// Enables each probe; returns the probes the helper announced as new.
fn enable_each(conn: &mut Connection, ids: &[&str]) -> Result<HashMap<String, ProbeInfo>, String> {
    let mut added = HashMap::new();
    for id in ids {
        let enable_started = Instant::now();
        let replies = conn.enable_probe(id).map_err(|err| match err {
            ClientError::Refused(message) => format!("enabling {id} was refused: {message}"),
            other => format!("enabling {id} failed: {other}"),
        })?;
        for reply in replies {
            if let HelperMessage::ProbeAdded(info) = reply {
                added.insert(info.id.clone(), info);
            }
        }
        println!(
            "vmtest: enabled {id} in {} ms",
            enable_started.elapsed().as_millis()
        );
    }
    Ok(added)
}

/// Disables each probe and waits for each confirmation.
fn disable_each(conn: &mut Connection, ids: &[&str]) -> Result<(), String> {
    for id in ids {
        conn.send(&ClientMessage::Disable {
            probe: (*id).to_owned(),
        })
        .map_err(|err| err.to_string())?;
        wait_for(conn, "the probe to be disabled", |m| match m {
            HelperMessage::ProbeState { probe, enabled } if probe == *id => Some(enabled),
            _ => None,
        })?;
    }
    Ok(())
}

/// `func:` chose fentry: the availability note names the mechanism.
fn check_func_prefers_fentry(added: &HashMap<String, ProbeInfo>) -> Result<(), String> {
    let auto = added
        .get("func:do_sys_openat2")
        .ok_or("func:do_sys_openat2 was not announced with ProbeAdded")?;
    println!("vmtest: func:do_sys_openat2: {}", auto.availability.reason);
    if !auto.availability.reason.contains("fentry/fexit") {
        return Err(format!(
            "func: should prefer fentry where the kernel allows it: {}",
            auto.availability.reason
        ));
    }
    Ok(())
}

/// The key of probe `id` in the helper's list.
fn key_of(probes: &[ProbeInfo], id: &str) -> Result<ProbeKey, String> {
    probes
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.key)
        .ok_or_else(|| format!("{id} is not in the helper's probe list"))
}

/// Collects until every function probe has counted `expected(id)` calls
/// (some timed) and the tracepoint delivered `OPENS_EACH` /dev/null
/// events: the latest stats by key, and the tracepoint's count.
/// Aggregates are cumulative and come every 250 ms; batches every 40 ms.
fn collect_counts(
    conn: &mut Connection,
    keys: &[(String, ProbeKey)],
    openat_key: ProbeKey,
    expected: impl Fn(&str) -> u64,
) -> Result<(HashMap<ProbeKey, FunctionStats>, u64), String> {
    let mut latest: HashMap<ProbeKey, FunctionStats> = HashMap::new();
    let mut openats = 0u64;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let done = openats >= OPENS_EACH
            && keys.iter().all(|(id, key)| {
                latest.get(key).is_some_and(|s| {
                    // Timed calls can trail: a kretprobe misses returns
                    // when all its instances are busy. Some must be timed.
                    s.calls >= expected(id) && s.latency_log2_ns.iter().any(|n| *n > 0)
                })
            });
        if done {
            return Ok((latest, openats));
        }
        if Instant::now() > deadline {
            let seen: Vec<String> = keys
                .iter()
                .map(|(id, key)| format!("{id}={}", latest.get(key).map_or(0, |s| s.calls)))
                .collect();
            return Err(format!(
                "the counts did not arrive within {} s: {} {TRACEPOINT}={openats}",
                PATIENCE.as_secs(),
                seen.join(" ")
            ));
        }
        match conn.recv() {
            Ok(HelperMessage::Aggregates(aggregates)) => {
                for stats in aggregates.functions {
                    latest.insert(stats.probe, stats);
                }
            }
            Ok(HelperMessage::Batch(batch)) => {
                openats += batch
                    .events
                    .iter()
                    .filter(|e| {
                        e.probe == openat_key
                            && e.tgid == std::process::id()
                            && event_opens_dev_null(&e.data)
                    })
                    .count() as u64;
            }
            Ok(HelperMessage::Error { message }) => {
                return Err(format!("the helper said: {message}"));
            }
            Ok(_) => {}
            Err(err) => return Err(format!("the connection failed: {err}")),
        }
    }
}

/// Prints each function probe's counts; the uprobe must be exact.
fn summarize_counts(
    keys: &[(String, ProbeKey)],
    latest: &HashMap<ProbeKey, FunctionStats>,
    uprobe: &str,
) -> Result<Vec<String>, String> {
    let mut summary = Vec::new();
    for (id, key) in keys {
        let Some(stats) = latest.get(key) else {
            return Err(format!("no counts for {id}"));
        };
        let timed: u64 = stats.latency_log2_ns.iter().sum();
        println!(
            "vmtest: {id}: {} calls, {timed} timed, log2 ns {:?}",
            stats.calls, stats.latency_log2_ns
        );
        // The filter keeps this process, which also runs the helper: the
        // kernel functions count the workload plus any file the helper
        // opens meanwhile (hence "at least" above); the uprobe is exact.
        if id == uprobe && stats.calls != USER_CALLS {
            return Err(format!(
                "{id} counted {} calls, expected exactly {USER_CALLS}",
                stats.calls
            ));
        }
        summary.push(format!("{id}={}", stats.calls));
    }
    Ok(summary)
}

const PROFILES: [&str; 2] = ["profile:cpu", "profile:offcpu"];
const SLEEPS: u64 = 10;
const SLEEP_MS: u64 = 50;

/// On-CPU and off-CPU profiles of this process (the filter is still set
/// to it): a burn in a named function, then 10 × 50 ms of `nanosleep`.
fn check_profiles(conn: &mut Connection) -> Result<String, String> {
    enable_each(conn, &PROFILES)?;
    let probes = conn.list_probes().map_err(|err| err.to_string())?;
    let (cpu_key, off_key) = (key_of(&probes, PROFILES[0])?, key_of(&probes, PROFILES[1])?);
    black_box(microscope_vmtest_burn(1500));
    for _ in 0..SLEEPS {
        std::thread::sleep(Duration::from_millis(SLEEP_MS));
    }
    let totals = collect_profiles(conn, cpu_key, off_key)?;
    disable_each(conn, &PROFILES)?;
    println!(
        "vmtest: profiles: {} on-CPU samples, {} in microscope_vmtest_burn; \
         {} ms blocked in nanosleep ({} ms slept)",
        totals.samples,
        totals.burning,
        totals.slept_ns / 1_000_000,
        SLEEPS * SLEEP_MS
    );
    Ok(format!(
        "profile:cpu={}/{} profile:offcpu={}ms",
        totals.burning,
        totals.samples,
        totals.slept_ns / 1_000_000
    ))
}

/// What the profiles of this process showed.
#[derive(Default)]
struct ProfileTotals {
    /// On-CPU samples.
    samples: u64,
    /// Of which in `microscope_vmtest_burn`.
    burning: u64,
    /// ns blocked in a kernel nanosleep frame.
    slept_ns: u64,
}

/// Reads stack batches until the burn has 20 samples and 80 % of the
/// sleeps are seen blocked.
fn collect_profiles(
    conn: &mut Connection,
    cpu_key: ProbeKey,
    off_key: ProbeKey,
) -> Result<ProfileTotals, String> {
    let me = std::process::id();
    let mut names: HashMap<u32, (String, bool)> = HashMap::new();
    let mut totals = ProfileTotals::default();
    let deadline = Instant::now() + PATIENCE;
    while totals.burning < 20 || totals.slept_ns < SLEEPS * SLEEP_MS * 1_000_000 * 8 / 10 {
        if Instant::now() > deadline {
            return Err(format!(
                "the profiles did not arrive within {} s: {} on-CPU samples \
                 ({} in microscope_vmtest_burn), {} ms in nanosleep",
                PATIENCE.as_secs(),
                totals.samples,
                totals.burning,
                totals.slept_ns / 1_000_000
            ));
        }
        let batch = match conn.recv() {
            Ok(HelperMessage::Stacks(batch)) => batch,
            Ok(HelperMessage::Error { message }) => {
                return Err(format!("the helper said: {message}"));
            }
            Ok(_) => continue,
            Err(err) => return Err(format!("the connection failed: {err}")),
        };
        for frame in batch.frames {
            names.insert(frame.id, (frame.name, frame.kernel));
        }
        for stack in batch.stacks.iter().filter(|s| s.tgid == me) {
            let has = |want: &dyn Fn(&str, bool) -> bool| {
                stack
                    .frames
                    .iter()
                    .any(|id| names.get(id).is_some_and(|(n, k)| want(n, *k)))
            };
            if stack.probe == cpu_key {
                totals.samples += stack.value;
                if has(&|n, k| !k && n == "microscope_vmtest_burn") {
                    totals.burning += stack.value;
                }
            } else if stack.probe == off_key && has(&|n, k| k && n.contains("nanosleep")) {
                totals.slept_ns += stack.value;
            }
        }
    }
    Ok(totals)
}

/// Whether a `sys_enter_openat` event opens /dev/null, whichever way the
/// helper decodes it (dedicated program or generic fields).
fn event_opens_dev_null(data: &EventData) -> bool {
    match data {
        EventData::Openat { filename, .. } => filename == "/dev/null",
        EventData::Fields(values) => values
            .iter()
            .any(|v| matches!(v, microscope_wire::FieldValue::Str(s) if s == "/dev/null")),
        _ => false,
    }
}
