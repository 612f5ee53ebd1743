//! `microscope profile`: profile for a number of seconds through the helper
//! and write folded stacks for flame-graph tools.
//!
//! The command enables `profile:cpu` (or `profile:offcpu`) like any probe:
//! the helper samples and counts in the kernel, symbolizes, and sends a
//! [`StackBatch`](microscope_wire::StackBatch) about once a second. Batches define frame names once
//! (ids in [`StackBatch::frames`](microscope_wire::StackBatch::frames)) and refer to them by id afterwards;
//! [`FoldedProfile`] resolves the ids and sums the counts.
//!
//! # Output
//!
//! One line per distinct stack, sorted: `comm;root;...;leaf value`, the
//! input format of `inferno-flamegraph` and `flamegraph.pl`. User frames
//! come first, then kernel frames, which carry the `_[k]` suffix of
//! `stackcollapse-perf.pl --kernel` (both tools colour them apart). `;`
//! inside a name becomes `:` and white space becomes `_`, so every line
//! splits unambiguously. Values are samples for on-CPU profiles and
//! microseconds blocked for off-CPU profiles (as bcc's `offcputime -f`).

use crate::cli::{DEFAULT_HZ, ProfileArgs};
use crate::failure::Failure;
use microscope_model::FoldedProfile;
use microscope_wire::{
    ClientError, ClientMessage, Connection, HelperMessage, ProbeOptions, ProcessFilter,
    monotonic_ns,
};
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Probe id of on-CPU profiling.
pub const ON_CPU_PROBE: &str = "profile:cpu";
/// Probe id of off-CPU profiling.
pub const OFF_CPU_PROBE: &str = "profile:offcpu";
/// Highest sampling rate the helper accepts.
pub const MAX_HZ: u32 = 1000;
/// How long to wait, after the time is up, for the batch that covers the
/// last moment. The helper sends one about every second, but names the
/// frames of a program it has not seen before first, which for a large
/// binary with debug info can take several seconds.
const LAST_BATCH_GRACE: Duration = Duration::from_secs(15);
/// How long the helper may take to answer a request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What `microscope profile` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRequest {
    /// How long to profile.
    pub seconds: u64,
    /// Only this process (filtered in the kernel).
    pub pid: Option<u32>,
    /// Off-CPU (blocked time) instead of on-CPU samples.
    pub off_cpu: bool,
    /// Samples per second per CPU, for on-CPU.
    pub hz: u32,
    /// The folded file to write; `-` for standard output.
    pub output: PathBuf,
    /// Overwrite `output` if it exists.
    pub force: bool,
}

impl ProfileRequest {
    /// The probe id to enable.
    pub fn probe(&self) -> &'static str {
        if self.off_cpu {
            OFF_CPU_PROBE
        } else {
            ON_CPU_PROBE
        }
    }
}

/// Why `profile` failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Talking to the helper failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The arguments cannot work.
    #[error("{0}")]
    Usage(String),
    /// The helper has no profiler.
    #[error(
        "the helper offers no `{probe}` probe; it is older than this app: update and restart \
         microscoped"
    )]
    NoProfiler {
        /// The probe id looked for.
        probe: String,
    },
    /// The kernel cannot profile.
    #[error("{probe} is not available on this machine: {reason}")]
    Unavailable {
        /// Probe id.
        probe: String,
        /// The helper's sentence.
        reason: String,
    },
    /// The helper refused a request.
    #[error("the helper refused to {what}: {message}")]
    Refused {
        /// What was asked, as a verb phrase.
        what: String,
        /// The helper's sentence.
        message: String,
    },
    /// The output exists and `--force` was not given.
    #[error(
        "{} already exists; choose another name or pass --force to overwrite it",
        path.display()
    )]
    OutputExists {
        /// The output path.
        path: PathBuf,
    },
    /// Writing the output failed.
    #[error("could not write {}: {source}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ProfileError {
    /// Process exit code: 2 for connection problems, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(_) => 2,
            _ => 1,
        }
    }
}

/// What a finished `profile` wrote.
#[derive(Debug)]
pub struct ProfileOutcome {
    /// The folded file (`-` for standard output).
    pub path: PathBuf,
    /// Off-CPU (values in µs) or on-CPU (samples).
    pub off_cpu: bool,
    /// Distinct stacks written.
    pub stacks: usize,
    /// Sum of the values written.
    pub total: u64,
    /// Time the received batches cover, in ns.
    pub span_ns: u64,
    /// Set when the helper went away before the time was up, or the last
    /// batch did not come: what happened.
    pub warning: Option<String>,
}

impl fmt::Display for ProfileOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.off_cpu {
            format!("{:.3} s blocked", self.total as f64 / 1e6)
        } else {
            format!("{} samples", self.total)
        };
        write!(
            f,
            "profiled {:.1} s: {what} in {} stacks, written to {}",
            self.span_ns as f64 / 1e9,
            self.stacks,
            self.path.display()
        )
    }
}

/// `microscope profile`: says when sampling starts and what was written.
pub fn run(socket: &Path, args: &ProfileArgs) -> anyhow::Result<ExitCode> {
    let request = ProfileRequest {
        seconds: args.seconds,
        pid: args.pid,
        off_cpu: args.off_cpu,
        hz: args.hz,
        output: args.output.clone(),
        force: args.force,
    };
    let started = || {
        eprintln!(
            "microscope: profiling {} for {} s",
            request.probe(),
            request.seconds
        );
    };
    let outcome = run_profile(socket, &request, started)
        .map_err(|err| Failure::new(&err, err.exit_code()))?;
    if let Some(warning) = &outcome.warning {
        eprintln!("microscope: warning: {warning}");
    }
    eprintln!("microscope: {outcome}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `microscope profile`; `started` is called once sampling runs.
pub fn run_profile(
    socket: &Path,
    request: &ProfileRequest,
    started: impl FnOnce(),
) -> Result<ProfileOutcome, ProfileError> {
    validate(request)?;
    let to_stdout = request.output == Path::new("-");
    if !to_stdout && !request.force && request.output.exists() {
        return Err(ProfileError::OutputExists {
            path: request.output.clone(),
        });
    }
    let mut connection = Connection::connect(socket)?;
    let probe = request.probe();
    let catalogue = connection.list_probes()?;
    let info =
        catalogue
            .iter()
            .find(|p| p.id == probe)
            .ok_or_else(|| ProfileError::NoProfiler {
                probe: probe.to_owned(),
            })?;
    if !info.availability.available {
        return Err(ProfileError::Unavailable {
            probe: probe.to_owned(),
            reason: info.availability.reason.clone(),
        });
    }
    let mut profile = FoldedProfile::new(info.key, request.pid, request.off_cpu);
    let collected = collect(&mut connection, request, &mut profile, started);
    connection.shutdown();
    let warning = collected?;

    let lines = profile.lines();
    let written = if to_stdout {
        write_lines(&lines, io::stdout().lock())
    } else {
        open_output(&request.output, request.force)
            .and_then(|file| write_lines(&lines, BufWriter::new(file)))
    };
    written.map_err(|source| ProfileError::Output {
        path: request.output.clone(),
        source,
    })?;
    Ok(ProfileOutcome {
        path: request.output.clone(),
        off_cpu: request.off_cpu,
        stacks: lines.len(),
        total: profile.total(),
        span_ns: profile.span_ns(),
        warning,
    })
}

fn validate(request: &ProfileRequest) -> Result<(), ProfileError> {
    if request.seconds == 0 {
        return Err(ProfileError::Usage(
            "--seconds must be at least 1".to_owned(),
        ));
    }
    if request.hz == 0 || request.hz > MAX_HZ {
        return Err(ProfileError::Usage(format!(
            "--hz must be between 1 and {MAX_HZ} (99 is usual); got {}",
            request.hz
        )));
    }
    if request.off_cpu && request.hz != DEFAULT_HZ {
        return Err(ProfileError::Usage(
            "--hz applies to on-CPU profiles only; off-CPU profiles count every block".to_owned(),
        ));
    }
    Ok(())
}

/// Sets the filter and options, enables the probe and gathers batches.
/// Returns a warning when the profile ended early or incomplete.
fn collect(
    connection: &mut Connection,
    request: &ProfileRequest,
    profile: &mut FoldedProfile,
    started: impl FnOnce(),
) -> Result<Option<String>, ProfileError> {
    let probe = request.probe();
    connection.set_recv_timeout(Some(ANSWER_TIMEOUT))?;
    // The filter is this connection's own: no other client's filter changes
    // what it receives, and it ends with the connection.
    if let Some(pid) = request.pid {
        let wanted = ProcessFilter {
            pid: Some(pid),
            ..ProcessFilter::default()
        };
        ask(
            connection,
            &ClientMessage::SetFilter(wanted.clone()),
            |m| matches!(m, HelperMessage::Filter(f) if *f == wanted),
            &format!("keep only process {pid}"),
        )?;
    }
    let options = ProbeOptions {
        stacks: false,
        sample_hz: if request.off_cpu { 0 } else { request.hz },
        min_block_us: 0,
        count_only: false,
    };
    ask(
        connection,
        &ClientMessage::SetOptions {
            probe: probe.to_owned(),
            options,
        },
        |m| matches!(m, HelperMessage::ProbeState { probe: p, .. } if p == probe),
        &format!("set the options of {probe}"),
    )?;
    let received = connection.enable_probe(probe).map_err(|err| match err {
        ClientError::Refused(message) => ProfileError::Refused {
            what: format!("enable {probe}"),
            message,
        },
        other => other.into(),
    })?;
    let enabled_ns = monotonic_ns();
    let end_ns = enabled_ns + request.seconds * 1_000_000_000;
    started();
    let take = |message: &HelperMessage, profile: &mut FoldedProfile| {
        profile.add_message(message, enabled_ns);
    };
    for message in &received {
        take(message, profile);
    }

    let deadline = Instant::now() + Duration::from_secs(request.seconds);
    let grace_deadline = deadline + LAST_BATCH_GRACE;
    let mut warning = None;
    loop {
        // After the time is up, wait only for the batch covering its end.
        let now = Instant::now();
        if now >= deadline && profile.last_end_ns() >= end_ns {
            break;
        }
        let until = if now < deadline {
            deadline
        } else {
            grace_deadline
        };
        let remaining = until.saturating_duration_since(now);
        // A zero read timeout would mean "forever".
        if remaining < Duration::from_millis(1) {
            if now >= grace_deadline {
                warning = Some(format!(
                    "the helper sent no batch covering the last moments within {} s; the \
                     profile may miss up to the last second",
                    LAST_BATCH_GRACE.as_secs()
                ));
                break;
            }
            continue;
        }
        connection.set_recv_timeout(Some(remaining))?;
        match connection.recv() {
            Ok(HelperMessage::Error { message }) => {
                return Err(ProfileError::Refused {
                    what: format!("keep profiling with {probe}"),
                    message,
                });
            }
            Ok(message) => take(&message, profile),
            Err(ClientError::Timeout(_)) => {}
            Err(err @ (ClientError::Closed | ClientError::Io(_) | ClientError::Wire(_))) => {
                warning = Some(format!(
                    "the helper went away before the time was up ({err}); the profile holds \
                     what arrived until then"
                ));
                return Ok(warning);
            }
            Err(err) => return Err(err.into()),
        }
    }
    // Leave the helper as we found it; failures here lose nothing of ours.
    let _ = connection.send(&ClientMessage::Disable {
        probe: probe.to_owned(),
    });
    Ok(warning)
}

/// Sends `message` and waits for the answer `is_answer` recognises;
/// returns what arrived before it. A helper error is a refusal to `what`.
fn ask(
    connection: &mut Connection,
    message: &ClientMessage,
    is_answer: impl Fn(&HelperMessage) -> bool,
    what: &str,
) -> Result<Vec<HelperMessage>, ProfileError> {
    connection.send(message)?;
    let mut before = Vec::new();
    loop {
        let reply = connection.recv()?;
        if is_answer(&reply) {
            return Ok(before);
        }
        if let HelperMessage::Error { message } = reply {
            return Err(ProfileError::Refused {
                what: what.to_owned(),
                message,
            });
        }
        before.push(reply);
    }
}

fn open_output(path: &Path, force: bool) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(path)
}

fn write_lines(lines: &[String], mut out: impl Write) -> io::Result<()> {
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_before_connecting() {
        let request = ProfileRequest {
            seconds: 1,
            pid: None,
            off_cpu: false,
            hz: 99,
            output: PathBuf::from("x.folded"),
            force: false,
        };
        assert!(validate(&request).is_ok());
        assert_eq!(request.probe(), ON_CPU_PROBE);
        for bad in [
            ProfileRequest {
                seconds: 0,
                ..request.clone()
            },
            ProfileRequest {
                hz: 0,
                ..request.clone()
            },
            ProfileRequest {
                hz: 5000,
                ..request.clone()
            },
            ProfileRequest {
                off_cpu: true,
                hz: 500,
                ..request.clone()
            },
        ] {
            assert!(
                matches!(validate(&bad), Err(ProfileError::Usage(_))),
                "{bad:?}"
            );
        }
        let off = ProfileRequest {
            off_cpu: true,
            ..request
        };
        assert!(validate(&off).is_ok());
        assert_eq!(off.probe(), OFF_CPU_PROBE);
    }
}
