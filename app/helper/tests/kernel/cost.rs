//! What tracing costs (issue 13 §1): the helper's cost reports against
//! `bpftool prog show` for the same programs, and the kernel's run-time
//! statistics held exactly while someone watches.

use super::{Helper, enable};
use microscope_wire::{ClientError, ClientMessage, Connection, CostReport, HelperMessage};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a cost report may take (they come every second).
const REPORT_TIMEOUT: Duration = Duration::from_secs(20);

/// A function of this test binary whose uprobe only this process hits:
/// its programs' statistics stand still whenever the test is not calling it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_cost_test_function(n: u64) -> u64 {
    std::hint::black_box(n.wrapping_mul(3))
}

/// `run_time_ns` and `run_cnt` of program `id`, as bpftool prints them
/// (it leaves both out while they are zero).
fn bpftool_stats(id: u32) -> (u64, u64) {
    let output = Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string(), "--json"])
        .output()
        .expect("bpftool runs (apt-get install bpftool; `cargo xtask setup` installs it)");
    assert!(
        output.status.success(),
        "bpftool prog show id {id} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let field = |name| {
        json.get(name)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    (field("run_time_ns"), field("run_cnt"))
}

/// Waits for a cost report that `done` accepts.
fn report_until(conn: &mut Connection, mut done: impl FnMut(&CostReport) -> bool) -> CostReport {
    conn.set_recv_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + REPORT_TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "no fitting cost report within {REPORT_TIMEOUT:?}"
        );
        match conn.recv() {
            Ok(HelperMessage::Cost(report)) if done(&report) => return report,
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(err) => panic!("connection failed: {err}"),
        }
    }
}

/// Asks for cost reports (or stops); returns whether run times are measured.
fn watch(conn: &mut Connection, on: bool) -> microscope_wire::Availability {
    conn.send(&ClientMessage::WatchCost { watch: on }).unwrap();
    conn.set_recv_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    loop {
        match conn.recv().unwrap() {
            // Answers to earlier requests may come first.
            HelperMessage::CostWatch {
                watching,
                run_times,
            } if watching == on => return run_times,
            HelperMessage::Error { message } => panic!("{message}"),
            _ => {}
        }
    }
}

/// How many BPF run-time statistics file descriptors (`anon_inode:bpf-stats`)
/// process `pid` holds.
fn stats_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|target| target.to_string_lossy() == "anon_inode:bpf-stats")
        })
        .count()
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_probes_run_time_agrees_with_bpftool_over_the_same_interval() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    let exe = std::env::current_exe().unwrap();
    let id = format!("uprobe:{}:microscope_cost_test_function", exe.display());
    let key = conn
        .enable_probe(&id)
        .unwrap()
        .iter()
        .find_map(|m| match m {
            HelperMessage::ProbeAdded(info) => Some(info.key),
            _ => None,
        })
        .expect("the uprobe is announced");
    let run_times = watch(&mut conn, true);
    assert!(run_times.available, "{}", run_times.reason);

    // The baseline: a report that lists the probe's programs (entry and
    // exit). Nothing calls the function now, so bpftool reads the same.
    let first = report_until(&mut conn, |r| {
        r.probes
            .iter()
            .any(|p| p.probe == key && p.programs.len() == 2)
    });
    let programs = first
        .probes
        .iter()
        .find(|p| p.probe == key)
        .unwrap()
        .clone();
    let before: Vec<(u64, u64)> = programs
        .programs
        .iter()
        .map(|p| bpftool_stats(p.id))
        .collect();
    for (program, bpftool) in programs.programs.iter().zip(&before) {
        assert_eq!(
            (program.run_time_ns, program.run_count),
            *bpftool,
            "{} ({}): the helper and bpftool disagree at rest",
            program.name,
            program.id
        );
    }

    // The workload: N calls, each one run of the entry and the exit program.
    const CALLS: u64 = 20_000;
    for i in 0..CALLS {
        microscope_cost_test_function(i);
    }
    // Sum the intervals of every report until all the runs are in (the
    // sentinel is the count itself: only this process calls the function).
    let mut interval_time = vec![0u64; programs.programs.len()];
    let mut interval_count = vec![0u64; programs.programs.len()];
    let last = report_until(&mut conn, |r| {
        let Some(cost) = r.probes.iter().find(|p| p.probe == key) else {
            return false;
        };
        for (i, base) in programs.programs.iter().enumerate() {
            if let Some(p) = cost.programs.iter().find(|p| p.id == base.id) {
                interval_time[i] += p.interval_run_time_ns;
                interval_count[i] += p.interval_run_count;
            }
        }
        interval_count.iter().all(|n| *n >= CALLS)
    });
    let after: Vec<(u64, u64)> = programs
        .programs
        .iter()
        .map(|p| bpftool_stats(p.id))
        .collect();
    let cost = last.probes.iter().find(|p| p.probe == key).unwrap();
    for (i, program) in programs.programs.iter().enumerate() {
        let bpftool_time = after[i].0 - before[i].0;
        let bpftool_count = after[i].1 - before[i].1;
        eprintln!(
            "{} (id {}): helper {} ns in {} runs, bpftool {} ns in {} runs over the same interval",
            program.name,
            program.id,
            interval_time[i],
            interval_count[i],
            bpftool_time,
            bpftool_count
        );
        // The same interval, with the program at rest at both ends: the
        // margin is zero.
        assert_eq!(interval_count[i], CALLS);
        assert_eq!(bpftool_count, CALLS);
        assert_eq!(interval_time[i], bpftool_time, "{}", program.name);
        let now = cost.programs.iter().find(|p| p.id == program.id).unwrap();
        assert_eq!((now.run_time_ns, now.run_count), after[i]);
    }
    // Mean run time per run: a few ns to a few µs, never zero.
    let mean = interval_time.iter().sum::<u64>() as f64 / interval_count.iter().sum::<u64>() as f64;
    assert!(mean > 1.0 && mean < 100_000.0, "{mean} ns per run");
    // The helper reports its own use.
    assert!(last.helper.rss_bytes > 1 << 20, "{:?}", last.helper);
    assert!(last.helper.cpu_ns > 0);
    assert!(last.cpus >= 1);
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_busy_tracepoints_cost_is_within_bpftools_bracket() {
    let helper = Helper::start();
    let mut conn = helper.connect();
    enable(&mut conn, "syscalls:sys_enter_openat");
    let key = conn
        .list_probes()
        .unwrap()
        .into_iter()
        .find(|p| p.id == "syscalls:sys_enter_openat")
        .unwrap()
        .key;
    assert!(watch(&mut conn, true).available);
    let first = report_until(&mut conn, |r| {
        r.probes
            .iter()
            .any(|p| p.probe == key && !p.programs.is_empty())
    });
    let program = first
        .probes
        .iter()
        .find(|p| p.probe == key)
        .unwrap()
        .programs[0]
        .clone();
    // bpftool before the helper's interval starts (the end of `first`)...
    let before = bpftool_stats(program.id);
    let start = report_until(&mut conn, |_| true);
    let start_runs = start
        .probes
        .iter()
        .find(|p| p.probe == key)
        .unwrap()
        .programs[0]
        .clone();
    const OPENS: u64 = 50_000;
    for _ in 0..OPENS {
        drop(std::fs::File::open("/dev/null"));
    }
    let mut time = 0;
    let mut count = 0;
    let end = report_until(&mut conn, |r| {
        let p = &r.probes.iter().find(|p| p.probe == key).unwrap().programs[0];
        time += p.interval_run_time_ns;
        count += p.interval_run_count;
        count >= OPENS
    });
    // ...and after it ends: bpftool's interval contains the helper's, and
    // the difference is other processes' opens in the slivers around it.
    let after = bpftool_stats(program.id);
    let end_runs = &end.probes.iter().find(|p| p.probe == key).unwrap().programs[0];
    assert!(before.1 <= start_runs.run_count && end_runs.run_count <= after.1);
    assert_eq!(end_runs.run_count - start_runs.run_count, count);
    assert_eq!(end_runs.run_time_ns - start_runs.run_time_ns, time);
    let (bpftool_time, bpftool_count) = (after.0 - before.0, after.1 - before.1);
    assert!(count <= bpftool_count && time <= bpftool_time);
    let helper_mean = time as f64 / count as f64;
    let bpftool_mean = bpftool_time as f64 / bpftool_count as f64;
    eprintln!(
        "sys_enter_openat: helper {count} runs at {helper_mean:.0} ns/run, bpftool {bpftool_count} \
         runs at {bpftool_mean:.0} ns/run over a bracket {:.1} % longer in runs",
        (bpftool_count - count) as f64 * 100.0 / count as f64
    );
    // The same program's mean over nearly the same runs: within 25 %.
    assert!(
        (helper_mean - bpftool_mean).abs() <= 0.25 * bpftool_mean,
        "helper {helper_mean:.0} ns/run, bpftool {bpftool_mean:.0} ns/run"
    );
    let cost = end.probes.iter().find(|p| p.probe == key).unwrap();
    assert_eq!(cost.ring_bytes, 16 << 20);
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn run_time_statistics_are_on_exactly_while_someone_watches() {
    let helper = Helper::start();
    let pid = helper.pid();
    let mut first = helper.connect();
    let mut second = helper.connect();
    assert_eq!(stats_fds(pid), 0, "statistics on before anyone watches");
    assert!(watch(&mut first, true).available);
    assert_eq!(stats_fds(pid), 1);
    // A client asking again and again does not stack anything up: one
    // descriptor, and one report a second whoever asks.
    for _ in 0..2_000 {
        first
            .send(&ClientMessage::WatchCost { watch: true })
            .unwrap();
    }
    assert!(watch(&mut first, true).available);
    assert!(watch(&mut second, true).available);
    assert_eq!(stats_fds(pid), 1);
    // One stops: the other still watches.
    watch(&mut first, false);
    assert_eq!(stats_fds(pid), 1);
    report_until(&mut second, |_| true);
    // The last one leaves without a word: statistics off.
    drop(second);
    super::wait_until("the statistics are turned off", || stats_fds(pid) == 0);
    // And on again for a new watcher.
    assert!(watch(&mut first, true).available);
    assert_eq!(stats_fds(pid), 1);
    watch(&mut first, false);
    assert_eq!(stats_fds(pid), 0);
}
