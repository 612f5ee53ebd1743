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
    if probes.iter().any(|p| p.kind == ProbeKind::Pack) {
        let _ = writeln!(out, "{PACK_NOTE}");
    }
    out
}

/// Said under the list when it has `pack` probes: whose counts they are.
pub const PACK_NOTE: &str = "note: `pack` probes count in their own maps in the kernel, once for \
     every client of the helper (machine-wide, or the processes every client's filter keeps); \
     the window's Pack data tab shows their tables and histograms.";

fn kind_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Stream => "stream",
        ProbeKind::SyscallCounts => "syscall-counts",
        ProbeKind::SyscallLatency => "syscall-latency",
        ProbeKind::Fields => "stream-fields",
        ProbeKind::Function => "function",
        ProbeKind::Stacks => "stacks",
        ProbeKind::Pack => "pack",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::Capabilities;

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
