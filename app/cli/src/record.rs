//! `microscope record`: enable probes and write every message the helper
//! sends, for a number of seconds, to a recording file.
//!
//! The file is created before the probes are enabled, so the `ProbeState`
//! answers and the first batches are in it too; each message is stamped with
//! its arrival time. If the command is killed the file still opens (by
//! scanning) up to its last whole frame.

use crate::cli::RecordArgs;
use crate::failure::Failure;
use microscope_wire::{
    ClientError, Connection, HelperMessage, RecordingError, RecordingHeader, RecordingTotals,
    RecordingWriter, monotonic_ns,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// After the time is up, how long to wait for the stack batch covering its
/// end (the helper drains stack counts about once a second).
const LAST_BATCH_GRACE: Duration = Duration::from_secs(15);

/// Why `record` failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Talking to the helper failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The helper does not know the probe.
    #[error("the helper has no probe `{probe}`; `microscope probes` lists them")]
    UnknownProbe {
        /// The id asked for.
        probe: String,
    },
    /// The helper refused to enable a probe.
    #[error("could not enable {probe}: {message}")]
    EnableRefused {
        /// Probe id.
        probe: String,
        /// The helper's sentence.
        message: String,
    },
    /// The output file could not be created or written.
    #[error(transparent)]
    Recording(#[from] RecordingError),
}

impl RecordError {
    /// Process exit code: 2 for connection problems, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(_) => 2,
            _ => 1,
        }
    }
}

/// What a finished `record` wrote.
#[derive(Debug)]
pub struct RecordOutcome {
    /// The recording.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its totals.
    pub totals: RecordingTotals,
    /// Set when the helper went away before the time was up: why.
    pub stopped_early: Option<String>,
}

impl fmt::Display for RecordOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span_ns = self
            .totals
            .recv_span_ns
            .map_or(0, |(first, last)| last.saturating_sub(first));
        let (kernel, client) = self.totals.drops.values().fold((0, 0), |(k, c), drops| {
            (
                k + drops.kernel_drops_during(),
                c + drops.client_drops_during(),
            )
        });
        // A profile streams no events: its samples come in stack batches.
        let stacks = match self.totals.stack_batches {
            0 => String::new(),
            n => format!(" and {n} stack batches"),
        };
        write!(
            f,
            "recorded {} events{stacks} in {:.1} s to {} ({} bytes); drops: kernel={kernel} client={client}",
            self.totals.events,
            span_ns as f64 / 1e9,
            self.path.display(),
            self.bytes,
        )
    }
}

/// `microscope record`: prints what was written; exit status 2 when the
/// recording stopped early.
pub fn run(socket: &Path, args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let outcome = run_record(socket, &args.probes, args.seconds, &args.output, args.force)
        .map_err(|err| Failure::new(&err, err.exit_code()))?;
    println!("{outcome}");
    match &outcome.stopped_early {
        None => Ok(ExitCode::SUCCESS),
        Some(reason) => {
            eprintln!(
                "microscope: the recording stopped early ({reason}); \
                 the file holds what arrived until then"
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// Runs `microscope record`.
pub fn run_record(
    socket: &Path,
    probe_ids: &[String],
    seconds: u64,
    output: &Path,
    force: bool,
) -> Result<RecordOutcome, RecordError> {
    // Refuse before touching the helper; `create` below checks again
    // atomically.
    if !force && output.exists() {
        return Err(RecordingError::Exists {
            path: output.to_owned(),
        }
        .into());
    }
    let mut connection = Connection::connect(socket)?;
    let catalogue = connection.list_probes()?;
    if let Some(missing) = probe_ids
        .iter()
        .find(|id| !catalogue.iter().any(|info| &info.id == *id))
    {
        return Err(RecordError::UnknownProbe {
            probe: missing.clone(),
        });
    }
    let mut probes = catalogue;
    for probe in &mut probes {
        probe.enabled = probe_ids.contains(&probe.id);
    }
    let note = format!(
        "microscope record --probe {} --seconds {seconds}",
        probe_ids.join(" --probe ")
    );
    let header = RecordingHeader::new(connection.hello().clone(), probes, note);
    let mut writer = RecordingWriter::create(output, &header, force)?;
    match record_into(&mut connection, &mut writer, probe_ids, seconds) {
        Ok(stopped_early) => {
            connection.shutdown();
            let finished = writer.finish()?;
            Ok(RecordOutcome {
                path: output.to_owned(),
                bytes: finished.bytes,
                totals: finished.totals,
                stopped_early,
            })
        }
        Err(err) => {
            connection.shutdown();
            drop(writer);
            // Nothing worth keeping was recorded; don't leave a stub behind.
            // Failing to remove it only leaves a valid, short recording.
            let _ = std::fs::remove_file(output);
            Err(err)
        }
    }
}

/// Enables the probes, then records until `seconds` have passed. Returns
/// why it stopped early, if the helper went away.
fn record_into(
    connection: &mut Connection,
    writer: &mut RecordingWriter,
    probe_ids: &[String],
    seconds: u64,
) -> Result<Option<String>, RecordError> {
    for id in probe_ids {
        let received = connection.enable_probe(id).map_err(|err| match err {
            ClientError::Refused(message) => RecordError::EnableRefused {
                probe: id.clone(),
                message,
            },
            other => other.into(),
        })?;
        for message in &received {
            writer.write_received(message)?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let end_ns = monotonic_ns() + seconds * 1_000_000_000;
    // Stack counts (a profile, stacks at a tracepoint) are drained about
    // once a second: after the time is up, wait for the batch that covers
    // its end, or the last second would be missing.
    let mut stacks_end_ns: Option<u64> = None;
    loop {
        let now = Instant::now();
        let until = match stacks_end_ns {
            Some(covered) if now >= deadline && covered < end_ns => deadline + LAST_BATCH_GRACE,
            _ => deadline,
        };
        let remaining = until.saturating_duration_since(now);
        // A zero read timeout would mean "forever".
        if remaining < Duration::from_millis(1) {
            return Ok(None);
        }
        connection.set_recv_timeout(Some(remaining))?;
        match connection.recv() {
            Ok(message) => {
                if let HelperMessage::Stacks(batch) = &message {
                    stacks_end_ns = Some(stacks_end_ns.unwrap_or(0).max(batch.end_ns));
                }
                writer.write_received(&message)?;
            }
            Err(ClientError::Timeout(_)) if stacks_end_ns.is_some_and(|c| c < end_ns) => {}
            Err(ClientError::Timeout(_)) => return Ok(None),
            Err(err @ (ClientError::Closed | ClientError::Io(_) | ClientError::Wire(_))) => {
                return Ok(Some(err.to_string()));
            }
            Err(err) => return Err(err.into()),
        }
    }
}
