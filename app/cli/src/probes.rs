//! `microscope probes`: what the helper and the kernel offer.

use crate::cli::ProbesArgs;
use crate::failure::Failure;
use microscope_wire::{Availability, ClientError, Connection, HelperInfo, ProbeInfo, ProbeKind};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `microscope probes`: prints the report (or, with `--verifier-log ID`,
/// that probe's verifier log); exit status 2 when the helper cannot be
/// asked.
pub fn run(socket: &Path, args: &ProbesArgs) -> anyhow::Result<ExitCode> {
    if args.cost {
        cost_reports(socket, &args.enable, args.reports, &mut std::io::stdout())
            .map_err(|err| Failure::new(&err, 2))?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = match &args.verifier_log {
        Some(probe) => verifier_log(socket, probe),
        None => probes_report(socket),
    }
    .map_err(|err| Failure::new(&err, 2))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Connects, asks for the probe list and returns the report to print.
pub fn probes_report(socket: &Path) -> Result<String, ClientError> {
    let mut connection = Connection::connect(socket)?;
    let probes = connection.list_probes()?;
    connection.shutdown();
    Ok(format_probes(connection.hello(), &probes))
}

/// The whole verifier log of pack probe `probe`, as the helper kept it when
/// the kernel refused the probe.
pub fn verifier_log(socket: &Path, probe: &str) -> Result<String, ClientError> {
    let mut connection = Connection::connect(socket)?;
    connection.send(&microscope_wire::ClientMessage::VerifierLog {
        probe: probe.to_owned(),
    })?;
    loop {
        match connection.recv()? {
            microscope_wire::HelperMessage::VerifierLog { log, .. } => {
                connection.shutdown();
                return Ok(log);
            }
            microscope_wire::HelperMessage::Error { message } => {
                return Err(ClientError::Refused(message));
            }
            _ => {}
        }
    }
}

/// Most time to wait for one cost report before giving up.
const COST_REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `microscope probes --cost`: enables `enable`, watches the cost and
/// prints `reports` reports as they arrive.
pub fn cost_reports(
    socket: &Path,
    enable: &[String],
    reports: u32,
    out: &mut impl std::io::Write,
) -> Result<(), ClientError> {
    let mut connection = Connection::connect(socket)?;
    let mut names: std::collections::HashMap<microscope_wire::ProbeKey, String> = connection
        .list_probes()?
        .into_iter()
        .map(|p| (p.key, p.id))
        .collect();
    for probe in enable {
        for reply in connection.enable_probe(probe)? {
            if let microscope_wire::HelperMessage::ProbeAdded(info) = reply {
                names.insert(info.key, info.id);
            }
        }
    }
    connection.send(&microscope_wire::ClientMessage::WatchCost { watch: true })?;
    connection.set_recv_timeout(Some(COST_REPORT_TIMEOUT))?;
    let mut printed = 0;
    while printed < reports {
        match connection.recv()? {
            microscope_wire::HelperMessage::CostWatch { run_times, .. } if !run_times.available => {
                let _ = writeln!(out, "note: {}", run_times.reason);
            }
            microscope_wire::HelperMessage::Cost(report) => {
                let _ = write!(out, "{}", format_cost(&report, &names));
                let _ = out.flush();
                printed += 1;
            }
            microscope_wire::HelperMessage::Error { message } => {
                return Err(ClientError::Refused(message));
            }
            _ => {}
        }
    }
    connection.shutdown();
    Ok(())
}

/// One cost report as a table: a line per attached probe, then the helper.
pub fn format_cost(
    report: &microscope_wire::CostReport,
    names: &std::collections::HashMap<microscope_wire::ProbeKey, String>,
) -> String {
    use microscope_model::format_share;
    let mut out = String::new();
    let run_times = report.run_times.available;
    let _ = writeln!(
        out,
        "cost over {:.2} s ({} CPUs){}:",
        report.interval_ns as f64 / 1e9,
        report.cpus,
        if run_times {
            String::new()
        } else {
            format!("; no run times: {}", report.run_times.reason)
        }
    );
    let label = |key| {
        names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("probe {key}"))
    };
    let width = report
        .probes
        .iter()
        .map(|p| label(p.probe).len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>10}  {:>9}  {:>9}  {:>9}  {:>8}  {:>7}  programs (id)",
        "probe", "ns/run", "cpu", "runs/s", "events/s", "ring", "dropped"
    );
    for probe in &report.probes {
        let dash = || "-".to_owned();
        let _ = writeln!(
            out,
            "  {:<width$}  {:>10}  {:>9}  {:>9.0}  {:>9.0}  {:>8}  {:>7}  {}",
            label(probe.probe),
            probe
                .ns_per_run()
                .filter(|_| run_times)
                .map_or_else(dash, |ns| format!("{ns:.0}")),
            if run_times {
                format_share(report.cpu_share(probe.run_time_ns()))
            } else {
                dash()
            },
            report.per_sec(probe.run_count()),
            report.per_sec(probe.events),
            if probe.ring_bytes > 0 {
                format_share(probe.ring_peak_bytes as f64 / probe.ring_bytes as f64)
            } else {
                dash()
            },
            probe.kernel_drops,
            probe
                .programs
                .iter()
                .map(|p| format!("{} ({})", p.name, p.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if report.probes.is_empty() {
        let _ = writeln!(
            out,
            "  (no probe attached: enable some in the app, or pass --enable ID)"
        );
    }
    let _ = writeln!(
        out,
        "  helper: {} of a CPU, {} resident",
        format_share(report.cpu_share(report.helper.interval_cpu_ns)),
        microscope_model::format_mib(report.helper.rss_bytes)
    );
    out
}

/// The report: helper and kernel, capabilities, then one line per probe:
/// `<id>  <subsystem>  <kind>  available|unavailable: <reason>  <description>`.
pub fn format_probes(hello: &HelperInfo, probes: &[ProbeInfo]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "helper: microscoped {}", hello.helper_version);
    let _ = writeln!(out, "kernel: {}", hello.kernel_release);
    let _ = writeln!(out, "capabilities:");
    let caps = &hello.capabilities;
    let capabilities: [(&str, &Availability); 5] = [
        ("tracefs", &caps.tracefs),
        ("btf", &caps.btf),
        ("kprobes", &caps.kprobes),
        ("fentry", &caps.fentry),
        ("uprobes", &caps.uprobes),
    ];
    for (name, availability) in capabilities {
        let yes_no = if availability.available { "yes" } else { "no" };
        let _ = writeln!(out, "  {name:<8} {yes_no:<3}  {}", availability.reason);
    }
    let _ = writeln!(out, "probes:");
    let id_width = probes.iter().map(|p| p.id.len()).max().unwrap_or(0);
    let subsystem_width = probes.iter().map(|p| p.subsystem.len()).max().unwrap_or(0);
    for probe in probes {
        let state = if probe.availability.available {
            "available".to_owned()
        } else {
            format!("unavailable: {}", probe.availability.reason)
        };
        let _ = writeln!(
            out,
            "  {:<id_width$}  {:<subsystem_width$}  {:<15}  {state}  {}",
            probe.id,
            probe.subsystem,
            kind_name(probe.kind),
            probe.description,
        );
    }
    if probes.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    if probes
        .iter()
        .any(|p| matches!(p.kind, ProbeKind::Pack | ProbeKind::TimeStacks))
    {
        let _ = writeln!(out, "{PACK_NOTE}");
    }
    out
}

/// Said under the list when it has `pack` probes: whose counts they are.
pub const PACK_NOTE: &str = "note: `pack` probes count in their own maps in the kernel, once for \
     every client of the helper (machine-wide, or the processes every client's filter keeps); \
     the window's Pack data tab shows their tables and histograms, the flame graph their stacks.";

fn kind_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Stream => "stream",
        ProbeKind::SyscallCounts => "syscall-counts",
        ProbeKind::SyscallLatency => "syscall-latency",
        ProbeKind::Fields => "stream-fields",
        ProbeKind::Function => "function",
        ProbeKind::Stacks => "stacks",
        ProbeKind::Pack => "pack",
        ProbeKind::TimeStacks => "pack-time-stacks",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::Capabilities;

    #[test]
    fn cost_table_has_a_line_per_probe_and_the_helper() {
        use microscope_wire::{CostReport, HelperCost, ProbeCost, ProgramCost};
        let report = CostReport {
            ts_ns: 2_000_000_000,
            interval_ns: 1_000_000_000,
            cpus: 2,
            run_times: Availability::yes("on"),
            probes: vec![ProbeCost {
                probe: 7,
                programs: vec![ProgramCost {
                    name: "sys_enter_openat".into(),
                    id: 42,
                    run_time_ns: 10_000_000,
                    run_count: 50_000,
                    interval_run_time_ns: 4_000_000,
                    interval_run_count: 10_000,
                }],
                events: 9_000,
                kernel_drops: 0,
                ring_bytes: 16 << 20,
                ring_peak_bytes: 1 << 20,
            }],
            helper: HelperCost {
                interval_cpu_ns: 20_000_000,
                cpu_ns: 1,
                rss_bytes: 50 << 20,
            },
        };
        let names = [(7, "syscalls:sys_enter_openat".to_owned())].into();
        let text = format_cost(&report, &names);
        assert!(text.starts_with("cost over 1.00 s (2 CPUs):\n"), "{text}");
        let line = text.lines().nth(2).unwrap();
        for part in [
            "syscalls:sys_enter_openat",
            "400",
            "0.40 %",
            "10000",
            "9000",
            "6.25 %",
            "sys_enter_openat (42)",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
        assert!(
            text.ends_with("  helper: 2.00 % of a CPU, 50.0 MiB resident\n"),
            "{text}"
        );
        let empty = CostReport {
            probes: Vec::new(),
            run_times: Availability::no("too old"),
            ..report
        };
        let text = format_cost(&empty, &names);
        assert!(text.contains("no run times: too old"), "{text}");
        assert!(text.contains("no probe attached"), "{text}");
    }

    #[test]
    fn report_lists_capabilities_and_probes() {
        let hello = HelperInfo {
            helper_version: "0.1.0".into(),
            kernel_release: "6.18.0".into(),
            capabilities: Capabilities {
                tracefs: Availability::yes("mounted"),
                btf: Availability::yes("/sys/kernel/btf/vmlinux"),
                kprobes: Availability::no("CONFIG_KPROBES is not set"),
                fentry: Availability::no("EPERM (lockdown)"),
                uprobes: Availability::yes("ok"),
            },
        };
        let probes = vec![
            ProbeInfo {
                fields: Vec::new(),
                id: "sched:sched_switch".into(),
                key: 1,
                subsystem: "Scheduler".into(),
                description: "Context switches".into(),
                kind: ProbeKind::Stream,
                availability: Availability::yes(""),
                enabled: false,
            },
            ProbeInfo {
                fields: Vec::new(),
                id: "kprobe:vfs_read".into(),
                key: 2,
                subsystem: "Files".into(),
                description: "vfs_read calls".into(),
                kind: ProbeKind::Stream,
                availability: Availability::no("CONFIG_KPROBES is not set"),
                enabled: false,
            },
        ];
        let report = format_probes(&hello, &probes);
        assert!(
            report.contains("helper: microscoped 0.1.0\nkernel: 6.18.0\n"),
            "{report}"
        );
        assert!(
            report.contains("  kprobes  no   CONFIG_KPROBES is not set\n"),
            "{report}"
        );
        assert!(
            report.contains(
                "  sched:sched_switch  Scheduler  stream           available  Context switches\n"
            ),
            "{report}"
        );
        assert!(
            report.contains("unavailable: CONFIG_KPROBES is not set  vfs_read calls"),
            "{report}"
        );
        assert!(format_probes(&hello, &[]).ends_with("probes:\n  (none)\n"));
    }
}
